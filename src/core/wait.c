/* The raw two-phase wait's generic half: readiness and cancel. */
#include "waitq.h"

bool ursa_wait_ready(const ursa_wait_t *w)
{
    /* Decided, not done: a loop woken by what its waker did must already
     * see the wait as ready; finish/cancel settle the rest of the call. */
    return w && w->ops && ursa__wait_is_decided(w);
}

int ursa_wait_cancel(ursa_wait_t *w)
{
    if (!w || !w->ops)
        return -EINVAL;
    uint32_t st = atomic_load_explicit(&w->state, memory_order_relaxed);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED || st == URSA__W_CANCELLED)
        return -EINVAL;
    if (!w->ops->cancel(w) &&
        atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_GRANTED &&
        w->ops->give_back)
        w->ops->give_back(w); /* granted but never finished: hand it on */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return -ECANCELED;
}
