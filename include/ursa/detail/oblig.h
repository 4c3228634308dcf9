/* ursa — private layout of a hold's obligation record (ursa/oblig.h).
 * Public only so that holds can be embedded: every field is private, read
 * and written by src/core/oblig.{h,c}. Nothing here is callable. */
#ifndef URSA_DETAIL_OBLIG_H
#define URSA_DETAIL_OBLIG_H

#include "../base.h"

struct ursa_oblig_kind;
struct ursa__ledger;
struct ursa__lockinfo;

/* Zero means "holds nothing". */
struct ursa_oblig {
    const struct ursa_oblig_kind *kind; /* NULL when holding nothing */
    const ursa_site_t *site;
    struct ursa__ledger *ledger; /* owner, or NULL while disowned */
    void *target;                /* what to release ... */
    uint64_t n;                  /* ... and how much */
    const struct ursa__lockinfo *lock; /* a lock's name and rank, or NULL */
    uint32_t slot;               /* its record in the owner's ledger */
    uint32_t user;               /* 1: entered by ursa_oblig_enter */
};

#endif
