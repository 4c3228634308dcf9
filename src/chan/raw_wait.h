/* The step of a raw channel reserve that does not depend on the channel:
 * its cancel. The other raw steps are every primitive's
 * (sync/wait_steps.h). */
#ifndef URSA_CHAN_RAW_WAIT_H
#define URSA_CHAN_RAW_WAIT_H

#include "../core/sema.h"
#include "../core/waitq.h"

/* Cancels a raw semaphore reserve: true if it was withdrawn (the permits
 * assigned so far went back). *ends: the wait will never be finished
 * (withdrawn, or decided CLOSED), so what it holds of the channel ends
 * now; GRANTED is left to give_back (or to the finish). */
static inline bool ursa__raw_reserve_cancel(ursa_wait_t *w, bool *ends)
{
    if (ursa__sema_cancel(w)) {
        *ends = true;
        return true;
    }
    /* relaxed: sema_cancel settled the decided node. */
    *ends = atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_CLOSED;
    return false;
}

#endif
