/* The workers (src/rt/worker.c) and timers (src/rt/timer.c): yield
 * alternates, sleep takes exactly its virtual time or at least its real
 * time, sleepers wake in deadline order (also when the timer heap cannot
 * grow), the timer heap on its own fires in deadline order after spills and
 * disarms, wakes across workers and from a plain thread to an idle worker
 * are never lost. */

#include "support.h"

#include "rt_checks.h"
#include "task_checks.h" /* xorshift */

#include "rt/task.h"  /* bare descriptors for the timer heap */
#include "rt/timer.h"

/* ================= yield ================= */

typedef struct alt {
    char trace[64];
    int len;
    int bad_yield;
} alt_t;

typedef struct alt_arg {
    alt_t *a;
    char id;
} alt_arg_t;

static void *alternator(void *arg)
{
    alt_arg_t *x = arg;
    for (int i = 0; i < 10; i++) {
        x->a->trace[x->a->len++] = x->id;
        if (ursa_yield() != 0)
            x->a->bad_yield++;
    }
    return NULL;
}

static void *alt_root(void *arg)
{
    alt_t *a = arg;
    alt_arg_t xa = {a, 'A'}, xb = {a, 'B'};
    ursa_task_t *ta = NULL, *tb = NULL;
    if (ursa_spawn(&ta, alternator, &xa, NULL) || ursa_spawn(&tb, alternator, &xb, NULL))
        return R(-1);
    if (ursa_task_join(ta, NULL, URSA_NEVER) != 0 || ursa_task_join(tb, NULL, URSA_NEVER) != 0)
        return R(-100);
    return NULL;
}

static void test_rt_yield_alternates(void **state)
{
    (void)state;
    alt_t a;
    memset(&a, 0, sizeof a);
    assert_null(test_run(1, alt_root, &a));
    assert_string_equal(a.trace, "ABABABABABABABABABAB");
    assert_int_equal(a.bad_yield, 0);
    assert_int_equal(ursa_yield(), 0); /* plain thread */
}

/* ================= sleep ================= */

typedef struct sleep_res {
    ursa_time_t d1, d2, d0, real;
    int rc1, rc2, rc0;
} sleep_res_t;

static void *sleep_root(void *arg)
{
    sleep_res_t *s = arg;
    ursa_time_t r0 = mono_ns();
    ursa_time_t t0 = ursa_now();
    s->rc1 = ursa_sleep_for(URSA_MSEC(20));
    ursa_time_t t1 = ursa_now();
    s->d1 = t1 - t0;
    s->rc2 = ursa_sleep_until(t1 + URSA_USEC(1234));
    ursa_time_t t2 = ursa_now();
    s->d2 = t2 - t1;
    s->rc0 = ursa_sleep_for(0);
    s->d0 = ursa_now() - t2;
    s->real = mono_ns() - r0;
    return NULL;
}

static void *sleep_hour(void *arg)
{
    ursa_time_t *d = arg;
    ursa_time_t t0 = ursa_now();
    int rc = ursa_sleep_for(URSA_SEC(3600));
    *d = ursa_now() - t0;
    return R(rc);
}

