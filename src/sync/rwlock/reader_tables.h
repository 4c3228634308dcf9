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

#include "ursa/rwlock.h"

/* The tables' layout, the thread's table (ursa__rtab_cur), the slots'
 * drains (ursa__rbias_slots) and a reader's count and uncount
 * (ursa__rtab_enter / _exit) are in ursa/detail/rwlock.h: the inline
 * read lock of ursa/rwlock.h uses them. */
typedef struct ursa__rtab ursa__rtab_t;
typedef struct ursa__rbias_slot ursa__rbias_slot_t;

/* Gives the calling thread a table (a fresh or an exited thread's): the
 * table, or NULL when out of memory. */
ursa__rtab_t *ursa__rtab_attach(void);

static inline ursa__rtab_t *ursa__rtab(void)
{
    ursa__rtab_t *t = ursa__rtab_cur;
    return __builtin_expect(t != NULL, 1) ? t : ursa__rtab_attach();
}

/* A slot for a new biased lock `owner`: 0..URSA__RBIAS_SLOTS-1, or -1
 * (all in use, or this kernel has no private expedited membarrier). */
int ursa__rbias_slot_alloc(void *owner);

/* Returns an IDLE slot whose column sums to zero. */
void ursa__rbias_slot_free(int slot);

/* Read locks counted in `slot` over all tables (after the barrier: exact
 * for every reader that saw bias = 1). */
uint64_t ursa__rbias_held(int slot);

#endif
