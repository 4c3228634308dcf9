/* Tests for the counting semaphore (include/ursa/semaphore.h) beyond the
 * contract (tests/contract/): argument errors, 64-bit counts, tries and
 * expired deadlines with partial requests, close, add and forget. Queue
 * order and partial permits: test_semaphore_queue.c; the races on threads:
 * test_semaphore_stress.c; raw waits: test_semaphore_raw.c; permits as
 * obligations: test_semaphore_permit.c. */
#include "support.h"

#include "queue_peek.h" /* internal: inspect the wait queue */
#include "task_checks.h"

/* ====================================================================== */
/* init / destroy / argument errors                                       */
/* ====================================================================== */

static void *args_body(void *arg)
{
    (void)arg;
    ursa_sem_t s, s2;
    ursa_sem_permit_t p = {0};
    ursa_wait_t w, wz;
    memset(&w, 0, sizeof w);
    memset(&wz, 0, sizeof wz);
    cw_t cw;
    cw_init(&cw);

    CHECK_EQ(ursa_sem_init(NULL, 1), -EINVAL);
    CHECK_EQ(ursa_sem_init(&s, URSA_SEM_MAX + 1), -EINVAL);
    CHECK_EQ(ursa_sem_init(&s, UINT64_MAX), -EINVAL);
    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    CHECK_EQ(ursa_sem_destroy(NULL), -EINVAL);

    CHECK_EQ(ursa_sem_init(&s, 3), 0);
    CHECK(!ursa_sem_is_closed(&s));
    size_t h0 = ursa_held_count();

    /* acquire: bad arguments fail at once, even with URSA_NEVER */
    CHECK_EQ(ursa_sem_acquire(NULL, 1, &p, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, 1, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, 0, &p, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_REQUEST_MAX + 1, &p, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, UINT64_MAX, &p, URSA_NEVER), -EINVAL);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(peek_sema_len(&s.sema), 0);

    /* p already holding: -EINVAL, and neither p nor the count moves */
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NEVER), -EINVAL);
    CHECK(p.sem == &s);
    CHECK_EQ(p.n, 1);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), 3);

    CHECK_EQ(ursa_sem_release(NULL), -EINVAL);
    CHECK_EQ(ursa_sem_permit_forget(NULL), -EINVAL);
    CHECK_EQ(ursa_sem_add(NULL, 1), -EINVAL);
    CHECK_EQ(ursa_sem_add(&s, 0), -EINVAL);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX + 1), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_sem_forget(NULL, 5), 0);
    CHECK_EQ(ursa_sem_available(NULL), 0);
    CHECK_EQ(ursa_sem_close(NULL), -EINVAL);
    CHECK(!ursa_sem_is_closed(NULL));

    /* raw form */
    CHECK_EQ(ursa_sem_acquire_start(NULL, 1, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_start(&s, 0, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_start(&s, URSA_SEM_REQUEST_MAX + 1, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, NULL, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_sem_acquire_finish(NULL, &wz, &p), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_finish(&s, NULL, &p), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wz, NULL), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wz, &p), -EINVAL); /* never started */
    CHECK_EQ(ursa_wait_cancel(NULL), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&wz), -EINVAL);
    CHECK(!ursa_wait_ready(NULL));
    CHECK(p.sem == NULL);

    /* destroy while waited on: -EBUSY (a misuse report), nothing changed */
    test_capture_leaks();
    CHECK_EQ(ursa_sem_acquire_start(&s, 5, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_len(&s.sema), 1);
    CHECK_EQ(ursa_sem_destroy(&s), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(peek_sema_len(&s.sema), 1);
    CHECK_EQ(peek_sema_head_got(&s.sema), 3);
    /* finishing on another semaphore is refused */
    CHECK_EQ(ursa_sem_init(&s2, 1), 0);
    CHECK_EQ(ursa_sem_acquire_finish(&s2, &w, &p), -EINVAL);
    CHECK_EQ(ursa_sem_destroy(&s2), 0);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL); /* already withdrawn */
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);

    /* releasing a permit that was never acquired: -EINVAL, reported */
    ursa_sem_permit_t z = {0};
    CHECK_EQ(ursa_sem_release(&z), -EINVAL);
    CHECK_EQ(test_leak_count(), 2);
    CHECK_EQ(ursa_held_count(), h0);
    return NULL;
}

