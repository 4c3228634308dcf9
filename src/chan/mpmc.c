/* mpmc channel: the mpsc bounded ring with a CAS on head, the batch
 * semaphore for capacity, and a FIFO of waiting receivers.
 *
 * Storage: a ring of exactly `capacity` slots, each with a sequence number
 * (Vyukov). A sender holds a semaphore permit, claims position p with one
 * fetch_add on `tail`, waits until slot p % cap is free (seq == p: a
 * receiver of p - cap may still be copying out), writes it and publishes
 * seq = p + 1. A receiver claims position h only when its slot is published
 * (seq == h + 1), with a CAS of head h -> h + 1 (recv_many: h -> h + k over
 * k consecutive published slots), copies out, frees the slot (seq = h +
 * cap) and returns the permit.
 *
 * Life word `life`: URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE | strong senders | "permits out" (held
 * send permits plus reserves in progress). Receivers report -EPIPE when
 * (URSA__CHAN_CLOSED or no strong sender) and no permit is out, and the queue is
 * empty — read in that order, since a permit publishes its message before
 * it stops counting.
 *
 * Receiver waits: a FIFO of wait nodes (`rxq`, chan/waitlist.h), with `rxq.n`
 * (the number queued) readable without the lock. Three Dekker pairs, each
 * "write, seq_cst fence, read" on both sides:
 *  - a sender publishes its slot, fences, and wakes one waiter if rxq.n
 *    is not 0; a receiver queues (rxq.n++), fences, and re-checks the
 *    slot at head (and the life word) before it sleeps;
 *  - a receiver that claimed, fences, and wakes one more waiter if the new
 *    head slot is published too (a message published while an earlier
 *    position was still being written woke a receiver that found head not
 *    ready and slept again: the claimer of that earlier position passes the
 *    wake along);
 *  - whoever makes the life word terminal fences and wakes every waiter.
 * A waiter that was granted (woken) but then times out, is cancelled, or is
 * a raw wait cancelled after its wake, wakes the next waiter in its place. */
#include "ursa/mpmc.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ctx.h"
#include "../sync/wait_steps.h"
#include "chan.h"
#include "ring.h"
#include "waitlist.h"

struct ursa_mpmc {
    /* life word, references, the slots' semaphore (chan.h); must be first */
    ursa__chan_t chan;
    /* read-mostly */
    size_t elem_size, stride; /* stride: 8-byte seq + element rounded up */
    uint64_t cap;
    uint64_t mask; /* ursa__ring_mask(cap) */
    ursa_mpmc_dtor_t dtor;
    unsigned char *ring;
    size_t mem;              /* bytes allocated; fixed after creation */
    _Atomic uint64_t rxs;    /* receiver handles */
    /* waiting receivers */
    alignas(64) ursa__waitlist_t rxq;
    /* senders' line */
    alignas(64) _Atomic uint64_t tail;
    /* receivers' line */
    alignas(64) _Atomic uint64_t head;
};

_Static_assert(offsetof(ursa_mpmc_t, chan) == 0, "the shared part comes first");

static bool rx_cancel(ursa_wait_t *w);
static void rx_give_back(ursa_wait_t *w);
/* A granted receive holds nothing but a wake: give_back passes it on. */
static const ursa__wait_ops_t rx_ops = {URSA_WAIT_CHANNEL, rx_cancel, rx_give_back};

static inline ursa_mpmc_t *mpmc_of(ursa__chan_t *c)
{
    return (ursa_mpmc_t *)c;
}

static inline bool terminal(uint64_t l)
{
    return ((l & URSA__CHAN_CLOSED) || (l & URSA__CHAN_TX_MASK) == 0) && (l >> 32) == 0;
}

static inline unsigned char *ring_slot(ursa_mpmc_t *ch, uint64_t pos)
{
    return ursa__ring_slot(ch->ring, ch->cap, ch->mask, ch->stride, pos);
}

static inline _Atomic uint64_t *slot_seq(ursa_mpmc_t *ch, uint64_t pos)
{
    return (_Atomic uint64_t *)ring_slot(ch, pos);
}

/* ---- receiver wakes ---- */

/* Wakes the oldest waiting receiver, if any. The caller has fenced after
 * the write the waiter must see. */
static void wake_one(ursa_mpmc_t *ch)
{
    /* relaxed: ordered by the caller's seq_cst fence (see the header). */
    if (atomic_load_explicit(&ch->rxq.n, memory_order_relaxed))
        ursa__waitlist_wake_one(&ch->rxq);
}

