/* Tests for the pool (include/ursa/pool.h, src/sync/pool/): bad input, the
 * acquire and its three calling contexts, the hold (return, broken,
 * detach, leaks), warm-up, close, drain and resize. Bodies return NULL or
 * a message (task_checks.h); deterministic scenarios run over many seeds. */
#include "support.h"

#include "task_checks.h"
#include "pool_fixture.h"
#include "raw_waker.h"

/* ---- bad input ---- */

static void *bad_config_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    ursa_pool_t *p = (ursa_pool_t *)1;
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    CHECK_EQ(ursa_pool_new(NULL, &c), -EINVAL);
    CHECK_EQ(ursa_pool_new(&p, NULL), -EINVAL);
    CHECK(p == NULL);
    c.factory.create = NULL;
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    c = fac_config(&f, 2, 0);
    c.factory.destroy = NULL;
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    c = fac_config(&f, 0, 0);
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    c = fac_config(&f, 2, 3);
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    c = fac_config(&f, 2, 0);
    c.idle_timeout = -1;
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    c = fac_config(&f, 2, 0);
    c.warmup = (ursa_pool_warmup_t)42;
    CHECK_EQ(ursa_pool_new(&p, &c), -EINVAL);
    CHECK_EQ(atomic_load(&f.create_calls), 0);

    c = fac_config(&f, 2, 0);
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(NULL, &it, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_pool_acquire(p, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_pool_resize(p, 0, 0), -EINVAL);
    CHECK_EQ(ursa_pool_resize(p, 2, 3), -EINVAL);
    CHECK_EQ(ursa_pool_resize(NULL, 2, 0), -EINVAL);
    CHECK_EQ(ursa_pool_return(NULL, &it), -EINVAL);
    CHECK_EQ(ursa_pool_return(p, NULL), -EINVAL);
    CHECK_EQ(ursa_pool_stats(p, NULL), -EINVAL);
    CHECK_EQ(ursa_pool_close(NULL), -EINVAL);
    CHECK_EQ(ursa_pool_drain(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_pool_free(NULL), -EINVAL);
    ursa_wait_t w;
    ursa_waker_t none = {NULL, NULL};
    CHECK_EQ(ursa_pool_acquire_start(p, &w, none), -EINVAL);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

static void test_pool_new_rejects_a_bad_config(void **state)
{
    (void)state;
    ASSERT_OK(test_run(1, bad_config_body, NULL));
    /* A plain thread without a runtime to give the pool. */
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    ursa_pool_t *p;
    assert_int_equal(ursa_pool_new(&p, &c), -EINVAL);
}

/* Returns that must fail and change nothing: twice, to the wrong pool,
 * from another task. */
static void *other_task_returns(void *arg)
{
    ursa_pool_item_t *it = arg;
    return (void *)(intptr_t)ursa_pool_return(it->pool, it);
}

static void *bad_returns_body(void *arg)
{
    (void)arg;
    fac_t f, g;
    fac_init(&f);
    fac_init(&g);
    ursa_pool_config_t c = fac_config(&f, 2, 0), d = fac_config(&g, 2, 0);
    ursa_pool_t *p, *q;
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    CHECK_EQ(ursa_pool_new(&q, &d), 0);
    ursa_pool_item_t it = {0}, twice = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NOW), -EINVAL); /* already holds */
    CHECK_EQ(ursa_pool_return(q, &it), -EINVAL);            /* the wrong pool */
    CHECK(it.pool == p && it.res);
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, other_task_returns, &it, NULL), 0);
    void *r;
    CHECK_EQ(ursa_task_join(t, &r, URSA_NEVER), 0);
    CHECK_EQ((intptr_t)r, -EPERM);
    CHECK_EQ(ursa_held_count(), 1);
    twice = it;
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(ursa_pool_return(p, &it), -EINVAL); /* a second return: reported */
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(ursa_pool_broken(p, &it), -EINVAL);
    CHECK_EQ(ursa_pool_detach(p, &it, NULL), -EINVAL);
    (void)twice;
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(pstats(p).idle, 1);
    CHECK_OK(fac_finish(&f, p));
    CHECK_OK(fac_finish(&g, q));
    return NULL;
}

static void test_pool_rejects_double_foreign_and_null_returns(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(test_run(1, bad_returns_body, NULL));
}

