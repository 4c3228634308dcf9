/* mpmc with many producers and receivers: with cancels over seeds; tasks
 * and plain threads on both sides (count, order, checksum); receivers
 * asleep never miss a message (also with a publish held out of order by a
 * page fault); close racing producers. */
#include "support.h"

#include <ursa/mpmc.h>

#include "task_checks.h"

#define CHAN mpmc
#include "mpxc_checks.h"
#include "uffd_hold.h"

/* new_with_senders with ntx senders, then nrx receivers: rx[0] and nrx - 1
 * clones. 0, or the first call's error. */
static int new_with_handles(ursa_mpmc_receiver_t *rx, int nrx, ursa_mpmc_sender_t *tx, int ntx,
                            size_t esz, uint64_t cap)
{
    int rc = new_with_senders(&rx[0], tx, ntx, esz, cap, NULL);
    for (int i = 1; i < nrx && rc == 0; i++)
        rc = ursa_mpmc_receiver_clone(&rx[0], &rx[i]);
    return rc;
}

/* ====================================================================== */
/* deterministic exploration: producers x receivers, with cancels         */
/* ====================================================================== */

#define EX_PROD 3

#define EX_RECV 3

#define EX_PER 6

typedef struct ex {
    ursa_mpmc_sender_t tx[EX_PROD];
    ursa_mpmc_receiver_t rx[EX_RECV];
    uint64_t cap;
    int seen[EX_PROD][EX_PER];
} ex_t;

typedef struct ex_arg {
    ex_t *e;
    uint64_t id;
} ex_arg_t;

static void *ex_producer(void *arg)
{
    ex_arg_t *a = arg;
    ursa_mpmc_sender_t *tx = &a->e->tx[a->id];
    for (uint64_t i = 0; i < EX_PER; i++) {
        uint64_t v = a->id << 32 | i;
        if (i % 3 == 1) {
            ursa_mpmc_permit_t p = {0};
            URSA_SIM_CHECK(ursa_mpmc_reserve(tx, &p, URSA_NEVER) == 0);
            ursa_yield();
            URSA_SIM_CHECK(ursa_mpmc_permit_send(&p, &v) == 0);
        } else if (i % 3 == 2) {
            /* short deadlines: a reserve that times out gives its place up */
            int rc;
            while ((rc = ursa_mpmc_send(tx, &v, ursa_deadline_in(URSA_USEC(5)))) == -ETIMEDOUT)
                ursa_yield();
            URSA_SIM_CHECK(rc == 0);
        } else {
            URSA_SIM_CHECK(ursa_mpmc_send(tx, &v, URSA_NEVER) == 0);
        }
    }
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(tx) == 0);
    return NULL;
}

static const char *ex_take(ex_t *e, uint64_t v, uint64_t *last)
{
    uint64_t id = v >> 32, seq = v & 0xffffffff;
    if (id >= EX_PROD || seq >= EX_PER)
        return failf("bad message %llx", (unsigned long long)v);
    if (e->seen[id][seq]++)
        return failf("duplicate %llx", (unsigned long long)v);
    if (last[id] != UINT64_MAX && seq <= last[id])
        return failf("producer %llu out of order", (unsigned long long)id);
    last[id] = seq;
    return NULL;
}

/* Receiver 0: recv with short deadlines; 1: recv_many; 2: recv, and gets
 * cancelled by the root at some point. */
