/* The pool's acquire cancelled (or timed out) at every stage leaks
 * nothing: while queued, while a create for it is in flight, and in the
 * instant the item is handed over; in deterministic mode over many seeds,
 * and raced from threads. */
#include "support.h"

#include "task_checks.h"
#include "pool_fixture.h"
#include "raw_waker.h"

typedef struct waiter {
    ursa_pool_t *pool;
    ursa_time_t deadline;
    ursa_time_t hold; /* how long to keep the item if it gets one */
    atomic_int rc;    /* its acquire's result (1 until it returns) */
} waiter_t;

static void waiter_init(waiter_t *w, ursa_pool_t *p, ursa_time_t deadline)
{
    w->pool = p;
    w->deadline = deadline;
    w->hold = 0;
    atomic_init(&w->rc, 1);
}

/* Acquires, keeps the item `hold` long, returns it; 0 held afterwards. */
static void *waiter_body(void *arg)
{
    waiter_t *w = arg;
    ursa_pool_item_t it = {0};
    int rc = ursa_pool_acquire(w->pool, &it, w->deadline);
    atomic_store(&w->rc, rc);
    if (rc == 0) {
        CHECK_OK(hold_res(&it));
        if (w->hold)
            (void)ursa_sleep_for(w->hold);
        unhold_res(&it);
        CHECK_EQ(ursa_pool_return(w->pool, &it), 0);
    }
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

static void *join_ok(ursa_task_t *t)
{
    void *r = NULL;
    CHECK_EQ(ursa_task_join(t, &r, URSA_NEVER), 0);
    return r;
}

/* ---- queued ---- */

static void *cancel_queued_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool_warm(&f, 1, 1);
    CHECK(p != NULL);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    waiter_t timed, cancelled, last;
    waiter_init(&timed, p, ursa_deadline_in(URSA_MSEC(5)));
    waiter_init(&cancelled, p, URSA_NEVER);
    waiter_init(&last, p, URSA_NEVER);
    ursa_task_t *t1, *t2, *t3;
    CHECK_EQ(ursa_spawn(&t1, waiter_body, &timed, NULL), 0);
    CHECK_EQ(ursa_spawn(&t2, waiter_body, &cancelled, NULL), 0);
    while (pstats(p).waiters < 2)
        (void)ursa_yield();
    CHECK_EQ(ursa_spawn(&t3, waiter_body, &last, NULL), 0);
    while (pstats(p).waiters < 3)
        (void)ursa_yield();
    CHECK_EQ(ursa_task_cancel(t2), 0);
    CHECK_OK(join_ok(t2));
    CHECK_EQ(atomic_load(&cancelled.rc), -ECANCELED);
    CHECK_OK(join_ok(t1));
    CHECK_EQ(atomic_load(&timed.rc), -ETIMEDOUT);
    CHECK_EQ(pstats(p).waiters, 1);
    CHECK_EQ(ursa_pool_return(p, &it), 0); /* to the one still queued */
    CHECK_OK(join_ok(t3));
    CHECK_EQ(atomic_load(&last.rc), 0);
    ursa_pool_stats_t s = pstats(p);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(s.waiters, 0);
    CHECK_EQ(s.timeouts, 1);
    CHECK_EQ(s.acquires, 2);
    CHECK_EQ(atomic_load(&f.create_calls), 1); /* the pool was full: no create */
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_acquire_cancelled_while_queued_leaks_nothing_over_seeds,
             cancel_queued_body, NULL)

/* ---- a create in flight ---- */

