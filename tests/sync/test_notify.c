/* Tests for notify (include/ursa/notify.h, src/sync/notify.c).
 *
 * As in the other tests, checks live in "bodies" that return NULL when they
 * passed or a message saying what failed; a body runs on the test's own
 * (plain) thread, as a task, or as a deterministic scenario over many
 * seeds, and the cmocka assertion is made on the test's own stack. */
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/waitq.h" /* internal: wait node states, the queue lock */
#include "ursa/notify.h"

/* ---- failure messages ---- */

#include "task_checks.h"

/* ---- notify inspection ---- */

static size_t q_len(ursa_notify_t *n)
{
    /* The queue lock is bit 2 of the state word (src/sync/notify.c). */
    uint32_t st;
    do {
        st = atomic_load(&n->state) & ~4u;
    } while (!atomic_compare_exchange_weak(&n->state, &st, st | 4u));
    size_t k = 0;
    for (ursa_wait_t *w = n->head; w; w = w->next)
        k++;
    atomic_store(&n->state, st);
    return k;
}

static bool has_permit(ursa_notify_t *n)
{
    return atomic_load(&n->state) & 1u;
}

static bool wait_qlen(ursa_notify_t *n, size_t k)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; q_len(n) < k; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

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
    CHECK_EQ(q_len(&n), 0);
    CHECK(!has_permit(&n));

    /* destroy while waited on: -EBUSY, reported, nothing changed */
    test_capture_leaks();
    CHECK_EQ(ursa_notify_wait_start(&n, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EAGAIN);
    CHECK_EQ(ursa_notify_destroy(&n), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(q_len(&n), 1);
    /* a raw wait is not an enabled wait, and belongs to n only */
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_notify_disable(&n, &w), -EINVAL);
    CHECK_EQ(ursa_notify_wait_finish(&n2, &w), -EINVAL);
    CHECK_EQ(q_len(&n), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL); /* already withdrawn */
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EINVAL);
    CHECK_EQ(q_len(&n), 0);
    CHECK(!has_permit(&n)); /* withdrawn before any notification: nothing made */
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n2), 0);
    CHECK_EQ(test_leak_count(), 1);
    return NULL;
}

static void test_args_errors(void **state)
{
    (void)state;
    ASSERT_OK(args_body(NULL));
}

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
    CHECK_EQ(q_len(&n), 0);
    CHECK(!has_permit(&n));

    /* two notify_one with nobody waiting store ONE permit */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK(has_permit(&n));
    CHECK_EQ(ursa_notify_one(&n), 0); /* absorbed */
    CHECK_EQ(ursa_notify_last(&n), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0); /* returns at once */
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN); /* the second would block */
    CHECK_EQ(ursa_notify_wait(&n, ursa_deadline_in(URSA_USEC(100))), -ETIMEDOUT);

    /* notify_last also stores it; a blocking wait (URSA_NEVER) takes it */
    CHECK_EQ(ursa_notify_last(&n), 1);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NEVER), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);

    /* notify_waiters stores nothing, and leaves a stored permit alone */
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK(has_permit(&n));
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), -EAGAIN);
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_single_permit_thread(void **state)
{
    (void)state;
    ASSERT_OK(permit_body(NULL));
}

static void test_single_permit_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, body_on_worker1, (void *)permit_body));
}

static void test_single_permit_sim(void **state)
{
    (void)state;
    test_explore(permit_body, NULL);
}

