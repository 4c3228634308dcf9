/* Contract row for src/sync/pool/: acquiring a pooled item. The fixture is
 * a pool of one item (max_size 1) whose only item is held by the fixture
 * itself, taken and disowned at make(), so that grant() may adopt and
 * return it from any thread. The pool's own tasks run in the runtime that
 * calls make(), so the row needs a task: the plain-thread checks (and the
 * leak check, which makes its fixture on a plain thread) are left out.
 * The pool's raw waits, a leaked item (returned as broken, not released)
 * and the plain-thread contexts are covered in tests/sync/test_pool*.c. */
#include "support.h"

#include "contract.h"
#include "task_checks.h"

typedef struct pool_fx {
    ursa_pool_t *pool;
    ursa_pool_item_t block;
    int res; /* the one resource */
} pool_fx_t;

static int pool_fx_create(void *ctx, void **res)
{
    *res = ctx;
    return 0;
}

static void pool_fx_destroy(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
}

static void *pool_make(void)
{
    pool_fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    ursa_pool_config_t c = {0};
    c.factory = (ursa_pool_factory_t){pool_fx_create, pool_fx_destroy, NULL, NULL, &f->res};
    c.max_size = 1;
    if (ursa_pool_new(&f->pool, &c)) {
        free(f);
        return NULL;
    }
    if (ursa_pool_acquire(f->pool, &f->block, URSA_NEVER) || ursa_oblig_disown(&f->block.ob)) {
        (void)ursa_pool_free(f->pool);
        free(f);
        return NULL;
    }
    return f;
}

static const char *pool_grant(void *p)
{
    pool_fx_t *f = p;
    CHECK_EQ(ursa_oblig_adopt(&f->block.ob), 0);
    CHECK_EQ(ursa_pool_return(f->pool, &f->block), 0);
    return NULL;
}

static const char *pool_destroy(void *p)
{
    pool_fx_t *f = p;
    if (f->block.pool)
        CHECK_OK(pool_grant(f));
    ursa_pool_stats_t s;
    CHECK_EQ(ursa_pool_stats(f->pool, &s), 0);
    CHECK_EQ(s.creates, 1); /* one item, never replaced */
    CHECK_EQ(ursa_pool_free(f->pool), 0);
    free(f);
    return NULL;
}

static int pool_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    return ursa_pool_acquire(((pool_fx_t *)p)->pool, hold, deadline);
}

static int pool_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_pool_acquire_start(((pool_fx_t *)p)->pool, w, k);
}

static int pool_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_pool_acquire_finish(((pool_fx_t *)p)->pool, w, hold);
}

static const char *pool_release(void *p, void *hold)
{
    pool_fx_t *f = p;
    ursa_pool_item_t *it = hold;
    CHECK(it->res == &f->res);
    CHECK_EQ(ursa_pool_return(f->pool, it), 0);
    return NULL;
}

static bool pool_holds(const void *hold)
{
    return ((const ursa_pool_item_t *)hold)->pool != NULL;
}

static int pool_queued(void *p)
{
    ursa_pool_stats_t s;
    if (ursa_pool_stats(((pool_fx_t *)p)->pool, &s))
        return -1;
    return (int)s.waiters;
}

static const char *pool_unchanged(void *p)
{
    pool_fx_t *f = p;
    ursa_pool_stats_t s;
    CHECK_EQ(ursa_pool_stats(f->pool, &s), 0);
    CHECK_EQ(s.size, 1);
    CHECK_EQ(s.in_use, 1);
    CHECK_EQ(s.idle, 0);
    CHECK(f->block.pool == f->pool); /* still the block's */
    return NULL;
}

static int pool_take(void *p)
{
    pool_fx_t *f = p;
    ursa_pool_item_t it = {0};
    int rc = ursa_pool_acquire(f->pool, &it, URSA_NOW);
    if (it.pool && ursa_pool_return(f->pool, &it))
        return -EIO;
    return contract_tried(rc);
}

static const contract_row_t contract_pool = {
    .name = "pool",
    .checks = CONTRACT_WAIT_CHECKS_NO_RAW,
    .kind = CONTRACT_RETURNED,
    .exclusive = true,
    .needs_task = true,
    .hold_kind = "pooled item",
    .make = pool_make,
    .destroy = pool_destroy,
    .grant = pool_grant,
    .wait = pool_wait,
    .start = pool_start,
    .finish = pool_finish,
    .release = pool_release,
    .holds = pool_holds,
    .queued = pool_queued,
    .unchanged = pool_unchanged,
    .take = pool_take,
};

/* The rows of test_contract_pool. */
const contract_row_t *const contract_rows[] = {
    &contract_pool,
    NULL,
};
