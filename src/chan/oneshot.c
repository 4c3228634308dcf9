/* Oneshot: one atomic state word, changed only under a small spinlock that
 * also guards the two wait slots (one recv waiter, one closed() waiter).
 *
 * Every decision (value published, sender gone, receiver closed) is one
 * state change under the lock, so a close racing a send has exactly one
 * order: SENT is only ever set while RX_CLOSED is clear. The value is
 * copied in before SENT is published (the sender owns the buffer while
 * TX_BUSY is set) and copied out after TAKEN is set, with no lock held:
 * after SENT nobody writes the buffer, and only one receive can claim it.
 * Lock-free readers (ursa_oneshot_is_closed, the waiters' decision
 * checks) read the state with acquire. */
#include "ursa/oneshot.h"

#include <string.h>

#include "../core/ctx.h"

enum {
    SENT = 1u << 0,       /* a value is published */
    TX_BUSY = 1u << 1,    /* a send is copying the value in */
    TX_DONE = 1u << 2,    /* the sender sent (or failed to) */
    TX_DROPPED = 1u << 3, /* the sender dropped */
    RX_CLOSED = 1u << 4,  /* the receiver closed (or dropped) */
    RX_DROPPED = 1u << 5, /* the receiver dropped */
    TAKEN = 1u << 6,      /* the value was received */
};

static bool os_cancel(ursa_wait_t *w);

static const ursa__wait_ops_t recv_ops = {URSA_WAIT_CHANNEL, os_cancel, NULL};
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, os_cancel, NULL};

static inline void *buf(ursa_oneshot_t *os)
{
    return os->ext ? os->ext : (void *)os->inline_buf;
}

static inline uint32_t load_locked(ursa_oneshot_t *os)
{
    /* relaxed: under the lock, which orders every state change. */
    return atomic_load_explicit(&os->state, memory_order_relaxed);
}

static inline void set_bits(ursa_oneshot_t *os, uint32_t bits)
{
    /* release: publishes the copied-in value (SENT) to lock-free readers. */
    atomic_fetch_or_explicit(&os->state, bits, memory_order_release);
}

/* Decides a queued wait under the lock; the caller wakes it after unlock. */
static ursa_wait_t *decide(ursa_wait_t **slot, uint32_t how)
{
    ursa_wait_t *w = *slot;
    if (!w)
        return NULL;
    *slot = NULL;
    /* release: the waiter reads the channel state after seeing this. */
    atomic_store_explicit(&w->state, how, memory_order_release);
    return w;
}

static void wake(ursa_wait_t *w)
{
    if (!w)
        return;
    w->waker.fn(w->waker.ctx);
    /* release: the waiter may let go of the node once it sees done. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

int ursa_oneshot_init(ursa_oneshot_t *os, size_t elem_size, void *storage)
{
    if (!os || elem_size == 0 || (!storage && elem_size > URSA_ONESHOT_INLINE))
        return -EINVAL;
    atomic_init(&os->state, 0);
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
    ursa__spin_lock(&os->lock);
    bool busy = os->rx_w || os->tx_w;
    ursa__spin_unlock(&os->lock);
    if (busy) {
        ursa__report_misuse("oneshot destroyed while waited on", NULL);
        return -EBUSY;
    }
    return 0;
}

int ursa_oneshot_send(ursa_oneshot_t *os, const void *value)
{
    if (!os || !value)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    uint32_t st = load_locked(os);
    int rc = 0;
    if (st & TX_DROPPED)
        rc = -EINVAL;
    else if (st & (TX_DONE | TX_BUSY))
        rc = -EALREADY;
    else if (st & RX_CLOSED) {
        set_bits(os, TX_DONE);
        rc = -EPIPE;
    } else
        set_bits(os, TX_BUSY); /* the buffer is ours until SENT */
    ursa__spin_unlock(&os->lock);
    if (rc)
        return rc;
    memcpy(buf(os), value, os->elem_size);
    ursa__spin_lock(&os->lock);
    st = load_locked(os);
    ursa_wait_t *w = NULL;
    if (st & RX_CLOSED) {
        /* Closed while we copied: the receiver never reads an unsent
         * buffer, so the value simply stays with the sender. */
        set_bits(os, TX_DONE);
        rc = -EPIPE;
    } else {
        set_bits(os, SENT | TX_DONE); /* release: the copy above */
        w = decide(&os->rx_w, URSA__W_GRANTED);
    }
    /* relaxed: under the lock. */
    atomic_fetch_and_explicit(&os->state, ~(uint32_t)TX_BUSY, memory_order_relaxed);
    ursa__spin_unlock(&os->lock);
    wake(w);
    return rc;
}

