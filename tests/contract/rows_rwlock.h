/* The contract rows of the rwlock's two sides, mirror images written once:
 * rows_lock.c includes this file twice, with SIDE read (OTHER write: the
 * read side blocked by a writer) and with SIDE write (OTHER read: the write
 * side blocked by a reader); WRITE_SIDE is 0 or 1 to match. Each include
 * defines the row contract_rwlock_<SIDE>. No include guard, on purpose. */

#define RW_PASTE3(a, b, c) a##_##b##_##c
#define RW_EXPAND3(a, b, c) RW_PASTE3(a, b, c)
#define RW(n) RW_EXPAND3(rw, SIDE, n)                  /* rw_read_n: this file's names */
#define RW_API(n) RW_EXPAND3(ursa_rwlock, SIDE, n)     /* ursa_rwlock_read_n */
#define RW_OTHER(n) RW_EXPAND3(ursa_rwlock, OTHER, n)  /* ursa_rwlock_write_n */
#define RW_STR_(s) #s
#define RW_STR(s) RW_STR_(s)

typedef struct RW(fx) {
    ursa_rwlock_t rw;
    RW_OTHER(guard_t) block;
} RW(fx_t);

static int RW(line);

static void *RW(make)(void)
{
    RW(fx_t) *f = calloc(1, sizeof *f);
    if (!f || ursa_rwlock_init_attr(&f->rw, 0, ROWS_ATTR) || RW_OTHER(lock)(&f->rw, &f->block, URSA_NOW) ||
        ursa_oblig_disown(&f->block.ob)) {
        free(f);
        return NULL;
    }
    return f;
}

static const char *RW(grant)(void *p)
{
    RW(fx_t) *f = p;
    CHECK_EQ(ursa_oblig_adopt(&f->block.ob), 0);
    CHECK_EQ(RW_OTHER(unlock)(&f->block), 0);
    return NULL;
}

static const char *RW(destroy)(void *p)
{
    RW(fx_t) *f = p;
    if (f->block.rw)
        CHECK_OK(RW(grant)(f));
    CHECK_EQ(ursa_rwlock_destroy(&f->rw), 0);
    free(f);
    return NULL;
}

static int RW(wait)(void *p, int who, void *hold, ursa_time_t deadline)
{
    RW(fx_t) *f = p;
    (void)who;
    RW(line) = __LINE__; return RW_API(lock)(&f->rw, hold, deadline);
}

static int RW(start)(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return RW_API(lock_start)(&((RW(fx_t) *)p)->rw, w, k);
}

static int RW(finish)(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return RW_API(lock_finish)(&((RW(fx_t) *)p)->rw, w, hold);
}

static const char *RW(release)(void *p, void *hold)
{
    (void)p;
    CHECK_EQ(RW_API(unlock)(hold), 0);
    return NULL;
}

static bool RW(holds)(const void *hold)
{
    return ((const RW_API(guard_t) *)hold)->rw != NULL;
}

static int RW(queued)(void *p)
{
    return (int)peek_sema_len(&((RW(fx_t) *)p)->rw.sema);
}

static const char *RW(unchanged)(void *p)
{
    RW(fx_t) *f = p;
    CHECK(ursa_rwlock_is_write_locked(&f->rw) == !WRITE_SIDE); /* the block is a writer */
    CHECK(f->block.rw == &f->rw);
    CHECK_EQ(ursa_rwlock_readers(&f->rw), WRITE_SIDE); /* the block is a reader */
    return NULL;
}

static int RW(take)(void *p)
{
    RW(fx_t) *f = p;
    RW_API(guard_t) g = {0};
    int rc = RW_API(lock)(&f->rw, &g, URSA_NOW);
#if WRITE_SIDE
    /* A writer that ended holding the lock poisons it, like a mutex. */
    if (rc == -EOWNERDEAD)
        rc = ursa_rwlock_consistent(&f->rw);
#endif
    if (g.rw && RW_API(unlock)(&g))
        return -EIO;
    return contract_tried(rc);
}

static const contract_row_t RW_EXPAND3(contract, rwlock, SIDE) = {
    .name = ROWS_NAME("rwlock_" RW_STR(SIDE)),
    .checks = CONTRACT_WAIT_CHECKS | CONTRACT_LEAK,
#if WRITE_SIDE
    .kind = CONTRACT_RETURNED,
    .exclusive = true,
#else
    .kind = CONTRACT_SHARED, /* the writer gone, every reader is in */
#endif
    .hold_kind = "rwlock " RW_STR(SIDE) " guard",
    .line = &RW(line),
    .make = RW(make),
    .destroy = RW(destroy),
    .grant = RW(grant),
    .wait = RW(wait),
    .start = RW(start),
    .finish = RW(finish),
    .release = RW(release),
    .holds = RW(holds),
    .queued = RW(queued),
    .unchanged = RW(unchanged),
    .take = RW(take),
};

#undef RW_STR
#undef RW_STR_
#undef RW_OTHER
#undef RW_API
#undef RW
#undef RW_EXPAND3
#undef RW_PASTE3
