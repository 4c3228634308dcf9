/* Tests for watch (include/ursa/watch.h, src/chan/watch.c) beyond the
 * contract (tests/contract/, row watch_changed): send / changed / borrow
 * and the handles, a borrow holding senders off (over seeds and on two
 * workers), and regressions for the state word. changed / wait_for /
 * closed as waits and under stress: test_watch_waits.c; the raw waits:
 * test_watch_raw.c. */
#include "support.h"

#include "raw_waker.h"
#include "task_checks.h"
#include "ursa/watch.h"
#include "watch_pair.h"

/* ====================================================================== */
/* basics                                                                 */
/* ====================================================================== */

static void *basic_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx, *tx2;
    ursa_watch_rx_t *rx, *rx2, *rx3;
    pair_t p = mk(1), q;
    ursa_watch_borrow_t g = {0};

    CHECK_EQ(ursa_watch_new(NULL, &rx, sizeof p, &p), -EINVAL);
    CHECK_EQ(ursa_watch_new(&tx, NULL, sizeof p, &p), -EINVAL);
    CHECK_EQ(ursa_watch_new(&tx, &rx, 0, &p), -EINVAL);
    CHECK_EQ(ursa_watch_send(NULL, &p), -EINVAL);
    CHECK_EQ(ursa_watch_send_modify(NULL, inc_if_even, NULL), -EINVAL);
    CHECK_EQ(ursa_watch_borrow(NULL, &g), -EINVAL);
    CHECK_EQ(ursa_watch_borrow_ptr(&g), NULL);
    CHECK_EQ(ursa_watch_changed(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_watch_has_changed(NULL), -EINVAL);
    CHECK_EQ(ursa_watch_closed(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_watch_sender_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_watch_receiver_drop(NULL), -EINVAL);

    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(ursa_watch_send(tx, NULL), -EINVAL);
    CHECK_EQ(ursa_watch_send_modify(tx, NULL, NULL), -EINVAL);
    CHECK_EQ(ursa_watch_borrow(rx, NULL), -EINVAL);
    /* the initial value counts as seen */
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_watch_changed(rx, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_closed(tx, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_watch_receiver_count(tx), 1);
    CHECK_EQ(ursa_watch_sender_count(rx), 1);
    size_t held0 = ursa_held_count();
    CHECK_EQ(ursa_watch_borrow(rx, &g), 0);
    CHECK_EQ(ursa_held_count(), held0 + 1);
    CHECK_EQ(ursa_watch_borrow(rx, &g), -EINVAL); /* already holds */
    CHECK_EQ(pw_borrow_ptr(&g)->a, 1);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    CHECK_EQ(ursa_held_count(), held0);
    test_capture_leaks();
    CHECK_EQ(ursa_watch_borrow_release(&g), -EINVAL); /* double release: reported */
    CHECK_EQ(test_leak_count(), 1);

    /* send, changed, borrow_and_update */
    CHECK_EQ(pw_send(tx, mk(2)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_has_changed(rx), 1); /* marks nothing */
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 2);
    CHECK_EQ(ursa_watch_has_changed(rx), 1); /* get marks nothing */
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_send(tx, mk(3)), 0);
    CHECK_EQ(ursa_watch_borrow_and_update(rx, &g), 0);
    CHECK_EQ(pw_borrow_ptr(&g)->a, 3);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);

    /* subscribe: has seen the current value; clone: same seen as source */
    CHECK_EQ(pw_send(tx, mk(4)), 0);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx2), 0);
    CHECK_EQ(ursa_watch_has_changed(rx2), 0);
    CHECK_EQ(ursa_watch_receiver_clone(rx, &rx3), 0);
    CHECK_EQ(ursa_watch_has_changed(rx3), 1);
    CHECK_EQ(ursa_watch_receiver_count(tx), 3);

    /* send_modify notifies only if changed */
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 1); /* 4 -> 5 */
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 0); /* 5: odd */
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), -EAGAIN);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 5);

    /* wait_for: already true / not true now */
    long want = 5;
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, URSA_NOW), 0);
    CHECK_EQ(pw_borrow_ptr(&g)->a, 5);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    want = 6;
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_borrow_ptr(&g), NULL);
    CHECK_EQ(ursa_held_count(), held0);

    /* sender clone keeps the channel open */
    CHECK_EQ(ursa_watch_sender_clone(tx, &tx2), 0);
    CHECK_EQ(ursa_watch_sender_count(rx), 2);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_send(tx2, mk(6)), 0);

    /* last sender drops: one more unseen value, then -EPIPE */
    CHECK_EQ(ursa_watch_sender_drop(tx2), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NEVER), 0);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 6);
    CHECK_EQ(ursa_watch_has_changed(rx), -EPIPE);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_watch_changed(rx2, URSA_NEVER), 0);
    CHECK_EQ(ursa_watch_changed(rx2, URSA_NEVER), -EPIPE);
    want = 6;
    CHECK_EQ(ursa_watch_wait_for(rx3, ge, &want, &g, URSA_NEVER), 0); /* true: ok */
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    want = 7;
    CHECK_EQ(ursa_watch_wait_for(rx3, ge, &want, &g, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    /* a borrow outlives its receiver handle */
    CHECK_EQ(ursa_watch_borrow(rx3, &g), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx3), 0);
    CHECK_EQ(pw_borrow_ptr(&g)->a, 6);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);

    /* no receivers: send fails and stores nothing; replace stores */
    CHECK_EQ(ursa_watch_new(&tx, &rx, sizeof p, NULL), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_closed(tx, URSA_NOW), 0);
    CHECK_EQ(pw_send(tx, mk(9)), -EPIPE);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 0); /* zero initial, the failed send left no trace */
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(pw_send_replace(tx, mk(10), &q), 0);
    CHECK_EQ(q.a, 0);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 10);
    {
        URSA_SCOPED(watch_borrow, sg);
        CHECK_EQ(ursa_watch_borrow(rx, &sg), 0);
        CHECK_EQ(ursa_held_count(), held0 + 1);
    }
    CHECK_EQ(ursa_held_count(), held0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(test_leak_count(), 1);
    return NULL;
}

