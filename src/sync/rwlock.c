/* Reader-writer lock on the batch semaphore: max_readers permits, a reader
 * takes one, a writer all of them. FIFO with partial assignment gives
 * writer preference (a reader queues behind a waiting writer) and keeps
 * writers from starving; the streak counter below bounds the preference.
 *
 * Bounding writer preference. With a plain FIFO a queued reader waits for
 * every writer queued ahead of it — unbounded if many writers queued
 * first. So: `wstreak` counts writers that entered from the queue while a
 * reader was queued, since readers last entered from it. Every release
 * that finds waiters checks (under the queue lock) whether the head is a
 * writer, a reader is queued and the streak reached
 * URSA_RWLOCK_WRITER_STREAK; if so it moves every queued reader, in order,
 * ahead of the writers (taking back what was partly assigned to the head
 * writer and releasing it with its own permits) and resets the streak.
 * Every writer grant from the queue comes from a release (a cancel only
 * passes on a head's partial permits, never enough for a whole writer), and
 * a counted writer holds every permit until its own release, which then
 * sees the count: so at most URSA_RWLOCK_WRITER_STREAK writers enter in a
 * row ahead of a queued reader.
 *
 * Reader bias. A read lock on the semaphore is a CAS to lock and one to
 * unlock, on a line every reader shares. While a lock is read-mostly we
 * bias it instead (rwlock/reader_tables.h): the bias holds one "token" permit
 * for all fast readers together, and each reader only counts itself in its
 * thread's reader table. A writer first revokes the bias (flag off,
 * membarrier, sum the column); if fast readers remain, the last of them
 * to unlock finds the slot ARMED and returns the token, which lets the
 * writer (queued on the semaphore like any writer) in. So fairness,
 * deadlines, cancel and the raw form of writers are the semaphore's. A
 * writer revokes again once it is queued: a reader may have turned the
 * bias on between its first revoke and its queueing (later ones cannot:
 * taking the token fails while a writer queues).
 * A slow-path reader turns the bias back on once `skip` slow read locks
 * went by with no writer queued; `skip` doubles (up to BIAS_MAX_SKIP)
 * each time bias was revoked before it lived BIAS_PAYBACK times the cost
 * of its revocation, so write-heavy locks stay unbiased. Locks with a
 * reader limit below URSA_RWLOCK_DEFAULT_READERS never bias: fast readers
 * are not counted against it. */
#include "ursa/rwlock.h"

#include <string.h>

#include "../core/ctx.h"
#include "../core/lockinfo.h"
#include "../core/membarrier.h"
#include "../core/sema.h"
#include "../core/spin.h"
#include "hold.h"
#include "rwlock/reader_tables.h"
#include "wait_steps.h"

#define BIAS_MIN_SKIP 64u
#define BIAS_MAX_SKIP (1u << 20)
#define BIAS_NEVER UINT32_MAX
#define BIAS_PAYBACK 32

static void leaked_read_unlock(void *rw, uint64_t n);
static void leaked_fast_read_unlock(void *rw, uint64_t tab);
static void leaked_write_unlock(void *rw, uint64_t n);
static void rw_give_back(ursa_wait_t *w);
static const ursa_oblig_kind_t read_kind = {"rwlock read guard", leaked_read_unlock};
/* A fast read guard records its reader table (as n) instead of a count. */
static const ursa_oblig_kind_t fast_read_kind = {"rwlock read guard", leaked_fast_read_unlock};
static const ursa_oblig_kind_t write_kind = {"rwlock write guard", leaked_write_unlock};
static const ursa__wait_ops_t read_ops = {URSA_WAIT_RWLOCK_READ, ursa__sema_cancel,
                                          rw_give_back};
