/* A worker: one thread's scheduler. It owns its run queues, an inbox for
 * wakes and spawns from other threads, timers, an io_uring, and the tasks
 * it adopted (spawned there); the loop (ursa__worker_run) runs ready tasks,
 * fires timers, reaps the ring, finds work elsewhere when it has none
 * (rt/idle.c) and sleeps when there is nothing to do.
 *
 * Run queues, taken in this order:
 *   lifo   one migratable task woken here, run next (a request's server
 *          runs right after its client asked); at most URSA__LIFO_MAX
 *          times in a row, then it queues like the others;
 *   rq     private FIFO: tasks that may not move (fixed or local
 *          placement; started and not migratable; I/O in flight);
 *   lq     stealable FIFO (rt/stealq.h): unstarted tasks of default
 *          placement and runnable migratable tasks; rq and lq alternate;
 *   inject the runtime's queue (rt/inject.h), every URSA__INJECT_EVERY
 *          ticks and when the others are empty.
 * With one worker everything goes to rq (nothing could steal it), so the
 * deterministic mode's seeded choice still sees every runnable task. */
#ifndef URSA_RT_WORKER_H
#define URSA_RT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "ring.h"
#include "runtime.h"
#include "sanitizer.h"
#include "stack.h"
#include "stealq.h"
#include "timer.h"
#include "ursa/rt.h"

typedef struct ursa__worker ursa__worker_t;
typedef struct ursa__ctx ursa__ctx_t;

/* wbias while a revoke is under way: neither biased (1) nor over (0). */
#define URSA__WBIAS_REVOKING 2u

/* Kicks a worker can defer to the end of its turn before it must flush. */
#define URSA__KICKS_MAX 8

/* A worker's mode. SOLO: the runtime's only worker (one FIFO, nothing
 * moves); DRAWN: the same in deterministic mode (the next task is drawn
 * from the seed's stream); SHARED: one of several (stealing, LIFO slot). */
enum { URSA__MODE_SOLO, URSA__MODE_DRAWN, URSA__MODE_SHARED };

/* What the switch that just happened leaves to do for the task switched
 * out (done on the other side of the switch, once its stack is free). */
enum { URSA__AFTER_NONE, URSA__AFTER_PARK, URSA__AFTER_YIELD };

struct ursa__worker {
    /* Remote wakes and spawns: a lock-free LIFO, taken whole and reversed.
     * Hot for other threads, so alone on its cache line. */
    _Alignas(64) _Atomic(ursa_task_t *) inbox;
    _Atomic uint32_t sleeping; /* URSA__AWAKE, or how it sleeps (idle.c) */
    uint32_t sleep_how;        /* how the last sleep_begin said (owner only) */
    /* When the kicker of this sleep chose to wake it (0: no kick yet): the
     * woken worker measures the wake latency with it (core/spin.h). */
    _Atomic int64_t kicked_at;
    /* Task descriptors freed by other threads (Treiber stack; the owner
     * takes it whole, so no ABA). */
    _Atomic(ursa_task_t *) remote_free;
    /* Live tasks adopted here: written by the owner, read by any worker
     * deciding whether a stopping runtime is done. */
    _Atomic size_t ntasks;
    ursa__stealq_t lq;
    _Alignas(64) ursa_rt_t *rt;
    /* The wake bias (rt/task.c): 1 while only this worker's thread changes
     * the wake state of the tasks from its descriptor pool, with plain
     * loads and stores; URSA__WBIAS_REVOKING, then 0 for good once another
     * thread woke one of them. wbias_busy: the owner is inside such a
     * change (the revoker waits for it to leave). */
    _Atomic uint32_t wbias;
    _Atomic uint32_t wbias_busy;
    int index;
    uint8_t mode; /* URSA__MODE_*: how the next task is chosen */
    /* The worker whose thread runs this one (itself, unless the runtime
     * has fewer threads than workers): its ring carries our I/O, its sleep
     * is ours (rt/loop.c, rt/idle.c). */
    ursa__worker_t *host;
    ursa__ring_t ring;
    ursa_task_t *rq_head, *rq_tail;
    size_t rq_len;
    ursa_task_t *lifo;    /* a migratable task woken here, run next */
    unsigned lifo_streak; /* tasks taken from lifo in a row */
    uint32_t tick;        /* tasks taken (inject and rq/lq turns) */
    ursa_task_t *all;     /* live tasks adopted here */
    ursa_task_t *after;   /* the task switched out, for after_switch */
    int after_op;         /* URSA__AFTER_* */
    ursa__timers_t timers;
    ursa__stack_pool_t stacks;
    ursa_task_t *task_free; /* descriptor pool, owner only */
    void *task_chunks;      /* chunk list, freed with the runtime */
    ursa_task_t *current;
    ursa__ctx_t *thread_ctx; /* the bound thread's own wait context */
    void *sched_sp;
    unsigned direct_budget; /* task-to-task switches left before the scheduler */
    unsigned direct_max;    /* the budget each turn starts with */
    unsigned lonely_yields; /* yields that found nothing else to run */
    bool searching;         /* counted in rt->nsearching */
    union {                 /* what the turn deferred, tested as one word */
        struct {
            bool notify;    /* lq grew past what we run next: wake a sleeper */
            uint8_t nkicks; /* kicks[] in use */
        };
        uint16_t deferred;
    };
    ursa__worker_t *kicks[URSA__KICKS_MAX]; /* sleeping workers to kick */
    uint8_t kick_how[URSA__KICKS_MAX];      /* and how each sleeps */
    ursa_time_t vclock; /* deterministic mode: worker 0's is the runtime's clock */
    uint64_t rng;
    bool reported; /* a deadlock report since the last progress */
    pthread_t thread;
#if defined(URSA__ASAN)
    const void *asan_stack_lo;
    size_t asan_stack_size;
    bool asan_from_sched; /* the switch in progress left the scheduler */
#endif
#if defined(URSA__TSAN)
    void *tsan_fiber;
#endif
};

