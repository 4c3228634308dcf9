/* Shared helpers for the cmocka tests. */
#ifndef URSA_TEST_SUPPORT_H
#define URSA_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <ursa.h>

/* Stress loops scale with URSA_TEST_SCALE (percent, default 100); the
 * sanitizer runs in .ci/run lower it. */
static inline long test_scale(long n)
{
    const char *s = getenv("URSA_TEST_SCALE");
    long pct = s ? atol(s) : 100;
    long v = n * (pct > 0 ? pct : 100) / 100;
    return v > 0 ? v : 1;
}

/* On the test's stack: runs fn((void *)(intptr_t)i) on n plain threads,
 * i = 0..n-1, and joins them all. Asserts. */
static inline void run_threads(int n, void *(*fn)(void *))
{
    pthread_t th[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
}

/* The monotonic clock in nanoseconds (real time, also under a
 * deterministic runtime). */
static inline ursa_time_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* How long a test waits for something that must happen before it calls
 * it lost: a hang guard, never a speed check (a loaded machine may take
 * long, only a bug takes forever). 20 s of real time, longer when
 * URSA_TEST_SCALE raises the work. */
static inline ursa_time_t test_hang_guard(void)
{
    long pct = test_scale(100);
    return URSA_SEC(20) * (pct > 100 ? pct : 100) / 100;
}

/* A deadline test_hang_guard() from now (virtual time in a deterministic
 * runtime). */
static inline ursa_time_t test_guard_deadline(void)
{
    return ursa_deadline_in(test_hang_guard());
}

/* In a task: yields until *flag is set; false after test_hang_guard() of
 * real time (another worker's thread may wait long for a CPU). */
static inline bool yield_until(atomic_int *flag)
{
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    while (!atomic_load(flag)) {
        if (mono_ns() > give_up)
            return false;
        (void)ursa_yield();
    }
    return true;
}

/* Step i of a wait for another thread's progress: a few hundred yields (a
 * task yields to its worker's other tasks, a plain thread to other
 * threads), then short sleeps. A task that only yields keeps its worker's
 * thread on the CPU: with the process on one CPU (taskset -c 0) or on a
 * loaded machine, the other worker would then run only when the spinning
 * one's time slice ends, each round costing a time slice. */
static inline void wait_step(unsigned long i)
{
    if (i < 256)
        (void)ursa_yield();
    else
        (void)ursa_sleep_for(URSA_USEC(20));
}

/* One turn of a plain thread's spin on another thread's progress: it
 * yields the CPU once per 50 us of spinning (*since: when the spin or its
 * last yield began). Spinning keeps a race tight on free CPUs; on one CPU
 * (taskset -c 0) or a loaded machine a spin to the end of the time slice
 * would make every round of a race cost one. */
static inline void spin_then_yield(ursa_time_t *since)
{
    if (mono_ns() - *since > URSA_USEC(50)) {
        sched_yield();
        *since = mono_ns();
    }
}

/* Seeds per deterministic scenario, scaled the same way. */
#define TEST_SEEDS ((unsigned)test_scale(300))

/* Captures leak and misuse reports instead of printing/aborting. */
typedef struct leak_log {
    pthread_mutex_t lock;
    int count;
    char owner[64];
    char kind[96];
    int line;
} leak_log_t;

static leak_log_t test_leaks = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {0}, 0};

static inline void test_leak_hook(void *ctx, const char *owner, const char *kind,
                                  const ursa_site_t *site)
{
    leak_log_t *l = ctx;
    pthread_mutex_lock(&l->lock);
    l->count++;
    snprintf(l->owner, sizeof l->owner, "%s", owner);
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    l->line = site ? site->line : 0;
    pthread_mutex_unlock(&l->lock);
}

/* Call at the start of a test that expects leak/misuse reports. */
static inline void test_capture_leaks(void)
{
    pthread_mutex_lock(&test_leaks.lock);
    test_leaks.count = 0;
    test_leaks.owner[0] = test_leaks.kind[0] = 0;
    test_leaks.line = 0;
    pthread_mutex_unlock(&test_leaks.lock);
    ursa_leak_set_abort(false);
    ursa_leak_set_hook(test_leak_hook, &test_leaks);
}

static inline int test_leak_count(void)
{
    pthread_mutex_lock(&test_leaks.lock);
    int n = test_leaks.count;
    pthread_mutex_unlock(&test_leaks.lock);
    return n;
}

/* Copies the last report (owner, kind, line) out under the log's lock;
 * owner and line may be NULL when only the kind matters. */
static inline void test_leak_snapshot(char *owner, size_t olen, char *kind, size_t klen, int *line)
{
    pthread_mutex_lock(&test_leaks.lock);
    if (owner)
        snprintf(owner, olen, "%s", test_leaks.owner);
    snprintf(kind, klen, "%s", test_leaks.kind);
    if (line)
        *line = test_leaks.line;
    pthread_mutex_unlock(&test_leaks.lock);
}

/* Runs fn as the root task of a fresh runtime with `workers` workers and
 * returns the root's result; fails the test if the runtime fails. */
static inline void *test_run(unsigned workers, ursa_task_fn_t fn, void *arg)
{
    void *res = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = workers}, fn, arg, &res);
    assert_int_equal(rc, 0);
    return res;
}

/* Runs a scenario (returns NULL on success, a message on failure) under
 * TEST_SEEDS seeds in deterministic mode with `workers` workers (one
 * thread runs them all, the worker of each turn drawn from the seed) and
 * fails the test on the first failing seed. */
static inline void test_explore_workers(unsigned workers, ursa_task_fn_t scenario, void *arg)
{
    uint64_t seed = 0;
    int rc = ursa_sim_explore(&(ursa_rt_config_t){.workers = workers}, scenario, arg, 1,
                              TEST_SEEDS, &seed);
    if (rc)
        fail_msg("scenario failed at seed %llu: %s", (unsigned long long)seed, ursa_strerror(rc));
}

/* test_explore_workers with one worker. */
static inline void test_explore(ursa_task_fn_t scenario, void *arg)
{
    test_explore_workers(1, scenario, arg);
}

/* A cmocka test that explores one scenario over TEST_SEEDS seeds. */
#define TEST_EXPLORE(name, scenario, arg)                                                 \
    static void name(void **state)                                                        \
    {                                                                                     \
        (void)state;                                                                      \
        test_explore(scenario, arg);                                                      \
    }

/* A cmocka test that explores one scenario over TEST_SEEDS seeds once per
 * argument listed, each a small integer (a capacity, a mode). */
#define TEST_EXPLORE_EACH(name, scenario, ...)                                            \
    static void name(void **state)                                                        \
    {                                                                                     \
        (void)state;                                                                      \
        const uintptr_t args_[] = {__VA_ARGS__};                                          \
        for (size_t i_ = 0; i_ < sizeof args_ / sizeof args_[0]; i_++)                    \
            test_explore(scenario, (void *)args_[i_]);                                    \
    }

/* The program's main: runs the tests given (cmocka_unit_test(...), ...);
 * with an argument, only those whose names match it (a cmocka filter,
 * '*' and '?' allowed). */
#define TEST_MAIN(...)                                                                    \
    int main(int argc, char **argv)                                                       \
    {                                                                                     \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                  \
        if (argc > 1)                                                                     \
            cmocka_set_test_filter(argv[1]);                                              \
        return cmocka_run_group_tests(tests, NULL, NULL);                                 \
    }

#endif
