/* mpsc with many producers: each producer's order over seeds, close
 * racing plain sends over seeds, tasks on two workers and plain threads
 * (count, order, checksum) bounded and unbounded, close racing producers,
 * and a receiver's deadline while a sender is stalled inside its copy. */
#include "support.h"

#include <ursa/mpsc.h>

#include "task_checks.h"

#define CHAN mpsc
#include "mpxc_checks.h"
#include "uffd_hold.h"

/* ====================================================================== */
/* deterministic exploration: producers, FIFO per producer                */
/* ====================================================================== */

#define EX_PRODUCERS 3

#define EX_PER 6

typedef struct ex {
    ursa_mpsc_sender_t tx[EX_PRODUCERS];
    uint64_t cap;
} ex_t;

typedef struct exp_arg {
    ex_t *e;
    uint64_t id;
} exp_arg_t;

static void *ex_producer2(void *arg)
{
    exp_arg_t *a = arg;
    for (uint64_t i = 0; i < EX_PER; i++) {
        uint64_t v = a->id << 32 | i;
        if (i % 2) {
            ursa_mpsc_permit_t p = {0};
            URSA_SIM_CHECK(ursa_mpsc_reserve(&a->e->tx[a->id], &p, URSA_NEVER) == 0);
            ursa_yield();
            URSA_SIM_CHECK(ursa_mpsc_permit_send(&p, &v) == 0);
        } else {
            URSA_SIM_CHECK(ursa_mpsc_send(&a->e->tx[a->id], &v, URSA_NEVER) == 0);
        }
    }
    URSA_SIM_CHECK(ursa_mpsc_sender_drop(&a->e->tx[a->id]) == 0);
    return NULL;
}

static void *ex_scenario(void *arg)
{
    static ex_t e;
    static exp_arg_t args[EX_PRODUCERS];
    ursa_mpsc_receiver_t rx;
    e.cap = (uint64_t)(uintptr_t)arg;
    URSA_SIM_CHECK(new_with_senders(&rx, e.tx, EX_PRODUCERS, 8, e.cap, NULL) == 0);
    ursa_task_t *t[EX_PRODUCERS];
    for (int i = 0; i < EX_PRODUCERS; i++) {
        args[i] = (exp_arg_t){&e, (uint64_t)i};
        t[i] = spawn_on(0, ex_producer2, &args[i], "p");
    }
    uint64_t next[EX_PRODUCERS] = {0}, total = 0, v;
    int rc;
    while ((rc = ursa_mpsc_recv(&rx, &v, URSA_NEVER)) == 0) {
        uint64_t id = v >> 32, seq = v & 0xffffffff;
        URSA_SIM_CHECK(id < EX_PRODUCERS);
        URSA_SIM_CHECK(seq == next[id]);
        next[id]++;
        total++;
        if (e.cap)
            URSA_SIM_CHECK(ursa_mpsc_len(rx.ch) <= e.cap);
    }
    URSA_SIM_CHECK(rc == -EPIPE);
    URSA_SIM_CHECK(total == EX_PRODUCERS * EX_PER);
    CHECK_OK(join_tasks(t, EX_PRODUCERS));
    URSA_SIM_CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
    return NULL;
}

TEST_EXPLORE_EACH(test_mpsc_keeps_each_producers_order_over_seeds, ex_scenario, 1, 2, 0)

/* Close while plain sends race it and a permit is held, over many seeds:
 * plain sends are not counted as permits, so the end of stream must come
 * from the seal (unbounded) or the idle semaphore (bounded). Every send
 * that returned 0 is received exactly once, the held permit's message
 * included, and then the receiver gets -EPIPE. */
#define XC_PLAIN 2

typedef struct xc {
    ursa_mpsc_sender_t tx[XC_PLAIN + 1];
    uint64_t ok;    /* successful sends (one worker: no race) */
    uint64_t seen;  /* 2: the permit sent; 1: its message was received */
} xc_t;

typedef struct xc_arg {
    xc_t *x;
    uint64_t id;
} xc_arg_t;

