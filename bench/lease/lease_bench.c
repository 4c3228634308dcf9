/* Lease round trips against a local PostgreSQL (WORKLOADS.md:
 * lease_acquire_release, lease_renew), for three "runtimes" in one run on
 * one server:
 *   ursa              libursa-lease in a task (non-blocking libpq on the
 *                     worker's io_uring)
 *   libpq_sync        the same statements with plain blocking PQexecParams
 *   pg_advisory_lock  pg_advisory_lock + pg_advisory_unlock (no fence, no
 *                     TTL; it has no renew: held as long as the session)
 *
 *   ursa_lease_bench [S] [ursa|libpq_sync|pg_advisory_lock ...]
 *
 * Prints `# runtime R` then `name ns_per_op` lines per runtime (with one
 * runtime named, only its `name ns_per_op` lines). Starts a throwaway
 * cluster (tests/dist/pg_cluster.sh) and removes it at exit, unless
 * URSA_PG holds a connection string to use instead. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ursa.h>
#include <ursa/lease.h>

#include "sql.h" /* src/dist: the statements libursa-lease sends */

static double S = 1;
static char conninfo[512];
static char cluster_dir[256];

#define TTL URSA_SEC(30)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "ursa_lease_bench: check failed at line %d: %s\n", __LINE__, #cond);   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

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

static void report(const char *name, ursa_time_t ns, uint64_t ops)
{
    printf("%s %.0f\n", name, (double)ns / (double)ops);
    fflush(stdout);
}

/* ---- the server ---- */

static void stop_cluster(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "bash '%s' stop '%s'", URSA_PG_CLUSTER_SCRIPT, cluster_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ursa_lease_bench: stopping the cluster failed\n");
}

static void start_cluster(void)
{
    if (getenv("URSA_PG")) {
        snprintf(conninfo, sizeof conninfo, "%s", getenv("URSA_PG"));
        return;
    }
    snprintf(cluster_dir, sizeof cluster_dir, "/tmp/ursa-pg.XXXXXX");
    CHECK(mkdtemp(cluster_dir));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "bash '%s' start '%s' %d", URSA_PG_CLUSTER_SCRIPT, cluster_dir,
             (int)getpid());
    FILE *p = popen(cmd, "r");
    CHECK(p);
    CHECK(fgets(conninfo, sizeof conninfo, p));
    CHECK(pclose(p) == 0);
    conninfo[strcspn(conninfo, "\n")] = 0;
    atexit(stop_cluster);
}

/* ---- ursa ---- */

typedef struct ursa_args {
    uint64_t n;
} ursa_args_t;

static void *ursa_root(void *arg)
{
    ursa_args_t *a = arg;
    ursa_lease_store_t *s;
    CHECK(ursa_lease_store_open(&s, &(ursa_lease_config_t){.conninfo = conninfo},
                                ursa_deadline_in(URSA_SEC(30))) == 0);
    ursa_lease_t l = {0};
    for (int i = 0; i < 100; i++) { /* warm-up */
        CHECK(ursa_lease_acquire(s, "bench-ursa", TTL, &l, URSA_NOW) == 0);
        CHECK(ursa_lease_release(&l) == 0);
    }
    ursa_time_t t0 = mono();
    for (uint64_t i = 0; i < a->n; i++) {
        CHECK(ursa_lease_acquire(s, "bench-ursa", TTL, &l, URSA_NOW) == 0);
        CHECK(ursa_lease_release(&l) == 0);
    }
    report("lease_acquire_release", mono() - t0, a->n);

    CHECK(ursa_lease_acquire(s, "bench-ursa", TTL, &l, URSA_NOW) == 0);
    for (int i = 0; i < 100; i++)
        CHECK(ursa_lease_renew(&l, URSA_NOW) == 0);
    t0 = mono();
    for (uint64_t i = 0; i < a->n; i++)
        CHECK(ursa_lease_renew(&l, URSA_NOW) == 0);
    report("lease_renew", mono() - t0, a->n);
    CHECK(ursa_lease_release(&l) == 0);
    CHECK(ursa_lease_store_close(s) == 0);
    return NULL;
}

static void bench_ursa(uint64_t n)
{
    ursa_args_t a = {n};
    CHECK(ursa_run(NULL, ursa_root, &a, NULL) == 0);
}

/* ---- plain synchronous libpq ---- */

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static PGconn *sync_connect(void)
{
    PGconn *c = PQconnectdb(conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

/* Runs one statement; *rows gets its row count (rows returned or changed).
 * Returns its first value as a number (0 if none or NULL). */
static long long exec1(PGconn *c, const char *sql, int n, const char *const *params,
                       long long *rows)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "ursa_lease_bench: %s", PQresultErrorMessage(r));
        exit(1);
    }
    if (rows)
        *rows = st == PGRES_TUPLES_OK ? PQntuples(r) : atoll(PQcmdTuples(r));
    long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

