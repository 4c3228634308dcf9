/* A resource factory for the pool tests: every resource is a malloc'd
 * record (so ASan sees a double destroy or a leak), and the factory counts
 * what happened to them (creates, destroys per reason from the event
 * callback, checks, resets) and can be told to be slow or to fail. A
 * resource's `held` flag catches an item handed to two callers at once.
 * Include after support.h and task_checks.h. */
#ifndef URSA_TEST_POOL_FIXTURE_H
#define URSA_TEST_POOL_FIXTURE_H

#include <stdatomic.h>
#include <stdlib.h>

typedef struct res {
    int id;
    atomic_int held; /* 1 while a caller has it (set by the tests) */
    atomic_int bad;  /* its health check fails */
} res_t;

#define FAC_TIMES 64

typedef struct fac {
    atomic_int creates, create_calls, destroys, checks, resets, live;
    atomic_int destroyed[URSA_POOL_REASONS]; /* from the event callback */
    atomic_int events_created, events_failed;
    ursa_time_t create_delay; /* each create sleeps this long (ursa_sleep_for) */
    atomic_int fail;          /* > 0: fail that many creates; < 0: fail all */
    int fail_code;            /* what they fail with (default -ECONNREFUSED) */
    bool reset_fails;
    ursa_time_t call_at[FAC_TIMES]; /* when each create was called */
    atomic_int max_live;
} fac_t;

static __attribute__((unused)) void fac_init(fac_t *f)
{
    memset(f, 0, sizeof *f);
    f->fail_code = -ECONNREFUSED;
}

static __attribute__((unused)) int fac_create(void *ctx, void **out)
{
    fac_t *f = ctx;
    int n = atomic_fetch_add(&f->create_calls, 1);
    if (n < FAC_TIMES)
        f->call_at[n] = ursa_now();
    if (f->create_delay) {
        int rc = ursa_sleep_for(f->create_delay);
        if (rc)
            return rc;
    }
    int fail = atomic_load(&f->fail);
    if (fail < 0 || (fail > 0 && atomic_fetch_sub(&f->fail, 1) > 0))
        return f->fail_code;
    res_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->id = atomic_fetch_add(&f->creates, 1) + 1;
    int live = atomic_fetch_add(&f->live, 1) + 1;
    int max = atomic_load(&f->max_live);
    while (live > max && !atomic_compare_exchange_weak(&f->max_live, &max, live))
        ;
    *out = r;
    return 0;
}

static __attribute__((unused)) void fac_destroy(void *ctx, void *res)
{
    fac_t *f = ctx;
    res_t *r = res;
    if (atomic_load(&r->held))
        abort(); /* destroyed while a caller holds it */
    atomic_fetch_add(&f->destroys, 1);
    atomic_fetch_sub(&f->live, 1);
    free(r);
}

static __attribute__((unused)) int fac_check(void *ctx, void *res)
{
    fac_t *f = ctx;
    atomic_fetch_add(&f->checks, 1);
    return atomic_load(&((res_t *)res)->bad) ? -EIO : 0;
}

static __attribute__((unused)) int fac_reset(void *ctx, void *res)
{
    fac_t *f = ctx;
    (void)res;
    atomic_fetch_add(&f->resets, 1);
    return f->reset_fails ? -EIO : 0;
}

static __attribute__((unused)) void fac_event(void *ctx, const ursa_pool_event_t *ev)
{
    fac_t *f = ctx;
    if (ev->kind == URSA_POOL_CREATED)
        atomic_fetch_add(&f->events_created, 1);
    else if (ev->kind == URSA_POOL_CREATE_FAILED)
        atomic_fetch_add(&f->events_failed, 1);
    else
        atomic_fetch_add(&f->destroyed[ev->reason], 1);
}

/* A configuration on f: create, destroy, check, the event callback. */
static __attribute__((unused)) ursa_pool_config_t fac_config(fac_t *f, uint32_t max_size, uint32_t min_idle)
{
    ursa_pool_config_t c = {0};
    c.factory = (ursa_pool_factory_t){fac_create, fac_destroy, fac_check, NULL, f};
    c.max_size = max_size;
    c.min_idle = min_idle;
    c.on_event = fac_event;
    c.event_ctx = f;
    return c;
}

/* The common start of a pool test: a fresh factory f and a pool on
 * fac_config(f, max_size, min_idle); NULL if ursa_pool_new failed. */
static __attribute__((unused)) ursa_pool_t *fac_pool(fac_t *f, uint32_t max_size, uint32_t min_idle)
{
    fac_init(f);
    ursa_pool_config_t c = fac_config(f, max_size, min_idle);
    ursa_pool_t *p;
    return ursa_pool_new(&p, &c) == 0 ? p : NULL;
}

/* fac_pool, warmed up: with URSA_POOL_WARMUP_REQUIRE_MIN its min_idle
 * items are there when ursa_pool_new returns. */