static const ursa__wait_ops_t write_ops = {URSA_WAIT_RWLOCK_WRITE, ursa__sema_cancel,
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
    if (!rw || max_readers > URSA_RWLOCK_MAX_READERS)
        return -EINVAL;
    ursa__lockinfo_init(&rw->info, attr);
    if (max_readers == 0)
        max_readers = URSA_RWLOCK_DEFAULT_READERS;
    ursa__sema_init(&rw->sema, max_readers);
    rw->max_readers = max_readers;
    atomic_init(&rw->poisoned, false);
    atomic_init(&rw->writer, false);
    atomic_init(&rw->wstreak, 0);
    atomic_init(&rw->bias.on, 0);
    atomic_init(&rw->bias.lock, 0);
    /* Bias is tried at the first read lock, if the reader limit allows. */
    /* Not at the first read lock: a lock read a few times only should not
     * take one of the few slots. */
    atomic_init(&rw->bias.skip,
                max_readers >= URSA_RWLOCK_DEFAULT_READERS ? BIAS_MIN_SKIP : BIAS_NEVER);
    rw->bias.slot = -1;
    rw->bias.next_skip = BIAS_MIN_SKIP;
    rw->bias.since = 0;
    return 0;
}

static void bias_revoke(ursa_rwlock_t *rw, ursa__ctx_t *c);

static uint32_t slot_state(int slot)
{
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
    ursa__spin_lock(&sl->lock);
    /* relaxed: under the slot's lock. */
    uint32_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
    ursa__spin_unlock(&sl->lock);
    return st;
}

