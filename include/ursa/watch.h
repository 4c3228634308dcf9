/* ursa — watch channel: one latest value of elem_size bytes, many
 * receivers that each learn when it changed (the model is Tokio's watch).
 *
 *     ursa_watch_tx_t *tx;  ursa_watch_rx_t *rx;
 *     cfg_t init = {...};
 *     ursa_watch_new(&tx, &rx, sizeof(cfg_t), &init);
 *
 *     // receiver task                          // sender
 *     while (ursa_watch_changed(rx, URSA_NEVER) == 0) {      cfg_t c = ...;
 *         URSA_SCOPED(watch_borrow, g);                       ursa_watch_send(tx, &c);
 *         if (ursa_watch_borrow_and_update(rx, &g) == 0)
 *             apply((const cfg_t *)ursa_watch_borrow_ptr(&g));
 *     }   // -EPIPE: every sender is gone and the last value was seen
 *
 * Handles. ursa_watch_new allocates the shared channel and one sender and
 * one receiver handle. ursa_watch_sender_clone / ursa_watch_subscribe /
 * ursa_watch_receiver_clone make more; each handle is dropped exactly once
 * (ursa_watch_sender_drop / ursa_watch_receiver_drop); the channel is
 * freed when the last handle and the last borrow are gone. A handle may
 * move between tasks and threads, but one handle is used by one caller at
 * a time (a receiver handle holds its "seen" version).
 *
 * Versions. Every stored value has a version. A receiver remembers the
 * version it has seen: ursa_watch_new's and ursa_watch_subscribe's
 * receivers have seen the current value, a clone has seen what its source
 * had. ursa_watch_changed / ursa_watch_borrow_and_update / wait_for mark
 * the current version seen; ursa_watch_borrow does not.
 *
 * Borrows. ursa_watch_borrow returns a read guard hold (phase 2: an
 * obligation in the caller's ledger, kind "watch borrow"): while any borrow
 * is held the value cannot change: senders wait (a sending task suspends,
 * a plain thread parks) until every borrow is released. Keep borrows short
 * and never send on a watch while holding a borrow of it (self-deadlock).
 * Readers are preferred: a waiting sender does not hold new borrows off.
 *
 * Closing. When the last sender drops, receivers that have not seen the
 * latest value get it once more (changed returns 0), then -EPIPE. When the
 * last receiver drops, ursa_watch_send fails with -EPIPE and does not store
 * (ursa_watch_send_replace and ursa_watch_send_modify always store), and
 * ursa_watch_closed returns on the senders' side. */
#ifndef URSA_WATCH_H
#define URSA_WATCH_H

#include "detail/watch.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_watch ursa_watch_t;       /* shared state; private */
typedef struct ursa_watch_tx ursa_watch_tx_t; /* a sender handle */
typedef struct ursa_watch_rx ursa_watch_rx_t; /* a receiver handle */

/* A borrow: read guard hold on the value. Zero-initialise it (or use
 * URSA_SCOPED(watch_borrow, g)). Fields private. */
typedef struct ursa_watch_borrow ursa_watch_borrow_t;

/* Predicate for ursa_watch_wait_for: true when value is acceptable. Runs
 * with a borrow held: must not send on the same watch. */
typedef bool (*ursa_watch_pred_t)(const void *value, void *ctx);

/* Edits the value in place for ursa_watch_send_modify; returns whether it
 * changed anything. Runs under the write lock: must not block, suspend, or
 * call into the same watch. */
typedef bool (*ursa_watch_modify_t)(void *value, void *ctx);

/* Not a wait: creates a watch holding a copy of initial (elem_size
 * bytes; NULL: all zero), with one sender and one receiver handle.
 *   0        created
 *   -EINVAL  NULL tx/rx, elem_size 0
 *   -ENOMEM  out of memory */
URSA_API int ursa_watch_new(ursa_watch_tx_t **tx, ursa_watch_rx_t **rx, size_t elem_size,
                            const void *initial) URSA_NODISCARD;

/* Not a wait: a new sender handle for the same watch.
 *   0        *out set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_watch_sender_clone(ursa_watch_tx_t *tx, ursa_watch_tx_t **out) URSA_NODISCARD;

/* Not a wait: drops a sender handle (frees it). The last one closes the
 * channel for the receivers (see Closing).
 *   0        dropped
 *   -EINVAL  tx is NULL */
URSA_API int ursa_watch_sender_drop(ursa_watch_tx_t *tx);

