/* The mpsc channel's send bias (bounded, with membarrier).
 *
 * A bounded channel starts biased to the thread that made it: that
 * thread's plain sends take their slot from a private credit of permits
 * (refilled in bulk from the semaphore) and claim their position with a
 * plain load and store of tail, so a send does no atomic RMW. Whatever
 * needs the shared view revokes the bias for good: a send from another
 * thread, any reserve, a receiver that queues from another thread (the
 * owner's wake relies on program order with its receiver), close, the
 * last sender's drop. Revoking is the asymmetric Dekker of the rwlock's
 * reader bias (sync/rwlock/reader_tables.h): the owner stores busy = 1,
 * then checks that it still owns the bias; the revoker clears the owner,
 * runs membarrier, waits for busy == 0 (the owner's send in flight, a few
 * instructions), then returns the credit. After that the owner's sends
 * take the shared path like anyone's. */
#include <sched.h>

#include "../../core/membarrier.h"
#include "send_bias.h"

/* sbias while a revoke is under way: not 0 (which means "done") and no
 * thread's uid, so nobody takes the fast path or skips the revoke. */
#define URSA__MPSC_SBIAS_REVOKING UINT64_MAX

void ursa__mpsc_sbias_revoke(ursa_mpsc_t *ch)
{
    if (__builtin_expect(!ursa__mpsc_sbias_owner(ch), 1))
        return;
    ursa__spin_lock(&ch->sbias_lock);
    /* relaxed: changed under this lock (a concurrent revoke finished). */
    uint64_t owner = atomic_load_explicit(&ch->sbias, memory_order_relaxed);
    bool ended = false;
    if (owner) {
        /* relaxed: the membarrier orders it against the owner's check. */
        atomic_store_explicit(&ch->sbias, URSA__MPSC_SBIAS_REVOKING, memory_order_relaxed);
        if (owner != ursa__thread_uid()) {
            ursa__membarrier();
            /* acquire: the owner's fast-path writes (tail, slots, credit). */
            ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_REVOKE);
            while (atomic_load_explicit(&ch->sbias_busy, memory_order_acquire))
                ursa__spin_backoff(&s);
            ursa__spin_end(&s);
        }
        uint64_t credit = ch->sbias_credit;
        ch->sbias_credit = 0;
        /* Back before anyone may take the shared path (a waker run under
         * this spinlock never blocks). */
        if (credit)
            ursa__sema_release(&ch->chan.sema, credit);
        ended = credit != 0;
        /* release: pairs with ursa__mpsc_sbias_owner. */
        atomic_store_explicit(&ch->sbias, 0, memory_order_release);
    }
    ursa__spin_unlock(&ch->sbias_lock);
    if (ended)
        /* the credit may be the last permits a closed receiver waits for */
        ursa__mpsc_end_check(ch);
}
