/* Task cancellation: a cancelled sleep (and every later wait), a
 * cancelled joiner (the joined task stays joinable), a cancelled locker
 * (the lock goes to the next), cancelling a finished task or oneself. */

#include "support.h"

#include "rt_checks.h"
#include "spawn_started.h"

/* ================= cancel ================= */

typedef struct cancel_sleep {
    atomic_int started;
    int rc, rc_again;
    bool cancelled;
} cancel_sleep_t;

static void *long_sleeper(void *arg)
{
    cancel_sleep_t *c = arg;
    atomic_store(&c->started, 1);
    c->rc = ursa_sleep_for(URSA_SEC(3600));
    c->cancelled = ursa_task_cancelled();
    c->rc_again = ursa_sleep_for(URSA_SEC(3600)); /* later waits fail too */
    return NULL;
}

static void *cancel_sleep_root(void *arg)
{
    cancel_sleep_t *c = arg;
    ursa_task_t *t = NULL;
    int rc = spawn_until_started(&t, long_sleeper, c, &c->started, URSA_MSEC(5));
    if (rc)
        return R(rc);
    rc = ursa_task_cancel(t);
    int rc2 = ursa_task_cancel(t);
    /* Only the cancel ends an hour's sleep within the join's hang guard. */
    if (ursa_task_join(t, NULL, test_guard_deadline()) != 0)
        return R(-3);
    return R(rc == 0 && rc2 == 0 ? 0 : -4);
}

static void test_rt_cancel_ends_a_sleep_and_every_later_wait(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_sleep_t c;
        memset(&c, 0, sizeof c);
        assert_null(test_run(workers, cancel_sleep_root, &c));
        assert_int_equal(c.rc, -ECANCELED);
        assert_int_equal(c.rc_again, -ECANCELED);
        assert_true(c.cancelled);
    }
    /* Deterministic mode too: the cancel beats the hour's virtual timer. */
    cancel_sleep_t c;
    memset(&c, 0, sizeof c);
    void *res = R(-1);
    assert_int_equal(run_det(5, cancel_sleep_root, &c, &res), 0);
    assert_null(res);
    assert_int_equal(c.rc, -ECANCELED);
}

typedef struct cancel_join {
    gate_t gate;
    ursa_task_t *y;
    atomic_int started;
    int join_rc;
    bool cancelled_after;
    int y_now_rc, y_final_rc;
    intptr_t y_val;
    int cancel_rc;
} cancel_join_t;

static void *joiner(void *arg)
{
    cancel_join_t *c = arg;
    atomic_store(&c->started, 1);
    c->join_rc = ursa_task_join(c->y, NULL, URSA_NEVER);
    c->cancelled_after = ursa_task_cancelled();
    return NULL;
}

static void *cancel_join_root(void *arg)
{
    cancel_join_t *c = arg;
    ursa_task_t *x = NULL;
    if (ursa_spawn(&c->y, gated, &c->gate, NULL) || ursa_spawn(&x, joiner, c, NULL))
        return R(-1);
    if (!yield_until(&c->started) || !yield_until(&c->gate.started))
        return R(-2);
    (void)ursa_sleep_for(URSA_MSEC(2));
    c->cancel_rc = ursa_task_cancel(x);
    if (ursa_task_join(x, NULL, test_guard_deadline()) != 0)
        return R(-3);
    /* Y was not disturbed and may still be joined. */
    c->y_now_rc = ursa_task_join(c->y, NULL, URSA_NOW);
    (void)ursa_sem_add(&c->gate.sem, 1);
    void *v = NULL;
    c->y_final_rc = ursa_task_join(c->y, &v, test_guard_deadline());
    c->y_val = I(v);
    return NULL;
}

static void test_rt_cancelled_joiner_leaves_the_task_joinable(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_join_t c;
        memset(&c, 0, sizeof c);
        gate_init(&c.gate);
        assert_null(test_run(workers, cancel_join_root, &c));
        assert_int_equal(c.cancel_rc, 0);
        assert_int_equal(c.join_rc, -ECANCELED);
        assert_true(c.cancelled_after);
        assert_int_equal(c.y_now_rc, -EAGAIN);
        assert_int_equal(c.y_final_rc, 0);
        assert_int_equal(c.y_val, 99);
    }
}

typedef struct cancel_mutex {
    ursa_mutex_t m;
    atomic_int started[2];
    int rc[2];
    bool cancelled[2];
    int cancel_rc[2];
    bool locked_after_cancel;
    int try_after_rc;
} cancel_mutex_t;

typedef struct locker_arg {
    cancel_mutex_t *c;
    int i;
} locker_arg_t;

static void *locker(void *arg)
{
    locker_arg_t *a = arg;
    cancel_mutex_t *c = a->c;
    URSA_SCOPED(mutex_guard, g);
    atomic_store(&c->started[a->i], 1);
    c->rc[a->i] = ursa_mutex_lock(&c->m, &g, URSA_NEVER);
    c->cancelled[a->i] = ursa_task_cancelled();
    return NULL; /* g unlocked at scope exit when held */
}

