/* A worker's timers: a binary min-heap of tasks keyed on their one deadline
 * (task->timer_when; task->timer_idx is the task's place in the heap).
 * Owner thread only. */
#ifndef URSA_RT_TIMER_H
#define URSA_RT_TIMER_H

#include <stddef.h>

#include "ursa/rt.h"

typedef struct ursa__timers {
    ursa_task_t **heap;
    size_t len, cap;
} ursa__timers_t;

/* Arms t's timer for `when`. Without memory for it, wakes t at once
 * instead: its wait loop re-checks the clock, so it polls. */
void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when);
/* Disarms t's timer, if armed. */
void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t);
/* Wakes every task whose deadline is <= now. */
void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now);
/* The earliest deadline; only while tm->len > 0. */
ursa_time_t ursa__timers_next(const ursa__timers_t *tm);
/* Frees the heap (the runtime is going away). */
void ursa__timers_fini(ursa__timers_t *tm);

#endif
