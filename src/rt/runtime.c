/* The runtime's life: ursa_rt_new, ursa_rt_block_on, ursa_rt_free,
 * ursa_run; the threads of workers 1..n-1, and the thread that runs
 * worker 0 for the length of a call. With fewer threads than workers
 * (hosted), every worker runs on a thread of the runtime, worker 0 too:
 * block_on spawns the root there and joins it. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "worker.h"

static void *worker_thread(void *p)
{
    ursa__worker_t *w = p;
    ursa__worker_bind(w);
    ursa__ring_init(&w->ring);
    ursa__worker_run(w, NULL);
    ursa__worker_unbind();
    return NULL;
}

/* Whether each worker runs on a thread of the runtime, worker 0 too. */
static bool hosted(const ursa_rt_t *rt)
{
    return rt->nhosts < rt->nworkers;
}

/* The first worker with a thread of the runtime. */
static unsigned first_thread(const ursa_rt_t *rt)
{
    return hosted(rt) ? 0 : 1;
}

/* Tells every worker to finish: their loops cancel their tasks and, once
 * none are left, return; the runtime's threads that run hosts below
 * nthreads are woken to see it. */
static void stop_workers(ursa_rt_t *rt, unsigned nthreads)
{
    /* release: workers that see it also see the state before it. */
    atomic_store_explicit(&rt->stopping, true, memory_order_release);
    /* seq_cst fence: Dekker with sleep_begin (a futex sleeper looks at
     * stopping after it says it sleeps; we look at how it sleeps after
     * saying stop). A ring sleeper gets its eventfd written as well. */
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = first_thread(rt); i < nthreads && !rt->cfg.deterministic; i++) {
        ursa__worker_rouse(&rt->workers[i]);
        ursa__ring_kick(&rt->workers[i].ring);
    }
}

/* Joins the runtime's threads below nthreads and frees everything. */
static void destroy(ursa_rt_t *rt, unsigned nthreads)
{
    for (unsigned i = first_thread(rt); i < nthreads && !rt->cfg.deterministic; i++)
        pthread_join(rt->workers[i].thread, NULL);
    bool tasks_left = false;
    for (unsigned i = 0; i < rt->nworkers; i++)
        tasks_left |= rt->workers[i].ntasks != 0;
    for (unsigned i = 0; i < rt->nworkers; i++)
        ursa__worker_fini(&rt->workers[i], tasks_left);
    ursa__task_free_loose(rt);
    pthread_mutex_destroy(&rt->loose_lock);
    ursa__spin_workers_add(-(int)rt->nhosts);
    free(rt->workers);
    free(rt);
}

/* How many threads run the workers of a runtime configured as c. */
static unsigned hosts(const ursa_rt_config_t *c)
{
    if (c->deterministic)
        return c->workers; /* one thread runs them all its own way (loop.c) */
    if (c->threads)
        return c->threads;
    unsigned cpus = ursa__cpus_available();
    return cpus && cpus < c->workers ? cpus : c->workers;
}

