/* Oneshot: one atomic state word shared by both ends, one receiver-private
 * flag word, and a small spinlock that guards only the two wait slots (one
 * recv waiter, one closed() waiter).
 *
 * The send is the only lock-free writer of the state word: it copies the
 * value in (the buffer is the sender's until SENT is published; no one
 * reads it before), then one CAS publishes SENT | TX_DONE, but only while
 * RX_CLOSED is clear. Every other state change (close, drop, a wait
 * registering) is an RMW on the same word, so a close racing a send has
 * exactly one order: whichever RMW comes first in the word's order. The
 * uncontended send is that one CAS; the receiver takes the value with
 * plain loads and marks it TAKEN in its own word; init and destroy are
 * plain stores and loads.
 *
 * Waits: a waiter registers under the lock by setting RX_WAIT / TX_WAIT
 * (CAS against the send), and the bit is cleared when the slot empties. A
 * send that finds RX_WAIT takes the lock and decides the waiter. Between
 * that send's CAS and its lock the waiter is owed a decision: a cancel
 * that sees SENT with the waiter still queued waits for it (ends "decided")
 * so the sender's last touch of the channel precedes the waiter's return.
 * Wakers run after the lock is dropped, then the node is marked done. */
#include "ursa/oneshot.h"

#include <string.h>

#include "../core/ctx.h"
#include "../core/wait_steps.h"
#include "elem.h"

/* The bits of the two words (SENT, RX_CLOSED, ... in the comments). */
enum { /* state: shared by both ends */
       URSA__ONESHOT_SENT = 1u << 0,       /* a value is published */
       URSA__ONESHOT_TX_DONE = 1u << 1,    /* the sender sent (or failed to) */
       URSA__ONESHOT_TX_DROPPED = 1u << 2, /* the sender dropped */
       URSA__ONESHOT_RX_CLOSED = 1u << 3,  /* the receiver closed (or dropped) */
       URSA__ONESHOT_RX_WAIT = 1u << 4,    /* rx_w holds a queued recv wait */
       URSA__ONESHOT_TX_WAIT = 1u << 5,    /* tx_w holds a queued closed() wait */
};

enum { /* rxf: written only by the receiver end */
       URSA__ONESHOT_TAKEN = 1u << 0,      /* the value was received */
       URSA__ONESHOT_RX_DROPPED = 1u << 1, /* the receiver dropped */
};

static bool os_cancel(ursa__waiter_t *w);

static const ursa__wait_ops_t recv_ops = {URSA_WAIT_CHANNEL, os_cancel, NULL};
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, os_cancel, NULL};

static inline void *buf(ursa_oneshot_t *os)
{
    return os->ext ? os->ext : (void *)os->inline_buf;
}

static inline uint32_t load_state(const ursa_oneshot_t *os)
{
    /* acquire: pairs with the send's release CAS, so SENT brings the
     * copied-in value with it. */
    return atomic_load_explicit(&os->state, memory_order_acquire);
}

static inline uint32_t load_rxf(const ursa_oneshot_t *os)
{
    /* relaxed: only the receiver end writes rxf, one call at a time; a
     * hand-over between threads carries its own ordering. */
    return atomic_load_explicit(&os->rxf, memory_order_relaxed);
}

static inline void set_rxf(ursa_oneshot_t *os, uint32_t bits)
{
    /* relaxed, plain store: as in load_rxf (no other writer). */
    atomic_store_explicit(&os->rxf, load_rxf(os) | bits, memory_order_relaxed);
}

/* Under the lock: empties a wait slot, clears its bit and decides the
 * waiter into b (a select's whose claim is lost is dropped: what it waited
 * for stays); the caller wakes b after unlock. Once a waiter sees done it
 * may let go of the node and the channel: every touch of the channel
 * comes before (ursa__wake_node's release). */
static void decide(ursa_oneshot_t *os, ursa__waiter_t **slot, uint32_t bit, uint32_t how,
                   ursa__wake_batch_t *b)
{
    ursa__waiter_t *w = *slot;
    if (!w)
        return;
    *slot = NULL;
    /* relaxed: the slot and its bit change only under the lock; destroy's
     * acquire load is ordered after the waiter's done. */
    atomic_fetch_and_explicit(&os->state, ~bit, memory_order_relaxed);
    /* the waiter reads the channel state after seeing the decision */
    (void)ursa__waiter_decide_into(w, how, b);
}