static void *ex_receiver(void *arg)
{
    ex_arg_t *a = arg;
    ex_t *e = a->e;
    uint64_t last[EX_PROD], buf[4];
    for (int i = 0; i < EX_PROD; i++)
        last[i] = UINT64_MAX;
    for (;;) {
        long k;
        if (a->id == 1) {
            k = ursa_mpmc_recv_many(&e->rx[1], buf, 4, URSA_NEVER);
        } else {
            ursa_time_t dl = a->id == 0 ? ursa_deadline_in(URSA_USEC(7)) : URSA_NEVER;
            int rc = ursa_mpmc_recv(&e->rx[a->id], buf, dl);
            k = rc == 0 ? 1 : rc;
        }
        if (k == -ETIMEDOUT)
            continue;
        if (k == -ECANCELED && a->id == 2)
            return NULL;
        if (k == -EPIPE)
            return NULL;
        URSA_SIM_CHECK(k >= 1);
        for (long j = 0; j < k; j++)
            CHECK_OK(ex_take(e, buf[j], last));
    }
}

static void *ex_scenario(void *arg)
{
    static ex_t e;
    static ex_arg_t pa[EX_PROD], ra[EX_RECV];
    memset(&e, 0, sizeof e);
    e.cap = (uint64_t)(uintptr_t)arg;
    URSA_SIM_CHECK(new_with_handles(e.rx, EX_RECV, e.tx, EX_PROD, 8, e.cap) == 0);
    ursa_task_t *rt[EX_RECV], *pt[EX_PROD];
    for (int i = 0; i < EX_RECV; i++) {
        ra[i] = (ex_arg_t){&e, (uint64_t)i};
        rt[i] = spawn_on(0, ex_receiver, &ra[i], "rx");
    }
    for (int i = 0; i < EX_PROD; i++) {
        pa[i] = (ex_arg_t){&e, (uint64_t)i};
        pt[i] = spawn_on(0, ex_producer, &pa[i], "tx");
    }
    yield_n(4);
    URSA_SIM_CHECK(ursa_task_cancel(rt[2]) == 0);
    CHECK_OK(join_tasks(pt, EX_PROD));
    CHECK_OK(join_tasks(rt, EX_RECV));
    for (int p = 0; p < EX_PROD; p++)
        for (int i = 0; i < EX_PER; i++)
            URSA_SIM_CHECK(e.seen[p][i] == 1);
    for (int i = 0; i < EX_RECV; i++)
        URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&e.rx[i]) == 0);
    return NULL;
}

TEST_EXPLORE_EACH(test_mpmc_producers_and_receivers_with_cancels_lose_nothing_over_seeds,
                  ex_scenario, 1, 2, 5)

/* ====================================================================== */
/* stress: producer threads and tasks, receiver threads and tasks         */
/* ====================================================================== */

#define ST_PTHREADS 4

#define ST_PTASKS 2

#define ST_RTHREADS 3

#define ST_RTASKS 2

#define ST_PROD (ST_PTHREADS + ST_PTASKS)

#define ST_RECV (ST_RTHREADS + ST_RTASKS)

typedef struct st {
    ursa_mpmc_sender_t tx[ST_PROD];
    ursa_mpmc_receiver_t rx[ST_RECV];
    uint64_t per, cap;
    atomic_ullong total, sum;
} st_t;

typedef struct st_arg {
    st_t *s;
    uint64_t id;
} st_arg_t;

