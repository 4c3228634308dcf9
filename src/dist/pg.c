/* A PostgreSQL connection on ursa_poll: libpq in non-blocking mode, every
 * wait for the socket a wait of the calling task (or thread). */
#include "pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ursa/io.h>
#include <ursa/rt.h>

void ursa__pg_set_err(ursa__pg_t *pg, const char *msg)
{
    pthread_mutex_lock(&pg->err_lock);
    snprintf(pg->err, sizeof pg->err, "%s", msg ? msg : "");
    size_t n = strlen(pg->err);
    while (n && (pg->err[n - 1] == '\n' || pg->err[n - 1] == ' '))
        pg->err[--n] = 0; /* libpq ends its messages with a newline */
    pthread_mutex_unlock(&pg->err_lock);
}

void ursa__pg_get_err(ursa__pg_t *pg, char *buf, size_t len)
{
    if (!len)
        return;
    pthread_mutex_lock(&pg->err_lock);
    snprintf(buf, len, "%s", pg->err);
    pthread_mutex_unlock(&pg->err_lock);
}

void ursa__pg_init(ursa__pg_t *pg, const char *conninfo, const char *setup_sql,
                   ursa_time_t stmt_timeout, ursa_time_t connect_timeout, ursa_time_t backoff_min,
                   ursa_time_t backoff_max)
{
    memset(pg, 0, sizeof *pg);
    pg->conninfo = conninfo;
    pg->setup_sql = setup_sql;
    /* The server gives up at stmt_timeout; past that, plus a grace for the
     * reply to travel, the connection is presumed dead. */
    pg->stmt_bound = stmt_timeout + URSA_SEC(1);
    pg->terminate_wait_ms = stmt_timeout / URSA_MSEC(2);
    pg->connect_timeout = connect_timeout;
    pg->backoff_min = pg->backoff = backoff_min;
    pg->backoff_max = backoff_max;
    atomic_init(&pg->sock, -1);
    atomic_init(&pg->notify_gen, 0);
    pthread_mutex_init(&pg->err_lock, NULL);
}

/* Counts the notifications libpq has read (they are hints only: whoever
 * waits re-checks the table). */
static void take_notifies(ursa__pg_t *pg)
{
    PGnotify *n;
    while ((n = PQnotifies(pg->conn))) {
        /* relaxed: a hint; waiters poll the socket and re-check the table. */
        atomic_fetch_add_explicit(&pg->notify_gen, 1, memory_order_relaxed);
        PQfreemem(n);
    }
}

static void forget_conn(ursa__pg_t *pg)
{
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->reply_due = false;
    pg->self.pid = 0;
    /* relaxed: contenders only use it as a hint, and re-check under the lock. */
    atomic_store_explicit(&pg->sock, -1, memory_order_relaxed);
}

void ursa__pg_drop(ursa__pg_t *pg)
{
    if (pg->conn && pg->reply_due && pg->self.pid) {
        /* That backend may still apply what we sent: it must be gone before
         * we act on the assumption that it did not. With the list full the
         * oldest entry goes (it has had the longest time to finish). */
        if (pg->nstale == URSA__PG_STALE_MAX) {
            memmove(&pg->stale[0], &pg->stale[1], sizeof pg->stale[0] * (URSA__PG_STALE_MAX - 1));
            pg->nstale--;
        }
        pg->stale[pg->nstale++] = pg->self;
    }
    forget_conn(pg);
}

void ursa__pg_close(ursa__pg_t *pg)
{
    forget_conn(pg);
    pg->nstale = 0;
    pthread_mutex_destroy(&pg->err_lock);
}

static int broken(ursa__pg_t *pg)
{
    ursa__pg_set_err(pg, pg->conn ? PQerrorMessage(pg->conn) : "not connected");
    ursa__pg_drop(pg);
    return -ECONNRESET;
}

/* One result of the reply: keeps the last good one in *last, records an
 * error. -ECONNRESET if it says the connection is gone, or if it starts a
 * COPY (which this connection does not speak: it is dropped, its session
 * terminated before the next statement). */
static int take_result(ursa__pg_t *pg, PGresult *r, PGresult **last, int *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);
        *err = -EIO;
        return -ECONNRESET;
    }
    if (st != PGRES_FATAL_ERROR && st != PGRES_BAD_RESPONSE && st != PGRES_NONFATAL_ERROR) {
        PQclear(*last);
        *last = r;
        return 0;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        PQclear(r);
        return -ECONNRESET;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(pg->sqlstate, sizeof pg->sqlstate, "%s", state ? state : "");
    ursa__pg_set_err(pg, PQresultErrorMessage(r));
    *err = -EIO;
    PQclear(r);
    return 0;
}

