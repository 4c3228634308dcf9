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

/* URSA__MUTEX_LEAVING, ursa__mutex_bias_enter and ursa__mutex_bias_exit,
 * the fast paths, are in ursa/detail/mutex.h (inline in ursa/mutex.h). */

/* Turns bias off (a no-op when off); the token comes back now, or from the
 * fast holder's unlock. A waiter calls it before it queues, and after it
 * queued if `on` is set then (ursa__mutex_bias_try_on). */
void ursa__mutex_bias_revoke(ursa_mutex_t *m, ursa__ctx_t *c);

/* c holds m's permit from the semaphore, for guard g: turns bias on for c
 * once due (ursa__bias_tick). True: g's hold is the bias's now. */
bool ursa__mutex_bias_try_on(ursa_mutex_t *m, ursa__ctx_t *c, ursa_mutex_guard_t *g);

#endif
