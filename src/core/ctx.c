/* The wait context: a plain thread's own, and what every context offers
 * the public API (the caller's clock, ledger and reports). */
#include "ctx.h"

#include <pthread.h>

#include "spin.h"
#include "waitq.h"

__thread ursa__ctx_t *ursa__cur_ctx __attribute__((tls_model("initial-exec")));
__thread uint64_t ursa__tuid __attribute__((tls_model("initial-exec")));

uint64_t ursa__thread_uid_slow(void)
{
    static _Atomic uint64_t next = 1;
    /* relaxed: only uniqueness matters. */
    ursa__tuid = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    return ursa__tuid;
}

/* ---- a plain thread's context: a futex parker, a ledger swept at exit ---- */

typedef struct thread_ctx {
    ursa__ctx_t c;
    ursa__parker_t parker;
    ursa__ledger_rec_t first_recs[URSA__LEDGER_INLINE];
    bool ready;
} thread_ctx_t;

/* The context itself in the default (dynamic) TLS model: it is touched
 * once per thread, and keeps ~150 bytes out of the static TLS that a
 * dlopen'ed libursa must find room for. The hot path reaches it through
 * the one initial-exec pointer below (TLS model: src/core/ctx.h). */
static __thread thread_ctx_t thread_ctx;
static __thread thread_ctx_t *thread_ctx_ptr __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static int thread_block(ursa__ctx_t *c, ursa__waiter_t *w, ursa_time_t deadline,
                        const ursa_site_t *site)
{
    (void)site;
    thread_ctx_t *t = (thread_ctx_t *)c;
    while (!ursa__wait_is_decided(w)) {
        if (deadline != URSA_NEVER && ursa__mono_now() >= deadline)
            return -ETIMEDOUT;
        ursa__park(&t->parker, deadline);
    }
    ursa__wait_settle(w);
    return 0;
}

static int thread_relax(ursa__ctx_t *c, ursa__spinner_t *s)
{
    (void)c;
    if (!ursa__spin_pause_n(s, URSA__RELAX_PAUSES))
        sched_yield();
    return 0;
}

static const ursa__ctx_ops_t thread_ops = {.block = thread_block, .relax = thread_relax};

static void thread_exit(void *p)
{
    thread_ctx_t *t = p;
    ursa__ledger_sweep(&t->c.ledger, "thread");
    /* Still usable by later thread-exit code, without allocating. */
    ursa__ledger_init(&t->c.ledger, t->first_recs);
}

static void make_key(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

static __attribute__((noinline)) thread_ctx_t *thread_ctx_setup(void)
{
    thread_ctx_t *t = &thread_ctx;
    if (!t->ready) {
        t->c.ops = &thread_ops;
        t->c.waker = (ursa_waker_t){ursa__unpark, &t->parker};
        ursa__ledger_init(&t->c.ledger, t->first_recs);
        t->c.vclock = NULL;
        t->c.name = "thread";
        atomic_init(&t->parker.word, 0);
        pthread_once(&exit_once, make_key);
        pthread_setspecific(exit_key, t);
        t->ready = true;
    }
    thread_ctx_ptr = t;
    return t;
}

ursa__ctx_t *ursa__thread_ctx(void)
{
    thread_ctx_t *t = thread_ctx_ptr;
    if (__builtin_expect(!t, 0))
        t = thread_ctx_setup();
    ursa__cur_ctx = &t->c;
    return &t->c;
}

/* ---- the caller's clock (include/ursa/base.h) ---- */

ursa_time_t ursa_now(void)
{
    /* Not ursa__ctx(): asking the time makes no thread context. */
    ursa__ctx_t *c = ursa__cur_ctx;
    return c ? ursa__ctx_now(c) : ursa__mono_now();
}

ursa_time_t ursa_deadline_in(ursa_time_t ns)
{
    ursa_time_t now = ursa_now();
    if (ns <= 0)
        return now; /* already expired; never URSA_NOW (clocks start above 0) */
    return ns > URSA_NEVER - now ? URSA_NEVER : now + ns;
}

/* ---- reports, as the caller ---- */

void ursa__report(const char *what, const ursa_site_t *site, bool fatal)
{
    ursa__report_as(ursa__ctx()->name, what, site, fatal);
}

/* ---- the caller's ledger (include/ursa/oblig.h) ---- */

size_t ursa_held_count(void)
{
    return ursa__ledger_count(&ursa__ctx()->ledger);
}

int ursa_oblig_disown(ursa_oblig_t *ob)
{
    if (!ob || !ob->kind || !ob->ledger)
        return -EINVAL;
    ursa__ledger_t *l = &ursa__ctx()->ledger;
    if (ob->ledger != l)
        return -EPERM;
    /* The record goes: the hold carries what it said until adopted. */
    ob->target = l->recs[ob->slot].target;
    ob->n = l->recs[ob->slot].n;
    ursa__ledger_remove(l, ob);
    ob->ledger = NULL;
    return 0;
}

int ursa_oblig_adopt(ursa_oblig_t *ob)
{
    if (!ob || !ob->kind || ob->ledger)
        return -EINVAL;
    return ursa__ledger_enter(&ursa__ctx()->ledger, ob, ob->kind, ob->site, ob->target, ob->n,
                              NULL);
}

int ursa_oblig_enter(ursa_oblig_t *ob, const ursa_oblig_kind_t *kind, void *target, uint64_t n,
                     const ursa_site_t *site)
{
    if (!ob || !kind || !kind->name || !kind->release_leaked || ob->kind)
        return -EINVAL;
    int rc = ursa__oblig_take(&ursa__ctx()->ledger, ob, kind, site, target, n);
    ob->user = rc == 0;
    return rc;
}

int ursa_oblig_discharge(ursa_oblig_t *ob)
{
    if (!ob)
        return -EINVAL;
    if (ob->kind && !ob->user)
        return -EINVAL; /* a mutex guard's (...) own release must run */
    int rc = ursa__oblig_discharge(&ursa__ctx()->ledger, ob);
    if (rc == -EINVAL)
        ursa__report_misuse("hold discharged twice (or never entered)", NULL);
    else if (rc == 0)
        ob->user = 0;
    return rc;
}
