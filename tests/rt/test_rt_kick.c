/* Kicks of sleeping workers (rt/idle.c): a worker with nothing in its ring
 * sleeps on a futex, one with I/O in flight in its ring, and every waker
 * (a task on another worker, a plain thread, a timer, the runtime's stop)
 * reaches either. A task's kick goes out at once, even when the task then
 * runs on without waiting, and so does its word that it queued work others
 * could steal (the scheduler's own wait for the end of its turn). A MSG_RING kick that fails comes back to its
 * sender, which writes the target's eventfd instead, even when its ring
 * goes away first. A kicked worker measures how long the kernel took to
 * run it (the spin policy's wake latency). White-box: reads the workers' and rings' state. */
#include "support.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/ctx.h"
#include "core/spin.h"
#include "rt/ring.h"
#include "rt/runtime.h"
#include "rt/worker.h"
#include "rt_checks.h"
#include "task_checks.h"

static void *nothing(void *arg)
{
    return arg;
}

/* Waits (sleeping, never spinning) until worker `i` sleeps. */
static bool until_asleep(ursa_rt_t *rt, unsigned i)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    /* relaxed: a look at a flag the worker sets before it sleeps. */
    while (!atomic_load_explicit(&rt->workers[i].sleeping, memory_order_relaxed)) {
        if (mono_ns() > give_up)
            return false;
        (void)ursa_sleep_for(URSA_USEC(200));
    }
    return true;
}

static _Atomic int ran_on_1;

/* Counts a run on worker 1 (worker 0's task below never lets its own
 * worker run anything else). */
static void *mark_ran(void *arg)
{
    (void)arg;
    if (ursa_worker_index() == 1)
        atomic_fetch_add(&ran_on_1, 1);
    return NULL;
}

/* Busy-waits, without a call into ursa, until `n` tasks ran on worker 1;
 * the deadline only turns a hang into a failure. */
static bool ran_on_1_reaches(int n)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(10);
    while (atomic_load(&ran_on_1) < n && mono_ns() < give_up) {
    }
    return atomic_load(&ran_on_1) >= n;
}

/* Regression: a task's kick of a sleeping worker waited for the end of
 * the task's turn, so a task that then ran on without waiting (a producer
 * that computes between sends, an unlocker that locks again at once) left
 * the woken task's worker asleep until it ended. On worker 0: once worker
 * 1 sleeps, spawns a task fixed there, then busy-waits without a call into
 * ursa until that task ran (the deadline only turns a hang into a
 * failure). Failed before the fix: nothing ran until the deadline. */
