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

#include "detail/semaphore.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A semaphore: embed it, ursa_sem_init it. Fields private
 * (ursa/detail/semaphore.h). URSA_SEM_MAX (ursa/detail/sema.h) is the
 * largest permit count it holds, URSA_SEM_REQUEST_MAX the most one call
 * asks for. */
typedef struct ursa_sem ursa_sem_t;

/* The hold: n permits, to be released (or forgotten) exactly once. */
typedef struct ursa_sem_permit {
    ursa_oblig_t ob;
    ursa_sem_t *sem; /* NULL when holding nothing */
    uint64_t n;
} ursa_sem_permit_t;

/* Not a wait: initialises a semaphore with `permits` permits.
 *   0        initialised
 *   -EINVAL  s is NULL, or permits > URSA_SEM_MAX */
URSA_API int ursa_sem_init(ursa_sem_t *s, uint64_t permits);

/* flags of ursa_sem_init_flags: trade fairness for throughput under
 * contention. A release frees its permits and wakes waiters instead of
 * handing the permits to them, and an acquire may take free permits past
 * queued waiters (while a woken waiter on another thread has yet to look,
 * only a try or an acquire from the thread that had them last: see
 * docs/mutex.md "Barging"). A waiter that has waited 1 ms switches the
 * semaphore to FIFO hand-off until its queue drains (or a waiter handed
 * its permits waited under 1 ms). See docs/semaphore.md. */
#define URSA_SEM_BARGING 1u

/* Not a wait: ursa_sem_init with flags (0 or URSA_SEM_BARGING).
 *   0        initialised
 *   -EINVAL  s is NULL, permits > URSA_SEM_MAX, or an unknown flag */
URSA_API int ursa_sem_init_flags(ursa_sem_t *s, uint64_t permits, unsigned flags);

/* Not a wait: destroys a semaphore nobody waits on.
 *   0        destroyed
 *   -EBUSY   waiters queued (reported as misuse; nothing changed)
 *   -EINVAL  s is NULL */
URSA_API int ursa_sem_destroy(ursa_sem_t *s);

/* Phase 1 (wait): acquires n permits (1 <= n <= URSA_SEM_REQUEST_MAX) into p.
 *   0           p holds n permits
 *   -EAGAIN     deadline is URSA_NOW and n are not available, or waiters
 *               are queued ahead (not with URSA_SEM_BARGING)
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EPIPE      the semaphore is closed
 *   -ENOMEM     the caller's ledger could not grow
 *   -EINVAL     NULL, n out of range, or p already holds
 * On an error nothing is held and no permit moved. */
#define ursa_sem_acquire(s, n, p, deadline) ursa_sem_acquire_at(s, n, p, deadline, URSA_SITE)
URSA_API int ursa_sem_acquire_at(ursa_sem_t *s, uint64_t n, ursa_sem_permit_t *p,
                                 ursa_time_t deadline, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): returns the permit's permits to the semaphore (waking
 * waiters in FIFO order).
 *   0        released; p is empty
 *   -EINVAL  NULL, or p holds nothing (a double release: reported)
 *   -EPERM   p belongs to another task or thread */
URSA_API int ursa_sem_release(ursa_sem_permit_t *p);

/* Phase 2 (hold), the other way: discharges p without returning its
 * permits (they are gone for good). Codes as ursa_sem_release. */
URSA_API int ursa_sem_permit_forget(ursa_sem_permit_t *p);

/* Phase 2 (hold): splits n of p's permits off into a new hold, *out
 * (Tokio's SemaphorePermit::split). p keeps the rest, possibly none: a
 * permit of 0 is still a hold, to be released (returning nothing). *out
 * belongs to the caller and reports, if leaked, p's acquire site.
 *   0        *out holds n permits, p holds n fewer
 *   -EINVAL  NULL, out == p, out already holds, n is 0 or more than p
 *            holds, or p holds nothing (reported as misuse)
 *   -EPERM   p belongs to another task or thread
 *   -ENOMEM  the caller's ledger could not grow
 * On an error nothing changed. */
URSA_API int ursa_sem_permit_split(ursa_sem_permit_t *p, uint64_t n,
                                   ursa_sem_permit_t *out) URSA_NODISCARD;

/* Phase 2 (hold): moves every permit of `from` into p, two permits of the
 * same semaphore (Tokio's SemaphorePermit::merge); from is discharged.
 *   0        p holds both counts; from holds nothing
 *   -EINVAL  NULL, p == from, either holds nothing (reported as misuse),
 *            or they are permits of different semaphores
 *   -EPERM   p or from belongs to another task or thread
 * On an error nothing changed. */
URSA_API int ursa_sem_permit_merge(ursa_sem_permit_t *p, ursa_sem_permit_t *from) URSA_NODISCARD;

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(sem_permit, p):
 * releases if held, does nothing if empty. */
URSA_API void ursa_sem_permit_cleanup(ursa_sem_permit_t *p);

/* Not a wait: adds n permits. The total in existence (available +
 * waiting to be handed out + held) stays <= URSA_SEM_MAX. Works on a
 * closed semaphore too.
 *   0        added
 *   -EINVAL  s is NULL, n is 0, or the total would pass the maximum
 *            (nothing added) */
URSA_API int ursa_sem_add(ursa_sem_t *s, uint64_t n);

/* Not a wait: removes up to n currently available permits. Returns how
 * many it removed (0 for NULL). */
URSA_API uint64_t ursa_sem_forget(ursa_sem_t *s, uint64_t n);

/* Not a wait: permits available right now (a snapshot; 0 for NULL). */
URSA_API uint64_t ursa_sem_available(const ursa_sem_t *s);

/* Not a wait: closes: every queued waiter fails with -EPIPE, and so does
 * every later acquire. Permits held stay valid and may be released.
 *   0        closed
 *   -EINVAL  s is NULL */
URSA_API int ursa_sem_close(ursa_sem_t *s);

/* Not a wait: true once closed (false for NULL). */
URSA_API bool ursa_sem_is_closed(const ursa_sem_t *s);

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start:
 *   0             granted already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the permits are granted or the semaphore
 *                 closes
 *   -EPIPE        the semaphore is closed (nothing is held)
 *   -EINVAL       NULL s / w / waker.fn, or n out of range
 * _finish, once ursa_wait_ready(w), fills p:
 *   0        p holds the permits
 *   -EPIPE   the semaphore closed first
 *   -EAGAIN  not decided yet (w stays queued)
 *   -ENOMEM  the caller's ledger could not grow (the permits went
 *            back)
 *   -EINVAL  NULL, p already holds, w not a wait on s, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: permits assigned so far go
 * on to the next waiters; nothing is held after. */
#define ursa_sem_acquire_start(s, n, w, ...) ursa_sem_acquire_start_at(s, n, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_sem_acquire_start_at(ursa_sem_t *s, uint64_t n, ursa_wait_t *w,
                                       ursa_waker_t waker, const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_sem_acquire_finish(ursa_sem_t *s, ursa_wait_t *w,
                                     ursa_sem_permit_t *p) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
