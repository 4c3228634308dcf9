/* The steps of a wait that every primitive (sync/ and chan/) takes the
 * same way: block on a started wait, start and finish a raw wait, refuse a
 * destroy while waited on. What a wait is for (a permit, a message, a
 * role) stays with the primitive; the waiter and queue rules are in
 * core/waitq.h. */
#ifndef URSA_CORE_WAIT_STEPS_H
#define URSA_CORE_WAIT_STEPS_H

#include "../core/ctx.h"

/* The blocking half of a wait whose start returned rc (0 done at once,
 * -EINPROGRESS queued, or the start's own error). A queued w blocks until
 * it is decided, its deadline passes or the caller is cancelled; then it
 * is withdrawn with its ops' cancel. 0: w is decided (granted or closed,
 * w->state says which; a decision that raced the deadline or the cancel
 * is kept). -ETIMEDOUT / -ECANCELED: w was withdrawn, nothing is held.
 * Any other rc is the start's and comes back as it is. site: the waiting
 * call's, for reports. */
static inline int ursa__wait_block(ursa__ctx_t *c, ursa__waiter_t *w, int rc,
                                   ursa_time_t deadline, const ursa_site_t *site)
{
    if (rc != -EINPROGRESS)
        return rc;
    rc = ursa__ctx_block(c, w, deadline, site);
    if (rc != 0 && w->ops->cancel(w))
        return rc;
    return 0;
}

/* A raw start's first step: NULL if w or the waker is missing (the
 * caller returns -EINVAL: nothing started); else w's waiter, fresh, of
 * ops with that waker (w keeps the site for the finish). */
static inline ursa__waiter_t *ursa__wait_raw_init(ursa_wait_t *w, ursa_waker_t waker,
                                                  const ursa__wait_ops_t *ops,
                                                  const ursa_site_t *site)
{
    if (!w || !waker.fn)
        return NULL;
    ursa__waiter_init(&w->waiter, waker, ops);
    w->site = site;
    return &w->waiter;
}

/* A raw finish's first check: w's waiter if w is a wait started on
 * `owner` with `ops`, else NULL (the caller returns -EINVAL). */
static inline ursa__waiter_t *ursa__wait_raw_of(ursa_wait_t *w, const void *owner,
                                                const ursa__wait_ops_t *ops)
{
    if (!owner || !w || w->waiter.owner != owner || w->waiter.ops != ops)
        return NULL;
    return &w->waiter;
}

/* A raw finish, for a wait whose grant holds nothing, of a wait started on
 * `owner` with `ops`: -EINVAL if w is not one (NULL, another object's or
 * kind's), else ursa__wait_finish. */
static inline int ursa__wait_finish_of(ursa_wait_t *w, const void *owner,
                                       const ursa__wait_ops_t *ops)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, owner, ops);
    return n ? ursa__wait_finish(n) : -EINVAL;
}

/* A whole blocking wait, for a primitive whose start(obj, w) queues w or
 * completes it at once (0 / -EINPROGRESS / an error): -EAGAIN at
 * URSA_NOW (the caller tried its fast path: nothing is started), else
 * start on a waiter of the caller's and ursa__wait_block. */
static inline int ursa__wait_blocking(void *obj, int (*start)(void *obj, ursa__waiter_t *w),
                                      const ursa__wait_ops_t *ops, ursa_time_t deadline,
                                      const ursa_site_t *site)
{
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, ops);
    return ursa__wait_block(c, &w, start(obj, &w), deadline, site);
}

/* A decided wait for something a close can refuse: 0 granted, -EPIPE
 * closed. */
static inline int ursa__wait_grant_rc(const ursa__waiter_t *w)
{
    /* relaxed: the caller acquired the decision (is_decided, or the
     * settle of a cancel that lost). */
    return atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_GRANTED ? 0 : -EPIPE;
}

/* A raw finish for a wait whose only outcome is a grant: 0 (granted; now
 * FINISHED: the caller hands out the result), or -EAGAIN / -EINVAL as
 * ursa__wait_finish_begin. */
static inline int ursa__wait_finish_granted(ursa__waiter_t *w)
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
static inline int ursa__wait_finish_decided(ursa__waiter_t *w)
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
 * (granted; its waker is not called): 0. A select's w takes its claim
 * first; if that is lost, w is dropped and the start says -EINPROGRESS
 * (core/waitq.h, ursa__wait_start_claim). A start that takes something
 * before this call took the claim already (the second take is w's own). */
static inline int ursa__wait_start_ready(ursa__waiter_t *w)
{
    if (!ursa__wait_start_claim(w))
        return -EINPROGRESS;
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

/* ursa__wait_start_ready for a wait that records what it was granted in
 * w->got (a leader, a passed event, a notify_one). */
static inline int ursa__wait_start_granted(ursa__waiter_t *w, uint32_t got)
{
    w->got = got;
    w->want = 0;
    return ursa__wait_start_ready(w);
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
