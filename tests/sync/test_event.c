/* Tests for events (include/ursa/event.h, src/sync/event.c).
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
#include "ursa/event.h"

/* ---- failure messages ---- */

#include "task_checks.h"

/* ---- event inspection ---- */

static size_t q_len(ursa_event_t *e)
{
    size_t k = 0;
    ursa__spin_lock(&e->lock);
    for (ursa_wait_t *w = e->head; w; w = w->next)
        k++;
    ursa__spin_unlock(&e->lock);
    return k;
}

static bool wait_qlen(ursa_event_t *e, size_t k)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; q_len(e) < k; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

static bool wait_count(atomic_int *c, int v)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; atomic_load(c) < v; i++)
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
    ursa_event_t e, e2;
    ursa_wait_t w, wz;
    memset(&w, 0, sizeof w);
    memset(&wz, 0, sizeof wz);
    cw_t cw;
    cw_init(&cw);

    CHECK_EQ(ursa_event_init(NULL, URSA_EVENT_AUTO, false), -EINVAL);
    CHECK_EQ(ursa_event_init(&e, (ursa_event_mode_t)0, false), -EINVAL);
    CHECK_EQ(ursa_event_init(&e, (ursa_event_mode_t)3, false), -EINVAL);
    CHECK_EQ(ursa_event_destroy(NULL), -EINVAL);
    CHECK_EQ(ursa_event_set(NULL), -EINVAL);
    CHECK_EQ(ursa_event_reset(NULL), -EINVAL);
    CHECK(!ursa_event_is_set(NULL));
    CHECK_EQ(ursa_event_wait(NULL, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    CHECK_EQ(ursa_event_init(&e2, URSA_EVENT_MANUAL, false), 0);
    CHECK_EQ(ursa_event_wait_start(NULL, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_event_wait_start(&e, NULL, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_event_wait_start(&e, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    CHECK_EQ(ursa_event_wait_finish(NULL, &wz), -EINVAL);
    CHECK_EQ(ursa_event_wait_finish(&e, NULL), -EINVAL);
    CHECK_EQ(ursa_event_wait_finish(&e, &wz), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&wz), -EINVAL);
    CHECK(!ursa_event_is_set(&e));

    test_capture_leaks();
    CHECK_EQ(ursa_event_wait_start(&e, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_event_wait_finish(&e, &w), -EAGAIN);
    CHECK_EQ(ursa_event_wait_finish(&e2, &w), -EINVAL); /* another event */
    CHECK_EQ(ursa_event_destroy(&e), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(q_len(&e), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK_EQ(ursa_event_wait_finish(&e, &w), -EINVAL);
    CHECK_EQ(q_len(&e), 0);
    CHECK(!ursa_event_is_set(&e)); /* withdrawn before a set: nothing made */
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_event_destroy(&e), 0);
    CHECK_EQ(ursa_event_destroy(&e2), 0);
    CHECK_EQ(test_leak_count(), 1);
    return NULL;
}

static void test_args_errors(void **state)
{
    (void)state;
    ASSERT_OK(args_body(NULL));
}

/* ====================================================================== */
/* single-caller semantics                                                 */
/* ====================================================================== */

static void *auto_basic_body(void *arg)
{
    (void)arg;
    ursa_event_t e;
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(URSA_USEC(200))), -ETIMEDOUT);
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(q_len(&e), 0);

    /* saturating: two sets, one pass */
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK_EQ(ursa_event_set(&e), 0);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), 0);
    CHECK(!ursa_event_is_set(&e)); /* consumed */
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), -EAGAIN);

    /* stays set until a waiter consumes it; a blocking wait takes it */
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_event_is_set(&e));
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_wait(&e, URSA_NEVER), 0);
    CHECK(!ursa_event_is_set(&e));

    /* reset clears an unconsumed set */
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK_EQ(ursa_event_reset(&e), 1);
    CHECK_EQ(ursa_event_reset(&e), 0);
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_event_destroy(&e), 0);

    /* initially set */
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_AUTO, true), 0);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(URSA_MSEC(1))), 0);
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(URSA_USEC(100))), -ETIMEDOUT);
    CHECK_EQ(ursa_event_destroy(&e), 0);
    return NULL;
}

