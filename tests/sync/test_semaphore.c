/* Tests for the counting semaphore (include/ursa/semaphore.h) and the batch
 * semaphore core under it (src/core/sema.c, src/core/wait.c).
 *
 * Most checks live in "bodies": functions that return NULL when they passed
 * or a message saying what failed (CHECK / CHECK_EQ below). A body can run
 * on the test's own (plain) thread, as the root task of a runtime, as a
 * spawned task on another worker, or as a deterministic scenario over many
 * seeds, and the cmocka assertion is made on the test's own stack, never
 * from a task stack. Holds inside bodies are URSA_SCOPED where possible so
 * that a failing check that returns early does not leak them. */
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/sema.h" /* internal: inspect the wait queue */

/* ---- failure messages ---- */

#include "task_checks.h"

/* ---- small helpers ---- */

/* Queue inspection, under the queue's own lock. */
static size_t q_len(ursa_sem_t *s)
{
    size_t n = 0;
    ursa__spin_lock(&s->sema.lock);
    for (ursa_wait_t *w = s->sema.head; w; w = w->next)
        n++;
    ursa__spin_unlock(&s->sema.lock);
    return n;
}

/* Permits assigned to the queue head so far (0 when empty). */
static uint64_t q_head_got(ursa_sem_t *s)
{
    ursa__spin_lock(&s->sema.lock);
    uint64_t got = s->sema.head ? s->sema.head->got : 0;
    ursa__spin_unlock(&s->sema.lock);
    return got;
}

/* Permits assigned to all queued waiters. */
static uint64_t q_got_sum(ursa_sem_t *s)
{
    uint64_t sum = 0;
    ursa__spin_lock(&s->sema.lock);
    for (ursa_wait_t *w = s->sema.head; w; w = w->next)
        sum += w->got;
    ursa__spin_unlock(&s->sema.lock);
    return sum;
}

static bool wait_qlen(ursa_sem_t *s, size_t n)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; q_len(s) < n; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

static bool wait_avail(ursa_sem_t *s, uint64_t v)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; ursa_sem_available(s) != v; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

static bool wait_flag(atomic_int *f, int v)
{
    ursa_time_t give_up = mono_ns() + URSA_SEC(20);
    for (unsigned long i = 0; atomic_load(f) != v; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

/* ====================================================================== */
/* init / destroy / argument errors                                        */
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
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_MAX + 1, &p, URSA_NEVER), -EINVAL);
    CHECK_EQ(ursa_sem_acquire(&s, UINT64_MAX, &p, URSA_NEVER), -EINVAL);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(q_len(&s), 0);

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
    CHECK_EQ(ursa_sem_acquire_start(&s, URSA_SEM_MAX + 1, &w, cw_waker(&cw)), -EINVAL);
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
    CHECK_EQ(q_len(&s), 1);
    CHECK_EQ(ursa_sem_destroy(&s), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(q_len(&s), 1);
    CHECK_EQ(q_head_got(&s), 3);
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

static void test_args_errors(void **state)
{
    (void)state;
    ASSERT_OK(args_body(NULL));
}

/* 64-bit counts: URSA_SEM_MAX = 2^61 permits, requests of 2^40. */
static void *counts64_body(void *arg)
{
    (void)arg;
    const uint64_t big = (uint64_t)1 << 40;
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
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_MAX, &b, URSA_NOW), -EAGAIN);
    CHECK(b.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX - big);
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_MAX - big, &b, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_release(&b), 0);
    CHECK_EQ(ursa_sem_available(&s), URSA_SEM_MAX - big);

    /* a maximal request queues with a 64-bit partial assignment */
    CHECK_EQ(ursa_sem_acquire_start(&s, URSA_SEM_MAX, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(q_head_got(&s), URSA_SEM_MAX - big);
    CHECK_EQ(ursa_sem_release(&a), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &c), 0);
    CHECK_EQ(c.n, URSA_SEM_MAX);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_release(&c), 0);
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

static void test_counts_64bit(void **state)
{
    (void)state;
    ASSERT_OK(counts64_body(NULL));
}

