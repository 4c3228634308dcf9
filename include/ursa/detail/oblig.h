/* ursa — private layout of a hold's obligation record (ursa/oblig.h).
 * Public only so that holds can be embedded: every field is private, read
 * and written by src/core/oblig.{h,c}. The ledger helpers below are for
 * the library's inline fast paths only. */
#ifndef URSA_DETAIL_OBLIG_H
#define URSA_DETAIL_OBLIG_H

#include "../base.h"

struct ursa_oblig_kind;

/* Zero means "holds nothing". While its owner holds it, the owner's ledger
 * record says what to release (target, n); the hold keeps them only while
 * disowned, between ursa_oblig_disown and ursa_oblig_adopt. */
struct ursa_oblig {
    const struct ursa_oblig_kind *kind; /* NULL when holding nothing */
    struct ursa__ledger *ledger; /* owner, or NULL while disowned */
    const ursa_site_t *site;     /* where it was acquired */
    uint32_t slot;               /* its record in the owner's ledger */
    uint32_t user;               /* 1: entered by ursa_oblig_enter */
    void *target;                /* while disowned: what to release ... */
    uint64_t n;                  /* ... and how much */
};

/* ---- the obligation ledger (src/core/oblig.h): its layout and the helpers
 * of the inline fast paths ---- */

struct ursa__lockinfo;

#define URSA__LEDGER_INLINE 2
#define URSA__LEDGER_NONE UINT32_MAX

typedef struct ursa__ledger_rec {
    /* The hold's kind; a free record below top holds
     * (next free index << 1) | 1 instead (kinds are aligned: bit 0 is 0). */
    uintptr_t kind;
    const ursa_site_t *site;
    void *target;
    uint64_t n;
    /* The lock's name and rank for lock-order checks (URSA_LOCK_ORDER
     * builds, which alone read it), or NULL. In every build: one layout
     * (docs/abi.md), since the inline fast paths of ursa/mutex.h write
     * records too. */
    const struct ursa__lockinfo *lock;
} ursa__ledger_rec_t;

typedef struct ursa__ledger {
    /* The owner's URSA__LEDGER_INLINE records, or a heap table once grown
     * (a heap table always has more: cap says which). */
    ursa__ledger_rec_t *recs;
    uint32_t cap, top; /* records allocated / in use or free-listed below top */
    uint32_t free_head; /* free records below top */
    /* The owner's slow lock count, for the mutex's bias heuristic
     * (src/core/bias.h, ursa__bias_tick): counted here, in memory only the
     * owner writes, rather than in the lock's shared line. */
    uint32_t tick;
} ursa__ledger_t;

/* Whether l has a record at top to spare (no free list to pop, no growth):
 * then ursa__ledger_push cannot fail. The fast paths test it. */
static inline bool ursa__ledger_room(const ursa__ledger_t *l)
{
    return l->free_head == URSA__LEDGER_NONE && l->top != l->cap;
}

/* ursa__ledger_push (src/core/oblig.h) for the inline fast paths of the
 * public headers, once ursa__ledger_room said yes: the same record, its
 * lock written in every build (a header cannot know whether the library
 * checks lock order; the library's own push writes it only where it
 * does). */
static inline void ursa__ledger_push_inline(ursa__ledger_t *l, struct ursa_oblig *ob,
                                            const struct ursa_oblig_kind *kind,
                                            const ursa_site_t *site, void *target, uint64_t n,
                                            const struct ursa__lockinfo *lock)
{
    uint32_t i = l->top;
    l->top = i + 1;
    ursa__ledger_rec_t *r = &l->recs[i];
    r->kind = (uintptr_t)kind;
    r->site = site;
    r->target = target;
    r->n = n;
    r->lock = lock;
    ob->ledger = l;
    ob->slot = i;
}

/* Whether ob is the newest hold in l, the caller's ledger (so it is held
 * and the caller's): ursa__ledger_pop discharges it with one store. */
static inline bool ursa__oblig_is_newest(const ursa__ledger_t *l, const struct ursa_oblig *ob)
{
    return ob->ledger == l && ob->slot + 1 == l->top;
}

/* Discharges ob once ursa__oblig_is_newest said yes. */
static inline void ursa__ledger_pop(ursa__ledger_t *l, struct ursa_oblig *ob)
{
    l->top = ob->slot;
    ob->kind = NULL;
    ob->ledger = NULL;
}

#endif