static void *st_consumer(void *arg)
{
    st_arg_t *a = arg;
    st_t *s = a->s;
    ursa_mpmc_receiver_t *rx = &s->rx[a->id];
    uint64_t last[ST_PROD], total = 0, sum = 0, buf[16];
    for (int i = 0; i < ST_PROD; i++)
        last[i] = UINT64_MAX;
    for (uint64_t round = 0;; round++) {
        long k;
        switch (round % 4) {
        case 0:
            k = ursa_mpmc_recv_many(rx, buf, 16, URSA_NEVER);
            break;
        case 1: {
            int rc = ursa_mpmc_recv(rx, buf, ursa_deadline_in(URSA_USEC(50)));
            k = rc == 0 ? 1 : rc;
            break;
        }
        case 2: {
            int rc = ursa_mpmc_try_recv(rx, buf);
            k = rc == 0 ? 1 : rc;
            break;
        }
        default: {
            int rc = ursa_mpmc_recv(rx, buf, URSA_NEVER);
            k = rc == 0 ? 1 : rc;
        }
        }
        if (k == -EPIPE)
            break;
        if (k == -EAGAIN || k == -ETIMEDOUT)
            continue;
        if (k < 1)
            return (void *)failf("recv: %ld", k);
        for (long j = 0; j < k; j++) {
            uint64_t id = buf[j] >> 40, seq = buf[j] & ((1ULL << 40) - 1);
            if (id >= ST_PROD || (last[id] != UINT64_MAX && seq <= last[id]))
                return (void *)failf("order: producer %llu got %llu after %llu",
                                     (unsigned long long)id, (unsigned long long)seq,
                                     (unsigned long long)(id < ST_PROD ? last[id] : 0));
            last[id] = seq;
            sum += mix(buf[j]);
        }
        total += (uint64_t)k;
    }
    atomic_fetch_add(&s->total, total);
    atomic_fetch_add(&s->sum, sum);
    return NULL;
}

static void *st_root(void *arg)
{
    st_t *s = arg;
    static stress_producer_t pa[ST_PROD];
    static st_arg_t ra[ST_RECV];
    ursa_task_t *pt[ST_PTASKS], *rt[ST_RTASKS];
    pthread_t pth[ST_PTHREADS], rth[ST_RTHREADS];
    for (uint64_t i = 0; i < ST_PROD; i++)
        pa[i] = (stress_producer_t){&s->tx[i], i, s->per, s->cap, true};
    for (uint64_t i = 0; i < ST_RECV; i++)
        ra[i] = (st_arg_t){s, i};
    for (int i = 0; i < ST_RTASKS; i++)
        rt[i] = spawn_on(i % 2, st_consumer, &ra[ST_RTHREADS + i], "cons");
    for (int i = 0; i < ST_PTASKS; i++)
        pt[i] = spawn_on(i % 2, stress_producer, &pa[ST_PTHREADS + i], "prod");
    for (int i = 0; i < ST_RTHREADS; i++)
        if (pthread_create(&rth[i], NULL, st_consumer, &ra[i]))
            return (void *)"pthread_create";
    for (int i = 0; i < ST_PTHREADS; i++)
        if (pthread_create(&pth[i], NULL, stress_producer, &pa[i]))
            return (void *)"pthread_create";
    void *res = join_tasks(pt, ST_PTASKS);
    /* receiver tasks end at -EPIPE, i.e. after every producer thread */
    void *rres = join_tasks(rt, ST_RTASKS);
    void *pthres = join_threads(pth, ST_PTHREADS);
    void *rthres = join_threads(rth, ST_RTHREADS);
    return res ? res : rres ? rres : pthres ? pthres : rthres;
}

static void run_stress(uint64_t cap, long per)
{
    static st_t s;
    memset(&s, 0, sizeof s);
    s.per = (uint64_t)test_scale(per);
    s.cap = cap;
    assert_int_equal(new_with_handles(s.rx, ST_RECV, s.tx, ST_PROD, 8, cap), 0);
    ASSERT_OK(test_run(2, st_root, &s));
    uint64_t want = stress_want(ST_PROD, s.per);
    assert_int_equal(atomic_load(&s.total), ST_PROD * s.per);
    assert_true(atomic_load(&s.sum) == want);
    for (int i = 0; i < ST_RECV; i++)
        assert_int_equal(ursa_mpmc_receiver_drop(&s.rx[i]), 0);
}

static void test_mpmc_delivers_every_message_once_in_order_on_threads(void **state)
{
    (void)state;
    run_stress(1, 3000);
    run_stress(8, 10000);
    run_stress(1024, 10000);
}

/* ====================================================================== */
/* no lost wake                                                           */
/* ====================================================================== */

