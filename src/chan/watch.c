/* Watch: the value behind a small reader-preferring lock, a version
 * counter, and two wait queues of its own (receivers waiting for a change,
 * senders waiting for the receivers to go) plus a notify for senders
 * waiting for borrows to leave.
 *
 * One 64-bit `state` word holds everything the hot paths race on: the
 * CLOSED bit (every sender gone), the WRITER bit, two "someone may be
 * waiting" bits (WWAIT: a writer waits on `unlocked`; RXWAIT: receivers
 * are queued on `rxq`), the reader (borrow) count and the handle count.
 * The channel is freed when handles and borrows are both 0, which one RMW
 * on one word decides, so a borrow needs no reference of its own.
 *
 * A borrow (reader) enters with a CAS while WRITER is clear; a send sets
 * WRITER with a CAS when no reader is in and holds it only for a copy (or
 * the modify callback), never across a suspension, so a reader that finds
 * WRITER set spins briefly. A writer that finds readers blocks on
 * `unlocked` until the count reaches 0: borrows may be held across
 * suspensions.
 *
 * `version` is written only by the WRITER holder (a plain store, no RMW)
 * and read by receivers. No seq_cst fence anywhere: a waiter queues, then
 * sets its WAIT bit with an RMW on `state`; the waker's own RMW on `state`
 * (the unlock that publishes a send, the close, the last reader leaving)
 * reads that bit. The two RMWs are totally ordered on one word, so either
 * the waker sees the bit (and the queued node, through acq_rel), or the
 * waiter's RMW comes later and sees the waker's change. */
#include "ursa/watch.h"

#include <stdlib.h>
#include <string.h>

#include "../core/ctx.h"
#include "../sync/hold.h"
#include "ursa/notify.h"
#include "waitlist.h"

#define CLOSED 1ull   /* every sender is gone */
#define WRITER 2ull   /* a send holds the value */
#define WWAIT 4ull    /* a writer may wait on `unlocked` */
#define RXWAIT 8ull   /* receivers may be queued on rxq */
#define READER (1ull << 4)
#define RMASK (((1ull << 28) - 1) << 4)  /* borrows, bits 4..31 */
#define HANDLE (1ull << 32)
#define HMASK (~0ull << 32)              /* handles, bits 32..63 */

struct ursa_watch {
    _Atomic uint64_t state;     /* CLOSED|WRITER|WWAIT|RXWAIT|readers|handles */
    _Atomic uint64_t version;   /* written by the WRITER holder only */
    ursa__waitlist_t rxq;       /* receivers: version or CLOSED changed */
    ursa__waitlist_t goneq;     /* senders: rx_count reached 0 */
    _Atomic uint32_t tx_count;  /* live sender handles */
    _Atomic uint32_t rx_count;  /* live receiver handles */
    ursa_notify_t unlocked;     /* writers: the borrows may be gone */
    size_t elem_size;
    _Alignas(max_align_t) unsigned char value[];
};

struct ursa_watch_tx {
    ursa_watch_t *w;
};

struct ursa_watch_rx {
    ursa_watch_t *w;
    uint64_t seen; /* version last seen; the handle's user only */
};

static void leaked_borrow(void *target, uint64_t n);
static const ursa_oblig_kind_t borrow_kind = {"watch borrow", leaked_borrow};

static bool changed_cancel(ursa_wait_t *n);
static bool closed_cancel(ursa_wait_t *n);
/* Receiver waits (blocking and raw) on rxq; sender waits on goneq. A
 * grant holds nothing, so there is nothing to give back. */
static const ursa__wait_ops_t changed_ops = {URSA_WAIT_CHANNEL, changed_cancel, NULL};
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, closed_cancel, NULL};

/* ---- wait queues ---- */

/* A wait node of w's (its cancel finds the queue through owner). */
static void node_init(ursa_wait_t *n, ursa_waker_t waker, const ursa__wait_ops_t *ops,
                      const ursa_site_t *site, ursa_watch_t *w)
{
    ursa__wait_init(n, waker, ops, site);
    n->owner = w;
}

/* Sets up a raw start's node: 0; -EINVAL (no node or waker); or
 * -EINPROGRESS if it is still queued from a start that _finish left "not
 * woken yet" (pushed again, it would link to itself). */
static int start_node(ursa_wait_t *n, ursa_waker_t waker, const ursa__wait_ops_t *ops,
                      ursa_watch_t *w)
{
    if (!n || !waker.fn)
        return -EINVAL;
    /* acquire: a wake that decided the node is seen as such. */
    if (n->ops == ops && n->owner == w &&
        atomic_load_explicit(&n->state, memory_order_acquire) == URSA__W_QUEUED)
        return -EINPROGRESS;
    node_init(n, waker, ops, NULL, w);
    return 0;
}

