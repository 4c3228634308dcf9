/* ursa — layout of the batch semaphore, the core under mutex and
 * semaphore. Exposed only so that primitives can be embedded; every field
 * is private and its functions live in src/core/sema.h. */
#ifndef URSA_DETAIL_SEMA_H
#define URSA_DETAIL_SEMA_H

#include "../wait.h"

/* Largest permit count a semaphore can hold. */
#define URSA_SEM_MAX ((uint64_t)1 << 60)
/* Largest permit count one call can ask for (a waiter counts in 32 bits). */
#define URSA_SEM_REQUEST_MAX ((uint64_t)UINT32_MAX)

typedef struct ursa__sema {
    /* available permits << 3 | OUT (bit 2) | WAITERS (bit 1) |
     * CLOSED (bit 0) */
    URSA_ATOMIC(uint64_t) state;
    /* Barging only: the thread that took or gave the permits last under
     * contention (its streak). */
    URSA_ATOMIC(uint64_t) streak;
    ursa__waitq_t q; /* the waiters, FIFO */
    /* Permits in existence (available + assigned + held), changed only by
     * add and forget, so that add can refuse to pass URSA_SEM_MAX. */
    URSA_ATOMIC(uint64_t) total;
} ursa__sema_t;

#endif
