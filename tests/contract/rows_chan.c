/* Contract rows for src/chan/: oneshot recv, mpsc send / reserve / recv,
 * mpmc send / reserve / recv, broadcast recv, watch changed. A recv row
 * starts empty and a grant sends one message; a send or reserve row starts
 * full (capacity 1) and a grant receives one. A second waiter gets its own
 * handle (a cloned sender or receiver). */
#include "support.h"

#include "contract.h"
#include "queue_peek.h"
#include "task_checks.h"

#define VALUE 42u /* what a grant sends */

static const char *got_value(void *f, void *hold)
{
    (void)f;
    uint64_t v;
    memcpy(&v, hold, sizeof v);
    CHECK_EQ(v, VALUE);
    return NULL;
}

/* ---- oneshot ---- */

static void *oneshot_make(void)
{
    ursa_oneshot_t *os = calloc(1, sizeof *os);
    if (!os || ursa_oneshot_init(os, sizeof(uint64_t), NULL)) {
        free(os);
        return NULL;
    }
    return os;
}

static const char *oneshot_grant(void *p)
{
    uint64_t v = VALUE;
    CHECK_EQ(ursa_oneshot_send(p, &v), 0);
    return NULL;
}

static const char *oneshot_destroy(void *p)
{
    CHECK_EQ(ursa_oneshot_destroy(p), 0);
    free(p);
    return NULL;
}

static int oneshot_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    return ursa_oneshot_recv(p, hold, deadline);
}

static int oneshot_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_oneshot_recv_start(p, w, k);
}

static int oneshot_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_oneshot_recv_finish(p, w, hold);
}

static int oneshot_queued(void *p)
{
    return peek_oneshot_waiting(p);
}

static const char *oneshot_unchanged(void *p)
{
    CHECK_EQ(ursa_oneshot_is_closed(p), 0);
    return NULL;
}

/* The value, if it is still there; -EALREADY: taken before. */
static int oneshot_take(void *p)
{
    uint64_t v = 0;
    int rc = ursa_oneshot_try_recv(p, &v);
    if (rc == 0)
        return v == VALUE ? 1 : -EIO;
    return rc == -EALREADY ? 0 : contract_tried(rc);
}

static const contract_row_t contract_oneshot_recv = {
    .name = "oneshot_recv",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_CONSUMED,
    .one_waiter = true,
    .make = oneshot_make,
    .destroy = oneshot_destroy,
    .grant = oneshot_grant,
    .wait = oneshot_wait,
    .start = oneshot_start,
    .finish = oneshot_finish,
    .release = got_value,
    .queued = oneshot_queued,
    .unchanged = oneshot_unchanged,
    .take = oneshot_take,
};

/* ---- mpsc and mpmc: send, reserve, recv ---- */

#define CHAN mpsc
#define MULTI_RX 0
#include "rows_mpxc.h"
#undef MULTI_RX
#undef CHAN

#define CHAN mpmc
#define MULTI_RX 1
#include "rows_mpxc.h"
#undef MULTI_RX
#undef CHAN

/* ---- broadcast: one receiver ---- */

typedef struct bc_fx {
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
} bc_fx_t;

static void *bc_make(void)
{
    bc_fx_t *f = calloc(1, sizeof *f);
    if (!f || ursa_broadcast_new(&f->tx, &f->rx, sizeof(uint64_t), 4, NULL)) {
        free(f);
        return NULL;
    }
    return f;
}

static const char *bc_grant(void *p)
{
    uint64_t v = VALUE;
    CHECK_EQ(ursa_broadcast_send(((bc_fx_t *)p)->tx, &v), 1);
    return NULL;
}

static const char *bc_destroy(void *p)
{
    bc_fx_t *f = p;
    CHECK_EQ(ursa_broadcast_sender_drop(f->tx), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(f->rx), 0);
    free(f);
    return NULL;
}

static int bc_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    uint64_t missed = 0;
    return ursa_broadcast_recv(((bc_fx_t *)p)->rx, hold, &missed, deadline);
}

static int bc_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_broadcast_recv_start(((bc_fx_t *)p)->rx, w, k);
}

