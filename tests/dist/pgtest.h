/* Helpers for the lease tests: a throwaway PostgreSQL cluster per test
 * program (pg_cluster.sh; stopped at exit, and by its watchdog if the
 * program dies), direct SQL for the checks, time and scale. */
#ifndef URSA_TEST_PGTEST_H
#define URSA_TEST_PGTEST_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <ursa.h>
#include <ursa/lease.h>

/* Starts this program's cluster (once; stopped at exit) and returns its
 * connection string. Exits the program if the cluster cannot start. */
const char *pgt_start(void);
/* The connection string, NULL before pgt_start. */
const char *pgt_conninfo(void);
/* The cluster's directory (its Unix socket lives there). */
const char *pgt_dir(void);
/* Stops the server at once (keeps the data) / starts it again. */
void pgt_kill(void);
void pgt_restart(void);

/* Test bodies often run as tasks: failures travel back as messages (a
 * cmocka assert must never longjmp off a task stack). A body returns NULL
 * on success or PGT_FAIL(...)'s message. */
const char *pgt_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define PGT_CHECK(c)                                                                     \
    do {                                                                                 \
        if (!(c))                                                                        \
            return (void *)pgt_failf("%s:%d: check failed: %s", __FILE__, __LINE__, #c); \
    } while (0)
#define PGT_CHECK_EQ(a, b)                                                               \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            return (void *)pgt_failf("%s:%d: %s is %lld, expected %lld (%s)", __FILE__,  \
                                     __LINE__, #a, a_, b_, #b);                          \
    } while (0)

/* Runs sql (printf-style) on a short-lived connection of its own and
 * returns the first column of the first row as a number; -1 when there is
 * no row or it is NULL; PGT_ERR on an error (printed). */
#define PGT_ERR (-0x7fffffffffffffffLL)
long long pgt_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for statements without a result: whether it succeeded. */
bool pgt_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Takes advisory lock `key` on a connection of its own (a session that
 * calls pg_advisory_xact_lock(key) then waits for pgt_unblock). NULL on
 * failure. */
void *pgt_block(long key);
void pgt_unblock(void *blocker);

/* A store on the test cluster with short timeouts (table may be NULL);
 * NULL on failure (printed). */
ursa_lease_store_t *pgt_store(const char *table);
ursa_lease_store_t *pgt_store_cfg(ursa_lease_config_t cfg);

/* Percent scale of loops and counts (URSA_TEST_SCALE, default 100). */
long pgt_scale(long n);

/* Leases whose keeping the test asserts get TTLs well above the stalls of
 * a loaded machine, and twice that under the sanitizers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PGT_SLOW 2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PGT_SLOW 2
#endif
#endif
#ifndef PGT_SLOW
#define PGT_SLOW 1
#endif
#define PGT_TTL(ms) (URSA_MSEC(ms) * PGT_SLOW)

/* CLOCK_MONOTONIC in ns. */
static inline ursa_time_t pgt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs fn as the root task of a 2-worker runtime; fails the test if the
 * runtime fails or fn returned a message. */
void pgt_run(ursa_task_fn_t fn, void *arg);

/* Waits (sleeping in small steps, at most `limit` ns) until cond(arg)
 * holds; returns whether it did. Not a timing assertion: limit is far
 * beyond what the condition needs. */
bool pgt_eventually(bool (*cond)(void *), void *arg, ursa_time_t limit);

#endif
