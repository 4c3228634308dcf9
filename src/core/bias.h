/* Bias revocation, shared by the rwlock's reader bias (sync/rwlock/bias.c)
 * and the mutex's owner bias (sync/mutex_bias.c).
 *
 * A biased lock lends its semaphore permit (the "token") to its fast path:
 * while b->on is set, fast holders take the lock with plain loads and
 * stores, each counting itself somewhere the revoker can see (the rwlock:
 * its thread's reader table; the mutex: its `held` word), then checking
 * that bias is still on. The revoker sets the drain state PENDING, turns
 * bias off, runs ursa__membarrier() (core/membarrier.h) and counts the fast
 * holders under the drain lock. A fast path separates its store and load
 * by a compiler fence only; the barrier forbids the interleaving that
 * matters (asymmetric Dekker): if the fast path's load saw bias on, both
 * its accesses precede the full fence the barrier ran on its CPU, so the
 * count sees it; otherwise it sees bias off and backs out.
 *
 * None left: the token goes back now (IDLE). Otherwise ARMED, and the fast
 * holder that leaves last (its store, a compiler fence, then a load of the
 * state that finds it not IDLE) returns it under the drain lock
 * (ursa__bias_drain). PENDING keeps leaving holders from concluding before
 * the barrier has stopped new fast holders. So fairness, deadlines, cancel
 * and the raw form of the waiters are the semaphore's: a revoker queues
 * there like any waiter, and revokes again once queued (a locker may have
 * turned bias on between its first revoke and its queueing; later ones
 * cannot: turning on checks that nobody queues).
 *
 * Bias that did not outlive URSA__BIAS_PAYBACK times the cost of its
 * revocation did not pay: the next try waits twice as many slow locks (up
 * to URSA__BIAS_MAX_SKIP), so contended locks stay unbiased.
 *
 * Lock order: b->lock, then the drain lock. */
#ifndef URSA_CORE_BIAS_H
#define URSA_CORE_BIAS_H

#include "ursa/detail/bias.h"

#include "ctx.h"

/* b->skip of a lock that never biases. */
#define URSA__BIAS_NEVER UINT32_MAX
/* Slow locks before bias is tried (again), at least. */
#define URSA__BIAS_MIN_SKIP 64u

/* What a revoke and a drain need to know of the lock. Each callback gets
 * the drain, which the lock embeds (or, the rwlock, its slot). */
typedef struct ursa__bias_ops {
    /* Under b->lock, bias on: the lock's drain. */
    ursa__bias_drain_t *(*drain_of)(ursa__bias_t *b);
    /* After the barrier, before the drain lock: waits out fast holders
     * that the barrier caught between their store and their load (they
     * may have read IDLE and will not come to the drain lock). NULL: no
     * such window (the rwlock's readers uncount themselves last). */
    void (*settle)(ursa__bias_drain_t *d);
    /* Under the drain lock, first thing: a leaving holder uncounts itself
     * (NULL: it did before it came). */
    void (*leave)(ursa__bias_drain_t *d);
    /* Under the drain lock: true if no fast holder is left. */
    bool (*drained)(ursa__bias_drain_t *d);
} ursa__bias_ops_t;

/* Bias starts off; `never`: the lock never biases. */
void ursa__bias_init(ursa__bias_t *b, bool never);

/* Turns bias off (a no-op if it is off). True: no fast holder was left,
 * and the caller gives the token back; false: off already, or ARMED (the
 * last fast holder gives it back). */
bool ursa__bias_revoke(ursa__bias_t *b, const ursa__bias_ops_t *ops, ursa__ctx_t *c);

/* A fast holder leaving found the drain state not IDLE: true if it was the
 * last of an ARMED revoke (the state is IDLE now and the caller gives the
 * token back). */
bool ursa__bias_drain(ursa__bias_drain_t *d, const ursa__bias_ops_t *ops);

/* d's state, read under its lock (after the revoker's verdict). */
uint32_t ursa__bias_state(ursa__bias_drain_t *d);

/* Counts a slow lock: true once `skip` went by (call the lock's try-on,
 * which takes b->lock and calls ursa__bias_turned_on or
 * ursa__bias_try_later). */
static inline bool ursa__bias_countdown(ursa__bias_t *b)
{
    /* relaxed: a heuristic counter; racing decrements only shift it. */
    uint32_t k = atomic_load_explicit(&b->skip, memory_order_relaxed);
    if (__builtin_expect(k != 0, 1)) {
        if (k != URSA__BIAS_NEVER)
            atomic_store_explicit(&b->skip, k - 1, memory_order_relaxed);
        return false;
    }
    return true;
}

/* Slow locks of one context between two looks at a lock's count. */
#define URSA__BIAS_TICK 16u

/* ursa__bias_countdown once every URSA__BIAS_TICK slow locks of the
 * context whose ledger is l: a count on every lock would write the lock's
 * line from every worker that takes it (mt2_mutex_contended paid ~1.5x). */
static inline bool ursa__bias_tick(ursa__bias_t *b, ursa__ledger_t *l)
{
    if (__builtin_expect((++l->tick & (URSA__BIAS_TICK - 1)) != 0, 1))
        return false;
    return ursa__bias_countdown(b);
}

/* Under b->lock: whether trying is still due (bias off, the count at 0). */
static inline bool ursa__bias_due(ursa__bias_t *b)
{
    /* relaxed: both change under b->lock (skip's countdown aside). */
    return !atomic_load_explicit(&b->on, memory_order_relaxed) &&
           atomic_load_explicit(&b->skip, memory_order_relaxed) == 0;
}

/* Under b->lock, holding the token: turns bias on for `who`. */
static inline void ursa__bias_turned_on(ursa__bias_t *b, uintptr_t who, ursa__ctx_t *c)
{
    b->since = ursa__ctx_now(c);
    /* release: the fast path's state (the rwlock's slot, the mutex's
     * held word), and through the token we hold the last slow holder's
     * critical section, reach the fast holders that see `on`. */
    atomic_store_explicit(&b->on, who, memory_order_release);
}

/* Under b->lock: not now, look again after a few slow locks (the drain of
 * the last bias is not over, or somebody queues). */
static inline void ursa__bias_try_later(ursa__bias_t *b)
{
    /* relaxed: a heuristic counter. */
    atomic_store_explicit(&b->skip, URSA__BIAS_MIN_SKIP, memory_order_relaxed);
}

#endif
