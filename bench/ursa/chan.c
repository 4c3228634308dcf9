/* Channel workloads: mpsc (bounded, unbounded, mt2, oversub, big), oneshot,
 * mpsc ping-pong, broadcast, watch, channel creation at two capacities,
 * mpmc. */
#include "bench.h"

#include <errno.h>


typedef struct mpsc_run {
    ursa_mpsc_sender_t tx;
    uint64_t from, count; /* this producer sends from .. from+count-1 */
    unsigned yield_every; /* 0: never */
} mpsc_run_t;

static void *mpsc_producer(void *arg)
{
    mpsc_run_t *r = arg;
    for (uint64_t i = 0; i < r->count; i++) {
        uint64_t v = r->from + i;
        CHECK(ursa_mpsc_send(&r->tx, &v, URSA_NEVER) == 0);
        if (r->yield_every && i % r->yield_every == r->yield_every - 1)
            ursa_yield();
    }
    CHECK(ursa_mpsc_sender_drop(&r->tx) == 0);
    return NULL;
}

uint64_t mpsc_drain(const ursa_mpsc_receiver_t *rx, uint64_t *sum)
{
    uint64_t got = 0, v;
    int rc;
    *sum = 0;
    while ((rc = ursa_mpsc_recv(rx, &v, URSA_NEVER)) == 0) {
        got++;
        *sum += v;
    }
    CHECK(rc == -EPIPE);
    return got;
}

void mpsc_run(const char *name, unsigned producers, size_t capacity, unsigned yield_every,
              unsigned workers)
{
    uint64_t n = scaled(5000000) / producers * producers;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), capacity, NULL) == 0);
    mpsc_run_t runs[4];
    ursa_task_t *t[4];
    ursa_time_t t0 = mono();
    for (unsigned i = 0; i < producers; i++) {
        CHECK(ursa_mpsc_sender_clone(&tx, &runs[i].tx) == 0);
        runs[i].from = i * (n / producers);
        runs[i].count = n / producers;
        runs[i].yield_every = yield_every;
        ursa_spawn_opts_t on1 = {URSA_ON_WORKER(1)};
        CHECK(ursa_spawn(&t[i], mpsc_producer, &runs[i], workers > 1 ? &on1 : NULL) == 0);
    }
    CHECK(ursa_mpsc_sender_drop(&tx) == 0);
    uint64_t sum, got = mpsc_drain(&rx, &sum);
    report(name, mono() - t0, got);
    CHECK(got == n && sum == n * (n - 1) / 2);
    for (unsigned i = 0; i < producers; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
}

static void *mpsc_bounded_1p(void *arg)
{
    mpsc_run(bench_row(arg)->name, 1, 1024, 0, 1);
    return NULL;
}

static void *mpsc_bounded_4p(void *arg)
{
    mpsc_run(bench_row(arg)->name, 4, 1024, 0, 1);
    return NULL;
}

static void *mpsc_unbounded_1p(void *arg)
{
    mpsc_run(bench_row(arg)->name, 1, 0, 1024, 1);
    return NULL;
}

static void *mt2_mpsc_bounded_1p(void *arg)
{
    mpsc_run(bench_row(arg)->name, 1, 1024, 0, 2); /* producer on worker 1 */
    return NULL;
}

static void *oneshot_create_send_recv(void *arg)
{
    uint64_t n = scaled(1000000);
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_oneshot_t os;
        CHECK(ursa_oneshot_init(&os, sizeof(uint64_t), NULL) == 0);
        CHECK(ursa_oneshot_send(&os, &i) == 0);
        uint64_t v = ~i;
        CHECK(ursa_oneshot_recv(&os, &v, URSA_NEVER) == 0 && v == i);
        CHECK(ursa_oneshot_destroy(&os) == 0);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    return NULL;
}

typedef struct mpsc_echo {
    ursa_mpsc_receiver_t in;
    ursa_mpsc_sender_t out;
} mpsc_echo_t;

