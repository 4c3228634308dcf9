/* The typed wrappers of mpsc and mpmc (URSA_MPSC_TYPED, URSA_MPMC_TYPED,
 * include/ursa/detail/chan_typed.h): their own handle types, and every
 * wrapped call with a 12-byte element: clone, drop, close, send, try_send,
 * reserve, permit_send, permit_release, recv, try_recv, recv_many. That a
 * handle of another typed channel does not compile is the CTest test
 * typed_chan_rejects_another_channels_handle (typed_mismatch.c). */
#include "support.h"

#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "task_checks.h"

typedef struct job {
    uint32_t id, a, b; /* 12 bytes: not a word, so a wrong size shows */
} job_t;

URSA_MPSC_TYPED(job_sq, job_t)
URSA_MPMC_TYPED(job_mq, job_t)

/* The same steps on either typed channel (Q: job_sq or job_mq). */
#define TYPED_STEPS(Q)                                                                    \
    do {                                                                                  \
        Q##_rx_t rx;                                                                      \
        Q##_tx_t tx, tx2;                                                                 \
        Q##_permit_t p = {0};                                                             \
        job_t out[4] = {{0}};                                                             \
        CHECK_EQ(Q##_new(NULL, &tx, 4), -EINVAL);                                         \
        CHECK_EQ(Q##_new(&rx, &tx, 4), 0);                                                \
        CHECK_EQ(Q##_sender_clone(&tx, &tx2), 0);                                         \
        CHECK_EQ(Q##_send(&tx, (job_t){1, 10, 100}, URSA_NEVER), 0);                      \
        CHECK_EQ(Q##_try_send(&tx2, (job_t){2, 20, 200}), 0);                             \
        CHECK_EQ(Q##_reserve(&tx2, &p, URSA_NOW), 0);                                     \
        CHECK_EQ(Q##_permit_send(&p, (job_t){3, 30, 300}), 0);                            \
        CHECK_EQ(Q##_reserve(&tx, &p, URSA_NOW), 0);                                      \
        CHECK_EQ(Q##_permit_release(&p), 0); /* the slot goes back unused */              \
        CHECK_EQ(Q##_try_send(&tx, (job_t){4, 40, 400}), 0);                              \
        CHECK_EQ(Q##_try_send(&tx, (job_t){5, 50, 500}), -EAGAIN); /* full: 4 */          \
        CHECK_EQ(Q##_recv(&rx, &out[0], URSA_NEVER), 0);                                  \
        CHECK(out[0].id == 1 && out[0].a == 10 && out[0].b == 100);                       \
        CHECK_EQ(Q##_recv_many(&rx, out, 4, URSA_NOW), 3);                                \
        for (uint32_t i = 0; i < 3; i++)                                                  \
            CHECK(out[i].id == i + 2 && out[i].a == 10 * (i + 2) &&                       \
                  out[i].b == 100 * (i + 2));                                             \
        CHECK_EQ(Q##_try_recv(&rx, &out[0]), -EAGAIN);                                    \
        CHECK_EQ(Q##_sender_drop(&tx2), 0);                                               \
        CHECK_EQ(Q##_sender_drop(&tx2), -EINVAL);                                         \
        CHECK_EQ(Q##_try_send(&tx, (job_t){6, 60, 600}), 0);                              \
        CHECK_EQ(Q##_close(&rx), 0);                                                      \
        CHECK_EQ(Q##_send(&tx, (job_t){7, 70, 700}, URSA_NEVER), -EPIPE);                 \
        CHECK_EQ(Q##_recv(&rx, &out[0], URSA_NEVER), 0); /* sent before the close */      \
        CHECK_EQ(out[0].id, 6);                                                           \
        CHECK_EQ(Q##_recv(&rx, &out[0], URSA_NEVER), -EPIPE);                             \
        CHECK_EQ(Q##_sender_drop(&tx), 0);                                                \
        CHECK_EQ(Q##_receiver_drop(&rx), 0);                                              \
        CHECK_EQ(Q##_receiver_drop(&rx), -EINVAL);                                        \
        CHECK_EQ(Q##_send(NULL, (job_t){0}, URSA_NOW), -EINVAL);                          \
        CHECK_EQ(Q##_recv(NULL, &out[0], URSA_NOW), -EINVAL);                             \
        CHECK_EQ(Q##_reserve(&tx, NULL, URSA_NOW), -EINVAL);                              \
        CHECK_EQ(Q##_recv_many(NULL, out, 4, URSA_NOW), -EINVAL);                         \
    } while (0)

static void *typed_body(void *arg)
{
    (void)arg;
    TYPED_STEPS(job_sq);
    TYPED_STEPS(job_mq);
    return NULL;
}

/* On the test's own thread and as a task. */
static void test_typed_chan_wraps_every_call_with_its_own_handles(void **state)
{
    (void)state;
    ASSERT_OK(typed_body(NULL));
    ASSERT_OK(test_run(1, typed_body, NULL));
}

TEST_MAIN(cmocka_unit_test(test_typed_chan_wraps_every_call_with_its_own_handles))
