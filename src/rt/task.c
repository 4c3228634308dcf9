/* Tasks: descriptors and their pool, spawn, join, detach, cancel, yield,
 * sleep; park and wake; how a task blocks on a wait node. */
#include "task.h"

#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/membarrier.h"
#include "../core/waitq.h"
#include "runtime.h"
#include "timer.h"
#include "token.h"
#include "worker.h"

/* Descriptors per pool chunk. */
#define URSA__TASK_CHUNK 64

static ursa_task_t *cur_task(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w ? w->current : NULL;
}

/* ---- the wake bias ----
 *
 * A task's wake state takes an RMW on each side of every wake (the waker's
 * and the parker's), because a wake may come from any thread. On a worker
 * alone in its runtime nearly every wake comes from the worker's own
 * thread (a task waking another, a timer, a completion), so such a worker
 * starts biased: while the bias holds, the wake state of a task from its
 * descriptor pool (t->home, which never changes) is changed by that thread
 * alone, with plain loads and stores. The first wake of one of them from
 * another thread revokes the bias for good, by the asymmetric Dekker of
 * the channels' send bias (chan/mpsc/send_bias.c): the owner stores
 * wbias_busy = 1, then checks the bias; the revoker marks it revoking,
 * runs membarrier, waits for wbias_busy == 0 (the owner's change in
 * flight, a few instructions), ends the bias, then takes the RMW path like
 * everyone. Descriptors from malloc (spawned from outside the runtime, or
 * in ASan builds) are never biased. */

/* The owner of t's bias starts a change of t's wake state on its own
 * thread: true if the bias holds (plain loads and stores; bias_leave
 * after), false to take the RMW path. */
static inline bool bias_enter(ursa__worker_t *w)
{
    /* relaxed: a first look, so that an unbiased worker (several in the
     * runtime, or revoked) stores nothing. */
    if (atomic_load_explicit(&w->wbias, memory_order_relaxed) != 1)
        return false;
    /* relaxed: ordered against a revoker's check by its membarrier. */
    atomic_store_explicit(&w->wbias_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the membarrier is the CPU half */
    /* relaxed: as above; only the revoker changes it. */
    if (__builtin_expect(atomic_load_explicit(&w->wbias, memory_order_relaxed) == 1, 1))
        return true;
    /* release: the revoker may read this 0 rather than our last
     * bias_leave's; it must see our plain changes all the same. */
    atomic_store_explicit(&w->wbias_busy, 0, memory_order_release);
    return false;
}

static inline void bias_leave(ursa__worker_t *w)
{
    /* release: the revoker that sees 0 sees the states we stored. */
    atomic_store_explicit(&w->wbias_busy, 0, memory_order_release);
}

/* Another thread is about to change the wake state of a task of w's pool:
 * ends w's bias first (whoever revokes, it is over when this returns). */
static __attribute__((noinline)) void bias_revoke(ursa__worker_t *w)
{
    uint32_t b = 1;
    /* acquire: on failure, a revoke that ended (0) published the owner's
     * last plain changes (its release below); on success, the membarrier
     * orders our mark against the owner's check. */
    if (atomic_compare_exchange_strong_explicit(&w->wbias, &b, URSA__WBIAS_REVOKING,
                                                memory_order_acquire, memory_order_acquire)) {
        ursa__membarrier();
        ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_REVOKE);
        /* acquire: the owner's plain changes before it left. */
        while (atomic_load_explicit(&w->wbias_busy, memory_order_acquire))
            ursa__spin_backoff(&sp);
        ursa__spin_end(&sp);
        /* release: a concurrent revoker waiting below sees them too. */
        atomic_store_explicit(&w->wbias, 0, memory_order_release);
        return;
    }
    ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_REVOKE);
    /* acquire: pairs with the release above. */
    while (b != 0) {
        ursa__spin_backoff(&sp);
        b = atomic_load_explicit(&w->wbias, memory_order_acquire);
    }
    ursa__spin_end(&sp);
}

/* ---- waking and parking ---- */

