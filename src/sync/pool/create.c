/* Creating resources off the callers' path: the creator tasks, the
 * decision to create (only for demand still unmet: waiters not covered by
 * creates in flight, or min_idle), backoff with jitter after failures, and
 * fail_fast. */
#include "pool.h"

#include <stdlib.h>

uint32_t ursa__pool_idle_locked(ursa_pool_t *p)
{
    uint32_t n = 0;
    for (ursa__pool_slot_t *s = ursa__pool_first(p); s; s = s->all_next)
        /* relaxed: a count, as good as the moment it is taken. */
        n += ursa__pool_is_idle(atomic_load_explicit(&s->state, memory_order_relaxed));
    return n;
}

uint64_t ursa__pool_random_locked(ursa_pool_t *p, uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t x = p->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return (x * 2685821657736338717ull) % n;
}

bool ursa__pool_wants_create_locked(ursa_pool_t *p)
{
    if (p->closed || p->stopping || p->size >= p->max_size)
        return false;
    if (p->failures && p->creating)
        return false; /* failing: one create at a time */
    /* relaxed: the waiter count changes under the lock we hold. */
    uint32_t waiting = ursa__pool_nwait(atomic_load_explicit(&p->gate, memory_order_relaxed));
    if (waiting > p->creating)
        return true;
    if (p->failing && !p->creating)
        return true; /* fail_fast: keep probing until a create succeeds */
    return p->min_idle && ursa__pool_idle_locked(p) + p->creating < p->min_idle;
}

/* The delay before the next create after `failures` in a row: doubling
 * from backoff_min up to backoff_max, then a random point in its upper
 * half (so creators of many pools do not retry in step). */
static ursa_time_t backoff_locked(ursa_pool_t *p)
{
    ursa_time_t d = p->cfg.backoff_min, max = p->cfg.backoff_max;
    for (uint32_t i = 1; i < p->failures && d < max; i++)
        d = d > max / 2 ? max : d * 2;
    if (d > max)
        d = max;
    return d / 2 + (ursa_time_t)ursa__pool_random_locked(p, (uint64_t)(d - d / 2) + 1);
}

/* When a resource made now must go, its lifetime less a random part. */
static ursa_time_t expiry_locked(ursa_pool_t *p, ursa_time_t now)
{
    ursa_time_t life = p->cfg.max_lifetime;
    if (!life)
        return URSA_NEVER;
    ursa_time_t jitter = p->cfg.lifetime_jitter ? p->cfg.lifetime_jitter : life / 10;
    if (jitter >= life)
        jitter = life - 1;
    return now + life - (ursa_time_t)ursa__pool_random_locked(p, (uint64_t)jitter + 1);
}

/* Under the lock: gives s the next id and enters it in the id table
 * (allocating a chunk when the ids reach it: at most 32 times in a pool's
 * life, so the lock is held over an allocation that rarely). False: no
 * memory for the chunk. */
static bool enter_id_locked(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    uint32_t id = p->nslots;
    if (id == UINT32_MAX)
        return false;
    unsigned k = 31u - (unsigned)__builtin_clz(id + 1);
    if (!p->ids[k] && !(p->ids[k] = calloc((size_t)1 << k, sizeof *p->ids[k])))
        return false;
    p->ids[k][id + 1 - (1u << k)] = s;
    s->id = id;
    p->nslots++;
    return true;
}

/* A free slot for a create: the free list's, else the spare (published
 * now, so that every slot ever made is on `all` and in the id table);
 * NULL if neither. */
static ursa__pool_slot_t *take_slot_locked(ursa_pool_t *p, ursa__pool_slot_t **spare)
{
    ursa__pool_slot_t *s = p->free_slots;
    if (s) {
        p->free_slots = s->link;
        return s;
    }
    s = *spare;
    if (!s || !enter_id_locked(p, s))
        return NULL;
    *spare = NULL;
    s->pool = p;
    s->all_next = ursa__pool_first(p);
    /* release: a lock-free scan that finds s sees its fields (FREE). */
    atomic_store_explicit(&p->all, s, memory_order_release);
    return s;
}

void ursa__pool_reserve_locked(ursa_pool_t *p, int n)
{
    p->size += (uint32_t)n;
    p->creating += (uint32_t)n;
}

static void release_slot_locked(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    s->link = p->free_slots;
    p->free_slots = s;
}

