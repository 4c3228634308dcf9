/* ursa — counting semaphore with batch acquire, FIFO fairness, close.
 *
 *     ursa_sem_t s;  ursa_sem_init(&s, 4);
 *     URSA_SCOPED(sem_permit, p);
 *     if (ursa_sem_acquire(&s, 2, &p, URSA_NEVER) == 0) { ... }  // released at scope exit
 *
 * An acquire of n permits waits in FIFO order; permits freed while it waits
 * are assigned to it in part until it has all n (a large request is not
 * starved by small ones, and small ones do not barge past it). Cancelling
 * hands partly assigned permits on to the next waiters. */
#ifndef URSA_SEMAPHORE_H
#define URSA_SEMAPHORE_H

#include "detail/sema.h"
#include "detail/semaphore.h"
#include "oblig.h"

typedef struct ursa_sem ursa_sem_t;

/* The hold: n permits, to be released (or forgotten) exactly once. */
typedef struct ursa_sem_permit {
    ursa_oblig_t ob;
    ursa_sem_t *sem; /* NULL when holding nothing */
    uint64_t n;
} ursa_sem_permit_t;

/* 0, or -EINVAL (NULL, permits > URSA_SEM_MAX). */
URSA_API int ursa_sem_init(ursa_sem_t *s, uint64_t permits);

/* 0; -EBUSY (waiters queued: nothing changed); -EINVAL for NULL. */
URSA_API int ursa_sem_destroy(ursa_sem_t *s);

/* Phase 1: acquires n permits (1 <= n <= URSA_SEM_MAX) into p.
 * 0; -EAGAIN (URSA_NOW and not n available, or waiters queued ahead);
 * -ETIMEDOUT; -ECANCELED; -EPIPE (closed); -EINVAL (NULL, n out of range,
 * p already holding). On error nothing is held and no permit moved. */
#define ursa_sem_acquire(s, n, p, deadline) ursa_sem_acquire_at(s, n, p, deadline, URSA_SITE)
URSA_API int ursa_sem_acquire_at(ursa_sem_t *s, uint64_t n, ursa_sem_permit_t *p,
                                 ursa_time_t deadline, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2: returns the permit's permits to the semaphore (waking waiters
 * in FIFO order). 0; -EINVAL (NULL or empty: double release); -EPERM (owned
 * by another task or thread). */
URSA_API int ursa_sem_release(ursa_sem_permit_t *p);

/* Phase 2, the other way: discharges p without returning its permits (they
 * are gone for good). 0; -EINVAL; -EPERM. */
URSA_API int ursa_sem_permit_forget(ursa_sem_permit_t *p);

/* Adds n permits. The total in existence (available + waiting to be
 * handed out + held) stays <= URSA_SEM_MAX. 0; -EINVAL (NULL, 0, or past
 * the maximum: nothing added). Works on a closed semaphore too. */
URSA_API int ursa_sem_add(ursa_sem_t *s, uint64_t n);

/* Removes up to n currently available permits; returns how many it removed. */
URSA_API uint64_t ursa_sem_forget(ursa_sem_t *s, uint64_t n);

/* Permits available right now (a snapshot). 0 for NULL. */
URSA_API uint64_t ursa_sem_available(const ursa_sem_t *s);

/* Closes: every queued waiter fails with -EPIPE, and so does every later
 * acquire. Permits held stay valid and may be released. 0, or -EINVAL. */
URSA_API int ursa_sem_close(ursa_sem_t *s);
URSA_API bool ursa_sem_is_closed(const ursa_sem_t *s);

/* Raw two-phase form; see ursa_mutex_lock_start for the protocol. _finish
 * returns 0 (p filled) or the wait's error (-EPIPE). */
#define ursa_sem_acquire_start(s, n, w, waker) ursa_sem_acquire_start_at(s, n, w, waker, URSA_SITE)
URSA_API int ursa_sem_acquire_start_at(ursa_sem_t *s, uint64_t n, ursa_wait_t *w,
                                       ursa_waker_t waker, const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_sem_acquire_finish(ursa_sem_t *s, ursa_wait_t *w,
                                     ursa_sem_permit_t *p) URSA_NODISCARD;

/* Scope-exit release for URSA_SCOPED(sem_permit, p). */
URSA_API void ursa_sem_permit_cleanup(ursa_sem_permit_t *p);

#endif
