/* Broadcast: a ring of `cap` slots, a tail position, a read position per
 * receiver (the model is Tokio's broadcast; the code is ours).
 *
 * Positions are 64-bit and never wrap in practice. Position p lives in
 * slot p & mask. A slot is one sequence word followed by the value's
 * bytes (kept as 64-bit words, accessed with relaxed atomics):
 *   seq == 2(p+1)      the slot holds the value of position p
 *   seq == 2(p+1) - 1  a sender is writing position p into it
 *   seq == 0           never written
 * seq only grows: senders write a slot in position order.
 *
 * A send is: channel lock { check receivers; p = tail++; note whether
 * receivers wait } (a few instructions), then, outside it: wait until the
 * slot holds p - cap (its previous lap; immediate unless another sender a
 * whole lap behind is still copying), seq = odd, destroy the old value,
 * copy in, seq = even, then wake the waiting receivers if there were any.
 * Senders of different slots copy in parallel; only the claim is
 * serialised. Per value that is one locked instruction (the claim).
 *
 * A receiver at `next` reads the slot like a seqlock, with no lock and no
 * RMW: seq == 2(next+1), copy the bytes to its own scratch, acquire fence,
 * seq unchanged -> the copy is the value. seq > 2(next+1): a later lap is
 * being (or was) written: lagged, jump to tail - cap, the oldest still
 * retained (the writer claimed its position before it touched seq, so
 * tail > next + cap). Otherwise nothing yet (or it is being written).
 *
 * Waiting receivers sit on one FIFO under the channel lock; a send wakes
 * them all. No wake-up is lost, and the send needs no fence for it: a
 * receiver queues only if, under the lock, its position is not claimed yet
 * (tail == next) and the channel is open; the value it waits for is then
 * claimed later, under the same lock, by a sender that sees the queued
 * receiver and wakes it after publishing. If its position is claimed but
 * not yet published (a sender is between claim and publish, a few
 * instructions on another thread), the receiver spins for it instead of
 * queueing (like a spinlock would). The close is decided under the lock.
 *
 * The destructor runs for a value exactly once: when the next lap's sender
 * overwrites its slot (after marking the slot odd, so a receiver copying
 * the value concurrently sees the change and reports the lag), or when the
 * channel is freed. Receivers take copies and hold nothing, so a dropped
 * receiver keeps no slot alive and needs no per-slot reader counts. */
#include "ursa/broadcast.h"

#include <stdlib.h>
#include <string.h>

#include "../core/wait_steps.h"
#include "zmem.h"

#define URSA__BROADCAST_CACHELINE 64

typedef struct chan {
    /* Read-mostly after creation. */
    size_t elem_size;
    size_t stride; /* 64-bit words per slot: seq + the value */
    uint64_t cap, mask;
    void (*dtor)(void *elem);
    _Atomic uint64_t *ring; /* cap * stride words, zeroed (zmem.h) */
    size_t ringsz;          /* its bytes */

    /* The waiting receivers, whose lock is the channel lock (its owner's
     * bits are unused: 0), and what that lock guards, on their own line. */
    _Alignas(URSA__BROADCAST_CACHELINE) ursa__waitq_t rxq;
    _Atomic uint64_t tail;      /* next position; written under the lock */
    _Atomic uint32_t closed;    /* no sender left; written under the lock */
    size_t rx_count, tx_count;  /* under the lock */
    size_t weak_count;          /* weak senders (keep the memory only); under the lock */
    struct ursa_broadcast_rx *rxs; /* every receiver (for ursa_broadcast_len); under the lock */
    /* Senders waiting for every receiver to go (ursa_broadcast_closed);
     * its own lock, taken inside the channel lock to queue. */
    ursa__waitq_t goneq;
} chan_t;

struct ursa_broadcast_tx {
    chan_t *ch;
};

struct ursa_broadcast_weak {
    chan_t *ch;
};

struct ursa_broadcast_rx {
    chan_t *ch;
    /* Written only by the handle's single user; read by ursa_broadcast_len
     * too, for a snapshot (rx_next). */
    _Atomic uint64_t next;
    struct ursa_broadcast_rx *next_rx; /* ch->rxs, under the lock */
    uint64_t scratch[]; /* a value being read (stride - 1 words) */
};

/* relaxed: rx's position has one writer (its user); the reader that is
 * not that user (ursa_broadcast_len) wants a snapshot, nothing ordered. */
