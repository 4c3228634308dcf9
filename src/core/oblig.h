/* The obligation ledger: what a task or thread holds, as a table of records
 * (O(1) enter and remove; no allocation for the first URSA__LEDGER_INLINE
 * holds, whose records the owner provides: a task at the top of its stack,
 * so a parked task's descriptor does not carry them; a thread in its
 * context). Only its owner touches a ledger. A record copies what the
 * sweep needs, so leaked holds are released without reading their (often
 * dead) memory.
 *
 * Cost on the uncontended holds (issue 15): entering a hold writes its
 * record (kind, site, target, n: four stores) and three words of the hold
 * (kind, owner, slot); removing the newest hold is one store (top shrinks),
 * any other pushes its record on the free list. The hold keeps target and n
 * only while disowned (ursa_oblig_disown copies them out of the record). */
#ifndef URSA_CORE_OBLIG_H
#define URSA_CORE_OBLIG_H

#include "ursa/config.h"
#include "ursa/oblig.h"

/* The ledger's layout and the helpers that inline fast paths in the public
 * headers use too (room, is_newest, pop, push_inline) are in
 * ursa/detail/oblig.h. */

/* Whether record r holds a hold (rather than being free). */
static inline bool ursa__ledger_rec_used(const ursa__ledger_rec_t *r)
{
    return !(r->kind & 1);
}

static inline const ursa_oblig_kind_t *ursa__ledger_rec_kind(const ursa__ledger_rec_t *r)
{
    return (const ursa_oblig_kind_t *)r->kind;
}

/* `first`: room for URSA__LEDGER_INLINE records that outlives the ledger's
 * use, or NULL (the first hold allocates). */
static inline void ursa__ledger_init(ursa__ledger_t *l, ursa__ledger_rec_t *first)
{
    l->recs = first;
    l->cap = first ? URSA__LEDGER_INLINE : 0;
    l->top = 0;
    l->free_head = URSA__LEDGER_NONE;
    l->tick = 0;
}

/* Frees a grown table and leaves the ledger empty, without records of its
 * own (the owner's may be gone: a finished task's stack). The ledger must
 * hold nothing (swept). */
void ursa__ledger_fini(ursa__ledger_t *l);

/* Grows the table: 0 or -ENOMEM. */
int ursa__ledger_grow(ursa__ledger_t *l);

/* Holds in l (a scan: a query, never on a hot path). */
size_t ursa__ledger_count(const ursa__ledger_t *l);

/* Writes record i of l for ob (lock: the lock's name and rank for
 * lock-order checks, or NULL) and links ob to it. */
static inline void ursa__ledger_fill(ursa__ledger_t *l, uint32_t i, ursa_oblig_t *ob,
                                     const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                     void *target, uint64_t n,
                                     const struct ursa__lockinfo *lock)
{
    ursa__ledger_rec_t *r = &l->recs[i];
    r->kind = (uintptr_t)kind;
    r->site = site;
    r->target = target;
    r->n = n;
#if URSA_LOCK_ORDER
    r->lock = lock;
#else
    (void)lock; /* nothing reads it */
#endif
    ob->ledger = l;
    ob->slot = i;
}

/* ursa__ledger_enter once ursa__ledger_room(l) said yes. */
static inline void ursa__ledger_push(ursa__ledger_t *l, ursa_oblig_t *ob,
                                     const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                     void *target, uint64_t n,
                                     const struct ursa__lockinfo *lock)
{
    uint32_t i = l->top;
    l->top = i + 1;
    ursa__ledger_fill(l, i, ob, kind, site, target, n, lock);
}

/* Enters ob in l with what its record needs (lock: as ursa__ledger_fill):
 * 0, or -ENOMEM (nothing entered, ob untouched; the caller gives the
 * resource back). */
static inline int ursa__ledger_enter(ursa__ledger_t *l, ursa_oblig_t *ob,
                                     const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                     void *target, uint64_t n,
                                     const struct ursa__lockinfo *lock)
{
    uint32_t i = l->free_head;
    if (i != URSA__LEDGER_NONE) {
        l->free_head = (uint32_t)(l->recs[i].kind >> 1);
    } else {
        i = l->top;
        if (i == l->cap && ursa__ledger_grow(l))
            return -ENOMEM;
        l->top = i + 1;
    }
    ursa__ledger_fill(l, i, ob, kind, site, target, n, lock);
    return 0;
}

/* Fills ob (a lock hold: lock is the lock's name and rank, which the
 * lock-order check reads from the caller's ledger) and enters it: 0, or
 * -ENOMEM (ob left empty). */
static inline int ursa__oblig_take_lock(ursa__ledger_t *l, ursa_oblig_t *ob,
                                        const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                        void *target, uint64_t n,
                                        const struct ursa__lockinfo *lock)
{
    if (__builtin_expect(ursa__ledger_enter(l, ob, kind, site, target, n, lock), 0))
        return -ENOMEM;
    ob->kind = kind;
    ob->site = site;
    return 0;
}

/* Fills ob and enters it: 0 or -ENOMEM (ob left empty). */
static inline int ursa__oblig_take(ursa__ledger_t *l, ursa_oblig_t *ob,
                                   const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                   void *target, uint64_t n)
{
    return ursa__oblig_take_lock(l, ob, kind, site, target, n, NULL);
}

/* Removes ob's record from its owner's ledger (which must be l). The
 * newest record just lowers top (no store into the record: nothing scans
 * past top); any other goes on the free list. */
static inline void ursa__ledger_remove(ursa__ledger_t *l, const ursa_oblig_t *ob)
{
    uint32_t i = ob->slot;
    if (__builtin_expect(i + 1 == l->top, 1)) {
        l->top = i;
        return;
    }
    l->recs[i].kind = ((uintptr_t)l->free_head << 1) | 1;
    l->free_head = i;
}

/* The count of a hold (its own while disowned, else its record's). */
static inline uint64_t ursa__oblig_n(const ursa_oblig_t *ob)
{
    return ob->ledger ? ob->ledger->recs[ob->slot].n : ob->n;
}

/* Sets the count of a hold that shrank while held (a permit that used some
 * of its slots), so a leak sweep releases only what is still held. */
static inline void ursa__oblig_set_n(ursa_oblig_t *ob, uint64_t n)
{
    if (ob->ledger)
        ob->ledger->recs[ob->slot].n = n;
    else
        ob->n = n;
}

/* Checks that ob is a hold the caller (ledger l) may discharge and removes
 * it: 0, -EINVAL (holds nothing: never acquired, or released already),
 * -EPERM (another owner's). A disowned hold may be discharged by anyone. */
static inline int ursa__oblig_discharge(ursa__ledger_t *l, ursa_oblig_t *ob)
{
    if (__builtin_expect(!ob->kind, 0))
        return -EINVAL;
    if (__builtin_expect(ob->ledger != l, 0)) {
        if (ob->ledger)
            return -EPERM;
    } else {
        ursa__ledger_remove(l, ob);
    }
    ob->kind = NULL;
    ob->ledger = NULL;
    return 0;
}

/* Releases every hold left in l, reporting each as leaked by `owner`
 * (core/report.h), and frees a grown table. Aborts afterwards if so
 * configured. Returns the number of leaks. */
size_t ursa__ledger_sweep(ursa__ledger_t *l, const char *owner);

#endif