int ursa_rwlock_destroy(ursa_rwlock_t *rw)
{
    if (!rw)
        return -EINVAL;
    bool fast_held = false;
    if (rw->bias.slot >= 0) {
        /* The token comes back unless fast readers hold (then the bias
         * stays off: only performance changes). */
        bias_revoke(rw, ursa__ctx());
        fast_held = slot_state(rw->bias.slot) != URSA__RBIAS_IDLE;
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
    return 0;
}

/* ---- bounded writer preference ---- */

/* Under the queue lock: if the streak is used up, moves the queued readers
 * ahead of the queued writers. Returns the permits taken back from the
 * (former) head writer, which the caller must release. */
static uint64_t promote_readers_locked(ursa_rwlock_t *rw)
{
    ursa__sema_t *s = &rw->sema;
    ursa_wait_t *h = s->head;
    /* relaxed: changed under this lock, or reset by a reader that entered
     * (a stale value only makes readers get in earlier). */
    if (!h || h->ops != &write_ops ||
        atomic_load_explicit(&rw->wstreak, memory_order_relaxed) < URSA_RWLOCK_WRITER_STREAK)
        return 0;
    ursa_wait_t *rh = NULL, *rt = NULL;
    for (ursa_wait_t *w = h, *next; w; w = next) {
        next = w->next;
        if (w->ops == &read_ops) {
            ursa__waitq_remove(&s->head, &s->tail, w);
            ursa__waitq_push(&rh, &rt, w);
        }
    }
    if (!rh)
        return 0;
    /* Only the head can hold a partial assignment; it is no longer first,
     * so its permits go back to whoever is. */
    uint64_t back = h->got;
    h->want += h->got;
    h->got = 0;
    rt->next = s->head;
    if (s->head)
        s->head->prev = rt;
    else
        s->tail = rt;
    s->head = rh;
    atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    return back;
}

/* Every release of permits goes through here (unlocks, downgrade, leaks,
 * give-backs), so that each one that may hand the lock to a writer first
 * checks the streak. */
static void rw_release(ursa_rwlock_t *rw, uint64_t n)
{
    ursa__sema_t *s = &rw->sema;
    /* relaxed: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    while (!(st & URSA__SEMA_WAITERS)) {
        /* release: our critical section happens-before the next acquirer. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  st + (n << URSA__SEMA_SHIFT),
                                                  memory_order_release, memory_order_relaxed))
            return;
    }
    ursa__spin_lock(&s->lock);
    uint64_t back = promote_readers_locked(rw);
    ursa__spin_unlock(&s->lock);
    ursa__sema_release(s, n + back);
}

static bool reader_queued_locked(const ursa__sema_t *s)
{
    for (const ursa_wait_t *w = s->head; w; w = w->next)
        if (w->ops == &read_ops)
            return true;
    return false;
}

/* A writer entered from the queue (or through the raw form): count it if
 * readers are waiting, else there is no streak. */
static void writer_entered(ursa_rwlock_t *rw)
{
    ursa__spin_lock(&rw->sema.lock);
    /* relaxed: under the lock (see promote_readers_locked). */
    if (reader_queued_locked(&rw->sema))
        atomic_fetch_add_explicit(&rw->wstreak, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    ursa__spin_unlock(&rw->sema.lock);
}

/* A reader entered from the queue: the writers' streak is over. No writer
 * can hold (and count) while we hold our permit. */
static void reader_entered(ursa_rwlock_t *rw)
{
    /* relaxed: a counter for fairness; orders nothing. */
    if (atomic_load_explicit(&rw->wstreak, memory_order_relaxed))
        atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
}

static void rw_give_back(ursa_wait_t *w)
{
    ursa_rwlock_t *rw = (ursa_rwlock_t *)w->owner; /* sema is the first member */
    rw_release(rw, w->got);
    w->got = 0;
}

/* ---- reader bias ---- */

/* Turns bias off; the token comes back now, or from the last fast reader.
 * A writer calls it before it queues and again right after: a reader may
 * have turned the bias on after the first look (regression
 * test_rwlock_bias_rebias_race). The second call must not skip the lock
 * on a lock-free look at the flag: a reader may hold bias.lock with the
 * token taken (before we queued) and the flag not yet on; under the lock
 * we see its flag, or it sees us queued and takes no token. */
static void bias_revoke(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    ursa__spin_lock(&rw->bias.lock);
    /* relaxed: changed under this lock. */
    if (!atomic_load_explicit(&rw->bias.on, memory_order_relaxed)) {
        ursa__spin_unlock(&rw->bias.lock);
        return;
    }
    ursa_time_t t0 = ursa__ctx_now(c);
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[rw->bias.slot];
    /* relaxed: PENDING before the flag goes off, both before the barrier,
     * which orders them against every reader (reader_tables.h). An unlock that
     * sees PENDING waits for our verdict under the slot's lock. */
    atomic_store_explicit(&sl->state, URSA__RBIAS_PENDING, memory_order_relaxed);
    atomic_store_explicit(&rw->bias.on, 0, memory_order_relaxed);
    ursa__membarrier();
    ursa__spin_lock(&sl->lock);
    bool drained = ursa__rbias_held(rw->bias.slot) == 0;
    /* relaxed: under the slot's lock. */
    atomic_store_explicit(&sl->state, drained ? URSA__RBIAS_IDLE : URSA__RBIAS_ARMED,
                          memory_order_relaxed);
    ursa__spin_unlock(&sl->lock);
    ursa_time_t t1 = ursa__ctx_now(c);
    /* Bias that did not outlive BIAS_PAYBACK revocations did not pay for
     * itself: wait longer before the next try. */
    if (t1 - rw->bias.since < BIAS_PAYBACK * (t1 - t0))
        rw->bias.next_skip = rw->bias.next_skip >= BIAS_MAX_SKIP / 2 ? BIAS_MAX_SKIP
                                                                     : rw->bias.next_skip * 2;
    else
        rw->bias.next_skip = BIAS_MIN_SKIP;
    /* relaxed: a heuristic counter. */
    atomic_store_explicit(&rw->bias.skip, rw->bias.next_skip, memory_order_relaxed);
    ursa__spin_unlock(&rw->bias.lock);
    if (drained)
        rw_release(rw, 1);
}

/* A fast reader left while a revoke was in progress: if the revoke is
 * ARMED and the column is empty now, the token goes back. Reads the lock
 * only then (the token still out keeps it from being destroyed). */
static __attribute__((noinline)) void bias_drain_check(int slot)
{
    ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
    ursa_rwlock_t *rw = NULL;
    ursa__spin_lock(&sl->lock);
    /* relaxed: under the slot's lock. */
    if (atomic_load_explicit(&sl->state, memory_order_relaxed) == URSA__RBIAS_ARMED &&
        ursa__rbias_held(slot) == 0) {
        /* relaxed: under the slot's lock, like every change of state. */
        atomic_store_explicit(&sl->state, URSA__RBIAS_IDLE, memory_order_relaxed);
        rw = sl->owner;
    }
    ursa__spin_unlock(&sl->lock);
    if (rw)
        rw_release(rw, 1);
}

/* Called by a reader that holds a permit (so no writer holds the lock):
 * turns bias on once `skip` such read locks went by. */
static void bias_maybe_on(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    /* relaxed: a heuristic counter; racing decrements only shift it. */
    uint32_t k = atomic_load_explicit(&rw->bias.skip, memory_order_relaxed);
    if (__builtin_expect(k != 0, 1)) {
        if (k != BIAS_NEVER)
            atomic_store_explicit(&rw->bias.skip, k - 1, memory_order_relaxed);
        return;
    }
    ursa__spin_lock(&rw->bias.lock);
    /* relaxed: changed under this lock. */
    if (!atomic_load_explicit(&rw->bias.on, memory_order_relaxed) &&
        atomic_load_explicit(&rw->bias.skip, memory_order_relaxed) == 0) {
        if (rw->bias.slot < 0)
            rw->bias.slot = ursa__rbias_slot_alloc(rw);
        if (rw->bias.slot < 0) {
            atomic_store_explicit(&rw->bias.skip, BIAS_NEVER, memory_order_relaxed);
        } else if (slot_state(rw->bias.slot) != URSA__RBIAS_IDLE) {
            /* the last token is still out: try again later */
            atomic_store_explicit(&rw->bias.skip, BIAS_MIN_SKIP, memory_order_relaxed);
        } else if (ursa__sema_try(&rw->sema, 1)) { /* fails while a writer queues */
            rw->bias.since = ursa__ctx_now(c);
            /* release: the slot, and (through the permit we hold) the last
             * writer's critical section, reach the fast readers. */
            atomic_store_explicit(&rw->bias.on, 1, memory_order_release);
        } else {
            atomic_store_explicit(&rw->bias.skip, BIAS_MIN_SKIP, memory_order_relaxed);
        }
    }
    ursa__spin_unlock(&rw->bias.lock);
}

/* Uncounts a fast reader. Its store to t is the last touch of the lock's
 * read side: the lock may be freed after it, so what follows reads only
 * the slot table (never freed). */
static inline void read_fast_exit(int slot, ursa__rtab_t *t)
{
    ursa__rtab_exit(t, slot);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: only tells us whether a revoke may be waiting for us. */
    if (__builtin_expect(
            atomic_load_explicit(&ursa__rbias_slots[slot].state, memory_order_relaxed) !=
                URSA__RBIAS_IDLE,
            0))
        bias_drain_check(slot);
}

/* Counts a fast reader in t: true, or false (bias was revoked: not counted). */
static inline bool read_fast(ursa_rwlock_t *rw, ursa__rtab_t *t)
{
    ursa__rtab_enter(t, rw->bias.slot);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* acquire: as in the first load (ursa_rwlock_read_lock_at). */
    if (__builtin_expect(atomic_load_explicit(&rw->bias.on, memory_order_acquire), 1))
        return true;
    read_fast_exit(rw->bias.slot, t); /* a revoke may have counted us */
    return false;
}

/* ---- holds ---- */

static int poison_rc(const ursa_rwlock_t *rw)
{
    /* relaxed: set before the leaked writer's release, which our acquire
     * of the permits synchronises with. */
    return atomic_load_explicit(&rw->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

/* Metrics for an acquire that waited since wait_start (0: it did not). */
#if URSA_LOCK_METRICS
#define ACQUIRED(rw, g, c, wait_start)                                   \
    do {                                                                 \
        (g)->since = ursa__ctx_now(c);                                   \
        ursa__lockinfo_acquired(&(rw)->info, wait_start, (g)->since);    \
    } while (0)
#define RELEASED(rw, g) ursa__lockinfo_released(&(rw)->info, (g)->since, ursa_now())
#define WAIT_START(c) ursa__ctx_now(c)
#else
#define ACQUIRED(rw, g, c, wait_start) ((void)(wait_start))
#define RELEASED(rw, g) ((void)0)
#define WAIT_START(c) ((ursa_time_t)0)
#endif

static int take_read(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g, ursa__ctx_t *c,
                     const ursa_site_t *site, ursa_time_t wait_start)
{
    if (__builtin_expect(
            ursa__oblig_take_lock(&c->ledger, &g->ob, &read_kind, site, rw, 1, &rw->info), 0)) {
        rw_release(rw, 1); /* no room to record it: give it back */
        return -ENOMEM;
    }
    g->rw = rw;
    g->rtab = NULL;
    ACQUIRED(rw, g, c, wait_start);
    return poison_rc(rw);
}

static int take_read_fast(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g, ursa__ctx_t *c,
                          const ursa_site_t *site, ursa__rtab_t *t)
{
    if (__builtin_expect(ursa__oblig_take_lock(&c->ledger, &g->ob, &fast_read_kind, site, rw,
                                               (uint64_t)(uintptr_t)t, &rw->info),
                         0)) {
        read_fast_exit(rw->bias.slot, t);
        return -ENOMEM;
    }
    g->rw = rw;
    g->rtab = t;
    ACQUIRED(rw, g, c, 0);
    return poison_rc(rw);
}

static int take_write(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g, ursa__ctx_t *c,
                      const ursa_site_t *site, ursa_time_t wait_start)
{
    if (__builtin_expect(ursa__oblig_take_lock(&c->ledger, &g->ob, &write_kind, site, rw,
                                               rw->max_readers, &rw->info),
                         0)) {
        rw_release(rw, rw->max_readers);
        return -ENOMEM;
    }
    g->rw = rw;
    ACQUIRED(rw, g, c, wait_start);
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
    ursa_time_t wait_start = WAIT_START(c);
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &read_ops, site);
    int rc = ursa__sema_start(&rw->sema, &w, 1);
    bool queued = rc == -EINPROGRESS;
    /* A grant that raced the timeout or cancel is kept. */
    if ((rc = ursa__wait_block(c, &w, rc, deadline)))
        return rc;
    if (queued)
        reader_entered(rw);
    bias_maybe_on(rw, c);
    return take_read(rw, g, c, site, wait_start);
}

int ursa_rwlock_read_lock_at(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                             ursa_time_t deadline, const ursa_site_t *site)
{
    if (__builtin_expect(!rw || !g || g->rw, 0))
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &rw->info, "rwlock", site);
    /* acquire: the slot, and the last writer's critical section, from
     * whoever turned bias on (bias_maybe_on). */
    if (__builtin_expect(atomic_load_explicit(&rw->bias.on, memory_order_acquire), 1)) {
        ursa__rtab_t *t = ursa__rtab();
        if (__builtin_expect(t && read_fast(rw, t), 1))
            return take_read_fast(rw, g, c, site, t);
    }
    if (__builtin_expect(ursa__sema_try(&rw->sema, 1), 1)) {
        bias_maybe_on(rw, c);
        return take_read(rw, g, c, site, 0);
    }
    return read_slow(rw, g, deadline, site);
}

int ursa_rwlock_read_unlock(ursa_rwlock_read_guard_t *g)
{
    if (!g)
        return -EINVAL;
    ursa_rwlock_t *rw = g->rw;
    int rc = ursa__hold_discharge(&g->ob, rw != NULL,
                                  "rwlock read guard unlocked while empty (double unlock?)", NULL);
    if (rc)
        return rc;
    g->rw = NULL;
    RELEASED(rw, g);
    if (g->rtab) {
        ursa__rtab_t *t = g->rtab;
        g->rtab = NULL;
        read_fast_exit(rw->bias.slot, t);
    } else {
        rw_release(rw, 1);
    }
    return 0;
}

/* ---- write lock ---- */

int ursa_rwlock_write_lock_at(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g,
                              ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rw || !g || g->rw)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__LOCK_ORDER_CHECK(c, &rw->info, "rwlock", site);
    /* relaxed: bias_revoke re-checks under its lock. */
    if (atomic_load_explicit(&rw->bias.on, memory_order_relaxed))
        bias_revoke(rw, c);
    if (ursa__sema_try(&rw->sema, rw->max_readers))
        return take_write(rw, g, c, site, 0); /* queue empty: no streak */
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa_time_t wait_start = WAIT_START(c);
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &write_ops, site);
    int rc = ursa__sema_start(&rw->sema, &w, rw->max_readers);
    bool queued = rc == -EINPROGRESS;
    if (queued)
        bias_revoke(rw, c); /* again, now queued */
    /* Withdrawn: the permits partly assigned to us went on to the waiters
     * behind (readers queued behind us get in). */
    if ((rc = ursa__wait_block(c, &w, rc, deadline)))
        return rc;
    if (queued)
        writer_entered(rw);
    return take_write(rw, g, c, site, wait_start);
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
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed); /* snapshot flag */
    RELEASED(rw, g);
    rw_release(rw, rw->max_readers);
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
    rg->ob.n = 1;
    if (rg->ob.ledger) {
        ursa__ledger_rec_t *r = &l->recs[rg->ob.slot];
        r->hold = &rg->ob;
        r->kind = &read_kind;
        r->n = 1;
    }
    memset(&wg->ob, 0, sizeof wg->ob);
    wg->rw = NULL;
    rg->rw = rw;
    rg->rtab = NULL; /* it holds a permit */
#if URSA_LOCK_METRICS
    rg->since = wg->since; /* one hold, first exclusive then shared */
#endif
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed); /* snapshot flag */
    /* We keep one permit: no writer can get in before we read-unlock. */
    if (rw->max_readers > 1)
        rw_release(rw, rw->max_readers - 1);
    return 0;
}

