/* ursa — a resource pool (connections, sockets, buffers) that is safe
 * under cancellation and fast under contention.
 *
 *     ursa_pool_config_t cfg = {0};
 *     cfg.factory = (ursa_pool_factory_t){conn_create, conn_destroy, conn_check, NULL, &server};
 *     cfg.max_size = 16;
 *     cfg.min_idle = 2;
 *     cfg.max_lifetime = URSA_SEC(600);
 *     ursa_pool_t *pool;
 *     if (ursa_pool_new(&pool, &cfg) != 0) ...
 *
 *     URSA_SCOPED(pool_item, it);                     // returned at scope exit
 *     if (ursa_pool_acquire(pool, &it, ursa_deadline_in(URSA_MSEC(50))) == 0)
 *         talk(it.res);                               // or ursa_pool_broken(pool, &it)
 *
 * Acquire is a two-phase wait like every ursa wait (docs/contract.md): a
 * deadline, URSA_NOW as a try, three calling contexts, and a cancel that
 * leaves nothing held. The hold is a pooled item, discharged exactly once:
 * returned, broken (destroyed) or detached (the caller keeps the resource).
 *
 * Resources are created and destroyed by the pool's own tasks, never on
 * the acquiring caller's path: a waiter takes whatever comes first, an
 * item someone returns or a new one, and a create starts only for demand
 * still unmet at that moment. See docs/pool.md. */
#ifndef URSA_POOL_H
#define URSA_POOL_H

#include "oblig.h"
#include "rt.h"
#include "wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A pool: made by ursa_pool_new, freed by ursa_pool_free. Opaque. */
typedef struct ursa_pool ursa_pool_t;

/* The user's resource type, through a context pointer. */
typedef struct ursa_pool_factory {
    /* Makes a resource into *res: 0, or a negative errno (the pool backs
     * off and retries while there is demand). Runs in one of the pool's
     * tasks, so it may wait (ursa I/O, sleeps). Required. */
    int (*create)(void *ctx, void **res);
    /* Ends a resource. Runs in the pool's housekeeping task (it may
     * wait), or in ursa_pool_free's caller for what is left then.
     * Required. */
    void (*destroy)(void *ctx, void *res);
    /* Optional health check: 0 healthy, a negative errno if not (the
     * resource is then destroyed). Runs in the acquiring caller
     * (check_on_acquire) or in the housekeeping task (check_interval);
     * it may wait. */
    int (*check)(void *ctx, void *res);
    /* Optional, on return before the resource goes back to idle: 0 to
     * keep it, a negative errno to destroy it instead (as broken). Runs
     * in the returning caller. */
    int (*reset)(void *ctx, void *res);
    void *ctx;
} ursa_pool_factory_t;

/* How ursa_pool_new treats warming up to min_idle. */
typedef enum ursa_pool_warmup {
    /* Default: returns at once; min_idle is filled in the background. */
    URSA_POOL_WARMUP_BACKGROUND = 0,
    /* Waits for one attempt per missing item and keeps what succeeded. */
    URSA_POOL_WARMUP_BEST_EFFORT,
    /* Waits; the first failed create fails ursa_pool_new with its code. */
    URSA_POOL_WARMUP_FAIL_FAST,
    /* Waits until min_idle items exist (failed creates are retried with
     * backoff), or warmup_timeout passes (-ETIMEDOUT). */
    URSA_POOL_WARMUP_REQUIRE_MIN,
} ursa_pool_warmup_t;

/* Why a resource was destroyed (ursa_pool_stats_t.destroyed[reason]). */
typedef enum ursa_pool_reason {
    URSA_POOL_BROKEN = 0,      /* ursa_pool_broken, a failed reset, or a leaked item */
    URSA_POOL_IDLE_TIMEOUT,    /* idle longer than idle_timeout, above min_idle */
    URSA_POOL_MAX_LIFETIME,    /* older than its (jittered) max_lifetime */
    URSA_POOL_FAILED_CHECK,    /* the health check failed */
    URSA_POOL_CLOSED,          /* the pool was closed */
    URSA_POOL_SHRINK,          /* ursa_pool_resize lowered max_size */
    URSA_POOL_REASONS
} ursa_pool_reason_t;

/* What an event callback is told. */
typedef enum ursa_pool_event_kind {
    URSA_POOL_CREATED = 0, /* res was made */
    URSA_POOL_CREATE_FAILED, /* a create failed with `error` */
    URSA_POOL_DESTROYED,   /* res is about to be destroyed, for `reason` */
} ursa_pool_event_kind_t;

typedef struct ursa_pool_event {
    ursa_pool_event_kind_t kind;
    ursa_pool_reason_t reason; /* DESTROYED only */
    void *res;                 /* CREATED, DESTROYED */
    int error;                 /* CREATE_FAILED: the create's negative errno */
} ursa_pool_event_t;