static void *manual_basic_body(void *arg)
{
    (void)arg;
    ursa_event_t e;
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_MANUAL, false), 0);
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(URSA_USEC(200))), -ETIMEDOUT);
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK_EQ(ursa_event_set(&e), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(ursa_event_wait(&e, URSA_NOW), 0); /* stays set */
        CHECK_EQ(ursa_event_wait(&e, URSA_NEVER), 0);
        CHECK(ursa_event_is_set(&e));
    }
    CHECK_EQ(ursa_event_reset(&e), 1);
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_event_wait(&e, ursa_deadline_in(URSA_USEC(100))), -ETIMEDOUT);
    CHECK_EQ(ursa_event_reset(&e), 0);
    CHECK_EQ(ursa_event_destroy(&e), 0);
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_MANUAL, true), 0);
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), 0);
    CHECK_EQ(ursa_event_wait(&e, URSA_NOW), 0);
    CHECK_EQ(ursa_event_destroy(&e), 0);
    return NULL;
}

static void test_auto_basic_thread(void **state)
{
    (void)state;
    ASSERT_OK(auto_basic_body(NULL));
}

static void test_auto_basic_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, body_on_worker1, (void *)auto_basic_body));
    test_explore(auto_basic_body, NULL);
}

static void test_manual_basic(void **state)
{
    (void)state;
    ASSERT_OK(manual_basic_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)manual_basic_body));
    test_explore(manual_basic_body, NULL);
}

/* ====================================================================== */
/* auto-reset: one set, one waiter; manual-reset: all                       */
/* ====================================================================== */

static void *raw_auto_one_body(void *arg)
{
    (void)arg;
    enum { N = 8 };
    ursa_event_t e;
    ursa_wait_t w[N];
    cw_t cw[N];
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    for (int i = 0; i < N; i++) {
        cw_init(&cw[i]);
        CHECK_EQ(ursa_event_wait_start(&e, &w[i], cw_waker(&cw[i])), -EINPROGRESS);
    }
    /* one set with 8 waiting: exactly the oldest goes, the event stays unset */
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_wait_ready(&w[0]));
    for (int i = 1; i < N; i++)
        CHECK(!ursa_wait_ready(&w[i]));
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(q_len(&e), N - 1);
    /* each further set releases the next, in order */
    for (int i = 1; i < N; i++) {
        CHECK_EQ(ursa_event_set(&e), 1);
        CHECK(ursa_wait_ready(&w[i]));
        if (i + 1 < N)
            CHECK(!ursa_wait_ready(&w[i + 1]));
        CHECK(!ursa_event_is_set(&e));
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&cw[i].calls), 1);
        CHECK_EQ(ursa_event_wait_finish(&e, &w[i]), 0);
    }
    CHECK_EQ(q_len(&e), 0);
    CHECK(!ursa_event_is_set(&e));

    /* a raw wait released and then cancelled gives the set back: to the
     * next waiter, or to the event */
    CHECK_EQ(ursa_event_wait_start(&e, &w[0], cw_waker(&cw[0])), -EINPROGRESS);
    CHECK_EQ(ursa_event_wait_start(&e, &w[1], cw_waker(&cw[1])), -EINPROGRESS);
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_wait_ready(&w[0]) && !ursa_wait_ready(&w[1]));
    CHECK_EQ(ursa_wait_cancel(&w[0]), -ECANCELED);
    CHECK(ursa_wait_ready(&w[1]));
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(ursa_wait_cancel(&w[1]), -ECANCELED);
    CHECK(ursa_event_is_set(&e));
    /* a raw wait that passed at start (took the set) and is cancelled */
    CHECK_EQ(ursa_event_wait_start(&e, &w[2], cw_waker(&cw[2])), 0);
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(ursa_wait_cancel(&w[2]), -ECANCELED);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_wait_start(&e, &w[2], cw_waker(&cw[2])), 0);
    CHECK_EQ(ursa_event_wait_finish(&e, &w[2]), 0);
    CHECK(!ursa_event_is_set(&e));
    CHECK_EQ(atomic_load(&cw[2].calls), 1); /* no waker call for an immediate pass */
    CHECK_EQ(ursa_event_destroy(&e), 0);
    return NULL;
}

