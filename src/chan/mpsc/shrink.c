/* The mpsc channel's big ring, given back when the channel runs empty.
 *
 * A ring's pages become resident as positions first reach them (zmem.h),
 * so a channel of capacity 1,000,000 that carries a long stream, however
 * few messages at a time, would end up with its whole ring resident. When
 * the receiver finds the queue empty and the current ring has had at least
 * SHRINK_MIN bytes of slots written, it swaps in a fresh zeroed ring (from
 * zmem's cache, or a new mapping) and frees the old one (its written part
 * goes back to the kernel). Resident memory then follows what was in
 * flight since the channel was last empty, not the bound.
 *
 * The swap is safe only while no sender can touch the ring: the receiver
 * first takes every permit (what the semaphore has, what it owes itself,
 * and, when the send bias is this thread's, the owner's credit). Every
 * message then has been consumed (head == tail) and nobody is between a
 * claim and its publication. Positions stay as they are (harvesters read
 * head and returned without a permit, so those never jump); the new ring
 * starts at `ring_from` = tail (what the receiver needs to know which
 * slots it wrote): a zero slot, never used in this ring, is free for
 * whoever holds its position (ring.h), so the hot paths do not change.
 * Releasing the permits publishes the new ring and ring_from to
 * the next sender (the semaphore's acquire). While the permits are held (a
 * few atomic operations, no system call: the old ring is freed after) a
 * sender's try that finds none waits the swap out (ursa__chan_swap_begin):
 * a channel that is not full never fails a try. */
#include "../zmem.h"
#include "mpsc.h"
#include "send_bias.h"

/* Bytes of the current ring's slots written (capped at the ring). */
static size_t written(ursa_mpsc_t *ch, uint64_t tail)
{
    uint64_t n = tail - ch->ring_from;
    return (size_t)(n < ch->cap ? n : ch->cap) * ch->stride;
}

/* Takes every permit: true (all cap in hand: `took` from the semaphore,
 * `owed` from what the receiver owed, the rest the owner's credit), or
 * false with everything given back. */
static bool take_all(ursa_mpsc_t *ch, uint64_t credit, uint64_t *took)
{
    uint64_t owed = 0;
    if (ch->lazy) {
        /* relaxed: only we write head. */
        uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
        /* relaxed: the CAS validates it. */
        uint64_t r = atomic_load_explicit(&ch->returned, memory_order_relaxed);
        /* acq_rel: whoever moves returned owns those permits (as owed_take). */
        while (r != h && !atomic_compare_exchange_weak_explicit(
                             &ch->returned, &r, h, memory_order_acq_rel, memory_order_relaxed)) {
        }
        owed = h - r;
    }
    uint64_t want = ch->cap - credit - owed;
    uint64_t got = want ? ursa__sema_take_upto(&ch->chan.sema, want) : 0;
    *took = owed + got;
    if (got == want)
        return true;
    if (*took)
        ursa__sema_release(&ch->chan.sema, *took);
    return false;
}

void ursa__mpsc_shrink(ursa_mpsc_t *ch)
{
    /* relaxed: a hint; decided below with every permit in hand. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    if (written(ch, tail) < URSA__RING_SHRINK_MIN)
        return;
    /* The owner's credit counts only if the bias is ours; then its fast
     * path is kept out as the owner's own send does (busy, then the
     * check: a revoker waits for busy == 0 after its membarrier). busy is
     * the owner's flag: never touched while another thread owns the bias
     * (that thread's revoke comes first: rx_wait's, or a send's). */
    uint64_t self = ursa__thread_uid(), credit = 0;
    uint64_t owner = ursa__mpsc_sbias_owner(ch);
    if (owner && owner != self)
        return;
    bool busy = owner != 0;
    if (busy) {
        /* relaxed: ordered against a revoker's check by its membarrier. */
        atomic_store_explicit(&ch->sbias_busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the membarrier is the CPU half */
        /* relaxed: as in ursa__mpsc_send_owned; 0: a revoke finished (the
         * credit is in the semaphore), else one is under way. */
        owner = atomic_load_explicit(&ch->sbias, memory_order_relaxed);
        if (owner == self)
            credit = ch->sbias_credit;
        else if (owner)
            goto out;
    }
    unsigned char *fresh = ursa__ring_new(ch->cap, ch->stride);
    if (!fresh)
        goto out;
    uint64_t took;
    ursa__chan_swap_begin(&ch->chan); /* a try meanwhile waits for the permits */
    if (!take_all(ch, credit, &took)) {
        ursa__chan_swap_end(&ch->chan);
        ursa__zmem_free(fresh, ch->cap * ch->stride, 0);
        goto out;
    }
    /* Every permit is ours: nothing in flight, no claim under way.
     * relaxed: the acquire of the permits (semaphore, returned) ordered
     * every claim before us. */
    tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    unsigned char *old = ch->ring;
    uint64_t from = ch->ring_from;
    ch->ring = fresh;
    ch->ring_from = tail;
    /* release (inside): the new ring and ring_from reach whoever takes a
     * permit next. */
    if (took)
        ursa__sema_release(&ch->chan.sema, took);
    ursa__chan_swap_end(&ch->chan);
    if (busy)
        /* release: our writes reach a revoker that sees 0. */
        atomic_store_explicit(&ch->sbias_busy, 0, memory_order_release);
    /* Nobody can reach the old ring any more: a revoker need not wait for
     * this (a system call). */
    ursa__ring_delete(old, ch->cap, ch->stride, from, tail);
    return;
out:
    if (busy)
        /* release: as above. */
        atomic_store_explicit(&ch->sbias_busy, 0, memory_order_release);
}
