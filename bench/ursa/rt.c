/* Runtime workloads: spawn_join, yield_switch. */
#include "bench.h"

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
    uint64_t n = scaled(100000);
    ursa_task_t **t = malloc(n * sizeof *t);
    CHECK(t);
    /* One untimed round first, as the peers do: a cold round mostly
     * measures the kernel's first-touch page faults. */
    if (!bench_counting()) {
        ursa_time_t cold = spawn_join_round(t, n);
        fprintf(stderr, "spawn_join (cold round) %.2f\n", (double)cold / (double)n);
    }
    report(bench_row(arg)->name, spawn_join_round(t, n), n);
    free(t);
    return NULL;
}

static void *yielder(void *arg)
{
    uint64_t n = *(uint64_t *)arg;
    for (uint64_t i = 0; i < n; i++)
        CHECK(ursa_yield() == 0);
    return (void *)(uintptr_t)n;
}

static void *yield_switch(void *arg)
{
    uint64_t n = scaled(1000000);
    ursa_task_t *a, *b;
    ursa_time_t t0 = mono();
    CHECK(ursa_spawn(&a, yielder, &n, NULL) == 0);
    CHECK(ursa_spawn(&b, yielder, &n, NULL) == 0);
    void *ra, *rb;
    CHECK(ursa_task_join(a, &ra, URSA_NEVER) == 0 && ursa_task_join(b, &rb, URSA_NEVER) == 0);
    CHECK((uint64_t)(uintptr_t)ra == n && (uint64_t)(uintptr_t)rb == n);
    report(bench_row(arg)->name, mono() - t0, 2 * n);
    return NULL;
}

const bench_workload_t bench_rt[] = {
    {"spawn_join", spawn_join, {.workers = 1}, 0},
    {"yield_switch", yield_switch, {.workers = 1}, 0},
    {0},
};
