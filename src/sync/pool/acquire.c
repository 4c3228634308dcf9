/* Acquiring an item: the fast path of local.h, the wait on the queue in
 * the three calling contexts, the health check on acquire, and the hold. */
#include "local.h"

ursa__pool_local_t *ursa__pool_local_claim(ursa_pool_t *p, uint64_t me)
{
    /* Probe a few entries from the home one: the thread's own, or a free
     * one to claim. Threads that find none go without a list. */
    for (unsigned i = 0; i < 4; i++) {
        ursa__pool_local_t *l = &p->local[(me + i) & (URSA__POOL_LOCALS - 1)];
        /* relaxed: only this thread stores its own uid. */
        uint64_t owner = atomic_load_explicit(&l->owner, memory_order_relaxed);
        if (owner == me)
            return l;
        /* relaxed: the entry's list is the claimer's alone from here on;
         * an entry is claimed once and never given back. */
        if (owner == 0 && atomic_compare_exchange_strong_explicit(
                              &l->owner, &owner, me, memory_order_relaxed, memory_order_relaxed))
            return l;
    }
    return NULL;
}

void ursa__pool_evicted(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    ursa__pool_doom(p, s, URSA_POOL_MAX_LIFETIME);
}

/* s is the caller's: enters the hold in its ledger and fills it. */
static inline __attribute__((always_inline)) int take(ursa_pool_t *p, ursa__pool_slot_t *s,
                                                      ursa_pool_item_t *it, ursa__ctx_t *c,
                                                      const ursa_site_t *site)
{
    if (__builtin_expect(
            ursa__oblig_take(&c->ledger, &it->ob, &ursa__pool_item_kind, site, s, 0), 0)) {
        ursa__pool_settle(p, s); /* no room to record it: it goes back */
        return -ENOMEM;
    }
    it->res = s->res;
    it->pool = p;
    it->slot = s;
    return 0;
}

/* The outcome of a wait decided `st` (GRANTED or CLOSED): 0 and *s, or
 * the error it was failed with. */
static int decided(ursa_pool_t *p, uint32_t st, const ursa__waiter_t *w, ursa__pool_slot_t **s)
{
    if (st != URSA__W_GRANTED)
        return -(int)w->got;
    *s = ursa__pool_slot_of(p, w->got);
    return 0;
}

/* The slow half of a blocking acquire: queue, wait, and count the wait. */
static int wait_for_slot(ursa_pool_t *p, ursa__ctx_t *c, ursa_time_t deadline,
                         const ursa_site_t *site, ursa__pool_slot_t **s)
{
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &ursa__pool_acquire_ops);
    int rc = ursa__pool_enqueue(p, &w, deadline == URSA_NOW);
    if (rc == -EINPROGRESS) {
        ursa_time_t since = ursa__ctx_now(c);
        rc = ursa__wait_block(c, &w, rc, deadline, site);
        if (rc == -ETIMEDOUT)
            ursa__pool_count_timeout(p);
        else if (rc == 0)
            ursa__pool_count_wait(p, ursa__ctx_now(c) - since);
    }
    /* relaxed: decided (block, or the start) and settled: ours to read. */
    return rc ? rc : decided(p, atomic_load_explicit(&w.state, memory_order_relaxed), &w, s);
}

/* check_on_acquire for s (the caller's): 0 keep it; 1 it failed its check
 * and is doomed (acquire again); -ECANCELED the caller was cancelled during
 * the check (s went back, unharmed). */
static int vet(ursa_pool_t *p, ursa__pool_slot_t *s, ursa__ctx_t *c)
{
    const ursa_pool_config_t *cfg = &p->cfg;
    if (!p->vet_on_acquire)
        return 0;
    if (cfg->check_idle_after > 0) {
        /* relaxed: s is ours; the stamp came with it (its state's acquire). */
        ursa_time_t since = atomic_load_explicit(&s->idle_since, memory_order_relaxed);
        if (since && ursa__ctx_now(c) - since <= cfg->check_idle_after)
            return 0;
    }
    int rc = cfg->factory.check(cfg->factory.ctx, s->res);
    if (rc == 0)
        return 0;
    if (rc == -ECANCELED && ursa_task_cancelled()) {
        ursa__pool_settle(p, s);
        return -ECANCELED;
    }
    ursa__pool_doom(p, s, URSA_POOL_FAILED_CHECK);
    return 1;
}

/* An acquire past the fast path: s is what the fast path found (NULL:
 * nothing), to be checked first. Waits, checks, and counts the acquire. */
static __attribute__((noinline)) int acquire_slow(ursa_pool_t *p, ursa_pool_item_t *it,
                                                  ursa__pool_slot_t *s, ursa_time_t deadline,
                                                  const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    bool counted = s != NULL; /* the fast path counts its own */
    for (;; s = NULL, counted = false) {
        if (!s)
            s = ursa__pool_fast_take(p);
        counted |= s != NULL;
        if (!s) {
            int rc = wait_for_slot(p, c, deadline, site, &s);
            if (rc)
                return rc;
        }
        int rc = vet(p, s, c);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        rc = take(p, s, it, c, site);
        if (rc == 0 && !counted)
            ursa__pool_count_acquire(p);
        return rc;
    }
}

int ursa_pool_acquire_at(ursa_pool_t *p, ursa_pool_item_t *it, ursa_time_t deadline,
                         const ursa_site_t *site)
{
    if (__builtin_expect(!p || !it || it->pool, 0))
        return -EINVAL;
    ursa__pool_slot_t *s = ursa__pool_fast_take(p);
    if (__builtin_expect(s && !p->vet_on_acquire, 1))
        return take(p, s, it, ursa__ctx(), site);
    return acquire_slow(p, it, s, deadline, site);
}

int ursa_pool_acquire_start_at(ursa_pool_t *p, ursa_wait_t *w, ursa_waker_t waker,
                               const ursa_site_t *site)
{
    ursa__waiter_t *n = p ? ursa__wait_raw_init(w, waker, &ursa__pool_acquire_ops, site) : NULL;
    if (!n)
        return -EINVAL;
    /* Not the fast path: it counts an acquire, and the finish counts
     * every raw one. */
    return ursa__pool_enqueue(p, n, false);
}

int ursa_pool_acquire_finish(ursa_pool_t *p, ursa_wait_t *w, ursa_pool_item_t *it)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, p, &ursa__pool_acquire_ops);
    if (!n || !it || it->pool)
        return -EINVAL;
    int st = ursa__wait_finish_decided(n);
    if (st < 0)
        return st;
    ursa__pool_slot_t *s = NULL;
    int rc = decided(p, (uint32_t)st, n, &s);
    if (rc == 0)
        rc = take(p, s, it, ursa__ctx(), w->site);
    if (rc == 0)
        ursa__pool_count_acquire(p);
    return rc;
}
