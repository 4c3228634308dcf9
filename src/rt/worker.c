/* The per-worker scheduler: run queues, inbox, switching between tasks,
 * the loop (the deadlock report is rt/deadlock.c). Finding work elsewhere,
 * sleeping and waking other workers: idle.c. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>

#include "../core/membarrier.h"
#include "deadlock.h"
#include "runtime.h"
#include "switch.h"
#include "task.h"

__thread ursa__worker_t *ursa__cur_worker __attribute__((tls_model("initial-exec")));

/* How many times tasks may hand the worker straight to one another before
 * the scheduler gets a turn (inbox, timers, ring). */
#define URSA__DIRECT_SWITCHES 32
/* Tasks run from the LIFO slot in a row before it queues like the others
 * (Tokio's limit): a ping-pong pair cannot starve the rest of the queue. */
#define URSA__LIFO_MAX 3

void ursa__worker_init(ursa__worker_t *w, ursa_rt_t *rt, unsigned index)
{
    const ursa_rt_config_t *c = &rt->cfg;
    w->rt = rt;
    w->index = (int)index;
    w->host = &rt->workers[index % rt->nhosts];
    w->ring.evfd = -1;
    atomic_init(&w->ring.kick_fd, -1);
    w->rng = c->seed + index;
    w->mode = rt->nworkers > 1   ? URSA__MODE_SHARED
              : c->deterministic ? URSA__MODE_DRAWN
                                 : URSA__MODE_SOLO;
    /* Deterministic with several workers: every switch goes through the
     * loop that draws the next worker (loop.c), for more interleavings. */
    w->direct_max = c->deterministic && rt->nworkers > 1 ? 0 : URSA__DIRECT_SWITCHES;
    w->vclock = URSA_SEC(1); /* above 0, so no deadline equals URSA_NOW */
    /* Alone in its runtime, the worker's thread is the one that wakes its
     * tasks but for the odd wake from another thread, which revokes the
     * bias (task.c) with a membarrier. */
    atomic_init(&w->wbias, rt->nworkers == 1 && ursa__membarrier_usable());
    atomic_init(&w->wbias_busy, 0);
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
    URSA__FOR_HOSTED(v, w) {
        v->thread_ctx = ursa__thread_ctx();
#if defined(URSA__TSAN)
        v->tsan_fiber = __tsan_get_current_fiber();
#endif
    }
}

void ursa__worker_unbind(void)
{
    ursa__cur_worker = NULL;
}

ursa_time_t ursa__worker_now(ursa__worker_t *w)
{
    /* Deterministic mode: one virtual clock, worker 0's. */
    return w->rt->cfg.deterministic ? w->rt->workers[0].vclock : ursa__mono_now();
}

int ursa_worker_index(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w && w->current ? w->index : -1;
}

unsigned ursa_worker_count(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w ? w->rt->nworkers : 0;
}

/* ---- run queues (owner thread only) ---- */

static inline void rq_push(ursa__worker_t *w, ursa_task_t *t)
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

/* The next task of rq. */
static inline ursa_task_t *rq_pop(ursa__worker_t *w)
{
    ursa_task_t *t = w->rq_head;
    w->rq_head = t->rq_next;
    if (!w->rq_head)
        w->rq_tail = NULL;
    w->rq_len--;
    return t;
}

/* Deterministic mode: the next task of rq is drawn from the seed's
 * stream. */
