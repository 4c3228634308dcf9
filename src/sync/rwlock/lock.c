/* The rwlock itself: init and destroy, read and write locks and unlocks,
 * downgrade, the raw two-phase form, leaks and snapshots. How it is built
 * (semaphore, writer preference, reader bias): rwlock.h. */
#include <string.h>

#include "../barge.h"
#include "../hold.h"
#include "../../core/wait_steps.h"
#include "rwlock.h"

static void leaked_read_unlock(void *rw, uint64_t n);
static void leaked_fast_read_unlock(void *rw, uint64_t tab);
static void leaked_write_unlock(void *rw, uint64_t n);
static void rw_give_back(ursa__waiter_t *w);
static const ursa_oblig_kind_t read_kind = {"rwlock read guard", leaked_read_unlock};
/* A fast read guard records its reader table (as n) instead of a count.
 * Exported for the inline read lock and unlock (ursa/rwlock.h); a fast hold
 * of a lock whose read locks are timed or checked (!URSA__LOCK_FAST: bias
 * on is URSA__RWLOCK_BIAS_CALL) has the other kind, so that its unlock
 * calls us too. */
const ursa_oblig_kind_t ursa__rwlock_fast_read_kind = {"rwlock read guard",
                                                       leaked_fast_read_unlock};
static const ursa_oblig_kind_t fast_read_call_kind = {"rwlock read guard",
                                                      leaked_fast_read_unlock};
static const ursa_oblig_kind_t write_kind = {"rwlock write guard", leaked_write_unlock};
const ursa__wait_ops_t ursa__rwlock_read_ops = {URSA_WAIT_RWLOCK_READ, ursa__sema_cancel,
                                               rw_give_back};
const ursa__wait_ops_t ursa__rwlock_write_ops = {URSA_WAIT_RWLOCK_WRITE, ursa__sema_cancel,
                                                rw_give_back};

int ursa_rwlock_init(ursa_rwlock_t *rw, uint64_t max_readers)
{
    return ursa_rwlock_init_attr(rw, max_readers, NULL);
}

int ursa_rwlock_stats(const ursa_rwlock_t *rw, ursa_lock_stats_t *out)
{
    return rw && out ? ursa__lockinfo_stats(&rw->info, out) : -EINVAL;
}

int ursa_rwlock_init_attr(ursa_rwlock_t *rw, uint64_t max_readers, const ursa_lock_attr_t *attr)
{
    if (!rw || max_readers > URSA_RWLOCK_MAX_READERS ||
        (attr && (attr->flags & ~URSA_LOCK_BARGING)))
        return -EINVAL;
    ursa__lockinfo_init(&rw->info, attr);
    if (max_readers == 0)
        max_readers = URSA_RWLOCK_DEFAULT_READERS;
    ursa__sema_init(&rw->sema, max_readers);
    /* Writers barge; readers start plain waits (ursa__sema_start), which a
     * barging release still hands their permit FIFO. */
    bool barging = attr && (attr->flags & URSA_LOCK_BARGING);
    if (barging)
        ursa__sema_set_barging(&rw->sema);
    rw->max_readers = max_readers;
    atomic_init(&rw->poisoned, false);
    atomic_init(&rw->writer, false);
    atomic_init(&rw->wstreak, 0);
    /* A barging lock never biases: a woken writer is off the queue
     * (WAITERS may be clear), so a reader could take the token between its
     * looks, and only a queued writer's revoke would bring it back. */
    ursa__bias_init(&rw->bias, max_readers < URSA_RWLOCK_DEFAULT_READERS || barging);
    return 0;
}

int ursa_rwlock_destroy(ursa_rwlock_t *rw)
{
    if (!rw)
        return -EINVAL;
    bool fast_held = false;
    if (rw->bias.slot >= 0) {
        /* The token comes back unless fast readers hold (then the bias
         * stays off: only performance changes). */
        ursa__rwlock_bias_revoke(rw, ursa__ctx());
        fast_held = ursa__bias_state(&ursa__rbias_slots[rw->bias.slot].d) != URSA__BIAS_IDLE;
    }
    int rc = ursa__destroy_check(fast_held ||
                                     ursa__sema_available(&rw->sema) != rw->max_readers ||
                                     ursa__sema_has_waiters(&rw->sema),
                                 "rwlock destroyed while held or waited on");
    if (rc)
        return rc;
    if (rw->bias.slot >= 0) {
        ursa__rbias_slot_free(rw->bias.slot);
        rw->bias.slot = -1;
    }
    ursa__lockinfo_destroy(&rw->info);
    return 0;
}

