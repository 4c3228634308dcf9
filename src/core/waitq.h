/* Wait nodes and the intrusive FIFO they sit on.
 *
 * A node's life: IDLE -> QUEUED -> (GRANTED | CLOSED | CANCELLED).
 * `state` changes only under the owning queue's lock. Whoever completes a
 * queued node (grant, close) collects it in a wake batch, drops the lock,
 * calls its waker, and only then sets `done`. The waiter never forgets a
 * node before `done` (or before it cancelled it itself), so the node and
 * whatever the waker points at are alive during the waker call, and no
 * wake can arrive after the wait is over. */
#ifndef URSA_CORE_WAITQ_H
#define URSA_CORE_WAITQ_H

#include <sched.h>

#include "spin.h"
#include "ursa/wait.h"

enum {
    URSA__W_IDLE = 0,
    URSA__W_QUEUED,
    URSA__W_GRANTED,
    URSA__W_CLOSED,
    URSA__W_CANCELLED,
    URSA__W_FINISHED, /* result taken by finish/cancel; node reusable */
};

/* What every primitive tells the core about its waits. */
typedef struct ursa__wait_ops {
    uint32_t kind; /* ursa_wait_kind_t, for reports */
    /* Withdraws w: true if it was still queued (whatever was assigned to it
     * went on to other waiters: nothing held), false if it was already
     * decided (returns once the waker call is done; w->state says how). */
    bool (*cancel)(ursa_wait_t *w);
    /* Gives back what a granted but never finished wait holds (raw-wait
     * cancel after the grant). NULL if a grant holds nothing. */
    void (*give_back)(ursa_wait_t *w);
} ursa__wait_ops_t;

static inline void ursa__wait_init(ursa_wait_t *w, ursa_waker_t waker,
                                   const ursa__wait_ops_t *ops, const ursa_site_t *site)
{
    w->next = w->prev = NULL;
    w->owner = NULL;
    w->want = w->got = 0;
    w->waker = waker;
    w->site = site;
    w->ops = ops;
    atomic_store_explicit(&w->state, URSA__W_IDLE, memory_order_relaxed);
    atomic_store_explicit(&w->done, 0, memory_order_relaxed);
}

/* Completed without ever queueing (fast path at start). */
static inline void ursa__wait_complete_now(ursa_wait_t *w, uint32_t state)
{
    atomic_store_explicit(&w->state, state, memory_order_relaxed);
    /* release: pairs with the acquire in ursa_wait_ready. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

static inline bool ursa__wait_is_done(const ursa_wait_t *w)
{
    /* acquire: everything the completer wrote before `done` is visible. */
    return atomic_load_explicit(&w->done, memory_order_acquire) != 0;
}

/* The outcome is decided (granted, closed) once state leaves QUEUED; the
 * completer then calls the waker and sets done. A blocked waiter waits for
 * the decision, then settles (below) before it lets go of the node. */
static inline bool ursa__wait_is_decided(const ursa_wait_t *w)
{
    /* acquire: pairs with the completer's release store of state. */
    return atomic_load_explicit(&w->state, memory_order_acquire) != URSA__W_QUEUED;
}

/* The waiter lost a race with a completer: wait the few instructions until
 * the completer's waker call has returned. */
static inline void ursa__wait_settle(const ursa_wait_t *w)
{
    if (__builtin_expect(ursa__wait_is_done(w), 1))
        return;
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_SETTLE);
    while (!ursa__wait_is_done(w))
        ursa__spin_backoff(&s);
    ursa__spin_end(&s);
}

/* How a raw wait's finish starts: 0 once w is decided and its waker call
 * has returned (the caller takes the outcome, then marks w FINISHED),
 * -EINVAL (never started, finished already, or cancelled), -EAGAIN (not
 * decided yet). */
static inline int ursa__wait_finish_begin(ursa_wait_t *w)
{
    /* acquire: pairs with the waker's release of the decision. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED || st == URSA__W_CANCELLED)
        return -EINVAL;
    if (!ursa__wait_is_decided(w))
        return -EAGAIN;
    ursa__wait_settle(w); /* the waker call may still be returning */
    return 0;
}

/* A raw wait's finish when the grant holds nothing (a notification, "a
 * message may be ready"): 0 (decided; now FINISHED), -EINVAL, -EAGAIN as
 * ursa__wait_finish_begin. */
static inline int ursa__wait_finish(ursa_wait_t *w)
{
    int rc = ursa__wait_finish_begin(w);
    if (rc == 0)
        /* relaxed: only the waiter reads its node's state from here on. */
        atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return rc;
}

/* How every cancel starts: takes the queue lock. True: w is still queued
 * and the lock is held (the caller unlinks w, hands on whatever it was
 * assigned, marks it CANCELLED, unlocks). False: w was decided first; the
 * lock is released and the completer's waker call has returned. */
static inline bool ursa__wait_cancel_begin(_Atomic uint32_t *lock, ursa_wait_t *w)
{
    ursa__spin_lock(lock);
    /* relaxed: state changes only under this lock. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_QUEUED)
        return true;
    ursa__spin_unlock(lock);
    ursa__wait_settle(w);
    return false;
}

static inline void ursa__waitq_push(ursa_wait_t **head, ursa_wait_t **tail, ursa_wait_t *w)
{
    w->next = NULL;
    w->prev = *tail;
    if (*tail)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

static inline void ursa__waitq_remove(ursa_wait_t **head, ursa_wait_t **tail, ursa_wait_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        *tail = w->prev;
    w->next = w->prev = NULL;
}

/* Wakers collected under a lock, called after it is dropped. */
#define URSA__WAKE_BATCH 32
typedef struct ursa__wake_batch {
    unsigned n;
    ursa_wait_t *w[URSA__WAKE_BATCH];
} ursa__wake_batch_t;

/* Calls each collected waker, then marks its node done. */
static inline void ursa__wake_batch_run(ursa__wake_batch_t *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        ursa_wait_t *w = b->w[i];
        w->waker.fn(w->waker.ctx);
        /* release: the waiter may reuse the node once it sees done. */
        atomic_store_explicit(&w->done, 1, memory_order_release);
    }
    b->n = 0;
}

#endif
