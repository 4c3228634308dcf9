/* Looks into the private wait queues of the primitives, each under the
 * queue's own lock: how many waiters are queued, what the head of a
 * semaphore queue has been assigned. Tests use it to know that a waiter has
 * queued (and to check that nothing was left queued). Include after
 * support.h. */
#ifndef URSA_TEST_QUEUE_PEEK_H
#define URSA_TEST_QUEUE_PEEK_H

#include <stdatomic.h>

#include <ursa.h>

#include "core/sema.h"
#include "core/spin.h"
#include "core/waitq.h"

/* Waiters on a wait queue, counted under its lock (those a wake-all is
 * still deciding included). */
static __attribute__((unused)) size_t peek_waitq_len(ursa__waitq_t *q)
{
    uint32_t bits = ursa__waitq_lock(q);
    size_t n = atomic_load(&q->n);
    ursa__waitq_unlock(q, bits);
    return n;
}

/* Waiters queued on a batch semaphore (mutex, rwlock and semaphore). */
static __attribute__((unused)) size_t peek_sema_len(ursa__sema_t *s)
{
    return peek_waitq_len(&s->q);
}

/* Permits assigned to the queue head so far (0 when empty). */
static __attribute__((unused)) uint64_t peek_sema_head_got(ursa__sema_t *s)
{
    uint32_t bits = ursa__waitq_lock(&s->q);
    uint64_t got = s->q.head ? s->q.head->got : 0;
    ursa__waitq_unlock(&s->q, bits);
    return got;
}

/* Permits assigned to all queued waiters. */
static __attribute__((unused)) uint64_t peek_sema_got_sum(ursa__sema_t *s)
{
    uint64_t sum = 0;
    uint32_t bits = ursa__waitq_lock(&s->q);
    for (ursa__waiter_t *w = s->q.head; w; w = w->next)
        sum += w->got == URSA__SEMA_LOOKING ? 0 : w->got; /* a barging looker holds none */
    ursa__waitq_unlock(&s->q, bits);
    return sum;
}

/* Waiters queued on a notify. */
static __attribute__((unused)) size_t peek_notify_len(ursa_notify_t *n)
{
    return peek_waitq_len(&n->q);
}

/* A notification stored in the notify (PERMIT, bit 0 of its queue's lock
 * word: src/sync/notify.c). */
static __attribute__((unused)) bool peek_notify_permit(ursa_notify_t *n)
{
    return atomic_load(&n->q.lock) & 1u;
}

/* Waiters queued on an event. */
static __attribute__((unused)) size_t peek_event_len(ursa_event_t *e)
{
    return peek_waitq_len(&e->q);
}

/* Callers of one kind queued on a once cell: get_or_init callers (inits)
 * or ursa_once_wait callers; only an init wait has a give_back. */
static __attribute__((unused)) int peek_once_queued(ursa_once_cell_t *c, bool inits)
{
    int n = 0;
    uint32_t bits = ursa__waitq_lock(&c->q);
    for (const ursa__waiter_t *w = c->q.head; w; w = w->next)
        n += (w->ops->give_back != NULL) == inits;
    ursa__waitq_unlock(&c->q, bits);
    return n;
}

/* Callers queued in ursa_once_get_or_init (waiting for the initializer). */
static __attribute__((unused)) int peek_once_inits(ursa_once_cell_t *c)
{
    return peek_once_queued(c, true);
}

/* Callers queued in ursa_once_wait. */
static __attribute__((unused)) int peek_once_waits(ursa_once_cell_t *c)
{
    return peek_once_queued(c, false);
}

/* A recv or closed() wait queued on a oneshot. */
static __attribute__((unused)) bool peek_oneshot_waiting(ursa_oneshot_t *os)
{
    ursa__spin_lock(&os->lock);
    bool r = os->rx_w != NULL || os->tx_w != NULL;
    ursa__spin_unlock(&os->lock);
    return r;
}

#endif
