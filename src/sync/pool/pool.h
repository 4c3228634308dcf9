/* The pool's object and what its files share.
 *
 * Items. Each resource lives in a slot (ursa__pool_slot_t). Slots are
 * never freed before the pool: a destroyed resource's slot goes to a free
 * list and is reused by a later create, so a pointer to a slot is always
 * safe to follow, however stale. A slot's `state` says who has it: IDLE
 * (anyone may take it with one CAS IDLE -> BUSY), BUSY (a caller holds it,
 * or the pool is deciding where it goes), MAINT (the housekeeper checks
 * it), DOOMED (to be destroyed), FREE (no resource).
 *
 * Fast path (local.h). Every thread that uses the pool gets a small LIFO
 * of slots it returned (its idle list, newest first), biased to it: a
 * slot idle *on* that list (its state says IDLE and the list's number) is
 * taken by the owner thread with a plain load and store of its state, and
 * a return pushes the slot and stores its state idle on the list, all
 * without an atomic RMW or a CPU fence. Each
 * of these runs in a window: the owner stores its list's `busy` = 1, then
 * loads the gate (only a compiler fence between: membarrier is the CPU
 * half), and leaves the window with busy = 0 (release). A list may hold
 * stale entries (a slot taken by a scan since, or returned by another
 * thread): the state tells.
 *
 * Revoking. Anyone else who takes an idle slot (a waiter's scan, close,
 * shrink, the housekeeper) first revokes the bias (ursa__pool_revoke_begin):
 * it adds a REVOKER to the gate, runs membarrier, and waits until no list
 * is busy. From then on until ursa__pool_revoke_end every owner window
 * sees the gate set and takes the slow path; every window that missed it
 * has ended, its writes seen. This is the asymmetric Dekker of the
 * rwlock's reader bias and the mpsc send bias (core/membarrier.h). Without
 * membarrier (or with URSA_POOL_NO_MEMBARRIER set) the windows run a
 * seq_cst fence instead and the revoker needs none.
 *
 * The gate word. `gate` holds CLOSED, OVER (more items than max_size),
 * DRAIN (someone waits in ursa_pool_drain), the number of queued waiters
 * and the number of revokers. An acquire takes the fast path only while
 * CLOSED, the waiter and the revoker counts are clear (no barging past
 * the queue); a return only while the gate is 0.
 *
 * Waiters (waiters.c). The core wait queue (core/waitq.h), whose lock is
 * the pool's lock: everything "under the lock" below holds it. A grant
 * names its slot in the waiter's 32-bit `got` by the slot's id, an index
 * into the pool's id table. The first waiter counts itself in the gate
 * and then, revoking, scans every slot for an idle one, both under the
 * lock; a fast return checks the gate in its window before it stores
 * IDLE. So either the waiter finds the slot, or the returner sees the
 * waiter and hands the slot over under the lock. A later waiter queues
 * behind one that did so (the gate has held a waiter ever since).
 * Everything that gives a slot away under the lock goes through
 * ursa__pool_offer_locked, which grants the oldest waiter in one place
 * (ursa__pool_grant_locked, which takes the waiter's select claim as
 * every grant path must) or makes the slot idle on no list.
 *
 * Creates (create.c). Pool-owned creator tasks, at most max_connecting,
 * spawned by the housekeeper. Before each create a creator asks, under the
 * lock, whether it is still wanted: waiters not covered by creates in
 * flight, or min_idle not met (HikariCP's elision). A create is never
 * cancelled by an acquire that gives up: its item goes to the next waiter
 * or to idle. Failures back off with jitter; one create at a time then.
 *
 * Housekeeping (maintain.c). One task per pool: spawns and reaps creators,
 * destroys doomed resources (the graveyard: every destroy runs there, so
 * a return or a leak sweep never waits for one), and tends idle items
 * (idle timeout, max lifetime, periodic checks).
 *
 * Counts under the lock: size (slots in use, idle, being checked, being
 * created; the graveyard is not counted), creating, creators, graves
 * (doomed, not yet destroyed). Idle and in-use counts are taken by
 * scanning the slots. */
#ifndef URSA_SYNC_POOL_POOL_H
#define URSA_SYNC_POOL_POOL_H

#include "ursa/notify.h"
#include "ursa/pool.h"

#include "../../core/ctx.h"
#include "../hold.h"
#include "../../core/wait_steps.h"