/* The end of a raw start that queued n and looked again: wait on
 * (-EINPROGRESS), or, if the look found it ready, withdraw n and complete
 * it now (0), unless a wake took it first. */
static int start_queued(ursa__waitlist_t *q, ursa_wait_t *n, bool ready)
{
    if (!ready)
        return -EINPROGRESS;
    if (!ursa__waitlist_cancel(q, n))
        return -EINPROGRESS; /* a wake took it first: the waker was called */
    return ursa__wait_start_ready(n);
}

static bool changed_cancel(ursa_wait_t *n)
{
    return ursa__waitlist_cancel(&((ursa_watch_t *)n->owner)->rxq, n);
}

static bool closed_cancel(ursa_wait_t *n)
{
    return ursa__waitlist_cancel(&((ursa_watch_t *)n->owner)->goneq, n);
}

/* ---- lifetime: handles and borrows in `state` ---- */

static void destroy(ursa_watch_t *w)
{
    if (w->rxq.head || w->goneq.head)
        ursa__report_misuse("watch freed with a raw wait still started on it", NULL);
    (void)ursa_notify_destroy(&w->unlocked);
    free(w);
}

static void handle_ref(ursa_watch_t *w)
{
    /* relaxed: the caller already holds a handle. */
    atomic_fetch_add_explicit(&w->state, HANDLE, memory_order_relaxed);
}

static void handle_unref(ursa_watch_t *w)
{
    /* acq_rel: whoever brings handles and borrows to 0 sees every other
     * holder's writes before it frees. */
    uint64_t s = atomic_fetch_sub_explicit(&w->state, HANDLE, memory_order_acq_rel) - HANDLE;
    if (!(s & (HMASK | RMASK)))
        destroy(w);
}

/* ---- the value lock ---- */

/* 0 with a reader counted, or -ENOMEM (2^28 - 1 borrows already in). */
static int read_lock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (unsigned i = 0;; i++) {
        if (!(s & WRITER)) {
            if ((s & RMASK) == RMASK)
                return -ENOMEM;
            /* acquire: the last writer's copy and version (released by its
             * unlock RMW) happen before our reads. */
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, s + READER,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            continue;
        }
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* the writer may be a preempted thread */
        s = atomic_load_explicit(&w->state, memory_order_relaxed); /* relaxed: as above */
    }
}

static inline void read_unlock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (;;) {
        bool wake = (s & RMASK) == READER && (s & WWAIT);
        /* The last reader out with a writer waiting clears WWAIT and turns
         * its reader count into a handle reference, so the watch stays
         * alive while it wakes the writer (who may give up and drop). */
        uint64_t n = wake ? s - READER - WWAIT + HANDLE : s - READER;
        /* acq_rel: release orders our reads before the next writer's copy;
         * acquire pairs with the writer's WWAIT RMW (its queued node is
         * visible to the notify) and with the other holders for the free. */
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (wake) {
                (void)ursa_notify_waiters(&w->unlocked);
                handle_unref(w);
            } else if (!(n & (HMASK | RMASK))) {
                destroy(w); /* the handles went while we borrowed */
            }
            return;
        }
    }
}

/* 0 with WRITER held, or -ECANCELED (the task was cancelled meanwhile). */
static int write_lock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    while (!(s & (WRITER | RMASK))) {
        /* acquire: the readers' reads and the last writer's copy happen
         * before ours. */
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | WRITER,
                                                  memory_order_acquire, memory_order_relaxed))
            return 0;
    }
    ursa_wait_t node;
    for (;;) {
        (void)ursa_notify_enable(&w->unlocked, &node);
        /* relaxed: validated by the CAS. */
        s = atomic_load_explicit(&w->state, memory_order_relaxed);
        for (;;) {
            if (!(s & (WRITER | RMASK))) {
                /* acquire: as above. WWAIT stays: other writers may wait. */
                if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | WRITER,
                                                          memory_order_acquire,
                                                          memory_order_relaxed)) {
                    (void)ursa_notify_disable(&w->unlocked, &node);
                    return 0;
                }
                continue;
            }
            /* acq_rel, and an RMW even when WWAIT is already set: the
             * unlocker's RMW that clears it then synchronises with this
             * one, so its notify sees our enabled node. */
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | WWAIT,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed))
                break;
        }
        int rc = ursa_notify_wait_enabled(&w->unlocked, &node, URSA_NEVER);
        if (rc == -ECANCELED)
            return rc; /* -ETIMEDOUT: a slice ended, try again */
    }
}

