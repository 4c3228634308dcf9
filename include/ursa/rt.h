/* ursa — the runtime: workers, tasks, spawn/join, yield, sleep, cancel.
 *
 * A runtime owns N workers. Worker 0 runs on the thread that calls
 * ursa_rt_block_on(); workers 1..N-1 on threads the runtime starts (several
 * to a thread when the process may use fewer CPUs: `threads`). Each
 * worker has its own io_uring (or, without one, the fallback of
 * docs/runtime.md), run queues, timers and stack pool. Tasks are stackful;
 * where they run is their placement (ursa_placement_t). */
#ifndef URSA_RT_H
#define URSA_RT_H

#include "base.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_rt ursa_rt_t;
typedef struct ursa_task ursa_task_t;

/* A task body. Its return value is what ursa_task_join() hands back. */
typedef void *(*ursa_task_fn_t)(void *arg);

typedef struct ursa_rt_config {
    unsigned workers;     /* number of workers; 0 means 1 */
    size_t stack_size;    /* usable bytes per task stack; 0 means 64 KiB */
    /* No guard page below each stack: an overflow then corrupts the
     * neighbouring stack (docs/runtime.md, Stacks). */
    bool no_stack_guard;
    /* Idle stacks that keep their memory, per worker (the others give it
     * back to the kernel); 0 means 64. */
    unsigned stack_cache;
    /* Deterministic mode: one thread runs every worker, the choices (with
     * one worker, the next runnable task; with several, which worker acts
     * next) made by a PRNG seeded with `seed`, virtual time that jumps to
     * the next timer when every task waits. For tests: a seed replays an
     * interleaving. */
    bool deterministic;
    uint64_t seed;
    /* Normal mode: when every worker has been idle this long with no timer
     * and no I/O pending, print which task waits on what (0 = 2 s, negative
     * = never). Deterministic mode reports at once and block_on fails. */
    ursa_time_t deadlock_report_after;
    /* Threads that run the workers, at most `workers`. 0 means one per
     * worker, unless the process may use fewer CPUs than it has workers
     * (affinity mask, cgroup quota, read by ursa_rt_new): then one per CPU
     * it may use. A thread with several workers runs them in turn; worker
     * i runs on thread i % threads, all of them threads of the runtime
     * (block_on's thread then waits for the root, which runs on worker 0's).
     * Workers that share a thread never run at once, so a task that
     * blocks the thread (a long computation, a blocking syscall) holds up
     * the workers it shares it with; set `threads = workers` to keep a
     * thread per worker on any machine (docs/runtime.md, Hosted workers).
     * Ignored in deterministic mode. */
    unsigned threads;
} ursa_rt_config_t;

/* Not a wait: creates a runtime (cfg may be NULL for defaults) and starts
 * the threads of workers 1..N-1. Without io_uring (not supported, not
 * permitted, or no descriptor for it) a worker uses the fallback
 * (docs/runtime.md): that is not an error.
 *   0        *out is the runtime
 *   -EINVAL  NULL out; more than 1024 workers; stack_size outside
 *            16 KiB..1 GiB; more threads than workers
 *   -ENOMEM  out of memory
 *   -EMFILE  no descriptor for a worker's wake-up eventfd (process limit)
 *   -ENFILE  the same (system limit)
 *   -EAGAIN  a worker thread could not be started */
URSA_API int ursa_rt_new(ursa_rt_t **out, const ursa_rt_config_t *cfg) URSA_NODISCARD;

/* Not a wait (it blocks the calling thread, without a deadline, until the
 * root task finishes): runs fn(arg) as the root task on worker 0, using
 * the calling thread as worker 0 (with fewer threads than workers, worker
 * 0 has a thread of the runtime like the others: the root runs there and
 * the calling thread waits for it). *result (may be NULL) gets its return
 * value. Successive calls may come from different threads. It opens no
 * descriptor that could fail (worker 0's eventfd comes from ursa_rt_new).
 *   0         the root task finished
 *   -EINVAL   NULL rt or fn, or called from inside a task of any runtime
 *   -EBUSY    another thread is in block_on, or worker 0 still has I/O in
 *             flight from a previous thread
 *   -ENOMEM   no memory for the root's descriptor or its stack: the root
 *             did not run
 *   -EDEADLK  deterministic mode: every task waits and nothing can wake
 *             them (the report went to stderr) */
