/* The watch's receivers: borrows (the hold on the value), and waiting
 * for a version not seen yet (changed, wait_for, the raw form). */
#include "../../sync/hold.h"
#include "../../core/wait_steps.h"
#include "value_lock.h"

static void leaked_borrow(void *target, uint64_t n);
static const ursa_oblig_kind_t borrow_kind = {"watch borrow", leaked_borrow};

static bool changed_cancel(ursa__waiter_t *n);
/* Receiver waits (blocking and raw) on rxq. A grant holds nothing, so
 * there is nothing to give back. */
static const ursa__wait_ops_t changed_ops = {URSA_WAIT_CHANNEL, changed_cancel, NULL};

static bool changed_cancel(ursa__waiter_t *n)
{
    return ursa__waitq_cancel(&((ursa_watch_t *)n->owner)->rxq, n);
}

/* ---- borrows ---- */

static void leaked_borrow(void *target, uint64_t n)
{
    (void)n;
    ursa__watch_read_unlock(target);
}

/* A borrow of w's value into g (arguments checked): 0 or -ENOMEM. */
static int borrow(ursa_watch_t *w, ursa_watch_borrow_t *g, const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    if (ursa__watch_read_lock(w))
        return -ENOMEM;
    /* relaxed: under the read lock the version can't move (only the WRITER
     * holder writes it; our acquire on `state` ordered its store before). */
    uint64_t v = atomic_load_explicit(&w->version, memory_order_relaxed);
    if (__builtin_expect(ursa__oblig_take(&c->ledger, &g->ob, &borrow_kind, site, w, 1), 0)) {
        ursa__watch_read_unlock(w);
        return -ENOMEM;
    }
    g->w = w;
    g->ptr = w->value;
    g->version = v;
    return 0;
}

int ursa_watch_borrow_at(ursa_watch_rx_t *rx, ursa_watch_borrow_t *g, const ursa_site_t *site,
                         bool update)
{
    if (!rx || !g || g->ob.kind)
        return -EINVAL;
    int rc = borrow(rx->w, g, site);
    if (rc == 0 && update)
        rx->seen = g->version;
    return rc;
}

int ursa_watch_sender_borrow_at(ursa_watch_tx_t *tx, ursa_watch_borrow_t *g,
                                const ursa_site_t *site)
{
    if (!tx || !g || g->ob.kind)
        return -EINVAL;
    return borrow(tx->w, g, site);
}

const void *ursa_watch_borrow_ptr(const ursa_watch_borrow_t *g)
{
    return g && g->ob.kind ? g->ptr : NULL;
}

int ursa_watch_borrow_release(ursa_watch_borrow_t *g)
{
    if (!g)
        return -EINVAL;
    int rc = ursa__hold_discharge(&g->ob, true, "watch borrow released twice (or never taken)",
                                  g->ob.site);
    if (rc)
        return rc;
    ursa_watch_t *w = g->w;
    g->w = NULL;
    g->ptr = NULL;
    ursa__watch_read_unlock(w);
    return 0;
}

void ursa_watch_borrow_cleanup(ursa_watch_borrow_t *g)
{
    if (g && g->ob.kind)
        (void)ursa_watch_borrow_release(g);
}

/* ---- receiving ---- */

/* 0 an unseen version (marked seen if `mark`), -EPIPE nothing new and
 * closed, 1 nothing new. `s` is a load of `state` made before the version
 * is read: CLOSED in it (acquire) implies the last version is visible. */
static int check(ursa_watch_rx_t *rx, uint64_t s, bool mark)
{
    /* acquire: pairs with bump_version (a later borrow sees this value or
     * a newer one). */
    uint64_t v = atomic_load_explicit(&rx->w->version, memory_order_acquire);
    if (v != rx->seen) {
        if (mark)
            rx->seen = v;
        return 0;
    }
    return (s & URSA__WATCH_CLOSED) ? -EPIPE : 1;
}

static uint64_t load_state(ursa_watch_t *w)
{
    /* acquire: pairs with the CLOSED RMW (see check). */
    return atomic_load_explicit(&w->state, memory_order_acquire);
}

/* Queues n on rxq and announces it; returns `state` as the announcing RMW
 * found it (for check: a send or close before it is visible after it). */
static uint64_t changed_enqueue(ursa_watch_t *w, ursa__waiter_t *n)
{
    ursa__waitq_enqueue(&w->rxq, n);
    /* acq_rel: release publishes the queued node to the sender whose
     * unlock (or close) RMW reads RXWAIT; acquire: a send or close earlier
     * in `state`'s order is visible to the re-check that follows. */
    return atomic_fetch_or_explicit(&w->state, URSA__WATCH_RXWAIT, memory_order_acq_rel);
}

