/* ursa benchmark: one line per workload, `name ns_per_op` (or `name bytes`),
 * with the names and definitions of shared/WORKLOADS.md. Usage:
 *   ursa_bench [S] [workload...]   S scales every N (default 1). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ursa.h>

static double S = 1;

static uint64_t scaled(double n)
{
    double v = n * S;
    return v < 1 ? 1 : (uint64_t)v;
}

static ursa_time_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "ursa_bench: check failed at line %d: %s\n", __LINE__, #cond); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static void report(const char *name, ursa_time_t ns, uint64_t ops)
{
    printf("%s %.2f\n", name, (double)ns / (double)ops);
    fflush(stdout);
}

static void run_root(unsigned workers, ursa_task_fn_t fn, void *arg)
{
    ursa_rt_config_t cfg = {.workers = workers};
    CHECK(ursa_run(&cfg, fn, arg, NULL) == 0);
}

/* ---- spawn_join ---- */
static void *ret_arg(void *arg) { return arg; }

static ursa_time_t spawn_join_round(ursa_task_t **t, uint64_t n)
{
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_spawn(&t[i], ret_arg, (void *)(uintptr_t)i, NULL) == 0);
    for (uint64_t i = 0; i < n; i++) {
        void *r;
        CHECK(ursa_task_join(t[i], &r, URSA_NEVER) == 0);
        CHECK(r == (void *)(uintptr_t)i);
    }
    return mono() - t0;
}

static void *spawn_join(void *arg)
{
    (void)arg;
    uint64_t n = scaled(100000);
    ursa_task_t **t = malloc(n * sizeof *t);
    CHECK(t);
    /* One untimed round first, as the peers do: a cold round mostly
     * measures the kernel's first-touch page faults. */
    ursa_time_t cold = spawn_join_round(t, n);
    fprintf(stderr, "spawn_join (cold round) %.2f\n", (double)cold / (double)n);
    report("spawn_join", spawn_join_round(t, n), n);
    free(t);
    return NULL;
}

/* ---- yield_switch ---- */
static void *yielder(void *arg)
{
    uint64_t n = *(uint64_t *)arg;
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_yield() == 0);
    return (void *)(uintptr_t)n;
}

static void *yield_switch(void *arg)
{
    (void)arg;
    uint64_t n = scaled(1000000);
    ursa_task_t *a, *b;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&a, yielder, &n, NULL) == 0);
    CHECK(ursa_spawn(&b, yielder, &n, NULL) == 0);
    void *ra, *rb;
    CHECK(ursa_task_join(a, &ra, URSA_NEVER) == 0 && ursa_task_join(b, &rb, URSA_NEVER) == 0);
    CHECK((uint64_t)(uintptr_t)ra == n && (uint64_t)(uintptr_t)rb == n);
    report("yield_switch", mono() - t0, 2 * n);
    return NULL;
}

/* ---- mutex_uncontended ---- */
static void *mutex_uncontended(void *arg)
{
    (void)arg;
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
    report("mutex_uncontended", mono() - t0, n);
    CHECK(counter == n);
    return NULL;
}

/* ---- rwlock_read_uncontended ---- */
static void *rwlock_read_uncontended(void *arg)
{
    (void)arg;
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
    report("rwlock_read_uncontended", mono() - t0, n);
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

static void contended_run(contended_t *c, const char *name, unsigned workers)
{
    ursa_mutex_init(&c->m);
    c->counter = 0;
    ursa_task_t *t[4];
    ursa_time_t t0 = mono();
    for (int i = 0; i < 4; i++)
        CHECK(ursa_spawn(&t[i], contender, c,
                         &(ursa_spawn_opts_t){.worker = (int)(i % workers)}) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    report(name, mono() - t0, 4 * c->iters);
    CHECK(c->counter == 4 * c->iters);
}

static void *mutex_contended_handoff(void *arg)
{
    (void)arg;
    contended_t c = {.iters = scaled(250000), .yield = true};
    contended_run(&c, "mutex_contended_handoff", 1);
    return NULL;
}

static void *mt2_mutex_contended(void *arg)
{
    (void)arg;
    contended_t c = {.iters = scaled(1000000), .yield = false};
    contended_run(&c, "mt2_mutex_contended", 2);
    return NULL;
}

/* ---- semaphore_uncontended ---- */
static void *semaphore_uncontended(void *arg)
{
    (void)arg;
    uint64_t n = scaled(10000000);
    ursa_sem_t s;
    ursa_sem_init(&s, 4);
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        ursa_sem_permit_t p = {0};
        CHECK(ursa_sem_acquire(&s, 1, &p, URSA_NEVER) == 0);
        ursa_sem_release(&p);
    }
    report("semaphore_uncontended", mono() - t0, n);
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
    (void)arg;
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
    report("notify_pingpong_roundtrip", mono() - t0, p.n);
    return NULL;
}

/* ---- channels ---- */

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

/* producers send 0..n-1 between them; the consumer (this task) receives
 * until closed and checks count and sum. */
static void mpsc_run(const char *name, unsigned producers, size_t capacity, unsigned yield_every,
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
        CHECK(ursa_spawn(&t[i], mpsc_producer, &runs[i],
                         &(ursa_spawn_opts_t){.worker = workers > 1 ? 1 : -1}) == 0);
    }
    CHECK(ursa_mpsc_sender_drop(&tx) == 0);
    uint64_t got = 0, sum = 0, v;
    int rc;
    while ((rc = ursa_mpsc_recv(&rx, &v, URSA_NEVER)) == 0) {
        got++;
        sum += v;
    }
    report(name, mono() - t0, got);
    CHECK(rc == -EPIPE && got == n && sum == n * (n - 1) / 2);
    for (unsigned i = 0; i < producers; i++)
        CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0);
    CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
}

