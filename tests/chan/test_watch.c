/* Tests for watch (include/ursa/watch.h, src/chan/watch.c).
 *
 * As in the other tests, checks live in "bodies" that return NULL when they
 * passed or a message saying what failed; a body runs on the test's own
 * (plain) thread, as a task, or as a deterministic scenario over many
 * seeds, and the cmocka assertion is made on the test's own stack. */
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>


#include "ursa/watch.h"

/* ---- failure messages ---- */

#include "task_checks.h"
#include "raw_waker.h"

/* ---- small helpers ---- */

typedef struct pair {
    long a, b; /* b == 3 * a always: a torn read would break it */
} pair_t;

URSA_WATCH_TYPED(pw, pair_t)

static pair_t mk(long a)
{
    return (pair_t){a, 3 * a};
}

/* ====================================================================== */
/* basics                                                                 */
/* ====================================================================== */

static bool inc_if_even(void *value, void *ctx)
{
    pair_t *p = value;
    (void)ctx;
    if (p->a % 2)
        return false;
    p->a++;
    p->b = 3 * p->a;
    return true;
}

static bool ge(const void *value, void *ctx)
{
    return ((const pair_t *)value)->a >= *(long *)ctx;
}

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

static void test_basic_thread(void **state)
{
    (void)state;
    ASSERT_OK(basic_body(NULL));
}

static void *basic_task(void *arg)
{
    return basic_body(arg);
}

static void test_basic_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(1, basic_task, NULL));
}

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
    pair_t p = mk(1);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
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

static void test_borrow_blocks_sender_sim(void **state)
{
    (void)state;
    test_explore(borrow_blocks_sim, NULL);
}

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
    pair_t p = mk(1);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
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

static void test_borrow_blocks_sender_workers(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, borrow_blocks_workers, NULL));
}

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
    pair_t p = mk(0);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    URSA_SIM_CHECK(ursa_watch_subscribe(tx, &rx2) == 0);
    URSA_SIM_CHECK(ursa_watch_subscribe(tx, &rx3) == 0);
    rxs_t a = {rx, 0, 1, 1, -2}, b = {rx2, 3, 1, 1, -2}, c = {rx3, 50, 1, 1, -2};
    ursa_task_t *ta = NULL, *tb = NULL, *tc = NULL;
    URSA_SIM_CHECK(ursa_spawn(&ta, changed_task, &a, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tb, wait_for_task, &b, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tc, wait_for_task, &c, NULL) == 0);
    for (unsigned i = 0; i < v % 3; i++)
        (void)ursa_yield();
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
    pair_t p = mk(0);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    URSA_SIM_CHECK(ursa_watch_receiver_clone(rx, &rx2) == 0);
    txs_t ct = {tx, 1};
    ursa_task_t *tt = NULL;
    URSA_SIM_CHECK(ursa_spawn(&tt, closed_task, &ct, NULL) == 0);
    for (unsigned i = 0; i < v; i++)
        (void)ursa_yield();
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    for (unsigned i = 0; i < 3; i++)
        (void)ursa_yield();
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
    pair_t p = mk(1); /* odd: inc_if_even changes nothing */
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    mrx_t m = {rx, ursa_deadline_in(URSA_MSEC(10)), 1};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, modify_rx, &m, NULL) == 0);
    for (unsigned i = 0; i < v; i++)
        (void)ursa_yield();
    URSA_SIM_CHECK(ursa_watch_send_modify(tx, inc_if_even, NULL) == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(m.rc == -ETIMEDOUT);
    URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 0);
    /* now make it even and modify again: the receiver wakes */
    URSA_SIM_CHECK(pw_send(tx, mk(2)) == 0);
    URSA_SIM_CHECK(ursa_watch_changed(rx, URSA_NOW) == 0);
    m = (mrx_t){rx, URSA_NEVER, 1};
    URSA_SIM_CHECK(ursa_spawn(&t, modify_rx, &m, NULL) == 0);
    for (unsigned i = 0; i < v; i++)
        (void)ursa_yield();
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

static void test_waits_sim(void **state)
{
    (void)state;
    test_explore(waits_sim, NULL);
}

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

static void test_threads(void **state)
{
    (void)state;
    ASSERT_OK(threads_body(NULL));
}