static inline uint64_t rx_next(const struct ursa_broadcast_rx *rx)
{
    return atomic_load_explicit(&rx->next, memory_order_relaxed);
}

static inline void rx_set_next(struct ursa_broadcast_rx *rx, uint64_t next)
{
    atomic_store_explicit(&rx->next, next, memory_order_relaxed);
}

/* Links a new receiver at position `next` into ch->rxs; under the lock. */
static void rx_link(chan_t *ch, struct ursa_broadcast_rx *rx, uint64_t next)
{
    rx->ch = ch;
    atomic_init(&rx->next, next);
    rx->next_rx = ch->rxs;
    ch->rxs = rx;
}

static bool bc_cancel(ursa__waiter_t *w);
static const ursa__wait_ops_t recv_ops = {URSA_WAIT_CHANNEL, bc_cancel, NULL};

/* The channel lock: its wait queue's (whose lock word carries nothing else). */
static void ch_lock(chan_t *ch)
{
    (void)ursa__waitq_lock(&ch->rxq);
}

static void ch_unlock(chan_t *ch)
{
    ursa__waitq_unlock(&ch->rxq, 0);
}

/* The sequence word of position p's slot; its value follows it. */
static inline _Atomic uint64_t *slot_at(const chan_t *ch, uint64_t p)
{
    return ch->ring + (size_t)(p & ch->mask) * ch->stride;
}

static inline void *slot_elem(_Atomic uint64_t *s)
{
    return (void *)(s + 1);
}

/* The value's bytes are written and read with relaxed word accesses:
 * a receiver may copy while a sender a lap later overwrites (the seq
 * check then throws the copy away), and that must not be a data race. */
static void copy_in(_Atomic uint64_t *d, const unsigned char *src, size_t n)
{
    for (; n >= 8; n -= 8, src += 8, d++) {
        uint64_t x;
        memcpy(&x, src, 8);
        atomic_store_explicit(d, x, memory_order_relaxed); /* seq orders it */
    }
    if (n) {
        uint64_t x = 0;
        memcpy(&x, src, n);
        atomic_store_explicit(d, x, memory_order_relaxed); /* seq orders it */
    }
}

static void copy_out(uint64_t *dst, _Atomic uint64_t *s, size_t words)
{
    for (size_t i = 0; i < words; i++)
        dst[i] = atomic_load_explicit(&s[i], memory_order_relaxed); /* seq checks it */
}

static void chan_free(chan_t *ch)
{
    /* relaxed: we are the last handle; the lock we just dropped ordered
     * every earlier write before us. Only positions below tail were ever
     * written: the rest of a big ring is never touched, here either. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    if (ch->dtor) {
        /* The positions still retained (the last lap). */
        for (uint64_t p = tail > ch->cap ? tail - ch->cap : 0; p < tail; p++) {
            _Atomic uint64_t *s = slot_at(ch, p);
            /* relaxed: as above. */
            if (atomic_load_explicit(s, memory_order_relaxed) != 0)
                ch->dtor(slot_elem(s));
        }
    }
    ursa__zmem_free(ch->ring, ch->ringsz, (tail < ch->cap ? tail : ch->cap) * ch->stride * 8);
    free(ch);
}