/* Collects the reply owed on the connection until `deadline`; keeps the
 * last result in *res (NULL: discard them all). */
static int collect(ursa__pg_t *pg, ursa_time_t deadline, PGresult **res)
{
    ursa_time_t bound = ursa__time_after(ursa_now(), pg->stmt_bound);
    ursa_time_t until = ursa__min_time(deadline, bound);
    PGresult *last = NULL;
    int err = 0;
    for (;;) {
        int f = PQflush(pg->conn);
        if (f < 0)
            break;
        while (f == 0 && !PQisBusy(pg->conn)) {
            PGresult *r = PQgetResult(pg->conn);
            if (!r) {
                pg->reply_due = false;
                take_notifies(pg);
                if (err || !res)
                    PQclear(last);
                else
                    *res = last;
                return err;
            }
            if (take_result(pg, r, &last, &err)) {
                PQclear(last);
                if (err != -EIO)
                    return broken(pg);
                ursa__pg_drop(pg);
                ursa__pg_set_err(pg, "COPY is not supported on a lease store's connection");
                return -EIO;
            }
        }
        int rc = ursa_poll(PQsocket(pg->conn), (short)(POLLIN | (f ? POLLOUT : 0)), until);
        if (rc == -ETIMEDOUT && until == bound && bound < deadline) {
            PQclear(last);
            ursa__pg_set_err(pg, "no reply within the statement timeout");
            ursa__pg_drop(pg);
            return -ECONNRESET;
        }
        if (rc < 0 && rc != -EBADF) {
            PQclear(last);
            return rc; /* the caller's deadline or cancel: the reply is still due */
        }
        if (!PQconsumeInput(pg->conn))
            break;
        take_notifies(pg);
    }
    PQclear(last);
    return broken(pg);
}

int ursa__pg_exec(ursa__pg_t *pg, const char *sql, int nparams, const char *const *params,
                  ursa_time_t deadline, PGresult **res)
{
    *res = NULL;
    if (!pg->conn || pg->reply_due)
        return -ECONNRESET;
    if (deadline == URSA_NOW)
        deadline = URSA_NEVER; /* one try: only the statement bound applies */
    int ok = nparams < 0 ? PQsendQuery(pg->conn, sql)
                         : PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    pg->sqlstate[0] = 0;
    if (!ok)
        return broken(pg); /* nothing reached the server: libpq queues first */
    pg->reply_due = true;
    return collect(pg, deadline, res);
}

