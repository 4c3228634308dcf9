/* The watch's life: creation, handles, drops, destruction, and the
 * senders' side of the end (waiting until every receiver is gone). The
 * design: watch.h. */
#include <stdlib.h>
#include <string.h>

#include "../../core/wait_steps.h"
#include "watch.h"

static bool closed_cancel(ursa__waiter_t *n);
/* Sender waits on goneq. A grant holds nothing: nothing to give back. */
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, closed_cancel, NULL};

/* ---- raw starts (both sides) ---- */

/* Sets up a raw start's node: 0; -EINVAL (no node or waker); or
 * -EINPROGRESS if it is still queued from a start that _finish left "not
 * woken yet" (pushed again, it would link to itself). */
int ursa__watch_start_node(ursa_wait_t *n, ursa_waker_t waker, const ursa__wait_ops_t *ops,
                           ursa_watch_t *w)
{
    if (!n || !waker.fn)
        return -EINVAL;
    /* acquire: a wake that decided the node is seen as such. */
    if (n->waiter.ops == ops && n->waiter.owner == w &&
        atomic_load_explicit(&n->waiter.state, memory_order_acquire) == URSA__W_QUEUED)
        return -EINPROGRESS;
    (void)ursa__wait_raw_init(n, waker, ops, NULL);
    n->waiter.owner = w;
    return 0;
}

/* The end of a raw start that queued n and looked again: wait on
 * (-EINPROGRESS), or, if the look found it ready, withdraw n and complete
 * it now (0), unless a wake took it first. */
int ursa__watch_start_queued(ursa__waitq_t *q, ursa__waiter_t *n, bool ready)
{
    if (!ready)
        return -EINPROGRESS;
    if (!ursa__waitq_cancel(q, n))
        return -EINPROGRESS; /* a wake took it first: the waker was called */
    return ursa__wait_start_ready(n);
}

/* ---- lifetime ---- */

void ursa__watch_destroy(ursa_watch_t *w)
{
    if (w->rxq.head || w->rxq.waking || w->goneq.head || w->goneq.waking)
        ursa__report_misuse("watch freed with a raw wait still started on it", NULL);
    (void)ursa_notify_destroy(&w->unlocked);
    free(w);
}

static bool closed_cancel(ursa__waiter_t *n)
{
    return ursa__waitq_cancel(&((ursa_watch_t *)n->owner)->goneq, n);
}

/* ---- handles ---- */

int ursa_watch_new(ursa_watch_tx_t **tx, ursa_watch_rx_t **rx, size_t elem_size,
                   const void *initial)
{
    if (!tx || !rx || elem_size == 0 || elem_size > SIZE_MAX / 2)
        return -EINVAL;
    ursa_watch_t *w = malloc(sizeof *w + elem_size);
    ursa_watch_tx_t *t = malloc(sizeof *t);
    ursa_watch_rx_t *r = malloc(sizeof *r);
    if (!w || !t || !r) {
        free(w);
        free(t);
        free(r);
        return -ENOMEM;
    }
    atomic_init(&w->state, 2 * URSA__WATCH_HANDLE);
    atomic_init(&w->version, 0);
    ursa__waitq_init(&w->rxq);
    ursa__waitq_init(&w->goneq);
    atomic_init(&w->tx_count, 1);
    atomic_init(&w->rx_count, 1);
    ursa_notify_init(&w->unlocked);
    w->elem_size = elem_size;
    if (initial)
        memcpy(w->value, initial, elem_size);
    else
        memset(w->value, 0, elem_size);
    t->w = w;
    r->w = w;
    r->seen = 0;
    *tx = t;
    *rx = r;
    return 0;
}

int ursa_watch_sender_clone(ursa_watch_tx_t *tx, ursa_watch_tx_t **out)
{
    if (!tx || !out)
        return -EINVAL;
    ursa_watch_tx_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->w = tx->w;
    ursa__watch_handle_ref(tx->w);
    /* relaxed: tx keeps the count above 0, so CLOSED can't be set now. */
    atomic_fetch_add_explicit(&tx->w->tx_count, 1, memory_order_relaxed);
    *out = t;
    return 0;
}

int ursa_watch_sender_drop(ursa_watch_tx_t *tx)
{
    if (!tx)
        return -EINVAL;
    ursa_watch_t *w = tx->w;
    free(tx);
    /* acq_rel: the last sender's close follows every sender's stores. */
    if (atomic_fetch_sub_explicit(&w->tx_count, 1, memory_order_acq_rel) == 1) {
        /* acq_rel: release: a receiver that sees CLOSED (acquire) sees the
         * last version; acquire: pairs with a receiver's RXWAIT RMW. */
        uint64_t old =
            atomic_fetch_or_explicit(&w->state, URSA__WATCH_CLOSED, memory_order_acq_rel);
        if (old & URSA__WATCH_RXWAIT)
            (void)ursa__waitq_grant_all(&w->rxq);
    }
    ursa__watch_handle_unref(w);
    return 0;
}

