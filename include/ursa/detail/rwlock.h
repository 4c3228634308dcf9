/* ursa — private layout of a reader-writer lock (ursa/rwlock.h). Public
 * only so that it can be embedded: every field is private, read and
 * written by src/sync/rwlock/. The reader bias's tables and the inline
 * helpers below are the biased read lock's fast path (ursa/rwlock.h;
 * src/sync/rwlock/reader_tables.h says how the tables work), for
 * ursa/rwlock.h and the library only; C only (C++ callers take the
 * out-of-line calls). */
#ifndef URSA_DETAIL_RWLOCK_H
#define URSA_DETAIL_RWLOCK_H

#include <stdbool.h>

#include "../base.h"
#include "bias.h"
#include "lockinfo.h"
#include "sema.h"

struct ursa_rwlock {
    ursa__sema_t sema;       /* max_readers permits; must stay first */
    uint64_t max_readers;    /* permits a writer takes */
    URSA_ATOMIC(bool) poisoned;   /* a writer ended without unlocking */
    URSA_ATOMIC(bool) writer;     /* a write guard holds the lock (snapshots) */
    /* Writers that entered from the queue while readers were queued, since
     * readers last entered from it. */
    URSA_ATOMIC(uint32_t) wstreak;
    ursa__lockinfo_t info; /* name, rank, metrics */
    ursa__bias_t bias; /* reader bias (src/sync/rwlock/bias.c) */
};

#include "ctx.h" /* the caller's context and ledger, for the inline paths */

#ifndef __cplusplus
#include <stdatomic.h>

/* bias.on of a biased rwlock: the inline read lock of ursa/rwlock.h may
 * take it (INLINE), or must call the library (CALL: metrics builds and
 * ranked locks of lock-order builds, whose read locks are timed or
 * checked; a public header cannot know the build's options). The library's
 * own fast path takes either. */
#define URSA__RWLOCK_BIAS_INLINE 1
#define URSA__RWLOCK_BIAS_CALL 2

/* Biased rwlocks that can exist at once; later ones run unbiased. */
#define URSA__RBIAS_SLOTS 128

/* A thread's reader table (src/sync/rwlock/reader_tables.h): one column
 * per biased lock (its bias.slot). */
struct ursa__rtab {
    URSA_ATOMIC(uint64_t) held[URSA__RBIAS_SLOTS];   /* owner: locks - own unlocks */
    URSA_ATOMIC(uint64_t) remote[URSA__RBIAS_SLOTS]; /* unlocks made elsewhere */
    struct ursa__rtab *next;                         /* registry, never unlinked */
    struct ursa__rtab *next_free;                    /* tables of exited threads */
};

/* A slot's drain (src/core/bias.h), never freed: a fast reader's unlock
 * reads it after its last touch of the lock. */
struct ursa__rbias_slot {
    ursa__bias_drain_t d;
    void *owner; /* the lock using the slot (set under d.lock) */
};

/* The calling thread's reader table, NULL until it first needs one;
 * initial-exec, as ursa__cur_ctx (src/core/ctx.h). */
URSA_API extern _Thread_local struct ursa__rtab *ursa__rtab_cur
    __attribute__((tls_model("initial-exec")));
URSA_API extern struct ursa__rbias_slot ursa__rbias_slots[URSA__RBIAS_SLOTS];

/* A fast reader left while a revoke was in progress: if the revoke is
 * ARMED and the column is empty now, the token goes back
 * (src/sync/rwlock/bias.c). */
URSA_API void ursa__rwlock_bias_drain_check(int slot);

/* Counts a read lock in t (the caller's own table). */
static inline void ursa__rtab_enter(struct ursa__rtab *t, int slot)
{
    /* relaxed: only this thread writes held[]; the caller orders the
     * store against its bias load with a compiler fence + the barrier. */
    uint64_t v = atomic_load_explicit(&t->held[slot], memory_order_relaxed);
    atomic_store_explicit(&t->held[slot], v + 1, memory_order_relaxed);
}

/* Uncounts a read lock counted in t, from whichever thread. */
static inline void ursa__rtab_exit(struct ursa__rtab *t, int slot)
{
    if (__builtin_expect(t == ursa__rtab_cur, 1)) {
        /* release: the read-side critical section happens-before the
         * writer (or drain check) that sums the column. */
        uint64_t v = atomic_load_explicit(&t->held[slot], memory_order_relaxed);
        atomic_store_explicit(&t->held[slot], v - 1, memory_order_release);
    } else {
        /* release: as above; an RMW because any thread may add here. */
        atomic_fetch_add_explicit(&t->remote[slot], 1, memory_order_release);
    }
}

/* Uncounts a fast reader. Its store to t is the last touch of the lock's
 * read side: the lock may be freed after it, so what follows reads only
 * the slot table (never freed). */
static inline void ursa__rwlock_read_fast_exit(int slot, struct ursa__rtab *t)
{
    ursa__rtab_exit(t, slot);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: only tells us whether a revoke may be waiting for us. */
    if (__builtin_expect(
            atomic_load_explicit(&ursa__rbias_slots[slot].d.state, memory_order_relaxed) !=
                URSA__BIAS_IDLE,
            0))
        ursa__rwlock_bias_drain_check(slot);
}

/* Counts a fast reader in t: true; false: bias was revoked, and the caller
 * uncounts itself with ursa__rwlock_read_fast_exit (a revoke may have
 * counted it). */
static inline bool ursa__rwlock_read_count(struct ursa_rwlock *rw, struct ursa__rtab *t)
{
    ursa__rtab_enter(t, rw->bias.slot);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* acquire: as the first look at bias.on (the slot, and the last
     * writer's critical section, from whoever turned bias on). */
    return __builtin_expect(atomic_load_explicit(&rw->bias.on, memory_order_acquire) != 0, 1);
}
#endif

#endif