URSA_API int ursa_rt_block_on(ursa_rt_t *rt, ursa_task_fn_t fn, void *arg,
                              void **result) URSA_NODISCARD;

/* Not a wait: cancels every task left, lets them finish, stops the
 * workers and frees the runtime, with the handles of tasks never joined
 * (they become invalid). Any thread, but not one of its own tasks
 * (reported and ignored). */
URSA_API void ursa_rt_free(ursa_rt_t *rt);

/* Not a wait: shorthand for a runtime with cfg, block_on, free. Codes as
 * ursa_rt_new and ursa_rt_block_on (-EINVAL also inside a task). */
URSA_API int ursa_run(const ursa_rt_config_t *cfg, ursa_task_fn_t fn, void *arg,
                      void **result) URSA_NODISCARD;

/* Longest task name kept (bytes), as for a Linux thread name. */
#define URSA_TASK_NAME_MAX 15

/* Where a task runs. A task that has not started yet has no frames and no
 * cached thread-local addresses, so any worker may run it: that is the
 * default. Once started, a task stays on the worker that runs it unless it
 * was spawned `migratable`. */
typedef enum ursa_placement {
    /* Default. Queued on the spawning worker (off-task: handed to whichever
     * worker is free); an idle worker may take it until it starts. */
    URSA_PLACE_ANY = 0,
    /* The spawning worker (worker 0 off-task); never taken by another. */
    URSA_PLACE_LOCAL,
    /* The worker given in `worker` (URSA_ON_WORKER(n)); never taken by
     * another. */
    URSA_PLACE_WORKER,
} ursa_placement_t;

typedef struct ursa_spawn_opts {
    const char *name; /* copied (up to URSA_TASK_NAME_MAX bytes); NULL means "task" */
    ursa_placement_t placement;
    int worker;       /* the worker index, with URSA_PLACE_WORKER only (else 0) */
    bool detached;    /* frees itself when done; no join */
    /* With URSA_PLACE_ANY only: the task may also resume on another worker
     * at a wait point (on the worker that woke it, or one with nothing to
     * do), never while it has I/O in flight. The task promises not to keep
     * the address of a thread-local (errno included) across a wait, nor to
     * rely on thread identity across waits: see docs/runtime.md. */
    bool migratable;
} ursa_spawn_opts_t;

/* Fixes a task on worker n: (ursa_spawn_opts_t){URSA_ON_WORKER(1)}. */
#define URSA_ON_WORKER(n) .placement = URSA_PLACE_WORKER, .worker = (n)

/* Not a wait: spawns a task running fn(arg) on the current runtime (call
 * from inside a task), placed as opts says (NULL: default placement).
 * *out gets the handle to join, unless opts->detached (then out may be
 * NULL).
 *   0        spawned
 *   -EINVAL  NULL fn, NULL out for a task not detached, no current
 *            runtime, a worker index out of range, an unknown placement,
 *            `migratable` with a fixed placement, or `worker` set without
 *            URSA_PLACE_WORKER (code written before placements, where
 *            `.worker = 1` fixed a task on worker 1: refused rather than
 *            given another meaning)
 *   -ENOMEM  out of memory */