static void *xc_plain(void *arg)
{
    xc_arg_t *a = arg;
    for (uint64_t i = 0;; i++) {
        uint64_t v = a->id << 32 | i;
        int rc = ursa_mpsc_send(&a->x->tx[a->id], &v, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        URSA_SIM_CHECK(rc == 0);
        a->x->ok++;
        if (i % 2)
            ursa_yield();
    }
    URSA_SIM_CHECK(ursa_mpsc_sender_drop(&a->x->tx[a->id]) == 0);
    return NULL;
}

static void *xc_holder(void *arg)
{
    xc_arg_t *a = arg;
    ursa_mpsc_permit_t p = {0};
    int rc = ursa_mpsc_reserve(&a->x->tx[a->id], &p, URSA_NEVER);
    URSA_SIM_CHECK(rc == 0 || rc == -EPIPE);
    URSA_SIM_CHECK(ursa_mpsc_sender_drop(&a->x->tx[a->id]) == 0); /* the permit outlives it */
    if (rc == 0) {
        yield_n(3);
        uint64_t v = a->id << 32 | 7777;
        URSA_SIM_CHECK(ursa_mpsc_permit_send(&p, &v) == 0);
        a->x->ok++;
        a->x->seen |= 2;
    }
    return NULL;
}

static void *xc_scenario(void *arg)
{
    static xc_t x;
    static xc_arg_t args[XC_PLAIN + 1];
    memset(&x, 0, sizeof x);
    ursa_mpsc_receiver_t rx;
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    URSA_SIM_CHECK(new_with_senders(&rx, x.tx, XC_PLAIN + 1, 8, cap, NULL) == 0);
    ursa_task_t *t[XC_PLAIN + 1];
    for (int i = 0; i <= XC_PLAIN; i++) {
        args[i] = (xc_arg_t){&x, (uint64_t)i};
        t[i] = spawn_on(0, i == XC_PLAIN ? xc_holder : xc_plain, &args[i], "xc");
    }
    uint64_t got = 0, v;
    int rc;
    while ((rc = ursa_mpsc_recv(&rx, &v, URSA_NEVER)) == 0) {
        if (++got == 3)
            URSA_SIM_CHECK(ursa_mpsc_close(&rx) == 0);
        if ((v & 0xffffffff) == 7777)
            x.seen |= 1;
    }
    URSA_SIM_CHECK(rc == -EPIPE);
    CHECK_OK(join_tasks(t, XC_PLAIN + 1));
    URSA_SIM_CHECK(got == x.ok);
    URSA_SIM_CHECK(!(x.seen & 2) || (x.seen & 1)); /* the permit's message arrived */
    URSA_SIM_CHECK(ursa_mpsc_len(rx.ch) == 0);
    URSA_SIM_CHECK(ursa_mpsc_recv(&rx, &v, URSA_NOW) == -EPIPE);
    URSA_SIM_CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
    return NULL;
}

TEST_EXPLORE_EACH(test_mpsc_close_racing_plain_sends_loses_no_message_over_seeds, xc_scenario, 0, 2)

/* ====================================================================== */
/* stress: tasks on 2 workers + plain threads, count and checksum         */
/* ====================================================================== */

#define ST_TASKS 4

#define ST_THREADS 4 /* plain producer threads, besides the tasks on 2 workers */

#define ST_PROD (ST_TASKS + ST_THREADS)

typedef struct st {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx[ST_PROD];
    uint64_t per;
    uint64_t cap;
    bool rx_thread;
    atomic_int threads_started;
} st_t;

static void *st_consume(st_t *s)
{
    uint64_t next[ST_PROD] = {0}, total = 0, sum = 0, buf[16];
    for (;;) {
        long k = ursa_mpsc_recv_many(&s->rx, buf, (total & 1) ? 16 : 1, URSA_NEVER);
        if (k == -EPIPE)
            break;
        if (k < 1)
            return (void *)failf("recv_many: %ld", k);
        for (long j = 0; j < k; j++) {
            uint64_t id = buf[j] >> 40, seq = buf[j] & ((1ULL << 40) - 1);
            if (id >= ST_PROD || seq != next[id])
                return (void *)failf("order: producer %llu got %llu expected %llu",
                                     (unsigned long long)id, (unsigned long long)seq,
                                     (unsigned long long)(id < ST_PROD ? next[id] : 0));
            next[id]++;
            sum += mix(buf[j]);
        }
        total += (uint64_t)k;
    }
    uint64_t want = stress_want(ST_PROD, s->per);
    CHECK_EQ(total, ST_PROD * s->per);
    CHECK(sum == want);
    return NULL;
}

static void *st_rx_thread(void *arg)
{
    return st_consume(arg);
}

static void *st_root(void *arg)
{
    st_t *s = arg;
    static stress_producer_t args[ST_PROD];
    ursa_task_t *t[ST_TASKS];
    pthread_t th[ST_THREADS + 1], rxth;
    for (uint64_t i = 0; i < ST_PROD; i++)
        args[i] = (stress_producer_t){&s->tx[i], i, s->per, s->cap, false};
    for (int i = 0; i < ST_TASKS; i++)
        t[i] = spawn_on(i % 2, stress_producer, &args[i], "prod");
    for (int i = 0; i < ST_THREADS; i++)
        if (pthread_create(&th[i], NULL, stress_producer, &args[ST_TASKS + i]))
            return (void *)"pthread_create";
    void *res = NULL;
    if (s->rx_thread) {
        if (pthread_create(&rxth, NULL, st_rx_thread, s))
            return (void *)"pthread_create";
    } else {
        res = st_consume(s);
    }
    void *tres = join_tasks(t, ST_TASKS);
    if (s->rx_thread)
        pthread_join(rxth, &res); /* the tasks are done: blocking the worker is fine */
    void *thres = join_threads(th, ST_THREADS);
    return res ? res : tres ? tres : thres;
}

static void run_stress(uint64_t cap, bool rx_thread, long per)
{
    static st_t s;
    memset(&s, 0, sizeof s);
    s.per = (uint64_t)test_scale(per);
    s.cap = cap;
    s.rx_thread = rx_thread;
    assert_int_equal(new_with_senders(&s.rx, s.tx, ST_PROD, 8, cap, NULL), 0);
    ASSERT_OK(test_run(2, st_root, &s));
    assert_int_equal(ursa_mpsc_receiver_drop(&s.rx), 0);
}

static void test_mpsc_bounded_delivers_every_message_once_in_order_on_threads(void **state)
{
    (void)state;
    run_stress(1, false, 3000);
    run_stress(8, false, 20000);
    run_stress(1024, true, 20000);
}

static void test_mpsc_unbounded_delivers_every_message_once_in_order_on_threads(void **state)
{
    (void)state;
    run_stress(0, false, 20000);
    run_stress(0, true, 20000);
}

/* Close races: producers keep sending while the receiver closes; every
 * message sent successfully is received, the rest fail with -EPIPE. */
typedef struct cr {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx[4];
    atomic_ullong sent_ok;
} cr_t;

typedef struct cr_arg {
    cr_t *c;
    int id;
    int mode; /* 0: reserve + permit_send; 1: plain send; 2: both, alternating */
} cr_arg_t;

static void *cr_producer(void *arg)
{
    cr_arg_t *a = arg;
    for (uint64_t i = 0;; i++) {
        if (a->mode == 1 || (a->mode == 2 && (i + (uint64_t)a->id) % 2)) {
            /* Plain sends are not counted as permits (unbounded: sealed in
             * tail; bounded: end of stream from an idle semaphore). */
            int rc = ursa_mpsc_send(&a->c->tx[a->id], &i, URSA_NEVER);
            if (rc == -EPIPE)
                break;
            if (rc)
                return (void *)failf("send %d", rc);
            atomic_fetch_add(&a->c->sent_ok, 1);
            if (i % 7 == 0)
                ursa_yield();
            continue;
        }
        bool closed;
        const char *err = reserve_then_send(&a->c->tx[a->id], i, &closed);
        if (err)
            return (void *)err;
        if (closed)
            break;
        atomic_fetch_add(&a->c->sent_ok, 1);
    }
    ursa_mpsc_sender_drop(&a->c->tx[a->id]);
    return NULL;
}

static int cr_mode;

static void *cr_root(void *arg)
{
    cr_t *c = arg;
    static cr_arg_t args[4];
    ursa_task_t *t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (cr_arg_t){c, i, cr_mode};
        t[i] = spawn_on(i % 2, cr_producer, &args[i], "cr");
    }
    uint64_t got = 0, v;
    long stop_after = test_scale(2000);
    int rc;
    while ((rc = ursa_mpsc_recv(&c->rx, &v, URSA_NEVER)) == 0) {
        if (++got == (uint64_t)stop_after)
            ursa_mpsc_close(&c->rx);
    }
    CHECK_EQ(rc, -EPIPE);
    CHECK_OK(join_tasks(t, 4));
    CHECK_EQ(got, atomic_load(&c->sent_ok));
    return NULL;
}

