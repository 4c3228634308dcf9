/* ursa — private layout of a lock's name, rank and metrics
 * (ursa/lockinfo.h). Public only so that locks can be embedded: every
 * field is private, read and written by src/core/lockinfo.{h,c}. Nothing
 * here is callable. */
#ifndef URSA_DETAIL_LOCKINFO_H
#define URSA_DETAIL_LOCKINFO_H

#include "../base.h"

/* A lock's counters and histograms (src/core/lockinfo.c). */
struct ursa__lock_metrics;

/* Embedded in every lock. The same layout in every build: the metrics
 * live out of line (docs/abi.md). */
typedef struct ursa__lockinfo {
    const char *name;
    unsigned rank;
    /* URSA_LOCK_METRICS builds: the counters, allocated at the lock's
     * first sample and freed by its destroy. Always NULL otherwise. */
    URSA_ATOMIC(struct ursa__lock_metrics *) metrics;
} ursa__lockinfo_t;

#endif
