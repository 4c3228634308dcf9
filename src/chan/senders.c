/* The sending half that mpsc and mpmc share (chan.h): sender handles,
 * reserves (blocking and raw) and send permits, written once over the
 * ursa__chan_t that starts both channel objects. What differs per channel
 * (how a slot is reserved and given back, what may end the stream, the
 * message's push) is behind the channel's ursa__chan_ops_t.
 *
 * Each public call below is a typed door into the shared code: both
 * channels' doors stand side by side, mpsc first, so that their rules stay
 * the same. Handles and permits are { channel *ch; ... }: a door reads and
 * writes ch itself (NULL: dropped, or holding nothing) and hands the
 * shared code the channel's ursa__chan_t.
 *
 * References: a handle holds one, a permit holds one (taken when it is
 * recorded), a raw reserve holds one from start until it is finished,
 * cancelled or handed back. A blocking reserve needs none (the caller's
 * sender handle keeps the channel alive). */
#include <stddef.h>

#include "../sync/hold.h"
#include "../core/wait_steps.h"
#include "chan.h"
#include "ursa/mpmc.h"
#include "ursa/mpsc.h"

_Static_assert(URSA_MPSC_MAX_CAPACITY == URSA__CHAN_MAX_CAPACITY, "one reserve limit");
_Static_assert(URSA_MPMC_MAX_CAPACITY == URSA__CHAN_MAX_CAPACITY, "one reserve limit");

const ursa__wait_ops_t ursa__chan_reserve_ops = {URSA_WAIT_CHANNEL, ursa__sema_cancel,
                                                 ursa__sema_give_back};
static bool raw_reserve_cancel(ursa__waiter_t *w);
static void raw_reserve_give_back(ursa__waiter_t *w);
/* Raw reserves: also end what the wait holds of the channel. */
static const ursa__wait_ops_t raw_reserve_ops = {URSA_WAIT_CHANNEL, raw_reserve_cancel,
                                                 raw_reserve_give_back};

/* ---- sender handles ---- */

static int sender_clone(ursa__chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    ursa__chan_ref_get(ch);
    /* relaxed: we hold a strong sender, so the count is not 0. */
    atomic_fetch_add_explicit(&ch->life, URSA__CHAN_TX_ONE, memory_order_relaxed);
    return 0;
}

int ursa_mpsc_sender_clone(const ursa_mpsc_sender_t *tx, ursa_mpsc_sender_t *out)
{
    if (!tx || !out || sender_clone(ursa__chan_of(tx->ch)))
        return -EINVAL;
    out->ch = tx->ch;
    return 0;
}

int ursa_mpmc_sender_clone(const ursa_mpmc_sender_t *tx, ursa_mpmc_sender_t *out)
{
    if (!tx || !out || sender_clone(ursa__chan_of(tx->ch)))
        return -EINVAL;
    out->ch = tx->ch;
    return 0;
}

/* The handle was cleared: its strong sender goes, then its reference. */
static int sender_drop(ursa__chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    /* acq_rel: our sends happen-before a receiver that sees the count. */
    uint64_t l = atomic_fetch_sub_explicit(&ch->life, URSA__CHAN_TX_ONE, memory_order_acq_rel) -
                 URSA__CHAN_TX_ONE;
    ch->ops->sender_dropped(ch, l);
    ursa__chan_ref_put(ch);
    return 0;
}

int ursa_mpsc_sender_drop(ursa_mpsc_sender_t *tx)
{
    ursa__chan_t *ch = tx ? ursa__chan_of(tx->ch) : NULL;
    if (ch)
        tx->ch = NULL;
    return sender_drop(ch);
}

int ursa_mpmc_sender_drop(ursa_mpmc_sender_t *tx)
{
    ursa__chan_t *ch = tx ? ursa__chan_of(tx->ch) : NULL;
    if (ch)
        tx->ch = NULL;
    return sender_drop(ch);
}

/* A weak handle (or a copy of one) on ch: it keeps the memory, not the
 * sending side. */