static void test_mpsc_close_racing_producers_delivers_every_sent_message(void **state)
{
    (void)state;
    static cr_t c;
    for (cr_mode = 0; cr_mode < 3; cr_mode++) {
        for (uint64_t cap = 0; cap <= 4; cap += 4) {
            memset(&c, 0, sizeof c);
            assert_int_equal(new_with_senders(&c.rx, c.tx, 4, 8, cap, NULL), 0);
            ASSERT_OK(test_run(2, cr_root, &c));
            assert_int_equal(ursa_mpsc_receiver_drop(&c.rx), 0);
        }
    }
}

/* ====================================================================== */
/* a sender stalled inside its copy                                       */
/* ====================================================================== */

/* Regression (review): a receiver that found a slot claimed but not yet
 * published waited for it however long it took, ignoring its deadline;
 * the raw start even blocked. A sender is held inside its copy (a page
 * fault the test resolves) while the receiver waits with a deadline. */
typedef struct stall {
    ursa_mpsc_sender_t tx;
    unsigned char *src;
} stall_t;

static void *stalled_sender(void *arg)
{
    stall_t *st = arg;
    return ursa_mpsc_send(&st->tx, st->src, URSA_NEVER) ? (void *)"send" : NULL;
}

static void nop_waker(void *ctx)
{
    (void)ctx;
}

