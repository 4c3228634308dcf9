/* The store's agent: one detached task that fires lost events at local
 * deadlines, renews auto-renew leases at about ttl/3, and settles what
 * interrupted calls left behind (see store.h). It sleeps on the store's
 * kick event with the next timer as deadline. */
#include <stdlib.h>

#include "store.h"

/* A network step that failed is tried again this much later. */
#define RETRY_DELAY URSA_MSEC(50)

typedef struct plan {
    ursa_time_t wake;          /* next timer: a local deadline or a renewal */
    ursa_time_t next_deadline; /* the earliest local deadline still ahead */
    bool net;                  /* settling or renewing is due */
    bool closing;
} plan_t;

/* Fires the lost events that are due and says what comes next. */
static plan_t make_plan(ursa_lease_store_t *s)
{
    plan_t p = {URSA_NEVER, URSA_NEVER, false, false};
    ursa_time_t now = ursa_now();
    pthread_mutex_lock(&s->lk);
    p.closing = s->closing;
    p.net = s->pending;
    for (struct ursa__lease *rec = s->recs; rec; rec = rec->next) {
        if (rec->state == URSA__LEASE_RELEASE) {
            p.net = true;
            continue;
        }
        /* relaxed: the deadline is a value of its own; the lost event
         * carries the synchronisation for whoever waits on it. */
        ursa_time_t d = atomic_load_explicit(&rec->deadline, memory_order_relaxed);
        if (!d)
            continue;
        if (now >= d) {
            ursa__lease_mark_lost(rec);
            continue;
        }
        p.next_deadline = ursa__min_time(p.next_deadline, d);
        if (rec->auto_renew && rec->renew_at <= now)
            p.net = true;
        else if (rec->auto_renew)
            p.wake = ursa__min_time(p.wake, rec->renew_at);
    }
    pthread_mutex_unlock(&s->lk);
    p.wake = ursa__min_time(p.wake, p.next_deadline);
    return p;
}

/* The next auto-renew lease due for renewal; one past its cap gets no
 * more renewals. Caller holds conn, so the record stays valid. */
static struct ursa__lease *next_due(ursa_lease_store_t *s, ursa_time_t now)
{
    pthread_mutex_lock(&s->lk);
    struct ursa__lease *rec = s->recs;
    for (; rec; rec = rec->next) {
        /* relaxed (deadline): 0 means lost for good; a stale non-zero value
         * only costs a renewal that renew_locked then refuses. */
        if (rec->state != URSA__LEASE_HELD || !rec->auto_renew || rec->renew_at > now ||
            !atomic_load_explicit(&rec->deadline, memory_order_relaxed))
            continue;
        if (rec->max_hold && now + rec->ttl > rec->acquired_at + rec->max_hold) {
            rec->renew_at = URSA_NEVER; /* capped: let it run out */
            continue;
        }
        break;
    }
    pthread_mutex_unlock(&s->lk);
    return rec;
}

/* Settles and renews what is due, giving up at `until` (the next local
 * deadline, so that lost events are never late because of the network). */
static int net_work(ursa_lease_store_t *s, ursa_time_t until)
{
    ursa_mutex_guard_t g = {0};
    int rc = ursa_mutex_lock(&s->conn, &g, until);
    if (rc)
        return rc;
    rc = ursa__store_settle(s, until);
    struct ursa__lease *rec;
    ursa_time_t now = ursa_now();
    while (rc == 0 && (rec = next_due(s, now))) {
        rc = ursa__lease_renew_locked(s, rec, until);
        if (rc == -ENOLCK) {
            rc = 0; /* marked lost; nothing more to do for it */
        } else if (rc) {
            pthread_mutex_lock(&s->lk);
            rec->renew_at = now + RETRY_DELAY;
            pthread_mutex_unlock(&s->lk);
        }
    }
    (void)ursa_mutex_unlock(&g);
    return rc;
}

void *ursa__lease_agent(void *arg)
{
    ursa_lease_store_t *s = arg;
    ursa_time_t retry_at = 0;
    for (;;) {
        plan_t p = make_plan(s);
        if (p.closing)
            break;
        if (p.net) {
            ursa_time_t now = ursa_now();
            if (now >= retry_at) {
                ursa_time_t until =
                    ursa__min_time(ursa__time_after(now, s->budget), p.next_deadline);
                if (net_work(s, until) != 0)
                    retry_at = ursa__time_after(ursa_now(), RETRY_DELAY);
                if (ursa_task_cancelled())
                    break;
                continue;
            }
            p.wake = ursa__min_time(p.wake, retry_at);
        }
        if (ursa_event_wait(&s->kick, p.wake) == -ECANCELED)
            break; /* the runtime is going away */
    }
    ursa__store_agent_exit(s);
    return NULL;
}
