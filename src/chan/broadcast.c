/* Broadcast: a ring of `cap` slots, a tail position, a read position per
 * receiver (the model is Tokio's broadcast; the code is ours).
 *
 * Positions are 64-bit and never wrap in practice. Position p lives in
 * slot p & mask. Each slot has its own small spinlock guarding its bytes
 * and two atomics:
 *   claim  p+1 of the newest position assigned to the slot (0: never).
 *          Set by the sender under the channel lock, so it only grows.
 *   pos    p+1 of the value whose bytes the slot holds (0: none).
 *          Set under the slot lock after the bytes are copied in.
 * A send is: channel lock { check receivers; p = tail++; claim = p+1 }
 * (a few instructions), then slot lock { destroy the old value, copy in,
 * pos = p+1 }, then wake the waiting receivers if there are any. Senders
 * of different slots copy in parallel; only the claim is serialised.
 *
 * A receiver at position `next` looks at slot next & mask:
 *   claim - 1 >  next            lagged: positions up to claim - 1 exist,
 *                                so `next` was (or is being) overwritten;
 *                                it jumps to tail - cap, the oldest still
 *                                retained (tail >= claim > next + cap).
 *   claim - 1 == next, pos == next + 1   the value: copy it out.
 *   otherwise                    not sent yet, or still being written.
 * Two senders a whole lap apart may reach the same slot out of order; the
 * older one then finds a newer value in place and destroys its own (it was
 * overwritten before it was written; its receivers see the lag).
 *
 * Waiting receivers sit on one FIFO under the channel lock; a send wakes
 * them all. Lost wake-ups are excluded by a Dekker pair: a sender publishes
 * pos, then (seq_cst fence) reads nwaiters; a receiver raises nwaiters
 * under the lock, then (seq_cst fence) re-reads claim/pos. One of them sees
 * the other. The close (last sender dropped) is decided under the lock.
 *
 * The destructor runs for a value exactly once: when the slot it sits in
 * is overwritten (or it loses the lap race above), or when the channel is
 * freed. Receivers take copies and hold nothing, so a dropped receiver
 * keeps no slot alive and needs no per-slot reader counts. */
#include "ursa/broadcast.h"

#include <stdlib.h>
#include <string.h>

#include "../core/ctx.h"

#define CACHELINE 64

typedef struct slot {
    _Atomic uint32_t lock; /* guards the bytes */
    _Atomic uint64_t claim;
    _Atomic uint64_t pos;
} slot_t;

typedef struct chan {
    /* Read-mostly after creation. */
    size_t elem_size;
    uint64_t cap, mask;
    void (*dtor)(void *elem);
    slot_t *slots;
    unsigned char *data; /* cap * elem_size bytes */

    /* The channel lock and what it guards, on their own line. */
    _Alignas(CACHELINE) _Atomic uint32_t lock;
    _Atomic uint64_t tail;      /* next position; written under the lock */
    _Atomic uint32_t closed;    /* no sender left; written under the lock */
    _Atomic uint32_t nwaiters;  /* queued receivers; written under the lock */
    size_t rx_count, tx_count;  /* under the lock */
    ursa_wait_t *head, *qtail;  /* waiting receivers, under the lock */
} chan_t;

struct ursa_broadcast_tx {
    chan_t *ch;
};

struct ursa_broadcast_rx {
    chan_t *ch;
    uint64_t next; /* owned by the handle's single user */
};

static bool bc_cancel(ursa_wait_t *w);
static const ursa__wait_ops_t recv_ops = {URSA_WAIT_CHANNEL, bc_cancel, NULL};

static inline unsigned char *slot_data(chan_t *ch, uint64_t p)
{
    return ch->data + (size_t)(p & ch->mask) * ch->elem_size;
}

static void chan_free(chan_t *ch)
{
    if (ch->dtor) {
        for (uint64_t i = 0; i < ch->cap; i++) {
            /* relaxed: we are the last handle; the lock we just dropped
             * ordered every earlier write before us. */
            if (atomic_load_explicit(&ch->slots[i].pos, memory_order_relaxed) != 0)
                ch->dtor(ch->data + (size_t)i * ch->elem_size);
        }
    }
    free(ch->slots);
    free(ch->data);
    free(ch);
}

