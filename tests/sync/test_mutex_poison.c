/* A mutex guard left held when its task or thread ends: reported (owner,
 * kind, the lock's line) before the release, released, and the mutex
 * poisoned until made consistent; a waiter queued behind the leaker gets
 * it with -EOWNERDEAD. The task and stack cases run in a forked child
 * (support/isolate.h): a sweep that read a dead frame would crash. The
 * report and release common to every hold are in the contract suite. */

#include "support.h"

#include "isolate.h"
#include "raw_checks.h"

static struct {
    ursa_mutex_t m;
    int lock_line;
    int lock_rc;
    bool waiter_queued, leaker_locked;
    int waiter_rc;
    bool waiter_held;
} lk;

/* Leak hook wrapper: the report comes before the release. */
static _Atomic int lk_locked_at_report; /* -1 not called, else 0/1 */

static void lk_hook(void *ctx, const char *owner, const char *kind, const ursa_site_t *site)
{
    atomic_store(&lk_locked_at_report, ursa_mutex_is_locked(&lk.m));
    test_leak_hook(ctx, owner, kind, site);
}

static void *lk_leaker(void *arg)
{
    ursa_mutex_guard_t g = {0};
    lk.lock_line = __LINE__; lk.lock_rc = ursa_mutex_lock(&lk.m, &g, URSA_NEVER);
    lk.leaker_locked = true;
    YIELD_UNTIL(!arg || lk.waiter_queued);
    return NULL; /* still holding g */
}