/* Cancelling a task blocked in changed(): -ECANCELED, nothing marked. */
static void *cancel_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    rxs_t a = {rx, 0, 1, 1, -2};
    ursa_task_t *t = spawn_on(1, changed_task, &a, "rx");
    (void)ursa_sleep_for(URSA_MSEC(10));
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(a.rc, -ECANCELED);
    CHECK_EQ(pw_send(tx, mk(1)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

static void test_cancel(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, cancel_body, NULL));
}

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
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_OK(join_task(spawn_on(0, leak_task, rx, "leaker")));
    CHECK_EQ(pw_send(tx, mk(2)), 0); /* would block forever if still held */
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

static void test_leaked_borrow(void **state)
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
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &c->r[0].rx, &p), 0);
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
    for (int i = 0; i < NRX_TASK; i++)
        CHECK_OK(join_task(t[i]));
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

static void test_stress(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        memset(&wst_ctl, 0, sizeof wst_ctl);
        wst_ctl.n = test_scale(20000);
        ASSERT_OK(test_run(2, wst_root, &wst_ctl));
    }
}


/* ====================================================================== */
/* raw two-phase waits: changed_start/finish, closed_start/finish         */
/* ====================================================================== */

/* The foreign waker of raw_waker.h, its counts reset, signalling efd (-1:
 * none) the way an event loop would be woken. */
static ursa_waker_t rwaker_efd(rwaker_t *k, int efd)
{
    atomic_init(&k->count, 0);
    atomic_init(&k->tid, 0);
    k->efd = efd;
    return rwaker(k);
}

/* Bad input: clear codes, nothing changes, no crash. */
static void *raw_bad_input_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx, *tx2;
    ursa_watch_rx_t *rx, *rx2;
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(pw_new(&tx2, &rx2, &p), 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n, n2;
    memset(&n, 0, sizeof n);
    memset(&n2, 0, sizeof n2);
    CHECK_EQ(ursa_watch_changed_start(NULL, &n, wk), -EINVAL);
    CHECK_EQ(ursa_watch_changed_start(rx, NULL, wk), -EINVAL);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, (ursa_waker_t){NULL, NULL}), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(NULL, &n, wk), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(tx, NULL, wk), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, (ursa_waker_t){NULL, NULL}), -EINVAL);
    /* never started */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(NULL, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(rx, NULL), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(NULL, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, NULL), -EINVAL);
    /* started on one watch / kind, finished as another */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_closed_start(tx, &n2, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n2), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx2, &n2), -EINVAL);
    /* not woken yet: -EAGAIN, still queued */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n2), -EAGAIN);
    CHECK(!ursa_wait_ready(&n) && !ursa_wait_ready(&n2));
    CHECK_EQ(ursa_wait_cancel(&n), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&n2), -ECANCELED);
    /* cancelled: finish and a second cancel refuse */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n2), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&n), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(NULL), -EINVAL);
    CHECK_EQ(atomic_load(&k.count), 0);
    /* the channel still works, nothing was marked or woken */
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_send(tx, mk(1)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(atomic_load(&k.count), 0);
    /* finished: a second finish refuses */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&n), -EINVAL);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx2), 0);
    return NULL;
}

static void test_raw_bad_input(void **state)
{
    (void)state;
    ASSERT_OK(raw_bad_input_body(NULL));
}

