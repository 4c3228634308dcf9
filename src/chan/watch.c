/* Watch: the value behind a small reader-preferring rwlock word, a version
 * counter with a CLOSED bit, and three notify queues (receivers waiting
 * for a change, senders waiting for borrows to leave, senders waiting for
 * the receivers to go).
 *
 * The lock word `rw` holds a reader count and a WRITER bit. A borrow
 * (reader) enters with a CAS while WRITER is clear; a send sets WRITER
 * with a CAS from 0 and holds it only for a copy (or the modify callback),
 * never across a suspension, so a reader that finds WRITER set spins
 * briefly. A writer that finds readers blocks on `unlocked` until the
 * count reaches 0: borrows may be held across suspensions.
 *
 * Every check-then-wait uses notify enable -> seq_cst fence -> re-check,
 * and every update uses change -> seq_cst fence -> ursa_notify_waiters, so
 * either the waiter sees the change or the notifier sees the waiter (the
 * store-buffer pattern needs the two fences; the notify's own orderings
 * are acquire/release only). */
#include "ursa/watch.h"

#include <stdlib.h>
#include <string.h>

#include "../core/ctx.h"
#include "ursa/notify.h"

#define WRITER 0x80000000u
#define CLOSED 1u   /* version bit 0: every sender is gone */
#define VSTEP 2u    /* versions count in bits 1.. */

struct ursa_watch {
    _Atomic uint64_t version;   /* (n << 1) | CLOSED */
    _Atomic uint32_t rw;        /* WRITER | readers */
    _Atomic uint32_t tx_count;  /* live sender handles */
    _Atomic uint32_t rx_count;  /* live receiver handles */
    _Atomic uint32_t refs;      /* handles + borrows: frees at 0 */
    ursa_notify_t changed;      /* receivers: version or CLOSED changed */
    ursa_notify_t unlocked;     /* writers: rw may be free */
    ursa_notify_t rx_gone;      /* senders: rx_count reached 0 */
    size_t elem_size;
    _Alignas(max_align_t) unsigned char value[];
};

struct ursa_watch_tx {
    ursa_watch_t *w;
};

struct ursa_watch_rx {
    ursa_watch_t *w;
    uint64_t seen; /* version >> 1 last seen; the handle's user only */
};

static void leaked_borrow(void *target, uint64_t n);
static const ursa_oblig_kind_t borrow_kind = {"watch borrow", leaked_borrow};

static void ref(ursa_watch_t *w)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

static void unref(ursa_watch_t *w)
{
    /* acq_rel: the last one sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1) {
        (void)ursa_notify_destroy(&w->changed);
        (void)ursa_notify_destroy(&w->unlocked);
        (void)ursa_notify_destroy(&w->rx_gone);
        free(w);
    }
}

static void notify_all(ursa_notify_t *n)
{
    /* seq_cst: pairs with the waiter's fence after enable (see top). */
    atomic_thread_fence(memory_order_seq_cst);
    (void)ursa_notify_waiters(n);
}

/* ---- the value lock ---- */