static int new_rx(ursa_watch_t *w, uint64_t seen, ursa_watch_rx_t **out)
{
    ursa_watch_rx_t *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->w = w;
    r->seen = seen;
    ursa__watch_handle_ref(w);
    /* relaxed: only counted; a sender's check is a snapshot anyway. */
    atomic_fetch_add_explicit(&w->rx_count, 1, memory_order_relaxed);
    *out = r;
    return 0;
}

int ursa_watch_subscribe(ursa_watch_tx_t *tx, ursa_watch_rx_t **out)
{
    if (!tx || !out)
        return -EINVAL;
    /* acquire: pairs with bump_version. */
    uint64_t v = atomic_load_explicit(&tx->w->version, memory_order_acquire);
    return new_rx(tx->w, v, out);
}

int ursa_watch_receiver_clone(ursa_watch_rx_t *rx, ursa_watch_rx_t **out)
{
    if (!rx || !out)
        return -EINVAL;
    return new_rx(rx->w, rx->seen, out);
}

int ursa_watch_receiver_drop(ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    free(rx);
    /* acq_rel: orders the drop before the senders' closed() return, and
     * pairs with a closed waiter's RMW on rx_count (see closed_enqueue). */
    if (atomic_fetch_sub_explicit(&w->rx_count, 1, memory_order_acq_rel) == 1)
        (void)ursa__waitq_grant_all(&w->goneq);
    ursa__watch_handle_unref(w);
    return 0;
}

int ursa_watch_receiver_count(const ursa_watch_tx_t *tx)
{
    /* relaxed: a snapshot. */
    return tx ? (int)atomic_load_explicit(&tx->w->rx_count, memory_order_relaxed) : -EINVAL;
}

int ursa_watch_sender_count(const ursa_watch_rx_t *rx)
{
    /* relaxed: a snapshot. */
    return rx ? (int)atomic_load_explicit(&rx->w->tx_count, memory_order_relaxed) : -EINVAL;
}

/* ---- the senders' side: every receiver gone ---- */

/* Queues n on goneq: true if receivers remain (n stays queued). */
static bool closed_enqueue(ursa_watch_t *w, ursa__waiter_t *n)
{
    ursa__waitq_enqueue(&w->goneq, n);
    /* acq_rel RMW (adds nothing): totally ordered with the last receiver
     * drop's RMW on rx_count, so either that drop sees our node when it
     * wakes goneq, or we read its 0 here. */
    return atomic_fetch_add_explicit(&w->rx_count, 0, memory_order_acq_rel) != 0;
}

static bool rx_gone(ursa_watch_t *w)
{
    /* acquire: pairs with the last receiver drop. */
    return atomic_load_explicit(&w->rx_count, memory_order_acquire) == 0;
}

int ursa_watch_closed_at(ursa_watch_tx_t *tx, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!tx)
        return -EINVAL;
    ursa_watch_t *w = tx->w;
    if (rx_gone(w))
        return 0;
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t node;
    for (;;) {
        ursa__watch_node_init(&node, c->waker, &closed_ops, w);
        if (!closed_enqueue(w, &node)) {
            (void)ursa__waitq_cancel(&w->goneq, &node);
            return 0;
        }
        int rc = ursa__ctx_block(c, &node, deadline, site);
        if (rc && ursa__waitq_cancel(&w->goneq, &node))
            return rc;
        if (rx_gone(w))
            return 0;
        /* woken, but a receiver subscribed again meanwhile: wait on */
    }
}

int ursa_watch_closed_start(ursa_watch_tx_t *tx, ursa_wait_t *n, ursa_waker_t waker)
{
    int rc = tx ? ursa__watch_start_node(n, waker, &closed_ops, tx->w) : -EINVAL;
    if (rc)
        return rc;
    ursa_watch_t *w = tx->w;
    if (rx_gone(w))
        return ursa__wait_start_ready(&n->waiter);
    return ursa__watch_start_queued(&w->goneq, &n->waiter, !closed_enqueue(w, &n->waiter));
}

int ursa_watch_closed_finish(ursa_watch_tx_t *tx, ursa_wait_t *n)
{
    int rc = ursa__wait_finish_of(n, tx ? tx->w : NULL, &closed_ops);
    if (rc)
        return rc;
    return rx_gone(tx->w) ? 0 : -EAGAIN;
}