/* ursa__task_wake off the bias: by RMWs, from any thread. */
static __attribute__((noinline)) void wake_shared(ursa_task_t *t)
{
    ursa__worker_t *home = t->home;
    if (home && home != ursa__cur_worker &&
        __builtin_expect(atomic_load_explicit(&home->wbias, memory_order_acquire), 0))
        /* Not 0: revoke (or wait for the revoke under way) first. acquire:
         * 0 was stored by the revoke that carries the owner's last plain
         * changes. */
        bias_revoke(home);
    /* relaxed: the CASes below validate it. */
    uint32_t s = atomic_load_explicit(&t->wstate, memory_order_relaxed);
    for (;;) {
        if (s == URSA__T_PARKED) {
            /* acq_rel: we own the enqueue; our prior writes travel with it. */
            if (atomic_compare_exchange_weak_explicit(&t->wstate, &s, URSA__T_RUNNING,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                ursa__worker_wake(t);
                return;
            }
        } else if (s == URSA__T_RUNNING) {
            /* release: the task sees our writes when it consumes NOTIFIED. */
            if (atomic_compare_exchange_weak_explicit(&t->wstate, &s, URSA__T_NOTIFIED,
                                                      memory_order_release, memory_order_relaxed))
                return;
        } else {
            /* Already notified: still an RMW, so that a parker clearing the
             * stale notification (an RMW too) is ordered with us — either
             * it reads our release (and then sees what we published), or
             * we read its RUNNING and set NOTIFIED again. A plain return
             * here lost wakes (store-buffer race; regression: the watch
             * and oneshot stress tests). acq_rel as above. */
            if (atomic_compare_exchange_weak_explicit(&t->wstate, &s, URSA__T_NOTIFIED,
                                                      memory_order_acq_rel, memory_order_relaxed))
                return;
        }
    }
}

void ursa__task_wake(void *p)
{
    ursa_task_t *t = p;
    ursa__worker_t *home = t->home;
    /* On the thread of the worker whose bias covers t, while it holds. */
    if (home && home == ursa__cur_worker && bias_enter(home)) {
        /* relaxed: while the bias holds only this thread changes it. */
        uint32_t s = atomic_load_explicit(&t->wstate, memory_order_relaxed);
        if (s == URSA__T_PARKED) {
            atomic_store_explicit(&t->wstate, URSA__T_RUNNING, memory_order_relaxed);
            bias_leave(home);
            ursa__worker_wake(t);
            return;
        }
        if (s == URSA__T_RUNNING)
            atomic_store_explicit(&t->wstate, URSA__T_NOTIFIED, memory_order_relaxed);
        bias_leave(home);
        return;
    }
    wake_shared(t); /* a tail call: the biased path needs no stack frame */
}

static inline __attribute__((always_inline)) void park(ursa_task_t *t)
{
    if (t->migratable) {
        /* A waker may move us to its own worker and resume us there: so
         * RUNNING -> PARKED happens on the other side of the switch, once
         * our stack is free (worker.c after_switch). A wake already
         * pending is consumed here. relaxed: the exchange acquires; a
         * NOTIFIED missed here is seen after the switch. */
        if (atomic_load_explicit(&t->wstate, memory_order_relaxed) != URSA__T_NOTIFIED) {
            ursa__worker_switch_out(t, URSA__AFTER_PARK);
            return;
        }
    } else {
        /* Only our own worker ever resumes us, after this switch. */
        ursa__worker_t *w = t->worker;
        if (t->home == w && bias_enter(w)) {
            /* relaxed: while the bias holds only this thread changes it. */
            if (atomic_load_explicit(&t->wstate, memory_order_relaxed) == URSA__T_NOTIFIED) {
                atomic_store_explicit(&t->wstate, URSA__T_RUNNING, memory_order_relaxed);
                bias_leave(w);
                return; /* consumed */
            }
            atomic_store_explicit(&t->wstate, URSA__T_PARKED, memory_order_relaxed);
            bias_leave(w);
            ursa__worker_switch_out(t, URSA__AFTER_NONE);
            return;
        }
        uint32_t s = URSA__T_RUNNING;
        /* acquire on failure: consuming NOTIFIED makes the waker's writes
         * visible. */
        if (atomic_compare_exchange_strong_explicit(&t->wstate, &s, URSA__T_PARKED,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            ursa__worker_switch_out(t, URSA__AFTER_NONE);
            return;
        }
    }
    /* Consume the notification with an RMW (see ursa__task_wake): a plain
     * store could pass a concurrent waker's check unseen while our caller's
     * re-check of its condition reads a stale value. acq_rel: the waker's
     * writes are visible. */
    atomic_exchange_explicit(&t->wstate, URSA__T_RUNNING, memory_order_acq_rel);
}

void ursa__task_park(ursa_task_t *t)
{
    park(t);
}

/* ---- blocking a task on a wait node ---- */

static int task_relax(ursa__ctx_t *c, ursa__spinner_t *s)
{
    ursa_task_t *t = (ursa_task_t *)c;
    /* The kicks this turn deferred go out before we busy-wait: the worker
     * they wake may be the party we wait for. */
    ursa__worker_turn_end(t->worker);
    if (ursa__worker_has_work(t->worker) || ursa__worker_neighbour_has_work(t->worker)) {
        ursa__worker_yield(t);
    } else if (!ursa__spin_pause_n(s, URSA__RELAX_PAUSES)) {
        sched_yield();
    }
    /* relaxed: a hint, as in ursa__task_wait. */
    return atomic_load_explicit(&t->cancel, memory_order_relaxed) ? -ECANCELED : 0;
}

/* ursa__task_wait without a deadline (and with a flag): the common wait,
 * kept short and inlined into task_block. */
static inline int wait_untimed(ursa_task_t *t, const _Atomic uint32_t *flag, uint32_t pending)
{
    int rc = 0;
    /* acquire: the completer's writes before it changed *flag. */
    while (atomic_load_explicit(flag, memory_order_acquire) == pending) {
        /* relaxed: cancel is a hint re-checked after every wake. */
        if (atomic_load_explicit(&t->cancel, memory_order_relaxed)) {
            rc = -ECANCELED;
            break;
        }
        park(t);
    }
    t->blocked = NULL;
    t->wait_kind = URSA_WAIT_NONE;
    return rc;
}

/* ursa__task_wait with a deadline (or without a flag). */
static __attribute__((noinline)) int wait_timed(ursa_task_t *t, const _Atomic uint32_t *flag,
                                                uint32_t pending, ursa_time_t deadline)
{
    int rc = 0;
    ursa__timers_t *armed = NULL; /* the heap of the worker we armed on */
    ursa__timer_spill_t spill_room; /* where the timer waits if the heap is full */
    /* acquire: the completer's writes before it changed *flag are visible. */
    while (!flag || atomic_load_explicit(flag, memory_order_acquire) == pending) {
        /* relaxed: cancel is a hint re-checked after every wake. */
        if (atomic_load_explicit(&t->cancel, memory_order_relaxed)) {
            rc = -ECANCELED;
            break;
        }
        if (deadline != URSA_NEVER) {
            ursa__worker_t *w = t->worker; /* re-read: a migratable task moves */
            if (ursa__worker_now(w) >= deadline) {
                rc = -ETIMEDOUT;
                break;
            }
            if (!armed) {
                armed = &w->timers;
                ursa__timer_arm(armed, t, deadline, &spill_room);
            }
        }
        park(t);
    }
    if (armed)
        ursa__timer_disarm(armed, t);
    t->blocked = NULL;
    t->wait_kind = URSA_WAIT_NONE;
    return rc;
}

int ursa__task_wait(ursa_task_t *t, const _Atomic uint32_t *flag, uint32_t pending,
                    ursa_time_t deadline)
{
    if (deadline == URSA_NEVER && flag)
        return wait_untimed(t, flag, pending);
    return wait_timed(t, flag, pending, deadline);
}

static int task_block(ursa__ctx_t *c, ursa__waiter_t *wt, ursa_time_t deadline,
                      const ursa_site_t *site)
{
    ursa_task_t *t = (ursa_task_t *)c;
    ursa__task_blocked_t blocked = {wt, site};
    t->blocked = &blocked;
    /* The waits themselves, not ursa__task_wait: one frame less between a
     * wait and the switch (every task-to-task wake passes here twice). */
    int rc = deadline == URSA_NEVER ? wait_untimed(t, &wt->state, URSA__W_QUEUED)
                                    : wait_timed(t, &wt->state, URSA__W_QUEUED, deadline);
    if (rc == 0)
        ursa__wait_settle(wt);
    return rc;
}

static const ursa__ctx_ops_t task_ops = {.block = task_block, .relax = task_relax};

/* ---- descriptor pool ---- */

typedef struct task_chunk {
    struct task_chunk *next;
    ursa_task_t tasks[URSA__TASK_CHUNK];
} task_chunk_t;

/* A descriptor from malloc (home == NULL) carries its links in the
 * runtime's list of them in a header just before it, so that pooled
 * descriptors do not. */
typedef struct ursa__loose_task {
    struct ursa__loose_task *prev, *next;
    ursa_task_t task;
} loose_task_t;

static loose_task_t *loose_of(ursa_task_t *t)
{
    return (loose_task_t *)((char *)t - offsetof(loose_task_t, task));
}

ursa_task_t *ursa__task_alloc(ursa__worker_t *w)
{
#if defined(URSA__ASAN)
    w = NULL; /* plain malloc, so ASan sees use-after-join of a handle */
#endif
    if (!w) {
        loose_task_t *l = malloc(sizeof *l);
        if (!l)
            return NULL;
        l->task.home = NULL;
        return &l->task;
    }
    if (!w->task_free && atomic_load_explicit(&w->remote_free, memory_order_relaxed))
        /* acquire: the freeing thread's last writes happen-before reuse. */
        w->task_free = atomic_exchange_explicit(&w->remote_free, NULL, memory_order_acquire);
    if (!w->task_free) {
        task_chunk_t *c = malloc(sizeof *c);
        if (!c)
            return NULL;
        c->next = w->task_chunks;
        w->task_chunks = c;
        for (int i = URSA__TASK_CHUNK - 1; i >= 0; i--) {
            c->tasks[i].rq_next = w->task_free;
            c->tasks[i].home = w;
            w->task_free = &c->tasks[i];
        }
    }
    ursa_task_t *t = w->task_free;
    w->task_free = t->rq_next;
    return t;
}

/* A descriptor from malloc is listed in its runtime (any thread may spawn
 * or free one: under a lock, off the pool's fast path). */
static void loose_add(ursa_rt_t *rt, ursa_task_t *t)
{
    loose_task_t *l = loose_of(t);
    pthread_mutex_lock(&rt->loose_lock);
    l->prev = NULL;
    l->next = rt->loose;
    if (rt->loose)
        rt->loose->prev = l;
    rt->loose = l;
    pthread_mutex_unlock(&rt->loose_lock);
}

static void loose_remove(ursa_rt_t *rt, ursa_task_t *t)
{
    loose_task_t *l = loose_of(t);
    pthread_mutex_lock(&rt->loose_lock);
    if (l->prev)
        l->prev->next = l->next;
    else
        rt->loose = l->next;
    if (l->next)
        l->next->prev = l->prev;
    pthread_mutex_unlock(&rt->loose_lock);
}

void ursa__task_free_loose(ursa_rt_t *rt)
{
    pthread_mutex_lock(&rt->loose_lock);
    while (rt->loose) {
        loose_task_t *l = rt->loose;
        rt->loose = l->next;
        free(l);
    }
    pthread_mutex_unlock(&rt->loose_lock);
}

void ursa__task_free(ursa_task_t *t)
{
    ursa__worker_t *home = t->home;
    if (!home) {
        loose_remove(t->worker->rt, t);
        free(loose_of(t));
    } else if (home == ursa__cur_worker) {
        t->rq_next = home->task_free;
        home->task_free = t;
    } else {
        ursa__task_lifo_push(&home->remote_free, t);
    }
}

void ursa__task_pool_drain(ursa__worker_t *w)
{
    while (w->task_chunks) {
        task_chunk_t *c = w->task_chunks;
        w->task_chunks = c->next;
        free(c);
    }
    w->task_free = NULL;
    atomic_store_explicit(&w->remote_free, NULL, memory_order_relaxed);
}

/* ---- spawn ---- */

ursa_task_t *ursa__task_new(ursa_rt_t *rt, ursa__worker_t *cur, ursa__worker_t *w,
                            ursa_task_fn_t fn, void *arg, const ursa_spawn_opts_t *opts)
{
    ursa_task_t *t = ursa__task_alloc(cur);
    if (!t)
        return NULL;
    ursa__worker_t *home = t->home; /* set by the pool, NULL if malloc'd */
    memset(t, 0, sizeof *t);
    t->home = home;
    if (!home)
        loose_add(rt, t);
    t->ctx.ops = &task_ops;
    t->ctx.waker = (ursa_waker_t){ursa__task_wake, t};
    ursa__ledger_init(&t->ctx.ledger, NULL); /* records on its stack, once it has one */
    t->ctx.vclock = rt->cfg.deterministic ? &rt->workers[0].vclock : NULL;
    t->ctx.name = t->name;
    t->worker = w;
    t->fn = fn;
    t->arg = arg;
    t->timer_idx = URSA__TIMER_NONE;
    t->owner = URSA__NO_OWNER;
    t->placement = (uint8_t)(opts ? opts->placement : URSA_PLACE_ANY);
    t->migratable = opts && opts->migratable && rt->nworkers > 1; /* alone, nowhere to go */
    if (opts && opts->name)
        strncpy(t->name, opts->name, sizeof t->name - 1);
    else
        memcpy(t->name, "task", sizeof "task"); /* no call: most tasks have no name */
    atomic_init(&t->wstate, URSA__T_RUNNING);
    atomic_init(&t->cancel, atomic_load(&rt->stopping) ? 1 : 0);
    atomic_init(&t->joiner, opts && opts->detached ? URSA__JOIN_DETACHED : NULL);
    return t;
}

/* Checks a spawn's placement: 0, or -EINVAL. *fixed gets the worker of a
 * fixed placement (LOCAL: cur, or worker 0 off-task), NULL for ANY. */
static int placement_check(ursa_rt_t *rt, ursa__worker_t *cur, const ursa_spawn_opts_t *o,
                           ursa__worker_t **fixed)
{
    *fixed = NULL;
    switch (o->placement) {
    case URSA_PLACE_ANY:
    case URSA_PLACE_LOCAL:
        /* `worker` set without a placement is code from before placements,
         * when it meant "fix on this worker": refuse it rather than change
         * its meaning silently. */
        if (o->worker != 0 || (o->migratable && o->placement != URSA_PLACE_ANY))
            return -EINVAL;
        if (o->placement == URSA_PLACE_LOCAL)
            *fixed = cur ? cur : &rt->workers[0];
        return 0;
    case URSA_PLACE_WORKER:
        if (o->migratable || o->worker < 0 || o->worker >= (int)rt->nworkers)
            return -EINVAL;
        *fixed = &rt->workers[o->worker];
        return 0;
    default:
        return -EINVAL;
    }
}

typedef void (*prep_fn_t)(ursa_task_t *t, void *ctx);

/* ursa_rt_spawn from worker cur of rt, or from outside (cur NULL); prep
 * (may be NULL) sees the task before it is queued. */
static int spawn(ursa_rt_t *rt, ursa__worker_t *cur, ursa_task_t **out, ursa_task_fn_t fn,
                 void *arg, const ursa_spawn_opts_t *opts, prep_fn_t prep, void *ctx)
{
    if (out)
        *out = NULL;
    static const ursa_spawn_opts_t defaults = {0};
    const ursa_spawn_opts_t *o = opts ? opts : &defaults;
    if (!fn || (!out && !o->detached))
        return -EINVAL;
    ursa__worker_t *fixed = NULL;
    if ((unsigned)o->placement | (unsigned)o->worker | o->migratable) { /* not the default */
        int rc = placement_check(rt, cur, o, &fixed);
        if (rc)
            return rc;
    }
    ursa_task_t *t = ursa__task_new(rt, cur,
                                    fixed ? fixed
                                    : cur ? cur
                                          : &rt->workers[0],
                                    fn, arg, o);
    if (!t)
        return -ENOMEM;
    if (out && !o->detached)
        *out = t;
    if (prep)
        prep(t, ctx);
    ursa__worker_spawn(rt, cur, fixed, t);
    return 0;
}

int ursa_rt_spawn(ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                  const ursa_spawn_opts_t *opts)
{
    if (!rt) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    ursa__worker_t *cur = ursa__cur_worker;
    return spawn(rt, cur && cur->rt == rt ? cur : NULL, out, fn, arg, opts, NULL, NULL);
}

int ursa_spawn(ursa_task_t **out, ursa_task_fn_t fn, void *arg, const ursa_spawn_opts_t *opts)
{
    ursa__worker_t *w = ursa__cur_worker;
    if (!w) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return spawn(w->rt, w, out, fn, arg, opts, NULL, NULL);
}

int ursa__spawn_prep(ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                     const ursa_spawn_opts_t *opts, prep_fn_t prep, void *ctx)
{
    ursa__worker_t *cur = ursa__cur_worker;
    if (!rt && cur)
        rt = cur->rt;
    if (!rt) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return spawn(rt, cur && cur->rt == rt ? cur : NULL, out, fn, arg, opts, prep, ctx);
}

/* ---- completion, join, detach, cancel ---- */

void ursa__task_done(ursa_task_t *t)
{
    if (t->token) /* before the joiner may free it: a cancel walks its token's list */
        ursa__token_unbind(t);
    /* Later wakes (a late cancel) become no-ops. */
    atomic_store_explicit(&t->wstate, URSA__T_NOTIFIED, memory_order_relaxed);
    if (t->group_member) {
        /* The slot keeps the group's waiter, so a join or detach by hand
         * is refused (-EINVAL) before, during and after the group takes
         * the task: publishing JOIN_DONE here, even for the moment until
         * the group put its waiter back, let one take and free the task
         * under the group (issue 12). relaxed: set before the task was
         * queued, and nothing changes it since. The decision's release
         * (and the waiter's done) publish the result to the group. */
        (void)ursa__waiter_decide_now(atomic_load_explicit(&t->joiner, memory_order_relaxed),
                                      URSA__W_GRANTED);
        return;
    }
    /* acq_rel: publishes result to the joiner; our last touch of t. */
    ursa__waiter_t *j =
        atomic_exchange_explicit(&t->joiner, URSA__JOIN_DONE, memory_order_acq_rel);
    if (j == URSA__JOIN_DETACHED)
        ursa__task_free(t);
    else if (j)
        /* The joiner that sees GRANTED sees the result. A select's joiner
         * that lost its claim is dropped: the result stays for a later
         * join. */
        (void)ursa__waiter_decide_now(j, URSA__W_GRANTED);
}

/* A join wait sits in the task's one joiner slot, not on a queue. */
static bool join_cancel(ursa__waiter_t *w)
{
    ursa_task_t *t = w->owner;
    ursa__waiter_t *mine = w;
    /* acq_rel: withdraws our node; on failure the completer took it. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &mine, NULL, memory_order_acq_rel,
                                                memory_order_acquire))
        return true;
    ursa__wait_settle(w);
    return ursa__waiter_dropped(w);
}

static const ursa__wait_ops_t join_ops = {URSA_WAIT_JOIN, join_cancel, NULL};

int ursa_task_join_at(ursa_task_t *t, void **result, ursa_time_t deadline,
                      const ursa_site_t *site)
{
    if (!t || t == cur_task())
        return -EINVAL;
    /* acquire: the task's result is visible after JOIN_DONE. */
    ursa__waiter_t *j = atomic_load_explicit(&t->joiner, memory_order_acquire);
    if (j == URSA__JOIN_DETACHED || (j && j != URSA__JOIN_DONE))
        return -EINVAL; /* detached, or someone else is joining */
    if (j != URSA__JOIN_DONE) {
        if (deadline == URSA_NOW)
            return -EAGAIN;
        ursa__ctx_t *c = ursa__ctx();
        URSA__WAITER_ALIGN ursa__waiter_t w;
        ursa__waiter_init(&w, c->waker, &join_ops);
        w.owner = t;
        /* relaxed: published with the node by the CAS below. */
        atomic_store_explicit(&w.state, URSA__W_QUEUED, memory_order_relaxed);
        ursa__waiter_t *none = NULL;
        /* release: publishes the initialised node to the completer. */
        if (atomic_compare_exchange_strong_explicit(&t->joiner, &none, &w, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            int rc = ursa__ctx_block(c, &w, deadline, site);
            if (rc && join_cancel(&w))
                return rc; /* withdrawn; t may be joined again */
        } else if (none != URSA__JOIN_DONE) {
            return -EINVAL;
        }
        atomic_thread_fence(memory_order_acquire); /* pairs with the completer */
    }
    int rc = t->no_stack ? -ENOMEM : 0;
    if (result)
        *result = rc ? NULL : t->result;
    ursa__task_free(t);
    return rc;
}

/* ---- the raw join (calling context 3; a select's join case) ---- */

int ursa_task_join_start(ursa_task_t *t, ursa_wait_t *rw, ursa_waker_t waker)
{
    if (!t || !rw || !waker.fn || t == cur_task())
        return -EINVAL;
    ursa__waiter_t *w = &rw->waiter;
    ursa__waiter_init(w, waker, &join_ops);
    rw->site = NULL;
    w->owner = t;
    /* relaxed: published with the node by the CAS below. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    ursa__waiter_t *none = NULL;
    /* acq_rel: release publishes the node to the completer; acquire (on
     * failure) sees a finished task's result. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &none, w, memory_order_acq_rel,
                                                memory_order_acquire))
        return -EINPROGRESS;
    if (none != URSA__JOIN_DONE) {
        ursa__waiter_init(w, waker, NULL); /* not started: cancel refuses it */
        return -EINVAL; /* detached, or someone else is joining */
    }
    /* Finished already: a select's wait takes its claim first (or is
     * dropped, and t stays joinable). */
    atomic_store_explicit(&w->state, URSA__W_IDLE, memory_order_relaxed);
    if (!ursa__waiter_claim(w)) {
        ursa__waiter_drop(w);
        return -EINPROGRESS;
    }
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

int ursa_task_join_finish(ursa_task_t *t, ursa_wait_t *rw, void **result)
{
    if (!t || !rw || rw->waiter.owner != t || rw->waiter.ops != &join_ops)
        return -EINVAL;
    ursa__waiter_t *w = &rw->waiter;
    int rc = ursa__wait_finish_begin(w);
    if (rc)
        return rc;
    /* relaxed: finish_begin acquired the decision and settled. */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire); /* pairs with the completer */
    rc = t->no_stack ? -ENOMEM : 0;
    if (result)
        *result = rc ? NULL : t->result;
    ursa__task_free(t);
    return rc;
}

int ursa_task_detach(ursa_task_t *t)
{
    if (!t)
        return -EINVAL;
    ursa__waiter_t *j = NULL;
    /* acq_rel: if it finished already we free it and must see its writes. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &j, URSA__JOIN_DETACHED,
                                                memory_order_acq_rel, memory_order_acquire))
        return 0;
    if (j == URSA__JOIN_DONE) {
        ursa__task_free(t);
        return 0;
    }
    return -EINVAL; /* detached already, or being joined */
}

int ursa_task_cancel(ursa_task_t *t)
{
    if (!t)
        return -EINVAL;
    /* release: ordered before the wake below. */
    atomic_store_explicit(&t->cancel, 1, memory_order_release);
    ursa__task_wake(t);
    return 0;
}

ursa_task_t *ursa_task_self(void)
{
    return cur_task();
}

bool ursa_task_cancelled(void)
{
    ursa_task_t *t = cur_task();
    /* relaxed: a hint, as in ursa__task_wait. */
    return t && atomic_load_explicit(&t->cancel, memory_order_relaxed);
}

const char *ursa_task_name(const ursa_task_t *t)
{
    return t ? t->name : "(null)";
}

/* ---- yield and sleep ---- */

int ursa_yield(void)
{
    ursa_task_t *t = cur_task();
    if (!t) {
        sched_yield();
        return 0;
    }
    ursa__worker_yield(t);
    /* relaxed: a hint, as in ursa__task_wait. */
    return atomic_load_explicit(&t->cancel, memory_order_relaxed) ? -ECANCELED : 0;
}

int ursa_sleep_until(ursa_time_t deadline)
{
    ursa_task_t *t = cur_task();
    if (!t) {
        if (deadline == URSA_NEVER)
            return -EINVAL;
        if (ursa__time_left(deadline, ursa__mono_now()) == 0)
            return 0; /* passed already (a negative one would not make a timespec) */
        struct timespec ts = ursa__timespec(deadline);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        return 0;
    }
    t->wait_kind = URSA_WAIT_SLEEP;
    int rc = ursa__task_wait(t, NULL, 0, deadline);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int ursa_sleep_for(ursa_time_t ns)
{
    return ursa_sleep_until(ursa_deadline_in(ns));
}