static void test_mpsc_recv_deadline_holds_with_a_sender_stalled_mid_copy(void **state)
{
    (void)state;
    uffd_hold_t hold = {0};
    if (!uffd_hold_open(&hold))
        skip();
    for (uint64_t cap = 0; cap <= 4; cap += 4) {
        ursa_mpsc_receiver_t rx;
        stall_t st = {.src = hold.page};
        assert_int_equal(ursa_mpsc_new(&rx, &st.tx, 8, cap, NULL), 0);
        pthread_t s;
        assert_int_equal(pthread_create(&s, NULL, stalled_sender, &st), 0);
        uffd_hold_wait_fault(&hold); /* claimed, inside its copy */
        uint64_t v;
        /* The sender stays stalled until the test releases it below: a
         * receive that waited for it would never return. */
        assert_int_equal(ursa_mpsc_recv(&rx, &v, ursa_deadline_in(URSA_MSEC(20))), -ETIMEDOUT);
        ursa_wait_t w;
        int rc = ursa_mpsc_recv_start(&rx, &w, (ursa_waker_t){nop_waker, NULL});
        if (rc == 0)
            assert_int_equal(ursa_mpsc_recv_finish(&rx, &w, &v), -EAGAIN);
        else
            assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
        uffd_hold_release(&hold, 7); /* the sender publishes */
        void *res;
        assert_int_equal(pthread_join(s, &res), 0);
        assert_null(res);
        assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NEVER), 0);
        assert_int_equal(v, 0x0707070707070707ull);
        assert_int_equal(ursa_mpsc_sender_drop(&st.tx), 0);
        assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NEVER), -EPIPE);
        assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
        /* a fresh page for the next round: the filled one no longer faults */
        uffd_hold_close(&hold);
        if (cap == 0)
            assert_true(uffd_hold_open(&hold));
    }
}

TEST_MAIN(cmocka_unit_test(test_mpsc_keeps_each_producers_order_over_seeds),
          cmocka_unit_test(test_mpsc_close_racing_plain_sends_loses_no_message_over_seeds),
          cmocka_unit_test(test_mpsc_bounded_delivers_every_message_once_in_order_on_threads),
          cmocka_unit_test(test_mpsc_unbounded_delivers_every_message_once_in_order_on_threads),
          cmocka_unit_test(test_mpsc_close_racing_producers_delivers_every_sent_message),
          cmocka_unit_test(test_mpsc_recv_deadline_holds_with_a_sender_stalled_mid_copy))