static void read_lock(ursa_watch_t *w)
{
    for (unsigned i = 0;; i++) {
        /* relaxed: validated by the CAS. */
        uint32_t s = atomic_load_explicit(&w->rw, memory_order_relaxed);
        if (!(s & WRITER)) {
            /* acquire: the last writer's copy (released by its unlock). */
            if (atomic_compare_exchange_weak_explicit(&w->rw, &s, s + 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return;
            continue;
        }
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* the writer may be a preempted thread */
    }
}

static void read_unlock(ursa_watch_t *w)
{
    /* release: our reads happen before the next writer's copy. */
    uint32_t old = atomic_fetch_sub_explicit(&w->rw, 1, memory_order_release);
    if ((old & ~WRITER) == 1)
        notify_all(&w->unlocked);
}

/* 0 with WRITER held, or -ECANCELED (the task was cancelled meanwhile). */
static int write_lock(ursa_watch_t *w)
{
    uint32_t z = 0;
    /* acquire: the readers' reads and the last writer's copy happen before. */
    if (atomic_compare_exchange_strong_explicit(&w->rw, &z, WRITER, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    ursa_wait_t node;
    for (;;) {
        (void)ursa_notify_enable(&w->unlocked, &node);
        /* seq_cst: pairs with the fence in read_unlock's notify_all. */
        atomic_thread_fence(memory_order_seq_cst);
        z = 0;
        if (atomic_compare_exchange_strong_explicit(&w->rw, &z, WRITER, memory_order_acquire,
                                                    memory_order_relaxed)) {
            (void)ursa_notify_disable(&w->unlocked, &node);
            return 0;
        }
        int rc = ursa_notify_wait_enabled(&w->unlocked, &node, URSA_NEVER);
        if (rc == -ECANCELED)
            return rc; /* -ETIMEDOUT: a slice ended, try again */
    }
}

static void write_unlock(ursa_watch_t *w)
{
    /* release: our copy happens before the next reader's or writer's. */
    atomic_fetch_and_explicit(&w->rw, ~WRITER, memory_order_release);
    notify_all(&w->unlocked); /* other writers may wait */
}

static void bump_version(ursa_watch_t *w)
{
    /* release: a receiver that sees the new version and then borrows gets
     * this value or a newer one (the borrow synchronises through rw). */
    atomic_fetch_add_explicit(&w->version, VSTEP, memory_order_release);
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
    atomic_init(&w->version, 0);
    atomic_init(&w->rw, 0);
    atomic_init(&w->tx_count, 1);
    atomic_init(&w->rx_count, 1);
    atomic_init(&w->refs, 2);
    ursa_notify_init(&w->changed);
    ursa_notify_init(&w->unlocked);
    ursa_notify_init(&w->rx_gone);
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
    ref(tx->w);
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
        /* release: a receiver that sees CLOSED sees the last value's version. */
        atomic_fetch_or_explicit(&w->version, CLOSED, memory_order_release);
        notify_all(&w->changed);
    }
    unref(w);
    return 0;
}

static int new_rx(ursa_watch_t *w, uint64_t seen, ursa_watch_rx_t **out)
{
    ursa_watch_rx_t *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->w = w;
    r->seen = seen;
    ref(w);
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
    return new_rx(tx->w, v >> 1, out);
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
    /* acq_rel: orders the drop before the senders' closed() return. */
    if (atomic_fetch_sub_explicit(&w->rx_count, 1, memory_order_acq_rel) == 1)
        notify_all(&w->rx_gone);
    unref(w);
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
    write_unlock(w);
    notify_all(&w->changed);
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
    write_unlock(w);
    if (changed)
        notify_all(&w->changed);
    return changed ? 1 : 0;
}

/* ---- borrows ---- */

static void leaked_borrow(void *target, uint64_t n)
{
    (void)n;
    read_unlock(target);
    unref(target);
}

int ursa_watch_borrow_at(ursa_watch_rx_t *rx, ursa_watch_borrow_t *g, const ursa_site_t *site,
                         bool update)
{
    if (!rx || !g || g->ob.kind)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    ursa__ctx_t *c = ursa__ctx();
    read_lock(w);
    /* relaxed: under the read lock the version can't move (writers bump
     * it under WRITER; our acquire on rw ordered their bump before us). */
    uint64_t v = atomic_load_explicit(&w->version, memory_order_relaxed);
    ref(w);
    if (__builtin_expect(ursa__oblig_take(&c->ledger, &g->ob, &borrow_kind, site, w, 1), 0)) {
        read_unlock(w);
        unref(w);
        return -ENOMEM;
    }
    g->w = w;
    g->ptr = w->value;
    g->version = v >> 1;
    if (update)
        rx->seen = v >> 1;
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
    int rc = ursa__oblig_discharge(&ursa__ctx()->ledger, &g->ob);
    if (rc) {
        if (rc == -EINVAL)
            ursa__report_misuse("watch borrow released twice (or never taken)", g->ob.site);
        return rc;
    }
    ursa_watch_t *w = g->w;
    g->w = NULL;
    g->ptr = NULL;
    read_unlock(w);
    unref(w);
    return 0;
}

void ursa_watch_borrow_cleanup(ursa_watch_borrow_t *g)
{
    if (g && g->ob.kind)
        (void)ursa_watch_borrow_release(g);
}

/* ---- receiving ---- */

int ursa_watch_has_changed(const ursa_watch_rx_t *rx)
{
    if (!rx)
        return -EINVAL;
    /* acquire: pairs with bump_version / the CLOSED store. */
    uint64_t v = atomic_load_explicit(&rx->w->version, memory_order_acquire);
    if ((v >> 1) != rx->seen)
        return 1;
    return (v & CLOSED) ? -EPIPE : 0;
}

int ursa_watch_changed_at(ursa_watch_rx_t *rx, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    ursa_wait_t node;
    bool enabled = false;
    for (;;) {
        /* acquire: pairs with bump_version / the CLOSED store. */
        uint64_t v = atomic_load_explicit(&w->version, memory_order_acquire);
        int rc = 1;
        if ((v >> 1) != rx->seen) {
            rx->seen = v >> 1;
            rc = 0;
        } else if (v & CLOSED)
            rc = -EPIPE;
        else if (deadline == URSA_NOW)
            rc = -EAGAIN;
        if (rc != 1) {
            if (enabled)
                (void)ursa_notify_disable(&w->changed, &node);
            return rc;
        }
        if (!enabled) {
            (void)ursa_notify_enable_at(&w->changed, &node, site);
            /* seq_cst: pairs with notify_all's fence (see top). */
            atomic_thread_fence(memory_order_seq_cst);
            enabled = true;
            continue; /* re-check with the waiter queued */
        }
        rc = ursa_notify_wait_enabled(&w->changed, &node, deadline);
        enabled = false;
        if (rc)
            return rc; /* withdrawn: nothing marked */
    }
}

int ursa_watch_wait_for_at(ursa_watch_rx_t *rx, ursa_watch_pred_t pred, void *ctx,
                           ursa_watch_borrow_t *g, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!rx || !pred || !g || g->ob.kind)
        return -EINVAL;
    ursa_watch_t *w = rx->w;
    ursa_wait_t node;
    for (;;) {
        (void)ursa_notify_enable_at(&w->changed, &node, site);
        /* seq_cst: pairs with notify_all's fence (see top). */
        atomic_thread_fence(memory_order_seq_cst);
        int rc = ursa_watch_borrow_at(rx, g, site, true);
        if (rc) {
            (void)ursa_notify_disable(&w->changed, &node);
            return rc;
        }
        if (pred(g->ptr, ctx)) {
            (void)ursa_notify_disable(&w->changed, &node);
            return 0;
        }
        /* CLOSED is read with the value under the borrow: no send can
         * follow a close, so this value is the last one. */
        bool closed = atomic_load_explicit(&w->version, memory_order_acquire) & CLOSED;
        (void)ursa_watch_borrow_release(g);
        if (closed || deadline == URSA_NOW) {
            (void)ursa_notify_disable(&w->changed, &node);
            return closed ? -EPIPE : -EAGAIN;
        }
        rc = ursa_notify_wait_enabled(&w->changed, &node, deadline);
        if (rc)
            return rc;
    }
}

int ursa_watch_closed_at(ursa_watch_tx_t *tx, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!tx)
        return -EINVAL;
    ursa_watch_t *w = tx->w;
    ursa_wait_t node;
    bool enabled = false;
    for (;;) {
        /* acquire: pairs with the last receiver drop. */
        if (atomic_load_explicit(&w->rx_count, memory_order_acquire) == 0) {
            if (enabled)
                (void)ursa_notify_disable(&w->rx_gone, &node);
            return 0;
        }
        if (deadline == URSA_NOW) {
            if (enabled)
                (void)ursa_notify_disable(&w->rx_gone, &node);
            return -EAGAIN;
        }
        if (!enabled) {
            (void)ursa_notify_enable_at(&w->rx_gone, &node, site);
            /* seq_cst: pairs with notify_all's fence. */
            atomic_thread_fence(memory_order_seq_cst);
            enabled = true;
            continue;
        }
        int rc = ursa_notify_wait_enabled(&w->rx_gone, &node, deadline);
        enabled = false;
        if (rc)
            return rc;
    }
}
