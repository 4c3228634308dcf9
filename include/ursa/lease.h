/* ursa — fenced leases on PostgreSQL (libursa-lease; see docs/lease.md).
 *
 * A lease is a lock that outlives one process: a row in a PostgreSQL table
 * that one owner holds until it releases it or its time-to-live runs out
 * by the server's clock. Every grant carries a fence, a number that only
 * grows; the protected resource rejects writes carrying a fence lower than
 * one it has seen, so a paused ex-holder cannot do harm.
 *
 *     ursa_lease_store_t *s;
 *     ursa_lease_store_open(&s, &(ursa_lease_config_t){.conninfo = "host=/run/pg"},
 *                           ursa_deadline_in(URSA_SEC(5)));
 *     URSA_SCOPED(lease, l);                     // released at scope exit
 *     if (ursa_lease_acquire(s, "nightly-migration", URSA_SEC(10), &l,
 *                            ursa_deadline_in(URSA_SEC(30))) == 0) {
 *         ... ursa_lease_guarded_exec(&l, "UPDATE ...", ...) ...
 *     }
 *
 * Acquire is a wait (phase 1): cancel-safe, with a deadline. The lease is
 * a hold (phase 2) in the caller's obligation ledger: released exactly
 * once; a task that ends holding one is reported with its site and the
 * lease is released on the server for it. All network I/O runs through
 * ursa_poll on the calling worker's io_uring (libpq in non-blocking mode),
 * so a task never blocks its worker; on a plain thread the calls block the
 * thread, as every ursa wait does.
 *
 * Error codes (negative errno):
 *   -EAGAIN      held elsewhere (URSA_NOW: one try)
 *   -ETIMEDOUT   held elsewhere until the deadline, or the deadline passed
 *                while talking to the server
 *   -ECANCELED   the calling task was cancelled
 *   -ENOLCK      the lease is lost: it expired (local deadline or server
 *                clock) or another owner took it over
 *   -ECONNRESET  the server could not be reached, or the connection broke
 *   -EIO         the server answered with an error (message:
 *                ursa_lease_store_error)
 *   -EINVAL      bad argument
 *   -ENOMEM      out of memory */
#ifndef URSA_LEASE_H
#define URSA_LEASE_H

#include "event.h"
#include "oblig.h"
#include "rt.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_lease_store ursa_lease_store_t;

/* Store settings. Zero fields take the defaults in brackets. */
typedef struct ursa_lease_config {
    /* libpq connection string or URI (required). A host name is resolved
     * by libpq synchronously while connecting: use hostaddr= or a Unix
     * socket directory to keep connects fully non-blocking. */
    const char *conninfo;
    /* The lease table, created if missing: [a-z_][a-z0-9_]*, at most 48
     * bytes ["ursa_lease"]. Notifications use the same name as channel. */
    const char *table;
    /* Prefix of every owner token, to tell holders apart in the table:
     * printable ASCII, at most 64 bytes ["ursa"]. */
    const char *owner;
    /* Runtime for the store's agent task (lost events, auto-renew, and
     * settling interrupted statements in the background) when the store is
     * opened on a plain thread. Inside a task the caller's runtime is used
     * and this is ignored. NULL on a plain thread: no agent (see
     * docs/lease.md). */
    ursa_rt_t *rt;
    ursa_time_t statement_timeout; /* server-side, per statement [5 s] */
    ursa_time_t connect_timeout;   /* [5 s] */
    ursa_time_t poll_interval;     /* contenders re-check at least this often [1 s] */
    ursa_time_t backoff_min;       /* first reconnect delay [10 ms] ... */
    ursa_time_t backoff_max;       /* ... doubling up to [1 s] */
    bool no_notify;                /* no LISTEN/NOTIFY hints: contenders only poll */
} ursa_lease_config_t;

/* Per-acquire options (NULL: all zero). */
typedef struct ursa_lease_opts {
    /* The store's agent renews the lease at about ttl/3 until it is
     * released, a renewal fails, or max_hold is reached. Needs an agent
     * (-EINVAL without one). */
    bool auto_renew;
    /* Auto-renew stops renewing once the lease has been held this long
     * (0: no cap); it then runs out and the lost event fires. */
    ursa_time_t max_hold;
    /* Subtracted from the local deadline for clock-rate differences
     * between client and server [ttl/100 + 1 ms]. */
    ursa_time_t drift;
} ursa_lease_opts_t;

