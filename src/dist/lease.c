/* Acquire, renew, release: the lease as a wait and a hold. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ursa/io.h>

#include "store.h"

static void lease_leaked(void *target, uint64_t n)
{
    (void)n;
    struct ursa__lease *rec = target;
    ursa__store_queue_release(rec->store, rec);
}

static const ursa_oblig_kind_t lease_kind = {"lease", lease_leaked};

void ursa__lease_mark_lost(struct ursa__lease *rec)
{
    /* relaxed: the event set below publishes the loss to its waiters;
     * readers of the deadline only need to see 0 eventually. */
    atomic_store_explicit(&rec->deadline, 0, memory_order_relaxed);
    (void)ursa_event_set(&rec->lost);
}

static void fmt_i64(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%lld", (long long)v);
}

int ursa__lease_renew_locked(ursa_lease_store_t *s, struct ursa__lease *rec, ursa_time_t deadline)
{
    /* relaxed: only mark_lost changes it besides us, and to 0 for good. */
    ursa_time_t old = atomic_load_explicit(&rec->deadline, memory_order_relaxed);
    ursa_time_t t0 = ursa_now();
    if (!old || t0 >= old) {
        ursa__lease_mark_lost(rec);
        return -ENOLCK;
    }
    char fence[24], ttl_us[24];
    fmt_i64(fence, sizeof fence, rec->fence);
    fmt_i64(ttl_us, sizeof ttl_us, rec->ttl / URSA_USEC(1));
    const char *params[] = {rec->name, rec->token, fence, ttl_us};
    PGresult *r;
    int rc = ursa__pg_exec(&s->pg, s->sql.renew, 4, params, deadline, &r);
    if (rc)
        return rc;
    bool renewed = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    /* A renewal confirmed only after the old deadline came too late: by
     * then the holder was told to stop (remaining 0). */
    if (!renewed || ursa_now() >= old) {
        ursa__lease_mark_lost(rec);
        return -ENOLCK;
    }
    /* relaxed: as above; fails only if the lease was marked lost. */
    if (!atomic_compare_exchange_strong_explicit(&rec->deadline, &old, t0 + rec->ttl - rec->drift,
                                                 memory_order_relaxed, memory_order_relaxed))
        return -ENOLCK;
    pthread_mutex_lock(&s->lk);
    rec->renew_at = t0 + rec->ttl / 3;
    pthread_mutex_unlock(&s->lk);
    return 0;
}

static int check_acquire(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                         const ursa_lease_opts_t *o, const ursa_lease_t *l, ursa_time_t *drift)
{
    if (!s || !name || !l || l->rec || l->ob.kind)
        return -EINVAL;
    if (!ursa__lease_name_ok(name, URSA_LEASE_NAME_MAX))
        return -EINVAL;
    if (ttl < URSA_LEASE_TTL_MIN || ttl > URSA_LEASE_TTL_MAX || o->drift < 0 || o->max_hold < 0)
        return -EINVAL;
    *drift = o->drift ? o->drift : ttl / 100 + URSA_MSEC(1);
    if (*drift >= ttl)
        return -EINVAL;
    if (o->auto_renew && !ursa__store_has_agent(s))
        return -EINVAL; /* nobody would renew it */
    return 0;
}

static struct ursa__lease *rec_new(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                                   ursa_time_t drift, const ursa_lease_opts_t *o)
{
    size_t n = strlen(name);
    struct ursa__lease *rec = calloc(1, sizeof *rec + n + 1);
    if (!rec)
        return NULL;
    memcpy(rec->name, name, n + 1);
    rec->store = s;
    rec->ttl = ttl;
    rec->drift = drift;
    rec->auto_renew = o->auto_renew;
    rec->max_hold = o->max_hold;
    rec->renew_at = URSA_NEVER;
    atomic_init(&rec->deadline, 0);
    (void)ursa_event_init(&rec->lost, URSA_EVENT_MANUAL, false);
    /* relaxed: a counter that only has to be unique. */
    uint64_t seq = atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
    snprintf(rec->token, sizeof rec->token, "%s%llu", s->token_prefix, (unsigned long long)seq);
    return rec;
}

