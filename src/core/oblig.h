/* The obligation ledger: what a task or thread holds, as a table of records
 * (O(1) enter and remove through a free list; no allocation for the first
 * URSA__LEDGER_INLINE holds, whose records the owner provides: a task at
 * the top of its stack, so a parked task's descriptor does not carry them;
 * a thread in its context). Only its owner touches a ledger. A record
 * copies what the sweep needs, so leaked holds are released without
 * reading their (often dead) memory. */
#ifndef URSA_CORE_OBLIG_H
#define URSA_CORE_OBLIG_H

#include "ursa/oblig.h"

#define URSA__LEDGER_INLINE 2
#define URSA__LEDGER_NONE UINT32_MAX

typedef struct ursa__ledger_rec {
    const ursa_oblig_t *hold; /* NULL when the record is free */
    const ursa_oblig_kind_t *kind;
    const ursa_site_t *site;
    void *target;
    uint64_t n; /* when free: index of the next free record */
    const struct ursa__lockinfo *lock; /* for lock-order checks */
} ursa__ledger_rec_t;

typedef struct ursa__ledger {
    /* The owner's URSA__LEDGER_INLINE records, or a heap table once grown
     * (a heap table always has more: cap says which). */
    ursa__ledger_rec_t *recs;
    uint32_t cap, top; /* records allocated / ever used */
    uint32_t free_head;
    uint32_t count; /* holds entered */
} ursa__ledger_t;

/* `first`: room for URSA__LEDGER_INLINE records that outlives the ledger's
 * use, or NULL (the first hold allocates). */
static inline void ursa__ledger_init(ursa__ledger_t *l, ursa__ledger_rec_t *first)
{
    l->recs = first;
    l->cap = first ? URSA__LEDGER_INLINE : 0;
    l->top = 0;
    l->free_head = URSA__LEDGER_NONE;
    l->count = 0;
}

/* Frees a grown table and leaves the ledger empty, without records of its
 * own (the owner's may be gone: a finished task's stack). The ledger must
 * hold nothing (swept). */
void ursa__ledger_fini(ursa__ledger_t *l);

/* Grows the table: 0 or -ENOMEM. */
int ursa__ledger_grow(ursa__ledger_t *l);

/* Enters ob (kind, site, target, n filled by the caller) in l: 0, or
 * -ENOMEM (nothing entered; the caller gives the resource back). */
static inline int ursa__ledger_enter(ursa__ledger_t *l, ursa_oblig_t *ob)
{
    uint32_t i = l->free_head;
    if (i != URSA__LEDGER_NONE) {
        l->free_head = (uint32_t)l->recs[i].n;
    } else {
        if (l->top == l->cap && ursa__ledger_grow(l))
            return -ENOMEM;
        i = l->top++;
    }
    ursa__ledger_rec_t *r = &l->recs[i];
    r->hold = ob;
    r->kind = ob->kind;
    r->site = ob->site;
    r->target = ob->target;
    r->n = ob->n;
    r->lock = ob->lock;
    ob->ledger = l;
    ob->slot = i;
    l->count++;
    return 0;
}

/* ursa__oblig_take for a lock hold: also records the lock's name and rank
 * (NULL: not a lock), which the lock-order check reads from the caller's
 * ledger. */
static inline int ursa__oblig_take_lock(ursa__ledger_t *l, ursa_oblig_t *ob,
                                        const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                        void *target, uint64_t n,
                                        const struct ursa__lockinfo *lock)
{
    ob->kind = kind;
    ob->site = site;
    ob->target = target;
    ob->n = n;
    ob->lock = lock;
    if (__builtin_expect(ursa__ledger_enter(l, ob) == 0, 1))
        return 0;
    ob->kind = NULL;
    return -ENOMEM;
}

/* Fills ob and enters it: 0 or -ENOMEM (ob left empty). */
static inline int ursa__oblig_take(ursa__ledger_t *l, ursa_oblig_t *ob,
                                   const ursa_oblig_kind_t *kind, const ursa_site_t *site,
                                   void *target, uint64_t n)
{
    return ursa__oblig_take_lock(l, ob, kind, site, target, n, NULL);
}

/* Removes ob's record from its owner's ledger (which must be l). */
static inline void ursa__ledger_remove(ursa__ledger_t *l, const ursa_oblig_t *ob)
{
    ursa__ledger_rec_t *r = &l->recs[ob->slot];
    r->hold = NULL;
    r->n = l->free_head;
    l->free_head = ob->slot;
    l->count--;
}

/* Sets the count of a hold that shrank while held (a permit that used some
 * of its slots), so a leak sweep releases only what is still held. */
static inline void ursa__oblig_set_n(ursa_oblig_t *ob, uint64_t n)
{
    ob->n = n;
    if (ob->ledger)
        ((ursa__ledger_t *)ob->ledger)->recs[ob->slot].n = n;
}

/* Checks that ob is a hold the caller (ledger l) may discharge and removes
 * it: 0, -EINVAL (holds nothing: never acquired, or released already),
 * -EPERM (another owner's). A disowned hold may be discharged by anyone. */
static inline int ursa__oblig_discharge(ursa__ledger_t *l, ursa_oblig_t *ob)
{
    if (!ob->kind)
        return -EINVAL;
    if (ob->ledger) {
        if (ob->ledger != l)
            return -EPERM;
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
