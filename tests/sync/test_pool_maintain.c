/* The pool's own tasks: idle timeout, max lifetime with jitter, health
 * checks, min_idle refill, a failing factory (backoff, fail_fast), the
 * spike of 50 demands against a slow create, and every destroy reason
 * counted exactly. Deterministic mode: virtual time makes the long waits
 * free and the outcomes exact. */
#include "support.h"

#include "task_checks.h"
#include "pool_fixture.h"

static ursa_pool_t *new_pool(const ursa_pool_config_t *c)
{
    ursa_pool_t *p = NULL;
    return ursa_pool_new(&p, c) ? NULL : p;
}

/* Acquires n items into its[] and returns them all. */
static const char *cycle(ursa_pool_t *p, int n)
{
    ursa_pool_item_t its[8];
    memset(its, 0, sizeof its);
    for (int i = 0; i < n; i++)
        if (ursa_pool_acquire(p, &its[i], URSA_NEVER))
            return "acquire";
    for (int i = 0; i < n; i++)
        if (ursa_pool_return(p, &its[i]))
            return "return";
    return NULL;
}

/* ---- idle timeout ---- */

static void *idle_timeout_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 4, 1);
    c.idle_timeout = URSA_MSEC(100);
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    CHECK_OK(cycle(p, 4));
    CHECK_EQ(pstats(p).idle, 4);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(99)), 0);
    CHECK_EQ(atomic_load(&f.destroys), 0); /* never before the timeout */
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(100)), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_IDLE_TIMEOUT]), 3); /* down to min_idle */
    ursa_pool_stats_t s = pstats(p);
    CHECK_EQ(s.size, 1);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(ursa_sleep_for(URSA_SEC(1)), 0);
    CHECK_EQ(pstats(p).size, 1);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_idle_timeout_shrinks_to_min_idle_and_refills_over_seeds,
             idle_timeout_body, NULL)

/* ---- max lifetime ---- */

typedef struct lifetimes {
    fac_t f;
    ursa_time_t at[8]; /* when each destroy happened */
    atomic_int n;
} lifetimes_t;

static void lifetime_event(void *ctx, const ursa_pool_event_t *ev)
{
    lifetimes_t *l = ctx;
    fac_event(&l->f, ev);
    if (ev->kind == URSA_POOL_DESTROYED && ev->reason == URSA_POOL_MAX_LIFETIME) {
        int i = atomic_fetch_add(&l->n, 1);
        if (i < 8)
            l->at[i] = ursa_now();
    }
}

static void *lifetime_body(void *arg)
{
    (void)arg;
    lifetimes_t l = {0};
    fac_init(&l.f);
    ursa_pool_config_t c = fac_config(&l.f, 5, 4);
    c.max_lifetime = URSA_SEC(1);
    c.lifetime_jitter = URSA_MSEC(200);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    c.on_event = lifetime_event;
    c.event_ctx = &l;
    ursa_time_t t0 = ursa_now();
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    ursa_pool_item_t held = {0};
    CHECK_EQ(ursa_pool_acquire(p, &held, URSA_NEVER), 0);
    CHECK_EQ(ursa_sleep_until(t0 + URSA_MSEC(799)), 0);
    CHECK_EQ(atomic_load(&l.f.destroys), 0); /* never before lifetime - jitter */
    CHECK_EQ(ursa_sleep_until(t0 + URSA_MSEC(1001)), 0);
    /* The four idle ones (min_idle made a fifth when one was taken) went,
     * each at its own time, and were replaced. */
    CHECK_EQ(atomic_load(&l.n), 4);
    CHECK(l.at[0] != l.at[1] || l.at[1] != l.at[2] || l.at[2] != l.at[3]);
    for (int i = 0; i < 4; i++)
        CHECK(l.at[i] >= t0 + URSA_MSEC(800) && l.at[i] <= t0 + URSA_MSEC(1000));
    CHECK_EQ(pstats(p).idle, 4);
    /* The one held past its lifetime is destroyed when it comes back. */
    CHECK_EQ(pstats(p).size, 5);
    CHECK_EQ(ursa_pool_return(p, &held), 0);
    CHECK(wait_destroyed(&l.f, URSA_POOL_MAX_LIFETIME, 5));
    CHECK_EQ(pstats(p).size, 4);
    CHECK_OK(fac_finish(&l.f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_max_lifetime_with_jitter_spreads_expiry_over_seeds, lifetime_body, NULL)

/* ---- health checks ---- */

static void *checks_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 3, 2);
    c.check_interval = URSA_MSEC(50);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    /* Periodic: a bad idle item is found, destroyed and replaced. */
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    atomic_store(&((res_t *)it.res)->bad, 1);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(120)), 0);
    CHECK_EQ(atomic_load(&f.destroyed[URSA_POOL_FAILED_CHECK]), 1);
    CHECK_EQ(pstats(p).idle, 2);
    CHECK(atomic_load(&f.checks) >= 2);
    CHECK_OK(fac_finish(&f, p));

    /* On acquire: a bad item is skipped (destroyed); the acquire gets
     * another. Items idle for less than check_idle_after are not checked. */
    fac_init(&f);
    c = fac_config(&f, 2, 0);
    c.check_on_acquire = true;
    c.check_idle_after = URSA_MSEC(10);
    p = new_pool(&c);
    CHECK(p);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0); /* idle 0 ms: unchecked */
    CHECK_EQ(atomic_load(&f.checks), 0);
    atomic_store(&((res_t *)it.res)->bad, 1);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(20)), 0);
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), 0);
    CHECK_EQ(atomic_load(&f.checks), 1);
    CHECK_EQ(((res_t *)it.res)->id, 2);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK(wait_destroyed(&f, URSA_POOL_FAILED_CHECK, 1));
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_failed_health_checks_destroy_items_over_seeds, checks_body, NULL)

