/* The raw two-phase wait's first steps for the runtime's own waits
 * (tokens, groups): sync/wait_steps.h has the same for the primitives,
 * which rt/ does not include (arrows point down). */
#ifndef URSA_RT_RAW_H
#define URSA_RT_RAW_H

#include "../core/ctx.h"

/* A raw start's first step: NULL if w or the waker is missing (nothing
 * started: -EINVAL), else w's waiter, fresh, of ops with that waker. */
static inline ursa__waiter_t *ursa__rt_raw_init(ursa_wait_t *w, ursa_waker_t waker,
                                                const ursa__wait_ops_t *ops,
                                                const ursa_site_t *site)
{
    if (!w || !waker.fn)
        return NULL;
    ursa__waiter_init(&w->waiter, waker, ops);
    w->site = site;
    return &w->waiter;
}

/* A raw finish's check: w's waiter if it is a wait started on owner with
 * ops, else NULL (-EINVAL). */
static inline ursa__waiter_t *ursa__rt_raw_of(ursa_wait_t *w, const void *owner,
                                              const ursa__wait_ops_t *ops)
{
    if (!owner || !w || w->waiter.owner != owner || w->waiter.ops != ops)
        return NULL;
    return &w->waiter;
}

/* A start that finds w's wait ready at once (or over), before it takes
 * anything, under the lock that guards what it takes: takes w's select
 * claim. True: w may complete now (a plain waiter, or the claim is w's).
 * False: the claim is lost, w is dropped (withdrawn, nothing taken) and
 * the start says -EINPROGRESS. (The select branch's
 * ursa__wait_start_claim in core/waitq.h is the same step.) */
static inline bool ursa__rt_start_claim(ursa__waiter_t *w)
{
    if (__builtin_expect(ursa__waiter_claim(w), 1))
        return true;
    ursa__waiter_drop(w);
    return false;
}

/* A blocking wait whose start returned rc (0 at once, -EINPROGRESS
 * queued, else an error): 0 once w is decided (a decision that raced the
 * deadline or a cancel is kept), or -ETIMEDOUT / -ECANCELED with w
 * withdrawn. */
static inline int ursa__rt_raw_block(ursa__ctx_t *c, ursa__waiter_t *w, int rc,
                                     ursa_time_t deadline, const ursa_site_t *site)
{
    if (rc != -EINPROGRESS)
        return rc;
    rc = ursa__ctx_block(c, w, deadline, site);
    if (rc != 0 && w->ops->cancel(w))
        return rc;
    return 0;
}

#endif
