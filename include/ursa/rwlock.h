/* ursa — async reader-writer lock: FIFO with writer preference, bounded so
 * that neither side starves; poisoning; atomic downgrade; three calling
 * contexts.
 *
 *     ursa_rwlock_t rw;  ursa_rwlock_init(&rw, 0);      // default max readers
 *     {
 *         URSA_SCOPED(rwlock_read_guard, g);            // unlocked at scope exit
 *         if (ursa_rwlock_read_lock(&rw, &g, URSA_NEVER) == 0)
 *             use(shared);
 *     }
 *
 * Built on the batch semaphore with max_readers permits: a reader takes one
 * permit, a writer takes all of them. Waiters queue in FIFO order with
 * partial assignment, so a reader that arrives while a writer waits queues
 * behind that writer (writer preference) and a writer is never starved by
 * a stream of readers. The preference is bounded: once
 * URSA_RWLOCK_WRITER_STREAK writers in a row have entered while readers
 * were queued, the next release lets every queued reader in ahead of the
 * queued writers.
 *
 * Read-mostly locks are biased towards readers: a read lock and unlock then
 * only count in the calling thread's table, with no atomic read-modify-
 * write; a writer revokes the bias first (docs/rwlock.md "Reader bias").
 *
 * The lock calls work inside a task (the task suspends), on a plain thread
 * (the thread parks on a futex); a foreign event loop uses the _start /
 * _finish pairs with a waker of its own (see ursa/wait.h). */
#ifndef URSA_RWLOCK_H
#define URSA_RWLOCK_H

#include "detail/rwlock.h"
#include "lockinfo.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* Largest max_readers ursa_rwlock_init accepts (a writer asks for all of
 * them in one request). */
#define URSA_RWLOCK_MAX_READERS URSA_SEM_REQUEST_MAX
/* max_readers used when ursa_rwlock_init is given 0. */
#define URSA_RWLOCK_DEFAULT_READERS (URSA_SEM_REQUEST_MAX >> 3)
/* Writers that may enter in a row while readers are queued before the
 * queued readers are let in ahead of the remaining writers. */
#define URSA_RWLOCK_WRITER_STREAK 16

/* A reader-writer lock: embed it, ursa_rwlock_init it. Fields private
 * (ursa/detail/rwlock.h). */
typedef struct ursa_rwlock ursa_rwlock_t;

/* Hold of a shared (read) lock: an obligation to unlock exactly once. */
typedef struct ursa_rwlock_read_guard {
    ursa_oblig_t ob;
    ursa_rwlock_t *rw; /* NULL when not holding */
    void *rtab;        /* counted in this reader table, or NULL: a permit */
    ursa_time_t since; /* when it was locked (hold times; URSA_LOCK_METRICS builds) */
} ursa_rwlock_read_guard_t;

/* Hold of the exclusive (write) lock: an obligation to unlock (or
 * downgrade) exactly once. */
typedef struct ursa_rwlock_write_guard {
    ursa_oblig_t ob;
    ursa_rwlock_t *rw; /* NULL when not holding */
    ursa_time_t since; /* when it was locked (hold times; URSA_LOCK_METRICS builds) */
} ursa_rwlock_write_guard_t;

/* Not a wait: initialises an unlocked rwlock that admits up to
 * max_readers readers at once (0 means URSA_RWLOCK_DEFAULT_READERS).
 *   0        initialised
 *   -EINVAL  rw is NULL, or max_readers > URSA_RWLOCK_MAX_READERS */
URSA_API int ursa_rwlock_init(ursa_rwlock_t *rw, uint64_t max_readers);

/* Not a wait: ursa_rwlock_init with a name, a rank and flags (see
 * ursa/lockinfo.h; attr may be NULL). Read and write locks are both
 * checked against the order. URSA_LOCK_BARGING makes writers barge
 * (docs/rwlock.md). Codes as ursa_rwlock_init, and -EINVAL for an unknown
 * flag. */
URSA_API int ursa_rwlock_init_attr(ursa_rwlock_t *rw, uint64_t max_readers,
                                   const ursa_lock_attr_t *attr);

/* Not a wait: a snapshot of rw's metrics in *out (every reader's acquire
 * counts).
 *   0         filled
 *   -ENOTSUP  built without URSA_LOCK_METRICS
 *   -EINVAL   NULL argument */
URSA_API int ursa_rwlock_stats(const ursa_rwlock_t *rw, ursa_lock_stats_t *out);

/* Not a wait: destroys an unlocked rwlock with no waiters.
 *   0        destroyed
 *   -EBUSY   held, or waiters queued (reported as misuse; nothing
 *            changed)
 *   -EINVAL  rw is NULL */
URSA_API int ursa_rwlock_destroy(ursa_rwlock_t *rw);

