/* Atomic waker: one registered waker, woken from any thread, no lost wake.
 *
 * For a single waiter that polls a condition (a channel receiver, a
 * oneshot): it registers its waker, re-checks the condition, and parks;
 * any thread that makes the condition true then calls wake. A wake that
 * lands while the waiter is registering is not lost: the registrant sees
 * it and wakes itself.
 *
 * One registrant at a time; wake from anywhere. The waker is called with
 * the WAKING bit held and the bit dropped only after the call returns, so
 * ursa__atomic_waker_unregister() can guarantee no call is in flight when
 * it returns (the waiter may then free what the waker points at). */
#ifndef URSA_CORE_ATOMIC_WAKER_H
#define URSA_CORE_ATOMIC_WAKER_H

#include <stdatomic.h>

#include "ursa/wait.h"

typedef struct ursa__atomic_waker {
    _Atomic uint32_t state; /* WAITING 0, REGISTERING 1, WAKING 2 (bits) */
    ursa_waker_t waker;     /* owned by whoever holds REGISTERING or WAKING */
} ursa__atomic_waker_t;

static inline void ursa__atomic_waker_init(ursa__atomic_waker_t *aw)
{
    atomic_init(&aw->state, 0);
    aw->waker = (ursa_waker_t){NULL, NULL};
}

/* Registers w (replacing any earlier one). If a wake raced with us, w is
 * called before this returns. Registrant only. */
void ursa__atomic_waker_register(ursa__atomic_waker_t *aw, ursa_waker_t w);

/* Calls the registered waker, if any, and clears it. Any thread. Returns
 * whether a waker was called. */
bool ursa__atomic_waker_wake(ursa__atomic_waker_t *aw);

/* Clears the registration; on return no wake of it is in progress.
 * Registrant only. */
void ursa__atomic_waker_unregister(ursa__atomic_waker_t *aw);

#endif
