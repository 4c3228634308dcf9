#include "pgtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "support.h"
#include "task_checks.h"

static char cluster_dir[256];
static char conninfo[512];

static void run_script(const char *cmd, char *out, size_t outlen)
{
    char line[1024];
    snprintf(line, sizeof line, "bash '%s' %s", URSA_PG_CLUSTER_SCRIPT, cmd);
    FILE *p = popen(line, "r");
    if (!p) {
        perror("popen");
        exit(1);
    }
    char buf[512] = "";
    while (fgets(buf, sizeof buf, p))
        if (out)
            snprintf(out, outlen, "%s", buf);
    if (pclose(p) != 0) {
        fprintf(stderr, "pgtest: '%s' failed\n", line);
        exit(1);
    }
    if (out) {
        size_t n = strlen(out);
        while (n && out[n - 1] == '\n')
            out[--n] = 0;
    }
}

static void stop_cluster(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "stop '%s'", cluster_dir);
    run_script(cmd, NULL, 0);
}

const char *pgt_start(void)
{
    if (conninfo[0])
        return conninfo;
    snprintf(cluster_dir, sizeof cluster_dir, "/tmp/ursa-pg.XXXXXX");
    if (!mkdtemp(cluster_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "start '%s' %d", cluster_dir, (int)getpid());
    run_script(cmd, conninfo, sizeof conninfo);
    atexit(stop_cluster);
    /* A failed check returns early, leaving holds behind: report them, but
     * do not abort before the failure's message is out. */
    ursa_leak_set_abort(false);
    if (getenv("PGT_FILTER")) /* run only the tests matching this pattern */
        cmocka_set_test_filter(getenv("PGT_FILTER"));
    return conninfo;
}

const char *pgt_conninfo(void)
{
    return conninfo[0] ? conninfo : NULL;
}

const char *pgt_dir(void)
{
    return cluster_dir;
}

void pgt_kill(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "kill '%s'", cluster_dir);
    run_script(cmd, NULL, 0);
}

void pgt_restart(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "restart '%s'", cluster_dir);
    run_script(cmd, NULL, 0);
}

/* NULL on error (printed). */
static PGresult *query(const char *fmt, va_list ap)
{
    char sql[2048];
    vsnprintf(sql, sizeof sql, fmt, ap);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        r = NULL;
    }
    PQfinish(c);
    return r;
}

long long pgt_value(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = query(fmt, ap);
    va_end(ap);
    if (!r)
        return PGT_ERR;
    long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

bool pgt_exec(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = query(fmt, ap);
    va_end(ap);
    PQclear(r);
    return r != NULL;
}

void *pgt_block(long key)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%ld)", key);
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok)
            return c;
    }
    fprintf(stderr, "pgtest: block: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
}

void pgt_unblock(void *blocker)
{
    PQfinish(blocker); /* the session's advisory lock goes with it */
}

ursa_lease_store_t *pgt_store_cfg(ursa_lease_config_t cfg)
{
    if (!cfg.conninfo)
        cfg.conninfo = conninfo;
    if (!cfg.statement_timeout)
        cfg.statement_timeout = URSA_SEC(2);
    if (!cfg.connect_timeout)
        cfg.connect_timeout = URSA_SEC(5);
    if (!cfg.poll_interval)
        cfg.poll_interval = URSA_MSEC(200);
    ursa_lease_store_t *s = NULL;
    char err[256];
    int rc = ursa_lease_store_open_err(&s, &cfg, ursa_deadline_in(URSA_SEC(20)), err, sizeof err);
    if (rc)
        fprintf(stderr, "pgtest: store open: %s (%s)\n", ursa_strerror(rc), err);
    return s;
}

ursa_lease_store_t *pgt_store(const char *table)
{
    return pgt_store_cfg((ursa_lease_config_t){.table = table});
}

bool pgt_closed(ursa_lease_store_t *s, ...)
{
    bool ok = true;
    va_list ap;
    va_start(ap, s);
    for (; s; s = va_arg(ap, ursa_lease_store_t *))
        ok &= ursa_lease_store_close(s) == 0;
    va_end(ap);
    return ok;
}

static ursa_time_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool pgt_eventually(bool (*cond)(void *), void *arg, ursa_time_t limit)
{
    ursa_time_t end = mono() + limit;
    while (!cond(arg)) {
        if (mono() > end)
            return false;
        (void)ursa_sleep_for(URSA_MSEC(5));
    }
    return true;
}

static void *bg_root(void *arg)
{
    pgt_bg_rt_t *b = arg;
    (void)ursa_event_set(&b->started);
    return ursa_event_wait(&b->stop, URSA_NEVER) == 0 ? NULL : (void *)"stop wait failed";
}

static void *bg_thread(void *arg)
{
    pgt_bg_rt_t *b = arg;
    void *res = (void *)"block_on failed";
    return ursa_rt_block_on(b->rt, bg_root, b, &res) == 0 ? res : (void *)"block_on failed";
}

bool pgt_bg_start(pgt_bg_rt_t *b)
{
    if (ursa_rt_new(&b->rt, &(ursa_rt_config_t){.workers = 1}) != 0)
        return false;
    if (ursa_event_init(&b->stop, URSA_EVENT_MANUAL, false) != 0 ||
        ursa_event_init(&b->started, URSA_EVENT_MANUAL, false) != 0)
        return false;
    if (pthread_create(&b->th, NULL, bg_thread, b) != 0)
        return false;
    return ursa_event_wait(&b->started, URSA_NEVER) == 0;
}

bool pgt_bg_stop(pgt_bg_rt_t *b)
{
    bool ok = ursa_event_set(&b->stop) == 1;
    void *res = (void *)"?";
    pthread_join(b->th, &res);
    ursa_rt_free(b->rt);
    ok &= res == NULL;
    ok &= ursa_event_destroy(&b->stop) == 0;
    ok &= ursa_event_destroy(&b->started) == 0;
    return ok;
}

const char *pgt_still_held(ursa_lease_t *l, ursa_lease_store_t *s, const char *name,
                           ursa_time_t ttl)
{
    ursa_lease_t other = {0};
    CHECK(ursa_lease_remaining(l) > 0);
    CHECK_EQ(ursa_lease_acquire(s, name, ttl, &other, URSA_NOW), -EAGAIN);
    return NULL;
}

const char *pgt_lost(ursa_lease_t *l)
{
    CHECK_EQ(ursa_event_wait(ursa_lease_lost_event(l), ursa_deadline_in(URSA_SEC(20))), 0);
    CHECK_EQ(ursa_lease_remaining(l), 0);
    return NULL;
}

const char *pgt_taken_over(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                           ursa_lease_t *l, int64_t fence)
{
    CHECK_EQ(ursa_lease_acquire(s, name, ttl, l, ursa_deadline_in(URSA_SEC(20))), 0);
    CHECK_EQ(ursa_lease_fence(l), fence + 1);
    return NULL;
}