/* The life word just became terminal: every waiter will see the end. */
static void wake_all(ursa_mpmc_t *ch)
{
    /* seq_cst fence: our life RMW is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check of life. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: ordered by the fence above. */
    if (atomic_load_explicit(&ch->rxq.n, memory_order_relaxed))
        ursa__waitlist_wake_all(&ch->rxq);
}

/* ---- life ---- */

/* A permit (or reserve in progress) ends: it stops counting, which may be
 * what closed receivers wait for. */
static void permit_end(ursa_mpmc_t *ch)
{
    if (terminal(ursa__chan_life_permit_end(&ch->chan)))
        wake_all(ch);
}

/* Counts a reserve in progress: true, or false (closed: nothing counted). */
static bool perm_begin(ursa_mpmc_t *ch)
{
    /* (acq_rel, in ursa__chan_life_permit_begin: counted before the
     * reserve that follows, so a receiver that reads "no permit out"
     * cannot miss a message this permit sends.) The same RMW reads URSA__CHAN_CLOSED:
     * close sets it before it closes the semaphore, and a receiver may
     * already have ended the stream in between, so a reserve that comes
     * after URSA__CHAN_CLOSED must fail even if a permit is free (regression: a
     * message delivered after -EPIPE). */
    if (ursa__chan_life_permit_begin(&ch->chan) & (URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE)) {
        permit_end(ch);
        return false;
    }
    return true;
}

/* ---- storage ---- */

static void push(ursa_mpmc_t *ch, const void *value)
{
    /* relaxed: the slot's seq orders the data; our permit proves the slot
     * will be free (a receiver may still be copying the old element out). */
    uint64_t pos = atomic_fetch_add_explicit(&ch->tail, 1, memory_order_relaxed);
    _Atomic uint64_t *seq = slot_seq(ch, pos);
    ursa__ring_wait_free(seq, pos);
    memcpy((unsigned char *)seq + URSA__RING_SEQ, value, ch->elem_size);
    ursa__ring_publish(seq, pos);
    /* seq_cst fence: the publication is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check (Dekker). */
    atomic_thread_fence(memory_order_seq_cst);
    wake_one(ch);
}

/* True if the slot at head is published (a message can be claimed now). */
static bool head_ready(ursa_mpmc_t *ch)
{
    /* relaxed: a hint; the acquire on seq orders the element. A stale head
     * shows a slot whose seq is past h + 1: counted as ready (the caller
     * retries), which can only cause a spare wake, never a missed one. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    /* acquire: pairs with the sender's publication. */
    uint64_t s = atomic_load_explicit(slot_seq(ch, h), memory_order_acquire);
    return (int64_t)(s - (h + 1)) >= 0;
}

/* Claims up to max consecutive published positions: their count (0 if the
 * slot at head is not published), *pos the first. */
static uint64_t claim(ursa_mpmc_t *ch, uint64_t max, uint64_t *pos)
{
    if (max > ch->cap)
        max = ch->cap;
    /* relaxed: validated by the slot's seq and by the CAS. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    for (;;) {
        /* acquire: the sender's element. */
        uint64_t s = atomic_load_explicit(slot_seq(ch, h), memory_order_acquire);
        int64_t d = (int64_t)(s - (h + 1));
        if (d < 0)
            return 0; /* not published yet: empty as far as we can take */
        if (d > 0) {
            /* Our head is stale (the slot was consumed and reused). */
            h = atomic_load_explicit(&ch->head, memory_order_relaxed);
            continue;
        }
        uint64_t k = 1;
        /* acquire: as above, for each further slot. */
        while (k < max && atomic_load_explicit(slot_seq(ch, h + k), memory_order_acquire) ==
                              h + k + 1)
            k++;
        /* relaxed on success: the elements were acquired through their
         * seq above, and positions >= head are claimed by nobody else. On
         * failure relaxed: we reload and re-check the slot. */
        if (atomic_compare_exchange_weak_explicit(&ch->head, &h, h + k, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *pos = h;
            return k;
        }
    }
}

/* Frees k claimed slots from pos, after their elements were copied out. */
static void release_slots(ursa_mpmc_t *ch, uint64_t pos, uint64_t k)
{
    for (uint64_t i = 0; i < k; i++)
        ursa__ring_free(slot_seq(ch, pos + i), pos + i, ch->cap);
    ursa__sema_release(&ch->chan.sema, k);
}