/* ====================================================================== */
/* order: notify_one = oldest, notify_last = newest, notify_waiters = all   */
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
    CHECK_EQ(q_len(&n), 5);
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
    CHECK_EQ(q_len(&n), 1);
    CHECK(!has_permit(&n));
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
    CHECK_EQ(q_len(&n), 3);
    CHECK_EQ(ursa_notify_waiters(&n), 3);
    CHECK_EQ(ursa_notify_wait_start(&n, &late, cw_waker(&cl)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&late));
    CHECK_EQ(atomic_load(&cl.calls), 0);
    CHECK(!has_permit(&n));
    CHECK(ursa_wait_ready(&w[0]) && ursa_wait_ready(&w[1]) && ursa_wait_ready(&w[2]));
    CHECK_EQ(atomic_load(&cw[0].calls) + atomic_load(&cw[1].calls) + atomic_load(&cw[2].calls), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ursa_notify_wait_finish(&n, &w[i]), 0);
    CHECK_EQ(q_len(&n), 1);
    CHECK_EQ(ursa_wait_cancel(&late), -ECANCELED);
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_order_raw(void **state)
{
    (void)state;
    ASSERT_OK(raw_order_body(NULL));
}

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
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(ursa_notify_waiters(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_notify_waiters_many(void **state)
{
    (void)state;
    ASSERT_OK(many_waiters_body(NULL));
}

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
            CHECK(wait_qlen(&o.n, (size_t)i + 1)); /* queue in order 0..3 */
        }
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(round == 0 ? ursa_notify_last(&o.n) : ursa_notify_one(&o.n), 1);
            /* let the woken one record itself before the next wake */
            ursa_time_t give_up = mono_ns() + URSA_SEC(20);
            for (unsigned long k = 0; atomic_load(&o.nseq) < i + 1; k++)
                CHECK(settle_loop(k, give_up));
        }
        for (int i = 0; i < 4; i++)
            CHECK_OK(join_task(t[i]));
        for (int i = 0; i < 4; i++)
            CHECK_EQ(o.seq[i], round == 0 ? 3 - i : i);
    }
    CHECK(!has_permit(&o.n));
    CHECK_EQ(ursa_notify_destroy(&o.n), 0);
    return NULL;
}

static void test_order_tasks_sim(void **state)
{
    (void)state;
    test_explore(order_scenario, NULL);
}

static void test_order_tasks_workers(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, order_scenario, NULL));
}

/* ====================================================================== */
/* a notification that reached a waiter which then withdraws goes on       */
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
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_wait_cancel(&b), -ECANCELED);
    CHECK(has_permit(&n));
    CHECK_EQ(q_len(&n), 0);

    /* a raw wait that took the stored permit and is cancelled puts it back */
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), 0);
    CHECK(ursa_wait_ready(&a));
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_wait_cancel(&a), -ECANCELED);
    CHECK(has_permit(&n));
    CHECK_EQ(ursa_notify_wait_start(&n, &a, cw_waker(&ca)), 0);
    CHECK_EQ(ursa_notify_wait_finish(&n, &a), 0);
    CHECK(!has_permit(&n));

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
    CHECK(!has_permit(&n));
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK_EQ(atomic_load(&cb.calls), 1);
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_raw_cancel_forwards(void **state)
{
    (void)state;
    ASSERT_OK(forward_raw_body(NULL));
}

/* The race in deterministic mode. At instant D, N notifies once while A's
 * deadline fires and/or C cancels A (or A, a raw or enabled waiter,
 * withdraws itself). B waits behind A until D + 1 ms. Whatever the order:
 * exactly one of A, B and the stored permit ends up with the notification. */
enum {
    FW_DEADLINE = 1,
    FW_CANCEL = 2,
    FW_RAW = 4,      /* A: raw wait, cancelled at D */
    FW_ENABLE = 8,   /* A: enabled wait, disabled at D */
    FW_ENWAIT = 16,  /* A: enabled wait, wait_enabled with deadline D */
    FW_LAST = 32,    /* notify_last; B queues before A */
};

typedef struct fw {
    int mode;
    ursa_notify_t n;
    ursa_time_t d;
    ursa_task_t *a;
    int a_ok, b_ok;
    long a_got, a_missed; /* over all seeds: A won / lost the race */
} fw_t;

static void *fw_a(void *arg)
{
    fw_t *f = arg;
    f->a_ok = 0;
    if (f->mode & FW_RAW) {
        ursa_wait_t w;
        cw_t cw;
        cw_init(&cw);
        CHECK_EQ(ursa_notify_wait_start(&f->n, &w, cw_waker(&cw)), -EINPROGRESS);
        (void)ursa_sleep_until(f->d);
        bool reached = ursa_wait_ready(&w);
        CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED); /* always withdraws */
        CHECK_EQ(atomic_load(&cw.calls), reached ? 1 : atomic_load(&cw.calls));
        if (atomic_load(&cw.calls))
            f->a_got++;
        else
            f->a_missed++;
        return NULL;
    }
    if (f->mode & (FW_ENABLE | FW_ENWAIT)) {
        ursa_wait_t w;
        CHECK_EQ(ursa_notify_enable(&f->n, &w), 0);
        if (f->mode & FW_ENABLE) {
            (void)ursa_sleep_until(f->d);
            int rc = ursa_notify_disable(&f->n, &w);
            CHECK(rc == 0 || rc == 1);
            if (rc == 1)
                f->a_got++; /* reached A and was passed on */
            else
                f->a_missed++;
            return NULL;
        }
        int rc = ursa_notify_wait_enabled(&f->n, &w, f->d);
        CHECK(rc == 0 || rc == -ETIMEDOUT);
        f->a_ok = rc == 0;
    } else {
        ursa_time_t dl = (f->mode & FW_DEADLINE) ? f->d : URSA_NEVER;
        int rc = ursa_notify_wait(&f->n, dl);
        if ((f->mode & FW_DEADLINE) && (f->mode & FW_CANCEL))
            CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED);
        else if (f->mode & FW_DEADLINE)
            CHECK(rc == 0 || rc == -ETIMEDOUT);
        else
            CHECK(rc == 0 || rc == -ECANCELED);
        f->a_ok = rc == 0;
    }
    if (f->a_ok)
        f->a_got++;
    else
        f->a_missed++;
    return NULL;
}

