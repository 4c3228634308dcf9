/* The wake bias of a worker alone in its runtime (rt/task.c): its own
 * thread's wakes and parks change a task's wake state with plain loads and
 * stores; the first wake from another thread revokes the bias (a
 * membarrier, then the RMW path for good). Checked: local wakes keep the
 * bias; a plain thread's wakes revoke it; a revoke that lands while two
 * tasks hand the worker back and forth (the owner inside its biased
 * changes all the time) loses no wake and wakes nobody twice, many times
 * over (TSan checks the hand-over of the states). White-box: reads the
 * worker's bias word. */
#include "support.h"

#include <pthread.h>

#include "core/membarrier.h"
#include "rt/sanitizer.h"
#include "rt/runtime.h"
#include "rt/worker.h"
#include "rt_checks.h"
#include "task_checks.h"

#define ROUNDS 400   /* ping-pong round trips per runtime, at least */
#define REMOTE 64    /* remote wakes per runtime */
#define RUNTIMES 40  /* revokes, each at another moment */

#if defined(URSA__ASAN)
#define URSA__ASAN_BUILD 1
#else
#define URSA__ASAN_BUILD 0
#endif

typedef struct pair {
    ursa_notify_t ping, pong;
    ursa_sem_t remote;    /* added to by a plain thread */
    atomic_int go;        /* the plain thread may start */
    atomic_int remote_done; /* every remote permit taken */
    bool stop;            /* the echo returns (set by the root, same worker) */
    uint32_t bias_before; /* the bias word after the first local round trips */
} pair_t;

static uint32_t bias_word(void)
{
    /* relaxed: a look at a word only a revoke changes. */
    return atomic_load_explicit(&ursa__cur_worker->wbias, memory_order_relaxed);
}

static void *echo(void *arg)
{
    pair_t *p = arg;
    for (;;) {
        if (ursa_notify_wait(&p->ping, URSA_NEVER) != 0)
            return R(-1);
        if (p->stop)
            return R(0);
        (void)ursa_notify_one(&p->pong);
    }
}

/* Takes REMOTE permits, one at a time, each added by the plain thread:
 * its wakes come from outside the worker. */
static void *remote_waited(void *arg)
{
    pair_t *p = arg;
    for (int i = 0; i < REMOTE; i++) {
        URSA_SCOPED(sem_permit, pm);
        if (ursa_sem_acquire(&p->remote, 1, &pm, test_guard_deadline()) != 0)
            return R(-1);
        (void)ursa_sem_permit_forget(&pm);
    }
    atomic_store(&p->remote_done, 1);
    return R(0);
}

static void *adder(void *arg)
{
    pair_t *p = arg;
    while (!atomic_load(&p->go))
        sched_yield();
    for (int i = 0; i < REMOTE; i++) {
        (void)ursa_sem_add(&p->remote, 1);
        if (i % 8 == 0)
            sched_yield();
    }
    return NULL;
}

static void *pingpong_root(void *arg)
{
    pair_t *p = arg;
    ursa_task_t *e = NULL, *r = NULL;
    CHECK_EQ(ursa_spawn(&e, echo, p, NULL), 0);
    CHECK_EQ(ursa_spawn(&r, remote_waited, p, NULL), 0);
    /* Round trips until the plain thread's wakes are all through: the
     * revoke lands while the worker's thread is busy with its own. */
    for (int i = 0; i < ROUNDS || !atomic_load(&p->remote_done); i++) {
        if (i == 8) {
            p->bias_before = bias_word(); /* local wakes only so far */
            atomic_store(&p->go, 1);
        }
        (void)ursa_notify_one(&p->ping);
        CHECK_EQ(ursa_notify_wait(&p->pong, test_guard_deadline()), 0);
    }
    p->stop = true;
    (void)ursa_notify_one(&p->ping);
    void *res = R(1);
    CHECK_EQ(ursa_task_join(e, &res, test_guard_deadline()), 0);
    CHECK_EQ(I(res), 0);
    CHECK_EQ(ursa_task_join(r, &res, test_guard_deadline()), 0);
    CHECK_EQ(I(res), 0);
    return NULL;
}

static void test_wake_bias_revoked_mid_pingpong(void **state)
{
    (void)state;
    bool biased = ursa__membarrier_usable();
    for (int n = 0; n < RUNTIMES; n++) {
        pair_t p;
        memset(&p, 0, sizeof p);
        assert_int_equal(ursa_notify_init(&p.ping), 0);
        assert_int_equal(ursa_notify_init(&p.pong), 0);
        assert_int_equal(ursa_sem_init(&p.remote, 0), 0);
        ursa_rt_t *rt = NULL;
        assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 1}), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, adder, &p), 0);
        void *res = R(1);
        int rc = ursa_rt_block_on(rt, pingpong_root, &p, &res);
        atomic_store(&p.go, 1); /* a failed root never let it start */
        pthread_join(th, NULL);
        assert_int_equal(rc, 0);
        ASSERT_OK(res);
        /* Biased while only its own thread woke its tasks (where membarrier
         * works), revoked for good by the plain thread's wakes. */
        assert_int_equal(p.bias_before, biased ? 1 : 0);
        /* relaxed: the runtime's thread is done with it. ASan builds take
         * every descriptor from malloc, which no bias covers: nothing
         * revokes it there. */
        assert_int_equal(atomic_load_explicit(&rt->workers[0].wbias, memory_order_relaxed),
                         biased && URSA__ASAN_BUILD ? 1 : 0);
        ursa_rt_free(rt);
        assert_int_equal(ursa_sem_destroy(&p.remote), 0);
        assert_int_equal(ursa_notify_destroy(&p.pong), 0);
        assert_int_equal(ursa_notify_destroy(&p.ping), 0);
    }
}

/* A runtime with several workers is never biased. */
static void *bias_word_root(void *arg)
{
    (void)arg;
    CHECK_EQ(bias_word(), 0);
    return NULL;
}

static void test_wake_bias_only_alone(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, bias_word_root, NULL));
}

TEST_MAIN(cmocka_unit_test(test_wake_bias_revoked_mid_pingpong),
          cmocka_unit_test(test_wake_bias_only_alone))
