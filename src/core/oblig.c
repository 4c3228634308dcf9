#include "oblig.h"

#include <stdlib.h>
#include <string.h>

#include "report.h"

int ursa__ledger_grow(ursa__ledger_t *l)
{
    uint32_t cap = l->cap * 2;
    ursa__ledger_rec_t *r;
    if (l->recs == l->inline_recs) {
        r = malloc(cap * sizeof *r);
        if (r)
            memcpy(r, l->inline_recs, sizeof l->inline_recs);
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
    if (l->recs != l->inline_recs)
        free(l->recs);
    ursa__ledger_init(l);
}

size_t ursa__ledger_sweep(ursa__ledger_t *l, const char *owner)
{
    size_t n = 0;
    for (uint32_t i = 0; i < l->top; i++) {
        ursa__ledger_rec_t r = l->recs[i];
        if (!r.hold)
            continue;
        ursa__report_leak(owner, r.kind->name, r.site);
        r.kind->release_leaked(r.target, r.n);
        n++;
    }
    ursa__ledger_fini(l);
    ursa__report_leaks_end(n);
    return n;
}
