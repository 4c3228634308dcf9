/* Hosted workers (`threads` < `workers`): threads of the runtime run
 * several workers each, in turn, worker 0 included. A task stays on its
 * worker's thread across every kind of wait; workers that share a thread
 * still hand each other wakes, spawns, timers and I/O; the root runs on
 * worker 0's thread and block_on joins it; a runtime driven only from
 * plain threads runs its tasks; the stop cancels them all; `threads = 0`
 * shares threads only when the process may use fewer CPUs than workers;
 * a worker of a busy thread that only retires a task still sends the kicks
 * that retiring deferred. */
#include "support.h"

#include <unistd.h>

#include "rt/worker.h" /* white-box: whether a worker sleeps */
#include "task_checks.h"

/* ---- where tasks run ---- */

typedef struct placed {
    pthread_t thread[4]; /* the thread each worker's task ran on */
    int index[4];        /* ursa_worker_index() it saw */
} placed_t;

typedef struct at_worker {
    placed_t *p;
    int worker;
    ursa_mutex_t *m;
    ursa_mpsc_sender_t tx;
} at_worker_t;

/* On worker a->worker: notes its thread, then checks it, and its worker
 * index, after each kind of wait (yield, sleep, a contended lock, a
 * channel send): tasks of workers that share a thread switch straight to
 * one another, each still on its own worker. */
static void *stays_on_its_thread(void *arg)
{
    at_worker_t *a = arg;
    pthread_t me = pthread_self();
    a->p->thread[a->worker] = me;
    a->p->index[a->worker] = ursa_worker_index();
#define STILL_HERE()                                                                     \
    do {                                                                                 \
        CHECK(pthread_equal(pthread_self(), me));                                        \
        CHECK_EQ(ursa_worker_index(), a->worker);                                        \
    } while (0)
    CHECK_EQ(ursa_yield(), 0);
    STILL_HERE();
    CHECK_EQ(ursa_sleep_for(URSA_USEC(100)), 0);
    STILL_HERE();
    ursa_mutex_guard_t g = {0};
    CHECK_EQ(ursa_mutex_lock(a->m, &g, URSA_NEVER), 0);
    CHECK_EQ(ursa_yield(), 0); /* held across a switch: the others queue */
    STILL_HERE();
    ursa_mutex_unlock(&g);
    uint64_t v = (uint64_t)a->worker;
    CHECK_EQ(ursa_mpsc_send(&a->tx, &v, URSA_NEVER), 0);
    STILL_HERE();
    CHECK_EQ(ursa_mpsc_sender_drop(&a->tx), 0);
    return NULL;
#undef STILL_HERE
}

typedef struct shape {
    unsigned workers, threads;
} shape_t;

static void *tasks_keep_their_threads(void *arg)
{
    const shape_t *s = arg;
    CHECK_EQ(ursa_worker_count(), s->workers);
    placed_t p;
    memset(&p, 0, sizeof p);
    ursa_mutex_t m;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK_EQ(ursa_mutex_init(&m), 0);
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), 1, NULL), 0);
    at_worker_t a[4];
    ursa_task_t *t[4];
    for (unsigned i = 0; i < s->workers; i++) {
        a[i] = (at_worker_t){&p, (int)i, &m, {0}};
        CHECK_EQ(ursa_mpsc_sender_clone(&tx, &a[i].tx), 0);
        t[i] = spawn_on((int)i, stays_on_its_thread, &a[i], "placed");
    }
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    uint64_t sum = 0, v;
    for (unsigned i = 0; i < s->workers; i++) {
        CHECK_EQ(ursa_mpsc_recv(&rx, &v, URSA_NEVER), 0);
        sum += v;
    }
    CHECK_EQ(ursa_mpsc_recv(&rx, &v, URSA_NEVER), -EPIPE); /* every sender gone */
    CHECK_OK(join_tasks(t, (int)s->workers));
    CHECK_EQ(sum, s->workers * (s->workers - 1) / 2);
    for (unsigned i = 0; i < s->workers; i++) {
        CHECK_EQ(p.index[i], (int)i);
        /* worker i runs on thread i % threads, and only there */
        for (unsigned j = 0; j < s->workers; j++)
            CHECK_EQ(pthread_equal(p.thread[i], p.thread[j]) != 0,
                     i % s->threads == j % s->threads);
    }
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mutex_destroy(&m), 0);
    return NULL;
}

