/* ursa — private layout of a lock's name, rank and metrics
 * (ursa/lockinfo.h). Public only so that locks can be embedded: every
 * field is private, read and written by src/core/lockinfo.{h,c}. Nothing
 * here is callable. */
#ifndef URSA_DETAIL_LOCKINFO_H
#define URSA_DETAIL_LOCKINFO_H

#include <stdatomic.h>
#include <stdint.h>

#include "ursa/config.h"

#define URSA__HIST_BUCKETS 496

/* Embedded in every lock. */
typedef struct ursa__lockinfo {
    const char *name;
    unsigned rank;
#if URSA_LOCK_METRICS
    _Atomic uint64_t acquisitions, contentions;
    _Atomic uint64_t wait_total, wait_max, hold_total, hold_max;
    _Atomic uint32_t wait_hist[URSA__HIST_BUCKETS], hold_hist[URSA__HIST_BUCKETS];
#endif
} ursa__lockinfo_t;

#endif
