/* The mpmc channel's life: permits out, creation, receiver handles,
 * close, drops, destruction, queries, and how the shared sending half
 * (chan/senders.c) sees the channel. The design: mpmc.h. */
#include <stdlib.h>
#include <string.h>

#include "mpmc.h"

/* ---- permits out ---- */

void ursa__mpmc_permit_end(ursa_mpmc_t *ch)
{
    if (ursa__mpmc_terminal(ursa__chan_life_permit_end(&ch->chan)))
        ursa__mpmc_wake_all(ch);
}

bool ursa__mpmc_perm_begin(ursa_mpmc_t *ch)
{
    /* (acq_rel, in ursa__chan_life_permit_begin: counted before the
     * reserve that follows, so a receiver that reads "no permit out"
     * cannot miss a message this permit sends.) The same RMW reads CLOSED:
     * close sets it before it closes the semaphore, and a receiver may
     * already have ended the stream in between, so a reserve that comes
     * after CLOSED must fail even if a permit is free (regression: a
     * message delivered after -EPIPE). */
    if (ursa__chan_life_permit_begin(&ch->chan) & (URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE)) {
        ursa__mpmc_permit_end(ch);
        return false;
    }
    return true;
}

/* ---- creation, handles, destruction ---- */

/* Destroys (dtor) every published message still queued. */
static void drain(ursa_mpmc_t *ch)
{
    uint64_t pos;
    while (ursa__mpmc_claim(ch, 1, &pos)) {
        if (ch->dtor)
            ch->dtor(ursa__mpmc_ring_slot(ch, pos) + URSA__RING_SEQ);
        ursa__mpmc_release_slots(ch, pos, 1);
    }
}

static void destroy(ursa_mpmc_t *ch)
{
    drain(ch);
    if (ch->rxq.head)
        ursa__report_misuse("mpmc freed while a receive wait is queued", NULL);
    /* relaxed: the last reference; no sender or receiver is left. */
    ursa__ring_delete(atomic_load_explicit(&ch->ring, memory_order_relaxed), ch->cap,
                      ch->stride, atomic_load_explicit(&ch->ring_from, memory_order_relaxed),
                      atomic_load_explicit(&ch->tail, memory_order_relaxed));
    /* relaxed: as above; the spare is zeroed. */
    ursa__zmem_free(atomic_load_explicit(&ch->spare, memory_order_relaxed), ch->cap * ch->stride,
                    0);
    free(ch);
}

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
    ch->div = ursa__ring_div(capacity);
    ch->dtor = dtor;
    unsigned char *ring = ursa__ring_new(capacity, ch->stride);
    if (!ring) {
        free(ch);
        return -ENOMEM;
    }
    atomic_init(&ch->ring, ring);
    atomic_init(&ch->spare, NULL);
    atomic_init(&ch->spare_made, 0);
    atomic_init(&ch->ring_from, 0);
    ch->shrink = capacity * ch->stride > URSA__RING_SHRINK_MIN;
    ch->mem = hdr + capacity * ch->stride;
    ursa__chan_init(&ch->chan, &mpmc_ops, capacity);
    atomic_init(&ch->rxs, 1);
    ursa__waitq_init(&ch->rxq);
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
    ursa__chan_close_wake(&ch->chan);
    /* The reserves the close fails while queued will never send: they stop
     * counting now, not when their owners get round to it (a raw one may
     * be finished much later), as in mpsc, whose end counts only the
     * permits held (regression
     * test_closed_channel_ends_with_a_failed_raw_reserve_unfinished). */
    uint64_t failed = ursa__sema_close(&ch->chan.sema);
    if (failed)
        l = ursa__chan_life_permits_end(&ch->chan, failed);
    if (ursa__mpmc_terminal(l))
        ursa__mpmc_wake_all(ch);
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

/* ---- the shared sending half's view of mpmc (chan/chan.h) ---- */

static uint64_t op_capacity(const ursa__chan_t *c)
{
    return ((const ursa_mpmc_t *)c)->cap;
}

static void op_destroy(ursa__chan_t *c)
{
    destroy(ursa__mpmc_of(c));
}

static void op_sender_dropped(ursa__chan_t *c, uint64_t life)
{
    if (ursa__mpmc_terminal(life))
        ursa__mpmc_wake_all(ursa__mpmc_of(c));
}

static int op_reserve(ursa__chan_t *c, uint64_t n, ursa_time_t deadline, ursa__ctx_t *ctx,
                      const ursa_site_t *site)
{
    return ursa__mpmc_acquire(ursa__mpmc_of(c), n, deadline, ctx, site);
}

static bool op_raw_begin(ursa__chan_t *c)
{
    return ursa__mpmc_perm_begin(ursa__mpmc_of(c));
}

static void op_give_up(ursa__chan_t *c, uint64_t n)
{
    ursa__sema_release(&c->sema, n);
}

static void op_permit_end(ursa__chan_t *c)
{
    ursa__mpmc_permit_end(ursa__mpmc_of(c));
}

static void op_push(ursa__chan_t *c, const void *value)
{
    ursa__mpmc_push(ursa__mpmc_of(c), value);
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

uint64_t ursa_mpmc_free_slots(const ursa_mpmc_t *ch)
{
    return ch ? ursa__sema_available(&ch->chan.sema) : 0;
}

size_t ursa_mpmc_memory(const ursa_mpmc_t *ch)
{
    return ch ? ch->mem : 0;
}

bool ursa_mpmc_is_closed(const ursa_mpmc_t *ch)
{
    /* relaxed: monotonic. */
    return ch && (atomic_load_explicit(&((ursa_mpmc_t *)ch)->chan.life, memory_order_relaxed) &
                  URSA__CHAN_CLOSED);
}
