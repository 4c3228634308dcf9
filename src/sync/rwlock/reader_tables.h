/* The rwlock's reader bias tables: per-thread reader counts that let an rwlock's readers lock
 * and unlock with no atomic read-modify-write (BRAVO, Dice & Kogan 2019,
 * with the asymmetric fence of membarrier(2) in place of BRAVO's CAS).
 *
 * Every thread that read-locks a biased rwlock owns a reader table: one
 * column per biased lock (the lock's `slot`). The owner thread counts its
 * read locks in held[slot] with plain loads and stores; an unlock made on
 * another thread (a disowned guard, a task moved with worker 0) adds to
 * remote[slot] with an atomic add. A lock's fast readers are the sum of
 * held - remote over all tables.
 *
 * The handshake (Dekker made asymmetric). A reader stores held+1, then
 * loads the lock's bias flag; a writer stores bias = 0, runs
 * ursa__membarrier() (core/membarrier.h: every thread of the process
 * executes a full fence), then sums the column. The reader's store and load are
 * separated only by a compiler fence, so on its own the load could pass
 * the store; the barrier forbids the interleaving that matters: if the
 * reader's load saw bias = 1, both its accesses precede the fence the
 * barrier ran on its CPU, so the sum sees its count; otherwise it sees
 * bias = 0 and backs off.
 *
 * Unlock is the mirror image, against the slot's drain state instead of the
 * lock's flag: a fast unlock's last touch of the lock is its store of
 * held-1, so the lock may be freed right after it; what the unlock reads
 * next (the state) lives here, in memory that is never freed. A revoke
 * sets the state to PENDING, turns the flag off, runs the barrier, then
 * sums the column under the slot's lock: zero, and the lock's token goes
 * back (IDLE); otherwise ARMED, and the unlock that finds the column at
 * zero returns it. PENDING keeps readers from concluding before the
 * barrier has stopped new fast readers.
 *
 * Lock order: the rwlock's bias lock, then a slot's lock, then the
 * registry mutex (reader_tables.c). Only the rwlock uses these. */
#ifndef URSA_SYNC_RWLOCK_READER_TABLES_H
#define URSA_SYNC_RWLOCK_READER_TABLES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ursa/detail/bias.h"

/* Biased rwlocks that can exist at once; later ones run unbiased. */
#define URSA__RBIAS_SLOTS 128

typedef struct ursa__rtab {
    _Atomic uint64_t held[URSA__RBIAS_SLOTS];   /* owner: locks - own unlocks */
    _Atomic uint64_t remote[URSA__RBIAS_SLOTS]; /* unlocks made elsewhere */
    struct ursa__rtab *next;                    /* registry, never unlinked */
    struct ursa__rtab *next_free;               /* tables of exited threads */
} ursa__rtab_t;

extern __thread ursa__rtab_t *ursa__rtab_cur __attribute__((tls_model("initial-exec")));

/* Gives the calling thread a table (a fresh or an exited thread's): the
 * table, or NULL when out of memory. */
ursa__rtab_t *ursa__rtab_attach(void);

static inline ursa__rtab_t *ursa__rtab(void)
{
    ursa__rtab_t *t = ursa__rtab_cur;
    return __builtin_expect(t != NULL, 1) ? t : ursa__rtab_attach();
}

/* Counts a read lock in t (the caller's own table). */
static inline void ursa__rtab_enter(ursa__rtab_t *t, int slot)
{
    /* relaxed: only this thread writes held[]; the caller orders the
     * store against its bias load with a compiler fence + the barrier. */
    uint64_t v = atomic_load_explicit(&t->held[slot], memory_order_relaxed);
    atomic_store_explicit(&t->held[slot], v + 1, memory_order_relaxed);
}

/* Uncounts a read lock counted in t, from whichever thread. */
static inline void ursa__rtab_exit(ursa__rtab_t *t, int slot)
{
    if (t == ursa__rtab_cur) {
        /* release: the read-side critical section happens-before the
         * writer (or drain check) that sums the column. */
        uint64_t v = atomic_load_explicit(&t->held[slot], memory_order_relaxed);
        atomic_store_explicit(&t->held[slot], v - 1, memory_order_release);
    } else {
        /* release: as above; an RMW because any thread may add here. */
        atomic_fetch_add_explicit(&t->remote[slot], 1, memory_order_release);
    }
}

/* A slot's drain (core/bias.h), here so that a reader's unlock reads it
 * after its last touch of the lock. */
typedef struct ursa__rbias_slot {
    ursa__bias_drain_t d;
    void *owner; /* the lock using the slot (set under d.lock) */
} ursa__rbias_slot_t;

extern ursa__rbias_slot_t ursa__rbias_slots[URSA__RBIAS_SLOTS];

/* A slot for a new biased lock `owner`: 0..URSA__RBIAS_SLOTS-1, or -1
 * (all in use, or this kernel has no private expedited membarrier). */
int ursa__rbias_slot_alloc(void *owner);

/* Returns an IDLE slot whose column sums to zero. */
void ursa__rbias_slot_free(int slot);

/* Read locks counted in `slot` over all tables (after the barrier: exact
 * for every reader that saw bias = 1). */
uint64_t ursa__rbias_held(int slot);

#endif