static void test_auto_one_per_set_raw(void **state)
{
    (void)state;
    ASSERT_OK(raw_auto_one_body(NULL));
}

static void *raw_manual_all_body(void *arg)
{
    (void)arg;
    enum { N = 100 }; /* more than any internal batch */
    static ursa_wait_t w[N];
    static cw_t cw[N];
    ursa_event_t e;
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_MANUAL, false), 0);
    for (int i = 0; i < N; i++) {
        cw_init(&cw[i]);
        CHECK_EQ(ursa_event_wait_start(&e, &w[i], cw_waker(&cw[i])), -EINPROGRESS);
    }
    CHECK_EQ(q_len(&e), N);
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(q_len(&e), 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&cw[i].calls), 1);
        CHECK(ursa_wait_ready(&w[i]));
    }
    /* cancel of a released manual wait gives nothing back (there is none) */
    CHECK_EQ(ursa_wait_cancel(&w[0]), -ECANCELED);
    CHECK(ursa_event_is_set(&e));
    for (int i = 1; i < N; i++)
        CHECK_EQ(ursa_event_wait_finish(&e, &w[i]), 0);
    /* set: later waits pass at once, without a waker call */
    CHECK_EQ(ursa_event_wait_start(&e, &w[0], cw_waker(&cw[0])), 0);
    CHECK_EQ(ursa_event_wait_finish(&e, &w[0]), 0);
    CHECK_EQ(atomic_load(&cw[0].calls), 1);
    /* reset: new waiters queue again */
    CHECK_EQ(ursa_event_reset(&e), 1);
    CHECK_EQ(ursa_event_wait_start(&e, &w[0], cw_waker(&cw[0])), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w[0]));
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_wait_ready(&w[0]));
    CHECK_EQ(ursa_event_wait_finish(&e, &w[0]), 0);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(ursa_event_destroy(&e), 0);
    return NULL;
}

static void test_manual_releases_all_raw(void **state)
{
    (void)state;
    ASSERT_OK(raw_manual_all_body(NULL));
}

/* 8 blocking tasks on an event. Auto: 1 set releases exactly one (the
 * others stay queued); 8 sets release each waiter exactly once. Manual:
 * one set releases all 8, and the event stays set until reset. */
typedef struct eight {
    ursa_event_t e;
    atomic_int slot, released;
    int times[8];
    int order[8];
} eight_t;

typedef struct eight_arg {
    eight_t *g;
    int id;
} eight_arg_t;

static void *eight_waiter(void *arg)
{
    eight_arg_t *a = arg;
    CHECK_EQ(ursa_event_wait(&a->g->e, ursa_deadline_in(URSA_SEC(30))), 0);
    a->g->times[a->id]++;
    a->g->order[atomic_fetch_add(&a->g->slot, 1)] = a->id;
    atomic_fetch_add(&a->g->released, 1); /* after the writes: publishes them */
    return NULL;
}