static void rec_drop(struct ursa__lease *rec)
{
    (void)ursa_event_destroy(&rec->lost);
    free(rec);
}

/* SQLSTATEs that mean "try again", not "broken": statement or lock
 * timeout, serialization failure, deadlock. */
static bool transient(const char *state)
{
    return !strcmp(state, "57014") || !strcmp(state, "55P03") || !strcmp(state, "40001") ||
           !strcmp(state, "40P01");
}

/* Between tries: waits until `wake`, or until a notification may mean the
 * lease was released (polling the store's socket; whoever holds the
 * connection reads it). 0 to try again, or -ECANCELED. */
static int wait_hint(ursa_lease_store_t *s, uint64_t gen, ursa_time_t wake)
{
    for (;;) {
        /* relaxed: a hint; the next try reads the table. */
        if (atomic_load_explicit(&s->pg.notify_gen, memory_order_relaxed) != gen)
            return 0;
        /* relaxed: a stale socket only wakes us early or late (by wake). */
        int fd = atomic_load_explicit(&s->pg.sock, memory_order_relaxed);
        int rc = s->notify && fd >= 0 ? ursa_poll(fd, POLLIN, wake) : ursa_sleep_until(wake);
        if (rc == -ECANCELED)
            return rc;
        if (rc == -ETIMEDOUT || ursa_now() >= wake)
            return 0;
        if (rc < 0)
            return ursa_sleep_until(wake); /* e.g. the socket went away */
        /* Readable: read it ourselves if the connection is idle. */
        ursa_mutex_guard_t g = {0};
        rc = ursa_mutex_lock(&s->conn, &g, wake);
        if (rc)
            return rc == -ECANCELED ? rc : 0;
        bool settle;
        pthread_mutex_lock(&s->lk);
        settle = s->pending;
        pthread_mutex_unlock(&s->lk);
        if (settle || s->pg.reply_due)
            (void)ursa__store_settle(s, wake);
        else
            (void)ursa__pg_consume(&s->pg);
        (void)ursa_mutex_unlock(&g);
    }
}

typedef enum { TRY_GRANTED, TRY_HELD, TRY_FAILED } try_t;

/* One acquire statement (caller holds conn, connection ready). */
static try_t try_once(ursa_lease_store_t *s, struct ursa__lease *rec, ursa_time_t deadline, int *rc,
                      ursa_time_t *hint)
{
    char ttl_us[24];
    fmt_i64(ttl_us, sizeof ttl_us, rec->ttl / URSA_USEC(1));
    const char *params[] = {rec->name, rec->token, ttl_us};
    PGresult *r;
    ursa_time_t t0 = ursa_now(); /* before the request leaves */
    *rc = ursa__pg_exec(&s->pg, s->sql.acquire, 3, params, deadline, &r);
    if (*rc == -EIO && transient(s->pg.sqlstate)) {
        *rc = 0;
        *hint = -1;
        return TRY_HELD;
    }
    if (*rc)
        return TRY_FAILED;
    try_t t = TRY_HELD;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        rec->fence = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        rec->acquired_at = t0;
        rec->renew_at = t0 + rec->ttl / 3;
        /* relaxed: published with the record (conn unlock, list lock). */
        atomic_store_explicit(&rec->deadline, t0 + rec->ttl - rec->drift, memory_order_relaxed);
        t = TRY_GRANTED;
    } else {
        *hint = PQntuples(r) == 1 && !PQgetisnull(r, 0, 1)
                    ? strtoll(PQgetvalue(r, 0, 1), NULL, 10) * URSA_USEC(1)
                    : -1;
    }
    PQclear(r);
    return t;
}

/* The grant is ours: enter the hold and hand the record to the store. */
static int take(ursa_lease_store_t *s, struct ursa__lease *rec, ursa_lease_t *l,
                const ursa_site_t *site, ursa_time_t deadline)
{
    if (ursa_oblig_enter(&l->ob, &lease_kind, rec, (uint64_t)rec->fence, site) != 0) {
        ursa__store_queue_release(s, rec);
        (void)ursa__store_settle(s, deadline);
        return -ENOMEM;
    }
    ursa__store_hold(s, rec);
    l->rec = rec;
    return 0;
}

