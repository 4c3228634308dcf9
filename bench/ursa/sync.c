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
    ursa_mutex_init(&c->m);
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
    {"rwlock_read_uncontended", rwlock_read_uncontended, {.workers = 1}, 0},
    {"semaphore_uncontended", semaphore_uncontended, {.workers = 1}, 0},
    {"notify_pingpong_roundtrip", notify_pingpong_roundtrip, {.workers = 1}, 0},
    {"mt2_mutex_contended", mt2_mutex_contended, {.workers = 2}, 0},
    {0},
};