enum {
    URSA__POOL_FREE = 0,
    URSA__POOL_IDLE,
    URSA__POOL_BUSY,
    URSA__POOL_MAINT,
    URSA__POOL_DOOMED, /* in the graveyard */
};

/* The state of a slot idle on idle list i (see the top): IDLE in the low
 * byte, i + 1 above it; plain IDLE is idle on no list. */
#define URSA__POOL_IDLE_ON(i) (URSA__POOL_IDLE | ((uint32_t)(i) + 1) << 8)

/* Whether a state is idle (on a list or not). */
static inline bool ursa__pool_is_idle(uint32_t st)
{
    return (st & 0xff) == URSA__POOL_IDLE;
}

/* The gate's bits; each queued waiter adds URSA__POOL_WAITER. */
#define URSA__POOL_CLOSED ((uint64_t)1)
#define URSA__POOL_OVER ((uint64_t)2)
#define URSA__POOL_DRAIN ((uint64_t)4)
#define URSA__POOL_WAITER ((uint64_t)8)
/* Each revoker (see the top) adds this, above any waiter count. */
#define URSA__POOL_REVOKER ((uint64_t)1 << 40)
/* What sends an acquire to the slow path: closed, waiters queued, or a
 * revoker at work. */
#define URSA__POOL_ACQUIRE_SLOW (~(URSA__POOL_OVER | URSA__POOL_DRAIN))

#define URSA__POOL_LOCALS 16 /* per-thread idle lists (a power of two) */
/* With min_idle, how often the housekeeper looks for idle items the fast
 * path took (it does not count them: that would cost every acquire). */
#define URSA__POOL_REFILL_LOOK URSA_SEC(1)
#define URSA__POOL_LOCAL_CAP 8

typedef struct ursa__pool_slot {
    _Atomic uint32_t state;
    _Atomic bool evict;             /* past its lifetime while held */
    _Atomic ursa_time_t idle_since; /* 0: returned, not yet seen idle */
    ursa_time_t expires_at;         /* URSA_NEVER without max_lifetime */
    ursa_time_t checked_at;         /* last health check (or creation) */
    void *res;
    ursa_pool_t *pool;
    ursa_pool_reason_t reason;      /* in the graveyard: why */
    struct ursa__pool_slot *all_next; /* every slot ever made; set once */
    struct ursa__pool_slot *link;     /* free list or graveyard (under lock) */
    uint32_t id;                      /* its index in the pool's id table; set once */
} ursa__pool_slot_t;

/* The id table: chunk k holds the slots with ids 2^k - 1 .. 2^(k+1) - 2,
 * so a chunk, once made, never moves and an id is found without the lock
 * by whoever was told it under the lock. */
#define URSA__POOL_ID_CHUNKS 32

/* One thread's idle list. Only the owner thread touches n and items;
 * owner is read by anyone (to find its own), busy by revokers. */
typedef struct ursa__pool_local {
    _Atomic uint64_t owner;    /* a thread uid (ursa__thread_uid), 0 if free */
    _Atomic uint32_t busy;     /* 1: the owner is in a fast-path window */
    uint32_t idle_on;          /* URSA__POOL_IDLE_ON(its index); set once */
    _Atomic uint64_t acquires; /* the owner's acquires (owner writes) */
    uint32_t n;
    ursa__pool_slot_t *items[URSA__POOL_LOCAL_CAP]; /* items[n - 1] newest */
} __attribute__((aligned(128))) ursa__pool_local_t;

/* A creator task's record (the housekeeper's). */
typedef struct ursa__pool_creator {
    ursa_pool_t *pool;
    ursa_task_t *task; /* NULL: no task here */
    bool done;         /* under lock: it has left its loop */
} ursa__pool_creator_t;

struct ursa_pool {
    _Atomic uint64_t gate; /* alone on its line: local[] is 128-aligned */
    ursa__pool_local_t local[URSA__POOL_LOCALS];