/* Configuration. Zero is a default everywhere but factory and max_size;
 * durations are in ns, 0 meaning "off". */
typedef struct ursa_pool_config {
    ursa_pool_factory_t factory;
    /* Runtime for the pool's tasks (creates, housekeeping). NULL: the
     * runtime of the calling task; ursa_pool_new on a plain thread needs
     * one here. */
    ursa_rt_t *rt;
    uint32_t max_size;       /* items at most, in use + idle + being created (>= 1) */
    uint32_t min_idle;       /* idle items kept ready (<= max_size) */
    uint32_t max_connecting; /* creates at a time; 0 means 1 */
    ursa_time_t idle_timeout; /* an idle item above min_idle is destroyed after
                               * this long (between 1x and 1.5x: idle time is
                               * taken by the housekeeper, not on return) */
    ursa_time_t max_lifetime; /* an item is destroyed at this age: when idle,
                               * or when it is returned */
    ursa_time_t lifetime_jitter; /* up to this much is taken off each item's
                                  * lifetime at random; 0 means max_lifetime/10 */
    bool check_on_acquire;     /* run factory.check on a blocking acquire... */
    ursa_time_t check_idle_after; /* ...only for items idle longer than this */
    ursa_time_t check_interval; /* check idle items this often, in the
                                 * housekeeping task */
    ursa_pool_warmup_t warmup;
    ursa_time_t warmup_timeout; /* for the waiting warm-ups; 0 means none */
    ursa_time_t backoff_min;   /* first delay after a failed create; 0 means 10 ms */
    ursa_time_t backoff_max;   /* the delay doubles up to this; 0 means 5 s */
    /* While creates keep failing, waiting acquirers get the last create
     * error at once instead of waiting out their deadline. */
    bool fail_fast;
    /* Optional: called for each create, failed create and destroy, from
     * the pool task that did it. */
    void (*on_event)(void *ctx, const ursa_pool_event_t *ev);
    void *event_ctx;
} ursa_pool_config_t;

/* Counts and a snapshot of the state (ursa_pool_stats). The tag is not
 * the function's name: C++ would take the function to hide the struct. */
typedef struct ursa_pool_snapshot {
    uint32_t size;     /* items that exist or are being created */
    uint32_t idle;     /* ready to be acquired */
    uint32_t in_use;   /* held by callers */
    uint32_t waiters;  /* acquires queued */
    uint32_t creating; /* creates in flight */
    uint32_t max_size, min_idle;
    uint64_t acquires;        /* successful acquires */
    uint64_t timeouts;        /* acquires that ended with -ETIMEDOUT */
    uint64_t creates;         /* resources made */
    uint64_t create_failures; /* creates that failed */
    ursa_time_t wait_total;   /* ns spent queued, by acquires that queued */
    ursa_time_t wait_max;
    uint64_t destroyed[URSA_POOL_REASONS]; /* by reason */
} ursa_pool_stats_t;

/* The hold: one pooled resource, to be returned, broken or detached
 * exactly once. */
typedef struct ursa_pool_item {
    ursa_oblig_t ob;
    void *res;                    /* the resource; NULL when holding nothing */
    ursa_pool_t *pool;            /* its pool; NULL when holding nothing */
    struct ursa__pool_slot *slot; /* private */
} ursa_pool_item_t;

/* Not a wait, unless cfg->warmup waits (then it waits for the warm-up,
 * up to warmup_timeout): makes a pool and starts its housekeeping task.
 *   0           *out is the pool
 *   -EINVAL     NULL out or cfg; no create or destroy; max_size 0;
 *               min_idle > max_size; a negative duration; an unknown
 *               warmup; no runtime (a plain thread without cfg->rt)
 *   -ENOMEM     out of memory
 *   -ETIMEDOUT  REQUIRE_MIN: min_idle items did not exist in time
 *   < 0         FAIL_FAST: the code of the first failed create
 * On an error nothing is left behind. */
URSA_API int ursa_pool_new(ursa_pool_t **out, const ursa_pool_config_t *cfg) URSA_NODISCARD;

/* Not a wait (it waits for the pool's tasks to end): closes the pool,
 * stops its tasks (a create in flight is cancelled), destroys every idle
 * resource and frees the pool. Call it while the pool's runtime runs (or
 * after ursa_rt_free).
 *   0        freed
 *   -EBUSY   items are still in use (reported as misuse; nothing freed,
 *            the pool is closed)
 *   -EINVAL  p is NULL */
URSA_API int ursa_pool_free(ursa_pool_t *p);

