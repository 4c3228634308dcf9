/* ursa — private layout of a wait node (ursa/wait.h, which includes this
 * after it defines ursa_waker_t). Public only so that a wait node can live
 * in the waiter's memory: every field is private, read and written by
 * src/core/waitq.h and the primitives. Nothing here is callable. */
#ifndef URSA_DETAIL_WAIT_H
#define URSA_DETAIL_WAIT_H

#include "../wait.h" /* ursa_waker_t (it includes this file after it) */

/* How a primitive withdraws its waits (src/core/waitq.h). */
struct ursa__wait_ops;

struct ursa_wait {
    struct ursa_wait *next, *prev; /* queue links, under the queue lock */
    void *owner;                   /* the primitive this wait is on */
    const struct ursa__wait_ops *ops; /* its kind, and how to cancel it */
    uint64_t want;                 /* permits still missing */
    uint64_t got;                  /* permits assigned so far */
    ursa_waker_t waker;
    const ursa_site_t *site;
    URSA_ATOMIC(uint32_t) state; /* URSA__W_* in src/core/waitq.h */
    URSA_ATOMIC(uint32_t) done;  /* 1 once the waker call has returned */
};

#endif
