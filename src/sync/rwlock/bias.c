/* The rwlock's reader bias.
 *
 * A read lock on the semaphore is a CAS to lock and one to unlock, on a
 * line every reader shares. While a lock is read-mostly we bias it instead
 * (reader_tables.h): the bias holds one "token" permit for all fast
 * readers together, and each reader only counts itself in its thread's
 * reader table. A writer first revokes the bias (core/bias.h: the protocol,
 * shared with the mutex; here, the count is the sum of the lock's column);
 * if fast readers remain, the last of them to unlock finds the slot ARMED
 * and returns the token, which lets the writer (queued on the semaphore
 * like any writer) in. A writer revokes again once it is queued.
 *
 * A slow-path reader turns the bias back on once `skip` slow read locks
 * went by with no writer queued (core/bias.h says how skip adapts). Locks
 * with a reader limit below URSA_RWLOCK_DEFAULT_READERS never bias: fast
 * readers are not counted against it. */
#include "rwlock.h"

#include "../hold.h" /* URSA__LOCK_FAST */

#include "../../core/spin.h"

static ursa__bias_drain_t *slot_drain(ursa__bias_t *b)
{
    return &ursa__rbias_slots[b->slot].d;
}

/* d is its slot's first member: the slot's column sums to zero. */
static bool column_drained(ursa__bias_drain_t *d)
{
    return ursa__rbias_held((int)((ursa__rbias_slot_t *)d - ursa__rbias_slots)) == 0;
}

static const ursa__bias_ops_t rwlock_bias_ops = {slot_drain, NULL, NULL, column_drained};

void ursa__rwlock_bias_revoke(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    if (ursa__bias_revoke(&rw->bias, &rwlock_bias_ops, c))
        ursa__rwlock_release(rw, 1);
}

/* Reads the lock only when the token goes back (the token still out keeps
 * it from being destroyed, and its slot with it). */
void ursa__rwlock_bias_drain_check(int slot)
{
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
    if (ursa__bias_drain(&sl->d, &rwlock_bias_ops))
        ursa__rwlock_release(sl->owner, 1);
}

void ursa__rwlock_bias_try_on(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    ursa__spin_lock(&rw->bias.lock);
    if (ursa__bias_due(&rw->bias)) {
        if (rw->bias.slot < 0)
            rw->bias.slot = ursa__rbias_slot_alloc(rw);
        if (rw->bias.slot < 0)
            /* relaxed: changed under bias.lock. */
            atomic_store_explicit(&rw->bias.skip, URSA__BIAS_NEVER, memory_order_relaxed);
        else if (ursa__bias_state(&ursa__rbias_slots[rw->bias.slot].d) != URSA__BIAS_IDLE)
            ursa__bias_try_later(&rw->bias); /* the last token is still out */
        /* relaxed: we hold a permit, whose acquire ordered the leaked
         * writer's store before us. Never biased while poisoned: then a
         * fast read hold needs no look at it (no writer can poison while
         * bias is on: it revokes first). */
        else if (atomic_load_explicit(&rw->poisoned, memory_order_relaxed))
            ursa__bias_try_later(&rw->bias);
        else if (ursa__sema_try(&rw->sema, 1)) /* fails while a writer queues */
            ursa__bias_turned_on(&rw->bias,
                                 URSA__LOCK_FAST(&rw->info) ? URSA__RWLOCK_BIAS_INLINE
                                                            : URSA__RWLOCK_BIAS_CALL,
                                 c);
        else
            ursa__bias_try_later(&rw->bias);
    }
    ursa__spin_unlock(&rw->bias.lock);
}
