/* ursa — events, Win32 style (like the rsevents crate): a boolean
 * "signalled" state that waiters wait for.
 *
 *     ursa_event_t ready;
 *     ursa_event_init(&ready, URSA_EVENT_MANUAL, false);
 *     // waiters:  if (ursa_event_wait(&ready, URSA_NEVER) == 0) go();
 *     // starter:  ursa_event_set(&ready);     // everyone goes, stays set
 *
 * - URSA_EVENT_AUTO (auto-reset): one ursa_event_set lets exactly one
 *   waiter through. With waiters queued it releases the oldest and the
 *   event stays unset; with none it leaves the event set (saturating: a
 *   second set while set changes nothing) until one wait consumes it.
 * - URSA_EVENT_MANUAL (manual-reset): ursa_event_set releases every
 *   queued waiter and leaves the event set until ursa_event_reset; waits
 *   on a set manual event return 0 at once.
 *
 * Waiters queue in FIFO order. A timeout or cancel never clears the event
 * and never swallows a set: a blocking wait that a set reached in the same
 * instant as its deadline keeps it (returns 0); a raw wait that was
 * released and is then cancelled gives its set back (auto-reset: to the
 * next waiter, or the event becomes set again).
 *
 * A wait holds nothing afterwards: there is no hold object and no phase 2. */
#ifndef URSA_EVENT_H
#define URSA_EVENT_H

#include "detail/event.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef enum ursa_event_mode {
    URSA_EVENT_AUTO = 1,   /* auto-reset: one set, one waiter */
    URSA_EVENT_MANUAL = 2, /* manual-reset: set until reset */
} ursa_event_mode_t;

/* An event: embed it, ursa_event_init it. Fields private
 * (ursa/detail/event.h). */
typedef struct ursa_event ursa_event_t;

/* Not a wait: initialises an embedded event in the given mode, set or
 * not.
 *   0        initialised
 *   -EINVAL  e is NULL, or an unknown mode */
URSA_API int ursa_event_init(ursa_event_t *e, ursa_event_mode_t mode, bool initially_set);

/* Not a wait: ends the event's life.
 *   0        destroyed
 *   -EBUSY   waiters still queued (reported as misuse; nothing changed)
 *   -EINVAL  e is NULL */
URSA_API int ursa_event_destroy(ursa_event_t *e);

/* Not a wait: signals the event. Auto-reset: releases the oldest waiter,
 * or leaves the event set if nobody waits. Manual-reset: releases every
 * queued waiter and leaves the event set. Any thread or task; never
 * blocks.
 *   1        the event was unset: this call signalled it (and may have
 *            released waiters)
 *   0        it was already set: nothing changed
 *   -EINVAL  NULL */
URSA_API int ursa_event_set(ursa_event_t *e);

/* Not a wait: clears the signalled state (waiters stay queued).
 *   1        it was set
 *   0        it was not
 *   -EINVAL  e is NULL */
URSA_API int ursa_event_reset(ursa_event_t *e);

/* Not a wait: whether the event is set right now (a snapshot; false for
 * NULL). */
URSA_API bool ursa_event_is_set(const ursa_event_t *e);

/* Phase 1 (wait; there is no phase 2): waits until the event lets the
 * caller through. Auto-reset: consumes the set. Manual-reset: leaves it
 * set. Works in a task (suspends) and on a plain thread (parks).
 *   0           released (or the event was set already)
 *   -EAGAIN     deadline is URSA_NOW and the event is not set
 *   -ETIMEDOUT  the deadline passed first (the event is left as it was)
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     e is NULL
 * A set that lands in the same instant as the deadline or cancel is kept:
 * the call returns 0. */
#define ursa_event_wait(e, deadline) ursa_event_wait_at(e, deadline, URSA_SITE)
URSA_API int ursa_event_wait_at(ursa_event_t *e, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start:
 *   0             released already (event was set); call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a set releases w
 *   -EINVAL       NULL e / w / waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        released; the wait is over
 *   -EAGAIN  not released yet (w stays queued)
 *   -EINVAL  NULL, w not started on e, or already finished / cancelled
 * Or ursa_wait_cancel(w) (-ECANCELED) instead of _finish: an auto-reset
 * set that had released w goes on to the next waiter, or back into the
 * event (which is set again). */
#define ursa_event_wait_start(e, w, ...) ursa_event_wait_start_at(e, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_event_wait_start_at(ursa_event_t *e, ursa_wait_t *w, ursa_waker_t waker,
                                      const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_event_wait_finish(ursa_event_t *e, ursa_wait_t *w) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