static void *fw_b(void *arg)
{
    fw_t *f = arg;
    int rc = ursa_notify_wait(&f->n, f->d + URSA_MSEC(1));
    CHECK(rc == 0 || rc == -ETIMEDOUT);
    f->b_ok = rc == 0;
    return NULL;
}

static void *fw_n(void *arg)
{
    fw_t *f = arg;
    CHECK_EQ(ursa_sleep_until(f->d), 0);
    CHECK_EQ((f->mode & FW_LAST) ? ursa_notify_last(&f->n) : ursa_notify_one(&f->n), 1);
    return NULL;
}

static void *fw_c(void *arg)
{
    fw_t *f = arg;
    CHECK_EQ(ursa_sleep_until(f->d), 0);
    CHECK_EQ(ursa_task_cancel(f->a), 0);
    return NULL;
}

static void *fw_scenario(void *arg)
{
    fw_t *f = arg;
    f->a_ok = f->b_ok = 0;
    CHECK_EQ(ursa_notify_init(&f->n), 0);
    f->d = ursa_now() + URSA_MSEC(10);
    ursa_task_t *b = NULL, *c = NULL;
    if (f->mode & FW_LAST) {
        b = spawn_on(0, fw_b, f, "B");
        CHECK(wait_qlen(&f->n, 1));
    }
    f->a = spawn_on(0, fw_a, f, "A");
    CHECK(f->a);
    CHECK(wait_qlen(&f->n, (f->mode & FW_LAST) ? 2 : 1));
    if (!(f->mode & FW_LAST)) {
        b = spawn_on(0, fw_b, f, "B");
        CHECK(wait_qlen(&f->n, 2));
    }
    CHECK(b);
    ursa_task_t *nt = spawn_on(0, fw_n, f, "N");
    CHECK(nt);
    if (f->mode & FW_CANCEL) {
        c = spawn_on(0, fw_c, f, "C");
        CHECK(c);
    }
    CHECK_OK(join_task(nt));
    if (c)
        CHECK_OK(join_task(c));
    CHECK_OK(join_task(f->a));
    CHECK_OK(join_task(b));
    int stored = ursa_notify_wait(&f->n, URSA_NOW) == 0;
    /* sent one, delivered exactly one */
    if (f->a_ok + f->b_ok + stored != 1)
        return (void *)failf("notification count: A %d + B %d + stored %d != 1", f->a_ok,
                             f->b_ok, stored);
    CHECK_EQ(q_len(&f->n), 0);
    CHECK_EQ(ursa_notify_destroy(&f->n), 0);
    return NULL;
}

static void fw_explore(int mode)
{
    fw_t f;
    memset(&f, 0, sizeof f);
    f.mode = mode;
    test_explore(fw_scenario, &f);
    const char *replay = getenv("URSA_SEED");
    if (TEST_SEEDS >= 50 && !(replay && *replay) && (f.a_got == 0 || f.a_missed == 0))
        fail_msg("mode %d: notification reached A %ld times, missed it %ld times: the race "
                 "was not exercised both ways",
                 mode, f.a_got, f.a_missed);
}

static void test_forward_race_deadline_sim(void **state)
{
    (void)state;
    fw_explore(FW_DEADLINE);
    fw_explore(FW_DEADLINE | FW_LAST);
}

static void test_forward_race_cancel_sim(void **state)
{
    (void)state;
    fw_explore(FW_CANCEL);
    fw_explore(FW_CANCEL | FW_DEADLINE);
}

static void test_forward_race_raw_sim(void **state)
{
    (void)state;
    fw_explore(FW_RAW);
    fw_explore(FW_RAW | FW_LAST);
}