TEST_BODY(test_sem_rejects_bad_arguments_and_destroy_while_waited, args_body(NULL))

/* 64-bit counts: URSA_SEM_MAX = 2^60 permits; one request asks for at
 * most URSA_SEM_REQUEST_MAX (2^32 - 1) of them. */
static void *counts64_body(void *arg)
{
    (void)arg;
    const uint64_t big = URSA_SEM_REQUEST_MAX;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, a);
    URSA_SCOPED(sem_permit, b);
    URSA_SCOPED(sem_permit, c);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);

    CHECK_EQ(ursa_sem_init(&s, URSA_SEM_MAX), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_acquire(&s, big, &a, URSA_NOW), 0);
    CHECK_EQ(a.n, big);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX - big);
    /* a larger request is refused, with nothing changed */
    CHECK_EQ(ursa_sem_acquire(&s, big + 1, &b, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_MAX, &b, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_sem_acquire_start(&s, big + 1, &w, cw_waker(&cw)), -EINVAL);
    CHECK(b.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX - big);

    /* a maximal request queues with a partial assignment, is granted by a
     * release of a maximal one */
    CHECK_EQ(ursa_sem_forget(&s, URSA_SEM_MAX - big - 5), URSA_SEM_MAX - big - 5);
    CHECK_EQ(ursa_sem_acquire_start(&s, big, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_head_got(&s.sema), 5);
    CHECK_EQ(ursa_sem_release(&a), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &c), 0);
    CHECK_EQ(c.n, big);
    CHECK_EQ(ursa_sem_available(&s), 5);
    CHECK_EQ(ursa_sem_release(&c), 0);
    CHECK_EQ(ursa_sem_available(&s), big + 5);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - big - 5), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);

    CHECK_EQ(ursa_sem_forget(&s, URSA_SEM_MAX), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_add(&s, 1), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_counts_are_64_bit_and_one_request_at_most_request_max, counts64_body(NULL))

/* ====================================================================== */
/* try semantics: URSA_NOW and expired deadlines                          */
/* ====================================================================== */

static void *try_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 2), 0);
    /* not enough: -EAGAIN for URSA_NOW, -ETIMEDOUT for an expired deadline;
     * either way nothing held, nothing moved, nobody queued */
    CHECK_EQ(ursa_sem_acquire(&s, 3, &p, URSA_NOW), -EAGAIN);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(peek_sema_len(&s.sema), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 3, &p, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(peek_sema_len(&s.sema), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 3, &p, ursa_deadline_in(-URSA_SEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(peek_sema_len(&s.sema), 0);

    /* enough: a try succeeds */
    CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(q.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_len(&s.sema), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);

    /* a short deadline really waits until it passes */
    ursa_time_t t0 = ursa_now();
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    CHECK(ursa_now() - t0 >= URSA_MSEC(2));
    CHECK(q.sem == NULL);
    CHECK_EQ(peek_sema_len(&s.sema), 0);

    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);

    /* closed: -EPIPE, even with permits there and a try / expired deadline */
    CHECK_EQ(ursa_sem_close(&s), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p, ursa_deadline_in(0)), -EPIPE);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_try_and_expired_deadlines_take_nothing_on_a_plain_thread, try_body(NULL))

TEST_BODY(test_sem_try_and_expired_deadlines_take_nothing_in_tasks,
          test_run(2, body_on_worker1, (void *)try_body))

/* virtual time */
TEST_EXPLORE(test_sem_try_and_expired_deadlines_take_nothing_over_seeds, try_body, NULL)

/* ====================================================================== */
/* close                                                                  */
/* ====================================================================== */

typedef struct closing {
    ursa_sem_t s;
    int rc_t1, rc_t2, rc_th, rc_late_th;
    ursa_wait_t w, w2; /* here, not on the root's stack: see stress_one_raw */
    cw_t cw, cw2;
} closing_t;