static void *eight_root(void *arg)
{
    bool spread = arg != NULL; /* across 2 workers, or all on this one */
    for (int mode = URSA_EVENT_AUTO; mode <= URSA_EVENT_MANUAL; mode++) {
        eight_t g;
        eight_arg_t a[8];
        ursa_task_t *t[8];
        memset(&g, 0, sizeof g);
        CHECK_EQ(ursa_event_init(&g.e, (ursa_event_mode_t)mode, false), 0);
        for (int i = 0; i < 8; i++) {
            a[i] = (eight_arg_t){&g, i};
            t[i] = spawn_on(spread ? i % 2 : 0, eight_waiter, &a[i], "waiter");
            CHECK(t[i]);
            CHECK(wait_qlen(&g.e, (size_t)i + 1));
        }
        if (mode == URSA_EVENT_AUTO) {
            CHECK_EQ(ursa_event_set(&g.e), 1);
            CHECK(wait_count(&g.released, 1));
            for (int k = 0; k < 50; k++)
                (void)ursa_yield(); /* give a wrong second release time to show */
            CHECK_EQ(atomic_load(&g.released), 1);
            CHECK_EQ(q_len(&g.e), 7);
            CHECK(!ursa_event_is_set(&g.e));
            CHECK_EQ(g.order[0], 0); /* the oldest */
            for (int i = 1; i < 8; i++) {
                CHECK_EQ(ursa_event_set(&g.e), 1);
                CHECK(wait_count(&g.released, i + 1));
                CHECK_EQ(g.order[i], i); /* FIFO */
            }
            CHECK(!ursa_event_is_set(&g.e));
        } else {
            CHECK_EQ(ursa_event_set(&g.e), 1);
            CHECK(wait_count(&g.released, 8));
            CHECK(ursa_event_is_set(&g.e));
            CHECK_EQ(ursa_event_wait(&g.e, URSA_NOW), 0);
            CHECK_EQ(ursa_event_reset(&g.e), 1);
            CHECK_EQ(ursa_event_wait(&g.e, URSA_NOW), -EAGAIN);
        }
        for (int i = 0; i < 8; i++)
            CHECK_OK(join_task(t[i]));
        for (int i = 0; i < 8; i++)
            CHECK_EQ(g.times[i], 1);
        CHECK_EQ(atomic_load(&g.released), 8);
        CHECK_EQ(q_len(&g.e), 0);
        CHECK_EQ(ursa_event_destroy(&g.e), 0);
    }
    return NULL;
}

static void test_eight_waiters_sim(void **state)
{
    (void)state;
    test_explore(eight_root, NULL);
}

static void test_eight_waiters_workers(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, eight_root, (void *)1));
}

/* ====================================================================== */
/* a set racing a timeout or cancel is never lost                          */
/* ====================================================================== */

/* At instant D, S sets the event once while A's deadline fires and/or C
 * cancels A (or A, a raw waiter, withdraws at D). B waits behind A until
 * D + 1 ms. Auto-reset: exactly one of A, B and the event's state ends up
 * with the set. Manual-reset: B always passes, the event stays set. */
enum { EV_DEADLINE = 1, EV_CANCEL = 2, EV_RAW = 4, EV_MANUAL = 8 };

typedef struct er {
    int mode;
    ursa_event_t e;
    ursa_time_t d;
    ursa_task_t *a;
    int a_ok, b_ok;
    long a_got, a_missed;
} er_t;

static void *er_a(void *arg)
{
    er_t *r = arg;
    r->a_ok = 0;
    if (r->mode & EV_RAW) {
        ursa_wait_t w;
        cw_t cw;
        cw_init(&cw);
        CHECK_EQ(ursa_event_wait_start(&r->e, &w, cw_waker(&cw)), -EINPROGRESS);
        (void)ursa_sleep_until(r->d);
        CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED); /* always withdraws */
        if (atomic_load(&cw.calls))
            r->a_got++;
        else
            r->a_missed++;
        return NULL;
    }
    ursa_time_t dl = (r->mode & EV_DEADLINE) ? r->d : URSA_NEVER;
    int rc = ursa_event_wait(&r->e, dl);
    if ((r->mode & EV_DEADLINE) && (r->mode & EV_CANCEL))
        CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED);
    else if (r->mode & EV_DEADLINE)
        CHECK(rc == 0 || rc == -ETIMEDOUT);
    else
        CHECK(rc == 0 || rc == -ECANCELED);
    r->a_ok = rc == 0;
    if (r->a_ok)
        r->a_got++;
    else
        r->a_missed++;
    return NULL;
}

static void *er_b(void *arg)
{
    er_t *r = arg;
    int rc = ursa_event_wait(&r->e, r->d + URSA_MSEC(1));
    CHECK(rc == 0 || rc == -ETIMEDOUT);
    r->b_ok = rc == 0;
    return NULL;
}

static void *er_s(void *arg)
{
    er_t *r = arg;
    CHECK_EQ(ursa_sleep_until(r->d), 0);
    CHECK_EQ(ursa_event_set(&r->e), 1);
    return NULL;
}

static void *er_c(void *arg)
{
    er_t *r = arg;
    CHECK_EQ(ursa_sleep_until(r->d), 0);
    CHECK_EQ(ursa_task_cancel(r->a), 0);
    return NULL;
}