static void *mpsc_bounded_1p(void *arg)
{
    (void)arg;
    mpsc_run("mpsc_bounded_1p", 1, 1024, 0, 1);
    return NULL;
}

static void *mpsc_bounded_4p(void *arg)
{
    (void)arg;
    mpsc_run("mpsc_bounded_4p", 4, 1024, 0, 1);
    return NULL;
}

static void *mpsc_unbounded_1p(void *arg)
{
    (void)arg;
    mpsc_run("mpsc_unbounded_1p", 1, 0, 1024, 1);
    return NULL;
}

static void *mt2_mpsc_bounded_1p(void *arg)
{
    (void)arg;
    mpsc_run("mt2_mpsc_bounded_1p", 1, 1024, 0, 2); /* producer on worker 1 */
    return NULL;
}

static void *oneshot_create_send_recv(void *arg)
{
    (void)arg;
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
    report("oneshot_create_send_recv", mono() - t0, n);
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
    (void)arg;
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
    report("mpsc_pingpong_roundtrip", mono() - t0, n);
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
    (void)arg;
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
    report("broadcast_1to4_per_send", mono() - t0, n);
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
    (void)arg;
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
    report("watch_pingpong_roundtrip", mono() - t0, n);
    ursa_watch_sender_drop(a.tx);
    ursa_watch_sender_drop(b.tx);
    ursa_watch_receiver_drop(a.rx);
    ursa_watch_receiver_drop(b.rx);
    return NULL;
}

/* ---- memory ---- */
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * 4096;
}

static void *idle_waiter(void *arg)
{
    return (void *)(intptr_t)ursa_notify_wait((ursa_notify_t *)arg, URSA_NEVER);
}

static void *mem_per_idle_task(void *arg)
{
    (void)arg;
    uint64_t n = 100000;
    ursa_notify_t nt;
    ursa_notify_init(&nt);
    ursa_task_t **t = malloc(n * sizeof *t);
    CHECK(t);
    long before = rss_bytes();
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_spawn(&t[i], idle_waiter, &nt, NULL) == 0);
    CHECK(ursa_sleep_for(URSA_MSEC(1)) == 0); /* let every task park */
    long after = rss_bytes();
    CHECK(ursa_notify_waiters(&nt) == (int)n);
    for (uint64_t i = 0; i < n; i++) {
        void *r;
        CHECK(ursa_task_join(t[i], &r, URSA_NEVER) == 0 && r == NULL);
    }
    printf("mem_per_idle_task %ld\n", (after - before) / (long)n);
    free(t);
    return NULL;
}

typedef struct workload {
    const char *name;
    ursa_task_fn_t fn;
    unsigned workers;
} workload_t;

static const workload_t workloads[] = {
    {"spawn_join", spawn_join, 1},
    {"yield_switch", yield_switch, 1},
    {"mutex_uncontended", mutex_uncontended, 1},
    {"mutex_contended_handoff", mutex_contended_handoff, 1},
    {"rwlock_read_uncontended", rwlock_read_uncontended, 1},
    {"semaphore_uncontended", semaphore_uncontended, 1},
    {"notify_pingpong_roundtrip", notify_pingpong_roundtrip, 1},
    {"mpsc_bounded_1p", mpsc_bounded_1p, 1},
    {"mpsc_bounded_4p", mpsc_bounded_4p, 1},
    {"mpsc_unbounded_1p", mpsc_unbounded_1p, 1},
    {"oneshot_create_send_recv", oneshot_create_send_recv, 1},
    {"mpsc_pingpong_roundtrip", mpsc_pingpong_roundtrip, 1},
    {"broadcast_1to4_per_send", broadcast_1to4_per_send, 1},
    {"watch_pingpong_roundtrip", watch_pingpong_roundtrip, 1},
    {"mt2_mpsc_bounded_1p", mt2_mpsc_bounded_1p, 2},
    {"mt2_mutex_contended", mt2_mutex_contended, 2},
};

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strtod(argv[1], NULL) > 0) {
        S = strtod(argv[1], NULL);
        first = 2;
    }
    bool any = false;
    for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++) {
        bool want = first >= argc;
        for (int a = first; a < argc; a++)
            want |= strcmp(argv[a], workloads[i].name) == 0;
        if (want) {
            run_root(workloads[i].workers, workloads[i].fn, NULL);
            any = true;
        }
    }
    bool mem = first >= argc;
    for (int a = first; a < argc; a++)
        mem |= strcmp(argv[a], "mem_per_idle_task") == 0 || strcmp(argv[a], "mem_per_waiter") == 0;
    if (mem) {
        /* 100k guarded stacks would need 200k mappings, over the default
         * vm.max_map_count (65530); guard pages cost no resident memory. */
        ursa_rt_config_t cfg = {.no_stack_guard = true, .stack_cache = 1};
        CHECK(ursa_run(&cfg, mem_per_idle_task, NULL, NULL) == 0);
        printf("mem_per_waiter %zu\n", sizeof(ursa_wait_t));
        any = true;
    }
    if (!any) {
        fprintf(stderr, "usage: %s [S] [workload...]\n", argv[0]);
        return 2;
    }
    return 0;
}
