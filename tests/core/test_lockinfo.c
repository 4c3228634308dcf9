/* Lock names, lock-order checking by rank, and lock metrics. The checks
 * that need URSA_LOCK_ORDER / URSA_LOCK_METRICS skip in builds without
 * them; CI's clang build is a Debug build with metrics on, so both run. */
#include "support.h"

#include <ursa/rwlock.h>

/* ---- lock order ---- */

static int order_line_outer, order_line_inner;

/* Reports are long (two names, two sites): keep the whole last one. */
static struct {
    int count, line;
    char what[512];
} order_reports;

static __attribute__((unused)) void order_hook(void *ctx, const char *owner, const char *what, const ursa_site_t *site)
{
    (void)ctx;
    (void)owner;
    order_reports.count++;
    order_reports.line = site ? site->line : 0;
    snprintf(order_reports.what, sizeof order_reports.what, "%s", what);
}

/* Runs scenario with order reports captured in order_reports (count reset)
 * instead of aborting; fails the test if the scenario returns a message. */
static __attribute__((unused)) void run_order_scenario(ursa_task_fn_t scenario, void *arg)
{
    bool old_abort = ursa_leak_set_abort(false);
    ursa_leak_set_hook(order_hook, NULL);
    order_reports.count = 0;
    void *res = (void *)1;
    assert_int_equal(ursa_run(NULL, scenario, arg, &res), 0);
    ursa_leak_set_hook(NULL, NULL);
    ursa_leak_set_abort(old_abort);
    if (res)
        fail_msg("%s", (const char *)res);
}

/* arg != NULL: the ranked locks barge (URSA_LOCK_BARGING); the order
 * checks are the same. */
