/* The deadlock report (rt/deadlock.h). Each waiting task gets a line: what
 * it waits on, named when it can be (a lock's name, a joined task's name),
 * and where it started waiting; under it, each task of this worker whose
 * ledger holds that object, with where it took it. Tasks of other workers
 * are left out: their ledgers belong to other threads. */
#include "deadlock.h"

#include <stddef.h>
#include <stdio.h>

#include "runtime.h"
#include "task.h"
#include "ursa/mutex.h"
#include "ursa/rwlock.h"
#include "worker.h"

/* A wait node's owner is the primitive's ursa__sema_t, which is where the
 * lock starts, so the lock (and its name) is found from it. */
_Static_assert(offsetof(ursa_mutex_t, sema) == 0, "mutex: sema first");
_Static_assert(offsetof(ursa_rwlock_t, sema) == 0, "rwlock: sema first");

static const char *kind_noun(uint32_t k)
{
    switch (k) {
    case URSA_WAIT_MUTEX: return "mutex";
    case URSA_WAIT_SEMAPHORE: return "semaphore";
    case URSA_WAIT_JOIN: return "join of task";
    case URSA_WAIT_SLEEP: return "sleep";
    case URSA_WAIT_IO: return "io";
    case URSA_WAIT_RWLOCK_READ:
    case URSA_WAIT_RWLOCK_WRITE: return "rwlock";
    case URSA_WAIT_NOTIFY: return "notify";
    case URSA_WAIT_BARRIER: return "barrier";
    case URSA_WAIT_ONCE: return "once cell";
    case URSA_WAIT_EVENT: return "event";
    case URSA_WAIT_CHANNEL: return "channel";
    case URSA_WAIT_POOL: return "pool";
    case URSA_WAIT_NONE: return "nothing (parked)";
    default: return "wait";
    }
}

/* The name given to the object waited on, or NULL. */
static const char *obj_name(uint32_t k, const void *obj)
{
    if (!obj)
        return NULL;
    switch (k) {
    case URSA_WAIT_MUTEX: return ((const ursa_mutex_t *)obj)->info.name;
    case URSA_WAIT_RWLOCK_READ:
    case URSA_WAIT_RWLOCK_WRITE: return ((const ursa_rwlock_t *)obj)->info.name;
    case URSA_WAIT_JOIN: return ((const ursa_task_t *)obj)->name;
    default: return NULL;
    }
}

/* "mutex 'alpha'", "semaphore 0x...", "join of task 'worker'", "sleep". */
static void describe(char *buf, size_t len, uint32_t k, const void *obj)
{
    const char *name = obj_name(k, obj);
    if (name)
        snprintf(buf, len, "%s '%s'", kind_noun(k), name);
    else if (obj)
        snprintf(buf, len, "%s %p", kind_noun(k), obj);
    else
        snprintf(buf, len, "%s", kind_noun(k));
}

/* " <how> at file:line (func)", if the site is known. */
static void print_site(const char *how, const ursa_site_t *site)
{
    if (site)
        fprintf(stderr, "%s at %s:%d (%s)", how, site->file, site->line, site->func);
}

/* Every hold on obj in the ledgers of w's tasks; `counted`: say how many
 * permits each holds (a semaphore; a lock's count is an inner detail). */
static void print_holders(ursa__worker_t *w, const char *what, const void *obj, bool counted)
{
    for (ursa_task_t *u = w->all; u; u = u->all_next) {
        const ursa__ledger_t *l = &u->ctx.ledger;
        for (uint32_t i = 0; i < l->top; i++) {
            const ursa__ledger_rec_t *r = &l->recs[i];
            if (!ursa__ledger_rec_used(r) || r->target != obj)
                continue;
            fprintf(stderr, "    %s is held by task '%s' (%s", what, u->name, ursa__ledger_rec_kind(r)->name);
            if (counted)
                fprintf(stderr, " for %llu", (unsigned long long)r->n);
            print_site(" taken", r->site);
            fputs(")\n", stderr);
        }
    }
}

void ursa__deadlock_report(ursa__worker_t *w)
{
    if (w->rt->cfg.deterministic)
        fprintf(stderr, "ursa: deadlock: every task waits and nothing can wake them\n");
    else
        fprintf(stderr,
                "ursa: possible deadlock on worker %d: every task has waited %.1f s with no "
                "timer or I/O pending (only a plain thread could still wake them)\n",
                w->index, (double)w->rt->cfg.deadlock_report_after / 1e9);
    for (ursa_task_t *t = w->all; t; t = t->all_next) {
        /* Blocked on a waiter (the record on its stack, alive while it
         * waits): the waiter says what, the record where; otherwise
         * wait_kind alone. */
        const ursa__task_blocked_t *b = t->blocked;
        const ursa__waiter_t *n = b ? b->node : NULL;
        uint32_t kind = !n ? t->wait_kind : n->ops ? n->ops->kind : URSA_WAIT_OTHER;
        const void *obj = n ? n->owner : NULL;
        char what[96];
        describe(what, sizeof what, kind, obj);
        fprintf(stderr, "  task '%s' waits on %s", t->name, what);
        if (kind == URSA_WAIT_RWLOCK_READ || kind == URSA_WAIT_RWLOCK_WRITE)
            fputs(kind == URSA_WAIT_RWLOCK_READ ? " to read" : " to write", stderr);
        print_site("", b ? b->site : NULL);
        fputc('\n', stderr);
        if (obj && kind != URSA_WAIT_JOIN)
            print_holders(w, what, obj, kind == URSA_WAIT_SEMAPHORE);
    }
}
