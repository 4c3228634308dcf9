/* The steps of a wait that every primitive (sync/ and chan/) takes the
 * same way: block on a started wait, finish a raw wait, end a cancel that
 * found its node queued, grant and wake a detached list of nodes, refuse
 * a destroy while waited on. What a wait is for (a permit, a message, a
 * role) stays with the primitive; the wait node rules are in
 * core/waitq.h. */
#ifndef URSA_SYNC_WAIT_STEPS_H
#define URSA_SYNC_WAIT_STEPS_H

#include "../core/ctx.h"

/* The blocking half of a wait whose start returned rc (0 done at once,
 * -EINPROGRESS queued, or the start's own error). A queued w blocks until
 * it is decided, its deadline passes or the caller is cancelled; then it
 * is withdrawn with its ops' cancel. 0: w is decided (granted or closed,
 * w->state says which; a decision that raced the deadline or the cancel
 * is kept). -ETIMEDOUT / -ECANCELED: w was withdrawn, nothing is held.
 * Any other rc is the start's and comes back as it is. */
static inline int ursa__wait_block(ursa__ctx_t *c, ursa_wait_t *w, int rc, ursa_time_t deadline)
{
    if (rc != -EINPROGRESS)
        return rc;
    rc = ursa__ctx_block(c, w, deadline);
    if (rc != 0 && w->ops->cancel(w))
        return rc;
    return 0;
}

/* A raw start's first step: false if w or the waker is missing (the
 * caller returns -EINVAL: nothing started); else w is a fresh node of ops
 * with that waker. */
static inline bool ursa__wait_raw_init(ursa_wait_t *w, ursa_waker_t waker,
                                       const ursa__wait_ops_t *ops, const ursa_site_t *site)
{
    if (!w || !waker.fn)
        return false;
    ursa__wait_init(w, waker, ops, site);
    return true;
}

/* A raw finish, for a wait whose grant holds nothing, of a wait started on
 * `owner` with `ops`: -EINVAL if w is not one (NULL, another object's or
 * kind's), else ursa__wait_finish(w). */
static inline int ursa__wait_finish_of(ursa_wait_t *w, const void *owner,
                                       const ursa__wait_ops_t *ops)
{
    if (!owner || !w || w->owner != owner || w->ops != ops)
        return -EINVAL;
    return ursa__wait_finish(w);
}

/* A whole blocking wait, for a primitive whose start(obj, w) queues w or
 * completes it at once (0 / -EINPROGRESS / an error): -EAGAIN at
 * URSA_NOW (the caller tried its fast path: nothing is started), else
 * start on a node of the caller's and ursa__wait_block. */
static inline int ursa__wait_blocking(void *obj, int (*start)(void *obj, ursa_wait_t *w),
                                      const ursa__wait_ops_t *ops, ursa_time_t deadline,
                                      const ursa_site_t *site)
{
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, ops, site);
    return ursa__wait_block(c, &w, start(obj, &w), deadline);
}

/* A decided wait for something a close can refuse: 0 granted, -EPIPE
 * closed. */
static inline int ursa__wait_grant_rc(const ursa_wait_t *w)
{
    /* relaxed: the caller acquired the decision (is_decided, or the
     * settle of a cancel that lost). */
    return atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_GRANTED ? 0 : -EPIPE;
}

/* A raw finish for a wait whose only outcome is a grant: 0 (granted; now
 * FINISHED: the caller hands out the result), or -EAGAIN / -EINVAL as
 * ursa__wait_finish_begin. */
static inline int ursa__wait_finish_granted(ursa_wait_t *w)
{
    int rc = ursa__wait_finish_begin(w);
    if (rc)
        return rc;
    /* relaxed: finish_begin acquired the decision and settled. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) != URSA__W_GRANTED)
        return -EINVAL;
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return 0;
}

/* A raw finish for a wait that is granted or closed (a semaphore wait):
 * the outcome, URSA__W_GRANTED or URSA__W_CLOSED (the wait is now
 * FINISHED), or -EAGAIN / -EINVAL as ursa__wait_finish_begin. */
static inline int ursa__wait_finish_decided(ursa_wait_t *w)
{
    int rc = ursa__wait_finish_begin(w);
    if (rc)
        return rc;
    /* relaxed: finish_begin acquired the decision and settled. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_relaxed);
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return (int)st;
}

/* A raw start found what it waits for before it queued: w completes now
 * (granted; its waker is not called). */
static inline int ursa__wait_start_ready(ursa_wait_t *w)
{
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

/* ursa__wait_start_ready for a wait that records what it was granted in
 * w->got (a leader, a passed event, a notify_one). */
static inline int ursa__wait_start_granted(ursa_wait_t *w, uint64_t got)
{
    w->got = got;
    w->want = 0;
    return ursa__wait_start_ready(w);
}

/* How a cancel that found w still queued ends, with the queue's spinlock
 * held and w unlinked: marks w CANCELLED, unlocks, and lets the caller
 * forget w (no waker call is in flight for it). */
static inline void ursa__wait_cancel_end(_Atomic uint32_t *lock, ursa_wait_t *w)
{
    /* relaxed: state changes only under the lock, and w is the caller's. */
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    ursa__spin_unlock(lock);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
}

/* Under the queue lock: decides every node of the detached list `list`
 * GRANTED, with `got` recorded in each; returns how many. The caller
 * unlocks, then calls ursa__wake_list(list). */
static inline unsigned ursa__wait_grant_list(ursa_wait_t *list, uint64_t got)
{
    unsigned n = 0;
    for (ursa_wait_t *w = list; w; w = w->next, n++) {
        w->got = got;
        /* release: the waiter reads got, and what the granter wrote
         * before, after it sees the decision. */
        atomic_store_explicit(&w->state, URSA__W_GRANTED, memory_order_release);
    }
    return n;
}

/* Calls the waker of a decided node taken out of its queue (outside the
 * queue lock), then marks it done: from then on its waiter may reuse it. */
static inline void ursa__wake_node(ursa_wait_t *w)
{
    w->waker.fn(w->waker.ctx);
    /* release: the waiter may reuse the node once it sees done. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

/* ursa__wake_node for each node of a detached list of decided nodes.
 * Cancel leaves decided nodes alone (it only settles), so their links are
 * ours; `next` is read before done lets a node go. */
static inline void ursa__wake_list(ursa_wait_t *list)
{
    while (list) {
        ursa_wait_t *next = list->next;
        ursa__wake_node(list);
        list = next;
    }
}

/* Whether a queue behind the spinlock `lock` has a node (a snapshot). */
static inline bool ursa__queue_busy(_Atomic uint32_t *lock, ursa_wait_t *const *head)
{
    ursa__spin_lock(lock);
    bool busy = *head != NULL;
    ursa__spin_unlock(lock);
    return busy;
}

/* A destroy's refusal: 0 if the object is idle; -EBUSY if `busy` (held or
 * waited on: reported as misuse, nothing changed). */
static inline int ursa__destroy_check(bool busy, const char *misuse)
{
    if (!busy)
        return 0;
    ursa__report_misuse(misuse, NULL);
    return -EBUSY;
}

#endif
