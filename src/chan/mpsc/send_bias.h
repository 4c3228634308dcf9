/* The mpsc channel's send bias: the owner's send, its credit refill and
 * the checks on the hot paths (inline); revoking: send_bias.c, which says
 * how the bias works. */
#ifndef URSA_CHAN_MPSC_SEND_BIAS_H
#define URSA_CHAN_MPSC_SEND_BIAS_H

#include "mpsc.h"

/* Ends the bias for good; returns once it is over (whoever revokes). */
void ursa__mpsc_sbias_revoke(ursa_mpsc_t *ch);

/* The bias owner, acquired: 0 once a revoke is complete (its release store
 * carries the owner's last claim of tail and the credit's return). */
static inline uint64_t ursa__mpsc_sbias_owner(ursa_mpsc_t *ch)
{
    return atomic_load_explicit(&ch->sbias, memory_order_acquire);
}

/* Revokes the bias unless the caller's thread owns it: true if it does
 * (the bias holds and is ours), false if there is none (any more). */
static inline bool ursa__mpsc_sbias_revoke_unless_mine(ursa_mpsc_t *ch)
{
    uint64_t owner = ursa__mpsc_sbias_owner(ch);
    if (owner == ursa__thread_uid())
        return true;
    if (owner)
        ursa__mpsc_sbias_revoke(ch);
    return false;
}

/* lazy.c's owed_take for the biased owner: every other taker either runs
 * on the owner's thread or revokes the bias first (a receiver helping a
 * queued sender, a reserve), so a plain load and store will do. */
static inline uint64_t ursa__mpsc_owed_take_owned(ursa_mpsc_t *ch)
{
    /* relaxed: only this thread writes it while the bias holds. */
    uint64_t r = atomic_load_explicit(&ch->returned, memory_order_relaxed);
    /* acquire: the receiver's slot frees (seq stores) for these positions. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_acquire);
    if (h == r)
        return 0;
    /* release: as owed_take's CAS (ursa__mpsc_ended() acquires returned). */
    atomic_store_explicit(&ch->returned, h, memory_order_release);
    return h - r;
}

/* The owner's credit is empty: takes every permit it can get now (what the
 * receiver owes first), unless senders queue. True: some. */
static inline bool ursa__mpsc_sbias_refill(ursa_mpsc_t *ch)
{
    /* What the receiver owes comes straight into the credit (one RMW),
     * unless a sender queues (no barging: it goes to the semaphore). While
     * the bias holds the channel cannot be closed (close revokes first). */
    uint64_t k = ursa__mpsc_owed_take_owned(ch);
    if (k && ursa__sema_free(&ch->chan.sema) == UINT64_MAX) {
        ursa__sema_release(&ch->chan.sema, k);
        k = 0;
    }
    if (!k)
        k = ursa__sema_take_upto(&ch->chan.sema, ch->cap);
    ch->sbias_credit = k;
    return k != 0;
}

/* The owner's send: true if sent; false: take the shared path (no credit
 * and none free now, or the receiver is gone). */
static inline bool ursa__mpsc_send_owned(ursa_mpsc_t *ch, const void *value)
{
    /* Not re-entrant (one busy flag): nothing below runs a waker that could
     * send on this channel while the bias is on — only the owner's own
     * tasks can queue in the semaphore then, and their wakers only wake. */
    /* relaxed: ordered against a revoker's check by its membarrier. */
    atomic_store_explicit(&ch->sbias_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the membarrier is the CPU half */
    bool sent = false;
    /* relaxed: as above. (ursa__chan_rx_gone: acquire, paired with
     * receiver_drop.) */
    if (atomic_load_explicit(&ch->sbias, memory_order_relaxed) == ursa__thread_uid() &&
        !ursa__chan_rx_gone(&ch->chan) &&
        (ch->sbias_credit || ursa__mpsc_sbias_refill(ch))) {
        ch->sbias_credit--;
        /* relaxed: only the owner claims positions while biased; a revoker
         * acquires them through busy. */
        uint64_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
        atomic_store_explicit(&ch->tail, pos + 1, memory_order_relaxed);
        unsigned char *s = ursa__mpsc_ring_slot(ch, pos);
        ursa__ring_wait_free((_Atomic uint64_t *)s, pos);
        ursa__copy_elem(s + URSA__RING_SEQ, value, ch->elem_size);
        ursa__ring_publish((_Atomic uint64_t *)s, pos);
        sent = true;
    }
    /* release: our writes (tail, slot, credit) reach a revoker that sees 0. */
    atomic_store_explicit(&ch->sbias_busy, 0, memory_order_release);
    /* The queued receiver registered on this thread (one on another thread
     * revokes first), but its cancel may run elsewhere (a raw wait
     * cancelled from another thread, a worker-0 task resumed on another
     * thread): the exchange decides the node against that cancel
     * (regression test_send_bias_cancel_elsewhere). */
    /* relaxed: a hint, as in ursa__mpsc_wake_rx (no call when nobody waits). */
    if (sent && atomic_load_explicit(&ch->rx_wait, memory_order_relaxed))
        ursa__mpsc_wake_rx(ch);
    return sent;
}

#endif
