/* ursa — private layout of a mutex (ursa/mutex.h). Public only so that it
 * can be embedded: every field is private, read and written by
 * src/sync/mutex.c and mutex_bias.{h,c}. The inline helpers below are the
 * owner bias's fast paths (src/sync/mutex_bias.h says how the bias works),
 * for ursa/mutex.h and the library only; C only (C++ callers take the
 * out-of-line calls). */
#ifndef URSA_DETAIL_MUTEX_H
#define URSA_DETAIL_MUTEX_H

#include <stdbool.h>

#include "bias.h"
#include "lockinfo.h"
#include "sema.h"

struct ursa_mutex {
    ursa__sema_t sema;     /* one permit */
    URSA_ATOMIC(bool) poisoned; /* a holder ended without unlocking */
    ursa__lockinfo_t info; /* name, rank, metrics */
    /* Owner bias (src/sync/mutex_bias.h): while bias.on names the owner's
     * context, it holds the permit and locks with plain loads and stores. */
    ursa__bias_t bias;
    URSA_ATOMIC(uintptr_t) held; /* 0; the fast holder's guard; 1 while it leaves */
    uintptr_t owner;             /* the one context bias is turned on for; 0: none yet */
    ursa__bias_drain_t drain;
};

#include "ctx.h" /* the caller's context and ledger, for the inline paths */

#ifndef __cplusplus
#include <stdatomic.h>

/* `held` while the fast holder's unlock runs. */
#define URSA__MUTEX_LEAVING ((uintptr_t)1)

/* An unlock found a revoke under way (src/sync/mutex_bias.c). */
URSA_API void ursa__mutex_bias_drain(struct ursa_mutex *m);

/* Ends a fast hold (from any thread: a guard adopted elsewhere, a task
 * that moved, a leak sweep). */
static inline void ursa__mutex_bias_exit(struct ursa_mutex *m)
{
    /* relaxed: a revoke's barrier orders it against its look at held. */
    atomic_store_explicit(&m->held, URSA__MUTEX_LEAVING, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: only tells whether a revoke may be waiting for us. */
    if (__builtin_expect(atomic_load_explicit(&m->drain.state, memory_order_relaxed) !=
                             URSA__BIAS_IDLE,
                         0)) {
        ursa__mutex_bias_drain(m);
        return;
    }
    /* release: the critical section happens-before the next fast lock
     * (its acquire of held) and a revoker's settle. */
    atomic_store_explicit(&m->held, 0, memory_order_release);
}

/* c's fast lock through guard g: 1 (held; the caller records it), 0 (not
 * biased for c, or held: take the semaphore's path), -1 (revoked while we
 * looked: the caller backs out with ursa__mutex_bias_exit, then takes the
 * semaphore's path; out of line, so the fast path needs no frame). */
static inline int ursa__mutex_bias_enter(struct ursa_mutex *m, ursa__ctx_t *c, const void *g)
{
    /* relaxed: only c turns bias on for c, before this call in program
     * order; a revoke's store is caught by the check after the fence.
     * acquire (held): a fast hold unlocked on another thread (adopted
     * guard, moved task) released its critical section with the 0. */
    if (atomic_load_explicit(&m->bias.on, memory_order_relaxed) != (uintptr_t)c ||
        atomic_load_explicit(&m->held, memory_order_acquire) != 0)
        return 0;
    /* relaxed: a revoke's barrier orders it against its look at held
     * (src/core/bias.h). */
    atomic_store_explicit(&m->held, (uintptr_t)g, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the barrier is the CPU half */
    /* relaxed: as the first load. */
    return __builtin_expect(atomic_load_explicit(&m->bias.on, memory_order_relaxed) ==
                                (uintptr_t)c,
                            1)
               ? 1
               : -1;
}
#endif

#endif