/* Phase 1 (wait): acquires an item into it: an idle one (this thread's
 * most recently returned first), else the first to come, returned or
 * newly created, in FIFO order with the other waiters. Works in a task
 * (suspends) and on a plain thread (parks). With check_on_acquire an item
 * that fails its check is destroyed and the wait goes on.
 *   0           it holds an item; it->res is the resource
 *   -EAGAIN     deadline is URSA_NOW and no item is idle (or waiters are
 *               queued ahead)
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EPIPE      the pool is closed
 *   -ENOMEM     the caller's ledger could not grow
 *   -EINVAL     NULL, or it already holds
 *   < 0         fail_fast: the last create's error (creates are failing)
 * On an error nothing is held, and a create started for this acquire
 * still completes: its item goes to the next waiter or to idle. */
#define ursa_pool_acquire(p, it, deadline) ursa_pool_acquire_at(p, it, deadline, URSA_SITE)
URSA_API int ursa_pool_acquire_at(ursa_pool_t *p, ursa_pool_item_t *it, ursa_time_t deadline,
                                  const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form (calling context 3, ursa/wait.h).
 * The raw form does not run check_on_acquire (it must not wait); the
 * periodic check still covers idle items. _start:
 *   0             an item is granted already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when an item is granted or the wait fails
 *   -EPIPE        the pool is closed
 *   -EINVAL       NULL p / w / waker.fn
 *   < 0           fail_fast: the last create's error
 * _finish, once ursa_wait_ready(w), fills it:
 *   0        it holds the item
 *   -EPIPE   the pool closed first
 *   -EAGAIN  not decided yet (w stays queued)
 *   -ENOMEM  the caller's ledger could not grow (the item went back)
 *   -EINVAL  NULL, it already holds, w not a wait on p, or already
 *            finished / cancelled
 *   < 0      fail_fast: the create error that ended the wait
 * Or ursa_wait_cancel(w) instead of _finish: an item granted to w goes
 * on to the next waiter (or to idle); nothing is held after. */
#define ursa_pool_acquire_start(p, w, ...) ursa_pool_acquire_start_at(p, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_pool_acquire_start_at(ursa_pool_t *p, ursa_wait_t *w, ursa_waker_t waker,
                                        const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_pool_acquire_finish(ursa_pool_t *p, ursa_wait_t *w,
                                      ursa_pool_item_t *it) URSA_NODISCARD;

/* Phase 2 (hold): returns the item to p: after factory.reset (a failed
 * reset destroys it as broken), to the first waiter, or to idle (this
 * thread's list, newest first). An item past its lifetime, or of a closed
 * or shrinking pool, is destroyed instead.
 *   0        returned; it is empty
 *   -EINVAL  NULL, it holds nothing (a second return: reported), or it
 *            came from another pool (nothing changed)
 *   -EPERM   it belongs to another task or thread (ursa_oblig_disown) */
URSA_API int ursa_pool_return(ursa_pool_t *p, ursa_pool_item_t *it);

/* Phase 2 (hold): gives the item back as broken: the pool destroys it (in
 * its housekeeping task) and creates a replacement if waiters or min_idle
 * ask for one. Codes as ursa_pool_return. */
URSA_API int ursa_pool_broken(ursa_pool_t *p, ursa_pool_item_t *it);

/* Phase 2 (hold): the caller keeps the resource (*res, may be NULL); the
 * pool forgets it and its place is free for a new item. Codes as
 * ursa_pool_return. */
URSA_API int ursa_pool_detach(ursa_pool_t *p, ursa_pool_item_t *it, void **res);

/* Phase 2 (hold): the scope-exit return for URSA_SCOPED(pool_item, it):
 * returns the item if it holds one, does nothing if empty. */
URSA_API void ursa_pool_item_cleanup(ursa_pool_item_t *it);

/* Not a wait: closes p: acquires fail with -EPIPE from now on, queued
 * waiters are woken with -EPIPE, idle items are destroyed, and items in
 * use are destroyed when they are returned. Idempotent.
 *   0        closed
 *   -EINVAL  p is NULL */
URSA_API int ursa_pool_close(ursa_pool_t *p);

/* Phase 1 (wait; no hold follows): waits until no item is in use, no
 * create is in flight and no destroy is pending (after ursa_pool_close:
 * until every resource is destroyed).
 *   0           drained
 *   -EAGAIN     deadline is URSA_NOW and it is not drained
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     p is NULL */
#define ursa_pool_drain(p, deadline) ursa_pool_drain_at(p, deadline, URSA_SITE)
URSA_API int ursa_pool_drain_at(ursa_pool_t *p, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Not a wait: sets max_size and min_idle. Growing lets queued waiters'
 * creates start; shrinking destroys idle items over the new max_size at
 * once and items in use over it when they are returned.
 *   0        set
 *   -EINVAL  p is NULL, max_size 0, or min_idle > max_size
 *   -EPIPE   the pool is closed */
URSA_API int ursa_pool_resize(ursa_pool_t *p, uint32_t max_size, uint32_t min_idle);

/* Not a wait: counts and a snapshot of p's state in *out.
 *   0        filled
 *   -EINVAL  NULL argument */
URSA_API int ursa_pool_stats(ursa_pool_t *p, ursa_pool_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