static void *cancel_create_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    f.create_delay = URSA_MSEC(50);
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    ursa_pool_t *p;
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    waiter_t a, b;
    waiter_init(&a, p, ursa_deadline_in(URSA_MSEC(10))); /* gives up first */
    waiter_init(&b, p, URSA_NEVER);
    ursa_task_t *ta, *tb;
    CHECK_EQ(ursa_spawn(&ta, waiter_body, &a, NULL), 0);
    while (pstats(p).creating < 1)
        (void)ursa_yield();
    CHECK_OK(join_ok(ta));
    CHECK_EQ(atomic_load(&a.rc), -ETIMEDOUT);
    CHECK_EQ(pstats(p).creating, 1); /* not cancelled with it */
    /* A second acquire while it is in flight waits for that create... */
    CHECK_EQ(ursa_spawn(&tb, waiter_body, &b, NULL), 0);
    CHECK_OK(join_ok(tb));
    CHECK_EQ(atomic_load(&b.rc), 0);
    CHECK_EQ(atomic_load(&f.create_calls), 1); /* ...and starts none */
    /* The one cancelled with nobody after it goes idle. */
    waiter_t d;
    waiter_init(&d, p, URSA_NEVER);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    ursa_task_t *td;
    CHECK_EQ(ursa_spawn(&td, waiter_body, &d, NULL), 0);
    while (pstats(p).creating < 1)
        (void)ursa_yield();
    CHECK_EQ(ursa_task_cancel(td), 0);
    CHECK_OK(join_ok(td));
    CHECK_EQ(atomic_load(&d.rc), -ECANCELED);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(100)), 0);
    ursa_pool_stats_t s = pstats(p);
    CHECK_EQ(s.size, 2);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(s.creates, 2);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(pstats(p).idle, 2);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_cancel_with_a_create_in_flight_passes_the_item_on_over_seeds,
             cancel_create_body, NULL)

/* ---- handed over in the same instant ---- */

typedef struct instant {
    ursa_pool_t *pool;
    ursa_pool_item_t item;
    ursa_time_t at;
    ursa_task_t *victim; /* cancelled at `at` when set */
} instant_t;

static void *return_at(void *arg)
{
    instant_t *in = arg;
    CHECK_EQ(ursa_sleep_until(in->at), 0);
    CHECK_EQ(ursa_pool_return(in->pool, &in->item), 0);
    return NULL;
}

static void *cancel_at(void *arg)
{
    instant_t *in = arg;
    CHECK_EQ(ursa_sleep_until(in->at), 0);
    CHECK_EQ(ursa_task_cancel(in->victim), 0);
    return NULL;
}

/* The holder returns the item in the same instant as the waiter's
 * deadline passes (by_cancel: as it is cancelled). Whatever the order
 * the seed picks, the waiter gets it (and returns it) or not, and the
 * item ends idle. */
static void *instant_body(void *arg)
{
    bool by_cancel = arg != NULL;
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 1, 0);
    instant_t in = {0};
    CHECK_EQ(ursa_pool_new(&in.pool, &c), 0);
    CHECK_EQ(ursa_pool_acquire(in.pool, &in.item, URSA_NEVER), 0);
    CHECK_EQ(ursa_oblig_disown(&in.item.ob), 0); /* the returner's now */
    in.at = ursa_deadline_in(URSA_MSEC(5));
    waiter_t w;
    waiter_init(&w, in.pool, by_cancel ? URSA_NEVER : in.at);
    ursa_task_t *tw, *tr, *tc = NULL;
    CHECK_EQ(ursa_spawn(&tw, waiter_body, &w, NULL), 0);
    while (pstats(in.pool).waiters < 1)
        (void)ursa_yield();
    in.victim = tw;
    CHECK_EQ(ursa_spawn(&tr, return_at, &in, NULL), 0);
    if (by_cancel)
        CHECK_EQ(ursa_spawn(&tc, cancel_at, &in, NULL), 0);
    CHECK_OK(join_ok(tr));
    if (tc)
        CHECK_OK(join_ok(tc));
    CHECK_OK(join_ok(tw));
    int rc = atomic_load(&w.rc);
    CHECK(rc == 0 || rc == (by_cancel ? -ECANCELED : -ETIMEDOUT));
    ursa_pool_stats_t s = pstats(in.pool);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.waiters, 0);
    CHECK_EQ(s.acquires, rc == 0 ? 2 : 1);
    CHECK_EQ(atomic_load(&f.create_calls), 1);
    CHECK_OK(fac_finish(&f, in.pool));
    return NULL;
}

TEST_EXPLORE(test_pool_handover_racing_a_deadline_loses_nothing_over_seeds, instant_body, NULL)

TEST_EXPLORE(test_pool_handover_racing_a_cancel_loses_nothing_over_seeds, instant_body, (void *)1)

