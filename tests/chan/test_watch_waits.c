/* watch's waits: changed / wait_for / closed wake when they should (over
 * seeds and on plain threads), a borrow left at task exit, many receivers
 * that never lose the final value, and a timed-out receiver's stale wait
 * bit. */
#include "support.h"

#include "raw_waker.h"
#include "task_checks.h"
#include "ursa/watch.h"
#include "watch_pair.h"

/* ====================================================================== */
/* changed / wait_for / closed as waits                                   */
/* ====================================================================== */

typedef struct rxs {
    ursa_watch_rx_t *rx;
    long want;
    int rc, rc2;
    long got;
} rxs_t;

static void *changed_task(void *arg)
{
    rxs_t *r = arg;
    r->rc = ursa_watch_changed(r->rx, URSA_NEVER);
    pair_t q = {0, 0};
    (void)pw_get(r->rx, &q);
    r->got = q.a;
    r->rc2 = ursa_watch_changed(r->rx, URSA_NEVER);
    return NULL;
}

static void *wait_for_task(void *arg)
{
    rxs_t *r = arg;
    ursa_watch_borrow_t g = {0};
    r->rc = ursa_watch_wait_for(r->rx, ge, &r->want, &g, URSA_NEVER);
    if (r->rc == 0) {
        r->got = pw_borrow_ptr(&g)->a;
        if (pw_borrow_ptr(&g)->b != 3 * r->got)
            r->got = -1;
        r->rc2 = ursa_watch_borrow_release(&g);
    }
    return NULL;
}

typedef struct txs {
    ursa_watch_tx_t *tx;
    int rc;
} txs_t;

static void *closed_task(void *arg)
{
    txs_t *t = arg;
    t->rc = ursa_watch_closed(t->tx, URSA_NEVER);
    return NULL;
}

static const char *waits_one(unsigned v)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx, *rx2, *rx3;
    URSA_SIM_CHECK(pw_new_of(&tx, &rx, 0) == 0);
    URSA_SIM_CHECK(ursa_watch_subscribe(tx, &rx2) == 0);
    URSA_SIM_CHECK(ursa_watch_subscribe(tx, &rx3) == 0);
    rxs_t a = {rx, 0, 1, 1, -2}, b = {rx2, 3, 1, 1, -2}, c = {rx3, 50, 1, 1, -2};
    ursa_task_t *ta = NULL, *tb = NULL, *tc = NULL;
    URSA_SIM_CHECK(ursa_spawn(&ta, changed_task, &a, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tb, wait_for_task, &b, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tc, wait_for_task, &c, NULL) == 0);
    yield_n((unsigned)(v % 3));
    /* a modify that changes nothing wakes no one for good */
    URSA_SIM_CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) == 1); /* 0 -> 1 */
    for (long k = 2; k <= 5; k++) {
        if (v & 4)
            (void)ursa_yield();
        URSA_SIM_CHECK(pw_send(tx, mk(k)) == 0);
    }
    URSA_SIM_CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) == 0); /* 5 odd */
    if (v & 8)
        (void)ursa_sleep_for(URSA_MSEC(1));
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    URSA_SIM_CHECK(ursa_task_join(ta, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_task_join(tb, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_task_join(tc, NULL, URSA_NEVER) == 0);
    /* changed: woke (some value), then after the drop: the final value,
     * if it was unseen, else -EPIPE */
    URSA_SIM_CHECK(a.rc == 0);
    URSA_SIM_CHECK(a.got >= 1 && a.got <= 5);
    URSA_SIM_CHECK(a.got == 5 ? a.rc2 == -EPIPE : a.rc2 == 0);
    URSA_SIM_CHECK(b.rc == 0 && b.got >= 3 && b.rc2 == 0);
    URSA_SIM_CHECK(c.rc == -EPIPE);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx2) == 0);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx3) == 0);
    return NULL;
}

/* closed(): the sender task wakes only when the last receiver goes. */
static const char *closed_one(unsigned v)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx, *rx2;
    URSA_SIM_CHECK(pw_new_of(&tx, &rx, 0) == 0);
    URSA_SIM_CHECK(ursa_watch_receiver_clone(rx, &rx2) == 0);
    txs_t ct = {tx, 1};
    ursa_task_t *tt = NULL;
    URSA_SIM_CHECK(ursa_spawn(&tt, closed_task, &ct, NULL) == 0);
    yield_n(v);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    yield_n(3);
    (void)ursa_sleep_for(URSA_MSEC(1));
    URSA_SIM_CHECK(ct.rc == 1);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx2) == 0);
    URSA_SIM_CHECK(ursa_task_join(tt, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ct.rc == 0);
    URSA_SIM_CHECK(pw_send(tx, mk(1)) == -EPIPE);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    return NULL;
}

/* send_modify: a blocked receiver is woken only by a modify that changed
 * something; an unchanged one leaves it waiting (until its deadline). */
typedef struct mrx {
    ursa_watch_rx_t *rx;
    ursa_time_t dl;
    int rc;
} mrx_t;

static void *modify_rx(void *arg)
{
    mrx_t *m = arg;
    m->rc = ursa_watch_changed(m->rx, m->dl);
    return NULL;
}

