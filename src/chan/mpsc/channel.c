/* The mpsc channel (the design: mpsc.h). */
#include <pthread.h>
#include <stdlib.h>

#include "../../core/membarrier.h"
#include "../../sync/wait_steps.h"
#include "mpsc.h"
#include "send_bias.h"

static bool rx_cancel(ursa_wait_t *w);
static const ursa__wait_ops_t rx_ops = {URSA_WAIT_CHANNEL, rx_cancel, NULL};

/* ---- receiver wake ---- */

/* Grants the receiver's node, which the caller took out of rx_wait. */
static void wake_node(ursa_mpsc_t *ch, ursa_wait_t *w)
{
    /* relaxed: a hint for rx_wait. rx_thread was written before the node
     * was published, which the caller's take acquired. */
    bool remote = ch->rx_thread != ursa__thread_uid();
    if (atomic_load_explicit(&ch->rx_poll, memory_order_relaxed) != remote)
        atomic_store_explicit(&ch->rx_poll, remote, memory_order_relaxed);
    /* release: the waiter reads the decision and our writes after it. */
    atomic_store_explicit(&w->state, URSA__W_GRANTED, memory_order_release);
    ursa__wake_node(w);
}

void ursa__mpsc_wake_rx(ursa_mpsc_t *ch)
{
    /* relaxed: a hint; the exchange below decides. */
    if (!atomic_load_explicit(&ch->rx_wait, memory_order_relaxed))
        return;
    /* acq_rel: acquire the node's fields; whoever swaps it out decides it. */
    ursa_wait_t *w = atomic_exchange_explicit(&ch->rx_wait, NULL, memory_order_acq_rel);
    if (w)
        wake_node(ch, w);
}

/* Something that may end the stream changed (life, or a permit came
 * back): wake the receiver if the stream has ended. */
void ursa__mpsc_end_check(ursa_mpsc_t *ch)
{
    /* seq_cst fence: our change is ordered before the loads below and the
     * load of rx_wait, against rx_start's store of rx_wait, fence and
     * re-check (Dekker); the same pairing with another ender (closer vs last
     * permit back) makes at least one of us see both changes. */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: as in ursa_mpsc_recv. */
    if (ursa__mpsc_ended(ch, atomic_load_explicit(&ch->chan.life, memory_order_acquire)))
        ursa__mpsc_wake_rx(ch);
}

/* ---- references and life ---- */

/* Unbounded, closed and no permit out: sets URSA__MPSC_TAIL_CLOSED in tail so that plain
 * senders that claim later send nothing, and records where the stream ends.
 * Plain sends are not counted: one that read life before URSA__CHAN_CLOSED claims
 * below end and is delivered (it took effect before the close). */
static void seal(ursa_mpsc_t *ch)
{
    /* seq_cst: ordered with the senders' seq_cst claims; the first sealer's
     * old value is the end. */
    uint64_t old = atomic_fetch_or_explicit(&ch->tail, URSA__MPSC_TAIL_CLOSED, memory_order_seq_cst);
    if (!(old & URSA__MPSC_TAIL_CLOSED))
        /* release: pairs with ursa__mpsc_ended()'s acquire. */
        atomic_store_explicit(&ch->end, old, memory_order_release);
    ursa__mpsc_end_check(ch);
}

/* Unbounded: a permit (or reserve) ends and stops counting, which may be
 * what a closed receiver waits for. */
static void unb_done(ursa_mpsc_t *ch)
{
    uint64_t l = ursa__chan_life_permit_end(&ch->chan);
    if ((l >> 32) == 0 && (l & URSA__CHAN_CLOSED))
        seal(ch);
    else if (ursa__mpsc_ended(ch, l))
        ursa__mpsc_end_check(ch);
}

/* Slots given up without a message (bounded: permits go back). */
static void give_up(ursa_mpsc_t *ch, uint64_t n)
{
    if (!ch->cap)
        return;
    ursa__sema_release(&ch->chan.sema, n);
    ursa__mpsc_end_check(ch); /* maybe the last permit a closed receiver waited for */
}

/* Destroys (dtor) every message still queued. Receiver side only. */
static void drain(ursa_mpsc_t *ch)
{
    unsigned char *e;
    while ((e = ursa__mpsc_peek(ch))) {
        if (ch->dtor)
            ch->dtor(e);
        ursa__mpsc_consumed(ch);
    }
}

