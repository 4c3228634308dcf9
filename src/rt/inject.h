/* The runtime's inject queue: tasks of default placement spawned from
 * outside any worker (a plain thread), and the overflow of a worker's
 * stealable queue. Any worker takes from it: when it runs out of work,
 * and every URSA__INJECT_EVERY tasks so that it is never starved. A FIFO
 * under a spinlock (a few pointer updates per batch); its length is read
 * without the lock as a hint. */
#ifndef URSA_RT_INJECT_H
#define URSA_RT_INJECT_H

#include <stdatomic.h>
#include <stdint.h>

#include "ursa/rt.h"

/* Worker ticks between two looks at the inject queue while busy (Go and
 * Tokio use 61 too: prime, so it does not beat with other periods). */
#define URSA__INJECT_EVERY 61u

typedef struct ursa__inject {
    _Alignas(64) _Atomic uint32_t lock;
    _Atomic uint32_t len;
    ursa_task_t *head, *tail;
} ursa__inject_t;

static inline uint32_t ursa__inject_len(ursa__inject_t *q)
{
    /* relaxed: a hint; the lock orders the queue itself. */
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

/* Appends the list first..last (n tasks linked through rq_next). */
void ursa__inject_push(ursa__inject_t *q, ursa_task_t *first, ursa_task_t *last, uint32_t n);
/* Takes up to max tasks (a list through rq_next, oldest first; *n its
 * length), or NULL. */
ursa_task_t *ursa__inject_pop(ursa__inject_t *q, uint32_t max, uint32_t *n);

#endif