/* ====================================================================== */
/* try semantics: URSA_NOW and expired deadlines                           */
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
    CHECK_EQ(q_len(&s), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 3, &p, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(q_len(&s), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 3, &p, ursa_deadline_in(-URSA_SEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(q_len(&s), 0);

    /* enough: a try succeeds */
    CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(q.sem == NULL);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(q_len(&s), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);

    /* a short deadline really waits until it passes */
    ursa_time_t t0 = ursa_now();
    CHECK_EQ(ursa_sem_acquire(&s, 1, &q, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    CHECK(ursa_now() - t0 >= URSA_MSEC(2));
    CHECK(q.sem == NULL);
    CHECK_EQ(q_len(&s), 0);

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

static void test_try_thread(void **state)
{
    (void)state;
    ASSERT_OK(try_body(NULL));
}

static void test_try_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, body_on_worker1, (void *)try_body));
}

static void test_try_task_sim(void **state)
{
    (void)state;
    test_explore(try_body, NULL); /* virtual time */
}

/* ====================================================================== */
/* FIFO order                                                              */
/* ====================================================================== */

#define FIFO_N 5

typedef struct fifo {
    ursa_sem_t s;
    int workers;
    atomic_int norder;
    int order[8];
    atomic_int granted[8];
    atomic_int go;
} fifo_t;

typedef struct fifo_arg {
    fifo_t *f;
    int id;
    uint64_t n;
    bool hold_until_go;
} fifo_arg_t;

static void *fifo_waiter(void *arg)
{
    fifo_arg_t *a = arg;
    fifo_t *f = a->f;
    URSA_SCOPED(sem_permit, p);
    int rc = ursa_sem_acquire(&f->s, a->n, &p, URSA_NEVER);
    CHECK_EQ(rc, 0);
    CHECK_EQ(p.n, a->n);
    f->order[atomic_fetch_add(&f->norder, 1)] = a->id;
    atomic_store(&f->granted[a->id], 1);
    if (a->hold_until_go)
        CHECK(wait_flag(&f->go, 1));
    (void)ursa_yield(); /* hold across a switch */
    CHECK_EQ(ursa_sem_release(&p), 0);
    return NULL;
}

/* Tries to barge in with URSA_NOW while anyone queues. */
static void *fifo_barger(void *arg)
{
    fifo_t *f = arg;
    URSA_SCOPED(sem_permit, p);
    while (atomic_load(&f->norder) < FIFO_N) {
        if (ursa_sem_acquire(&f->s, 1, &p, URSA_NOW) == 0) {
            /* only once every waiter has had it (and given it back) */
            CHECK_EQ(atomic_load(&f->norder), FIFO_N);
            CHECK_EQ(ursa_sem_release(&p), 0);
            break;
        }
        (void)ursa_yield();
    }
    return NULL;
}

/* One permit circulates through FIFO_N queued waiters: they must get it in
 * the order they queued, and a barger never gets in between. */
static void *fifo_circulate_scenario(void *arg)
{
    fifo_t *f = arg;
    fifo_arg_t a[FIFO_N];
    ursa_task_t *t[FIFO_N];
    atomic_init(&f->norder, 0);
    CHECK_EQ(ursa_sem_init(&f->s, 0), 0);
    for (int i = 0; i < FIFO_N; i++) {
        a[i] = (fifo_arg_t){f, i, 1, false};
        t[i] = spawn_on(i % f->workers, fifo_waiter, &a[i], "waiter");
        CHECK(t[i]);
        CHECK(wait_qlen(&f->s, (size_t)i + 1)); /* queue in spawn order */
    }
    ursa_task_t *barger = spawn_on((FIFO_N + 1) % f->workers, fifo_barger, f, "barger");
    CHECK(barger);
    (void)ursa_yield();
    CHECK_EQ(ursa_sem_add(&f->s, 1), 0);
    for (int i = 0; i < FIFO_N; i++)
        CHECK_OK(join_task(t[i]));
    CHECK_OK(join_task(barger));
    CHECK_EQ(atomic_load(&f->norder), FIFO_N);
    for (int i = 0; i < FIFO_N; i++)
        CHECK_EQ(f->order[i], i);
    CHECK_EQ(ursa_sem_available(&f->s), 1);
    CHECK_EQ(q_len(&f->s), 0);
    CHECK_EQ(ursa_sem_destroy(&f->s), 0);
    return NULL;
}

/* A large request at the head: small later requests do not barge past it,
 * even when enough permits for them come back. */
static void *fifo_big_head_scenario(void *arg)
{
    fifo_t *f = arg;
    enum { L, S1, S2, S3, NW };
    const uint64_t want[NW] = {5, 1, 2, 4};
    fifo_arg_t a[NW];
    ursa_task_t *t[NW];
    URSA_SCOPED(sem_permit, probe);
    atomic_init(&f->norder, 0);
    atomic_init(&f->go, 0);
    for (int i = 0; i < NW; i++)
        atomic_init(&f->granted[i], 0);
    CHECK_EQ(ursa_sem_init(&f->s, 0), 0);
    for (int i = 0; i < NW; i++) {
        a[i] = (fifo_arg_t){f, i, want[i], i != L};
        t[i] = spawn_on(i % f->workers, fifo_waiter, &a[i], "waiter");
        CHECK(t[i]);
        CHECK(wait_qlen(&f->s, (size_t)i + 1));
    }
    CHECK_EQ(ursa_sem_add(&f->s, 1), 0);
    CHECK_EQ(q_len(&f->s), NW);
    CHECK_EQ(q_head_got(&f->s), 1);
    CHECK_EQ(ursa_sem_available(&f->s), 0);
    /* 3 more: S1 + S2 could be served, but they queue behind L */
    CHECK_EQ(ursa_sem_add(&f->s, 3), 0);
    CHECK_EQ(q_len(&f->s), NW);
    CHECK_EQ(q_head_got(&f->s), 4);
    CHECK_EQ(ursa_sem_available(&f->s), 0);
    CHECK_EQ(ursa_sem_acquire(&f->s, 1, &probe, URSA_NOW), -EAGAIN);
    for (int i = 0; i < NW; i++)
        CHECK_EQ(atomic_load(&f->granted[i]), 0);
    /* the 5th completes L */
    CHECK_EQ(ursa_sem_add(&f->s, 1), 0);
    CHECK_EQ(q_len(&f->s), NW - 1);
    CHECK_EQ(ursa_sem_available(&f->s), 0);
    /* L releases 5: S1 gets 1, S2 gets 2, S3 is assigned the last 2 */
    CHECK_OK(join_task(t[L]));
    CHECK_EQ(f->order[0], L);
    CHECK_EQ(q_len(&f->s), 1);
    CHECK_EQ(q_head_got(&f->s), 2);
    CHECK_EQ(ursa_sem_available(&f->s), 0);
    CHECK(wait_flag(&f->granted[S1], 1));
    CHECK(wait_flag(&f->granted[S2], 1));
    CHECK_EQ(atomic_load(&f->granted[S3]), 0);
    CHECK_EQ(ursa_sem_acquire(&f->s, 1, &probe, URSA_NOW), -EAGAIN);
    atomic_store(&f->go, 1);
    CHECK_OK(join_task(t[S1]));
    CHECK_OK(join_task(t[S2]));
    CHECK_OK(join_task(t[S3]));
    CHECK_EQ(atomic_load(&f->norder), NW);
    CHECK((f->order[1] == S1 && f->order[2] == S2) || (f->order[1] == S2 && f->order[2] == S1));
    CHECK_EQ(f->order[3], S3);
    CHECK_EQ(ursa_sem_available(&f->s), 5);
    CHECK_EQ(q_len(&f->s), 0);
    CHECK_EQ(ursa_sem_destroy(&f->s), 0);
    return NULL;
}

static void test_fifo_order_sim(void **state)
{
    (void)state;
    fifo_t f = {.workers = 1};
    test_explore(fifo_circulate_scenario, &f);
    test_explore(fifo_big_head_scenario, &f);
}

static void test_fifo_order_workers(void **state)
{
    (void)state;
    fifo_t f = {.workers = 2};
    for (long i = 0; i < test_scale(20); i++) {
        ASSERT_OK(test_run(2, fifo_circulate_scenario, &f));
        ASSERT_OK(test_run(2, fifo_big_head_scenario, &f));
    }
}

/* ====================================================================== */
/* batch acquire with partial assignment                                   */
/* ====================================================================== */

typedef struct batch {
    ursa_sem_t s;
    int workers;
    atomic_int done;
} batch_t;

static void *batch_waiter(void *arg)
{
    batch_t *b = arg;
    URSA_SCOPED(sem_permit, p);
    CHECK_EQ(ursa_sem_acquire(&b->s, 5, &p, URSA_NEVER), 0);
    CHECK_EQ(p.n, 5);
    CHECK_EQ(ursa_held_count(), 1);
    atomic_store(&b->done, 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    return NULL;
}

static void *batch_scenario(void *arg)
{
    batch_t *b = arg;
    URSA_SCOPED(sem_permit, p1);
    URSA_SCOPED(sem_permit, p2);
    URSA_SCOPED(sem_permit, p3);
    atomic_init(&b->done, 0);
    CHECK_EQ(ursa_sem_init(&b->s, 5), 0);
    CHECK_EQ(ursa_sem_acquire(&b->s, 1, &p1, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_acquire(&b->s, 1, &p2, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_acquire(&b->s, 1, &p3, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_available(&b->s), 2);

    ursa_task_t *t = spawn_on(b->workers - 1, batch_waiter, b, "batch");
    CHECK(t);
    CHECK(wait_qlen(&b->s, 1));
    /* 5 wanted, 2 there: both assigned, none left available */
    CHECK_EQ(q_head_got(&b->s), 2);
    CHECK_EQ(ursa_sem_available(&b->s), 0);
    CHECK_EQ(ursa_sem_release(&p1), 0);
    CHECK_EQ(q_head_got(&b->s), 3);
    CHECK_EQ(ursa_sem_available(&b->s), 0);
    CHECK_EQ(q_len(&b->s), 1);
    CHECK_EQ(ursa_sem_release(&p2), 0);
    CHECK_EQ(q_head_got(&b->s), 4);
    CHECK_EQ(ursa_sem_available(&b->s), 0);
    CHECK_EQ(q_len(&b->s), 1);
    CHECK_EQ(atomic_load(&b->done), 0);
    CHECK_EQ(ursa_sem_release(&p3), 0); /* completes it */
    CHECK_EQ(q_len(&b->s), 0);
    CHECK(ursa_sem_available(&b->s) == 0 || ursa_sem_available(&b->s) == 5);
    CHECK_OK(join_task(t));
    CHECK_EQ(atomic_load(&b->done), 1);
    CHECK_EQ(ursa_sem_available(&b->s), 5);
    CHECK_EQ(ursa_sem_destroy(&b->s), 0);
    return NULL;
}

static void test_batch_partial_sim(void **state)
{
    (void)state;
    batch_t b = {.workers = 1};
    test_explore(batch_scenario, &b);
}

static void test_batch_partial_workers(void **state)
{
    (void)state;
    batch_t b = {.workers = 2};
    ASSERT_OK(test_run(2, batch_scenario, &b));
}

/* ====================================================================== */
/* cancel hands partial permits on                                         */
/* ====================================================================== */

enum { CR_CANCEL, CR_DEADLINE, CR_THREAD };

typedef struct cret {
    ursa_sem_t s;
    int mode;
    int workers;
    int rc1, rc2;
    int held_after1;
    bool empty_after1;
} cret_t;

static void *cret_w1(void *arg)
{
    cret_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    ursa_time_t dl = c->mode == CR_CANCEL ? URSA_NEVER : ursa_deadline_in(URSA_SEC(1));
    c->rc1 = ursa_sem_acquire(&c->s, 5, &p, dl);
    c->held_after1 = (int)ursa_held_count();
    c->empty_after1 = p.sem == NULL && p.n == 0;
    return NULL;
}

static void *cret_w2(void *arg)
{
    cret_t *c = arg;
    URSA_SCOPED(sem_permit, p);
    c->rc2 = ursa_sem_acquire(&c->s, 3, &p, URSA_NEVER);
    CHECK_EQ(c->rc2, 0);
    CHECK_EQ(p.n, 3);
    CHECK_EQ(ursa_sem_release(&p), 0);
    return NULL;
}

static void *cret_w1_thread(void *arg)
{
    return cret_w1(arg);
}

static void *cret_scenario(void *arg)
{
    cret_t *c = arg;
    URSA_SCOPED(sem_permit, p0);
    pthread_t th;
    ursa_task_t *t1 = NULL;
    c->rc1 = c->rc2 = 1;
    CHECK_EQ(ursa_sem_init(&c->s, 5), 0);
    CHECK_EQ(ursa_sem_acquire(&c->s, 3, &p0, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_available(&c->s), 2);

    if (c->mode == CR_THREAD) {
        CHECK_EQ(pthread_create(&th, NULL, cret_w1_thread, c), 0);
    } else {
        t1 = spawn_on(c->workers - 1, cret_w1, c, "w1");
        CHECK(t1);
    }
    CHECK(wait_qlen(&c->s, 1));
    CHECK_EQ(q_head_got(&c->s), 2);
    CHECK_EQ(ursa_sem_available(&c->s), 0);
    ursa_task_t *t2 = spawn_on(0, cret_w2, c, "w2");
    CHECK(t2);
    CHECK(wait_qlen(&c->s, 2));
    CHECK_EQ(q_head_got(&c->s), 2);
    CHECK_EQ(q_got_sum(&c->s), 2);
    CHECK_EQ(ursa_sem_available(&c->s), 0);

    if (c->mode == CR_CANCEL)
        CHECK_EQ(ursa_task_cancel(t1), 0);
    if (c->mode == CR_THREAD)
        CHECK_EQ(pthread_join(th, NULL), 0);
    else
        CHECK_OK(join_task(t1));
    CHECK_EQ(c->rc1, c->mode == CR_CANCEL ? -ECANCELED : -ETIMEDOUT);
    CHECK_EQ(c->held_after1, 0);
    CHECK(c->empty_after1);
    /* W1's 2 permits went to W2 (now the head, still 1 short) */
    CHECK_EQ(q_len(&c->s), 1);
    CHECK_EQ(q_head_got(&c->s), 2);
    CHECK_EQ(ursa_sem_available(&c->s), 0);
    CHECK_EQ(ursa_sem_available(&c->s) + q_got_sum(&c->s), 2); /* as before the cancel */

    CHECK_EQ(ursa_sem_release(&p0), 0); /* 1 completes W2, 2 left */
    CHECK_EQ(q_len(&c->s), 0);
    CHECK_OK(join_task(t2));
    CHECK_EQ(c->rc2, 0);
    CHECK_EQ(ursa_sem_available(&c->s), 5);
    CHECK_EQ(ursa_sem_destroy(&c->s), 0);
    return NULL;
}

static void test_cancel_returns_permits_sim(void **state)
{
    (void)state;
    cret_t c = {.mode = CR_CANCEL, .workers = 1};
    test_explore(cret_scenario, &c);
    c.mode = CR_DEADLINE;
    test_explore(cret_scenario, &c);
}

static void test_cancel_returns_permits_workers(void **state)
{
    (void)state;
    cret_t c = {.mode = CR_CANCEL, .workers = 2};
    ASSERT_OK(test_run(2, cret_scenario, &c));
    c.mode = CR_DEADLINE;
    ASSERT_OK(test_run(2, cret_scenario, &c));
    c.mode = CR_THREAD; /* a plain thread's deadline */
    ASSERT_OK(test_run(2, cret_scenario, &c));
}

/* ====================================================================== */
/* cancel racing a grant (deterministic, many seeds)                       */
/* ====================================================================== */

/* 4 permits. B holds 3 and gives them back at instant D; A waits for 3
 * (1 assigned at once) and, at the same instant D, its deadline passes
 * and/or C cancels it. W2 (a raw wait for 1) queues behind A. Whatever the
 * interleaving: A returns 0 holding 3, or an error holding nothing, and
 * every permit is accounted for at every step. */
enum { RACE_DEADLINE = 1, RACE_CANCEL = 2, RACE_SPLIT = 4 };

typedef struct race {
    int mode;
    ursa_sem_t s;
    ursa_time_t d;
    ursa_task_t *a;
    uint64_t b_holding;
    ursa_wait_t w2;
    cw_t cw2;
    atomic_long ok, err;
} race_t;

/* Every permit of the 4: available, assigned to queued waiters, held by B,
 * granted to W2 but not yet finished. (A's 3 are added by the caller.) */
static uint64_t race_accounted(race_t *r)
{
    uint64_t w2 = atomic_load(&r->w2.state) == URSA__W_GRANTED ? r->w2.got : 0;
    return ursa_sem_available(&r->s) + q_got_sum(&r->s) + r->b_holding + w2;
}

static void *race_a(void *arg)
{
    race_t *r = arg;
    URSA_SCOPED(sem_permit, p);
    ursa_time_t dl = (r->mode & RACE_DEADLINE) ? r->d : URSA_NEVER;
    int rc = ursa_sem_acquire(&r->s, 3, &p, dl);
    if (rc == 0) {
        CHECK(p.sem == &r->s);
        CHECK_EQ(p.n, 3);
        CHECK_EQ(ursa_held_count(), 1);
        CHECK_EQ(race_accounted(r) + 3, 4);
        atomic_fetch_add(&r->ok, 1);
        (void)ursa_yield(); /* hold across a switch; -ECANCELED is fine */
        CHECK_EQ(ursa_sem_release(&p), 0);
        return NULL;
    }
    if (r->mode & RACE_DEADLINE && r->mode & RACE_CANCEL)
        CHECK(rc == -ETIMEDOUT || rc == -ECANCELED);
    else
        CHECK_EQ(rc, (r->mode & RACE_DEADLINE) ? -ETIMEDOUT : -ECANCELED);
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(race_accounted(r), 4);
    atomic_fetch_add(&r->err, 1);
    return NULL;
}

static void *race_b(void *arg)
{
    race_t *r = arg;
    URSA_SCOPED(sem_permit, p0);
    URSA_SCOPED(sem_permit, p1);
    URSA_SCOPED(sem_permit, p2);
    ursa_sem_permit_t *ps[3] = {&p0, &p1, &p2};
    if (r->mode & RACE_SPLIT) {
        for (int i = 0; i < 3; i++)
            CHECK_EQ(ursa_sem_acquire(&r->s, 1, ps[i], URSA_NOW), 0);
    } else {
        CHECK_EQ(ursa_sem_acquire(&r->s, 3, &p0, URSA_NOW), 0);
    }
    r->b_holding = 3;
    CHECK_EQ(ursa_sleep_until(r->d), 0);
    for (int i = 0; i < 3; i++) {
        if (!ps[i]->sem)
            continue;
        uint64_t n = ps[i]->n;
        CHECK_EQ(ursa_sem_release(ps[i]), 0);
        r->b_holding -= n;
        /* (no accounting here: a grant to A is invisible until A runs) */
        (void)ursa_yield();
    }
    return NULL;
}

static void *race_c(void *arg)
{
    race_t *r = arg;
    CHECK_EQ(ursa_sleep_until(r->d), 0);
    CHECK_EQ(ursa_task_cancel(r->a), 0);
    return NULL;
}

static void *race_scenario(void *arg)
{
    race_t *r = arg;
    URSA_SCOPED(sem_permit, p2);
    cw_init(&r->cw2);
    r->b_holding = 0;
    CHECK_EQ(ursa_sem_init(&r->s, 4), 0);
    r->d = ursa_now() + URSA_MSEC(10);

    ursa_task_t *b = spawn_on(0, race_b, r, "B");
    CHECK(b);
    CHECK(wait_avail(&r->s, 1));
    r->a = spawn_on(0, race_a, r, "A");
    CHECK(r->a);
    CHECK(wait_qlen(&r->s, 1));
    CHECK_EQ(q_head_got(&r->s), 1);
    CHECK_EQ(ursa_sem_available(&r->s), 0);
    CHECK_EQ(ursa_sem_acquire_start(&r->s, 1, &r->w2, cw_waker(&r->cw2)), -EINPROGRESS);
    CHECK_EQ(q_len(&r->s), 2);
    ursa_task_t *c = NULL;
    if (r->mode & RACE_CANCEL) {
        c = spawn_on(0, race_c, r, "C");
        CHECK(c);
    }
    CHECK_EQ(race_accounted(r), 4);

    CHECK_OK(join_task(b));
    if (c)
        CHECK_OK(join_task(c));
    CHECK_OK(join_task(r->a));
    /* W2 got its permit either from A's partial ones or after A released */
    CHECK(ursa_wait_ready(&r->w2));
    CHECK_EQ(atomic_load(&r->cw2.calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&r->s, &r->w2, &p2), 0);
    CHECK_EQ(p2.n, 1);
    CHECK_EQ(ursa_sem_release(&p2), 0);
    CHECK_EQ(q_len(&r->s), 0);
    CHECK_EQ(ursa_sem_available(&r->s), 4);
    CHECK_EQ(ursa_sem_destroy(&r->s), 0);
    return NULL;
}

/* Explores `mode` and checks that both outcomes were seen. */
static void race_explore(int mode)
{
    race_t r;
    memset(&r, 0, sizeof r);
    r.mode = mode;
    atomic_init(&r.ok, 0);
    atomic_init(&r.err, 0);
    test_explore(race_scenario, &r);
    const char *replay = getenv("URSA_SEED");
    if (TEST_SEEDS >= 50 && !(replay && *replay)) {
        if (atomic_load(&r.ok) == 0 || atomic_load(&r.err) == 0)
            fail_msg("mode %d: grant won %ld times, cancel/deadline won %ld times: the race "
                     "was not exercised both ways",
                     mode, atomic_load(&r.ok), atomic_load(&r.err));
    }
}

static void test_cancel_race_deadline_sim(void **state)
{
    (void)state;
    race_explore(RACE_DEADLINE);
    race_explore(RACE_DEADLINE | RACE_SPLIT);
}

static void test_cancel_race_cancel_sim(void **state)
{
    (void)state;
    race_explore(RACE_CANCEL);
    race_explore(RACE_CANCEL | RACE_SPLIT);
    race_explore(RACE_CANCEL | RACE_DEADLINE);
}

/* ====================================================================== */
/* cancel racing a grant: multi-thread stress                              */
/* ====================================================================== */

#define STRESS_PERMITS 3

typedef struct stress {
    ursa_sem_t s;
    long iters;
    atomic_long ok, timedout, again, cancelled, raw_ok, raw_cancel, raw_cancel_granted;
    _Atomic(const char *) fail;
} stress_t;

static void stress_fail(stress_t *st, const char *msg)
{
    const char *none = NULL;
    atomic_compare_exchange_strong(&st->fail, &none, msg);
}

/* One acquire with a tiny (or no, or expired) deadline; holds briefly. */
static void *stress_one_timed(stress_t *st, uint64_t *rng)
{
    URSA_SCOPED(sem_permit, p);
    uint64_t r = xorshift(rng);
    uint64_t n = 1 + r % STRESS_PERMITS;
    ursa_time_t dl;
    switch ((r >> 8) % 4) {
    case 0: dl = URSA_NOW; break;
    case 1: dl = ursa_deadline_in(0); break;
    case 2: dl = ursa_deadline_in(URSA_USEC((r >> 12) % 20)); break;
    default: dl = ursa_deadline_in(URSA_USEC(200)); break;
    }
    size_t h0 = ursa_held_count();
    int rc = ursa_sem_acquire(&st->s, n, &p, dl);
    if (rc == 0) {
        CHECK_EQ(p.n, n);
        CHECK_EQ(ursa_held_count(), h0 + 1);
        atomic_fetch_add(&st->ok, 1);
        if ((r >> 20) % 4 == 0)
            (void)ursa_yield();
        CHECK_EQ(ursa_sem_release(&p), 0);
    } else {
        CHECK(rc == -EAGAIN || rc == -ETIMEDOUT);
        CHECK(p.sem == NULL);
        atomic_fetch_add(rc == -EAGAIN ? &st->again : &st->timedout, 1);
    }
    CHECK_EQ(ursa_held_count(), h0);
    return NULL;
}

/* A raw wait, finished if it became ready in time, else (or sometimes
 * even when ready) cancelled: covers cancel-queued and cancel-after-grant.
 * Whatever a check says, the wait is ended (finished or cancelled) before
 * returning: an abandoned wait would keep its permits and could still have
 * its waker called on this dead frame. */
#define RCHECK(c)                                                                         \
    do {                                                                                  \
        if (!(c) && !msg)                                                                 \
            msg = failf("%s:%d: check failed: %s", __FILE__, __LINE__, #c);               \
    } while (0)

static void *stress_one_raw(stress_t *st, uint64_t *rng)
{
    URSA_SCOPED(sem_permit, p);
    uint64_t r = xorshift(rng);
    uint64_t n = 1 + r % 2;
    const char *msg = NULL;
    bool ended = false;
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    int rc = ursa_sem_acquire_start(&st->s, n, &w, cw_waker(&cw));
    if (rc == 0) {
        RCHECK(ursa_wait_ready(&w));
        rc = ursa_sem_acquire_finish(&st->s, &w, &p);
        RCHECK(rc == 0);
        ended = rc == 0;
        RCHECK(atomic_load(&cw.calls) == 0);
        atomic_fetch_add(&st->raw_ok, 1);
    } else if (rc == -EINPROGRESS) {
        int how = (int)((r >> 8) % 4); /* 0: cancel while (likely) queued */
        if (how) {
            /* wait up to ~1 ms for the grant */
            ursa_time_t until = mono_ns() + URSA_MSEC(1);
            for (unsigned i = 0; !ursa_wait_ready(&w) && mono_ns() < until; i++)
                if (i > 64)
                    sched_yield();
        }
        if (how >= 2 && ursa_wait_ready(&w)) {
            rc = ursa_sem_acquire_finish(&st->s, &w, &p);
            RCHECK(rc == 0);
            ended = rc == 0;
            RCHECK(atomic_load(&cw.calls) == 1); /* its waker has returned by now */
            RCHECK(p.n == n);
            atomic_fetch_add(&st->raw_ok, 1);
        } else {
            /* queued, or (how == 1) granted but not finished */
            if (ursa_wait_ready(&w))
                atomic_fetch_add(&st->raw_cancel_granted, 1);
            RCHECK(ursa_wait_cancel(&w) == -ECANCELED);
            ended = true;
            RCHECK(atomic_load(&cw.calls) <= 1);
            RCHECK(p.sem == NULL);
            atomic_fetch_add(&st->raw_cancel, 1);
            /* no late wake after the cancel returned */
            int calls = atomic_load(&cw.calls);
            sched_yield();
            RCHECK(atomic_load(&cw.calls) == calls);
        }
    } else {
        msg = failf("raw start returned %d", rc);
        ended = true;
    }
    if (!ended)
        (void)ursa_wait_cancel(&w);
    if (p.sem && ursa_sem_release(&p) != 0 && !msg)
        msg = "raw release failed";
    return (void *)msg;
}

static void *stress_thread(void *arg)
{
    stress_t *st = ((void **)arg)[0];
    long kind = (long)(intptr_t)((void **)arg)[1];
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(kind + 1);
    for (long i = 0; i < st->iters && !atomic_load(&st->fail); i++) {
        const char *m;
        if (kind == 2) {
            m = stress_one_raw(st, &rng);
        } else if (kind == 3) {
            /* a plain releaser: waits without deadline, holds a moment */
            URSA_SCOPED(sem_permit, p);
            m = NULL;
            if (ursa_sem_acquire(&st->s, 1 + i % 2, &p, URSA_NEVER) != 0)
                m = "blocking acquire failed";
            else if (i % 8 == 0)
                sched_yield();
            if (!m && ursa_sem_release(&p) != 0)
                m = "release failed";
        } else {
            m = stress_one_timed(st, &rng);
        }
        if (m)
            stress_fail(st, m);
    }
    if (ursa_held_count() != 0)
        stress_fail(st, "a stress thread ended holding permits");
    return NULL;
}

static void *stress_task(void *arg)
{
    stress_t *st = arg;
    uint64_t rng = (uint64_t)(uintptr_t)ursa_task_self() | 1;
    for (long i = 0; i < st->iters && !atomic_load(&st->fail); i++) {
        CHECK_OK(stress_one_timed(st, &rng));
        (void)ursa_yield();
    }
    return NULL;
}

typedef struct victim {
    stress_t *st;
    uint64_t n;
    int rc;
} victim_t;

static void *stress_victim(void *arg)
{
    victim_t *v = arg;
    URSA_SCOPED(sem_permit, p);
    v->rc = ursa_sem_acquire(&v->st->s, v->n, &p, URSA_NEVER);
    if (v->rc == 0) {
        CHECK_EQ(p.n, v->n);
        (void)ursa_yield();
        CHECK_EQ(ursa_sem_release(&p), 0);
    } else {
        CHECK_EQ(v->rc, -ECANCELED);
        CHECK(p.sem == NULL);
    }
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

/* Spawns victims that wait without deadline and cancels them at a random
 * moment: before they queue, while queued, or as they are granted. */
static void *stress_canceller(void *arg)
{
    stress_t *st = arg;
    uint64_t rng = 12345;
    for (long i = 0; i < st->iters / 2 && !atomic_load(&st->fail); i++) {
        victim_t v = {st, 1 + i % STRESS_PERMITS, 1};
        ursa_task_t *t = spawn_on((int)(i % 2), stress_victim, &v, "victim");
        CHECK(t);
        uint64_t r = xorshift(&rng);
        for (unsigned k = (unsigned)(r % 4); k; k--)
            (void)ursa_yield();
        if ((r >> 8) % 4 == 0)
            (void)ursa_sleep_for(URSA_USEC((r >> 12) % 30));
        CHECK_EQ(ursa_task_cancel(t), 0);
        CHECK_OK(join_task(t));
        CHECK(v.rc == 0 || v.rc == -ECANCELED);
        atomic_fetch_add(v.rc == 0 ? &st->ok : &st->cancelled, 1);
    }
    return NULL;
}

static void *stress_root(void *arg)
{
    stress_t *st = arg;
    pthread_t th[4];
    void *targs[4][2];
    ursa_task_t *t[5];
    CHECK_EQ(ursa_sem_init(&st->s, STRESS_PERMITS), 0);
    for (int i = 0; i < 4; i++) {
        targs[i][0] = st;
        targs[i][1] = (void *)(intptr_t)i;
        CHECK_EQ(pthread_create(&th[i], NULL, stress_thread, targs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        t[i] = spawn_on(i % 2, stress_task, st, "stress");
    t[4] = spawn_on(0, stress_canceller, st, "canceller");
    const char *msg = NULL;
    for (int i = 0; i < 5; i++) {
        const char *m = join_task(t[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_OK(msg);
    CHECK_OK(atomic_load(&st->fail));
    CHECK_EQ(q_len(&st->s), 0);
    CHECK_EQ(ursa_sem_available(&st->s), STRESS_PERMITS);
    CHECK(atomic_load(&st->ok) > 0);
    CHECK(atomic_load(&st->timedout) + atomic_load(&st->cancelled) +
              atomic_load(&st->raw_cancel) > 0);
    CHECK_EQ(ursa_sem_destroy(&st->s), 0);
    return NULL;
}

static void test_cancel_race_stress(void **state)
{
    (void)state;
    stress_t st;
    memset(&st, 0, sizeof st);
    st.iters = test_scale(6000);
    ASSERT_OK(test_run(2, stress_root, &st));
    print_message("stress: ok %ld, timed out %ld, again %ld, cancelled %ld, raw ok %ld, "
                  "raw cancelled %ld (%ld after the grant)\n",
                  atomic_load(&st.ok), atomic_load(&st.timedout), atomic_load(&st.again),
                  atomic_load(&st.cancelled), atomic_load(&st.raw_ok),
                  atomic_load(&st.raw_cancel), atomic_load(&st.raw_cancel_granted));
}

/* ====================================================================== */
/* close                                                                   */
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
    CHECK(wait_qlen(&c->s, 1)); /* t1 at the head, 1 permit assigned */
    ursa_task_t *t2 = spawn_on(0, close_t2, c, "t2");
    CHECK(t2);
    CHECK(wait_qlen(&c->s, 2));
    CHECK_EQ(pthread_create(&th, NULL, close_thread, c), 0);
    CHECK(wait_qlen(&c->s, 3));
    CHECK_EQ(ursa_sem_acquire_start(&c->s, 1, w, cw_waker(cw)), -EINPROGRESS);
    CHECK_EQ(q_len(&c->s), 4);
    CHECK_EQ(q_head_got(&c->s), 1);
    CHECK_EQ(ursa_sem_available(&c->s), 0);

    CHECK_EQ(ursa_sem_close(&c->s), 0);
    CHECK(ursa_sem_is_closed(&c->s));
    CHECK_EQ(q_len(&c->s), 0);
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
    CHECK_EQ(q_len(&c->s), 0);
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

static void test_close(void **state)
{
    (void)state;
    closing_t c;
    memset(&c, 0, sizeof c);
    ASSERT_OK(test_run(2, close_root, &c));
}

/* ====================================================================== */
/* add / forget                                                            */
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
    CHECK_EQ(q_head_got(&s), 2);
    CHECK_EQ(ursa_sem_add(&s, URSA_SEM_MAX - 1), -EINVAL);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(q_head_got(&s), 2);
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

static void test_add_limits(void **state)
{
    (void)state;
    ASSERT_OK(add_limits_body(NULL));
}

/* "total <= URSA_SEM_MAX" must hold for permits that are out on loan too:
 * otherwise giving them back overflows the count (it wraps to 0 here). */
static void *add_held_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    ursa_sem_permit_t p = {0};
    CHECK_EQ(ursa_sem_init(&s, URSA_SEM_MAX), 0);
    CHECK_EQ(ursa_sem_acquire(&s, URSA_SEM_MAX, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    int rc_add = ursa_sem_add(&s, URSA_SEM_MAX);
    uint64_t after_add = ursa_sem_available(&s);
    CHECK_EQ(ursa_sem_release(&p), 0);
    uint64_t after_release = ursa_sem_available(&s);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    if (rc_add != -EINVAL || after_release != URSA_SEM_MAX)
        return (void *)failf("with URSA_SEM_MAX permits held, ursa_sem_add(URSA_SEM_MAX) "
                             "returned %d (expected -EINVAL), available %llu after the add "
                             "and %llu after the holder released (expected %llu)",
                             rc_add, (unsigned long long)after_add,
                             (unsigned long long)after_release,
                             (unsigned long long)URSA_SEM_MAX);
    return NULL;
}

static void test_add_counts_held_permits(void **state)
{
    (void)state;
    ASSERT_OK(add_held_body(NULL));
}

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

static void test_add_concurrent_limit(void **state)
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
    CHECK(wait_qlen(&a->s, 1));
    ursa_task_t *t2 = spawn_on(0, add_wake_task, a, "w2"); /* wants 1 */
    CHECK(t2);
    CHECK(wait_qlen(&a->s, 2));
    CHECK_EQ(ursa_sem_acquire_start(&a->s, 1, w, cw_waker(cw)), -EINPROGRESS);
    CHECK_EQ(pthread_create(&th, NULL, add_wake_thread, a), 0);
    CHECK(wait_qlen(&a->s, 4));

    CHECK_EQ(ursa_sem_add(&a->s, 3), 0); /* w1 and w2 */
    CHECK_EQ(q_len(&a->s), 2);
    CHECK(!ursa_wait_ready(w));
    CHECK_OK(join_task(t1));
    CHECK_OK(join_task(t2));
    CHECK_EQ(a->rc1, 0);
    CHECK_EQ(a->rc2, 0);
    /* their 3 permits came back as they released: the raw wait and the
     * thread were served then */
    CHECK_EQ(q_len(&a->s), 0);
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

static void test_add_wakes_waiters(void **state)
{
    (void)state;
    add_wake_t a;
    memset(&a, 0, sizeof a);
    ASSERT_OK(test_run(2, add_wake_root, &a));
}

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
    CHECK_EQ(q_head_got(&s), 2);
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

static void test_forget(void **state)
{
    (void)state;
    ASSERT_OK(forget_body(NULL));
}

/* ====================================================================== */
/* raw two-phase wait with a foreign waker                                 */
/* ====================================================================== */

typedef struct handoff {
    ursa_sem_permit_t *p;
    int delay_ms;
    int rc_adopt, rc_release;
} handoff_t;

static void *adopt_release_thread(void *arg)
{
    handoff_t *h = arg;
    h->rc_adopt = ursa_oblig_adopt(&h->p->ob);
    sleep_real_ms(h->delay_ms);
    h->rc_release = ursa_sem_release(h->p);
    return NULL;
}

static void *raw_eventfd_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    ursa_sem_permit_t p0 = {0};
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    CHECK(cw.efd >= 0);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 1), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p0, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), -EAGAIN); /* not ready yet */
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(atomic_load(&cw.calls), 0);

    /* another thread releases the permit we hold */
    handoff_t h = {&p0, 5, 1, 1};
    CHECK_EQ(ursa_oblig_disown(&p0.ob), 0);
    CHECK_EQ(ursa_held_count(), h0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, adopt_release_thread, &h), 0);
    struct pollfd pfd = {.fd = cw.efd, .events = POLLIN};
    int prc = poll(&pfd, 1, 10000);
    bool ready = ursa_wait_ready(&w);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(h.rc_adopt, 0);
    CHECK_EQ(h.rc_release, 0);
    CHECK_EQ(prc, 1);
    uint64_t v = 0;
    CHECK_EQ(read(cw.efd, &v, sizeof v), (ssize_t)sizeof v);
    CHECK_EQ(v, 1);
    CHECK(ready);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK(p.sem == &s);
    CHECK_EQ(p.n, 1);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &q), -EINVAL); /* finished already */
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), 1);
    /* the waker was called exactly once: no late second call */
    sleep_real_ms(10);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    pfd.revents = 0;
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    close(cw.efd);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_raw_foreign_waker(void **state)
{
    (void)state;
    ASSERT_OK(raw_eventfd_body(NULL));
}

typedef struct adder {
    ursa_sem_t *s;
    uint64_t n;
    int rc;
} adder_t;

static void *adder_thread(void *arg)
{
    adder_t *a = arg;
    a->rc = ursa_sem_add(a->s, a->n);
    return NULL;
}

/* The waker is the foreign loop's only signal. When its side effect (the
 * eventfd write) is seen, the wait must be ready: if it is not, the loop
 * (per the wait.h pattern) cancels a wait that was in fact granted. The
 * waker here spins after writing, as if its thread were preempted right
 * after the write. */
static void *raw_ready_on_wake_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    cw.spin_after_ms = 50;
    CHECK(cw.efd >= 0);
    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &w, cw_waker(&cw)), -EINPROGRESS);
    adder_t a = {&s, 1, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, adder_thread, &a), 0);
    struct pollfd pfd = {.fd = cw.efd, .events = POLLIN};
    int prc = poll(&pfd, 1, 10000);
    bool ready_at_wake = ursa_wait_ready(&w);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(prc, 1);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    close(cw.efd);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    CHECK(ready_at_wake); /* checked last: everything above is cleaned up */
    return NULL;
}

static void test_raw_ready_when_woken(void **state)
{
    (void)state;
    ASSERT_OK(raw_ready_on_wake_body(NULL));
}

static void *raw_immediate_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    size_t h0 = ursa_held_count();
    CHECK_EQ(ursa_sem_init(&s, 3), 0);
    /* granted at once: 0, ready, waker never called */
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &w, cw_waker(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_available(&s), 1);
    CHECK_EQ(ursa_held_count(), h0); /* held only once finished */
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_held_count(), h0);
    /* granted at once, then cancelled instead of finished: permits back */
    CHECK_EQ(ursa_sem_acquire_start(&s, 3, &w, cw_waker(&cw)), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), -EINVAL);
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_raw_immediate_grant(void **state)
{
    (void)state;
    ASSERT_OK(raw_immediate_body(NULL));
}

/* Cancel of a queued raw wait with partly assigned permits hands them on. */
static void *raw_cancel_queued_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t wa, wb, wc;
    cw_t ca, cb, cc;
    cw_init(&ca);
    cw_init(&cb);
    cw_init(&cc);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 2), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 5, &wa, cw_waker(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(q_head_got(&s), 2);
    CHECK_EQ(ursa_sem_acquire_start(&s, 3, &wb, cw_waker(&cb)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &wc, cw_waker(&cc)), -EINPROGRESS);
    CHECK_EQ(q_len(&s), 3);
    CHECK_EQ(q_got_sum(&s), 2);

    CHECK_EQ(ursa_wait_cancel(&wa), -ECANCELED);
    CHECK_EQ(atomic_load(&ca.calls), 0); /* a cancelled wait is not woken */
    CHECK_EQ(ursa_held_count(), h0);
    /* b (3) is the head now with a's 2; c (1) queues behind it */
    CHECK_EQ(q_len(&s), 2);
    CHECK_EQ(q_head_got(&s), 2);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK(!ursa_wait_ready(&wb));
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wa, &p), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&wa), -EINVAL);

    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK(ursa_wait_ready(&wb));
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cb.calls), 1);
    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK(ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wb, &p), 0);
    CHECK_EQ(p.n, 3);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wc, &q), 0);
    CHECK_EQ(q.n, 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_release(&q), 0);
    CHECK_EQ(ursa_sem_available(&s), 4);
    CHECK_EQ(atomic_load(&ca.calls), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_raw_cancel_queued(void **state)
{
    (void)state;
    ASSERT_OK(raw_cancel_queued_body(NULL));
}

/* Cancel after the grant but before finish: nothing held, the permits go
 * to the next waiter (or back). */
static void *raw_cancel_granted_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t wa, wc;
    cw_t ca, cc;
    cw_init(&ca);
    cw_init(&cc);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &wa, cw_waker(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &wc, cw_waker(&cc)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_add(&s, 2), 0);
    CHECK(ursa_wait_ready(&wa));
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_wait_cancel(&wa), -ECANCELED);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wa, &p), -EINVAL);
    CHECK(p.sem == NULL);
    /* handed on to c */
    CHECK(ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(q_len(&s), 0);
    CHECK_EQ(ursa_wait_cancel(&wc), -ECANCELED); /* nobody behind: back to the count */
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_raw_cancel_granted(void **state)
{
    (void)state;
    ASSERT_OK(raw_cancel_granted_body(NULL));
}

/* ====================================================================== */
/* plain threads and tasks contending                                      */
/* ====================================================================== */

typedef struct contend {
    ursa_sem_t s;
    long counter;
    long iters;
} contend_t;

static void *contend_loop(void *arg)
{
    contend_t *c = arg;
    for (long i = 0; i < c->iters; i++) {
        URSA_SCOPED(sem_permit, p);
        CHECK_EQ(ursa_sem_acquire(&c->s, 1, &p, URSA_NEVER), 0);
        long v = c->counter;
        if (i % 61 == 0)
            (void)ursa_yield(); /* sleep inside the critical section */
        c->counter = v + 1;
        CHECK_EQ(ursa_sem_release(&p), 0);
    }
    return NULL;
}

static void *contend_root(void *arg)
{
    contend_t *c = arg;
    pthread_t th[2];
    void *thres[2] = {NULL, NULL};
    ursa_task_t *t[4];
    CHECK_EQ(ursa_sem_init(&c->s, 1), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, contend_loop, c), 0);
    for (int i = 0; i < 4; i++)
        t[i] = spawn_on(i % 2, contend_loop, c, "contender");
    const char *msg = NULL;
    for (int i = 0; i < 4; i++) {
        const char *m = join_task(t[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], &thres[i]), 0);
    CHECK_OK(msg);
    CHECK_OK(thres[0]);
    CHECK_OK(thres[1]);
    CHECK_EQ(c->counter, 6 * c->iters);
    CHECK_EQ(ursa_sem_available(&c->s), 1);
    CHECK_EQ(q_len(&c->s), 0);
    CHECK_EQ(ursa_sem_destroy(&c->s), 0);
    return NULL;
}

