/* The send permit hold of the mpsc and mpmc channels: both public permit
 * types are { ursa_oblig_t ob; channel *ch; uint64_t n; }, so these take
 * the fields. What a permit gives back when a slot or the permit ends
 * differs per channel (mpsc: lazy semaphore return, the unbounded count;
 * mpmc: the "permits out" count), and stays with the channel. */
#ifndef URSA_CHAN_PERMIT_H
#define URSA_CHAN_PERMIT_H

#include "../core/ctx.h"

/* Checks that the caller may use a permit (ob: its hold, NULL when the
 * permit holds nothing): 0, -EINVAL (reported as misuse: used after
 * release, or never reserved), -EPERM (another task's or thread's). */
static inline int ursa__permit_check(const ursa_oblig_t *ob, const char *misuse)
{
    if (!ob || !ob->kind) {
        ursa__report_misuse(misuse, NULL);
        return -EINVAL;
    }
    if (ob->ledger && ob->ledger != &ursa__ctx()->ledger)
        return -EPERM;
    return 0;
}

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