/* The create gave res: s enters the pool (to a waiter, or idle). */
static void created_locked(ursa_pool_t *p, ursa__pool_slot_t *s, void *res, ursa_time_t now,
                           ursa__pool_after_t *a)
{
    s->res = res;
    s->expires_at = expiry_locked(p, now);
    s->checked_at = now;
    /* relaxed: published by the grant or the idle store in settle. */
    atomic_store_explicit(&s->evict, false, memory_order_relaxed);
    atomic_store_explicit(&s->idle_since, p->stamp_returns ? now : 0, memory_order_relaxed);
    atomic_store_explicit(&s->state, URSA__POOL_BUSY, memory_order_relaxed);
    p->failures = 0;
    p->failing = 0;
    p->warm_ok++;
    a->changed = true;
    ursa__pool_settle_locked(p, s, a);
}

static void failed_locked(ursa_pool_t *p, ursa__pool_slot_t *s, int err, ursa_time_t now,
                          ursa__pool_after_t *a)
{
    p->size--;
    if (s)
        release_slot_locked(p, s);
    p->failures++;
    p->last_error = err;
    if (!p->first_error)
        p->first_error = err;
    p->warm_failed++;
    p->retry_at = now + backoff_locked(p);
    if (p->cfg.fail_fast) {
        p->failing = err;
        ursa__pool_fail_waiters_locked(p, err, a);
    }
    a->changed = true;
    ursa__pool_shrunk_locked(p, a);
}

/* Leaves the loop: the housekeeper reaps the task (and spawns another if
 * a create is wanted by then). */
static void *creator_done_locked(ursa_pool_t *p, ursa__pool_creator_t *rec,
                                 ursa__pool_slot_t *spare)
{
    ursa__pool_after_t a = {.kick = true, .changed = true};
    rec->done = true;
    ursa__pool_unlock(p, &a);
    free(spare);
    return NULL;
}

/* Runs one create in slot s (NULL: no memory for one) and puts its
 * result where it belongs. */
static void create_one(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    const ursa_pool_factory_t *f = &p->cfg.factory;
    void *res = NULL;
    int rc = s ? f->create(f->ctx, &res) : -ENOMEM;
    ursa_time_t now = ursa_now();
    bool cancelled = rc != 0 && ursa_task_cancelled();
    if (rc == 0) {
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&p->creates, 1, memory_order_relaxed);
        ursa__pool_event(p, URSA_POOL_CREATED, URSA_POOL_BROKEN, res, 0);
    } else if (!cancelled) {
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&p->create_failures, 1, memory_order_relaxed);
        ursa__pool_event(p, URSA_POOL_CREATE_FAILED, URSA_POOL_BROKEN, NULL, rc);
    }
    ursa__pool_after_t a = {0};
    ursa__pool_lock(p);
    p->creating--;
    if (rc == 0) {
        created_locked(p, s, res, now, &a);
    } else if (cancelled) { /* the pool is being freed: not a failure */
        p->size--;
        if (s)
            release_slot_locked(p, s);
        a.changed = true;
    } else {
        failed_locked(p, s, rc < 0 ? rc : -EIO, now, &a);
    }
    ursa__pool_unlock(p, &a);
}

void *ursa__pool_creator(void *arg)
{
    ursa__pool_creator_t *rec = arg;
    ursa_pool_t *p = rec->pool;
    ursa__pool_slot_t *spare = NULL;
    /* The housekeeper reserved our first create (ursa__pool_reserve_locked);
     * each later one is reserved here, if it is still wanted. */
    for (bool reserved = true;; reserved = false) {
        if (!spare)
            spare = calloc(1, sizeof *spare);
        ursa__pool_lock(p);
        if (!reserved) {
            if (ursa_task_cancelled() || !ursa__pool_wants_create_locked(p))
                return creator_done_locked(p, rec, spare);
            ursa__pool_reserve_locked(p, 1);
        }
        ursa_time_t now = ursa_now(), at = p->retry_at;
        if (ursa_task_cancelled() || (p->failures && now < at)) {
            ursa__pool_reserve_locked(p, -1); /* not now */
            if (ursa_task_cancelled())
                return creator_done_locked(p, rec, spare);
            ursa__pool_unlock_only(p);
            (void)ursa_sleep_until(at); /* a cancel ends the loop above */
            continue;
        }
        ursa__pool_slot_t *s = take_slot_locked(p, &spare);
        ursa__pool_unlock_only(p);
        create_one(p, s);
    }
}
