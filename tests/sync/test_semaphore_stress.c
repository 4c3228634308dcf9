/* The semaphore on real threads: acquires with tiny, expired or no
 * deadlines, raw waits finished or cancelled, and cancelled tasks, all
 * racing grants; every permit is accounted for. And one permit shared by
 * tasks on two workers and plain threads as a lock. */
#include "support.h"

#include "queue_peek.h" /* internal: inspect the wait queue */
#include "task_checks.h"

/* ====================================================================== */
/* cancel racing a grant: multi-thread stress                             */
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
    const char *msg = join_tasks(t, 5);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_OK(msg);
    CHECK_OK(atomic_load(&st->fail));
    CHECK_EQ(peek_sema_len(&st->s.sema), 0);
    CHECK_EQ(ursa_sem_available(&st->s), STRESS_PERMITS);
    CHECK(atomic_load(&st->ok) > 0);
    CHECK(atomic_load(&st->timedout) + atomic_load(&st->cancelled) +
              atomic_load(&st->raw_cancel) > 0);
    CHECK_EQ(ursa_sem_destroy(&st->s), 0);
    return NULL;
}

static void test_sem_cancels_and_timeouts_racing_grants_keep_every_permit_on_threads(void **state)
{
    (void)state;
    stress_t st = {.iters = test_scale(6000)};
    ASSERT_OK(test_run(2, stress_root, &st));
    print_message("stress: ok %ld, timed out %ld, again %ld, cancelled %ld, raw ok %ld, "
                  "raw cancelled %ld (%ld after the grant)\n",
                  atomic_load(&st.ok), atomic_load(&st.timedout), atomic_load(&st.again),
                  atomic_load(&st.cancelled), atomic_load(&st.raw_ok),
                  atomic_load(&st.raw_cancel), atomic_load(&st.raw_cancel_granted));
}

/* ====================================================================== */
/* plain threads and tasks contending                                     */
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
    const char *msg = join_tasks(t, 4);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], &thres[i]), 0);
    CHECK_OK(msg);
    CHECK_OK(thres[0]);
    CHECK_OK(thres[1]);
    CHECK_EQ(c->counter, 6 * c->iters);
    CHECK_EQ(ursa_sem_available(&c->s), 1);
    CHECK_EQ(peek_sema_len(&c->s.sema), 0);
    CHECK_EQ(ursa_sem_destroy(&c->s), 0);
    return NULL;
}

static void test_sem_one_permit_excludes_tasks_and_plain_threads(void **state)
{
    (void)state;
    contend_t c = {.iters = test_scale(10000)};
    ASSERT_OK(test_run(2, contend_root, &c));
}

TEST_MAIN(cmocka_unit_test(test_sem_cancels_and_timeouts_racing_grants_keep_every_permit_on_threads),
          cmocka_unit_test(test_sem_one_permit_excludes_tasks_and_plain_threads))
