/* The per-worker scheduler loop: run queue, inbox, timers, io_uring. */
#include "exec.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

static void kick(ursa__worker_t *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->evfd, &one, sizeof one);
    (void)r; /* EAGAIN means the counter is already non-zero: awake anyway */
}

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
        kick(w);
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

/* ---- timers: a binary min-heap of tasks keyed on timer_when ---- */

static void heap_set(ursa__worker_t *w, size_t i, ursa_task_t *t)
{
    w->heap[i] = t;
    t->timer_idx = i;
}

static void heap_up(ursa__worker_t *w, size_t i)
{
    ursa_task_t *t = w->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p]->timer_when <= t->timer_when)
            break;
        heap_set(w, i, w->heap[p]);
        i = p;
    }
    heap_set(w, i, t);
}

static void heap_down(ursa__worker_t *w, size_t i)
{
    ursa_task_t *t = w->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_len)
            break;
        if (c + 1 < w->heap_len && w->heap[c + 1]->timer_when < w->heap[c]->timer_when)
            c++;
        if (t->timer_when <= w->heap[c]->timer_when)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, t);
}

void ursa__timer_arm(ursa__worker_t *w, ursa_task_t *t, ursa_time_t when)
{
    if (w->heap_len == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        ursa_task_t **h = realloc(w->heap, cap * sizeof *h);
        if (!h) {
            /* No room to remember the deadline: poll instead, by waking at
             * once; the block loop re-checks the clock. */
            ursa__task_wake(t);
            return;
        }
        w->heap = h;
        w->heap_cap = cap;
    }
    t->timer_when = when;
    w->heap[w->heap_len] = t;
    t->timer_idx = w->heap_len++;
    heap_up(w, t->timer_idx);
}

void ursa__timer_disarm(ursa__worker_t *w, ursa_task_t *t)
{
    size_t i = t->timer_idx;
    if (i == SIZE_MAX)
        return;
    t->timer_idx = SIZE_MAX;
    ursa_task_t *last = w->heap[--w->heap_len];
    if (i == w->heap_len)
        return;
    heap_set(w, i, last);
    heap_up(w, i);
    heap_down(w, last->timer_idx);
}

static void fire_timers(ursa__worker_t *w, ursa_time_t now)
{
    while (w->heap_len && w->heap[0]->timer_when <= now) {
        ursa_task_t *t = w->heap[0];
        ursa__timer_disarm(w, t);
        ursa__task_wake(t);
    }
}

/* ---- io_uring ---- */

static void arm_eventfd(ursa__worker_t *w)
{
    struct io_uring_sqe *sqe = ursa__sqe(w);
    io_uring_prep_read(sqe, w->evfd, &w->evbuf, sizeof w->evbuf, 0);
    io_uring_sqe_set_data64(sqe, URSA__UD_EVENTFD);
    w->ev_armed = true;
}

struct io_uring_sqe *ursa__sqe(ursa__worker_t *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    while (!sqe) {
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void reap(ursa__worker_t *w)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        n++;
        uint64_t ud = cqe->user_data;
        if (ud == URSA__UD_IGNORE)
            continue;
        if (ud == URSA__UD_EVENTFD) {
            w->ev_armed = false;
            continue;
        }
        ursa__io_op_t *op = (ursa__io_op_t *)(uintptr_t)ud;
        op->res = cqe->res;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed); /* same thread */
        w->io_inflight--;
        ursa__task_wake(op->task);
    }
    io_uring_cq_advance(&w->ring, n);
    if (!w->ev_armed)
        arm_eventfd(w);
}

/* Busy path: enter the kernel only if something is in flight or queued. */
static void poll_ring(ursa__worker_t *w)
{
    if (!w->ring_ok)
        return;
    if (w->io_inflight || io_uring_sq_ready(&w->ring)) {
        io_uring_submit_and_get_events(&w->ring);
        reap(w);
    }
}

static void wait_ring(ursa__worker_t *w, ursa_time_t timeout)
{
    if (!w->ring_ok) {
        struct pollfd p = {.fd = w->evfd, .events = POLLIN};
        int ms = timeout < 0 ? -1 : (int)((timeout + 999999) / 1000000);
        if (poll(&p, 1, ms) > 0) {
            uint64_t v;
            ssize_t r = read(w->evfd, &v, sizeof v);
            (void)r;
        }
        return;
    }
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = timeout / 1000000000,
                                   .tv_nsec = timeout % 1000000000};
    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, timeout < 0 ? NULL : &ts, NULL);
    reap(w);
}

int ursa__worker_evfd_init(ursa__worker_t *w)
{
    w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return w->evfd < 0 ? -errno : 0;
}

void ursa__worker_ring_init(ursa__worker_t *w)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* One issuer and deferred task work: completions run only when we ask,
     * which suits a loop that owns its ring. Older kernels: plain ring. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(256, &w->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(256, &w->ring, &p);
    }
    w->ring_ok = rc == 0;
    if (w->ring_ok)
        arm_eventfd(w);
}

void ursa__worker_ring_fini(ursa__worker_t *w)
{
    if (w->ring_ok)
        io_uring_queue_exit(&w->ring);
    w->ring_ok = false;
    w->ev_armed = false;
}

void ursa__worker_ring_exit(ursa__worker_t *w)
{
    ursa__worker_ring_fini(w);
    if (w->evfd >= 0)
        close(w->evfd);
    w->evfd = -1;
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
        ursa__timer_disarm(w, t);
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
            if (w->heap_len)
                fire_timers(w, ursa__worker_now(w));
            poll_ring(w);
            continue;
        }
        /* Idle. */
        ursa_time_t timeout = -1;
        if (w->heap_len) {
            ursa_time_t now = ursa__worker_now(w);
            ursa_time_t next = w->heap[0]->timer_when;
            if (rt->cfg.deterministic) {
                if (next > w->vclock)
                    w->vclock = next; /* virtual time jumps to the timer */
                fire_timers(w, w->vclock);
                continue;
            }
            if (next <= now) {
                fire_timers(w, now);
                continue;
            }
            timeout = next - now;
        }
        bool quiet = !w->heap_len && !w->io_inflight;
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
        wait_ring(w, timeout);
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
        if (w->heap_len)
            fire_timers(w, ursa__worker_now(w));
    }
}