static __attribute__((noinline)) ursa_task_t *rq_pop_drawn(ursa__worker_t *w)
{
    if (w->rq_len < 2)
        return rq_pop(w);
    ursa_task_t *prev = NULL, *t = w->rq_head;
    size_t k = rng_next(w) % w->rq_len;
    while (k--) {
        prev = t;
        t = t->rq_next;
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

/* Whether another worker may run t now: it has not started and any worker
 * may run it, or it is migratable and has no I/O in flight. */
static bool movable(const ursa_task_t *t)
{
    return t->stack ? t->migratable && !t->io_busy : t->placement == URSA_PLACE_ANY;
}

void ursa__worker_queue(ursa__worker_t *w, ursa_task_t *t)
{
    if (w->mode != URSA__MODE_SHARED || !movable(t)) {
        rq_push(w, t);
        return;
    }
    uint32_t before = ursa__stealq_len(&w->lq);
    if (__builtin_expect(!ursa__stealq_push(&w->lq, t), 0)) {
        uint32_t n;
        ursa_task_t *first = ursa__stealq_overflow(&w->lq, t, &n), *last = first;
        while (last->rq_next)
            last = last->rq_next;
        ursa__inject_push(&w->rt->inject, first, last, n);
    }
    /* More than the one we would run next: another worker could help. The
     * scheduler tells the others at the end of its turn. A running task
     * tells them at once, each time the queue grows past one: nothing
     * bounds its turn, and whoever took the earlier work may sleep again
     * before the task ends (a sleeper saw fewer than two: idle.c). */
    if (ursa__stealq_len(&w->lq) > 1) {
        ursa__worker_t *cur = ursa__cur_worker;
        if (!cur || !cur->current)
            w->notify = true;
        else if (before <= 1)
            ursa__worker_notify(w->rt, w);
    }
}

bool ursa__worker_has_work(ursa__worker_t *w)
{
    return w->rq_head || (w->mode == URSA__MODE_SHARED && (w->lifo || ursa__stealq_len(&w->lq)));
}

void ursa__worker_adopt(ursa__worker_t *w, ursa_task_t *t)
{
    t->owner = (uint16_t)w->index;
    t->all_prev = NULL;
    t->all_next = w->all;
    if (w->all)
        w->all->all_prev = t;
    w->all = t;
    /* relaxed: only we write it; readers take it as a hint (idle.c). */
    atomic_store_explicit(&w->ntasks, atomic_load_explicit(&w->ntasks, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Takes t out of w's live-task list and hands it to its joiner. */
static void retire(ursa__worker_t *w, ursa_task_t *t)
{
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        w->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    /* release: see rt_empty (loop.c); only we write it. */
    atomic_store_explicit(&w->ntasks, atomic_load_explicit(&w->ntasks, memory_order_relaxed) - 1,
                          memory_order_release);
    ursa__task_done(t);
}

/* next_task for a worker with peers. */
static __attribute__((noinline)) ursa_task_t *next_task_shared(ursa__worker_t *w)
{
    ursa_task_t *t = w->lifo;
    if (t) {
        w->lifo = NULL;
        if (w->lifo_streak++ < URSA__LIFO_MAX)
            return t;
        ursa__worker_queue(w, t); /* its turn in the queue, like the others */
    }
    w->lifo_streak = 0;
    uint32_t tick = ++w->tick;
    if (tick % URSA__INJECT_EVERY == 0) {
        uint32_t n;
        t = ursa__inject_pop(&w->rt->inject, 1, &n);
        if (t)
            goto adopt;
    }
    if (w->rq_head && (tick & 1))
        return rq_pop(w);
    t = ursa__stealq_pop(&w->lq);
    if (t) {
        t->worker = w;
        return t;
    }
    if (w->rq_head)
        return rq_pop(w);
    uint32_t n;
    t = ursa__inject_pop(&w->rt->inject, 1, &n);
    if (!t)
        return NULL;
adopt:
    t->worker = w;
    if (t->owner == URSA__NO_OWNER)
        ursa__worker_adopt(w, t);
    return t;
}

static inline ursa_task_t *next_task(ursa__worker_t *w)
{
    if (__builtin_expect(w->mode == URSA__MODE_SOLO, 1))
        return w->rq_head ? rq_pop(w) : NULL;
    if (w->mode == URSA__MODE_DRAWN)
        return w->rq_head ? rq_pop_drawn(w) : NULL;
    return next_task_shared(w);
}

/* ---- inbox: lock-free multi-producer, single consumer ---- */

void ursa__worker_inbox_push(ursa__worker_t *w, ursa_task_t *t)
{
    ursa__task_lifo_push(&w->inbox, t);
    /* seq_cst fence: Dekker with the worker's sleeping=1; fence; check
     * inbox. Either it sees our push or we see it sleeping. */
    atomic_thread_fence(memory_order_seq_cst);
    ursa__worker_rouse(w);
}

void ursa__worker_drain_inbox(ursa__worker_t *w)
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
        ursa_task_t *t = fifo;
        fifo = t->rq_next;
        if (t->finished) {
            retire(w, t); /* ended on another worker, handed back to its owner */
            continue;
        }
        t->worker = w;
        if (t->owner == URSA__NO_OWNER)
            ursa__worker_adopt(w, t);
        ursa__worker_queue(w, t);
    }
}

void ursa__worker_spawn(ursa_rt_t *rt, ursa__worker_t *cur, ursa__worker_t *fixed, ursa_task_t *t)
{
    if (__builtin_expect(cur && !fixed && cur->mode == URSA__MODE_SOLO, 1)) {
        ursa__worker_adopt(cur, t); /* alone: the common case, kept short */
        rq_push(cur, t);
        return;
    }
    /* Adopted where it is spawned, unless it is fixed on another worker:
     * that one adopts it (drain_inbox), since it will only ever run there. */
    if (cur && (!fixed || fixed == cur))
        ursa__worker_adopt(cur, t);
    if (!fixed && cur) {
        t->worker = cur;
        if (cur->mode != URSA__MODE_SHARED)
            rq_push(cur, t);
        else
            ursa__worker_queue(cur, t);
    } else if (!fixed) { /* from outside: whichever worker is free takes it */
        ursa__inject_push(&rt->inject, t, t, 1);
        ursa__worker_notify(rt, NULL);
    } else if (fixed == cur) {
        rq_push(cur, t);
    } else {
        ursa__worker_inbox_push(fixed, t);
    }
}

/* t was woken on w (the waker's worker, where it will run): a migratable
 * task takes the LIFO slot, pushing the one there to its queue. */
static void wake_here(ursa__worker_t *w, ursa_task_t *t)
{
    if (t->migratable && w->mode == URSA__MODE_SHARED) {
        ursa_task_t *old = w->lifo;
        w->lifo = t;
        if (old)
            ursa__worker_queue(w, old);
        return;
    }
    ursa__worker_queue(w, t);
}

/* ursa__worker_wake but for its common case. */
static __attribute__((noinline)) void wake_slow(ursa_task_t *t)
{
    ursa__worker_t *home = t->worker, *cur = ursa__cur_worker;
    if (cur == home) {
        wake_here(cur, t);
    } else if (!t->migratable || t->io_busy) {
        if (cur && cur->host == home->host)
            ursa__worker_queue(home, t); /* its worker runs on our thread */
        else
            ursa__worker_inbox_push(home, t);
    } else if (cur && cur->rt == home->rt) {
        t->worker = cur; /* it moves: we own its enqueue (wstate was PARKED) */
        wake_here(cur, t);
    } else { /* woken from outside: whichever worker is free runs it */
        ursa__inject_push(&home->rt->inject, t, t, 1);
        ursa__worker_notify(home->rt, NULL);
    }
}

void ursa__worker_wake(ursa_task_t *t)
{
    ursa__worker_t *home = t->worker;
    if (__builtin_expect(home == ursa__cur_worker && !t->migratable, 1)) {
        rq_push(home, t); /* started and not migratable: only we may run it */
        return;
    }
    wake_slow(t); /* a tail call: the common path needs no stack frame */
}

/* ---- switching between the scheduler and tasks ---- */

/* Switches the worker from `from` to `to` (NULL: the scheduler, on the
 * thread's own stack), telling the sanitizers which stack and fiber run
 * next. `ending`: `from` never runs again (ASan drops its fake stack).
 * `fresh`: `to` starts (its first frame). Returns when something switches
 * back to `from`, maybe on another worker (a migratable task). */
static inline void jump(ursa__worker_t *w, ursa_task_t *from, ursa_task_t *to, bool ending,
                        bool fresh)
{
    void **save = from ? &from->sp : &w->sched_sp;
    void *load = to ? to->sp : w->sched_sp;
#if defined(URSA__ASAN)
    void *sched_fake = NULL;
    void **fake = ending ? NULL : from ? &from->asan_fake : &sched_fake;
    w->asan_from_sched = !from;
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
    /* Task to task: `to` resumes where it left, most likely from the call
     * site we leave from: a ret is predicted there (switch_x86_64.S). */
    if (from && to && !fresh)
        ursa__switch(save, load);
    else
        ursa__switch_jmp(save, load);
#if defined(URSA__ASAN)
    /* Resumed: on from's worker now, which may not be w (the scheduler:
     * on the worker whose task came back to it). Record the scheduler's
     * stack whenever we come from it. */
    ursa__worker_t *now = from ? from->worker : ursa__cur_worker;
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(fake ? *fake : NULL, &lo, &size);
    if (now->asan_from_sched) {
        now->asan_stack_lo = lo;
        now->asan_stack_size = size;
    }
#endif
}

/* What the task switched out left to do once its stack was free. */
static __attribute__((noinline)) void after_switch_do(ursa__worker_t *w, ursa_task_t *t)
{
    w->after = NULL;
    switch (w->after_op) {
    case URSA__AFTER_PARK: {
        uint32_t s = URSA__T_RUNNING;
        /* release: publishes its saved context to the waker that moves it
         * (PARKED -> RUNNING, acq_rel). */
        if (atomic_compare_exchange_strong_explicit(&t->wstate, &s, URSA__T_PARKED,
                                                    memory_order_release, memory_order_relaxed))
            return;
        /* Woken while switching out: consume it (an RMW, see task_wake;
         * acq_rel: the waker's writes are visible) and run it again. */
        atomic_exchange_explicit(&t->wstate, URSA__T_RUNNING, memory_order_acq_rel);
        ursa__worker_queue(w, t);
        return;
    }
    default: /* URSA__AFTER_YIELD */
        ursa__worker_queue(w, t);
        return;
    }
}

/* Runs on the far side of every switch, on the worker now running. */
static inline void after_switch(ursa__worker_t *w)
{
    ursa_task_t *t = w->after;
    if (__builtin_expect(t != NULL, 0))
        after_switch_do(w, t);
}

/* Gives t a stack and a first frame, so that switching to it runs it. */
static bool start_prepare(ursa__worker_t *w, ursa_task_t *t);

/* next, a task that has not started, starts here: next, or NULL if it got
 * no stack (the scheduler reports that) or only a new arena has one. That
 * runs on the scheduler's stack: here, on the stack of a task about to
 * park, its frames would cost the parked task a second resident page. */
static __attribute__((noinline)) ursa_task_t *start_here(ursa__worker_t *w, ursa_task_t *next)
{
    if (ursa__stack_at_hand(&w->stacks) && start_prepare(w, next))
        return next;
    rq_push_front(w, next);
    return NULL;
}

/* Lonely yields between two that give the thread's CPU away although
 * the process has a spare one. */
#define URSA__LONELY_YIELDS 16u

/* A yield found nothing else to run: a task that yields in a loop waits
 * for another thread. With no spare CPU, let that thread have the CPU; with
 * one, still every URSA__LONELY_YIELDS yields: on a loaded machine the two
 * threads may share a CPU all the same, and a task that only spins holds
 * it until the kernel preempts it (~20 ms a round). */
static void yield_alone(ursa__worker_t *w)
{
    if (!ursa__spin_allowed() || ++w->lonely_yields % URSA__LONELY_YIELDS == 0)
        sched_yield();
}

/* The current task t of w leaves the CPU: to the next ready task directly
 * (one context switch instead of two, and no pass through the scheduler
 * loop) while the budget lasts, else to the scheduler (inbox, timers,
 * ring). t is already parked or queued if it is to run again. */

/* A worker alone in its runtime: nothing moves, nothing is deferred, and
 * the task resumed needs no after_switch (the switch path of every
 * single-worker workload, kept as short as it was before stealing). */
/* Modes SOLO and DRAWN: next is the task popped (by switch_solo) or
 * NULL (pops it here, or goes to the scheduler). */
static __attribute__((noinline)) void switch_alone_slow(ursa__worker_t *w, ursa_task_t *t,
                                                        ursa_task_t *next)
{
    if (!next && w->direct_budget && w->rq_head) {
        w->direct_budget--;
        next = w->mode == URSA__MODE_SOLO ? rq_pop(w) : rq_pop_drawn(w);
    }
    if (next == t) {
        yield_alone(w);
        return;
    }
    bool fresh = next && !next->stack;
    if (fresh)
        next = start_here(w, next);
    if (next) {
        w->current = next;
        ursa__cur_ctx = &next->ctx;
    }
    jump(w, t, next, false, fresh);
}

/* Mode SOLO. Every call in tail position, so that the common path (the
 * next task has run before) needs no stack frame. */
static inline __attribute__((always_inline)) void switch_solo(ursa__worker_t *w, ursa_task_t *t)
{
    if (__builtin_expect(!w->direct_budget || !w->rq_head, 0)) {
        switch_alone_slow(w, t, NULL);
        return;
    }
    w->direct_budget--;
    ursa_task_t *next = rq_pop(w);
    if (__builtin_expect(next == t || !next->stack, 0)) {
        switch_alone_slow(w, t, next);
        return;
    }
    w->current = next;
    ursa__cur_ctx = &next->ctx;
    jump(w, t, next, false, false);
}

/* Hosted: w has nothing to run next, but another worker of this thread
 * has a started task first in its private queue (a fixed task woken by
 * one of ours): t, already parked or queued, switches to it directly, and
 * that worker borrows w's scheduler (the loop of the thread runs every
 * worker of it, and the switch back to it says whose task came back: see
 * run_task). A request and its reply between two such workers then cost
 * two task switches, as on one worker. False if there was none. */
static bool switch_neighbour(ursa__worker_t *w, ursa_task_t *t)
{
    URSA__FOR_HOSTED(v, w->host) {
        ursa_task_t *next = v->rq_head;
        if (v == w || !next || !next->stack || v->lifo)
            continue;
        rq_pop(v);
        v->sched_sp = w->sched_sp;
        v->direct_budget = w->direct_budget;
#if defined(URSA__ASAN)
        v->asan_stack_lo = w->asan_stack_lo;
        v->asan_stack_size = w->asan_stack_size;
#endif
        w->current = NULL;
        ursa__cur_worker = v;
        v->current = next;
        ursa__cur_ctx = &next->ctx;
        jump(v, t, next, false, false);
        after_switch(t->worker);
        return true;
    }
    return false;
}

bool ursa__worker_neighbour_has_work(ursa__worker_t *w)
{
    if (!ursa__hosts_several(w->host))
        return false;
    URSA__FOR_HOSTED(v, w->host)
        if (v != w && ursa__worker_has_work(v))
            return true;
    return false;
}

/* A worker with peers: op is what happens to t once its stack is free
 * (see after_switch), and the task resumed does what the one before it
 * left to do. */
static void switch_shared(ursa__worker_t *w, ursa_task_t *t, int op)
{
    ursa__worker_turn_end(w);
    ursa_task_t *next = NULL;
    bool fresh = false;
    if (w->direct_budget) {
        w->direct_budget--;
        next = next_task_shared(w);
        if (next == t || (!next && op == URSA__AFTER_YIELD)) {
            /* Alone on its worker: a task of another worker of this thread
             * may be the one it waits for. */
            if (next == t && op == URSA__AFTER_NONE && ursa__hosts_several(w->host)) {
                rq_push(w, t);
                if (switch_neighbour(w, t))
                    return;
                rq_pop(w); /* t again */
            }
            yield_alone(w);
            return;
        }
        fresh = next && __builtin_expect(!next->stack, 0);
        if (fresh)
            next = start_here(w, next);
        else if (!next && op == URSA__AFTER_NONE && ursa__hosts_several(w->host) &&
                 switch_neighbour(w, t))
            return;
    }
    if (op != URSA__AFTER_NONE) {
        w->after = t;
        w->after_op = op;
    }
    if (next) {
        w->current = next;
        ursa__cur_ctx = &next->ctx;
    }
    jump(w, t, next, false, fresh);
    after_switch(t->worker);
}

void ursa__worker_switch_out(ursa_task_t *t, int op)
{
    ursa__worker_t *w = t->worker;
    if (__builtin_expect(w->mode == URSA__MODE_SOLO, 1))
        switch_solo(w, t);
    else if (w->mode == URSA__MODE_DRAWN)
        switch_alone_slow(w, t, NULL);
    else
        switch_shared(w, t, op);
}

void ursa__worker_yield(ursa_task_t *t)
{
    ursa__worker_t *w = t->worker;
    if (__builtin_expect(w->mode == URSA__MODE_SOLO, 1)) {
        rq_push(w, t);
        switch_solo(w, t);
    } else if (w->mode == URSA__MODE_DRAWN) {
        rq_push(w, t); /* the seed may pick us again */
        switch_alone_slow(w, t, NULL);
    } else if (t->migratable) {
        switch_shared(w, t, URSA__AFTER_YIELD); /* queued once switched out */
    } else {
        rq_push(w, t); /* only our own worker runs us */
        switch_shared(w, t, URSA__AFTER_NONE);
    }
}

/* A task ended: sweep its ledger, give back its stack, and hand it to its
 * owner, which unlinks it and hands it to its joiner. */
static inline void finish_task(ursa__worker_t *w, ursa_task_t *t)
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
    t->finished = true;
    if (__builtin_expect(t->owner == w->index, 1))
        retire(w, t);
    else /* a stolen or migrated task */
        ursa__worker_inbox_push(&w->rt->workers[t->owner], t);
}

/* Where a task's stack starts: runs its function, then leaves for good. */
static void task_main(void *p)
{
    ursa_task_t *t = p;
    ursa__worker_t *w = t->worker;
#if defined(URSA__ASAN)
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(NULL, &lo, &size);
    if (w->asan_from_sched) {
        w->asan_stack_lo = lo;
        w->asan_stack_size = size;
    }
#endif
    after_switch(w); /* the task that started us directly, if any */
    t->result = t->fn(t->arg);
    t->finished = true; /* the scheduler we go to ends it */
    jump(t->worker, t, NULL, true, false);
    __builtin_unreachable();
}

static bool start_prepare(ursa__worker_t *w, ursa_task_t *t)
{
    t->stack = ursa__stack_get(&w->stacks);
    if (!t->stack)
        return false;
    /* The ledger's first records sit at the top of the stack, above the
     * frames: a parked task holding nothing keeps them in the page its
     * frames touch anyway, not in its descriptor. */
    ursa__ledger_rec_t *recs = (ursa__ledger_rec_t *)t->stack - URSA__LEDGER_INLINE;
    ursa__ledger_init(&t->ctx.ledger, recs);
    t->sp = ursa__switch_make(recs, task_main, t);
#if defined(URSA__TSAN)
    t->tsan_fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
    return true;
}

/* The scheduler of w is back from a task of w: whoever switched back. */
static inline void task_came_back(ursa__worker_t *w)
{
    ursa_task_t *t = w->current;
    ursa__cur_ctx = w->thread_ctx;
    w->current = NULL;
    bool done = t->finished; /* read before after_switch lets it run elsewhere */
    after_switch(w);
    if (done)
        finish_task(w, t);
}

/* The scheduler that w lent to `back`, another worker of this thread
 * (switch_neighbour), is back from a task of back's. */
static __attribute__((noinline)) void task_came_back_elsewhere(ursa__worker_t *w,
                                                               ursa__worker_t *back)
{
    task_came_back(back);
    ursa__worker_turn_end(back);
    ursa__cur_worker = w;
}

static void run_task(ursa__worker_t *w, ursa_task_t *t)
{
    /* What the scheduler deferred goes out before a task, whose turn has
     * no bound, takes the thread. */
    ursa__worker_turn_end(w);
    if (!t->stack && !start_prepare(w, t)) {
        fprintf(stderr, "ursa: no memory for the stack of task '%s'\n", t->name);
        t->no_stack = true;
        finish_task(w, t);
        return;
    }
    w->current = t;
    ursa__cur_ctx = &t->ctx;
    w->direct_budget = w->direct_max;
    jump(w, NULL, t, false, false);
    /* Tasks may have handed over to each other, also to tasks of another
     * worker of this thread: the current worker says whose came back. */
    ursa__worker_t *back = ursa__cur_worker;
    if (__builtin_expect(back != w, 0))
        task_came_back_elsewhere(w, back);
    else
        task_came_back(w);
}

void ursa__worker_run_batch(ursa__worker_t *w)
{
    size_t n = w->rq_len;
    if (w->mode == URSA__MODE_SHARED)
        n += ursa__stealq_len(&w->lq) + (w->lifo != NULL);
    for (ursa_task_t *t; n && (t = next_task(w)); n--) {
        run_task(w, t);
        ursa__worker_turn_end(w);
    }
    if (ursa__timers_any(&w->timers))
        ursa__timers_fire(&w->timers, ursa__worker_now(w));
    ursa__ring_poll(&w->ring);
}

bool ursa__worker_run_one(ursa__worker_t *w)
{
    ursa_task_t *t = next_task(w);
    if (!t)
        return false;
    run_task(w, t);
    return true;
}

uint64_t ursa__worker_draw(ursa__worker_t *w)
{
    return rng_next(w);
}
