/* Pool workloads: acquire/return uncontended, eight tasks on two workers
 * sharing four items, and the spike of 50 demands against a slow create
 * (a count: how many resources were created). The stub factory does
 * nothing but count its creates (and sleep, for the spike). */
#include <stdatomic.h>

#include "bench.h"

typedef struct stub {
    atomic_uint creates; /* create calls started */
    ursa_time_t delay;   /* how long a create takes */
} stub_t;

static int stub_create(void *ctx, void **res)
{
    stub_t *st = ctx;
    atomic_fetch_add(&st->creates, 1);
    if (st->delay)
        (void)ursa_sleep_for(st->delay);
    *res = st;
    return 0;
}

static void stub_destroy(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
}

/* A pool of the stub's items; with min_idle items made before it returns. */
static ursa_pool_t *stub_pool(stub_t *st, uint32_t max_size, uint32_t min_idle)
{
    ursa_pool_config_t cfg = {0};
    cfg.factory = (ursa_pool_factory_t){stub_create, stub_destroy, NULL, NULL, st};
    cfg.max_size = max_size;
    cfg.min_idle = min_idle;
    cfg.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    ursa_pool_t *p;
    CHECK(ursa_pool_new(&p, &cfg) == 0);
    return p;
}

static void *pool_uncontended(void *arg)
{
    uint64_t n = scaled(10000000);
    stub_t st = {0};
    ursa_pool_t *p = stub_pool(&st, 4, 4);
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_pool_item_t it = {0};
        CHECK(ursa_pool_acquire(p, &it, URSA_NEVER) == 0);
        CHECK(ursa_pool_return(p, &it) == 0);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    ursa_pool_stats_t s;
    CHECK(ursa_pool_stats(p, &s) == 0 && s.size == 4 && s.acquires == n && st.creates == 4);
    CHECK(ursa_pool_free(p) == 0);
    return NULL;
}

/* ---- mt2_pool_contended ---- */
typedef struct contender {
    ursa_pool_t *pool;
    uint64_t iters;
} contender_t;

static void *pool_user(void *arg)
{
    contender_t *c = arg;
    for (uint64_t i = 0; i < c->iters; i++) {
        ursa_pool_item_t it = {0};
        CHECK(ursa_pool_acquire(c->pool, &it, URSA_NEVER) == 0);
        ursa_time_t t = mono(); /* 100 ns of work */
        while (mono() - t < 100)
            ;
        CHECK(ursa_pool_return(c->pool, &it) == 0);
    }
    return NULL;
}

static void *mt2_pool_contended(void *arg)
{
    stub_t st = {0};
    contender_t c = {stub_pool(&st, 4, 4), scaled(1000000)};
    ursa_task_t *t[8];
    ursa_time_t t0 = mono();
    for (int i = 0; i < 8; i++)
        CHECK(ursa_spawn(&t[i], pool_user, &c, NULL) == 0);
    for (int i = 0; i < 8; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    report(bench_row(arg)->name, mono() - t0, 8 * c.iters);
    ursa_pool_stats_t s;
    CHECK(ursa_pool_stats(c.pool, &s) == 0 && s.size == 4 && s.acquires == 8 * c.iters);
    CHECK(ursa_pool_free(c.pool) == 0);
    return NULL;
}

/* ---- pool_spike_creates ---- */
typedef struct spike {
    ursa_pool_t *pool;
    ursa_barrier_t start;
} spike_t;

static void *spike_user(void *arg)
{
    spike_t *sp = arg;
    bool leader;
    CHECK(ursa_barrier_wait(&sp->start, &leader, URSA_NEVER) == 0);
    ursa_pool_item_t it = {0};
    CHECK(ursa_pool_acquire(sp->pool, &it, URSA_NEVER) == 0);
    CHECK(ursa_sleep_for(URSA_MSEC(10)) == 0);
    CHECK(ursa_pool_return(sp->pool, &it) == 0);
    return NULL;
}

static void *pool_spike_creates(void *arg)
{
    stub_t st = {.delay = URSA_MSEC(150)};
    spike_t sp = {.pool = stub_pool(&st, 50, 0)};
    CHECK(ursa_barrier_init(&sp.start, 50) == 0);
    ursa_task_t *t[50];
    for (int i = 0; i < 50; i++)
        CHECK(ursa_spawn(&t[i], spike_user, &sp, NULL) == 0);
    for (int i = 0; i < 50; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    CHECK(ursa_sleep_for(URSA_MSEC(300)) == 0); /* a create in flight counts too */
    unsigned created = atomic_load(&st.creates);
    ursa_pool_stats_t s;
    CHECK(ursa_pool_stats(sp.pool, &s) == 0 && s.acquires == 50);
    fprintf(stderr, "ursa_bench: %s: %u created, %u in the pool at the end\n",
            bench_row(arg)->name, created, s.size);
    printf("%s %u\n", bench_row(arg)->name, created);
    fflush(stdout);
    CHECK(ursa_pool_free(sp.pool) == 0);
    CHECK(ursa_barrier_destroy(&sp.start) == 0);
    return NULL;
}

const bench_workload_t bench_pool[] = {
    {"pool_uncontended", pool_uncontended, {.workers = 1}, 0},
    {"mt2_pool_contended", mt2_pool_contended, {.workers = 2}, 0},
    {"pool_spike_creates", pool_spike_creates, {.workers = 1}, 0},
    {0},
};