TEST_BODY(test_watch_send_changed_borrow_and_handles_on_a_plain_thread, basic_body(NULL))

static void *basic_task(void *arg)
{
    return basic_body(arg);
}

TEST_BODY(test_watch_send_changed_borrow_and_handles_in_a_task, test_run(1, basic_task, NULL))

/* ====================================================================== */
/* a borrow holds senders off (deterministic, then threads)               */
/* ====================================================================== */

typedef struct bsend {
    ursa_watch_tx_t *tx;
    atomic_int done;
    int rc;
    int modify;
} bsend_t;

static bool set_100(void *value, void *ctx)
{
    (void)ctx;
    *(pair_t *)value = mk(100);
    return true;
}

static void *bsend_task(void *arg)
{
    bsend_t *b = arg;
    b->rc = b->modify ? ursa_watch_send_modify(b->tx, set_100, NULL) : pw_send(b->tx, mk(100));
    atomic_store(&b->done, 1);
    return NULL;
}

static const char *borrow_blocks_one(int modify, int yields)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    URSA_SIM_CHECK(pw_new_of(&tx, &rx, 1) == 0);
    ursa_watch_borrow_t g = {0};
    URSA_SIM_CHECK(ursa_watch_borrow(rx, &g) == 0);
    bsend_t b = {tx, 0, -1, modify};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, bsend_task, &b, NULL) == 0);
    for (int i = 0; i < yields; i++) {
        (void)ursa_yield();
        URSA_SIM_CHECK(atomic_load(&b.done) == 0);
        URSA_SIM_CHECK(pw_borrow_ptr(&g)->a == 1 && pw_borrow_ptr(&g)->b == 3);
    }
    (void)ursa_sleep_for(URSA_MSEC(5)); /* virtual time passes: still held off */
    URSA_SIM_CHECK(atomic_load(&b.done) == 0);
    URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 0);
    /* a second borrow is fine while the sender waits (readers preferred) */
    ursa_watch_borrow_t g2 = {0};
    URSA_SIM_CHECK(ursa_watch_borrow(rx, &g2) == 0);
    URSA_SIM_CHECK(ursa_watch_borrow_release(&g2) == 0);
    URSA_SIM_CHECK(ursa_watch_borrow_release(&g) == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(b.rc == (modify ? 1 : 0));
    URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 1);
    pair_t q;
    URSA_SIM_CHECK(pw_get(rx, &q) == 0);
    URSA_SIM_CHECK(q.a == 100 && q.b == 300);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    return NULL;
}