/* ---- a failing factory ---- */

static void *failing_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    atomic_store(&f.fail, -1);
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    c.backoff_min = URSA_MSEC(10);
    c.backoff_max = URSA_MSEC(200);
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    /* Without fail_fast the waiter waits out its deadline while creates
     * are retried, further and further apart. */
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(p, &it, ursa_deadline_in(URSA_MSEC(700))), -ETIMEDOUT);
    int calls = atomic_load(&f.create_calls);
    CHECK(calls >= 5 && calls <= 12);
    ursa_time_t gap = 0;
    for (int i = 1; i < calls && i < FAC_TIMES; i++) {
        ursa_time_t g = f.call_at[i] - f.call_at[i - 1];
        CHECK(g >= URSA_MSEC(5) && g <= URSA_MSEC(200));
        CHECK(g >= gap || g >= URSA_MSEC(100)); /* doubling (in its upper half) to the cap */
        gap = g;
    }
    /* Nobody waits: no more attempts. */
    CHECK_EQ(ursa_sleep_for(URSA_SEC(1)), 0);
    CHECK(atomic_load(&f.create_calls) <= calls + 1);
    CHECK_EQ((int)pstats(p).create_failures, atomic_load(&f.create_calls));
    CHECK_EQ(atomic_load(&f.events_failed), atomic_load(&f.create_calls));
    /* Back up: the next acquire gets a new item. */
    atomic_store(&f.fail, 0);
    CHECK_EQ(ursa_pool_acquire(p, &it, ursa_deadline_in(URSA_SEC(1))), 0);
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_failing_factory_backs_off_and_waiters_wait_over_seeds, failing_body, NULL)

static void *fail_fast_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    atomic_store(&f.fail, -1);
    f.fail_code = -EHOSTUNREACH;
    f.create_delay = URSA_MSEC(5);
    ursa_pool_config_t c = fac_config(&f, 2, 0);
    c.fail_fast = true;
    c.backoff_min = URSA_MSEC(50);
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    ursa_pool_item_t it = {0};
    ursa_time_t t0 = ursa_now();
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), -EHOSTUNREACH); /* not forever */
    CHECK(ursa_now() - t0 < URSA_MSEC(10));
    CHECK_EQ(ursa_pool_acquire(p, &it, URSA_NEVER), -EHOSTUNREACH); /* at once now */
    CHECK_EQ(ursa_now() - t0 < URSA_MSEC(10), 1);
    /* The pool keeps probing; once creates work again acquires do too. */
    atomic_store(&f.fail, 0);
    int rc;
    while ((rc = ursa_pool_acquire(p, &it, URSA_NEVER)) == -EHOSTUNREACH)
        CHECK_EQ(ursa_sleep_for(URSA_MSEC(10)), 0);
    CHECK_EQ(rc, 0);
    CHECK(ursa_now() - t0 < URSA_SEC(6));
    CHECK_EQ(ursa_pool_return(p, &it), 0);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_fail_fast_gives_waiters_the_create_error_over_seeds, fail_fast_body, NULL)

/* ---- the spike ---- */

typedef struct spike {
    ursa_pool_t *pool;
    ursa_barrier_t start;
} spike_t;

static void *spiker(void *arg)
{
    spike_t *sp = arg;
    bool leader;
    CHECK_EQ(ursa_barrier_wait(&sp->start, &leader, URSA_NEVER), 0);
    ursa_pool_item_t it = {0};
    CHECK_EQ(ursa_pool_acquire(sp->pool, &it, URSA_NEVER), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(10)), 0);
    CHECK_EQ(ursa_pool_return(sp->pool, &it), 0);
    return NULL;
}

static atomic_int spike_max, spike_min = 1000;

/* 50 demands at once, a 150 ms create, max_size 50: creates start only
 * for waiters that returned items cannot serve first. */
