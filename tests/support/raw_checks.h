/* Helpers shared by the mutex, rwlock, barrier and once tests: leak
 * capture around each test, spawn/join with messages, and (raw_waker.h) a
 * counting foreign waker for raw waits. Include after support.h. */
#ifndef URSA_TEST_RAW_CHECKS_H
#define URSA_TEST_RAW_CHECKS_H

#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "raw_waker.h"
#include "task_checks.h"

static __attribute__((unused)) bool default_abort_on_leak;

/* Every test captures leak/misuse reports (so a misuse fails an assertion
 * instead of aborting the program) and checks how many it expected; the
 * first setup remembers the default, for teardown to restore. */
static __attribute__((unused)) int setup(void **state)
{
    (void)state;
    static bool saved;
    if (!saved) {
        default_abort_on_leak = ursa_leak_set_abort(true);
        ursa_leak_set_abort(default_abort_on_leak);
        saved = true;
    }
    test_capture_leaks();
    return 0;
}

static __attribute__((unused)) int teardown(void **state)
{
    (void)state;
    ursa_leak_set_hook(NULL, NULL);
    ursa_leak_set_abort(default_abort_on_leak);
    return 0;
}

/* TEST_EXPLORE, and no leak or misuse was reported. */
#define TEST_EXPLORE_NO_LEAKS(name, scenario, arg)                                        \
    static void name(void **state)                                                        \
    {                                                                                     \
        (void)state;                                                                      \
        test_explore(scenario, arg);                                                      \
        assert_int_equal(test_leak_count(), 0);                                           \
    }

/* A test run between setup and teardown. */
#define LEAK_CHECKED(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static __attribute__((unused)) void fail_if_msg(void *msg)
{
    if (msg)
        fail_msg("%s", (const char *)msg);
}

/* Spawns on worker `worker`, or on the caller's (-1). */
static __attribute__((unused)) int spawn_named(ursa_task_t **t, ursa_task_fn_t fn, void *arg, const char *name,
                       int worker)
{
    ursa_spawn_opts_t o = {.name = name, URSA_ON_WORKER(worker)};
    if (worker < 0)
        o = (ursa_spawn_opts_t){.name = name, .placement = URSA_PLACE_LOCAL};
    return ursa_spawn(t, fn, arg, &o);
}

/* As a root task: spawns n tasks named name, task i running
 * fn((void *)(intptr_t)i) on worker i % 2, then sets *go (the signal the
 * plain threads of a mixed stress wait for) and joins them all. NULL, or
 * a message. */
static __attribute__((unused)) void *spawn_tasks_then_go(int n, ursa_task_fn_t fn,
                                                         const char *name, _Atomic int *go)
{
    ursa_task_t *t[64];
    if (n > 64)
        return (void *)"spawn_tasks_then_go: too many tasks";
    for (int i = 0; i < n; i++)
        if (spawn_named(&t[i], fn, (void *)(intptr_t)i, name, i % 2))
            return (void *)"spawn failed";
    atomic_store(go, 1);
    for (int i = 0; i < n; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER))
            return (void *)"join failed";
    return NULL;
}

typedef struct tasks_then_go {
    int ntasks;
    ursa_task_fn_t task;
    const char *name;
    _Atomic int *go;
} tasks_then_go_t;

static __attribute__((unused)) void *tasks_then_go_root(void *arg)
{
    tasks_then_go_t *a = arg;
    return spawn_tasks_then_go(a->ntasks, a->task, a->name, a->go);
}

/* Tasks and plain threads side by side: ntasks tasks (task i on worker
 * i % 2, as spawn_tasks_then_go) on a two-worker runtime, and nthreads
 * plain threads running thread((void *)(intptr_t)i), which wait for *go
 * themselves so that both kinds start together. Asserts that both ran. */
static __attribute__((unused)) void run_tasks_and_threads(int ntasks, ursa_task_fn_t task,
                                                          const char *name, int nthreads,
                                                          void *(*thread)(void *),
                                                          _Atomic int *go)
{
    pthread_t th[16];
    assert_true(nthreads <= 16);
    for (int i = 0; i < nthreads; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread, (void *)(intptr_t)i), 0);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    tasks_then_go_t a = {ntasks, task, name, go};
    void *res = NULL;
    int rc = ursa_rt_block_on(rt, tasks_then_go_root, &a, &res);
    atomic_store(go, 1); /* in case the root never ran */
    /* Tasks are done; the threads need no worker to finish. */
    for (int i = 0; i < nthreads; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    ursa_rt_free(rt);
    assert_int_equal(rc, 0);
    fail_if_msg(res);
}

#define JOIN_OK(t)                                                                 \
    do {                                                                           \
        void *res_ = NULL;                                                         \
        int jrc_ = ursa_task_join((t), &res_, URSA_NEVER);                         \
        if (jrc_)                                                                  \
            return (void *)(__FILE__ ":" URSA_SIM_STR(__LINE__) ": join failed"); \
        if (res_)                                                                  \
            return res_;                                                           \
    } while (0)

#endif
