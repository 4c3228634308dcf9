/* ursa — lock names, ranks and metrics.
 *
 * Any lock can carry a name (for reports) and a rank. With URSA_LOCK_ORDER
 * (on in Debug builds), acquiring a ranked lock while holding a lock of the
 * same or a higher rank fails with -EDEADLK and reports both acquire
 * sites: give locks ranks in the order they may be nested (outer = lower).
 * With URSA_LOCK_METRICS (a build option, off by default: then no fields
 * and no code), every lock counts acquisitions and contentions and keeps
 * wait and hold times: total, max, and p50/p99 from a log-linear histogram
 * (8 buckets per power of two: a percentile is exact to within 12.5%,
 * reported as its bucket's lower bound). Uncontended acquisitions count as
 * waits of 0 ns. Times come from ursa_now() (virtual in deterministic
 * mode, so scripted scenarios give exact figures). */
#ifndef URSA_LOCKINFO_H
#define URSA_LOCKINFO_H

#include "base.h"
#include "detail/lockinfo.h"
#include "ursa/config.h" /* URSA_LOCK_METRICS, URSA_LOCK_ORDER: how the library was built */

URSA_EXTERN_C_BEGIN

typedef struct ursa_lock_attr {
    const char *name; /* kept by pointer: use a string that outlives the lock */
    unsigned rank;    /* 0: unranked (never checked) */
    unsigned flags;   /* URSA_LOCK_* below; 0: the default (FIFO hand-off) */
} ursa_lock_attr_t;

/* flags: trade fairness for throughput under contention. An unlock frees
 * the lock and wakes a waiter instead of handing the lock to it, and a
 * locker may take a free lock past queued waiters (Go's sync.Mutex; while
 * a woken waiter on another thread has yet to look, only a try or a lock
 * from the thread that had it last: docs/mutex.md "Barging"). A
 * waiter that has waited 1 ms switches the lock to FIFO hand-off until its
 * queue drains (or a waiter handed the lock waited under 1 ms, as Go's
 * starvation mode ends). Mutex and rwlock writers (readers never barge);
 * the semaphore's is URSA_SEM_BARGING. See docs/mutex.md. */
#define URSA_LOCK_BARGING 1u

/* A snapshot of one lock's metrics. */
typedef struct ursa_lock_stats {
    const char *name;
    uint64_t acquisitions; /* successful acquires (each reader counts) */
    uint64_t contentions;  /* acquires that had to wait */
    uint64_t wait_total_ns, wait_max_ns, wait_p50_ns, wait_p99_ns;
    uint64_t hold_total_ns, hold_max_ns, hold_p50_ns, hold_p99_ns;
} ursa_lock_stats_t;

URSA_EXTERN_C_END

#endif