/* Private grant record (src/dist). */
struct ursa__lease;

/* The hold. Zero it (or use URSA_SCOPED(lease, l)) before acquiring. */
typedef struct ursa_lease {
    ursa_oblig_t ob;
    struct ursa__lease *rec; /* NULL when holding nothing */
} ursa_lease_t;

#define URSA_LEASE_TTL_MIN URSA_MSEC(10)
#define URSA_LEASE_TTL_MAX ((ursa_time_t)30 * 24 * 3600 * URSA_SEC(1)) /* 30 days */
#define URSA_LEASE_NAME_MAX 255 /* bytes of UTF-8 */

/* Phase 1 (wait; no hold follows): opens a store: connects (until
 * `deadline`; URSA_NOW means one attempt bounded by connect_timeout),
 * creates the table if missing, and starts the store's agent task (see
 * cfg->rt).
 *   0            *out is the store
 *   -EINVAL      NULL out/cfg/conninfo, a bad table or owner name, a
 *                negative time, backoff_min > backoff_max
 *   -ECONNRESET  the server could not be reached
 *   -EIO         the server refused (authentication, permissions...)
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -ENOMEM      out of memory
 * ursa_lease_store_open_err also returns the message. */
URSA_API int ursa_lease_store_open(ursa_lease_store_t **out, const ursa_lease_config_t *cfg,
                                   ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait; no hold follows): the same; on failure the server's or
 * libpq's message is copied into errbuf (errlen bytes, NUL-terminated;
 * errbuf may be NULL). */
URSA_API int ursa_lease_store_open_err(ursa_lease_store_t **out, const ursa_lease_config_t *cfg,
                                       ursa_time_t deadline, char *errbuf,
                                       size_t errlen) URSA_NODISCARD;

/* Not a wait: closes a store: stops its agent, settles interrupted
 * statements and queued releases (bounded by the statement timeout),
 * disconnects, frees. No other call may use the store concurrently or
 * afterwards.
 *   0        closed
 *   -EBUSY   leases acquired from it are still held (nothing changed)
 *   -EINVAL  NULL */
URSA_API int ursa_lease_store_close(ursa_lease_store_t *s);

/* Not a wait: copies the store's last server or connection error message
 * into buf (len bytes, NUL-terminated) and returns buf ("" if none; buf may
 * not be NULL unless len is 0, then NULL is returned). */
URSA_API const char *ursa_lease_store_error(ursa_lease_store_t *s, char *buf, size_t len);

/* Phase 1 (wait): acquires lease `name` for `ttl` into l, waiting until the
 * deadline while another owner holds it (URSA_NOW: one try). One statement
 * grants it only if the row is free or expired by the server's clock, and
 * increments its fence. The local deadline is t0 + ttl - drift, t0 taken
 * before the request is sent. Contenders wait for a release notification (a
 * hint) and re-check at least every poll_interval, and when the holder's
 * time runs out (the truth).
 *   0            held: l is the hold (fence, remaining, lost event)
 *   -EAGAIN      URSA_NOW and held elsewhere
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -ECONNRESET  the server could not be reached before the deadline
 *                (URSA_NOW: on the one try)
 *   -EIO         server error (ursa_lease_store_error)
 *   -EINVAL      NULL s/name/l, l already holds, name empty, too long or
 *                not UTF-8, ttl out of [URSA_LEASE_TTL_MIN,
 *                URSA_LEASE_TTL_MAX] or not above drift, bad opts
 *   -ENOMEM      out of memory
 * On error nothing is held: a request whose outcome is unknown (reply
 * lost, deadline or cancel while it was in flight) is settled on the
 * server (released if it was granted), in the background by the store's
 * agent, or before the call returns on a plain thread without one. A
 * retry after a lost reply recognises its own grant (same owner token). */
#define ursa_lease_acquire(s, name, ttl, l, deadline) \
    ursa_lease_acquire_at(s, name, ttl, NULL, l, deadline, URSA_SITE)
#define ursa_lease_acquire_opts(s, name, ttl, opts, l, deadline) \
    ursa_lease_acquire_at(s, name, ttl, opts, l, deadline, URSA_SITE)
