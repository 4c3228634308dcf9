/* The steps of a raw (two-phase) channel wait that do not depend on the
 * channel: a reserve's finish checks and its cancel (a plain finish is
 * ursa__wait_finish in core/waitq.h). What the wait then takes or gives back (a
 * message, a permit, a count) is the channel's. */
#ifndef URSA_CHAN_RAW_WAIT_H
#define URSA_CHAN_RAW_WAIT_H

#include "../core/sema.h"
#include "../core/waitq.h"

/* A raw start found what it waits for before it queued: w completes now
 * (0, granted). */
static inline int ursa__raw_start_ready(ursa_wait_t *w)
{
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

/* A semaphore reserve (its permits are the caller's once granted): the
 * outcome, URSA__W_GRANTED or URSA__W_CLOSED (the wait is now FINISHED),
 * or -EAGAIN (not decided yet), -EINVAL (not a live reserve). */
static inline int ursa__raw_finish_reserve(ursa_wait_t *w)
{
    if (!ursa__wait_is_decided(w))
        return -EAGAIN;
    ursa__wait_settle(w);
    /* relaxed: is_decided acquired the decision; settle saw it done. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_relaxed);
    if (st != URSA__W_GRANTED && st != URSA__W_CLOSED)
        return -EINVAL;
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return (int)st;
}

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
