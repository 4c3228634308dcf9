/* Memory workloads (print `name bytes`): resident bytes per parked task
 * (100k tasks without guard pages; 1M tasks with guard pages, the default)
 * and the size of the waiter a blocking call keeps. The page tables and
 * mappings the parked tasks added go to stderr. */
#include "bench.h"

#include <errno.h>
#include <string.h>

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

/* A field of /proc/self/status in bytes (VmPTE: the page tables, kernel
 * memory that RSS does not count), or -1. */
static long status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) != 1)
            kb = -1;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static long mapping_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    for (int c; f && (c = fgetc(f)) != EOF;)
        n += c == '\n';
    if (f)
        fclose(f);
    return f ? n : -1;
}

static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

typedef struct parked {
    ursa_notify_t nt;
    uint64_t started; /* one worker: a plain counter */
} parked_t;

static void *idle_waiter(void *arg)
{
    parked_t *p = arg;
    p->started++;
    return (void *)(intptr_t)ursa_notify_wait(&p->nt, URSA_NEVER);
}

/* A task whose stack cannot be mapped ends before it runs and its join
 * returns the error. Called when tasks spawned in [from, to) stopped
 * starting: ends the process with the reason, never a number. */
static void fail_unstarted(const char *name, ursa_task_t **t, uint64_t from, uint64_t to,
                           uint64_t n, uint64_t started)
{
    for (uint64_t i = from; i < to; i++) {
        int rc = ursa_task_join(t[i], NULL, URSA_NOW);
        if (rc != -EAGAIN) {
            fprintf(stderr,
                    "ursa_bench: %s FAILED: task %" PRIu64 " of %" PRIu64 " could not start (%s; "
                    "%" PRIu64 " tasks parked). Without MADV_GUARD_INSTALL (Linux < 6.13) each "
                    "guarded stack takes two memory mappings, and vm.max_map_count is %ld.\n",
                    name, i + 1, n, strerror(-rc), started, max_map_count());
            exit(1);
        }
    }
    fprintf(stderr, "ursa_bench: %s FAILED: tasks stopped starting at %" PRIu64 " of %" PRIu64 "\n",
            name, started, n);
    exit(1);
}

/* n tasks each wait on one notify; prints the RSS growth per task. Spawns
 * in batches and waits for each batch to park, so that a task that cannot
 * start is seen at once. */
static void mem_idle(const char *name, uint64_t n)
{
    enum { BATCH = 1024, STALL_YIELDS = 1000 };
    parked_t p = {0};
    CHECK(ursa_notify_init(&p.nt) == 0);
    ursa_task_t **t = malloc(n * sizeof *t);
    CHECK(t);
    memset(t, 0, n * sizeof *t); /* resident before the first reading */
    long before = rss_bytes(), pte_before = status_bytes("VmPTE"), maps_before = mapping_count();
    for (uint64_t i = 0; i < n; i += BATCH) {
        uint64_t end = i + BATCH < n ? i + BATCH : n;
        for (uint64_t k = i; k < end; k++)
            CHECK(ursa_spawn(&t[k], idle_waiter, &p, NULL) == 0);
        for (unsigned idle = 0; p.started < end; idle++) {
            uint64_t seen = p.started;
            CHECK(ursa_yield() == 0);
            if (p.started != seen)
                idle = 0;
            else if (idle == STALL_YIELDS)
                fail_unstarted(name, t, p.started, end, n, p.started);
        }
    }
    CHECK(ursa_yield() == 0); /* the last task counted, then parked */
    long after = rss_bytes(), pte_after = status_bytes("VmPTE"), maps_after = mapping_count();
    CHECK(ursa_notify_waiters(&p.nt) == (int)n);
    for (uint64_t i = 0; i < n; i++) {
        void *r;
        CHECK(ursa_task_join(t[i], &r, URSA_NEVER) == 0 && r == NULL);
    }
    free(t);
    fprintf(stderr,
            "%s: RSS before %ld after %ld (%" PRIu64 " tasks); page tables +%ld bytes per task "
            "(not in RSS); %ld new mappings\n",
            name, before, after, n, (pte_after - pte_before) / (long)n, maps_after - maps_before);
    printf("%s %ld\n", name, (after - before) / (long)n);
    fflush(stdout);
}

static void *mem_per_idle_task(void *arg)
{
    mem_idle(bench_row(arg)->name, 100000);
    return NULL;
}

static void *mem_1m_tasks(void *arg)
{
    mem_idle(bench_row(arg)->name, 1000000);
    return NULL;
}

/* The waiter a blocking call keeps on its stack while it waits (a raw
 * wait, ursa_wait_t, adds the call site its finish records). */
static void *mem_per_waiter(void *arg)
{
    fprintf(stderr, "%s: a blocking call's waiter %zu bytes, a raw wait (ursa_wait_t) %zu\n",
            bench_row(arg)->name, sizeof(ursa__waiter_t), sizeof(ursa_wait_t));
    printf("%s %zu\n", bench_row(arg)->name, sizeof(ursa__waiter_t));
    fflush(stdout);
    return NULL;
}

const bench_workload_t bench_mem[] = {
    /* Without guard pages, as first defined: before Linux 6.13's guard
     * markers, 100k guarded stacks need 200k mappings, over the default
     * vm.max_map_count (65530). Guard pages cost no resident memory. */
    {"mem_per_idle_task", mem_per_idle_task,
     {.workers = 1, .no_stack_guard = true, .stack_cache = 1}, 0},
    {"mem_per_waiter", mem_per_waiter, {.workers = 1}, 0},
    /* Guard pages on (the default), as WORKLOADS.md asks. */
    {"mem_1m_tasks", mem_1m_tasks, {.workers = 1}, BENCH_ALONE},
    {0},
};
