/* Runtime lifetime and the task API: spawn, join, detach, cancel, yield,
 * sleep. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/waitq.h"
#include "exec.h"

static int task_block(ursa__ctx_t *c, ursa_wait_t *wt, ursa_time_t deadline);
static int task_relax(ursa__ctx_t *c);
static const ursa__ctx_ops_t task_ops = {.block = task_block, .relax = task_relax};

/* ---- blocking a task on a wait node ---- */

static int task_relax(ursa__ctx_t *c)
{
    ursa_task_t *t = (ursa_task_t *)c;
    if (t->worker->rq_head) {
        ursa__task_yield(t);
    } else {
        for (int i = 0; i < 16; i++)
            ursa__cpu_relax();
    }
    /* relaxed: a hint, as in ursa__task_wait. */
    return atomic_load_explicit(&t->cancel, memory_order_relaxed) ? -ECANCELED : 0;
}

int ursa__task_wait(ursa_task_t *t, const _Atomic uint32_t *flag, uint32_t pending,
                    ursa_time_t deadline)
{
    ursa__worker_t *w = t->worker;
    int rc = 0;
    bool armed = false;
    /* acquire: the completer's writes before it changed *flag are visible. */
    while (!flag || atomic_load_explicit(flag, memory_order_acquire) == pending) {
        /* relaxed: cancel is a hint re-checked after every wake. */
        if (atomic_load_explicit(&t->cancel, memory_order_relaxed)) {
            rc = -ECANCELED;
            break;
        }
        if (deadline != URSA_NEVER) {
            if (ursa__worker_now(w) >= deadline) {
                rc = -ETIMEDOUT;
                break;
            }
            if (!armed) {
                ursa__timer_arm(&w->timers, t, deadline);
                armed = true;
            }
        }
        ursa__task_park(t);
    }
    if (armed)
        ursa__timer_disarm(&w->timers, t);
    t->wait_kind = URSA_WAIT_NONE;
    t->wait_site = NULL;
    t->wait_obj = NULL;
    return rc;
}

static int task_block(ursa__ctx_t *c, ursa_wait_t *wt, ursa_time_t deadline)
{
    ursa_task_t *t = (ursa_task_t *)c;
    t->wait_kind = wt->ops ? wt->ops->kind : URSA_WAIT_OTHER;
    t->wait_site = wt->site;
    t->wait_obj = wt->owner;
    int rc = ursa__task_wait(t, &wt->state, URSA__W_QUEUED, deadline);
    if (rc == 0)
        ursa__wait_settle(wt);
    return rc;
}

static ursa_task_t *cur_task(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w ? w->current : NULL;
}

/* ---- runtime ---- */

static void *worker_thread(void *p)
{
    ursa__worker_t *w = p;
    ursa__cur_worker = w;
    ursa__thread_ctx();
    ursa__ring_init(&w->ring);
#if defined(URSA_TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    ursa__worker_run(w, NULL);
    ursa__cur_worker = NULL;
    return NULL;
}