/* Phase 1 (wait): takes a shared lock, waiting until `deadline`, and
 * fills g. Without atomic read-modify-writes while the lock is
 * read-biased (see docs/rwlock.md "Reader bias"); otherwise lock-free (one
 * CAS) when no writer holds or waits.
 *   0            locked
 *   -EOWNERDEAD  locked, but a writer ended holding the lock (see
 *                ursa_rwlock_consistent)
 *   -EAGAIN      deadline is URSA_NOW and a writer holds or waiters are
 *                queued, or max_readers readers hold it
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -EDEADLK     URSA_LOCK_ORDER builds: rw's rank is not above every
 *                ranked lock the caller holds (reported)
 *   -ENOMEM      the caller's ledger could not grow
 *   -EINVAL      NULL, or g already holds
 * On an error g is left empty and nothing changed. */
#define ursa_rwlock_read_lock(rw, g, deadline) \
    ursa_rwlock_read_lock_at(rw, g, deadline, URSA_SITE)
URSA_API int ursa_rwlock_read_lock_at(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                                      ursa_time_t deadline, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait): takes the exclusive lock, waiting until `deadline`, and
 * fills g.
 *   0            locked
 *   -EOWNERDEAD  locked, but a writer ended holding the lock
 *   -EAGAIN      deadline is URSA_NOW and the lock is held or waited on
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -EDEADLK     lock order, as for ursa_rwlock_read_lock
 *   -ENOMEM      the caller's ledger could not grow
 *   -EINVAL      NULL, or g already holds
 * On an error g is left empty and nothing changed (permits partly
 * assigned to the wait go on to later waiters). */
#define ursa_rwlock_write_lock(rw, g, deadline) \
    ursa_rwlock_write_lock_at(rw, g, deadline, URSA_SITE)
URSA_API int ursa_rwlock_write_lock_at(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g,
                                       ursa_time_t deadline,
                                       const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): releases a shared lock.
 *   0        unlocked; g is empty
 *   -EINVAL  NULL, or g holds nothing (a double unlock: reported)
 *   -EPERM   g belongs to another task or thread (see ursa_oblig_disown) */
URSA_API int ursa_rwlock_read_unlock(ursa_rwlock_read_guard_t *g);

/* Phase 2 (hold): releases the exclusive lock, waking waiters in FIFO
 * order (or the queued readers first, see URSA_RWLOCK_WRITER_STREAK).
 * Codes as ursa_rwlock_read_unlock. */
URSA_API int ursa_rwlock_write_unlock(ursa_rwlock_write_guard_t *wg);

/* Phase 2 (hold): atomically turns the write lock held by wg into a read
 * lock held by rg: no writer can get in between. The readers queued ahead
 * of the first queued writer are let in; later ones keep waiting behind
 * that writer. The hold keeps its ledger entry and acquire site, now as a
 * read guard; wg is left empty.
 *   0        rg holds a read lock
 *   -EINVAL  NULL, wg holds nothing (reported), or rg already holds
 *   -EPERM   wg belongs to another task or thread */
URSA_API int ursa_rwlock_downgrade(ursa_rwlock_write_guard_t *wg, ursa_rwlock_read_guard_t *rg);

/* Phase 2 (hold): the scope-exit releases for
 * URSA_SCOPED(rwlock_read_guard, g) and URSA_SCOPED(rwlock_write_guard,
 * g): unlock if held, do nothing if empty. */
URSA_API void ursa_rwlock_read_guard_cleanup(ursa_rwlock_read_guard_t *g);
URSA_API void ursa_rwlock_write_guard_cleanup(ursa_rwlock_write_guard_t *g);

/* Not a wait: clears the poisoned mark after the holder repaired the
 * state.
 *   0        cleared
 *   -EINVAL  rw is NULL */
URSA_API int ursa_rwlock_consistent(ursa_rwlock_t *rw);

/* Not a wait: snapshots (racy). The number of read locks held, and
 * whether a writer holds the lock; 0 / false for NULL. */
URSA_API uint64_t ursa_rwlock_readers(const ursa_rwlock_t *rw);
URSA_API bool ursa_rwlock_is_write_locked(const ursa_rwlock_t *rw);

/* Phase 1 (wait), raw two-phase forms (calling context 3, see
 * ursa/wait.h). _start:
 *   0             locked already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the lock is granted
 *   -EINVAL       NULL rw / w / waker.fn
 * _finish, once ursa_wait_ready(w), fills g:
 *   0            locked
 *   -EOWNERDEAD  locked, but a writer ended holding the lock
 *   -EAGAIN      not granted yet (w stays queued)
 *   -ENOMEM      the caller's ledger could not grow (the lock was given
 *                back)
 *   -EINVAL      NULL, g already holds, w not a wait of this kind on rw,
 *                or already finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: nothing is held after. */
