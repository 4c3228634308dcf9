/* Pool stress: tasks on two workers and plain threads acquire with every
 * kind of deadline, return, break and detach items, get cancelled while
 * they wait, while creates fail now and then and items expire, fail checks
 * and time out. No item is ever held by two callers, no more than
 * max_size are in use at once, and at the end every resource made was
 * destroyed once, for a counted reason. Run it also confined to one CPU
 * (taskset -c 0). */
#include "support.h"

#include "task_checks.h"
#include "pool_fixture.h"

#define MAX_SIZE 3

typedef struct stress {
    ursa_pool_t *pool;
    fac_t *fac;
    atomic_int in_use, max_in_use;
    atomic_long acquired, failed;
    atomic_int threads_done; /* plain-thread users finished */
    long iters;
    bool check_on_acquire;
} stress_t;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static const char *use(stress_t *st, ursa_pool_item_t *it, uint64_t r)
{
    CHECK_OK(hold_res(it));
    int n = atomic_fetch_add(&st->in_use, 1) + 1;
    int max = atomic_load(&st->max_in_use);
    while (n > max && !atomic_compare_exchange_weak(&st->max_in_use, &max, n))
        ;
    if (r % 4 == 0)
        (void)ursa_yield();
    if (r % 64 == 1)
        atomic_store(&((res_t *)it->res)->bad, 1); /* its next check fails */
    atomic_fetch_sub(&st->in_use, 1);
    unhold_res(it);
    int rc;
    void *kept = NULL;
    switch (r % 16) {
    case 3: rc = ursa_pool_broken(st->pool, it); break;
    case 5:
        rc = ursa_pool_detach(st->pool, it, &kept);
        if (rc == 0) {
            fac_destroy(st->fac, kept); /* ours: not a pool destroy */
            atomic_fetch_sub(&st->fac->destroys, 1);
        }
        break;
    default: rc = ursa_pool_return(st->pool, it); break;
    }
    CHECK_EQ(rc, 0);
    atomic_fetch_add(&st->acquired, 1);
    return NULL;
}

/* One caller's loop (a task or a plain thread). */
static void *user(void *arg)
{
    stress_t *st = arg;
    uint64_t x = (uint64_t)(uintptr_t)&x | 1;
    for (long i = 0; i < st->iters; i++) {
        uint64_t r = next_rand(&x);
        ursa_time_t deadline = r % 3 == 0 ? URSA_NOW
                               : r % 3 == 1 ? ursa_deadline_in(URSA_USEC(r % 200))
                                            : URSA_NEVER;
        ursa_pool_item_t it = {0};
        int rc = ursa_pool_acquire(st->pool, &it, deadline);
        if (rc == 0) {
            CHECK_OK(use(st, &it, r >> 8));
            continue;
        }
        CHECK(rc == -EAGAIN || rc == -ETIMEDOUT);
        CHECK(it.pool == NULL);
        atomic_fetch_add(&st->failed, 1);
    }
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

/* A task that waits forever and is cancelled at some point. */
static void *victim(void *arg)
{
    stress_t *st = arg;
    ursa_pool_item_t it = {0};
    int rc = ursa_pool_acquire(st->pool, &it, URSA_NEVER);
    if (rc == 0)
        return (void *)use(st, &it, 0);
    CHECK_EQ(rc, -ECANCELED);
    return NULL;
}

static void *canceller(void *arg)
{
    stress_t *st = arg;
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < st->iters / 8; i++) {
        ursa_task_t *t;
        CHECK_EQ(ursa_spawn(&t, victim, st, NULL), 0);
        for (uint64_t k = next_rand(&x) % 6; k; k--)
            (void)ursa_yield();
        CHECK_EQ(ursa_task_cancel(t), 0);
        void *r;
        CHECK_EQ(ursa_task_join(t, &r, URSA_NEVER), 0);
        CHECK_OK(r);
    }
    return NULL;
}

static void *thread_user(void *arg)
{
    stress_t *st = arg;
    void *r = user(st);
    atomic_fetch_add(&st->threads_done, 1);
    return r;
}

static void *stress_root(void *arg)
{
    stress_t *st = arg;
    ursa_pool_config_t c = fac_config(st->fac, MAX_SIZE, 1);
    c.max_connecting = 2;
    c.max_lifetime = URSA_MSEC(3);
    c.idle_timeout = URSA_MSEC(2);
    c.check_interval = URSA_MSEC(1);
    c.check_on_acquire = st->check_on_acquire;
    c.backoff_min = URSA_USEC(100);
    c.backoff_max = URSA_MSEC(1);
    CHECK_EQ(ursa_pool_new(&st->pool, &c), 0);
    atomic_store(&st->fac->fail, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thread_user, st), 0);
    ursa_task_t *t[7];
    for (int i = 0; i < 6; i++)
        CHECK_EQ(ursa_spawn(&t[i], user, st, &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}), 0);
    CHECK_EQ(ursa_spawn(&t[6], canceller, st, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    /* Creates fail now and then while the others run. */
    for (int i = 0; i < 20; i++) {
        (void)ursa_sleep_for(URSA_USEC(500));
        atomic_store(&st->fac->fail, 2);
    }
    const char *msg = join_tasks(t, 7);
    /* The pool's tasks may need this worker to serve the threads'
     * acquires: sleep on it, never block it in pthread_join early. */
    while (atomic_load(&st->threads_done) < 2)
        (void)ursa_sleep_for(URSA_USEC(200));
    void *r = join_threads(th, 2);
    msg = msg ? msg : r;
    CHECK_OK(msg);
    atomic_store(&st->fac->fail, 0);
    CHECK(atomic_load(&st->max_in_use) <= MAX_SIZE);
    CHECK(atomic_load(&st->acquired) > 0);
    ursa_pool_stats_t s = pstats(st->pool);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.waiters, 0);
    CHECK(s.size <= MAX_SIZE);
    CHECK_OK(fac_finish(st->fac, st->pool));
    return NULL;
}

static void run_stress(bool check_on_acquire)
{
    fac_t f;
    fac_init(&f);
    stress_t st = {.fac = &f, .iters = test_scale(4000), .check_on_acquire = check_on_acquire};
    ASSERT_OK(test_run(2, stress_root, &st));
}

static void test_pool_stress_tasks_threads_and_cancels_lose_nothing(void **state)
{
    (void)state;
    run_stress(false);
}

static void test_pool_stress_with_checks_on_acquire_loses_nothing(void **state)
{
    (void)state;
    run_stress(true);
}

TEST_MAIN(cmocka_unit_test(test_pool_stress_tasks_threads_and_cancels_lose_nothing),
          cmocka_unit_test(test_pool_stress_with_checks_on_acquire_loses_nothing))