static int weak_ref(ursa__chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    ursa__chan_ref_get(ch);
    /* relaxed: only the weak_count query reads it. */
    atomic_fetch_add_explicit(&ch->weak, 1, memory_order_relaxed);
    return 0;
}

int ursa_mpsc_sender_downgrade(const ursa_mpsc_sender_t *tx, ursa_mpsc_weak_sender_t *out)
{
    if (!tx || !out || weak_ref(ursa__chan_of(tx->ch)))
        return -EINVAL;
    out->ch = tx->ch;
    return 0;
}

int ursa_mpmc_sender_downgrade(const ursa_mpmc_sender_t *tx, ursa_mpmc_weak_sender_t *out)
{
    if (!tx || !out || weak_ref(ursa__chan_of(tx->ch)))
        return -EINVAL;
    out->ch = tx->ch;
    return 0;
}

/* A weak sender becomes strong: -EPIPE once the sending side has ended
 * (it cannot come back). */
static int weak_upgrade(ursa__chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    /* relaxed: the CAS validates it. */
    uint64_t l = atomic_load_explicit(&ch->life, memory_order_relaxed);
    do {
        if ((l & URSA__CHAN_TX_MASK) == 0)
            return -EPIPE;
        /* acquire: like holding a cloned sender. */
    } while (!atomic_compare_exchange_weak_explicit(&ch->life, &l, l + URSA__CHAN_TX_ONE,
                                                    memory_order_acquire, memory_order_relaxed));
    ursa__chan_ref_get(ch);
    return 0;
}

int ursa_mpsc_weak_upgrade(const ursa_mpsc_weak_sender_t *w, ursa_mpsc_sender_t *out)
{
    int rc = w && out ? weak_upgrade(ursa__chan_of(w->ch)) : -EINVAL;
    if (rc == 0)
        out->ch = w->ch;
    return rc;
}

int ursa_mpmc_weak_upgrade(const ursa_mpmc_weak_sender_t *w, ursa_mpmc_sender_t *out)
{
    int rc = w && out ? weak_upgrade(ursa__chan_of(w->ch)) : -EINVAL;
    if (rc == 0)
        out->ch = w->ch;
    return rc;
}

int ursa_mpsc_weak_clone(const ursa_mpsc_weak_sender_t *w, ursa_mpsc_weak_sender_t *out)
{
    if (!w || !out || weak_ref(ursa__chan_of(w->ch)))
        return -EINVAL;
    out->ch = w->ch;
    return 0;
}

int ursa_mpmc_weak_clone(const ursa_mpmc_weak_sender_t *w, ursa_mpmc_weak_sender_t *out)
{
    if (!w || !out || weak_ref(ursa__chan_of(w->ch)))
        return -EINVAL;
    out->ch = w->ch;
    return 0;
}

static int weak_drop(ursa__chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    /* relaxed: as in weak_ref. */
    atomic_fetch_sub_explicit(&ch->weak, 1, memory_order_relaxed);
    ursa__chan_ref_put(ch);
    return 0;
}

/* The handle counts (snapshots for the queries; 0 for NULL). */
static uint64_t strong_count(const ursa__chan_t *ch)
{
    /* relaxed: a snapshot; orders nothing. */
    return ch ? (atomic_load_explicit(&((ursa__chan_t *)ch)->life, memory_order_relaxed) &
                 URSA__CHAN_TX_MASK) /
                    URSA__CHAN_TX_ONE
              : 0;
}

static uint64_t weak_count(const ursa__chan_t *ch)
{
    /* relaxed: a snapshot. */
    return ch ? atomic_load_explicit(&((ursa__chan_t *)ch)->weak, memory_order_relaxed) : 0;
}

uint64_t ursa_mpsc_sender_count(const ursa_mpsc_t *ch)
{
    return strong_count(ursa__chan_of((void *)ch));
}

uint64_t ursa_mpmc_sender_count(const ursa_mpmc_t *ch)
{
    return strong_count(ursa__chan_of((void *)ch));
}