static void test_forward_race_enabled_sim(void **state)
{
    (void)state;
    fw_explore(FW_ENABLE);
    fw_explore(FW_ENWAIT);
    fw_explore(FW_ENABLE | FW_LAST);
}

/* ====================================================================== */
/* enable before wait                                                      */
/* ====================================================================== */

static void *enable_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    ursa_wait_t w, w2;
    CHECK_EQ(ursa_notify_init(&n), 0);

    /* a notify between enable and wait is not lost */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(q_len(&n), 1);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_one(&n), 1); /* woke the enabled waiter, stored nothing */
    CHECK(!has_permit(&n));
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), -EINVAL); /* over */
    CHECK_EQ(q_len(&n), 0);

    /* notify_waiters reaches an enabled waiter that has not blocked */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0); /* the node can be reused */
    CHECK_EQ(ursa_notify_waiters(&n), 1);
    CHECK_EQ(ursa_notify_enable(&n, &w2), 0); /* enabled after: not woken */
    CHECK(!ursa_wait_ready(&w2));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NEVER), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w2, URSA_NOW), -EAGAIN); /* and withdrawn */
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w2), -EINVAL);

    /* enabled, deadline passes: -ETIMEDOUT, withdrawn */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, ursa_deadline_in(URSA_USEC(200))), -ETIMEDOUT);
    CHECK_EQ(q_len(&n), 0);

    /* enable consumes a stored permit at once */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK(!has_permit(&n));
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);

    /* disable before any notification: 0, nothing made */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w), 0);
    CHECK_EQ(ursa_notify_disable(&n, &w), -EINVAL);
    CHECK(!has_permit(&n));
    CHECK_EQ(q_len(&n), 0);

    /* disable after a notify_one: 1, passed on (here: to the permit) */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(has_permit(&n));
    /* ... or to the next enabled waiter */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0); /* takes the permit */
    CHECK_EQ(ursa_notify_enable(&n, &w2), 0);
    CHECK(ursa_wait_ready(&w) && !ursa_wait_ready(&w2));
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(ursa_wait_ready(&w2));
    CHECK(!has_permit(&n));
    CHECK_EQ(ursa_notify_wait_enabled(&n, &w2, URSA_NOW), 0);

    /* disable after notify_waiters: 1, nothing to pass on */
    CHECK_EQ(ursa_notify_enable(&n, &w), 0);
    CHECK_EQ(ursa_notify_waiters(&n), 1);
    CHECK_EQ(ursa_notify_disable(&n, &w), 1);
    CHECK(!has_permit(&n));
    CHECK_EQ(q_len(&n), 0);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_enable_thread(void **state)
{
    (void)state;
    ASSERT_OK(enable_body(NULL));
}

static void test_enable_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, body_on_worker1, (void *)enable_body));
}

static void test_enable_sim(void **state)
{
    (void)state;
    test_explore(enable_body, NULL);
}

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
        for (int i = 0; i < 4; i++)
            CHECK_OK(join_task(t[i]));
        CHECK_EQ(atomic_load(&f.seen), 3);
        CHECK_EQ(q_len(&f.n), 0);
        CHECK(!has_permit(&f.n));
        CHECK_EQ(ursa_notify_destroy(&f.n), 0);
    }
    return NULL;
}

static void test_enable_check_then_wait_workers(void **state)
{
    (void)state;
    long rounds = test_scale(1000);
    ASSERT_OK(test_run(2, flag_root, &rounds));
}

/* ====================================================================== */
/* three calling contexts                                                  */
/* ====================================================================== */

typedef struct ctx3 {
    ursa_notify_t n;
    int rc;
} ctx3_t;

static void *notify_from_thread(void *arg)
{
    ctx3_t *c = arg;
    /* wait until the task has queued, then notify */
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    while (q_len(&c->n) < 1 && mono_ns() < give_up)
        sleep_real_ms(1);
    c->rc = ursa_notify_one(&c->n);
    return NULL;
}

static void *waiting_thread(void *arg)
{
    ctx3_t *c = arg;
    c->rc = ursa_notify_wait(&c->n, ursa_deadline_in(URSA_SEC(20)));
    return NULL;
}

static void *notifier_task(void *arg)
{
    ctx3_t *c = arg;
    CHECK(wait_qlen(&c->n, 1));
    CHECK_EQ(ursa_worker_index(), 1);
    CHECK_EQ(ursa_notify_last(&c->n), 1);
    return NULL;
}