static void test_threads_and_tasks_contend(void **state)
{
    (void)state;
    contend_t c;
    memset(&c, 0, sizeof c);
    c.iters = test_scale(10000);
    ASSERT_OK(test_run(2, contend_root, &c));
}

/* ====================================================================== */
/* obligation ledger                                                       */
/* ====================================================================== */

static void *held_count_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, a);
    URSA_SCOPED(sem_permit, b);
    size_t h0 = ursa_held_count();
    CHECK_EQ(ursa_sem_init(&s, 4), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &a, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &b, URSA_NEVER), 0);
    CHECK_EQ(ursa_held_count(), h0 + 2);
    CHECK_EQ(ursa_sem_release(&a), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_release(&b), 0);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_available(&s), 4);

    /* double release: -EINVAL, reported, nothing returned twice */
    int leaks0 = test_leak_count();
    CHECK_EQ(ursa_sem_release(&a), -EINVAL);
    CHECK_EQ(test_leak_count(), leaks0 + 1);
    CHECK_EQ(ursa_sem_release(&b), -EINVAL);
    CHECK_EQ(test_leak_count(), leaks0 + 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_available(&s), 4);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_oblig_held_count_double_release(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(held_count_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)held_count_body));
}

static int leak_line;

static void *leaking_task(void *arg)
{
    ursa_sem_t *s = arg;
    ursa_sem_permit_t p = {0};
    leak_line = __LINE__ + 1;
    if (ursa_sem_acquire(s, 2, &p, URSA_NEVER) != 0)
        return (void *)"acquire failed";
    if (ursa_sem_available(s) != 1)
        return (void *)"acquire did not take 2";
    return NULL; /* ends holding p */
}

