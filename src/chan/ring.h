/* The bounded slot ring of the mpsc and mpmc channels (Vyukov): `cap`
 * slots of `stride` bytes, each an 8-byte sequence number, then the
 * element. The slot of position p is free for p while seq == p, holds p's
 * element once seq == p + 1, and is freed for p + cap with seq = p + cap.
 * A slot never used has seq == 0 (the ring starts zeroed, see zmem.h): it
 * is free for its first position (p < cap; or, in a fresh ring mpsc swapped
 * in at position `from`, from <= p < from + cap). So creation writes no
 * slot and a big ring's pages become resident as messages first reach
 * them; 0 is never p + 1, so a receiver sees such a slot as empty, as it
 * is.
 * How a position is claimed (and what that claim orders) differs per
 * channel, so the claim stays with the caller. */
#ifndef URSA_CHAN_RING_H
#define URSA_CHAN_RING_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/spin.h"
#include "zmem.h"

#define URSA__RING_SEQ 8 /* bytes before the element */

/* A slot's size: the seq, then the element rounded up to 8 bytes. */
static inline size_t ursa__ring_stride(size_t elem_size)
{
    return ((elem_size + 7) & ~(size_t)7) + URSA__RING_SEQ;
}

/* Slots written since a ring was fresh that make swapping it for a fresh
 * one worth its cost when the channel runs empty (mpsc/shrink.c,
 * mpmc/shrink.c): two system calls at most (a mapping on a cache miss,
 * MADV_DONTNEED) and a page fault per 4 KiB written again, ~1 ns per
 * 16-byte message at this size. */
#define URSA__RING_SHRINK_MIN ((size_t)2 << 20)

/* How a position maps to its slot, pos % cap, without a division (a
 * 64-bit one costs 10-40 cycles, and a message looks its slot up two or
 * three times): a mask when cap is a power of two, else Barrett reduction
 * by magic = floor((2^64 - 1) / cap). q = (pos * magic) >> 64 is the
 * quotient or one less (magic <= 2^64/cap, and pos < 2^64 loses less than
 * one), so pos - q * cap is below 2 * cap: one subtraction finishes it. */
typedef struct ursa__ring_div {
    uint64_t mask;  /* cap - 1 for a power of two, else URSA__RING_NO_MASK */
    uint64_t magic; /* for the others */
} ursa__ring_div_t;

#define URSA__RING_NO_MASK UINT64_MAX

static inline ursa__ring_div_t ursa__ring_div(uint64_t cap)
{
    if ((cap & (cap - 1)) == 0)
        return (ursa__ring_div_t){cap - 1, 0}; /* 0 for capacity 1 */
    return (ursa__ring_div_t){URSA__RING_NO_MASK, UINT64_MAX / cap};
}

/* pos % cap (d = ursa__ring_div(cap)). */
static inline uint64_t ursa__ring_index(uint64_t pos, uint64_t cap, ursa__ring_div_t d)
{
    if (__builtin_expect(d.mask != URSA__RING_NO_MASK, 1))
        return pos & d.mask;
    uint64_t q = (uint64_t)(((unsigned __int128)pos * d.magic) >> 64);
    uint64_t r = pos - q * cap;
    return r >= cap ? r - cap : r;
}

/* Allocates cap zeroed slots, each free for its first position: NULL if
 * out of memory. No slot is written (see the top). Free it with
 * ursa__ring_delete. */
static inline unsigned char *ursa__ring_new(uint64_t cap, size_t stride)
{
    if (cap > SIZE_MAX / stride)
        return NULL;
    return ursa__zmem_alloc(cap * stride);
}

/* Frees a ring whose slots were used by positions from..tail-1 (`from`:
 * 0, or where mpsc/shrink.c swapped it in): only those slots were ever
 * written, and the rest is not touched. */
static inline void ursa__ring_delete(unsigned char *ring, uint64_t cap, size_t stride,
                                     uint64_t from, uint64_t tail)
{
    uint64_t start = from % cap, n = tail - from;
    /* the written slots, as a prefix of the ring */
    uint64_t used = n >= cap || start + n > cap ? cap : start + n;
    ursa__zmem_free(ring, cap * stride, used * stride);
}

static inline unsigned char *ursa__ring_slot(unsigned char *ring, uint64_t cap, ursa__ring_div_t d,
                                             size_t stride, uint64_t pos)
{
    return ring + ursa__ring_index(pos, cap, d) * stride;
}

/* ursa__ring_wait_free's other cases, out of line so that the common one
 * stays a single compare (inline, the compiler tests v == 0 first). */
static __attribute__((noinline, unused)) void ursa__ring_wait_slow(_Atomic uint64_t *seq,
                                                                   uint64_t pos, uint64_t v)
{
    if (v == 0)
        return; /* never used: its first lap (the ring started zeroed) */
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_SETTLE);
    while (atomic_load_explicit(seq, memory_order_acquire) != pos) /* acquire: as above */
        ursa__spin_backoff(&s);
    ursa__spin_end(&s);
}

/* A sender that claimed pos waits until its slot is free: the receiver of
 * pos - cap may still be copying the old element out (the sender's permit
 * proves it will be soon). A slot still zero was never used in this ring
 * (seq is p + 1 or p + cap once used, never 0): free for whoever holds its
 * position. The permit proves the previous position of the slot, if this
 * ring had one, was published already. */
static inline void ursa__ring_wait_free(_Atomic uint64_t *seq, uint64_t pos)
{
    /* acquire: the receiver's read of the old element is done. */
    uint64_t v = atomic_load_explicit(seq, memory_order_acquire);
    if (__builtin_expect(v == pos, 1))
        return;
    ursa__ring_wait_slow(seq, pos, v);
}

/* The element of pos is written: receivers may take it. */
static inline void ursa__ring_publish(_Atomic uint64_t *seq, uint64_t pos)
{
    /* release: publishes the element. */
    atomic_store_explicit(seq, pos + 1, memory_order_release);
}

/* The element of pos was copied out: the slot is free for pos + cap. */
static inline void ursa__ring_free(_Atomic uint64_t *seq, uint64_t pos, uint64_t cap)
{
    /* release: our read of the element is done before a sender reuses it. */
    atomic_store_explicit(seq, pos + cap, memory_order_release);
}

#endif
