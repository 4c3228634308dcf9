/* The lease store and its grant records.
 *
 * Locks: `conn` (an ursa mutex: held across network waits) serialises all
 * use of the connection; `lk` (a plain mutex, never held across a wait)
 * guards the record list and the agent flags. A record is unlinked and
 * freed only with both held, and the agent touches a record only under
 * `lk`, or under `conn` after finding it in the list: so neither ever sees
 * a freed record.
 *
 * The agent is one detached task per store (on the opener's runtime, or
 * cfg->rt): it fires lost events at local deadlines, renews auto-renew
 * leases, and settles what an interrupted call left behind (a reply still
 * due, queued releases) so that nothing stays held. Without an agent the
 * calls do that work themselves. */
#ifndef URSA_DIST_STORE_H
#define URSA_DIST_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <ursa/lease.h>
#include <ursa/mutex.h>

#include "pg.h"
#include "sql.h"

#define URSA__LEASE_TOKEN_MAX (URSA__LEASE_OWNER_MAX + 48)

typedef enum ursa__lease_state {
    URSA__LEASE_HELD,    /* in its holder's ledger */
    URSA__LEASE_RELEASE, /* queued: release (name, token) on the server, then free */
} ursa__lease_state_t;

struct ursa__lease {
    struct ursa__lease *next, *prev; /* the store's list, under lk */
    ursa_lease_store_t *store;
    ursa__lease_state_t state;       /* under lk */
    bool linked;                     /* in the list; under lk */
    bool auto_renew;
    int64_t fence;                   /* 0 until granted */
    ursa_time_t ttl, drift, max_hold;
    ursa_time_t acquired_at;         /* t0 of the grant */
    ursa_time_t renew_at;            /* next auto-renewal; the agent's */
    /* The local deadline; 0 once lost (never set again). */
    _Atomic ursa_time_t deadline;
    ursa_event_t lost;
    char token[URSA__LEASE_TOKEN_MAX];
    char name[];
};

struct ursa_lease_store {
    ursa__pg_t pg; /* under conn */
    ursa_mutex_t conn;
    pthread_mutex_t lk;
    struct ursa__lease *recs; /* held and queued, under lk */
    size_t nheld;             /* under lk */
    bool pending;             /* settle needed (interrupted call), under lk */
    bool has_agent;           /* under lk */
    bool closing;             /* under lk */
    ursa__lease_sql_t sql;
    char *conninfo;
    char token_prefix[URSA__LEASE_OWNER_MAX + 20];
    _Atomic uint64_t seq; /* owner tokens */
    ursa_time_t stmt_timeout, poll_interval, budget;
    bool notify;
    ursa_event_t kick;       /* auto-reset: the agent has work */
    ursa_event_t agent_done; /* manual: the agent has returned */
    _Atomic int refs;        /* the opener, and the agent while it runs */
};

/* Takes the store's connection for a call with `deadline` (URSA_NOW, a
 * try, may wait up to the store's budget for it). 0 with g held, or the
 * lock's error. */
int ursa__store_lock(ursa_lease_store_t *s, ursa_mutex_guard_t *g, ursa_time_t deadline);

/* Makes the connection usable and carries out queued releases. Caller
 * holds conn. 0 or the error of ursa__pg_ready / of a release. */
int ursa__store_settle(ursa_lease_store_t *s, ursa_time_t deadline);

/* After a call was interrupted with something left on the connection
 * (a reply due, a record queued): hands the settling to the agent, or does
 * it now (bounded) if there is none and the caller is not cancelled. The
 * caller does not hold conn. */
void ursa__store_settle_later(ursa_lease_store_t *s);

/* Links a granted record into the list as held. */
void ursa__store_hold(ursa_lease_store_t *s, struct ursa__lease *rec);

/* Queues a held record, or a new one whose request may have been applied,
 * for release, and wakes the agent. Never waits (a leak sweep calls it). */
void ursa__store_queue_release(ursa_lease_store_t *s, struct ursa__lease *rec);

/* Unlinks and frees rec. Caller holds conn. */
void ursa__store_free_rec(ursa_lease_store_t *s, struct ursa__lease *rec);

/* Whether the store has a running agent. */
bool ursa__store_has_agent(ursa_lease_store_t *s);

/* Wakes the agent (if any). */
void ursa__store_kick(ursa_lease_store_t *s);

/* The agent's exit: settles if the store is closing, marks the agent
 * gone, wakes close, drops the agent's reference. */
void ursa__store_agent_exit(ursa_lease_store_t *s);

/* Drops a reference; the last frees the store. */
void ursa__store_unref(ursa_lease_store_t *s);

/* Marks rec lost: deadline 0, the lost event set. */
void ursa__lease_mark_lost(struct ursa__lease *rec);

/* Renews rec (caller holds conn, connection ready). 0, -ENOLCK (marked
 * lost), or a connection / interruption error. */
int ursa__lease_renew_locked(ursa_lease_store_t *s, struct ursa__lease *rec, ursa_time_t deadline);

/* The frame of a call on a held lease (renew, guarded write): -ENOLCK at
 * once if it is lost locally; else takes the connection, settles it, runs
 * op(s, rec, ctx, deadline), and hands a reply left due by an interrupted
 * op to the agent. Returns what op (or the frame) returned. */
typedef int (*ursa__lease_op_t)(ursa_lease_store_t *s, struct ursa__lease *rec, void *ctx,
                                ursa_time_t deadline);
int ursa__lease_on_conn(ursa_lease_t *l, ursa_time_t deadline, ursa__lease_op_t op, void *ctx);

/* The agent task's body (arg: the store). */
void *ursa__lease_agent(void *arg);

#endif
