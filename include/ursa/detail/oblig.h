/* ursa — private layout of a hold's obligation record (ursa/oblig.h).
 * Public only so that holds can be embedded: every field is private, read
 * and written by src/core/oblig.{h,c}. Nothing here is callable. */
#ifndef URSA_DETAIL_OBLIG_H
#define URSA_DETAIL_OBLIG_H

#include "../base.h"

struct ursa_oblig_kind;
struct ursa__ledger;

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

#endif