static void *borrow_blocks_sim(void *arg)
{
    (void)arg;
    for (int m = 0; m < 2; m++)
        for (int y = 0; y < 4; y++)
            CHECK_OK(borrow_blocks_one(m, y));
    return NULL;
}

TEST_EXPLORE(test_watch_borrow_holds_senders_off_over_seeds, borrow_blocks_sim, NULL)

static void *bsend_thread(void *arg)
{
    return bsend_task(arg);
}

/* A plain-thread sender and a task sender on the other worker both wait
 * for a plain thread's borrow. */
static void *borrow_blocks_workers(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&tx, &rx, 1), 0);
    ursa_watch_borrow_t g = {0};
    CHECK_EQ(ursa_watch_borrow(rx, &g), 0);
    bsend_t b1 = {tx, 0, -1, 0}, b2 = {tx, 0, -1, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, bsend_thread, &b1), 0);
    ursa_task_t *t = spawn_on(1, bsend_task, &b2, "sender");
    (void)ursa_sleep_for(URSA_MSEC(30));
    CHECK_EQ(atomic_load(&b1.done), 0);
    CHECK_EQ(atomic_load(&b2.done), 0);
    CHECK(pw_borrow_ptr(&g)->a == 1);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    pthread_join(th, NULL);
    CHECK_OK(join_task(t));
    CHECK_EQ(b1.rc, 0);
    CHECK_EQ(b2.rc, 1);
    pair_t q;
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK(q.a == 100);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

TEST_BODY(test_watch_borrow_holds_senders_off_on_two_workers,
          test_run(2, borrow_blocks_workers, NULL))

/* ====================================================================== */
/* regressions for the state-word rewrite                                 */
/* ====================================================================== */

/* Every handle dropped while a borrow is held: the borrow keeps the
 * channel alive and readable; its release frees it (ASan checks both). */
static void *borrow_outlives_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&tx, &rx, 4), 0);
    ursa_watch_borrow_t g = {0}, g2 = {0};
    CHECK_EQ(ursa_watch_borrow(rx, &g), 0);
    CHECK_EQ(ursa_watch_borrow(rx, &g2), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(pw_borrow_ptr(&g)->a, 4);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    CHECK_EQ(pw_borrow_ptr(&g2)->b, 12);
    CHECK_EQ(ursa_watch_borrow_release(&g2), 0);
    return NULL;
}

TEST_BODY(test_watch_borrow_outlives_every_handle, borrow_outlives_body(NULL))

/* Two sender tasks wait for a borrow; one is cancelled and drops its
 * handle before the borrow goes. The release must wake the other (the
 * writer-waiting bit is shared) and must not touch freed memory. */
typedef struct wsend {
    ursa_watch_tx_t *tx;
    long v;
    int rc;
    bool drop;
} wsend_t;

static void *wsend_task(void *arg)
{
    wsend_t *s = arg;
    s->rc = pw_send(s->tx, mk(s->v));
    if (s->drop)
        (void)ursa_watch_sender_drop(s->tx);
    return NULL;
}