static void *waiter_task(void *arg)
{
    ctx3_t *c = arg;
    CHECK_EQ(ursa_notify_wait(&c->n, ursa_deadline_in(URSA_SEC(20))), 0);
    return NULL;
}

static void *contexts_root(void *arg)
{
    (void)arg;
    ctx3_t c;
    pthread_t th;

    /* a task (worker 0 and worker 1) waits, a plain thread notifies */
    for (int wk = 0; wk < 2; wk++) {
        CHECK_EQ(ursa_notify_init(&c.n), 0);
        c.rc = -1;
        CHECK_EQ(pthread_create(&th, NULL, notify_from_thread, &c), 0);
        CHECK_OK(join_task(spawn_on(wk, waiter_task, &c, "waiter")));
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_EQ(c.rc, 1);
        CHECK(!has_permit(&c.n));
        CHECK_EQ(ursa_notify_destroy(&c.n), 0);
    }

    /* a plain thread waits, a task on worker 1 notifies */
    CHECK_EQ(ursa_notify_init(&c.n), 0);
    c.rc = -1;
    CHECK_EQ(pthread_create(&th, NULL, waiting_thread, &c), 0);
    CHECK_OK(join_task(spawn_on(1, notifier_task, &c, "notifier")));
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(c.rc, 0);
    CHECK_EQ(q_len(&c.n), 0);
    CHECK_EQ(ursa_notify_destroy(&c.n), 0);
    return NULL;
}

static void test_contexts_task_thread(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, contexts_root, NULL));
}

/* A foreign event loop: raw wait whose waker writes an eventfd; another
 * thread notifies; the loop polls the eventfd and finishes. */
typedef struct efd_arg {
    ursa_notify_t *n;
    int rc;
} efd_arg_t;

static void *delayed_notify(void *arg)
{
    efd_arg_t *a = arg;
    sleep_real_ms(5);
    a->rc = ursa_notify_one(a->n);
    return NULL;
}

static void *raw_eventfd_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    CHECK(cw.efd >= 0);
    CHECK_EQ(ursa_notify_init(&n), 0);
    CHECK_EQ(ursa_notify_wait_start(&n, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EAGAIN);
    efd_arg_t a = {&n, -1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, delayed_notify, &a), 0);
    struct pollfd pfd = {.fd = cw.efd, .events = POLLIN};
    int prc = poll(&pfd, 1, 10000);
    bool ready = ursa_wait_ready(&w);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(prc, 1);
    CHECK(ready);
    CHECK_EQ(a.rc, 1);
    uint64_t v = 0;
    CHECK_EQ(read(cw.efd, &v, sizeof v), (ssize_t)sizeof v);
    CHECK_EQ(v, 1);
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), 0);
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK(!has_permit(&n)); /* consumed, not stored */
    /* the waker was called exactly once */
    sleep_real_ms(5);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    pfd.revents = 0;
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    /* a stored permit: start completes at once, no waker call */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_wait_start(&n, &w, cw_waker(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_notify_wait_finish(&n, &w), 0);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    close(cw.efd);
    CHECK_EQ(ursa_notify_destroy(&n), 0);
    return NULL;
}

static void test_raw_foreign_waker(void **state)
{
    (void)state;
    ASSERT_OK(raw_eventfd_body(NULL));
}

/* ====================================================================== */
/* multi-thread stress                                                     */
/* ====================================================================== */

/* Producers (pthreads and tasks on both workers) add a token and
 * notify_one; consumers take tokens, and wait when there are none, with a
 * plain wait (the stored permit closes the window) or enable/check/wait.
 * A lost wake-up would leave a consumer asleep with tokens left: it would
 * time out (counted, must be 0). Every token is consumed exactly once. */
typedef struct tok {
    ursa_notify_t n;
    atomic_long tokens, consumed, produced, timeouts;
    long per_producer, total;
    _Atomic(const char *) fail;
} tok_t;

static bool tok_take(tok_t *t)
{
    long v = atomic_load(&t->tokens);
    while (v > 0)
        if (atomic_compare_exchange_weak(&t->tokens, &v, v - 1)) {
            atomic_fetch_add(&t->consumed, 1);
            return true;
        }
    return false;
}

static void *tok_producer(void *arg)
{
    tok_t *t = arg;
    for (long i = 0; i < t->per_producer; i++) {
        atomic_fetch_add(&t->tokens, 1);
        atomic_fetch_add(&t->produced, 1);
        CHECK(ursa_notify_one(&t->n) >= 0);
        if (i % 16 == 0)
            CHECK(ursa_notify_waiters(&t->n) >= 0); /* extra wakes are harmless */
        if (i % 64 == 0)
            (void)ursa_yield();
    }
    return NULL;
}

