/* ursa — private layout of a reader-writer lock (ursa/rwlock.h). Public
 * only so that it can be embedded: every field is private, read and
 * written by src/sync/rwlock/. Nothing here is callable. */
#ifndef URSA_DETAIL_RWLOCK_H
#define URSA_DETAIL_RWLOCK_H

#include <stdbool.h>

#include "../base.h"
#include "bias.h"
#include "lockinfo.h"
#include "sema.h"

struct ursa_rwlock {
    ursa__sema_t sema;       /* max_readers permits; must stay first */
    uint64_t max_readers;    /* permits a writer takes */
    URSA_ATOMIC(bool) poisoned;   /* a writer ended without unlocking */
    URSA_ATOMIC(bool) writer;     /* a write guard holds the lock (snapshots) */
    /* Writers that entered from the queue while readers were queued, since
     * readers last entered from it. */
    URSA_ATOMIC(uint32_t) wstreak;
    ursa__lockinfo_t info; /* name, rank, metrics */
    ursa__bias_t bias; /* reader bias (src/sync/rwlock/bias.c) */
};

#endif