/* After a claim: pass a wake along if the next message is there too. */
static void chain_wake(ursa_mpmc_t *ch)
{
    /* seq_cst fence: our head CAS is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check of head. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: ordered by the fence. */
    if (atomic_load_explicit(&ch->rxq.n, memory_order_relaxed) && head_ready(ch))
        wake_one(ch);
}

/* Takes up to max messages into buf: the count. */
static uint64_t pop(ursa_mpmc_t *ch, void *buf, uint64_t max)
{
    uint64_t pos, k = claim(ch, max, &pos);
    if (!k)
        return 0;
    for (uint64_t i = 0; i < k; i++)
        memcpy((unsigned char *)buf + i * ch->elem_size, ring_slot(ch, pos + i) + URSA__RING_SEQ,
               ch->elem_size);
    release_slots(ch, pos, k);
    chain_wake(ch);
    return k;
}

/* Destroys (dtor) every published message still queued. */
static void drain(ursa_mpmc_t *ch)
{
    uint64_t pos;
    while (claim(ch, 1, &pos)) {
        if (ch->dtor)
            ch->dtor(ring_slot(ch, pos) + URSA__RING_SEQ);
        release_slots(ch, pos, 1);
    }
}

static void destroy(ursa_mpmc_t *ch)
{
    drain(ch);
    if (ch->rxq.head)
        ursa__report_misuse("mpmc freed while a receive wait is queued", NULL);
    free(ch->ring);
    free(ch);
}

/* ---- creation and handles ---- */

static const ursa__chan_ops_t mpmc_ops;

int ursa_mpmc_new(ursa_mpmc_receiver_t *rx, ursa_mpmc_sender_t *tx, size_t elem_size,
                  uint64_t capacity, ursa_mpmc_dtor_t dtor)
{
    if (!rx || !tx || elem_size == 0 || elem_size > ((size_t)1 << 30) || capacity == 0 ||
        capacity > URSA_MPMC_MAX_CAPACITY)
        return -EINVAL;
    size_t hdr = (sizeof(ursa_mpmc_t) + 63) & ~(size_t)63;
    ursa_mpmc_t *ch = aligned_alloc(64, hdr);
    if (!ch)
        return -ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->elem_size = elem_size;
    ch->stride = ursa__ring_stride(elem_size);
    ch->cap = capacity;
    ch->mask = ursa__ring_mask(capacity);
    ch->dtor = dtor;
    if (!(ch->ring = ursa__ring_new(capacity, ch->stride))) {
        free(ch);
        return -ENOMEM;
    }
    ch->mem = hdr + capacity * ch->stride;
    ursa__chan_init(&ch->chan, &mpmc_ops, capacity);
    atomic_init(&ch->rxs, 1);
    ursa__waitlist_init(&ch->rxq);
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->head, 0);
    rx->ch = ch;
    tx->ch = ch;
    return 0;
}

int ursa_mpmc_receiver_clone(const ursa_mpmc_receiver_t *rx, ursa_mpmc_receiver_t *out)
{
    if (!rx || !rx->ch || !out)
        return -EINVAL;
    ursa__chan_ref_get(&rx->ch->chan);
    /* relaxed: we hold a receiver, so the count is not 0. */
    atomic_fetch_add_explicit(&rx->ch->rxs, 1, memory_order_relaxed);
    out->ch = rx->ch;
    return 0;
}

int ursa_mpmc_close(const ursa_mpmc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpmc_t *ch = rx->ch;
    /* Life word first, unlike mpsc: every reserve here counts itself in
     * life and perm_begin reads CLOSED there (mpsc's bounded ones do not). */
    uint64_t l = ursa__chan_life_close(&ch->chan) | URSA__CHAN_CLOSED;
    ursa__sema_close(&ch->chan.sema);
    if (terminal(l))
        wake_all(ch);
    return 0;
}

int ursa_mpmc_receiver_drop(ursa_mpmc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpmc_t *ch = rx->ch;
    /* acq_rel: the last receiver's drop follows every other's. */
    if (atomic_fetch_sub_explicit(&ch->rxs, 1, memory_order_acq_rel) == 1) {
        (void)ursa_mpmc_close(rx);
        ursa__chan_life_rx_gone(&ch->chan);
        drain(ch); /* a message racing the drop goes at destruction */
    }
    rx->ch = NULL;
    ursa__chan_ref_put(&ch->chan);
    return 0;
}

