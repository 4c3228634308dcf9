/* The mpsc channel's object and what its files share.
 *
 * mpsc channel: lock-free producer storage, the batch semaphore for
 * bounded capacity, and one receiver wait slot.
 *
 * Cost per message (hot path; a locked RMW or fence is ~5 ns here, so the
 * design counts them): bounded send = semaphore CAS + tail fetch_add,
 * receive = none; unbounded send = tail fetch_add, receive = none. No
 * fence on either side unless someone goes to sleep.
 *
 * Storage.
 *  - Bounded (capacity > 0): a ring of exactly `capacity` slots, each with a
 *    sequence number (Vyukov). A sender claims position p with one fetch_add
 *    on `tail`, writes slot p % cap and publishes seq = p + 1; the receiver
 *    reads in order and frees the slot with seq = p + cap. A sender holds a
 *    permit before it claims, so its slot is always free (it checks seq
 *    anyway). Memory is exact: capacity 1 costs one slot. The ring starts
 *    zeroed and untouched (ring.h, zmem.h); a big one is swapped for a
 *    fresh one when the channel runs empty (shrink.c), so its resident
 *    memory follows the messages, not the bound.
 *  - Unbounded (capacity 0): Tokio's design — a linked list of blocks of B
 *    slots (B a power of two <= 32, smaller for big elements) with a ready
 *    flag per slot (a plain release store, no RMW on a shared bitmap).
 *    Senders fetch_add `tail`, walk from `block_tail` (appending blocks as
 *    needed), write, set the slot's flag. A sender that walks past a block
 *    whose slots are all written moves block_tail on and records the tail
 *    position it saw; the receiver recycles a block once it has consumed
 *    every position below that mark (no sender can still hold it) by
 *    appending it at the end of the list (or freeing it).
 *
 * Permits (bounded). The receiver does not return a message's permit: it
 * advances `head`, and the permits of positions `returned`..head are owed.
 * A sender whose semaphore try fails harvests them (see lazy.c for how
 * a sleeping sender is never left waiting for owed permits, and a try
 * never misses one on its way into the semaphore). Without membarrier the
 * receiver returns each permit (eager).
 *
 * End of stream (the receiver's -EPIPE): (the life word's CLOSED, or no
 * strong sender) and nothing can still arrive.
 *  - Bounded: every permit is back — semaphore free + owed == capacity, no
 *    waiter queued. A message holds its permit until it is consumed, a
 *    permit or reserve holds its own, so this also means the queue is
 *    empty. No counting on the send path; whoever returns a permit outside
 *    the receiver (release, cancel, leak sweep, harvest of a closed
 *    channel) runs end_check.
 *  - Unbounded: `life` counts permits out (reserves only; plain sends are
 *    not counted). Close, or the last permit of a closed channel, "seals":
 *    sets URSA__MPSC_TAIL_CLOSED in `tail` and records `end`. A plain
 *    send that claims after the seal sees it and sends nothing (-EPIPE);
 *    one that claims before it is below `end` and is delivered. Sealed: done at head ==
 *    end; not sealed and no strong sender: no permit out and queue empty.
 *
 * Receiver wait: one atomic pointer `rx_wait`. Whoever exchanges it away
 * from the node decides it: a sender (GRANTED, then the waker, then done)
 * or the receiver withdrawing it (CANCELLED). Dekker without a sender
 * fence: a sender's claim on `tail` is a seq_cst RMW and after publishing
 * it loads rx_wait (seq_cst); the receiver stores rx_wait, fences
 * (seq_cst) and loads `tail`. Either the sender sees the node (and wakes
 * it) or the receiver sees the claim (and does not sleep: it waits a few
 * instructions for the claimed slot, then looks again, minding its
 * deadline). Other changes that may end the stream (drop, close, permits
 * back) use a fence and the ordinary Dekker pair (end_check). A receiver
 * woken from another thread polls a while before it sleeps (rx_poll).
 *
 * Send bias (bounded): the making thread's plain sends use no atomic RMW
 * until another thread needs the shared view; see send_bias.c. */
#ifndef URSA_CHAN_MPSC_MPSC_H
#define URSA_CHAN_MPSC_MPSC_H

#include "ursa/mpsc.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "../chan.h"
#include "../elem.h"
#include "../ring.h"

/* Unbounded: set in `tail` once the channel is closed and no permit is out
 * ("sealed"); a sender whose claim returns it sends nothing. */
#define URSA__MPSC_TAIL_CLOSED ((uint64_t)1 << 63)
#define URSA__MPSC_NO_END UINT64_MAX