    /* Under lock. */
    ursa__waitq_t q;              /* waiters, FIFO; its lock is the pool's */
    ursa__pool_slot_t **ids[URSA__POOL_ID_CHUNKS]; /* slots by id (see above) */
    uint32_t nslots;              /* slots ever made: the next id */
    uint32_t size, creating, creators, graves, drainers;
    uint32_t max_size, min_idle;
    ursa__pool_slot_t *free_slots, *graveyard;
    uint32_t failures;            /* creates failed in a row */
    int last_error, first_error;  /* of creates (negative errno) */
    int failing;                  /* fail_fast: the error acquires get, or 0 */
    ursa_time_t retry_at;         /* no create before this after a failure */
    uint64_t rng;
    uint64_t warm_ok, warm_failed; /* creates since the pool was made */
    bool closed, stopping;

    /* Set once at creation. */
    ursa_pool_config_t cfg;
    bool vet_on_acquire; /* blocking acquires run factory.check */
    bool stamp_returns;  /* returns record when they went idle (check_idle_after) */
    bool track_idle;     /* idle_since is read (idle_timeout or stamp_returns) */
    bool asym;           /* membarrier orders the fast path's windows (see the top) */
    ursa__pool_creator_t *creator; /* cfg.max_connecting records (housekeeper's) */
    ursa_task_t *housekeeper;
    _Atomic bool housekeeper_gone; /* it ended (cancelled by a stopping runtime) */
    ursa_notify_t kick;           /* wakes the housekeeper */
    ursa_notify_t changed;        /* drain and warm-up waiters */
    _Atomic(ursa__pool_slot_t *) all; /* every slot ever made, newest first */

    /* Counters (relaxed atomics: statistics). */
    _Atomic uint64_t shared_acquires, timeouts, creates, create_failures;
    _Atomic uint64_t destroyed[URSA_POOL_REASONS];
    _Atomic ursa_time_t wait_total, wait_max;
};

/* What to do once the lock is dropped: wake decided waiters, kick the
 * housekeeper, tell drain and warm-up waiters. */
typedef struct ursa__pool_after {
    ursa__wake_batch_t wake;
    bool kick, changed;
} ursa__pool_after_t;

/* ---- release.c ---- */

/* The hold's kind: a leaked item goes back as broken. */
extern const ursa_oblig_kind_t ursa__pool_item_kind;

/* ---- waiters.c: the queue, and where a slot goes ---- */

extern const ursa__wait_ops_t ursa__pool_acquire_ops;

/* Starts an acquire on w (initialised, owner unset) after the fast path
 * failed: 0 (an idle slot was found: w is GRANTED with it), -EINPROGRESS
 * (queued), -EAGAIN (`now` and nothing idle), -EPIPE (closed), or the
 * fail_fast error. */
int ursa__pool_enqueue(ursa_pool_t *p, ursa__waiter_t *w, bool now);

/* Under the lock: gives slot s (the pool's: BUSY) to the first waiter,
 * which is returned decided and unlinked (the caller wakes it after
 * unlocking); NULL if nobody waits. The one place a waiter is granted. */
ursa__waiter_t *ursa__pool_grant_locked(ursa_pool_t *p, ursa__pool_slot_t *s);

/* Under the lock: s (BUSY) goes where it belongs: destroyed if the pool
 * is closed or over max_size or s is past its lifetime, else to the
 * first waiter, else idle. */
void ursa__pool_settle_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa__pool_after_t *a);

/* Under the lock: s (BUSY or MAINT, the caller's) is granted or made idle. */
void ursa__pool_offer_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa__pool_after_t *a);

/* Under the lock: fails every queued waiter with err (a negative errno). */
void ursa__pool_fail_waiters_locked(ursa_pool_t *p, int err, ursa__pool_after_t *a);

/* Under the lock: s leaves the pool's count and goes to the graveyard
 * (the housekeeper destroys it, for `reason`). */
void ursa__pool_doom_locked(ursa_pool_t *p, ursa__pool_slot_t *s, ursa_pool_reason_t reason,
                            ursa__pool_after_t *a);

/* Under the lock: the pool lost one slot (a doom, a detach): clears OVER
 * once size fits, and asks for a create if one is wanted now. */
void ursa__pool_shrunk_locked(ursa_pool_t *p, ursa__pool_after_t *a);

/* Under the lock and a revoke: takes an idle slot (a scan), or NULL. A
 * slot found past its lifetime is doomed on the way. */
ursa__pool_slot_t *ursa__pool_scan_take_locked(ursa_pool_t *p, ursa__pool_after_t *a);

/* Drops the lock, then does what `a` says. */
void ursa__pool_unlock(ursa_pool_t *p, ursa__pool_after_t *a);