int ursa_broadcast_new(ursa_broadcast_tx_t **tx, ursa_broadcast_rx_t **rx, size_t elem_size,
                       size_t capacity, void (*dtor)(void *elem))
{
    if (!tx || elem_size == 0 || capacity == 0 || capacity > ((size_t)1 << 40) ||
        elem_size > SIZE_MAX / 2)
        return -EINVAL;
    uint64_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    size_t stride = 1 + (elem_size + 7) / 8;
    if (stride > SIZE_MAX / 8 / cap)
        return -EINVAL;
    const size_t line = URSA__BROADCAST_CACHELINE;
    size_t ringsz = (stride * 8 * cap + line - 1) / line * line;
    size_t chsz = (sizeof(chan_t) + line - 1) / line * line;
    chan_t *ch = aligned_alloc(URSA__BROADCAST_CACHELINE, chsz);
    ursa_broadcast_tx_t *t = malloc(sizeof *t);
    ursa_broadcast_rx_t *r = rx ? malloc(sizeof *r + (stride - 1) * 8) : NULL;
    /* Zeroed: seq == 0 is "never written", so no slot is initialised and
     * a big ring's pages become resident as values reach them. */
    _Atomic uint64_t *ring = ch ? ursa__zmem_alloc(ringsz) : NULL;
    if (!ch || !t || (rx && !r) || !ring) {
        free(ch);
        free(t);
        free(r);
        ursa__zmem_free(ring, ringsz, 0);
        return -ENOMEM;
    }
    memset(ch, 0, sizeof *ch);
    ch->elem_size = elem_size;
    ch->stride = stride;
    ch->cap = cap;
    ch->mask = cap - 1;
    ch->dtor = dtor;
    ch->ring = ring;
    ch->ringsz = ringsz;
    ursa__waitq_init(&ch->rxq);
    ursa__waitq_init(&ch->goneq);
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->closed, 0);
    ch->rx_count = rx ? 1 : 0; /* sender only: sends fail until a subscribe */
    ch->tx_count = 1;
    ch->weak_count = 0;
    t->ch = ch;
    *tx = t;
    if (rx) {
        rx_link(ch, r, 0); /* not shared yet: no lock */
        *rx = r;
    }
    return 0;
}

/* Decides every queued receiver (granted: "look again") and wakes them
 * outside the lock, a batch at a time. Called with the lock held; drops
 * it. */
static void wake_all_unlock(chan_t *ch)
{
    (void)ursa__waitq_wake_all(&ch->rxq, 0, URSA__W_GRANTED, 0);
}

int ursa_broadcast_send(ursa_broadcast_tx_t *tx, const void *value)
{
    if (!tx || !value)
        return -EINVAL;
    chan_t *ch = tx->ch;
    ch_lock(ch);
    size_t n = ch->rx_count;
    if (n == 0) {
        ch_unlock(ch);
        return -EPIPE;
    }
    /* relaxed: tail is only written under the lock; a receiver that needs
     * it reads it after an acquire of seq, which our release below orders
     * after this store. */
    uint64_t p = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    atomic_store_explicit(&ch->tail, p + 1, memory_order_relaxed);
    /* A receiver queued now waits for p or later; one that queues after
     * our unlock sees p claimed and spins until we publish (bc_start). */
    bool waiters = ursa__waitq_queued(&ch->rxq) != 0; /* under the lock, where it changes */
    ch_unlock(ch);

    _Atomic uint64_t *s = slot_at(ch, p);
    uint64_t prev = p >= ch->cap ? 2 * (p - ch->cap + 1) : 0;
    /* acquire: the previous lap's sender finished its bytes (and we may
     * hand them to the destructor). Immediate unless that sender, a whole
     * lap behind us, is still copying. */
    ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_SETTLE);
    while (atomic_load_explicit(s, memory_order_acquire) != prev)
        ursa__spin_backoff(&sp);
    ursa__spin_end(&sp);
    /* release: a receiver that sees the odd seq sees our tail (lag
     * arithmetic). The release fence then orders the mark before the byte
     * stores, so a receiver whose copy saw any of them sees the mark. */
    atomic_store_explicit(s, 2 * (p + 1) - 1, memory_order_release);
    atomic_thread_fence(memory_order_release);
    if (prev != 0 && ch->dtor)
        ch->dtor(slot_elem(s)); /* the oldest value leaves the ring */
    copy_in(s + 1, value, ch->elem_size);
    /* release: a receiver that sees the even seq (acquire) sees the bytes. */
    atomic_store_explicit(s, 2 * (p + 1), memory_order_release);
    if (waiters) {
        ch_lock(ch);
        wake_all_unlock(ch);
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* What rx would get now, without taking it: 0 a value, -EOVERFLOW a lag,
 * -EPIPE closed and drained, -EAGAIN nothing. */
static int peek(const ursa_broadcast_rx_t *rx)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx_next(rx);
    /* acquire: pairs with the sender's release stores of seq. */
    uint64_t q = atomic_load_explicit(slot_at(ch, next), memory_order_acquire);
    if (q == 2 * (next + 1))
        return 0;
    if (q > 2 * (next + 1))
        return -EOVERFLOW;
    /* acquire: closed is set after the last sender's last send returned;
     * then tail is final. */
    if (atomic_load_explicit(&ch->closed, memory_order_acquire) &&
        atomic_load_explicit(&ch->tail, memory_order_acquire) == next)
        return -EPIPE;
    return -EAGAIN;
}