/* The raw forms' outcomes, one by one, on a plain thread. */
static void *raw_basic_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx, *rx2;
    pair_t p = mk(0), q;
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n, n2;
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx2), 0);

    /* queued; a send wakes it once; finish marks the value seen */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), -EINPROGRESS);
    CHECK_EQ(pw_send(tx, mk(1)), 0);
    CHECK_EQ(atomic_load(&k.count), 2); /* every queued receiver */
    CHECK(ursa_wait_ready(&n) && ursa_wait_ready(&n2));
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 1);

    /* woken, but the change was marked before finish: -EAGAIN */
    CHECK_EQ(pw_get_and_update(rx2, &q), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), -EAGAIN);

    /* something unseen already: 0 at once, no waker call */
    CHECK_EQ(pw_send(tx, mk(2)), 0);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), 0);
    CHECK(ursa_wait_ready(&n));
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(atomic_load(&k.count), 2);

    /* a modify that changes nothing does not wake */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(pw_get_and_update(rx2, &q), 0);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 1); /* 2 -> 3 */
    CHECK_EQ(atomic_load(&k.count), 3);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 0); /* odd: no change */
    CHECK_EQ(atomic_load(&k.count), 3);
    CHECK(!ursa_wait_ready(&n));

    /* the last sender drop wakes it: the unseen... nothing unseen: -EPIPE */
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(atomic_load(&k.count), 4);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EPIPE);
    /* after the close: rx2 still has an unseen value, then -EPIPE */
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), 0);
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), -EPIPE);
    CHECK_EQ(atomic_load(&k.count), 4);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);

    /* closed: queued until the last receiver drops */
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(ursa_watch_receiver_clone(rx, &rx2), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK(!ursa_wait_ready(&n));
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    CHECK_EQ(atomic_load(&k.count), 5);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), 0); /* already: no waker */
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    /* woken, but a receiver subscribed again before finish: -EAGAIN */
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(atomic_load(&k.count), 6);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(atomic_load(&k.count), 6);
    return NULL;
}

static void test_raw_basic(void **state)
{
    (void)state;
    ASSERT_OK(raw_basic_body(NULL));
}

/* Regressions (review): _start again on a node that _finish left queued
 * ("not woken yet") keeps it queued once — it used to link the node to
 * itself, and the next send spun forever; a wait_for that fails marks
 * nothing seen (it used to swallow the values its predicate rejected). */
static void *restart_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    ursa_watch_borrow_t g = {0};
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n;
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(pw_send(tx, mk(2)), 0);
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);

    CHECK_EQ(pw_send(tx, mk(4)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    long want = 5;
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0);

    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(atomic_load(&k.count), 2);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

static void test_raw_restart_and_wait_for_unmarked(void **state)
{
    (void)state;
    ASSERT_OK(restart_body(NULL));
}

/* Deterministic: a raw changed wait against a sender task, over seeds and
 * yield counts; the root either waits for the wake or cancels (racing the
 * send). Either way the change is never lost and the waker runs at most
 * once. */
typedef struct rsend {
    ursa_watch_tx_t *tx;
    unsigned yields;
    int rc;
} rsend_t;

static void *rsend_task(void *arg)
{
    rsend_t *r = arg;
    for (unsigned i = 0; i < r->yields; i++)
        (void)ursa_yield();
    r->rc = pw_send(r->tx, mk(5));
    return NULL;
}

static const char *raw_sim_one(unsigned v, unsigned cancel_after)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n;
    URSA_SIM_CHECK(ursa_watch_changed_start(rx, &n, wk) == -EINPROGRESS);
    rsend_t s = {tx, v, -1};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, rsend_task, &s, NULL) == 0);
    bool finished = false;
    for (unsigned i = 0;; i++) {
        if (cancel_after != ~0u && i >= cancel_after) {
            URSA_SIM_CHECK(ursa_wait_cancel(&n) == -ECANCELED);
            break;
        }
        if (ursa_wait_ready(&n)) {
            URSA_SIM_CHECK(ursa_watch_changed_finish(rx, &n) == 0);
            finished = true;
            break;
        }
        URSA_SIM_CHECK(ursa_watch_changed_finish(rx, &n) == -EAGAIN);
        (void)ursa_yield();
    }
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(s.rc == 0);
    int wakes = atomic_load(&k.count);
    URSA_SIM_CHECK(wakes <= 1);
    if (finished) {
        URSA_SIM_CHECK(wakes == 1);
        URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 0); /* marked by finish */
    } else {
        /* cancelled: nothing marked, the send is still there to see */
        URSA_SIM_CHECK(ursa_watch_has_changed(rx) == 1);
        URSA_SIM_CHECK(ursa_watch_changed(rx, URSA_NOW) == 0);
    }
    pair_t q;
    URSA_SIM_CHECK(pw_get(rx, &q) == 0);
    URSA_SIM_CHECK(q.a == 5 && q.b == 15);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(rx) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    return NULL;
}

/* A raw closed wait against a task that drops the last receiver. */
typedef struct rdrop {
    ursa_watch_rx_t *rx;
    unsigned yields;
} rdrop_t;

static void *rdrop_task(void *arg)
{
    rdrop_t *r = arg;
    for (unsigned i = 0; i < r->yields; i++)
        (void)ursa_yield();
    (void)ursa_watch_receiver_drop(r->rx);
    return NULL;
}