static void *mpsc_echo(void *arg)
{
    mpsc_echo_t *e = arg;
    uint64_t v;
    while (ursa_mpsc_recv(&e->in, &v, URSA_NEVER) == 0)
        CHECK(ursa_mpsc_send(&e->out, &v, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_sender_drop(&e->out) == 0);
    return NULL;
}

static void *mpsc_pingpong_roundtrip(void *arg)
{
    uint64_t n = scaled(1000000);
    mpsc_echo_t e;
    ursa_mpsc_sender_t ping;
    ursa_mpsc_receiver_t pong;
    CHECK(ursa_mpsc_new(&e.in, &ping, sizeof(uint64_t), 1, NULL) == 0);
    CHECK(ursa_mpsc_new(&pong, &e.out, sizeof(uint64_t), 1, NULL) == 0);
    ursa_task_t *t;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&t, mpsc_echo, &e, NULL) == 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = ~i;
        CHECK(ursa_mpsc_send(&ping, &i, URSA_NEVER) == 0);
        CHECK(ursa_mpsc_recv(&pong, &v, URSA_NEVER) == 0 && v == i);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(ursa_mpsc_sender_drop(&ping) == 0);
    CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_receiver_drop(&e.in) == 0 && ursa_mpsc_receiver_drop(&pong) == 0);
    return NULL;
}

typedef struct bc_rx {
    ursa_broadcast_rx_t *rx;
    uint64_t n;
} bc_rx_t;

static void *bc_receiver(void *arg)
{
    bc_rx_t *r = arg;
    uint64_t v, missed = 0, next = 0;
    while (next < r->n) {
        CHECK(ursa_broadcast_recv(r->rx, &v, &missed, URSA_NEVER) == 0 && v == next);
        next++;
    }
    CHECK(ursa_broadcast_receiver_drop(r->rx) == 0);
    return NULL;
}

static void *broadcast_1to4_per_send(void *arg)
{
    uint64_t n = scaled(1000000);
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *first;
    CHECK(ursa_broadcast_new(&tx, &first, sizeof(uint64_t), 1024, NULL) == 0);
    bc_rx_t r[4];
    ursa_task_t *t[4];
    r[0].rx = first;
    for (int i = 1; i < 4; i++)
        CHECK(ursa_broadcast_subscribe(tx, &r[i].rx) == 0);
    ursa_time_t t0 = mono();
    for (int i = 0; i < 4; i++) {
        r[i].n = n;
        CHECK(ursa_spawn(&t[i], bc_receiver, &r[i], NULL) == 0);
    }
    for (uint64_t i = 0; i < n; i++) {
        CHECK(ursa_broadcast_send(tx, &i) == 4);
        if (i % 512 == 511)
            ursa_yield();
    }
    for (int i = 0; i < 4; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0); /* each saw all n, in order */
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(ursa_broadcast_sender_drop(tx) == 0);
    return NULL;
}

typedef struct watch_pair {
    ursa_watch_tx_t *tx; /* this side sends here */
    ursa_watch_rx_t *rx; /* and waits here */
    uint64_t n;
} watch_pair_t;

static uint64_t watch_next(ursa_watch_rx_t *rx)
{
    CHECK(ursa_watch_changed(rx, URSA_NEVER) == 0);
    ursa_watch_borrow_t g = {0};
    CHECK(ursa_watch_borrow_and_update(rx, &g) == 0);
    uint64_t v = *(const uint64_t *)ursa_watch_borrow_ptr(&g);
    CHECK(ursa_watch_borrow_release(&g) == 0);
    return v;
}

static void *watch_echo(void *arg)
{
    watch_pair_t *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t v = watch_next(p->rx);
        CHECK(v == i && ursa_watch_send(p->tx, &v) == 0);
    }
    return NULL;
}