static void *er_scenario(void *arg)
{
    er_t *r = arg;
    r->a_ok = r->b_ok = 0;
    CHECK_EQ(ursa_event_init(&r->e, (r->mode & EV_MANUAL) ? URSA_EVENT_MANUAL : URSA_EVENT_AUTO,
                             false),
             0);
    r->d = ursa_now() + URSA_MSEC(10);
    r->a = spawn_on(0, er_a, r, "A");
    CHECK(r->a);
    CHECK(wait_qlen(&r->e, 1));
    ursa_task_t *b = spawn_on(0, er_b, r, "B");
    CHECK(b);
    CHECK(wait_qlen(&r->e, 2));
    ursa_task_t *s = spawn_on(0, er_s, r, "S"), *c = NULL;
    CHECK(s);
    if (r->mode & EV_CANCEL) {
        c = spawn_on(0, er_c, r, "C");
        CHECK(c);
    }
    CHECK_OK(join_task(s));
    if (c)
        CHECK_OK(join_task(c));
    CHECK_OK(join_task(r->a));
    CHECK_OK(join_task(b));
    CHECK_EQ(q_len(&r->e), 0);
    if (r->mode & EV_MANUAL) {
        CHECK_EQ(r->b_ok, 1);
        CHECK(ursa_event_is_set(&r->e));
    } else {
        int left = ursa_event_is_set(&r->e);
        if (r->a_ok + r->b_ok + left != 1)
            return (void *)failf("set count: A %d + B %d + still set %d != 1", r->a_ok, r->b_ok,
                                 left);
    }
    CHECK_EQ(ursa_event_destroy(&r->e), 0);
    return NULL;
}

static void er_explore(int mode)
{
    er_t r;
    memset(&r, 0, sizeof r);
    r.mode = mode;
    test_explore(er_scenario, &r);
    const char *replay = getenv("URSA_SEED");
    if (TEST_SEEDS >= 50 && !(replay && *replay) && (r.a_got == 0 || r.a_missed == 0))
        fail_msg("mode %d: the set reached A %ld times, missed it %ld times: the race was not "
                 "exercised both ways",
                 mode, r.a_got, r.a_missed);
}

static void test_set_race_timeout_sim(void **state)
{
    (void)state;
    er_explore(EV_DEADLINE);
    er_explore(EV_DEADLINE | EV_MANUAL);
}

static void test_set_race_cancel_sim(void **state)
{
    (void)state;
    er_explore(EV_CANCEL);
    er_explore(EV_CANCEL | EV_DEADLINE);
    er_explore(EV_CANCEL | EV_MANUAL);
}

static void test_set_race_raw_sim(void **state)
{
    (void)state;
    er_explore(EV_RAW);
    er_explore(EV_RAW | EV_MANUAL);
}

/* ====================================================================== */
/* three calling contexts                                                  */
/* ====================================================================== */

typedef struct ctx3 {
    ursa_event_t e;
    int rc;
} ctx3_t;

static void *set_from_thread(void *arg)
{
    ctx3_t *c = arg;
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    while (q_len(&c->e) < 1 && mono_ns() < give_up)
        sleep_real_ms(1);
    c->rc = ursa_event_set(&c->e);
    return NULL;
}

static void *waiting_thread(void *arg)
{
    ctx3_t *c = arg;
    c->rc = ursa_event_wait(&c->e, ursa_deadline_in(URSA_SEC(20)));
    return NULL;
}

static void *setter_task(void *arg)
{
    ctx3_t *c = arg;
    CHECK(wait_qlen(&c->e, 1));
    CHECK_EQ(ursa_worker_index(), 1);
    CHECK_EQ(ursa_event_set(&c->e), 1);
    return NULL;
}

static void *waiter_task(void *arg)
{
    ctx3_t *c = arg;
    CHECK_EQ(ursa_event_wait(&c->e, ursa_deadline_in(URSA_SEC(20))), 0);
    return NULL;
}

