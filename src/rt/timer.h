/* A worker's timers: a binary min-heap of tasks keyed on their one deadline
 * (task->timer_when; task->timer_idx is the task's place in the heap), and
 * a spill list for the timers that found the heap full with no memory to
 * grow it. Owner thread only. */
#ifndef URSA_RT_TIMER_H
#define URSA_RT_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "ursa/rt.h"

/* task->timer_idx of a task not armed / armed on the spill list. */
#define URSA__TIMER_NONE SIZE_MAX
#define URSA__TIMER_SPILLED (SIZE_MAX - 1)

typedef struct ursa__timers {
    ursa_task_t **heap;
    size_t heap_len, cap;
    /* Spilled timers: unsorted, linked through the tasks (no memory
     * needed), scanned on every fire; they move into the heap as soon as
     * it has room again. */
    ursa_task_t *spill;
    size_t len; /* timers armed: in the heap plus spilled */
} ursa__timers_t;

/* Arms t's timer for `when`; it cannot fail (without memory to grow the
 * heap the timer is spilled: correct, only slower to find). */
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
