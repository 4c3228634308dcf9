/* The per-worker scheduler loop: run queue, inbox, timers, io_uring. */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>

#include "../core/waitq.h"
#include "switch.h"

__thread ursa__worker_t *ursa__cur_worker __attribute__((tls_model("initial-exec")));

ursa_time_t ursa__worker_now(ursa__worker_t *w)
{
    return w->rt->cfg.deterministic ? w->vclock : ursa__mono_now();
}

/* ---- run queue (owner thread only) ---- */

static void rq_push(ursa__worker_t *w, ursa_task_t *t)
{
    t->rq_next = NULL;
    if (w->rq_tail)
        w->rq_tail->rq_next = t;
    else
        w->rq_head = t;
    w->rq_tail = t;
    w->rq_len++;
}

static uint64_t rng_next(ursa__worker_t *w)
{
    /* splitmix64: tiny, and every seed gives a distinct stream. */
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static ursa_task_t *rq_pop(ursa__worker_t *w)
{
    ursa_task_t *prev = NULL, *t = w->rq_head;
    if (w->rt->cfg.deterministic && w->rq_len > 1) {
        size_t k = rng_next(w) % w->rq_len;
        while (k--) {
            prev = t;
            t = t->rq_next;
        }
    }
    if (prev)
        prev->rq_next = t->rq_next;
    else
        w->rq_head = t->rq_next;
    if (w->rq_tail == t)
        w->rq_tail = prev;
    w->rq_len--;
    t->rq_next = NULL;
    return t;
}

/* ---- inbox: lock-free multi-producer, single consumer ---- */

/* Pushes t on a lock-free LIFO of tasks linked through rq_next; the one
 * consumer takes the whole list with an acquire exchange (so no ABA). */
static void lifo_push(_Atomic(ursa_task_t *) *head, ursa_task_t *t)
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

/* Enters t in w's live-task list (owner thread only). */
static void adopt(ursa__worker_t *w, ursa_task_t *t)
{
    t->adopted = true;
    t->all_prev = NULL;
    t->all_next = w->all;
    if (w->all)
        w->all->all_prev = t;
    w->all = t;
    w->ntasks++;
}

static void inbox_push(ursa__worker_t *w, ursa_task_t *t)
{
    lifo_push(&w->inbox, t);
    /* seq_cst fence: Dekker with the worker's sleeping=1; fence; check
     * inbox. Either it sees our push or we see it sleeping. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&w->sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&w->sleeping, 0, memory_order_relaxed))
        ursa__ring_kick(&w->ring);
}

static void drain_inbox(ursa__worker_t *w)
{
    /* relaxed peek first: most rounds the inbox is empty. */
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return;
    /* acquire: pairs with inbox_push's release CAS. */
    ursa_task_t *l = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    ursa_task_t *fifo = NULL;
    while (l) { /* the stack is newest-first: reverse it */
        ursa_task_t *n = l->rq_next;
        l->rq_next = fifo;
        fifo = l;
        l = n;
    }
    while (fifo) {
        ursa_task_t *n = fifo->rq_next;
        if (!fifo->adopted)
            adopt(w, fifo);
        rq_push(w, fifo);
        fifo = n;
    }
}

void ursa__worker_submit(ursa__worker_t *w, ursa_task_t *t)
{
    if (w == ursa__cur_worker) {
        adopt(w, t);
        rq_push(w, t);
    } else {
        inbox_push(w, t);
    }
}

/* ---- task descriptor pool ---- */

#define TASK_CHUNK 64

typedef struct task_chunk {
    struct task_chunk *next;
    ursa_task_t tasks[TASK_CHUNK];
} task_chunk_t;

ursa_task_t *ursa__task_alloc(ursa__worker_t *w)
{
#if defined(URSA_ASAN)
    w = NULL; /* plain malloc, so ASan sees use-after-join of a handle */
#endif
    if (!w) {
        ursa_task_t *t = malloc(sizeof(ursa_task_t));
        if (t)
            t->home = NULL;
        return t;
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
        for (int i = TASK_CHUNK - 1; i >= 0; i--) {
            c->tasks[i].rq_next = w->task_free;
            c->tasks[i].home = w;
            w->task_free = &c->tasks[i];
        }
    }
    ursa_task_t *t = w->task_free;
    w->task_free = t->rq_next;
    return t;
}

void ursa__task_free(ursa_task_t *t)
{
    ursa__worker_t *home = t->home;
    if (!home) {
        free(t);
    } else if (home == ursa__cur_worker) {
        t->rq_next = home->task_free;
        home->task_free = t;
    } else {
        lifo_push(&home->remote_free, t);
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

/* ---- waking and parking ---- */

void ursa__task_wake(void *p)
{
    ursa_task_t *t = p;
    /* relaxed: the CASes below validate it. */
    uint32_t s = atomic_load_explicit(&t->wstate, memory_order_relaxed);
    for (;;) {
        if (s == URSA__T_PARKED) {
            /* acq_rel: we own the enqueue; our prior writes travel with it. */
            if (atomic_compare_exchange_weak_explicit(&t->wstate, &s, URSA__T_RUNNING,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                if (t->worker == ursa__cur_worker)
                    rq_push(t->worker, t);
                else
                    inbox_push(t->worker, t);
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

/* How many times tasks may hand the worker straight to one another before
 * the scheduler gets a turn (inbox, timers, ring). */
#define DIRECT_SWITCHES 32

/* Switches from the current task t to `to`: another task, or the
 * scheduler (to == NULL). Returns when something switches back to t. */
static void switch_from(ursa_task_t *t, ursa_task_t *to)
{
    ursa__worker_t *w = t->worker;
    void *sp = w->sched_sp;
    if (to) {
        w->current = to;
        ursa__cur_ctx = &to->ctx;
        sp = to->sp;
    }
#if defined(URSA_ASAN)
    if (to)
        __sanitizer_start_switch_fiber(&t->asan_fake, to->stack->lo,
                                       (size_t)((char *)to->stack->top - (char *)to->stack->lo));
    else
        __sanitizer_start_switch_fiber(&t->asan_fake, w->asan_stack_lo, w->asan_stack_size);
#endif
#if defined(URSA_TSAN)
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_fiber, 0);
#endif
    ursa__switch(&t->sp, sp);
#if defined(URSA_ASAN)
    __sanitizer_finish_switch_fiber(t->asan_fake, NULL, NULL);
#endif
}

/* The current task t stops running (parked, or queued again by a yield).
 * If another task that has already run is next in the run queue, switch
 * to it directly: one context switch instead of two, and no pass through
 * the scheduler loop. New tasks (no stack yet) start from the scheduler. */
static void switch_out(ursa_task_t *t)
{
    ursa__worker_t *w = t->worker;
    if (w->direct_budget && w->rq_head) {
        w->direct_budget--;
        ursa_task_t *next = rq_pop(w);
        if (next == t)
            return; /* a yield with nothing else to run */
        if (next->stack) {
            switch_from(t, next);
            return;
        }
        next->rq_next = w->rq_head; /* not started: back to the front */
        w->rq_head = next;
        if (!w->rq_tail)
            w->rq_tail = next;
        w->rq_len++;
    }
    switch_from(t, NULL);
}

void ursa__task_park(ursa_task_t *t)
{
    uint32_t s = URSA__T_RUNNING;
    /* acquire on failure: consuming NOTIFIED makes the waker's writes
     * visible. */
    if (!atomic_compare_exchange_strong_explicit(&t->wstate, &s, URSA__T_PARKED,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        /* Consume the notification with an RMW (see ursa__task_wake): a
         * plain store could pass a concurrent waker's check unseen while
         * our caller's re-check of its condition reads a stale value. */
        atomic_exchange_explicit(&t->wstate, URSA__T_RUNNING, memory_order_acq_rel);
        return;
    }
    switch_out(t);
}

void ursa__task_yield(ursa_task_t *t)
{
    rq_push(t->worker, t);
    switch_out(t);
}

/* ---- running tasks ---- */

static void task_main(void *p);

/* Frees a finished task's resources and hands its result to the joiner. */
static void finish_task(ursa__worker_t *w, ursa_task_t *t)
{
    /* The ledger's records, not the (dead) frames, say what to release. */
    ursa__ledger_sweep(&t->ctx.ledger, t->name);
    if (t->stack) {
#if defined(URSA_TSAN)
        __tsan_destroy_fiber(t->tsan_fiber);
#endif
        ursa__stack_put(&w->stacks, t->stack);
        t->stack = NULL;
    }
    if (t->timer_idx != SIZE_MAX)
        ursa__timer_disarm(&w->timers, t);
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        w->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    w->ntasks--;
    /* Later wakes (a late cancel) become no-ops. */
    atomic_store_explicit(&t->wstate, URSA__T_NOTIFIED, memory_order_relaxed);
    /* acq_rel: publishes result to the joiner; our last touch of t. */
    ursa_wait_t *j = atomic_exchange_explicit(&t->joiner, URSA__JOIN_DONE, memory_order_acq_rel);
    if (j == URSA__JOIN_DETACHED) {
        ursa__task_free(t);
    } else if (j) {
        atomic_store_explicit(&j->state, URSA__W_GRANTED, memory_order_release);
        ursa__wake_batch_t b = {.n = 1, .w = {j}};
        ursa__wake_batch_run(&b);
    }
}

static void run_task(ursa__worker_t *w, ursa_task_t *t)
{
    if (!t->stack) {
        t->stack = ursa__stack_get(&w->stacks);
        if (!t->stack) {
            fprintf(stderr, "ursa: no memory for the stack of task '%s'\n", t->name);
            t->fail = -ENOMEM;
            finish_task(w, t);
            return;
        }
        t->sp = ursa__switch_make(t->stack->top, task_main, t);
#if defined(URSA_TSAN)
        t->tsan_fiber = __tsan_create_fiber(0);
        __tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
    }
    w->current = t;
    ursa__cur_ctx = &t->ctx;
    w->direct_budget = DIRECT_SWITCHES;
#if defined(URSA_ASAN)
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, t->stack->lo,
                                   (size_t)((char *)t->stack->top - (char *)t->stack->lo));
#endif
#if defined(URSA_TSAN)
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    ursa__switch(&w->sched_sp, t->sp);
#if defined(URSA_ASAN)
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    /* Tasks may have handed over to each other: whoever switched back. */
    t = w->current;
    ursa__cur_ctx = ursa__thread_ctx();
    w->current = NULL;
    if (t->finished)
        finish_task(w, t);
}

static void task_main(void *p)
{
    ursa_task_t *t = p;
    ursa__worker_t *w = t->worker;
#if defined(URSA_ASAN)
    __sanitizer_finish_switch_fiber(NULL, &w->asan_stack_lo, &w->asan_stack_size);
#endif
    t->result = t->fn(t->arg);
    t->finished = true;
    w = t->worker;
#if defined(URSA_ASAN)
    __sanitizer_start_switch_fiber(NULL, w->asan_stack_lo, w->asan_stack_size);
#endif
#if defined(URSA_TSAN)
    __tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
    ursa__switch(&t->sp, w->sched_sp);
    __builtin_unreachable();
}

/* ---- the loop ---- */

static const char *kind_name(uint32_t k)
{
    switch (k) {
    case URSA_WAIT_MUTEX: return "mutex";
    case URSA_WAIT_SEMAPHORE: return "semaphore";
    case URSA_WAIT_JOIN: return "join of task";
    case URSA_WAIT_SLEEP: return "sleep";
    case URSA_WAIT_IO: return "io";
    case URSA_WAIT_NONE: return "nothing (parked)";
    default: return "wait";
    }
}

static void deadlock_report(ursa__worker_t *w)
{
    if (w->rt->cfg.deterministic)
        fprintf(stderr, "ursa: deadlock: every task waits and nothing can wake them\n");
    else
        fprintf(stderr,
                "ursa: possible deadlock on worker %d: every task has waited %.1f s with no "
                "timer or I/O pending (only a plain thread could still wake them)\n",
                w->index, (double)w->rt->cfg.deadlock_report_after / 1e9);
    for (ursa_task_t *t = w->all; t; t = t->all_next) {
        fprintf(stderr, "  task '%s' waits on %s %p", t->name, kind_name(t->wait_kind),
                t->wait_obj);
        if (t->wait_site)
            fprintf(stderr, " at %s:%d (%s)", t->wait_site->file, t->wait_site->line,
                    t->wait_site->func);
        fputc('\n', stderr);
    }
}

static void cancel_all(ursa__worker_t *w)
{
    for (ursa_task_t *t = w->all; t; t = t->all_next) {
        atomic_store_explicit(&t->cancel, 1, memory_order_release);
        ursa__task_wake(t);
    }
}

/* How long an idle worker watches its inbox before sleeping in the kernel:
 * about one kernel sleep/wake round trip, so the spin never costs more than
 * the sleep it tries to avoid. `pause` lasts from a few to ~140 cycles
 * depending on the CPU, so the budget is time, read every 64 pauses. */
#define IDLE_SPIN_NS 20000

static bool spin_for_inbox(ursa__worker_t *w)
{
    ursa_time_t until = ursa__mono_now() + IDLE_SPIN_NS;
    for (;;) {
        for (unsigned i = 0; i < 64; i++) {
            /* relaxed: drain_inbox's exchange does the acquire. */
            if (atomic_load_explicit(&w->inbox, memory_order_relaxed))
                return true;
            ursa__cpu_relax();
        }
        if (ursa__mono_now() >= until)
            return false;
    }
}

static bool root_done(ursa_task_t *root)
{
    /* acquire: the root's result is visible once we see JOIN_DONE. */
    return atomic_load_explicit(&root->joiner, memory_order_acquire) == URSA__JOIN_DONE;
}

/* Runs worker w until root finishes (root != NULL) or, when the runtime
 * is stopping, until w has no tasks left. -EDEADLK in deterministic mode
 * when nothing can make progress. */
int ursa__worker_run(ursa__worker_t *w, ursa_task_t *root)
{
    ursa_rt_t *rt = w->rt;
    bool cancelled = false;
    for (;;) {
        drain_inbox(w);
        if (root && root_done(root))
            return 0;
        bool stopping = atomic_load_explicit(&rt->stopping, memory_order_acquire);
        if (stopping && !cancelled) {
            cancel_all(w);
            cancelled = true;
        }
        if (!root && stopping && w->ntasks == 0 && !w->rq_head)
            return 0;
        if (w->rq_head) {
            w->reported = false; /* progress: a later stall is news again */
            for (size_t n = w->rq_len; n && w->rq_head; n--)
                run_task(w, rq_pop(w));
            if (w->timers.len)
                ursa__timers_fire(&w->timers, ursa__worker_now(w));
            ursa__ring_poll(&w->ring);
            continue;
        }
        /* Idle. */
        ursa_time_t timeout = -1;
        if (w->timers.len) {
            ursa_time_t now = ursa__worker_now(w);
            ursa_time_t next = ursa__timers_next(&w->timers);
            if (rt->cfg.deterministic) {
                if (next > w->vclock)
                    w->vclock = next; /* virtual time jumps to the timer */
                ursa__timers_fire(&w->timers, w->vclock);
                continue;
            }
            if (next <= now) {
                ursa__timers_fire(&w->timers, now);
                continue;
            }
            timeout = next - now;
        }
        bool quiet = !w->timers.len && !w->ring.inflight;
        if (quiet && rt->cfg.deterministic && w->ntasks) {
            deadlock_report(w);
            return -EDEADLK;
        }
        ursa_time_t report_after = rt->cfg.deadlock_report_after;
        bool may_report = quiet && w->ntasks && report_after > 0 && !w->reported;
        if (may_report)
            timeout = report_after;
        /* Before sleeping in the kernel, watch the inbox for a moment: a
         * remote wake that lands now costs no kick and no kernel wake-up
         * (the common case for a lock handed between workers). */
        if (!rt->cfg.deterministic && w->ntasks && spin_for_inbox(w))
            continue;
        /* Dekker with inbox_push: sleeping=1; fence; look at the inbox. */
        atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed)) {
            atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
            continue;
        }
        /* Every worker asleep with nothing pending (tasks or not) counts as
         * idle; the one whose tasks wait reports when all are. relaxed: a
         * best-effort diagnostic. */
        bool count_idle = quiet && report_after > 0;
        if (count_idle)
            atomic_fetch_add_explicit(&rt->idle_workers, 1, memory_order_relaxed);
        ursa_time_t t0 = ursa__mono_now();
        ursa__ring_wait(&w->ring, timeout);
        if (count_idle) {
            unsigned idle = atomic_fetch_sub_explicit(&rt->idle_workers, 1, memory_order_relaxed);
            if (may_report && idle == rt->nworkers && !w->rq_head &&
                !atomic_load_explicit(&w->inbox, memory_order_relaxed) &&
                ursa__mono_now() - t0 >= report_after) {
                deadlock_report(w);
                w->reported = true;
            }
        }
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        if (w->timers.len)
            ursa__timers_fire(&w->timers, ursa__worker_now(w));
    }
}
