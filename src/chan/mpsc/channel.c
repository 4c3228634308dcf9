/* The mpsc channel's life: creation, close, the receiver's drop, the
 * end of the stream (end_check, the unbounded seal), destruction, the
 * queries, and how the shared sending half (chan/senders.c) sees the
 * channel. The design: mpsc.h. */
#include <stdlib.h>

#include "mpsc.h"
#include "send_bias.h"

/* ---- the end of the stream ---- */

/* Something that may end the stream changed (life, or a permit came
 * back): wake the receiver if the stream has ended. */
void ursa__mpsc_end_check(ursa_mpsc_t *ch)
{
    /* seq_cst fence: our change is ordered before the loads below and the
     * load of rx_wait, against rx_start's store of rx_wait, fence and
     * re-check (Dekker); the same pairing with another ender (closer vs last
     * permit back) makes at least one of us see both changes. */
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: as in ursa_mpsc_recv. */
    if (ursa__mpsc_ended(ch, atomic_load_explicit(&ch->chan.life, memory_order_acquire)))
        ursa__mpsc_wake_rx(ch);
}

/* Unbounded, closed and no permit out: sets URSA__MPSC_TAIL_CLOSED in
 * tail so that plain senders that claim later send nothing, and records
 * where the stream ends. Plain sends are not counted: one that read life
 * before CLOSED claims below end and is delivered (it took effect before
 * the close). */
static void seal(ursa_mpsc_t *ch)
{
    /* seq_cst: ordered with the senders' seq_cst claims; the first sealer's
     * old value is the end. */
    uint64_t old =
        atomic_fetch_or_explicit(&ch->tail, URSA__MPSC_TAIL_CLOSED, memory_order_seq_cst);
    if (!(old & URSA__MPSC_TAIL_CLOSED))
        /* release: pairs with ursa__mpsc_ended()'s acquire. */
        atomic_store_explicit(&ch->end, old, memory_order_release);
    ursa__mpsc_end_check(ch);
}

/* Unbounded: a permit (or reserve) ends and stops counting, which may be
 * what a closed receiver waits for. */
void ursa__mpsc_unb_done(ursa_mpsc_t *ch)
{
    uint64_t l = ursa__chan_life_permit_end(&ch->chan);
    if ((l >> 32) == 0 && (l & URSA__CHAN_CLOSED))
        seal(ch);
    else if (ursa__mpsc_ended(ch, l))
        ursa__mpsc_end_check(ch);
}

/* Slots given up without a message (bounded: permits go back). */
void ursa__mpsc_give_up(ursa_mpsc_t *ch, uint64_t n)
{
    if (!ch->cap)
        return;
    ursa__sema_release(&ch->chan.sema, n);
    ursa__mpsc_end_check(ch); /* maybe the last permit a closed receiver waited for */
}

/* ---- creation, drops, destruction ---- */

/* Destroys (dtor) every message still queued. Receiver side only. */
static void drain(ursa_mpsc_t *ch)
{
    unsigned char *e;
    while ((e = ursa__mpsc_peek(ch))) {
        if (ch->dtor)
            ch->dtor(e);
        ursa__mpsc_consumed(ch, e);
    }
}

static void destroy(ursa_mpsc_t *ch)
{
    drain(ch);
    if (!ch->cap) {
        ursa__mpsc_blk_t *b = ch->free_head;
        while (b) {
            /* relaxed: the last reference; no sender is left. */
            ursa__mpsc_blk_t *n = atomic_load_explicit(&b->next, memory_order_relaxed);
            ursa__mpsc_blk_free(ch, b);
            b = n;
        }
    }
    if (ch->cap)
        /* relaxed: the last reference; no sender is left. */
        ursa__ring_delete(ch->ring, ch->cap, ch->stride, ch->ring_from,
                          atomic_load_explicit(&ch->tail, memory_order_relaxed));
    free(ch);
}

static const ursa__chan_ops_t mpsc_ops;