static void *run_shape(unsigned workers, unsigned threads)
{
    shape_t s = {workers, threads};
    return test_run_cfg_msg(&(ursa_rt_config_t){.workers = workers, .threads = threads},
                            tasks_keep_their_threads, &s);
}

TEST_BODY(test_hosted_tasks_stay_on_their_workers_thread_across_every_wait, run_shape(2, 1))
TEST_BODY(test_hosted_four_workers_on_two_threads, run_shape(4, 2))
TEST_BODY(test_hosted_three_workers_on_two_threads, run_shape(3, 2))

/* The root runs on worker 0's thread, not the caller's. */
static void *note_thread(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    return (void *)(intptr_t)ursa_worker_index();
}

static void test_hosted_root_runs_on_worker0s_thread_and_block_on_joins_it(void **state)
{
    (void)state;
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2, .threads = 1}), 0);
    for (int round = 0; round < 3; round++) { /* successive block_ons */
        pthread_t root = pthread_self();
        void *res = (void *)1;
        assert_int_equal(ursa_rt_block_on(rt, note_thread, &root, &res), 0);
        assert_ptr_equal(res, NULL); /* worker 0 */
        assert_false(pthread_equal(root, pthread_self()));
    }
    ursa_rt_free(rt);
}

/* ---- a request/reply pair on two workers of one thread ---- */

static void *request_reply(void *arg)
{
    (void)arg;
    return request_reply_rounds(test_scale(20000));
}

TEST_BODY(test_hosted_request_reply_between_workers_of_one_thread,
          test_run_cfg_msg(&(ursa_rt_config_t){.workers = 2, .threads = 1}, request_reply, NULL))

/* ---- timers and I/O of a worker whose neighbour never runs dry ---- */

typedef struct busy_pair {
    atomic_bool done;
    int fd;
} busy_pair_t;

/* On worker 1: sleeps, then reads a pipe the plain thread fills. */
static void *sleeper_reader(void *arg)
{
    busy_pair_t *b = arg;
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(2)), 0);
    char c = 0;
    CHECK_EQ(ursa_read(b->fd, &c, 1, -1, URSA_NEVER), 1);
    CHECK_EQ(c, 'x');
    atomic_store(&b->done, true);
    return NULL;
}

static void *writer_thread(void *arg)
{
    sleep_real_ms(5);
    return write(*(int *)arg, "x", 1) == 1 ? NULL : (void *)"write failed";
}

/* Worker 0 keeps work queued (it yields until worker 1's task is done): the
 * host must still fire worker 1's timer and reap its read. */
static void *neighbour_busy(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    busy_pair_t b = {.fd = p[0]};
    ursa_task_t *t = spawn_on(1, sleeper_reader, &b, "sleeper");
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, writer_thread, &p[1]), 0);
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    while (!atomic_load(&b.done) && mono_ns() < give_up)
        CHECK_EQ(ursa_yield(), 0);
    CHECK(atomic_load(&b.done));
    CHECK_OK(join_task(t));
    CHECK_OK(join_threads(&th, 1));
    close(p[0]);
    close(p[1]);
    return NULL;
}

TEST_BODY(test_hosted_timers_and_io_of_a_worker_whose_neighbour_stays_busy,
          test_run_cfg_msg(&(ursa_rt_config_t){.workers = 2, .threads = 1}, neighbour_busy,
                           NULL))

/* ---- a runtime driven from plain threads only ---- */

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static void test_hosted_runtime_without_block_on_runs_its_tasks(void **state)
{
    (void)state;
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 3, .threads = 1}), 0);
    ursa_task_t *t[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(ursa_rt_spawn(rt, &t[i], add_one, (void *)(intptr_t)i,
                                       i % 2 ? &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 3)}
                                             : NULL),
                         0);
    for (int i = 0; i < 6; i++) {
        void *res = NULL;
        assert_int_equal(ursa_task_join(t[i], &res, URSA_NEVER), 0);
        assert_int_equal((intptr_t)res, i + 1);
    }
    ursa_rt_free(rt);
}

