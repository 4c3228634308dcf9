/* The watch channel's object and what its files share.
 *
 * Watch: the value behind a small reader-preferring lock, a version
 * counter, and two wait queues of its own (receivers waiting for a change,
 * senders waiting for the receivers to go) plus a notify for senders
 * waiting for borrows to leave.
 *
 * One 64-bit `state` word holds everything the hot paths race on: the
 * CLOSED bit (every sender gone), the WRITER bit, two "someone may be
 * waiting" bits (WWAIT: a writer waits on `unlocked`; RXWAIT: receivers
 * are queued on `rxq`), the reader (borrow) count and the handle count.
 * The channel is freed when handles and borrows are both 0, which one RMW
 * on one word decides, so a borrow needs no reference of its own.
 *
 * A borrow (reader) enters with a CAS while WRITER is clear; a send sets
 * WRITER with a CAS when no reader is in and holds it only for a copy (or
 * the modify callback), never across a suspension, so a reader that finds
 * WRITER set spins briefly. A writer that finds readers blocks on
 * `unlocked` until the count reaches 0: borrows may be held across
 * suspensions.
 *
 * `version` is written only by the WRITER holder (a plain store, no RMW)
 * and read by receivers. No seq_cst fence anywhere: a waiter queues, then
 * sets its WAIT bit with an RMW on `state`; the waker's own RMW on `state`
 * (the unlock that publishes a send, the close, the last reader leaving)
 * reads that bit. The two RMWs are totally ordered on one word, so either
 * the waker sees the bit (and the queued node, through acq_rel), or the
 * waiter's RMW comes later and sees the waker's change. */
#ifndef URSA_CHAN_WATCH_WATCH_H
#define URSA_CHAN_WATCH_WATCH_H

#include "ursa/watch.h"

#include "../../core/wait_steps.h"
#include "ursa/notify.h"

/* The bits of `state` (called CLOSED, WRITER, ... in the comments). */
#define URSA__WATCH_CLOSED 1ull /* every sender is gone */
#define URSA__WATCH_WRITER 2ull /* a send holds the value */
#define URSA__WATCH_WWAIT 4ull  /* a writer may wait on `unlocked` */
#define URSA__WATCH_RXWAIT 8ull /* receivers may be queued on rxq */
#define URSA__WATCH_READER (1ull << 4)
#define URSA__WATCH_RMASK (((1ull << 28) - 1) << 4) /* borrows, bits 4..31 */
#define URSA__WATCH_HANDLE (1ull << 32)
#define URSA__WATCH_HMASK (~0ull << 32) /* handles, bits 32..63 */

struct ursa_watch {
    _Atomic uint64_t state;     /* CLOSED|WRITER|WWAIT|RXWAIT|readers|handles */
    _Atomic uint64_t version;   /* written by the WRITER holder only */
    ursa__waitq_t rxq;          /* receivers: version or CLOSED changed */
    ursa__waitq_t goneq;        /* senders: rx_count reached 0 */
    _Atomic uint32_t tx_count;  /* live sender handles */
    _Atomic uint32_t rx_count;  /* live receiver handles */
    ursa_notify_t unlocked;     /* writers: the borrows may be gone */
    size_t elem_size;
    _Alignas(max_align_t) unsigned char value[];
};

struct ursa_watch_tx {
    ursa_watch_t *w;
};

struct ursa_watch_rx {
    ursa_watch_t *w;
    uint64_t seen; /* version last seen; the handle's user only */
};

/* ---- what the files share (the file that defines each says more) ---- */

/* channel.c: frees the watch (handles and borrows are gone). */
void ursa__watch_destroy(ursa_watch_t *w);

/* A waiter of w's (its cancel finds the queue through owner). */
static inline void ursa__watch_node_init(ursa__waiter_t *n, ursa_waker_t waker,
                                         const ursa__wait_ops_t *ops, ursa_watch_t *w)
{
    ursa__waiter_init(n, waker, ops);
    n->owner = w;
}

/* channel.c: sets up a raw start's waiter: 0; -EINVAL (no wait or
 * waker); or -EINPROGRESS (still queued from a start that _finish left
 * "not woken yet"). */
int ursa__watch_start_node(ursa_wait_t *n, ursa_waker_t waker, const ursa__wait_ops_t *ops,
                           ursa_watch_t *w);
/* channel.c: the end of a raw start that queued n on q and looked again
 * (ready: what the look found). */
int ursa__watch_start_queued(ursa__waitq_t *q, ursa__waiter_t *n, bool ready);

static inline void ursa__watch_handle_ref(ursa_watch_t *w)
{
    /* relaxed: the caller already holds a handle. */
    atomic_fetch_add_explicit(&w->state, URSA__WATCH_HANDLE, memory_order_relaxed);
}

static inline void ursa__watch_handle_unref(ursa_watch_t *w)
{
    /* acq_rel: whoever brings handles and borrows to 0 sees every other
     * holder's writes before it frees. */
    uint64_t s = atomic_fetch_sub_explicit(&w->state, URSA__WATCH_HANDLE, memory_order_acq_rel) -
                 URSA__WATCH_HANDLE;
    if (!(s & (URSA__WATCH_HMASK | URSA__WATCH_RMASK)))
        ursa__watch_destroy(w);
}

#endif