int ursa_lease_acquire_at(ursa_lease_store_t *s, const char *name, ursa_time_t ttl,
                          const ursa_lease_opts_t *opts, ursa_lease_t *l, ursa_time_t deadline,
                          const ursa_site_t *site)
{
    static const ursa_lease_opts_t none = {0};
    const ursa_lease_opts_t *o = opts ? opts : &none;
    ursa_time_t drift;
    int rc = check_acquire(s, name, ttl, o, l, &drift);
    if (rc)
        return rc;
    struct ursa__lease *rec = rec_new(s, name, ttl, drift, o);
    if (!rec)
        return -ENOMEM;
    bool conn_trouble = false;
    bool maybe_applied = false; /* a request with this token may have been applied */
    for (;;) {
        ursa_mutex_guard_t g = {0};
        rc = ursa__store_lock(s, &g, deadline);
        if (rc)
            break;
        rc = ursa__store_settle(s, deadline);
        if (rc) {
            ursa_time_t retry = s->pg.next_connect;
            (void)ursa_mutex_unlock(&g);
            if (rc != -ECONNRESET || deadline == URSA_NOW || retry >= deadline)
                break;
            /* Reconnect after the backoff, until the deadline. */
            conn_trouble = true;
            if ((rc = ursa_sleep_until(retry)) != 0)
                break;
            continue;
        }
        /* relaxed: a hint (see wait_hint). */
        uint64_t gen = atomic_load_explicit(&s->pg.notify_gen, memory_order_relaxed);
        ursa_time_t hint = -1;
        try_t t = try_once(s, rec, deadline, &rc, &hint);
        if (t == TRY_GRANTED) {
            rc = take(s, rec, l, site, deadline);
            (void)ursa_mutex_unlock(&g);
            if (rc == 0)
                ursa__store_kick(s); /* the agent times it */
            return rc;
        }
        if (t == TRY_FAILED && rc != -EIO) {
            /* The request may have been applied: from now on only a
             * release of whatever this token got ends it. */
            bool interrupted = rc != -ECONNRESET;
            if (interrupted || deadline == URSA_NOW) {
                ursa__store_queue_release(s, rec);
                (void)ursa_mutex_unlock(&g);
                ursa__store_settle_later(s);
                return rc;
            }
            (void)ursa_mutex_unlock(&g);
            conn_trouble = maybe_applied =
                true; /* a retry with the same token finds its own grant */
            continue;
        }
        (void)ursa_mutex_unlock(&g);
        if (t == TRY_FAILED)
            break; /* -EIO: the statement failed, nothing applied */
        /* A definite "held elsewhere", after any stale session was fenced:
         * an earlier try of ours would have been recognised. */
        conn_trouble = maybe_applied = false;
        if (deadline == URSA_NOW) {
            rc = -EAGAIN;
            break;
        }
        ursa_time_t now = ursa_now();
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        /* The holder's time left by the server's clock (+1 ms so that it
         * has passed), at most a poll interval. */
        ursa_time_t wake = ursa__min_time(deadline, ursa__time_after(now, s->poll_interval));
        if (hint >= 0)
            wake = ursa__min_time(wake, ursa__time_after(now, hint + URSA_MSEC(1)));
        rc = wait_hint(s, gen, wake);
        if (rc == 0 && ursa_now() >= deadline)
            rc = -ETIMEDOUT; /* no try whose reply could not be awaited */
        if (rc)
            break;
    }
    if (rc == -ETIMEDOUT && conn_trouble)
        rc = -ECONNRESET;
    if (maybe_applied) {
        ursa__store_queue_release(s, rec); /* whatever this token may have got */
        ursa__store_settle_later(s);
    } else {
        rec_drop(rec);
    }
    return rc;
}

int64_t ursa_lease_fence(const ursa_lease_t *l)
{
    return l && l->rec ? l->rec->fence : -EINVAL;
}

const char *ursa_lease_name(const ursa_lease_t *l)
{
    return l && l->rec ? l->rec->name : NULL;
}

