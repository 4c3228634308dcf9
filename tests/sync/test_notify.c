/* Tests for notify (include/ursa/notify.h, src/sync/notify.c) beyond the
 * contract (tests/contract/): argument errors, the single stored permit,
 * who notify_one / notify_last / notify_waiters wake, a withdrawn waiter
 * passing its notification on, and enable before wait. Races and stress:
 * test_notify_race.c. */
#include "support.h"

#include "queue_peek.h" /* internal: the queue, the stored permit */
#include "task_checks.h"
#include "ursa/notify.h"

/* ====================================================================== */
/* arguments, init / destroy                                              */
/* ====================================================================== */

static void *args_body(void *arg)
{
    (void)arg;
    ursa_notify_t n, n2;
    ursa_wait_t w, wz;
    memset(&w, 0, sizeof w);
    memset(&wz, 0, sizeof wz);
    cw_t cw;
    cw_init(&cw);

    CHECK_EQ(ursa_notify_init(NULL), -EINVAL);
    CHECK_EQ(ursa_notify_destroy(NULL), -EINVAL);
    CHECK_EQ(ursa_notify_one(NULL), -EINVAL);
    CHECK_EQ(ursa_notify_last(NULL), -EINVAL);
    CHECK_EQ(ursa_notify_waiters(NULL), -EINVAL);
    CHECK_EQ(ursa_notify_wait(NULL, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_notify_enable(NULL, &w), -EINVAL);
    CHECK_EQ(ursa_notify_init(&n), 0);
    CHECK_EQ(ursa_notify_init(&n2), 0);
    CHECK_EQ(ursa_notify_enable(&n, NULL), -EINVAL);
    CHECK_EQ(ursa_notify_wait_enabled(NULL, &w, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_notify_wait_enabled(&n, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &wz, URSA_NEVER), -EINVAL); /* never enabled */
    CHECK_EQ(ursa_notify_disable(NULL, &w), -EINVAL);
    CHECK_EQ(ursa_notify_disable(&n, NULL), -EINVAL);
    CHECK_EQ(ursa_notify_disable(&n, &wz), -EINVAL);
    CHECK_EQ(ursa_notify_wait_start(NULL, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_notify_wait_start(&n, NULL, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_notify_wait_start(&n, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    CHECK_EQ(ursa_notify_wait_finish(NULL, &wz), -EINVAL);
    CHECK_EQ(ursa_notify_wait_finish(&n, NULL), -EINVAL);
    CHECK_EQ(ursa_notify_wait_finish(&n, &wz), -EINVAL); /* never started */
    CHECK_EQ(ursa_wait_cancel(&wz), -EINVAL);
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK(!peek_notify_permit(&n));

    /* destroy while waited on: -EBUSY, reported, nothing changed */
    test_capture_leaks();
    CHECK_EQ(ursa_notify_wait_start(&n, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EAGAIN);
    CHECK_EQ(ursa_notify_destroy(&n), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(peek_notify_len(&n), 1);
    /* a raw wait is not an enabled wait, and belongs to n only */
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_notify_disable(&n, &w), -EINVAL);
    CHECK_EQ(ursa_notify_wait_finish(&n2, &w), -EINVAL);
    CHECK_EQ(peek_notify_len(&n), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL); /* already withdrawn */
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EINVAL);
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK(!peek_notify_permit(&n)); /* withdrawn before any notification: nothing made */
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n2), 0);
    CHECK_EQ(test_leak_count(), 1);
    return NULL;
}

TEST_BODY(test_notify_rejects_bad_arguments_and_destroy_while_waited, args_body(NULL))

/* ====================================================================== */
/* the single stored permit                                               */
/* ====================================================================== */

static void *permit_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    CHECK_EQ(ursa_notify_init(&n), 0);
    /* no permit: a try fails, an expired deadline times out, nothing queued */
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_notify_wait(&n, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK_EQ(ursa_notify_wait(&n, ursa_deadline_in(URSA_USEC(200))), -ETIMEDOUT);
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK(!peek_notify_permit(&n));

    /* two notify_one with nobody waiting store ONE permit */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK(peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_one(&n), 0); /* absorbed */
    CHECK_EQ(ursa_notify_last(&n), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0); /* returns at once */
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN); /* the second would block */
    CHECK_EQ(ursa_notify_wait(&n, ursa_deadline_in(URSA_USEC(100))), -ETIMEDOUT);

    /* notify_last also stores it; a blocking wait (URSA_NEVER) takes it */
    CHECK_EQ(ursa_notify_last(&n), 1);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NEVER), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);

    /* notify_waiters stores nothing, and leaves a stored permit alone */
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK(peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

TEST_BODY(test_notify_stores_one_permit_on_a_plain_thread, permit_body(NULL))

TEST_BODY(test_notify_stores_one_permit_in_tasks, test_run(2, body_on_worker1, (void *)permit_body))

TEST_EXPLORE(test_notify_stores_one_permit_over_seeds, permit_body, NULL)

/* ====================================================================== */
/* order: notify_one = oldest, notify_last = newest, notify_waiters = all */
/* ====================================================================== */

static void *raw_order_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    ursa_wait_t w[5];
    cw_t cw[5];
    CHECK_EQ(ursa_notify_init(&n), 0);
    for (int i = 0; i < 5; i++) {
        cw_init(&cw[i]);
        CHECK_EQ(ursa_notify_wait_start(&n, &w[i], cw_waker(&cw[i])), -EINPROGRESS);
    }
    CHECK_EQ(peek_notify_len(&n), 5);
    CHECK_EQ(ursa_notify_one(&n), 1); /* oldest: 0 */
    CHECK(ursa_wait_ready(&w[0]));
    CHECK_EQ(atomic_load(&cw[0].calls), 1);
    CHECK_EQ(ursa_notify_last(&n), 1); /* newest: 4 */
    CHECK(ursa_wait_ready(&w[4]));
    CHECK_EQ(atomic_load(&cw[4].calls), 1);
    CHECK_EQ(ursa_notify_last(&n), 1); /* then 3 */
    CHECK(ursa_wait_ready(&w[3]));
    CHECK(!ursa_wait_ready(&w[1]) && !ursa_wait_ready(&w[2]));
    CHECK_EQ(ursa_notify_one(&n), 1); /* then 1 */
    CHECK(ursa_wait_ready(&w[1]));
    CHECK(!ursa_wait_ready(&w[2]));
    CHECK_EQ(peek_notify_len(&n), 1);
    CHECK(!peek_notify_permit(&n));
    for (int i = 0; i < 5; i++)
        if (i != 2)
            CHECK_EQ(ursa_notify_wait_finish(&n, &w[i]), 0);
    CHECK_EQ(ursa_notify_wait_finish(&n, &w[0]), -EINVAL); /* finished already */

    /* notify_waiters: every queued waiter, nothing stored, later ones not */
    ursa_wait_t late;
    cw_t cl;
    cw_init(&cl);
    for (int i = 0; i < 2; i++) {
        cw_init(&cw[i]);
        CHECK_EQ(ursa_notify_wait_start(&n, &w[i], cw_waker(&cw[i])), -EINPROGRESS);
    }
    CHECK_EQ(peek_notify_len(&n), 3);
    CHECK_EQ(ursa_notify_waiters(&n), 3);
    CHECK_EQ(ursa_notify_wait_start(&n, &late, cw_waker(&cl)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&late));
    CHECK_EQ(atomic_load(&cl.calls), 0);
    CHECK(!peek_notify_permit(&n));
    CHECK(ursa_wait_ready(&w[0]) && ursa_wait_ready(&w[1]) && ursa_wait_ready(&w[2]));
    CHECK_EQ(atomic_load(&cw[0].calls) + atomic_load(&cw[1].calls) + atomic_load(&cw[2].calls), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_notify_wait_finish(&n, &w[i]), 0);
    CHECK_EQ(peek_notify_len(&n), 1);
    CHECK_EQ(ursa_wait_cancel(&late), -ECANCELED);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

TEST_BODY(test_notify_one_wakes_the_oldest_last_the_newest_waiters_all, raw_order_body(NULL))

/* More waiters than a wake batch, and notify_waiters wakes them all. */
static void *many_waiters_body(void *arg)
{
    (void)arg;
    enum { N = 100 };
    static ursa_wait_t w[N];
    static cw_t cw[N];
    ursa_notify_t n;
    CHECK_EQ(ursa_notify_init(&n), 0);
    for (int i = 0; i < N; i++) {
        cw_init(&cw[i]);
        CHECK_EQ(ursa_notify_wait_start(&n, &w[i], cw_waker(&cw[i])), -EINPROGRESS);
    }
    CHECK_EQ(ursa_notify_waiters(&n), N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&cw[i].calls), 1);
        CHECK_EQ(ursa_notify_wait_finish(&n, &w[i]), 0);
    }
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

TEST_BODY(test_notify_waiters_wakes_more_than_a_wake_batch, many_waiters_body(NULL))

/* Blocking tasks woken LIFO by notify_last and FIFO by notify_one: the
 * order in which they return is recorded. */
typedef struct order {
    ursa_notify_t n;
    int seq[8];
    atomic_int nseq;
} order_t;

typedef struct order_arg {
    order_t *o;
    int id;
} order_arg_t;

static void *order_waiter(void *arg)
{
    order_arg_t *a = arg;
    CHECK_EQ(ursa_notify_wait(&a->o->n, URSA_NEVER), 0);
    a->o->seq[atomic_fetch_add(&a->o->nseq, 1)] = a->id;
    return NULL;
}

static void *order_scenario(void *arg)
{
    (void)arg;
    order_t o;
    order_arg_t a[4];
    ursa_task_t *t[4];
    memset(&o, 0, sizeof o);
    CHECK_EQ(ursa_notify_init(&o.n), 0);
    for (int round = 0; round < 2; round++) {
        atomic_store(&o.nseq, 0);
        for (int i = 0; i < 4; i++) {
            a[i] = (order_arg_t){&o, i};
            t[i] = spawn_on(-1, order_waiter, &a[i], "waiter");
            CHECK(t[i]);
            CHECK(SETTLE_UNTIL(peek_notify_len(&o.n) >= ((size_t)i + 1))); /* queue in order 0..3 */
        }
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(round == 0 ? ursa_notify_last(&o.n) : ursa_notify_one(&o.n), 1);
            /* let the woken one record itself before the next wake */
            ursa_time_t give_up = mono_ns() + test_hang_guard();
            for (unsigned long k = 0; atomic_load(&o.nseq) < i + 1; k++)
                CHECK(settle_loop(k, give_up));
        }
        CHECK_OK(join_tasks(t, 4));
        for (int i = 0; i < 4; i++)
            CHECK_EQ(o.seq[i], round == 0 ? 3 - i : i);
    }
    CHECK(!peek_notify_permit(&o.n));
    CHECK_EQ(ursa_notify_destroy(&o.n), 0);
    return NULL;
}

TEST_EXPLORE(test_notify_wakes_tasks_lifo_by_last_fifo_by_one_over_seeds, order_scenario, NULL)

TEST_BODY(test_notify_wakes_tasks_lifo_by_last_fifo_by_one_on_two_workers,
          test_run(2, order_scenario, NULL))

/* ====================================================================== */
/* a notification that reached a waiter which then withdraws goes on      */
/* ====================================================================== */

static void *forward_raw_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    ursa_wait_t a, b, c;
    cw_t ca, cb, cc;
    cw_init(&ca);
    cw_init(&cb);
    cw_init(&cc);
    CHECK_EQ(ursa_notify_init(&n), 0);

    /* notify_one to A, A cancels: B gets it; B cancels: the permit */
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_notify_wait_start(&n, &b, cw_waker(&cb)), -EINPROGRESS);
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK(ursa_wait_ready(&a) && !ursa_wait_ready(&b));
    CHECK_EQ(ursa_wait_cancel(&a), -ECANCELED);
    CHECK(ursa_wait_ready(&b));
    CHECK_EQ(atomic_load(&cb.calls), 1);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_wait_cancel(&b), -ECANCELED);
    CHECK(peek_notify_permit(&n));
    CHECK_EQ(peek_notify_len(&n), 0);

    /* a raw wait that took the stored permit and is cancelled puts it back */
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), 0);
    CHECK(ursa_wait_ready(&a));
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_wait_cancel(&a), -ECANCELED);
    CHECK(peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), 0);
    CHECK_EQ(ursa_notify_wait_finish(&n, &a), 0);
    CHECK(!peek_notify_permit(&n));

    /* notify_last to C (newest), C cancels: the newest left (B) gets it */
    cw_init(&ca);
    cw_init(&cb);
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_notify_wait_start(&n, &b, cw_waker(&cb)), -EINPROGRESS);
    CHECK_EQ(ursa_notify_wait_start(&n, &c, cw_waker(&cc)), -EINPROGRESS);
    CHECK_EQ(ursa_notify_last(&n), 1);
    CHECK(ursa_wait_ready(&c));
    CHECK_EQ(ursa_wait_cancel(&c), -ECANCELED);
    CHECK(ursa_wait_ready(&b));
    CHECK(!ursa_wait_ready(&a));
    CHECK_EQ(ursa_notify_wait_finish(&n, &b), 0);

    /* notify_waiters then cancel: nothing to pass on, nothing stored */
    CHECK_EQ(ursa_notify_waiters(&n), 1);
    CHECK(ursa_wait_ready(&a));
    CHECK_EQ(ursa_wait_cancel(&a), -ECANCELED);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK_EQ(atomic_load(&cb.calls), 1);
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

