/* ursa — private layout of a mutex (ursa/mutex.h). Public only so that it
 * can be embedded: every field is private, read and written by
 * src/sync/mutex.c and mutex_bias.{h,c}. Nothing here is callable. */
#ifndef URSA_DETAIL_MUTEX_H
#define URSA_DETAIL_MUTEX_H

#include <stdbool.h>

#include "bias.h"
#include "lockinfo.h"
#include "sema.h"

struct ursa_mutex {
    ursa__sema_t sema;     /* one permit */
    URSA_ATOMIC(bool) poisoned; /* a holder ended without unlocking */
    ursa__lockinfo_t info; /* name, rank, metrics */
    /* Owner bias (src/sync/mutex_bias.h): while bias.on names the owner's
     * context, it holds the permit and locks with plain loads and stores. */
    ursa__bias_t bias;
    URSA_ATOMIC(uintptr_t) held; /* 0; the fast holder's guard; 1 while it leaves */
    uintptr_t owner;             /* the one context bias is turned on for; 0: none yet */
    ursa__bias_drain_t drain;
};

#endif
