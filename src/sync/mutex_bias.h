/* The mutex's owner bias: the context (task or thread) that keeps taking
 * an uncontended mutex does so with plain loads and stores, no atomic RMW,
 * until another one arrives.
 *
 * While bias.on names the owner's context, the bias holds the mutex's one
 * permit (the token). The owner locks by storing its guard's address in
 * `held`, then checking that bias is still on; it unlocks by storing
 * LEAVING, checking the drain state, then storing 0. Anyone else revokes
 * first (core/bias.h: the protocol, shared with the rwlock's reader bias;
 * here the count is `held`): the token comes back now, or from the fast
 * holder's unlock, to the semaphore's FIFO queue, where the revoker waits
 * like any waiter. So hand-off, deadlines, cancel, select and the raw form
 * are the semaphore's.
 *
 * LEAVING: an unlock's last touch of the mutex is its store of 0, so the
 * mutex may be freed right after it; the revoke's settle step waits out an
 * unlock caught between LEAVING and that store (a few instructions).
 *
 * The owner is sticky: bias is only ever turned on for the first context
 * it was turned on for (until the mutex is initialised again). A fast
 * lock that read a stale `on` stores into `held` at an unbounded later
 * time before it backs out; the owner's own calls are in program order
 * with that store, anyone else's could be clobbered by it.
 *
 * Never biased: barging locks (a woken looker is off the queue, so a
 * revoke after queueing would not cover it), ranked locks in lock-order
 * builds and every lock in metrics builds (they take the general path), and
 * without private expedited membarrier. */
#ifndef URSA_SYNC_MUTEX_BIAS_H
#define URSA_SYNC_MUTEX_BIAS_H

#include "ursa/mutex.h"

#include "../core/bias.h"
#include "../core/sema.h"

/* `held` while the fast holder's unlock runs. */
#define URSA__MUTEX_LEAVING ((uintptr_t)1)

/* Turns bias off (a no-op when off); the token comes back now, or from the
 * fast holder's unlock. A waiter calls it before it queues, and after it
 * queued if `on` is set then (ursa__mutex_bias_try_on). */
void ursa__mutex_bias_revoke(ursa_mutex_t *m, ursa__ctx_t *c);

/* The unlock found a revoke under way (ursa__mutex_bias_exit). */
void ursa__mutex_bias_drain(ursa_mutex_t *m);

/* c holds m's permit from the semaphore, for guard g: turns bias on for c
 * once due (ursa__bias_countdown). True: g's hold is the bias's now. */
bool ursa__mutex_bias_try_on(ursa_mutex_t *m, ursa__ctx_t *c, ursa_mutex_guard_t *g);

/* Ends a fast hold (from any thread: a guard adopted elsewhere, a task
 * that moved, a leak sweep). */
static inline void ursa__mutex_bias_exit(ursa_mutex_t *m)
{
    /* relaxed: a revoke's barrier orders it against its look at held. */
    atomic_store_explicit(&m->held, URSA__MUTEX_LEAVING, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: only tells whether a revoke may be waiting for us. */
    if (__builtin_expect(atomic_load_explicit(&m->drain.state, memory_order_relaxed) !=
                             URSA__BIAS_IDLE,
                         0)) {
        ursa__mutex_bias_drain(m);
        return;
    }
    /* release: the critical section happens-before the next fast lock
     * (its acquire of held) and a revoker's settle. */
    atomic_store_explicit(&m->held, 0, memory_order_release);
}

/* c's fast lock through guard g: 1 (held; the caller records it), 0 (not
 * biased for c, or held: take the semaphore's path), -1 (revoked while we
 * looked: the caller backs out with ursa__mutex_bias_exit, then takes the
 * semaphore's path; out of line, so the fast path needs no frame). */
static inline int ursa__mutex_bias_enter(ursa_mutex_t *m, ursa__ctx_t *c, ursa_mutex_guard_t *g)
{
    /* relaxed: only c turns bias on for c, before this call in program
     * order; a revoke's store is caught by the check after the fence.
     * acquire (held): a fast hold unlocked on another thread (adopted
     * guard, moved task) released its critical section with the 0. */
    if (atomic_load_explicit(&m->bias.on, memory_order_relaxed) != (uintptr_t)c ||
        atomic_load_explicit(&m->held, memory_order_acquire) != 0)
        return 0;
    /* relaxed: a revoke's barrier orders it against its look at held
     * (core/bias.h). */
    atomic_store_explicit(&m->held, (uintptr_t)g, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: as the first load. */
    return __builtin_expect(atomic_load_explicit(&m->bias.on, memory_order_relaxed) ==
                                (uintptr_t)c,
                            1)
               ? 1
               : -1;
}

#endif