static void *close_t1(void *arg)
{
    closing_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    c->rc_t1 = ursa_sem_acquire(&c->s, 5, &p, URSA_NEVER);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

static void *close_t2(void *arg)
{
    closing_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    c->rc_t2 = ursa_sem_acquire(&c->s, 1, &p, ursa_deadline_in(URSA_SEC(60)));
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

static void *close_thread(void *arg)
{
    closing_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    c->rc_th = ursa_sem_acquire(&c->s, 2, &p, URSA_NEVER);
    return p.sem ? (void *)"thread holds after close" : NULL;
}

static void *close_late_thread(void *arg)
{
    closing_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    c->rc_late_th = ursa_sem_acquire(&c->s, 1, &p, URSA_NEVER);
    return NULL;
}

static void *close_root(void *arg)
{
    closing_t *c = arg;
    URSA_SCOPED(sem_permit, p0);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t *w = &c->w, *w2 = &c->w2;
    cw_t *cw = &c->cw, *cw2 = &c->cw2;
    cw_init(cw);
    cw_init(cw2);
    pthread_t th;
    void *thres = NULL;
    c->rc_t1 = c->rc_t2 = c->rc_th = c->rc_late_th = 1;

    CHECK_EQ(ursa_sem_init(&c->s, 3), 0);
    CHECK_EQ(ursa_sem_acquire(&c->s, 2, &p0, URSA_NOW), 0);
    ursa_task_t *t1 = spawn_on(1, close_t1, c, "t1");
    CHECK(t1);
    CHECK(SETTLE_UNTIL(peek_sema_len(&c->s.sema) >= (1))); /* t1 at the head, 1 permit assigned */
    ursa_task_t *t2 = spawn_on(0, close_t2, c, "t2");
    CHECK(t2);
    CHECK(SETTLE_UNTIL(peek_sema_len(&c->s.sema) >= (2)));
    CHECK_EQ(pthread_create(&th, NULL, close_thread, c), 0);
    CHECK(SETTLE_UNTIL(peek_sema_len(&c->s.sema) >= (3)));
    CHECK_EQ(ursa_sem_acquire_start(&c->s, 1, w, cw_waker(cw)), -EINPROGRESS);
    CHECK_EQ(peek_sema_len(&c->s.sema), 4);
    CHECK_EQ(peek_sema_head_got(&c->s.sema), 1);
    CHECK_EQ(ursa_sem_available(&c->s), 0);

    CHECK_EQ(ursa_sem_close(&c->s), 0);
    CHECK(ursa_sem_is_closed(&c->s));
    CHECK_EQ(peek_sema_len(&c->s.sema), 0);
    CHECK_EQ(ursa_sem_available(&c->s), 1); /* t1's partial permit is back */
    CHECK(ursa_wait_ready(w));
    CHECK_EQ(atomic_load(&cw->calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&c->s, w, &q), -EPIPE);
    CHECK(q.sem == NULL);
    CHECK_OK(join_task(t1));
    CHECK_OK(join_task(t2));
    CHECK_EQ(pthread_join(th, &thres), 0);
    CHECK_OK(thres);
    CHECK_EQ(c->rc_t1, -EPIPE);
    CHECK_EQ(c->rc_t2, -EPIPE);
    CHECK_EQ(c->rc_th, -EPIPE);

    /* later acquires fail with -EPIPE, whatever the deadline, even though a
     * permit is available */
    CHECK_EQ(ursa_sem_acquire(&c->s, 1, &q, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_sem_acquire(&c->s, 1, &q, ursa_deadline_in(0)), -EPIPE);
    CHECK_EQ(ursa_sem_acquire(&c->s, 1, &q, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_sem_acquire(&c->s, 5, &q, URSA_NEVER), -EPIPE);
    CHECK(q.sem == NULL);
    CHECK_EQ(ursa_sem_acquire_start(&c->s, 1, w2, cw_waker(cw2)), -EPIPE);
    CHECK_EQ(peek_sema_len(&c->s.sema), 0);
    CHECK_EQ(pthread_create(&th, NULL, close_late_thread, c), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(c->rc_late_th, -EPIPE);
    CHECK_EQ(ursa_held_count(), 1);

    /* held permits still go back and are counted; add works too */
    CHECK_EQ(ursa_sem_release(&p0), 0);
    CHECK_EQ(ursa_sem_available(&c->s), 3);
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(ursa_sem_add(&c->s, 1), 0);
    CHECK_EQ(ursa_sem_available(&c->s), 4);
    CHECK(ursa_sem_is_closed(&c->s));
    CHECK_EQ(ursa_sem_close(&c->s), 0); /* idempotent */
    CHECK_EQ(ursa_sem_available(&c->s), 4);
    CHECK_EQ(atomic_load(&cw2->calls), 0);
    CHECK_EQ(ursa_sem_destroy(&c->s), 0);
    return NULL;
}

static closing_t closing;
TEST_BODY(test_sem_close_fails_waiters_and_later_acquires_with_epipe,
          test_run_msg(2, close_root, &closing))

/* ====================================================================== */
/* add / forget                                                           */
/* ====================================================================== */

static void *add_limits_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);

    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_add(&s, 1), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_destroy(&s), 0);

    CHECK_EQ(ursa_sem_init(&s, 5), 0);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX), -EINVAL);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - 4), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), 5);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - 5), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_destroy(&s), 0);

    /* permits assigned to a queued waiter count toward the limit */
    CHECK_EQ(ursa_sem_init(&s, 2), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 5, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(peek_sema_head_got(&s.sema), 2);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - 1), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_head_got(&s.sema), 2);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - 2), 0); /* completes w */
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX - 5);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_add_beyond_the_maximum_is_einval, add_limits_body(NULL))

