/* The batch semaphore: the core under mutex, semaphore (and later rwlock,
 * bounded channels). Lock-free fast paths on one atomic word; a FIFO of
 * wait nodes behind a spinlock for the slow path; wakers run outside it.
 *
 * Invariant (FIFO, the default): while WAITERS is set the word holds 0
 * available permits — every permit that comes back goes to the queue head
 * first (no barging).
 *
 * Barging (opt-in per object, ursa__sema_set_barging): a release puts its
 * permits in the word even while waiters queue, and wakes the queue's
 * head *lookers* without handing them anything; any caller may take free
 * permits (ursa__sema_try_barge), and a woken looker that finds them taken
 * queues again at the front. A looker is a blocking waiter started by
 * ursa__sema_look (queued with got == URSA__SEMA_LOOKING); other waiters
 * (a select's case, a raw wait) are still handed their permits FIFO, since
 * they cannot look again. Once a looker has waited URSA__SEMA_STARVE_NS
 * the semaphore switches to HANDOFF: FIFO as the default (every looker
 * becomes a plain waiter, the free permits go to the queue) until the
 * queue drains, or until a waiter handed its permits had waited less than
 * the bound (ursa__sema_end_handoff). So the invariant above holds in
 * HANDOFF mode too, and in barging mode the word may hold permits while
 * WAITERS is set.
 *
 * Streaks (barging): under contention the permits stay with one thread for
 * a while, so the word's cache line stops moving between CPUs on every
 * acquire (Go's mutexWoken, and a thread-level cohort rule):
 *  - A release that wakes a looker on another thread sets OUT; until
 *    that looker has looked (took the permits, or queued again) releases
 *    take the fast path and wake nobody else. A looker on the releaser's
 *    own thread usually cannot run before the releaser waits (a started
 *    task that is not migratable stays on its worker), so waking it sets
 *    nothing and the next release wakes the next looker.
 *  - While a looker is out, a blocking acquire barges only from the
 *    thread of the streak (`streak`: the thread that last took or gave the
 *    permits on a slow path); from any other thread it queues behind the
 *    looker, even if permits are free. A try (URSA_NOW) barges from
 *    anywhere: free permits are anyone's.
 *  - The woken looker may always take free permits. If it wins, the streak
 *    is its thread's; the other thread's arrivals then queue.
 *  Nothing is stranded: OUT means a looker will look, and a look that
 *  takes permits and finds more free with waiters queued wakes them. The
 *  starvation bound holds as before: every looker that loses looks again
 *  only after a wake, and one that has waited URSA__SEMA_STARVE_NS
 *  switches to HANDOFF, which clears OUT. */
#ifndef URSA_CORE_SEMA_H
#define URSA_CORE_SEMA_H

#include "ursa/detail/sema.h"
#include "ctx.h"
#include "waitq.h"

#define URSA__SEMA_CLOSED ((uint64_t)1)
#define URSA__SEMA_WAITERS ((uint64_t)2)
#define URSA__SEMA_OUT ((uint64_t)4) /* barging: a woken looker is out */
#define URSA__SEMA_SHIFT 3
/* Set while a fast-path acquirer must not take permits past others. */
#define URSA__SEMA_BUSY (URSA__SEMA_CLOSED | URSA__SEMA_WAITERS | URSA__SEMA_OUT)

/* The owner bits of the queue's lock word (core/waitq.h): the mode, read
 * and changed under the queue lock (BARGE is set once, before use). */
#define URSA__SEMA_BARGE ((uint32_t)1)   /* barging allowed */
#define URSA__SEMA_HANDOFF ((uint32_t)2) /* a looker starved: FIFO until drained */

/* A looker that has waited this long switches the semaphore to HANDOFF
 * (Go's sync.Mutex starvation threshold). */
#define URSA__SEMA_STARVE_NS ((ursa_time_t)1000000)

/* got of a queued looker: it is owed a look, not permits. */
#define URSA__SEMA_LOOKING UINT32_MAX

/* A looker: a blocking waiter of a barging semaphore and when it began to
 * wait (the starvation bound counts from there, across its requeues). */
typedef struct ursa__sema_looker {
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa_time_t since;
    uint64_t thread; /* ursa__thread_uid() of the waiting caller */
} ursa__sema_looker_t;

void ursa__sema_init(ursa__sema_t *s, uint64_t permits);