static const char *modify_one(unsigned v)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    URSA_SIM_CHECK(pw_new_of(&tx, &rx, 1) == 0); /* odd: inc_if_even changes nothing */
    mrx_t m = {rx, ursa_deadline_in(URSA_MSEC(10)), 1};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, modify_rx, &m, NULL) == 0);
    yield_n(v);
    URSA_SIM_CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(m.rc == -ETIMEDOUT);
    URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 0);
    /* now make it even and modify again: the receiver wakes */
    URSA_SIM_CHECK(pw_send(tx, mk(2)) == 0);
    URSA_SIM_CHECK(ursa_watch_changed(rx, URSA_NOW) == 0);
    m = (mrx_t){rx, URSA_NEVER, 1};
    URSA_SIM_CHECK(ursa_spawn(&t, modify_rx, &m, NULL) == 0);
    yield_n(v);
    URSA_SIM_CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) == 1);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(m.rc == 0);
    pair_t q;
    URSA_SIM_CHECK(pw_get(rx, &q) == 0);
    URSA_SIM_CHECK(q.a == 3 && q.b == 9);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    return NULL;
}

static void *waits_sim(void *arg)
{
    (void)arg;
    for (unsigned v = 0; v < 16; v++)
        CHECK_OK(waits_one(v));
    for (unsigned v = 0; v < 3; v++)
        CHECK_OK(closed_one(v));
    for (unsigned v = 0; v < 3; v++)
        CHECK_OK(modify_one(v));
    return NULL;
}

TEST_EXPLORE(test_watch_changed_wait_for_and_closed_wake_when_they_should_over_seeds,
             waits_sim, NULL)

/* Threads: changed wakes on send and on sender drop; closed wakes. */
static void *changed_thread(void *arg)
{
    return changed_task(arg);
}

static void *wait_for_thread(void *arg)
{
    return wait_for_task(arg);
}

static void *closed_thread(void *arg)
{
    return closed_task(arg);
}

static void *threads_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    pthread_t th;

    /* changed() on a thread: woken by a send, then by the sender drop */
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    rxs_t a = {rx, 0, 1, 1, -2};
    CHECK_EQ(pthread_create(&th, NULL, changed_thread, &a), 0);
    sleep_real_ms(5);
    CHECK_EQ(pw_send(tx, mk(7)), 0);
    sleep_real_ms(5);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    pthread_join(th, NULL);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(a.got, 7);
    CHECK_EQ(a.rc2, -EPIPE);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);

    /* wait_for() on a thread: returns holding a borrow of a value >= 3 */
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    rxs_t b = {rx, 3, 1, 1, -2};
    CHECK_EQ(pthread_create(&th, NULL, wait_for_thread, &b), 0);
    for (long k = 1; k <= 5; k++) {
        sleep_real_ms(2);
        CHECK_EQ(pw_send(tx, mk(k)), 0);
    }
    pthread_join(th, NULL);
    CHECK_EQ(b.rc, 0);
    CHECK(b.got >= 3);
    CHECK_EQ(b.rc2, 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);

    /* closed() on a thread: woken by the last receiver drop */
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    ursa_watch_rx_t *rx2;
    CHECK_EQ(ursa_watch_receiver_clone(rx, &rx2), 0);
    txs_t ct = {tx, 1};
    CHECK_EQ(pthread_create(&th, NULL, closed_thread, &ct), 0);
    CHECK_EQ(ursa_watch_closed(tx, ursa_deadline_in(URSA_MSEC(5))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    sleep_real_ms(5);
    CHECK_EQ(ct.rc, 1);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    pthread_join(th, NULL);
    CHECK_EQ(ct.rc, 0);
    CHECK_EQ(pw_send(tx, mk(1)), -EPIPE);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

TEST_BODY(test_watch_changed_wait_for_and_closed_on_plain_threads, threads_body(NULL))

/* A task that ends holding a borrow: reported as "watch borrow", released
 * (a sender is not held off afterwards). */
static void *leak_task(void *arg)
{
    ursa_watch_rx_t *rx = arg;
    static ursa_watch_borrow_t g; /* outlives the task: only the ledger reads */
    memset(&g, 0, sizeof g);
    if (ursa_watch_borrow(rx, &g) != 0)
        return (void *)"borrow failed";
    return NULL;
}

static void *leak_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&tx, &rx, 0), 0);
    CHECK_OK(join_task(spawn_on(0, leak_task, rx, "leaker")));
    CHECK_EQ(pw_send(tx, mk(2)), 0); /* would block forever if still held */
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

static void test_watch_borrow_left_at_task_exit_is_reported_and_released(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(test_run(1, leak_body, NULL));
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "watch borrow");
    assert_string_equal(test_leaks.owner, "leaker");
    ursa_leak_set_hook(NULL, NULL);
}

/* ====================================================================== */
/* stress: many receivers see the latest value, none loses the last       */
/* ====================================================================== */

#define NRX_TASK 4

#define NRX_THREAD 2

