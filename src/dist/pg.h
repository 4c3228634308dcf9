/* One PostgreSQL connection driven by libpq's non-blocking API, with
 * readiness through ursa_poll (the calling worker's io_uring in a task,
 * poll(2) on a plain thread). Its owner serialises every call (the store's
 * connection lock).
 *
 * A statement is sent and its reply collected by ursa__pg_exec. Three ways
 * it can end without a reply:
 * - the caller's deadline or cancel: the connection is kept with the reply
 *   still due (reply_due); the next ursa__pg_ready drains it;
 * - the connection breaks, or the reply takes longer than the statement
 *   bound: the connection is dropped, and if a statement was in flight its
 *   backend is remembered as stale: it may still apply that statement, so
 *   the next ursa__pg_ready terminates it and waits until it is gone before
 *   anything else runs;
 * - the server answers with an error (-EIO; the message is kept). */
#ifndef URSA_DIST_PG_H
#define URSA_DIST_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ursa/base.h>

#define URSA__PG_STALE_MAX 8
#define URSA__PG_ERR_MAX 256

/* A backend, named so that a reused pid is never mistaken for it. */
typedef struct ursa__pg_backend {
    int pid;
    char start[48]; /* backend_start as text, with its time zone */
} ursa__pg_backend_t;

typedef struct ursa__pg {
    PGconn *conn;            /* NULL while disconnected */
    const char *conninfo;
    const char *setup_sql;   /* after each connect; its last result is backend_start */
    ursa_time_t stmt_bound;  /* client-side bound on one reply */
    ursa_time_t connect_timeout;
    ursa_time_t terminate_wait_ms;
    ursa_time_t backoff_min, backoff_max, backoff;
    ursa_time_t next_connect; /* no attempt before this (backoff) */
    bool reply_due;           /* a reply is still owed on conn */
    ursa__pg_backend_t self;  /* conn's backend */
    ursa__pg_backend_t stale[URSA__PG_STALE_MAX];
    int nstale;
    char sqlstate[6];         /* of the last -EIO */
    /* Read without the owner's lock by contenders waiting for a hint:
     * the socket to poll (-1: none) and a count of notifications seen. */
    _Atomic int sock;
    _Atomic uint64_t notify_gen;
    /* Last error message; guarded by its own lock, read by any thread. */
    char err[URSA__PG_ERR_MAX];
    pthread_mutex_t err_lock;
} ursa__pg_t;

void ursa__pg_init(ursa__pg_t *pg, const char *conninfo, const char *setup_sql,
                   ursa_time_t stmt_timeout, ursa_time_t connect_timeout,
                   ursa_time_t backoff_min, ursa_time_t backoff_max);

/* Makes the connection usable: drains a reply still due, rolls back an
 * open transaction, connects (after the backoff delay), terminates stale
 * backends. 0, or -ECONNRESET / -EIO (message kept), -ETIMEDOUT,
 * -ECANCELED, -ENOMEM. */
int ursa__pg_ready(ursa__pg_t *pg, ursa_time_t deadline);

/* Sends one statement (params: nparams text values, NULL entries are SQL
 * NULL; nparams < 0: a simple-protocol query that may hold several
 * statements) and collects its reply until `deadline` (URSA_NEVER: only
 * the statement bound applies). The connection must be ready.
 *   0            *res is the last result (caller PQclear's it)
 *   -EIO         the server reported an error (sqlstate, message kept)
 *   -ECONNRESET  the connection broke or the reply overran the bound
 *   -ETIMEDOUT / -ECANCELED  the caller's deadline / cancel: reply_due */
int ursa__pg_exec(ursa__pg_t *pg, const char *sql, int nparams, const char *const *params,
                  ursa_time_t deadline, PGresult **res);

/* Reads what the server sent unasked (notifications) on an idle
 * connection. 0, or -ECONNRESET (the connection broke and was dropped). */
int ursa__pg_consume(ursa__pg_t *pg);

/* Drops the connection (a reply still due makes its backend stale). */
void ursa__pg_drop(ursa__pg_t *pg);

/* Closes the connection for good (no stale bookkeeping). */
void ursa__pg_close(ursa__pg_t *pg);

/* Records / copies the last error message. */
void ursa__pg_set_err(ursa__pg_t *pg, const char *msg);
void ursa__pg_get_err(ursa__pg_t *pg, char *buf, size_t len);

/* The earlier of two deadlines. */
static inline ursa_time_t ursa__min_time(ursa_time_t a, ursa_time_t b)
{
    return a < b ? a : b;
}

/* now + d, saturating at URSA_NEVER. */
static inline ursa_time_t ursa__time_after(ursa_time_t now, ursa_time_t d)
{
    return d >= URSA_NEVER - now ? URSA_NEVER : now + d;
}

#endif
