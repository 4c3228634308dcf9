/* The batch semaphore: the core under mutex, semaphore (and later rwlock,
 * bounded channels). Lock-free fast paths on one atomic word; a FIFO of
 * wait nodes behind a spinlock for the slow path; wakers run outside it.
 *
 * Invariant: while WAITERS is set the word holds 0 available permits —
 * every permit that comes back goes to the queue head first (no barging). */
#ifndef URSA_CORE_SEMA_H
#define URSA_CORE_SEMA_H

#include "ursa/detail/sema.h"
#include "waitq.h"

#define URSA__SEMA_CLOSED ((uint64_t)1)
#define URSA__SEMA_WAITERS ((uint64_t)2)
#define URSA__SEMA_SHIFT 2

void ursa__sema_init(ursa__sema_t *s, uint64_t permits);

/* Takes n permits if available and nobody queues ahead. Lock-free. */
static inline bool ursa__sema_try(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS below is what must see the latest value. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if ((st & (URSA__SEMA_CLOSED | URSA__SEMA_WAITERS)) || (st >> URSA__SEMA_SHIFT) < n)
            return false;
        /* acquire: the permit's previous holder's writes happen-before us. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st - (n << URSA__SEMA_SHIFT),
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

/* Takes up to n permits if some are available and nobody queues ahead:
 * how many (0: none, closed, or waiters queued). Lock-free. */
static inline uint64_t ursa__sema_take_upto(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS below is what must see the latest value. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        uint64_t avail = st >> URSA__SEMA_SHIFT, take = avail < n ? avail : n;
        if ((st & (URSA__SEMA_CLOSED | URSA__SEMA_WAITERS)) || take == 0)
            return 0;
        /* acquire: as in ursa__sema_try. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  st - (take << URSA__SEMA_SHIFT),
                                                  memory_order_acquire, memory_order_relaxed))
            return take;
    }
}

/* Starts a wait for n permits (1 <= n <= URSA_SEM_REQUEST_MAX): 0
 * (granted at once, w done), -EINPROGRESS (queued, maybe with some permits
 * assigned), -EPIPE (closed). */
int ursa__sema_start(ursa__sema_t *s, ursa__waiter_t *w, uint32_t n);

/* Withdraws w. True: it was still queued (its assigned permits went
 * back), or dropped (its select claim was lost). False: it had completed
 * (granted or closed); returns once its waker is done, and the caller owns
 * the outcome in w->state. */
bool ursa__sema_cancel(ursa__waiter_t *w);

/* Slow half of ursa__sema_release: waiters are queued. */
void ursa__sema_release_slow(ursa__sema_t *s, uint64_t n);

/* give_back for sema waits: returns a granted wait's permits. */
void ursa__sema_give_back(ursa__waiter_t *w);

/* Returns n permits (n <= URSA_SEM_MAX) unless waiters are queued: true,
 * or false (nothing returned: ursa__sema_release_slow's turn). */
static inline bool ursa__sema_release_fast(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    while (!(st & URSA__SEMA_WAITERS)) {
        /* release: our critical section happens-before the next acquirer. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st + (n << URSA__SEMA_SHIFT),
                                                  memory_order_release, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Returns n permits (n <= URSA_SEM_MAX), waking queued waiters FIFO. */
static inline void ursa__sema_release(ursa__sema_t *s, uint64_t n)
{
    if (!ursa__sema_release_fast(s, n))
        ursa__sema_release_slow(s, n);
}

/* Adds n permits unless the total would exceed URSA_SEM_MAX: 0 or -EINVAL. */
int ursa__sema_add(ursa__sema_t *s, uint64_t n);

/* Permits that left for good (a forgotten permit): lowers the total. */
static inline void ursa__sema_dropped(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: see ursa__sema_add. */
    atomic_fetch_sub_explicit(&s->total, n, memory_order_relaxed);
}

/* Removes up to n available permits; returns how many. */
uint64_t ursa__sema_forget(ursa__sema_t *s, uint64_t n);

/* Fails every queued and later wait with CLOSED: how many queued waits it
 * failed (a caller that counted its waiters elsewhere stops counting
 * them: they will never hold a permit). */
uint64_t ursa__sema_close(ursa__sema_t *s);

static inline uint64_t ursa__sema_available(const ursa__sema_t *s)
{
    /* relaxed: a snapshot for the caller, orders nothing. */
    return atomic_load_explicit(&s->state, memory_order_relaxed) >> URSA__SEMA_SHIFT;
}

static inline bool ursa__sema_closed(const ursa__sema_t *s)
{
    /* relaxed: closing is monotonic, a snapshot suffices. */
    return atomic_load_explicit(&s->state, memory_order_relaxed) & URSA__SEMA_CLOSED;
}

/* Available permits, or UINT64_MAX while waiters are queued (permits
 * assigned to them are held, not available). Lock-free snapshot; a caller
 * that knows the total can tell when every permit is back. */
static inline uint64_t ursa__sema_free(const ursa__sema_t *s)
{
    /* acquire: pairs with the release CAS that returned a permit, so what
     * its holder did happens-before the caller. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    return (st & URSA__SEMA_WAITERS) ? UINT64_MAX : st >> URSA__SEMA_SHIFT;
}

/* True if waiters are queued (a snapshot, taken under the lock). */
static inline bool ursa__sema_has_waiters(ursa__sema_t *s)
{
    return ursa__waitq_busy(&s->q);
}

#endif
