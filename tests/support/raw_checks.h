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
 * instead of aborting the program) and checks how many it expected. */
static __attribute__((unused)) int setup(void **state)
{
    (void)state;
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

static __attribute__((unused)) void fail_if_msg(void *msg)
{
    if (msg)
        fail_msg("%s", (const char *)msg);
}

static __attribute__((unused)) int spawn_named(ursa_task_t **t, ursa_task_fn_t fn, void *arg, const char *name,
                       int worker)
{
    return ursa_spawn(t, fn, arg, &(ursa_spawn_opts_t){.name = name, .worker = worker});
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