static void *watch_pingpong_roundtrip(void *arg)
{
    uint64_t n = scaled(1000000), zero = UINT64_MAX;
    watch_pair_t a, b;
    CHECK(ursa_watch_new(&a.tx, &b.rx, sizeof(uint64_t), &zero) == 0); /* A -> B */
    CHECK(ursa_watch_new(&b.tx, &a.rx, sizeof(uint64_t), &zero) == 0); /* B -> A */
    a.n = b.n = n;
    ursa_task_t *t;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&t, watch_echo, &b, NULL) == 0);
    for (uint64_t i = 0; i < n; i++) {
        CHECK(ursa_watch_send(a.tx, &i) == 0);
        CHECK(watch_next(a.rx) == i);
    }
    CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    report(bench_row(arg)->name, mono() - t0, n);
    ursa_watch_sender_drop(a.tx);
    ursa_watch_sender_drop(b.tx);
    ursa_watch_receiver_drop(a.rx);
    ursa_watch_receiver_drop(b.rx);
    return NULL;
}

static void *oversub_mt2_mpsc_bounded_1p(void *arg)
{
    check_one_cpu_everywhere(2);
    mpsc_run(bench_row(arg)->name, 1, 1024, 0, 2);
    return NULL;
}

/* ---- mpsc_bounded_big: creating and dropping a channel sized for its worst
 * case, used for a few thousand messages ---- */
enum { BIG_CAPACITY = 1000000, BIG_MESSAGES = 5000 };

static void *big_producer(void *arg)
{
    ursa_mpsc_sender_t *tx = arg;
    for (uint64_t v = 0; v < BIG_MESSAGES; v++)
        CHECK(ursa_mpsc_send(tx, &v, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_sender_drop(tx) == 0);
    return NULL;
}

static void *mpsc_bounded_big(void *arg)
{
    uint64_t iters = scaled(200);
    ursa_time_t t0 = mono();
    for (uint64_t it = 0; it < iters; it++) {
        ursa_mpsc_receiver_t rx;
        ursa_mpsc_sender_t tx;
        CHECK(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), BIG_CAPACITY, NULL) == 0);
        ursa_task_t *t;
        CHECK(ursa_spawn(&t, big_producer, &tx, NULL) == 0);
        uint64_t sum, got = mpsc_drain(&rx, &sum);
        CHECK(got == BIG_MESSAGES && sum == (uint64_t)BIG_MESSAGES * (BIG_MESSAGES - 1) / 2);
        CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
        CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
    }
    report(bench_row(arg)->name, mono() - t0, iters * BIG_MESSAGES);
    return NULL;
}

/* ---- channel creation: make and drop an empty bounded channel of u64, at
 * capacity 1,000 and 1,000,000 in the same run (issue 11: the cost must not
 * grow with the capacity) ---- */

typedef enum { CREATE_MPSC, CREATE_MPMC, CREATE_BROADCAST } create_kind_t;

static void create_run(const char *name, create_kind_t kind, uint64_t cap)
{
    uint64_t n = scaled(200000);
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        if (kind == CREATE_MPSC) {
            ursa_mpsc_receiver_t rx;
            ursa_mpsc_sender_t tx;
            CHECK(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), cap, NULL) == 0);
            CHECK(ursa_mpsc_sender_drop(&tx) == 0 && ursa_mpsc_receiver_drop(&rx) == 0);
        } else if (kind == CREATE_MPMC) {
            ursa_mpmc_receiver_t rx;
            ursa_mpmc_sender_t tx;
            CHECK(ursa_mpmc_new(&rx, &tx, sizeof(uint64_t), cap, NULL) == 0);
            CHECK(ursa_mpmc_sender_drop(&tx) == 0 && ursa_mpmc_receiver_drop(&rx) == 0);
        } else {
            ursa_broadcast_tx_t *tx;
            ursa_broadcast_rx_t *rx;
            CHECK(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), cap, NULL) == 0);
            CHECK(ursa_broadcast_receiver_drop(rx) == 0 && ursa_broadcast_sender_drop(tx) == 0);
        }
    }
    report(name, mono() - t0, n);
}