static __attribute__((unused)) void *order_scenario(void *arg)
{
    unsigned fl = arg ? URSA_LOCK_BARGING : 0;
    ursa_mutex_t outer, inner, other;
    ursa_mutex_init_attr(&outer, &(ursa_lock_attr_t){.name = "accounts", .rank = 1, .flags = fl});
    ursa_mutex_init_attr(&inner, &(ursa_lock_attr_t){.name = "journal", .rank = 2, .flags = fl});
    ursa_mutex_init(&other); /* unranked: never checked */
    ursa_mutex_guard_t a = {0}, b = {0}, c = {0};
    /* In order: fine, and unranked locks mix freely. */
    URSA_SIM_CHECK(ursa_mutex_lock(&outer, &a, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_mutex_lock(&other, &c, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_mutex_lock(&inner, &b, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&b) == 0 && ursa_mutex_unlock(&c) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&a) == 0);
    /* Against the order: inner first, then outer. */
    order_line_inner = __LINE__ + 1;
    URSA_SIM_CHECK(ursa_mutex_lock(&inner, &b, URSA_NEVER) == 0);
    order_line_outer = __LINE__ + 1;
    int rc = ursa_mutex_lock(&outer, &a, URSA_NEVER);
    URSA_SIM_CHECK(rc == -EDEADLK);
    URSA_SIM_CHECK(a.mutex == NULL && !ursa_mutex_is_locked(&outer)); /* nothing held */
    /* Same rank twice is a violation too (two locks of one level). */
    ursa_mutex_t peer;
    ursa_mutex_init_attr(&peer, &(ursa_lock_attr_t){.name = "journal-2", .rank = 2, .flags = fl});
    URSA_SIM_CHECK(ursa_mutex_lock(&peer, &c, URSA_NEVER) == -EDEADLK);
    URSA_SIM_CHECK(ursa_mutex_unlock(&b) == 0);
    /* Released: the order check is about what is held now. */
    URSA_SIM_CHECK(ursa_mutex_lock(&outer, &a, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&a) == 0);
    return NULL;
}

static void test_lock_order_violation_is_reported_with_both_locks_and_sites(void **state)
{
    (void)state;
#if !URSA_LOCK_ORDER
    skip();
#else
    for (intptr_t barging = 0; barging < 2; barging++) {
        run_order_scenario(order_scenario, (void *)barging);
        /* Two violations reported, each naming both locks and both sites. */
        assert_int_equal(order_reports.count, 2);
        const char *kind = order_reports.what;
        int line = order_reports.line;
        assert_non_null(strstr(kind, "journal-2"));
        assert_non_null(strstr(kind, "journal"));
        assert_non_null(strstr(kind, "lock order violation"));
        char at[32];
        snprintf(at, sizeof at, ":%d", order_line_inner);
        assert_non_null(strstr(kind, at)); /* where the held lock was taken */
        if (line <= order_line_outer)
            fail_msg("report site line %d, expected after %d", line, order_line_outer);
    }
#endif
}

/* An rwlock takes part in the same order, for readers and writers. */
static __attribute__((unused)) void *rw_order_scenario(void *arg)
{
    (void)arg;
    ursa_rwlock_t table;
    ursa_mutex_t row;
    ursa_rwlock_init_attr(&table, 0, &(ursa_lock_attr_t){.name = "table", .rank = 1});
    ursa_mutex_init_attr(&row, &(ursa_lock_attr_t){.name = "row", .rank = 2});
    ursa_rwlock_read_guard_t r = {0};
    ursa_rwlock_write_guard_t w = {0};
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&table, &r, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_mutex_lock(&row, &g, URSA_NEVER) == 0); /* in order */
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&r) == 0);
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&table, &w, URSA_NEVER) == -EDEADLK);
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&table, &r, URSA_NEVER) == -EDEADLK);
    URSA_SIM_CHECK(w.rw == NULL && r.rw == NULL && ursa_rwlock_readers(&table) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

static void test_rwlock_takes_part_in_the_lock_order(void **state)
{
    (void)state;
#if !URSA_LOCK_ORDER
    skip();
#else
    run_order_scenario(rw_order_scenario, NULL);
    assert_int_equal(order_reports.count, 2);
    assert_non_null(strstr(order_reports.what, "'table'"));
    assert_non_null(strstr(order_reports.what, "'row'"));
#endif
}

/* Every reader's acquire counts; a writer that waited for two readers is a
 * contention whose wait is exactly how long they held (virtual time). */
static __attribute__((unused)) void *rw_reader(void *arg)
{
    ursa_rwlock_t *rw = arg;
    ursa_rwlock_read_guard_t r = {0};
    if (ursa_rwlock_read_lock(rw, &r, URSA_NEVER) != 0)
        return (void *)"reader lock";
    ursa_sleep_for(URSA_MSEC(4));
    return ursa_rwlock_read_unlock(&r) == 0 ? NULL : (void *)"reader unlock";
}

static __attribute__((unused)) void *rw_metrics_scenario(void *arg)
{
    (void)arg;
    ursa_rwlock_t rw;
    ursa_rwlock_init_attr(&rw, 0, &(ursa_lock_attr_t){.name = "cfg"});
    ursa_task_t *t[2];
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(ursa_spawn(&t[i], rw_reader, &rw, NULL) == 0);
    URSA_SIM_CHECK(ursa_yield() == 0);
    while (ursa_rwlock_readers(&rw) < 2) /* both readers in, at the same instant */
        URSA_SIM_CHECK(ursa_yield() == 0);
    ursa_rwlock_write_guard_t w = {0};
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&rw, &w, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&w) == 0);
    for (int i = 0; i < 2; i++) {
        void *r = (void *)1;
        URSA_SIM_CHECK(ursa_task_join(t[i], &r, URSA_NEVER) == 0 && r == NULL);
    }
    ursa_lock_stats_t s;
    URSA_SIM_CHECK(ursa_rwlock_stats(&rw, &s) == 0);
    URSA_SIM_CHECK(s.acquisitions == 3 && s.contentions == 1);
    URSA_SIM_CHECK(s.wait_total_ns == (uint64_t)URSA_MSEC(4));
    URSA_SIM_CHECK(s.hold_total_ns == (uint64_t)URSA_MSEC(8) && s.hold_max_ns == (uint64_t)URSA_MSEC(4));
    return NULL;
}

static void test_rwlock_metrics_are_exact_in_virtual_time(void **state)
{
    (void)state;
#if !URSA_LOCK_METRICS
    skip();
#else
    test_explore(rw_metrics_scenario, NULL);
#endif
}

/* ---- metrics ---- */

typedef struct metrics_run {
    ursa_mutex_t m;
} metrics_run_t;

static __attribute__((unused)) void *metrics_holder(void *arg)
{
    metrics_run_t *r = arg;
    ursa_mutex_guard_t g = {0};
    if (ursa_mutex_lock(&r->m, &g, URSA_NEVER) != 0) /* waits 10 ms */
        return (void *)"holder lock";
    ursa_sleep_for(URSA_MSEC(5)); /* holds 5 ms */
    return ursa_mutex_unlock(&g) == 0 ? NULL : (void *)"holder unlock";
}

/* Scripted: root holds 10 ms while a second task waits for it; the second
 * holds 5 ms; then three uncontended lock/unlock pairs. In virtual time the
 * figures are exact whatever the seed. */