int ursa_rt_new(ursa_rt_t **out, const ursa_rt_config_t *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    ursa_rt_config_t c = cfg ? *cfg : (ursa_rt_config_t){0};
    if (c.workers == 0)
        c.workers = 1;
    if (c.deterministic && c.workers != 1)
        return -EINVAL;
    if (c.workers > 1024)
        return -EINVAL;
    if (c.stack_size == 0)
        c.stack_size = 64 * 1024;
    if (c.stack_size < 16 * 1024 || c.stack_size > ((size_t)1 << 30))
        return -EINVAL;
    if (c.stack_cache == 0)
        c.stack_cache = 64;
    if (c.deadlock_report_after == 0)
        c.deadlock_report_after = URSA_SEC(2);
    ursa_rt_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->cfg = c;
    rt->nworkers = c.workers;
    rt->workers = aligned_alloc(64, sizeof(ursa__worker_t) * c.workers);
    if (!rt->workers) {
        free(rt);
        return -ENOMEM;
    }
    memset(rt->workers, 0, sizeof(ursa__worker_t) * c.workers);
    for (unsigned i = 0; i < c.workers; i++) {
        ursa__worker_t *w = &rt->workers[i];
        w->rt = rt;
        w->index = (int)i;
        w->ring.evfd = -1;
        w->rng = c.seed;
        w->vclock = URSA_SEC(1); /* above 0, so no deadline equals URSA_NOW */
        ursa__stack_pool_init(&w->stacks, c.stack_size, c.stack_cache, !c.no_stack_guard);
    }
    /* Worker 0's ring is made by the thread that runs it (block_on): a
     * SINGLE_ISSUER ring belongs to the thread that created it. */
    for (unsigned i = 1; i < c.workers; i++) {
        ursa__worker_t *w = &rt->workers[i];
        int rc = ursa__ring_evfd_init(&w->ring);
        if (rc == 0 && pthread_create(&w->thread, NULL, worker_thread, w) != 0)
            rc = -EAGAIN;
        if (rc) {
            atomic_store(&rt->stopping, true);
            for (unsigned j = 1; j < i; j++) {
                ursa__ring_kick(&rt->workers[j].ring);
                pthread_join(rt->workers[j].thread, NULL);
                ursa__ring_exit(&rt->workers[j].ring);
            }
            ursa__ring_exit(&w->ring);
            free(rt->workers);
            free(rt);
            return rc;
        }
    }
    *out = rt;
    return 0;
}

/* Makes the calling thread worker 0 until leave_worker0(). Worker 0 may
 * move to another thread between runs, as long as none of its I/O is in
 * flight: its ring is SINGLE_ISSUER, owned by the thread that made it, so
 * the new thread makes a new ring. */
static int enter_worker0(ursa_rt_t *rt)
{
    ursa__worker_t *w = &rt->workers[0];
    if (ursa__cur_worker)
        return -EINVAL; /* nested: already a worker */
    bool busy = false;
    if (!atomic_compare_exchange_strong(&rt->in_worker0, &busy, true))
        return -EBUSY; /* another thread runs worker 0 right now */
    if (!rt->owner_set) {
        int rc = ursa__ring_evfd_init(&w->ring);
        if (rc) {
            atomic_store(&rt->in_worker0, false);
            return rc;
        }
        ursa__ring_init(&w->ring);
    } else if (!pthread_equal(rt->owner, pthread_self())) {
        if (w->ring.inflight) {
            atomic_store(&rt->in_worker0, false);
            return -EBUSY;
        }
        ursa__ring_fini(&w->ring);
        ursa__ring_init(&w->ring);
    }
    rt->owner = pthread_self();
    rt->owner_set = true;
    ursa__cur_worker = w;
    ursa__thread_ctx();
#if defined(URSA_TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    return 0;
}

static void leave_worker0(ursa_rt_t *rt)
{
    ursa__cur_worker = NULL;
    atomic_store(&rt->in_worker0, false);
}

static ursa_task_t *task_new(ursa_rt_t *rt, ursa__worker_t *w, ursa_task_fn_t fn, void *arg,
                             const ursa_spawn_opts_t *opts)
{
    ursa__worker_t *cur = ursa__cur_worker && ursa__cur_worker->rt == rt ? ursa__cur_worker : NULL;
    ursa_task_t *t = ursa__task_alloc(cur);
    if (!t)
        return NULL;
    ursa__worker_t *home = t->home; /* set by the pool, NULL if malloc'd */
    memset(t, 0, sizeof *t);
    t->home = home;
    t->ctx.ops = &task_ops;
    t->ctx.waker = (ursa_waker_t){ursa__task_wake, t};
    ursa__ledger_init(&t->ctx.ledger);
    t->ctx.vclock = rt->cfg.deterministic ? &w->vclock : NULL;
    t->ctx.name = t->name;
    t->worker = w;
    t->fn = fn;
    t->arg = arg;
    t->timer_idx = SIZE_MAX;
    const char *name = opts && opts->name ? opts->name : "task";
    strncpy(t->name, name, sizeof t->name - 1);
    atomic_init(&t->wstate, URSA__T_RUNNING);
    atomic_init(&t->cancel, atomic_load(&rt->stopping) ? 1 : 0);
    atomic_init(&t->joiner, opts && opts->detached ? URSA__JOIN_DETACHED : NULL);
    return t;
}

