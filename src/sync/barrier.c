/* Barrier: a FIFO of the current generation's waiting parties behind a
 * spinlock. The N-th arrival trips the generation: it detaches the whole
 * queue, decides every node GRANTED under the lock, and calls the wakers
 * after dropping it. A waiter whose deadline or cancel fires withdraws its
 * node (and so its arrival) under the same lock, unless the trip decided
 * it first: then it returns 0 like every other party of the generation. */
#include "ursa/barrier.h"

#include "../core/ctx.h"
#include "wait_steps.h"

static bool barrier_cancel(ursa_wait_t *w);
/* A completed barrier wait holds nothing: no give_back. */
static const ursa__wait_ops_t wait_ops = {URSA_WAIT_BARRIER, barrier_cancel, NULL};

int ursa_barrier_init(ursa_barrier_t *b, uint32_t parties)
{
    if (!b)
        return -EINVAL;
    atomic_init(&b->lock, 0);
    b->parties = parties;
    b->arrived = 0;
    b->pad_ = 0;
    b->generation = 0;
    b->head = b->tail = NULL;
    return 0;
}

int ursa_barrier_destroy(ursa_barrier_t *b)
{
    return b ? ursa__destroy_check(ursa__queue_busy(&b->lock, &b->head),
                                   "barrier destroyed while parties wait")
             : -EINVAL;
}

/* Arrives with w: 0 (tripped by this arrival: w completed as leader),
 * -EINPROGRESS (queued), -EAGAIN (would wait and `try_only`: not counted). */
static int arrive(ursa_barrier_t *b, ursa_wait_t *w, bool try_only)
{
    w->owner = b;
    w->want = 1;
    w->got = 0; /* 1 = leader */
    ursa__spin_lock(&b->lock);
    if (b->arrived + 1 < b->parties) {
        if (try_only) {
            ursa__spin_unlock(&b->lock);
            return -EAGAIN;
        }
        b->arrived++;
        /* relaxed: under the lock, whose unlock publishes the node. */
        atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
        ursa__waitq_push(&b->head, &b->tail, w);
        ursa__spin_unlock(&b->lock);
        return -EINPROGRESS;
    }
    /* We trip it (or N <= 1). Decide every waiter under the lock, so that a
     * deadline or cancel racing us finds its node no longer QUEUED. */
    ursa_wait_t *list = b->head;
    (void)ursa__wait_grant_list(list, 0); /* got 0: not the leader */
    b->head = b->tail = NULL;
    b->arrived = 0;
    b->generation++;
    ursa__spin_unlock(&b->lock);
    ursa__wake_list(list);
    return ursa__wait_start_granted(w, 1); /* got 1: the leader */
}

static bool barrier_cancel(ursa_wait_t *w)
{
    ursa_barrier_t *b = w->owner;
    if (!ursa__wait_cancel_begin(&b->lock, w))
        return false; /* the generation tripped first */
    ursa__waitq_remove(&b->head, &b->tail, w);
    b->arrived--; /* withdraw the arrival */
    ursa__wait_cancel_end(&b->lock, w);
    return true;
}

int ursa_barrier_wait_at(ursa_barrier_t *b, bool *is_leader, ursa_time_t deadline,
                         const ursa_site_t *site)
{
    if (!b)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &wait_ops, site);
    /* A trip that raced the timeout or cancel counts: we were part of the
     * generation. */
    int rc = ursa__wait_block(c, &w, arrive(b, &w, deadline == URSA_NOW), deadline);
    if (rc == 0 && is_leader)
        *is_leader = w.got != 0;
    return rc;
}

int ursa_barrier_wait_start_at(ursa_barrier_t *b, ursa_wait_t *w, ursa_waker_t waker,
                               const ursa_site_t *site)
{
    return b && ursa__wait_raw_init(w, waker, &wait_ops, site) ? arrive(b, w, false) : -EINVAL;
}

int ursa_barrier_wait_finish(ursa_barrier_t *b, ursa_wait_t *w, bool *is_leader)
{
    if (!b || !w || w->owner != b || w->ops != &wait_ops)
        return -EINVAL;
    int rc = ursa__wait_finish_granted(w);
    if (rc)
        return rc;
    if (is_leader)
        *is_leader = w->got != 0;
    return 0;
}

uint32_t ursa_barrier_arrived(const ursa_barrier_t *b)
{
    if (!b)
        return 0;
    ursa_barrier_t *m = (ursa_barrier_t *)b; /* the lock is mutable state */
    ursa__spin_lock(&m->lock);
    uint32_t n = m->arrived;
    ursa__spin_unlock(&m->lock);
    return n;
}

uint64_t ursa_barrier_generation(const ursa_barrier_t *b)
{
    if (!b)
        return 0;
    ursa_barrier_t *m = (ursa_barrier_t *)b;
    ursa__spin_lock(&m->lock);
    uint64_t g = m->generation;
    ursa__spin_unlock(&m->lock);
    return g;
}