ursa_event_t *ursa_lease_lost_event(const ursa_lease_t *l)
{
    return l && l->rec ? &l->rec->lost : NULL;
}

ursa_time_t ursa_lease_remaining(const ursa_lease_t *l)
{
    if (!l || !l->rec)
        return 0;
    /* relaxed: see ursa__lease_mark_lost. */
    ursa_time_t d = atomic_load_explicit(&l->rec->deadline, memory_order_relaxed);
    ursa_time_t now = ursa_now();
    if (d && now < d)
        return d - now;
    ursa__lease_mark_lost(l->rec);
    return 0;
}

int ursa__lease_on_conn(ursa_lease_t *l, ursa_time_t deadline, ursa__lease_op_t op, void *ctx)
{
    struct ursa__lease *rec = l->rec;
    ursa_lease_store_t *s = rec->store;
    if (!ursa_lease_remaining(l))
        return -ENOLCK;
    ursa_mutex_guard_t g = {0};
    int rc = ursa__store_lock(s, &g, deadline);
    if (rc)
        return rc;
    rc = ursa__store_settle(s, deadline);
    if (rc == 0)
        rc = op(s, rec, ctx, deadline);
    (void)ursa_mutex_unlock(&g);
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        ursa__store_settle_later(s); /* a reply (or a transaction) may be left open */
    return rc;
}

static int renew_op(ursa_lease_store_t *s, struct ursa__lease *rec, void *ctx, ursa_time_t deadline)
{
    (void)ctx;
    int rc = ursa__lease_renew_locked(s, rec, deadline);
    if (rc == -ECONNRESET && ursa__store_settle(s, deadline) == 0)
        rc = ursa__lease_renew_locked(s, rec, deadline); /* once more, reconnected */
    return rc;
}

int ursa_lease_renew(ursa_lease_t *l, ursa_time_t deadline)
{
    if (!l || !l->rec)
        return -EINVAL;
    return ursa__lease_on_conn(l, deadline, renew_op, NULL);
}

/* The release statement for a held lease: 0, -ENOLCK (not ours any more),
 * or the exec's error. */
static int release_once(ursa_lease_store_t *s, struct ursa__lease *rec, ursa_time_t deadline)
{
    char fence[24];
    fmt_i64(fence, sizeof fence, rec->fence);
    const char *params[] = {rec->name, rec->token, fence};
    PGresult *r;
    int rc = ursa__pg_exec(&s->pg, s->sql.release, 3, params, deadline, &r);
    if (rc == 0) {
        bool released =
            PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) == 1 : !strcmp(PQcmdTuples(r), "1");
        rc = released ? 0 : -ENOLCK;
    }
    PQclear(r);
    return rc;
}

int ursa_lease_release(ursa_lease_t *l)
{
    if (!l)
        return -EINVAL;
    struct ursa__lease *rec = l->rec;
    int rc = ursa_oblig_discharge(&l->ob); /* reports a double release */
    if (rc)
        return rc;
    l->rec = NULL;
    if (!rec)
        return -EINVAL;
    ursa_lease_store_t *s = rec->store;
    ursa_time_t until = ursa__time_after(ursa_now(), s->budget);
    ursa_mutex_guard_t g = {0};
    rc = ursa_mutex_lock(&s->conn, &g, until);
    if (rc) {
        ursa__store_queue_release(s, rec); /* a cancelled task: the agent does it */
        return rc;
    }
    /* Idempotent: tried once more on a fresh connection if the first broke. */
    for (int tries = 0; tries < 2; tries++) {
        rc = ursa__store_settle(s, until);
        if (rc == 0)
            rc = release_once(s, rec, until);
        if (rc != -ECONNRESET)
            break;
    }
    if (rc == 0 || rc == -ENOLCK || rc == -EIO) {
        ursa__store_free_rec(s, rec);
        (void)ursa_mutex_unlock(&g);
        return rc;
    }
    /* Not confirmed: the agent (or the next call on the store) retries. */
    ursa__store_queue_release(s, rec);
    (void)ursa_mutex_unlock(&g);
    return rc;
}

void ursa_lease_cleanup(ursa_lease_t *l)
{
    if (l && l->rec)
        (void)ursa_lease_release(l);
}