int ursa__pg_consume(ursa__pg_t *pg)
{
    if (!pg->conn || pg->reply_due)
        return 0;
    if (!PQconsumeInput(pg->conn))
        return broken(pg);
    take_notifies(pg);
    return 0;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Drives PQconnectPoll until the connection is made, through ursa_poll. */
static int handshake(ursa__pg_t *pg, ursa_time_t until)
{
    static const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {pg->conninfo, "ursa-lease", NULL};
    pg->conn = PQconnectStartParams(keys, vals, 1);
    if (!pg->conn)
        return -ENOMEM;
    PQsetNoticeProcessor(pg->conn, ignore_notice, NULL); /* a library keeps stderr clean */
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return -ECONNRESET;
    /* Before the first PQconnectPoll, act as if it asked to write. The
     * socket may change between calls (libpq tries each address in turn),
     * so it is read again every time. */
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            return -ECONNRESET;
        int rc =
            ursa_poll(PQsocket(pg->conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, until);
        if (rc < 0 && rc != -EBADF) /* EBADF: libpq closed it; it says what next */
            return rc;
        st = PQconnectPoll(pg->conn);
    }
    return PQsetnonblocking(pg->conn, 1) == 0 ? 0 : -ECONNRESET;
}

/* Runs the setup statements on a new connection and notes its backend. */
static int setup(ursa__pg_t *pg, ursa_time_t until)
{
    /* Concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's
     * unique index (23505), find the table made meanwhile (42P07) or its
     * row type (42710, "type ... already exists"): the other creator won,
     * so another try finds the table. */
    for (int tries = 0;; tries++) {
        PGresult *r;
        int rc = ursa__pg_exec(pg, pg->setup_sql, -1, NULL, until, &r);
        if (rc == -EIO && tries < 2 &&
            (!strcmp(pg->sqlstate, "23505") || !strcmp(pg->sqlstate, "42P07") ||
             !strcmp(pg->sqlstate, "42710")))
            continue;
        if (rc)
            return rc;
        pg->self.pid = PQbackendPID(pg->conn);
        snprintf(pg->self.start, sizeof pg->self.start, "%s",
                 PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
        PQclear(r);
        return 0;
    }
}

/* Waits out the backoff delay, then connects and runs the setup. */
static int connect_now(ursa__pg_t *pg, ursa_time_t deadline)
{
    ursa_time_t now = ursa_now();
    if (now < pg->next_connect) {
        if (deadline < pg->next_connect)
            return -ECONNRESET; /* still backing off from the last failure */
        int rc = ursa_sleep_until(pg->next_connect);
        if (rc)
            return rc;
        now = ursa_now();
    }
    ursa_time_t bound = ursa__time_after(now, pg->connect_timeout);
    ursa_time_t until = deadline == URSA_NOW ? bound : ursa__min_time(deadline, bound);
    int rc = handshake(pg, until);
    if (rc == 0)
        rc = setup(pg, until);
    if (rc == 0) {
        /* relaxed: as in forget_conn, a hint for contenders. */
        atomic_store_explicit(&pg->sock, PQsocket(pg->conn), memory_order_relaxed);
        pg->backoff = pg->backoff_min;
        return 0;
    }
    if (rc == -ETIMEDOUT && until == bound && bound < deadline)
        rc = -ECONNRESET; /* connect_timeout, not the caller's deadline */
    if (rc == -ECONNRESET && pg->conn)
        ursa__pg_set_err(pg, PQerrorMessage(pg->conn));
    forget_conn(pg); /* setup is idempotent: nothing of ours was in flight */
    if (rc != -ECONNRESET && rc != -EIO)
        return rc; /* the caller gave up: no reason to back off */
    /* Back off, with jitter so that a fleet does not reconnect in step. */
    ursa_time_t b = pg->backoff;
    now = ursa_now();
    uint64_t mix = (uint64_t)now * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)pg;
    pg->next_connect =
        ursa__time_after(now, b - b / 4 + (ursa_time_t)((mix >> 17) % (uint64_t)(b / 2 + 1)));
    pg->backoff = b > pg->backoff_max / 2 ? pg->backoff_max : b * 2;
    return rc;
}

/* Terminates the stale backends (see pg.h), waiting until each is gone. */
static int fence_stale(ursa__pg_t *pg, ursa_time_t deadline)
{
    while (pg->nstale) {
        char pid[16], ms[24];
        snprintf(pid, sizeof pid, "%d", pg->stale[0].pid);
        snprintf(ms, sizeof ms, "%lld", (long long)pg->terminate_wait_ms);
        const char *params[] = {pid, pg->stale[0].start, ms};
        PGresult *r;
        int rc = ursa__pg_exec(pg,
                               "SELECT pg_terminate_backend(pid, $3::bigint) FROM pg_stat_activity "
                               "WHERE pid = $1::int AND backend_start = $2::timestamptz",
                               3, params, deadline, &r);
        if (rc == -EIO)
            rc = 0; /* not allowed to signal it: it ends on its own */
        if (rc)
            return rc;
        /* No row: gone already. 'f': still running after the wait. */
        bool running = r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "f") == 0;
        PQclear(r);
        if (running) {
            ursa__pg_set_err(pg, "an earlier session of this store is still terminating");
            return -ECONNRESET;
        }
        memmove(&pg->stale[0], &pg->stale[1], sizeof pg->stale[0] * (size_t)(pg->nstale - 1));
        pg->nstale--;
    }
    return 0;
}

int ursa__pg_ready(ursa__pg_t *pg, ursa_time_t deadline)
{
    ursa_time_t io = deadline == URSA_NOW ? URSA_NEVER : deadline;
    /* An idle connection the server has closed (restart, idle timeout)
     * shows as end of file: find out now, not with a statement in flight. */
    if (pg->conn && !pg->reply_due && !PQconsumeInput(pg->conn))
        (void)broken(pg);
    if (pg->conn && !pg->reply_due)
        take_notifies(pg);
    if (pg->conn && pg->reply_due) {
        int rc = collect(pg, io, NULL);
        if (rc && rc != -EIO)
            return rc;
    }
    if (pg->conn && PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        PGresult *r;
        int rc = ursa__pg_exec(pg, "ROLLBACK", 0, NULL, io, &r);
        PQclear(r);
        if (rc)
            return rc == -EIO ? broken(pg) : rc;
    }
    if (!pg->conn) {
        int rc = connect_now(pg, deadline);
        if (rc)
            return rc;
    }
    return fence_stale(pg, io);
}
