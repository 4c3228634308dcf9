/* Starting a task and letting it reach its wait before the test acts on
 * it (cancels it, writes what it reads, queues behind it). Include after
 * support.h. */
#ifndef URSA_TEST_SPAWN_STARTED_H
#define URSA_TEST_SPAWN_STARTED_H

#include "support.h"

/* In a task: spawns fn(arg) as *t, yields until the task sets *started
 * (yield_until's bound), then sleeps `settle` so it reaches the wait that
 * follows. 0; -1 when the spawn failed, -2 when the task never started. */
static inline int spawn_until_started(ursa_task_t **t, void *(*fn)(void *), void *arg,
                                      atomic_int *started, ursa_time_t settle)
{
    if (ursa_spawn(t, fn, arg, NULL))
        return -1;
    if (!yield_until(started))
        return -2;
    (void)ursa_sleep_for(settle);
    return 0;
}

#endif