/* ---- raced from threads ---- */

/* Threads start raw waits and cancel them at once, or finish them, while
 * tasks acquire and return: nothing is held twice, nothing is lost. */
typedef struct raw_race {
    ursa_pool_t *pool;
    atomic_int stop;
    _Atomic(const char *) msg; /* the first failure of either thread */
    atomic_long got, cancelled; /* shared by both threads */
} raw_race_t;

static void *raw_failed(raw_race_t *r, const char *msg)
{
    const char *none = NULL;
    atomic_compare_exchange_strong(&r->msg, &none, msg);
    return NULL;
}

static void *raw_racer(void *arg)
{
    raw_race_t *r = arg;
    rwaker_t rw;
    atomic_init(&rw.count, 0);
    atomic_init(&rw.tid, 0);
    rw.efd = -1;
    for (long i = 0; !atomic_load(&r->stop); i++) {
        ursa_wait_t w;
        int rc = ursa_pool_acquire_start(r->pool, &w, rwaker(&rw));
        if (rc != 0 && rc != -EINPROGRESS)
            return raw_failed(r, failf("start: %s", ursa_strerror(rc)));
        if (i % 2 && rc == -EINPROGRESS) { /* give up, granted or not */
            (void)ursa_wait_cancel(&w);
            atomic_fetch_add(&r->cancelled, 1);
            continue;
        }
        while (!ursa_wait_ready(&w))
            sched_yield();
        ursa_pool_item_t it = {0};
        if ((rc = ursa_pool_acquire_finish(r->pool, &w, &it)))
            return raw_failed(r, failf("finish: %s", ursa_strerror(rc)));
        const char *twice = hold_res(&it);
        if (twice)
            return raw_failed(r, twice);
        unhold_res(&it);
        (void)ursa_pool_return(r->pool, &it);
        atomic_fetch_add(&r->got, 1);
    }
    return NULL;
}

static void *task_user(void *arg)
{
    raw_race_t *r = arg;
    /* Until the plain threads got some grants too: on one CPU the tasks
     * may otherwise be done before a racer's first look. */
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    for (long i = 0; i < test_scale(3000) || (!atomic_load(&r->got) && mono_ns() < give_up);
         i++) {
        ursa_pool_item_t it = {0};
        int rc = ursa_pool_acquire(r->pool, &it, ursa_deadline_in(URSA_USEC(i % 50)));
        if (rc == -ETIMEDOUT)
            continue;
        CHECK_EQ(rc, 0);
        CHECK_OK(hold_res(&it));
        unhold_res(&it);
        CHECK_EQ(ursa_pool_return(r->pool, &it), 0);
    }
    return NULL;
}

static void test_pool_raw_cancel_racing_grants_on_threads_loses_nothing(void **state)
{
    (void)state;
    host_t h;
    fac_t f;
    ursa_pool_config_t c = host_pool_config(&h, 2, &f, 2, 2);
    raw_race_t r = {0};
    assert_int_equal(ursa_pool_new(&r.pool, &c), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, raw_racer, &r), 0);
    ursa_task_t *t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            ursa_rt_spawn(h.rt, &t[i], task_user, &r, &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        assert_int_equal(ursa_task_join(t[i], &res, URSA_NEVER), 0);
        ASSERT_OK(res);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ASSERT_OK(atomic_load(&r.msg));
    assert_true(atomic_load(&r.got) > 0);
    assert_true(atomic_load(&f.max_live) <= 2);
    ASSERT_OK(fac_finish(&f, r.pool));
    host_stop(&h);
}

TEST_MAIN(cmocka_unit_test(test_pool_acquire_cancelled_while_queued_leaks_nothing_over_seeds),
          cmocka_unit_test(test_pool_cancel_with_a_create_in_flight_passes_the_item_on_over_seeds),
          cmocka_unit_test(test_pool_handover_racing_a_deadline_loses_nothing_over_seeds),
          cmocka_unit_test(test_pool_handover_racing_a_cancel_loses_nothing_over_seeds),
          cmocka_unit_test(test_pool_raw_cancel_racing_grants_on_threads_loses_nothing))
