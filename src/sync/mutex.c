#include "ursa/mutex.h"

#include "../core/ctx.h"
#include "../core/sema.h"
#include "barge.h"
#include "hold.h"
#include "mutex_bias.h"
#include "../core/wait_steps.h"

static void leaked_unlock(void *mutex, uint64_t n);
static void leaked_bias_unlock(void *mutex, uint64_t n);
/* A hold of the semaphore's permit, and a fast hold of the bias's. */
static const ursa_oblig_kind_t guard_kind = {"mutex guard", leaked_unlock};
const ursa_oblig_kind_t ursa__mutex_bias_kind = {"mutex guard", leaked_bias_unlock};
static const ursa__wait_ops_t lock_ops = {URSA_WAIT_MUTEX, ursa__sema_cancel,
                                          ursa__sema_give_back};

int ursa_mutex_init_attr(ursa_mutex_t *m, const ursa_lock_attr_t *attr)
{
    if (!m || (attr && (attr->flags & ~URSA_LOCK_BARGING)))
        return -EINVAL;
    ursa__sema_init(&m->sema, 1);
    bool barging = attr && (attr->flags & URSA_LOCK_BARGING);
    if (barging)
        ursa__sema_set_barging(&m->sema);
    atomic_init(&m->poisoned, false);
    ursa__lockinfo_init(&m->info, attr);
    /* Never biased where the fast path does not run (mutex_bias.h). */
    ursa__bias_init(&m->bias, barging || !URSA__LOCK_FAST(&m->info));
    /* relaxed: not shared yet. A first try after ~64 slow locks (counted
     * in URSA__BIAS_TICKs). */
    if (atomic_load_explicit(&m->bias.skip, memory_order_relaxed) != URSA__BIAS_NEVER)
        atomic_store_explicit(&m->bias.skip, 64 / URSA__BIAS_TICK, memory_order_relaxed);
    atomic_init(&m->held, 0);
    m->owner = 0;
    atomic_init(&m->drain.lock, 0);
    atomic_init(&m->drain.state, URSA__BIAS_IDLE);
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
    /* The token comes back unless a fast hold is out (then the bias stays
     * off: only performance changes). relaxed: a hint, revoke re-checks. */
    if (atomic_load_explicit(&m->bias.on, memory_order_relaxed))
        ursa__mutex_bias_revoke(m, ursa__ctx());
    int rc = ursa__destroy_check(ursa__sema_available(&m->sema) != 1 ||
                                     ursa__sema_has_waiters(&m->sema),
                                 "mutex destroyed while locked or waited on");
    if (rc == 0)
        ursa__lockinfo_destroy(&m->info);
    return rc;
}

/* No room to record a hold of `kind`: give it back. */
static __attribute__((noinline)) int take_failed(ursa_mutex_t *m, const ursa_oblig_kind_t *kind)
{
    if (kind == &ursa__mutex_bias_kind)
        ursa__mutex_bias_exit(m);
    else
        ursa__sema_release(&m->sema, 1);
    return -ENOMEM;
}

/* The lock is ours (kind: guard_kind, the semaphore's permit; or
 * ursa__mutex_bias_kind, a fast hold of the bias's token): fill the guard
 * and say whether it was poisoned. wait_start: when the caller started
 * waiting (0 if it did not). */
/* Inlined: a call with `kind` a parameter cost the hand-off ~7
 * instructions. */
static inline __attribute__((always_inline)) int
take(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa__ctx_t *c, const ursa_site_t *site,
     ursa_time_t wait_start, const ursa_oblig_kind_t *kind)
{
    if (__builtin_expect(ursa__oblig_take_lock(&c->ledger, &g->ob, kind, site, m, 1, &m->info),
                         0))
        return take_failed(m, kind);
    g->mutex = m;
    URSA__LOCK_ACQUIRED(&m->info, g, c, wait_start);
    /* relaxed: set before the leaked owner's release (its permit, or its
     * store of held), which our acquire synchronises with. */
    return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

static __attribute__((noinline)) int lock_slow(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                               ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    if (ursa__sema_barging(&m->sema)) {
        /* Free permits are anyone's, queued waiters or not; but under
         * contention a blocking lock from another thread than the
         * streak's queues (core/sema.h, streaks). */
        if (ursa__sema_barge_in(&m->sema, 1, deadline))
            return take(m, g, c, site, 0, &guard_kind);
        if (deadline == URSA_NOW)
            return -EAGAIN;
        ursa_time_t since = ursa__ctx_now(c);
        int rc = ursa__barge_block(c, &m->sema, 1, &lock_ops, deadline, site, since);
        return rc ? rc : take(m, g, c, site, since, &guard_kind);
    }
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t wait_start = URSA__LOCK_WAIT_START(c);
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &lock_ops);
    int rc = ursa__sema_start(&m->sema, &w, 1);
    /* Bias turned on after our first look is on by now (the queue lock
     * orders its look at the queue before our queueing, or it saw us:
     * mutex_bias.c). relaxed: the revoke re-checks under its lock. */
    if (rc == -EINPROGRESS && atomic_load_explicit(&m->bias.on, memory_order_relaxed))
        ursa__mutex_bias_revoke(m, c);
    /* A grant that raced the timeout or cancel is kept. */
    rc = ursa__wait_block(c, &w, rc, deadline, site);
    return rc ? rc : take(m, g, c, site, wait_start, &guard_kind);
}

