/* Lock names, ranks (order checking) and metrics, shared by every lock.
 * See include/ursa/lockinfo.h. The hooks compile to nothing when the
 * options are off. */
#ifndef URSA_CORE_LOCKINFO_H
#define URSA_CORE_LOCKINFO_H

#include <string.h>

#include "ctx.h"
#include "ursa/lockinfo.h"

static inline void ursa__lockinfo_init(ursa__lockinfo_t *li, const ursa_lock_attr_t *attr)
{
    memset(li, 0, sizeof *li);
    if (attr) {
        li->name = attr->name;
        li->rank = attr->rank;
    }
}

/* A lock's destroy: frees its metrics (URSA_LOCK_METRICS builds). */
void ursa__lockinfo_destroy(ursa__lockinfo_t *li);

#if URSA_LOCK_ORDER
/* Lock order: before acquiring a lock of rank `rank` (0: skip), checks the
 * caller's holds. -EDEADLK (reported with both sites) if one of them has a
 * rank >= rank; 0 otherwise. */
int ursa__lock_order_check(ursa__ctx_t *c, const ursa__lockinfo_t *li, const char *what,
                           const ursa_site_t *site);

#define URSA__LOCK_ORDER_CHECK(c, li, what, site)                                           \
    do {                                                                                    \
        if ((li)->rank) {                                                                   \
            int lo_rc_ = ursa__lock_order_check(c, li, what, site);                         \
            if (lo_rc_)                                                                     \
                return lo_rc_;                                                              \
        }                                                                                   \
    } while (0)
#else
#define URSA__LOCK_ORDER_CHECK(c, li, what, site) ((void)0)
#endif

#if URSA_LOCK_METRICS
/* An acquire that waited since wait_start (0: did not wait) ends at now. */
void ursa__lockinfo_acquired(ursa__lockinfo_t *li, ursa_time_t wait_start, ursa_time_t now);
/* A hold that began at since ends at now. */
void ursa__lockinfo_released(ursa__lockinfo_t *li, ursa_time_t since, ursa_time_t now);
#endif

/* Fills *out: 0, or -ENOTSUP when built without URSA_LOCK_METRICS. */
int ursa__lockinfo_stats(const ursa__lockinfo_t *li, ursa_lock_stats_t *out);

#endif