int ursa_broadcast_new(ursa_broadcast_tx_t **tx, ursa_broadcast_rx_t **rx, size_t elem_size,
                       size_t capacity, void (*dtor)(void *elem))
{
    if (!tx || !rx || elem_size == 0 || capacity == 0 || capacity > ((size_t)1 << 40))
        return -EINVAL;
    uint64_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    if (elem_size > SIZE_MAX / cap)
        return -EINVAL;
    size_t chsz = (sizeof(chan_t) + CACHELINE - 1) / CACHELINE * CACHELINE;
    chan_t *ch = aligned_alloc(CACHELINE, chsz);
    ursa_broadcast_tx_t *t = malloc(sizeof *t);
    ursa_broadcast_rx_t *r = malloc(sizeof *r);
    slot_t *slots = ch ? calloc(cap, sizeof *slots) : NULL;
    unsigned char *data = ch ? malloc(elem_size * cap) : NULL;
    if (!ch || !t || !r || !slots || !data) {
        free(ch);
        free(t);
        free(r);
        free(slots);
        free(data);
        return -ENOMEM;
    }
    memset(ch, 0, sizeof *ch);
    ch->elem_size = elem_size;
    ch->cap = cap;
    ch->mask = cap - 1;
    ch->dtor = dtor;
    ch->slots = slots;
    ch->data = data;
    for (uint64_t i = 0; i < cap; i++) {
        atomic_init(&slots[i].lock, 0);
        atomic_init(&slots[i].claim, 0);
        atomic_init(&slots[i].pos, 0);
    }
    atomic_init(&ch->lock, 0);
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->closed, 0);
    atomic_init(&ch->nwaiters, 0);
    ch->rx_count = 1;
    ch->tx_count = 1;
    ch->head = ch->qtail = NULL;
    t->ch = ch;
    r->ch = ch;
    r->next = 0;
    *tx = t;
    *rx = r;
    return 0;
}

/* Under the lock (the only writer): relaxed, senders read it after their
 * seq_cst fence. */
static inline void nwaiters_add(chan_t *ch, int d)
{
    uint32_t n = atomic_load_explicit(&ch->nwaiters, memory_order_relaxed);
    atomic_store_explicit(&ch->nwaiters, n + (uint32_t)d, memory_order_relaxed);
}

/* Decides every queued receiver (granted: "look again") and wakes them
 * outside the lock. Called with the lock held; drops it. */
static void wake_all_unlock(chan_t *ch)
{
    ursa_wait_t *list = ch->head;
    for (ursa_wait_t *w = list; w; w = w->next)
        /* release: the waiter re-reads the channel after seeing it. */
        atomic_store_explicit(&w->state, URSA__W_GRANTED, memory_order_release);
    ch->head = ch->qtail = NULL;
    /* relaxed: under the lock; senders read it after their fence. */
    atomic_store_explicit(&ch->nwaiters, 0, memory_order_relaxed);
    ursa__spin_unlock(&ch->lock);
    /* Decided nodes are not touched by cancel (it only settles): the links
     * are ours; read next before done lets the node go. */
    for (ursa_wait_t *w = list; w;) {
        ursa_wait_t *next = w->next;
        w->waker.fn(w->waker.ctx);
        /* release: the waiter may reuse the node once it sees done. */
        atomic_store_explicit(&w->done, 1, memory_order_release);
        w = next;
    }
}

int ursa_broadcast_send(ursa_broadcast_tx_t *tx, const void *value)
{
    if (!tx || !value)
        return -EINVAL;
    chan_t *ch = tx->ch;
    ursa__spin_lock(&ch->lock);
    size_t n = ch->rx_count;
    if (n == 0) {
        ursa__spin_unlock(&ch->lock);
        return -EPIPE;
    }
    /* relaxed: tail is only written under the lock. */
    uint64_t p = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    /* release (both): a receiver that reads claim (acquire) also sees the
     * new tail, which it needs for the lag arithmetic. */
    atomic_store_explicit(&ch->tail, p + 1, memory_order_release);
    slot_t *s = &ch->slots[p & ch->mask];
    atomic_store_explicit(&s->claim, p + 1, memory_order_release);
    ursa__spin_unlock(&ch->lock);

    unsigned char *d = slot_data(ch, p);
    ursa__spin_lock(&s->lock);
    /* relaxed: pos is only written under the slot lock. */
    uint64_t old = atomic_load_explicit(&s->pos, memory_order_relaxed);
    if (old > p + 1) {
        /* A sender a lap ahead wrote here first: our value was overwritten
         * before it was stored. It is the channel's now; destroy it. */
        ursa__spin_unlock(&s->lock);
        if (ch->dtor)
            ch->dtor((void *)(uintptr_t)value);
        return n > INT32_MAX ? INT32_MAX : (int)n;
    }
    if (old != 0 && ch->dtor)
        ch->dtor(d); /* the oldest value leaves the ring */
    memcpy(d, value, ch->elem_size);
    /* release: a receiver that sees pos (acquire, or via the slot lock)
     * sees the bytes. */
    atomic_store_explicit(&s->pos, p + 1, memory_order_release);
    ursa__spin_unlock(&s->lock);

    /* seq_cst fence: orders our pos store before the nwaiters load (the
     * Dekker pair with bc_start; see the top of the file). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&ch->nwaiters, memory_order_relaxed) != 0) {
        ursa__spin_lock(&ch->lock);
        wake_all_unlock(ch);
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* What rx would get now, without taking it: 0 a value, -EOVERFLOW a lag,
 * -EPIPE closed and drained, -EAGAIN nothing. */
static int peek(const ursa_broadcast_rx_t *rx)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx->next;
    slot_t *s = &ch->slots[next & ch->mask];
    /* acquire: pairs with the sender's release of claim (and of tail). */
    uint64_t c = atomic_load_explicit(&s->claim, memory_order_acquire);
    if (c > next + 1)
        return -EOVERFLOW;
    /* acquire: pairs with the release store of pos after the copy. */
    if (c == next + 1 && atomic_load_explicit(&s->pos, memory_order_acquire) == next + 1)
        return 0;
    /* acquire: closed is set after the last sender's last send returned;
     * then tail is final. */
    if (atomic_load_explicit(&ch->closed, memory_order_acquire) &&
        atomic_load_explicit(&ch->tail, memory_order_acquire) == next)
        return -EPIPE;
    return -EAGAIN;
}