/* Everything the fast path leaves: a caller without a context yet, a
 * ledger that must pop its free list or grow, lock-order checks and
 * metrics, a bias to take with such a ledger or to revoke, a lock that is
 * taken. */
static __attribute__((noinline)) int lock_general(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                                  ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &m->info, "mutex", site);
    /* relaxed: a hint; the revoke re-checks under its lock, and a waiter
     * looks again once queued. */
    uintptr_t on = atomic_load_explicit(&m->bias.on, memory_order_relaxed);
    if (on) {
        int in = on == (uintptr_t)c ? ursa__mutex_bias_enter(m, c, g) : 0;
        if (in > 0)
            return take(m, g, c, site, 0, &ursa__mutex_bias_kind);
        if (in < 0)
            ursa__mutex_bias_exit(m); /* revoked meanwhile: a revoke may have counted us */
        else
            ursa__mutex_bias_revoke(m, c);
    }
    if (__builtin_expect(ursa__sema_try(&m->sema, 1), 1))
        return take(m, g, c, site, 0,
                    ursa__bias_tick(&m->bias, &c->ledger) && ursa__mutex_bias_try_on(m, c, g)
                        ? &ursa__mutex_bias_kind
                        : &guard_kind);
    return lock_slow(m, g, deadline, site);
}

/* The fast path found bias revoked after its store of held. */
int ursa__mutex_lock_backout(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                             const ursa_site_t *site)
{
    ursa__mutex_bias_exit(m); /* a revoke may have counted us */
    return lock_general(m, g, deadline, site);
}

/* The fast path took the permit and the bias is due a try. */
static __attribute__((noinline)) int take_counted(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                                  ursa__ctx_t *c, const ursa_site_t *site)
{
    return take(m, g, c, site, 0,
                ursa__mutex_bias_try_on(m, c, g) ? &ursa__mutex_bias_kind : &guard_kind);
}

/* Records a fast path's hold (the ledger has room) and fills the guard. */
static inline void fill(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa__ctx_t *c,
                        const ursa_oblig_kind_t *kind, const ursa_site_t *site)
{
    ursa__ledger_push(&c->ledger, &g->ob, kind, site, m, 1, &m->info);
    g->ob.kind = kind;
    g->ob.site = site;
    g->mutex = m;
}

/* The semaphore's fast path, for a caller c whose ledger has room and that
 * holds no bias here: the CAS, then the ledger record. */
static inline int lock_sema(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa__ctx_t *c,
                            ursa_time_t deadline, const ursa_site_t *site)
{
    if (__builtin_expect(!URSA__LOCK_FAST(&m->info) || !ursa__sema_try(&m->sema, 1), 0))
        return lock_general(m, g, deadline, site);
    if (__builtin_expect(ursa__bias_tick(&m->bias, &c->ledger), 0))
        return take_counted(m, g, c, site);
    fill(m, g, c, &guard_kind, site);
    /* relaxed: as in take(). */
    return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

int ursa__mutex_lock_sema(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                          const ursa_site_t *site)
{
    return lock_sema(m, g, ursa__cur_ctx, deadline, site);
}

/* The fast paths make no call (only tail calls), so they need no frame:
 * one context lookup, then the bias owner's plain stores (no RMW), or the
 * CAS; then the ledger record. (The bias owner's path is inline in
 * ursa/mutex.h too; this one serves C++ callers and calls by address.) */
int ursa_mutex_lock_at(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                       const ursa_site_t *site)
{
    if (__builtin_expect(!m || !g || g->mutex, 0))
        return -EINVAL;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!c || !ursa__ledger_room(&c->ledger), 0))
        return lock_general(m, g, deadline, site);
    int in = ursa__mutex_bias_enter(m, c, g);
    if (__builtin_expect(in == 0, 1))
        return lock_sema(m, g, c, deadline, site);
    if (__builtin_expect(in < 0, 0))
        return ursa__mutex_lock_backout(m, g, deadline, site);
    fill(m, g, c, &ursa__mutex_bias_kind, site);
    /* relaxed: as in take(). */
    return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

