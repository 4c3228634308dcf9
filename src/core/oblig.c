#include "oblig.h"

#include <stdlib.h>
#include <string.h>

#include "report.h"

/* Whether l's table is ours (heap) rather than its owner's. */
static bool grown(const ursa__ledger_t *l)
{
    return l->cap > URSA__LEDGER_INLINE;
}

int ursa__ledger_grow(ursa__ledger_t *l)
{
    uint32_t cap = l->cap ? l->cap * 2 : 2 * URSA__LEDGER_INLINE;
    ursa__ledger_rec_t *r;
    if (!grown(l)) {
        r = malloc(cap * sizeof *r);
        if (r && l->top)
            memcpy(r, l->recs, l->top * sizeof *r);
    } else {
        r = realloc(l->recs, cap * sizeof *r);
    }
    if (!r)
        return -ENOMEM;
    l->recs = r;
    l->cap = cap;
    return 0;
}

void ursa__ledger_fini(ursa__ledger_t *l)
{
    if (grown(l))
        free(l->recs);
    ursa__ledger_init(l, NULL);
}

size_t ursa__ledger_count(const ursa__ledger_t *l)
{
    size_t n = 0;
    for (uint32_t i = 0; i < l->top; i++)
        n += ursa__ledger_rec_used(&l->recs[i]);
    return n;
}

size_t ursa__ledger_sweep(ursa__ledger_t *l, const char *owner)
{
    size_t n = 0;
    for (uint32_t i = 0; i < l->top; i++) {
        ursa__ledger_rec_t r = l->recs[i];
        if (!ursa__ledger_rec_used(&r))
            continue;
        const ursa_oblig_kind_t *kind = ursa__ledger_rec_kind(&r);
        ursa__report_leak(owner, kind->name, r.site);
        kind->release_leaked(r.target, r.n);
        n++;
    }
    ursa__ledger_fini(l);
    ursa__report_leaks_end(n);
    return n;
}