static void *leak_root(void *arg)
{
    ursa_sem_t *s = arg;
    CHECK_OK(join_task(spawn_on(1, leaking_task, s, "leaker")));
    /* released by the runtime when the task ended */
    CHECK_EQ(ursa_sem_available(s), 3);
    CHECK_EQ(q_len(s), 0);
    return NULL;
}

static void *leaking_thread(void *arg)
{
    ursa_sem_t *s = arg;
    /* static: the thread's frames are gone when its ledger is swept */
    static ursa_sem_permit_t kept;
    memset(&kept, 0, sizeof kept);
    leak_line = __LINE__ + 1;
    if (ursa_sem_acquire(s, 1, &kept, URSA_NEVER) != 0)
        return (void *)"acquire failed";
    return NULL; /* exits holding it */
}

static void test_oblig_leaked_by_task(void **state)
{
    (void)state;
    ursa_sem_t s;
    test_capture_leaks();
    assert_int_equal(ursa_sem_init(&s, 3), 0);
    ASSERT_OK(test_run(2, leak_root, &s));
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "semaphore permit");
    assert_string_equal(test_leaks.owner, "leaker");
    assert_int_equal(test_leaks.line, leak_line);
    assert_int_equal(ursa_sem_available(&s), 3);

    /* a plain thread that exits holding a permit: the same */
    test_capture_leaks();
    pthread_t th;
    void *res = NULL;
    assert_int_equal(pthread_create(&th, NULL, leaking_thread, &s), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    ASSERT_OK(res);
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "semaphore permit");
    assert_string_equal(test_leaks.owner, "thread");
    assert_int_equal(test_leaks.line, leak_line);
    assert_int_equal(ursa_sem_available(&s), 3);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void *scoped_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    size_t h0 = ursa_held_count();
    int leaks0 = test_leak_count();
    CHECK_EQ(ursa_sem_init(&s, 3), 0);
    {
        URSA_SCOPED(sem_permit, p);
        CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NEVER), 0);
        CHECK_EQ(ursa_sem_available(&s), 1);
        CHECK_EQ(ursa_held_count(), h0 + 1);
    }
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    {
        URSA_SCOPED(sem_permit, p); /* failed acquire: the cleanup does nothing */
        CHECK_EQ(ursa_sem_acquire(&s, 5, &p, URSA_NOW), -EAGAIN);
        CHECK(p.sem == NULL);
    }
    CHECK_EQ(ursa_sem_available(&s), 3);
    {
        URSA_SCOPED(sem_permit, p); /* released by hand: no double release */
        CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
        CHECK_EQ(ursa_sem_release(&p), 0);
    }
    {
        URSA_SCOPED(sem_permit, p); /* forgotten: nothing to give back */
        CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
        CHECK_EQ(ursa_sem_permit_forget(&p), 0);
    }
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(test_leak_count(), leaks0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_oblig_scoped(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(scoped_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)scoped_body));
}

