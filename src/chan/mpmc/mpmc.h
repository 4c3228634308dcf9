/* The mpmc channel's object and what its files share.
 *
 * mpmc channel: the mpsc bounded ring with a CAS on head, the batch
 * semaphore for capacity, and a FIFO of waiting receivers.
 *
 * Storage: a ring of exactly `capacity` slots, each with a sequence number
 * (Vyukov). A sender holds a semaphore permit, claims position p with one
 * fetch_add on `tail`, waits until slot p % cap is free (seq == p: a
 * receiver of p - cap may still be copying out), writes it and publishes
 * seq = p + 1. A receiver claims position h only when its slot is published
 * (seq == h + 1), with a CAS of head h -> h + 1 (recv_many: h -> h + k over
 * k consecutive published slots), copies out, frees the slot (seq = h +
 * cap) and returns the permit.
 *
 * Life word (chan/chan.h): CLOSED | RX_GONE | strong senders | "permits
 * out" (held send permits plus reserves in progress). Receivers report
 * -EPIPE when (CLOSED or no strong sender) and no permit is out, and the
 * queue is empty — read in that order, since a permit publishes its
 * message before it stops counting.
 *
 * Receiver waits: a wait queue (`rxq`, core/waitq.h), whose count of
 * queued waiters `rxq.n` is readable without the lock. Three Dekker pairs, each
 * "write, seq_cst fence, read" on both sides:
 *  - a sender publishes its slot, fences, and wakes one waiter if rxq.n
 *    is not 0; a receiver queues (rxq.n++), fences, and re-checks the
 *    slot at head (and the life word) before it sleeps;
 *  - a receiver that claimed, fences, and wakes one more waiter if the new
 *    head slot is published too (a message published while an earlier
 *    position was still being written woke a receiver that found head not
 *    ready and slept again: the claimer of that earlier position passes the
 *    wake along);
 *  - whoever makes the life word terminal fences and wakes every waiter.
 * A waiter that was granted (woken) but then times out, is cancelled, or is
 * a raw wait cancelled after its wake, wakes the next waiter in its place. */
#ifndef URSA_CHAN_MPMC_MPMC_H
#define URSA_CHAN_MPMC_MPMC_H

#include "ursa/mpmc.h"

#include <stdalign.h>
#include <stddef.h>

#include "../chan.h"
#include "../ring.h"
#include "../../core/wait_steps.h"

struct ursa_mpmc {
    /* life word, references, the slots' semaphore (chan.h); must be first */
    ursa__chan_t chan;
    /* read-mostly */
    size_t elem_size, stride; /* stride: 8-byte seq + element rounded up */
    uint64_t cap;
    ursa__ring_div_t div; /* ursa__ring_div(cap) */
    ursa_mpmc_dtor_t dtor;
    /* The ring: swapped by shrink.c under every permit. Receivers may read
     * it without a permit (a claim's look at head's slot), so it is atomic
     * and every ring it ever held stays the channel's until destruction. */
    _Atomic(unsigned char *) ring;
    _Atomic(unsigned char *) spare;   /* the other ring (shrink.c), zeroed, or NULL */
    _Atomic uint32_t spare_made;      /* shrink.c made the spare (at most once) */
    bool shrink;                      /* the ring is big enough for shrink.c */
    _Atomic uint64_t ring_from;       /* the ring's first position (shrink.c) */
    size_t mem;              /* bytes allocated; fixed after creation */
    _Atomic uint64_t rxs;    /* receiver handles */
    /* waiting receivers */
    alignas(64) ursa__waitq_t rxq;
    /* senders' line */
    alignas(64) _Atomic uint64_t tail;
    /* receivers' line */
    alignas(64) _Atomic uint64_t head;
};

_Static_assert(offsetof(ursa_mpmc_t, chan) == 0, "the shared part comes first");

static inline ursa_mpmc_t *ursa__mpmc_of(ursa__chan_t *c)
{
    return (ursa_mpmc_t *)c;
}

static inline bool ursa__mpmc_terminal(uint64_t l)
{
    return ((l & URSA__CHAN_CLOSED) || (l & URSA__CHAN_TX_MASK) == 0) && (l >> 32) == 0;
}

static inline unsigned char *ursa__mpmc_ring_slot(ursa_mpmc_t *ch, uint64_t pos)
{
    /* acquire: the ring's zeroed contents, written before shrink.c's
     * release store of the pointer (a plain load on x86). */
    return ursa__ring_slot(atomic_load_explicit(&ch->ring, memory_order_acquire), ch->cap,
                           ch->div, ch->stride, pos);
}

static inline _Atomic uint64_t *ursa__mpmc_slot_seq(ursa_mpmc_t *ch, uint64_t pos)
{
    return (_Atomic uint64_t *)ursa__mpmc_ring_slot(ch, pos);
}

/* Wakes the oldest waiting receiver, if any. The caller has fenced after
 * the write the waiter must see. */
static inline void ursa__mpmc_wake_one(ursa_mpmc_t *ch)
{
    /* ordered by the caller's seq_cst fence (see the header). */
    if (ursa__waitq_queued(&ch->rxq))
        (void)ursa__waitq_grant_one(&ch->rxq);
}

/* The life word just became terminal: every waiter will see the end. */
static inline void ursa__mpmc_wake_all(ursa_mpmc_t *ch)
{
    /* seq_cst fence: our life RMW is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check of life. */
    atomic_thread_fence(memory_order_seq_cst);
    /* ordered by the fence above. */
    if (ursa__waitq_queued(&ch->rxq))
        (void)ursa__waitq_grant_all(&ch->rxq);
}

/* ---- what the files share (the file that defines each says more) ---- */

/* channel.c: a permit (or reserve in progress) ends: it stops counting,
 * which may be what closed receivers wait for. */
void ursa__mpmc_permit_end(ursa_mpmc_t *ch);
/* channel.c: counts a reserve in progress: true, or false (closed or no
 * receiver: nothing counted). */
bool ursa__mpmc_perm_begin(ursa_mpmc_t *ch);

/* send.c: sends with a slot the caller holds (wakes a receiver). */
void ursa__mpmc_push(ursa_mpmc_t *ch, const void *value);
/* send.c: reserves n slots, counting as a permit out: 0, or an error with
 * nothing reserved and nothing counted. */
int ursa__mpmc_acquire(ursa_mpmc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                       const ursa_site_t *site);

/* recv.c: claims up to max consecutive published positions: their count
 * (0 if the slot at head is not published), *pos the first. */
uint64_t ursa__mpmc_claim(ursa_mpmc_t *ch, uint64_t max, uint64_t *pos);
/* shrink.c: a receiver found nothing to claim: swaps in the spare ring if
 * the current one has URSA__RING_SHRINK_MIN bytes written and every
 * permit can be taken now. Channels whose ring is bigger than that. */
void ursa__mpmc_shrink(ursa_mpmc_t *ch);

/* recv.c: frees k claimed slots from pos, after their elements were
 * copied out. */
void ursa__mpmc_release_slots(ursa_mpmc_t *ch, uint64_t pos, uint64_t k);

#endif