static void test_rt_sleep_takes_exact_virtual_or_at_least_real_time(void **state)
{
    (void)state;
    /* Deterministic: virtual time advances by exactly what was asked. */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sleep_res_t s;
        memset(&s, 0, sizeof s);
        assert_int_equal(run_det(seed, sleep_root, &s, NULL), 0);
        assert_int_equal(s.rc1, 0);
        assert_int_equal(s.rc2, 0);
        assert_int_equal(s.rc0, 0);
        assert_int_equal(s.d1, URSA_MSEC(20));
        assert_int_equal(s.d2, URSA_USEC(1234));
        assert_int_equal(s.d0, 0);
    }
    /* An hour of virtual time passes at once (a real hour would be far
     * past the CTest timeout). */
    ursa_time_t d = 0;
    void *res = R(-1);
    assert_int_equal(run_det(9, sleep_hour, &d, &res), 0);
    assert_ptr_equal(res, NULL);
    assert_int_equal(d, URSA_SEC(3600));

    /* Normal mode: at least the requested time. */
    sleep_res_t s;
    memset(&s, 0, sizeof s);
    assert_null(test_run(1, sleep_root, &s));
    assert_int_equal(s.rc1, 0);
    assert_int_equal(s.rc2, 0);
    assert_int_equal(s.rc0, 0);
    assert_true(s.d1 >= URSA_MSEC(20));
    assert_true(s.d2 >= URSA_USEC(1234));
    assert_true(s.real >= URSA_MSEC(20) + URSA_USEC(1234));

    /* Off-task: nanosleep. */
    ursa_time_t t0 = mono_ns();
    assert_int_equal(ursa_sleep_for(URSA_MSEC(3)), 0);
    assert_true(mono_ns() - t0 >= URSA_MSEC(3));
}

#define N_SLEEPERS 64

typedef struct sleepers {
    ursa_sem_t go;   /* opened once every sleeper is parked on it */
    atomic_int ready;
    ursa_time_t base, lead, step;
    int delay[N_SLEEPERS]; /* a permutation of 1..N */
    int order[N_SLEEPERS]; /* delays, in wake order */
    atomic_int n;
    atomic_int sleeping; /* sleepers at their sleep_until */
    bool in_time;        /* every one slept before the first deadline */
    int rc_bad;
} sleepers_t;

typedef struct sleeper_arg {
    sleepers_t *s;
    int i;
} sleeper_arg_t;

static void *sleeper(void *arg)
{
    sleeper_arg_t *a = arg;
    sleepers_t *s = a->s;
    ursa_sem_permit_t p = {0};
    atomic_fetch_add(&s->ready, 1);
    if (ursa_sem_acquire(&s->go, 1, &p, URSA_NEVER) != 0 || ursa_sem_permit_forget(&p) != 0)
        s->rc_bad++;
    /* Every deadline lies ahead (lead): a deadline already past would end
     * in run order, not deadline order. */
    atomic_fetch_add(&s->sleeping, 1);
    if (ursa_sleep_until(s->base + s->delay[a->i] * s->step) != 0)
        s->rc_bad++;
    s->order[atomic_fetch_add(&s->n, 1)] = s->delay[a->i];
    return NULL;
}

static void *sleepers_root(void *arg)
{
    sleepers_t *s = arg;
    sleeper_arg_t a[N_SLEEPERS];
    ursa_task_t *t[N_SLEEPERS] = {0};
    for (int i = 0; i < N_SLEEPERS; i++) {
        a[i] = (sleeper_arg_t){s, i};
        if (ursa_spawn(&t[i], sleeper, &a[i], NULL))
            return R(-1);
    }
    while (atomic_load(&s->ready) < N_SLEEPERS)
        (void)ursa_yield();
    (void)ursa_yield(); /* the last one is parked on the gate too */
    s->base = ursa_now() + s->lead;
    (void)ursa_sem_add(&s->go, N_SLEEPERS);
    /* One worker: while the root runs, every sleeper counted has parked
     * (or found its deadline past). The order holds only if all parked
     * before the first deadline; a loaded machine may stall the worker
     * longer than the lead, and then the caller retries with more. */
    while (atomic_load(&s->sleeping) < N_SLEEPERS)
        (void)ursa_yield();
    s->in_time = ursa_now() < s->base + s->step;
    for (int i = 0; i < N_SLEEPERS; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-100);
    return NULL;
}

static void sleepers_init(sleepers_t *s, ursa_time_t step, unsigned rng)
{
    memset(s, 0, sizeof *s);
    ursa_sem_init(&s->go, 0);
    s->step = step;
    s->lead = URSA_MSEC(20);
    for (int i = 0; i < N_SLEEPERS; i++)
        s->delay[i] = i + 1;
    for (int i = N_SLEEPERS - 1; i > 0; i--) { /* Fisher-Yates */
        rng = rng * 1103515245u + 12345u;
        int j = (int)((rng >> 8) % (unsigned)(i + 1));
        int tmp = s->delay[i];
        s->delay[i] = s->delay[j];
        s->delay[j] = tmp;
    }
}