/* Every unlock but the fast path's. */
static __attribute__((noinline)) int unlock_general(ursa_mutex_guard_t *g)
{
    ursa_mutex_t *m = g->mutex;
    const ursa_oblig_kind_t *kind = g->ob.kind;
    int rc = ursa__hold_discharge(&g->ob, m != NULL,
                                  "mutex unlocked through an empty guard (double unlock?)", NULL);
    if (rc)
        return rc;
    g->mutex = NULL;
    URSA__LOCK_RELEASED(&m->info, g);
    if (kind == &ursa__mutex_bias_kind)
        ursa__mutex_bias_exit(m);
    else
        ursa__sema_release(&m->sema, 1);
    return 0;
}

static __attribute__((noinline)) int release_slow(ursa_mutex_t *m)
{
    ursa__sema_release_slow(&m->sema, 1);
    return 0;
}

/* A semaphore hold that is the caller's newest (no free list to push):
 * fast unless waiters queue; no call but tail calls. */
static inline int unlock_sema(ursa_mutex_guard_t *g, ursa_mutex_t *m, ursa__ctx_t *c)
{
    if (__builtin_expect(!URSA__LOCK_FAST(&m->info), 0))
        return unlock_general(g);
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->mutex = NULL;
    if (__builtin_expect(ursa__sema_release_fast(&m->sema, 1), 1))
        return 0;
    return release_slow(m);
}

int ursa__mutex_unlock_sema(ursa_mutex_guard_t *g)
{
    return unlock_sema(g, g->mutex, ursa__cur_ctx);
}

/* (In parentheses: ursa/mutex.h makes the name a macro for its inline
 * path; this one serves C++ callers and calls by address.) */
int(ursa_mutex_unlock)(ursa_mutex_guard_t *g)
{
    if (__builtin_expect(!g, 0))
        return -EINVAL;
    ursa_mutex_t *m = g->mutex;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!m || !c || !ursa__oblig_is_newest(&c->ledger, &g->ob), 0))
        return unlock_general(g);
    if (__builtin_expect(g->ob.kind != &ursa__mutex_bias_kind, 0))
        return unlock_sema(g, m, c);
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->mutex = NULL;
    ursa__mutex_bias_exit(m);
    return 0;
}

static void leaked_unlock(void *mutex, uint64_t n)
{
    (void)n;
    ursa_mutex_t *m = mutex;
    /* relaxed: the permit release below publishes it to the next locker. */
    atomic_store_explicit(&m->poisoned, true, memory_order_relaxed);
    ursa__sema_release(&m->sema, 1);
}

static void leaked_bias_unlock(void *mutex, uint64_t n)
{
    (void)n;
    ursa_mutex_t *m = mutex;
    /* relaxed: the exit's release store of held (or its drain's permit
     * release) publishes it to the next locker. */
    atomic_store_explicit(&m->poisoned, true, memory_order_relaxed);
    ursa__mutex_bias_exit(m);
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
    if (!m)
        return false;
    /* relaxed: a snapshot. While biased the token is out: held tells. */
    if (atomic_load_explicit(&m->bias.on, memory_order_relaxed))
        return atomic_load_explicit(&m->held, memory_order_relaxed) != 0;
    return ursa__sema_available(&m->sema) == 0;
}

int ursa_mutex_lock_start_at(ursa_mutex_t *m, ursa_wait_t *w, ursa_waker_t waker,
                             const ursa_site_t *site)
{
    ursa__waiter_t *n = m ? ursa__wait_raw_init(w, waker, &lock_ops, site) : NULL;
    if (!n)
        return -EINVAL;
    /* relaxed: hints, as in lock_general and lock_slow. */
    if (atomic_load_explicit(&m->bias.on, memory_order_relaxed))
        ursa__mutex_bias_revoke(m, ursa__ctx());
    int rc = ursa__sema_start(&m->sema, n, 1);
    if (rc == -EINPROGRESS && atomic_load_explicit(&m->bias.on, memory_order_relaxed))
        ursa__mutex_bias_revoke(m, ursa__ctx());
    return rc;
}

int ursa_mutex_lock_finish(ursa_mutex_t *m, ursa_wait_t *w, ursa_mutex_guard_t *g)
{
    ursa__waiter_t *n = m ? ursa__wait_raw_of(w, &m->sema, &lock_ops) : NULL;
    if (!n || !g || g->mutex)
        return -EINVAL;
    int rc = ursa__wait_finish_granted(n);
    return rc ? rc : take(m, g, ursa__ctx(), w->site, 0, &guard_kind);
}
