/* A worker: one thread's scheduler. It owns a run queue, an inbox for
 * wakes and spawns from other threads, timers, an io_uring, and the tasks
 * it runs; the loop (ursa__worker_run) runs ready tasks, fires timers,
 * reaps the ring, and sleeps when there is nothing to do. */
#ifndef URSA_RT_WORKER_H
#define URSA_RT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "ring.h"
#include "sanitizer.h"
#include "stack.h"
#include "timer.h"
#include "ursa/rt.h"

typedef struct ursa__worker ursa__worker_t;

struct ursa__worker {
    /* Remote wakes and spawns: a lock-free LIFO, taken whole and reversed.
     * Hot for other threads, so alone on its cache line. */
    _Alignas(64) _Atomic(ursa_task_t *) inbox;
    _Atomic uint32_t sleeping; /* in (or entering) the ring wait */
    /* Task descriptors freed by other threads (Treiber stack; the owner
     * takes it whole, so no ABA). */
    _Atomic(ursa_task_t *) remote_free;
    _Alignas(64) ursa_rt_t *rt;
    int index;
    ursa__ring_t ring;
    ursa_task_t *rq_head, *rq_tail;
    size_t rq_len;
    ursa_task_t *all; /* live tasks owned by this worker */
    size_t ntasks;
    ursa__timers_t timers;
    ursa__stack_pool_t stacks;
    ursa_task_t *task_free; /* descriptor pool, owner only */
    void *task_chunks;      /* chunk list, freed with the runtime */
    ursa_task_t *current;
    void *sched_sp;
    unsigned direct_budget; /* task-to-task switches left before the scheduler */
    ursa_time_t vclock; /* deterministic mode */
    uint64_t rng;
    bool reported; /* a deadlock report since the last progress */
    pthread_t thread;
#if defined(URSA__ASAN)
    const void *asan_stack_lo;
    size_t asan_stack_size;
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
/* Queues a new task on worker w (from any thread). */
void ursa__worker_submit(ursa__worker_t *w, ursa_task_t *t);
/* Makes a parked task of w runnable again (from any thread). */
void ursa__worker_enqueue(ursa__worker_t *w, ursa_task_t *t);
/* The current task t stops running (parked): the worker runs something
 * else. Returns when t runs again. */
void ursa__worker_suspend(ursa_task_t *t);
/* The current task t goes to the back of the run queue and lets the
 * others run. */
void ursa__worker_yield(ursa_task_t *t);
/* Runs worker w until root finishes (root != NULL) or, when the runtime
 * is stopping, until w has no tasks left. -EDEADLK in deterministic mode
 * when nothing can make progress. */
int ursa__worker_run(ursa__worker_t *w, ursa_task_t *root);

#endif