static void test_rt_sleepers_wake_in_deadline_order(void **state)
{
    (void)state;
    sleepers_t s;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        sleepers_init(&s, URSA_USEC(10), (unsigned)seed);
        assert_int_equal(run_det(seed, sleepers_root, &s, NULL), 0);
        assert_true(s.in_time);
        assert_int_equal(atomic_load(&s.n), N_SLEEPERS);
        assert_int_equal(s.rc_bad, 0);
        for (int i = 0; i < N_SLEEPERS; i++)
            assert_int_equal(s.order[i], i + 1);
    }
    /* Normal mode, one worker, deadlines 1 ms apart; a run in which the
     * worker was stalled past the first deadline proves nothing and is
     * repeated with twice the lead. */
    for (ursa_time_t lead = URSA_MSEC(20);; lead *= 2) {
        sleepers_init(&s, URSA_MSEC(1), 77);
        s.lead = lead;
        assert_null(test_run(1, sleepers_root, &s));
        if (s.in_time)
            break;
        if (lead > test_hang_guard())
            fail_msg("the sleepers never all parked within %lld ms", (long long)(lead / 1000000));
    }
    assert_int_equal(atomic_load(&s.n), N_SLEEPERS);
    assert_int_equal(s.rc_bad, 0);
    for (int i = 0; i < N_SLEEPERS; i++)
        assert_int_equal(s.order[i], i + 1);
}

/* ================= cross-worker and cross-thread wakes ================= */

typedef struct pingpong {
    ursa_sem_t ping, pong;
    long rounds;
    long turn; /* plain: the semaphores must order it (TSan checks) */
    long bad_turn;
    int rc[2];
    int worker[2];
} pingpong_t;

/* take_one's code for a wait that ended only at its hang guard. */
#define LOST_WAKE 1

/* Takes one permit. A granted wait whose wake is lost still returns 0 when
 * its deadline timer fires and it finds the grant: so the deadline is the
 * hang guard, and a wait that ends only once it has passed had its wake
 * lost (LOST_WAKE). */
static int take_one(ursa_sem_t *s)
{
    ursa_sem_permit_t p = {0};
    ursa_time_t deadline = test_guard_deadline();
    int rc = ursa_sem_acquire(s, 1, &p, deadline);
    if (rc == 0)
        rc = ursa_sem_permit_forget(&p);
    if (rc == 0 && ursa_now() >= deadline)
        rc = LOST_WAKE;
    return rc;
}

static void *pinger(void *arg)
{
    pingpong_t *pp = arg;
    pp->worker[0] = ursa_worker_index();
    for (long i = 0; i < pp->rounds; i++) {
        if (pp->turn != 2 * i)
            pp->bad_turn++;
        pp->turn = 2 * i + 1;
        (void)ursa_sem_add(&pp->ping, 1);
        int rc = take_one(&pp->pong);
        if (rc)
            return R(rc);
    }
    return R(0);
}

static void *ponger(void *arg)
{
    pingpong_t *pp = arg;
    pp->worker[1] = ursa_worker_index();
    for (long i = 0; i < pp->rounds; i++) {
        int rc = take_one(&pp->ping);
        if (rc)
            return R(rc);
        if (pp->turn != 2 * i + 1)
            pp->bad_turn++;
        pp->turn = 2 * i + 2;
        (void)ursa_sem_add(&pp->pong, 1);
    }
    return R(0);
}

