#include "ursa/mutex.h"

#include "../core/ctx.h"
#include "../core/sema.h"
#include "barge.h"
#include "hold.h"
#include "../core/wait_steps.h"

static void leaked_unlock(void *mutex, uint64_t n);
static const ursa_oblig_kind_t guard_kind = {"mutex guard", leaked_unlock};
static const ursa__wait_ops_t lock_ops = {URSA_WAIT_MUTEX, ursa__sema_cancel,
                                          ursa__sema_give_back};

int ursa_mutex_init_attr(ursa_mutex_t *m, const ursa_lock_attr_t *attr)
{
    if (!m || (attr && (attr->flags & ~URSA_LOCK_BARGING)))
        return -EINVAL;
    ursa__sema_init(&m->sema, 1);
    if (attr && (attr->flags & URSA_LOCK_BARGING))
        ursa__sema_set_barging(&m->sema);
    atomic_init(&m->poisoned, false);
    ursa__lockinfo_init(&m->info, attr);
    return 0;
}

int ursa_mutex_init(ursa_mutex_t *m)
{
    return ursa_mutex_init_attr(m, NULL);
}

int ursa_mutex_stats(const ursa_mutex_t *m, ursa_lock_stats_t *out)
{
    return m && out ? ursa__lockinfo_stats(&m->info, out) : -EINVAL;
}

int ursa_mutex_destroy(ursa_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    int rc = ursa__destroy_check(ursa__sema_available(&m->sema) != 1 ||
                                     ursa__sema_has_waiters(&m->sema),
                                 "mutex destroyed while locked or waited on");
    if (rc == 0)
        ursa__lockinfo_destroy(&m->info);
    return rc;
}

/* The lock is ours: fill the guard and say whether it was poisoned.
 * wait_start: when the caller started waiting (0 if it did not). */
static int take(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa__ctx_t *c, const ursa_site_t *site,
                ursa_time_t wait_start)
{
    if (__builtin_expect(
            ursa__oblig_take_lock(&c->ledger, &g->ob, &guard_kind, site, m, 1, &m->info), 0)) {
        ursa__sema_release(&m->sema, 1); /* no room to record it: give it back */
        return -ENOMEM;
    }
    g->mutex = m;
    URSA__LOCK_ACQUIRED(&m->info, g, c, wait_start);
    /* relaxed: set before the leaked owner's release, which our acquire of
     * the permit synchronises with. */
    return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

static __attribute__((noinline)) int lock_slow(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                               ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    if (ursa__sema_barging(&m->sema)) {
        /* Free permits are anyone's, queued waiters or not. */
        if (ursa__sema_try_barge(&m->sema, 1))
            return take(m, g, c, site, 0);
        if (deadline == URSA_NOW)
            return -EAGAIN;
        ursa_time_t since = ursa__ctx_now(c);
        int rc = ursa__barge_block(c, &m->sema, 1, &lock_ops, deadline, site, since);
        return rc ? rc : take(m, g, c, site, since);
    }
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t wait_start = URSA__LOCK_WAIT_START(c);
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &lock_ops);
    /* A grant that raced the timeout or cancel is kept. */
    int rc = ursa__wait_block(c, &w, ursa__sema_start(&m->sema, &w, 1), deadline, site);
    return rc ? rc : take(m, g, c, site, wait_start);
}

/* Everything the fast path leaves: a caller without a context yet, a
 * ledger that must pop its free list or grow, lock-order checks and
 * metrics, a lock that is taken. */
static __attribute__((noinline)) int lock_general(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                                  ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &m->info, "mutex", site);
    if (__builtin_expect(ursa__sema_try(&m->sema, 1), 1))
        return take(m, g, c, site, 0);
    return lock_slow(m, g, deadline, site);
}

/* The fast path makes no call (only tail calls), so it needs no frame:
 * one context lookup, the CAS, the ledger record. */
int ursa_mutex_lock_at(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                       const ursa_site_t *site)
{
    if (__builtin_expect(!m || !g || g->mutex, 0))
        return -EINVAL;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(URSA__LOCK_FAST(&m->info) && c && ursa__ledger_room(&c->ledger) &&
                             ursa__sema_try(&m->sema, 1),
                         1)) {
        ursa__ledger_push(&c->ledger, &g->ob, &guard_kind, site, m, 1, &m->info);
        g->ob.kind = &guard_kind;
        g->ob.site = site;
        g->mutex = m;
        /* relaxed: as in take(). */
        return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
    }
    return lock_general(m, g, deadline, site);
}

/* Every unlock but the fast path's. */
static __attribute__((noinline)) int unlock_general(ursa_mutex_guard_t *g)
{
    ursa_mutex_t *m = g->mutex;
    int rc = ursa__hold_discharge(&g->ob, m != NULL,
                                  "mutex unlocked through an empty guard (double unlock?)", NULL);
    if (rc)
        return rc;
    g->mutex = NULL;
    URSA__LOCK_RELEASED(&m->info, g);
    ursa__sema_release(&m->sema, 1);
    return 0;
}

static __attribute__((noinline)) int release_slow(ursa_mutex_t *m)
{
    ursa__sema_release_slow(&m->sema, 1);
    return 0;
}

/* Fast when g is the caller's newest hold (no free list to push) and
 * nobody waits; no call but tail calls. */
int ursa_mutex_unlock(ursa_mutex_guard_t *g)
{
    if (__builtin_expect(!g, 0))
        return -EINVAL;
    ursa_mutex_t *m = g->mutex;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!m || !URSA__LOCK_FAST(&m->info) || !c ||
                             !ursa__oblig_is_newest(&c->ledger, &g->ob),
                         0))
        return unlock_general(g);
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->mutex = NULL;
    if (__builtin_expect(ursa__sema_release_fast(&m->sema, 1), 1))
        return 0;
    return release_slow(m);
}

static void leaked_unlock(void *mutex, uint64_t n)
{
    (void)n;
    ursa_mutex_t *m = mutex;
    /* relaxed: the permit release below publishes it to the next locker. */
    atomic_store_explicit(&m->poisoned, true, memory_order_relaxed);
    ursa__sema_release(&m->sema, 1);
}

void ursa_mutex_guard_cleanup(ursa_mutex_guard_t *g)
{
    if (g && g->mutex)
        (void)ursa_mutex_unlock(g);
}

int ursa_mutex_consistent(ursa_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    /* relaxed: the caller holds m; the next locker acquires it through
     * the permit. */
    atomic_store_explicit(&m->poisoned, false, memory_order_relaxed);
    return 0;
}

bool ursa_mutex_is_locked(const ursa_mutex_t *m)
{
    return m && ursa__sema_available(&m->sema) == 0;
}

int ursa_mutex_lock_start_at(ursa_mutex_t *m, ursa_wait_t *w, ursa_waker_t waker,
                             const ursa_site_t *site)
{
    ursa__waiter_t *n = m ? ursa__wait_raw_init(w, waker, &lock_ops, site) : NULL;
    return n ? ursa__sema_start(&m->sema, n, 1) : -EINVAL;
}

int ursa_mutex_lock_finish(ursa_mutex_t *m, ursa_wait_t *w, ursa_mutex_guard_t *g)
{
    ursa__waiter_t *n = m ? ursa__wait_raw_of(w, &m->sema, &lock_ops) : NULL;
    if (!n || !g || g->mutex)
        return -EINVAL;
    int rc = ursa__wait_finish_granted(n);
    return rc ? rc : take(m, g, ursa__ctx(), w->site, 0);
}