static __attribute__((unused)) ursa_pool_t *fac_pool_warm(fac_t *f, uint32_t max_size, uint32_t min_idle)
{
    fac_init(f);
    ursa_pool_config_t c = fac_config(f, max_size, min_idle);
    c.warmup = URSA_POOL_WARMUP_REQUIRE_MIN;
    ursa_pool_t *p;
    return ursa_pool_new(&p, &c) == 0 ? p : NULL;
}

/* Marks a freshly acquired item's resource held; NULL, or a message if
 * another caller holds it too. */
static __attribute__((unused)) const char *hold_res(const ursa_pool_item_t *it)
{
    res_t *r = it->res;
    int was = 0;
    if (!r || !atomic_compare_exchange_strong(&r->held, &was, 1))
        return "an item was handed to two callers at once";
    return NULL;
}

/* Clears the mark (call before returning the item). */
static __attribute__((unused)) void unhold_res(const ursa_pool_item_t *it)
{
    atomic_store(&((res_t *)it->res)->held, 0);
}

/* In a task: waits (yields, then sleeps) until n resources were destroyed
 * for `reason`; false after test_hang_guard(). */
static __attribute__((unused)) bool wait_destroyed(fac_t *f, ursa_pool_reason_t reason, int n)
{
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    for (unsigned long i = 0; atomic_load(&f->destroyed[reason]) < n; i++)
        if (!settle_loop(i, give_up))
            return false;
    return atomic_load(&f->destroyed[reason]) == n;
}

/* A pool stats snapshot (asserts nothing). */
static __attribute__((unused)) ursa_pool_stats_t pstats(ursa_pool_t *p)
{
    ursa_pool_stats_t s;
    if (ursa_pool_stats(p, &s))
        memset(&s, 0, sizeof s);
    return s;
}

/* Closes p, waits for every resource to be destroyed, frees it; then the
 * destroys counted by the pool, the event callback and the factory must
 * agree, and nothing may be left alive. NULL or a message. */
static __attribute__((unused)) const char *fac_finish(fac_t *f, ursa_pool_t *p)
{
    if (ursa_pool_close(p) || ursa_pool_drain(p, URSA_NEVER))
        return "close or drain failed";
    ursa_pool_stats_t s = pstats(p);
    if (ursa_pool_free(p))
        return "ursa_pool_free failed";
    int sum = 0;
    for (int r = 0; r < URSA_POOL_REASONS; r++) {
        if ((int)s.destroyed[r] != atomic_load(&f->destroyed[r]))
            return failf("destroyed[%d]: pool says %llu, events %d", r,
                         (unsigned long long)s.destroyed[r], atomic_load(&f->destroyed[r]));
        sum += (int)s.destroyed[r];
    }
    if (atomic_load(&f->live) != 0)
        return failf("%d resources left alive", atomic_load(&f->live));
    if (sum != atomic_load(&f->destroys))
        return failf("destroy reasons add to %d, %d destroyed", sum, atomic_load(&f->destroys));
    if ((int)s.creates != atomic_load(&f->creates))
        return failf("pool counted %llu creates, factory made %d",
                     (unsigned long long)s.creates, atomic_load(&f->creates));
    return NULL;
}

/* A runtime run by a thread of its own (its root sleeps until stopped),
 * for pools used from the test's plain threads (cfg.rt = h.rt). */
typedef struct host {
    ursa_rt_t *rt;
    pthread_t thread;
    atomic_int stop;
} host_t;

static __attribute__((unused)) void *host_root(void *arg)
{
    host_t *h = arg;
    while (!atomic_load(&h->stop))
        (void)ursa_sleep_for(URSA_MSEC(1));
    return NULL;
}

static __attribute__((unused)) void *host_run(void *arg)
{
    host_t *h = arg;
    if (ursa_rt_block_on(h->rt, host_root, h, NULL))
        abort();
    return NULL;
}

/* Asserts: call on the test's own stack. */
static __attribute__((unused)) void host_start(host_t *h, unsigned workers)
{
    atomic_init(&h->stop, 0);
    assert_int_equal(ursa_rt_new(&h->rt, &(ursa_rt_config_t){.workers = workers}), 0);
    assert_int_equal(pthread_create(&h->thread, NULL, host_run, h), 0);
}

/* Asserts: starts a host of `workers` workers and a fresh factory f; the
 * config fac_config(f, max_size, min_idle) of a pool on the host's
 * runtime (plain threads use it while the host runs the runtime). */
static __attribute__((unused)) ursa_pool_config_t host_pool_config(host_t *h, unsigned workers, fac_t *f,
                                                                  uint32_t max_size, uint32_t min_idle)
{
    host_start(h, workers);
    fac_init(f);
    ursa_pool_config_t c = fac_config(f, max_size, min_idle);
    c.rt = h->rt;
    return c;
}

static __attribute__((unused)) void host_stop(host_t *h)
{
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    ursa_rt_free(h->rt);
}

#endif