static void *contexts_root(void *arg)
{
    (void)arg;
    ctx3_t c;
    pthread_t th;
    for (int mode = URSA_EVENT_AUTO; mode <= URSA_EVENT_MANUAL; mode++) {
        /* a task (worker 0, then 1) waits, a plain thread sets */
        for (int wk = 0; wk < 2; wk++) {
            CHECK_EQ(ursa_event_init(&c.e, (ursa_event_mode_t)mode, false), 0);
            c.rc = -1;
            CHECK_EQ(pthread_create(&th, NULL, set_from_thread, &c), 0);
            CHECK_OK(join_task(spawn_on(wk, waiter_task, &c, "waiter")));
            CHECK_EQ(pthread_join(th, NULL), 0);
            CHECK_EQ(c.rc, 1);
            CHECK_EQ(ursa_event_is_set(&c.e), mode == URSA_EVENT_MANUAL);
            CHECK_EQ(ursa_event_destroy(&c.e), 0);
        }
        /* a plain thread waits, a task on worker 1 sets */
        CHECK_EQ(ursa_event_init(&c.e, (ursa_event_mode_t)mode, false), 0);
        c.rc = -1;
        CHECK_EQ(pthread_create(&th, NULL, waiting_thread, &c), 0);
        CHECK_OK(join_task(spawn_on(1, setter_task, &c, "setter")));
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_EQ(c.rc, 0);
        CHECK_EQ(ursa_event_is_set(&c.e), mode == URSA_EVENT_MANUAL);
        CHECK_EQ(ursa_event_destroy(&c.e), 0);
    }
    return NULL;
}

static void test_contexts_task_thread(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, contexts_root, NULL));
}

typedef struct efd_arg {
    ursa_event_t *e;
    int rc;
} efd_arg_t;

static void *delayed_set(void *arg)
{
    efd_arg_t *a = arg;
    sleep_real_ms(5);
    a->rc = ursa_event_set(a->e);
    return NULL;
}

static void *raw_eventfd_body(void *arg)
{
    (void)arg;
    for (int mode = URSA_EVENT_AUTO; mode <= URSA_EVENT_MANUAL; mode++) {
        ursa_event_t e;
        ursa_wait_t w;
        cw_t cw;
        cw_init(&cw);
        cw.efd = eventfd(0, EFD_CLOEXEC);
        CHECK(cw.efd >= 0);
        CHECK_EQ(ursa_event_init(&e, (ursa_event_mode_t)mode, false), 0);
        CHECK_EQ(ursa_event_wait_start(&e, &w, cw_waker(&cw)), -EINPROGRESS);
        CHECK(!ursa_wait_ready(&w));
        CHECK_EQ(ursa_event_wait_finish(&e, &w), -EAGAIN);
        efd_arg_t a = {&e, -1};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, delayed_set, &a), 0);
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
        CHECK_EQ(ursa_event_wait_finish(&e, &w), 0);
        CHECK_EQ(ursa_event_wait_finish(&e, &w), -EINVAL);
        CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
        CHECK_EQ(ursa_event_is_set(&e), mode == URSA_EVENT_MANUAL);
        sleep_real_ms(5);
        CHECK_EQ(atomic_load(&cw.calls), 1);
        pfd.revents = 0;
        CHECK_EQ(poll(&pfd, 1, 0), 0);
        close(cw.efd);
        CHECK_EQ(ursa_event_destroy(&e), 0);
    }
    return NULL;
}

static void test_raw_foreign_waker(void **state)
{
    (void)state;
    ASSERT_OK(raw_eventfd_body(NULL));
}

/* ====================================================================== */
/* multi-thread stress: sets made == sets consumed (auto-reset)             */
/* ====================================================================== */

/* Setters (tasks on both workers and a plain thread) count the sets they
 * made (set returned 1); waiters (tasks and a plain thread) wait with
 * short random deadlines so that timeouts race sets all the time, and
 * count the sets they consumed (wait returned 0). A timed-out waiter must
 * never swallow a set: made == consumed + (still set at the end). With
 * `raw`, waiters also use raw waits that they cancel at random; a set that
 * reached one of them is given back, but may then be absorbed by an event
 * that was set again meanwhile (as a second set would be), so only
 * consumed + left <= made can be checked there. */
typedef struct est {
    ursa_event_t e;
    long iters;
    bool raw;
    atomic_long made, taken, timeouts;
    atomic_int stop;
} est_t;

typedef struct est_arg {
    est_t *s;
    uint64_t seed;
} est_arg_t;