static void destroy(ursa_mpsc_t *ch)
{
    drain(ch);
    if (!ch->cap) {
        ursa__mpsc_blk_t *b = ch->free_head;
        while (b) {
            ursa__mpsc_blk_t *n = atomic_load_explicit(&b->next, memory_order_relaxed);
            ursa__mpsc_blk_free(ch, b);
            b = n;
        }
    }
    free(ch->ring);
    free(ch);
}

/* ---- creation and handles ---- */

static const ursa__chan_ops_t mpsc_ops;

int ursa_mpsc_new(ursa_mpsc_receiver_t *rx, ursa_mpsc_sender_t *tx, size_t elem_size,
                  uint64_t capacity, ursa_mpsc_dtor_t dtor)
{
    if (!rx || !tx || elem_size == 0 || elem_size > ((size_t)1 << 30) ||
        capacity > URSA_MPSC_MAX_CAPACITY)
        return -EINVAL;
    ursa_mpsc_t *ch = aligned_alloc(64, (sizeof *ch + 63) & ~(size_t)63);
    if (!ch)
        return -ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->elem_size = elem_size;
    size_t esz = (elem_size + 7) & ~(size_t)7;
    ch->cap = capacity;
    ch->dtor = dtor;
    atomic_init(&ch->mem, (sizeof *ch + 63) & ~(size_t)63);
    /* Unbounded: the semaphore is used for close only. */
    ursa__chan_init(&ch->chan, &mpsc_ops, capacity);
    atomic_init(&ch->rx_wait, NULL);
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->end, URSA__MPSC_NO_END);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->returned, 0);
    atomic_init(&ch->tx_waiting, 0);
    if (capacity) {
        ch->stride = ursa__ring_stride(elem_size);
        ch->mask = ursa__ring_mask(capacity);
        if (!(ch->ring = ursa__ring_new(capacity, ch->stride))) {
            free(ch);
            return -ENOMEM;
        }
        atomic_fetch_add_explicit(&ch->mem, capacity * ch->stride, memory_order_relaxed);
        ch->lazy = ursa__mpsc_lazy_usable();
        /* Revoking needs membarrier, as the lazy return does. */
        atomic_init(&ch->sbias, ch->lazy ? ursa__thread_uid() : 0);
    } else {
        ch->stride = esz;
        ch->bslots = 32;
        while (ch->bslots > 2 && ch->bslots * esz > 4096)
            ch->bslots >>= 1;
        ursa__mpsc_blk_t *b = ursa__mpsc_blk_new(ch, 0);
        if (!b) {
            free(ch);
            return -ENOMEM;
        }
        atomic_init(&ch->block_tail, b);
        ch->head_block = ch->free_head = b;
    }
    rx->ch = ch;
    tx->ch = ch;
    return 0;
}

int ursa_mpsc_close(const ursa_mpsc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    /* Bounded: the owner's credit back, then the semaphore, so that no
     * send succeeds once ursa__mpsc_ended() can see URSA__CHAN_CLOSED (regression
     * test_close_window). */
    if (ch->cap) {
        ursa__mpsc_sbias_revoke(ch);
        ursa__sema_close(&ch->chan.sema);
    }
    uint64_t l = ursa__chan_life_close(&ch->chan);
    if (!ch->cap && (l >> 32) == 0)
        seal(ch); /* no permit out; else the last one seals */
    ursa__mpsc_end_check(ch); /* a raw recv of ours may wait */
    return 0;
}

int ursa_mpsc_receiver_drop(ursa_mpsc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    (void)ursa_mpsc_close(rx);
    ursa__chan_life_rx_gone(&ch->chan); /* permit_send and send read it */
    rx->ch = NULL;
    drain(ch); /* later late messages go at destruction */
    ursa__chan_ref_put(&ch->chan);
    return 0;
}

/* ---- reserving ---- */

/* Bounded, slow half of acquire: what the receiver owes first, then the
 * semaphore's FIFO with the lazy return's steps around it. */
static int acquire_wait(ursa_mpsc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                        const ursa_site_t *site)
{
    if (ch->lazy && (ursa__mpsc_harvest(ch, n) || ursa__sema_try(&ch->chan.sema, n)))
        return 0;
    return ursa__chan_sema_wait(&ch->chan, n, deadline, c, site);
}