static void rw_give_back(ursa__waiter_t *w)
{
    ursa_rwlock_t *rw = (ursa_rwlock_t *)w->owner; /* sema is the first member */
    ursa__rwlock_release(rw, w->got);
    w->got = 0;
}

/* ---- holds ---- */

static int poison_rc(const ursa_rwlock_t *rw)
{
    /* relaxed: set before the leaked writer's release, which our acquire
     * of the permits synchronises with. */
    return atomic_load_explicit(&rw->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

static int take_read(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g, ursa__ctx_t *c,
                     const ursa_site_t *site, ursa_time_t wait_start)
{
    if (__builtin_expect(
            ursa__oblig_take_lock(&c->ledger, &g->ob, &read_kind, site, rw, 1, &rw->info), 0)) {
        ursa__rwlock_release(rw, 1); /* no room to record it: give it back */
        return -ENOMEM;
    }
    g->rw = rw;
    g->rtab = NULL;
    URSA__LOCK_ACQUIRED(&rw->info, g, c, wait_start);
    return poison_rc(rw);
}

/* No look at poisoned: bias is never on while rw is poisoned (bias.c). */
static int take_read_fast(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g, ursa__ctx_t *c,
                          const ursa_site_t *site, ursa__rtab_t *t)
{
    const ursa_oblig_kind_t *kind =
        URSA__LOCK_FAST(&rw->info) ? &ursa__rwlock_fast_read_kind : &fast_read_call_kind;
    if (__builtin_expect(ursa__oblig_take_lock(&c->ledger, &g->ob, kind, site, rw,
                                               (uint64_t)(uintptr_t)t, &rw->info),
                         0)) {
        ursa__rwlock_read_fast_exit(rw->bias.slot, t);
        return -ENOMEM;
    }
    g->rw = rw;
    g->rtab = t;
    URSA__LOCK_ACQUIRED(&rw->info, g, c, 0);
    return 0;
}

static int take_write(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g, ursa__ctx_t *c,
                      const ursa_site_t *site, ursa_time_t wait_start)
{
    if (__builtin_expect(ursa__oblig_take_lock(&c->ledger, &g->ob, &write_kind, site, rw,
                                               rw->max_readers, &rw->info),
                         0)) {
        ursa__rwlock_release(rw, rw->max_readers);
        return -ENOMEM;
    }
    g->rw = rw;
    URSA__LOCK_ACQUIRED(&rw->info, g, c, wait_start);
    /* relaxed: a snapshot flag for ursa_rwlock_is_write_locked. */
    atomic_store_explicit(&rw->writer, true, memory_order_relaxed);
    return poison_rc(rw);
}

/* ---- read lock ---- */

static __attribute__((noinline)) int read_slow(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                                               ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t wait_start = URSA__LOCK_WAIT_START(c);
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &ursa__rwlock_read_ops);
    int rc = ursa__sema_start(&rw->sema, &w, 1);
    bool queued = rc == -EINPROGRESS;
    /* A grant that raced the timeout or cancel is kept. */
    if ((rc = ursa__wait_block(c, &w, rc, deadline, site)))
        return rc;
    if (queued)
        ursa__rwlock_reader_entered(rw);
    ursa__rwlock_bias_maybe_on(rw, c);
    return take_read(rw, g, c, site, wait_start);
}

/* Everything the fast path leaves (as the mutex's lock_general): no
 * context or reader table yet, a ledger that must pop its free list or
 * grow, lock-order checks and metrics, no bias. */
static __attribute__((noinline)) int read_general(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                                                  ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &rw->info, "rwlock", site);
    /* acquire: the slot, and the last writer's critical section, from
     * whoever turned bias on (bias_maybe_on). */
    if (__builtin_expect(atomic_load_explicit(&rw->bias.on, memory_order_acquire), 1)) {
        ursa__rtab_t *t = ursa__rtab();
        if (__builtin_expect(t && ursa__rwlock_read_fast(rw, t), 1))
            return take_read_fast(rw, g, c, site, t);
    }
    if (__builtin_expect(ursa__sema_try(&rw->sema, 1), 1)) {
        ursa__rwlock_bias_maybe_on(rw, c);
        return take_read(rw, g, c, site, 0);
    }
    return read_slow(rw, g, deadline, site);
}