typedef struct xfer {
    ursa_sem_t s;
    ursa_sem_permit_t p;
    int rc_release, rc_disown, rc_adopt, rc_adopt2, rc_release2;
    size_t held_after_adopt, held_after_release;
} xfer_t;

static void *xfer_stranger(void *arg)
{
    xfer_t *x = arg;
    x->rc_release = ursa_sem_release(&x->p);
    x->rc_disown = ursa_oblig_disown(&x->p.ob);
    return NULL;
}

static void *xfer_stranger_thread(void *arg)
{
    return xfer_stranger(arg);
}

static void *xfer_receiver(void *arg)
{
    xfer_t *x = arg;
    x->rc_adopt = ursa_oblig_adopt(&x->p.ob);
    x->rc_adopt2 = ursa_oblig_adopt(&x->p.ob);
    x->held_after_adopt = ursa_held_count();
    x->rc_release2 = ursa_sem_release(&x->p);
    x->held_after_release = ursa_held_count();
    return NULL;
}

static void *xfer_root(void *arg)
{
    xfer_t *x = arg;
    CHECK_EQ(ursa_sem_init(&x->s, 3), 0);
    memset(&x->p, 0, sizeof x->p);
    CHECK_EQ(ursa_sem_acquire(&x->s, 2, &x->p, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), 1);

    /* another task may not release it (nor disown it) */
    x->rc_release = x->rc_disown = 1;
    CHECK_OK(join_task(spawn_on(1, xfer_stranger, x, "stranger")));
    CHECK_EQ(x->rc_release, -EPERM);
    CHECK_EQ(x->rc_disown, -EPERM);
    CHECK(x->p.sem == &x->s);
    CHECK_EQ(ursa_held_count(), 1);
    CHECK_EQ(ursa_sem_available(&x->s), 1);
    /* nor a plain thread */
    x->rc_release = x->rc_disown = 1;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, xfer_stranger_thread, x), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(x->rc_release, -EPERM);
    CHECK_EQ(x->rc_disown, -EPERM);
    CHECK_EQ(ursa_sem_available(&x->s), 1);

    /* hand it over: disown here, adopt and release there */
    CHECK_EQ(ursa_oblig_disown(&x->p.ob), 0);
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(ursa_oblig_disown(&x->p.ob), -EINVAL); /* not in a ledger now */
    CHECK_EQ(ursa_oblig_disown(NULL), -EINVAL);
    CHECK_EQ(ursa_oblig_adopt(NULL), -EINVAL);
    x->rc_adopt = x->rc_adopt2 = x->rc_release2 = 1;
    CHECK_OK(join_task(spawn_on(1, xfer_receiver, x, "receiver")));
    CHECK_EQ(x->rc_adopt, 0);
    CHECK_EQ(x->rc_adopt2, -EINVAL); /* owned already */
    CHECK_EQ(x->held_after_adopt, 1);
    CHECK_EQ(x->rc_release2, 0);
    CHECK_EQ(x->held_after_release, 0);
    CHECK(x->p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&x->s), 3);
    CHECK_EQ(ursa_held_count(), 0);
    /* released now: adopt of an empty hold is refused */
    CHECK_EQ(ursa_oblig_adopt(&x->p.ob), -EINVAL);
    CHECK_EQ(ursa_sem_destroy(&x->s), 0);
    return NULL;
}

