/* The current wait context: who is calling, and how it blocks.
 *
 * Primitives never know whether their caller is a task or a plain thread.
 * They ask ursa__ctx() for the caller's waker, its obligation ledger and a
 * block() that returns once a wait node is done, its deadline passed or the
 * caller was cancelled. The runtime installs a task's context when it
 * switches to that task; otherwise the thread's own context (a futex
 * parker) is used. */
#ifndef URSA_CORE_CTX_H
#define URSA_CORE_CTX_H

#include "oblig.h"
#include "park.h"
#include "report.h"
#include "spin.h"
#include "waitq.h"

#include "ursa/detail/ctx.h" /* struct ursa__ctx, ursa__cur_ctx */

typedef struct ursa__ctx_ops {
    /* Returns 0 once ursa__wait_is_done(w), or -ETIMEDOUT / -ECANCELED
     * (then the caller withdraws w from its primitive). site: the waiting
     * call's, for deadlock reports. */
    int (*block)(ursa__ctx_t *c, ursa__waiter_t *w, ursa_time_t deadline,
                 const ursa_site_t *site);
    /* For a caller that polls: lets others run for a moment (a task
     * yields if its worker has another task ready; otherwise a few pauses
     * of s's budget (core/spin.h), or, once it is spent, the CPU is
     * yielded). 0, or -ECANCELED once the caller was cancelled. */
    int (*relax)(ursa__ctx_t *c, ursa__spinner_t *s);
} ursa__ctx_ops_t;

/* Pauses per relax() step that does not yield to another task. */
#define URSA__RELAX_PAUSES 2


/* Thread-local state and its TLS model. The pointers every call reads
 * (this one, ursa__tuid, the reader table, the worker: 40 bytes with
 * ctx.c's own; select's random state: 8 more) are initial-exec: one load off %fs (a GOT-relative offset
 * in the shared library, a constant in a static link), no call. That is
 * the cheapest model a shared library may use, and it is correct as long
 * as the static TLS block has room for them, which a library linked at
 * start-up always has and a dlopen'ed one finds in glibc's surplus
 * (rtld.optional_static_tls, 512 bytes by default): so they stay a few
 * words, and larger thread state (a plain thread's context) lives in the
 * default dynamic model, reached once per thread. Each public call looks
 * the context up once (ursa__cur_ctx, or ursa__ctx() where it may be the
 * first call on a thread) and passes it down.
 *
 * Set by the runtime on every switch; NULL until a thread first needs one. */
/* ursa__cur_ctx: declared in ursa/detail/ctx.h. */

ursa__ctx_t *ursa__thread_ctx(void);

/* A number that names the calling thread for the life of the process (never
 * reused, unlike a TLS address after the thread exits); never 0. */
extern __thread uint64_t ursa__tuid __attribute__((tls_model("initial-exec")));
uint64_t ursa__thread_uid_slow(void);

static inline uint64_t ursa__thread_uid(void)
{
    uint64_t u = ursa__tuid;
    return __builtin_expect(u != 0, 1) ? u : ursa__thread_uid_slow();
}

static inline ursa__ctx_t *ursa__ctx(void)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    return __builtin_expect(c != NULL, 1) ? c : ursa__thread_ctx();
}

static inline ursa_time_t ursa__ctx_now(ursa__ctx_t *c)
{
    return c->vclock ? *c->vclock : ursa__mono_now();
}

/* Reports a problem as the current task or thread (core/report.h): the
 * hook, or a line on stderr; `fatal` ones abort when leaks are configured
 * to. */
void ursa__report(const char *what, const ursa_site_t *site, bool fatal);

/* A misuse (double release, destroy while busy...): fatal. */
static inline void ursa__report_misuse(const char *what, const ursa_site_t *site)
{
    ursa__report(what, site, true);
}

/* Blocks the caller on a started wait with the usual deadline rules
 * (site: the waiting call's, for reports). */
static inline int ursa__ctx_block(ursa__ctx_t *c, ursa__waiter_t *w, ursa_time_t deadline,
                                  const ursa_site_t *site)
{
    if (ursa__wait_is_done(w))
        return 0;
    return c->ops->block(c, w, deadline, site);
}

#endif
