/* The per-worker scheduler: run queue, inbox, switching between tasks, the
 * loop with its idle/sleep handshake (the deadlock report is rt/deadlock.c). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>

#include "deadlock.h"
#include "runtime.h"
#include "switch.h"
#include "task.h"

__thread ursa__worker_t *ursa__cur_worker __attribute__((tls_model("initial-exec")));

/* How many times tasks may hand the worker straight to one another before
 * the scheduler gets a turn (inbox, timers, ring). */
#define URSA__DIRECT_SWITCHES 32

/* How long an idle worker watches its inbox before sleeping in the kernel:
 * about one kernel sleep/wake round trip, so the spin never costs more than
 * the sleep it tries to avoid. `pause` lasts from a few to ~140 cycles
 * depending on the CPU, so the budget is time, read every 64 pauses. */
#define URSA__IDLE_SPIN_NS 20000

void ursa__worker_init(ursa__worker_t *w, ursa_rt_t *rt, unsigned index)
{
    const ursa_rt_config_t *c = &rt->cfg;
    w->rt = rt;
    w->index = (int)index;
    w->ring.evfd = -1;
    w->rng = c->seed;
    w->vclock = URSA_SEC(1); /* above 0, so no deadline equals URSA_NOW */
    ursa__stack_pool_init(&w->stacks, c->stack_size, c->stack_cache, !c->no_stack_guard);
}

void ursa__worker_fini(ursa__worker_t *w, bool tasks_left)
{
    ursa__ring_exit(&w->ring);
    if (!tasks_left)
        ursa__stack_pool_fini(&w->stacks);
    ursa__task_pool_drain(w);
    ursa__timers_fini(&w->timers);
}

void ursa__worker_bind(ursa__worker_t *w)
{
    ursa__cur_worker = w;
    ursa__thread_ctx();
#if defined(URSA__TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void ursa__worker_unbind(void)
{
    ursa__cur_worker = NULL;
}

ursa_time_t ursa__worker_now(ursa__worker_t *w)
{
    return w->rt->cfg.deterministic ? w->vclock : ursa__mono_now();
}

int ursa_worker_index(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w && w->current ? w->index : -1;
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

static void rq_push_front(ursa__worker_t *w, ursa_task_t *t)
{
    t->rq_next = w->rq_head;
    w->rq_head = t;
    if (!w->rq_tail)
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

/* The next task to run: the head, or in deterministic mode one drawn from
 * the seed's stream. */
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
    ursa__task_lifo_push(&w->inbox, t);
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

void ursa__worker_enqueue(ursa__worker_t *w, ursa_task_t *t)
{
    if (w == ursa__cur_worker)
        rq_push(w, t);
    else
        inbox_push(w, t);
}

/* ---- switching between the scheduler and tasks ---- */

/* Switches the worker from `from` to `to` (NULL: the scheduler, on the
 * thread's own stack), telling the sanitizers which stack and fiber run
 * next. `ending`: `from` never runs again (ASan drops its fake stack).
 * Returns when something switches back to `from`. */
static inline void jump(ursa__worker_t *w, ursa_task_t *from, ursa_task_t *to, bool ending)
{
    void **save = from ? &from->sp : &w->sched_sp;
    void *load = to ? to->sp : w->sched_sp;
#if defined(URSA__ASAN)
    void *sched_fake = NULL;
    void **fake = ending ? NULL : from ? &from->asan_fake : &sched_fake;
    if (to)
        __sanitizer_start_switch_fiber(fake, ursa__stack_lo(&w->stacks, to->stack), w->stacks.size);
    else
        __sanitizer_start_switch_fiber(fake, w->asan_stack_lo, w->asan_stack_size);
#else
    (void)ending;
#endif
#if defined(URSA__TSAN)
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_fiber, 0);
#endif
    ursa__switch(save, load);
#if defined(URSA__ASAN)
    __sanitizer_finish_switch_fiber(fake ? *fake : NULL, NULL, NULL);
#endif
}

/* Switches from the current task t to `to`: another task, or the
 * scheduler (to == NULL). Returns when something switches back to t. */
static void switch_from(ursa_task_t *t, ursa_task_t *to)
{
    ursa__worker_t *w = t->worker;
    if (to) {
        w->current = to;
        ursa__cur_ctx = &to->ctx;
    }
    jump(w, t, to, false);
}

/* If another task that has already run is next in the run queue, switch
 * to it directly: one context switch instead of two, and no pass through
 * the scheduler loop. New tasks (no stack yet) start from the scheduler. */
void ursa__worker_suspend(ursa_task_t *t)
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
        rq_push_front(w, next); /* not started: back to the front */
    }
    switch_from(t, NULL);
}

