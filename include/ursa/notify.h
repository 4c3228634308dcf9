/* ursa — notify: wake one waiter, the newest, or all of them, with a
 * single stored permit (the model is Tokio's Notify).
 *
 *     ursa_notify_t n;  ursa_notify_init(&n);
 *
 *     // consumer: check-then-wait without a lost-wakeup window
 *     ursa_wait_t w;
 *     for (;;) {
 *         ursa_notify_enable(&n, &w);            // queued from here on
 *         if (queue_not_empty()) { ursa_notify_disable(&n, &w); break; }
 *         if (ursa_notify_wait_enabled(&n, &w, deadline) != 0) break;
 *     }
 *
 *     // producer
 *     push(item);  ursa_notify_one(&n);
 *
 * - ursa_notify_one wakes the oldest waiter; with nobody waiting it stores
 *   one permit that the next wait consumes at once. Permits do not add up:
 *   a second notify_one with a permit already stored changes nothing.
 * - ursa_notify_last wakes the newest waiter (or stores the permit).
 * - ursa_notify_waiters wakes every waiter queued when it is called
 *   (including enabled ones that have not blocked yet) and stores nothing;
 *   waiters that queue afterwards are not woken by it.
 * - No notification is lost to a cancel: a raw wait (or an enabled waiter)
 *   that was woken by notify_one / notify_last and is then cancelled or
 *   disabled passes the notification on, to the next waiter of the same
 *   order or back into the stored permit (where, like any notify_one, it
 *   is absorbed if a permit is already stored). A blocking wait whose deadline
 *   or cancel races with a notification keeps it and returns 0.
 *
 * A notify wait holds nothing afterwards, so there is no hold object and
 * no phase 2. */
#ifndef URSA_NOTIFY_H
#define URSA_NOTIFY_H

#include "detail/notify.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A notify: embed it, ursa_notify_init it. Fields private
 * (ursa/detail/notify.h). */
typedef struct ursa_notify ursa_notify_t;

/* Not a wait: initialises an embedded notify: no permit, no waiters.
 *   0        initialised
 *   -EINVAL  n is NULL */
URSA_API int ursa_notify_init(ursa_notify_t *n);

/* Not a wait: ends the notify's life.
 *   0        destroyed
 *   -EBUSY   waiters still queued (reported as misuse; nothing changed)
 *   -EINVAL  n is NULL */
URSA_API int ursa_notify_destroy(ursa_notify_t *n);

/* Not a wait: wakes the oldest queued waiter, or (nobody queued) stores
 * the permit. Any thread or task; never blocks.
 *   1        this call made a notification: it woke a waiter, or stored
 *            the permit where none was
 *   0        a permit was already stored: the call was absorbed by it
 *   -EINVAL  NULL
 * (So the notifications made are exactly the calls that returned 1.) */
URSA_API int ursa_notify_one(ursa_notify_t *n);

/* Not a wait: ursa_notify_one, but it wakes the newest queued waiter
 * (LIFO). Codes as ursa_notify_one. */
URSA_API int ursa_notify_last(ursa_notify_t *n);

/* Not a wait: wakes every waiter queued at the moment of the call,
 * enabled-but-not-blocked ones included, and stores no permit (a stored
 * permit stays as it is). Waiters that queue later are not woken by it.
 *   n >= 0   how many it woke
 *   -EINVAL  n is NULL */
URSA_API int ursa_notify_waiters(ursa_notify_t *n);

/* Phase 1 (wait; there is no phase 2): waits for a notification. Consumes
 * the stored permit if there is one (returns 0 at once). Works in a task
 * (suspends) and on a plain thread (parks).
 *   0           notified (by notify_one/last/waiters, or the permit)
 *   -EAGAIN     deadline is URSA_NOW and no permit was stored
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     n is NULL
 * On an error nothing was consumed. A notification that lands in the same
 * instant as the deadline or cancel is kept: the call returns 0. */
#define ursa_notify_wait(n, deadline) ursa_notify_wait_at(n, deadline, URSA_SITE)
URSA_API int ursa_notify_wait_at(ursa_notify_t *n, ursa_time_t deadline,
                                 const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), first half of a check-then-wait: queues w as a waiter of n
 * right now, on behalf of the calling task or thread, without blocking.
 * Any notification from here on (notify_one, notify_last, notify_waiters)
 * can reach w, so a condition checked after this call cannot miss a
 * wake-up. A stored permit is consumed at once (w is then already
 * notified). w must not be in use by another wait, and must stay valid
 * and unmoved until ursa_notify_wait_enabled or ursa_notify_disable ends
 * the wait, called from the same task or thread (its waker is the
 * caller's). Between enable and that call the caller may run other code,
 * including other waits: a notification only makes it runnable early.
 *   0        enabled (queued, or already notified)
 *   -EINVAL  NULL argument, or w is still a notify wait that has not
 *            ended (enabled twice, or raw-started, on this or another
 *            notify): nothing changed, w stays as it was */
#define ursa_notify_enable(n, w) ursa_notify_enable_at(n, w, URSA_SITE)
URSA_API int ursa_notify_enable_at(ursa_notify_t *n, ursa_wait_t *w, const ursa_site_t *site);

/* Phase 1 (wait), second half: blocks until the enabled waiter w is notified,
 * and ends the wait either way (w may be enabled again afterwards).
 *   0           notified (possibly before this call)
 *   -EAGAIN     deadline is URSA_NOW and w has not been notified
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     NULL, or w is not an enabled waiter of n
 * On an error w was withdrawn and nothing was consumed. */
URSA_API int ursa_notify_wait_enabled(ursa_notify_t *n, ursa_wait_t *w,
                                      ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait), withdraw: ends an enabled wait without blocking. If w had
 * already been woken by notify_one / notify_last (or took the permit),
 * that notification is passed on (next waiter, or the stored permit), so
 * it is not lost.
 *   0        withdrawn before any notification reached it
 *   1        it had been notified; the notification was passed on
 *            (or, for notify_waiters, simply dropped: nothing to pass)
 *   -EINVAL  NULL, or w is not an enabled waiter of n */
URSA_API int ursa_notify_disable(ursa_notify_t *n, ursa_wait_t *w);

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start:
 *   0             notified already (the stored permit); call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a notification reaches w
 *   -EINVAL       NULL n / w / waker.fn, or w is still a notify wait
 *                 that has not ended (nothing changed)
 * _finish, once ursa_wait_ready(w):
 *   0        notified; the wait is over
 *   -EAGAIN  not notified yet (w stays queued)
 *   -EINVAL  NULL, w not started on n, or already finished / cancelled
 * Or ursa_wait_cancel(w) (-ECANCELED) instead of _finish: a notification
 * that had reached w (notify_one / notify_last / the permit) is passed on
 * to the next waiter or back into the stored permit. */
#define ursa_notify_wait_start(n, w, ...) ursa_notify_wait_start_at(n, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_notify_wait_start_at(ursa_notify_t *n, ursa_wait_t *w, ursa_waker_t waker,
                                       const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_notify_wait_finish(ursa_notify_t *n, ursa_wait_t *w) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