int ursa_rt_spawn(ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                  const ursa_spawn_opts_t *opts)
{
    if (out)
        *out = NULL;
    if (!rt || !fn || (!out && !(opts && opts->detached)))
        return -EINVAL;
    int wi = opts ? opts->worker : -1;
    if (wi < -1 || wi >= (int)rt->nworkers)
        return -EINVAL;
    if (wi == -1)
        wi = (ursa__cur_worker && ursa__cur_worker->rt == rt) ? ursa__cur_worker->index : 0;
    ursa__worker_t *w = &rt->workers[wi];
    ursa_task_t *t = task_new(rt, w, fn, arg, opts);
    if (!t)
        return -ENOMEM;
    if (out && !(opts && opts->detached))
        *out = t;
    ursa__worker_submit(w, t);
    return 0;
}

int ursa_spawn(ursa_task_t **out, ursa_task_fn_t fn, void *arg, const ursa_spawn_opts_t *opts)
{
    ursa__worker_t *w = ursa__cur_worker;
    if (!w) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return ursa_rt_spawn(w->rt, out, fn, arg, opts);
}

int ursa_rt_block_on(ursa_rt_t *rt, ursa_task_fn_t fn, void *arg, void **result)
{
    if (!rt || !fn)
        return -EINVAL;
    int rc = enter_worker0(rt);
    if (rc)
        return rc;
    ursa__worker_t *w = &rt->workers[0];
    ursa_task_t *root = task_new(rt, w, fn, arg, &(ursa_spawn_opts_t){.name = "root"});
    if (!root) {
        leave_worker0(rt);
        return -ENOMEM;
    }
    ursa__worker_submit(w, root);
    rc = ursa__worker_run(w, root);
    if (rc == 0) {
        if (result)
            *result = root->result;
        rc = root->fail;
        ursa__task_free(root);
    } else {
        /* Left waiting (deadlock): it finishes, and frees itself, when
         * ursa_rt_free cancels it. */
        ursa_wait_t *none = NULL;
        atomic_compare_exchange_strong(&root->joiner, &none, URSA__JOIN_DETACHED);
    }
    leave_worker0(rt);
    return rc;
}

void ursa_rt_free(ursa_rt_t *rt)
{
    if (!rt)
        return;
    if (ursa__cur_worker && ursa__cur_worker->rt == rt) {
        ursa__report_misuse("ursa_rt_free called from one of its own tasks (ignored)", NULL);
        return;
    }
    /* release: workers that see it also see the state before it. */
    atomic_store_explicit(&rt->stopping, true, memory_order_release);
    for (unsigned i = 1; i < rt->nworkers; i++)
        ursa__ring_kick(&rt->workers[i].ring);
    ursa__worker_t *w0 = &rt->workers[0];
    if (enter_worker0(rt) == 0) {
        ursa__worker_run(w0, NULL);
        leave_worker0(rt);
    } else if (w0->ntasks || atomic_load(&w0->inbox)) {
        ursa__report_misuse("ursa_rt_free could not run worker 0 (called from a task of "
                            "another runtime, or while its I/O was in flight on another "
                            "thread): its tasks are leaked", NULL);
    }
    for (unsigned i = 1; i < rt->nworkers; i++)
        pthread_join(rt->workers[i].thread, NULL);
    for (unsigned i = 0; i < rt->nworkers; i++) {
        ursa__worker_t *w = &rt->workers[i];
        ursa__ring_exit(&w->ring);
        ursa__stack_pool_drain(&w->stacks);
        ursa__task_pool_drain(w);
        ursa__timers_fini(&w->timers);
    }
    free(rt->workers);
    free(rt);
}

