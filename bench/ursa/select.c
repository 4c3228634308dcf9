/* Select workloads (shared/WORKLOADS.md): a ping-pong whose echo task
 * selects over two input channels, and a receive that races a 1 s timer
 * and always wins. */
#include "bench.h"

#include <errno.h>

typedef struct echo2 {
    ursa_mpsc_receiver_t in[2];
    ursa_mpsc_sender_t out[2];
    uint64_t count[2];
} echo2_t;

/* Selects over both inputs and answers on the matching output, until both
 * inputs have ended. */
static void *echo2(void *arg)
{
    echo2_t *e = arg;
    uint64_t v[2];
    ursa_case_t c[2] = {ursa_case_recv_mpsc(&e->in[0], &v[0]),
                        ursa_case_recv_mpsc(&e->in[1], &v[1])};
    for (;;) {
        int i = ursa_select(c, 2, 0, URSA_NEVER);
        CHECK(i == 0 || i == 1);
        if (c[i].rc == -EPIPE)
            break; /* both close together in this workload */
        CHECK(c[i].rc == 0);
        CHECK(ursa_mpsc_send(&e->out[i], &v[i], URSA_NEVER) == 0);
        e->count[i]++;
    }
    return NULL;
}

static void *select_2chan_pingpong(void *arg)
{
    uint64_t n = scaled(1000000);
    echo2_t e = {0};
    ursa_mpsc_sender_t in[2];
    ursa_mpsc_receiver_t out[2];
    for (int i = 0; i < 2; i++) {
        CHECK(ursa_mpsc_new(&e.in[i], &in[i], sizeof(uint64_t), 1, NULL) == 0);
        CHECK(ursa_mpsc_new(&out[i], &e.out[i], sizeof(uint64_t), 1, NULL) == 0);
    }
    ursa_task_t *t;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&t, echo2, &e, NULL) == 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = ~i;
        CHECK(ursa_mpsc_send(&in[i % 2], &i, URSA_NEVER) == 0);
        CHECK(ursa_mpsc_recv(&out[i % 2], &v, URSA_NEVER) == 0 && v == i);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(ursa_mpsc_sender_drop(&in[0]) == 0 && ursa_mpsc_sender_drop(&in[1]) == 0);
    CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    CHECK(e.count[0] == (n + 1) / 2 && e.count[1] == n / 2);
    for (int i = 0; i < 2; i++)
        CHECK(ursa_mpsc_receiver_drop(&e.in[i]) == 0 && ursa_mpsc_receiver_drop(&out[i]) == 0 &&
              ursa_mpsc_sender_drop(&e.out[i]) == 0);
    return NULL;
}

static void *select_recv_or_timeout(void *arg)
{
    uint64_t n = scaled(1000000);
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), 1, NULL) == 0);
    uint64_t v;
    ursa_case_t c[2] = {ursa_case_recv_mpsc(&rx, &v), ursa_case_sleep_until(URSA_NEVER)};
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < n; i++) {
        CHECK(ursa_mpsc_send(&tx, &i, URSA_NOW) == 0);
        c[1].at = ursa_now() + URSA_SEC(1); /* a fresh 1 s timer per select, as the peers' */
        CHECK(ursa_select(c, 2, 0, URSA_NEVER) == 0 && c[0].rc == 0 && v == i);
    }
    report(bench_row(arg)->name, mono() - t0, n);
    CHECK(ursa_mpsc_sender_drop(&tx) == 0 && ursa_mpsc_receiver_drop(&rx) == 0);
    return NULL;
}

const bench_workload_t bench_select[] = {
    {"select_2chan_pingpong", select_2chan_pingpong, {.workers = 1}, 0},
    {"select_recv_or_timeout", select_recv_or_timeout, {.workers = 1}, 0},
    {0},
};