static void *pingpong_root(void *arg)
{
    pingpong_t *pp = arg;
    ursa_task_t *a = NULL, *b = NULL;
    if (ursa_spawn(&b, ponger, pp, &(ursa_spawn_opts_t){.name = "ponger", URSA_ON_WORKER(1)}) ||
        ursa_spawn(&a, pinger, pp, &(ursa_spawn_opts_t){.name = "pinger", URSA_ON_WORKER(0)}))
        return R(-1);
    void *v = R(-1);
    if (ursa_task_join(a, &v, URSA_NEVER) != 0)
        return R(-100);
    pp->rc[0] = (int)I(v);
    v = R(-1);
    if (ursa_task_join(b, &v, URSA_NEVER) != 0)
        return R(-100);
    pp->rc[1] = (int)I(v);
    return NULL;
}

static void test_rt_cross_worker_wakes_are_never_lost(void **state)
{
    (void)state;
    pingpong_t pp = {.rounds = test_scale(20000)};
    ursa_sem_init(&pp.ping, 0);
    ursa_sem_init(&pp.pong, 0);
    assert_null(test_run(2, pingpong_root, &pp));
    assert_int_equal(pp.worker[0], 0);
    assert_int_equal(pp.worker[1], 1);
    if (pp.rc[0] == LOST_WAKE || pp.rc[1] == LOST_WAKE)
        fail_msg("a wake was lost: the %s waited until its hang guard",
                 pp.rc[0] == LOST_WAKE ? "pinger" : "ponger");
    assert_int_equal(pp.rc[0], 0);
    assert_int_equal(pp.rc[1], 0);
    assert_int_equal(pp.bad_turn, 0);
    assert_int_equal(pp.turn, 2 * pp.rounds);
    assert_int_equal(ursa_sem_available(&pp.ping), 0);
    assert_int_equal(ursa_sem_available(&pp.pong), 0);
}

typedef struct thread_wake {
    ursa_sem_t sem;
    int rounds;
    int rc_bad, lost;
} thread_wake_t;

static void *waker_thread(void *arg)
{
    thread_wake_t *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        struct timespec ts = {0, 3 * 1000000}; /* let the worker fall asleep in the ring */
        nanosleep(&ts, NULL);
        (void)ursa_sem_add(&w->sem, 1);
    }
    return NULL;
}

static void *thread_wake_root(void *arg)
{
    thread_wake_t *w = arg;
    pthread_t th;
    if (pthread_create(&th, NULL, waker_thread, w) != 0)
        return R(-1);
    for (int i = 0; i < w->rounds; i++) {
        int rc = take_one(&w->sem);
        w->lost += rc == LOST_WAKE;
        w->rc_bad += rc != 0 && rc != LOST_WAKE;
    }
    pthread_join(th, NULL);
    return NULL;
}

static void test_rt_plain_thread_wakes_idle_worker(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        thread_wake_t w;
        memset(&w, 0, sizeof w);
        w.rounds = 20;
        ursa_sem_init(&w.sem, 0);
        assert_null(test_run(workers, thread_wake_root, &w));
        assert_int_equal(w.rc_bad, 0);
        /* No wait ended at its hang guard: the wake reached the sleeping
         * ring. */
        assert_int_equal(w.lost, 0);
    }
}

/* ================= deadlines when the timer heap cannot grow ================= */

/* This program links with --wrap=realloc (tests/CMakeLists.txt: it defines
 * __wrap_realloc): while
 * fail_realloc is set every realloc fails, among them the timer heap's
 * growth (a fresh worker's heap has no room yet). */
static atomic_bool fail_realloc;
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
    return atomic_load(&fail_realloc) ? NULL : __real_realloc(p, n);
}

#define N_NOHEAP 6

typedef struct noheap {
    ursa_mutex_t m; /* held by the root: the lock waits time out */
    atomic_int started;
    ursa_time_t deadline[N_NOHEAP], woke[N_NOHEAP];
    int rc[N_NOHEAP];
    int order[N_NOHEAP]; /* waiter indexes, in wake order */
    atomic_int n;
} noheap_t;