int ursa_mpsc_new(ursa_mpsc_receiver_t *rx, ursa_mpsc_sender_t *tx, size_t elem_size,
                  uint64_t capacity, ursa_mpsc_dtor_t dtor)
{
    if (!rx || !tx || elem_size == 0 || elem_size > ((size_t)1 << 30) ||
        capacity > URSA_MPSC_MAX_CAPACITY)
        return -EINVAL;
    ursa_mpsc_t *ch = aligned_alloc(64, (sizeof *ch + 63) & ~(size_t)63);
    if (!ch)
        return -ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->elem_size = elem_size;
    size_t esz = (elem_size + 7) & ~(size_t)7;
    ch->cap = capacity;
    ch->dtor = dtor;
    atomic_init(&ch->mem, (sizeof *ch + 63) & ~(size_t)63);
    /* Unbounded: the semaphore is used for close only. */
    ursa__chan_init(&ch->chan, &mpsc_ops, capacity);
    atomic_init(&ch->rx_wait, NULL);
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->end, URSA__MPSC_NO_END);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->returned, 0);
    atomic_init(&ch->harvesting, 0);
    atomic_init(&ch->tx_waiting, 0);
    atomic_init(&ch->tx_sleeps, 0);
    atomic_init(&ch->fence_mode, URSA__MPSC_LAZY_MEMBARRIER);
    if (capacity) {
        ch->stride = ursa__ring_stride(elem_size);
        ch->div = ursa__ring_div(capacity);
        if (!(ch->ring = ursa__ring_new(capacity, ch->stride))) {
            free(ch);
            return -ENOMEM;
        }
        /* relaxed: a statistic. */
        atomic_fetch_add_explicit(&ch->mem, capacity * ch->stride, memory_order_relaxed);
        ch->shrink = capacity * ch->stride > URSA__RING_SHRINK_MIN;
        ch->lazy = ursa__mpsc_lazy_usable();
        /* Revoking needs membarrier, as the lazy return does. */
        atomic_init(&ch->sbias, ch->lazy ? ursa__thread_uid() : 0);
    } else {
        ch->stride = esz;
        ch->bslots = 32;
        while (ch->bslots > 2 && ch->bslots * esz > 4096)
            ch->bslots >>= 1;
        ursa__mpsc_blk_t *b = ursa__mpsc_blk_new(ch, 0);
        if (!b) {
            free(ch);
            return -ENOMEM;
        }
        atomic_init(&ch->block_tail, b);
        ch->head_block = ch->free_head = b;
    }
    rx->ch = ch;
    tx->ch = ch;
    return 0;
}

int ursa_mpsc_close(const ursa_mpsc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    /* Bounded: the owner's credit back, then the semaphore, so that no
     * send succeeds once ursa__mpsc_ended() can see CLOSED (regression
     * test_close_window). */
    if (ch->cap) {
        ursa__mpsc_sbias_revoke(ch);
        ursa__sema_close(&ch->chan.sema);
    }
    uint64_t l = ursa__chan_life_close(&ch->chan);
    ursa__chan_close_wake(&ch->chan);
    if (!ch->cap && (l >> 32) == 0)
        seal(ch); /* no permit out; else the last one seals */
    ursa__mpsc_end_check(ch); /* a raw recv of ours may wait */
    return 0;
}

int ursa_mpsc_receiver_drop(ursa_mpsc_receiver_t *rx)
{
    if (!rx || !rx->ch)
        return -EINVAL;
    ursa_mpsc_t *ch = rx->ch;
    (void)ursa_mpsc_close(rx);
    ursa__chan_life_rx_gone(&ch->chan); /* permit_send and send read it */
    rx->ch = NULL;
    drain(ch); /* later late messages go at destruction */
    ursa__chan_ref_put(&ch->chan);
    return 0;
}

/* ---- the shared sending half's view of mpsc (chan/chan.h) ---- */

static uint64_t op_capacity(const ursa__chan_t *c)
{
    return ((const ursa_mpsc_t *)c)->cap;
}

static void op_destroy(ursa__chan_t *c)
{
    destroy(ursa__mpsc_of(c));
}

static void op_sender_dropped(ursa__chan_t *c, uint64_t life)
{
    if ((life & URSA__CHAN_TX_MASK) == 0) {
        ursa__mpsc_sbias_revoke(ursa__mpsc_of(c)); /* the end needs every permit back */
        ursa__mpsc_end_check(ursa__mpsc_of(c));
    }
}

static int op_reserve(ursa__chan_t *c, uint64_t n, ursa_time_t deadline, ursa__ctx_t *ctx,
                      const ursa_site_t *site)
{
    ursa__mpsc_sbias_revoke(ursa__mpsc_of(c)); /* a permit is the shared view */
    return ursa__mpsc_acquire(ursa__mpsc_of(c), n, deadline, ctx, site);
}