static void *cancel_mutex_root(void *arg)
{
    cancel_mutex_t *c = arg;
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(&c->m, &g, URSA_NEVER) != 0)
        return R(-1);
    locker_arg_t a0 = {c, 0}, a1 = {c, 1};
    ursa_task_t *t0 = NULL, *t1 = NULL;
    /* t0 queues first, t1 behind it; t0 is cancelled. */
    int rc = spawn_until_started(&t0, locker, &a0, &c->started[0], URSA_MSEC(2));
    if (rc)
        return R(rc - 1); /* -2, -3 */
    rc = spawn_until_started(&t1, locker, &a1, &c->started[1], URSA_MSEC(2));
    if (rc)
        return R(rc - 3); /* -4, -5 */
    c->cancel_rc[0] = ursa_task_cancel(t0);
    c->cancel_rc[1] = ursa_task_cancel(t0); /* idempotent */
    if (ursa_task_join(t0, NULL, test_guard_deadline()) != 0)
        return R(-6);
    c->locked_after_cancel = ursa_mutex_is_locked(&c->m);
    /* The cancelled waiter left the queue: the unlock goes to t1. */
    (void)ursa_mutex_unlock(&g);
    if (ursa_task_join(t1, NULL, test_guard_deadline()) != 0)
        return R(-7);
    c->try_after_rc = ursa_mutex_lock(&c->m, &g, URSA_NOW);
    return NULL;
}

static void test_rt_cancelled_locker_leaves_the_lock_to_the_next(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_mutex_t c;
        memset(&c, 0, sizeof c);
        assert_int_equal(ursa_mutex_init(&c.m), 0);
        assert_null(test_run(workers, cancel_mutex_root, &c));
        assert_int_equal(c.cancel_rc[0], 0);
        assert_int_equal(c.cancel_rc[1], 0);
        assert_int_equal(c.rc[0], -ECANCELED);
        assert_true(c.cancelled[0]);
        assert_int_equal(c.rc[1], 0);
        assert_false(c.cancelled[1]);
        assert_true(c.locked_after_cancel);
        assert_int_equal(c.try_after_rc, 0);
        assert_false(ursa_mutex_is_locked(&c.m));
        assert_int_equal(ursa_mutex_destroy(&c.m), 0);
    }
}

typedef struct cancel_misc {
    atomic_int ran;
    int cancel_rc[2], join_rc;
    intptr_t val;
    int self_cancel_rc, yield_rc, sleep_rc, null_rc;
    bool cancelled;
} cancel_misc_t;

static void *finish_fast(void *arg)
{
    cancel_misc_t *c = arg;
    atomic_store(&c->ran, 1);
    return R(123);
}

static void *self_canceller(void *arg)
{
    cancel_misc_t *c = arg;
    c->self_cancel_rc = ursa_task_cancel(ursa_task_self());
    c->cancelled = ursa_task_cancelled();
    c->yield_rc = ursa_yield(); /* still yields, reports the cancel */
    c->sleep_rc = ursa_sleep_for(URSA_SEC(3600)); /* fails at once: the join's guard */
    return NULL;
}

static void *cancel_misc_root(void *arg)
{
    cancel_misc_t *c = arg;
    ursa_task_t *t = NULL;
    int rc = spawn_until_started(&t, finish_fast, c, &c->ran, URSA_MSEC(1));
    if (rc)
        return R(rc);
    /* Finished but not joined: cancel is harmless. */
    c->cancel_rc[0] = ursa_task_cancel(t);
    c->cancel_rc[1] = ursa_task_cancel(t);
    void *v = NULL;
    c->join_rc = ursa_task_join(t, &v, test_guard_deadline());
    c->val = I(v);
    c->null_rc = ursa_task_cancel(NULL);
    if (ursa_spawn(&t, self_canceller, c, NULL))
        return R(-3);
    return R(ursa_task_join(t, NULL, test_guard_deadline()));
}

static void test_rt_cancel_finished_and_self(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_misc_t c;
        memset(&c, 0, sizeof c);
        assert_null(test_run(workers, cancel_misc_root, &c));
        assert_int_equal(c.cancel_rc[0], 0);
        assert_int_equal(c.cancel_rc[1], 0);
        assert_int_equal(c.join_rc, 0);
        assert_int_equal(c.val, 123);
        assert_int_equal(c.null_rc, -EINVAL);
        assert_int_equal(c.self_cancel_rc, 0);
        assert_true(c.cancelled);
        assert_int_equal(c.yield_rc, -ECANCELED);
        assert_int_equal(c.sleep_rc, -ECANCELED);
    }
}

TEST_MAIN(cmocka_unit_test(test_rt_cancel_ends_a_sleep_and_every_later_wait),
          cmocka_unit_test(test_rt_cancelled_joiner_leaves_the_task_joinable),
          cmocka_unit_test(test_rt_cancelled_locker_leaves_the_lock_to_the_next),
          cmocka_unit_test(test_rt_cancel_finished_and_self))
