/* The mpmc channel's big ring, given back when the channel runs empty (as
 * mpsc's, see mpsc/shrink.c for why: a long stream through a big ring,
 * however few messages at a time, would end with every page resident).
 *
 * When a receiver finds nothing to claim and the current ring has at
 * least URSA__RING_SHRINK_MIN bytes of slots written, it takes every
 * permit from the semaphore (none held elsewhere: no message in flight, no
 * sender between a claim and its publication, no receiver between a claim
 * and the release of its slot, which comes before its permit), swaps in
 * the spare ring, gives the permits back, and then returns the old ring's
 * written pages to the kernel (MADV_DONTNEED: zero again) and keeps it as
 * the next spare.
 *
 * Unlike mpsc, other receivers read the ring without a permit: a claim
 * looks at head's slot, then validates with a CAS on head. A receiver may
 * still hold the old ring's address after the swap, so a ring never
 * leaves the channel before its destruction (two at most: the current one
 * and the spare, made once, on the first swap), and such a look stays
 * harmless: every slot of a ring that is not current holds 0 or a sequence
 * number of a position already consumed (at most head's), so it never
 * shows head's position as published, and a claim on a stale head fails
 * its CAS. Positions never jump; the new ring starts at ring_from = tail
 * (for its written part at destruction): a zero slot is free for whoever
 * holds its position (ring.h). */
#include "mpmc.h"

/* Bytes of the current ring's slots written (capped at the ring). */
static size_t written(ursa_mpmc_t *ch, uint64_t tail, uint64_t from)
{
    uint64_t n = tail - from;
    return (size_t)(n < ch->cap ? n : ch->cap) * ch->stride;
}

void ursa__mpmc_shrink(ursa_mpmc_t *ch)
{
    /* relaxed: hints; decided below with every permit in hand. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    if (written(ch, tail, atomic_load_explicit(&ch->ring_from, memory_order_relaxed)) <
        URSA__RING_SHRINK_MIN)
        return;
    /* The spare, made once: whoever wins the flag makes it (outside the
     * permits: a mapping is a system call). relaxed: the CAS below decides;
     * acq_rel: the flag's winner is alone. */
    uint32_t no = 0;
    if (!atomic_load_explicit(&ch->spare_made, memory_order_relaxed) &&
        atomic_compare_exchange_strong_explicit(&ch->spare_made, &no, 1, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        unsigned char *s = ursa__ring_new(ch->cap, ch->stride);
        if (!s) {
            /* relaxed: a later receiver tries again. */
            atomic_store_explicit(&ch->spare_made, 0, memory_order_relaxed);
            return;
        }
        /* release: its zeroed contents reach whoever takes it. */
        atomic_store_explicit(&ch->spare, s, memory_order_release);
    }
    ursa__chan_swap_begin(&ch->chan); /* a try meanwhile waits for the permits */
    uint64_t got = ursa__sema_take_upto(&ch->chan.sema, ch->cap);
    /* acquire: the spare's zeroed contents (release stores above and at
     * the end); NULL while a swap is between taking it and putting the old
     * ring back. */
    unsigned char *fresh =
        got == ch->cap ? atomic_exchange_explicit(&ch->spare, NULL, memory_order_acquire) : NULL;
    if (!fresh) {
        if (got)
            ursa__sema_release(&ch->chan.sema, got);
        ursa__chan_swap_end(&ch->chan);
        return;
    }
    /* Every permit is ours. relaxed: the permits' acquire ordered every
     * claim and every swap before us; only a swap writes ring and
     * ring_from, and we are the only one. */
    tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    unsigned char *old = atomic_load_explicit(&ch->ring, memory_order_relaxed);
    uint64_t from = atomic_load_explicit(&ch->ring_from, memory_order_relaxed);
    atomic_store_explicit(&ch->ring_from, tail, memory_order_relaxed); /* (read by us) */
    /* release: fresh's zeroed contents reach a receiver that loads the
     * pointer (acquire); a sender also gets it through its permit. */
    atomic_store_explicit(&ch->ring, fresh, memory_order_release);
    ursa__sema_release(&ch->chan.sema, got);
    ursa__chan_swap_end(&ch->chan);
    /* The old ring's written part back to the kernel (a receiver reading
     * it meanwhile sees zeros or consumed positions: harmless), then it is
     * the spare. */
    uint64_t start = from % ch->cap, n = tail - from;
    uint64_t used = n >= ch->cap || start + n > ch->cap ? ch->cap : start + n;
    ursa__zmem_discard(old, used * ch->stride);
    /* release: its zeroed contents reach the next swap (acquire above). */
    atomic_store_explicit(&ch->spare, old, memory_order_release);
}
