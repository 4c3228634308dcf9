#include "atomic_waker.h"

#include "spin.h"

enum { WAITING = 0, REGISTERING = 1, WAKING = 2 };

void ursa__atomic_waker_register(ursa__atomic_waker_t *aw, ursa_waker_t w)
{
    uint32_t st = WAITING;
    /* acquire: a previous registrant's or waker's writes to the slot are
     * visible before we overwrite it. */
    if (atomic_compare_exchange_strong_explicit(&aw->state, &st, REGISTERING,
                                                memory_order_acquire, memory_order_acquire)) {
        aw->waker = w;
        st = REGISTERING;
        /* acq_rel: publishes the slot to the next waker; on failure we
         * learn a wake arrived while we held the slot. */
        if (atomic_compare_exchange_strong_explicit(&aw->state, &st, WAITING,
                                                    memory_order_acq_rel, memory_order_acquire))
            return;
        /* A wake came in (state is REGISTERING|WAKING): it left the slot
         * to us, so we deliver it ourselves. */
        ursa_waker_t mine = aw->waker;
        aw->waker = (ursa_waker_t){NULL, NULL};
        /* release: the cleared slot is visible to the next registrant. */
        atomic_store_explicit(&aw->state, WAITING, memory_order_release);
        mine.fn(mine.ctx);
        return;
    }
    if (st & WAKING) {
        /* A waker is running on the old registration; it may not see ours.
         * Wake ourselves: the waiter re-checks its condition anyway. */
        w.fn(w.ctx);
    }
    /* REGISTERING: a second registrant at once is a caller bug; ignoring
     * it cannot lose a wake for the first one. */
}

bool ursa__atomic_waker_wake(ursa__atomic_waker_t *aw)
{
    /* acq_rel: pairs with the registrant's release; our earlier writes (the
     * condition) happen-before the waiter runs. */
    uint32_t st = atomic_fetch_or_explicit(&aw->state, WAKING, memory_order_acq_rel);
    if (st != WAITING)
        return false; /* a registrant will see WAKING, or another wake runs */
    ursa_waker_t w = aw->waker;
    aw->waker = (ursa_waker_t){NULL, NULL};
    if (w.fn)
        w.fn(w.ctx);
    /* release: the slot is free again only after the call returned. */
    atomic_fetch_and_explicit(&aw->state, ~(uint32_t)WAKING, memory_order_release);
    return w.fn != NULL;
}

void ursa__atomic_waker_unregister(ursa__atomic_waker_t *aw)
{
    for (unsigned i = 0;; i++) {
        uint32_t st = WAITING;
        /* acquire: as in register. */
        if (atomic_compare_exchange_weak_explicit(&aw->state, &st, REGISTERING,
                                                  memory_order_acquire, memory_order_relaxed)) {
            aw->waker = (ursa_waker_t){NULL, NULL};
            /* release: as in register. */
            atomic_store_explicit(&aw->state, WAITING, memory_order_release);
            return;
        }
        /* A wake is calling the old waker: it is about to return. */
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield();
    }
}