static void *est_setter(void *arg)
{
    est_arg_t *a = arg;
    est_t *s = a->s;
    uint64_t x = a->seed;
    for (long i = 0; i < s->iters; i++) {
        int rc = ursa_event_set(&s->e);
        CHECK(rc == 0 || rc == 1);
        atomic_fetch_add(&s->made, rc);
        unsigned r = (unsigned)(xorshift(&x) & 7);
        if (r == 0)
            (void)ursa_yield();
        else if (r == 1)
            (void)ursa_sleep_for((ursa_time_t)(xorshift(&x) % 5000));
    }
    return NULL;
}

static void *est_waiter(void *arg)
{
    est_arg_t *a = arg;
    est_t *s = a->s;
    uint64_t x = a->seed;
    long taken = 0, timeouts = 0;
    while (!atomic_load(&s->stop)) {
        unsigned pick = (unsigned)(xorshift(&x) % (s->raw ? 4 : 3));
        if (pick == 0) {
            int rc = ursa_event_wait(&s->e, URSA_NOW);
            CHECK(rc == 0 || rc == -EAGAIN);
            taken += rc == 0;
        } else if (pick < 3) {
            int rc = ursa_event_wait(&s->e, ursa_deadline_in((ursa_time_t)(xorshift(&x) % 20000)));
            CHECK(rc == 0 || rc == -ETIMEDOUT);
            taken += rc == 0;
            timeouts += rc == -ETIMEDOUT;
        } else {
            ursa_wait_t w;
            cw_t cw;
            cw_init(&cw);
            int rc = ursa_event_wait_start(&s->e, &w, cw_waker(&cw));
            CHECK(rc == 0 || rc == -EINPROGRESS);
            (void)ursa_yield();
            if ((xorshift(&x) & 1) && ursa_wait_ready(&w)) {
                CHECK_EQ(ursa_event_wait_finish(&s->e, &w), 0);
                taken++;
            } else {
                CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
            }
        }
    }
    atomic_fetch_add(&s->taken, taken);
    atomic_fetch_add(&s->timeouts, timeouts);
    return NULL;
}

static void *est_root(void *arg)
{
    est_t *s = arg;
    est_arg_t args[7];
    ursa_task_t *set_t[2], *wait_t[3];
    pthread_t set_th, wait_th;
    void *res;
    const char *msg = NULL;
    CHECK_EQ(ursa_event_init(&s->e, URSA_EVENT_AUTO, false), 0);
    for (int i = 0; i < 7; i++)
        args[i] = (est_arg_t){s, (uint64_t)i * 0x9E3779B97F4A7C15ull + 3};
    for (int i = 0; i < 3; i++)
        wait_t[i] = spawn_on(i % 2, est_waiter, &args[i], "waiter");
    CHECK_EQ(pthread_create(&wait_th, NULL, est_waiter, &args[3]), 0);
    for (int i = 0; i < 2; i++)
        set_t[i] = spawn_on(i % 2, est_setter, &args[4 + i], "setter");
    CHECK_EQ(pthread_create(&set_th, NULL, est_setter, &args[6]), 0);
    for (int i = 0; i < 2; i++) {
        const char *m = join_task(set_t[i]);
        if (m && !msg)
            msg = m;
    }
    CHECK_EQ(pthread_join(set_th, &res), 0);
    if (res && !msg)
        msg = res;
    atomic_store(&s->stop, 1);
    for (int i = 0; i < 3; i++) {
        const char *m = join_task(wait_t[i]);
        if (m && !msg)
            msg = m;
    }
    CHECK_EQ(pthread_join(wait_th, &res), 0);
    if (res && !msg)
        msg = res;
    CHECK_OK(msg);
    CHECK_EQ(q_len(&s->e), 0);
    long made = atomic_load(&s->made), taken = atomic_load(&s->taken);
    long left = ursa_event_is_set(&s->e);
    if (s->raw ? taken + left > made : made != taken + left)
        return (void *)failf("sets made %ld, consumed %ld, still set %ld", made, taken, left);
    CHECK(taken > 0);
    CHECK_EQ(ursa_event_destroy(&s->e), 0);
    return NULL;
}

