/* ursa — private layouts of a waiter, the raw wait and the wait queue
 * (ursa/wait.h, which includes this after it defines ursa_waker_t).
 * Public only so that waiters and queues can live in the caller's memory
 * and in embedded primitives: every field is private, read and written by
 * src/core/waitq.h and the primitives. Nothing here is callable. */
#ifndef URSA_DETAIL_WAIT_H
#define URSA_DETAIL_WAIT_H

#include "../wait.h" /* ursa_waker_t (it includes this file after it) */

/* How a primitive withdraws its waits (src/core/waitq.h). */
struct ursa__wait_ops;

/* One waiter in a primitive's queue: 64 bytes, what a grant touches in one
 * cache line when it is aligned (blocking calls align theirs). A request
 * is at most UINT32_MAX permits. */
typedef struct ursa__waiter {
    struct ursa__waiter *next, *prev;  /* queue links, under the queue lock */
    void *owner;                       /* the primitive this wait is on */
    const struct ursa__wait_ops *ops;  /* its kind, and how to cancel it */
    ursa_waker_t waker;                /* {ursa__claim_wake, claim}: a select's */
    uint32_t want;                     /* permits still missing */
    uint32_t got;                      /* permits assigned so far, or what a grant gave */
    URSA_ATOMIC(uint32_t) state;            /* URSA__W_* in src/core/waitq.h */
    URSA_ATOMIC(uint32_t) done;             /* 1 once the waker call has returned */
} ursa__waiter_t;

/* The raw wait a caller of a _start/_finish pair owns: a waiter and what
 * only a raw finish needs (the call site its hold is recorded with). */
struct ursa_wait {
    ursa__waiter_t waiter;
    const ursa_site_t *site;
};

/* A FIFO of waiters behind a spinlock. The lock word's top bit is the
 * lock; its other bits belong to the owner (notify keeps its state there).
 * `n` counts the queued waiters: changed under the lock, readable without
 * it as a hint. `waking` holds waiters a wake-all detached and has not
 * decided yet. All zero is an empty, unlocked queue. */
typedef struct ursa__waitq {
    URSA_ATOMIC(uint32_t) lock;
    URSA_ATOMIC(uint32_t) n;
    ursa__waiter_t *head, *tail;
    ursa__waiter_t *waking;
} ursa__waitq_t;

#endif
