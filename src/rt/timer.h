/* A worker's timers: a binary min-heap of (deadline, task), one entry per
 * task that waits with a deadline (task->timer_idx is its place in the
 * heap), and a spill list for the timers that found the heap full with no
 * memory to grow it. The deadline lives in the heap, not in the task, and
 * sifting never touches a task.
 *
 * A task arms its timer on the worker it runs on; a migratable task may
 * have moved by the time it disarms it, so every operation takes the
 * heap's small lock (arm and disarm happen only when a wait actually parks
 * with a deadline: never on a fast path). Firing wakes each due task under
 * the lock: a task that disarms from another worker waits for that wake
 * to return, so neither the task nor its spill room (in its frame) goes
 * away under it. */
#ifndef URSA_RT_TIMER_H
#define URSA_RT_TIMER_H

#include <stdatomic.h>
#include <stdbool.h>
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
    _Atomic uint32_t lock;
    ursa__timer_t *heap;
    uint32_t heap_len, cap;
    /* Spilled timers: unsorted, scanned on every fire; they move into the
     * heap as soon as it has room again. */
    ursa__timer_spill_t *spill;
    /* Timers armed: in the heap plus spilled. Changed under the lock, read
     * without it as a hint by the owner's loop. */
    _Atomic size_t len;
} ursa__timers_t;

/* Arms t's timer for `when`; it cannot fail (without memory to grow the
 * heap the timer goes to the spill list, in `room`: correct, only slower
 * to find). room must stay valid until the timer is disarmed or fired. */
void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when,
                     ursa__timer_spill_t *room);
/* Disarms t's timer if it is still in tm (any thread). */
void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t);
/* Wakes every task whose deadline is <= now. */
void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now);
/* Whether any timer is armed (a hint for the owner's loop). */
static inline bool ursa__timers_any(ursa__timers_t *tm)
{
    /* relaxed: a hint; the lock orders the heap itself. */
    return atomic_load_explicit(&tm->len, memory_order_relaxed) != 0;
}
/* The earliest deadline, or URSA_NEVER when none is armed. */
ursa_time_t ursa__timers_next(ursa__timers_t *tm);
/* Frees the heap (the runtime is going away). */
void ursa__timers_fini(ursa__timers_t *tm);

#endif