typedef struct ursa__mpsc_blk {
    _Atomic(struct ursa__mpsc_blk *) next;
    uint64_t start;             /* first position; set before the block is linked */
    _Atomic uint8_t ready[32];  /* slot i written (bslots <= 32) */
    _Atomic uint64_t observed;  /* tail position when block_tail moved past us */
    _Atomic uint32_t released;  /* block_tail moved past us; observed is valid */
    uint32_t pad_;
    alignas(16) unsigned char data[];
} ursa__mpsc_blk_t;

/* How a sender that queues for a slot and the receiver that frees one see
 * each other (lazy.c): membarrier on the sender's side (MEMBARRIER), then,
 * once senders queue often, a fence on each side (FENCED); SWITCHING in
 * between. */
enum { URSA__MPSC_LAZY_MEMBARRIER, URSA__MPSC_LAZY_SWITCHING, URSA__MPSC_LAZY_FENCED };

struct ursa_mpsc {
    /* life word, references, the slots' semaphore (chan.h); must be first.
     * The life word's permits out are unbounded reserves only. */
    ursa__chan_t chan;
    /* read-mostly */
    size_t elem_size, stride; /* stride: element rounded up (+ seq in the ring) */
    uint64_t cap;             /* 0: unbounded */
    ursa__ring_div_t div;     /* ursa__ring_div(cap) */
    uint64_t bslots;          /* unbounded: slots per block */
    ursa_mpsc_dtor_t dtor;
    unsigned char *ring;      /* bounded; swapped by shrink.c under every permit */
    uint64_t ring_from;       /* the ring's first position (ring.h; shrink.c) */
    bool shrink;              /* the ring is big enough for shrink.c */
    _Atomic size_t mem;       /* bytes allocated */
    _Atomic(ursa__waiter_t *) rx_wait;
    /* senders' line */
    alignas(64) _Atomic uint64_t tail;
    _Atomic(ursa__mpsc_blk_t *) block_tail;
    _Atomic uint64_t returned; /* lazy: consumed positions whose permits went back */
    _Atomic uint32_t harvesting; /* lazy: owed permits on their way into the semaphore */
    _Atomic uint32_t tx_sleeps;  /* lazy: sender waits that queued (lazy.c) */
    _Atomic uint64_t sbias;      /* send bias: the owner's thread uid, or 0 */
    _Atomic uint32_t sbias_busy; /* the owner is in its fast path */
    _Atomic uint32_t sbias_lock; /* revokes */
    uint64_t sbias_credit;       /* permits the owner took in bulk */
    /* receiver's line */
    alignas(64) _Atomic uint64_t head; /* consumed positions (lazy: permits owed) */
    _Atomic uint32_t tx_waiting; /* lazy: senders in the wait path */
    _Atomic uint32_t fence_mode; /* lazy: URSA__MPSC_LAZY_*, how a queued sender is seen */
    bool lazy; /* bounded: the receiver returns permits lazily (read per message) */
    ursa__mpsc_blk_t *head_block, *free_head;
    _Atomic uint64_t end; /* unbounded: the position sealed at; URSA__MPSC_NO_END */
    uint64_t rx_thread;       /* the waiting receiver's thread uid (rx_start) */
    uint64_t rx_bias_seen;    /* the receiver's thread that looked at sbias last
                               * (UINT64_MAX: no bias any more) */
    _Atomic uint32_t rx_poll; /* its last wake came from another thread */
    /* The receiver's poll (recv.c), its own: the gap between two looks,
     * the position when a look last found a message, waits since a probe. */
    uint32_t rx_gap_ns, rx_probe;
    uint64_t rx_found_at;
    bool rx_found;
};

_Static_assert(offsetof(ursa_mpsc_t, chan) == 0, "the shared part comes first");

static inline ursa_mpsc_t *ursa__mpsc_of(ursa__chan_t *c)
{
    return (ursa_mpsc_t *)c;
}

/* End of stream, given a life word read before the queue was found empty:
 * (CLOSED or no strong sender) and nothing can still arrive. Bounded: every
 * semaphore permit is back (a message holds its permit until the receiver
 * consumed it; a reserve or permit holds its own). Unbounded: no permit
 * out (counted in life). */
static inline bool ursa__mpsc_ended(ursa_mpsc_t *ch, uint64_t l)
{
    if (!(l & URSA__CHAN_CLOSED) && (l & URSA__CHAN_TX_MASK) != 0)
        return false;
    if (ch->cap) {
        uint64_t f = ursa__sema_free(&ch->chan.sema);
        if (f == UINT64_MAX)
            return false; /* a reserve is queued */
        if (ch->lazy) {
            /* acquire, in this order after the semaphore (returned, then
             * head): a permit being harvested is counted at most once
             * (maybe not at all: the harvester re-checks, see harvest). */
            uint64_t r = atomic_load_explicit(&ch->returned, memory_order_acquire);
            f += atomic_load_explicit(&ch->head, memory_order_acquire) - r;
        }
        return f == ch->cap;
    }
    /* acquire: pairs with seal's release store. */
    uint64_t e = atomic_load_explicit(&ch->end, memory_order_acquire);
    if (e != URSA__MPSC_NO_END) /* sealed: every position below end is (being) written */
        /* relaxed: the receiver's own counter (others: see end_check). */
        return atomic_load_explicit(&ch->head, memory_order_relaxed) >= e;
    /* Not sealed: no strong sender (so no plain send in flight) and no
     * permit out; the caller found the queue empty. */
    return (l & URSA__CHAN_TX_MASK) == 0 && (l >> 32) == 0;
}