static const char *raw_closed_sim_one(unsigned v, bool cancel)
{
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n;
    URSA_SIM_CHECK(ursa_watch_closed_start(tx, &n, wk) == -EINPROGRESS);
    rdrop_t d = {rx, v};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, rdrop_task, &d, NULL) == 0);
    if (cancel) {
        (void)ursa_yield();
        URSA_SIM_CHECK(ursa_wait_cancel(&n) == -ECANCELED);
    } else {
        while (!ursa_wait_ready(&n))
            (void)ursa_yield();
        URSA_SIM_CHECK(ursa_watch_closed_finish(tx, &n) == 0);
        URSA_SIM_CHECK(atomic_load(&k.count) == 1);
    }
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(atomic_load(&k.count) <= 1);
    URSA_SIM_CHECK(ursa_watch_closed(tx, URSA_NOW) == 0);
    URSA_SIM_CHECK(pw_send(tx, mk(1)) == -EPIPE);
    URSA_SIM_CHECK(ursa_watch_sender_drop(tx) == 0);
    return NULL;
}

static void *raw_sim(void *arg)
{
    (void)arg;
    for (unsigned v = 0; v < 4; v++) {
        CHECK_OK(raw_sim_one(v, ~0u));
        for (unsigned c = 0; c < 5; c++)
            CHECK_OK(raw_sim_one(v, c));
        CHECK_OK(raw_closed_sim_one(v, false));
        CHECK_OK(raw_closed_sim_one(v, true));
    }
    return NULL;
}

static void test_raw_sim(void **state)
{
    (void)state;
    test_explore(raw_sim, NULL);
}

/* Raw waits woken from another thread: the waker runs on the sender's
 * thread and signals an eventfd that this thread polls, as a foreign
 * event loop would. */
typedef struct rthr {
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    atomic_int tid;
} rthr_t;

static void *rthr_send(void *arg)
{
    rthr_t *r = arg;
    atomic_store(&r->tid, (int)gettid());
    sleep_real_ms(2);
    (void)pw_send(r->tx, mk(9));
    return NULL;
}

static void *rthr_drop(void *arg)
{
    rthr_t *r = arg;
    atomic_store(&r->tid, (int)gettid());
    sleep_real_ms(2);
    (void)ursa_watch_receiver_drop(r->rx);
    return NULL;
}

static const char *poll_efd(int efd)
{
    struct pollfd pfd = {efd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1)
        return "eventfd not signalled within 5 s";
    uint64_t c;
    if (read(efd, &c, sizeof c) != (ssize_t)sizeof c || c != 1)
        return "eventfd count is not 1";
    return NULL;
}

static void *raw_thread_body(void *arg)
{
    (void)arg;
    int efd = eventfd(0, EFD_CLOEXEC);
    CHECK(efd >= 0);
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    rwaker_t k;
    ursa_wait_t n;
    rthr_t r = {tx, rx, 0};
    pthread_t th;
    CHECK_EQ(ursa_watch_changed_start(rx, &n, rwaker_efd(&k, efd)), -EINPROGRESS);
    CHECK_EQ(pthread_create(&th, NULL, rthr_send, &r), 0);
    CHECK_OK(poll_efd(efd));
    CHECK(ursa_wait_ready(&n));
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(atomic_load(&k.tid), atomic_load(&r.tid)); /* called by the sender */
    CHECK(atomic_load(&k.tid) != (int)gettid());
    pair_t q;
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 9);

    CHECK_EQ(ursa_watch_closed_start(tx, &n, rwaker_efd(&k, efd)), -EINPROGRESS);
    CHECK_EQ(pthread_create(&th, NULL, rthr_drop, &r), 0);
    CHECK_OK(poll_efd(efd));
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(atomic_load(&k.tid), atomic_load(&r.tid));
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    close(efd);
    return NULL;
}

static void test_raw_thread(void **state)
{
    (void)state;
    ASSERT_OK(raw_thread_body(NULL));
}

/* Threads: a raw wait cancelled (or finished) while another thread sends,
 * many times. Whatever wins, the change is seen exactly once: by the
 * finish, or (after a cancel) by the next changed. */