static void test_stress_sets_conserved(void **state)
{
    (void)state;
    est_t s;
    memset(&s, 0, sizeof s);
    s.iters = test_scale(20000);
    ASSERT_OK(test_run(2, est_root, &s));
    memset(&s, 0, sizeof s);
    s.iters = test_scale(20000);
    s.raw = true;
    ASSERT_OK(test_run(2, est_root, &s));
}

/* The same on one worker in deterministic mode, many seeds: exact, and
 * with raw waits too (nothing runs between a look and a cancel, so an
 * absorbed give-back can be counted). */
typedef struct esim {
    est_t s;
    atomic_long absorbed;
} esim_t;

static void *esim_raw_waiter(void *arg)
{
    est_arg_t *a = arg;
    esim_t *m = (esim_t *)a->s;
    uint64_t x = a->seed;
    long taken = 0;
    while (!atomic_load(&m->s.stop)) {
        ursa_wait_t w;
        cw_t cw;
        cw_init(&cw);
        int rc = ursa_event_wait_start(&m->s.e, &w, cw_waker(&cw));
        CHECK(rc == 0 || rc == -EINPROGRESS);
        (void)ursa_yield();
        if (xorshift(&x) & 1)
            (void)ursa_sleep_for((ursa_time_t)(xorshift(&x) % 3000));
        if ((xorshift(&x) & 1) && ursa_wait_ready(&w)) {
            CHECK_EQ(ursa_event_wait_finish(&m->s.e, &w), 0);
            taken++;
        } else {
            bool reached = ursa_wait_ready(&w), pre = ursa_event_is_set(&m->s.e);
            CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
            if (reached && pre)
                atomic_fetch_add(&m->absorbed, 1);
        }
    }
    atomic_fetch_add(&m->s.taken, taken);
    return NULL;
}

static void *esim_scenario(void *arg)
{
    esim_t *m = arg;
    memset(m, 0, sizeof *m);
    m->s.iters = 30;
    est_arg_t args[5];
    ursa_task_t *t[5];
    CHECK_EQ(ursa_event_init(&m->s.e, URSA_EVENT_AUTO, false), 0);
    for (int i = 0; i < 5; i++) {
        args[i] = (est_arg_t){&m->s, (uint64_t)i * 2654435761u + 11};
        ursa_task_fn_t fn = i < 2 ? est_setter : i == 2 ? esim_raw_waiter : est_waiter;
        t[i] = spawn_on(0, fn, &args[i], "t");
        CHECK(t[i]);
    }
    CHECK_OK(join_task(t[0]));
    CHECK_OK(join_task(t[1]));
    atomic_store(&m->s.stop, 1);
    for (int i = 2; i < 5; i++)
        CHECK_OK(join_task(t[i]));
    CHECK_EQ(q_len(&m->s.e), 0);
    long made = atomic_load(&m->s.made), taken = atomic_load(&m->s.taken);
    long absorbed = atomic_load(&m->absorbed), left = ursa_event_is_set(&m->s.e);
    if (made != taken + absorbed + left)
        return (void *)failf("sets made %ld, consumed %ld, absorbed %ld, still set %ld", made,
                             taken, absorbed, left);
    CHECK_EQ(ursa_event_destroy(&m->s.e), 0);
    return NULL;
}

static void test_sets_conserved_sim(void **state)
{
    (void)state;
    esim_t m;
    test_explore(esim_scenario, &m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_auto_basic_thread),
        cmocka_unit_test(test_auto_basic_task),
        cmocka_unit_test(test_manual_basic),
        cmocka_unit_test(test_auto_one_per_set_raw),
        cmocka_unit_test(test_manual_releases_all_raw),
        cmocka_unit_test(test_eight_waiters_sim),
        cmocka_unit_test(test_eight_waiters_workers),
        cmocka_unit_test(test_set_race_timeout_sim),
        cmocka_unit_test(test_set_race_cancel_sim),
        cmocka_unit_test(test_set_race_raw_sim),
        cmocka_unit_test(test_contexts_task_thread),
        cmocka_unit_test(test_raw_foreign_waker),
        cmocka_unit_test(test_stress_sets_conserved),
        cmocka_unit_test(test_sets_conserved_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