TEST_BODY(test_notify_cancelled_raw_wait_passes_its_notification_on, forward_raw_body(NULL))

/* ====================================================================== */
/* enable before wait                                                     */
/* ====================================================================== */

static void *enable_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    ursa_wait_t w, w2;
    CHECK_EQ(ursa_notify_init(&n), 0);

    /* a notify between enable and wait is not lost */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(peek_notify_len(&n), 1);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_one(&n), 1); /* woke the enabled waiter, stored nothing */
    CHECK(!peek_notify_permit(&n));
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), -EINVAL); /* over */
    CHECK_EQ(peek_notify_len(&n), 0);

    /* notify_waiters reaches an enabled waiter that has not blocked */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0); /* the node can be reused */
    CHECK_EQ(ursa_notify_waiters(&n), 1);
    CHECK_EQ(ursa_notify_enable(&n, &w2), 0); /* enabled after: not woken */
    CHECK(!ursa_wait_ready(&w2));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NEVER), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w2, URSA_NOW), -EAGAIN); /* and withdrawn */
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w2), -EINVAL);

    /* enabled, deadline passes: -ETIMEDOUT, withdrawn */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, ursa_deadline_in(URSA_USEC(200))), -ETIMEDOUT);
    CHECK_EQ(peek_notify_len(&n), 0);

    /* enable consumes a stored permit at once */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK(!peek_notify_permit(&n));
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);

    /* disable before any notification: 0, nothing made */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w), -EINVAL);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(peek_notify_len(&n), 0);

    /* disable after a notify_one: 1, passed on (here: to the permit) */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(peek_notify_permit(&n));
    /* ... or to the next enabled waiter */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0); /* takes the permit */
    CHECK_EQ(ursa_notify_enable(&n, &w2), 0);
    CHECK(ursa_wait_ready(&w) && !ursa_wait_ready(&w2));
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(ursa_wait_ready(&w2));
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w2, URSA_NOW), 0);

    /* disable after notify_waiters: 1, nothing to pass on */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_waiters(&n), 1);
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(!peek_notify_permit(&n));
    CHECK_EQ(peek_notify_len(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

TEST_BODY(test_notify_enabled_before_waiting_misses_nothing_on_a_plain_thread, enable_body(NULL))

TEST_BODY(test_notify_enabled_before_waiting_misses_nothing_in_tasks,
          test_run(2, body_on_worker1, (void *)enable_body))

TEST_EXPLORE(test_notify_enabled_before_waiting_misses_nothing_over_seeds, enable_body, NULL)

/* The check-then-wait pattern across workers: a flag set and
 * notify_waiters'd by another worker is never missed. */
typedef struct flagged {
    ursa_notify_t n;
    atomic_int flag;
    atomic_int seen;
} flagged_t;

static void *flag_waiter(void *arg)
{
    flagged_t *f = arg;
    ursa_wait_t w;
    for (;;) {
        CHECK_EQ(ursa_notify_enable(&f->n, &w), 0);
        if (atomic_load(&f->flag)) {
            int rc = ursa_notify_disable(&f->n, &w);
            CHECK(rc == 0 || rc == 1);
            break;
        }
        CHECK_EQ(ursa_notify_wait_enabled(&f->n, &w, ursa_deadline_in(URSA_SEC(20))), 0);
    }
    atomic_fetch_add(&f->seen, 1);
    return NULL;
}

static void *flag_setter(void *arg)
{
    flagged_t *f = arg;
    atomic_store(&f->flag, 1);
    CHECK(ursa_notify_waiters(&f->n) >= 0);
    return NULL;
}

static void *flag_root(void *arg)
{
    long rounds = *(long *)arg;
    for (long r = 0; r < rounds; r++) {
        flagged_t f;
        CHECK_EQ(ursa_notify_init(&f.n), 0);
        atomic_init(&f.flag, 0);
        atomic_init(&f.seen, 0);
        ursa_task_t *t[4];
        for (int i = 0; i < 3; i++)
            t[i] = spawn_on(i % 2, flag_waiter, &f, "waiter");
        t[3] = spawn_on((int)(r % 2), flag_setter, &f, "setter");
        CHECK_OK(join_tasks(t, 4));
        CHECK_EQ(atomic_load(&f.seen), 3);
        CHECK_EQ(peek_notify_len(&f.n), 0);
        CHECK(!peek_notify_permit(&f.n));
        CHECK_EQ(ursa_notify_destroy(&f.n), 0);
    }
    return NULL;
}

static void test_notify_check_then_wait_never_misses_a_flag_on_two_workers(void **state)
{
    (void)state;
    long rounds = test_scale(1000);
    ASSERT_OK(test_run(2, flag_root, &rounds));
}

TEST_MAIN(cmocka_unit_test(test_notify_rejects_bad_arguments_and_destroy_while_waited),
          cmocka_unit_test(test_notify_stores_one_permit_on_a_plain_thread),
          cmocka_unit_test(test_notify_stores_one_permit_in_tasks),
          cmocka_unit_test(test_notify_stores_one_permit_over_seeds),
          cmocka_unit_test(test_notify_one_wakes_the_oldest_last_the_newest_waiters_all),
          cmocka_unit_test(test_notify_waiters_wakes_more_than_a_wake_batch),
          cmocka_unit_test(test_notify_wakes_tasks_lifo_by_last_fifo_by_one_over_seeds),
          cmocka_unit_test(test_notify_wakes_tasks_lifo_by_last_fifo_by_one_on_two_workers),
          cmocka_unit_test(test_notify_cancelled_raw_wait_passes_its_notification_on),
          cmocka_unit_test(test_notify_enabled_before_waiting_misses_nothing_on_a_plain_thread),
          cmocka_unit_test(test_notify_enabled_before_waiting_misses_nothing_in_tasks),
          cmocka_unit_test(test_notify_enabled_before_waiting_misses_nothing_over_seeds),
          cmocka_unit_test(test_notify_check_then_wait_never_misses_a_flag_on_two_workers))