/* The fast path counted itself in t, then found the bias revoked: a revoke
 * may have counted it, so it leaves the way a fast reader does. */
int ursa__rwlock_read_revoked(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                              ursa_time_t deadline, const ursa_site_t *site, ursa__rtab_t *t)
{
    ursa__rwlock_read_fast_exit(rw->bias.slot, t);
    return read_general(rw, g, deadline, site);
}

/* The biased read lock of a thread that has its context and reader table:
 * no atomic RMW, one ledger record. */
int ursa_rwlock_read_lock_at(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                             ursa_time_t deadline, const ursa_site_t *site)
{
    if (__builtin_expect(!rw || !g || g->rw, 0))
        return -EINVAL;
    ursa__ctx_t *c = ursa__cur_ctx;
    ursa__rtab_t *t = ursa__rtab_cur;
    /* acquire: as in read_general. */
    if (__builtin_expect(URSA__LOCK_FAST(&rw->info) && c && t &&
                             ursa__ledger_room(&c->ledger) &&
                             atomic_load_explicit(&rw->bias.on, memory_order_acquire),
                         1))
        return ursa__rwlock_read_hold_fast(c, rw, g, deadline, site, t); /* ursa/rwlock.h */
    return read_general(rw, g, deadline, site);
}

static __attribute__((noinline)) int read_unlock_general(ursa_rwlock_read_guard_t *g)
{
    ursa_rwlock_t *rw = g->rw;
    int rc = ursa__hold_discharge(&g->ob, rw != NULL,
                                  "rwlock read guard unlocked while empty (double unlock?)", NULL);
    if (rc)
        return rc;
    g->rw = NULL;
    URSA__LOCK_RELEASED(&rw->info, g);
    if (g->rtab) {
        ursa__rtab_t *t = g->rtab;
        g->rtab = NULL;
        ursa__rwlock_read_fast_exit(rw->bias.slot, t);
    } else {
        ursa__rwlock_release(rw, 1);
    }
    return 0;
}

/* Fast for a biased guard that is the caller's newest hold (the inline
 * unlock of ursa/rwlock.h is the same steps). */
int(ursa_rwlock_read_unlock)(ursa_rwlock_read_guard_t *g)
{
    if (__builtin_expect(!g, 0))
        return -EINVAL;
    ursa_rwlock_t *rw = g->rw;
    ursa__rtab_t *t = g->rtab;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!rw || !t || !URSA__LOCK_FAST(&rw->info) || !c ||
                             !ursa__oblig_is_newest(&c->ledger, &g->ob),
                         0))
        return read_unlock_general(g);
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->rw = NULL;
    g->rtab = NULL;
    ursa__rwlock_read_fast_exit(rw->bias.slot, t);
    return 0;
}

void ursa_rwlock_read_guard_cleanup(ursa_rwlock_read_guard_t *g)
{
    if (g && g->rw)
        (void)ursa_rwlock_read_unlock(g);
}

/* ---- write lock ---- */

/* A barging writer's slow half: every permit, past queued waiters if they
 * are free; else wait as a looker (barge.h). */
static __attribute__((noinline)) int write_barging(ursa_rwlock_t *rw,
                                                   ursa_rwlock_write_guard_t *g, ursa__ctx_t *c,
                                                   ursa_time_t deadline, const ursa_site_t *site)
{
    /* (a blocking lock under contention: the streak's rule, core/sema.h) */
    if (ursa__sema_barge_in(&rw->sema, rw->max_readers, deadline))
        return take_write(rw, g, c, site, 0);
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t since = ursa__ctx_now(c);
    int rc = ursa__barge_block(c, &rw->sema, (uint32_t)rw->max_readers,
                               &ursa__rwlock_write_ops, deadline, site, since);
    if (rc)
        return rc;
    ursa__rwlock_writer_entered(rw);
    return take_write(rw, g, c, site, since);
}