/* Not a wait: a new receiver that has seen the current value. Works after
 * every receiver dropped (sends succeed again).
 *   0        *out set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_watch_subscribe(ursa_watch_tx_t *tx, ursa_watch_rx_t **out) URSA_NODISCARD;

/* Not a wait: a new receiver with the same seen version as rx.
 *   0        *out set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_watch_receiver_clone(ursa_watch_rx_t *rx, ursa_watch_rx_t **out) URSA_NODISCARD;

/* Not a wait: drops a receiver handle (frees it; borrows taken through it
 * stay valid until released). The last one wakes ursa_watch_closed.
 *   0        dropped
 *   -EINVAL  rx is NULL */
URSA_API int ursa_watch_receiver_drop(ursa_watch_rx_t *rx);

/* Not a wait: live handle counts (a snapshot).
 *   n >= 0   the count
 *   -EINVAL  NULL argument */
URSA_API int ursa_watch_receiver_count(const ursa_watch_tx_t *tx);
URSA_API int ursa_watch_sender_count(const ursa_watch_rx_t *rx);

/* Phase 1 (wait, without a deadline), sender: stores a copy of value as
 * the new latest value and wakes every receiver waiting for a change.
 * Waits only while borrows are held.
 *   0           stored, receivers notified
 *   -EPIPE      no receiver left: nothing stored
 *   -ECANCELED  the calling task was cancelled while it waited for the
 *               borrows to go: nothing stored
 *   -EINVAL     NULL argument */
URSA_API int ursa_watch_send(ursa_watch_tx_t *tx, const void *value);

/* Phase 1 (wait, without a deadline), sender: like ursa_watch_send but
 * stores even with no receivers; old (may be NULL) gets the previous
 * value.
 *   0           stored, receivers notified
 *   -ECANCELED  as for ursa_watch_send: nothing stored
 *   -EINVAL     NULL argument */
URSA_API int ursa_watch_send_replace(ursa_watch_tx_t *tx, const void *value, void *old);

/* Phase 1 (wait, without a deadline), sender: runs fn(value, ctx) under
 * the write lock; if it returns true the version advances and receivers
 * are woken, otherwise nothing is signalled (edits it made stay, unseen).
 * Stores with or without receivers.
 *   1           fn reported a change: receivers notified
 *   0           fn reported no change
 *   -ECANCELED  cancelled while waiting for borrows (fn not called)
 *   -EINVAL     NULL argument */
URSA_API int ursa_watch_send_modify(ursa_watch_tx_t *tx, ursa_watch_modify_t fn, void *ctx);

/* Phase 2 (hold), receiver: borrows the current value. Until released the
 * value can't change. Does not mark it seen. Never waits for long: only
 * for a send's copy in progress.
 *   0        g holds the borrow: ursa_watch_borrow_ptr(g) is the value
 *   -EINVAL  NULL, or g already holds a borrow
 *   -ENOMEM  the ledger could not grow, or 2^28 - 1 borrows of this watch
 *            are already held (nothing held) */
#define ursa_watch_borrow(rx, g) ursa_watch_borrow_at(rx, g, URSA_SITE, false)
/* Phase 2 (hold): the same, and marks the borrowed version seen by rx. */
#define ursa_watch_borrow_and_update(rx, g) ursa_watch_borrow_at(rx, g, URSA_SITE, true)
URSA_API int ursa_watch_borrow_at(ursa_watch_rx_t *rx, ursa_watch_borrow_t *g,
                                  const ursa_site_t *site, bool update) URSA_NODISCARD;

/* Phase 2 (hold), sender: a borrow of the current value through a sender
 * handle (Tokio's Sender::borrow), as ursa_watch_borrow; it marks nothing.
 * Release it before this thread or task sends: a send waits for the
 * borrows to leave.
 *   0        g holds the borrow
 *   -EINVAL  NULL, or g already holds a borrow
 *   -ENOMEM  as ursa_watch_borrow (nothing held) */
#define ursa_watch_sender_borrow(tx, g) ursa_watch_sender_borrow_at(tx, g, URSA_SITE)
URSA_API int ursa_watch_sender_borrow_at(ursa_watch_tx_t *tx, ursa_watch_borrow_t *g,
                                         const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): the borrowed value (elem_size bytes), or NULL if g
 * holds nothing. */
URSA_API const void *ursa_watch_borrow_ptr(const ursa_watch_borrow_t *g);

/* Phase 2 (hold): ends a borrow; a waiting sender may proceed.
 *   0        released
 *   -EINVAL  NULL, or not holding (a double release: reported as misuse)
 *   -EPERM   another task's or thread's borrow (see ursa_oblig_disown) */