/* Takes what is ready for rx: 0 (copied to out), -EOVERFLOW (*missed set,
 * rx moved to the oldest retained value), -EPIPE, -EAGAIN. */
static int poll_rx(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed)
{
    chan_t *ch = rx->ch;
    uint64_t next = rx->next;
    slot_t *s = &ch->slots[next & ch->mask];
    ursa__spin_lock(&s->lock);
    /* acquire: as in peek. */
    uint64_t c = atomic_load_explicit(&s->claim, memory_order_acquire);
    if (c > next + 1) {
        ursa__spin_unlock(&s->lock);
        /* acquire: tail >= c > next + cap, stored before claim. */
        uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
        uint64_t oldest = tail - ch->cap;
        if (missed)
            *missed = oldest - next;
        rx->next = oldest;
        return -EOVERFLOW;
    }
    /* relaxed: under the slot lock, which orders pos and the bytes. */
    if (c == next + 1 && atomic_load_explicit(&s->pos, memory_order_relaxed) == next + 1) {
        memcpy(out, slot_data(ch, next), ch->elem_size);
        ursa__spin_unlock(&s->lock);
        rx->next = next + 1;
        return 0;
    }
    ursa__spin_unlock(&s->lock);
    if (atomic_load_explicit(&ch->closed, memory_order_acquire) &&
        atomic_load_explicit(&ch->tail, memory_order_acquire) == next)
        return -EPIPE;
    return -EAGAIN;
}

int ursa_broadcast_try_recv(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed)
{
    if (!rx || !out)
        return -EINVAL;
    return poll_rx(rx, out, missed);
}

/* Queues w on rx's channel, or finds something ready: 0 now, -EINPROGRESS
 * queued. */
static int bc_start(ursa_broadcast_rx_t *rx, ursa_wait_t *w)
{
    chan_t *ch = rx->ch;
    w->owner = rx;
    ursa__spin_lock(&ch->lock);
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    ursa__waitq_push(&ch->head, &ch->qtail, w);
    nwaiters_add(ch, 1);
    /* seq_cst fence: nwaiters before the re-check (Dekker pair with send). */
    atomic_thread_fence(memory_order_seq_cst);
    if (peek(rx) != -EAGAIN) {
        ursa__waitq_remove(&ch->head, &ch->qtail, w);
        nwaiters_add(ch, -1);
        ursa__spin_unlock(&ch->lock);
        ursa__wait_complete_now(w, URSA__W_GRANTED);
        return 0;
    }
    ursa__spin_unlock(&ch->lock);
    return -EINPROGRESS;
}

static bool bc_cancel(ursa_wait_t *w)
{
    ursa_broadcast_rx_t *rx = w->owner;
    chan_t *ch = rx->ch;
    if (!ursa__wait_cancel_begin(&ch->lock, w))
        return false;
    ursa__waitq_remove(&ch->head, &ch->qtail, w);
    nwaiters_add(ch, -1);
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    ursa__spin_unlock(&ch->lock);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
    return true;
}