URSA_API int ursa_spawn(ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                        const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Not a wait: ursa_spawn onto runtime rt, from any thread (e.g. a plain
 * thread). Codes as ursa_spawn; -EINVAL also for a NULL rt. */
URSA_API int ursa_rt_spawn(ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                           const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Phase 1 (wait; no hold follows): waits until task t has finished and
 * frees its handle; *result (may be NULL) gets its return value. Works
 * from tasks and plain threads.
 *   0           t finished (its handle is freed)
 *   -ENOMEM     the task never ran: no memory for its stack (the handle
 *               is freed, *result is NULL)
 *   -EAGAIN     deadline is URSA_NOW and t is still running
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the joiner was cancelled first
 *   -EINVAL     NULL, a task joining itself, a detached task, or one
 *               another caller is joining
 * After -EAGAIN, -ETIMEDOUT or -ECANCELED t is still valid and may be
 * joined again. */
#define ursa_task_join(t, result, deadline) ursa_task_join_at(t, result, deadline, URSA_SITE)
URSA_API int ursa_task_join_at(ursa_task_t *t, void **result, ursa_time_t deadline,
                               const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw join (calling context 3, see ursa/wait.h).
 * _start:
 *   0             t has finished: call _finish now (waker not called)
 *   -EINPROGRESS  started: waker.fn(waker.ctx) is called once, from the
 *                 thread where t finishes
 *   -EINVAL       NULL t / w / waker.fn, t is the caller, t is detached or
 *                 another caller is joining it
 * _finish, once ursa_wait_ready(w): the codes of ursa_task_join (0 or
 * -ENOMEM, handle freed; -EAGAIN not finished yet; -EINVAL not a join
 * started on t, or over). Or ursa_wait_cancel(w): withdrawn, t may be
 * joined again. */
URSA_API int ursa_task_join_start(ursa_task_t *t, ursa_wait_t *w,
                                  ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_task_join_finish(ursa_task_t *t, ursa_wait_t *w,
                                   void **result) URSA_NODISCARD;

/* Not a wait: gives up the handle: the task frees itself when it
 * finishes.
 *   0        detached
 *   -EINVAL  t is NULL */
URSA_API int ursa_task_detach(ursa_task_t *t);

/* Not a wait: requests cooperative cancellation: the task's current and
 * later waits fail with -ECANCELED (a wait that was granted in the same
 * instant keeps its grant and returns 0). Idempotent. The handle must not
 * have been joined or detached-and-finished.
 *   0        requested
 *   -EINVAL  t is NULL */
URSA_API int ursa_task_cancel(ursa_task_t *t);

/* Not a wait: the current task, or NULL on a plain thread. */
URSA_API ursa_task_t *ursa_task_self(void);

/* Not a wait: whether the current task has been asked to cancel (false
 * off-task). */
URSA_API bool ursa_task_cancelled(void);

/* Not a wait: the task's name (never NULL). */
URSA_API const char *ursa_task_name(const ursa_task_t *t);

/* Not a wait: the index of the worker the calling task runs on, -1
 * off-task. A migratable task may see it change across a wait. */
URSA_API int ursa_worker_index(void);

/* Not a wait: the number of workers of the runtime the caller runs on (a
 * task, or a worker thread), 0 on a plain thread. For placement:
 * URSA_ON_WORKER(i) with 0 <= i < ursa_worker_count(). */
URSA_API unsigned ursa_worker_count(void);

/* Not a wait: the number of workers of rt (0 for NULL). */
URSA_API unsigned ursa_rt_worker_count(const ursa_rt_t *rt);

/* Not a wait: lets the other runnable tasks of this worker run first.
 * Off-task it yields the thread.
 *   0           yielded
 *   -ECANCELED  the task is cancelled (it still yielded) */
URSA_API int ursa_yield(void);

/* Phase 1 (wait; no hold follows): sleeps until the deadline. Works
 * off-task too (clock_nanosleep).
 *   0           the deadline passed
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     off-task, a deadline of URSA_NEVER (nothing could end the
 *               sleep; ursa_sleep_for saturates a huge ns to URSA_NEVER) */
URSA_API int ursa_sleep_until(ursa_time_t deadline);
URSA_API int ursa_sleep_for(ursa_time_t ns);

URSA_EXTERN_C_END

#endif
