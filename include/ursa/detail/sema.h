/* ursa — layout of the batch semaphore, the core under mutex and
 * semaphore. Exposed only so that primitives can be embedded; every field
 * is private and its functions live in src/core/sema.h. */
#ifndef URSA_DETAIL_SEMA_H
#define URSA_DETAIL_SEMA_H

#include "../wait.h"

/* Largest permit count a semaphore can hold or a call can ask for. */
#define URSA_SEM_MAX ((uint64_t)1 << 61)

typedef struct ursa__sema {
    /* available permits << 2 | WAITERS (bit 1) | CLOSED (bit 0) */
    URSA_ATOMIC(uint64_t) state;
    URSA_ATOMIC(uint32_t) lock; /* guards the FIFO below */
    uint32_t pad_;
    ursa_wait_t *head, *tail;
    /* Permits in existence (available + assigned + held), changed only by
     * add and forget, so that add can refuse to pass URSA_SEM_MAX. */
    URSA_ATOMIC(uint64_t) total;
} ursa__sema_t;

#endif