/* s (BUSY, the caller's) goes where ursa__pool_settle_locked says. */
void ursa__pool_settle(ursa_pool_t *p, ursa__pool_slot_t *s);

/* s (the caller's) is destroyed for `reason`. */
void ursa__pool_doom(ursa_pool_t *p, ursa__pool_slot_t *s, ursa_pool_reason_t reason);

/* Revoking the idle lists' bias (see the top): after begin and until end,
 * no owner takes or returns a slot on its fast path, and every idle slot
 * is seen idle. Nests; may be called with or without the lock. */
void ursa__pool_revoke_begin(ursa_pool_t *p);
void ursa__pool_revoke_end(ursa_pool_t *p);

/* ---- create.c ---- */

/* Under the lock: whether a create would serve someone now (see the top). */
bool ursa__pool_wants_create_locked(ursa_pool_t *p);

/* Under the lock: reserves n creates (size and creating; n = -1 gives
 * one back). */
void ursa__pool_reserve_locked(ursa_pool_t *p, int n);

/* A creator task's body; arg is its ursa__pool_creator_t, whose first
 * create the spawner reserved. */
void *ursa__pool_creator(void *arg);

/* Under the lock: slots idle now (a scan). */
uint32_t ursa__pool_idle_locked(ursa_pool_t *p);

/* Under the lock: a number from the pool's PRNG in [0, n) (0 if n is 0). */
uint64_t ursa__pool_random_locked(ursa_pool_t *p, uint64_t n);

/* ---- maintain.c ---- */

/* The housekeeping task's body; arg is the pool. */
void *ursa__pool_housekeeper(void *arg);

/* Destroys every doomed resource (the housekeeper, or ursa_pool_free
 * once it has ended). */
void ursa__pool_bury(ursa_pool_t *p);

/* ---- stats.c ---- */

/* Tells the user's event callback, if any. */
void ursa__pool_event(ursa_pool_t *p, ursa_pool_event_kind_t kind, ursa_pool_reason_t reason,
                      void *res, int error);

/* Counts an acquire that queued and got an item after `ns`. */
void ursa__pool_count_wait(ursa_pool_t *p, ursa_time_t ns);

/* Counts an acquire that timed out. */
void ursa__pool_count_timeout(ursa_pool_t *p);

/* Counts one acquire that did not come from the fast path (which counts
 * its own in the thread's idle list). */
void ursa__pool_count_acquire(ursa_pool_t *p);

/* ---- shared steps ---- */

static inline void ursa__pool_lock(ursa_pool_t *p)
{
    (void)ursa__waitq_lock(&p->q); /* the pool keeps no bits in the lock word */
}

/* Drops the lock with nothing to do after (ursa__pool_unlock does more). */
static inline void ursa__pool_unlock_only(ursa_pool_t *p)
{
    ursa__waitq_unlock(&p->q, 0);
}

/* The slot granted as `id` (told under the lock; its chunk never moves). */
static inline ursa__pool_slot_t *ursa__pool_slot_of(ursa_pool_t *p, uint32_t id)
{
    unsigned k = 31u - (unsigned)__builtin_clz(id + 1);
    return p->ids[k][id + 1 - (1u << k)];
}

/* Slots, newest first, for a scan (lock-free: links are set once, before
 * the slot is published with a release store of `all`). */
static inline ursa__pool_slot_t *ursa__pool_first(ursa_pool_t *p)
{
    /* acquire: pairs with the release that published the slot. */
    return atomic_load_explicit(&p->all, memory_order_acquire);
}

/* A slot coming back from a caller starts its idle time: now, when the
 * check on acquire needs to know it, else 0 (the housekeeper stamps it
 * when it first sees it idle); nothing when nobody reads it (no
 * idle_timeout, no check_idle_after). Published by the store that makes
 * it idle. */
static inline void ursa__pool_stamp_return(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    if (p->track_idle)
        /* relaxed: see above. */
        atomic_store_explicit(&s->idle_since, p->stamp_returns ? ursa_now() : 0,
                              memory_order_relaxed);
}

/* Queued waiters, from the gate (a snapshot). */
static inline uint32_t ursa__pool_nwait(uint64_t gate)
{
    return (uint32_t)((gate & (URSA__POOL_REVOKER - 1)) / URSA__POOL_WAITER);
}

#endif