void ursa__worker_yield(ursa_task_t *t)
{
    rq_push(t->worker, t);
    ursa__worker_suspend(t);
}

/* A task ended: sweep its ledger, give back its stack and timer, unlink
 * it, and hand it to its joiner. */
static void finish_task(ursa__worker_t *w, ursa_task_t *t)
{
    /* The ledger's records, not the (dead) frames, say what to release. */
    ursa__ledger_sweep(&t->ctx.ledger, t->name);
    if (t->stack) {
#if defined(URSA__TSAN)
        __tsan_destroy_fiber(t->tsan_fiber);
#endif
        ursa__stack_put(&w->stacks, t->stack);
        t->stack = NULL;
    }
    if (t->timer_idx != URSA__TIMER_NONE)
        ursa__timer_disarm(&w->timers, t);
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        w->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    w->ntasks--;
    ursa__task_done(t);
}

/* Where a task's stack starts: runs its function, then leaves for good. */
static void task_main(void *p)
{
    ursa_task_t *t = p;
    ursa__worker_t *w = t->worker;
#if defined(URSA__ASAN)
    __sanitizer_finish_switch_fiber(NULL, &w->asan_stack_lo, &w->asan_stack_size);
#endif
    t->result = t->fn(t->arg);
    t->finished = true;
    w = t->worker;
    jump(w, t, NULL, true);
    __builtin_unreachable();
}

static void run_task(ursa__worker_t *w, ursa_task_t *t)
{
    if (!t->stack) {
        t->stack = ursa__stack_get(&w->stacks);
        if (!t->stack) {
            fprintf(stderr, "ursa: no memory for the stack of task '%s'\n", t->name);
            t->no_stack = true;
            finish_task(w, t);
            return;
        }
        /* The ledger's first records sit at the top of the stack, above
         * the frames: a parked task holding nothing keeps them in the page
         * its frames touch anyway, not in its descriptor. */
        ursa__ledger_rec_t *recs = (ursa__ledger_rec_t *)t->stack - URSA__LEDGER_INLINE;
        ursa__ledger_init(&t->ctx.ledger, recs);
        t->sp = ursa__switch_make(recs, task_main, t);
#if defined(URSA__TSAN)
        t->tsan_fiber = __tsan_create_fiber(0);
        __tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
    }
    w->current = t;
    ursa__cur_ctx = &t->ctx;
    w->direct_budget = URSA__DIRECT_SWITCHES;
    jump(w, NULL, t, false);
    /* Tasks may have handed over to each other: whoever switched back. */
    t = w->current;
    ursa__cur_ctx = ursa__thread_ctx();
    w->current = NULL;
    if (t->finished)
        finish_task(w, t);
}

/* ---- the loop ---- */

static void cancel_all(ursa__worker_t *w)
{
    for (ursa_task_t *t = w->all; t; t = t->all_next) {
        /* release: ordered before the wake, as in ursa_task_cancel. */
        atomic_store_explicit(&t->cancel, 1, memory_order_release);
        ursa__task_wake(t);
    }
}

static bool spin_for_inbox(ursa__worker_t *w)
{
    ursa_time_t until = ursa__mono_now() + URSA__IDLE_SPIN_NS;
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
            ursa__deadlock_report(w);
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
                ursa__deadlock_report(w);
                w->reported = true;
            }
        }
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        if (w->timers.len)
            ursa__timers_fire(&w->timers, ursa__worker_now(w));
    }
}
