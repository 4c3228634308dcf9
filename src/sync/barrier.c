/* Barrier: a wait queue of the current generation's waiting parties. The
 * N-th arrival trips the generation: it decides every node GRANTED under
 * the lock, and calls the wakers after dropping it. A waiter whose deadline or cancel fires withdraws its
 * node (and so its arrival) under the same lock, unless the trip decided
 * it first: then it returns 0 like every other party of the generation. */
#include "ursa/barrier.h"

#include "../core/ctx.h"
#include "../core/wait_steps.h"

static bool barrier_cancel(ursa__waiter_t *w);
/* A completed barrier wait holds nothing: no give_back. */
static const ursa__wait_ops_t wait_ops = {URSA_WAIT_BARRIER, barrier_cancel, NULL};

int ursa_barrier_init(ursa_barrier_t *b, uint32_t parties)
{
    if (!b)
        return -EINVAL;
    ursa__waitq_init(&b->q);
    b->parties = parties;
    b->arrived = 0;
    b->generation = 0;
    return 0;
}

int ursa_barrier_destroy(ursa_barrier_t *b)
{
    return b ? ursa__destroy_check(ursa__waitq_busy(&b->q),
                                   "barrier destroyed while parties wait")
             : -EINVAL;
}

/* Arrives with w: 0 (tripped by this arrival: w completed as leader),
 * -EINPROGRESS (queued), -EAGAIN (would wait and `try_only`: not counted). */
static int arrive(ursa_barrier_t *b, ursa__waiter_t *w, bool try_only)
{
    w->owner = b;
    w->want = 1;
    w->got = 0; /* 1 = leader */
    uint32_t bits = ursa__waitq_lock(&b->q);
    if (b->arrived + 1 < b->parties) {
        if (try_only) {
            ursa__waitq_unlock(&b->q, bits);
            return -EAGAIN;
        }
        b->arrived++;
        ursa__waitq_push(&b->q, w);
        ursa__waitq_unlock(&b->q, bits);
        return -EINPROGRESS;
    }
    /* We trip it (or N <= 1). Decide every waiter under the lock, so that a
     * deadline or cancel racing us finds its node no longer QUEUED: the
     * trip is all or nothing. */
    ursa__wake_batch_t woken = URSA__WAKE_BATCH_INIT;
    (void)ursa__waitq_decide_all(&b->q, URSA__W_GRANTED, 0, &woken); /* got 0: not the leader */
    b->arrived = 0;
    b->generation++;
    ursa__waitq_unlock(&b->q, bits);
    ursa__wake_batch_run(&woken);
    return ursa__wait_start_granted(w, 1); /* got 1: the leader */
}

/* A barrier is no select case (its arrival is itself a change of state),
 * so no waiter of it has a claim to lose. */
static bool barrier_cancel(ursa__waiter_t *w)
{
    ursa_barrier_t *b = w->owner;
    uint32_t bits;
    if (!ursa__waitq_cancel_begin(&b->q, w, &bits))
        return false; /* the generation tripped first */
    ursa__waitq_remove(&b->q, w);
    b->arrived--; /* withdraw the arrival */
    ursa__waitq_cancel_end(&b->q, w, bits);
    return true;
}

int ursa_barrier_wait_at(ursa_barrier_t *b, bool *is_leader, ursa_time_t deadline,
                         const ursa_site_t *site)
{
    if (!b)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &wait_ops);
    /* A trip that raced the timeout or cancel counts: we were part of the
     * generation. */
    int rc = ursa__wait_block(c, &w, arrive(b, &w, deadline == URSA_NOW), deadline, site);
    if (rc == 0 && is_leader)
        *is_leader = w.got != 0;
    return rc;
}

int ursa_barrier_wait_start_at(ursa_barrier_t *b, ursa_wait_t *w, ursa_waker_t waker,
                               const ursa_site_t *site)
{
    ursa__waiter_t *n = b ? ursa__wait_raw_init(w, waker, &wait_ops, site) : NULL;
    return n ? arrive(b, n, false) : -EINVAL;
}

int ursa_barrier_wait_finish(ursa_barrier_t *b, ursa_wait_t *w, bool *is_leader)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, b, &wait_ops);
    if (!n)
        return -EINVAL;
    int rc = ursa__wait_finish_granted(n);
    if (rc)
        return rc;
    if (is_leader)
        *is_leader = n->got != 0;
    return 0;
}

uint32_t ursa_barrier_arrived(const ursa_barrier_t *b)
{
    if (!b)
        return 0;
    ursa_barrier_t *m = (ursa_barrier_t *)b; /* the lock is mutable state */
    uint32_t bits = ursa__waitq_lock(&m->q);
    uint32_t n = m->arrived;
    ursa__waitq_unlock(&m->q, bits);
    return n;
}

uint64_t ursa_barrier_generation(const ursa_barrier_t *b)
{
    if (!b)
        return 0;
    ursa_barrier_t *m = (ursa_barrier_t *)b;
    uint32_t bits = ursa__waitq_lock(&m->q);
    uint64_t g = m->generation;
    ursa__waitq_unlock(&m->q, bits);
    return g;
}
