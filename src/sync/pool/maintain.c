/* The housekeeping task: spawns and reaps the creators, destroys doomed
 * resources, and tends idle items (idle timeout, max lifetime, periodic
 * health checks). One per pool, for the pool's life. */
#include "pool.h"

/* What tend() decided for an idle slot it took (kept in slot->reason). */
#define TEND_CHECK URSA_POOL_REASONS

/* Joins a creator: at once if it has finished (or never ran: no stack),
 * waiting when it has said it is ending; -EAGAIN if it is still running.
 * A cancelled housekeeper cannot wait: it lets the creator run and tries
 * again. */
static int join_creator(ursa__pool_creator_t *rec, bool wait)
{
    int rc;
    while ((rc = ursa_task_join(rec->task, NULL, wait ? URSA_NEVER : URSA_NOW)) == -ECANCELED)
        (void)ursa_yield();
    return rc;
}

/* Forgets a joined creator; rc is its join's: -ENOMEM if it never ran
 * (no stack), and then the create reserved for it is given back. */
static void forget_creator(ursa_pool_t *p, ursa__pool_creator_t *rec, int rc)
{
    rec->task = NULL;
    ursa__pool_lock(p);
    if (rc == -ENOMEM && !rec->done)
        ursa__pool_reserve_locked(p, -1);
    rec->done = false;
    p->creators--;
    ursa__pool_unlock_only(p);
}

/* Joins the creators that have finished or left their loop. */
static void reap(ursa_pool_t *p)
{
    for (uint32_t i = 0; i < p->cfg.max_connecting; i++) {
        ursa__pool_creator_t *rec = &p->creator[i];
        if (!rec->task)
            continue;
        ursa__pool_lock(p);
        bool done = rec->done;
        ursa__pool_unlock_only(p);
        int rc = join_creator(rec, done);
        if (rc != -EAGAIN)
            forget_creator(p, rec, rc);
    }
}

/* Starts creators while creates are wanted, up to max_connecting. */
static void spawn(ursa_pool_t *p)
{
    ursa__pool_lock(p);
    for (uint32_t i = 0; i < p->cfg.max_connecting; i++) {
        ursa__pool_creator_t *rec = &p->creator[i];
        if (rec->task)
            continue;
        if (!ursa__pool_wants_create_locked(p))
            break;
        p->creators++;
        ursa__pool_reserve_locked(p, 1); /* the creator's first create */
        ursa__pool_unlock_only(p);
        int rc = ursa_spawn(&rec->task, ursa__pool_creator, rec,
                            &(ursa_spawn_opts_t){.name = "pool-create", .placement = URSA_PLACE_LOCAL});
        ursa__pool_lock(p);
        if (rc) { /* no memory: the next kick tries again */
            p->creators--;
            ursa__pool_reserve_locked(p, -1);
            break;
        }
    }
    ursa__pool_unlock_only(p);
}

/* Cancels every creator and waits for it (its create sees -ECANCELED if
 * it waits on ursa; it is not counted as a failure). */
static void stop_creators(ursa_pool_t *p)
{
    for (uint32_t i = 0; i < p->cfg.max_connecting; i++) {
        ursa__pool_creator_t *rec = &p->creator[i];
        if (!rec->task)
            continue;
        (void)ursa_task_cancel(rec->task);
        forget_creator(p, rec, join_creator(rec, true));
    }
}

void ursa__pool_bury(ursa_pool_t *p)
{
    const ursa_pool_factory_t *f = &p->cfg.factory;
    for (;;) {
        ursa__pool_lock(p);
        ursa__pool_slot_t *s = p->graveyard;
        if (s)
            p->graveyard = s->link;
        ursa__pool_unlock_only(p);
        if (!s)
            return;
        ursa__pool_event(p, URSA_POOL_DESTROYED, s->reason, s->res, 0);
        f->destroy(f->ctx, s->res);
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&p->destroyed[s->reason], 1, memory_order_relaxed);
        ursa__pool_after_t a = {0};
        ursa__pool_lock(p);
        s->res = NULL;
        /* relaxed: a FREE slot is found by nobody; reuse is under the lock. */
        atomic_store_explicit(&s->state, URSA__POOL_FREE, memory_order_relaxed);
        s->link = p->free_slots;
        p->free_slots = s;
        p->graves--;
        a.changed = p->drainers > 0;
        ursa__pool_unlock(p, &a);
    }
}

static ursa_time_t earlier(ursa_time_t a, ursa_time_t b)
{
    return a < b ? a : b;
}

/* Looks at one idle slot at `now`: the verdict (a reason, TEND_CHECK, or
 * -1 to leave it), and the time it next needs a look in *next. */
