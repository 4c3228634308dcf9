/* Lock and notify workloads: mutex (uncontended, hand-off, mt2), rwlock,
 * semaphore, notify ping-pong. */
#include "bench.h"

static void *mutex_uncontended(void *arg)
{
    uint64_t n = scaled(10000000);
    ursa_mutex_t m;
    ursa_mutex_init(&m);
    volatile uint64_t counter = 0;
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_mutex_guard_t g = {0};
        CHECK(ursa_mutex_lock(&m, &g, URSA_NEVER) == 0);
        counter++;
        ursa_mutex_unlock(&g);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(counter == n);
    return NULL;
}

static void *rwlock_read_uncontended(void *arg)
{
    uint64_t n = scaled(10000000);
    ursa_rwlock_t rw;
    CHECK(ursa_rwlock_init(&rw, 0) == 0);
    volatile uint64_t value = 42, sum = 0;
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_rwlock_read_guard_t g = {0};
        CHECK(ursa_rwlock_read_lock(&rw, &g, URSA_NEVER) == 0);
        sum += value;
        ursa_rwlock_read_unlock(&g);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(sum == 42 * n);
    return NULL;
}

/* ---- mutex_contended_handoff / mt2_mutex_contended ---- */
typedef struct contended {
    ursa_mutex_t m;
    uint64_t counter;
    uint64_t iters;
    bool yield;
    bool barging; /* mt2_mutex_contended_barging: URSA_LOCK_BARGING */
} contended_t;

static void *contender(void *arg)
{
    contended_t *c = arg;
    for (uint64_t i = 0; i < c->iters; i++) {
        ursa_mutex_guard_t g = {0};
        CHECK(ursa_mutex_lock(&c->m, &g, URSA_NEVER) == 0);
        c->counter++;
        if (c->yield)
            ursa_yield();
        ursa_mutex_unlock(&g);
    }
    return NULL;
}

/* 4 tasks with default placement (WORKLOADS: the peers use their own
 * scheduler's). */