uint64_t ursa_mpsc_weak_count(const ursa_mpsc_t *ch)
{
    return weak_count(ursa__chan_of((void *)ch));
}

uint64_t ursa_mpmc_weak_count(const ursa_mpmc_t *ch)
{
    return weak_count(ursa__chan_of((void *)ch));
}

int ursa_mpsc_weak_drop(ursa_mpsc_weak_sender_t *w)
{
    ursa__chan_t *ch = w ? ursa__chan_of(w->ch) : NULL;
    if (ch)
        w->ch = NULL;
    return weak_drop(ch);
}

int ursa_mpmc_weak_drop(ursa_mpmc_weak_sender_t *w)
{
    ursa__chan_t *ch = w ? ursa__chan_of(w->ch) : NULL;
    if (ch)
        w->ch = NULL;
    return weak_drop(ch);
}

/* ---- send permits ---- */

#define URSA__MPSC_PERMIT_MISUSE "mpsc send permit used after release (or never reserved)"
#define URSA__MPMC_PERMIT_MISUSE "mpmc send permit used after release (or never reserved)"

/* Records n reserved slots as the caller's hold ob; the permit takes a
 * reference. 0, or -ENOMEM (the slots went back: nothing held, nothing
 * counted). */
static int permit_take(ursa__chan_t *ch, uint64_t n, ursa_oblig_t *ob, ursa__ctx_t *c,
                       const ursa_site_t *site)
{
    const ursa__chan_ops_t *ops = ch->ops;
    if (__builtin_expect(ursa__oblig_take(&c->ledger, ob, &ops->permit_kind, site, ch, n), 0)) {
        ops->give_up(ch, n);
        ops->permit_end(ch);
        return -ENOMEM;
    }
    ursa__chan_ref_get(ch);
    return 0;
}

/* A permit ends: it stops counting, then drops its reference. */
static void permit_end(ursa__chan_t *ch)
{
    ch->ops->permit_end(ch);
    ursa__chan_ref_put(ch);
}

void ursa__chan_permit_leaked(void *target, uint64_t n)
{
    ursa__chan_t *ch = target;
    ch->ops->give_up(ch, n);
    permit_end(ch);
}

/* The permit's last slot is gone: it is discharged and *n is 0 (the
 * caller's door clears the permit's channel). */
static void permit_finish(ursa__chan_t *ch, ursa_oblig_t *ob, uint64_t *n)
{
    (void)ursa__oblig_discharge(&ursa__ctx()->ledger, ob);
    *n = 0;
    permit_end(ch);
}

/* One of the *n slots was used or given up: the last one finishes the
 * permit; else the hold's record shrinks with it, so a leak sweep
 * releases only what is left. */
static void permit_use_one(ursa__chan_t *ch, ursa_oblig_t *ob, uint64_t *n)
{
    if (--*n == 0)
        permit_finish(ch, ob, n);
    else
        ursa__oblig_set_n(ob, *n);
}

/* Sends *value with one of the permit's slots (the caller checked it). */
static int permit_send(ursa__chan_t *ch, ursa_oblig_t *ob, uint64_t *n, const void *value)
{
    int rc = 0;
    if (ursa__chan_rx_gone(ch)) {
        ch->ops->give_up(ch, 1);
        rc = -EPIPE;
    } else {
        ch->ops->push(ch, value);
    }
    permit_use_one(ch, ob, n);
    return rc;
}

int ursa_mpsc_permit_send(ursa_mpsc_permit_t *p, const void *value)
{
    int rc = ursa__hold_check(p && p->ch && p->n ? &p->ob : NULL, URSA__MPSC_PERMIT_MISUSE);
    if (rc || !value)
        return rc ? rc : -EINVAL;
    rc = permit_send(ursa__chan_of(p->ch), &p->ob, &p->n, value);
    if (!p->n)
        p->ch = NULL; /* that was its last slot */
    return rc;
}

