#include "oblig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

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

size_t ursa__ledger_sweep(ursa__ledger_t *l, const char *owner)
{
    size_t n = 0;
    while (l->head.next != &l->head) {
        ursa_oblig_t *ob = l->head.next;
        const ursa_oblig_kind_t *kind = ob->kind;
        report(owner, kind->name, ob->site);
        ursa__oblig_discharge(l, ob);
        ob->kind = kind; /* release_leaked needs to know it was held */
        kind->release_leaked(ob);
        n++;
    }
    if (n && atomic_load_explicit(&abort_on_leak, memory_order_relaxed)) {
        fprintf(stderr, "ursa: aborting after %zu leaked hold(s)\n", n);
        abort();
    }
    return n;
}

void ursa__report_misuse(const char *what, const ursa_site_t *site)
{
    const char *owner = ursa__ctx()->name;
    pthread_mutex_lock(&hook_lock);
    ursa_leak_hook_t hook = leak_hook;
    void *ctx = leak_hook_ctx;
    pthread_mutex_unlock(&hook_lock);
    if (hook)
        hook(ctx, owner, what, site);
    else
        fprintf(stderr, "ursa: misuse in %s: %s\n", owner, what);
    if (atomic_load_explicit(&abort_on_leak, memory_order_relaxed))
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
    ob->prev->next = ob->next;
    ob->next->prev = ob->prev;
    l->count--;
    ob->prev = ob->next = NULL;
    ob->ledger = NULL;
    return 0;
}

int ursa_oblig_adopt(ursa_oblig_t *ob)
{
    if (!ob || !ob->kind || ob->ledger)
        return -EINVAL;
    ursa__oblig_link(&ursa__ctx()->ledger, ob, ob->kind, ob->site);
    return 0;
}