int ursa_oneshot_sender_drop(ursa_oneshot_t *os)
{
    if (!os)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    uint32_t st = load_locked(os);
    ursa_wait_t *w = NULL;
    int rc = 0;
    if (st & TX_DROPPED)
        rc = -EINVAL;
    else {
        set_bits(os, TX_DROPPED | TX_DONE);
        if (!(st & SENT))
            w = decide(&os->rx_w, URSA__W_CLOSED);
    }
    ursa__spin_unlock(&os->lock);
    wake(w);
    if (rc)
        ursa__report_misuse("oneshot sender dropped twice", NULL);
    return rc;
}

/* What a receive would do now: 1 wait, else its result. Under the lock. */
static int rx_eval(uint32_t st)
{
    if (st & RX_DROPPED)
        return -EINVAL;
    if (st & TAKEN)
        return -EALREADY;
    if (st & SENT)
        return 0;
    if (st & (TX_DONE | TX_DROPPED | RX_CLOSED))
        return -EPIPE; /* nothing sent and nothing ever will be */
    return 1;
}

/* Under the lock, with rx_eval(st) == 0: claims the value. Unlocks. */
static int take_unlock(ursa_oneshot_t *os, void *out)
{
    set_bits(os, TAKEN);
    ursa__spin_unlock(&os->lock);
    /* The lock's acquire saw SENT, set with release after the copy-in. */
    memcpy(out, buf(os), os->elem_size);
    return 0;
}

/* Finishes a decided recv wait: the value or -EPIPE. */
static int recv_result(ursa_oneshot_t *os, void *out)
{
    ursa__spin_lock(&os->lock);
    int r = rx_eval(load_locked(os));
    if (r == 0)
        return take_unlock(os, out);
    ursa__spin_unlock(&os->lock);
    return r == 1 ? -EPIPE : r; /* a decided wait is never "pending" */
}

static bool os_cancel(ursa_wait_t *w)
{
    ursa_oneshot_t *os = w->owner;
    if (!ursa__wait_cancel_begin(&os->lock, w))
        return false;
    if (os->rx_w == w)
        os->rx_w = NULL;
    if (os->tx_w == w)
        os->tx_w = NULL;
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    ursa__spin_unlock(&os->lock);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
    return true;
}

/* Starts a recv wait: 0 decided now (recv_result gives the outcome),
 * -EINPROGRESS queued, or an error (w not started). */
static int recv_start(ursa_oneshot_t *os, ursa_wait_t *w)
{
    w->owner = os;
    ursa__spin_lock(&os->lock);
    int r = rx_eval(load_locked(os));
    if (r == -EINVAL || r == -EALREADY) {
        ursa__spin_unlock(&os->lock);
        return r;
    }
    if (r != 1) {
        ursa__spin_unlock(&os->lock);
        ursa__wait_complete_now(w, r == 0 ? URSA__W_GRANTED : URSA__W_CLOSED);
        return 0;
    }
    if (os->rx_w) {
        ursa__spin_unlock(&os->lock);
        return -EBUSY;
    }
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    os->rx_w = w;
    ursa__spin_unlock(&os->lock);
    return -EINPROGRESS;
}