/* rx's next position is not published. If a later one is (its send has
 * returned, or is returning), rx's was claimed by a sender that is still
 * copying (between its claim and its publication it takes no lock and
 * waits for nothing but a sender a whole lap behind): wait until it
 * publishes, rather than report "empty" while a returned send is there,
 * and return true. False: nothing later is published either (a claim
 * alone is a send that has not returned). */
static __attribute__((noinline)) bool wait_claimed(ursa_broadcast_rx_t *rx)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx_next(rx), want = 2 * (next + 1);
    /* acquire: a send the caller must see happened-before its call (the
     * caller's own synchronisation), so its claim is visible here. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    uint64_t p = next + 1;
    /* acquire: pairs with the senders' release stores of seq; a later lap
     * counts too (something was published after rx's position). */
    while (p < tail && atomic_load_explicit(slot_at(ch, p), memory_order_acquire) < 2 * (p + 1))
        p++;
    if (p >= tail)
        return false;
    /* acquire: as in peek. */
    for (unsigned i = 0; atomic_load_explicit(slot_at(ch, next), memory_order_acquire) < want;
         i++) {
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* the sender may be a preempted thread */
    }
    return true;
}

/* poll_rx's rarer outcomes, out of line: lagged (after an acquire of a
 * later lap's seq), or not ready: -EOVERFLOW, -EPIPE, -EAGAIN. */
static __attribute__((noinline)) int poll_miss(ursa_broadcast_rx_t *rx, uint64_t *missed,
                                               bool lagged)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx_next(rx);
    if (lagged) {
        /* acquire: tail > next + cap, stored before the seq we saw. */
        uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
        uint64_t oldest = tail - ch->cap;
        if (missed)
            *missed = oldest - next;
        rx_set_next(rx, oldest);
        return -EOVERFLOW;
    }
    /* acquire: as in peek. */
    if (atomic_load_explicit(&ch->closed, memory_order_acquire) &&
        atomic_load_explicit(&ch->tail, memory_order_acquire) == next)
        return -EPIPE;
    return -EAGAIN;
}

/* Takes what is ready for rx: 0 (copied to out), -EOVERFLOW (*missed set,
 * rx moved to the oldest retained value), -EPIPE, -EAGAIN. No lock, no
 * RMW: a seqlock read (see the top of the file). */
static inline __attribute__((always_inline)) int poll_rx(ursa_broadcast_rx_t *rx, void *out,
                                                         uint64_t *missed)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx_next(rx), want = 2 * (next + 1);
    _Atomic uint64_t *s = slot_at(ch, next);
    /* acquire: pairs with the sender's release store of the even seq. */
    uint64_t q = atomic_load_explicit(s, memory_order_acquire);
    if (q == want) {
        /* Copied aside first: on a lag *out must stay untouched. */
        uint64_t one, *tmp = ch->stride == 2 ? &one : rx->scratch;
        copy_out(tmp, s + 1, ch->stride - 1);
        /* acquire fence: if the copy saw any byte of a later lap, the
         * re-read sees that lap's odd mark (its release fence). */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(s, memory_order_relaxed) == want) {
            if (ch->elem_size == 8)
                memcpy(out, &one, 8); /* the common word: no call */
            else
                memcpy(out, tmp, ch->elem_size);
            rx_set_next(rx, next + 1);
            return 0;
        }
        /* acquire: overwritten while we copied; the new seq brings the
         * tail the lag arithmetic needs. */
        q = atomic_load_explicit(s, memory_order_acquire);
    }
    return poll_miss(rx, missed, q > want);
}

/* poll_rx for a receive about to report that it found nothing (a try, an
 * expired deadline, a cancel): -EAGAIN only if no send that returned is
 * waiting for rx behind one still copying (that copy is waited out). The
 * blocking path needs no such look: bc_start waits for a claim. */
static int poll_try(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed)
{
    int r;
    while ((r = poll_rx(rx, out, missed)) == -EAGAIN && wait_claimed(rx)) {
    }
    return r;
}

int ursa_broadcast_try_recv(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed)
{
    if (!rx || !out)
        return -EINVAL;
    return poll_try(rx, out, missed);
}

/* Queues w on rx's channel, or finds something ready: 0 now, -EINPROGRESS
 * queued. */