/* No lost wake: receiver threads sleep on an empty channel, then producer
 * threads send one message each at the same moment (positions published
 * out of order). Each receiver takes one message per round and then waits
 * for the round to end, so a message left sitting while a receiver sleeps
 * (a wake lost on the way) shows as a round that never completes. */
#define LW_N 4

typedef struct lw {
    ursa_mpmc_sender_t tx[LW_N];
    ursa_mpmc_receiver_t rx[LW_N];
    pthread_barrier_t go, done;
    atomic_long got;
    long rounds;
    size_t esz; /* big elements: a long copy between claim and publish */
    unsigned char *in[LW_N], *out[LW_N];
} lw_t;

typedef struct lw_arg {
    lw_t *l;
    int id;
} lw_arg_t;

static void *lw_receiver(void *arg)
{
    lw_arg_t *a = arg;
    for (long r = 0; r < a->l->rounds; r++) {
        pthread_barrier_wait(&a->l->go);
        int rc = ursa_mpmc_recv(&a->l->rx[a->id], a->l->out[a->id], URSA_NEVER);
        if (rc)
            return (void *)failf("recv %d", rc);
        atomic_fetch_add(&a->l->got, 1);
        pthread_barrier_wait(&a->l->done);
    }
    return NULL;
}

static void *lw_producer(void *arg)
{
    lw_arg_t *a = arg;
    for (long r = 0; r < a->l->rounds; r++) {
        pthread_barrier_wait(&a->l->go);
        if (r % 4 == 0)
            sleep_real_ms(1); /* let the receivers fall asleep first */
        memcpy(a->l->in[a->id], &r, sizeof r);
        if (ursa_mpmc_send(&a->l->tx[a->id], a->l->in[a->id], URSA_NEVER))
            return (void *)"send";
        pthread_barrier_wait(&a->l->done);
    }
    (void)ursa_mpmc_sender_drop(&a->l->tx[a->id]);
    return NULL;
}

static void test_mpmc_receivers_asleep_never_miss_a_message_on_threads(void **state)
{
    (void)state;
    for (int run = 0; run < 3; run++) {
        uint64_t cap = run == 1 ? 8 : 4;
        static lw_t l;
        static lw_arg_t ra[LW_N], pa[LW_N];
        memset(&l, 0, sizeof l);
        l.rounds = test_scale(run == 2 ? 200 : 400);
        l.esz = run == 2 ? 256 * 1024 : 8;
        for (int i = 0; i < LW_N; i++) {
            l.in[i] = calloc(1, l.esz);
            l.out[i] = calloc(1, l.esz);
            assert_non_null(l.in[i]);
            assert_non_null(l.out[i]);
        }
        assert_int_equal(pthread_barrier_init(&l.go, NULL, 2 * LW_N + 1), 0);
        assert_int_equal(pthread_barrier_init(&l.done, NULL, 2 * LW_N + 1), 0);
        assert_int_equal(new_with_handles(l.rx, LW_N, l.tx, LW_N, l.esz, cap), 0);
        pthread_t rth[LW_N], pth[LW_N];
        for (int i = 0; i < LW_N; i++) {
            ra[i] = (lw_arg_t){&l, i};
            pa[i] = (lw_arg_t){&l, i};
            assert_int_equal(pthread_create(&rth[i], NULL, lw_receiver, &ra[i]), 0);
            assert_int_equal(pthread_create(&pth[i], NULL, lw_producer, &pa[i]), 0);
        }
        for (long r = 0; r < l.rounds; r++) {
            pthread_barrier_wait(&l.go);
            ursa_time_t give_up = mono_ns() + test_hang_guard();
            while (atomic_load(&l.got) < (r + 1) * LW_N) {
                if (mono_ns() > give_up)
                    fail_msg("round %ld: %ld of %ld messages taken, the rest sit in the queue",
                             r, atomic_load(&l.got), (r + 1) * LW_N);
                sched_yield();
            }
            pthread_barrier_wait(&l.done);
        }
        for (int i = 0; i < LW_N; i++) {
            void *res;
            assert_int_equal(pthread_join(pth[i], &res), 0);
            ASSERT_OK(res);
            assert_int_equal(pthread_join(rth[i], &res), 0);
            ASSERT_OK(res);
        }
        for (int i = 0; i < LW_N; i++) {
            assert_int_equal(ursa_mpmc_try_recv(&l.rx[i], l.out[i]), -EPIPE);
            assert_int_equal(ursa_mpmc_receiver_drop(&l.rx[i]), 0);
            free(l.in[i]);
            free(l.out[i]);
        }
        pthread_barrier_destroy(&l.go);
        pthread_barrier_destroy(&l.done);
    }
}

