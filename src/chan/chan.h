/* What the mpsc and mpmc channels share: the first member of both channel
 * objects (ursa__chan_t: life word, references, the slot semaphore), and
 * the sending half written once in senders.c (sender handles, reserves,
 * send permits) that reaches each channel's own mechanisms through its
 * ursa__chan_ops_t.
 *
 * `life` = URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE | strong senders
 * (URSA__CHAN_TX_ONE each) | permits out (URSA__CHAN_PERM_ONE each; mpsc
 * counts only unbounded reserves there, mpmc every permit and reserve in
 * progress). One rule for both: a reserve still queued when the channel
 * closes fails and stops counting at the close (mpmc's closer takes it
 * off, see ursa_mpmc_close), so it never keeps a closed channel open; a
 * granted one holds its slots and does. `refs` counts what keeps the
 * memory: handles, permits, raw reserves. What a change of `life` may end
 * differs (mpsc: end_check and the unbounded seal; mpmc: terminal() and
 * wake_all), so the helpers here only do the RMW and return what the
 * caller decides on. */
#ifndef URSA_CHAN_CHAN_H
#define URSA_CHAN_CHAN_H

#include "../core/ctx.h"
#include "../core/sema.h"

#define URSA__CHAN_CLOSED ((uint64_t)1)  /* the receiving side closed */
#define URSA__CHAN_RX_GONE ((uint64_t)2) /* the (last) receiver dropped */
#define URSA__CHAN_TX_ONE ((uint64_t)4)  /* one strong sender */
#define URSA__CHAN_TX_MASK ((uint64_t)0xfffffffc)
#define URSA__CHAN_PERM_ONE ((uint64_t)1 << 32) /* one permit out */

/* Largest capacity and reserve count of both channels
 * (URSA_MPSC_MAX_CAPACITY, URSA_MPMC_MAX_CAPACITY). */
#define URSA__CHAN_MAX_CAPACITY ((uint64_t)1 << 40)

typedef struct ursa__chan ursa__chan_t;

/* What differs between the two channels under the shared sending half. */
typedef struct ursa__chan_ops {
    /* The send permits' obligation kind; its release_leaked is
     * ursa__chan_permit_leaked. */
    ursa_oblig_kind_t permit_kind;
    /* Capacity given at creation (0: unbounded). */
    uint64_t (*capacity)(const ursa__chan_t *ch);
    /* The last reference went: frees the channel. */
    void (*destroy)(ursa__chan_t *ch);
    /* A strong sender dropped; life is the word after its drop. */
    void (*sender_dropped)(ursa__chan_t *ch, uint64_t life);
    /* A blocking reserve of n slots (arguments checked): 0, or an error
     * with nothing reserved and nothing counted. */
    int (*reserve)(ursa__chan_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                   const ursa_site_t *site);
    /* A raw reserve begins, before it queues: true, or false (closed:
     * nothing counted). */
    bool (*raw_begin)(ursa__chan_t *ch);
    /* n reserved slots go back unused. */
    void (*give_up)(ursa__chan_t *ch, uint64_t n);
    /* A permit, or a reserve that will not become one, stops counting as
     * a permit out. */
    void (*permit_end)(ursa__chan_t *ch);
    /* Sends *value with a slot the caller holds (the receiver is there). */
    void (*push)(ursa__chan_t *ch, const void *value);
    /* Optional (NULL: nothing to do). Semaphore permits came back outside
     * the receiver (a cancel): that may end the stream. */
    void (*permits_back)(ursa__chan_t *ch);
    /* Optional: the steps around a sender's semaphore wait (mpsc's lazy
     * permit return): it enters, it queued, it leaves. */
    void (*wait_enter)(ursa__chan_t *ch);
    void (*wait_queued)(ursa__chan_t *ch);
    void (*wait_leave)(ursa__chan_t *ch);
} ursa__chan_ops_t;

/* The first member of struct ursa_mpsc and struct ursa_mpmc, so that a
 * pointer to either channel converts to a pointer to its ursa__chan_t. */
struct ursa__chan {
    const ursa__chan_ops_t *ops;
    _Atomic uint64_t refs; /* handles, permits, raw reserves; freed at 0 */
    _Atomic uint64_t life; /* CLOSED | RX_GONE | strong senders | permits out */
    _Atomic uint64_t weak; /* weak sender handles (a statistic: queries only) */
    ursa__sema_t sema;     /* bounded: the free slots; both: closing */
    ursa__waitq_t closedq; /* senders waiting for the close (sender_closed.c) */
    /* Ring swaps (mpsc and mpmc shrink.c), which hold every permit for a
     * few instructions: low half, how many are under way; high half, how
     * many began. A try that found no permit waits them out. */
    _Atomic uint64_t swaps;
};

/* A channel's shared part (ch: a struct ursa_mpsc or ursa_mpmc, or NULL). */
static inline ursa__chan_t *ursa__chan_of(void *ch)
{
    return ch;
}

