/* Tasks: the descriptor, its wake state and join slot; spawn, park and
 * wake, blocking on a wait node; the per-worker descriptor pool. */
#ifndef URSA_RT_TASK_H
#define URSA_RT_TASK_H

#include <stdatomic.h>

#include "../core/ctx.h"
#include "sanitizer.h"
#include "stack.h"
#include "ursa/rt.h"

typedef struct ursa__worker ursa__worker_t;

#define URSA__NO_OWNER UINT16_MAX

/* Task wake state (wstate). */
enum { URSA__T_RUNNING = 0, URSA__T_NOTIFIED = 1, URSA__T_PARKED = 2 };
/* Join slot (joiner): NULL, a joiner's wait node, or one of these. */
#define URSA__JOIN_DONE ((ursa__waiter_t *)1)
#define URSA__JOIN_DETACHED ((ursa__waiter_t *)2)

/* What a task blocked on a waiter waits on: kept in the blocking call's
 * frame on the task's stack (the site is not on the waiter). */
typedef struct ursa__task_blocked {
    const ursa__waiter_t *node;
    const ursa_site_t *site;
} ursa__task_blocked_t;

/* A task's descriptor: what a parked task needs, and little more (its
 * ledger's records and wait node live on its stack, its deadline in the
 * timer heap). Ordered so that no field pads. */
struct ursa_task {
    ursa__ctx_t ctx; /* first: ursa__cur_ctx points here while it runs */
    void *sp;        /* saved stack pointer while switched out */
    void *stack;     /* its stack's top (stack.h): NULL until first run, and again once done */
    ursa__worker_t *worker; /* the worker it runs (or is queued) on */
    union {
        struct { /* until it starts */
            ursa_task_fn_t fn;
            void *arg;
        };
        void *result; /* once it returned */
    };
    struct ursa_task *rq_next;             /* run queue, inbox or inject link */
    struct ursa_task *all_prev, *all_next; /* the owner's live tasks */
    /* The completer's exchange to JOIN_DONE is its last touch of the task
     * (a group member's slot never says JOIN_DONE: see group_member). */
    _Atomic(ursa__waiter_t *) joiner;
    /* What it waits on, for deadlock reports: the waiter it is blocked on
     * and the call's site (a record in its blocking frame, alive while it
     * waits), or NULL and wait_kind says (URSA_WAIT_SLEEP, _IO, _NONE). */
    const ursa__task_blocked_t *blocked;
    _Atomic uint32_t wstate; /* RUNNING / NOTIFIED / PARKED */
    _Atomic uint32_t cancel; /* cancellation requested */
    /* The one deadline a task can wait for at a time: its entry in the
     * timer heap it was armed in, or URSA__TIMER_NONE / _SPILLED
     * (rt/timer.h), under that heap's lock. */
    uint32_t timer_idx;
    /* The worker whose live list holds it (the spawning one, or the first
     * to run a task spawned from outside), or URSA__NO_OWNER. */
    uint16_t owner;
    uint8_t wait_kind;
    uint8_t placement; /* ursa_placement_t */
    bool finished;     /* fn returned; set on the task's own stack */
    bool no_stack;     /* it ended without running: no memory for a stack */
    bool migratable;   /* may resume on another worker at a wait point */
    bool io_busy;      /* an I/O op in flight on its worker's ring: stays */
    /* A group's member (rt/group.c): its join slot holds the group's
     * waiter for good, and its end decides that waiter in place. */
    bool group_member;
#if defined(URSA__ASAN)
    void *asan_fake;
#endif
#if defined(URSA__TSAN)
    void *tsan_fiber;
#endif
    ursa__worker_t *home; /* whose descriptor pool it came from, or NULL */
    /* The token it is bound to (rt/token.c), or NULL; its links in that
     * token's list of bound tasks, under the token's lock. */
    struct ursa_token *token;
    struct ursa_task *tok_prev, *tok_next;
    char name[URSA_TASK_NAME_MAX + 1];
};

/* A new task of rt that will run fn(arg) on worker w (not queued yet),
 * spawned from worker cur (the calling thread's, if it is one of rt's, else
 * NULL): NULL without memory. */
ursa_task_t *ursa__task_new(ursa_rt_t *rt, ursa__worker_t *cur, ursa__worker_t *w,
                            ursa_task_fn_t fn, void *arg, const ursa_spawn_opts_t *opts);
/* The task ended (its function returned, or it never got a stack) and its
 * worker let go of it: hands it to its joiner, or frees it if detached. */
void ursa__task_done(ursa_task_t *t);

/* ursa_rt_spawn (rt NULL: the caller's runtime, as ursa_spawn) that calls
 * prep(t, ctx) on the new task before it is queued, while nothing else can
 * see it (rt/token.c binds it, rt/group.c also takes its joiner slot). */
int ursa__spawn_prep(ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                     const ursa_spawn_opts_t *opts, void (*prep)(ursa_task_t *t, void *ctx),
                     void *ctx);

/* Makes t runnable (a waker function: ctx = task); any thread. */
void ursa__task_wake(void *task);
/* Suspends the current task until woken (returns at once if a wake is
 * pending). */
void ursa__task_park(ursa_task_t *t);
/* Parks the current task t while *flag == pending, until the deadline, or
 * until cancelled: 0, -ETIMEDOUT, -ECANCELED. flag == NULL: until the
 * deadline or cancel. */
int ursa__task_wait(ursa_task_t *t, const _Atomic uint32_t *flag, uint32_t pending,
                    ursa_time_t deadline);

/* Task descriptors come from the current worker's pool (chunks of
 * URSA__TASK_CHUNK, retained until the runtime is freed, like Go's g
 * structs), so bursts of spawns don't page-fault freshly trimmed heap each
 * time. cur == NULL: plain malloc. */
ursa_task_t *ursa__task_alloc(ursa__worker_t *cur);
void ursa__task_free(ursa_task_t *t);
void ursa__task_pool_drain(ursa__worker_t *w);
/* Frees the descriptors from malloc that were never freed (tasks never
 * joined): the runtime is going away. */
void ursa__task_free_loose(ursa_rt_t *rt);

/* Pushes t on a lock-free LIFO of tasks linked through rq_next (a worker's
 * inbox, its pool's remote frees); the one consumer takes the whole list
 * with an acquire exchange (so no ABA). */
static inline void ursa__task_lifo_push(_Atomic(ursa_task_t *) *head, ursa_task_t *t)
{
    /* relaxed: the CAS below re-reads it. */
    ursa_task_t *h = atomic_load_explicit(head, memory_order_relaxed);
    do {
        t->rq_next = h;
        /* release: our writes before the push (the task's state, a waker's
         * writes, our last use of a freed descriptor) are visible to the
         * consumer's acquire exchange. */
    } while (!atomic_compare_exchange_weak_explicit(head, &h, t, memory_order_release,
                                                    memory_order_relaxed));
}

#endif