int ursa_run(const ursa_rt_config_t *cfg, ursa_task_fn_t fn, void *arg, void **result)
{
    if (ursa__cur_worker)
        return -EINVAL; /* block_on would refuse, and free could not clean up */
    ursa_rt_t *rt;
    int rc = ursa_rt_new(&rt, cfg);
    if (rc)
        return rc;
    rc = ursa_rt_block_on(rt, fn, arg, result);
    ursa_rt_free(rt);
    return rc;
}

/* ---- join / detach / cancel ---- */

/* A join wait sits in the task's one joiner slot, not on a queue. */
static bool join_cancel(ursa_wait_t *w)
{
    ursa_task_t *t = w->owner;
    ursa_wait_t *mine = w;
    /* acq_rel: withdraws our node; on failure the completer took it. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &mine, NULL, memory_order_acq_rel,
                                                memory_order_acquire))
        return true;
    ursa__wait_settle(w);
    return false;
}

static const ursa__wait_ops_t join_ops = {URSA_WAIT_JOIN, join_cancel, NULL};

int ursa_task_join_at(ursa_task_t *t, void **result, ursa_time_t deadline,
                      const ursa_site_t *site)
{
    if (!t || t == cur_task())
        return -EINVAL;
    /* acquire: the task's result is visible after JOIN_DONE. */
    ursa_wait_t *j = atomic_load_explicit(&t->joiner, memory_order_acquire);
    if (j == URSA__JOIN_DETACHED || (j && j != URSA__JOIN_DONE))
        return -EINVAL; /* detached, or someone else is joining */
    if (j != URSA__JOIN_DONE) {
        if (deadline == URSA_NOW)
            return -EAGAIN;
        ursa__ctx_t *c = ursa__ctx();
        ursa_wait_t w;
        ursa__wait_init(&w, c->waker, &join_ops, site);
        w.owner = t;
        atomic_store_explicit(&w.state, URSA__W_QUEUED, memory_order_relaxed);
        ursa_wait_t *none = NULL;
        /* release: publishes the initialised node to the completer. */
        if (atomic_compare_exchange_strong_explicit(&t->joiner, &none, &w, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            int rc = ursa__ctx_block(c, &w, deadline);
            if (rc && join_cancel(&w))
                return rc; /* withdrawn; t may be joined again */
        } else if (none != URSA__JOIN_DONE) {
            return -EINVAL;
        }
        atomic_thread_fence(memory_order_acquire); /* pairs with the completer */
    }
    int fail = t->fail;
    if (result)
        *result = t->result;
    ursa__task_free(t);
    return fail;
}

int ursa_task_detach(ursa_task_t *t)
{
    if (!t)
        return -EINVAL;
    ursa_wait_t *j = NULL;
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
    return t && atomic_load_explicit(&t->cancel, memory_order_relaxed);
}

const char *ursa_task_name(const ursa_task_t *t)
{
    return t ? t->name : "(null)";
}

int ursa_worker_index(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w && w->current ? w->index : -1;
}

/* ---- yield and sleep ---- */

int ursa_yield(void)
{
    ursa_task_t *t = cur_task();
    if (!t) {
        sched_yield();
        return 0;
    }
    ursa__task_yield(t);
    return atomic_load_explicit(&t->cancel, memory_order_relaxed) ? -ECANCELED : 0;
}

int ursa_sleep_until(ursa_time_t deadline)
{
    ursa_task_t *t = cur_task();
    if (!t) {
        if (deadline == URSA_NEVER)
            return -EINVAL;
        struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
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