URSA_API int ursa_watch_borrow_release(ursa_watch_borrow_t *g);

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(watch_borrow,
 * g): releases if held, does nothing if empty. */
URSA_API void ursa_watch_borrow_cleanup(ursa_watch_borrow_t *g);

/* Phase 1 (wait; no hold follows: read the value with a borrow),
 * receiver: waits until the watch holds a version rx has not seen, and
 * marks it seen.
 *   0           there is an unseen value (also once after the senders
 *               dropped, if the last value was unseen)
 *   -EPIPE      every sender is gone and the latest value was seen
 *   -EAGAIN     deadline is URSA_NOW and nothing is new
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     rx is NULL */
#define ursa_watch_changed(rx, deadline) ursa_watch_changed_at(rx, deadline, URSA_SITE)
URSA_API int ursa_watch_changed_at(ursa_watch_rx_t *rx, ursa_time_t deadline,
                                   const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), receiver, raw two-phase form of ursa_watch_changed
 * (calling context 3, see ursa/wait.h): for a foreign event loop with a
 * waker of its own. rx is used by one caller at a time, as always; n must
 * stay valid and unmoved until finished or cancelled, and rx must not be
 * dropped before that. A _start on a node still queued (after _finish said
 * "not woken yet") returns -EINPROGRESS and leaves it queued.
 * _start (marks nothing):
 *   0             decided already: an unseen value is there, or every
 *                 sender is gone; call _finish now (waker not called)
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a send that changes the version, or the
 *                 last sender drop, reaches n
 *   -EINVAL       NULL rx / n / waker.fn
 * _finish, once ursa_wait_ready(n) (marks the current version seen):
 *   0        an unseen value is there (read it with a borrow)
 *   -EPIPE   every sender is gone and the latest value was seen
 *   -EAGAIN  not woken yet (n stays queued: finish later or cancel);
 *            or woken, but nothing is new for rx any more (the
 *            change was marked seen meanwhile, e.g. by a borrow with
 *            update): the wait is over, start again
 *   -EINVAL  NULL, n not started on rx's watch by _start, or already
 *            finished or cancelled
 * Or ursa_wait_cancel(n) (-ECANCELED) instead of _finish: nothing is
 * marked, so a change that raced the cancel stays unseen (has_changed
 * reports it, the next changed returns 0 at once).
 * There is no raw form of ursa_watch_wait_for: it ends holding a borrow
 * and runs a predicate, which a loop composes itself from these: start,
 * finish (0), ursa_watch_borrow_and_update, test the value, release, and
 * start again while the predicate is false. */