static inline void ursa__chan_init(ursa__chan_t *ch, const ursa__chan_ops_t *ops,
                                   uint64_t slots)
{
    ch->ops = ops;
    atomic_init(&ch->refs, 2); /* the first receiver and sender */
    atomic_init(&ch->life, URSA__CHAN_TX_ONE);
    atomic_init(&ch->weak, 0);
    ursa__sema_init(&ch->sema, slots);
    ursa__waitq_init(&ch->closedq);
    atomic_init(&ch->swaps, 0);
}

/* A ring swap takes every permit for a few instructions, then gives them
 * back: a try in between would find none in a channel that is not full.
 * swap_begin before the first take, swap_end after the last release. */
#define URSA__CHAN_SWAP_BEGAN ((uint64_t)1 << 32)
#define URSA__CHAN_SWAPS_ACTIVE (URSA__CHAN_SWAP_BEGAN - 1)

static inline void ursa__chan_swap_begin(ursa__chan_t *ch)
{
    /* relaxed + seq_cst fence: Dekker with try_again's (chan/senders.c) fence
     * and load. A try that saw a permit count our takes produced (or a
     * later one) sees us counted here. */
    atomic_fetch_add_explicit(&ch->swaps, URSA__CHAN_SWAP_BEGAN + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

static inline void ursa__chan_swap_end(ursa__chan_t *ch)
{
    /* release: a try that sees us done sees the permits given back. */
    atomic_fetch_sub_explicit(&ch->swaps, 1, memory_order_release);
}

static inline void ursa__chan_ref_get(ursa__chan_t *ch)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}

/* Drops a reference; the last one destroys the channel. */
static inline void ursa__chan_ref_put(ursa__chan_t *ch)
{
    /* acq_rel: every holder's writes happen-before the destruction. */
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) == 1)
        ch->ops->destroy(ch);
}

/* n counted permits (or reserves) end: the new life word. */
static inline uint64_t ursa__chan_life_permits_end(ursa__chan_t *ch, uint64_t n)
{
    /* acq_rel: our message (if any) was published before; receivers
     * acquire the count before they look at the queue. */
    return atomic_fetch_sub_explicit(&ch->life, n * URSA__CHAN_PERM_ONE, memory_order_acq_rel) -
           n * URSA__CHAN_PERM_ONE;
}

/* A counted permit (or reserve) ends: the new life word. */
static inline uint64_t ursa__chan_life_permit_end(ursa__chan_t *ch)
{
    return ursa__chan_life_permits_end(ch, 1);
}

/* Counts a permit out: the life word as it was (URSA__CHAN_CLOSED in it:
 * the caller ends the count again and fails). */
static inline uint64_t ursa__chan_life_permit_begin(ursa__chan_t *ch)
{
    /* acq_rel: counted before the message this permit may send, so a
     * receiver that reads "no permit out" cannot miss it; the CLOSED we
     * read is ordered against close's RMW on the same word. */
    return atomic_fetch_add_explicit(&ch->life, URSA__CHAN_PERM_ONE, memory_order_acq_rel);
}

/* Closes: the life word as it was. */
static inline uint64_t ursa__chan_life_close(ursa__chan_t *ch)
{
    /* acq_rel: orders against reserves that count themselves first. */
    return atomic_fetch_or_explicit(&ch->life, URSA__CHAN_CLOSED, memory_order_acq_rel);
}

/* sender_closed.c: the close happened (CLOSED is in life): wakes the
 * senders waiting in ursa_mpsc_closed / ursa_mpmc_closed. */
void ursa__chan_close_wake(ursa__chan_t *ch);

/* The last receiver went: senders stop sending. */
static inline void ursa__chan_life_rx_gone(ursa__chan_t *ch)
{
    /* acq_rel: paired with the senders' acquire load of life. */
    atomic_fetch_or_explicit(&ch->life, URSA__CHAN_RX_GONE, memory_order_acq_rel);
}

/* The last receiver is gone (senders' check before they send). */
static inline bool ursa__chan_rx_gone(ursa__chan_t *ch)
{
    /* acquire: paired with ursa__chan_life_rx_gone. */
    return atomic_load_explicit(&ch->life, memory_order_acquire) & URSA__CHAN_RX_GONE;
}

/* The waits of a blocking reserve (on ch->sema). */
extern const ursa__wait_ops_t ursa__chan_reserve_ops;

/* ursa__chan_sema_wait's result when the close failed the wait while it
 * was queued: the closer ended what the wait counted (mpmc's life word);
 * the caller reports -EPIPE. */
#define URSA__CHAN_CLOSED_QUEUED 1

/* The slow half of a blocking reserve of n slots: waits in the
 * semaphore's FIFO (with the channel's wait_enter / wait_queued /
 * wait_leave steps around it). 0 (n slots reserved), -EPIPE (closed
 * before it queued), URSA__CHAN_CLOSED_QUEUED, -EAGAIN (URSA_NOW),
 * -ETIMEDOUT, -ECANCELED. c may be NULL. */
int ursa__chan_sema_wait(ursa__chan_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                         const ursa_site_t *site);

/* The permits' release_leaked (target: the ursa__chan_t). */
void ursa__chan_permit_leaked(void *target, uint64_t n);

#endif
