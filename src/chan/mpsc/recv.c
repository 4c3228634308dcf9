/* The mpsc channel's receiver: its one wait slot `rx_wait` and how a
 * sender grants it (see "Receiver wait" in mpsc.h), the polling a
 * receiver woken from another thread does, and the receive calls. */
#include <sched.h>

#include "../../core/wait_steps.h"
#include "mpsc.h"
#include "send_bias.h"

static bool rx_cancel(ursa__waiter_t *w);
static const ursa__wait_ops_t rx_ops = {URSA_WAIT_CHANNEL, rx_cancel, NULL};

/* Grants the receiver's node, which the caller took out of rx_wait (a
 * select's whose claim is lost is dropped: the message stays queued). */
static void wake_node(ursa_mpsc_t *ch, ursa__waiter_t *w)
{
    /* relaxed: a hint for rx_wait. rx_thread was written before the node
     * was published, which the caller's take acquired. */
    bool remote = ch->rx_thread != ursa__thread_uid();
    if (atomic_load_explicit(&ch->rx_poll, memory_order_relaxed) != remote)
        atomic_store_explicit(&ch->rx_poll, remote, memory_order_relaxed);
    /* The waiter reads the decision, and our writes before it. */
    (void)ursa__waiter_decide_now(w, URSA__W_GRANTED);
}

void ursa__mpsc_wake_rx(ursa_mpsc_t *ch)
{
    /* relaxed: a hint; the exchange below decides. */
    if (!atomic_load_explicit(&ch->rx_wait, memory_order_relaxed))
        return;
    /* acq_rel: acquire the node's fields; whoever swaps it out decides it. */
    ursa__waiter_t *w = atomic_exchange_explicit(&ch->rx_wait, NULL, memory_order_acq_rel);
    if (w)
        wake_node(ch, w);
}

static bool rx_ready(ursa_mpsc_t *ch)
{
    /* acquire, and read before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    return ursa__mpsc_peek(ch) || ursa__mpsc_ended(ch, l);
}

/* Registers w as the receiver's wait: 0 ready now (w done), -EINPROGRESS. */
static int rx_start(ursa_mpsc_t *ch, ursa__waiter_t *w)
{
    w->owner = ch;
    /* The owner's sends wake us by program order only if we queue on its
     * thread (see send bias). */
    (void)ursa__mpsc_sbias_revoke_unless_mine(ch);
    /* relaxed: published with the node by the release store of rx_wait. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    ch->rx_thread = ursa__thread_uid();
    /* release: the node's fields (and rx_thread) reach the sender that
     * takes it. */
    atomic_store_explicit(&ch->rx_wait, w, memory_order_release);
    /* seq_cst fence: orders the store above before the loads below, against
     * push (seq_cst claim on tail, then seq_cst load of rx_wait) and
     * end_check (change, fence, load): see push and the header comment. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: only we write head. seq_cst: a claim ordered before our
     * fence in S is seen here. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_seq_cst) & ~URSA__MPSC_TAIL_CLOSED;
    /* acquire: see ursa__mpsc_ended(). Positions at or past end are never written. */
    bool claimed = t != h && h < atomic_load_explicit(&ch->end, memory_order_acquire);
    if (!claimed && !rx_ready(ch))
        return -EINPROGRESS;
    if (rx_cancel(w)) {
        /* A claimed position is written without waiting (the sender
         * holds its slot), but that sender will not wake us: wait here a
         * little for it to publish (or, unbounded, for the end recorded by
         * a seal to show the claim was past it), then call it ready
         * anyway. The caller finds nothing and starts again (a blocking
         * recv checks its deadline and relaxes first): a sender preempted
         * mid-copy must not hold us past a deadline or a cancel.
         * (acquire on end: as above.) */
        ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_SETTLE);
        while (claimed && !ursa__mpsc_peek(ch) &&
               h < atomic_load_explicit(&ch->end, memory_order_acquire) && ursa__spin_pause(&s)) {
        }
        ursa__spin_end(&s);
        return ursa__wait_start_ready(w);
    }
    return -EINPROGRESS; /* a sender took it: decided, done shortly */
}

static bool rx_cancel(ursa__waiter_t *w)
{
    ursa_mpsc_t *ch = w->owner;
    ursa__waiter_t *exp = w;
    /* acq_rel: whoever swaps the node out decides it. */
    if (atomic_compare_exchange_strong_explicit(&ch->rx_wait, &exp, NULL, memory_order_acq_rel,
                                                memory_order_acquire)) {
        /* relaxed: our own node, out of the slot. */
        atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
        atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
        return true;
    }
    ursa__wait_settle(w);
    return ursa__waiter_dropped(w);
}