URSA_API int ursa_watch_changed_start(ursa_watch_rx_t *rx, ursa_wait_t *n,
                                      ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_watch_changed_finish(ursa_watch_rx_t *rx, ursa_wait_t *n) URSA_NODISCARD;

/* Not a wait, receiver: never blocks; marks nothing.
 *   1        an unseen value is there (even with every sender gone)
 *   0        nothing new
 *   -EPIPE   nothing new and every sender gone
 *   -EINVAL  rx is NULL */
URSA_API int ursa_watch_has_changed(const ursa_watch_rx_t *rx);

/* Not a wait, receiver: marks the current value unseen by rx (has_changed
 * says 1, the next changed returns 0 at once), or seen (nothing new until
 * the next send). Tokio's mark_changed / mark_unchanged.
 *   0        marked
 *   -EINVAL  rx is NULL */
URSA_API int ursa_watch_mark_changed(ursa_watch_rx_t *rx);
URSA_API int ursa_watch_mark_unchanged(ursa_watch_rx_t *rx);

/* Phase 1 then 2 (wait, then hold), receiver: waits until pred(value,
 * ctx) is true (checking the current value first), marks it seen and
 * returns with g holding a borrow of that value. On an error nothing is
 * marked seen (the values pred rejected stay unseen for changed and
 * has_changed).
 *   0           pred true; g holds the borrow (release it)
 *   -EPIPE      every sender is gone and pred is false for the last value
 *   -EAGAIN     deadline is URSA_NOW and pred is false
 *   -ETIMEDOUT  the deadline passed first (nothing held)
 *   -ECANCELED  the calling task was cancelled first (nothing held)
 *   -ENOMEM     as for ursa_watch_borrow
 *   -EINVAL     NULL, or g already holds */
#define ursa_watch_wait_for(rx, pred, ctx, g, deadline) \
    ursa_watch_wait_for_at(rx, pred, ctx, g, deadline, URSA_SITE)
URSA_API int ursa_watch_wait_for_at(ursa_watch_rx_t *rx, ursa_watch_pred_t pred, void *ctx,
                                    ursa_watch_borrow_t *g, ursa_time_t deadline,
                                    const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), sender: waits until every receiver is gone.
 *   0           no receiver left
 *   -EAGAIN     deadline is URSA_NOW and receivers remain
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     tx is NULL */
#define ursa_watch_closed(tx, deadline) ursa_watch_closed_at(tx, deadline, URSA_SITE)
URSA_API int ursa_watch_closed_at(ursa_watch_tx_t *tx, ursa_time_t deadline,
                                  const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), sender, raw two-phase form of ursa_watch_closed
 * (calling context 3, see ursa/wait.h). n must stay valid and unmoved until
 * finished or cancelled, and tx must not be dropped before that.
 * _start (on a node still queued: -EINPROGRESS, it stays queued):
 *   0             no receiver left already; call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the last receiver drops
 *   -EINVAL       NULL tx / n / waker.fn
 * _finish, once ursa_wait_ready(n):
 *   0        no receiver left
 *   -EAGAIN  not woken yet (n stays queued); or woken, but a receiver
 *            subscribed again since: the wait is over, start again
 *   -EINVAL  NULL, n not started on tx's watch by _start, or already
 *            finished or cancelled
 * Or ursa_wait_cancel(n) (-ECANCELED) instead of _finish. */
URSA_API int ursa_watch_closed_start(ursa_watch_tx_t *tx, ursa_wait_t *n,
                                     ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_watch_closed_finish(ursa_watch_tx_t *tx, ursa_wait_t *n) URSA_NODISCARD;

/* Typed wrappers: URSA_WATCH_TYPED(cfgw, cfg_t) defines static inline
 * cfgw_new(&tx, &rx, const cfg_t *initial), cfgw_send(tx, cfg_t v),
 * cfgw_send_replace(tx, cfg_t v, cfg_t *old), cfgw_get(rx, cfg_t *out)
 * (copy under a short borrow, marks nothing), cfgw_get_and_update(rx, out)
 * (marks seen) and cfgw_borrow_ptr(g) returning const cfg_t *. Return
 * codes as above (get: those of ursa_watch_borrow). */

#define URSA_WATCH_TYPED(name, T)                                                                 \
    URSA__TYPED_FN URSA_NODISCARD int name##_new(ursa_watch_tx_t **tx, ursa_watch_rx_t **rx,      \
                                                const T *initial)                                 \
    {                                                                                             \
        return ursa_watch_new(tx, rx, sizeof(T), initial);                                        \
    }                                                                                             \
    URSA__TYPED_FN int name##_send(ursa_watch_tx_t *tx, T v)                                      \
    {                                                                                             \
        return ursa_watch_send(tx, &v);                                                           \
    }                                                                                             \
    URSA__TYPED_FN int name##_send_replace(ursa_watch_tx_t *tx, T v, T *old)                      \
    {                                                                                             \
        return ursa_watch_send_replace(tx, &v, old);                                              \
    }                                                                                             \
    URSA__TYPED_FN const T *name##_borrow_ptr(const ursa_watch_borrow_t *g)                       \
    {                                                                                             \
        return (const T *)ursa_watch_borrow_ptr(g);                                               \
    }                                                                                             \
    URSA__TYPED_FN int name##_get_(ursa_watch_rx_t *rx, T *out, bool update)                      \
    {                                                                                             \
        ursa_watch_borrow_t g_ = {0};                                                             \
        if (!out)                                                                                 \
            return -EINVAL;                                                                       \
        int rc_ = ursa_watch_borrow_at(rx, &g_, URSA_SITE, update);                               \
        if (rc_)                                                                                  \
            return rc_;                                                                           \
        *out = *(const T *)ursa_watch_borrow_ptr(&g_);                                            \
        return ursa_watch_borrow_release(&g_);                                                    \
    }                                                                                             \
    URSA__TYPED_FN int name##_get(ursa_watch_rx_t *rx, T *out)                                    \
    {                                                                                             \
        return name##_get_(rx, out, false);                                                       \
    }                                                                                             \
    URSA__TYPED_FN int name##_get_and_update(ursa_watch_rx_t *rx, T *out)                         \
    {                                                                                             \
        return name##_get_(rx, out, true);                                                        \
    }

URSA_EXTERN_C_END

#endif