static void *kick_then_run_on(void *arg)
{
    (void)arg;
    ursa__worker_t *w = ursa__cur_worker;
    CHECK_EQ(ursa_worker_index(), 0);
    CHECK(until_asleep(w->rt, 1));
    atomic_store(&ran_on_1, 0);
    ursa_task_t *t = NULL;
    CHECK_EQ(ursa_spawn(&t, mark_ran, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    CHECK_EQ(w->nkicks, 0); /* nothing left for the end of the turn */
    CHECK(ran_on_1_reaches(1));
    CHECK_OK(join_task(t));
    return NULL;
}

TEST_BODY(test_rt_kick_from_a_task_that_never_waits_goes_out,
          test_run_threads_msg(2, kick_then_run_on, NULL))

/* Regression, the same for spawns: a task that queued stealable work told
 * a sleeping worker only at the end of its turn. On worker 0, in one turn:
 * once worker 1 sleeps, spawns two tasks of default placement (more than
 * the one it would run next) and busy-waits until worker 1 ran both; once
 * worker 1 sleeps again, two more. Worker 1 must be woken for each wave
 * (the first fix told the others once per turn, and missed the second).
 * Failed before the fix: nothing ran until the deadline. */
static void *spawn_then_run_on(void *arg)
{
    (void)arg;
    ursa__worker_t *w = ursa__cur_worker;
    CHECK_EQ(ursa_worker_index(), 0);
    CHECK(until_asleep(w->rt, 1));
    atomic_store(&ran_on_1, 0);
    ursa_task_t *t[4] = {NULL, NULL, NULL, NULL};
    for (int wave = 0; wave < 2; wave++) {
        if (wave) {
            ursa_time_t give_up = mono_ns() + URSA_SEC(10);
            /* relaxed: a look at the flag worker 1 sets before it sleeps. */
            while (!atomic_load_explicit(&w->rt->workers[1].sleeping, memory_order_relaxed) &&
                   mono_ns() < give_up) {
            }
        }
        for (int i = 0; i < 2; i++)
            CHECK_EQ(ursa_spawn(&t[2 * wave + i], mark_ran, NULL, NULL), 0);
        CHECK(ran_on_1_reaches(2 * wave + 2));
    }
    for (int i = 0; i < 4; i++)
        CHECK_OK(join_task(t[i]));
    return NULL;
}

TEST_BODY(test_rt_spawn_from_a_task_that_never_waits_is_stolen,
          test_run_threads_msg(2, spawn_then_run_on, NULL))

/* Two rings on this thread: a kick from r0 to a target whose "ring fd"
 * is not a ring fails; r0 goes away before anyone reaped the failure, and
 * the target's eventfd is written all the same. */
static void test_rt_kick_that_failed_reaches_its_target_when_the_ring_goes_away(void **state)
{
    (void)state;
    ursa__ring_t r0, target;
    memset(&r0, 0, sizeof r0);
    memset(&target, 0, sizeof target);
    assert_int_equal(ursa__ring_evfd_init(&r0), 0);
    assert_int_equal(ursa__ring_evfd_init(&target), 0);
    ursa__ring_init(&r0);
    if (!r0.ok || !r0.msg_ring) {
        ursa__ring_exit(&r0);
        ursa__ring_exit(&target);
        skip(); /* no io_uring, or no IORING_OP_MSG_RING: eventfd kicks only */
    }
    /* The target's published fd is its eventfd: MSG_RING fails (-EBADFD). */
    atomic_store(&target.kick_fd, target.evfd);
    assert_true(ursa__ring_msg(&r0, &target));
    ursa__ring_submit(&r0);
    ursa__ring_msg_done(&target);
    atomic_store(&target.kick_fd, -1);
    ursa__ring_exit(&r0); /* the failure is still in r0's completion queue */
    uint64_t kicks = 0;
    assert_int_equal(read(target.evfd, &kicks, sizeof kicks), (ssize_t)sizeof kicks);
    assert_true(kicks >= 1);
    ursa__ring_exit(&target);
}

/* A plain thread's spawn onto worker 1 (arg: the runtime). */
static void *spawn_from_thread(void *arg)
{
    ursa_task_t *t = NULL;
    if (ursa_rt_spawn(arg, &t, nothing, (void *)"from a thread",
                      &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}))
        return "ursa_rt_spawn failed";
    void *res = NULL;
    if (ursa_task_join(t, &res, ursa_deadline_in(URSA_SEC(20))) || strcmp(res, "from a thread"))
        return "the spawn from a plain thread never ran";
    return NULL;
}

static void *sleep_briefly(void *arg)
{
    (void)arg;
    return ursa_sleep_for(URSA_MSEC(5)) ? "sleep failed" : NULL;
}

static void *read_pipe(void *arg)
{
    char c = 0;
    return ursa_read(*(int *)arg, &c, 1, -1, URSA_NEVER) == 1 && c == 'x' ? NULL : "read failed";
}

/* Worker 1 sleeps, then `wake` must reach it: a fixed spawn from this
 * task. The join's deadline turns a lost wake into a failure. */
static const char *spawn_reaches_worker1(ursa_rt_t *rt, uint32_t how)
{
    if (!until_asleep(rt, 1))
        return "worker 1 never slept";
    /* relaxed: a look at the word worker 1 set before it slept. */
    uint32_t saw = atomic_load_explicit(&rt->workers[1].sleeping, memory_order_relaxed);
    if (saw != URSA__AWAKE && saw != how)
        return failf("worker 1 sleeps as %u, not %u", saw, how);
    ursa_task_t *t = NULL;
    CHECK_EQ(ursa_spawn(&t, nothing, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    CHECK_EQ(ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(20))), 0);
    return NULL;
}

static void *sleepers_woken(void *arg)
{
    (void)arg;
    ursa_rt_t *rt = ursa__cur_worker->rt;
    /* Nothing in worker 1's ring: a futex sleep, woken by a task here. */
    CHECK_OK(spawn_reaches_worker1(rt, URSA__ASLEEP_FUTEX));
    /* ... by a plain thread. */
    CHECK(until_asleep(rt, 1));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, spawn_from_thread, rt), 0);
    CHECK_OK(join_threads(&th, 1));
    /* ... by its own timer (the futex wait's timeout). */
    ursa_task_t *t = NULL;
    CHECK(until_asleep(rt, 1));
    CHECK_EQ(ursa_spawn(&t, sleep_briefly, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    CHECK_OK(join_task(t));
    /* A read in flight on worker 1: a ring sleep, woken by a task here,
     * then by the read's completion. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(ursa_spawn(&t, read_pipe, &p[0], &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    const char *m = spawn_reaches_worker1(rt, URSA__ASLEEP_RING);
    CHECK_EQ(write(p[1], "x", 1), 1);
    const char *r = join_task(t);
    close(p[0]);
    close(p[1]);
    CHECK_OK(m);
    CHECK_OK(r);
    /* Left asleep on its futex: the runtime's stop must reach it. */
    CHECK(until_asleep(rt, 1));
    return NULL;
}

TEST_BODY(test_rt_sleeping_worker_is_reached_by_every_waker_on_its_futex_or_its_ring,
          test_run_threads_msg(2, sleepers_woken, NULL))

/* On worker 0: wakes the sleeping worker 1 with a spawn fixed there; once
 * it ran, the spin policy has a wake latency measured from that kick. */
static void *kick_is_measured(void *arg)
{
    (void)arg;
    ursa_rt_t *rt = ursa__cur_worker->rt;
    for (int tries = 0; tries < 100 && !ursa__spin_wake_ns(); tries++) {
        if (!until_asleep(rt, 1))
            return "worker 1 never slept";
        ursa_task_t *t = NULL;
        CHECK_EQ(ursa_spawn(&t, nothing, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
        CHECK_OK(join_task(t));
    }
    CHECK(ursa__spin_wake_ns() > 0);
    /* relaxed: worker 1's state, after its task ran: no stamp left. */
    CHECK_EQ(atomic_load_explicit(&rt->workers[1].kicked_at, memory_order_relaxed), 0);
    return NULL;
}

TEST_BODY(test_rt_kicked_worker_measures_its_wake_latency,
          test_run_threads_msg(2, kick_is_measured, NULL))

TEST_MAIN(cmocka_unit_test(test_rt_sleeping_worker_is_reached_by_every_waker_on_its_futex_or_its_ring),
          cmocka_unit_test(test_rt_kicked_worker_measures_its_wake_latency),
          cmocka_unit_test(test_rt_kick_from_a_task_that_never_waits_goes_out),
          cmocka_unit_test(test_rt_spawn_from_a_task_that_never_waits_is_stolen),
          cmocka_unit_test(test_rt_kick_that_failed_reaches_its_target_when_the_ring_goes_away))
