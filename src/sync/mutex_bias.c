/* The mutex's owner bias: revoke, drain, turning on (mutex_bias.h says
 * how it works; core/bias.h is the protocol). */
#include "mutex_bias.h"

#include <stddef.h>

#include "../core/membarrier.h"

static ursa_mutex_t *of_drain(ursa__bias_drain_t *d)
{
    return (ursa_mutex_t *)(void *)((char *)d - offsetof(ursa_mutex_t, drain));
}

static ursa__bias_drain_t *drain_of(ursa__bias_t *b)
{
    return &((ursa_mutex_t *)(void *)((char *)b - offsetof(ursa_mutex_t, bias)))->drain;
}

/* An unlock that stored LEAVING before the barrier may have read IDLE: it
 * ends with its store of 0, a few instructions on. */
static void settle(ursa__bias_drain_t *d)
{
    ursa_mutex_t *m = of_drain(d);
    /* acquire: the unlock's critical section (its release of 0). */
    if (atomic_load_explicit(&m->held, memory_order_acquire) != URSA__MUTEX_LEAVING)
        return;
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_REVOKE);
    while (atomic_load_explicit(&m->held, memory_order_acquire) == URSA__MUTEX_LEAVING)
        ursa__spin_backoff(&s);
    ursa__spin_end(&s);
}

static void leave(ursa__bias_drain_t *d)
{
    /* release: the critical section happens-before the revoker's look
     * (under the drain lock too, but the token may go back from there). */
    atomic_store_explicit(&of_drain(d)->held, 0, memory_order_release);
}

static bool drained(ursa__bias_drain_t *d)
{
    /* acquire: as in settle. */
    return atomic_load_explicit(&of_drain(d)->held, memory_order_acquire) == 0;
}

static const ursa__bias_ops_t mutex_bias_ops = {drain_of, settle, leave, drained};

void ursa__mutex_bias_revoke(ursa_mutex_t *m, ursa__ctx_t *c)
{
    if (ursa__bias_revoke(&m->bias, &mutex_bias_ops, c))
        ursa__sema_release(&m->sema, 1);
}

void ursa__mutex_bias_drain(ursa_mutex_t *m)
{
    /* While ARMED the token is out, so m lives until we give it back; when
     * PENDING, our store of 0 under the drain lock is our last touch. */
    if (ursa__bias_drain(&m->drain, &mutex_bias_ops))
        ursa__sema_release(&m->sema, 1);
}

bool ursa__mutex_bias_try_on(ursa_mutex_t *m, ursa__ctx_t *c, ursa_mutex_guard_t *g)
{
    bool on = false;
    ursa__spin_lock(&m->bias.lock);
    if (!ursa__bias_due(&m->bias)) {
        /* turned on by a racing caller, or counted up again */
    } else if (!ursa__membarrier_usable()) {
        /* relaxed: changed under bias.lock. */
        atomic_store_explicit(&m->bias.skip, URSA__BIAS_NEVER, memory_order_relaxed);
    } else if (m->owner && m->owner != (uintptr_t)c) {
        ursa__bias_try_later(&m->bias); /* sticky owner (mutex_bias.h) */
    } else {
        /* We hold the permit, so no fast hold is out and the drain state
         * is IDLE. `on` goes up before the look at the queue: a waiter
         * that queues after the look sees it after its queueing (the queue
         * lock orders the two) and revokes (mutex.c, lock_slow). relaxed
         * (held): published by the release store of on. */
        atomic_store_explicit(&m->held, (uintptr_t)g, memory_order_relaxed);
        ursa__bias_turned_on(&m->bias, (uintptr_t)c, c);
        if (ursa__sema_has_waiters(&m->sema)) {
            /* relaxed: nobody takes the fast path but c, which is here. */
            atomic_store_explicit(&m->bias.on, 0, memory_order_relaxed);
            atomic_store_explicit(&m->held, 0, memory_order_relaxed);
            ursa__bias_try_later(&m->bias);
        } else {
            m->owner = (uintptr_t)c;
            on = true;
        }
    }
    ursa__spin_unlock(&m->bias.lock);
    return on;
}
