/* A FIFO of waits behind its own spinlock, for the channel objects whose
 * layout is private: mpmc's waiting receivers, watch's two queues,
 * broadcast's waiting receivers. `n` counts the queued nodes: changed
 * under the lock, readable without it as a hint (a waker that must not
 * miss a node fences on its own, see mpmc). Wakers run outside the lock. */
#ifndef URSA_CHAN_WAITLIST_H
#define URSA_CHAN_WAITLIST_H

#include "../sync/wait_steps.h"

typedef struct ursa__waitlist {
    _Atomic uint32_t lock;
    uint32_t pad_;
    _Atomic uint64_t n; /* nodes queued */
    ursa_wait_t *head, *tail;
} ursa__waitlist_t;

static inline void ursa__waitlist_init(ursa__waitlist_t *q)
{
    atomic_init(&q->lock, 0);
    q->pad_ = 0;
    atomic_init(&q->n, 0);
    q->head = q->tail = NULL;
}

/* Under q's lock: queues w. */
static inline void ursa__waitlist_push_locked(ursa__waitlist_t *q, ursa_wait_t *w)
{
    /* relaxed: state changes only under the queue lock, whose unlock
     * publishes the node. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    ursa__waitq_push(&q->head, &q->tail, w);
    /* relaxed: under the lock; a reader outside it orders its own load. */
    atomic_fetch_add_explicit(&q->n, 1, memory_order_relaxed);
}

static inline void ursa__waitlist_push(ursa__waitlist_t *q, ursa_wait_t *w)
{
    ursa__spin_lock(&q->lock);
    ursa__waitlist_push_locked(q, w);
    ursa__spin_unlock(&q->lock);
}

/* Withdraws w: true if it was still queued (nothing happened to it),
 * false if a wake decided it first (its waker call has returned). */
static inline bool ursa__waitlist_cancel(ursa__waitlist_t *q, ursa_wait_t *w)
{
    if (!ursa__wait_cancel_begin(&q->lock, w))
        return false;
    ursa__waitq_remove(&q->head, &q->tail, w);
    /* relaxed: under the lock, as in push. */
    atomic_fetch_sub_explicit(&q->n, 1, memory_order_relaxed);
    ursa__wait_cancel_end(&q->lock, w);
    return true;
}

/* Under q's lock: decides every queued node GRANTED ("look again") and
 * detaches them. The caller unlocks, then calls ursa__wake_list(list). */
static inline ursa_wait_t *ursa__waitlist_take_all_locked(ursa__waitlist_t *q)
{
    ursa_wait_t *list = q->head;
    (void)ursa__wait_grant_list(list, 0);
    q->head = q->tail = NULL;
    /* relaxed: under the lock, as in push. */
    atomic_store_explicit(&q->n, 0, memory_order_relaxed);
    return list;
}

/* Wakes every queued wait. */
static inline void ursa__waitlist_wake_all(ursa__waitlist_t *q)
{
    ursa__spin_lock(&q->lock);
    ursa_wait_t *list = ursa__waitlist_take_all_locked(q);
    ursa__spin_unlock(&q->lock);
    ursa__wake_list(list);
}

/* Wakes the oldest queued wait, if any. */
static inline void ursa__waitlist_wake_one(ursa__waitlist_t *q)
{
    ursa__spin_lock(&q->lock);
    ursa_wait_t *w = q->head;
    if (!w) {
        ursa__spin_unlock(&q->lock);
        return;
    }
    ursa__waitq_remove(&q->head, &q->tail, w);
    /* relaxed: under the lock, as in push. */
    atomic_fetch_sub_explicit(&q->n, 1, memory_order_relaxed);
    /* release: the waiter reads the decision and our writes after it. */
    atomic_store_explicit(&w->state, URSA__W_GRANTED, memory_order_release);
    ursa__spin_unlock(&q->lock);
    ursa__wake_node(w);
}

#endif
