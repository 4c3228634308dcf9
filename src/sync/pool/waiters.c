/* The waiter queue and where a slot goes under the lock: granted to the
 * head of the queue, made idle, or doomed. One FIFO (the core wait queue)
 * for every kind of caller (task, thread, raw); wakers run after the lock
 * is dropped. */
#include "pool.h"

#include "../../core/membarrier.h"
#include "../../core/spin.h"

static bool acquire_cancel(ursa__waiter_t *w);
static void acquire_give_back(ursa__waiter_t *w);
const ursa__wait_ops_t ursa__pool_acquire_ops = {URSA_WAIT_POOL, acquire_cancel,
                                                 acquire_give_back};

static void gate_add(ursa_pool_t *p, uint64_t d)
{
    /* seq_cst: before the revoke that follows for a first waiter, so that
     * every fast return after it sees the count (pool.h). */
    atomic_fetch_add_explicit(&p->gate, d, memory_order_seq_cst);
}

static void gate_sub(ursa_pool_t *p, uint64_t d)
{
    /* release: nothing waits on a decrement; it only lets fast paths in. */
    atomic_fetch_sub_explicit(&p->gate, d, memory_order_release);
}

void ursa__pool_revoke_begin(ursa_pool_t *p)
{
    /* seq_cst: with the membarrier (or the fence) below, the revoker's
     * half of the Dekker with the owners' windows (pool.h). */
    atomic_fetch_add_explicit(&p->gate, URSA__POOL_REVOKER, memory_order_seq_cst);
    if (p->asym)
        ursa__membarrier();
    else
        atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < URSA__POOL_LOCALS; i++) {
        ursa__pool_local_t *l = &p->local[i];
        ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_REVOKE);
        /* acquire: the window's writes (slots taken, pushed, made idle). A
         * window is a few instructions (its thread may be preempted). */
        while (atomic_load_explicit(&l->busy, memory_order_acquire))
            ursa__spin_backoff(&sp);
        ursa__spin_end(&sp);
    }
}

void ursa__pool_revoke_end(ursa_pool_t *p)
{
    /* release: what we did to idle slots, to an owner window that sees
     * the revoker gone (its gate load acquires). */
    atomic_fetch_sub_explicit(&p->gate, URSA__POOL_REVOKER, memory_order_release);
}

ursa__pool_slot_t *ursa__pool_scan_take_locked(ursa_pool_t *p, ursa__pool_after_t *a)
{
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next) {
        /* relaxed, then acquire for the resource: under the revoke every
         * idle slot is seen idle (on a list or not); the CAS decides
         * against the housekeeper's. */
        uint32_t idle = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (ursa__pool_is_idle(idle) &&
            atomic_compare_exchange_strong_explicit(&s->state, &idle, URSA__POOL_BUSY,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            /* relaxed: as in the fast path. */
            if (atomic_load_explicit(&s->evict, memory_order_relaxed)) {
                ursa__pool_doom_locked(p, s, URSA_POOL_MAX_LIFETIME, a);
                continue;
            }
            return s;
        }
    }
    return NULL;
}

int ursa__pool_enqueue(ursa_pool_t *p, ursa__waiter_t *w, bool now)
{
    ursa__pool_after_t a = {0};
    ursa__pool_lock(p);
    if (p->closed) {
        ursa__pool_unlock_only(p);
        return -EPIPE;
    }
    bool first = p->q.head == NULL;
    gate_add(p, URSA__POOL_WAITER);
    /* Nobody ahead: any idle slot (another thread's list) is ours. The
     * revoke also makes every later fast return see our count (pool.h). */
    ursa__pool_slot_t *s = NULL;
    if (first) {
        ursa__pool_revoke_begin(p);
        s = ursa__pool_scan_take_locked(p, &a);
        ursa__pool_revoke_end(p);
    }
    int rc = -EINPROGRESS;
    if (s && !ursa__wait_start_claim(w)) {
        /* A select's wait whose claim is lost takes nothing: the slot goes
         * back where it was (idle: nobody queues while we hold the lock). */
        ursa__pool_offer_locked(p, s, &a);
        gate_sub(p, URSA__POOL_WAITER);
        ursa__pool_unlock(p, &a);
        return -EINPROGRESS;
    }
    if (s || now || p->failing) {
        gate_sub(p, URSA__POOL_WAITER);
        rc = s ? 0 : p->failing ? p->failing : -EAGAIN;
        /* Taking an idle slot may leave fewer than min_idle; a fail_fast
         * pool still probes (see wants_create). */
        a.kick = (s ? p->min_idle > 0 : p->failing != 0) && ursa__pool_wants_create_locked(p);
    } else {
        w->owner = p;
        ursa__waitq_push(&p->q, w);
        a.kick = p->creators < p->cfg.max_connecting && ursa__pool_wants_create_locked(p);
    }
    ursa__pool_unlock(p, &a);
    if (s) {
        w->owner = p;
        (void)ursa__wait_start_granted(w, s->id);
    }
    return rc;
}