/* The same, made deterministic: a sender is held between its claim of
 * position p and its publication by a page fault (userfaultfd on the
 * value it copies), while position p+1 is published. The wake of p+1 goes
 * to receiver R1, which finds p unpublished and sleeps again (behind R2).
 * When p is published its wake goes to R2; R1 must then be woken for p+1
 * by R2's claim (the chain wake), or p+1 sits while R1 sleeps. */
typedef struct uf {
    ursa_mpmc_sender_t tx[2];
    ursa_mpmc_receiver_t rx[2];
    atomic_int started[2], got[2];
    unsigned char *page;
    int rc[2];
} uf_t;

typedef struct uf_arg {
    uf_t *u;
    int id;
} uf_arg_t;

static void *uf_receiver(void *arg)
{
    uf_arg_t *a = arg;
    uint64_t v;
    atomic_store(&a->u->started[a->id], 1);
    a->u->rc[a->id] = ursa_mpmc_recv(&a->u->rx[a->id], &v, URSA_NEVER);
    if (a->u->rc[a->id] == 0)
        atomic_store(&a->u->got[a->id], 1);
    return NULL;
}

static void *uf_stalled_sender(void *arg)
{
    uf_t *u = arg;
    /* the copy from u->page faults and waits for the test to resolve it */
    return ursa_mpmc_send(&u->tx[0], u->page, URSA_NEVER) ? (void *)"send" : NULL;
}