/* ---- the stop ---- */

static void *waits_forever(void *arg)
{
    ursa_notify_t *n = arg;
    int rc = ursa_notify_wait(n, URSA_NEVER);
    return rc == -ECANCELED ? NULL : (void *)"not cancelled";
}

static void test_hosted_free_cancels_the_tasks_of_every_hosted_worker(void **state)
{
    (void)state;
    ursa_rt_t *rt;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 4, .threads = 2}), 0);
    for (int i = 0; i < 8; i++) {
        ursa_task_t *t;
        assert_int_equal(ursa_rt_spawn(rt, &t, waits_forever, &n,
                                       &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 4)}),
                         0);
        ursa_task_detach(t);
    }
    ursa_rt_free(rt); /* returns once all eight ended */
    ursa_notify_destroy(&n);
}

/* ---- a kick deferred by a worker that ran no task ---- */

typedef struct handback {
    ursa_notify_t n;
    ursa_task_t *t;
    atomic_bool t_waits, joined;
} handback_t;

static void *waits_for_notify(void *arg)
{
    handback_t *h = arg;
    atomic_store(&h->t_waits, true);
    CHECK_EQ(ursa_notify_wait(&h->n, URSA_NEVER), 0);
    return NULL;
}

static void *spawns_migratable(void *arg)
{
    handback_t *h = arg;
    CHECK_EQ(ursa_spawn(&h->t, waits_for_notify, h, &(ursa_spawn_opts_t){.migratable = true}), 0);
    return NULL;
}

static void *joins_it(void *arg)
{
    handback_t *h = arg;
    CHECK_OK(join_task(h->t));
    atomic_store(&h->joined, true);
    return NULL;
}

/* Workers 0 and 2 share thread 0, worker 1 has thread 1. T, adopted by
 * worker 2, moves to worker 0 when the root wakes it and ends there; thread
 * 0 hands it back to worker 2, whose turn retires it and so wakes T's
 * joiner on the sleeping thread 1: a kick deferred by worker 2's turn,
 * which ran no task. Thread 0 never runs dry (the root yields until the
 * joiner is done), so the kick must go out at the end of that turn. */
static void *kick_deferred_by_a_turn_without_tasks(void *arg)
{
    (void)arg;
    ursa_rt_t *rt = ursa__cur_worker->rt;
    handback_t h = {0};
    CHECK_EQ(ursa_notify_init(&h.n), 0);
    CHECK_OK(join_task(spawn_on(2, spawns_migratable, &h, "spawner")));
    CHECK(SETTLE_UNTIL(atomic_load(&h.t_waits)));
    ursa_task_t *j = spawn_on(1, joins_it, &h, "joiner");
    /* relaxed: a look at a word thread 1 sets before it sleeps. */
    CHECK(SETTLE_UNTIL(atomic_load_explicit(&rt->workers[1].sleeping, memory_order_relaxed)));
    CHECK_EQ(ursa_notify_one(&h.n), 1);
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    while (!atomic_load(&h.joined) && mono_ns() < give_up)
        CHECK_EQ(ursa_yield(), 0);
    CHECK(atomic_load(&h.joined));
    CHECK_OK(join_task(j));
    CHECK_EQ(ursa_notify_destroy(&h.n), 0);
    return NULL;
}

TEST_BODY(test_hosted_kick_deferred_by_a_turn_that_ran_no_task_goes_out,
          test_run_cfg_msg(&(ursa_rt_config_t){.workers = 3, .threads = 2,
                                               .deadlock_report_after = -1},
                           kick_deferred_by_a_turn_without_tasks, NULL))

/* ---- the automatic choice ---- */