static void test_oblig_transfer(void **state)
{
    (void)state;
    xfer_t x;
    memset(&x, 0, sizeof x);
    test_capture_leaks();
    int leaks0 = test_leak_count();
    ASSERT_OK(test_run(2, xfer_root, &x));
    assert_int_equal(test_leak_count(), leaks0); /* -EPERM is not a misuse report */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_counts_64bit),
        cmocka_unit_test(test_try_thread),
        cmocka_unit_test(test_try_task),
        cmocka_unit_test(test_try_task_sim),
        cmocka_unit_test(test_fifo_order_sim),
        cmocka_unit_test(test_fifo_order_workers),
        cmocka_unit_test(test_batch_partial_sim),
        cmocka_unit_test(test_batch_partial_workers),
        cmocka_unit_test(test_cancel_returns_permits_sim),
        cmocka_unit_test(test_cancel_returns_permits_workers),
        cmocka_unit_test(test_cancel_race_deadline_sim),
        cmocka_unit_test(test_cancel_race_cancel_sim),
        cmocka_unit_test(test_cancel_race_stress),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_add_limits),
        cmocka_unit_test(test_add_counts_held_permits),
        cmocka_unit_test(test_add_concurrent_limit),
        cmocka_unit_test(test_add_wakes_waiters),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_raw_foreign_waker),
        cmocka_unit_test(test_raw_ready_when_woken),
        cmocka_unit_test(test_raw_immediate_grant),
        cmocka_unit_test(test_raw_cancel_queued),
        cmocka_unit_test(test_raw_cancel_granted),
        cmocka_unit_test(test_threads_and_tasks_contend),
        cmocka_unit_test(test_oblig_held_count_double_release),
        cmocka_unit_test(test_oblig_leaked_by_task),
        cmocka_unit_test(test_oblig_scoped),
        cmocka_unit_test(test_oblig_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