static void test_mpmc_publish_out_of_order_wakes_both_receivers(void **state)
{
    (void)state;
    uffd_hold_t hold = {0};
    if (!uffd_hold_open(&hold))
        skip();
    static uf_t u;
    static uf_arg_t ra[2];
    memset(&u, 0, sizeof u);
    u.page = hold.page;

    assert_int_equal(new_with_handles(u.rx, 2, u.tx, 2, 8, 4), 0);
    pthread_t r[2], s;
    for (int i = 0; i < 2; i++) { /* R1 queues first, then R2 */
        ra[i] = (uf_arg_t){&u, i};
        assert_int_equal(pthread_create(&r[i], NULL, uf_receiver, &ra[i]), 0);
        while (!atomic_load(&u.started[i]))
            sleep_real_ms(1);
        sleep_real_ms(20);
    }
    assert_int_equal(pthread_create(&s, NULL, uf_stalled_sender, &u), 0);
    uffd_hold_wait_fault(&hold); /* the sender is inside its copy */
    uint64_t v = 2;
    assert_int_equal(ursa_mpmc_send(&u.tx[1], &v, URSA_NOW), 0); /* p+1, published first */
    sleep_real_ms(50); /* R1 wakes, finds p unpublished, sleeps again */
    assert_int_equal(atomic_load(&u.got[0]) + atomic_load(&u.got[1]), 0);
    /* resolve the fault: the stalled sender publishes p */
    uffd_hold_release(&hold, 1);
    void *res;
    assert_int_equal(pthread_join(s, &res), 0);
    ASSERT_OK(res);
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    while (atomic_load(&u.got[0]) + atomic_load(&u.got[1]) < 2 && mono_ns() < give_up)
        sleep_real_ms(1);
    int got = atomic_load(&u.got[0]) + atomic_load(&u.got[1]);
    /* end the stream either way, so that the threads can be joined */
    assert_int_equal(ursa_mpmc_sender_drop(&u.tx[0]), 0);
    assert_int_equal(ursa_mpmc_sender_drop(&u.tx[1]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(r[i], &res), 0);
    assert_int_equal(got, 2); /* both taken while the stream was open */
    assert_int_equal(u.rc[0], 0);
    assert_int_equal(u.rc[1], 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ursa_mpmc_receiver_drop(&u.rx[i]), 0);
    uffd_hold_close(&hold);
}

/* ====================================================================== */
/* close racing producers                                                 */
/* ====================================================================== */

/* Close races: producers keep sending while a receiver closes; every
 * message sent successfully is received once, the rest fail with -EPIPE. */
typedef struct cr {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx[4];
    atomic_ullong sent_ok, got;
} cr_t;

typedef struct cr_arg {
    cr_t *c;
    int id;
} cr_arg_t;

static void *cr_producer(void *arg)
{
    cr_arg_t *a = arg;
    for (uint64_t i = 0;; i++) {
        bool closed;
        const char *err = reserve_then_send(&a->c->tx[a->id], i, &closed);
        if (err)
            return (void *)err;
        if (closed)
            break;
        atomic_fetch_add(&a->c->sent_ok, 1);
    }
    (void)ursa_mpmc_sender_drop(&a->c->tx[a->id]);
    return NULL;
}

static void *cr_consumer(void *arg)
{
    cr_arg_t *a = arg;
    uint64_t v;
    long stop_after = test_scale(2000);
    int rc;
    while ((rc = ursa_mpmc_recv(&a->c->rx[a->id], &v, URSA_NEVER)) == 0) {
        if (atomic_fetch_add(&a->c->got, 1) + 1 == (uint64_t)stop_after)
            (void)ursa_mpmc_close(&a->c->rx[a->id]);
    }
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static void *cr_root(void *arg)
{
    cr_t *c = arg;
    static cr_arg_t args[4], rargs[2];
    ursa_task_t *t[4], *r[2];
    for (int i = 0; i < 2; i++) {
        rargs[i] = (cr_arg_t){c, i};
        r[i] = spawn_on(i % 2, cr_consumer, &rargs[i], "crx");
    }
    for (int i = 0; i < 4; i++) {
        args[i] = (cr_arg_t){c, i};
        t[i] = spawn_on(i % 2, cr_producer, &args[i], "cr");
    }
    CHECK_OK(join_tasks(t, 4));
    CHECK_OK(join_tasks(r, 2));
    CHECK_EQ(atomic_load(&c->got), atomic_load(&c->sent_ok));
    return NULL;
}

static void test_mpmc_close_racing_producers_delivers_every_sent_message(void **state)
{
    (void)state;
    static cr_t c;
    for (uint64_t cap = 1; cap <= 4; cap += 3) {
        memset(&c, 0, sizeof c);
        assert_int_equal(new_with_handles(c.rx, 2, c.tx, 4, 8, cap), 0);
        ASSERT_OK(test_run(2, cr_root, &c));
        assert_int_equal(ursa_mpmc_receiver_drop(&c.rx[0]), 0);
        assert_int_equal(ursa_mpmc_receiver_drop(&c.rx[1]), 0);
    }
}

TEST_MAIN(cmocka_unit_test(test_mpmc_producers_and_receivers_with_cancels_lose_nothing_over_seeds),
          cmocka_unit_test(test_mpmc_delivers_every_message_once_in_order_on_threads),
          cmocka_unit_test(test_mpmc_receivers_asleep_never_miss_a_message_on_threads),
          cmocka_unit_test(test_mpmc_publish_out_of_order_wakes_both_receivers),
          cmocka_unit_test(test_mpmc_close_racing_producers_delivers_every_sent_message))