/* ---- acquire: the three calling contexts ---- */

static void *acquire_basics_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool(&f, 2, 0);
    CHECK(p);
    ursa_pool_item_t a = {0}, b = {0}, x = {0};
    CHECK_EQ(ursa_pool_acquire(p, &a, URSA_NOW), -EAGAIN); /* a try creates nothing now */
    CHECK_EQ(ursa_pool_acquire(p, &a, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_acquire(p, &b, ursa_deadline_in(URSA_SEC(1))), 0);
    CHECK(a.res != b.res);
    CHECK_EQ(ursa_pool_acquire(p, &x, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_pool_acquire(p, &x, ursa_deadline_in(URSA_MSEC(5))), -ETIMEDOUT);
    ursa_pool_stats_t s = pstats(p);
    CHECK_EQ(s.size, 2);
    CHECK_EQ(s.in_use, 2);
    CHECK_EQ(s.timeouts, 1);
    CHECK_EQ(ursa_held_count(), 2);
    void *held = b.res;
    CHECK_EQ(ursa_pool_return(p, &b), 0);
    CHECK(b.pool == NULL && b.res == NULL);
    CHECK_EQ(ursa_pool_acquire(p, &b, URSA_NOW), 0); /* this thread's newest */
    CHECK(b.res == held);
    CHECK_EQ(ursa_pool_return(p, &a), 0);
    CHECK_EQ(ursa_pool_return(p, &b), 0);
    s = pstats(p);
    CHECK_EQ(s.idle, 2);
    CHECK_EQ(s.acquires, 3);
    CHECK_EQ(s.creates, 2);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_BODY(test_pool_acquire_takes_the_newest_idle_item_or_waits,
          test_run(1, acquire_basics_body, NULL))

TEST_EXPLORE(test_pool_acquire_takes_the_newest_idle_item_or_waits_over_seeds,
             acquire_basics_body, NULL)

/* A plain thread uses a pool of a runtime that another thread runs. */
typedef struct thread_user {
    ursa_pool_t *pool;
    ursa_time_t deadline;
    const char *msg;
} thread_user_t;

static void *thread_user(void *arg)
{
    thread_user_t *u = arg;
    for (int i = 0; i < 200; i++) {
        URSA_SCOPED(pool_item, it);
        int rc = ursa_pool_acquire(u->pool, &it, u->deadline);
        if (rc) {
            u->msg = failf("thread acquire: %s", ursa_strerror(rc));
            return NULL;
        }
        if ((u->msg = hold_res(&it)))
            return NULL;
        unhold_res(&it);
    }
    return NULL;
}

static void test_pool_acquire_works_on_plain_threads(void **state)
{
    (void)state;
    host_t h;
    fac_t f;
    ursa_pool_config_t c = host_pool_config(&h, 2, &f, 2, 0);
    ursa_pool_t *p;
    assert_int_equal(ursa_pool_new(&p, &c), 0);
    thread_user_t u[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        u[i] = (thread_user_t){p, URSA_NEVER, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, thread_user, &u[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_OK(u[i].msg);
    }
    assert_int_equal(pstats(p).acquires, 800);
    assert_true(pstats(p).size <= 2);
    ASSERT_OK(fac_finish(&f, p));
    host_stop(&h);
}

/* The raw form: a foreign waker, a wait that queues and is granted by a
 * return, a raw cancel before and after the grant. */
static void test_pool_raw_acquire_is_woken_by_its_foreign_waker(void **state)
{
    (void)state;
    host_t h;
    fac_t f;
    ursa_pool_config_t c = host_pool_config(&h, 1, &f, 1, 1);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    ursa_pool_t *p;
    assert_int_equal(ursa_pool_new(&p, &c), 0);

    rwaker_t rw;
    rwaker_init(&rw, false);
    ursa_wait_t w;
    ursa_pool_item_t held = {0}, it = {0};
    assert_int_equal(ursa_pool_acquire_start(p, &w, rwaker(&rw)), 0); /* idle: at once */
    assert_int_equal(ursa_pool_acquire_finish(p, &w, &held), 0);
    assert_int_equal(atomic_load(&rw.count), 0);
    assert_int_equal(ursa_pool_acquire_finish(p, &w, &it), -EINVAL); /* finished */

    /* Queued, then granted by a return. */
    assert_int_equal(ursa_pool_acquire_start(p, &w, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(ursa_pool_acquire_finish(p, &w, &it), -EAGAIN);
    assert_false(ursa_wait_ready(&w));
    void *res = held.res;
    assert_int_equal(ursa_pool_return(p, &held), 0);
    assert_true(await_ready(&w));
    assert_int_equal(atomic_load(&rw.count), 1);
    assert_int_equal(ursa_pool_acquire_finish(p, &w, &it), 0);
    assert_ptr_equal(it.res, res);

    /* Cancelled while queued: nothing held. */
    ursa_wait_t w2;
    assert_int_equal(ursa_pool_acquire_start(p, &w2, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(pstats(p).waiters, 1);
    assert_int_equal(ursa_wait_cancel(&w2), -ECANCELED);
    assert_int_equal(pstats(p).waiters, 0);

    /* Cancelled after the grant: the item goes on to the next waiter. */
    ursa_wait_t w3, w4;
    rwaker_t rw4;
    rwaker_init(&rw4, false);
    assert_int_equal(ursa_pool_acquire_start(p, &w3, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(ursa_pool_acquire_start(p, &w4, rwaker(&rw4)), -EINPROGRESS);
    assert_int_equal(ursa_pool_return(p, &it), 0);
    assert_true(await_ready(&w3));
    assert_false(ursa_wait_ready(&w4));
    assert_int_equal(ursa_wait_cancel(&w3), -ECANCELED);
    assert_true(await_ready(&w4));
    assert_int_equal(ursa_pool_acquire_finish(p, &w4, &it), 0);
    assert_ptr_equal(it.res, res);
    assert_int_equal(ursa_pool_return(p, &it), 0);
    assert_int_equal(pstats(p).creates, 1);

    ASSERT_OK(fac_finish(&f, p));
    host_stop(&h);
}

/* ---- the hold: broken, detach, scoped, leaked ---- */

static void *hold_kinds_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool_warm(&f, 2, 1);
    CHECK(p != NULL);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_broken(p, &it), 0); /* destroyed; min_idle brings one back */
    CHECK(it.pool == NULL);
    CHECK_EQ(ursa_pool_drain(p, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_BROKEN]), 1);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.creates), 2);
    CHECK_EQ(ursa_pool_resize(p, 2, 0), 0); /* no refill after the detach */
    void *kept = NULL;
    CHECK_EQ(ursa_pool_detach(p, &it, &kept), 0);
    CHECK(kept != NULL && it.pool == NULL);
    CHECK_EQ(ursa_held_count(), 0);
    {
        URSA_SCOPED(pool_item, s);
        CHECK_EQ(ursa_pool_acquire(p, &s, URSA_NEVER), 0); /* a replacement */
        CHECK_EQ(ursa_held_count(), 1);
    }
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(atomic_load(&f.creates), 3);
    CHECK_EQ(pstats(p).size, 1);
    fac_destroy(&f, kept); /* ours now: the pool does not count it */
    atomic_fetch_sub(&f.destroys, 1);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_BODY(test_pool_return_broken_and_detach_discharge_once, test_run(1, hold_kinds_body, NULL))

TEST_EXPLORE(test_pool_return_broken_and_detach_discharge_once_over_seeds, hold_kinds_body, NULL)

static void *leaker(void *arg)
{
    ursa_pool_item_t it = {0};
    if (ursa_pool_acquire(arg, &it, URSA_NEVER))
        return "acquire";
    return NULL; /* ends holding it */
}

static void *leak_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool(&f, 1, 0);
    CHECK(p);
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, leaker, p, NULL), 0);
    CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    CHECK_EQ(test_leak_count(), 1);
    /* Returned as broken: destroyed, and the next acquire gets a new one. */
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(((res_t *)it.res)->id, 2);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(ursa_pool_drain(p, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_BROKEN]), 1);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

static void test_pool_leaked_item_is_reported_and_returned_broken(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(test_run(1, leak_body, NULL));
    char kind[96];
    test_leak_snapshot(NULL, 0, kind, sizeof kind, NULL);
    assert_string_equal(kind, "pooled item");
}

/* ---- warm-up ---- */

static void *warmup_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p;
    /* Best effort: one attempt per missing item, failures kept quiet. */
    fac_init(&f);
    atomic_store(&f.fail, 1);
    ursa_pool_config_t c = fac_config(&f, 4, 3);
    c.warmup = URSA_POOL_WARMUP_BEST_EFFORT;
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    CHECK(atomic_load(&f.create_calls) >= 3);
    CHECK_OK(fac_finish(&f, p));
    /* Fail fast: the first failure is ursa_pool_new's. */
    fac_init(&f);
    atomic_store(&f.fail, 1);
    f.fail_code = -EHOSTUNREACH;
    c = fac_config(&f, 4, 3);
    c.warmup = URSA_POOL_WARMUP_FAIL_FAST;
    p = (ursa_pool_t *)1;
    CHECK_EQ(ursa_pool_new(&p, &c), -EHOSTUNREACH);
    CHECK(p == NULL);
    CHECK_EQ(atomic_load(&f.live), 0);
    /* Require the minimum: retried with backoff until it is there... */
    fac_init(&f);
    atomic_store(&f.fail, 3);
    c = fac_config(&f, 4, 2);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    CHECK(pstats(p).idle >= 2);
    CHECK_OK(fac_finish(&f, p));
    /* ...or the timeout. */
    fac_init(&f);
    atomic_store(&f.fail, -1);
    c = fac_config(&f, 4, 2);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    c.warmup_timeout = URSA_MSEC(100);
    CHECK_EQ(ursa_pool_new(&p, &c), -ETIMEDOUT);
    CHECK(atomic_load(&f.create_calls) >= 2);
    /* In the background: returns at once, min_idle appears later. */
    fac_init(&f);
    f.create_delay = URSA_MSEC(20);
    c = fac_config(&f, 4, 2);
    CHECK_EQ(ursa_pool_new(&p, &c), 0);
    CHECK_EQ(pstats(p).idle, 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(100)), 0);
    CHECK_EQ(pstats(p).idle, 2);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_warmup_strategies_over_seeds, warmup_body, NULL)

/* ---- close, drain, resize ---- */

typedef struct closing {
    ursa_pool_t *pool;
    atomic_int results[3];
} closing_t;

static void *close_waiter(void *arg)
{
    closing_t *cl = arg;
    ursa_pool_item_t it = {0};
    int rc = ursa_pool_acquire(cl->pool, &it, URSA_NEVER);
    atomic_fetch_add(&cl->results[rc == -EPIPE ? 0 : 1], 1);
    if (rc == 0) {
        (void)ursa_sleep_for(URSA_MSEC(1)); /* returned after the close */
        (void)ursa_pool_return(cl->pool, &it);
    }
    return NULL;
}

static void *close_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    closing_t cl = {0};
    CHECK_EQ(ursa_pool_new(&cl.pool, &c), 0);
    ursa_pool_item_t a = {0}, b = {0};
    CHECK_EQ(ursa_pool_acquire(cl.pool, &a, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_acquire(cl.pool, &b, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_return(cl.pool, &b), 0); /* one idle, one in use */
    CHECK_EQ(ursa_pool_acquire(cl.pool, &b, URSA_NEVER), 0);
    ursa_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_spawn(&t[i], close_waiter, &cl, NULL), 0);
    while (pstats(cl.pool).waiters < 3)
        (void)ursa_yield();
    CHECK_EQ(ursa_pool_return(cl.pool, &b), 0); /* to the first waiter */
    while (pstats(cl.pool).waiters > 2)
        (void)ursa_yield();
    CHECK_EQ(ursa_pool_close(cl.pool), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_task_join(t[i], NULL, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&cl.results[0]), 2); /* -EPIPE */
    CHECK_EQ(atomic_load(&cl.results[1]), 1); /* got b, returned it (destroyed) */
    CHECK_EQ(ursa_pool_acquire(cl.pool, &b, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_pool_drain(cl.pool, URSA_NOW), -EAGAIN); /* a is in use */
    CHECK_EQ(ursa_pool_resize(cl.pool, 3, 0), -EPIPE);
    CHECK_EQ(ursa_pool_return(cl.pool, &a), 0); /* destroyed: closed */
    CHECK_EQ(ursa_pool_drain(cl.pool, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_CLOSED]), 2);
    CHECK_EQ(atomic_load(&f.live), 0);
    CHECK_OK(fac_finish(&f, cl.pool));
    return NULL;
}

TEST_EXPLORE(test_pool_close_fails_waiters_and_destroys_items_in_use_over_seeds,
             close_body, NULL)

static void *resize_waiter(void *arg)
{
    ursa_pool_item_t it = {0};
    if (ursa_pool_acquire(arg, &it, URSA_NEVER))
        return "acquire";
    (void)ursa_sleep_for(URSA_MSEC(1));
    return ursa_pool_return(arg, &it) ? "return" : NULL;
}

static void *resize_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool(&f, 1, 0);
    CHECK(p);
    ursa_pool_item_t a = {0};
    CHECK_EQ(ursa_pool_acquire(p, &a, URSA_NEVER), 0);
    /* Growing lets queued waiters' creates start. */
    ursa_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_spawn(&t[i], resize_waiter, p, NULL), 0);
    while (pstats(p).waiters < 3)
        (void)ursa_yield();
    CHECK_EQ(ursa_pool_resize(p, 4, 0), 0);
    CHECK_OK(join_tasks(t, 3));
    CHECK(pstats(p).size >= 2 && pstats(p).size <= 4);
    /* Make four, three idle, then shrink to two: idle ones go at once, the
     * one in use when it comes back. */
    ursa_pool_item_t more[3];
    memset(more, 0, sizeof more);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_pool_acquire(p, &more[i], URSA_NEVER), 0);
    CHECK_EQ(pstats(p).size, 4);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_pool_return(p, &more[i]), 0);
    CHECK_EQ(ursa_pool_resize(p, 2, 1), 0);
    CHECK_EQ(pstats(p).size, 2);
    CHECK_EQ(ursa_pool_resize(p, 1, 1), 0);
    CHECK_EQ(pstats(p).size, 1); /* the one in use, over... */
    CHECK_EQ(pstats(p).idle, 0);
    CHECK_EQ(ursa_pool_resize(p, 1, 0), 0);
    CHECK_EQ(ursa_pool_return(p, &a), 0); /* ...stays: size fits now */
    CHECK_EQ(pstats(p).idle, 1);
    CHECK_EQ(ursa_pool_drain(p, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_SHRINK]), 3);
    /* In use over the new size: destroyed on return. */
    CHECK_EQ(ursa_pool_acquire(p, &a, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_resize(p, 2, 0), 0);
    ursa_pool_item_t b = {0};
    CHECK_EQ(ursa_pool_acquire(p, &b, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_resize(p, 1, 0), 0);
    CHECK_EQ(ursa_pool_return(p, &b), 0);
    CHECK(wait_destroyed(&f, URSA_POOL_SHRINK, 4));
    CHECK_EQ(pstats(p).size, 1);
    CHECK_EQ(ursa_pool_return(p, &a), 0);
    CHECK_EQ(pstats(p).idle, 1);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_resize_grows_and_shrinks_over_seeds, resize_body, NULL)

static void *free_busy_body(void *arg)
{
    (void)arg;
    fac_t f;
    ursa_pool_t *p = fac_pool(&f, 1, 0);
    CHECK(p);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_free(p), -EBUSY); /* reported; closed, not freed */
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

static void test_pool_free_while_items_are_in_use_is_ebusy(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(test_run(1, free_busy_body, NULL));
}

TEST_MAIN(cmocka_unit_test(test_pool_new_rejects_a_bad_config),
          cmocka_unit_test(test_pool_rejects_double_foreign_and_null_returns),
          cmocka_unit_test(test_pool_acquire_takes_the_newest_idle_item_or_waits),
          cmocka_unit_test(test_pool_acquire_takes_the_newest_idle_item_or_waits_over_seeds),
          cmocka_unit_test(test_pool_acquire_works_on_plain_threads),
          cmocka_unit_test(test_pool_raw_acquire_is_woken_by_its_foreign_waker),
          cmocka_unit_test(test_pool_return_broken_and_detach_discharge_once),
          cmocka_unit_test(test_pool_return_broken_and_detach_discharge_once_over_seeds),
          cmocka_unit_test(test_pool_leaked_item_is_reported_and_returned_broken),
          cmocka_unit_test(test_pool_warmup_strategies_over_seeds),
          cmocka_unit_test(test_pool_close_fails_waiters_and_destroys_items_in_use_over_seeds),
          cmocka_unit_test(test_pool_resize_grows_and_shrinks_over_seeds),
          cmocka_unit_test(test_pool_free_while_items_are_in_use_is_ebusy))