URSA_API int ursa_lease_acquire_at(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                                   const ursa_lease_opts_t *opts, ursa_lease_t *l,
                                   ursa_time_t deadline,
                                   const ursa_site_t *site) URSA_NODISCARD;

/* Not a wait: the lease's fence (> 0), or -EINVAL if l holds nothing. */
URSA_API int64_t ursa_lease_fence(const ursa_lease_t *l);

/* Not a wait: the lease's name, or NULL if l holds nothing. */
URSA_API const char *ursa_lease_name(const ursa_lease_t *l);

/* Not a wait: nanoseconds left until the local deadline; 0 means stop
 * mutating now (expired, lost, or l holds nothing). Reaching 0 sets the
 * lost event. */
URSA_API ursa_time_t ursa_lease_remaining(const ursa_lease_t *l);

/* Phase 2 (hold), a wait inside it: extends the lease to ttl from now, if
 * (owner, fence) still holds it by the server's clock. The local deadline
 * moves only on a confirmed renewal; a lost lease stays lost.
 *   0            renewed
 *   -ENOLCK      lost (the lost event is set)
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -ECONNRESET  the server could not be reached
 *   -EIO         server error (ursa_lease_store_error)
 *   -EINVAL      NULL or l holds nothing
 * -ETIMEDOUT, -ECANCELED, -ECONNRESET, -EIO: the renewal is not confirmed;
 * the lease keeps its old local deadline. */
URSA_API int ursa_lease_renew(ursa_lease_t *l, ursa_time_t deadline) URSA_NODISCARD;

/* Not a wait: the lease's lost event (manual reset): set when a renewal
 * fails, the local deadline passes without a confirmed renewal, or a
 * guarded write finds the lease gone. Valid until the lease is released;
 * wait on it with ursa_event_wait (and, once select exists, as a select
 * case). Set on time by the store's agent; without one, by the lease calls
 * that notice it. NULL if l holds nothing. */
URSA_API ursa_event_t *ursa_lease_lost_event(const ursa_lease_t *l);

/* Phase 2 (hold): releases the lease if (owner, fence) still holds it
 * and wakes contenders. The hold is discharged in every case but -EINVAL
 * and -EPERM.
 *   0            released on the server
 *   -ENOLCK      it had been lost already (another owner's row is left
 *                alone)
 *   -ECONNRESET  the server could not be reached
 *   -ETIMEDOUT   the statement timed out
 *   -EIO         server error
 *   -ECANCELED   the calling task was cancelled
 *   -EINVAL      NULL, or l holds nothing (a double release: reported)
 *   -EPERM       l belongs to another task or thread (see ursa_oblig_disown)
 * -ECONNRESET, -ETIMEDOUT, -EIO, -ECANCELED: not confirmed now; the release
 * is queued and retried by the store (the row expires at its TTL at the
 * latest). */
URSA_API int ursa_lease_release(ursa_lease_t *l);

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(lease, l):
 * releases if held, does nothing if empty. */
URSA_API void ursa_lease_cleanup(ursa_lease_t *l);

/* Phase 2 (hold), a wait inside it: runs one SQL statement (with $1..$n
 * text parameters) in the same transaction as a check that (owner, fence)
 * still holds the lease by the server's clock. The check locks the lease
 * row until commit, so no other owner can be granted the lease before the
 * write commits: a paused ex-holder's write is rejected by the database
 * itself. The statement must not control transactions. *rows (may be NULL)
 * gets the statement's row count (PQcmdTuples).
 *   0            committed
 *   -ENOLCK      the lease is lost: nothing written (lost event set)
 *   -EIO         the statement failed: rolled back (ursa_lease_store_error)
 *   -ETIMEDOUT   the deadline passed first
 *   -ECANCELED   the calling task was cancelled first
 *   -ECONNRESET  the connection broke
 *   -EINVAL      NULL l or sql, l holds nothing, nparams < 0 or > 64, or
 *                params NULL with nparams > 0
 * -ETIMEDOUT, -ECANCELED, -ECONNRESET: rolled back, or (if it came while
 * the COMMIT was in flight) unknown. */
URSA_API int ursa_lease_guarded_exec(ursa_lease_t *l, const char *sql, int nparams,
                                     const char *const *params, int64_t *rows,
                                     ursa_time_t deadline) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