int ursa_broadcast_recv_at(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed,
                           ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx || !out)
        return -EINVAL;
    ursa__ctx_t *c = NULL;
    for (;;) {
        int rc = poll_rx(rx, out, missed);
        if (rc != -EAGAIN || deadline == URSA_NOW)
            return rc;
        if (!c)
            c = ursa__ctx();
        ursa_wait_t w;
        ursa__wait_init(&w, c->waker, &recv_ops, site);
        if (bc_start(rx, &w) == -EINPROGRESS) {
            rc = ursa__ctx_block(c, &w, deadline);
            if (rc != 0 && bc_cancel(&w)) {
                /* Withdrawn. A value sent in the same instant is still
                 * taken: an expired deadline still tries once. */
                int r2 = poll_rx(rx, out, missed);
                return r2 == -EAGAIN ? rc : r2;
            }
            ursa__wait_settle(&w);
        }
        /* Woken (or ready at start): look again. */
    }
}

int ursa_broadcast_recv_start_at(ursa_broadcast_rx_t *rx, ursa_wait_t *w, ursa_waker_t waker,
                                 const ursa_site_t *site)
{
    if (!rx || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &recv_ops, site);
    return bc_start(rx, w);
}

int ursa_broadcast_recv_finish(ursa_broadcast_rx_t *rx, ursa_wait_t *w, void *out,
                               uint64_t *missed)
{
    if (!rx || !w || !out || w->owner != rx || w->ops != &recv_ops)
        return -EINVAL;
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED || st == URSA__W_CANCELLED)
        return -EINVAL;
    if (!ursa__wait_is_decided(w))
        return -EAGAIN;
    ursa__wait_settle(w); /* the waker call may still be returning */
    for (;;) {
        int rc = poll_rx(rx, out, missed);
        if (rc != -EAGAIN) {
            atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
            return rc;
        }
        /* Woken for nothing (a later position published first): wait on. */
        ursa_waker_t waker = w->waker;
        const ursa_site_t *site = w->site;
        ursa__wait_init(w, waker, &recv_ops, site);
        if (bc_start(rx, w) == -EINPROGRESS)
            return -EAGAIN;
    }
}

static ursa_broadcast_rx_t *new_rx(chan_t *ch)
{
    ursa_broadcast_rx_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    r->ch = ch;
    ursa__spin_lock(&ch->lock);
    ch->rx_count++;
    /* relaxed: under the lock, where tail is written. */
    r->next = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    ursa__spin_unlock(&ch->lock);
    return r;
}

int ursa_broadcast_subscribe(ursa_broadcast_tx_t *tx, ursa_broadcast_rx_t **rx)
{
    if (!tx || !rx)
        return -EINVAL;
    ursa_broadcast_rx_t *r = new_rx(tx->ch);
    if (!r)
        return -ENOMEM;
    *rx = r;
    return 0;
}

int ursa_broadcast_resubscribe(ursa_broadcast_rx_t *rx, ursa_broadcast_rx_t **rx2)
{
    if (!rx || !rx2)
        return -EINVAL;
    ursa_broadcast_rx_t *r = new_rx(rx->ch);
    if (!r)
        return -ENOMEM;
    *rx2 = r;
    return 0;
}

int ursa_broadcast_receiver_count(ursa_broadcast_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    chan_t *ch = tx->ch;
    ursa__spin_lock(&ch->lock);
    size_t n = ch->rx_count;
    ursa__spin_unlock(&ch->lock);
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
    ursa__spin_lock(&t->ch->lock);
    t->ch->tx_count++;
    ursa__spin_unlock(&t->ch->lock);
    *tx2 = t;
    return 0;
}

int ursa_broadcast_sender_drop(ursa_broadcast_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    chan_t *ch = tx->ch;
    free(tx);
    ursa__spin_lock(&ch->lock);
    if (--ch->tx_count > 0) {
        ursa__spin_unlock(&ch->lock);
        return 0;
    }
    if (ch->rx_count == 0) {
        ursa__spin_unlock(&ch->lock);
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
    ursa__spin_lock(&ch->lock);
    for (ursa_wait_t *w = ch->head; w; w = w->next) {
        if (w->owner == rx) {
            ursa__spin_unlock(&ch->lock);
            ursa__report_misuse("broadcast receiver dropped while a wait on it is queued",
                                w->site);
            return -EBUSY;
        }
    }
    bool last = --ch->rx_count == 0 && ch->tx_count == 0;
    ursa__spin_unlock(&ch->lock);
    free(rx);
    if (last)
        chan_free(ch);
    return 0;
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
    uint64_t from = rx->next;
    if (tail > ch->cap && from < tail - ch->cap)
        from = tail - ch->cap;
    return (long)(tail - from);
}