/* The write lock's queued half (out of line, as read_slow). */
static __attribute__((noinline)) int write_slow(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g,
                                                ursa__ctx_t *c, ursa_time_t deadline,
                                                const ursa_site_t *site)
{
    if (ursa__sema_barging(&rw->sema))
        return write_barging(rw, g, c, deadline, site);
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t wait_start = URSA__LOCK_WAIT_START(c);
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &ursa__rwlock_write_ops);
    int rc = ursa__sema_start(&rw->sema, &w, (uint32_t)rw->max_readers);
    bool queued = rc == -EINPROGRESS;
    if (queued)
        ursa__rwlock_bias_revoke(rw, c); /* again, now queued */
    /* Withdrawn: the permits partly assigned to us went on to the waiters
     * behind (readers queued behind us get in). */
    if ((rc = ursa__wait_block(c, &w, rc, deadline, site)))
        return rc;
    if (queued)
        ursa__rwlock_writer_entered(rw);
    return take_write(rw, g, c, site, wait_start);
}

int ursa_rwlock_write_lock_at(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g,
                              ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rw || !g || g->rw)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &rw->info, "rwlock", site);
    /* relaxed: bias_revoke re-checks under its lock. */
    if (atomic_load_explicit(&rw->bias.on, memory_order_relaxed))
        ursa__rwlock_bias_revoke(rw, c);
    if (ursa__sema_try(&rw->sema, rw->max_readers))
        return take_write(rw, g, c, site, 0); /* queue empty: no streak */
    return write_slow(rw, g, c, deadline, site);
}

int ursa_rwlock_write_unlock(ursa_rwlock_write_guard_t *g)
{
    if (!g)
        return -EINVAL;
    ursa_rwlock_t *rw = g->rw;
    int rc = ursa__hold_discharge(&g->ob, rw != NULL,
                                  "rwlock write guard unlocked while empty (double unlock?)", NULL);
    if (rc)
        return rc;
    g->rw = NULL;
    /* relaxed: a snapshot flag for ursa_rwlock_is_write_locked. */
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed);
    URSA__LOCK_RELEASED(&rw->info, g);
    ursa__rwlock_release(rw, rw->max_readers);
    return 0;
}

int ursa_rwlock_downgrade(ursa_rwlock_write_guard_t *wg, ursa_rwlock_read_guard_t *rg)
{
    if (!wg || !rg || rg->rw)
        return -EINVAL;
    ursa_rwlock_t *rw = wg->rw;
    int rc = ursa__hold_check(rw ? &wg->ob : NULL, "rwlock downgrade of an empty write guard");
    if (rc)
        return rc;
    ursa__ledger_t *l = &ursa__ctx()->ledger;
    /* Move the obligation: same ledger record and acquire site, now a read
     * guard holding one permit. */
    rg->ob = wg->ob;
    rg->ob.kind = &read_kind;
    ursa__oblig_set_n(&rg->ob, 1);
    if (rg->ob.ledger)
        l->recs[rg->ob.slot].kind = (uintptr_t)&read_kind;
    memset(&wg->ob, 0, sizeof wg->ob);
    wg->rw = NULL;
    rg->rw = rw;
    rg->rtab = NULL; /* it holds a permit */
    rg->since = wg->since; /* one hold, first exclusive then shared */
    /* relaxed: a snapshot flag for ursa_rwlock_is_write_locked. */
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed);
    /* We keep one permit: no writer can get in before we read-unlock. */
    if (rw->max_readers > 1)
        ursa__rwlock_release(rw, rw->max_readers - 1);
    return 0;
}

/* ---- leaks, cleanup, snapshots ---- */

static void leaked_read_unlock(void *rw, uint64_t n)
{
    ursa__rwlock_release(rw, n); /* a reader cannot have corrupted anything: no poison */
}

static void leaked_fast_read_unlock(void *rw, uint64_t tab)
{
    ursa__rwlock_read_fast_exit(((ursa_rwlock_t *)rw)->bias.slot, (ursa__rtab_t *)(uintptr_t)tab);
}

static void leaked_write_unlock(void *p, uint64_t n)
{
    ursa_rwlock_t *rw = p;
    /* relaxed: a snapshot flag for ursa_rwlock_is_write_locked. */
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed);
    /* relaxed: the permit release below publishes it to the next locker. */
    atomic_store_explicit(&rw->poisoned, true, memory_order_relaxed);
    ursa__rwlock_release(rw, n);
}