int ursa_rt_new(ursa_rt_t **out, const ursa_rt_config_t *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    ursa_rt_config_t c = cfg ? *cfg : (ursa_rt_config_t){0};
    if (c.workers == 0)
        c.workers = 1;
    if (c.workers > 1024)
        return -EINVAL;
    if (c.stack_size == 0)
        c.stack_size = 64 * 1024;
    if (c.stack_size < 16 * 1024 || c.stack_size > ((size_t)1 << 30))
        return -EINVAL;
    if (c.threads > c.workers && !c.deterministic)
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
    rt->nhosts = hosts(&c);
    rt->workers = aligned_alloc(64, sizeof(ursa__worker_t) * c.workers);
    if (!rt->workers) {
        free(rt);
        return -ENOMEM;
    }
    pthread_mutex_init(&rt->loose_lock, NULL);
    memset(rt->workers, 0, sizeof(ursa__worker_t) * c.workers);
    /* The spin policy counts threads that want a CPU of their own. */
    ursa__spin_workers_add((int)rt->nhosts);
    for (unsigned i = 0; i < c.workers; i++)
        ursa__worker_init(&rt->workers[i], rt, i);
    /* Every eventfd is made here, so that block_on needs no descriptor
     * (a worker without a ring still runs, on the fallback). Worker 0's
     * ring is made by the thread that runs it (block_on): a SINGLE_ISSUER
     * ring belongs to the thread that created it. In deterministic mode
     * that thread runs every worker (loop.c), and only worker 0 has a
     * ring; a hosted worker uses its host's ring. */
    for (unsigned i = 0; i < c.workers; i++) {
        ursa__worker_t *w = &rt->workers[i];
        /* A hosted worker is kicked through its host: no eventfd. */
        int rc = i < rt->nhosts ? ursa__ring_evfd_init(&w->ring) : 0;
        if (rc == 0 && i >= first_thread(rt) && i < rt->nhosts && !c.deterministic &&
            pthread_create(&w->thread, NULL, worker_thread, w) != 0)
            rc = -EAGAIN;
        if (rc) {
            unsigned started = i < rt->nhosts ? i : rt->nhosts; /* hosts below it have threads */
            stop_workers(rt, started);
            destroy(rt, started);
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
    ursa__worker_bind(w);
    return 0;
}

static void leave_worker0(ursa_rt_t *rt)
{
    ursa__worker_unbind();
    atomic_store(&rt->in_worker0, false);
}

/* block_on of a hosted runtime: the root runs on worker 0's thread, and
 * the caller joins it. */
static int block_on_hosted(ursa_rt_t *rt, ursa_task_fn_t fn, void *arg, void **result)
{
    if (ursa__cur_worker)
        return -EINVAL; /* inside a task */
    bool busy = false;
    /* seq_cst (default), as in enter_worker0: a flag, no data with it. */
    if (!atomic_compare_exchange_strong(&rt->in_worker0, &busy, true))
        return -EBUSY; /* one block_on at a time, as unhosted */
    ursa_task_t *root;
    int rc = ursa_rt_spawn(rt, &root, fn, arg,
                           &(ursa_spawn_opts_t){.name = "root", URSA_ON_WORKER(0)});
    if (rc == 0)
        rc = ursa_task_join(root, result, URSA_NEVER);
    atomic_store(&rt->in_worker0, false);
    return rc;
}

int ursa_rt_block_on(ursa_rt_t *rt, ursa_task_fn_t fn, void *arg, void **result)
{
    if (!rt || !fn)
        return -EINVAL;
    if (hosted(rt))
        return block_on_hosted(rt, fn, arg, result);
    int rc = enter_worker0(rt);
    if (rc)
        return rc;
    ursa__worker_t *w = &rt->workers[0];
    ursa_task_t *root = ursa__task_new(
        rt, w, w, fn, arg, &(ursa_spawn_opts_t){.name = "root", .placement = URSA_PLACE_LOCAL});
    if (!root) {
        leave_worker0(rt);
        return -ENOMEM;
    }
    ursa__worker_spawn(rt, w, w, root);
    rc = ursa__worker_run(w, root);
    if (rc == 0) {
        rc = root->no_stack ? -ENOMEM : 0;
        if (result)
            *result = rc ? NULL : root->result;
        ursa__task_free(root);
    } else {
        /* Left waiting (deadlock): it finishes, and frees itself, when
         * ursa_rt_free cancels it. */
        ursa__waiter_t *none = NULL;
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
    stop_workers(rt, rt->nhosts);
    ursa__worker_t *w0 = &rt->workers[0];
    if (hosted(rt)) {
        /* worker 0's thread finishes its tasks like the others */
    } else if (enter_worker0(rt) == 0) {
        ursa__worker_run(w0, NULL);
        leave_worker0(rt);
    } else if (w0->ntasks || atomic_load(&w0->inbox)) {
        ursa__report_misuse("ursa_rt_free could not run worker 0 (called from a task of "
                            "another runtime, or while its I/O was in flight on another "
                            "thread): its tasks are leaked", NULL);
    }
    destroy(rt, rt->nhosts);
}

unsigned ursa_rt_worker_count(const ursa_rt_t *rt)
{
    return rt ? rt->nworkers : 0;
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