/* Takes n permits if available and nobody queues ahead. Lock-free. */
static inline bool ursa__sema_try(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS below is what must see the latest value. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if ((st & URSA__SEMA_BUSY) || (st >> URSA__SEMA_SHIFT) < n)
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
        if ((st & URSA__SEMA_BUSY) || take == 0)
            return 0;
        /* acquire: as in ursa__sema_try. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  st - (take << URSA__SEMA_SHIFT),
                                                  memory_order_acquire, memory_order_relaxed))
            return take;
    }
}

/* Takes n permits if available, even past queued waiters: a barging
 * semaphore's acquire (its FIFO callers use ursa__sema_try). Lock-free. */
static inline bool ursa__sema_try_barge(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS below is what must see the latest value. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if ((st & URSA__SEMA_CLOSED) || (st >> URSA__SEMA_SHIFT) < n)
            return false;
        /* acquire: as in ursa__sema_try. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st - (n << URSA__SEMA_SHIFT),
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

/* An arrival's barge, for an acquire with this deadline: a try (URSA_NOW)
 * is ursa__sema_try_barge; a blocking acquire, while a woken looker is
 * out, barges only from the streak's thread (the top of this file).
 * Lock-free. */
static inline bool ursa__sema_barge_in(ursa__sema_t *s, uint64_t n, ursa_time_t deadline)
{
    /* relaxed: the CAS below is what must see the latest value. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* relaxed: a hint that picks who may barge; permits move by the CAS. */
    if ((st & URSA__SEMA_OUT) && deadline != URSA_NOW &&
        atomic_load_explicit(&s->streak, memory_order_relaxed) != ursa__thread_uid())
        return false;
    return ursa__sema_try_barge(s, n);
}

/* A woken looker took its permits with ursa__sema_try_barge: the streak is
 * its thread's, it is no longer out, and what is still free goes to the
 * queue's head if nobody else will hand it on. */
void ursa__sema_looked(ursa__sema_t *s);

/* Turns barging on: once, after ursa__sema_init, before any use. */
static inline void ursa__sema_set_barging(ursa__sema_t *s)
{
    /* relaxed: the object is not shared yet; publishing it orders this. */
    atomic_store_explicit(&s->q.lock, URSA__SEMA_BARGE, memory_order_relaxed);
}

/* True if s was set to barge (constant after init). */
static inline bool ursa__sema_barging(const ursa__sema_t *s)
{
    /* relaxed: BARGE never changes after init; the other bits may, and
     * are not looked at. */
    return atomic_load_explicit(&s->q.lock, memory_order_relaxed) & URSA__SEMA_BARGE;
}

/* True while a barging s is in HANDOFF (a snapshot, for tests). */
static inline bool ursa__sema_handoff(const ursa__sema_t *s)
{
    /* relaxed: a snapshot. */
    return atomic_load_explicit(&s->q.lock, memory_order_relaxed) & URSA__SEMA_HANDOFF;
}

/* Ends a HANDOFF early (Go's rule): called by a waiter that was handed
 * its permits having waited less than URSA__SEMA_STARVE_NS, so the
 * queue is being served quickly; under sustained contention the queue
 * never drains, and HANDOFF would otherwise stay for good. The waiters
 * still queued keep their place and are handed their permits FIFO; new
 * arrivals barge again. */
void ursa__sema_end_handoff(ursa__sema_t *s);

/* Switches to HANDOFF so far, process-wide (tests assert on its growth). */
extern _Atomic(uint64_t) ursa__sema_handoffs;

/* Starts (or, again after a look that lost, restarts) looker l's wait for
 * n permits on a barging s, l->w freshly initialised: 0 (took them: w
 * granted, got n), -EINPROGRESS (queued: at the front if `again`; woken
 * either granted with got n, in HANDOFF, or with got 0: look again),
 * -EPIPE (closed). `starved`: l has waited URSA__SEMA_STARVE_NS (switches
 * s to HANDOFF). */
int ursa__sema_look(ursa__sema_t *s, ursa__sema_looker_t *l, uint32_t n, bool again,
                    bool starved);

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
    /* Fast unless waiters queue and nobody is out to look (a barging s's
     * woken looker hands on what it leaves: ursa__sema_looked). */
    while ((st & (URSA__SEMA_WAITERS | URSA__SEMA_OUT)) != URSA__SEMA_WAITERS) {
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
