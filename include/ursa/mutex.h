/* ursa — async mutex: FIFO (or opt-in barging, URSA_LOCK_BARGING in
 * ursa/lockinfo.h), poisoning, three calling contexts.
 *
 *     ursa_mutex_t m;  ursa_mutex_init(&m);
 *     {
 *         URSA_SCOPED(mutex_guard, g);             // unlocked at scope exit
 *         if (ursa_mutex_lock(&m, &g, ursa_deadline_in(URSA_MSEC(5))) == 0)
 *             counter++;
 *     }
 *
 * The lock call works inside a task (the task suspends), on a plain thread
 * (the thread parks on a futex); a foreign event loop uses the _start /
 * _finish pair with a waker of its own. */
#ifndef URSA_MUTEX_H
#define URSA_MUTEX_H

#include "detail/mutex.h"
#include "lockinfo.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A mutex: embed it, ursa_mutex_init it. Fields private
 * (ursa/detail/mutex.h). */
typedef struct ursa_mutex ursa_mutex_t;

/* The hold: proof of ownership, an obligation to unlock exactly once. */
typedef struct ursa_mutex_guard {
    ursa_oblig_t ob;
    ursa_mutex_t *mutex; /* NULL when not holding */
    ursa_time_t since; /* when it was locked (hold times; URSA_LOCK_METRICS builds) */
} ursa_mutex_guard_t;

/* Not a wait: initialises an unlocked mutex.
 *   0        initialised
 *   -EINVAL  m is NULL */
URSA_API int ursa_mutex_init(ursa_mutex_t *m);

/* Not a wait: ursa_mutex_init with a name, a rank and flags
 * (URSA_LOCK_BARGING; see ursa/lockinfo.h; attr may be NULL).
 *   0        initialised
 *   -EINVAL  m is NULL, or an unknown flag */
URSA_API int ursa_mutex_init_attr(ursa_mutex_t *m, const ursa_lock_attr_t *attr);

/* Not a wait: a snapshot of m's metrics in *out.
 *   0         filled
 *   -ENOTSUP  built without URSA_LOCK_METRICS
 *   -EINVAL   NULL argument */
URSA_API int ursa_mutex_stats(const ursa_mutex_t *m, ursa_lock_stats_t *out);

/* Not a wait: destroys an unlocked mutex with no waiters.
 *   0        destroyed
 *   -EBUSY   locked or waiters queued (reported as misuse; nothing
 *            changed)
 *   -EINVAL  m is NULL */
URSA_API int ursa_mutex_destroy(ursa_mutex_t *m);

/* Phase 1 (wait): locks m, waiting until `deadline`, and fills guard g.
 * Works in a task (suspends) and on a plain thread (parks).
 *   0            locked
 *   -EOWNERDEAD  locked, but the previous owner ended holding it (the
 *                state may be inconsistent; see ursa_mutex_consistent)
 *   -EAGAIN      deadline is URSA_NOW and m is locked
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -EDEADLK     URSA_LOCK_ORDER builds: m's rank is not above every
 *                ranked lock the caller holds (reported)
 *   -ENOMEM      the caller's ledger could not grow
 *   -EINVAL      NULL, or g already holds a lock
 * On an error g is left empty and nothing is held. */
#define ursa_mutex_lock(m, g, deadline) ursa_mutex_lock_at(m, g, deadline, URSA_SITE)
URSA_API int ursa_mutex_lock_at(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): unlocks, handing the lock to the oldest waiter (barging:
 * freeing it and waking the oldest waiter).
 *   0        unlocked; g is empty
 *   -EINVAL  NULL, or g holds nothing (a double unlock: reported)
 *   -EPERM   g belongs to another task or thread (see ursa_oblig_disown) */
URSA_API int ursa_mutex_unlock(ursa_mutex_guard_t *g);

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(mutex_guard, g):
 * unlocks if held, does nothing if empty. */
URSA_API void ursa_mutex_guard_cleanup(ursa_mutex_guard_t *g);

/* Not a wait: clears the poisoned mark after the holder repaired the
 * state.
 *   0        cleared
 *   -EINVAL  m is NULL */
URSA_API int ursa_mutex_consistent(ursa_mutex_t *m);

