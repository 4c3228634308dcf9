/* The send permit hold of the mpsc and mpmc channels: both public permit
 * types are { ursa_oblig_t ob; channel *ch; uint64_t n; }, so these take
 * the fields. What a permit gives back when a slot or the permit ends
 * differs per channel (mpsc: lazy semaphore return, the unbounded count;
 * mpmc: the "permits out" count), and stays with the channel. Whether
 * the caller may use a permit is ursa__hold_check (sync/hold.h). */
#ifndef URSA_CHAN_PERMIT_H
#define URSA_CHAN_PERMIT_H

#include "../core/ctx.h"

/* One of the *n slots was used or given up: true if it was the last (the
 * caller discharges the permit); else the hold's record shrinks with it,
 * so a leak sweep releases only what is left. */
static inline bool ursa__permit_use_one(ursa_oblig_t *ob, uint64_t *n)
{
    if (--*n == 0)
        return true;
    ursa__oblig_set_n(ob, *n);
    return false;
}

#endif
