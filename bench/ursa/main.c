/* ursa benchmark: one line per workload, `name ns_per_op` (or `name bytes`),
 * with the names and definitions of shared/WORKLOADS.md. Usage:
 *   ursa_bench [S] [workload...]
 * S scales every N (default 1; fractions allowed). Without names it runs
 * every workload except the BENCH_ALONE ones (mem_1m_tasks), which run only
 * when named. `ursa_bench --list` prints the names. */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

double bench_scale = 1;

uint64_t scaled(double n)
{
    double v = n * bench_scale;
    return v < 1 ? 1 : (uint64_t)v;
}

ursa_time_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool bench_counting(void)
{
    return getenv("URSA_BENCH_OPS") != NULL;
}

void report(const char *name, ursa_time_t ns, uint64_t ops)
{
    printf("%s %.2f\n", name, (double)ns / (double)ops);
    fflush(stdout);
    if (bench_counting())
        fprintf(stderr, "ops %s %" PRIu64 "\n", name, ops);
}

static void *cpus_allowed(void *arg)
{
    (void)arg;
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    return (void *)(uintptr_t)CPU_COUNT(&set);
}

void check_one_cpu_everywhere(unsigned workers)
{
    for (unsigned i = 0; i < workers; i++) {
        ursa_task_t *t;
        void *n;
        CHECK(ursa_spawn(&t, cpus_allowed, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER((int)i)}) ==
              0);
        CHECK(ursa_task_join(t, &n, URSA_NEVER) == 0 && (uintptr_t)n == 1);
    }
}

/* In file order; within a file, table order. */
static const bench_workload_t *const tables[] = {bench_rt,  bench_sync, bench_chan, bench_select,
                                                 bench_mt2, bench_pool, bench_mem};
#define NTABLES (sizeof tables / sizeof *tables)

/* Confines the calling thread, and so every thread the runtime starts from
 * it, to the first CPU it may use now; *saved gets the old mask. */
static void confine(cpu_set_t *saved)
{
    CHECK(sched_getaffinity(0, sizeof *saved, saved) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, saved)) {
            CPU_SET(c, &one);
            break;
        }
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
}

static void run(const bench_workload_t *w)
{
    cpu_set_t saved;
    if (w->flags & BENCH_ONE_CPU)
        confine(&saved);
    int rc = ursa_run(&w->cfg, w->fn, (void *)w, NULL);
    if (rc != 0) {
        fprintf(stderr, "ursa_bench: %s: ursa_run failed: %s\n", w->name, strerror(-rc));
        exit(1);
    }
    if (w->flags & BENCH_ONE_CPU)
        CHECK(sched_setaffinity(0, sizeof saved, &saved) == 0);
}

static bool named(const char *name, int first, int argc, char **argv)
{
    for (int a = first; a < argc; a++)
        if (strcmp(argv[a], name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t t = 0; t < NTABLES; t++)
            for (const bench_workload_t *w = tables[t]; w->name; w++)
                printf("%s%s\n", w->name, w->flags & BENCH_ALONE ? " (only when named)" : "");
        return 0;
    }
    if (argc > 1 && strtod(argv[1], NULL) > 0) {
        bench_scale = strtod(argv[1], NULL);
        first = 2;
    }
    bool all = first >= argc;
    int matched = 0;
    for (size_t t = 0; t < NTABLES; t++)
        for (const bench_workload_t *w = tables[t]; w->name; w++) {
            bool want = named(w->name, first, argc, argv);
            matched += want;
            if (want || (all && !(w->flags & BENCH_ALONE)))
                run(w);
        }
    if (!all && matched < argc - first) {
        for (int a = first; a < argc; a++) {
            bool known = false;
            for (size_t t = 0; t < NTABLES; t++)
                for (const bench_workload_t *w = tables[t]; w->name; w++)
                    known |= strcmp(w->name, argv[a]) == 0;
            if (!known)
                fprintf(stderr, "ursa_bench: no workload named %s (--list)\n", argv[a]);
        }
        fprintf(stderr, "usage: %s [S] [workload...]\n", argv[0]);
        return 2;
    }
    return 0;
}