static void *spike_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    f.create_delay = URSA_MSEC(150);
    ursa_pool_config_t c = fac_config(&f, 50, 0);
    spike_t sp = {.pool = new_pool(&c)};
    CHECK(sp.pool);
    CHECK_EQ(ursa_barrier_init(&sp.start, 50), 0);
    ursa_task_t *t[50];
    for (int i = 0; i < 50; i++)
        CHECK_EQ(ursa_spawn(&t[i], spiker, &sp, NULL), 0);
    CHECK_OK(join_tasks(t, 50));
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(300)), 0);
    int created = atomic_load(&f.create_calls);
    int max = atomic_load(&spike_max), min = atomic_load(&spike_min);
    while (created > max && !atomic_compare_exchange_weak(&spike_max, &max, created))
        ;
    while (created < min && !atomic_compare_exchange_weak(&spike_min, &min, created))
        ;
    CHECK(created <= 5);
    CHECK_EQ(pstats(sp.pool).size, created);
    CHECK_EQ(ursa_barrier_destroy(&sp.start), 0);
    CHECK_OK(fac_finish(&f, sp.pool));
    return NULL;
}

static void test_pool_spike_of_50_demands_creates_few_items_over_seeds(void **state)
{
    (void)state;
    test_explore(spike_body, NULL);
    print_message("pool spike: %d to %d resources created over the seeds\n",
                  atomic_load(&spike_min), atomic_load(&spike_max));
}

/* ---- every destroy reason, counted exactly ---- */

static void *reasons_body(void *arg)
{
    (void)arg;
    fac_t f;
    fac_init(&f);
    ursa_pool_config_t c = fac_config(&f, 4, 0);
    c.idle_timeout = URSA_SEC(10);
    c.max_lifetime = URSA_SEC(60);
    c.check_interval = URSA_SEC(1);
    ursa_time_t t0 = ursa_now();
    ursa_pool_t *p = new_pool(&c);
    CHECK(p);
    ursa_pool_item_t it[4];
    memset(it, 0, sizeof it);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(ursa_pool_acquire(p, &it[i], URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_broken(p, &it[0]), 0);                  /* BROKEN */
    atomic_store(&((res_t *)it[1].res)->bad, 1);               /* FAILED_CHECK */
    CHECK_EQ(ursa_pool_return(p, &it[1]), 0);
    CHECK_EQ(ursa_pool_return(p, &it[2]), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(1500)), 0);
    CHECK_EQ(ursa_pool_resize(p, 1, 0), 0);                    /* SHRINK: it[2]'s */
    CHECK_EQ(ursa_pool_resize(p, 4, 0), 0);
    CHECK_OK(cycle(p, 2));
    CHECK_EQ(ursa_sleep_for(URSA_SEC(15)), 0);                 /* IDLE_TIMEOUT: both */
    CHECK_EQ(ursa_sleep_until(t0 + URSA_SEC(70)), 0);
    CHECK_EQ(ursa_pool_return(p, &it[3]), 0);                  /* MAX_LIFETIME */
    CHECK_OK(cycle(p, 2));
    ursa_pool_item_t last = {0};
    CHECK_EQ(ursa_pool_acquire(p, &last, URSA_NEVER), 0);
    CHECK_EQ(ursa_pool_close(p), 0);                           /* CLOSED: one idle... */
    CHECK_EQ(ursa_pool_return(p, &last), 0);                   /* ...and one in use */
    CHECK_EQ(ursa_pool_drain(p, URSA_NEVER), 0);
    ursa_pool_stats_t s = pstats(p);
    CHECK_EQ(s.destroyed[URSA_POOL_BROKEN], 1);
    CHECK_EQ(s.destroyed[URSA_POOL_FAILED_CHECK], 1);
    CHECK_EQ(s.destroyed[URSA_POOL_SHRINK], 1);
    CHECK_EQ(s.destroyed[URSA_POOL_IDLE_TIMEOUT], 2);
    CHECK_EQ(s.destroyed[URSA_POOL_MAX_LIFETIME], 1);
    CHECK_EQ(s.destroyed[URSA_POOL_CLOSED], 2);
    CHECK_EQ(s.creates, 8);
    CHECK_OK(fac_finish(&f, p));
    return NULL;
}

TEST_EXPLORE(test_pool_counts_every_destroy_reason_exactly_over_seeds, reasons_body, NULL)

TEST_MAIN(cmocka_unit_test(test_pool_idle_timeout_shrinks_to_min_idle_and_refills_over_seeds),
          cmocka_unit_test(test_pool_max_lifetime_with_jitter_spreads_expiry_over_seeds),
          cmocka_unit_test(test_pool_failed_health_checks_destroy_items_over_seeds),
          cmocka_unit_test(test_pool_failing_factory_backs_off_and_waiters_wait_over_seeds),
          cmocka_unit_test(test_pool_fail_fast_gives_waiters_the_create_error_over_seeds),
          cmocka_unit_test(test_pool_spike_of_50_demands_creates_few_items_over_seeds),
          cmocka_unit_test(test_pool_counts_every_destroy_reason_exactly_over_seeds))