/* ---- leaks, cleanup, snapshots ---- */

static void leaked_read_unlock(void *rw, uint64_t n)
{
    rw_release(rw, n); /* a reader cannot have corrupted anything: no poison */
}

static void leaked_fast_read_unlock(void *rw, uint64_t tab)
{
    read_fast_exit(((ursa_rwlock_t *)rw)->bias.slot, (ursa__rtab_t *)(uintptr_t)tab);
}

static void leaked_write_unlock(void *p, uint64_t n)
{
    ursa_rwlock_t *rw = p;
    atomic_store_explicit(&rw->writer, false, memory_order_relaxed);
    /* relaxed: the permit release below publishes it to the next locker. */
    atomic_store_explicit(&rw->poisoned, true, memory_order_relaxed);
    rw_release(rw, n);
}

void ursa_rwlock_read_guard_cleanup(ursa_rwlock_read_guard_t *g)
{
    if (g && g->rw)
        (void)ursa_rwlock_read_unlock(g);
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
                slot_state(m->bias.slot) != URSA__RBIAS_IDLE;
    }
    ursa__spin_unlock(&m->bias.lock);
    if (fast >= rw->max_readers)
        fast = 0; /* a racy sum that went below zero */
    ursa__sema_t *s = &m->sema;
    ursa__spin_lock(&s->lock);
    uint64_t free_ = ursa__sema_available(s) + token;
    for (const ursa_wait_t *w = s->head; w; w = w->next)
        free_ += w->got; /* assigned to a waiter, not held */
    ursa__spin_unlock(&s->lock);
    return (free_ >= rw->max_readers ? 0 : rw->max_readers - free_) + fast;
}

