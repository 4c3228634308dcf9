/* The fast path: each thread's idle list (newest first), the acquire that
 * pops it and the return that pushes it. Inline: this is what an
 * uncontended acquire and return run (see pool.h for why plain loads and
 * stores in a window suffice). */
#ifndef URSA_SYNC_POOL_LOCAL_H
#define URSA_SYNC_POOL_LOCAL_H

#include <string.h>

#include "pool.h"

/* The calling thread's list when its home entry is not its own: a probe
 * of the next entries, claiming a free one; NULL if all are taken (the
 * thread then goes without: its acquires scan, its returns settle under
 * the lock). */
ursa__pool_local_t *ursa__pool_local_claim(ursa_pool_t *p, uint64_t me);

/* Takes s back from the fast path because it is past its lifetime. */
void ursa__pool_evicted(ursa_pool_t *p, ursa__pool_slot_t *s);

/* A return that could not take the fast path (the gate is set, s is past
 * its lifetime, or the thread has no list); s is stamped. */
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

/* Opens the owner's window on its list l (see pool.h) and returns the
 * gate as seen in it. Nothing in a window may take the lock or wait: a
 * revoker waits for the window to end, maybe under the lock. */
static inline uint64_t ursa__pool_window_open(ursa_pool_t *p, ursa__pool_local_t *l)
{
    /* relaxed: ordered before the gate load by a revoker's membarrier (the
     * compiler fence keeps program order), or by the fence without one. */
    atomic_store_explicit(&l->busy, 1, memory_order_relaxed);
    if (__builtin_expect(p->asym, 1))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    /* acquire: what a revoker did to the slots before it left the gate. */
    return atomic_load_explicit(&p->gate, memory_order_acquire);
}

static inline void ursa__pool_window_close(ursa__pool_local_t *l)
{
    /* release: the window's writes reach a revoker that sees busy 0. */
    atomic_store_explicit(&l->busy, 0, memory_order_release);
}

/* In l's window: the newest slot still idle on l, now BUSY; NULL if
 * none. n is l->n, passed in (the window's compiler fence would reload it). */
static inline ursa__pool_slot_t *ursa__pool_local_pop(ursa__pool_local_t *l, uint32_t n)
{
    ursa__pool_slot_t *s = NULL;
    while (n) {
        ursa__pool_slot_t *c = l->items[--n];
        /* relaxed: a slot idle on l was made so by our own return (in
         * program order before this), and nobody but a revoker (not now:
         * we are in the window) takes it from there. Any other state is a
         * stale entry: taken since, or idle elsewhere. */
        if (atomic_load_explicit(&c->state, memory_order_relaxed) == l->idle_on) {
            /* relaxed: ours (above); a revoker reads it through busy. */
            atomic_store_explicit(&c->state, URSA__POOL_BUSY, memory_order_relaxed);
            s = c;
            break;
        }
    }
    l->n = n;
    return s;
}

/* An idle slot from the caller's list (now BUSY, the caller's; the
 * acquire counted), or NULL: closed, waiters queued, a revoker at work,
 * or nothing idle here. */
static inline ursa__pool_slot_t *ursa__pool_fast_take(ursa_pool_t *p)
{
    ursa__pool_local_t *l = ursa__pool_local(p);
    uint32_t n;
    while (l && (n = l->n) != 0) {
        ursa__pool_slot_t *s = NULL;
        if (!(ursa__pool_window_open(p, l) & URSA__POOL_ACQUIRE_SLOW))
            s = ursa__pool_local_pop(l, n);
        ursa__pool_window_close(l);
        if (!s)
            return NULL;
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
    ursa__pool_stamp_return(p, s);
    ursa__pool_local_t *l = ursa__pool_local(p);
    /* relaxed: set by the housekeeper; a late one is caught on acquire. */
    if (__builtin_expect(l && !atomic_load_explicit(&s->evict, memory_order_relaxed), 1)) {
        if (__builtin_expect(ursa__pool_window_open(p, l) == 0, 1)) {
            ursa__pool_local_push(l, s);
            /* release: our use of the resource, to a revoker's scan that
             * sees it idle (our own next take is in program order). */
            atomic_store_explicit(&s->state, l->idle_on, memory_order_release);
            ursa__pool_window_close(l);
            return;
        }
        ursa__pool_window_close(l);
    }
    ursa__pool_put_slow(p, s);
}

#endif
