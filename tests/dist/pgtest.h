/* Helpers for the lease tests: a throwaway PostgreSQL cluster per test
 * program (pg_cluster.sh; stopped at exit, and by its watchdog if the
 * program dies), direct SQL for the checks, stores with test timeouts.
 * Include after support.h and task_checks.h (tests/). */
#ifndef URSA_TEST_PGTEST_H
#define URSA_TEST_PGTEST_H

#include <pthread.h>
#include <stdbool.h>
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

/* Leases whose keeping a test asserts get TTLs well above the stalls of a
 * loaded machine (a niced test process on a busy 2-CPU box was seen
 * descheduled for over half a second), and twice that under the
 * sanitizers. */
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

/* A cmocka test whose body runs as the root task of a 2-worker runtime
 * and returns NULL or a failure message (tests/support/task_checks.h). */
#define PGT_TASK_TEST(test, body, arg)   \
    static void test(void **state)       \
    {                                    \
        (void)state;                     \
        ASSERT_OK(test_run(2, body, arg)); \
    }

/* Closes each store of a NULL-terminated list; whether all closed (0). */
bool pgt_closed(ursa_lease_store_t *s, ...);

/* Waits (sleeping in small steps, at most `limit` ns) until cond(arg)
 * holds; returns whether it did. Not a timing assertion: limit is far
 * beyond what the condition needs. */
bool pgt_eventually(bool (*cond)(void *), void *arg, ursa_time_t limit);

/* A 1-worker runtime whose root task waits in a thread of its own, for the
 * agents of stores a plain thread opens (cfg.rt). pgt_bg_start returns once
 * the root task runs (spawning onto worker 0 while its first block_on
 * starts races in the core); pgt_bg_stop ends the root, joins the thread and
 * frees the runtime. Each returns whether all went well. */
typedef struct pgt_bg_rt {
    ursa_rt_t *rt;
    pthread_t th;
    ursa_event_t started, stop;
} pgt_bg_rt_t;
bool pgt_bg_start(pgt_bg_rt_t *b);
bool pgt_bg_stop(pgt_bg_rt_t *b);

/* Checks on a lease `name` that store-holder and contender fight over;
 * each returns NULL or a failure message (for CHECK_OK, or assert_null on
 * a plain thread). */
/* l is held (time left) and a contender's try through s fails -EAGAIN. */
const char *pgt_still_held(ursa_lease_t *l, ursa_lease_store_t *s, const char *name,
                           ursa_time_t ttl);
/* l's lost event fires (within 20 s) and l has no time left. */
const char *pgt_lost(ursa_lease_t *l);
/* A contender through s gets `name` within 20 s into l, with the fence
 * after the lost holder's `fence`. */
const char *pgt_taken_over(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                           ursa_lease_t *l, int64_t fence);

#endif