int ursa_mpmc_permit_send(ursa_mpmc_permit_t *p, const void *value)
{
    int rc = ursa__hold_check(p && p->ch && p->n ? &p->ob : NULL, URSA__MPMC_PERMIT_MISUSE);
    if (rc || !value)
        return rc ? rc : -EINVAL;
    rc = permit_send(ursa__chan_of(p->ch), &p->ob, &p->n, value);
    if (!p->n)
        p->ch = NULL; /* that was its last slot */
    return rc;
}

int ursa_mpsc_permit_release(ursa_mpsc_permit_t *p)
{
    int rc = ursa__hold_check(p && p->ch && p->n ? &p->ob : NULL, URSA__MPSC_PERMIT_MISUSE);
    if (rc)
        return rc;
    ursa__chan_t *ch = ursa__chan_of(p->ch);
    p->ch = NULL;
    ch->ops->give_up(ch, p->n);
    permit_finish(ch, &p->ob, &p->n);
    return 0;
}

void ursa_mpsc_permit_cleanup(ursa_mpsc_permit_t *p)
{
    if (p && p->ch)
        (void)ursa_mpsc_permit_release(p);
}

int ursa_mpmc_permit_release(ursa_mpmc_permit_t *p)
{
    int rc = ursa__hold_check(p && p->ch && p->n ? &p->ob : NULL, URSA__MPMC_PERMIT_MISUSE);
    if (rc)
        return rc;
    ursa__chan_t *ch = ursa__chan_of(p->ch);
    p->ch = NULL;
    ch->ops->give_up(ch, p->n);
    permit_finish(ch, &p->ob, &p->n);
    return 0;
}

void ursa_mpmc_permit_cleanup(ursa_mpmc_permit_t *p)
{
    if (p && p->ch)
        (void)ursa_mpmc_permit_release(p);
}

/* ---- reserving ---- */

/* A reserve count out of range: 0, or over the capacity (bounded) or
 * URSA__CHAN_MAX_CAPACITY (unbounded). */
static bool bad_count(ursa__chan_t *ch, uint64_t n)
{
    uint64_t cap = ch->ops->capacity(ch);
    /* A bounded reserve may wait, and a waiter counts at most
     * URSA_SEM_REQUEST_MAX permits. */
    return n == 0 || n > (cap ? cap : URSA__CHAN_MAX_CAPACITY) ||
           (cap && n > URSA_SEM_REQUEST_MAX);
}

/* A blocking reserve of n slots into the hold ob (arguments checked). */
static int reserve(ursa__chan_t *ch, uint64_t n, ursa_oblig_t *ob, ursa_time_t deadline,
                   const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    int rc = ch->ops->reserve(ch, n, deadline, c, site);
    return rc ? rc : permit_take(ch, n, ob, c, site);
}

int ursa_mpsc_reserve_many_at(const ursa_mpsc_sender_t *tx, uint64_t n, ursa_mpsc_permit_t *p,
                              ursa_time_t deadline, const ursa_site_t *site)
{
    ursa_mpsc_t *ch = tx ? tx->ch : NULL; /* read once: see the handle rule in mpsc.h */
    if (!ch || !p || p->ch || bad_count(ursa__chan_of(ch), n))
        return -EINVAL;
    int rc = reserve(ursa__chan_of(ch), n, &p->ob, deadline, site);
    if (rc == 0) {
        p->ch = ch;
        p->n = n;
    }
    return rc;
}

int ursa_mpmc_reserve_many_at(const ursa_mpmc_sender_t *tx, uint64_t n, ursa_mpmc_permit_t *p,
                              ursa_time_t deadline, const ursa_site_t *site)
{
    ursa_mpmc_t *ch = tx ? tx->ch : NULL; /* read once: see the handle rule in mpmc.h */
    if (!ch || !p || p->ch || bad_count(ursa__chan_of(ch), n))
        return -EINVAL;
    int rc = reserve(ursa__chan_of(ch), n, &p->ob, deadline, site);
    if (rc == 0) {
        p->ch = ch;
        p->n = n;
    }
    return rc;
}

/* A try found no permit: true if it got n after all, once the ring swaps
 * that held them meanwhile (ursa__chan_swap_begin) gave them back. False
 * only when a look found none with no swap under way or begun since. */