typedef struct wstress {
    ursa_watch_rx_t *rx;
    long last;    /* the final value this receiver saw */
    long seen;    /* distinct changes observed */
    atomic_int fails;
} wst_t;

static void wst_run(wst_t *s)
{
    long prev = -1;
    for (;;) {
        int rc = ursa_watch_changed(s->rx, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc != 0) {
            atomic_fetch_add(&s->fails, 1);
            break;
        }
        ursa_watch_borrow_t g = {0};
        if (ursa_watch_borrow_and_update(s->rx, &g) != 0) {
            atomic_fetch_add(&s->fails, 1);
            break;
        }
        const pair_t *v = pw_borrow_ptr(&g);
        if (v->b != 3 * v->a || v->a < prev)
            atomic_fetch_add(&s->fails, 1); /* torn or went backwards */
        prev = v->a;
        s->seen++;
        if (getenv("WST_Y") && s->seen % 64 == 0)
            (void)ursa_yield(); /* hold the borrow across a switch now and then */
        (void)ursa_watch_borrow_release(&g);
    }
    s->last = prev;
}

static void *wst_task(void *arg)
{
    wst_run(arg);
    return NULL;
}

static void *wst_thread(void *arg)
{
    wst_run(arg);
    return NULL;
}

typedef struct wctl {
    long n;
    wst_t r[NRX_TASK + NRX_THREAD];
    pthread_t th[NRX_THREAD];
} wctl_t;

static void *wst_root(void *arg)
{
    wctl_t *c = arg;
    ursa_watch_tx_t *tx, *tx2;
    CHECK_EQ(pw_new_of(&tx, &c->r[0].rx, 0), 0);
    for (int i = 1; i < NRX_TASK + NRX_THREAD; i++)
        CHECK_EQ(ursa_watch_subscribe(tx, &c->r[i].rx), 0);
    ursa_task_t *t[NRX_TASK];
    for (int i = 0; i < NRX_TASK; i++)
        t[i] = spawn_on(i % 2, wst_task, &c->r[i], "rx");
    for (int i = 0; i < NRX_THREAD; i++)
        CHECK_EQ(pthread_create(&c->th[i], NULL, wst_thread, &c->r[NRX_TASK + i]), 0);
    /* two senders: this task, then a clone on the other worker for the end */
    CHECK_EQ(ursa_watch_sender_clone(tx, &tx2), 0);
    for (long k = 1; k <= c->n; k++) {
        if (k % 3 == 0)
            CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) >= 0);
        int rc = pw_send(tx, mk(k));
        CHECK_EQ(rc, 0);
        if (k % 128 == 0)
            (void)ursa_yield();
    }
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(pw_send(tx2, mk(c->n + 1)), 0); /* the final value */
    CHECK_EQ(ursa_watch_sender_drop(tx2), 0);
    CHECK_OK(join_tasks(t, NRX_TASK));
    for (int i = 0; i < NRX_THREAD; i++)
        pthread_join(c->th[i], NULL);
    for (int i = 0; i < NRX_TASK + NRX_THREAD; i++) {
        CHECK_EQ(atomic_load(&c->r[i].fails), 0);
        CHECK_EQ(c->r[i].last, c->n + 1); /* nobody lost the final value */
        CHECK(c->r[i].seen >= 1);
        CHECK_EQ(ursa_watch_receiver_drop(c->r[i].rx), 0);
    }
    return NULL;
}

static wctl_t wst_ctl;

static void test_watch_receivers_never_lose_the_final_value_on_threads(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        memset(&wst_ctl, 0, sizeof wst_ctl);
        wst_ctl.n = test_scale(20000);
        ASSERT_OK(test_run(2, wst_root, &wst_ctl));
    }
}

/* ====================================================================== */
/* a timed-out receiver leaves no stale wait bit                          */
/* ====================================================================== */

/* A receiver that times out in changed() leaves its wait bit behind; the
 * next send must still wake a later receiver, and has_changed stays exact. */
static void *stale_bit_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&tx, &rx, 0), 0);
    CHECK_EQ(ursa_watch_changed(rx, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    rxs_t a = {rx, 0, 1, 1, -2};
    ursa_task_t *t = spawn_on(1, changed_task, &a, "rx");
    (void)ursa_sleep_for(URSA_MSEC(5));
    CHECK_EQ(pw_send(tx, mk(3)), 0);
    (void)ursa_sleep_for(URSA_MSEC(5));
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(a.got, 3);
    CHECK_EQ(a.rc2, -EPIPE);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    return NULL;
}

TEST_BODY(test_watch_timed_out_receiver_leaves_no_stale_wait_bit, test_run(2, stale_bit_body, NULL))

TEST_MAIN(cmocka_unit_test(test_watch_changed_wait_for_and_closed_wake_when_they_should_over_seeds),
          cmocka_unit_test(test_watch_changed_wait_for_and_closed_on_plain_threads),
          cmocka_unit_test(test_watch_borrow_left_at_task_exit_is_reported_and_released),
          cmocka_unit_test(test_watch_receivers_never_lose_the_final_value_on_threads),
          cmocka_unit_test(test_watch_timed_out_receiver_leaves_no_stale_wait_bit))