int ursa_watch_has_changed(const ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    int rc = check((ursa_watch_rx_t *)rx, load_state(rx->w), false);
    return rc == 0 ? 1 : rc == 1 ? 0 : rc;
}

/* The version now (acquire: pairs with bump_version, as in check). */
static uint64_t version_now(const ursa_watch_rx_t *rx)
{
    return atomic_load_explicit(&rx->w->version, memory_order_acquire);
}

int ursa_watch_mark_changed(ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    /* Versions only grow: one below the current one differs from it and
     * from every later one. */
    rx->seen = version_now(rx) - 1;
    return 0;
}

int ursa_watch_mark_unchanged(ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    rx->seen = version_now(rx);
    return 0;
}

int ursa_watch_changed_at(ursa_watch_rx_t *rx, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    int rc = check(rx, load_state(w), true);
    if (rc != 1)
        return rc;
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t node;
    for (;;) {
        ursa__watch_node_init(&node, c->waker, &changed_ops, w);
        rc = check(rx, changed_enqueue(w, &node), true);
        if (rc != 1) {
            (void)ursa__waitq_cancel(&w->rxq, &node); /* false: a wake decided it; settled */
            return rc;
        }
        rc = ursa__ctx_block(c, &node, deadline, site);
        if (rc && ursa__waitq_cancel(&w->rxq, &node))
            return rc; /* withdrawn: nothing marked */
        /* Woken (a wake that raced the deadline or cancel is kept). */
        rc = check(rx, load_state(w), true);
        if (rc != 1)
            return rc;
    }
}

int ursa_watch_changed_start(ursa_watch_rx_t *rx, ursa_wait_t *n, ursa_waker_t waker)
{
    int rc = rx ? ursa__watch_start_node(n, waker, &changed_ops, rx->w) : -EINVAL;
    if (rc)
        return rc;
    ursa_watch_t *w = rx->w;
    ursa__waiter_t *wn = &n->waiter;
    if (check(rx, load_state(w), false) != 1)
        return ursa__wait_start_ready(wn);
    return ursa__watch_start_queued(&w->rxq, wn, check(rx, changed_enqueue(w, wn), false) != 1);
}

int ursa_watch_changed_finish(ursa_watch_rx_t *rx, ursa_wait_t *n)
{
    int rc = ursa__wait_finish_of(n, rx ? rx->w : NULL, &changed_ops);
    if (rc)
        return rc;
    rc = check(rx, load_state(rx->w), true);
    return rc == 1 ? -EAGAIN : rc;
}

int ursa_watch_wait_for_at(ursa_watch_rx_t *rx, ursa_watch_pred_t pred, void *ctx,
                           ursa_watch_borrow_t *g, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx || !pred || !g || g->ob.kind)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t node;
    bool queued = false;
    uint64_t seen0 = rx->seen; /* restored on failure: nothing changed */
    for (;;) {
        int rc = ursa_watch_borrow_at(rx, g, site, true);
        if (rc) {
            if (queued)
                (void)ursa__waitq_cancel(&w->rxq, &node);
            rx->seen = seen0;
            return rc;
        }
        if (pred(g->ptr, ctx)) {
            if (queued)
                (void)ursa__waitq_cancel(&w->rxq, &node);
            return 0;
        }
        /* CLOSED is read with the value under the borrow: no send can
         * follow a close, so this value is the last one. */
        bool closed = load_state(w) & URSA__WATCH_CLOSED;
        (void)ursa_watch_borrow_release(g);
        if (closed || deadline == URSA_NOW) {
            if (queued)
                (void)ursa__waitq_cancel(&w->rxq, &node);
            rx->seen = seen0;
            return closed ? -EPIPE : -EAGAIN;
        }
        if (!queued) {
            /* Queue, then look again: a send after the value we judged is
             * either seen by the next borrow or wakes the node. */
            ursa__watch_node_init(&node, c->waker, &changed_ops, w);
            (void)changed_enqueue(w, &node);
            queued = true;
            continue;
        }
        rc = ursa__ctx_block(c, &node, deadline, site);
        queued = false;
        if (rc && ursa__waitq_cancel(&w->rxq, &node)) {
            rx->seen = seen0;
            return rc;
        }
        /* woken: judge the new value (and queue again if it fails) */
    }
}