static bool op_raw_begin(ursa__chan_t *c)
{
    ursa_mpsc_t *ch = ursa__mpsc_of(c);
    ursa__mpsc_sbias_revoke(ch);
    if (ch->lazy)
        (void)ursa__mpsc_harvest(ch, 0); /* what the receiver owes, before we try */
    return true;
}

static void op_give_up(ursa__chan_t *c, uint64_t n)
{
    ursa__mpsc_give_up(ursa__mpsc_of(c), n);
}

/* Bounded permits are not counted in life: their semaphore permits are. */
static void op_permit_end(ursa__chan_t *c)
{
    if (!ursa__mpsc_of(c)->cap)
        ursa__mpsc_unb_done(ursa__mpsc_of(c));
}

static void op_push(ursa__chan_t *c, const void *value)
{
    (void)ursa__mpsc_push(ursa__mpsc_of(c), value); /* cannot fail: a permit counts, so no seal */
}

static void op_permits_back(ursa__chan_t *c)
{
    ursa__mpsc_end_check(ursa__mpsc_of(c));
}

static void op_wait_enter(ursa__chan_t *c)
{
    ursa__mpsc_wait_enter(ursa__mpsc_of(c));
}

static void op_wait_queued(ursa__chan_t *c)
{
    ursa__mpsc_wait_queued(ursa__mpsc_of(c));
}

static void op_wait_leave(ursa__chan_t *c)
{
    ursa__mpsc_wait_leave(ursa__mpsc_of(c));
}

static const ursa__chan_ops_t mpsc_ops = {
    .permit_kind = {"mpsc send permit", ursa__chan_permit_leaked},
    .capacity = op_capacity,
    .destroy = op_destroy,
    .sender_dropped = op_sender_dropped,
    .reserve = op_reserve,
    .raw_begin = op_raw_begin,
    .give_up = op_give_up,
    .permit_end = op_permit_end,
    .push = op_push,
    .permits_back = op_permits_back,
    .wait_enter = op_wait_enter,
    .wait_queued = op_wait_queued,
    .wait_leave = op_wait_leave,
};

/* ---- queries ---- */

uint64_t ursa_mpsc_len(const ursa_mpsc_t *ch)
{
    if (!ch)
        return 0;
    /* relaxed: a snapshot; head first so the difference is not negative. */
    uint64_t h = atomic_load_explicit(&((ursa_mpsc_t *)ch)->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&((ursa_mpsc_t *)ch)->tail, memory_order_relaxed) &
                 ~URSA__MPSC_TAIL_CLOSED;
    uint64_t e = atomic_load_explicit(&((ursa_mpsc_t *)ch)->end, memory_order_relaxed);
    t = t < e ? t : e; /* claims past a seal are never written */
    return t > h ? t - h : 0;
}

uint64_t ursa_mpsc_capacity(const ursa_mpsc_t *ch)
{
    return ch ? ch->cap : 0;
}

uint64_t ursa_mpsc_free_slots(const ursa_mpsc_t *cch)
{
    ursa_mpsc_t *ch = (ursa_mpsc_t *)cch;
    if (!ch)
        return 0;
    if (!ch->cap)
        return UINT64_MAX;
    /* The bias owner's credit is free slots only its thread may read; on
     * another thread the query takes the shared view (ends the bias). */
    uint64_t f = ursa__mpsc_sbias_revoke_unless_mine(ch) ? ch->sbias_credit : 0;
    f += ursa__sema_available(&ch->chan.sema);
    if (ch->lazy) {
        /* relaxed: a snapshot; returned first so the difference is not
         * negative (head only grows past it). */
        uint64_t r = atomic_load_explicit(&ch->returned, memory_order_relaxed);
        f += atomic_load_explicit(&ch->head, memory_order_relaxed) - r;
    }
    return f < ch->cap ? f : ch->cap;
}

size_t ursa_mpsc_memory(const ursa_mpsc_t *ch)
{
    /* relaxed: a statistic. */
    return ch ? atomic_load_explicit(&((ursa_mpsc_t *)ch)->mem, memory_order_relaxed) : 0;
}

bool ursa_mpsc_is_closed(const ursa_mpsc_t *ch)
{
    /* relaxed: monotonic. */
    return ch && (atomic_load_explicit(&((ursa_mpsc_t *)ch)->chan.life, memory_order_relaxed) &
                  URSA__CHAN_CLOSED);
}
