/* ursa — private layout of a mutex (ursa/mutex.h). Public only so that it
 * can be embedded: every field is private, read and written by
 * src/sync/mutex.c. Nothing here is callable. */
#ifndef URSA_DETAIL_MUTEX_H
#define URSA_DETAIL_MUTEX_H

#include <stdbool.h>

#include "lockinfo.h"
#include "sema.h"

struct ursa_mutex {
    ursa__sema_t sema;     /* one permit */
    URSA_ATOMIC(bool) poisoned; /* a holder ended without unlocking */
    ursa__lockinfo_t info; /* name, rank, metrics */
};

#endif