static int verdict(const ursa_pool_t *p, ursa__pool_slot_t *s, ursa_time_t now, bool may_time_out,
                   ursa_time_t *next)
{
    const ursa_pool_config_t *cfg = &p->cfg;
    /* relaxed: a returner resets it to 0; we stamp the first time we see
     * the slot idle (a late stamp only delays the timeout). */
    ursa_time_t since = atomic_load_explicit(&s->idle_since, memory_order_relaxed);
    /* relaxed: as above; on failure `since` is the stamp someone else put. */
    if (!since && atomic_compare_exchange_strong_explicit(&s->idle_since, &since, now,
                                                          memory_order_relaxed,
                                                          memory_order_relaxed))
        since = now;
    if (cfg->max_lifetime && now >= s->expires_at)
        return URSA_POOL_MAX_LIFETIME;
    if (cfg->idle_timeout && may_time_out && now - since >= cfg->idle_timeout)
        return URSA_POOL_IDLE_TIMEOUT;
    if (cfg->check_interval && cfg->factory.check && now - s->checked_at >= cfg->check_interval)
        return TEND_CHECK;
    if (cfg->max_lifetime)
        *next = earlier(*next, s->expires_at);
    if (cfg->idle_timeout && may_time_out) /* else the periodic look covers it */
        *next = earlier(*next, since + cfg->idle_timeout);
    if (cfg->check_interval && cfg->factory.check)
        *next = earlier(*next, s->checked_at + cfg->check_interval);
    return -1;
}

/* Runs the verdicts on the slots tend() took (MAINT, linked by `link`). */
static void judge(ursa_pool_t *p, ursa__pool_slot_t *taken)
{
    const ursa_pool_factory_t *f = &p->cfg.factory;
    while (taken) {
        ursa__pool_slot_t *s = taken;
        taken = s->link;
        if ((int)s->reason != TEND_CHECK) {
            ursa__pool_doom(p, s, s->reason);
        } else if (f->check(f->ctx, s->res) != 0) {
            ursa__pool_doom(p, s, URSA_POOL_FAILED_CHECK);
        } else {
            s->checked_at = ursa_now();
            ursa__pool_settle(p, s);
        }
    }
}

/* One look at every slot: takes the idle ones that are due, marks held
 * ones past their lifetime, and says when to look again. */
static ursa_time_t tend(ursa_pool_t *p)
{
    const ursa_pool_config_t *cfg = &p->cfg;
    ursa_time_t now = ursa_now(), next = URSA_NEVER;
    ursa__pool_lock(p);
    uint32_t idle = ursa__pool_idle_locked(p), min_idle = p->min_idle;
    ursa__pool_unlock_only(p);
    ursa__pool_slot_t *taken = NULL;
    ursa__pool_revoke_begin(p); /* idle slots may be on owners' lists */
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next) {
        /* acquire: the fields of a slot seen in use or idle were written
         * before it got there. */
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == URSA__POOL_BUSY && cfg->max_lifetime) {
            if (now >= s->expires_at)
                /* relaxed: its holder reads it on return (or an acquirer). */
                atomic_store_explicit(&s->evict, true, memory_order_relaxed);
            else
                next = earlier(next, s->expires_at);
        }
        if (!ursa__pool_is_idle(st))
            continue;
        int v = verdict(p, s, now, idle > min_idle, &next);
        uint32_t want = st;
        /* acquire: the resource is ours to check or destroy. */
        if (v < 0 || !atomic_compare_exchange_strong_explicit(&s->state, &want, URSA__POOL_MAINT,
                                                              memory_order_acquire,
                                                              memory_order_relaxed))
            continue;
        s->reason = (ursa_pool_reason_t)v;
        s->link = taken;
        taken = s;
        if (v != TEND_CHECK)
            idle--;
    }
    ursa__pool_revoke_end(p);
    if (cfg->idle_timeout) /* stamp items that went idle since this look */
        next = earlier(next, now + cfg->idle_timeout / 2);
    if (min_idle) /* the fast path took idle items without telling us */
        next = earlier(next, now + URSA__POOL_REFILL_LOOK);
    judge(p, taken);
    return next;
}

void *ursa__pool_housekeeper(void *arg)
{
    ursa_pool_t *p = arg;
    for (;;) {
        reap(p);
        spawn(p);
        ursa__pool_bury(p);
        ursa_time_t next = tend(p);
        ursa__pool_lock(p);
        bool stop = p->stopping;
        ursa__pool_unlock_only(p);
        if (stop || ursa_notify_wait(&p->kick, next) == -ECANCELED)
            break;
    }
    stop_creators(p);
    ursa__pool_bury(p);
    /* release: ursa_pool_free, seeing it, knows we touch the pool no more. */
    atomic_store_explicit(&p->housekeeper_gone, true, memory_order_release);
    return NULL;
}
