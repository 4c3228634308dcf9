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

/* Waiters queued on a batch semaphore (mutex, rwlock and semaphore). */
static __attribute__((unused)) size_t peek_sema_len(ursa__sema_t *s)
{
    size_t n = 0;
    ursa__spin_lock(&s->lock);
    for (ursa_wait_t *w = s->head; w; w = w->next)
        n++;
    ursa__spin_unlock(&s->lock);
    return n;
}

/* Permits assigned to the queue head so far (0 when empty). */
static __attribute__((unused)) uint64_t peek_sema_head_got(ursa__sema_t *s)
{
    ursa__spin_lock(&s->lock);
    uint64_t got = s->head ? s->head->got : 0;
    ursa__spin_unlock(&s->lock);
    return got;
}

/* Permits assigned to all queued waiters. */
static __attribute__((unused)) uint64_t peek_sema_got_sum(ursa__sema_t *s)
{
    uint64_t sum = 0;
    ursa__spin_lock(&s->lock);
    for (ursa_wait_t *w = s->head; w; w = w->next)
        sum += w->got;
    ursa__spin_unlock(&s->lock);
    return sum;
}

/* Waiters queued on a notify. Its queue lock is bit 2 of the state word
 * (src/sync/notify.c). */
static __attribute__((unused)) size_t peek_notify_len(ursa_notify_t *n)
{
    uint32_t st;
    do {
        st = atomic_load(&n->state) & ~4u;
    } while (!atomic_compare_exchange_weak(&n->state, &st, st | 4u));
    size_t k = 0;
    for (ursa_wait_t *w = n->head; w; w = w->next)
        k++;
    atomic_store(&n->state, st);
    return k;
}

/* A notification stored in the notify (bit 0 of its state). */
static __attribute__((unused)) bool peek_notify_permit(ursa_notify_t *n)
{
    return atomic_load(&n->state) & 1u;
}

/* Waiters queued on an event. */
static __attribute__((unused)) size_t peek_event_len(ursa_event_t *e)
{
    size_t k = 0;
    ursa__spin_lock(&e->lock);
    for (ursa_wait_t *w = e->head; w; w = w->next)
        k++;
    ursa__spin_unlock(&e->lock);
    return k;
}

/* Callers queued in ursa_once_get_or_init (waiting for the initializer). */
static __attribute__((unused)) int peek_once_inits(ursa_once_cell_t *c)
{
    int n = 0;
    ursa__spin_lock(&c->lock);
    for (const ursa_wait_t *w = c->init_head; w; w = w->next)
        n++;
    ursa__spin_unlock(&c->lock);
    return n;
}

/* Callers queued in ursa_once_wait. */
static __attribute__((unused)) int peek_once_waits(ursa_once_cell_t *c)
{
    int n = 0;
    ursa__spin_lock(&c->lock);
    for (const ursa_wait_t *w = c->wait_head; w; w = w->next)
        n++;
    ursa__spin_unlock(&c->lock);
    return n;
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