static const char *writers_one(unsigned v)
{
    ursa_watch_tx_t *tx, *tx2;
    ursa_watch_rx_t *rx;
    URSA_SIM_CHECK(pw_new_of(&tx, &rx, 0) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_clone(tx, &tx2) == 0);
    ursa_watch_borrow_t g = {0};
    URSA_SIM_CHECK(ursa_watch_borrow(rx, &g) == 0);
    wsend_t a = {tx, 7, 1, false}, b = {tx2, 8, 1, true};
    ursa_task_t *ta = NULL, *tb = NULL;
    URSA_SIM_CHECK(ursa_spawn(&ta, wsend_task, &a, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tb, wsend_task, &b, NULL) == 0);
    yield_n((unsigned)(v + 2));
    URSA_SIM_CHECK(a.rc == 1 && b.rc == 1); /* both held off */
    URSA_SIM_CHECK(ursa_task_cancel(tb) == 0);
    URSA_SIM_CHECK(ursa_task_join(tb, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(b.rc == -ECANCELED);
    URSA_SIM_CHECK(ursa_watch_sender_count(rx) == 1);
    URSA_SIM_CHECK(pw_borrow_ptr(&g)->a == 0);
    URSA_SIM_CHECK(ursa_watch_borrow_release(&g) == 0);
    URSA_SIM_CHECK(ursa_task_join(ta, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(a.rc == 0);
    pair_t q;
    URSA_SIM_CHECK(pw_get_and_update(rx, &q) == 0);
    URSA_SIM_CHECK(q.a == 7);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    URSA_SIM_CHECK(ursa_watch_changed(rx, URSA_NOW) == -EPIPE);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    return NULL;
}

static void *writers_sim(void *arg)
{
    (void)arg;
    for (unsigned v = 0; v < 4; v++)
        CHECK_OK(writers_one(v));
    return NULL;
}

TEST_EXPLORE(test_watch_cancelled_sender_waiting_on_a_borrow_wakes_the_other_over_seeds,
             writers_sim, NULL)

/* Tokio parity: mark_changed / mark_unchanged move only this receiver's
 * mark; a sender's borrow reads the value and marks nothing. */
static void test_watch_marks_and_the_senders_borrow(void **state)
{
    (void)state;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx, *rx2;
    pair_t init = mk(1), v = mk(2);
    assert_int_equal(ursa_watch_new(&tx, &rx, sizeof(pair_t), &init), 0);
    assert_int_equal(ursa_watch_receiver_clone(rx, &rx2), 0);
    assert_int_equal(ursa_watch_mark_changed(NULL), -EINVAL);
    assert_int_equal(ursa_watch_mark_unchanged(NULL), -EINVAL);
    assert_int_equal(ursa_watch_has_changed(rx), 0);
    assert_int_equal(ursa_watch_mark_changed(rx), 0);
    assert_int_equal(ursa_watch_has_changed(rx), 1);
    assert_int_equal(ursa_watch_has_changed(rx2), 0); /* per receiver */
    assert_int_equal(ursa_watch_changed(rx, URSA_NOW), 0); /* and marks it seen */
    assert_int_equal(ursa_watch_has_changed(rx), 0);
    assert_int_equal(ursa_watch_mark_changed(rx), 0);
    assert_int_equal(ursa_watch_send(tx, &v), 0);
    assert_int_equal(ursa_watch_has_changed(rx), 1); /* still unseen after a send */
    assert_int_equal(ursa_watch_has_changed(rx2), 1);
    assert_int_equal(ursa_watch_mark_unchanged(rx2), 0);
    assert_int_equal(ursa_watch_has_changed(rx2), 0);
    assert_int_equal(ursa_watch_changed(rx2, URSA_NOW), -EAGAIN);

    ursa_watch_borrow_t g = {0};
    assert_int_equal(ursa_watch_sender_borrow(NULL, &g), -EINVAL);
    assert_int_equal(ursa_watch_sender_borrow(tx, NULL), -EINVAL);
    assert_int_equal(ursa_watch_sender_borrow(tx, &g), 0);
    assert_int_equal(ursa_watch_sender_borrow(tx, &g), -EINVAL); /* g holds one */
    const pair_t *p = ursa_watch_borrow_ptr(&g);
    assert_true(p->a == 2 && p->b == 6);
    assert_int_equal(ursa_watch_borrow_release(&g), 0);
    assert_int_equal(ursa_watch_has_changed(rx), 1); /* the sender's borrow marks nothing */
    assert_int_equal(ursa_watch_receiver_drop(rx2), 0);
    assert_int_equal(ursa_watch_receiver_drop(rx), 0);
    assert_int_equal(ursa_watch_sender_drop(tx), 0);
}

TEST_MAIN(cmocka_unit_test(test_watch_send_changed_borrow_and_handles_on_a_plain_thread),
          cmocka_unit_test(test_watch_send_changed_borrow_and_handles_in_a_task),
          cmocka_unit_test(test_watch_borrow_holds_senders_off_over_seeds),
          cmocka_unit_test(test_watch_borrow_holds_senders_off_on_two_workers),
          cmocka_unit_test(test_watch_borrow_outlives_every_handle),
          cmocka_unit_test(test_watch_cancelled_sender_waiting_on_a_borrow_wakes_the_other_over_seeds),
          cmocka_unit_test(test_watch_marks_and_the_senders_borrow))
