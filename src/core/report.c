#include "report.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

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

static bool aborts(void)
{
    /* relaxed: a configuration flag, no data depends on it. */
    return atomic_load_explicit(&abort_on_leak, memory_order_relaxed);
}

/* Hands the report to the user's hook: true, or false if there is none. */
static bool to_hook(const char *owner, const char *what, const ursa_site_t *site)
{
    pthread_mutex_lock(&hook_lock);
    ursa_leak_hook_t hook = leak_hook;
    void *ctx = leak_hook_ctx;
    pthread_mutex_unlock(&hook_lock);
    if (!hook)
        return false;
    hook(ctx, owner, what, site);
    return true;
}

void ursa__report_leak(const char *owner, const char *what, const ursa_site_t *site)
{
    if (to_hook(owner, what, site))
        return;
    if (site)
        fprintf(stderr, "ursa: %s ended holding a %s acquired at %s:%d (%s)\n", owner, what,
                site->file, site->line, site->func);
    else
        fprintf(stderr, "ursa: %s ended holding a %s\n", owner, what);
}

void ursa__report_leaks_end(size_t n)
{
    if (n && aborts()) {
        fprintf(stderr, "ursa: aborting after %zu leaked hold(s)\n", n);
        abort();
    }
}

void ursa__report_as(const char *owner, const char *what, const ursa_site_t *site, bool fatal)
{
    if (!to_hook(owner, what, site)) {
        if (site)
            fprintf(stderr, "ursa: %s: %s at %s:%d (%s)\n", owner, what, site->file,
                    site->line, site->func);
        else
            fprintf(stderr, "ursa: %s: %s\n", owner, what);
    }
    if (fatal && aborts())
        abort();
}