#define ursa_rwlock_read_lock_start(rw, w, ...) \
    ursa_rwlock_read_lock_start_at(rw, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_rwlock_read_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w, ursa_waker_t waker,
                                            const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_rwlock_read_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w,
                                          ursa_rwlock_read_guard_t *g) URSA_NODISCARD;
#define ursa_rwlock_write_lock_start(rw, w, ...) \
    ursa_rwlock_write_lock_start_at(rw, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_rwlock_write_lock_start_at(ursa_rwlock_t *rw, ursa_wait_t *w,
                                             ursa_waker_t waker,
                                             const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_rwlock_write_lock_finish(ursa_rwlock_t *rw, ursa_wait_t *w,
                                           ursa_rwlock_write_guard_t *g) URSA_NODISCARD;

/* ---- the biased read lock's fast paths, inline (C only) ----
 * While rw is read-biased, a read lock counts itself in the calling
 * thread's reader table and records its hold in the caller's ledger with
 * plain loads and stores, and one lookup of the context; every other case
 * calls ursa_rwlock_read_lock_at / ursa_rwlock_read_unlock (so do all read
 * locks of metrics builds and ranked locks of lock-order builds: their
 * bias.on is URSA__RWLOCK_BIAS_CALL). */
#ifndef __cplusplus
/* The kind of a fast read hold that the inline unlock may release
 * (src/sync/rwlock/lock.c): its record keeps the reader table as n. */
URSA_API extern const ursa_oblig_kind_t ursa__rwlock_fast_read_kind;
/* A fast read lock that counted itself in t and then found bias revoked:
 * uncounts itself and takes the general path. */
URSA_API int ursa__rwlock_read_revoked(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                                       ursa_time_t deadline, const ursa_site_t *site,
                                       struct ursa__rtab *t);

/* A fast read hold of rw, whose bias the caller saw on (and whose ledger
 * has room): counts the reader in t, records the hold (target and n, the
 * table, say what a leak sweep releases, from whichever thread it runs
 * on) and fills the guard. The library's ursa_rwlock_read_lock_at takes
 * the same path. */
static inline int ursa__rwlock_read_hold_fast(ursa__ctx_t *c, ursa_rwlock_t *rw,
                                              ursa_rwlock_read_guard_t *g, ursa_time_t deadline,
                                              const ursa_site_t *site, struct ursa__rtab *t)
{
    if (__builtin_expect(!ursa__rwlock_read_count(rw, t), 0))
        return ursa__rwlock_read_revoked(rw, g, deadline, site, t);
    ursa__ledger_push_inline(&c->ledger, &g->ob, &ursa__rwlock_fast_read_kind, site, rw,
                             (uint64_t)(uintptr_t)t, &rw->info);
    g->ob.kind = &ursa__rwlock_fast_read_kind;
    g->ob.site = site;
    g->rw = rw;
    g->rtab = t;
    return 0;
}

static inline int ursa__rwlock_read_lock_inline(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g,
                                                ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    struct ursa__rtab *t = ursa__rtab_cur;
    /* acquire (bias.on): the slot, and the last writer's critical section,
     * from whoever turned bias on. Bias is never on while rw is poisoned
     * (so no look at it here). */
    if (__builtin_expect(!rw || !g || g->rw || !c || !t || !ursa__ledger_room(&c->ledger) ||
                             atomic_load_explicit(&rw->bias.on, memory_order_acquire) !=
                                 URSA__RWLOCK_BIAS_INLINE,
                         0))
        return ursa_rwlock_read_lock_at(rw, g, deadline, site);
    return ursa__rwlock_read_hold_fast(c, rw, g, deadline, site, t);
}

static inline int ursa__rwlock_read_unlock_inline(ursa_rwlock_read_guard_t *g)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    /* Only the inline lock's holds have this kind (held: kind is NULL once
     * released); the library's timed or checked fast holds have another. */
    if (__builtin_expect(!g || g->ob.kind != &ursa__rwlock_fast_read_kind || !c ||
                             !ursa__oblig_is_newest(&c->ledger, &g->ob),
                         0))
        return (ursa_rwlock_read_unlock)(g);
    ursa_rwlock_t *rw = g->rw;
    struct ursa__rtab *t = (struct ursa__rtab *)g->rtab;
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->rw = NULL;
    g->rtab = NULL;
    ursa__rwlock_read_fast_exit(rw->bias.slot, t);
    return 0;
}

#undef ursa_rwlock_read_lock
#define ursa_rwlock_read_lock(rw, g, deadline) \
    ursa__rwlock_read_lock_inline(rw, g, deadline, URSA_SITE)
#define ursa_rwlock_read_unlock(g) ursa__rwlock_read_unlock_inline(g)
#endif

URSA_EXTERN_C_END

#endif