static void *tok_consumer(void *arg, bool enable)
{
    tok_t *t = arg;
    ursa_wait_t w;
    while (atomic_load(&t->consumed) < t->total) {
        if (tok_take(t))
            continue;
        int rc;
        if (enable) {
            CHECK_EQ(ursa_notify_enable(&t->n, &w), 0);
            if (atomic_load(&t->tokens) > 0 || atomic_load(&t->consumed) >= t->total) {
                int d = ursa_notify_disable(&t->n, &w);
                CHECK(d == 0 || d == 1);
                continue;
            }
            rc = ursa_notify_wait_enabled(&t->n, &w, ursa_deadline_in(URSA_SEC(5)));
        } else {
            rc = ursa_notify_wait(&t->n, ursa_deadline_in(URSA_SEC(5)));
        }
        if (rc == -ETIMEDOUT)
            atomic_fetch_add(&t->timeouts, 1);
        else
            CHECK_EQ(rc, 0);
    }
    /* the last token taken: let the others see the end */
    CHECK(ursa_notify_waiters(&t->n) >= 0);
    CHECK(ursa_notify_one(&t->n) >= 0);
    return NULL;
}

static void *tok_consumer_plain(void *arg)
{
    return tok_consumer(arg, false);
}

static void *tok_consumer_enable(void *arg)
{
    return tok_consumer(arg, true);
}

