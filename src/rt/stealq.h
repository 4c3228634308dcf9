/* A worker's stealable run queue: the runnable tasks that any worker may
 * run (unstarted tasks of default placement, runnable migratable tasks).
 *
 * ALGORITHM (for review). A bounded ring of URSA__STEALQ_CAP task pointers
 * with one owner (the worker's thread) and any number of thieves (other
 * workers). Positions are u32 counters that wrap; a slot is buf[pos & MASK].
 *
 *   tail                 written by the owner only: the next position to fill.
 *   head = {steal, real} two u32 packed in one u64, changed only by CAS:
 *     real   the next position to take (by the owner, or claimed by a thief);
 *     steal  the oldest position a thief may still be reading. steal == real
 *            when no steal is in progress; otherwise [steal, real) is the
 *            range one thief has claimed and is copying out.
 *
 *   push (owner)   if tail - steal < CAP: buf[tail] = t; tail + 1 (release).
 *                  Full: push_overflow moves half the queue, in one claim,
 *                  to the runtime's inject queue (or, with a steal in
 *                  progress, just the one task).
 *   pop (owner)    CAS head {s, r} -> {s == r ? r + 1 : s, r + 1}, if r != tail;
 *                  the task is buf[r]. A steal in progress keeps its steal.
 *   steal (thief)  1. claim: with s == r (else another thief is copying: give
 *                     up), n = ceil((tail - r) / 2) capped at CAP/2; CAS head
 *                     {s, r} -> {s, r + n}.
 *                  2. copy buf[s .. s+n) into its own queue.
 *                  3. release: CAS head {s, r'} -> {r', r'} (the owner may have
 *                     popped meanwhile: r' >= r + n).
 *
 * INVARIANTS
 *   I1 steal <= real <= tail (mod 2^32), tail - steal <= CAP: the slots of
 *      [steal, tail) hold tasks that someone will take exactly once.
 *   I2 Only the owner writes slots, and only at tail, and only while
 *      tail - steal < CAP: a slot being copied by a thief ([steal, real)) or
 *      not yet taken ([real, tail)) is never overwritten.
 *   I3 At most one steal is in progress (a claim needs steal == real), so
 *      the release of step 3 is the only CAS that moves steal while
 *      steal != real, and it moves it to real.
 *   I4 Each position in [real, tail) leaves the queue exactly once: by the
 *      owner's pop CAS or inside one thief's claim CAS (both advance real
 *      from the value they read, so they cannot both succeed).
 *
 * ORDERING. Slots are relaxed atomics; tail's release store publishes the
 * slot written before it (and the task's state) to a thief's acquire load.
 * Every head CAS is acq_rel: the thief's release in step 3 orders its reads
 * of the slots before the owner's acquire load of head in push, which is
 * what lets the owner reuse them (I2). Positions wrap after 2^32 pushes,
 * far beyond anything a CAS window can span, so there is no ABA.
 *
 * Why this and not Chase-Lev: thieves take half the queue in one claim (a
 * Chase-Lev thief takes one task per CAS), the owner takes tasks in FIFO
 * order (the order they were spawned or woken), and the owner's pop is one
 * uncontended CAS; Chase-Lev's owner pop also needs a full fence. The
 * queue is Tokio's local run queue, written anew here. */
#ifndef URSA_RT_STEALQ_H
#define URSA_RT_STEALQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ursa/rt.h"

#define URSA__STEALQ_CAP 256u
#define URSA__STEALQ_MASK (URSA__STEALQ_CAP - 1)

typedef struct ursa__stealq {
    _Alignas(64) _Atomic uint64_t head; /* {steal << 32 | real}: thieves CAS it */
    _Alignas(64) _Atomic uint32_t tail; /* owner only writes */
    _Atomic(ursa_task_t *) buf[URSA__STEALQ_CAP];
} ursa__stealq_t;

static inline uint32_t ursa__stealq_real(uint64_t head)
{
    return (uint32_t)head;
}

static inline uint32_t ursa__stealq_steal(uint64_t head)
{
    return (uint32_t)(head >> 32);
}

static inline uint64_t ursa__stealq_pack(uint32_t steal, uint32_t real)
{
    return (uint64_t)steal << 32 | real;
}

/* Tasks queued and not yet taken. Exact for the owner; a hint for others. */
static inline uint32_t ursa__stealq_len(const ursa__stealq_t *q)
{
    /* relaxed: a count; whoever acts on it re-reads with ordering. */
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t r = ursa__stealq_real(atomic_load_explicit(&q->head, memory_order_relaxed));
    int32_t n = (int32_t)(t - r);
    return n > 0 ? (uint32_t)n : 0;
}

/* Owner: appends t. False when full (then ursa__stealq_overflow). */
static inline bool ursa__stealq_push(ursa__stealq_t *q, ursa_task_t *t)
{
    /* relaxed: only we write tail. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* acquire: a thief's reads of the slots below steal are done (I2). */
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (tail - ursa__stealq_steal(head) >= URSA__STEALQ_CAP)
        return false;
    /* relaxed: published by the release store of tail. */
    atomic_store_explicit(&q->buf[tail & URSA__STEALQ_MASK], t, memory_order_relaxed);
    /* release: the slot and the task's state reach a thief's acquire load. */
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return true;
}

/* Owner: the oldest task, or NULL when empty. */
static inline ursa_task_t *ursa__stealq_pop(ursa__stealq_t *q)
{
    /* acquire: pairs with a thief's release of its claim. */
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t s = ursa__stealq_steal(head), r = ursa__stealq_real(head);
        /* relaxed: only we write tail. */
        if (r == atomic_load_explicit(&q->tail, memory_order_relaxed))
            return NULL;
        uint64_t next = ursa__stealq_pack(s == r ? r + 1 : s, r + 1);
        /* acq_rel: takes position r (I4); on failure re-read. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &head, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            /* relaxed: we wrote this slot ourselves. */
            return atomic_load_explicit(&q->buf[r & URSA__STEALQ_MASK], memory_order_relaxed);
    }
}

/* Owner, when push failed: claims half the queue (or, with a steal in
 * progress, nothing) and returns it as a list linked through rq_next,
 * oldest first, with t at its end; *n gets its length. The caller hands it
 * to the inject queue. */
ursa_task_t *ursa__stealq_overflow(ursa__stealq_t *q, ursa_task_t *t, uint32_t *n);

/* Thief: moves about half of src's tasks (at most CAP/2) into dst, the
 * thief's own queue, if they fit; returns how many. */
uint32_t ursa__stealq_steal_into(ursa__stealq_t *src, ursa__stealq_t *dst);

/* The steal in three steps, for tests that interleave them with the owner.
 * claim: 0 if there was nothing to take (or another steal is in progress),
 * else the number claimed, with *first the first position. */
uint32_t ursa__stealq_claim(ursa__stealq_t *src, uint32_t *first);
/* release: the claim's slots are copied; lets the owner reuse them. */
void ursa__stealq_release(ursa__stealq_t *src);

#endif
