/* ursa — async mutex: FIFO, no barging, poisoning, three calling contexts.
 *
 *     ursa_mutex_t m;  ursa_mutex_init(&m);
 *     {
 *         URSA_SCOPED(mutex_guard, g);             // unlocked at scope exit
 *         if (ursa_mutex_lock(&m, &g, ursa_deadline_in(URSA_MSEC(5))) == 0)
 *             counter++;
 *     }
 *
 * The lock call works inside a task (the task suspends), on a plain thread
 * (the thread parks on a futex); a foreign event loop uses the _start /
 * _finish pair with a waker of its own. */
#ifndef URSA_MUTEX_H
#define URSA_MUTEX_H

#include "detail/sema.h"
#include "detail/mutex.h"
#include "lockinfo.h"
#include "oblig.h"

typedef struct ursa_mutex ursa_mutex_t;

/* The hold: proof of ownership, an obligation to unlock exactly once. */
typedef struct ursa_mutex_guard {
    ursa_oblig_t ob;
    ursa_mutex_t *mutex; /* NULL when not holding */
#if URSA_LOCK_METRICS
    ursa_time_t since; /* when it was locked, for hold times */
#endif
} ursa_mutex_guard_t;

/* Initialises an unlocked mutex. 0, or -EINVAL for NULL. */
URSA_API int ursa_mutex_init(ursa_mutex_t *m);

/* The same with a name and a rank (see ursa/lockinfo.h; attr may be NULL).
 * 0, or -EINVAL for NULL m. */
URSA_API int ursa_mutex_init_attr(ursa_mutex_t *m, const ursa_lock_attr_t *attr);

/* A snapshot of m's metrics. 0; -ENOTSUP when built without
 * URSA_LOCK_METRICS; -EINVAL for NULL. */
URSA_API int ursa_mutex_stats(const ursa_mutex_t *m, ursa_lock_stats_t *out);

/* Destroys an unlocked mutex with no waiters. 0; -EBUSY (locked or
 * waiters queued: nothing changed); -EINVAL for NULL. */
URSA_API int ursa_mutex_destroy(ursa_mutex_t *m);

/* Phase 1: locks m, waiting until `deadline`, and fills guard g.
 * 0 locked; -EOWNERDEAD locked, but the previous owner ended holding it
 * (state may be inconsistent; see ursa_mutex_consistent); -EAGAIN
 * (URSA_NOW, locked); -ETIMEDOUT; -ECANCELED (task cancelled); -EINVAL
 * (NULL, or g already holds a lock); -EDEADLK (URSA_LOCK_ORDER builds: m's
 * rank is not above every ranked lock the caller holds; reported);
 * -ENOMEM. On error g is left empty. */
#define ursa_mutex_lock(m, g, deadline) ursa_mutex_lock_at(m, g, deadline, URSA_SITE)
URSA_API int ursa_mutex_lock_at(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2: unlocks, handing the lock to the oldest waiter. 0; -EINVAL
 * (NULL, or g holds nothing: a double unlock is detected here); -EPERM (g
 * belongs to another task or thread; see ursa_oblig_disown). */
URSA_API int ursa_mutex_unlock(ursa_mutex_guard_t *g);

/* Clears the poisoned mark after the holder repaired the state. 0, -EINVAL. */
URSA_API int ursa_mutex_consistent(ursa_mutex_t *m);

/* True while some owner holds m (a racy snapshot). */
URSA_API bool ursa_mutex_is_locked(const ursa_mutex_t *m);

/* Raw two-phase form. _start: 0 (locked already; call _finish now),
 * -EINPROGRESS (queued; waker.fn(waker.ctx) will be called once),
 * -EINVAL. _finish, once ursa_wait_ready(w): fills g, returns 0 or
 * -EOWNERDEAD; -EAGAIN if the wait is not ready. To give up, call
 * ursa_wait_cancel(w) instead of _finish. */
#define ursa_mutex_lock_start(m, w, waker) ursa_mutex_lock_start_at(m, w, waker, URSA_SITE)
URSA_API int ursa_mutex_lock_start_at(ursa_mutex_t *m, ursa_wait_t *w, ursa_waker_t waker,
                                      const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_mutex_lock_finish(ursa_mutex_t *m, ursa_wait_t *w,
                                    ursa_mutex_guard_t *g) URSA_NODISCARD;

/* Scope-exit release for URSA_SCOPED(mutex_guard, g): unlocks if held,
 * does nothing if empty. */
URSA_API void ursa_mutex_guard_cleanup(ursa_mutex_guard_t *g);

#endif
