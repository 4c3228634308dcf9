/* The idle lists' bias (src/sync/pool/pool.h): a thread takes and returns
 * items on its own idle list with plain loads and stores, and whoever else
 * takes an idle item (a first waiter's scan, a shrink, close, drain, the
 * housekeeper's checks) revokes the bias first. Owners on both workers and
 * on plain threads acquire and return as fast as they can while a revoker
 * resizes the pool down and up and drains with URSA_NOW, and the
 * housekeeper checks idle items every tick: no item is ever handed to two
 * callers, none is lost (every size's worth can be acquired at the end,
 * and every resource made is destroyed once, for a counted reason). Over
 * seeds in deterministic mode, then for real on two workers with plain
 * threads, also with more threads than the pool has idle lists. CMake runs
 * it a second time without membarrier (URSA_POOL_NO_MEMBARRIER: fenced
 * windows). */
#include "support.h"

#include "task_checks.h"
#include "pool_fixture.h"

#define MAX_SIZE 4

typedef struct bias {
    ursa_pool_t *pool;
    fac_t fac;
    long iters;
    int tasks, threads;     /* owner tasks, owner plain threads */
    atomic_int owners_done; /* owners finished */
    atomic_long acquired;
} bias_t;

/* One owner: acquire, mark, (a task sometimes yields while holding),
 * unmark, return. */
static void *owner(void *arg)
{
    bias_t *b = arg;
    bool task = ursa_task_self() != NULL;
    for (long i = 0; i < b->iters; i++) {
        ursa_pool_item_t it = {0};
        int rc = ursa_pool_acquire(b->pool, &it, (i & 7) == 7 ? URSA_NOW : URSA_NEVER);
        if (rc == -EAGAIN && (i & 7) == 7)
            continue;
        CHECK_EQ(rc, 0);
        CHECK_OK(hold_res(&it));
        if (task && (i & 15) == 3)
            (void)ursa_yield();
        unhold_res(&it);
        CHECK_EQ(ursa_pool_return(b->pool, &it), 0);
        atomic_fetch_add(&b->acquired, 1);
    }
    atomic_fetch_add(&b->owners_done, 1);
    return NULL;
}

/* Revokes over and over until the owners are done: shrinking takes idle
 * items off the owners' lists, a drain's look revokes too. */
static void *revoker(void *arg)
{
    bias_t *b = arg;
    for (unsigned i = 0; atomic_load(&b->owners_done) < b->tasks + b->threads; i++) {
        CHECK_EQ(ursa_pool_resize(b->pool, i % 3 == 0 ? 2 : MAX_SIZE, 0), 0);
        int rc = ursa_pool_drain(b->pool, URSA_NOW);
        CHECK(rc == 0 || rc == -EAGAIN);
        (void)ursa_yield();
    }
    CHECK_EQ(ursa_pool_resize(b->pool, MAX_SIZE, 0), 0);
    return NULL;
}

/* Nothing was lost: MAX_SIZE items can be held at once, all distinct. */
static const char *all_there(bias_t *b)
{
    ursa_pool_item_t it[MAX_SIZE];
    memset(it, 0, sizeof it);
    for (int i = 0; i < MAX_SIZE; i++) {
        CHECK_EQ(ursa_pool_acquire(b->pool, &it[i], ursa_deadline_in(URSA_SEC(10))), 0);
        CHECK_OK(hold_res(&it[i]));
    }
    for (int i = 0; i < MAX_SIZE; i++) {
        unhold_res(&it[i]);
        CHECK_EQ(ursa_pool_return(b->pool, &it[i]), 0);
    }
    return NULL;
}

static void *owner_thread(void *arg)
{
    return owner(arg);
}

static void *bias_root(void *arg)
{
    bias_t *b = arg;
    fac_init(&b->fac);
    ursa_pool_config_t c = fac_config(&b->fac, MAX_SIZE, 1);
    c.check_interval = URSA_USEC(300); /* the housekeeper revokes too */
    CHECK_EQ(ursa_pool_new(&b->pool, &c), 0);
    pthread_t th[32];
    CHECK(b->threads <= 32);
    for (int i = 0; i < b->threads; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, owner_thread, b), 0);
    ursa_task_t *t[8];
    CHECK(b->tasks < 8);
    for (int i = 0; i < b->tasks; i++)
        CHECK_EQ(ursa_spawn(&t[i], owner, b, NULL), 0);
    CHECK_EQ(ursa_spawn(&t[b->tasks], revoker, b, NULL), 0);
    const char *msg = join_tasks(t, b->tasks + 1);
    /* The pool's tasks may need this worker to serve the threads'
     * acquires: sleep on it, never block it in pthread_join early. */
    while (atomic_load(&b->owners_done) < b->tasks + b->threads)
        (void)ursa_sleep_for(URSA_USEC(200));
    void *r = join_threads(th, b->threads);
    msg = msg ? msg : r;
    CHECK_OK(msg);
    CHECK(atomic_load(&b->acquired) > 0);
    CHECK_OK(all_there(b));
    ursa_pool_stats_t s = pstats(b->pool);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.waiters, 0);
    CHECK(s.size <= MAX_SIZE);
    CHECK_OK(fac_finish(&b->fac, b->pool));
    return NULL;
}

static void *seeded_body(void *arg)
{
    (void)arg;
    bias_t b = {.iters = 60, .tasks = 3};
    return bias_root(&b);
}

static void test_pool_bias_revoked_while_owners_run_over_seeds(void **state)
{
    (void)state;
    test_explore_workers(2, seeded_body, NULL);
}

static void run_on_workers(int tasks, int threads, long iters)
{
    bias_t b = {.iters = test_scale(iters), .tasks = tasks, .threads = threads};
    ASSERT_OK(test_run(2, bias_root, &b));
}

static void test_pool_bias_revoked_while_tasks_and_threads_run(void **state)
{
    (void)state;
    run_on_workers(4, 2, 20000);
}

/* 20 threads and 4 tasks: more than the pool's 16 idle lists, so some
 * threads go without one (their returns settle under the lock). */
static void test_pool_bias_more_threads_than_idle_lists(void **state)
{
    (void)state;
    run_on_workers(4, 20, 2000);
}

TEST_MAIN(cmocka_unit_test(test_pool_bias_revoked_while_owners_run_over_seeds),
          cmocka_unit_test(test_pool_bias_revoked_while_tasks_and_threads_run),
          cmocka_unit_test(test_pool_bias_more_threads_than_idle_lists))
