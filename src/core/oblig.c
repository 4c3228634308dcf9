#include "oblig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

static ursa_leak_hook_t leak_hook;
static void *leak_hook_ctx;
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
#ifdef NDEBUG
static _Atomic bool abort_on_leak = false;
#else
static _Atomic bool abort_on_leak = true;
#endif

void ursa_leak_set_hook(ursa_leak_hook_t hook, void *ctx)
{
    pthread_mutex_lock(&hook_lock);
    leak_hook = hook;
    leak_hook_ctx = ctx;
    pthread_mutex_unlock(&hook_lock);
}

bool ursa_leak_set_abort(bool on)
{
    /* relaxed: a configuration flag, no data depends on it. */
    return atomic_exchange_explicit(&abort_on_leak, on, memory_order_relaxed);
}

static void report(const char *owner, const char *what, const ursa_site_t *site)
{
    pthread_mutex_lock(&hook_lock);
    ursa_leak_hook_t hook = leak_hook;
    void *ctx = leak_hook_ctx;
    pthread_mutex_unlock(&hook_lock);
    if (hook) {
        hook(ctx, owner, what, site);
        return;
    }
    if (site)
        fprintf(stderr, "ursa: %s ended holding a %s acquired at %s:%d (%s)\n", owner, what,
                site->file, site->line, site->func);
    else
        fprintf(stderr, "ursa: %s ended holding a %s\n", owner, what);
}

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
        report(owner, r.kind->name, r.site);
        r.kind->release_leaked(r.target, r.n);
        n++;
    }
    ursa__ledger_fini(l);
    if (n && atomic_load_explicit(&abort_on_leak, memory_order_relaxed)) {
        fprintf(stderr, "ursa: aborting after %zu leaked hold(s)\n", n);
        abort();
    }
    return n;
}

void ursa__report(const char *what, const ursa_site_t *site, bool fatal)
{
    const char *owner = ursa__ctx()->name;
    pthread_mutex_lock(&hook_lock);
    ursa_leak_hook_t hook = leak_hook;
    void *ctx = leak_hook_ctx;
    pthread_mutex_unlock(&hook_lock);
    if (hook)
        hook(ctx, owner, what, site);
    else if (site)
        fprintf(stderr, "ursa: %s: %s at %s:%d (%s)\n", owner, what, site->file, site->line,
                site->func);
    else
        fprintf(stderr, "ursa: %s: %s\n", owner, what);
    if (fatal && atomic_load_explicit(&abort_on_leak, memory_order_relaxed))
        abort();
}

size_t ursa_held_count(void)
{
    return ursa__ctx()->ledger.count;
}

int ursa_oblig_disown(ursa_oblig_t *ob)
{
    if (!ob || !ob->kind || !ob->ledger)
        return -EINVAL;
    ursa__ledger_t *l = &ursa__ctx()->ledger;
    if (ob->ledger != l)
        return -EPERM;
    ursa__ledger_remove(l, ob);
    ob->ledger = NULL;
    return 0;
}

int ursa_oblig_adopt(ursa_oblig_t *ob)
{
    if (!ob || !ob->kind || ob->ledger)
        return -EINVAL;
    return ursa__ledger_enter(&ursa__ctx()->ledger, ob);
}