/* ---- reserving ---- */

/* Reserves n slots, counting as a permit out: 0, or an error with nothing
 * reserved and nothing counted. */
static int acquire(ursa_mpmc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                   const ursa_site_t *site)
{
    if (!perm_begin(ch))
        return -EPIPE;
    if (ursa__sema_try(&ch->chan.sema, n))
        return 0;
    int rc = ursa__chan_sema_wait(&ch->chan, n, deadline, c, site);
    if (rc)
        permit_end(ch); /* a cancelled reserve may be what closed receivers wait for */
    return rc;
}

/* Sends with a slot the caller holds: 0 or -EPIPE (slot given back). */
static int send_slot(ursa_mpmc_t *ch, const void *value)
{
    /* (acquire: paired with the last receiver_drop.) */
    if (ursa__chan_rx_gone(&ch->chan)) {
        ursa__sema_release(&ch->chan.sema, 1);
        return -EPIPE;
    }
    push(ch, value);
    return 0;
}

int ursa_mpmc_send(const ursa_mpmc_sender_t *tx, const void *value, ursa_time_t deadline)
{
    if (!tx || !tx->ch || !value)
        return -EINVAL;
    ursa_mpmc_t *ch = tx->ch;
    int rc = acquire(ch, 1, deadline, ursa__ctx(), NULL);
    if (rc)
        return rc;
    rc = send_slot(ch, value);
    permit_end(ch);
    return rc;
}

/* ---- the shared sending half's view of mpmc (chan/chan.h) ---- */

static uint64_t op_capacity(const ursa__chan_t *c)
{
    return ((const ursa_mpmc_t *)c)->cap;
}

static void op_destroy(ursa__chan_t *c)
{
    destroy(mpmc_of(c));
}

static void op_sender_dropped(ursa__chan_t *c, uint64_t life)
{
    if (terminal(life))
        wake_all(mpmc_of(c));
}

static int op_reserve(ursa__chan_t *c, uint64_t n, ursa_time_t deadline, ursa__ctx_t *ctx,
                      const ursa_site_t *site)
{
    return acquire(mpmc_of(c), n, deadline, ctx, site);
}

static bool op_raw_begin(ursa__chan_t *c)
{
    return perm_begin(mpmc_of(c));
}

static void op_give_up(ursa__chan_t *c, uint64_t n)
{
    ursa__sema_release(&c->sema, n);
}

static void op_permit_end(ursa__chan_t *c)
{
    permit_end(mpmc_of(c));
}

static void op_push(ursa__chan_t *c, const void *value)
{
    push(mpmc_of(c), value);
}

/* The semaphore alone never ends the stream here (the life word does):
 * no permits_back; no lazy permit return: no wait steps. */
static const ursa__chan_ops_t mpmc_ops = {
    .permit_kind = {"mpmc send permit", ursa__chan_permit_leaked},
    .capacity = op_capacity,
    .destroy = op_destroy,
    .sender_dropped = op_sender_dropped,
    .reserve = op_reserve,
    .raw_begin = op_raw_begin,
    .give_up = op_give_up,
    .permit_end = op_permit_end,
    .push = op_push,
};

/* ---- receiving ---- */