int ursa_oneshot_recv_at(ursa_oneshot_t *os, void *out, ursa_time_t deadline,
                         const ursa_site_t *site)
{
    if (!os || !out)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    int r = rx_eval(load_locked(os));
    if (r == 0)
        return take_unlock(os, out);
    ursa__spin_unlock(&os->lock);
    if (r != 1)
        return r;
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &recv_ops, site);
    int rc = recv_start(os, &w);
    if (rc == -EINPROGRESS) {
        rc = ursa__ctx_block(c, &w, deadline);
        if (rc != 0 && os_cancel(&w))
            return rc; /* withdrawn: the value (if any) stays put */
        /* decided anyway: a value or a close raced the deadline */
    } else if (rc != 0)
        return rc;
    return recv_result(os, out);
}

int ursa_oneshot_try_recv(ursa_oneshot_t *os, void *out)
{
    return ursa_oneshot_recv_at(os, out, URSA_NOW, NULL);
}

int ursa_oneshot_recv_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                               const ursa_site_t *site)
{
    if (!os || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &recv_ops, site);
    return recv_start(os, w);
}

/* Common finish checks: 0 ready, -EAGAIN, -EINVAL. */
static int finish_check(ursa_oneshot_t *os, ursa_wait_t *w, const ursa__wait_ops_t *ops)
{
    if (!os || !w || w->owner != os || w->ops != ops)
        return -EINVAL;
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED || st == URSA__W_CANCELLED)
        return -EINVAL;
    if (!ursa__wait_is_decided(w))
        return -EAGAIN;
    ursa__wait_settle(w); /* the waker call may still be returning */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return 0;
}

int ursa_oneshot_recv_finish(ursa_oneshot_t *os, ursa_wait_t *w, void *out)
{
    if (!out)
        return -EINVAL;
    int rc = finish_check(os, w, &recv_ops);
    return rc ? rc : recv_result(os, out);
}

/* Receiver gone: close (and maybe drop). Wakes the closed() waiter, and a
 * recv wait that can now never get a value. */
static int rx_close(ursa_oneshot_t *os, bool drop)
{
    if (!os)
        return -EINVAL;
    ursa__spin_lock(&os->lock);
    uint32_t st = load_locked(os);
    if (st & RX_DROPPED) {
        ursa__spin_unlock(&os->lock);
        if (drop)
            ursa__report_misuse("oneshot receiver dropped twice", NULL);
        return -EINVAL;
    }
    set_bits(os, RX_CLOSED | (drop ? RX_DROPPED : 0));
    ursa_wait_t *tw = decide(&os->tx_w, URSA__W_GRANTED);
    ursa_wait_t *rw = (st & SENT) ? NULL : decide(&os->rx_w, URSA__W_CLOSED);
    if (drop && !rw) /* a recv wait on a dropped receiver: it ends too */
        rw = decide(&os->rx_w, URSA__W_CLOSED);
    ursa__spin_unlock(&os->lock);
    wake(tw);
    wake(rw);
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
    return (atomic_load_explicit(&os->state, memory_order_acquire) & RX_CLOSED) ? 1 : 0;
}

static int closed_start(ursa_oneshot_t *os, ursa_wait_t *w)
{
    w->owner = os;
    ursa__spin_lock(&os->lock);
    if (load_locked(os) & RX_CLOSED) {
        ursa__spin_unlock(&os->lock);
        ursa__wait_complete_now(w, URSA__W_GRANTED);
        return 0;
    }
    if (os->tx_w) {
        ursa__spin_unlock(&os->lock);
        return -EBUSY;
    }
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
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &closed_ops, site);
    int rc = closed_start(os, &w);
    if (rc == -EINPROGRESS) {
        rc = ursa__ctx_block(c, &w, deadline);
        if (rc != 0 && os_cancel(&w))
            return rc;
        return 0; /* the close landed first */
    }
    return rc;
}

int ursa_oneshot_closed_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                                 const ursa_site_t *site)
{
    if (!os || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &closed_ops, site);
    return closed_start(os, w);
}

int ursa_oneshot_closed_finish(ursa_oneshot_t *os, ursa_wait_t *w)
{
    return finish_check(os, w, &closed_ops);
}