/* Reserves n slots: bounded, n semaphore permits; unbounded, one "permit
 * out" in life. 0, or an error with nothing reserved and nothing counted.
 * A caller that sends at once holds a strong sender, so it needs no
 * reference; a permit takes one (chan/senders.c). */
static inline int acquire(ursa_mpsc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                          const ursa_site_t *site)
{
    if (!ch->cap) {
        if (ursa__chan_life_permit_begin(&ch->chan) & URSA__CHAN_CLOSED) {
            unb_done(ch);
            return -EPIPE;
        }
        return 0;
    }
    if (__builtin_expect(ursa__sema_try(&ch->chan.sema, n), 1))
        return 0;
    return acquire_wait(ch, n, deadline, c, site);
}

int ursa_mpsc_send(const ursa_mpsc_sender_t *tx, const void *value, ursa_time_t deadline)
{
    if (!tx || !tx->ch || !value)
        return -EINVAL;
    ursa_mpsc_t *ch = tx->ch;
    /* Our strong sender keeps the channel alive: no reference is taken. */
    if (!ch->cap) {
        /* Unbounded: not counted as a permit. acquire: paired with close
         * and receiver_drop. A close after this load either seals after
         * our claim (we are delivered: the send took effect first) or
         * before it (push fails). */
        if (atomic_load_explicit(&ch->chan.life, memory_order_acquire) &
            (URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE))
            return -EPIPE;
        return ursa__mpsc_push(ch, value) ? 0 : -EPIPE;
    }
    if (ursa__mpsc_sbias_revoke_unless_mine(ch) && ursa__mpsc_send_owned(ch, value))
        return 0;
    /* (not the owner, or its credit ran out or the receiver is gone: the
     * shared path waits or fails like any send; its claim is an RMW) */
    int rc = acquire(ch, 1, deadline, NULL, NULL);
    if (rc)
        return rc;
    /* The wait may have moved us to another thread (worker 0 between
     * block_on calls): a non-owner must not claim beside the owner's plain
     * claims. */
    (void)ursa__mpsc_sbias_revoke_unless_mine(ch);
    /* (acquire: paired with receiver_drop.) */
    if (__builtin_expect(ursa__chan_rx_gone(&ch->chan), 0)) {
        give_up(ch, 1);
        rc = -EPIPE;
    } else {
        ursa__mpsc_push(ch, value);
    }
    return rc;
}

/* ---- the shared sending half's view of mpsc (chan/chan.h) ---- */

static uint64_t op_capacity(const ursa__chan_t *c)
{
    return ((const ursa_mpsc_t *)c)->cap;
}

static void op_destroy(ursa__chan_t *c)
{
    destroy(ursa__mpsc_of(c));
}

static void op_sender_dropped(ursa__chan_t *c, uint64_t life)
{
    if ((life & URSA__CHAN_TX_MASK) == 0) {
        ursa__mpsc_sbias_revoke(ursa__mpsc_of(c)); /* the end needs every permit back */
        ursa__mpsc_end_check(ursa__mpsc_of(c));
    }
}

static int op_reserve(ursa__chan_t *c, uint64_t n, ursa_time_t deadline, ursa__ctx_t *ctx,
                      const ursa_site_t *site)
{
    ursa__mpsc_sbias_revoke(ursa__mpsc_of(c)); /* a permit is the shared view */
    return acquire(ursa__mpsc_of(c), n, deadline, ctx, site);
}

static bool op_raw_begin(ursa__chan_t *c)
{
    ursa_mpsc_t *ch = ursa__mpsc_of(c);
    ursa__mpsc_sbias_revoke(ch);
    if (ch->lazy)
        (void)ursa__mpsc_harvest(ch, 0); /* what the receiver owes, before we try */
    return true;
}

static void op_give_up(ursa__chan_t *c, uint64_t n)
{
    give_up(ursa__mpsc_of(c), n);
}

/* Bounded permits are not counted in life: their semaphore permits are. */
static void op_permit_end(ursa__chan_t *c)
{
    if (!ursa__mpsc_of(c)->cap)
        unb_done(ursa__mpsc_of(c));
}

