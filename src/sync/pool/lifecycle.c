/* A pool's life: making it (its runtime, the warm-up), closing, draining,
 * resizing, freeing. */
#include "pool.h"

#include "../../core/membarrier.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_CONNECTING 1
#define DEFAULT_BACKOFF_MIN URSA_MSEC(10)
#define DEFAULT_BACKOFF_MAX URSA_SEC(5)

static bool config_ok(const ursa_pool_config_t *c)
{
    return c && c->factory.create && c->factory.destroy && c->max_size > 0 &&
           c->min_idle <= c->max_size && c->idle_timeout >= 0 && c->max_lifetime >= 0 &&
           c->lifetime_jitter >= 0 && c->check_idle_after >= 0 && c->check_interval >= 0 &&
           c->warmup_timeout >= 0 && c->backoff_min >= 0 && c->backoff_max >= 0 &&
           c->warmup >= URSA_POOL_WARMUP_BACKGROUND && c->warmup <= URSA_POOL_WARMUP_REQUIRE_MIN;
}

/* The pool's memory and its settled configuration (defaults filled). */
static ursa_pool_t *alloc_pool(const ursa_pool_config_t *cfg)
{
    size_t size = (sizeof(ursa_pool_t) + 127) & ~(size_t)127;
    ursa_pool_t *p = aligned_alloc(128, size);
    if (!p)
        return NULL;
    memset(p, 0, size);
    p->cfg = *cfg;
    ursa_pool_config_t *c = &p->cfg;
    if (!c->max_connecting)
        c->max_connecting = DEFAULT_MAX_CONNECTING;
    if (c->max_connecting > c->max_size)
        c->max_connecting = c->max_size;
    if (!c->backoff_min)
        c->backoff_min = DEFAULT_BACKOFF_MIN;
    if (!c->backoff_max)
        c->backoff_max = c->backoff_min > DEFAULT_BACKOFF_MAX ? c->backoff_min : DEFAULT_BACKOFF_MAX;
    if (c->backoff_max < c->backoff_min)
        c->backoff_max = c->backoff_min;
    p->creator = calloc(c->max_connecting, sizeof *p->creator);
    if (!p->creator) {
        free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < c->max_connecting; i++)
        p->creator[i].pool = p;
    for (uint32_t i = 0; i < URSA__POOL_LOCALS; i++)
        p->local[i].idle_on = URSA__POOL_IDLE_ON(i);
    p->max_size = c->max_size;
    p->min_idle = c->min_idle;
    p->vet_on_acquire = c->check_on_acquire && c->factory.check;
    p->stamp_returns = p->vet_on_acquire && c->check_idle_after > 0;
    p->track_idle = p->stamp_returns || c->idle_timeout > 0;
    /* URSA_POOL_NO_MEMBARRIER forces the fenced windows (tests run both). */
    p->asym = !getenv("URSA_POOL_NO_MEMBARRIER") && ursa__membarrier_usable();
    /* Seeded from the clock: virtual time replays in deterministic mode. */
    p->rng = ((uint64_t)ursa_now() ^ 0x9e3779b97f4a7c15ull) | 1;
    (void)ursa_notify_init(&p->kick);
    (void)ursa_notify_init(&p->changed);
    return p;
}

static void free_memory(ursa_pool_t *p)
{
    ursa__pool_slot_t *s = ursa__pool_first(p);
    while (s) {
        ursa__pool_slot_t *next = s->all_next;
        free(s);
        s = next;
    }
    (void)ursa_notify_destroy(&p->kick);
    (void)ursa_notify_destroy(&p->changed);
    for (unsigned k = 0; k < URSA__POOL_ID_CHUNKS; k++)
        free(p->ids[k]);
    free(p->creator);
    free(p);
}

/* Under the lock: where the warm-up stands: 0 done, -EAGAIN not yet, or
 * the error that ends it. */
static int warm_state_locked(ursa_pool_t *p)
{
    uint64_t want = p->min_idle;
    switch (p->cfg.warmup) {
    case URSA_POOL_WARMUP_BEST_EFFORT:
        return p->warm_ok + p->warm_failed >= want ? 0 : -EAGAIN;
    case URSA_POOL_WARMUP_FAIL_FAST:
        if (p->warm_failed)
            return p->first_error;
        return p->warm_ok >= want ? 0 : -EAGAIN;
    default:
        return p->warm_ok >= want ? 0 : -EAGAIN;
    }
}

/* Waits until every slot is back, no create is in flight and no destroy
 * pending (drain), or until the warm-up is decided: `state_locked` says
 * where it stands (0, -EAGAIN, an error). The pool's `changed` notify is
 * enabled before each look, so no change is missed. */
static int wait_until(ursa_pool_t *p, int (*state_locked)(ursa_pool_t *p),
                      ursa_time_t deadline, const ursa_site_t *site)
{
    for (;;) {
        ursa_wait_t w;
        (void)ursa_notify_enable_at(&p->changed, &w, site);
        ursa__pool_lock(p);
        int rc = state_locked(p);
        ursa__pool_unlock_only(p);
        if (rc != -EAGAIN || deadline == URSA_NOW) {
            (void)ursa_notify_disable(&p->changed, &w);
            return rc;
        }
        rc = ursa_notify_wait_enabled(&p->changed, &w, deadline);
        if (rc)
            return rc;
    }
}