static void *tok_root(void *arg)
{
    tok_t *t = arg;
    pthread_t th[4];
    void *thres[4];
    ursa_task_t *tk[6];
    CHECK_EQ(ursa_notify_init(&t->n), 0);
    /* 3 producers (2 tasks, 1 thread); 5 consumers (3 tasks, 2 threads) */
    t->total = 3 * t->per_producer;
    tk[0] = spawn_on(0, tok_consumer_plain, t, "cons-plain");
    tk[1] = spawn_on(1, tok_consumer_enable, t, "cons-enable");
    tk[2] = spawn_on(1, tok_consumer_plain, t, "cons-plain");
    CHECK_EQ(pthread_create(&th[0], NULL, tok_consumer_plain, t), 0);
    CHECK_EQ(pthread_create(&th[1], NULL, tok_consumer_enable, t), 0);
    tk[3] = spawn_on(0, tok_producer, t, "prod");
    tk[4] = spawn_on(1, tok_producer, t, "prod");
    CHECK_EQ(pthread_create(&th[2], NULL, tok_producer, t), 0);
    const char *msg = NULL;
    for (int i = 0; i < 5; i++) {
        const char *m = join_task(tk[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(th[i], &thres[i]), 0);
        if (thres[i] && !msg)
            msg = thres[i];
    }
    CHECK_OK(msg);
    CHECK_EQ(atomic_load(&t->produced), t->total);
    CHECK_EQ(atomic_load(&t->consumed), t->total);
    CHECK_EQ(atomic_load(&t->tokens), 0);
    CHECK_EQ(atomic_load(&t->timeouts), 0);
    CHECK_EQ(q_len(&t->n), 0);
    int left = ursa_notify_wait(&t->n, URSA_NOW); /* a permit may be left stored */
    CHECK(left == 0 || left == -EAGAIN);
    CHECK_EQ(ursa_notify_destroy(&t->n), 0);
    return NULL;
}

static void test_stress_tokens(void **state)
{
    (void)state;
    tok_t t;
    memset(&t, 0, sizeof t);
    t.per_producer = test_scale(20000);
    ASSERT_OK(test_run(2, tok_root, &t));
}

/* Notifications made (calls that returned 1) against notifications taken
 * (waits that returned 0), with waits of every kind timing out, being
 * cancelled and withdrawn at random meanwhile. A withdrawn waiter passes
 * its notification on; when it finds the permit already stored, it is
 * absorbed exactly as a notify_one would be (the permit does not count
 * up). In deterministic mode nothing runs between a waiter's look at the
 * state and its withdrawal, so absorptions are counted and the books must
 * balance exactly: made == taken + absorbed + stored. With real threads
 * they cannot be counted, and taken + stored <= made must hold. */
static const char *cons_check(long made, long taken, long absorbed, long left, bool exact)
{
    if (exact ? made != taken + absorbed + left : taken + left > made)
        return failf("made %ld notifications, taken %ld, absorbed %ld, stored at the end %ld",
                     made, taken, absorbed, left);
    return NULL;
}

typedef struct cons {
    ursa_notify_t n;
    long iters;
    atomic_long made, taken, absorbed;
    atomic_int stop;
    bool exact;      /* deterministic mode: count absorptions */
    bool no_forward; /* no withdrawals after the fact: nothing is absorbed */
    uint64_t seed;
} cons_t;

typedef struct cons_arg {
    cons_t *c;
    uint64_t seed;
} cons_arg_t;

static void *cons_notifier(void *arg)
{
    cons_arg_t *a = arg;
    cons_t *c = a->c;
    uint64_t x = a->seed;
    for (long i = 0; i < c->iters; i++) {
        int rc = (xorshift(&x) & 1) ? ursa_notify_one(&c->n) : ursa_notify_last(&c->n);
        CHECK(rc == 0 || rc == 1);
        atomic_fetch_add(&c->made, rc);
        if ((xorshift(&x) & 7) == 0)
            (void)ursa_yield();
    }
    return NULL;
}

static void *cons_waiter(void *arg)
{
    cons_arg_t *a = arg;
    cons_t *c = a->c;
    uint64_t x = a->seed;
    long taken = 0, waits = 0;
    while (!atomic_load(&c->stop)) {
        waits++;
        int rc;
        ursa_wait_t w;
        unsigned pick = (unsigned)(xorshift(&x) % 5);
        if (c->no_forward && (pick == 2 || pick == 4))
            pick = pick == 2 ? 1 : 3; /* only waits that keep what reaches them */
        switch (pick) {
        case 0:
            rc = ursa_notify_wait(&c->n, URSA_NOW);
            CHECK(rc == 0 || rc == -EAGAIN);
            break;
        case 1:
            rc = ursa_notify_wait(&c->n, ursa_deadline_in((ursa_time_t)(xorshift(&x) % 20000)));
            CHECK(rc == 0 || rc == -ETIMEDOUT);
            break;
        case 2: {
            CHECK_EQ(ursa_notify_enable(&c->n, &w), 0);
            if (xorshift(&x) & 1)
                (void)ursa_yield();
            bool pre = has_permit(&c->n);
            int d = ursa_notify_disable(&c->n, &w);
            CHECK(d == 0 || d == 1);
            if (c->exact && d == 1 && pre)
                atomic_fetch_add(&c->absorbed, 1);
            rc = -1; /* passed on, never taken */
            break;
        }
        case 3:
            CHECK_EQ(ursa_notify_enable(&c->n, &w), 0);
            (void)ursa_yield();
            rc = ursa_notify_wait_enabled(&c->n, &w,
                                          ursa_deadline_in((ursa_time_t)(xorshift(&x) % 20000)));
            CHECK(rc == 0 || rc == -ETIMEDOUT);
            break;
        default: {
            cw_t cw;
            cw_init(&cw);
            rc = ursa_notify_wait_start(&c->n, &w, cw_waker(&cw));
            CHECK(rc == 0 || rc == -EINPROGRESS);
            (void)ursa_yield();
            if ((xorshift(&x) & 1) && ursa_wait_ready(&w)) {
                CHECK_EQ(ursa_notify_wait_finish(&c->n, &w), 0);
                rc = 0;
            } else {
                bool pre = has_permit(&c->n), reached = ursa_wait_ready(&w);
                CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
                if (c->exact && pre && reached)
                    atomic_fetch_add(&c->absorbed, 1);
                rc = -1;
            }
            break;
        }
        }
        if (rc == 0)
            taken++;
    }
    atomic_fetch_add(&c->taken, taken);
    return NULL;
}

static void *cons_root(void *arg)
{
    cons_t *c = arg;
    enum { NT = 2, WT = 3, NTH = 1, WTH = 1 };
    cons_arg_t args[NT + WT + NTH + WTH];
    ursa_task_t *nt[NT], *wt[WT];
    pthread_t nth[NTH], wth[WTH];
    void *res;
    const char *msg = NULL;
    CHECK_EQ(ursa_notify_init(&c->n), 0);
    for (int i = 0; i < NT + WT + NTH + WTH; i++)
        args[i] = (cons_arg_t){c, c->seed * 7919 + (uint64_t)i * 104729 + 1};
    int k = 0;
    for (int i = 0; i < WT; i++)
        wt[i] = spawn_on(i % 2, cons_waiter, &args[k++], "waiter");
    for (int i = 0; i < WTH; i++)
        CHECK_EQ(pthread_create(&wth[i], NULL, cons_waiter, &args[k++]), 0);
    for (int i = 0; i < NT; i++)
        nt[i] = spawn_on(i % 2, cons_notifier, &args[k++], "notifier");
    for (int i = 0; i < NTH; i++)
        CHECK_EQ(pthread_create(&nth[i], NULL, cons_notifier, &args[k++]), 0);
    for (int i = 0; i < NT; i++) {
        const char *m = join_task(nt[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < NTH; i++) {
        CHECK_EQ(pthread_join(nth[i], &res), 0);
        if (res && !msg)
            msg = res;
    }
    atomic_store(&c->stop, 1);
    for (int i = 0; i < WT; i++) {
        const char *m = join_task(wt[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < WTH; i++) {
        CHECK_EQ(pthread_join(wth[i], &res), 0);
        if (res && !msg)
            msg = res;
    }
    CHECK_OK(msg);
    CHECK_EQ(q_len(&c->n), 0);
    long left = ursa_notify_wait(&c->n, URSA_NOW) == 0;
    CHECK_OK(cons_check(atomic_load(&c->made), atomic_load(&c->taken),
                        atomic_load(&c->absorbed), left, c->exact));
    CHECK_EQ(ursa_notify_destroy(&c->n), 0);
    return NULL;
}

static void test_stress_conservation(void **state)
{
    (void)state;
    cons_t c;
    memset(&c, 0, sizeof c);
    c.iters = test_scale(30000);
    c.seed = 12345;
    ASSERT_OK(test_run(2, cons_root, &c));
    /* Only waits that keep a notification that reached them (blocking
     * waits racing their deadlines, tries, enabled waits): exact. */
    memset(&c, 0, sizeof c);
    c.iters = test_scale(30000);
    c.seed = 777;
    c.no_forward = c.exact = true;
    ASSERT_OK(test_run(2, cons_root, &c));
}

/* The same in deterministic mode over many seeds (smaller). */
static void *cons_sim(void *arg)
{
    cons_t *c = arg;
    memset(c, 0, sizeof *c);
    c->iters = 40;
    c->exact = true;
    c->seed = (uint64_t)ursa_now() + 1;
    cons_arg_t args[5];
    ursa_task_t *t[5];
    CHECK_EQ(ursa_notify_init(&c->n), 0);
    for (int i = 0; i < 5; i++) {
        args[i] = (cons_arg_t){c, (uint64_t)i * 2654435761u + 7};
        t[i] = spawn_on(0, i < 2 ? cons_notifier : cons_waiter, &args[i], "t");
        CHECK(t[i]);
    }
    CHECK_OK(join_task(t[0]));
    CHECK_OK(join_task(t[1]));
    atomic_store(&c->stop, 1);
    for (int i = 2; i < 5; i++)
        CHECK_OK(join_task(t[i]));
    CHECK_EQ(q_len(&c->n), 0);
    long left = ursa_notify_wait(&c->n, URSA_NOW) == 0;
    CHECK_OK(cons_check(atomic_load(&c->made), atomic_load(&c->taken),
                        atomic_load(&c->absorbed), left, c->exact));
    CHECK_EQ(ursa_notify_destroy(&c->n), 0);
    return NULL;
}

static void test_conservation_sim(void **state)
{
    (void)state;
    cons_t c;
    test_explore(cons_sim, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_single_permit_thread),
        cmocka_unit_test(test_single_permit_task),
        cmocka_unit_test(test_single_permit_sim),
        cmocka_unit_test(test_order_raw),
        cmocka_unit_test(test_notify_waiters_many),
        cmocka_unit_test(test_order_tasks_sim),
        cmocka_unit_test(test_order_tasks_workers),
        cmocka_unit_test(test_raw_cancel_forwards),
        cmocka_unit_test(test_forward_race_deadline_sim),
        cmocka_unit_test(test_forward_race_cancel_sim),
        cmocka_unit_test(test_forward_race_raw_sim),
        cmocka_unit_test(test_forward_race_enabled_sim),
        cmocka_unit_test(test_enable_thread),
        cmocka_unit_test(test_enable_task),
        cmocka_unit_test(test_enable_sim),
        cmocka_unit_test(test_enable_check_then_wait_workers),
        cmocka_unit_test(test_contexts_task_thread),
        cmocka_unit_test(test_raw_foreign_waker),
        cmocka_unit_test(test_stress_tokens),
        cmocka_unit_test(test_stress_conservation),
        cmocka_unit_test(test_conservation_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