static int bc_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    uint64_t missed = 0;
    return ursa_broadcast_recv_finish(((bc_fx_t *)p)->rx, w, hold, &missed);
}

static const char *bc_unchanged(void *p)
{
    CHECK_EQ(ursa_broadcast_rx_len(((bc_fx_t *)p)->rx), 0);
    return NULL;
}

static int bc_take(void *p)
{
    uint64_t v = 0, missed = 0;
    int rc = ursa_broadcast_try_recv(((bc_fx_t *)p)->rx, &v, &missed);
    return rc == 0 && v != VALUE ? -EIO : contract_tried(rc);
}

static const contract_row_t contract_broadcast_recv = {
    .name = "broadcast_recv",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_CONSUMED, /* per receiver */
    .one_waiter = true,
    .make = bc_make,
    .destroy = bc_destroy,
    .grant = bc_grant,
    .wait = bc_wait,
    .start = bc_start,
    .finish = bc_finish,
    .release = got_value,
    .unchanged = bc_unchanged,
    .take = bc_take,
};

/* ---- watch: one receiver, changed() ---- */

typedef struct watch_fx {
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
} watch_fx_t;

static void *watch_make(void)
{
    watch_fx_t *f = calloc(1, sizeof *f);
    uint64_t v0 = 0; /* seen by the receiver from the start */
    if (!f || ursa_watch_new(&f->tx, &f->rx, sizeof(uint64_t), &v0)) {
        free(f);
        return NULL;
    }
    return f;
}

static const char *watch_grant(void *p)
{
    uint64_t v = VALUE;
    CHECK_EQ(ursa_watch_send(((watch_fx_t *)p)->tx, &v), 0);
    return NULL;
}

static const char *watch_destroy(void *p)
{
    watch_fx_t *f = p;
    CHECK_EQ(ursa_watch_receiver_drop(f->rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(f->tx), 0);
    free(f);
    return NULL;
}

static int watch_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    (void)hold;
    return ursa_watch_changed(((watch_fx_t *)p)->rx, deadline);
}

static int watch_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_watch_changed_start(((watch_fx_t *)p)->rx, w, k);
}

static int watch_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    (void)hold;
    return ursa_watch_changed_finish(((watch_fx_t *)p)->rx, w);
}

/* The change was seen, and it is the sent value. */
static const char *watch_release(void *p, void *hold)
{
    (void)hold;
    watch_fx_t *f = p;
    ursa_watch_borrow_t g = {0};
    CHECK_EQ(ursa_watch_has_changed(f->rx), 0);
    CHECK_EQ(ursa_watch_borrow(f->rx, &g), 0);
    uint64_t v;
    memcpy(&v, ursa_watch_borrow_ptr(&g), sizeof v);
    CHECK_EQ(ursa_watch_borrow_release(&g), 0);
    CHECK_EQ(v, VALUE);
    return NULL;
}

static const char *watch_unchanged(void *p)
{
    CHECK_EQ(ursa_watch_has_changed(((watch_fx_t *)p)->rx), 0);
    return NULL;
}

static int watch_take(void *p)
{
    return contract_tried(ursa_watch_changed(((watch_fx_t *)p)->rx, URSA_NOW));
}

static const contract_row_t contract_watch_changed = {
    .name = "watch_changed",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_CONSUMED, /* a change is seen once, per receiver */
    .one_waiter = true,
    .make = watch_make,
    .destroy = watch_destroy,
    .grant = watch_grant,
    .wait = watch_wait,
    .start = watch_start,
    .finish = watch_finish,
    .release = watch_release,
    .unchanged = watch_unchanged,
    .take = watch_take,
};

/* The rows of test_contract_chan. */
const contract_row_t *const contract_rows[] = {
    &contract_oneshot_recv,
    &contract_mpsc_send,
    &contract_mpsc_reserve,
    &contract_mpsc_recv,
    &contract_mpmc_send,
    &contract_mpmc_reserve,
    &contract_mpmc_recv,
    &contract_broadcast_recv,
    &contract_watch_changed,
    NULL,
};
