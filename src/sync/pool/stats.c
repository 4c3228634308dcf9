/* Observability: the counters, the stats snapshot, the event callback. */
#include "local.h"

void ursa__pool_event(ursa_pool_t *p, ursa_pool_event_kind_t kind, ursa_pool_reason_t reason,
                      void *res, int error)
{
    if (!p->cfg.on_event)
        return;
    ursa_pool_event_t ev = {kind, reason, res, error};
    p->cfg.on_event(p->cfg.event_ctx, &ev);
}

void ursa__pool_count_acquire(ursa_pool_t *p)
{
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&p->shared_acquires, 1, memory_order_relaxed);
}

void ursa__pool_count_wait(ursa_pool_t *p, ursa_time_t ns)
{
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&p->wait_total, ns, memory_order_relaxed);
    ursa_time_t max = atomic_load_explicit(&p->wait_max, memory_order_relaxed);
    while (ns > max && !atomic_compare_exchange_weak_explicit(&p->wait_max, &max, ns,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
}

void ursa__pool_count_timeout(ursa_pool_t *p)
{
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&p->timeouts, 1, memory_order_relaxed);
}

int ursa_pool_stats(ursa_pool_t *p, ursa_pool_stats_t *out)
{
    if (!p || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    ursa__pool_lock(p);
    out->size = p->size;
    out->creating = p->creating;
    out->max_size = p->max_size;
    out->min_idle = p->min_idle;
    /* relaxed: the waiter count changes under the lock we hold. */
    out->waiters = ursa__pool_nwait(atomic_load_explicit(&p->gate, memory_order_relaxed));
    ursa__pool_unlock_only(p);
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next) {
        /* relaxed: a snapshot. */
        uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        out->idle += ursa__pool_is_idle(st);
        out->in_use += st == URSA__POOL_BUSY;
    }
    /* relaxed, all: statistics. */
    uint64_t acquires = atomic_load_explicit(&p->shared_acquires, memory_order_relaxed);
    for (unsigned i = 0; i < URSA__POOL_LOCALS; i++)
        acquires += atomic_load_explicit(&p->local[i].acquires, memory_order_relaxed);
    out->acquires = acquires;
    out->timeouts = atomic_load_explicit(&p->timeouts, memory_order_relaxed);
    out->creates = atomic_load_explicit(&p->creates, memory_order_relaxed);
    out->create_failures = atomic_load_explicit(&p->create_failures, memory_order_relaxed);
    out->wait_total = atomic_load_explicit(&p->wait_total, memory_order_relaxed);
    out->wait_max = atomic_load_explicit(&p->wait_max, memory_order_relaxed);
    for (unsigned r = 0; r < URSA_POOL_REASONS; r++)
        out->destroyed[r] = atomic_load_explicit(&p->destroyed[r], memory_order_relaxed);
    return 0;
}