static __attribute__((noinline)) bool try_again(ursa__chan_t *ch, uint64_t n)
{
    for (;;) {
        /* seq_cst fence: the other half of swap_begin's (see there). */
        atomic_thread_fence(memory_order_seq_cst);
        /* acquire: pairs with swap_end's release (the permits are back). */
        uint64_t s = atomic_load_explicit(&ch->swaps, memory_order_acquire);
        for (unsigned i = 0; s & URSA__CHAN_SWAPS_ACTIVE; i++) {
            if (i < 128)
                ursa__cpu_relax();
            else
                sched_yield(); /* the swapping receiver may be preempted */
            /* acquire: as above. */
            s = atomic_load_explicit(&ch->swaps, memory_order_acquire);
        }
        if (ursa__sema_try(&ch->sema, n))
            return true;
        /* seq_cst fence: as above; a swap that took the permits this look
         * missed has begun since s, and is counted in what we load. */
        atomic_thread_fence(memory_order_seq_cst);
        /* relaxed: compared only; the loop's acquire orders the next look. */
        if (atomic_load_explicit(&ch->swaps, memory_order_relaxed) == s)
            return false;
    }
}

int ursa__chan_sema_wait(ursa__chan_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                         const ursa_site_t *site)
{
    if (ursa__sema_closed(&ch->sema))
        return -EPIPE;
    if (deadline == URSA_NOW)
        return try_again(ch, n) ? 0 : -EAGAIN;
    if (!c)
        c = ursa__ctx();
    const ursa__chan_ops_t *ops = ch->ops;
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &ursa__chan_reserve_ops);
    if (ops->wait_enter)
        ops->wait_enter(ch);
    int rc = ursa__sema_start(&ch->sema, &w, (uint32_t)n);
    if (rc == -EINPROGRESS) {
        if (ops->wait_queued)
            ops->wait_queued(ch);
        rc = ursa__ctx_block(c, &w, deadline, site);
        if (rc == 0 || !ursa__sema_cancel(&w)) /* decided: granted, or closed */
            rc = ursa__wait_grant_rc(&w) ? URSA__CHAN_CLOSED_QUEUED : 0;
        else if (ops->permits_back)
            /* Withdrawn: the permits assigned so far went back; they may
             * be the last a closed receiver waits for. */
            ops->permits_back(ch);
    }
    if (ops->wait_leave)
        ops->wait_leave(ch);
    return rc;
}

/* ---- raw reserves (bounded only) ---- */

/* A raw reserve's channel, from its wait (owner: the channel's sema). */
static ursa__chan_t *of_sema(ursa__waiter_t *w)
{
    return (ursa__chan_t *)((char *)w->owner - offsetof(ursa__chan_t, sema));
}

/* Starts a raw reserve of n slots: 0 (granted now), -EINPROGRESS, -EPIPE
 * (closed: w is finished), -EINVAL (nothing started). The wait holds a
 * reference (and what raw_begin counted) until it is finished, cancelled
 * or handed back. */
static int raw_reserve_start(ursa__chan_t *ch, uint64_t n, ursa_wait_t *rw, ursa_waker_t waker)
{
    /* An unbounded channel's reserve never waits: use the blocking one. */
    if (!ch || !rw || !waker.fn || bad_count(ch, n) || !ch->ops->capacity(ch))
        return -EINVAL;
    const ursa__chan_ops_t *ops = ch->ops;
    ursa__waiter_t *w = ursa__wait_raw_init(rw, waker, &raw_reserve_ops, NULL);
    ursa__chan_ref_get(ch);
    if (!ops->raw_begin(ch)) {
        ursa__chan_ref_put(ch);
        /* relaxed: our own node, never queued. */
        atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
        atomic_store_explicit(&w->done, 1, memory_order_relaxed);
        return -EPIPE;
    }
    if (ops->wait_enter)
        ops->wait_enter(ch); /* until finished or cancelled */
    int rc = ursa__sema_start(&ch->sema, w, (uint32_t)n);
    if (rc == -EINPROGRESS && ops->wait_queued)
        ops->wait_queued(ch);
    if (rc == -EPIPE) {
        if (ops->wait_leave)
            ops->wait_leave(ch);
        permit_end(ch);
        /* relaxed: our own node, completed CLOSED by the start. */
        atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    }
    return rc;
}

