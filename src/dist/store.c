/* Opening and closing a lease store; settling what interrupted calls left
 * on its connection; the record list. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DEFAULT_TABLE "ursa_lease"
#define DEFAULT_OWNER "ursa"

static ursa_time_t or_default(ursa_time_t v, ursa_time_t d)
{
    return v ? v : d;
}

static int check_config(const ursa_lease_config_t *cfg)
{
    if (!cfg->conninfo || !ursa__lease_table_ok(cfg->table ? cfg->table : DEFAULT_TABLE) ||
        !ursa__lease_owner_ok(cfg->owner ? cfg->owner : DEFAULT_OWNER))
        return -EINVAL;
    if (cfg->statement_timeout < 0 || cfg->connect_timeout < 0 || cfg->poll_interval < 0 ||
        cfg->backoff_min < 0 || cfg->backoff_max < 0)
        return -EINVAL;
    /* Bounded so that sums of them cannot overflow. */
    const ursa_time_t max = URSA_SEC(3600);
    if (cfg->statement_timeout > max || cfg->connect_timeout > max || cfg->poll_interval > max ||
        cfg->backoff_max > max)
        return -EINVAL;
    if (or_default(cfg->backoff_min, URSA_MSEC(10)) > or_default(cfg->backoff_max, URSA_SEC(1)))
        return -EINVAL;
    return 0;
}

/* A random part in every owner token, so that two stores (or two runs of
 * one program) never share a token. */
static void make_token_prefix(ursa_lease_store_t *s, const char *owner)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)ursa_now() * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid();
    snprintf(s->token_prefix, sizeof s->token_prefix, "%s/%016llx/", owner, (unsigned long long)r);
}

static void store_free(ursa_lease_store_t *s)
{
    while (s->recs) {
        struct ursa__lease *rec = s->recs;
        s->recs = rec->next;
        (void)ursa_event_destroy(&rec->lost);
        free(rec);
    }
    ursa__pg_close(&s->pg);
    ursa__lease_sql_free(&s->sql);
    (void)ursa_event_destroy(&s->kick);
    (void)ursa_event_destroy(&s->agent_done);
    (void)ursa_mutex_destroy(&s->conn);
    pthread_mutex_destroy(&s->lk);
    free(s->conninfo);
    free(s);
}

void ursa__store_unref(ursa_lease_store_t *s)
{
    /* acq_rel: the last owner sees every write the others made. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        store_free(s);
}

static ursa_lease_store_t *store_new(const ursa_lease_config_t *cfg)
{
    ursa_lease_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->stmt_timeout = or_default(cfg->statement_timeout, URSA_SEC(5));
    s->poll_interval = or_default(cfg->poll_interval, URSA_SEC(1));
    s->notify = !cfg->no_notify;
    s->conninfo = strdup(cfg->conninfo);
    make_token_prefix(s, cfg->owner ? cfg->owner : DEFAULT_OWNER);
    ursa_time_t connect_timeout = or_default(cfg->connect_timeout, URSA_SEC(5));
    if (!s->conninfo || ursa__lease_sql_build(&s->sql, cfg->table ? cfg->table : DEFAULT_TABLE,
                                              s->notify, s->stmt_timeout)) {
        free(s->conninfo);
        free(s);
        return NULL;
    }
    ursa__pg_init(&s->pg, s->conninfo, s->sql.setup, s->stmt_timeout, connect_timeout,
                  or_default(cfg->backoff_min, URSA_MSEC(10)),
                  or_default(cfg->backoff_max, URSA_SEC(1)));
    /* Enough to connect and settle two statements. */
    s->budget = connect_timeout + 2 * s->pg.stmt_bound;
    (void)ursa_mutex_init(&s->conn);
    pthread_mutex_init(&s->lk, NULL);
    (void)ursa_event_init(&s->kick, URSA_EVENT_AUTO, false);
    (void)ursa_event_init(&s->agent_done, URSA_EVENT_MANUAL, false);
    atomic_init(&s->seq, 0);
    atomic_init(&s->refs, 1);
    return s;
}