/* Drops WRITER; `bumped`: the version advanced, wake the receivers. */
static void write_unlock(ursa_watch_t *w, bool bumped)
{
    uint64_t clear = WRITER | WWAIT | (bumped ? RXWAIT : 0);
    /* acq_rel: release publishes our copy and version to the next reader
     * or writer; acquire pairs with the RMW that set WWAIT / RXWAIT, so
     * the waiters it announces are visible to the wakes below. */
    uint64_t old = atomic_fetch_and_explicit(&w->state, ~clear, memory_order_acq_rel);
    if (old & WWAIT)
        (void)ursa_notify_waiters(&w->unlocked); /* other writers wait */
    if (bumped && (old & RXWAIT))
        ursa__waitlist_wake_all(&w->rxq);
}

/* Under WRITER. */
static void bump_version(ursa_watch_t *w)
{
    /* relaxed load: only the WRITER holder writes version. */
    uint64_t v = atomic_load_explicit(&w->version, memory_order_relaxed);
    /* release: a receiver that sees the new version (acquire) and then
     * borrows finds WRITER still set or this value (its CAS on `state`
     * comes after our WRITER CAS in that word's order). */
    atomic_store_explicit(&w->version, v + 1, memory_order_release);
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
    atomic_init(&w->state, 2 * HANDLE);
    atomic_init(&w->version, 0);
    ursa__waitlist_init(&w->rxq);
    ursa__waitlist_init(&w->goneq);
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
    handle_ref(tx->w);
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
        uint64_t old = atomic_fetch_or_explicit(&w->state, CLOSED, memory_order_acq_rel);
        if (old & RXWAIT)
            ursa__waitlist_wake_all(&w->rxq);
    }
    handle_unref(w);
    return 0;
}