/* "total <= URSA_SEM_MAX" must hold for permits that are out on loan too:
 * otherwise giving them back overflows the count. */
static void *add_held_body(void *arg)
{
    (void)arg;
    const uint64_t held = URSA_SEM_REQUEST_MAX;
    ursa_sem_t s;
    ursa_sem_permit_t p = {0};
    CHECK_EQ(ursa_sem_init(&s, held), 0);
    CHECK_EQ(ursa_sem_acquire(&s, held, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    int rc_add = ursa_sem_add(&s, URSA_SEM_MAX - held + 1);
    uint64_t after_add = ursa_sem_available(&s);
    CHECK_EQ(ursa_sem_release(&p), 0);
    uint64_t after_release = ursa_sem_available(&s);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    if (rc_add != -EINVAL || after_release != held)
        return (void *)failf("with %llu permits held, ursa_sem_add(URSA_SEM_MAX - %llu + 1) "
                             "returned %d (expected -EINVAL), available %llu after the add "
                             "and %llu after the holder released (expected %llu)",
                             (unsigned long long)held, (unsigned long long)held, rc_add,
                             (unsigned long long)after_add, (unsigned long long)after_release,
                             (unsigned long long)held);
    return NULL;
}

TEST_BODY(test_sem_add_counts_permits_on_loan_toward_the_maximum, add_held_body(NULL))

/* Two threads add URSA_SEM_MAX to an empty semaphore at the same moment:
 * exactly one may succeed. The window is a few instructions wide, so this
 * runs rounds (the test thread is one of the two adders: two spinning
 * threads on this 2-core machine, no more) with a sweep of relative
 * timings until the first overlap or a time budget. */
typedef struct add_race {
    ursa_sem_t s;
    atomic_long arrive, done;
    atomic_bool stop;
    int rc_helper;
} add_race_t;

static bool spin_until_or(atomic_long *v, long want, atomic_bool *stop)
{
    for (unsigned i = 0; atomic_load(v) < want; i++) {
        if (stop && atomic_load(stop))
            return false;
        if (i < 2000)
            ursa__cpu_relax();
        else
            sched_yield();
    }
    return true;
}

/* Round r: both parties arrive (2r+2 arrivals in all), then both add. The
 * test thread re-initialises the semaphore before its next arrival, so the
 * helper's next add comes after that. */
static void *add_race_helper(void *arg)
{
    add_race_t *a = arg;
    for (long r = 0;; r++) {
        atomic_fetch_add(&a->arrive, 1);
        if (!spin_until_or(&a->arrive, 2 * r + 2, &a->stop))
            break;
        for (long k = r % 32; k; k--) /* sweep the relative timing */
            ursa__cpu_relax();
        a->rc_helper = ursa_sem_add(&a->s, URSA_SEM_MAX);
        atomic_fetch_add(&a->done, 1);
    }
    return NULL;
}

static void test_sem_concurrent_adds_never_exceed_the_maximum(void **state)
{
    (void)state;
    add_race_t a;
    memset(&a, 0, sizeof a);
    const long max_rounds = test_scale(400000);
    const ursa_time_t until = mono_ns() + URSA_MSEC(test_scale(1500));
    long r, bad = 0;
    int rc_main = 0;
    uint64_t av = 0;
    pthread_t th;
    assert_int_equal(ursa_sem_init(&a.s, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, add_race_helper, &a), 0);
    for (r = 0; r < max_rounds && !bad && (r % 256 || mono_ns() < until); r++) {
        atomic_fetch_add(&a.arrive, 1);
        spin_until_or(&a.arrive, 2 * r + 2, NULL);
        for (long k = (r / 32) % 32; k; k--)
            ursa__cpu_relax();
        rc_main = ursa_sem_add(&a.s, URSA_SEM_MAX);
        spin_until_or(&a.done, r + 1, NULL);
        av = ursa_sem_available(&a.s);
        if ((rc_main == 0) + (a.rc_helper == 0) != 1 || av != URSA_SEM_MAX)
            bad++;
        else
            (void)ursa_sem_init(&a.s, 0);
    }
    atomic_store(&a.stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (bad)
        fail_msg("round %ld: both concurrent ursa_sem_add(URSA_SEM_MAX) calls returned %d "
                 "and %d on an empty semaphore; available is now %llu (limit %llu)",
                 r - 1, rc_main, a.rc_helper, (unsigned long long)av,
                 (unsigned long long)URSA_SEM_MAX);
    print_message("concurrent add: %ld rounds, no overlap admitted\n", r);
}

typedef struct add_wake {
    ursa_sem_t s;
    int rc1, rc2, rc_th;
    ursa_wait_t w; /* here, not on the root's stack: see stress_one_raw */
    cw_t cw;
} add_wake_t;

static void *add_wake_task(void *arg)
{
    add_wake_t *a = arg;
    URSA_SCOPED(sem_permit, p);
    int rc = ursa_sem_acquire(&a->s, ursa_worker_index() == 1 ? 2 : 1, &p, URSA_NEVER);
    if (ursa_worker_index() == 1)
        a->rc1 = rc;
    else
        a->rc2 = rc;
    CHECK_EQ(rc, 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    return NULL;
}

static void *add_wake_thread(void *arg)
{
    add_wake_t *a = arg;
    URSA_SCOPED(sem_permit, p);
    a->rc_th = ursa_sem_acquire(&a->s, 1, &p, URSA_NEVER);
    if (a->rc_th == 0 && ursa_sem_release(&p) != 0)
        return (void *)"release failed";
    return NULL;
}

/* add wakes queued waiters of every kind, in FIFO order. */
static void *add_wake_root(void *arg)
{
    add_wake_t *a = arg;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t *w = &a->w;
    cw_t *cw = &a->cw;
    cw_init(cw);
    pthread_t th;
    void *thres = NULL;
    a->rc1 = a->rc2 = a->rc_th = 1;
    CHECK_EQ(ursa_sem_init(&a->s, 0), 0);
    ursa_task_t *t1 = spawn_on(1, add_wake_task, a, "w1"); /* wants 2 */
    CHECK(t1);
    CHECK(SETTLE_UNTIL(peek_sema_len(&a->s.sema) >= (1)));
    ursa_task_t *t2 = spawn_on(0, add_wake_task, a, "w2"); /* wants 1 */
    CHECK(t2);
    CHECK(SETTLE_UNTIL(peek_sema_len(&a->s.sema) >= (2)));
    CHECK_EQ(ursa_sem_acquire_start(&a->s, 1, w, cw_waker(cw)), -EINPROGRESS);
    CHECK_EQ(pthread_create(&th, NULL, add_wake_thread, a), 0);
    CHECK(SETTLE_UNTIL(peek_sema_len(&a->s.sema) >= (4)));

    CHECK_EQ(ursa_sem_add(&a->s, 3), 0); /* w1 and w2 */
    CHECK_EQ(peek_sema_len(&a->s.sema), 2);
    CHECK(!ursa_wait_ready(w));
    CHECK_OK(join_task(t1));
    CHECK_OK(join_task(t2));
    CHECK_EQ(a->rc1, 0);
    CHECK_EQ(a->rc2, 0);
    /* their 3 permits came back as they released: the raw wait and the
     * thread were served then */
    CHECK_EQ(peek_sema_len(&a->s.sema), 0);
    CHECK(ursa_wait_ready(w));
    CHECK_EQ(atomic_load(&cw->calls), 1);
    CHECK_EQ(pthread_join(th, &thres), 0);
    CHECK_OK(thres);
    CHECK_EQ(a->rc_th, 0);
    CHECK_EQ(ursa_sem_acquire_finish(&a->s, w, &p), 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&a->s), 3);
    CHECK_EQ(ursa_sem_destroy(&a->s), 0);
    return NULL;
}

static add_wake_t add_wake;
TEST_BODY(test_sem_add_wakes_every_kind_of_waiter_in_fifo_order,
          test_run_msg(2, add_wake_root, &add_wake))

static void *forget_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 5), 0);
    CHECK_EQ(ursa_sem_forget(&s, 3), 3);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_sem_forget(&s, 10), 2);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_forget(&s, 1), 0);
    CHECK_EQ(ursa_sem_forget(&s, 0), 0);

    /* only available permits go: held ones come back later */
    CHECK_EQ(ursa_sem_add(&s, 5), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_forget(&s, 5), 3);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), 2);

    /* permits assigned to a queued waiter are not available either */
    CHECK_EQ(ursa_sem_acquire_start(&s, 5, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_forget(&s, 5), 0);
    CHECK_EQ(peek_sema_head_got(&s.sema), 2);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_sem_available(&s), 2);

    /* permit_forget: discharges the hold, the permits are gone for good */
    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_available(&s), 1);
    CHECK_EQ(ursa_sem_permit_forget(&p), 0);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_available(&s), 1);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &q, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &q, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_release(&q), 0);
    CHECK_EQ(ursa_sem_available(&s), 2);
    /* a forgotten permit cannot be released (or forgotten) again */
    test_capture_leaks();
    CHECK_EQ(ursa_sem_release(&p), -EINVAL);
    CHECK_EQ(ursa_sem_permit_forget(&p), -EINVAL);
    CHECK_EQ(test_leak_count(), 2);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_forget_takes_only_available_permits, forget_body(NULL))

TEST_MAIN(cmocka_unit_test(test_sem_rejects_bad_arguments_and_destroy_while_waited),
          cmocka_unit_test(test_sem_counts_are_64_bit_and_one_request_at_most_request_max),
          cmocka_unit_test(test_sem_try_and_expired_deadlines_take_nothing_on_a_plain_thread),
          cmocka_unit_test(test_sem_try_and_expired_deadlines_take_nothing_in_tasks),
          cmocka_unit_test(test_sem_try_and_expired_deadlines_take_nothing_over_seeds),
          cmocka_unit_test(test_sem_close_fails_waiters_and_later_acquires_with_epipe),
          cmocka_unit_test(test_sem_add_beyond_the_maximum_is_einval),
          cmocka_unit_test(test_sem_add_counts_permits_on_loan_toward_the_maximum),
          cmocka_unit_test(test_sem_concurrent_adds_never_exceed_the_maximum),
          cmocka_unit_test(test_sem_add_wakes_every_kind_of_waiter_in_fifo_order),
          cmocka_unit_test(test_sem_forget_takes_only_available_permits))