static bool rx_ready(ursa_mpmc_t *ch)
{
    /* acquire, and read before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    return head_ready(ch) || terminal(l);
}

/* Withdraws a queued node: true if it was still queued. */
static bool rx_cancel(ursa_wait_t *w)
{
    ursa_mpmc_t *ch = w->owner;
    return ursa__waitlist_cancel(&ch->rxq, w);
}

/* A wake reached w but w will not receive: the next waiter gets it. */
static void pass_wake(ursa_mpmc_t *ch)
{
    /* seq_cst fence: pairs like a sender's publication (a waiter queued
     * after our check re-checks the queue itself). */
    atomic_thread_fence(memory_order_seq_cst);
    wake_one(ch);
}

static void rx_give_back(ursa_wait_t *w)
{
    pass_wake(w->owner);
}

/* Queues w: 0 ready now (w done, not queued), -EINPROGRESS. */
static int rx_start(ursa_mpmc_t *ch, ursa_wait_t *w)
{
    w->owner = ch;
    ursa__waitlist_push(&ch->rxq, w); /* counts it in rxq.n */
    /* seq_cst: our rxq.n++ before the re-check (see the header). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!rx_ready(ch))
        return -EINPROGRESS;
    if (rx_cancel(w))
        return ursa__wait_start_ready(w);
    return -EINPROGRESS; /* woken meanwhile: decided, done shortly */
}

/* Waits until something may be ready: 0, or -ETIMEDOUT / -ECANCELED with
 * nothing consumed and any wake that reached us passed on. */
static int rx_wait(ursa_mpmc_t *ch, ursa_time_t deadline)
{
    ursa__ctx_t *c = ursa__ctx();
    ursa_wait_t w;
    ursa__wait_init(&w, c->waker, &rx_ops, NULL);
    int rc = rx_start(ch, &w);
    if (rc == -EINPROGRESS) {
        rc = ursa__ctx_block(c, &w, deadline);
        if (rc != 0) {
            if (!rx_cancel(&w))
                pass_wake(ch); /* woken, but we leave: the next waiter looks */
            return rc;
        }
    }
    return 0;
}

static long recv_common(ursa_mpmc_t *ch, void *buf, uint64_t max, ursa_time_t deadline)
{
    for (;;) {
        /* acquire, before the queue: see the header comment. */
        uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
        uint64_t k = pop(ch, buf, max);
        if (k)
            return (long)k;
        if (terminal(l))
            return -EPIPE;
        if (deadline == URSA_NOW)
            return -EAGAIN;
        int rc = rx_wait(ch, deadline);
        if (rc)
            return rc;
    }
}

int ursa_mpmc_recv(const ursa_mpmc_receiver_t *rx, void *out, ursa_time_t deadline)
{
    if (!rx || !rx->ch || !out)
        return -EINVAL;
    long rc = recv_common(rx->ch, out, 1, deadline);
    return rc > 0 ? 0 : (int)rc;
}

int ursa_mpmc_try_recv(const ursa_mpmc_receiver_t *rx, void *out)
{
    return ursa_mpmc_recv(rx, out, URSA_NOW);
}

long ursa_mpmc_recv_many(const ursa_mpmc_receiver_t *rx, void *buf, size_t max,
                         ursa_time_t deadline)
{
    if (!rx || !rx->ch || !buf || max == 0)
        return -EINVAL;
    return recv_common(rx->ch, buf, (uint64_t)max, deadline);
}

int ursa_mpmc_recv_start(const ursa_mpmc_receiver_t *rx, ursa_wait_t *w, ursa_waker_t waker)
{
    if (!rx || !rx->ch || !w || !waker.fn)
        return -EINVAL;
    ursa__wait_init(w, waker, &rx_ops, NULL);
    w->owner = rx->ch;
    return rx_ready(rx->ch) ? ursa__wait_start_ready(w) : rx_start(rx->ch, w);
}

int ursa_mpmc_recv_finish(const ursa_mpmc_receiver_t *rx, ursa_wait_t *w, void *out)
{
    if (!rx || !rx->ch || !w || !out || w->ops != &rx_ops || w->owner != rx->ch)
        return -EINVAL;
    int rc = ursa__wait_finish(w);
    if (rc)
        return rc;
    ursa_mpmc_t *ch = rx->ch;
    /* acquire, before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    if (pop(ch, out, 1))
        return 0;
    /* Nothing claimable: like a woken receiver that finds it empty, the
     * caller starts again (and re-checks after queueing). */
    return terminal(l) ? -EPIPE : -EAGAIN;
}

/* ---- queries ---- */

uint64_t ursa_mpmc_len(const ursa_mpmc_t *ch)
{
    if (!ch)
        return 0;
    /* relaxed: a snapshot; head first so the difference is not negative. */
    uint64_t h = atomic_load_explicit(&((ursa_mpmc_t *)ch)->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&((ursa_mpmc_t *)ch)->tail, memory_order_relaxed);
    return t > h ? t - h : 0;
}

uint64_t ursa_mpmc_capacity(const ursa_mpmc_t *ch)
{
    return ch ? ch->cap : 0;
}

size_t ursa_mpmc_memory(const ursa_mpmc_t *ch)
{
    return ch ? ch->mem : 0;
}

bool ursa_mpmc_is_closed(const ursa_mpmc_t *ch)
{
    /* relaxed: monotonic. */
    return ch && (atomic_load_explicit(&((ursa_mpmc_t *)ch)->chan.life, memory_order_relaxed) & URSA__CHAN_CLOSED);
}
