/* The mpsc channel's message queue: where a sent message waits for the
 * receiver, in the bounded ring or the unbounded block list (see
 * "Storage" in mpsc.h; the blocks themselves: blocks.c). A message is
 * written at a new position (push), looked at (peek) and consumed in
 * order by the one receiver. */
#include "mpsc.h"
#include "send_bias.h"

/* The block of position `start` (a block start), from b = block_tail
 * onwards, appending blocks as needed and moving block_tail past blocks
 * that are fully written. Out of line: a send needs it once per block. */
static __attribute__((noinline)) ursa__mpsc_blk_t *find_block(ursa_mpsc_t *ch,
                                                               ursa__mpsc_blk_t *b,
                                                               uint64_t start)
{
    bool advance = true;
    while (b->start != start) {
        /* acquire: a linked block's fields. */
        ursa__mpsc_blk_t *next = atomic_load_explicit(&b->next, memory_order_acquire);
        if (!next)
            next = ursa__mpsc_grow(ch, b);
        /* Only a block whose every slot is written may be passed by
         * block_tail: a sender that claimed a slot in it but has not
         * yet found it must still be able to reach it from block_tail. */
        /* all_written acquires each slot's flag. */
        advance = advance && ursa__mpsc_all_written(ch, b);
        if (advance) {
            ursa__mpsc_blk_t *exp = b;
            /* release: next's fields reach whoever loads block_tail. */
            if (atomic_compare_exchange_strong_explicit(&ch->block_tail, &exp, next,
                                                        memory_order_release,
                                                        memory_order_relaxed)) {
                /* acq_rel RMW: a sender whose fetch_add reads after it
                 * synchronises with us, so it sees the new block_tail. */
                uint64_t obs = atomic_fetch_add_explicit(&ch->tail, 0, memory_order_acq_rel) &
                               ~URSA__MPSC_TAIL_CLOSED;
                atomic_store_explicit(&b->observed, obs, memory_order_relaxed);
                /* release: observed is valid once released is seen. */
                atomic_store_explicit(&b->released, 1, memory_order_release);
            } else {
                advance = false;
            }
        }
        b = next;
    }
    return b;
}

/* The receiver waits: wakes it. Out of line, so that a push that finds it
 * awake makes no call. */
static __attribute__((noinline)) bool wake_rx(ursa_mpsc_t *ch)
{
    ursa__mpsc_wake_rx(ch);
    return true;
}

/* After a push: wakes the receiver if it waits; true. */
static inline bool pushed(ursa_mpsc_t *ch)
{
    /* seq_cst, no fence: our claim (seq_cst RMW on tail) precedes this load
     * in the single order S. rx_start stores rx_wait, fences, then loads
     * tail: if its fence precedes this load, we see the node; otherwise our
     * claim precedes its fence and it sees the position claimed and does
     * not sleep (it waits for the publication instead). */
    if (__builtin_expect(atomic_load_explicit(&ch->rx_wait, memory_order_seq_cst) != NULL, 0))
        return wake_rx(ch);
    return true;
}

/* ursa__mpsc_push, bounded: into the ring. */
static __attribute__((noinline)) bool push_ring(ursa_mpsc_t *ch, const void *value)
{
    /* seq_cst: the claim is the sender's half of the wake Dekker (see
     * the header comment); the slot's seq orders the data; our permit
     * proves the slot is free (checked below). */
    uint64_t pos = atomic_fetch_add_explicit(&ch->tail, 1, memory_order_seq_cst);
    unsigned char *s = ursa__mpsc_ring_slot(ch, pos);
    ursa__ring_wait_free((_Atomic uint64_t *)s, pos);
    ursa__copy_elem(s + URSA__RING_SEQ, value, ch->elem_size);
    ursa__ring_publish((_Atomic uint64_t *)s, pos);
    return pushed(ch);
}

/* Writes value at a new position and wakes the receiver if it waits.
 * False (nothing written): an unbounded channel was sealed. */