static int bc_start(ursa_broadcast_rx_t *rx, ursa__waiter_t *w)
{
    chan_t *ch = rx->ch;
    w->owner = rx;
    ch_lock(ch);
    int r = peek(rx);
    /* relaxed: under the lock, where tail is written. */
    bool claimed = atomic_load_explicit(&ch->tail, memory_order_relaxed) != rx_next(rx);
    if (r == -EAGAIN && !claimed) {
        /* Nothing claimed for us yet: the sender that claims it will see
         * us queued (under this lock) and wake us after publishing. */
        ursa__waitq_push(&ch->rxq, w);
        ch_unlock(ch);
        return -EINPROGRESS;
    }
    ch_unlock(ch);
    /* Claimed but not published: that sender may have checked for waiters
     * before we came, so wait out its few instructions here. */
    ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_SETTLE);
    while (r == -EAGAIN) {
        ursa__spin_backoff(&sp);
        r = peek(rx);
    }
    ursa__spin_end(&sp);
    return ursa__wait_start_ready(w);
}

static bool bc_cancel(ursa__waiter_t *w)
{
    ursa_broadcast_rx_t *rx = w->owner;
    return ursa__waitq_cancel(&rx->ch->rxq, w);
}

/* recv once nothing was ready: wait, look again. Out of line so the ready
 * path in ursa_broadcast_recv_at carries no wait node or frame. */
static __attribute__((noinline)) int recv_wait(ursa_broadcast_rx_t *rx, void *out,
                                               uint64_t *missed, ursa_time_t deadline,
                                               const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    /* An expired deadline waits for nothing more than a returned send
     * (not for a copy with nothing after it, which bc_start would). */
    if (deadline != URSA_NEVER && ursa__ctx_now(c) >= deadline) {
        int r = poll_try(rx, out, missed);
        return r == -EAGAIN ? -ETIMEDOUT : r;
    }
    for (;;) {
        URSA__WAITER_ALIGN ursa__waiter_t w;
        ursa__waiter_init(&w, c->waker, &recv_ops);
        if (bc_start(rx, &w) == -EINPROGRESS) {
            int rc = ursa__ctx_block(c, &w, deadline, site);
            if (rc != 0 && bc_cancel(&w)) {
                /* Withdrawn. A value sent in the same instant is still
                 * taken: an expired deadline still tries once. */
                int r2 = poll_try(rx, out, missed);
                return r2 == -EAGAIN ? rc : r2;
            }
            ursa__wait_settle(&w);
        }
        /* Woken (or ready at start): look again. */
        int r = poll_rx(rx, out, missed);
        if (r != -EAGAIN)
            return r;
    }
}

int ursa_broadcast_recv_at(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed,
                           ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx || !out)
        return -EINVAL;
    int rc = poll_rx(rx, out, missed);
    if (rc != -EAGAIN)
        return rc;
    if (deadline == URSA_NOW)
        return poll_try(rx, out, missed);
    return recv_wait(rx, out, missed, deadline, site);
}

int ursa_broadcast_recv_start_at(ursa_broadcast_rx_t *rx, ursa_wait_t *w, ursa_waker_t waker,
                                 const ursa_site_t *site)
{
    ursa__waiter_t *n = rx ? ursa__wait_raw_init(w, waker, &recv_ops, site) : NULL;
    return n ? bc_start(rx, n) : -EINVAL;
}

int ursa_broadcast_recv_finish(ursa_broadcast_rx_t *rx, ursa_wait_t *w, void *out,
                               uint64_t *missed)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, rx, &recv_ops);
    if (!n || !out)
        return -EINVAL;
    int rc = ursa__wait_finish(n); /* FINISHED: a wait that goes on starts again */
    if (rc)
        return rc;
    for (;;) {
        rc = poll_rx(rx, out, missed);
        if (rc != -EAGAIN)
            return rc;
        /* Woken for nothing (a later position published first): wait on. */
        ursa__waiter_init(n, n->waker, &recv_ops);
        if (bc_start(rx, n) == -EINPROGRESS)
            return -EAGAIN;
    }
}

