/* The contract rows of mpsc and mpmc, whose APIs have the same shape,
 * written once: rows_chan.c includes this file twice, with CHAN defined as
 * mpsc (MULTI_RX 0: one receiver) and as mpmc (MULTI_RX 1: the second
 * waiter gets its own receiver clone). Each include defines the rows
 * contract_<CHAN>_recv, contract_<CHAN>_send and contract_<CHAN>_reserve.
 * No include guard, on purpose. */

#define XC_PASTE(c, n) c##_##n
#define XC_EXPAND(c, n) XC_PASTE(c, n)
#define XC(n) XC_EXPAND(CHAN, n)     /* mpsc_n: this file's own names */
#define CH(n) XC_EXPAND(ursa, XC(n)) /* ursa_mpsc_n: the channel's API */
#define XC_STR_(c) #c
#define XC_STR(c) XC_STR_(c)

typedef struct XC(fx) {
    CH(receiver_t) rx[1 + MULTI_RX]; /* the second waiter's own clone (mpmc) */
    CH(sender_t) tx[2];              /* the second waiter's own clone */
} XC(fx_t);

/* The receiver of waiter `who`. */
#define XC_RX(p, who) (&((XC(fx_t) *)(p))->rx[MULTI_RX ? (who) : 0])

/* full: capacity 1, one message in (a send or reserve blocks). */
static XC(fx_t) *XC(make)(uint64_t cap, bool full)
{
    XC(fx_t) *f = calloc(1, sizeof *f);
    uint64_t v = 1;
    if (!f || CH(new)(&f->rx[0], &f->tx[0], sizeof(uint64_t), cap, NULL)) {
        free(f);
        return NULL;
    }
    int rc = CH(sender_clone)(&f->tx[0], &f->tx[1]);
#if MULTI_RX
    rc = rc ? rc : CH(receiver_clone)(&f->rx[0], &f->rx[1]);
#endif
    if (rc || (full && CH(send)(&f->tx[0], &v, URSA_NOW))) {
        CH(sender_drop)(&f->tx[0]);
        CH(receiver_drop)(&f->rx[0]);
        free(f);
        return NULL;
    }
    return f;
}

static void *XC(rx_make)(void)
{
    return XC(make)(4, false);
}

static void *XC(tx_make)(void)
{
    return XC(make)(1, true);
}

static const char *XC(destroy)(void *p)
{
    XC(fx_t) *f = p;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(CH(sender_drop)(&f->tx[i]), 0);
    for (int i = 0; i <= MULTI_RX; i++)
        CHECK_EQ(CH(receiver_drop)(&f->rx[i]), 0);
    free(f);
    return NULL;
}

static const char *XC(send_one)(void *p)
{
    uint64_t v = VALUE;
    CHECK_EQ(CH(send)(&((XC(fx_t) *)p)->tx[0], &v, URSA_NOW), 0);
    return NULL;
}

static const char *XC(recv_one)(void *p)
{
    uint64_t v;
    CHECK_EQ(CH(try_recv)(XC_RX(p, 0), &v), 0);
    return NULL;
}

static int XC(recv_wait)(void *p, int who, void *hold, ursa_time_t deadline)
{
    return CH(recv)(XC_RX(p, who), hold, deadline);
}

static int XC(recv_start)(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    return CH(recv_start)(XC_RX(p, who), w, k);
}

static int XC(recv_finish)(void *p, int who, ursa_wait_t *w, void *hold)
{
    return CH(recv_finish)(XC_RX(p, who), w, hold);
}

static const char *XC(empty)(void *p)
{
    CHECK_EQ(CH(len)(XC_RX(p, 0)->ch), 0);
    return NULL;
}

static const char *XC(full)(void *p)
{
    CHECK_EQ(CH(len)(XC_RX(p, 0)->ch), 1);
    return NULL;
}

static int XC(recv_take)(void *p)
{
    uint64_t v = 0;
    int rc = CH(try_recv)(XC_RX(p, 0), &v);
    return rc == 0 && v != VALUE ? -EIO : contract_tried(rc);
}

static const contract_row_t XC_EXPAND(contract, XC(recv)) = {
    .name = XC_STR(CHAN) "_recv",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_CONSUMED,
    .one_waiter = !MULTI_RX,
    .make = XC(rx_make),
    .destroy = XC(destroy),
    .grant = XC(send_one),
    .wait = XC(recv_wait),
    .start = XC(recv_start),
    .finish = XC(recv_finish),
    .release = got_value,
    .unchanged = XC(empty),
    .take = XC(recv_take),
};

static int XC(send_wait)(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)hold;
    uint64_t v = 100 + (uint64_t)who;
    return CH(send)(&((XC(fx_t) *)p)->tx[who], &v, deadline);
}

/* A free slot: one more send goes in. */
static int XC(send_take)(void *p)
{
    uint64_t v = 7;
    return contract_tried(CH(send)(&((XC(fx_t) *)p)->tx[0], &v, URSA_NOW));
}

static const contract_row_t XC_EXPAND(contract, XC(send)) = {
    .name = XC_STR(CHAN) "_send",
    .checks = CONTRACT_WAIT_CHECKS_NO_RAW,
    .kind = CONTRACT_CONSUMED, /* the freed slot */
    .make = XC(tx_make),
    .destroy = XC(destroy),
    .grant = XC(recv_one),
    .wait = XC(send_wait),
    .release = contract_nothing_to_release,
    .unchanged = XC(full),
    .take = XC(send_take),
};

static int XC(reserve_line);

static int XC(reserve_wait)(void *p, int who, void *hold, ursa_time_t deadline)
{
    const CH(sender_t) *tx = &((XC(fx_t) *)p)->tx[who];
    XC(reserve_line) = __LINE__; return CH(reserve)(tx, hold, deadline);
}

static int XC(reserve_start)(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    return CH(reserve_start)(&((XC(fx_t) *)p)->tx[who], 1, w, k);
}

static int XC(reserve_finish)(void *p, int who, ursa_wait_t *w, void *hold)
{
    return CH(reserve_finish)(&((XC(fx_t) *)p)->tx[who], w, hold);
}

static const char *XC(permit_release)(void *p, void *hold)
{
    (void)p;
    CHECK_EQ(CH(permit_release)(hold), 0);
    return NULL;
}

static bool XC(permit_holds)(const void *hold)
{
    return ((const CH(permit_t) *)hold)->ch != NULL;
}

static int XC(reserve_take)(void *p)
{
    CH(permit_t) q = {0};
    int rc = CH(reserve)(&((XC(fx_t) *)p)->tx[0], &q, URSA_NOW);
    if (q.ch && CH(permit_release)(&q))
        return -EIO;
    return contract_tried(rc);
}

static const contract_row_t XC_EXPAND(contract, XC(reserve)) = {
    .name = XC_STR(CHAN) "_reserve",
    .checks = CONTRACT_WAIT_CHECKS | CONTRACT_LEAK,
    .kind = CONTRACT_RETURNED, /* a released permit gives its slot back */
    .exclusive = true,
    .hold_kind = XC_STR(CHAN) " send permit",
    .line = &XC(reserve_line),
    .make = XC(tx_make),
    .destroy = XC(destroy),
    .grant = XC(recv_one),
    .wait = XC(reserve_wait),
    .start = XC(reserve_start),
    .finish = XC(reserve_finish),
    .release = XC(permit_release),
    .holds = XC(permit_holds),
    .unchanged = XC(full),
    .take = XC(reserve_take),
};

#undef XC_RX
#undef XC_STR
#undef XC_STR_
#undef CH
#undef XC
#undef XC_EXPAND
#undef XC_PASTE