static void op_push(ursa__chan_t *c, const void *value)
{
    (void)ursa__mpsc_push(ursa__mpsc_of(c), value); /* cannot fail: a permit counts, so no seal */
}

static void op_permits_back(ursa__chan_t *c)
{
    ursa__mpsc_end_check(ursa__mpsc_of(c));
}

static void op_wait_enter(ursa__chan_t *c)
{
    ursa__mpsc_wait_enter(ursa__mpsc_of(c));
}

static void op_wait_queued(ursa__chan_t *c)
{
    ursa__mpsc_wait_queued(ursa__mpsc_of(c));
}

static void op_wait_leave(ursa__chan_t *c)
{
    ursa__mpsc_wait_leave(ursa__mpsc_of(c));
}

static const ursa__chan_ops_t mpsc_ops = {
    .permit_kind = {"mpsc send permit", ursa__chan_permit_leaked},
    .capacity = op_capacity,
    .destroy = op_destroy,
    .sender_dropped = op_sender_dropped,
    .reserve = op_reserve,
    .raw_begin = op_raw_begin,
    .give_up = op_give_up,
    .permit_end = op_permit_end,
    .push = op_push,
    .permits_back = op_permits_back,
    .wait_enter = op_wait_enter,
    .wait_queued = op_wait_queued,
    .wait_leave = op_wait_leave,
};

/* ---- receiving ---- */

static bool rx_ready(ursa_mpsc_t *ch)
{
    /* acquire, and read before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    return ursa__mpsc_peek(ch) || ursa__mpsc_ended(ch, l);
}

/* Registers w as the receiver's wait: 0 ready now (w done), -EINPROGRESS. */
static int rx_start(ursa_mpsc_t *ch, ursa_wait_t *w)
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
         * mid-copy must not hold us past a deadline or a cancel. */
        for (unsigned i = 0;
             i < 128 && claimed && !ursa__mpsc_peek(ch) &&
             h < atomic_load_explicit(&ch->end, memory_order_acquire);
             i++)
            ursa__cpu_relax();
        return ursa__wait_start_ready(w);
    }
    return -EINPROGRESS; /* a sender took it: decided, done shortly */
}

static bool rx_cancel(ursa_wait_t *w)
{
    ursa_mpsc_t *ch = w->owner;
    ursa_wait_t *exp = w;
    /* acq_rel: whoever swaps the node out decides it. */
    if (atomic_compare_exchange_strong_explicit(&ch->rx_wait, &exp, NULL, memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
        atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
        return true;
    }
    ursa__wait_settle(w);
    return false;
}

/* Waits until something is ready: 0, or -EAGAIN / -ETIMEDOUT / -ECANCELED. */
/* How long a receiver whose wakes come from another thread polls before it
 * sleeps, and how often it looks. A producer on another worker then keeps
 * streaming without a wake per burst (each costs far more than a message),
 * and polls spaced this far apart let it fill whole cache lines between
 * two looks. A poll that finds nothing clears the hint: the next empty
 * queue sleeps at once, until a wake from another thread sets it again. */
#define RX_POLL_NS 50000
#define RX_POLL_GAP_NS 2000

static bool rx_poll(ursa_mpsc_t *ch, ursa__ctx_t *c, ursa_time_t deadline)
{
    ursa_time_t now = ursa__mono_now(), last = now, end = now + RX_POLL_NS;
    if (deadline < end) /* deadlines are monotonic ns outside deterministic mode */
        end = deadline;
    while (now < end) {
        if (c->ops->relax(c))
            return false; /* cancelled: the wait below reports it */
        now = ursa__mono_now();
        if (now - last >= RX_POLL_GAP_NS) {
            if (ursa__mpsc_peek(ch))
                return true;
            last = now;
        }
    }
    /* relaxed: a hint. */
    atomic_store_explicit(&ch->rx_poll, 0, memory_order_relaxed);
    return false;
}

static int rx_wait(ursa_mpsc_t *ch, ursa_time_t deadline)
{
    if (deadline == URSA_NOW)
        return -EAGAIN;
    /* A receiver on another thread than the biased sender ends the bias
     * before it polls or queues: the two then run in parallel, and the
     * owner's wake would need program order with us. Looked at once per
     * receiving thread (sbias sits on the senders' line). */
    if (__builtin_expect(ch->rx_bias_seen != ursa__thread_uid(), 0) && ch->rx_bias_seen != UINT64_MAX) {
        ch->rx_bias_seen = ursa__mpsc_sbias_revoke_unless_mine(ch) ? ursa__thread_uid() : UINT64_MAX;
    }
    ursa__ctx_t *c = ursa__ctx();
    if (deadline != URSA_NEVER && ursa__ctx_now(c) >= deadline)
        return -ETIMEDOUT;
    /* relaxed: a hint (see wake_rx). Never set in deterministic mode (one
     * thread), so virtual time is not mixed with real time there. */
    if (atomic_load_explicit(&ch->rx_poll, memory_order_relaxed) && !c->vclock &&
        rx_poll(ch, c, deadline))
        return 0;
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &rx_ops, NULL);
    int rc = rx_start(ch, &w);
    if (rc == 0 && !ursa__mpsc_peek(ch))
        /* ready only because a claimed slot is still being written (or the
         * end came): let others run before the caller looks again */
        return c->ops->relax(c);
    return ursa__wait_block(c, &w, rc, deadline);
}

