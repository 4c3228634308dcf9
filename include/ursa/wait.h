/* ursa — wakers and the raw two-phase wait (calling context 3).
 *
 * A foreign event loop owns an ursa_wait_t, starts a wait on a primitive
 * with a waker of its own, and later finishes or cancels it:
 *
 *     ursa_wait_t w;
 *     int rc = ursa_mutex_lock_start(&m, &w, (ursa_waker_t){my_wake, ctx});
 *     // rc == 0: already granted; rc == -EINPROGRESS: my_wake(ctx) will be
 *     // called exactly once, from any thread, when the wait completes.
 *     ...
 *     if (ursa_wait_ready(&w)) rc = ursa_mutex_lock_finish(&m, &w, &guard);
 *     else                     ursa_wait_cancel(&w);   // nothing held after
 *
 * The wait object must stay valid and unmoved until it is finished or
 * cancelled. Tasks and plain threads use the blocking calls instead, which
 * are thin layers over this. */
#ifndef URSA_WAIT_H
#define URSA_WAIT_H

#include "base.h"

URSA_EXTERN_C_BEGIN

/* A callback that makes a waiter runnable again. It is called at most once
 * per wait, from any thread, outside ursa's internal locks; it must not
 * block, must not call back into the primitive it waits on, and must not
 * finish, cancel or free the wait (ursa touches the node once more after
 * the call returns): it should only signal the loop that owns the wait. */
typedef struct ursa_waker {
    void (*fn)(void *ctx);
    void *ctx;
} ursa_waker_t;

/* What a wait is for, for deadlock reports. */
typedef enum ursa_wait_kind {
    URSA_WAIT_NONE = 0,
    URSA_WAIT_MUTEX,
    URSA_WAIT_SEMAPHORE,
    URSA_WAIT_JOIN,
    URSA_WAIT_SLEEP,
    URSA_WAIT_IO,
    URSA_WAIT_RWLOCK_READ,
    URSA_WAIT_RWLOCK_WRITE,
    URSA_WAIT_NOTIFY,
    URSA_WAIT_BARRIER,
    URSA_WAIT_ONCE,
    URSA_WAIT_EVENT,
    URSA_WAIT_CHANNEL,
    URSA_WAIT_POOL,
    URSA_WAIT_OTHER,
} ursa_wait_kind_t;

/* One waiter in a primitive's FIFO queue. Lives in the waiter's memory (a
 * task's stack); the wait path never allocates. All fields are private
 * (ursa/detail/wait.h, after ursa_waker_t above). */
typedef struct ursa_wait ursa_wait_t;
#include "detail/wait.h"

/* Phase 1 (wait): true once the wait has completed (granted, or failed with
 * an error); from the moment the waker is called, so a loop woken by
 * whatever the waker did sees it. Finish or cancel then returns at once (or
 * after the few instructions the waker call still needs). Any thread. */
URSA_API bool ursa_wait_ready(const ursa_wait_t *w);

/* Phase 1 (wait), cancel: withdraws a started wait. Afterwards nothing is
 * held: permits already assigned (or fully granted but not yet finished)
 * go back to the primitive and on to the next waiter. Blocks only for the
 * few instructions a concurrent waker call may still need.
 *   -ECANCELED  withdrawn (the wait is over)
 *   -EINVAL     w is NULL, or not started (or already over) */
URSA_API int ursa_wait_cancel(ursa_wait_t *w);

URSA_EXTERN_C_END

#endif