/* A new receiver of ch at the tail into *out: 0 or -ENOMEM. */
static int new_rx(chan_t *ch, ursa_broadcast_rx_t **out)
{
    ursa_broadcast_rx_t *r = malloc(sizeof *r + (ch->stride - 1) * 8);
    if (!r)
        return -ENOMEM;
    ch_lock(ch);
    ch->rx_count++;
    /* relaxed: under the lock, where tail is written. */
    rx_link(ch, r, atomic_load_explicit(&ch->tail, memory_order_relaxed));
    ch_unlock(ch);
    *out = r;
    return 0;
}

int ursa_broadcast_subscribe(ursa_broadcast_tx_t *tx, ursa_broadcast_rx_t **rx)
{
    return tx && rx ? new_rx(tx->ch, rx) : -EINVAL;
}

int ursa_broadcast_resubscribe(ursa_broadcast_rx_t *rx, ursa_broadcast_rx_t **rx2)
{
    return rx && rx2 ? new_rx(rx->ch, rx2) : -EINVAL;
}

int ursa_broadcast_receiver_count(ursa_broadcast_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    chan_t *ch = tx->ch;
    ch_lock(ch);
    size_t n = ch->rx_count;
    ch_unlock(ch);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int ursa_broadcast_sender_clone(ursa_broadcast_tx_t *tx, ursa_broadcast_tx_t **tx2)
{
    if (!tx || !tx2)
        return -EINVAL;
    ursa_broadcast_tx_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ch = tx->ch;
    ch_lock(t->ch);
    t->ch->tx_count++;
    ch_unlock(t->ch);
    *tx2 = t;
    return 0;
}

int ursa_broadcast_sender_drop(ursa_broadcast_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    chan_t *ch = tx->ch;
    free(tx);
    ch_lock(ch);
    if (--ch->tx_count > 0) {
        ch_unlock(ch);
        return 0;
    }
    if (ch->rx_count == 0 && ch->weak_count == 0) {
        ch_unlock(ch);
        chan_free(ch);
        return 0;
    }
    /* release: a receiver that sees closed sees the final tail (and, via
     * the slot locks, every value of every sender, each of which finished
     * its sends before dropping). */
    atomic_store_explicit(&ch->closed, 1, memory_order_release);
    wake_all_unlock(ch);
    return 0;
}

int ursa_broadcast_receiver_drop(ursa_broadcast_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    chan_t *ch = rx->ch;
    ch_lock(ch);
    for (int list = 0; list < 2; list++) {
        for (ursa__waiter_t *w = list ? ch->rxq.waking : ch->rxq.head; w; w = w->next) {
            if (w->owner == rx) {
                ch_unlock(ch);
                ursa__report_misuse("broadcast receiver dropped while a wait on it is queued",
                                    NULL);
                return -EBUSY;
            }
        }
    }
    struct ursa_broadcast_rx **at = &ch->rxs; /* unlinked: a drop is rare, a walk is fine */
    while (*at != rx)
        at = &(*at)->next_rx;
    *at = rx->next_rx;
    bool gone = --ch->rx_count == 0;
    bool last = gone && ch->tx_count == 0 && ch->weak_count == 0;
    ch_unlock(ch);
    free(rx);
    if (last)
        chan_free(ch); /* no sender: none waits in closed() */
    else if (gone)
        (void)ursa__waitq_grant_all(&ch->goneq); /* each looks again */
    return 0;
}

/* ---- weak senders: the memory, not the sending side ---- */

int ursa_broadcast_sender_downgrade(ursa_broadcast_tx_t *tx, ursa_broadcast_weak_t **out)
{
    if (!tx || !out)
        return -EINVAL;
    ursa_broadcast_weak_t *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    w->ch = tx->ch;
    ch_lock(w->ch);
    w->ch->weak_count++;
    ch_unlock(w->ch);
    *out = w;
    return 0;
}

int ursa_broadcast_weak_upgrade(ursa_broadcast_weak_t *w, ursa_broadcast_tx_t **out)
{
    if (!w || !out)
        return -EINVAL;
    ursa_broadcast_tx_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    chan_t *ch = w->ch;
    ch_lock(ch);
    bool ended = ch->tx_count == 0; /* the last sender closed it: for good */
    if (!ended)
        ch->tx_count++;
    ch_unlock(ch);
    if (ended) {
        free(t);
        return -EPIPE;
    }
    t->ch = ch;
    *out = t;
    return 0;
}

int ursa_broadcast_weak_drop(ursa_broadcast_weak_t *w)
{
    if (!w)
        return -EINVAL;
    chan_t *ch = w->ch;
    free(w);
    ch_lock(ch);
    bool last = --ch->weak_count == 0 && ch->tx_count == 0 && ch->rx_count == 0;
    ch_unlock(ch);
    if (last)
        chan_free(ch);
    return 0;
}

/* One of the handle counts, read under the lock. */
static long count_of(chan_t *ch, const size_t *n)
{
    ch_lock(ch);
    size_t v = *n;
    ch_unlock(ch);
    return (long)v;
}

long ursa_broadcast_sender_count(ursa_broadcast_tx_t *tx)
{
    return tx ? count_of(tx->ch, &tx->ch->tx_count) : -EINVAL;
}

long ursa_broadcast_weak_count(ursa_broadcast_tx_t *tx)
{
    return tx ? count_of(tx->ch, &tx->ch->weak_count) : -EINVAL;
}

/* ---- the senders' wait for every receiver to go (Tokio's closed) ---- */

static bool closed_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(&((chan_t *)w->owner)->goneq, w);
}