typedef struct rrace {
    ursa_watch_tx_t *tx;
    long n;
    atomic_long go, sent;
} rrace_t;

static void *rrace_sender(void *arg)
{
    rrace_t *r = arg;
    for (long i = 1; i <= r->n; i++) {
        while (atomic_load(&r->go) < i)
            sched_yield();
        if (pw_send(r->tx, mk(i)) != 0)
            return (void *)"send failed";
        atomic_store(&r->sent, i);
    }
    return NULL;
}

static void *raw_race_body(void *arg)
{
    (void)arg;
    static rrace_t r;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&r.tx, &rx, &p), 0);
    r.n = test_scale(3000);
    atomic_init(&r.go, 0);
    atomic_init(&r.sent, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, rrace_sender, &r), 0);
    long cancels = 0, finishes = 0;
    for (long i = 1; i <= r.n; i++) {
        rwaker_t k;
        ursa_wait_t n;
        CHECK_EQ(ursa_watch_changed_start(rx, &n, rwaker_efd(&k, -1)), -EINPROGRESS);
        atomic_store(&r.go, i);
        for (long spin = i % 7; spin > 0; spin--)
            sched_yield();
        bool cancel = (i % 3) != 0 || !ursa_wait_ready(&n);
        int rc;
        if (cancel)
            rc = ursa_wait_cancel(&n);
        else
            rc = ursa_watch_changed_finish(rx, &n);
        while (atomic_load(&r.sent) < i)
            sched_yield();
        int wakes = atomic_load(&k.count);
        CHECK(wakes <= 1);
        if (cancel) {
            CHECK_EQ(rc, -ECANCELED);
            cancels++;
            CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0); /* not lost */
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(wakes, 1);
            finishes++;
        }
        CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), -EAGAIN); /* seen once */
        pair_t q;
        CHECK_EQ(pw_get(rx, &q), 0);
        CHECK_EQ(q.a, i);
        CHECK_EQ(q.b, 3 * i);
    }
    void *res = NULL;
    pthread_join(th, &res);
    CHECK_OK(res);
    CHECK(cancels > 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(r.tx), 0);
    (void)finishes;
    return NULL;
}

static void test_raw_cancel_race(void **state)
{
    (void)state;
    ASSERT_OK(raw_race_body(NULL));
}

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
    pair_t p = mk(4);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
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

static void test_borrow_outlives_handles(void **state)
{
    (void)state;
    ASSERT_OK(borrow_outlives_body(NULL));
}

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
    pair_t p = mk(0);
    URSA_SIM_CHECK(pw_new(&tx, &rx, &p) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_clone(tx, &tx2) == 0);
    ursa_watch_borrow_t g = {0};
    URSA_SIM_CHECK(ursa_watch_borrow(rx, &g) == 0);
    wsend_t a = {tx, 7, 1, false}, b = {tx2, 8, 1, true};
    ursa_task_t *ta = NULL, *tb = NULL;
    URSA_SIM_CHECK(ursa_spawn(&ta, wsend_task, &a, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&tb, wsend_task, &b, NULL) == 0);
    for (unsigned i = 0; i < v + 2; i++)
        (void)ursa_yield();
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

static void test_writers_wait_sim(void **state)
{
    (void)state;
    test_explore(writers_sim, NULL);
}

/* A receiver that times out in changed() leaves its wait bit behind; the
 * next send must still wake a later receiver, and has_changed stays exact. */
static void *stale_bit_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    pair_t p = mk(0);
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
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

static void test_stale_wait_bit(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, stale_bit_body, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_thread),
        cmocka_unit_test(test_basic_task),
        cmocka_unit_test(test_borrow_blocks_sender_sim),
        cmocka_unit_test(test_borrow_blocks_sender_workers),
        cmocka_unit_test(test_waits_sim),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_leaked_borrow),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_raw_bad_input),
        cmocka_unit_test(test_raw_basic),
        cmocka_unit_test(test_raw_restart_and_wait_for_unmarked),
        cmocka_unit_test(test_raw_sim),
        cmocka_unit_test(test_raw_thread),
        cmocka_unit_test(test_raw_cancel_race),
        cmocka_unit_test(test_borrow_outlives_handles),
        cmocka_unit_test(test_writers_wait_sim),
        cmocka_unit_test(test_stale_wait_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