ursa__waiter_t *ursa__pool_grant_locked(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    /* The oldest waiter that can take it; a select's whose claim was lost
     * leaves the queue as if it had withdrawn (core/waitq.h, rules 1-3). */
    ursa__waiter_t *w;
    while ((w = ursa__waitq_pop(&p->q))) {
        gate_sub(p, URSA__POOL_WAITER);
        w->got = s->id;
        if (ursa__waiter_decide(w, URSA__W_GRANTED))
            return w;
    }
    return NULL;
}

void ursa__pool_offer_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa__pool_after_t *a)
{
    ursa__waiter_t *w = ursa__pool_grant_locked(p, s);
    if (w) {
        ursa__wake_batch_add(&a->wake, w);
        return;
    }
    /* release: publishes the resource to whoever takes it: a revoker's
     * scan (idle on no list, no owner's fast path takes it). */
    atomic_store_explicit(&s->state, URSA__POOL_IDLE, memory_order_release);
}

void ursa__pool_settle_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa__pool_after_t *a)
{
    if (p->closed)
        ursa__pool_doom_locked(p, s, URSA_POOL_CLOSED, a);
    else if (p->size > p->max_size)
        ursa__pool_doom_locked(p, s, URSA_POOL_SHRINK, a);
    /* relaxed: set by the housekeeper, read by whoever holds s. */
    else if (atomic_load_explicit(&s->evict, memory_order_relaxed))
        ursa__pool_doom_locked(p, s, URSA_POOL_MAX_LIFETIME, a);
    else
        ursa__pool_offer_locked(p, s, a);
    if (p->drainers)
        a->changed = true;
}

void ursa__pool_fail_waiters_locked(ursa_pool_t *p, int err, ursa__pool_after_t *a)
{
    ursa__waiter_t *w;
    while ((w = ursa__waitq_pop(&p->q))) {
        gate_sub(p, URSA__POOL_WAITER);
        w->got = (uint32_t)-err;
        (void)ursa__waiter_decide_into(w, URSA__W_CLOSED, &a->wake);
    }
}

void ursa__pool_shrunk_locked(ursa_pool_t *p, ursa__pool_after_t *a)
{
    /* relaxed: the gate's bits change under the lock; readers only need
     * some recent value (a return that misses OVER settles the next one). */
    if (p->size <= p->max_size &&
        (atomic_load_explicit(&p->gate, memory_order_relaxed) & URSA__POOL_OVER))
        /* release: as gate_sub. */
        atomic_fetch_and_explicit(&p->gate, ~URSA__POOL_OVER, memory_order_release);
    if (p->creators < p->cfg.max_connecting && ursa__pool_wants_create_locked(p))
        a->kick = true;
    if (p->drainers)
        a->changed = true;
}

void ursa__pool_doom_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa_pool_reason_t reason,
                            ursa__pool_after_t *a)
{
    s->reason = reason;
    /* relaxed: the slot is the pool's; only counts and scans read it. */
    atomic_store_explicit(&s->state, URSA__POOL_DOOMED, memory_order_relaxed);
    s->link = p->graveyard;
    p->graveyard = s;
    p->graves++;
    p->size--;
    a->kick = true; /* the housekeeper destroys it */
    ursa__pool_shrunk_locked(p, a);
}

void ursa__pool_unlock(ursa_pool_t *p, ursa__pool_after_t *a)
{
    ursa__pool_unlock_only(p);
    ursa__wake_batch_run(&a->wake);
    if (a->kick)
        (void)ursa_notify_one(&p->kick);
    if (a->changed)
        (void)ursa_notify_waiters(&p->changed);
}

void ursa__pool_settle(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    ursa__pool_after_t a = {0};
    ursa__pool_lock(p);
    ursa__pool_settle_locked(p, s, &a);
    ursa__pool_unlock(p, &a);
}

void ursa__pool_doom(ursa_pool_t *p, ursa__pool_slot_t *s, ursa_pool_reason_t reason)
{
    ursa__pool_after_t a = {0};
    ursa__pool_lock(p);
    ursa__pool_doom_locked(p, s, reason, &a);
    ursa__pool_unlock(p, &a);
}

/* ---- the wait ops ---- */

static bool acquire_cancel(ursa__waiter_t *w)
{
    ursa_pool_t *p = w->owner;
    uint32_t bits;
    if (!ursa__waitq_cancel_begin(&p->q, w, &bits))
        return ursa__waiter_dropped(w); /* decided (granted or failed), or dropped */
    ursa__waitq_remove(&p->q, w);
    gate_sub(p, URSA__POOL_WAITER);
    /* A create started for this waiter goes on: its item will serve the
     * next waiter or go idle. */
    ursa__waitq_cancel_end(&p->q, w, bits);
    return true;
}

static void acquire_give_back(ursa__waiter_t *w)
{
    ursa_pool_t *p = w->owner;
    ursa__pool_slot_t *s = ursa__pool_slot_of(p, w->got);
    ursa__pool_stamp_return(p, s);
    ursa__pool_settle(p, s);
}