/* Starts the agent on the caller's runtime, or on rt from a plain thread. */
static int start_agent(ursa_lease_store_t *s, ursa_rt_t *rt)
{
    ursa_spawn_opts_t opts = {
        .name = "lease-agent", .placement = URSA_PLACE_LOCAL, .detached = true};
    if (!ursa_task_self() && !rt)
        return 0;
    s->has_agent = true;
    atomic_store_explicit(&s->refs, 2, memory_order_relaxed); /* not shared yet */
    int rc = ursa_task_self() ? ursa_spawn(NULL, ursa__lease_agent, s, &opts)
                              : ursa_rt_spawn(rt, NULL, ursa__lease_agent, s, &opts);
    if (rc) {
        s->has_agent = false;
        atomic_store_explicit(&s->refs, 1, memory_order_relaxed); /* no agent: still ours alone */
    }
    return rc;
}

int ursa_lease_store_open_err(ursa_lease_store_t **out, const ursa_lease_config_t *cfg,
                              ursa_time_t deadline, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!out || !cfg)
        return -EINVAL;
    *out = NULL;
    int rc = check_config(cfg);
    if (rc)
        return rc;
    ursa_lease_store_t *s = store_new(cfg);
    if (!s)
        return -ENOMEM;
    ursa_mutex_guard_t g = {0};
    rc = ursa_mutex_lock(&s->conn, &g, URSA_NEVER); /* uncontended: fails only if cancelled */
    if (rc == 0) {
        rc = ursa__pg_ready(&s->pg, deadline);
        (void)ursa_mutex_unlock(&g);
    }
    if (rc == 0)
        rc = start_agent(s, cfg->rt);
    if (rc) {
        if (errbuf)
            ursa__pg_get_err(&s->pg, errbuf, errlen);
        store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ursa_lease_store_open(ursa_lease_store_t **out, const ursa_lease_config_t *cfg,
                          ursa_time_t deadline)
{
    return ursa_lease_store_open_err(out, cfg, deadline, NULL, 0);
}

const char *ursa_lease_store_error(ursa_lease_store_t *s, char *buf, size_t len)
{
    if (!len)
        return NULL;
    buf[0] = 0;
    if (s)
        ursa__pg_get_err(&s->pg, buf, len);
    return buf;
}

bool ursa__store_has_agent(ursa_lease_store_t *s)
{
    pthread_mutex_lock(&s->lk);
    bool a = s->has_agent;
    pthread_mutex_unlock(&s->lk);
    return a;
}

void ursa__store_kick(ursa_lease_store_t *s)
{
    if (ursa__store_has_agent(s))
        (void)ursa_event_set(&s->kick);
}

static void link_locked(ursa_lease_store_t *s, struct ursa__lease *rec)
{
    rec->linked = true;
    rec->prev = NULL;
    rec->next = s->recs;
    if (s->recs)
        s->recs->prev = rec;
    s->recs = rec;
}

void ursa__store_hold(ursa_lease_store_t *s, struct ursa__lease *rec)
{
    pthread_mutex_lock(&s->lk);
    rec->state = URSA__LEASE_HELD;
    s->nheld++;
    link_locked(s, rec);
    pthread_mutex_unlock(&s->lk);
}

void ursa__store_queue_release(ursa_lease_store_t *s, struct ursa__lease *rec)
{
    pthread_mutex_lock(&s->lk);
    if (!rec->linked)
        link_locked(s, rec); /* an acquire whose outcome is unknown */
    else if (rec->state == URSA__LEASE_HELD)
        s->nheld--;
    rec->state = URSA__LEASE_RELEASE;
    s->pending = true;
    bool agent = s->has_agent;
    pthread_mutex_unlock(&s->lk);
    if (agent)
        (void)ursa_event_set(&s->kick);
}

void ursa__store_free_rec(ursa_lease_store_t *s, struct ursa__lease *rec)
{
    pthread_mutex_lock(&s->lk);
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        s->recs = rec->next;
    if (rec->next)
        rec->next->prev = rec->prev;
    if (rec->state == URSA__LEASE_HELD)
        s->nheld--;
    pthread_mutex_unlock(&s->lk);
    (void)ursa_event_destroy(&rec->lost);
    free(rec);
}

static struct ursa__lease *first_queued(ursa_lease_store_t *s)
{
    pthread_mutex_lock(&s->lk);
    struct ursa__lease *rec = s->recs;
    while (rec && rec->state != URSA__LEASE_RELEASE)
        rec = rec->next;
    pthread_mutex_unlock(&s->lk);
    return rec;
}

int ursa__store_settle(ursa_lease_store_t *s, ursa_time_t deadline)
{
    int rc = ursa__pg_ready(&s->pg, deadline);
    if (rc)
        return rc;
    struct ursa__lease *rec;
    while ((rec = first_queued(s))) {
        char fence[24];
        snprintf(fence, sizeof fence, "%lld", (long long)rec->fence);
        /* An acquire whose outcome is unknown has no fence yet: release
         * whatever its token got. */
        const char *params[] = {rec->name, rec->token, rec->fence ? fence : NULL};
        PGresult *r;
        rc = ursa__pg_exec(&s->pg, s->sql.release, 3, params, deadline, &r);
        PQclear(r);
        if (rc && rc != -EIO)
            return rc;                /* stays queued */
        ursa__store_free_rec(s, rec); /* done, or refused for good */
    }
    pthread_mutex_lock(&s->lk);
    s->pending = false;
    pthread_mutex_unlock(&s->lk);
    return 0;
}

int ursa__store_lock(ursa_lease_store_t *s, ursa_mutex_guard_t *g, ursa_time_t deadline)
{
    if (deadline == URSA_NOW)
        deadline = ursa__time_after(ursa_now(), s->budget);
    return ursa_mutex_lock(&s->conn, g, deadline);
}

/* Settles now, bounded by the store's budget. */
static void settle_now(ursa_lease_store_t *s)
{
    ursa_time_t until = ursa__time_after(ursa_now(), s->budget);
    ursa_mutex_guard_t g = {0};
    if (ursa_mutex_lock(&s->conn, &g, until) == 0) {
        (void)ursa__store_settle(s, until);
        (void)ursa_mutex_unlock(&g);
    }
}

void ursa__store_settle_later(ursa_lease_store_t *s)
{
    pthread_mutex_lock(&s->lk);
    s->pending = true;
    bool agent = s->has_agent;
    pthread_mutex_unlock(&s->lk);
    if (agent)
        (void)ursa_event_set(&s->kick);
    else if (!ursa_task_cancelled())
        settle_now(s); /* a cancelled task cannot wait: the next call settles */
}

int ursa_lease_store_close(ursa_lease_store_t *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->lk);
    if (s->nheld) {
        pthread_mutex_unlock(&s->lk);
        return -EBUSY;
    }
    s->closing = true;
    bool agent = s->has_agent;
    pthread_mutex_unlock(&s->lk);
    if (agent) {
        /* The agent settles and returns; if we cannot wait (cancelled),
         * whichever of us is last frees the store. */
        (void)ursa_event_set(&s->kick);
        int rc = ursa_event_wait(&s->agent_done, URSA_NEVER);
        (void)rc;
    } else if (!ursa_task_cancelled()) {
        settle_now(s);
    }
    ursa__store_unref(s);
    return 0;
}

/* The agent's last act: the settling close asked for, then goodbye. */
void ursa__store_agent_exit(ursa_lease_store_t *s)
{
    pthread_mutex_lock(&s->lk);
    bool closing = s->closing;
    pthread_mutex_unlock(&s->lk);
    if (closing && !ursa_task_cancelled())
        settle_now(s);
    pthread_mutex_lock(&s->lk);
    s->has_agent = false;
    pthread_mutex_unlock(&s->lk);
    (void)ursa_event_set(&s->agent_done);
    ursa__store_unref(s);
}