typedef struct noheap_arg {
    noheap_t *s;
    int i;
} noheap_arg_t;

/* Even waiters sleep, odd ones wait for the mutex: both are deadline waits. */
static void *noheap_waiter(void *arg)
{
    noheap_arg_t *a = arg;
    noheap_t *s = a->s;
    atomic_fetch_add(&s->started, 1); /* and then waits, in the same run */
    if (a->i % 2) {
        URSA_SCOPED(mutex_guard, g);
        s->rc[a->i] = ursa_mutex_lock(&s->m, &g, s->deadline[a->i]);
    } else {
        s->rc[a->i] = ursa_sleep_until(s->deadline[a->i]);
    }
    s->woke[a->i] = ursa_now();
    s->order[atomic_fetch_add(&s->n, 1)] = a->i;
    return NULL;
}

static void *noheap_root(void *arg)
{
    noheap_t *s = arg;
    static const int delay_ms[N_NOHEAP] = {50, 10, 40, 20, 60, 30};
    noheap_arg_t a[N_NOHEAP];
    ursa_task_t *t[N_NOHEAP] = {0};
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(&s->m, &g, URSA_NEVER))
        return R(-1);
    ursa_time_t now = ursa_now();
    for (int i = 0; i < N_NOHEAP; i++) {
        s->deadline[i] = now + URSA_MSEC(delay_ms[i]);
        a[i] = (noheap_arg_t){s, i};
    }
    /* The first half start waiting while the heap cannot grow, the rest
     * once it can: both kinds of timer are pending at once. */
    atomic_store(&fail_realloc, true);
    for (int i = 0; i < N_NOHEAP; i++) {
        if (i == N_NOHEAP / 2) {
            while (atomic_load(&s->started) < i)
                (void)ursa_yield();
            atomic_store(&fail_realloc, false);
        }
        if (ursa_spawn(&t[i], noheap_waiter, &a[i], NULL))
            return R(-2);
    }
    for (int i = 0; i < N_NOHEAP; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-3);
    return NULL;
}

/* Regression: a deadline wait that could not put its timer in the heap
 * was woken once to poll but stayed marked armed, so it slept for good
 * (deterministic mode: -EDEADLK; normal mode: a hang). Now such a timer
 * waits on the worker's spill list: it fires on time, in deadline order
 * with the others (exactly, in virtual time). */
static void test_rt_deadlines_fire_in_order_when_the_timer_heap_cannot_grow(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        noheap_t s;
        memset(&s, 0, sizeof s);
        assert_int_equal(ursa_mutex_init(&s.m), 0);
        void *res = R(-9);
        int rc = run_det(seed, noheap_root, &s, &res);
        atomic_store(&fail_realloc, false);
        assert_int_equal(rc, 0);
        assert_null(res);
        assert_int_equal(atomic_load(&s.n), N_NOHEAP);
        for (int i = 0; i < N_NOHEAP; i++) {
            assert_int_equal(s.rc[i], i % 2 ? -ETIMEDOUT : 0);
            assert_int_equal(s.woke[i], s.deadline[i]);
        }
        for (int k = 1; k < N_NOHEAP; k++)
            assert_true(s.deadline[s.order[k - 1]] < s.deadline[s.order[k]]);
        assert_int_equal(ursa_mutex_destroy(&s.m), 0);
    }
    /* Normal mode: each wait ends at its deadline, not before. */
    noheap_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ursa_mutex_init(&s.m), 0);
    assert_null(test_run(1, noheap_root, &s));
    assert_int_equal(atomic_load(&s.n), N_NOHEAP);
    for (int i = 0; i < N_NOHEAP; i++) {
        assert_int_equal(s.rc[i], i % 2 ? -ETIMEDOUT : 0);
        assert_true(s.woke[i] >= s.deadline[i]);
    }
    assert_int_equal(ursa_mutex_destroy(&s.m), 0);
}

/* ================= the timer heap on its own ================= */

