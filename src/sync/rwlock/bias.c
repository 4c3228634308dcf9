/* The rwlock's reader bias.
 *
 * A read lock on the semaphore is a CAS to lock and one to unlock, on a
 * line every reader shares. While a lock is read-mostly we bias it instead
 * (reader_tables.h): the bias holds one "token" permit for all fast
 * readers together, and each reader only counts itself in its thread's
 * reader table. A writer first revokes the bias (flag off, membarrier, sum
 * the column); if fast readers remain, the last of them to unlock finds
 * the slot ARMED and returns the token, which lets the writer (queued on
 * the semaphore like any writer) in. So fairness, deadlines, cancel and
 * the raw form of writers are the semaphore's. A writer revokes again once
 * it is queued: a reader may have turned the bias on between its first
 * revoke and its queueing (later ones cannot: taking the token fails while
 * a writer queues).
 *
 * A slow-path reader turns the bias back on once `skip` slow read locks
 * went by with no writer queued; `skip` doubles (up to
 * URSA__RWLOCK_BIAS_MAX_SKIP) each time bias was revoked before it lived
 * URSA__RWLOCK_BIAS_PAYBACK times the cost of its revocation, so
 * write-heavy locks stay unbiased. Locks with a reader limit below
 * URSA_RWLOCK_DEFAULT_READERS never bias: fast readers are not counted
 * against it. */
#include "rwlock.h"

#include "../../core/membarrier.h"
#include "../../core/spin.h"

#define URSA__RWLOCK_BIAS_MAX_SKIP (1u << 20)
#define URSA__RWLOCK_BIAS_PAYBACK 32

uint32_t ursa__rwlock_slot_state(int slot)
{
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
    ursa__spin_lock(&sl->lock);
    /* relaxed: under the slot's lock. */
    uint32_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
    ursa__spin_unlock(&sl->lock);
    return st;
}

void ursa__rwlock_bias_revoke(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    ursa__spin_lock(&rw->bias.lock);
    /* relaxed: changed under this lock. */
    if (!atomic_load_explicit(&rw->bias.on, memory_order_relaxed)) {
        ursa__spin_unlock(&rw->bias.lock);
        return;
    }
    ursa_time_t t0 = ursa__ctx_now(c);
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[rw->bias.slot];
    /* relaxed: PENDING before the flag goes off, both before the barrier,
     * which orders them against every reader (reader_tables.h). An unlock
     * that sees PENDING waits for our verdict under the slot's lock. */
    atomic_store_explicit(&sl->state, URSA__RBIAS_PENDING, memory_order_relaxed);
    atomic_store_explicit(&rw->bias.on, 0, memory_order_relaxed);
    ursa__membarrier();
    ursa__spin_lock(&sl->lock);
    bool drained = ursa__rbias_held(rw->bias.slot) == 0;
    /* relaxed: under the slot's lock. */
    atomic_store_explicit(&sl->state, drained ? URSA__RBIAS_IDLE : URSA__RBIAS_ARMED,
                          memory_order_relaxed);
    ursa__spin_unlock(&sl->lock);
    ursa_time_t t1 = ursa__ctx_now(c);
    /* Bias that did not outlive URSA__RWLOCK_BIAS_PAYBACK revocations did
     * not pay for itself: wait longer before the next try. */
    if (t1 - rw->bias.since < URSA__RWLOCK_BIAS_PAYBACK * (t1 - t0))
        rw->bias.next_skip = rw->bias.next_skip >= URSA__RWLOCK_BIAS_MAX_SKIP / 2
                                 ? URSA__RWLOCK_BIAS_MAX_SKIP
                                 : rw->bias.next_skip * 2;
    else
        rw->bias.next_skip = URSA__RWLOCK_BIAS_MIN_SKIP;
    /* relaxed: a heuristic counter. */
    atomic_store_explicit(&rw->bias.skip, rw->bias.next_skip, memory_order_relaxed);
    ursa__spin_unlock(&rw->bias.lock);
    if (drained)
        ursa__rwlock_release(rw, 1);
}

/* Reads the lock only when the token goes back (the token still out keeps
 * it from being destroyed). */
void ursa__rwlock_bias_drain_check(int slot)
{
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
    ursa_rwlock_t *rw = NULL;
    ursa__spin_lock(&sl->lock);
    /* relaxed: under the slot's lock. */
    if (atomic_load_explicit(&sl->state, memory_order_relaxed) == URSA__RBIAS_ARMED &&
        ursa__rbias_held(slot) == 0) {
        /* relaxed: under the slot's lock, like every change of state. */
        atomic_store_explicit(&sl->state, URSA__RBIAS_IDLE, memory_order_relaxed);
        rw = sl->owner;
    }
    ursa__spin_unlock(&sl->lock);
    if (rw)
        ursa__rwlock_release(rw, 1);
}

void ursa__rwlock_bias_try_on(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    ursa__spin_lock(&rw->bias.lock);
    /* relaxed: changed under this lock. */
    if (!atomic_load_explicit(&rw->bias.on, memory_order_relaxed) &&
        atomic_load_explicit(&rw->bias.skip, memory_order_relaxed) == 0) {
        if (rw->bias.slot < 0)
            rw->bias.slot = ursa__rbias_slot_alloc(rw);
        if (rw->bias.slot < 0) {
            atomic_store_explicit(&rw->bias.skip, URSA__RWLOCK_BIAS_NEVER, memory_order_relaxed);
        } else if (ursa__rwlock_slot_state(rw->bias.slot) != URSA__RBIAS_IDLE) {
            /* the last token is still out: try again later (relaxed: as
             * above) */
            atomic_store_explicit(&rw->bias.skip, URSA__RWLOCK_BIAS_MIN_SKIP,
                                  memory_order_relaxed);
        } else if (ursa__sema_try(&rw->sema, 1)) { /* fails while a writer queues */
            rw->bias.since = ursa__ctx_now(c);
            /* release: the slot, and (through the permit we hold) the last
             * writer's critical section, reach the fast readers. */
            atomic_store_explicit(&rw->bias.on, 1, memory_order_release);
        } else {
            atomic_store_explicit(&rw->bias.skip, URSA__RWLOCK_BIAS_MIN_SKIP,
                                  memory_order_relaxed);
        }
    }
    ursa__spin_unlock(&rw->bias.lock);
}