/* A receiver whose wakes come from another thread polls a while before it
 * sleeps (for as long as the spin policy's receiver-poll budget allows:
 * core/spin.h), so that a producer or a peer on another worker hands it
 * messages without a kernel wake. How often it looks adapts to the
 * producer:
 * - a producer that streams fills whole cache lines between two looks when
 *   the looks are far apart; looking at once would take the line from it
 *   after every message (mt2_mpsc_bounded_1p: 19% slower with no gap);
 * - a peer that answers one message at a time (request/reply) wants the
 *   message seen at once: each gap adds to its round trip.
 * So the gap doubles while a look finds more than one message to take,
 * halves to 0 while it finds one, and at 0 an occasional wait probes with
 * the longest gap, so that a producer that starts streaming is noticed.
 * A poll that finds nothing clears the hint: the next empty queue sleeps at
 * once, until a wake from another thread sets it again. */
#define URSA__MPSC_GAP_MAX_NS 2000
#define URSA__MPSC_GAP_MIN_NS 64
#define URSA__MPSC_GAP_PROBE_EVERY 256

static uint32_t poll_gap(ursa_mpsc_t *ch)
{
    if (ch->rx_found) {
        /* relaxed: only the receiver writes head. */
        uint64_t taken = atomic_load_explicit(&ch->head, memory_order_relaxed) - ch->rx_found_at;
        uint32_t g = ch->rx_gap_ns;
        if (taken > 1)
            g = g * 2 + URSA__MPSC_GAP_MIN_NS > URSA__MPSC_GAP_MAX_NS ? URSA__MPSC_GAP_MAX_NS
                                                                    : g * 2 + URSA__MPSC_GAP_MIN_NS;
        else
            g = g / 2 < URSA__MPSC_GAP_MIN_NS ? 0 : g / 2;
        ch->rx_gap_ns = g;
    }
    if (ch->rx_gap_ns == 0 && ++ch->rx_probe % URSA__MPSC_GAP_PROBE_EVERY == 0)
        return URSA__MPSC_GAP_MAX_NS;
    return ch->rx_gap_ns;
}

static bool rx_poll(ursa_mpsc_t *ch, ursa__ctx_t *c, ursa_time_t deadline)
{
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_POLL);
    ursa__spin_begin(&s, true);
    bool got = false;
    uint32_t gap = poll_gap(ch);
    ursa_time_t now = ursa__mono_now(), last = now;
    /* deadlines are monotonic ns here (no virtual clock) */
    while (s.left >= URSA__RELAX_PAUSES && now < deadline) {
        if (c->ops->relax(c, &s))
            break; /* cancelled: the wait below reports it */
        now = ursa__mono_now();
        if (now - last >= gap) {
            if ((got = ursa__mpsc_peek(ch)))
                break;
            last = now;
        }
    }
    s.spent = !got;
    ursa__spin_end(&s);
    ch->rx_found = got;
    /* relaxed: only the receiver writes head. */
    ch->rx_found_at = atomic_load_explicit(&ch->head, memory_order_relaxed);
    if (!got) /* relaxed: a hint. */
        atomic_store_explicit(&ch->rx_poll, 0, memory_order_relaxed);
    return got;
}

/* Waits until something is ready: 0, or -EAGAIN / -ETIMEDOUT / -ECANCELED. */
static int rx_wait(ursa_mpsc_t *ch, ursa_time_t deadline)
{
    if (__builtin_expect(ch->shrink, 0))
        ursa__mpsc_shrink(ch); /* found empty: maybe give a big ring back */
    if (deadline == URSA_NOW)
        return -EAGAIN;
    /* A receiver on another thread than the biased sender ends the bias
     * before it polls or queues: the two then run in parallel, and the
     * owner's wake would need program order with us. Looked at once per
     * receiving thread (sbias sits on the senders' line). */
    uint64_t self = ursa__thread_uid();
    if (__builtin_expect(ch->rx_bias_seen != self, 0) && ch->rx_bias_seen != UINT64_MAX) {
        ch->rx_bias_seen = ursa__mpsc_sbias_revoke_unless_mine(ch) ? self : UINT64_MAX;
    }
    ursa__ctx_t *c = ursa__ctx();
    if (deadline != URSA_NEVER && ursa__ctx_now(c) >= deadline)
        return -ETIMEDOUT;
    /* relaxed: a hint (see wake_rx). Never set in deterministic mode (one
     * thread), so virtual time is not mixed with real time there. */
    if (atomic_load_explicit(&ch->rx_poll, memory_order_relaxed) && !c->vclock &&
        rx_poll(ch, c, deadline))
        return 0;
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &rx_ops);
    int rc = rx_start(ch, &w);
    if (rc == 0 && !ursa__mpsc_peek(ch)) {
        /* ready only because a claimed slot is still being written (or the
         * end came): let others run before the caller looks again */
        ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_SETTLE);
        rc = c->ops->relax(c, &s);
        ursa__spin_end(&s);
        return rc;
    }
    return ursa__wait_block(c, &w, rc, deadline, NULL);
}