/* A grant holds nothing: nothing to give back. */
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, closed_cancel, NULL};

static bool receivers_gone(chan_t *ch)
{
    ch_lock(ch);
    bool gone = ch->rx_count == 0;
    ch_unlock(ch);
    return gone;
}

/* Completes w now (no receiver) or queues it: 0 / -EINPROGRESS. The look
 * and the queueing share the channel lock with the last receiver's drop,
 * which wakes goneq after it: no wake is lost. */
static int closed_start(void *chan, ursa__waiter_t *w)
{
    chan_t *ch = chan;
    w->owner = ch;
    ch_lock(ch);
    bool gone = ch->rx_count == 0;
    if (!gone)
        ursa__waitq_enqueue(&ch->goneq, w);
    ch_unlock(ch);
    return gone ? ursa__wait_start_ready(w) : -EINPROGRESS;
}

int ursa_broadcast_closed_at(ursa_broadcast_tx_t *tx, ursa_time_t deadline,
                             const ursa_site_t *site)
{
    if (!tx)
        return -EINVAL;
    while (!receivers_gone(tx->ch)) {
        int rc = ursa__wait_blocking(tx->ch, closed_start, &closed_ops, deadline, site);
        if (rc)
            return rc;
        /* woken; a subscribe may have made a receiver again: look again */
    }
    return 0;
}

int ursa_broadcast_closed_start(ursa_broadcast_tx_t *tx, ursa_wait_t *w, ursa_waker_t waker)
{
    ursa__waiter_t *n = tx ? ursa__wait_raw_init(w, waker, &closed_ops, NULL) : NULL;
    return n ? closed_start(tx->ch, n) : -EINVAL;
}

int ursa_broadcast_closed_finish(ursa_broadcast_tx_t *tx, ursa_wait_t *w)
{
    int rc = ursa__wait_finish_of(w, tx ? tx->ch : NULL, &closed_ops);
    if (rc)
        return rc;
    return receivers_gone(tx->ch) ? 0 : -EAGAIN;
}

int ursa_broadcast_is_closed(ursa_broadcast_tx_t *tx)
{
    return tx ? receivers_gone(tx->ch) : -EINVAL;
}

size_t ursa_broadcast_capacity(const ursa_broadcast_tx_t *tx)
{
    return tx ? (size_t)tx->ch->cap : 0;
}

long ursa_broadcast_rx_len(const ursa_broadcast_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    chan_t *ch = rx->ch;
    /* acquire: a snapshot; tail only grows. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    uint64_t from = rx_next(rx);
    if (tail > ch->cap && from < tail - ch->cap)
        from = tail - ch->cap;
    return (long)(tail - from);
}

long ursa_broadcast_len(ursa_broadcast_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    chan_t *ch = tx->ch;
    ch_lock(ch); /* the receiver set stays as it is */
    /* relaxed: under the lock, where tail is written. */
    uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    uint64_t oldest = tail - (tail < ch->cap ? tail : ch->cap); /* still in the ring */
    uint64_t from = tail;
    for (struct ursa_broadcast_rx *r = ch->rxs; r; r = r->next_rx) {
        uint64_t next = rx_next(r);
        if (next < from)
            from = next < oldest ? oldest : next;
    }
    ch_unlock(ch);
    return (long)(tail - from);
}