int ursa_mpsc_reserve_start(const ursa_mpsc_sender_t *tx, uint64_t n, ursa_wait_t *w,
                            ursa_waker_t waker)
{
    return raw_reserve_start(tx ? ursa__chan_of(tx->ch) : NULL, n, w, waker);
}

int ursa_mpmc_reserve_start(const ursa_mpmc_sender_t *tx, uint64_t n, ursa_wait_t *w,
                            ursa_waker_t waker)
{
    return raw_reserve_start(tx ? ursa__chan_of(tx->ch) : NULL, n, w, waker);
}

/* Finishes a raw reserve of ch into the hold ob (*n: its slots): 0, or
 * -EPIPE / -EAGAIN / -EINVAL / -ENOMEM with nothing held. */
static int raw_reserve_finish(ursa__chan_t *ch, ursa_wait_t *rw, ursa_oblig_t *ob, uint64_t *n)
{
    ursa__waiter_t *w = ch ? ursa__wait_raw_of(rw, &ch->sema, &raw_reserve_ops) : NULL;
    if (!w)
        return -EINVAL;
    int st = ursa__wait_finish_decided(w);
    if (st < 0)
        return st;
    const ursa__chan_ops_t *ops = ch->ops;
    if (ops->wait_leave)
        ops->wait_leave(ch);
    int rc = -EPIPE; /* closed while queued: the closer ended its count */
    if (st != URSA__W_CLOSED && (rc = permit_take(ch, w->got, ob, ursa__ctx(), rw->site)) == 0)
        *n = w->got;
    ursa__chan_ref_put(ch); /* the wait's; a permit holds its own */
    return rc;
}

int ursa_mpsc_reserve_finish(const ursa_mpsc_sender_t *tx, ursa_wait_t *w, ursa_mpsc_permit_t *p)
{
    if (!tx || !p || p->ch)
        return -EINVAL;
    int rc = raw_reserve_finish(ursa__chan_of(tx->ch), w, &p->ob, &p->n);
    if (rc == 0)
        p->ch = tx->ch;
    return rc;
}

int ursa_mpmc_reserve_finish(const ursa_mpmc_sender_t *tx, ursa_wait_t *w, ursa_mpmc_permit_t *p)
{
    if (!tx || !p || p->ch)
        return -EINVAL;
    int rc = raw_reserve_finish(ursa__chan_of(tx->ch), w, &p->ob, &p->n);
    if (rc == 0)
        p->ch = tx->ch;
    return rc;
}

static bool raw_reserve_cancel(ursa__waiter_t *w)
{
    ursa__chan_t *ch = of_sema(w);
    const ursa__chan_ops_t *ops = ch->ops;
    if (ops->wait_leave)
        ops->wait_leave(ch); /* the wait ends here whatever happened */
    /* The wait will never be finished if it is withdrawn or decided
     * CLOSED: what it holds of the channel ends now (its count: the
     * closer ended that of a CLOSED one). GRANTED is left to give_back
     * (or to the finish). */
    if (ursa__sema_cancel(w)) {
        if (ops->permits_back)
            ops->permits_back(ch); /* its partial permits went back */
        permit_end(ch);            /* and the wait's reference */
        return true;
    }
    /* relaxed: sema_cancel settled the decided node. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_CLOSED)
        ursa__chan_ref_put(ch);
    return false;
}

static void raw_reserve_give_back(ursa__waiter_t *w)
{
    ursa__chan_t *ch = of_sema(w);
    ursa__sema_give_back(w);
    if (ch->ops->permits_back)
        ch->ops->permits_back(ch);
    permit_end(ch); /* and the wait's reference */
}