static void contended_run(contended_t *c, const char *name)
{
    CHECK(ursa_mutex_init_attr(&c->m, &(ursa_lock_attr_t){
                                          .flags = c->barging ? URSA_LOCK_BARGING : 0}) == 0);
    c->counter = 0;
    ursa_task_t *t[4];
    ursa_time_t t0 = mono();
    for (int i = 0; i < 4; i++)
        CHECK(ursa_spawn(&t[i], contender, c, NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    report(name, mono() - t0, 4 * c->iters);
    CHECK(c->counter == 4 * c->iters);
}

static void *mutex_contended_handoff(void *arg)
{
    contended_t c = {.iters = scaled(250000), .yield = true};
    contended_run(&c, bench_row(arg)->name);
    return NULL;
}

static void *mt2_mutex_contended(void *arg)
{
    contended_t c = {.iters = scaled(1000000), .yield = false};
    contended_run(&c, bench_row(arg)->name);
    return NULL;
}

/* The same with the mutex in throughput mode (Go's sync.Mutex is the
 * peer; Tokio's has no such mode and runs its FIFO mutex again). */
static void *mt2_mutex_contended_barging(void *arg)
{
    contended_t c = {.iters = scaled(1000000), .yield = false, .barging = true};
    contended_run(&c, bench_row(arg)->name);
    return NULL;
}

/* ---- mutex_handoff_depth_<N> ----
 * N tasks take turns on one mutex: lock, increment, unlock, again. On one
 * worker a task that unlocks hands the lock to the queue's head and queues
 * at its tail (no barging), so every op is one hand-off with N - 1 tasks
 * queued, each woken once per N hand-offs: cold nodes and stacks when N is
 * large. ns/op is per hand-off; the row pair shows whether its cost grows
 * with the queue's depth (the ratio is what counts). */
typedef struct depth {
    ursa_mutex_t m;
    uint64_t counter, iters, started;
} depth_t;

static void *depth_contender(void *arg)
{
    depth_t *d = arg;
    d->started++; /* one worker: a plain counter */
    for (uint64_t i = 0; i < d->iters; i++) {
        ursa_mutex_guard_t g = {0};
        CHECK(ursa_mutex_lock(&d->m, &g, URSA_NEVER) == 0);
        d->counter++;
        ursa_mutex_unlock(&g);
    }
    return NULL;
}

/* N tasks, 2M·S hand-offs in all (at least 4 per task). The clock starts
 * once every task has queued behind the root's lock. */
static void handoff_depth(const char *name, uint64_t n)
{
    depth_t *d = calloc(1, sizeof *d);
    ursa_task_t **t = calloc(n, sizeof *t);
    CHECK(d && t);
    uint64_t total = scaled(2000000);
    d->iters = total / n < 4 ? 4 : total / n;
    ursa_mutex_init(&d->m);
    ursa_mutex_guard_t g = {0};
    CHECK(ursa_mutex_lock(&d->m, &g, URSA_NEVER) == 0);
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_spawn(&t[i], depth_contender, d, NULL) == 0);
    while (d->started < n)
        CHECK(ursa_yield() == 0);
    CHECK(ursa_yield() == 0); /* the last one queued too */
    ursa_time_t t0 = mono();
    ursa_mutex_unlock(&g);
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    report(name, mono() - t0, n * d->iters);
    CHECK(d->counter == n * d->iters);
    CHECK(ursa_mutex_destroy(&d->m) == 0);
    free(t);
    free(d);
}

static void *mutex_handoff_depth_10(void *arg)
{
    handoff_depth(bench_row(arg)->name, 10);
    return NULL;
}

static void *mutex_handoff_depth_100000(void *arg)
{
    handoff_depth(bench_row(arg)->name, 100000);
    return NULL;
}

/* ---- notify_waiters_1000 ----
 * 1000 tasks wait on one notify; each round one notify_waiters wakes them
 * all, and each counts itself and waits again. ns/op is per waiter woken
 * (the wake-all's share, the switch to the waiter and its next wait). */
typedef struct wake_all {
    ursa_notify_t nt;
    uint64_t woken, started; /* one worker: plain counters */
    bool stop;
} wake_all_t;

static void *wake_all_waiter(void *arg)
{
    wake_all_t *a = arg;
    a->started++;
    for (;;) {
        CHECK(ursa_notify_wait(&a->nt, URSA_NEVER) == 0);
        a->woken++;
        if (a->stop)
            return NULL;
    }
}

static void *notify_waiters_1000(void *arg)
{
    enum { N = 1000 };
    wake_all_t a = {.woken = 0};
    CHECK(ursa_notify_init(&a.nt) == 0);
    ursa_task_t *t[N];
    for (int i = 0; i < N; i++)
        CHECK(ursa_spawn(&t[i], wake_all_waiter, &a, NULL) == 0);
    while (a.started < N)
        CHECK(ursa_yield() == 0);
    CHECK(ursa_yield() == 0); /* the last one queued too */
    uint64_t rounds = scaled(2000000) / N;
    if (rounds < 4)
        rounds = 4;
    ursa_time_t t0 = mono();
    for (uint64_t r = 0; r < rounds; r++) {
        CHECK(ursa_notify_waiters(&a.nt) == N);
        while (a.woken < (r + 1) * N) /* each woken one waits again before we run */
            CHECK(ursa_yield() == 0);
    }
    report(bench_row(arg)->name, mono() - t0, rounds * N);
    a.stop = true;
    CHECK(ursa_notify_waiters(&a.nt) == N);
    for (int i = 0; i < N; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    CHECK(ursa_notify_destroy(&a.nt) == 0);
    return NULL;
}

static void *semaphore_uncontended(void *arg)
{
    uint64_t n = scaled(10000000);
    ursa_sem_t s;
    ursa_sem_init(&s, 4);
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_sem_permit_t p = {0};
        CHECK(ursa_sem_acquire(&s, 1, &p, URSA_NEVER) == 0);
        ursa_sem_release(&p);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(ursa_sem_available(&s) == 4);
    return NULL;
}

/* ---- notify_pingpong_roundtrip ---- */
typedef struct pingpong {
    ursa_notify_t ping, pong;
    uint64_t n;
} pingpong_t;

static void *notify_echo(void *arg)
{
    pingpong_t *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        CHECK(ursa_notify_wait(&p->ping, URSA_NEVER) == 0);
        ursa_notify_one(&p->pong);
    }
    return (void *)(uintptr_t)p->n;
}

static void *notify_pingpong_roundtrip(void *arg)
{
    pingpong_t p = {.n = scaled(1000000)};
    ursa_notify_init(&p.ping);
    ursa_notify_init(&p.pong);
    ursa_task_t *t;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&t, notify_echo, &p, NULL) == 0);
    for (uint64_t i = 0; i < p.n; i++) {
        ursa_notify_one(&p.ping);
        CHECK(ursa_notify_wait(&p.pong, URSA_NEVER) == 0);
    }
    void *r;
    CHECK(ursa_task_join(t, &r, URSA_NEVER) == 0 && (uint64_t)(uintptr_t)r == p.n);
    report(bench_row(arg)->name, mono() - t0, p.n);
    return NULL;
}

const bench_workload_t bench_sync[] = {
    {"mutex_uncontended", mutex_uncontended, {.workers = 1}, 0},
    {"mutex_contended_handoff", mutex_contended_handoff, {.workers = 1}, 0},
    /* Both depths on the same small, unguarded stacks (100k guarded stacks
     * would pass vm.max_map_count), so only the depth differs. */
    {"mutex_handoff_depth_10", mutex_handoff_depth_10,
     {.workers = 1, .stack_size = 16384, .no_stack_guard = true}, 0},
    {"mutex_handoff_depth_100000", mutex_handoff_depth_100000,
     {.workers = 1, .stack_size = 16384, .no_stack_guard = true}, 0},
    {"rwlock_read_uncontended", rwlock_read_uncontended, {.workers = 1}, 0},
    {"semaphore_uncontended", semaphore_uncontended, {.workers = 1}, 0},
    {"notify_pingpong_roundtrip", notify_pingpong_roundtrip, {.workers = 1}, 0},
    {"notify_waiters_1000", notify_waiters_1000, {.workers = 1}, 0},
    {"mt2_mutex_contended", mt2_mutex_contended, {.workers = 2}, 0},
    {"mt2_mutex_contended_barging", mt2_mutex_contended_barging, {.workers = 2}, 0},
    {0},
};
