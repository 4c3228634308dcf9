/* Discharging an item: return (after reset), broken, detach, the
 * scope-exit return, and the leaked item a task or thread ended with. */
#include "local.h"

static void leaked(void *slot, uint64_t n);
const ursa_oblig_kind_t ursa__pool_item_kind = {"pooled item", leaked};

/* A discharge's checks; on 0, *s is the item's slot and it is empty. */
static inline __attribute__((always_inline)) int discharge(ursa_pool_t *p, ursa_pool_item_t *it,
                                                           ursa__pool_slot_t **s)
{
    if (!p || !it)
        return -EINVAL;
    if (it->pool && it->pool != p)
        return -EINVAL; /* another pool's item: nothing changed */
    int rc = ursa__hold_discharge(&it->ob, it->pool != NULL,
                                  "pooled item returned twice (or never acquired)", NULL);
    if (rc)
        return rc;
    *s = it->slot;
    it->res = NULL;
    it->pool = NULL;
    it->slot = NULL;
    return 0;
}

void ursa__pool_put_slow(ursa_pool_t *p, ursa__pool_slot_t *s)
{
    ursa__pool_settle(p, s);
}

int ursa_pool_return(ursa_pool_t *p, ursa_pool_item_t *it)
{
    ursa__pool_slot_t *s;
    int rc = discharge(p, it, &s);
    if (rc)
        return rc;
    const ursa_pool_factory_t *f = &p->cfg.factory;
    if (f->reset && f->reset(f->ctx, s->res) != 0)
        ursa__pool_doom(p, s, URSA_POOL_BROKEN);
    else
        ursa__pool_put(p, s);
    return 0;
}

int ursa_pool_broken(ursa_pool_t *p, ursa_pool_item_t *it)
{
    ursa__pool_slot_t *s;
    int rc = discharge(p, it, &s);
    if (rc == 0)
        ursa__pool_doom(p, s, URSA_POOL_BROKEN);
    return rc;
}

int ursa_pool_detach(ursa_pool_t *p, ursa_pool_item_t *it, void **res)
{
    ursa__pool_slot_t *s;
    int rc = discharge(p, it, &s);
    if (rc)
        return rc;
    if (res)
        *res = s->res;
    ursa__pool_after_t a = {0};
    ursa__pool_lock(p);
    p->size--;
    s->res = NULL;
    /* relaxed: a FREE slot is found by nobody; reuse is under the lock. */
    atomic_store_explicit(&s->state, URSA__POOL_FREE, memory_order_relaxed);
    s->link = p->free_slots;
    p->free_slots = s;
    ursa__pool_shrunk_locked(p, &a);
    ursa__pool_unlock(p, &a);
    return 0;
}

void ursa_pool_item_cleanup(ursa_pool_item_t *it)
{
    if (it && it->pool)
        (void)ursa_pool_return(it->pool, it);
}

/* Runs where the owner ended (between tasks, or an exiting thread): no
 * wait here; the housekeeper destroys the resource. */
static void leaked(void *slot, uint64_t n)
{
    (void)n;
    ursa__pool_slot_t *s = slot;
    ursa__pool_doom(s->pool, s, URSA_POOL_BROKEN);
}