static __attribute__((unused)) void *metrics_scenario(void *arg)
{
    metrics_run_t r;
    ursa_mutex_init_attr(&r.m, &(ursa_lock_attr_t){.name = "ledger",
                                                    .flags = arg ? URSA_LOCK_BARGING : 0});
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&r.m, &g, URSA_NEVER) == 0);
    ursa_task_t *t;
    URSA_SIM_CHECK(ursa_spawn(&t, metrics_holder, &r, NULL) == 0);
    ursa_sleep_for(URSA_MSEC(10));
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    void *res = (void *)1;
    URSA_SIM_CHECK(ursa_task_join(t, &res, URSA_NEVER) == 0 && res == NULL);
    for (int i = 0; i < 3; i++) {
        URSA_SIM_CHECK(ursa_mutex_lock(&r.m, &g, URSA_NEVER) == 0);
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    }
    ursa_lock_stats_t s;
    URSA_SIM_CHECK(ursa_mutex_stats(&r.m, &s) == 0);
    URSA_SIM_CHECK(s.name && strcmp(s.name, "ledger") == 0);
    URSA_SIM_CHECK(s.acquisitions == 5);
    URSA_SIM_CHECK(s.contentions == 1);
    URSA_SIM_CHECK(s.wait_total_ns == (uint64_t)URSA_MSEC(10));
    URSA_SIM_CHECK(s.wait_max_ns == (uint64_t)URSA_MSEC(10));
    URSA_SIM_CHECK(s.hold_total_ns == (uint64_t)URSA_MSEC(15));
    URSA_SIM_CHECK(s.hold_max_ns == (uint64_t)URSA_MSEC(10));
    /* waits {0,0,0,0,10ms}, holds {0,0,0,5ms,10ms}: p50 is 0 for both,
     * p99 is 10 ms's bucket (lower bound, within 12.5%). */
    URSA_SIM_CHECK(s.wait_p50_ns == 0 && s.hold_p50_ns == 0);
    uint64_t ten = (uint64_t)URSA_MSEC(10);
    URSA_SIM_CHECK(s.wait_p99_ns <= ten && s.wait_p99_ns >= ten - ten / 8);
    URSA_SIM_CHECK(s.hold_p99_ns <= ten && s.hold_p99_ns >= ten - ten / 8);
    return NULL;
}

static void test_mutex_metrics_are_exact_in_virtual_time(void **state)
{
    (void)state;
#if !URSA_LOCK_METRICS
    ursa_mutex_t m;
    ursa_mutex_init(&m);
    ursa_lock_stats_t s;
    assert_int_equal(ursa_mutex_stats(&m, &s), -ENOTSUP);
    assert_int_equal(ursa_mutex_stats(NULL, &s), -EINVAL);
    skip();
#else
    test_explore(metrics_scenario, NULL);
    test_explore(metrics_scenario, (void *)1); /* barging: the same figures */
#endif
}

/* Metrics under real contention: counts are exact, times are plausible. */
typedef struct contend {
    ursa_mutex_t m;
    long per_task;
    long counter;
} contend_t;

static __attribute__((unused)) void *contender(void *arg)
{
    contend_t *c = arg;
    for (long i = 0; i < c->per_task; i++) {
        ursa_mutex_guard_t g = {0};
        if (ursa_mutex_lock(&c->m, &g, URSA_NEVER) != 0)
            return (void *)1;
        c->counter++;
        if (i % 8 == 0)
            ursa_yield();
        ursa_mutex_unlock(&g);
    }
    return NULL;
}

static __attribute__((unused)) void *contend_root(void *arg)
{
    contend_t *c = arg;
    ursa_task_t *t[4];
    for (int i = 0; i < 4; i++)
        if (ursa_spawn(&t[i], contender, c, &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}))
            return (void *)1;
    intptr_t bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        bad |= ursa_task_join(t[i], &r, URSA_NEVER) != 0 || r != NULL;
    }
    return (void *)bad;
}

static void test_mutex_metrics_count_every_acquire_under_contention(void **state)
{
    (void)state;
#if !URSA_LOCK_METRICS
    skip();
#else
    contend_t c = {.per_task = test_scale(5000)};
    ursa_mutex_init_attr(&c.m, &(ursa_lock_attr_t){.name = "hot"});
    assert_null(test_run(2, contend_root, &c));
    ursa_lock_stats_t s;
    assert_int_equal(ursa_mutex_stats(&c.m, &s), 0);
    assert_int_equal(c.counter, 4 * c.per_task);
    assert_int_equal(s.acquisitions, (uint64_t)(4 * c.per_task));
    assert_true(s.contentions > 0 && s.contentions <= s.acquisitions);
    assert_true(s.wait_max_ns >= s.wait_p99_ns && s.wait_p99_ns >= s.wait_p50_ns);
    assert_true(s.hold_max_ns >= s.hold_p99_ns && s.hold_p99_ns >= s.hold_p50_ns);
    assert_true(s.hold_total_ns >= s.hold_max_ns);
#endif
}

TEST_MAIN(cmocka_unit_test(test_lock_order_violation_is_reported_with_both_locks_and_sites),
          cmocka_unit_test(test_mutex_metrics_are_exact_in_virtual_time),
          cmocka_unit_test(test_mutex_metrics_count_every_acquire_under_contention),
          cmocka_unit_test(test_rwlock_takes_part_in_the_lock_order),
          cmocka_unit_test(test_rwlock_metrics_are_exact_in_virtual_time))
