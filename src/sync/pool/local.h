/* The fast path: each thread's idle list (newest first), the acquire that
 * pops it and the return that pushes it. Inline: this is what an
 * uncontended acquire and return run (see pool.h for why one CAS and one
 * seq_cst store suffice). */
#ifndef URSA_SYNC_POOL_LOCAL_H
#define URSA_SYNC_POOL_LOCAL_H

#include <string.h>

#include "pool.h"

/* The calling thread's list when its home entry is not its own: a probe
 * of the next entries, claiming a free one; NULL if all are taken (the
 * thread then goes without: its acquires scan, its returns only publish). */
ursa__pool_local_t *ursa__pool_local_claim(ursa_pool_t *p, uint64_t me);

/* Takes s back from the fast path because it is past its lifetime. */
void ursa__pool_evicted(ursa_pool_t *p, ursa__pool_slot_t *s);

/* A return that could not take the fast path (the gate is set, or s is
 * past its lifetime). */
void ursa__pool_put_slow(ursa_pool_t *p, ursa__pool_slot_t *s);

static inline ursa__pool_local_t *ursa__pool_local(ursa_pool_t *p)
{
    uint64_t me = ursa__thread_uid();
    ursa__pool_local_t *l = &p->local[me & (URSA__POOL_LOCALS - 1)];
    /* relaxed: only this thread ever stores its own uid there. */
    if (__builtin_expect(atomic_load_explicit(&l->owner, memory_order_relaxed) == me, 1))
        return l;
    return ursa__pool_local_claim(p, me);
}

/* An idle slot from the caller's list (now BUSY, the caller's; the
 * acquire counted), or NULL: closed, waiters queued, or nothing idle here. */
static inline ursa__pool_slot_t *ursa__pool_fast_take(ursa_pool_t *p)
{
    /* relaxed: a stale gate lets one acquire pass a waiter that queued
     * this instant, or sends it the slow way; the slot's CAS decides. */
    if (atomic_load_explicit(&p->gate, memory_order_relaxed) & URSA__POOL_ACQUIRE_SLOW)
        return NULL;
    ursa__pool_local_t *l = ursa__pool_local(p);
    if (!l)
        return NULL;
    while (l->n) {
        ursa__pool_slot_t *s = l->items[--l->n];
        uint32_t idle = URSA__POOL_IDLE;
        /* acquire: what the returner did with the resource happens-before
         * our use of it. */
        if (!atomic_compare_exchange_strong_explicit(&s->state, &idle, URSA__POOL_BUSY,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue; /* stale: another thread took it */
        /* relaxed: set by the housekeeper; a late one is caught on return. */
        if (__builtin_expect(atomic_load_explicit(&s->evict, memory_order_relaxed), 0)) {
            ursa__pool_evicted(p, s);
            continue;
        }
        /* relaxed: only this thread writes its counter; stats read it. */
        atomic_store_explicit(&l->acquires,
                              atomic_load_explicit(&l->acquires, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return s;
    }
    return NULL;
}

/* Pushes s on list l (dropping the oldest entry when full: that slot stays
 * findable by a scan). */
static inline void ursa__pool_local_push(ursa__pool_local_t *l, ursa__pool_slot_t *s)
{
    if (__builtin_expect(l->n == URSA__POOL_LOCAL_CAP, 0)) {
        memmove(l->items, l->items + 1, sizeof l->items - sizeof *l->items);
        l->n--;
    }
    l->items[l->n++] = s;
}

/* Returns s (BUSY, the caller's) to the pool: onto this thread's list as
 * idle, or, when the gate is set, the slow way. */
static inline void ursa__pool_put(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    /* relaxed: the seq_cst load below is the one that must not miss a
     * waiter; this one only spares a publish that would be taken back. */
    if (atomic_load_explicit(&p->gate, memory_order_relaxed) ||
        /* relaxed: set by the housekeeper; a late one is caught on acquire. */
        atomic_load_explicit(&s->evict, memory_order_relaxed)) {
        ursa__pool_put_slow(p, s);
        return;
    }
    ursa__pool_stamp_return(p, s);
    ursa__pool_local_t *l = ursa__pool_local(p);
    if (l)
        ursa__pool_local_push(l, s);
    /* seq_cst: the store half of the Dekker pair with a waiter's count in
     * the gate (pool.h); also publishes our use of the resource. */
    atomic_store_explicit(&s->state, URSA__POOL_IDLE, memory_order_seq_cst);
    /* seq_cst: the load half; see above. */
    if (__builtin_expect(atomic_load_explicit(&p->gate, memory_order_seq_cst) != 0, 0))
        ursa__pool_after_idle(p, s);
}

#endif