int ursa_pool_new(ursa_pool_t **out, const ursa_pool_config_t *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!config_ok(cfg) || (!cfg->rt && !ursa_task_self()))
        return -EINVAL;
    ursa_pool_t *p = alloc_pool(cfg);
    if (!p)
        return -ENOMEM;
    ursa_spawn_opts_t opts = {.name = "pool-housekeeper", .placement = URSA_PLACE_LOCAL};
    int rc = cfg->rt ? ursa_rt_spawn(cfg->rt, &p->housekeeper, ursa__pool_housekeeper, p, &opts)
                     : ursa_spawn(&p->housekeeper, ursa__pool_housekeeper, p, &opts);
    if (rc) {
        free_memory(p);
        return rc;
    }
    if (cfg->warmup != URSA_POOL_WARMUP_BACKGROUND && cfg->min_idle) {
        ursa_time_t deadline =
            cfg->warmup_timeout ? ursa_deadline_in(cfg->warmup_timeout) : URSA_NEVER;
        rc = wait_until(p, warm_state_locked, deadline, URSA_SITE);
        if (rc) {
            (void)ursa_pool_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

/* Under the lock: dooms idle slots, all of them or until size fits. */
static void doom_idle_locked(ursa_pool_t *p, ursa_pool_reason_t reason, bool all,
                             ursa__pool_after_t *a)
{
    while (all || p->size > p->max_size) {
        ursa__pool_slot_t *s = ursa__pool_scan_take_locked(p, a);
        if (!s)
            break;
        ursa__pool_doom_locked(p, s, reason, a);
    }
}

int ursa_pool_close(ursa_pool_t *p)
{
    if (!p)
        return -EINVAL;
    ursa__pool_after_t a = {.kick = true, .changed = true};
    ursa__pool_lock(p);
    if (!p->closed) {
        p->closed = true;
        /* seq_cst: before the revoke, so that a fast return either sees
         * CLOSED or has its idle slot found by the scan (pool.h). */
        atomic_fetch_or_explicit(&p->gate, URSA__POOL_CLOSED, memory_order_seq_cst);
        ursa__pool_fail_waiters_locked(p, -EPIPE, &a);
        ursa__pool_revoke_begin(p);
        doom_idle_locked(p, URSA_POOL_CLOSED, true, &a);
        ursa__pool_revoke_end(p);
    }
    ursa__pool_unlock(p, &a);
    return 0;
}

/* Under the lock: whether nothing is held, created or waiting to be
 * destroyed (a scan). */
static int drained_locked(ursa_pool_t *p)
{
    if (p->creating || p->graves)
        return -EAGAIN;
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next)
        /* acquire: after the DRAIN bit's revoke, a slot returned since is
         * seen idle (its window ended, or it took the slow path). */
        if (atomic_load_explicit(&s->state, memory_order_acquire) == URSA__POOL_BUSY)
            return -EAGAIN;
    return 0;
}

int ursa_pool_drain_at(ursa_pool_t *p, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!p)
        return -EINVAL;
    ursa__pool_lock(p);
    if (p->drainers++ == 0) {
        /* seq_cst: before the revoke: a fast return after it sees DRAIN
         * (and tells us), one before it has ended (pool.h). */
        atomic_fetch_or_explicit(&p->gate, URSA__POOL_DRAIN, memory_order_seq_cst);
        ursa__pool_revoke_begin(p);
        ursa__pool_revoke_end(p);
    }
    ursa__pool_unlock_only(p);
    int rc = wait_until(p, drained_locked, deadline, site);
    ursa__pool_lock(p);
    if (--p->drainers == 0)
        /* release: only lets fast returns in again. */
        atomic_fetch_and_explicit(&p->gate, ~URSA__POOL_DRAIN, memory_order_release);
    ursa__pool_unlock_only(p);
    return rc;
}

int ursa_pool_resize(ursa_pool_t *p, uint32_t max_size, uint32_t min_idle)
{
    if (!p || !max_size || min_idle > max_size)
        return -EINVAL;
    ursa__pool_after_t a = {.kick = true}; /* min_idle may want creates */
    ursa__pool_lock(p);
    if (p->closed) {
        ursa__pool_unlock_only(p);
        return -EPIPE;
    }
    p->max_size = max_size;
    p->min_idle = min_idle;
    if (p->size > p->max_size) {
        /* seq_cst: before the revoke, as in close. */
        atomic_fetch_or_explicit(&p->gate, URSA__POOL_OVER, memory_order_seq_cst);
        ursa__pool_revoke_begin(p);
        doom_idle_locked(p, URSA_POOL_SHRINK, false, &a);
        ursa__pool_revoke_end(p);
    }
    ursa__pool_shrunk_locked(p, &a);
    ursa__pool_unlock(p, &a);
    return 0;
}

/* Under the lock: whether a caller still holds an item. */
static bool in_use_locked(ursa_pool_t *p)
{
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next)
        /* relaxed: nobody else should be using a pool being freed. */
        if (atomic_load_explicit(&s->state, memory_order_relaxed) == URSA__POOL_BUSY)
            return true;
    return false;
}

int ursa_pool_free(ursa_pool_t *p)
{
    if (!p)
        return -EINVAL;
    ursa__pool_lock(p);
    bool busy = in_use_locked(p);
    ursa__pool_unlock_only(p);
    (void)ursa_pool_close(p);
    if (busy)
        return ursa__destroy_check(true, "pool freed while items are in use");
    ursa__pool_after_t a = {.kick = true};
    ursa__pool_lock(p);
    p->stopping = true;
    ursa__pool_unlock(p, &a);
    /* acquire: pairs with its last store; after it the pool is ours. A
     * housekeeper that ended on its own was cancelled by a stopping
     * runtime, which frees its handle. */
    if (!atomic_load_explicit(&p->housekeeper_gone, memory_order_acquire))
        while (ursa_task_join(p->housekeeper, NULL, URSA_NEVER) == -ECANCELED)
            (void)ursa_yield();
    ursa__pool_bury(p); /* what was doomed after it ended */
    free_memory(p);
    return 0;
}