static int new_rx(ursa_watch_t *w, uint64_t seen, ursa_watch_rx_t **out)
{
    ursa_watch_rx_t *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->w = w;
    r->seen = seen;
    handle_ref(w);
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
        ursa__waitlist_wake_all(&w->goneq);
    handle_unref(w);
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

/* ---- sending ---- */

static int store(ursa_watch_t *w, const void *value, void *old)
{
    int rc = write_lock(w);
    if (rc)
        return rc;
    if (old)
        memcpy(old, w->value, w->elem_size);
    memcpy(w->value, value, w->elem_size);
    bump_version(w);
    write_unlock(w, true);
    return 0;
}

int ursa_watch_send(ursa_watch_tx_t *tx, const void *value)
{
    if (!tx || !value)
        return -EINVAL;
    /* acquire: a receiver drop seen here happened; a racing one may not be. */
    if (atomic_load_explicit(&tx->w->rx_count, memory_order_acquire) == 0)
        return -EPIPE;
    return store(tx->w, value, NULL);
}

int ursa_watch_send_replace(ursa_watch_tx_t *tx, const void *value, void *old)
{
    if (!tx || !value)
        return -EINVAL;
    return store(tx->w, value, old);
}

int ursa_watch_send_modify(ursa_watch_tx_t *tx, ursa_watch_modify_t fn, void *ctx)
{
    if (!tx || !fn)
        return -EINVAL;
    ursa_watch_t *w = tx->w;
    int rc = write_lock(w);
    if (rc)
        return rc;
    bool changed = fn(w->value, ctx);
    if (changed)
        bump_version(w);
    write_unlock(w, changed);
    return changed ? 1 : 0;
}

/* ---- borrows ---- */

static void leaked_borrow(void *target, uint64_t n)
{
    (void)n;
    read_unlock(target);
}

int ursa_watch_borrow_at(ursa_watch_rx_t *rx, ursa_watch_borrow_t *g, const ursa_site_t *site,
                         bool update)
{
    if (!rx || !g || g->ob.kind)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    ursa__ctx_t *c = ursa__ctx();
    if (read_lock(w))
        return -ENOMEM;
    /* relaxed: under the read lock the version can't move (only the WRITER
     * holder writes it; our acquire on `state` ordered its store before). */
    uint64_t v = atomic_load_explicit(&w->version, memory_order_relaxed);
    if (__builtin_expect(ursa__oblig_take(&c->ledger, &g->ob, &borrow_kind, site, w, 1), 0)) {
        read_unlock(w);
        return -ENOMEM;
    }
    g->w = w;
    g->ptr = w->value;
    g->version = v;
    if (update)
        rx->seen = v;
    return 0;
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
    read_unlock(w);
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
    return (s & CLOSED) ? -EPIPE : 1;
}

static uint64_t load_state(ursa_watch_t *w)
{
    /* acquire: pairs with the CLOSED RMW (see check). */
    return atomic_load_explicit(&w->state, memory_order_acquire);
}

/* Queues n on rxq and announces it; returns `state` as the announcing RMW
 * found it (for check: a send or close before it is visible after it). */
static uint64_t changed_enqueue(ursa_watch_t *w, ursa_wait_t *n)
{
    ursa__waitlist_push(&w->rxq, n);
    /* acq_rel: release publishes the queued node to the sender whose
     * unlock (or close) RMW reads RXWAIT; acquire: a send or close earlier
     * in `state`'s order is visible to the re-check that follows. */
    return atomic_fetch_or_explicit(&w->state, RXWAIT, memory_order_acq_rel);
}

int ursa_watch_has_changed(const ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    int rc = check((ursa_watch_rx_t *)rx, load_state(rx->w), false);
    return rc == 0 ? 1 : rc == 1 ? 0 : rc;
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
    ursa_wait_t node;
    for (;;) {
        node_init(&node, c->waker, &changed_ops, site, w);
        rc = check(rx, changed_enqueue(w, &node), true);
        if (rc != 1) {
            (void)ursa__waitlist_cancel(&w->rxq, &node); /* false: a wake decided it; settled */
            return rc;
        }
        rc = ursa__ctx_block(c, &node, deadline);
        if (rc && ursa__waitlist_cancel(&w->rxq, &node))
            return rc; /* withdrawn: nothing marked */
        /* Woken (a wake that raced the deadline or cancel is kept). */
        rc = check(rx, load_state(w), true);
        if (rc != 1)
            return rc;
    }
}

int ursa_watch_changed_start(ursa_watch_rx_t *rx, ursa_wait_t *n, ursa_waker_t waker)
{
    int rc = rx ? start_node(n, waker, &changed_ops, rx->w) : -EINVAL;
    if (rc)
        return rc;
    ursa_watch_t *w = rx->w;
    if (check(rx, load_state(w), false) != 1)
        return ursa__wait_start_ready(n);
    return start_queued(&w->rxq, n, check(rx, changed_enqueue(w, n), false) != 1);
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
    ursa_wait_t node;
    bool queued = false;
    uint64_t seen0 = rx->seen; /* restored on failure: nothing changed */
    for (;;) {
        int rc = ursa_watch_borrow_at(rx, g, site, true);
        if (rc) {
            if (queued)
                (void)ursa__waitlist_cancel(&w->rxq, &node);
            rx->seen = seen0;
            return rc;
        }
        if (pred(g->ptr, ctx)) {
            if (queued)
                (void)ursa__waitlist_cancel(&w->rxq, &node);
            return 0;
        }
        /* CLOSED is read with the value under the borrow: no send can
         * follow a close, so this value is the last one. */
        bool closed = load_state(w) & CLOSED;
        (void)ursa_watch_borrow_release(g);
        if (closed || deadline == URSA_NOW) {
            if (queued)
                (void)ursa__waitlist_cancel(&w->rxq, &node);
            rx->seen = seen0;
            return closed ? -EPIPE : -EAGAIN;
        }
        if (!queued) {
            /* Queue, then look again: a send after the value we judged is
             * either seen by the next borrow or wakes the node. */
            node_init(&node, c->waker, &changed_ops, site, w);
            (void)changed_enqueue(w, &node);
            queued = true;
            continue;
        }
        rc = ursa__ctx_block(c, &node, deadline);
        queued = false;
        if (rc && ursa__waitlist_cancel(&w->rxq, &node)) {
            rx->seen = seen0;
            return rc;
        }
        /* woken: judge the new value (and queue again if it fails) */
    }
}

/* ---- the senders' side: every receiver gone ---- */

/* Queues n on goneq: true if receivers remain (n stays queued). */
static bool closed_enqueue(ursa_watch_t *w, ursa_wait_t *n)
{
    ursa__waitlist_push(&w->goneq, n);
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
    ursa_wait_t node;
    for (;;) {
        node_init(&node, c->waker, &closed_ops, site, w);
        if (!closed_enqueue(w, &node)) {
            (void)ursa__waitlist_cancel(&w->goneq, &node);
            return 0;
        }
        int rc = ursa__ctx_block(c, &node, deadline);
        if (rc && ursa__waitlist_cancel(&w->goneq, &node))
            return rc;
        if (rx_gone(w))
            return 0;
        /* woken, but a receiver subscribed again meanwhile: wait on */
    }
}

int ursa_watch_closed_start(ursa_watch_tx_t *tx, ursa_wait_t *n, ursa_waker_t waker)
{
    int rc = tx ? start_node(n, waker, &closed_ops, tx->w) : -EINVAL;
    if (rc)
        return rc;
    ursa_watch_t *w = tx->w;
    if (rx_gone(w))
        return ursa__wait_start_ready(n);
    return start_queued(&w->goneq, n, !closed_enqueue(w, n));
}

int ursa_watch_closed_finish(ursa_watch_tx_t *tx, ursa_wait_t *n)
{
    int rc = ursa__wait_finish_of(n, tx ? tx->w : NULL, &closed_ops);
    if (rc)
        return rc;
    return rx_gone(tx->w) ? 0 : -EAGAIN;
}
