/* The obligation ledger: the holds a task or thread owns, as an intrusive
 * circular list (O(1) link and unlink, no allocation). Only its owner
 * touches a ledger. */
#ifndef URSA_CORE_OBLIG_H
#define URSA_CORE_OBLIG_H

#include "ursa/oblig.h"

typedef struct ursa__ledger {
    ursa_oblig_t head; /* sentinel */
    size_t count;
} ursa__ledger_t;

static inline void ursa__ledger_init(ursa__ledger_t *l)
{
    l->head.prev = l->head.next = &l->head;
    l->head.kind = NULL;
    l->head.site = NULL;
    l->head.ledger = l;
    l->count = 0;
}

static inline void ursa__oblig_link(ursa__ledger_t *l, ursa_oblig_t *ob,
                                    const ursa_oblig_kind_t *kind, const ursa_site_t *site)
{
    ob->kind = kind;
    ob->site = site;
    ob->ledger = l;
    ob->prev = &l->head;
    ob->next = l->head.next;
    l->head.next->prev = ob;
    l->head.next = ob;
    l->count++;
}

/* Checks that ob is a hold the caller (ledger l) may discharge, and unlinks
 * it: 0, -EINVAL (not held: never acquired or already released), -EPERM
 * (another owner's). */
static inline int ursa__oblig_discharge(ursa__ledger_t *l, ursa_oblig_t *ob)
{
    if (!ob->kind)
        return -EINVAL;
    if (ob->ledger) {
        if (ob->ledger != l)
            return -EPERM;
        ob->prev->next = ob->next;
        ob->next->prev = ob->prev;
        l->count--;
    }
    ob->kind = NULL; /* "holds nothing"; the links are dead from here */
    ob->ledger = NULL;
    return 0;
}

/* Releases every hold left in l, reporting each as leaked by `owner`.
 * Aborts afterwards if so configured. Returns the number of leaks. */
size_t ursa__ledger_sweep(ursa__ledger_t *l, const char *owner);

/* Reports a misuse (double release, destroy while busy...) the way leaks
 * are reported; aborts in debug configuration. */
void ursa__report_misuse(const char *what, const ursa_site_t *site);

#endif
