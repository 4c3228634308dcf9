#include "bias.h"

#include "membarrier.h"

#define URSA__BIAS_MAX_SKIP (1u << 20)
#define URSA__BIAS_PAYBACK 32

void ursa__bias_init(ursa__bias_t *b, bool never)
{
    atomic_init(&b->on, 0);
    atomic_init(&b->lock, 0);
    /* Not at the first lock: a lock taken a few times only gains nothing. */
    atomic_init(&b->skip, never ? URSA__BIAS_NEVER : URSA__BIAS_MIN_SKIP);
    b->next_skip = URSA__BIAS_MIN_SKIP;
    b->slot = -1;
    b->since = 0;
}

uint32_t ursa__bias_state(ursa__bias_drain_t *d)
{
    ursa__spin_lock(&d->lock);
    /* relaxed: under the drain lock. */
    uint32_t st = atomic_load_explicit(&d->state, memory_order_relaxed);
    ursa__spin_unlock(&d->lock);
    return st;
}

bool ursa__bias_revoke(ursa__bias_t *b, const ursa__bias_ops_t *ops, ursa__ctx_t *c)
{
    ursa__spin_lock(&b->lock);
    /* relaxed: changed under this lock. */
    if (!atomic_load_explicit(&b->on, memory_order_relaxed)) {
        ursa__spin_unlock(&b->lock);
        return false;
    }
    ursa__bias_drain_t *d = ops->drain_of(b);
    ursa_time_t t0 = ursa__ctx_now(c);
    /* relaxed: PENDING before the flag goes off, both before the barrier,
     * which orders them against every fast path. A holder that sees
     * PENDING waits for our verdict under the drain lock. */
    atomic_store_explicit(&d->state, URSA__BIAS_PENDING, memory_order_relaxed);
    atomic_store_explicit(&b->on, 0, memory_order_relaxed);
    ursa__membarrier();
    if (ops->settle)
        ops->settle(d);
    ursa__spin_lock(&d->lock);
    bool drained = ops->drained(d);
    /* relaxed: under the drain lock. */
    atomic_store_explicit(&d->state, drained ? URSA__BIAS_IDLE : URSA__BIAS_ARMED,
                          memory_order_relaxed);
    ursa__spin_unlock(&d->lock);
    ursa_time_t t1 = ursa__ctx_now(c);
    if (t1 - b->since < URSA__BIAS_PAYBACK * (t1 - t0))
        b->next_skip = b->next_skip >= URSA__BIAS_MAX_SKIP / 2 ? URSA__BIAS_MAX_SKIP
                                                               : b->next_skip * 2;
    else
        b->next_skip = URSA__BIAS_MIN_SKIP;
    /* relaxed: a heuristic counter. */
    atomic_store_explicit(&b->skip, b->next_skip, memory_order_relaxed);
    ursa__spin_unlock(&b->lock);
    return drained;
}

bool ursa__bias_drain(ursa__bias_drain_t *d, const ursa__bias_ops_t *ops)
{
    ursa__spin_lock(&d->lock);
    if (ops->leave)
        ops->leave(d);
    /* relaxed: under the drain lock, like every change of state. */
    bool back = atomic_load_explicit(&d->state, memory_order_relaxed) == URSA__BIAS_ARMED &&
                ops->drained(d);
    if (back)
        atomic_store_explicit(&d->state, URSA__BIAS_IDLE, memory_order_relaxed);
    ursa__spin_unlock(&d->lock);
    return back;
}