int ursa_mpsc_recv(const ursa_mpsc_receiver_t *rx, void *out, ursa_time_t deadline)
{
    if (!rx || !rx->ch || !out)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    if (__builtin_expect(ursa__mpsc_pop(ch, out), 1))
        return 0;
    for (;;) {
        /* acquire, before the queue: see the header comment. */
        uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
        if (ursa__mpsc_pop(ch, out))
            return 0;
        if (ursa__mpsc_ended(ch, l))
            return -EPIPE;
        int rc = rx_wait(ch, deadline);
        if (rc)
            return rc;
    }
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
    ursa_mpsc_t *ch = rx->ch;
    for (;;) {
        /* acquire, before the queue: see the header comment. */
        uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
        size_t k = 0;
        while (k < max && ursa__mpsc_pop(ch, (unsigned char *)buf + k * ch->elem_size))
            k++;
        if (k)
            return (long)k;
        if (ursa__mpsc_ended(ch, l))
            return -EPIPE;
        int rc = rx_wait(ch, deadline);
        if (rc)
            return rc;
    }
}

int ursa_mpsc_recv_start(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w, ursa_waker_t waker)
{
    if (!rx || !rx->ch || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &rx_ops, NULL);
    w->owner = rx->ch;
    return rx_ready(rx->ch) ? ursa__wait_start_ready(w) : rx_start(rx->ch, w);
}

int ursa_mpsc_recv_finish(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w, void *out)
{
    if (!rx || !rx->ch || !w || !out || w->ops != &rx_ops || w->owner != rx->ch)
        return -EINVAL;
    int rc = ursa__wait_finish(w);
    if (rc)
        return rc;
    ursa_mpsc_t *ch = rx->ch;
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    if (ursa__mpsc_pop(ch, out))
        return 0;
    return ursa__mpsc_ended(ch, l) ? -EPIPE : -EAGAIN;
}

/* ---- queries ---- */

uint64_t ursa_mpsc_len(const ursa_mpsc_t *ch)
{
    if (!ch)
        return 0;
    /* relaxed: a snapshot; head first so the difference is not negative. */
    uint64_t h = atomic_load_explicit(&((ursa_mpsc_t *)ch)->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&((ursa_mpsc_t *)ch)->tail, memory_order_relaxed) & ~URSA__MPSC_TAIL_CLOSED;
    uint64_t e = atomic_load_explicit(&((ursa_mpsc_t *)ch)->end, memory_order_relaxed);
    t = t < e ? t : e; /* claims past a seal are never written */
    return t > h ? t - h : 0;
}

uint64_t ursa_mpsc_capacity(const ursa_mpsc_t *ch)
{
    return ch ? ch->cap : 0;
}

size_t ursa_mpsc_memory(const ursa_mpsc_t *ch)
{
    /* relaxed: a statistic. */
    return ch ? atomic_load_explicit(&((ursa_mpsc_t *)ch)->mem, memory_order_relaxed) : 0;
}

bool ursa_mpsc_is_closed(const ursa_mpsc_t *ch)
{
    /* relaxed: monotonic. */
    return ch && (atomic_load_explicit(&((ursa_mpsc_t *)ch)->chan.life, memory_order_relaxed) & URSA__CHAN_CLOSED);
}