/* The worker the calling thread runs, or NULL. */
extern __thread ursa__worker_t *ursa__cur_worker __attribute__((tls_model("initial-exec")));

/* Sets up worker `index` of rt (no eventfd, no ring, no thread yet). */
void ursa__worker_init(ursa__worker_t *w, ursa_rt_t *rt, unsigned index);
/* Frees what the worker kept: ring, eventfd, stacks, descriptors, timers.
 * tasks_left: some worker of the runtime still has tasks (ursa_rt_free
 * could not run worker 0: they are leaked), so no stack is unmapped under
 * their frames, where wait nodes may still be queued. */
void ursa__worker_fini(ursa__worker_t *w, bool tasks_left);
/* The calling thread runs w from now on / no longer. */
void ursa__worker_bind(ursa__worker_t *w);
void ursa__worker_unbind(void);

/* The worker's clock: virtual in deterministic mode. */
ursa_time_t ursa__worker_now(ursa__worker_t *w);
/* Queues a new task t of rt (from any thread; cur: the calling worker if
 * it is one of rt's, else NULL): on cur, else on the inject queue; or,
 * with a fixed placement, on `fixed`. */
void ursa__worker_spawn(ursa_rt_t *rt, ursa__worker_t *cur, ursa__worker_t *fixed, ursa_task_t *t);
/* Makes a parked task runnable again (from any thread): on the waking
 * worker if t is migratable, else on its own. */
void ursa__worker_wake(ursa_task_t *t);
/* The current task t stops running; op says what happens to it once it
 * is switched out: URSA__AFTER_PARK (a migratable task parks: RUNNING ->
 * PARKED), URSA__AFTER_YIELD (a migratable task queues), or
 * URSA__AFTER_NONE (a task that only its own worker resumes, already
 * parked or queued). Returns when t runs again, possibly on another worker
 * if t is migratable. */
void ursa__worker_switch_out(ursa_task_t *t, int op);
/* The current task t goes to the back of its queue and lets the others
 * run. */
void ursa__worker_yield(ursa_task_t *t);
/* Runs worker w until root finishes (root != NULL) or, when the runtime
 * is stopping, until no task is left. -EDEADLK in deterministic mode when
 * nothing can make progress. */
int ursa__worker_run(ursa__worker_t *w, ursa_task_t *root);

/* ---- between worker.c and idle.c ---- */

/* Enters t in w's live-task list (owner thread only). */
void ursa__worker_adopt(ursa__worker_t *w, ursa_task_t *t);
/* Queues a runnable task at the back of w's rq or lq (owner thread). */
void ursa__worker_queue(ursa__worker_t *w, ursa_task_t *t);
/* Whether w has a task to run (owner thread). */
bool ursa__worker_has_work(ursa__worker_t *w);
/* Whether another worker of w's thread has one (owner thread). */
bool ursa__worker_neighbour_has_work(ursa__worker_t *w);
/* Pushes t onto w's inbox (any thread) and kicks w if it sleeps. */
void ursa__worker_inbox_push(ursa__worker_t *w, ursa_task_t *t);

/* ---- worker.c, for the loops (loop.c) ---- */

/* Moves the inbox's tasks to the run queues; retires the tasks handed
 * back. */
