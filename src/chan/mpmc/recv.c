/* The mpmc channel's receivers: claiming published positions (a CAS on
 * head), the FIFO of waiting receivers and the wakes passed along it, and
 * the receive calls. */
#include <sched.h>
#include <string.h>

#include "../../core/wait_steps.h"
#include "mpmc.h"

static bool rx_cancel(ursa__waiter_t *w);
static void rx_give_back(ursa__waiter_t *w);
/* A granted receive holds nothing but a wake: give_back passes it on. */
static const ursa__wait_ops_t rx_ops = {URSA_WAIT_CHANNEL, rx_cancel, rx_give_back};

/* ---- claiming messages ---- */

/* True if the slot at head is published (a message can be claimed now). */
static bool head_ready(ursa_mpmc_t *ch)
{
    /* relaxed: a hint; the acquire on seq orders the element. A stale head
     * shows a slot whose seq is past h + 1: counted as ready (the caller
     * retries), which can only cause a spare wake, never a missed one. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    /* acquire: pairs with the sender's publication. */
    uint64_t s = atomic_load_explicit(ursa__mpmc_slot_seq(ch, h), memory_order_acquire);
    return (int64_t)(s - (h + 1)) >= 0;
}

/* Claims up to max consecutive published positions: their count (0 if the
 * slot at head is not published), *pos the first. */
