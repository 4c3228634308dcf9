/* Phase 2's checks, shared by every hold (guards, permits, borrows): may
 * the caller use or discharge this hold? And a lock hold's metrics. The
 * ledger itself is core/oblig.h. */
#ifndef URSA_SYNC_HOLD_H
#define URSA_SYNC_HOLD_H

#include "../core/ctx.h"
#include "../core/lockinfo.h"

/* Checks that the caller may use a hold (ob: the hold, NULL when the
 * object holds nothing): 0; -EINVAL (reported as misuse: used after its
 * release, or never acquired); -EPERM (another task's or thread's). */
static inline int ursa__hold_check(const ursa_oblig_t *ob, const char *misuse)
{
    if (!ob || !ob->kind) {
        ursa__report_misuse(misuse, NULL);
        return -EINVAL;
    }
    if (ob->ledger && ob->ledger != &ursa__ctx()->ledger)
        return -EPERM;
    return 0;
}

/* A release's first step: takes the hold ob out of the caller's ledger.
 * held: the object still says it holds something. 0: the caller releases
 * what it held. -EINVAL: it holds nothing (a double release, or never
 * acquired: reported as misuse, at `site`). -EPERM: another task's or
 * thread's hold (see ursa_oblig_disown); nothing changed. */
static inline int ursa__hold_discharge(ursa_oblig_t *ob, bool held, const char *misuse,
                                       const ursa_site_t *site)
{
    int rc = ursa__oblig_discharge(&ursa__ctx()->ledger, ob);
    if (rc == -EINVAL || !held) {
        ursa__report_misuse(misuse, site);
        return -EINVAL;
    }
    return rc;
}

/* Whether a lock's call-free fast path may run (li: the lock's info):
 * builds that keep metrics, or check the order of a ranked lock, take the
 * general path, so the fast path carries no work only they need. */
#define URSA__LOCK_FAST(li) (!URSA_LOCK_METRICS && !(URSA_LOCK_ORDER && (li)->rank))

/* A lock guard's metrics (URSA_LOCK_METRICS builds; nothing otherwise):
 * guard g (its `since` member) of the lock whose info is li was acquired
 * by c after waiting since wait_start (0: it did not wait), or released;
 * and the time a wait starts. */
#if URSA_LOCK_METRICS
#define URSA__LOCK_ACQUIRED(li, g, c, wait_start)                                           \
    do {                                                                                    \
        (g)->since = ursa__ctx_now(c);                                                      \
        ursa__lockinfo_acquired(li, wait_start, (g)->since);                                \
    } while (0)
#define URSA__LOCK_RELEASED(li, g) ursa__lockinfo_released(li, (g)->since, ursa_now())
#define URSA__LOCK_WAIT_START(c) ursa__ctx_now(c)
#else
#define URSA__LOCK_ACQUIRED(li, g, c, wait_start) ((void)(wait_start))
#define URSA__LOCK_RELEASED(li, g) ((void)0)
#define URSA__LOCK_WAIT_START(c) ((ursa_time_t)0)
#endif

#endif
