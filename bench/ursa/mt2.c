/* Two-worker workloads: request/reply (fixed, migratable, and
 * oversubscribed on one CPU), fork-join, pipeline. (mt2_mutex_contended is in sync.c,
 * mt2_mpsc_bounded_1p in chan.c.) */
#include "bench.h"

#include <errno.h>

/* ---- mt2_request_reply: client fixed on worker 0, server on worker 1 ---- */
typedef struct request {
    uint64_t i;
    ursa_oneshot_t *reply;
} request_t;

typedef struct reqrep {
    ursa_mpsc_receiver_t rx; /* the server's */
    ursa_mpsc_sender_t tx;   /* the client's */
    uint64_t n;
} reqrep_t;

static void *server(void *arg)
{
    reqrep_t *r = arg;
    request_t q;
    uint64_t served = 0;
    int rc;
    while ((rc = ursa_mpsc_recv(&r->rx, &q, URSA_NEVER)) == 0) {
        uint64_t v = q.i + 1;
        CHECK(ursa_oneshot_send(q.reply, &v) == 0);
        served++;
    }
    CHECK(rc == -EPIPE);
    return (void *)(uintptr_t)served;
}

static void *client(void *arg)
{
    reqrep_t *r = arg;
    for (uint64_t i = 0; i < r->n; i++) {
        ursa_oneshot_t reply;
        CHECK(ursa_oneshot_init(&reply, sizeof(uint64_t), NULL) == 0);
        request_t q = {.i = i, .reply = &reply};
        CHECK(ursa_mpsc_send(&r->tx, &q, URSA_NEVER) == 0);
        uint64_t v = 0;
        CHECK(ursa_oneshot_recv(&reply, &v, URSA_NEVER) == 0 && v == i + 1);
        CHECK(ursa_oneshot_destroy(&reply) == 0);
    }
    CHECK(ursa_mpsc_sender_drop(&r->tx) == 0);
    return NULL;
}

/* Server and client spawned with the given placements. */
static void request_reply(const char *name, const ursa_spawn_opts_t *srv,
                          const ursa_spawn_opts_t *cli)
{
    reqrep_t r = {.n = scaled(100000)};
    CHECK(ursa_mpsc_new(&r.rx, &r.tx, sizeof(request_t), 64, NULL) == 0);
    ursa_task_t *s, *c;
    void *served;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&s, server, &r, srv) == 0);
    CHECK(ursa_spawn(&c, client, &r, cli) == 0);
    CHECK(ursa_task_join(c, NULL, URSA_NEVER) == 0);
    CHECK(ursa_task_join(s, &served, URSA_NEVER) == 0);
    report(name, mono() - t0, r.n);
    CHECK((uint64_t)(uintptr_t)served == r.n);
    CHECK(ursa_mpsc_receiver_drop(&r.rx) == 0);
}

static const ursa_spawn_opts_t on0 = {URSA_ON_WORKER(0)}, on1 = {URSA_ON_WORKER(1)};

static void *mt2_request_reply(void *arg)
{
    request_reply(bench_row(arg)->name, &on1, &on0);
    return NULL;
}

/* ---- mt2_request_reply_migratable: default placement, migratable ---- */
static void *mt2_request_reply_migratable(void *arg)
{
    static const ursa_spawn_opts_t mig = {.migratable = true};
    request_reply(bench_row(arg)->name, &mig, &mig);
    return NULL;
}

static void *oversub_mt2_request_reply(void *arg)
{
    check_one_cpu_everywhere(2);
    request_reply(bench_row(arg)->name, &on1, &on0);
    return NULL;
}

/* ---- mt2_fork_join: 6 tasks with default placement per iteration ---- */
enum { FORK = 6, FORK_PERMITS = 5 };

static ursa_sem_t fork_sem;

static void *forked(void *arg)
{
    ursa_sem_permit_t p = {0};
    CHECK(ursa_sem_acquire(&fork_sem, 1, &p, URSA_NEVER) == 0);
    CHECK(ursa_yield() == 0);
    CHECK(ursa_sem_release(&p) == 0);
    return arg;
}