static void bench_libpq(uint64_t n)
{
    ursa__lease_sql_t q;
    CHECK(ursa__lease_sql_build(&q, "ursa_lease", true, URSA_SEC(5)) == 0);
    PGconn *c = sync_connect();
    PQclear(PQexec(c, q.setup)); /* the same session settings and table */
    const char *ttl = "30000000";
    char token[64], fence[24];
    uint64_t seq = 0;
    /* Acquire (a fresh owner token per grant, as the library does) and
     * release: the library's statements, one blocking round trip each. */
    ursa_time_t t0 = 0;
    for (uint64_t i = 0; i < n + 100; i++) {
        if (i == 100)
            t0 = mono();
        snprintf(token, sizeof token, "sync/%llu", (unsigned long long)seq++);
        long long f = exec1(c, q.acquire, 3, (const char *[]){"bench-sync", token, ttl}, NULL);
        CHECK(f > 0);
        snprintf(fence, sizeof fence, "%lld", f);
        long long rows = 0;
        (void)exec1(c, q.release, 3, (const char *[]){"bench-sync", token, fence}, &rows);
        CHECK(rows == 1);
    }
    report("lease_acquire_release", mono() - t0, n);

    snprintf(token, sizeof token, "sync/%llu", (unsigned long long)seq++);
    long long f = exec1(c, q.acquire, 3, (const char *[]){"bench-sync", token, ttl}, NULL);
    CHECK(f > 0);
    snprintf(fence, sizeof fence, "%lld", f);
    for (uint64_t i = 0; i < n + 100; i++) {
        if (i == 100)
            t0 = mono();
        long long rows = 0;
        (void)exec1(c, q.renew, 4, (const char *[]){"bench-sync", token, fence, ttl}, &rows);
        CHECK(rows == 1);
    }
    report("lease_renew", mono() - t0, n);
    (void)exec1(c, q.release, 3, (const char *[]){"bench-sync", token, fence}, NULL);
    PQfinish(c);
    ursa__lease_sql_free(&q);
}

/* ---- pg_advisory_lock ---- */

static void bench_advisory(uint64_t n)
{
    PGconn *c = sync_connect();
    ursa_time_t t0 = 0;
    for (uint64_t i = 0; i < n + 100; i++) {
        if (i == 100)
            t0 = mono();
        (void)exec1(c, "SELECT pg_advisory_lock($1::bigint)", 1, (const char *[]){"4242"}, NULL);
        CHECK(exec1(c, "SELECT pg_advisory_unlock($1::bigint)::int", 1, (const char *[]){"4242"},
                    NULL) == 1);
    }
    report("lease_acquire_release", mono() - t0, n);
    PQfinish(c);
}

int main(int argc, char **argv)
{
    /* S may come first or last (run-suite.sh puts it after the runtime:
     * `ursa_lease_bench ursa 1`): a number anywhere is the scale. */
    int first = 1;
    for (int i = 1; i < argc; i++) {
        char *end;
        double v = strtod(argv[i], &end);
        if (end != argv[i] && *end == 0 && v > 0) {
            S = v;
            char *num = argv[i];
            for (int j = i; j > first; j--) /* move it to the front */
                argv[j] = argv[j - 1];
            argv[first++] = num;
        }
    }
    static const struct {
        const char *name;
        void (*run)(uint64_t n);
    } runtimes[] = {
        {"ursa", bench_ursa}, {"libpq_sync", bench_libpq}, {"pg_advisory_lock", bench_advisory}};
    const size_t nrt = sizeof runtimes / sizeof *runtimes;
    for (int i = first; i < argc; i++) {
        bool known = false;
        for (size_t k = 0; k < nrt; k++)
            known |= strcmp(argv[i], runtimes[k].name) == 0;
        if (!known) {
            fprintf(stderr, "usage: %s [S] [ursa|libpq_sync|pg_advisory_lock ...]\n", argv[0]);
            return 2;
        }
    }
    start_cluster();
    uint64_t n = scaled(2000);
    bool one = argc - first == 1;
    for (size_t k = 0; k < nrt; k++) {
        bool wanted = argc == first;
        for (int i = first; i < argc; i++)
            wanted |= strcmp(argv[i], runtimes[k].name) == 0;
        if (!wanted)
            continue;
        if (!one)
            printf("# runtime %s\n", runtimes[k].name);
        runtimes[k].run(n);
    }
    return 0;
}