static void *two_workers_threads(void *arg)
{
    placed_t *p = arg;
    ursa_task_t *t = spawn_on(1, note_thread, &p->thread[1], "on-1");
    p->thread[0] = pthread_self();
    return join_task(t) == (void *)1 ? NULL : (void *)"worker 1's task saw another index";
}

/* Confined to one CPU, two workers share a thread; given two CPUs (when
 * the machine has them), each has its own. */
static void test_hosted_threads_follow_the_cpus_the_process_may_use(void **state)
{
    (void)state;
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    placed_t p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(test_run_msg(2, two_workers_threads, &p));
    assert_true(pthread_equal(p.thread[0], p.thread[1]));
    /* Explicit threads win over the CPU count. */
    ASSERT_OK(test_run_threads_msg(2, two_workers_threads, &p));
    assert_false(pthread_equal(p.thread[0], p.thread[1]));
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    if (CPU_COUNT(&saved) >= 2) {
        ASSERT_OK(test_run_msg(2, two_workers_threads, &p));
        assert_false(pthread_equal(p.thread[0], p.thread[1]));
    }
}

static void test_hosted_more_threads_than_workers_is_refused(void **state)
{
    (void)state;
    ursa_rt_t *rt = (ursa_rt_t *)1;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2, .threads = 3}), -EINVAL);
    assert_null(rt);
}

/* ---- stress: spawns, migration and a shared lock over hosted workers ---- */

typedef struct counted {
    ursa_mutex_t m;
    long count;
} counted_t;

static void *bump(void *arg)
{
    counted_t *c = arg;
    for (int i = 0; i < 50; i++) {
        ursa_mutex_guard_t g = {0};
        CHECK_EQ(ursa_mutex_lock(&c->m, &g, URSA_NEVER), 0);
        c->count++;
        if (i % 7 == 0)
            CHECK_EQ(ursa_yield(), 0);
        ursa_mutex_unlock(&g);
    }
    return NULL;
}

static void *spawn_storm(void *arg)
{
    (void)arg;
    counted_t c = {.count = 0};
    CHECK_EQ(ursa_mutex_init(&c.m), 0);
    long rounds = test_scale(40);
    for (long r = 0; r < rounds; r++) {
        ursa_task_t *t[16];
        for (int i = 0; i < 16; i++) {
            ursa_spawn_opts_t o = {.migratable = i % 3 == 0};
            if (i % 4 == 1)
                o = (ursa_spawn_opts_t){URSA_ON_WORKER(i % 4)};
            CHECK_EQ(ursa_spawn(&t[i], bump, &c, &o), 0);
        }
        CHECK_OK(join_tasks(t, 16));
    }
    CHECK_EQ(c.count, rounds * 16 * 50);
    CHECK_EQ(ursa_mutex_destroy(&c.m), 0);
    return NULL;
}

TEST_BODY(test_hosted_stress_spawns_migration_and_a_shared_lock,
          test_run_cfg_msg(&(ursa_rt_config_t){.workers = 4, .threads = 2}, spawn_storm, NULL))

TEST_MAIN(cmocka_unit_test(test_hosted_tasks_stay_on_their_workers_thread_across_every_wait),
          cmocka_unit_test(test_hosted_four_workers_on_two_threads),
          cmocka_unit_test(test_hosted_three_workers_on_two_threads),
          cmocka_unit_test(test_hosted_root_runs_on_worker0s_thread_and_block_on_joins_it),
          cmocka_unit_test(test_hosted_request_reply_between_workers_of_one_thread),
          cmocka_unit_test(test_hosted_timers_and_io_of_a_worker_whose_neighbour_stays_busy),
          cmocka_unit_test(test_hosted_runtime_without_block_on_runs_its_tasks),
          cmocka_unit_test(test_hosted_free_cancels_the_tasks_of_every_hosted_worker),
          cmocka_unit_test(test_hosted_kick_deferred_by_a_turn_that_ran_no_task_goes_out),
          cmocka_unit_test(test_hosted_threads_follow_the_cpus_the_process_may_use),
          cmocka_unit_test(test_hosted_more_threads_than_workers_is_refused),
          cmocka_unit_test(test_hosted_stress_spawns_migration_and_a_shared_lock))