void ursa_rwlock_write_guard_cleanup(ursa_rwlock_write_guard_t *g)
{
    if (g && g->rw)
        (void)ursa_rwlock_write_unlock(g);
}

int ursa_rwlock_consistent(ursa_rwlock_t *rw)
{
    if (!rw)
        return -EINVAL;
    /* relaxed: the caller holds rw; the next locker acquires it through
     * the permits. */
    atomic_store_explicit(&rw->poisoned, false, memory_order_relaxed);
    return 0;
}

bool ursa_rwlock_is_write_locked(const ursa_rwlock_t *rw)
{
    /* relaxed: a snapshot. */
    return rw && atomic_load_explicit(&rw->writer, memory_order_relaxed);
}

uint64_t ursa_rwlock_readers(const ursa_rwlock_t *rw)
{
    if (!rw || ursa_rwlock_is_write_locked(rw))
        return 0;
    ursa_rwlock_t *m = (ursa_rwlock_t *)rw; /* the locks are mutable state */
    uint64_t fast = 0;
    bool token = false;
    ursa__spin_lock(&m->bias.lock);
    if (m->bias.slot >= 0) {
        fast = ursa__rbias_held(m->bias.slot);
        /* relaxed: changed under bias.lock. */
        token = atomic_load_explicit(&m->bias.on, memory_order_relaxed) ||
                ursa__bias_state(&ursa__rbias_slots[m->bias.slot].d) != URSA__BIAS_IDLE;
    }
    ursa__spin_unlock(&m->bias.lock);
    if (fast >= rw->max_readers)
        fast = 0; /* a racy sum that went below zero */
    ursa__sema_t *s = &m->sema;
    uint32_t bits = ursa__waitq_lock(&s->q);
    uint64_t free_ = ursa__sema_available(s) + token;
    if (s->q.head && s->q.head->got != URSA__SEMA_LOOKING)
        free_ += s->q.head->got; /* assigned to the head waiter, not held */
    ursa__waitq_unlock(&s->q, bits);
    return (free_ >= rw->max_readers ? 0 : rw->max_readers - free_) + fast;
}

/* ---- raw two-phase form ---- */

int ursa_rwlock_read_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_waker_t waker,
                                   const ursa_site_t *site)
{
    ursa__waiter_t *n = rw ? ursa__wait_raw_init(w, waker, &ursa__rwlock_read_ops, site) : NULL;
    return n ? ursa__sema_start(&rw->sema, n, 1) : -EINVAL;
}

int ursa_rwlock_write_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_waker_t waker,
                                    const ursa_site_t *site)
{
    if (!rw || !w || !waker.fn)
        return -EINVAL;
    /* relaxed: bias_revoke re-checks under its lock. */
    if (atomic_load_explicit(&rw->bias.on, memory_order_relaxed))
        ursa__rwlock_bias_revoke(rw, ursa__ctx());
    ursa__waiter_t *n = ursa__wait_raw_init(w, waker, &ursa__rwlock_write_ops, site);
    int rc = ursa__sema_start(&rw->sema, n, (uint32_t)rw->max_readers);
    if (rc == -EINPROGRESS)
        ursa__rwlock_bias_revoke(rw, ursa__ctx()); /* again, now queued */
    return rc;
}

/* The common half of both finishes: 0 when w is granted and now finished. */
static int finish_wait(ursa_rwlock_t *rw, ursa_wait_t *w, const ursa__wait_ops_t *ops)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, &rw->sema, ops);
    return n ? ursa__wait_finish_granted(n) : -EINVAL;
}

int ursa_rwlock_read_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_rwlock_read_guard_t *g)
{
    if (!rw || !w || !g || g->rw)
        return -EINVAL;
    int rc = finish_wait(rw, w, &ursa__rwlock_read_ops);
    if (rc)
        return rc;
    ursa__rwlock_reader_entered(rw);
    return take_read(rw, g, ursa__ctx(), w->site, 0);
}

int ursa_rwlock_write_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w,
                                  ursa_rwlock_write_guard_t *g)
{
    if (!rw || !w || !g || g->rw)
        return -EINVAL;
    int rc = finish_wait(rw, w, &ursa__rwlock_write_ops);
    if (rc)
        return rc;
    ursa__rwlock_writer_entered(rw);
    return take_write(rw, g, ursa__ctx(), w->site, 0);
}