/* ---- raw two-phase form ---- */

int ursa_rwlock_read_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_waker_t waker,
                                   const ursa_site_t *site)
{
    if (!rw || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &read_ops, site);
    return ursa__sema_start(&rw->sema, w, 1);
}

int ursa_rwlock_write_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_waker_t waker,
                                    const ursa_site_t *site)
{
    if (!rw || !w || !waker.fn)
        return -EINVAL;
    /* relaxed: bias_revoke re-checks under its lock. */
    if (atomic_load_explicit(&rw->bias.on, memory_order_relaxed))
        bias_revoke(rw, ursa__ctx());
    ursa__wait_init(w, waker, &write_ops, site);
    int rc = ursa__sema_start(&rw->sema, w, rw->max_readers);
    if (rc == -EINPROGRESS)
        bias_revoke(rw, ursa__ctx()); /* again, now queued */
    return rc;
}

/* The common half of both finishes: 0 when w is granted and now finished. */
static int finish_wait(ursa_rwlock_t *rw, ursa_wait_t *w, const ursa__wait_ops_t *ops)
{
    if (w->owner != &rw->sema || w->ops != ops)
        return -EINVAL;
    return ursa__wait_finish_granted(w);
}

int ursa_rwlock_read_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_rwlock_read_guard_t *g)
{
    if (!rw || !w || !g || g->rw)
        return -EINVAL;
    int rc = finish_wait(rw, w, &read_ops);
    if (rc)
        return rc;
    reader_entered(rw);
    return take_read(rw, g, ursa__ctx(), w->site, 0);
}

int ursa_rwlock_write_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w,
                                  ursa_rwlock_write_guard_t *g)
{
    if (!rw || !w || !g || g->rw)
        return -EINVAL;
    int rc = finish_wait(rw, w, &write_ops);
    if (rc)
        return rc;
    writer_entered(rw);
    return take_write(rw, g, ursa__ctx(), w->site, 0);
}