/* Not a wait: true while some owner holds m (a racy snapshot). */
URSA_API bool ursa_mutex_is_locked(const ursa_mutex_t *m);

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start:
 *   0             locked already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the lock is granted
 *   -EINVAL       NULL m / w / waker.fn
 * _finish, once ursa_wait_ready(w), fills g:
 *   0            locked
 *   -EOWNERDEAD  locked, but the previous owner ended holding it
 *   -EAGAIN      not granted yet (w stays queued)
 *   -ENOMEM      the caller's ledger could not grow (the lock was given
 *                back)
 *   -EINVAL      NULL, g already holds, w not a wait on m, or already
 *                finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: nothing is held after. */
#define ursa_mutex_lock_start(m, w, ...) ursa_mutex_lock_start_at(m, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_mutex_lock_start_at(ursa_mutex_t *m, ursa_wait_t *w, ursa_waker_t waker,
                                      const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_mutex_lock_finish(ursa_mutex_t *m, ursa_wait_t *w,
                                    ursa_mutex_guard_t *g) URSA_NODISCARD;

/* ---- the bias owner's fast paths, inline (C only) ----
 * The context a mutex is biased for (src/sync/mutex_bias.h) locks and
 * unlocks here with plain loads and stores and one lookup of the context;
 * every other case calls ursa_mutex_lock_at / ursa_mutex_unlock. */
#ifndef __cplusplus
/* The kind of a fast hold (src/sync/mutex.c). */
URSA_API extern const ursa_oblig_kind_t ursa__mutex_bias_kind;
/* A fast lock that found bias revoked after its store: backs out and
 * takes the general path. */
URSA_API int ursa__mutex_lock_backout(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                      ursa_time_t deadline, const ursa_site_t *site);
/* ursa_mutex_lock_at for a caller whose ledger has room and that holds no
 * bias on m (the checks done). */
URSA_API int ursa__mutex_lock_sema(ursa_mutex_t *m, ursa_mutex_guard_t *g, ursa_time_t deadline,
                                   const ursa_site_t *site);
/* ursa_mutex_unlock for a guard that holds the semaphore's permit and is
 * the caller's newest hold. */
URSA_API int ursa__mutex_unlock_sema(ursa_mutex_guard_t *g);

static inline int ursa__mutex_lock_inline(ursa_mutex_t *m, ursa_mutex_guard_t *g,
                                          ursa_time_t deadline, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!m || !g || g->mutex || !c || !ursa__ledger_room(&c->ledger), 0))
        return ursa_mutex_lock_at(m, g, deadline, site);
    int in = ursa__mutex_bias_enter(m, c, g);
    if (__builtin_expect(in <= 0, 0))
        return in ? ursa__mutex_lock_backout(m, g, deadline, site)
                  : ursa__mutex_lock_sema(m, g, deadline, site);
    ursa__ledger_push_inline(&c->ledger, &g->ob, &ursa__mutex_bias_kind, site, m, 1,
                             &m->info);
    g->ob.kind = &ursa__mutex_bias_kind;
    g->ob.site = site;
    g->mutex = m;
    /* relaxed: set before the leaked owner's release of held, which our
     * acquire of it synchronised with. */
    return atomic_load_explicit(&m->poisoned, memory_order_relaxed) ? -EOWNERDEAD : 0;
}

static inline int ursa__mutex_unlock_inline(ursa_mutex_guard_t *g)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!g || !g->mutex || !c || !ursa__oblig_is_newest(&c->ledger, &g->ob), 0))
        return (ursa_mutex_unlock)(g);
    if (__builtin_expect(g->ob.kind != &ursa__mutex_bias_kind, 0))
        return ursa__mutex_unlock_sema(g);
    ursa_mutex_t *m = g->mutex;
    ursa__ledger_pop(&c->ledger, &g->ob);
    g->mutex = NULL;
    ursa__mutex_bias_exit(m);
    return 0;
}

#undef ursa_mutex_lock
#define ursa_mutex_lock(m, g, deadline) ursa__mutex_lock_inline(m, g, deadline, URSA_SITE)
#define ursa_mutex_unlock(g) ursa__mutex_unlock_inline(g)
#endif

URSA_EXTERN_C_END

#endif