bool ursa__mpsc_push(ursa_mpsc_t *ch, const void *value)
{
    if (ch->cap)
        return push_ring(ch, value);
    /* acq_rel: pairs with the release RMW of a sender that moved
     * block_tail (see the header comment): if our position is past the
     * mark it recorded, we see the moved block_tail. seq_cst: the claim
     * is also the sender's half of the wake Dekker. */
    uint64_t pos = atomic_fetch_add_explicit(&ch->tail, 1, memory_order_seq_cst);
    if (__builtin_expect(pos & URSA__MPSC_TAIL_CLOSED, 0))
        return false; /* past the end: never read */
    uint64_t start = pos & ~(ch->bslots - 1), off = pos & (ch->bslots - 1);
    /* acquire: the block's fields. */
    ursa__mpsc_blk_t *b = atomic_load_explicit(&ch->block_tail, memory_order_acquire);
    if (__builtin_expect(b->start != start, 0))
        b = find_block(ch, b, start);
    ursa__copy_elem(b->data + off * ch->stride, value, ch->elem_size);
    /* release: publishes the element. */
    atomic_store_explicit(&b->ready[off], 1, memory_order_release);
    return pushed(ch);
}

/* Address of the next element if it is ready, else NULL. */
unsigned char *ursa__mpsc_peek(ursa_mpsc_t *ch)
{
    /* relaxed: only the receiver writes head. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    if (ch->cap) {
        unsigned char *s = ursa__mpsc_ring_slot(ch, h);
        /* acquire: the sender's element. */
        return atomic_load_explicit((_Atomic uint64_t *)s, memory_order_acquire) == h + 1
                   ? s + URSA__RING_SEQ
                   : NULL;
    }
    ursa__mpsc_blk_t *b = ch->head_block;
    uint64_t start = h & ~(ch->bslots - 1), off = h & (ch->bslots - 1);
    if (b->start != start) {
        /* acquire: the block's fields. */
        ursa__mpsc_blk_t *n = atomic_load_explicit(&b->next, memory_order_acquire);
        if (!n)
            return NULL;
        ch->head_block = b = n;
    }
    /* acquire: the sender's element. */
    if (!atomic_load_explicit(&b->ready[off], memory_order_acquire))
        return NULL;
    return b->data + off * ch->stride;
}

/* Consumes e, the element peek returned. */
void ursa__mpsc_consumed(ursa_mpsc_t *ch, unsigned char *e)
{
    /* relaxed: only we write head. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    if (ch->cap) {
        ursa__ring_free((_Atomic uint64_t *)(e - URSA__RING_SEQ), h, ch->cap);
        if (!ch->lazy) {
            /* relaxed: len() snapshot only. */
            atomic_store_explicit(&ch->head, h + 1, memory_order_relaxed);
            ursa__sema_release(&ch->chan.sema, 1);
            return;
        }
        /* release: a harvester that acquires head sees the slot freed. */
        atomic_store_explicit(&ch->head, h + 1, memory_order_release);
        /* The loads below must not move above the store (compiler); the
         * CPU is handled by the waiting sender's membarrier, or, once the
         * channel is fenced, by this fence (lazy.c). The mode is read after
         * the head store, which the switch relies on. relaxed: see lazy.c. */
        atomic_signal_fence(memory_order_seq_cst);
        if (__builtin_expect(atomic_load_explicit(&ch->fence_mode, memory_order_relaxed) !=
                                 URSA__MPSC_LAZY_MEMBARRIER,
                             0))
            atomic_thread_fence(memory_order_seq_cst); /* Dekker with a queued sender's */
        /* relaxed: ordered by a queued sender's membarrier, or, fenced,
         * by the fences. */
        if (__builtin_expect(atomic_load_explicit(&ch->tx_waiting, memory_order_relaxed), 0) &&
            ursa__sema_free(&ch->chan.sema) == UINT64_MAX) {
            /* The biased owner moves `returned` with plain stores: take
             * it over only on its thread, or after the bias is gone. */
            (void)ursa__mpsc_sbias_revoke_unless_mine(ch);
            (void)ursa__mpsc_harvest(ch, 0);
        }
        return;
    }
    /* relaxed: len() snapshot only. */
    atomic_store_explicit(&ch->head, h + 1, memory_order_relaxed);
    if (ch->free_head != ch->head_block)
        ursa__mpsc_reclaim(ch, h + 1);
}