static void *mpsc_create_1k(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_MPSC, 1000);
    return NULL;
}

static void *mpsc_create_1m(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_MPSC, 1000000);
    return NULL;
}

static void *mpmc_create_1k(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_MPMC, 1000);
    return NULL;
}

static void *mpmc_create_1m(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_MPMC, 1000000);
    return NULL;
}

static void *broadcast_create_1k(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_BROADCAST, 1000);
    return NULL;
}

static void *broadcast_create_1m(void *arg)
{
    create_run(bench_row(arg)->name, CREATE_BROADCAST, 1000000);
    return NULL;
}

/* ---- mpmc_bounded_1p: mpsc_bounded_1p's shape on mpmc (one producer task,
 * the root receives), so mpmc's send and receive paths have an
 * instruction count of their own ---- */

typedef struct mpmc_run {
    ursa_mpmc_sender_t tx;
    uint64_t count;
} mpmc_run_t;

static void *mpmc_producer(void *arg)
{
    mpmc_run_t *r = arg;
    for (uint64_t v = 0; v < r->count; v++)
        CHECK(ursa_mpmc_send(&r->tx, &v, URSA_NEVER) == 0);
    CHECK(ursa_mpmc_sender_drop(&r->tx) == 0);
    return NULL;
}

static void *mpmc_bounded_1p(void *arg)
{
    uint64_t n = scaled(5000000), sum = 0, got = 0, v;
    ursa_mpmc_receiver_t rx;
    mpmc_run_t r = {.count = n};
    CHECK(ursa_mpmc_new(&rx, &r.tx, sizeof(uint64_t), 1024, NULL) == 0);
    ursa_task_t *t;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&t, mpmc_producer, &r, NULL) == 0);
    int rc;
    while ((rc = ursa_mpmc_recv(&rx, &v, URSA_NEVER)) == 0) {
        got++;
        sum += v;
    }
    report(bench_row(arg)->name, mono() - t0, got);
    CHECK(rc == -EPIPE && got == n && sum == n * (n - 1) / 2);
    CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    CHECK(ursa_mpmc_receiver_drop(&rx) == 0);
    return NULL;
}

const bench_workload_t bench_chan[] = {
    {"mpsc_bounded_1p", mpsc_bounded_1p, {.workers = 1}, 0},
    {"mpsc_bounded_4p", mpsc_bounded_4p, {.workers = 1}, 0},
    {"mpsc_unbounded_1p", mpsc_unbounded_1p, {.workers = 1}, 0},
    {"oneshot_create_send_recv", oneshot_create_send_recv, {.workers = 1}, 0},
    {"mpsc_pingpong_roundtrip", mpsc_pingpong_roundtrip, {.workers = 1}, 0},
    {"broadcast_1to4_per_send", broadcast_1to4_per_send, {.workers = 1}, 0},
    {"watch_pingpong_roundtrip", watch_pingpong_roundtrip, {.workers = 1}, 0},
    {"mpsc_bounded_big", mpsc_bounded_big, {.workers = 1}, 0},
    {"mpsc_create_1k", mpsc_create_1k, {.workers = 1}, 0},
    {"mpsc_create_1m", mpsc_create_1m, {.workers = 1}, 0},
    {"mpmc_create_1k", mpmc_create_1k, {.workers = 1}, 0},
    {"mpmc_create_1m", mpmc_create_1m, {.workers = 1}, 0},
    {"broadcast_create_1k", broadcast_create_1k, {.workers = 1}, 0},
    {"broadcast_create_1m", broadcast_create_1m, {.workers = 1}, 0},
    {"mpmc_bounded_1p", mpmc_bounded_1p, {.workers = 1}, 0},
    {"mt2_mpsc_bounded_1p", mt2_mpsc_bounded_1p, {.workers = 2}, 0},
    {"oversub_mt2_mpsc_bounded_1p", oversub_mt2_mpsc_bounded_1p, {.workers = 2}, BENCH_ONE_CPU},
    {0},
};
