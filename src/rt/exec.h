/* Executor internals: workers, tasks, the scheduler loop. */
#ifndef URSA_RT_EXEC_H
#define URSA_RT_EXEC_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/ctx.h"
#include "ring.h"
#include "stack.h"
#include "timer.h"
#include "ursa/rt.h"

#if defined(__SANITIZE_ADDRESS__)
#define URSA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URSA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define URSA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URSA_TSAN 1
#endif
#endif

#if defined(URSA_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif
#if defined(URSA_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

typedef struct ursa__worker ursa__worker_t;

/* Task wake state (wstate). */
enum { URSA__T_RUNNING = 0, URSA__T_NOTIFIED = 1, URSA__T_PARKED = 2 };
/* Join slot (joiner): NULL, a joiner's wait node, or one of these. */
#define URSA__JOIN_DONE ((ursa_wait_t *)1)
#define URSA__JOIN_DETACHED ((ursa_wait_t *)2)

struct ursa_task {
    ursa__ctx_t ctx; /* first: ursa__cur_ctx points here while it runs */
    void *sp;        /* saved stack pointer while switched out */
    ursa__stack_t *stack; /* NULL until first run, and again once done */
    ursa__worker_t *worker;
    ursa_task_fn_t fn;
    void *arg;
    void *result;
    struct ursa_task *rq_next; /* run queue or inbox link */
    struct ursa_task *all_prev, *all_next; /* the worker's live tasks */
    _Atomic uint32_t wstate;  /* RUNNING / NOTIFIED / PARKED */
    _Atomic uint32_t cancel;  /* cancellation requested */
    /* The completer's exchange to JOIN_DONE is its last touch of the task. */
    _Atomic(ursa_wait_t *) joiner;
    int fail; /* -ENOMEM if it never got a stack */
    bool finished;  /* fn returned; set on the task's own stack */
    bool adopted;   /* linked into its worker's live list */
    /* The one deadline a task can wait for at a time. */
    ursa_time_t timer_when;
    size_t timer_idx; /* index in the worker's heap, or SIZE_MAX */
    /* What it waits on, for deadlock reports. */
    uint32_t wait_kind;
    const ursa_site_t *wait_site;
    const void *wait_obj;
#if defined(URSA_ASAN)
    void *asan_fake;
#endif
#if defined(URSA_TSAN)
    void *tsan_fiber;
#endif
    ursa__worker_t *home; /* whose descriptor pool it came from, or NULL */
    char name[32];
};

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
    bool reported;
    pthread_t thread;
#if defined(URSA_ASAN)
    const void *asan_stack_lo;
    size_t asan_stack_size;
#endif
#if defined(URSA_TSAN)
    void *tsan_fiber;
#endif
};

struct ursa_rt {
    ursa_rt_config_t cfg;
    unsigned nworkers;
    ursa__worker_t *workers;
    _Atomic bool stopping;
    _Atomic unsigned idle_workers; /* idle with nothing pending */
    pthread_t owner; /* thread whose ring worker 0 has */
    bool owner_set;
    _Atomic bool in_worker0; /* some thread is running worker 0 now */
};

extern __thread ursa__worker_t *ursa__cur_worker __attribute__((tls_model("initial-exec")));

/* Makes t runnable (a waker function: ctx = task); any thread. */
void ursa__task_wake(void *task);
/* Suspends the current task until woken (returns at once if a wake is
 * pending). */
void ursa__task_park(ursa_task_t *t);
/* Re-queues the current task at the back of its run queue and switches
 * to the scheduler. */
void ursa__task_yield(ursa_task_t *t);
/* Parks the current task t while *flag == pending, until the deadline, or
 * until cancelled: 0, -ETIMEDOUT, -ECANCELED. flag == NULL: until the
 * deadline or cancel. */
int ursa__task_wait(ursa_task_t *t, const _Atomic uint32_t *flag, uint32_t pending,
                    ursa_time_t deadline);
/* Task descriptors come from the current worker's pool (chunks of 64,
 * retained until the runtime is freed, like Go's g structs), so bursts of
 * spawns don't page-fault freshly trimmed heap each time. */
ursa_task_t *ursa__task_alloc(ursa__worker_t *cur);
void ursa__task_free(ursa_task_t *t);
void ursa__task_pool_drain(ursa__worker_t *w);
/* Queues a new task on worker w (from any thread). */
void ursa__worker_submit(ursa__worker_t *w, ursa_task_t *t);

ursa_time_t ursa__worker_now(ursa__worker_t *w);
/* The scheduler loop; see exec.c. */
int ursa__worker_run(ursa__worker_t *w, ursa_task_t *root);


#endif
