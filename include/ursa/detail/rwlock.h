/* ursa — private layout of a reader-writer lock (ursa/rwlock.h). Public
 * only so that it can be embedded: every field is private, read and
 * written by src/sync/rwlock/. Nothing here is callable. */
#ifndef URSA_DETAIL_RWLOCK_H
#define URSA_DETAIL_RWLOCK_H

#include <stdbool.h>

#include "../base.h"
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
    /* Reader bias (src/sync/rwlock/bias.c). */
    struct {
        URSA_ATOMIC(uint32_t) on;   /* readers may use their thread's table */
        URSA_ATOMIC(uint32_t) lock; /* guards turning it on and off */
        URSA_ATOMIC(uint32_t) skip; /* slow read locks before bias is tried again */
        int32_t slot;          /* column in the reader tables; -1: none */
        uint32_t next_skip;
        ursa_time_t since;     /* when bias was last turned on */
    } bias;
};

#endif
