/* ursa_bench: shared helpers and the workload table type.
 *
 * A workload is one task function plus one row in its file's table
 * (bench_rt[], bench_sync[], ...); main.c runs the rows. Names and
 * definitions: shared/WORKLOADS.md. */
#ifndef URSA_BENCH_H
#define URSA_BENCH_H

#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <ursa.h>

/* Row flags. */
enum {
    BENCH_ONE_CPU = 1u << 0, /* the whole process confined to one CPU (oversub_*) */
    BENCH_ALONE = 1u << 1,   /* run only when named: needs GBs and a fresh process */
};

typedef struct bench_workload {
    const char *name;
    ursa_task_fn_t fn;      /* the root task; its arg is this row */
    ursa_rt_config_t cfg;   /* runtime for this workload (workers = 0 means 1) */
    unsigned flags;
} bench_workload_t;

/* One table per file, ended by a row with name NULL. */
extern const bench_workload_t bench_rt[], bench_sync[], bench_chan[], bench_select[], bench_mt2[],
    bench_pool[], bench_mem[];

/* The scale factor S (argv[1]). */
extern double bench_scale;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "ursa_bench: CHECK FAILED at %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                  \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* n·S, at least 1. */
uint64_t scaled(double n);
/* CLOCK_MONOTONIC in ns. */
ursa_time_t mono(void);
/* Prints `name ns_per_op`; with URSA_BENCH_OPS set in the environment,
 * also `ops name N` on stderr (bench/callgrind.sh divides by N). */
void report(const char *name, ursa_time_t ns, uint64_t ops);
/* True when URSA_BENCH_OPS is set (bench/callgrind.sh counts instructions):
 * untimed warm-up rounds are skipped, so every instruction counted belongs
 * to an op that report() counts. */
bool bench_counting(void);
/* The row a root task was started with (its arg). */
static inline const bench_workload_t *bench_row(void *arg)
{
    return (const bench_workload_t *)arg;
}
/* CHECK, from a task on each of workers 0..workers-1, that its thread may
 * run on exactly one CPU (oversub_*: the confinement reached every worker). */
void check_one_cpu_everywhere(unsigned workers);

/* Shared bodies. */
/* Receives u64s until the channel closes (-EPIPE, CHECKed); returns how
 * many, *sum their sum. */
uint64_t mpsc_drain(const ursa_mpsc_receiver_t *rx, uint64_t *sum);
/* producers send 0..n-1 between them (n = 5M·S) into a channel of this
 * capacity (0 = unbounded); the calling task receives and checks. With
 * workers > 1 the producers are fixed on worker 1. */
void mpsc_run(const char *name, unsigned producers, size_t capacity, unsigned yield_every,
              unsigned workers);

#endif