void ursa__worker_drain_inbox(ursa__worker_t *w);
/* Runs the tasks ready now (each with those it hands over to directly),
 * then fires due timers and reaps the ring. */
void ursa__worker_run_batch(ursa__worker_t *w);
/* Runs the next ready task (LIFO slot, rq, lq, inject queue) until
 * something switches back to the scheduler: false if there was none. */
bool ursa__worker_run_one(ursa__worker_t *w);
/* The next number of w's seeded stream (deterministic mode). */
uint64_t ursa__worker_draw(ursa__worker_t *w);

/* ---- idle.c: finding work, sleeping, waking others ---- */

/* How a worker sleeps (its `sleeping` word): not at all, in its ring
 * (I/O in flight: woken by a completion, a MSG_RING or its eventfd), or
 * on the `sleeping` word itself (nothing in flight: woken by FUTEX_WAKE,
 * about 1 µs cheaper per wake than the ring's on one CPU, bench/floor.c). */
enum { URSA__AWAKE = 0, URSA__ASLEEP_RING = 1, URSA__ASLEEP_FUTEX = 2, URSA__ASLEEP_HOSTED = 3 };
/* URSA__ASLEEP_HOSTED: a worker whose host sleeps; waking it wakes the host. */

/* The workers host h runs (h: a worker with index < nhosts): h, h +
 * nhosts, h + 2 nhosts, ...; just h when every worker has a thread. */
#define URSA__FOR_HOSTED(v, h)                                                                   \
    for (ursa__worker_t *v = (h); v < (h)->rt->workers + (h)->rt->nworkers; v += (h)->rt->nhosts)
/* Whether host h runs more than one worker. */
static inline bool ursa__hosts_several(const ursa__worker_t *h)
{
    return (unsigned)h->index + h->rt->nhosts < h->rt->nworkers;
}
/* Whether a worker host h runs has live tasks (tasks) or, else, a task in
 * its inbox (host thread). */
static inline bool ursa__hosted_any(ursa__worker_t *h, bool tasks)
{
    URSA__FOR_HOSTED(v, h)
        /* relaxed: ntasks, a count only this thread writes; the inbox, a
         * look (drain_inbox's exchange does the acquire). */
        if (tasks ? atomic_load_explicit(&v->ntasks, memory_order_relaxed) != 0
                  : atomic_load_explicit(&v->inbox, memory_order_relaxed) != NULL)
            return true;
    return false;
}

/* Wakes w, which slept as `how` (the URSA__ASLEEP_* its `sleeping` held
 * when the caller's exchange set it to URSA__AWAKE): from a running task
 * now (nothing bounds how long it runs on); from the scheduler at the end
 * of its turn, before it runs a task (the MSG_RING kicks of one turn go
 * out in one submit); now from a plain thread or another runtime. */
void ursa__worker_kick(ursa__worker_t *w, uint32_t how);
/* Wakes w if it sleeps, once per sleep: true if this call kicked it. Any
 * thread, after a seq_cst fence that orders what the caller published. */
bool ursa__worker_rouse(ursa__worker_t *w);
/* New work others could take was queued (by self, a worker of rt, or
 * NULL: a plain thread): wakes one sleeping worker unless one is already
 * looking. */
void ursa__worker_notify(ursa_rt_t *rt, ursa__worker_t *self);
/* Flushes what the turn deferred: the notification about queued work
 * (w->notify) and the kicks (owner thread). */
void ursa__worker_flush(ursa__worker_t *w);
static inline void ursa__worker_turn_end(ursa__worker_t *w)
{
    if (__builtin_expect(w->deferred != 0, 0))
        ursa__worker_flush(w);
}
/* w has nothing to run: takes from the inject queue, steals from other
 * workers, and watches for work a while if the spin policy allows. True
 * when w may have work now. */
bool ursa__worker_find_work(ursa__worker_t *w);
/* w found work: it stops counting as searching. */
void ursa__worker_found_work(ursa__worker_t *w);
/* Takes work from the inject queue or steals from a peer, once: true if
 * w has some now. */
bool ursa__worker_try_steal(ursa__worker_t *w);
/* Whether the inject queue or a peer's stealable queue has work. */
bool ursa__worker_can_steal(ursa__worker_t *w);
/* Before sleeping: false if work came in the meantime (then w does not
 * sleep). */
bool ursa__worker_sleep_begin(ursa__worker_t *w);
/* Sleeps until woken, an I/O completion, or timeout ns (< 0: none). */
void ursa__worker_sleep(ursa__worker_t *w, ursa_time_t timeout);
/* After the sleep. */
void ursa__worker_sleep_end(ursa__worker_t *w);

#endif