static void *mt2_fork_join(void *arg)
{
    uint64_t n = scaled(20000);
    CHECK(ursa_sem_init(&fork_sem, FORK_PERMITS) == 0);
    ursa_time_t t0 = mono();
    for (uint64_t it = 0; it < n; it++) {
        ursa_task_t *t[FORK];
        for (uintptr_t k = 0; k < FORK; k++)
            CHECK(ursa_spawn(&t[k], forked, (void *)(k + 1), NULL) == 0);
        for (uintptr_t k = 0; k < FORK; k++) {
            void *r;
            CHECK(ursa_task_join(t[k], &r, URSA_NEVER) == 0 && r == (void *)(k + 1));
        }
    }
    report(bench_row(arg)->name, mono() - t0, FORK * n);
    CHECK(ursa_sem_available(&fork_sem) == FORK_PERMITS);
    CHECK(ursa_sem_destroy(&fork_sem) == 0);
    return NULL;
}

/* ---- mt2_pipeline: producer -> mpmc(256) -> 4 workers -> mpsc(256) ->
 * collector (the root) ---- */
enum { STAGE_WORKERS = 4, PIPE_CAPACITY = 256, XORSHIFT_ROUNDS = 50 };

static uint64_t xorshift50(uint64_t x)
{
    for (int r = 0; r < XORSHIFT_ROUNDS; r++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

typedef struct stage {
    ursa_mpmc_receiver_t in;
    ursa_mpsc_sender_t out;
} stage_t;

typedef struct source {
    ursa_mpmc_sender_t out;
    uint64_t n;
} source_t;

static void *pipe_producer(void *arg)
{
    source_t *s = arg;
    for (uint64_t i = 0; i < s->n; i++)
        CHECK(ursa_mpmc_send(&s->out, &i, URSA_NEVER) == 0);
    CHECK(ursa_mpmc_sender_drop(&s->out) == 0);
    return NULL;
}

static void *pipe_worker(void *arg)
{
    stage_t *st = arg;
    uint64_t v;
    int rc;
    while ((rc = ursa_mpmc_recv(&st->in, &v, URSA_NEVER)) == 0) {
        v = xorshift50(v);
        CHECK(ursa_mpsc_send(&st->out, &v, URSA_NEVER) == 0);
    }
    CHECK(rc == -EPIPE);
    CHECK(ursa_mpmc_receiver_drop(&st->in) == 0 && ursa_mpsc_sender_drop(&st->out) == 0);
    return NULL;
}

static void *mt2_pipeline(void *arg)
{
    uint64_t n = scaled(1000000), want = 0;
    for (uint64_t i = 0; i < n; i++)
        want += xorshift50(i);
    source_t src = {.n = n};
    ursa_mpmc_receiver_t work_rx;
    ursa_mpsc_receiver_t sink;
    ursa_mpsc_sender_t sink_tx;
    CHECK(ursa_mpmc_new(&work_rx, &src.out, sizeof(uint64_t), PIPE_CAPACITY, NULL) == 0);
    CHECK(ursa_mpsc_new(&sink, &sink_tx, sizeof(uint64_t), PIPE_CAPACITY, NULL) == 0);
    stage_t st[STAGE_WORKERS];
    ursa_task_t *t[STAGE_WORKERS], *p;
    for (int k = 0; k < STAGE_WORKERS; k++) {
        CHECK(ursa_mpmc_receiver_clone(&work_rx, &st[k].in) == 0);
        CHECK(ursa_mpsc_sender_clone(&sink_tx, &st[k].out) == 0);
    }
    CHECK(ursa_mpmc_receiver_drop(&work_rx) == 0 && ursa_mpsc_sender_drop(&sink_tx) == 0);
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&p, pipe_producer, &src, NULL) == 0);
    for (int k = 0; k < STAGE_WORKERS; k++)
        CHECK(ursa_spawn(&t[k], pipe_worker, &st[k], NULL) == 0);
    uint64_t sum, got = mpsc_drain(&sink, &sum);
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(got == n && sum == want);
    CHECK(ursa_task_join(p, NULL, URSA_NEVER) == 0);
    for (int k = 0; k < STAGE_WORKERS; k++)
        CHECK(ursa_task_join(t[k], NULL, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_receiver_drop(&sink) == 0);
    return NULL;
}

const bench_workload_t bench_mt2[] = {
    {"mt2_request_reply", mt2_request_reply, {.workers = 2}, 0},
    {"mt2_request_reply_migratable", mt2_request_reply_migratable, {.workers = 2}, 0},
    {"mt2_fork_join", mt2_fork_join, {.workers = 2}, 0},
    {"mt2_pipeline", mt2_pipeline, {.workers = 2}, 0},
    {"oversub_mt2_request_reply", oversub_mt2_request_reply, {.workers = 2}, BENCH_ONE_CPU},
    {0},
};
