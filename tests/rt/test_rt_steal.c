/* Placement and work stealing across workers: LOCAL and fixed tasks run
 * where they were put and never move; unstarted tasks of default placement
 * are taken by idle workers (deterministic mode with several workers over
 * many seeds, and threads); spawns from plain threads go through the
 * inject queue. Tasks return NULL or a message (CHECK); the test asserts. */
#include "support.h"

#include <pthread.h>

#include "rt_checks.h"
#include "task_checks.h"

/* ================= placement ================= */

typedef struct placed {
    int want;        /* the worker it must run on, or -1: its first one */
    _Atomic int bad; /* a wait resumed it elsewhere */
    ursa_sem_t *sem;
} placed_t;

/* Waits many times; a task that is not migratable never changes worker. */
static void *stay_put(void *arg)
{
    placed_t *p = arg;
    int first = ursa_worker_index();
    if (p->want >= 0 && first != p->want)
        atomic_fetch_add(&p->bad, 1);
    for (int i = 0; i < 200; i++) {
        ursa_sem_permit_t permit = {0};
        if (ursa_sem_acquire(p->sem, 1, &permit, URSA_NEVER) != 0)
            return "acquire failed";
        (void)ursa_yield();
        if (ursa_sem_release(&permit) != 0)
            return "release failed";
        (void)ursa_sleep_for(URSA_USEC(i % 3));
        if (ursa_worker_index() != first)
            atomic_fetch_add(&p->bad, 1);
    }
    return NULL;
}

static void *placement_root(void *arg)
{
    (void)arg;
    ursa_sem_t sem;
    ursa_sem_init(&sem, 2);
    enum { N = 12 };
    placed_t p[N];
    ursa_task_t *t[N];
    for (int i = 0; i < N; i++) {
        p[i] = (placed_t){.want = -1, .sem = &sem};
        ursa_spawn_opts_t o = {0}; /* default: any worker until it starts */
        if (i % 3 == 1) {
            o = (ursa_spawn_opts_t){.placement = URSA_PLACE_LOCAL};
            p[i].want = ursa_worker_index();
        } else if (i % 3 == 2) {
            o = (ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)};
            p[i].want = i % 2;
        }
        CHECK_EQ(ursa_spawn(&t[i], stay_put, &p[i], &o), 0);
    }
    for (int i = 0; i < N; i++) {
        CHECK_OK(join_task(t[i]));
        CHECK_EQ(atomic_load(&p[i].bad), 0);
    }
    CHECK_EQ(ursa_sem_available(&sem), 2);
    return NULL;
}

/* LOCAL and fixed tasks run where they were put; no task that is not
 * migratable is ever resumed on another worker. Stress and deterministic. */
static void test_rt_steal_local_and_fixed_tasks_run_where_put_and_never_move(void **state)
{
    (void)state;
    for (long r = 0; r < test_scale(20); r++)
        ASSERT_OK(test_run(2, placement_root, NULL));
    test_explore_workers(2, placement_root, NULL);
}

/* ================= stealing unstarted tasks ================= */

static _Atomic long ran_on[4];

static void *forked(void *arg)
{
    ursa_sem_t *sem = arg;
    atomic_fetch_add(&ran_on[ursa_worker_index()], 1);
    ursa_sem_permit_t p = {0};
    if (ursa_sem_acquire(sem, 1, &p, URSA_NEVER) != 0)
        return R(-1);
    (void)ursa_yield();
    if (ursa_sem_release(&p) != 0)
        return R(-2);
    return NULL;
}

/* The root spawns batches of tasks with default placement and joins them;
 * some spawn children of their own. */
static void *fork_join(void *arg)
{
    long rounds = I(arg);
    ursa_sem_t sem;
    ursa_sem_init(&sem, 3);
    for (long r = 0; r < rounds; r++) {
        enum { K = 7 };
        ursa_task_t *t[K];
        for (int k = 0; k < K; k++)
            CHECK_EQ(ursa_spawn(&t[k], forked, &sem, NULL), 0);
        for (int k = 0; k < K; k++)
            CHECK_OK(join_task(t[k]));
    }
    CHECK_EQ(ursa_sem_available(&sem), 3);
    return NULL;
}