static void *lk_waiter(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    YIELD_UNTIL(lk.leaker_locked);
    lk.waiter_queued = true;
    lk.waiter_rc = ursa_mutex_lock(&lk.m, &g, URSA_NEVER);
    lk.waiter_held = g.mutex == &lk.m && ursa_mutex_is_locked(&lk.m);
    if (g.mutex)
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

/* arg != NULL: a waiter queues behind the leaker. */
static void *lk_root(void *arg)
{
    ursa_task_t *t, *w = NULL;
    URSA_SIM_CHECK(spawn_named(&t, lk_leaker, arg, "leaker", -1) == 0);
    if (arg)
        URSA_SIM_CHECK(spawn_named(&w, lk_waiter, NULL, "waiter", -1) == 0);
    JOIN_OK(t);
    if (w)
        JOIN_OK(w);
    return NULL;
}

static void *leak_report_is(int count, const char *owner_want, int line_want)
{
    char owner[64], kind[512];
    int line;
    CHECK_EQ(test_leak_count(), count);
    test_leak_snapshot(owner, sizeof owner, kind, sizeof kind, &line);
    CHECK_STR(owner, owner_want);
    CHECK_STR(kind, "mutex guard");
    CHECK_EQ(line, line_want);
    return NULL;
}

/* The mutex came back from a leak: poisoned until made consistent. */
static void *poisoned_until_consistent(ursa_mutex_t *m)
{
    ursa_mutex_guard_t g = {0};
    ursa_wait_t w;
    rwaker_t r;
    rwaker_init(&r, false);
    CHECK_EQ(ursa_mutex_is_locked(m), false);
    CHECK_EQ(ursa_mutex_lock(m, &g, URSA_NOW), -EOWNERDEAD);
    URSA_SIM_CHECK(g.mutex == m); /* held despite the error */
    CHECK_EQ(ursa_mutex_is_locked(m), true);
    CHECK_EQ(ursa_held_count(), 1);
    CHECK_EQ(ursa_mutex_unlock(&g), 0);
    CHECK_EQ(ursa_held_count(), 0);
    /* Not repaired: still poisoned, through the raw form too. */
    CHECK_EQ(ursa_mutex_lock_start(m, &w, rwaker(&r)), 0);
    CHECK_EQ(ursa_mutex_lock_finish(m, &w, &g), -EOWNERDEAD);
    URSA_SIM_CHECK(g.mutex == m);
    CHECK_EQ(ursa_mutex_unlock(&g), 0);
    CHECK_EQ(ursa_mutex_lock(m, &g, URSA_NEVER), -EOWNERDEAD);
    URSA_SIM_CHECK(g.mutex == m);
    CHECK_EQ(ursa_mutex_consistent(m), 0);
    CHECK_EQ(ursa_mutex_unlock(&g), 0);
    CHECK_EQ(ursa_mutex_lock(m, &g, URSA_NOW), 0);
    CHECK_EQ(ursa_mutex_unlock(&g), 0);
    CHECK_EQ(ursa_mutex_is_locked(m), false);
    return NULL;
}

static void *lk_run(ursa_rt_config_t cfg, void *arg)
{
    void *res = NULL;
    int rc = ursa_run(&cfg, lk_root, arg, &res);
    CHECK_EQ(rc, 0);
    return res;
}

static void *leak_task_child(void)
{
    test_capture_leaks();

    /* Alone: one report (owner, kind, lock line), made before the release;
     * afterwards unlocked and poisoned. */
    memset(&lk, 0, sizeof lk);
    CHECK_EQ(ursa_mutex_init(&lk.m), 0);
    atomic_store(&lk_locked_at_report, -1);
    ursa_leak_set_hook(lk_hook, &test_leaks);
    CHECK_OK(lk_run((ursa_rt_config_t){.deterministic = true, .seed = 1}, NULL));
    ursa_leak_set_hook(test_leak_hook, &test_leaks);
    CHECK_EQ(lk.lock_rc, 0);
    CHECK_OK(leak_report_is(1, "leaker", lk.lock_line));
    CHECK_EQ(atomic_load(&lk_locked_at_report), 1);
    CHECK_OK(poisoned_until_consistent(&lk.m));
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(ursa_mutex_destroy(&lk.m), 0);

    /* A waiter queued behind the leaker gets the lock, poisoned, over a
     * few interleavings; the same on a normal two-worker runtime. */
    for (int seed = 1; seed <= 21; seed++) {
        memset(&lk, 0, sizeof lk);
        CHECK_EQ(ursa_mutex_init(&lk.m), 0);
        ursa_rt_config_t cfg = seed <= 20 ? (ursa_rt_config_t){.deterministic = true,
                                                               .seed = (uint64_t)seed}
                                          : (ursa_rt_config_t){.workers = 2};
        CHECK_OK(lk_run(cfg, (void *)1));
        CHECK_EQ(lk.lock_rc, 0);
        CHECK_OK(leak_report_is(seed + 1, "leaker", lk.lock_line));
        CHECK_EQ(lk.waiter_rc, -EOWNERDEAD);
        CHECK_EQ(lk.waiter_held, true);
        CHECK_EQ(ursa_mutex_consistent(&lk.m), 0);
        CHECK_EQ(ursa_mutex_destroy(&lk.m), 0);
    }
    return NULL;
}

static void test_mutex_left_locked_by_a_task_is_reported_released_and_poisoned(void **state)
{
    (void)state;
    run_isolated(leak_task_child, "task exit with a held guard");
}

/* Runs leaker (a thread start routine that locks lk.m and exits holding
 * it) on a plain thread: the lock succeeded, the thread's exit reported
 * the hold at its lock line and released the mutex poisoned. The sweep
 * releases from the ledger's record and never writes the hold (it usually
 * sits in a dead frame); poisoned_until_consistent proves the release.
 * NULL or a message. */
static void *thread_leak_poisons(void *(*leaker)(void *))
{
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, leaker, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(lk.lock_rc, 0);
    CHECK_EQ(lk.leaker_locked, true);
    CHECK_OK(leak_report_is(1, "thread", lk.lock_line));
    CHECK_OK(poisoned_until_consistent(&lk.m));
    return NULL;
}

/* A plain thread exits holding a guard that outlives it (static storage):
 * the pthread key destructor reports and releases it, and poisons. */
static ursa_mutex_guard_t lk_static_guard;

static void *lk_thread_static(void *arg)
{
    (void)arg;
    lk.lock_line = __LINE__; lk.lock_rc = ursa_mutex_lock(&lk.m, &lk_static_guard, URSA_NEVER);
    lk.leaker_locked = lk_static_guard.mutex == &lk.m;
    return NULL; /* exits holding lk_static_guard */
}

static void test_mutex_left_locked_by_a_thread_is_reported_released_and_poisoned(void **state)
{
    (void)state;
    memset(&lk, 0, sizeof lk);
    memset(&lk_static_guard, 0, sizeof lk_static_guard);
    assert_int_equal(ursa_mutex_init(&lk.m), 0);
    fail_if_msg(thread_leak_poisons(lk_thread_static));
    assert_int_equal(test_leak_count(), 1);
    assert_int_equal(ursa_mutex_destroy(&lk.m), 0);
}

/* The usual shape: the guard is a local of the thread's start routine. */
static void *lk_thread_stack(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    lk.lock_line = __LINE__; lk.lock_rc = ursa_mutex_lock(&lk.m, &g, URSA_NEVER);
    lk.leaker_locked = g.mutex == &lk.m;
    return NULL; /* exits holding g */
}

static void *leak_thread_stack_child(void)
{
    test_capture_leaks();
    memset(&lk, 0, sizeof lk);
    CHECK_EQ(ursa_mutex_init(&lk.m), 0);
    CHECK_OK(thread_leak_poisons(lk_thread_stack));
    CHECK_EQ(ursa_mutex_destroy(&lk.m), 0);
    return NULL;
}

static void test_mutex_guard_on_a_dead_threads_stack_is_released_untouched(void **state)
{
    (void)state;
    run_isolated(leak_thread_stack_child, "thread exit with a guard on its stack");
}

TEST_MAIN(LEAK_CHECKED(test_mutex_left_locked_by_a_task_is_reported_released_and_poisoned),
          LEAK_CHECKED(test_mutex_left_locked_by_a_thread_is_reported_released_and_poisoned),
          LEAK_CHECKED(test_mutex_guard_on_a_dead_threads_stack_is_released_untouched))