static inline unsigned char *ursa__mpsc_ring_slot(ursa_mpsc_t *ch, uint64_t pos)
{
    return ursa__ring_slot(ch->ring, ch->cap, ch->div, ch->stride, pos);
}

/* ---- what the files share (the file that defines each says more) ---- */

/* recv.c: grants the receiver's wait node, if one is registered. The
 * caller has ordered what it changed before this (see the header
 * comment). */
void ursa__mpsc_wake_rx(ursa_mpsc_t *ch);

/* channel.c: something that may end the stream changed (life, or a permit
 * came back): wake the receiver if the stream has ended. */
void ursa__mpsc_end_check(ursa_mpsc_t *ch);
/* channel.c: an unbounded permit (or reserve) ends and stops counting,
 * which may be what a closed receiver waits for. */
void ursa__mpsc_unb_done(ursa_mpsc_t *ch);
/* channel.c: n reserved slots are given up without a message (bounded:
 * their permits go back). */
void ursa__mpsc_give_up(ursa_mpsc_t *ch, uint64_t n);

/* send.c: reserves n slots: bounded, n semaphore permits; unbounded, one
 * "permit out" in life. 0, or an error with nothing reserved and nothing
 * counted. c and site may be NULL. */
int ursa__mpsc_acquire(ursa_mpsc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                       const ursa_site_t *site);

/* queue.c: writes value at a new position and wakes the receiver if it
 * waits. False (nothing written): an unbounded channel was sealed. */
bool ursa__mpsc_push(ursa_mpsc_t *ch, const void *value);
/* queue.c: the address of the next element if it is ready, else NULL
 * (the receiver, one at a time). */
unsigned char *ursa__mpsc_peek(ursa_mpsc_t *ch);
/* queue.c: consumes e, the element peek returned (bounded: its slot's
 * seq is just before it, so the slot is not looked up again). */
void ursa__mpsc_consumed(ursa_mpsc_t *ch, unsigned char *e);

/* Takes the next message into out, if one is ready. */
static inline bool ursa__mpsc_pop(ursa_mpsc_t *ch, void *out)
{
    unsigned char *e = ursa__mpsc_peek(ch);
    if (!e)
        return false;
    ursa__copy_elem(out, e, ch->elem_size);
    ursa__mpsc_consumed(ch, e);
    return true;
}

/* blocks.c: a new unbounded block for positions start.., or NULL. */
ursa__mpsc_blk_t *ursa__mpsc_blk_new(ursa_mpsc_t *ch, uint64_t start);
void ursa__mpsc_blk_free(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b);
/* blocks.c: the block after b, appended if there is none yet. */
ursa__mpsc_blk_t *ursa__mpsc_grow(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b);
/* blocks.c: every slot of b is written. */
bool ursa__mpsc_all_written(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b);
/* blocks.c: recycles the blocks the receiver left behind that no sender
 * can still hold (head: its new position). */
void ursa__mpsc_reclaim(ursa_mpsc_t *ch, uint64_t head);

/* shrink.c: the receiver found the queue empty: swaps in a fresh ring if
 * the current one has URSA__RING_SHRINK_MIN bytes written (ring.h) and
 * every permit can be taken now. Bounded channels whose ring is bigger
 * than that. */
void ursa__mpsc_shrink(ursa_mpsc_t *ch);

/* lazy.c: whether lazy permit return (and so the send bias) is on. */
bool ursa__mpsc_lazy_usable(void);
/* lazy.c: keeps `keep` owed permits for the caller (true), or moves the
 * owed permits into the semaphore (false). */
bool ursa__mpsc_harvest(ursa_mpsc_t *ch, uint64_t keep);
/* lazy.c: a sender's try for n permits, from the semaphore or what the
 * receiver owes: true (taken), false only if none were free at some
 * moment of the call, or senders are queued (never while owed permits are
 * on their way into the semaphore). */
bool ursa__mpsc_lazy_try(ursa_mpsc_t *ch, uint64_t n);
/* lazy.c: a sender enters, has queued in, and leaves the semaphore's wait. */
void ursa__mpsc_wait_enter(ursa_mpsc_t *ch);
void ursa__mpsc_wait_queued(ursa_mpsc_t *ch);
void ursa__mpsc_wait_leave(ursa_mpsc_t *ch);

#endif
