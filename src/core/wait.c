/* The wait queue's out-of-line steps (the lock's slow path, deciding many
 * waiters) and the raw two-phase wait's generic half: readiness and
 * cancel. */
#include "waitq.h"

uint32_t ursa__waitq_lock_slow(ursa__waitq_t *q)
{
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_LOCK);
    for (;;) {
        /* relaxed: the CAS validates it. */
        uint32_t st = atomic_load_explicit(&q->lock, memory_order_relaxed);
        /* acquire: as in ursa__waitq_lock. */
        if (!(st & URSA__WAITQ_LOCKED) &&
            atomic_compare_exchange_weak_explicit(&q->lock, &st, st | URSA__WAITQ_LOCKED,
                                                  memory_order_acquire, memory_order_relaxed)) {
            ursa__spin_end(&s);
            return st;
        }
        ursa__spin_backoff(&s); /* the holder may be a preempted thread */
    }
}

void ursa__waitq_flush_slow(ursa__waitq_t *q, ursa__wake_batch_t *b)
{
    ursa__waitq_unlock(q, ursa__waitq_bits(q));
    ursa__wake_batch_run(b);
    *b = (ursa__wake_batch_t)URSA__WAKE_BATCH_INIT;
    (void)ursa__waitq_lock(q);
}

ursa__waiter_t *ursa__waitq_decide_last(ursa__waitq_t *q, uint32_t state, uint32_t got)
{
    ursa__waiter_t *w;
    while ((w = q->tail)) {
        ursa__waitq_remove(q, w);
        w->got = got;
        if (ursa__waiter_decide(w, state))
            return w;
    }
    return NULL;
}

unsigned ursa__waitq_decide_all(ursa__waitq_t *q, uint32_t state, uint32_t got,
                                ursa__wake_batch_t *b)
{
    unsigned n = 0;
    ursa__waiter_t *w;
    while ((w = ursa__waitq_decide_first(q, state, got))) {
        ursa__wake_batch_add(b, w);
        n++;
    }
    return n;
}

/* Under the lock: moves every queued waiter onto the waking list, ahead
 * of what an earlier wake-all left there (O(1); this call helps decide
 * those too). */
static void detach_all(ursa__waitq_t *q)
{
    if (!q->head)
        return;
    if (q->waking) {
        q->tail->next = q->waking;
        q->waking->prev = q->tail;
    }
    q->waking = q->head;
    q->head = q->tail = NULL;
}

/* Decides the nodes of list (linked by next, off any queue) into b. */
static unsigned decide_list(ursa__waiter_t *list, uint32_t state, uint32_t got,
                            ursa__wake_batch_t *b)
{
    unsigned n = 0;
    for (ursa__waiter_t *w = list, *next; w; w = next) {
        next = w->next;
        w->got = got;
        n += ursa__waiter_decide_into(w, state, b);
    }
    return n;
}

unsigned ursa__waitq_wake_all_slow(ursa__waitq_t *q, uint32_t bits, uint32_t state,
                                   uint32_t got)
{
    if (!q->waking && ursa__waitq_queued(q) <= URSA__WAKE_BATCH) {
        /* One batch: decided straight off the queue, nothing detached. */
        ursa__waiter_t *list = q->head;
        q->head = q->tail = NULL;
        /* relaxed: as in ursa__waitq_count. */
        atomic_store_explicit(&q->n, 0, memory_order_relaxed);
        ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
        unsigned n = decide_list(list, state, got, &b);
        ursa__waitq_unlock(q, bits);
        ursa__wake_batch_run(&b);
        return n;
    }
    detach_all(q);
    unsigned total = 0;
    for (;;) {
        ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
        ursa__waiter_t *w;
        while (b.n < URSA__WAKE_BATCH && (w = q->waking)) {
            q->waking = w->next;
            ursa__waitq_prefetch(ursa__waitq_count(q, -1), q->waking);
            w->got = got;
            total += ursa__waiter_decide_into(w, state, &b);
        }
        bool more = q->waking != NULL;
        ursa__waitq_unlock(q, bits);
        ursa__wake_batch_run(&b);
        if (!more)
            return total; /* q is not touched again: a woken waiter may free it */
        bits = ursa__waitq_lock(q);
    }
}

/* ---- the raw two-phase wait (include/ursa/wait.h) ---- */

bool ursa_wait_ready(const ursa_wait_t *w)
{
    /* Decided, not done: a loop woken by what its waker did must already
     * see the wait as ready; finish/cancel settle the rest of the call. */
    return w && w->waiter.ops && ursa__wait_is_decided(&w->waiter);
}

int ursa_wait_cancel(ursa_wait_t *rw)
{
    if (!rw || !rw->waiter.ops)
        return -EINVAL;
    ursa__waiter_t *w = &rw->waiter;
    /* relaxed: only the waiter's own calls change IDLE, FINISHED and
     * CANCELLED; anything else is re-read under the queue lock. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_relaxed);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED)
        return -EINVAL;
    /* CANCELLED here: a select's wait that a decider dropped (its claim
     * was lost); the cancel below finds it so and holds nothing. */
    if (!w->ops->cancel(w) &&
        atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_GRANTED &&
        w->ops->give_back)
        w->ops->give_back(w); /* granted but never finished: hand it on */
    /* relaxed: the node is the caller's again. */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return -ECANCELED;
}
