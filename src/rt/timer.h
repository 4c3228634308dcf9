/* A worker's timers: a binary min-heap of (deadline, task), one entry per
 * task that waits with a deadline (task->timer_idx is its place in the
 * heap), and a spill list for the timers that found the heap full with no
 * memory to grow it. The deadline lives in the heap, not in the task, and
 * sifting never touches a task. Owner thread only. */
#ifndef URSA_RT_TIMER_H
#define URSA_RT_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "ursa/rt.h"

/* task->timer_idx of a task not armed / armed on the spill list. */
#define URSA__TIMER_NONE UINT32_MAX
#define URSA__TIMER_SPILLED (UINT32_MAX - 1)

typedef struct ursa__timer {
    ursa_time_t when;
    ursa_task_t *task;
} ursa__timer_t;

/* Room for a timer that cannot go in the heap, provided by the waiting
 * call (in its frame: it outlives the wait, and costs no memory). */
typedef struct ursa__timer_spill {
    ursa__timer_t timer;
    struct ursa__timer_spill *next;
} ursa__timer_spill_t;

typedef struct ursa__timers {
    ursa__timer_t *heap;
    uint32_t heap_len, cap;
    /* Spilled timers: unsorted, scanned on every fire; they move into the
     * heap as soon as it has room again. */
    ursa__timer_spill_t *spill;
    size_t len; /* timers armed: in the heap plus spilled */
} ursa__timers_t;

/* Arms t's timer for `when`; it cannot fail (without memory to grow the
 * heap the timer goes to the spill list, in `room`: correct, only slower
 * to find). room must stay valid until the timer is disarmed or fired. */
void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when,
                     ursa__timer_spill_t *room);
/* Disarms t's timer, if armed. */
void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t);
/* Wakes every task whose deadline is <= now. */
void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now);
/* The earliest deadline; only while tm->len > 0. */
ursa_time_t ursa__timers_next(const ursa__timers_t *tm);
/* Frees the heap (the runtime is going away). */
void ursa__timers_fini(ursa__timers_t *tm);

#endif
