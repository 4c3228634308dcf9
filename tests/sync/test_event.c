/* Tests for events (include/ursa/event.h, src/sync/event.c) beyond the
 * contract (tests/contract/, rows event_auto and event_manual): argument
 * errors, auto-reset (one set, one waiter, in order) and manual-reset (all
 * waiters, stays set until reset) with raw waits and with tasks, and sets
 * conserved under stress (threads, and over seeds). */
#include "support.h"

#include "queue_peek.h" /* internal: the queue */
#include "task_checks.h"
#include "ursa/event.h"

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
    CHECK_EQ(peek_event_len(&e), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK_EQ(ursa_event_wait_finish(&e, &w), -EINVAL);
    CHECK_EQ(peek_event_len(&e), 0);
    CHECK(!ursa_event_is_set(&e)); /* withdrawn before a set: nothing made */
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_event_destroy(&e), 0);
    CHECK_EQ(ursa_event_destroy(&e2), 0);
    CHECK_EQ(test_leak_count(), 1);
    return NULL;
}

TEST_BODY(test_event_rejects_bad_arguments_and_destroy_while_waited, args_body(NULL))

/* ====================================================================== */
/* single-caller semantics                                                */
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
    CHECK_EQ(peek_event_len(&e), 0);

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

TEST_BODY(test_event_auto_passes_one_wait_per_set_on_a_plain_thread, auto_basic_body(NULL))

static void test_event_auto_passes_one_wait_per_set_in_tasks_and_over_seeds(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, body_on_worker1, (void *)auto_basic_body));
    test_explore(auto_basic_body, NULL);
}

static void test_event_manual_stays_set_until_reset(void **state)
{
    (void)state;
    ASSERT_OK(manual_basic_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)manual_basic_body));
    test_explore(manual_basic_body, NULL);
}

/* ====================================================================== */
/* auto-reset: one set, one waiter; manual-reset: all                     */
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
    CHECK_EQ(peek_event_len(&e), N - 1);
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
    CHECK_EQ(peek_event_len(&e), 0);
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

TEST_BODY(test_event_auto_releases_one_raw_waiter_per_set_in_order, raw_auto_one_body(NULL))

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
    CHECK_EQ(peek_event_len(&e), N);
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK(ursa_event_is_set(&e));
    CHECK_EQ(peek_event_len(&e), 0);
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

TEST_BODY(test_event_manual_releases_every_raw_waiter, raw_manual_all_body(NULL))

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
            CHECK(SETTLE_UNTIL(peek_event_len(&g.e) >= ((size_t)i + 1)));
        }
        if (mode == URSA_EVENT_AUTO) {
            CHECK_EQ(ursa_event_set(&g.e), 1);
            CHECK(SETTLE_UNTIL(atomic_load(&g.released) >= (1)));
            for (int k = 0; k < 50; k++)
                (void)ursa_yield(); /* give a wrong second release time to show */
            CHECK_EQ(atomic_load(&g.released), 1);
            CHECK_EQ(peek_event_len(&g.e), 7);
            CHECK(!ursa_event_is_set(&g.e));
            CHECK_EQ(g.order[0], 0); /* the oldest */
            for (int i = 1; i < 8; i++) {
                CHECK_EQ(ursa_event_set(&g.e), 1);
                CHECK(SETTLE_UNTIL(atomic_load(&g.released) >= (i + 1)));
                CHECK_EQ(g.order[i], i); /* FIFO */
            }
            CHECK(!ursa_event_is_set(&g.e));
        } else {
            CHECK_EQ(ursa_event_set(&g.e), 1);
            CHECK(SETTLE_UNTIL(atomic_load(&g.released) >= (8)));
            CHECK(ursa_event_is_set(&g.e));
            CHECK_EQ(ursa_event_wait(&g.e, URSA_NOW), 0);
            CHECK_EQ(ursa_event_reset(&g.e), 1);
            CHECK_EQ(ursa_event_wait(&g.e, URSA_NOW), -EAGAIN);
        }
        CHECK_OK(join_tasks(t, 8));
        for (int i = 0; i < 8; i++)
            CHECK_EQ(g.times[i], 1);
        CHECK_EQ(atomic_load(&g.released), 8);
        CHECK_EQ(peek_event_len(&g.e), 0);
        CHECK_EQ(ursa_event_destroy(&g.e), 0);
    }
    return NULL;
}

TEST_EXPLORE(test_event_releases_eight_tasks_one_per_set_or_all_at_once_over_seeds,
             eight_root, NULL)

TEST_BODY(test_event_releases_eight_tasks_one_per_set_or_all_at_once_on_two_workers,
          test_run(2, eight_root, (void *)1))

/* ====================================================================== */
/* multi-thread stress: sets made == sets consumed (auto-reset)           */
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
    CHECK_EQ(peek_event_len(&s->e), 0);
    long made = atomic_load(&s->made), taken = atomic_load(&s->taken);
    long left = ursa_event_is_set(&s->e);
    if (s->raw ? taken + left > made : made != taken + left)
        return (void *)failf("sets made %ld, consumed %ld, still set %ld", made, taken, left);
    CHECK(taken > 0);
    CHECK_EQ(ursa_event_destroy(&s->e), 0);
    return NULL;
}

static void test_event_sets_made_are_consumed_or_still_set_on_threads(void **state)
{
    (void)state;
    est_t s = {.iters = test_scale(20000)};
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
    CHECK_OK(join_tasks(t + 2, 3));
    CHECK_EQ(peek_event_len(&m->s.e), 0);
    long made = atomic_load(&m->s.made), taken = atomic_load(&m->s.taken);
    long absorbed = atomic_load(&m->absorbed), left = ursa_event_is_set(&m->s.e);
    if (made != taken + absorbed + left)
        return (void *)failf("sets made %ld, consumed %ld, absorbed %ld, still set %ld", made,
                             taken, absorbed, left);
    CHECK_EQ(ursa_event_destroy(&m->s.e), 0);
    return NULL;
}

static esim_t esim;
TEST_EXPLORE(test_event_sets_made_are_consumed_or_still_set_over_seeds, esim_scenario, &esim)

TEST_MAIN(cmocka_unit_test(test_event_rejects_bad_arguments_and_destroy_while_waited),
          cmocka_unit_test(test_event_auto_passes_one_wait_per_set_on_a_plain_thread),
          cmocka_unit_test(test_event_auto_passes_one_wait_per_set_in_tasks_and_over_seeds),
          cmocka_unit_test(test_event_manual_stays_set_until_reset),
          cmocka_unit_test(test_event_auto_releases_one_raw_waiter_per_set_in_order),
          cmocka_unit_test(test_event_manual_releases_every_raw_waiter),
          cmocka_unit_test(test_event_releases_eight_tasks_one_per_set_or_all_at_once_over_seeds),
          cmocka_unit_test(test_event_releases_eight_tasks_one_per_set_or_all_at_once_on_two_workers),
          cmocka_unit_test(test_event_sets_made_are_consumed_or_still_set_on_threads),
          cmocka_unit_test(test_event_sets_made_are_consumed_or_still_set_over_seeds))