int ursa_oneshot_init(ursa_oneshot_t *os, size_t elem_size, void *storage)
{
    if (!os || elem_size == 0 || (!storage && elem_size > URSA_ONESHOT_INLINE))
        return -EINVAL;
    atomic_init(&os->state, 0);
    atomic_init(&os->rxf, 0);
    atomic_init(&os->lock, 0);
    os->rx_w = os->tx_w = NULL;
    os->elem_size = elem_size;
    os->ext = storage;
    return 0;
}

int ursa_oneshot_destroy(ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    /* A queued wait keeps its bit set until its slot is emptied. */
    return ursa__destroy_check(load_state(os) & (URSA__ONESHOT_RX_WAIT | URSA__ONESHOT_TX_WAIT),
                               "oneshot destroyed while waited on");
}

/* A send found a recv wait queued (or being cancelled): decides it. Out
 * of line, so that the send that finds none makes no call. */
static __attribute__((noinline)) int send_decide(ursa_oneshot_t *os)
{
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    ursa__spin_lock(&os->lock);
    decide(os, &os->rx_w, URSA__ONESHOT_RX_WAIT, URSA__W_GRANTED, &b);
    ursa__spin_unlock(&os->lock);
    ursa__wake_batch_run(&b);
    return 0;
}

int ursa_oneshot_send(ursa_oneshot_t *os, const void *value)
{
    if (!os || !value)
        return -EINVAL;
    /* relaxed: only a first look; the CAS below decides. */
    uint32_t st = atomic_load_explicit(&os->state, memory_order_relaxed);
    bool copied = false;
    for (;;) {
        if (st & URSA__ONESHOT_TX_DROPPED)
            return -EINVAL;
        if (st & (URSA__ONESHOT_SENT | URSA__ONESHOT_TX_DONE))
            return -EALREADY;
        if (st & URSA__ONESHOT_RX_CLOSED) {
            /* relaxed: only ends the sender; the receiver needs nothing. */
            atomic_fetch_or_explicit(&os->state, URSA__ONESHOT_TX_DONE, memory_order_relaxed);
            return -EPIPE;
        }
        if (!copied) {
            /* Ours until SENT: a receiver never reads an unsent buffer,
             * and if the close wins below the bytes are simply unused. */
            ursa__copy_elem(buf(os), value, os->elem_size);
            copied = true;
        }
        /* release: publishes the copy with SENT (pairs with load_state);
         * the decision point against close (an RMW on the same word). */
        if (atomic_compare_exchange_weak_explicit(&os->state, &st,
                                                  st | URSA__ONESHOT_SENT | URSA__ONESHOT_TX_DONE,
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
    if (__builtin_expect(st & URSA__ONESHOT_RX_WAIT, 0))
        return send_decide(os);
    return 0;
}

int ursa_oneshot_sender_drop(ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    /* relaxed: under the lock; the receiver needs no data from us. */
    uint32_t st = atomic_load_explicit(&os->state, memory_order_relaxed);
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    int rc = 0;
    if (st & URSA__ONESHOT_TX_DROPPED)
        rc = -EINVAL;
    else {
        /* release: a receiver that sees TX_DROPPED sees what we did. */
        st = atomic_fetch_or_explicit(&os->state, URSA__ONESHOT_TX_DROPPED | URSA__ONESHOT_TX_DONE,
                                      memory_order_release);
        if (!(st & URSA__ONESHOT_SENT))
            decide(os, &os->rx_w, URSA__ONESHOT_RX_WAIT, URSA__W_CLOSED, &b);
    }
    ursa__spin_unlock(&os->lock);
    ursa__wake_batch_run(&b);
    if (rc)
        ursa__report_misuse("oneshot sender dropped twice", NULL);
    return rc;
}

/* What a receive would do now: 1 wait, else its result. */
static int rx_eval(uint32_t st, uint32_t rxf)
{
    if (rxf & URSA__ONESHOT_RX_DROPPED)
        return -EINVAL;
    if (rxf & URSA__ONESHOT_TAKEN)
        return -EALREADY;
    if (st & URSA__ONESHOT_SENT)
        return 0;
    if (st & (URSA__ONESHOT_TX_DONE | URSA__ONESHOT_TX_DROPPED | URSA__ONESHOT_RX_CLOSED))
        return -EPIPE; /* nothing sent and nothing ever will be */
    return 1;
}

/* With rx_eval() == 0 seen through load_state (acquire): claims the value.
 * After SENT nobody writes the buffer. */
static int take(ursa_oneshot_t *os, void *out)
{
    ursa__copy_elem(out, buf(os), os->elem_size);
    set_rxf(os, URSA__ONESHOT_TAKEN);
    return 0;
}

/* Finishes a decided recv wait: the value or -EPIPE. */
static int recv_result(ursa_oneshot_t *os, void *out)
{
    int r = rx_eval(load_state(os), load_rxf(os));
    if (r == 0)
        return take(os, out);
    return r == 1 ? -EPIPE : r; /* a decided wait is never "pending" */
}

static bool os_cancel(ursa__waiter_t *w)
{
    ursa_oneshot_t *os = w->owner;
    ursa__spin_lock(&os->lock);
    /* relaxed: the slots and their waiters' states change under the lock. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) != URSA__W_QUEUED) {
        ursa__spin_unlock(&os->lock);
        ursa__wait_settle(w);
        return ursa__waiter_dropped(w);
    }
    if (os->rx_w == w) {
        /* Clear RX_WAIT only while SENT is clear: a CAS, so that it and the
         * send's CAS decide in one order. SENT with our bit set means the
         * sender's CAS saw RX_WAIT and it is on its way to decide us (under
         * this lock): we wait for it, so that its last touch of the oneshot
         * precedes our return (a load then a clear let the send slip in
         * between: regression test_cancel_send_lifetime). relaxed: the
         * value comes to the receiver through load_state's acquire. */
        uint32_t st = atomic_load_explicit(&os->state, memory_order_relaxed);
        do {
            if (st & URSA__ONESHOT_SENT) {
                ursa__spin_unlock(&os->lock);
                ursa__wait_settle(w); /* its waker call returns, then done */
                return ursa__waiter_dropped(w);
            }
        } while (!atomic_compare_exchange_weak_explicit(&os->state, &st,
                                                        st & ~(uint32_t)URSA__ONESHOT_RX_WAIT,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed));
        os->rx_w = NULL;
    } else if (os->tx_w == w) {
        os->tx_w = NULL;
        /* relaxed: as above. */
        atomic_fetch_and_explicit(&os->state, ~(uint32_t)URSA__ONESHOT_TX_WAIT,
                                  memory_order_relaxed);
    }
    /* relaxed: our own node, out of its slot under the lock. */
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    ursa__spin_unlock(&os->lock);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
    return true;
}

/* Starts a recv wait: 0 decided now (recv_result gives the outcome),
 * -EINPROGRESS queued, or an error (w not started). */
static int recv_start(void *oneshot, ursa__waiter_t *w)
{
    ursa_oneshot_t *os = oneshot;
    w->owner = os;
    ursa__spin_lock(&os->lock);
    uint32_t rxf = load_rxf(os);
    uint32_t st = load_state(os);
    for (;;) {
        int r = rx_eval(st, rxf);
        if (r == -EINVAL || r == -EALREADY) {
            ursa__spin_unlock(&os->lock);
            return r;
        }
        if (r != 1) {
            /* A select's wait takes its claim (the value stays until the
             * finish takes it: the receiver is the select's caller). */
            bool mine = ursa__wait_start_claim(w);
            ursa__spin_unlock(&os->lock);
            if (!mine)
                return -EINPROGRESS;
            ursa__wait_complete_now(w, r == 0 ? URSA__W_GRANTED : URSA__W_CLOSED);
            return 0;
        }
        if (os->rx_w) {
            ursa__spin_unlock(&os->lock);
            return -EBUSY;
        }
        /* acquire: a SENT we lose to brings the value. The CAS is the
         * registration's decision point against the send's CAS. */
        if (atomic_compare_exchange_weak_explicit(&os->state, &st, st | URSA__ONESHOT_RX_WAIT,
                                                  memory_order_acquire, memory_order_acquire))
            break;
    }
    /* relaxed: published by the unlock (a send that saw RX_WAIT reads the
     * slot after it). */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    os->rx_w = w;
    ursa__spin_unlock(&os->lock);
    return -EINPROGRESS;
}

/* Nothing to take yet: waits. Out of line, so that a recv that finds its
 * value makes no call. */
static __attribute__((noinline)) int recv_wait(ursa_oneshot_t *os, void *out,
                                               ursa_time_t deadline, const ursa_site_t *site)
{
    /* Withdrawn: the value (if any) stays put. Decided anyway: a value or
     * a close raced the deadline. */
    int rc = ursa__wait_blocking(os, recv_start, &recv_ops, deadline, site);
    return rc ? rc : recv_result(os, out);
}

int ursa_oneshot_recv_at(ursa_oneshot_t *os, void *out, ursa_time_t deadline,
                         const ursa_site_t *site)
{
    if (!os || !out)
        return -EINVAL;
    int r = rx_eval(load_state(os), load_rxf(os));
    if (__builtin_expect(r == 0, 1))
        return take(os, out);
    if (r != 1)
        return r;
    return recv_wait(os, out, deadline, site);
}

int ursa_oneshot_try_recv(ursa_oneshot_t *os, void *out)
{
    return ursa_oneshot_recv_at(os, out, URSA_NOW, NULL);
}

int ursa_oneshot_recv_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                               const ursa_site_t *site)
{
    ursa__waiter_t *n = os ? ursa__wait_raw_init(w, waker, &recv_ops, site) : NULL;
    return n ? recv_start(os, n) : -EINVAL;
}

int ursa_oneshot_recv_finish(ursa_oneshot_t *os, ursa_wait_t *w, void *out)
{
    if (!out)
        return -EINVAL;
    int rc = ursa__wait_finish_of(w, os, &recv_ops);
    return rc ? rc : recv_result(os, out);
}

/* Receiver gone: close (and maybe drop). Wakes the closed() waiter, and a
 * recv wait that can now never get a value. */
static int rx_close(ursa_oneshot_t *os, bool drop)
{
    if (!os)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    if (load_rxf(os) & URSA__ONESHOT_RX_DROPPED) {
        ursa__spin_unlock(&os->lock);
        if (drop)
            ursa__report_misuse("oneshot receiver dropped twice", NULL);
        return -EINVAL;
    }
    if (drop)
        set_rxf(os, URSA__ONESHOT_RX_DROPPED);
    /* release: a sender that sees the close (is_closed's acquire) sees
     * what the receiver did before it. The RMW orders it against the
     * send's CAS: prev says whether the send came first. */
    uint32_t prev =
        atomic_fetch_or_explicit(&os->state, URSA__ONESHOT_RX_CLOSED, memory_order_release);
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    decide(os, &os->tx_w, URSA__ONESHOT_TX_WAIT, URSA__W_GRANTED, &b);
    /* After SENT a queued recv wait is the sender's to decide: its CAS saw
     * RX_WAIT (registration is a CAS that fails on SENT). Deciding it here
     * too would let the wait's owner finish and free the oneshot while
     * the sender still heads for the lock. */
    if (!(prev & URSA__ONESHOT_SENT))
        decide(os, &os->rx_w, URSA__ONESHOT_RX_WAIT, URSA__W_CLOSED, &b);
    ursa__spin_unlock(&os->lock);
    ursa__wake_batch_run(&b);
    return 0;
}

int ursa_oneshot_close(ursa_oneshot_t *os)
{
    return rx_close(os, false);
}

int ursa_oneshot_receiver_drop(ursa_oneshot_t *os)
{
    return rx_close(os, true);
}

int ursa_oneshot_is_closed(const ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    /* acquire: a sender that sees the close also sees what came before. */
    return (load_state(os) & URSA__ONESHOT_RX_CLOSED) ? 1 : 0;
}

int ursa_oneshot_is_terminated(const ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    int r = rx_eval(load_state(os), load_rxf(os));
    return r == -EINVAL ? r : r == -EALREADY || r == -EPIPE;
}

int ursa_oneshot_is_empty(const ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    int r = rx_eval(load_state(os), load_rxf(os));
    return r == -EINVAL ? r : r != 0;
}

static int closed_start(void *oneshot, ursa__waiter_t *w)
{
    ursa_oneshot_t *os = oneshot;
    w->owner = os;
    ursa__spin_lock(&os->lock);
    /* RX_CLOSED changes only under the lock: this look is final. */
    if (load_state(os) & URSA__ONESHOT_RX_CLOSED) {
        ursa__spin_unlock(&os->lock);
        return ursa__wait_start_ready(w);
    }
    if (os->tx_w) {
        ursa__spin_unlock(&os->lock);
        return -EBUSY;
    }
    /* relaxed: under the lock, which orders every change of the bits. */
    atomic_fetch_or_explicit(&os->state, URSA__ONESHOT_TX_WAIT, memory_order_relaxed);
    /* relaxed: published by the unlock. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    os->tx_w = w;
    ursa__spin_unlock(&os->lock);
    return -EINPROGRESS;
}

int ursa_oneshot_closed_at(ursa_oneshot_t *os, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!os)
        return -EINVAL;
    if (ursa_oneshot_is_closed(os) == 1)
        return 0;
    /* 0 also when the close landed as the deadline or cancel fired */
    return ursa__wait_blocking(os, closed_start, &closed_ops, deadline, site);
}

int ursa_oneshot_closed_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                                 const ursa_site_t *site)
{
    ursa__waiter_t *n = os ? ursa__wait_raw_init(w, waker, &closed_ops, site) : NULL;
    return n ? closed_start(os, n) : -EINVAL;
}

int ursa_oneshot_closed_finish(ursa_oneshot_t *os, ursa_wait_t *w)
{
    return ursa__wait_finish_of(w, os, &closed_ops);
}