uint64_t ursa__mpmc_claim(ursa_mpmc_t *ch, uint64_t max, uint64_t *pos)
{
    if (max > ch->cap)
        max = ch->cap;
    /* relaxed: validated by the slot's seq and by the CAS. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    /* acquire: as in ursa__mpmc_ring_slot. A ring swapped out meanwhile
     * (shrink.c) shows nothing published at a current head, and a claim
     * on a stale head fails its CAS. */
    unsigned char *ring = atomic_load_explicit(&ch->ring, memory_order_acquire);
    for (;;) {
        /* acquire: the sender's element. */
        uint64_t s = atomic_load_explicit(
            (_Atomic uint64_t *)ursa__ring_slot(ring, ch->cap, ch->div, ch->stride, h),
            memory_order_acquire);
        int64_t d = (int64_t)(s - (h + 1));
        if (d < 0)
            return 0; /* not published yet: empty as far as we can take */
        if (d > 0) {
            /* Our head is stale (the slot was consumed and reused).
             * relaxed: as above; acquire: as above. */
            h = atomic_load_explicit(&ch->head, memory_order_relaxed);
            ring = atomic_load_explicit(&ch->ring, memory_order_acquire);
            continue;
        }
        uint64_t k = 1;
        /* acquire: as above, for each further slot. */
        while (k < max &&
               atomic_load_explicit(
                   (_Atomic uint64_t *)ursa__ring_slot(ring, ch->cap, ch->div, ch->stride, h + k),
                   memory_order_acquire) == h + k + 1)
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

/* Frees k claimed slots from pos in ring (the current one: claimed
 * messages hold their permits, so no swap can happen before this). */
static inline void release_in(ursa_mpmc_t *ch, unsigned char *ring, uint64_t pos, uint64_t k)
{
    for (uint64_t i = 0; i < k; i++)
        ursa__ring_free(
            (_Atomic uint64_t *)ursa__ring_slot(ring, ch->cap, ch->div, ch->stride, pos + i),
            pos + i, ch->cap);
    ursa__sema_release(&ch->chan.sema, k);
}

/* Frees k claimed slots from pos, after their elements were copied out. */
void ursa__mpmc_release_slots(ursa_mpmc_t *ch, uint64_t pos, uint64_t k)
{
    /* acquire: as in ursa__mpmc_ring_slot. */
    release_in(ch, atomic_load_explicit(&ch->ring, memory_order_acquire), pos, k);
}

/* After a claim: pass a wake along if the next message is there too. */
static void chain_wake(ursa_mpmc_t *ch)
{
    /* seq_cst fence: our head CAS is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check of head. */
    atomic_thread_fence(memory_order_seq_cst);
    /* ordered by the fence. */
    if (ursa__waitq_queued(&ch->rxq) && head_ready(ch))
        ursa__mpmc_wake_one(ch);
}

/* Takes up to max messages into buf: the count. */
static uint64_t pop(ursa_mpmc_t *ch, void *buf, uint64_t max)
{
    uint64_t pos, k = ursa__mpmc_claim(ch, max, &pos);
    if (!k)
        return 0;
    /* acquire: as in ursa__mpmc_ring_slot; loaded once: the claimed
     * messages hold their permits, so the ring cannot change under us. */
    unsigned char *ring = atomic_load_explicit(&ch->ring, memory_order_acquire);
    for (uint64_t i = 0; i < k; i++)
        memcpy((unsigned char *)buf + i * ch->elem_size,
               ursa__ring_slot(ring, ch->cap, ch->div, ch->stride, pos + i) + URSA__RING_SEQ,
               ch->elem_size);
    release_in(ch, ring, pos, k);
    chain_wake(ch);
    return k;
}

/* ---- waiting and receiving ---- */

static bool rx_ready(ursa_mpmc_t *ch)
{
    /* acquire, and read before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    return head_ready(ch) || ursa__mpmc_terminal(l);
}

/* Withdraws a queued node: true if it was still queued. */
static bool rx_cancel(ursa__waiter_t *w)
{
    ursa_mpmc_t *ch = w->owner;
    return ursa__waitq_cancel(&ch->rxq, w);
}

/* A wake reached w but w will not receive: the next waiter gets it. */
static void pass_wake(ursa_mpmc_t *ch)
{
    /* seq_cst fence: pairs like a sender's publication (a waiter queued
     * after our check re-checks the queue itself). */
    atomic_thread_fence(memory_order_seq_cst);
    ursa__mpmc_wake_one(ch);
}

static void rx_give_back(ursa__waiter_t *w)
{
    pass_wake(w->owner);
}

/* Queues w: 0 ready now (w done, not queued), -EINPROGRESS. */
static int rx_start(ursa_mpmc_t *ch, ursa__waiter_t *w)
{
    w->owner = ch;
    ursa__waitq_enqueue(&ch->rxq, w); /* counts it in rxq.n */
    /* seq_cst: our rxq.n++ before the re-check (see the header). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!rx_ready(ch))
        return -EINPROGRESS;
    if (rx_cancel(w))
        return ursa__wait_start_ready(w);
    return -EINPROGRESS; /* woken meanwhile: decided, done shortly */
}

/* A try found nothing: -EAGAIN, after giving a big ring back if it may.
 * Out of line, as rx_wait: the receive's ready path stays as small. */
static __attribute__((noinline)) int found_empty(ursa_mpmc_t *ch)
{
    if (ch->shrink)
        ursa__mpmc_shrink(ch);
    return -EAGAIN;
}

/* Waits until something may be ready: 0, or -ETIMEDOUT / -ECANCELED with
 * nothing consumed and any wake that reached us passed on. Out of line:
 * its aligned waiter would cost the receive's ready path a realigned
 * frame. */
static __attribute__((noinline)) int rx_wait(ursa_mpmc_t *ch, ursa_time_t deadline)
{
    if (__builtin_expect(ch->shrink, 0))
        ursa__mpmc_shrink(ch); /* found empty: maybe give a big ring back */
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &rx_ops);
    int rc = rx_start(ch, &w);
    if (rc == -EINPROGRESS) {
        rc = ursa__ctx_block(c, &w, deadline, NULL);
        if (rc != 0) {
            if (!rx_cancel(&w))
                pass_wake(ch); /* woken, but we leave: the next waiter looks */
            return rc;
        }
    }
    return 0;
}

/* Nothing is claimable at head. If a later position is published (its
 * send has returned, or is returning), head's position was claimed by a
 * sender that is still copying (no lock, no wait between its claim and its
 * publication): wait until it publishes (or another receiver moves head
 * on), rather than report "empty" while a returned send is queued, and
 * return true. False: nothing later is published either (a claim alone is
 * a send that has not returned). h: head, t: tail, t - h >= 2. */
static __attribute__((noinline)) bool wait_claimed(ursa_mpmc_t *ch, uint64_t h, uint64_t t)
{
    if (t - h > ch->cap)
        t = h + ch->cap;
    uint64_t p = h + 1;
    /* acquire: pairs with the sender's publication. */
    while (p < t && atomic_load_explicit(ursa__mpmc_slot_seq(ch, p), memory_order_acquire) != p + 1)
        p++;
    if (p >= t)
        return false;
    /* relaxed: as in claimed_behind; a receiver that claims h moves head. */
    for (unsigned i = 0;
         !head_ready(ch) && atomic_load_explicit(&ch->head, memory_order_relaxed) == h; i++) {
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* the claimer may be a preempted thread */
    }
    return true;
}

/* A receive is about to report that it found nothing (a try, an expired
 * deadline, a cancel, a raw finish): true if a send that returned is
 * queued behind one still copying, which it waited for (take again). The
 * blocking path needs no such look: a sender's publication wakes it. */
static bool claimed_behind(ursa_mpmc_t *ch)
{
    /* relaxed: a send the caller must see happened-before its call (the
     * caller's own synchronisation), so its claim is visible here; a
     * stale head only makes us look at slots already taken. Two positions
     * claimed at least: one may be published past head's. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    return t - h >= 2 && wait_claimed(ch, h, t);
}

/* Takes up to max ready messages into buf: how many (>= 1), or -EPIPE
 * (the stream has ended), -EAGAIN (nothing claimable now). */
static long take(ursa_mpmc_t *ch, void *buf, uint64_t max)
{
    /* acquire, before the queue: see the header comment. */
    uint64_t l = atomic_load_explicit(&ch->chan.life, memory_order_acquire);
    uint64_t k = pop(ch, buf, max);
    if (k)
        return (long)k;
    return ursa__mpmc_terminal(l) ? -EPIPE : -EAGAIN;
}

static long recv_common(ursa_mpmc_t *ch, void *buf, uint64_t max, ursa_time_t deadline)
{
    for (;;) {
        long k = take(ch, buf, max);
        if (k != -EAGAIN)
            return k;
        int rc = deadline == URSA_NOW ? found_empty(ch) : rx_wait(ch, deadline);
        if (rc && !claimed_behind(ch))
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
    ursa__waiter_t *n = rx && rx->ch ? ursa__wait_raw_init(w, waker, &rx_ops, NULL) : NULL;
    if (!n)
        return -EINVAL;
    n->owner = rx->ch;
    return rx_ready(rx->ch) ? ursa__wait_start_ready(n) : rx_start(rx->ch, n);
}

int ursa_mpmc_recv_finish(const ursa_mpmc_receiver_t *rx, ursa_wait_t *w, void *out)
{
    int rc = rx && out ? ursa__wait_finish_of(w, rx->ch, &rx_ops) : -EINVAL;
    if (rc)
        return rc;
    /* Nothing claimable (-EAGAIN): like a woken receiver that finds it
     * empty, the caller starts again (and re-checks after queueing). */
    long k = take(rx->ch, out, 1);
    if (k == -EAGAIN && claimed_behind(rx->ch))
        k = take(rx->ch, out, 1);
    return k > 0 ? 0 : (int)k;
}
