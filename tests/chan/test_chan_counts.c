/* The mpsc and mpmc queries Tokio has beside len and max_capacity: free
 * slots now (Sender::capacity) and the strong / weak sender counts. */
#include "support.h"

#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "task_checks.h"

/* The same steps on either channel (CH: mpsc or mpmc), capacity 4. */
#define COUNT_STEPS(CH)                                                                   \
    do {                                                                                  \
        ursa_##CH##_receiver_t rx;                                                        \
        ursa_##CH##_sender_t tx, tx2;                                                     \
        ursa_##CH##_weak_sender_t wk, wk2;                                                \
        ursa_##CH##_permit_t p = {0};                                                     \
        uint64_t v = 1;                                                                   \
        CHECK_EQ(ursa_##CH##_free_slots(NULL), 0);                                        \
        CHECK_EQ(ursa_##CH##_sender_count(NULL), 0);                                      \
        CHECK_EQ(ursa_##CH##_weak_count(NULL), 0);                                        \
        CHECK_EQ(ursa_##CH##_new(&rx, &tx, 8, 4, NULL), 0);                               \
        CHECK_EQ(ursa_##CH##_free_slots(tx.ch), 4);                                       \
        CHECK_EQ(ursa_##CH##_send(&tx, &v, URSA_NOW), 0);                                 \
        CHECK_EQ(ursa_##CH##_send(&tx, &v, URSA_NOW), 0);                                 \
        CHECK_EQ(ursa_##CH##_free_slots(tx.ch), 2);                                       \
        CHECK_EQ(ursa_##CH##_reserve(&tx, &p, URSA_NOW), 0);                              \
        CHECK_EQ(ursa_##CH##_free_slots(tx.ch), 1);                                       \
        CHECK_EQ(ursa_##CH##_recv(&rx, &v, URSA_NOW), 0);                                 \
        CHECK_EQ(ursa_##CH##_free_slots(rx.ch), 2); /* a receive gives one back */        \
        CHECK_EQ(ursa_##CH##_permit_release(&p), 0);                                      \
        CHECK_EQ(ursa_##CH##_free_slots(tx.ch), 3);                                       \
        CHECK_EQ(ursa_##CH##_capacity(tx.ch), 4); /* the maximum stays */                 \
        CHECK_EQ(ursa_##CH##_sender_count(tx.ch), 1);                                     \
        CHECK_EQ(ursa_##CH##_weak_count(tx.ch), 0);                                       \
        CHECK_EQ(ursa_##CH##_sender_clone(&tx, &tx2), 0);                                 \
        CHECK_EQ(ursa_##CH##_sender_downgrade(&tx, &wk), 0);                              \
        CHECK_EQ(ursa_##CH##_weak_clone(&wk, &wk2), 0);                                   \
        CHECK_EQ(ursa_##CH##_sender_count(rx.ch), 2);                                     \
        CHECK_EQ(ursa_##CH##_weak_count(rx.ch), 2);                                       \
        CHECK_EQ(ursa_##CH##_weak_drop(&wk2), 0);                                         \
        CHECK_EQ(ursa_##CH##_sender_drop(&tx2), 0);                                       \
        CHECK_EQ(ursa_##CH##_sender_count(rx.ch), 1);                                     \
        CHECK_EQ(ursa_##CH##_weak_count(rx.ch), 1);                                       \
        CHECK_EQ(ursa_##CH##_sender_drop(&tx), 0);                                        \
        CHECK_EQ(ursa_##CH##_sender_count(rx.ch), 0);                                     \
        CHECK_EQ(ursa_##CH##_weak_upgrade(&wk, &tx), -EPIPE);                             \
        CHECK_EQ(ursa_##CH##_weak_count(rx.ch), 1);                                       \
        CHECK_EQ(ursa_##CH##_weak_drop(&wk), 0);                                          \
        CHECK_EQ(ursa_##CH##_weak_count(rx.ch), 0);                                       \
        CHECK_EQ(ursa_##CH##_receiver_drop(&rx), 0);                                      \
    } while (0)

static void *counts_body(void *arg)
{
    (void)arg;
    COUNT_STEPS(mpsc);
    COUNT_STEPS(mpmc);
    /* unbounded mpsc: no limit */
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, 0, NULL), 0);
    CHECK_EQ(ursa_mpsc_free_slots(tx.ch), UINT64_MAX);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    return NULL;
}

/* On the thread that made the channels (the mpsc send bias holds its
 * credit: counted) and as a task on a runtime. */
static void test_chan_free_slots_and_sender_counts_follow_the_handles(void **state)
{
    (void)state;
    ASSERT_OK(counts_body(NULL));
    ASSERT_OK(test_run(1, counts_body, NULL));
}

/* mpsc: a query from another thread than the bias owner counts the
 * owner's credit too (it takes the shared view). */
static void *free_slots_from_here(void *arg)
{
    return (void *)(uintptr_t)ursa_mpsc_free_slots(arg);
}

static void test_mpsc_free_slots_from_another_thread_counts_the_send_bias_credit(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    uint64_t v = 1;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, 8, 8, NULL), 0);
    assert_int_equal(ursa_mpsc_send(&tx, &v, URSA_NOW), 0); /* the owner takes credit */
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, free_slots_from_here, tx.ch), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_int_equal((uintptr_t)res, 7);
    assert_int_equal(ursa_mpsc_free_slots(tx.ch), 7);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

TEST_MAIN(cmocka_unit_test(test_chan_free_slots_and_sender_counts_follow_the_handles),
          cmocka_unit_test(
              test_mpsc_free_slots_from_another_thread_counts_the_send_bias_credit))
