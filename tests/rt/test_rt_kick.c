/* Kicks of sleeping workers (rt/idle.c): a worker that wakes a task on a
 * sleeping worker defers the kick to the end of its turn, so the kicks of
 * one turn go out together. The turn must end before the waker busy-waits:
 * a kick still deferred while its task spins leaves the woken worker
 * asleep for the whole spin. A MSG_RING kick that fails comes back to its
 * sender, which writes the target's eventfd instead, even when its ring
 * goes away first. White-box: reads the workers' and rings' state. */
#include "support.h"

#include <sys/eventfd.h>

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

/* Waits (sleeping, never spinning) until worker `i` sleeps in its ring. */
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

/* On worker 0: spawns a task fixed on the sleeping worker 1 (its kick is
 * deferred), then busy-waits one relax step; the kick must be out by then. */
static void *kick_then_relax(void *arg)
{
    (void)arg;
    ursa__worker_t *w = ursa__cur_worker;
    ursa_rt_t *rt = w->rt;
    CHECK_EQ(ursa_worker_index(), 0);
    for (int tries = 0; tries < 100; tries++) {
        if (!until_asleep(rt, 1))
            return "worker 1 never slept";
        ursa_task_t *t = NULL;
        CHECK_EQ(ursa_spawn(&t, nothing, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
        unsigned deferred = w->nkicks; /* 0 if worker 1 woke by itself meanwhile */
        ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_POLL);
        CHECK_EQ(ursa__cur_ctx->ops->relax(ursa__cur_ctx, &s), 0);
        ursa__spin_end(&s);
        unsigned after = w->nkicks;
        CHECK_OK(join_task(t));
        if (deferred) {
            CHECK_EQ(after, 0);
            return NULL;
        }
    }
    return "never saw a deferred kick";
}

TEST_BODY(test_rt_kick_deferred_by_a_task_goes_out_before_it_busy_waits,
          test_run_msg(2, kick_then_relax, NULL))

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

TEST_MAIN(cmocka_unit_test(test_rt_kick_deferred_by_a_task_goes_out_before_it_busy_waits),
          cmocka_unit_test(test_rt_kick_that_failed_reaches_its_target_when_the_ring_goes_away))