static void *fork_join_scenario(void *arg)
{
    (void)arg;
    return fork_join(R(3));
}

/* Deterministic, 2 and 3 workers: everything is joined, nothing is lost,
 * and idle workers did take unstarted tasks (the seeds draw idle workers
 * while the root's queue holds some). */
static void test_rt_steal_idle_workers_take_unstarted_tasks_under_many_seeds(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        atomic_store(&ran_on[i], 0);
    test_explore_workers(2, fork_join_scenario, NULL);
    test_explore_workers(3, fork_join_scenario, NULL);
    assert_true(atomic_load(&ran_on[1]) > 0);
    assert_true(atomic_load(&ran_on[2]) > 0);
}

/* Threads: 2 workers, many batches; and the same confined to one CPU. */
static void test_rt_steal_fork_join_loses_nothing_on_two_threads(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        atomic_store(&ran_on[i], 0);
    ASSERT_OK(test_run(2, fork_join, R(test_scale(3000))));
    print_message("fork-join: %ld tasks ran on worker 0, %ld on worker 1\n",
                  atomic_load(&ran_on[0]), atomic_load(&ran_on[1]));
}

/* ================= spawns from plain threads ================= */

typedef struct outside {
    ursa_rt_t *rt;
    _Atomic long ran;
    ursa_sem_t done; /* a permit per task that ran (or will never be spawned) */
    long n;
} outside_t;

static void *count_run(void *arg)
{
    outside_t *o = arg;
    atomic_fetch_add(&o->ran, 1);
    (void)ursa_sem_add(&o->done, 1);
    return NULL;
}

static void *outside_spawner(void *arg)
{
    outside_t *o = arg;
    for (long i = 0; i < o->n; i++)
        if (ursa_rt_spawn(o->rt, NULL, count_run, o, &(ursa_spawn_opts_t){.detached = true})) {
            (void)ursa_sem_add(&o->done, (uint64_t)(o->n - i)); /* the root must not wait */
            return "spawn failed";
        }
    return NULL;
}

/* Waits for every task without a deadline: a task lost in the inject queue
 * hangs the test (CTest's timeout reports it); no time is assumed. */
static void *wait_for_outside(void *arg)
{
    outside_t *o = arg;
    ursa_sem_permit_t p = {0};
    CHECK_EQ(ursa_sem_acquire(&o->done, (uint64_t)(2 * o->n), &p, URSA_NEVER), 0);
    CHECK_EQ(ursa_sem_permit_forget(&p), 0);
    return NULL;
}

/* Tasks of default placement spawned from plain threads go to the inject
 * queue; whichever worker is free runs them, each exactly once. */
static void test_rt_steal_spawns_from_plain_threads_run_once_each(void **state)
{
    (void)state;
    outside_t o = {.n = test_scale(5000)};
    ursa_sem_init(&o.done, 0);
    assert_int_equal(ursa_rt_new(&o.rt, &(ursa_rt_config_t){.workers = 2}), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, outside_spawner, &o), 0);
    void *res = NULL;
    assert_int_equal(ursa_rt_block_on(o.rt, wait_for_outside, &o, &res), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
    ASSERT_OK(res);
    ursa_rt_free(o.rt);
    assert_int_equal(atomic_load(&o.ran), 2 * o.n);
}

TEST_MAIN(cmocka_unit_test(test_rt_steal_local_and_fixed_tasks_run_where_put_and_never_move),
          cmocka_unit_test(test_rt_steal_idle_workers_take_unstarted_tasks_under_many_seeds),
          cmocka_unit_test(test_rt_steal_fork_join_loses_nothing_on_two_threads),
          cmocka_unit_test(test_rt_steal_spawns_from_plain_threads_run_once_each))