/* Deadlines armed in random order, half of them while the heap cannot
 * grow (they spill), and disarmed from anywhere, fire in deadline order,
 * each exactly once. The tasks are bare descriptors: firing one only marks
 * it notified (it is not parked, so no worker is involved). */

enum { TIMERS = 1000 };

static bool timer_notified(ursa_task_t *t)
{
    return atomic_load(&t->wstate) == URSA__T_NOTIFIED;
}

static void test_rt_timer_heap_fires_in_deadline_order_after_spills_and_disarms(void **state)
{
    (void)state;
    static ursa_task_t task[TIMERS];
    ursa_time_t when[TIMERS];
    bool armed[TIMERS];
    static ursa__timer_spill_t room[TIMERS];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    /* Distinct deadlines in random order: a shuffled 1..TIMERS, times 10. */
    for (int i = 0; i < TIMERS; i++)
        when[i] = (ursa_time_t)(i + 1) * 10;
    for (int i = TIMERS - 1; i > 0; i--) {
        int j = (int)(xorshift(&rng) % (uint64_t)(i + 1));
        ursa_time_t w = when[i];
        when[i] = when[j];
        when[j] = w;
    }
    ursa__timers_t tm = {0};
    int spilled = 0;
    for (int i = 0; i < TIMERS; i++) {
        if (i == TIMERS / 2)
            atomic_store(&fail_realloc, true);
        memset(&task[i], 0, sizeof task[i]);
        task[i].timer_idx = URSA__TIMER_NONE;
        ursa__timer_arm(&tm, &task[i], when[i], &room[i]);
        armed[i] = true;
        assert_int_not_equal(task[i].timer_idx, URSA__TIMER_NONE);
        spilled += task[i].timer_idx == URSA__TIMER_SPILLED;
    }
    atomic_store(&fail_realloc, false);
    assert_true(spilled > 0);
    assert_int_equal(tm.len, TIMERS);
    /* Disarm a third of them, from anywhere in the heap. */
    int left = TIMERS;
    for (int i = 0; i < TIMERS; i++) {
        if (xorshift(&rng) % 3)
            continue;
        ursa__timer_disarm(&tm, &task[i]);
        ursa__timer_disarm(&tm, &task[i]); /* a second disarm does nothing */
        assert_int_equal(task[i].timer_idx, URSA__TIMER_NONE);
        armed[i] = false;
        left--;
    }
    assert_int_equal(tm.len, (size_t)left);
    /* Walk time forward one deadline at a time (the heap may grow again:
     * spilled timers move into it): exactly the armed task with that
     * deadline fires. */
    for (ursa_time_t now = 10; now <= (ursa_time_t)TIMERS * 10; now += 10) {
        int owner = -1;
        for (int i = 0; i < TIMERS; i++)
            if (when[i] == now)
                owner = i;
        if (armed[owner])
            assert_int_equal(ursa__timers_next(&tm), now);
        ursa__timers_fire(&tm, now);
        assert_int_equal(timer_notified(&task[owner]), armed[owner]);
        assert_int_equal(task[owner].timer_idx, URSA__TIMER_NONE);
        if (armed[owner])
            left--;
        assert_int_equal(tm.len, (size_t)left);
    }
    assert_int_equal(tm.len, 0);
    ursa__timers_fini(&tm);
}


TEST_MAIN(cmocka_unit_test(test_rt_yield_alternates),
          cmocka_unit_test(test_rt_sleep_takes_exact_virtual_or_at_least_real_time),
          cmocka_unit_test(test_rt_sleepers_wake_in_deadline_order),
          cmocka_unit_test(test_rt_deadlines_fire_in_order_when_the_timer_heap_cannot_grow),
          cmocka_unit_test(test_rt_timer_heap_fires_in_deadline_order_after_spills_and_disarms),
          cmocka_unit_test(test_rt_cross_worker_wakes_are_never_lost),
          cmocka_unit_test(test_rt_plain_thread_wakes_idle_worker))