/* Whether position p (at or past head, below the claims) is published. */
static bool published(ursa_mpsc_t *ch, uint64_t p)
{
    if (ch->cap)
        /* acquire: pairs with the sender's publication. */
        return atomic_load_explicit((_Atomic uint64_t *)ursa__mpsc_ring_slot(ch, p),
                                    memory_order_acquire) == p + 1;
    /* Blocks from head_block on are never recycled under us (only the
     * receiver recycles), and a block not linked yet holds nothing. */
    ursa__mpsc_blk_t *b = ch->head_block;
    while (b->start != (p & ~(ch->bslots - 1)))
        /* acquire: the block's fields. */
        if (!(b = atomic_load_explicit(&b->next, memory_order_acquire)))
            return false;
    /* acquire: as above. */
    return atomic_load_explicit(&b->ready[p & (ch->bslots - 1)], memory_order_acquire);
}

/* The next message is not there. If a later one is (its send has
 * returned, or is returning), the position before it was claimed by a
 * sender that is still copying (no lock, no wait between its claim and its
 * publication): wait for it, rather than report "empty" while a returned
 * send is queued, and return true. False: nothing later is published
 * either (a claim alone is a send that has not returned). h: head, t: the
 * claims (tail without the seal bit), with t - h >= 2. */
static __attribute__((noinline)) bool wait_claimed(ursa_mpsc_t *ch, uint64_t h, uint64_t t)
{
    /* relaxed: as tail (see claimed_behind). */
    uint64_t e = atomic_load_explicit(&ch->end, memory_order_relaxed);
    if (t > e)
        t = e; /* claims past a seal are never written */
    if (ch->cap && t - h > ch->cap)
        t = h + ch->cap; /* a stale view: no more than cap are claimed */
    uint64_t p = h + 1;
    while (p < t && !published(ch, p))
        p++;
    if (p >= t)
        return false;
    for (unsigned i = 0; !ursa__mpsc_peek(ch); i++) {
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* the claimer may be a preempted thread */
    }
    return true;
}

/* Takes up to max ready messages into buf: how many (>= 1), or -EPIPE
 * (the stream has ended), -EAGAIN (nothing yet). */
static inline long take(ursa_mpsc_t *ch, void *buf, size_t max)
{
    /* acquire, before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    size_t k = 0;
    while (k < max && ursa__mpsc_pop(ch, (unsigned char *)buf + k * ch->elem_size))
        k++;
    if (k)
        return (long)k;
    return ursa__mpsc_ended(ch, l) ? -EPIPE : -EAGAIN;
}

/* A receive is about to report that it found nothing (a try, an expired
 * deadline, a cancel, a raw finish): true if a send that returned is
 * queued behind one still copying, which it waited for (take again). The
 * blocking path needs no such look: rx_start waits for a claim. */
static inline bool claimed_behind(ursa_mpsc_t *ch)
{
    /* relaxed: only we write head. relaxed on tail: a send the caller
     * must see happened-before its call (the caller's own
     * synchronisation), so its claim is visible here. Two positions
     * claimed at least: one may be published past ours. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed) & ~URSA__MPSC_TAIL_CLOSED;
    return t - h >= 2 && wait_claimed(ch, h, t);
}

/* take, waiting until something is there. */
static long take_wait(ursa_mpsc_t *ch, void *buf, size_t max, ursa_time_t deadline)
{
    for (;;) {
        long k = take(ch, buf, max);
        if (k != -EAGAIN)
            return k;
        int rc = rx_wait(ch, deadline);
        if (rc && !claimed_behind(ch))
            return rc;
    }
}

int ursa_mpsc_recv(const ursa_mpsc_receiver_t *rx, void *out, ursa_time_t deadline)
{
    if (!rx || !rx->ch || !out)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    if (__builtin_expect(ursa__mpsc_pop(ch, out), 1))
        return 0;
    long k = take_wait(ch, out, 1, deadline);
    return k > 0 ? 0 : (int)k;
}

int ursa_mpsc_try_recv(const ursa_mpsc_receiver_t *rx, void *out)
{
    return ursa_mpsc_recv(rx, out, URSA_NOW);
}

long ursa_mpsc_recv_many(const ursa_mpsc_receiver_t *rx, void *buf, size_t max,
                         ursa_time_t deadline)
{
    if (!rx || !rx->ch || !buf || max == 0)
        return -EINVAL;
    return take_wait(rx->ch, buf, max, deadline);
}

int ursa_mpsc_recv_start(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w, ursa_waker_t waker)
{
    ursa__waiter_t *n = rx && rx->ch ? ursa__wait_raw_init(w, waker, &rx_ops, NULL) : NULL;
    if (!n)
        return -EINVAL;
    n->owner = rx->ch;
    return rx_ready(rx->ch) ? ursa__wait_start_ready(n) : rx_start(rx->ch, n);
}

int ursa_mpsc_recv_finish(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w, void *out)
{
    int rc = rx && out ? ursa__wait_finish_of(w, rx->ch, &rx_ops) : -EINVAL;
    if (rc)
        return rc;
    long k = take(rx->ch, out, 1);
    if (k == -EAGAIN && claimed_behind(rx->ch))
        k = take(rx->ch, out, 1);
    return k > 0 ? 0 : (int)k;
}
