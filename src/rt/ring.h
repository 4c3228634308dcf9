/* A worker's io_uring and wake-up eventfd.
 *
 * The ring is made on the thread that runs the worker (a SINGLE_ISSUER ring
 * belongs to its creator), probing for flags and falling back to a plain
 * ring on older kernels. Without any ring (no io_uring in the kernel, or
 * not permitted, or URSA_NO_IO_URING=1) the worker runs on the fallback: a
 * task's I/O waits for readiness of its fd on the worker's watch list,
 * which the worker polls (ppoll on the watched fds and its eventfd, the
 * next timer as timeout) and then does the plain syscall (rt/io.c). The
 * eventfd is how plain threads wake a sleeping worker: the ring keeps a
 * read of it armed. Another worker wakes it with IORING_OP_MSG_RING from
 * its own ring where the kernel has it (probed), a completion posted
 * straight into the sleeper's ring: about half the cost of the eventfd
 * round here (bench/floor.c). Owner thread only, but for ursa__ring_kick
 * and ursa__ring_msg. */
#ifndef URSA_RT_RING_H
#define URSA_RT_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ursa/rt.h"

struct pollfd;
typedef struct ursa__io_op ursa__io_op_t;

typedef struct ursa__ring {
    bool ok;               /* the io_uring exists */
    struct io_uring uring;
    int evfd;              /* wake-up eventfd, or -1 */
    uint64_t evbuf;        /* where the armed eventfd read lands */
    bool ev_armed;
    unsigned inflight;     /* task I/O ops in the ring, or watched */
    /* The fallback's watch list: pfd[0] is the eventfd, pfd[i + 1] the fd
     * that watch[i] waits on. */
    struct pollfd *pfd;
    ursa__io_op_t **watch;
    unsigned nwatch, watch_cap;
    bool msg_ring; /* the kernel has IORING_OP_MSG_RING (probed) */
    /* For other workers' MSG_RING kicks: the ring's fd while it exists (-1
     * otherwise), and how many kickers are using it now (ursa__ring_fini
     * waits for them, so a kick never reaches a closed or reused fd). */
    _Atomic int kick_fd;
    _Atomic uint32_t kickers;
} ursa__ring_t;

/* One task I/O op in flight (its address is the SQE's user_data), or one
 * readiness wait on the fallback's watch list. */
struct ursa__io_op {
    ursa_task_t *task;
    int32_t res;           /* the CQE's result; the fallback: revents or -EBADF */
    _Atomic uint32_t done; /* set by the reaping worker (the same thread) */
    unsigned slot;         /* the fallback: its index in watch[] */
    /* A select's readiness wait (rt/io_wait.h): the case's waiter, decided
     * (its claim taken) on completion instead of waking the task; NULL for
     * a task's own op. */
    struct ursa__waiter *waiter;
};

/* The reaping worker's step for a completed op (op->res and done set):
 * decides its select waiter, or wakes its task (also when the waiter's
 * claim was lost: a withdrawal may be waiting for the completion). */
void ursa__io_op_complete(ursa__io_op_t *op);
/* user_data of SQEs and CQEs that are not task ops. A MSG_RING kick that
 * failed comes back on the sender with user_data the target ring's address
 * tagged URSA__UD_KICK_FAILED (op and ring addresses are 8-aligned). */
#define URSA__UD_IGNORE 0u
#define URSA__UD_EVENTFD 1u
#define URSA__UD_KICK 2u
#define URSA__UD_KICK_FAILED 4u

/* Makes the eventfd (with the runtime, from any thread): 0 or -errno. */
int ursa__ring_evfd_init(ursa__ring_t *r);
/* Makes the ring, on the thread that will run the worker; r->ok says
 * whether there is one. */
void ursa__ring_init(ursa__ring_t *r);
/* Closes the ring only (the worker moves to another thread). */
void ursa__ring_fini(ursa__ring_t *r);
/* Closes the ring and the eventfd. */
void ursa__ring_exit(ursa__ring_t *r);
/* Wakes the worker if it sleeps in ursa__ring_wait; any thread. */
void ursa__ring_kick(ursa__ring_t *r);
/* Queues a MSG_RING kick of `to` on the caller's own ring `from`: false
 * when either side cannot (then ursa__ring_kick). After true, the caller
 * submits (ursa__ring_submit), then calls ursa__ring_msg_done(to). */
bool ursa__ring_msg(ursa__ring_t *from, ursa__ring_t *to);
void ursa__ring_msg_done(ursa__ring_t *to);
/* Submits what is queued (owner). */
void ursa__ring_submit(ursa__ring_t *r);
/* An SQE (submitting to make room when the queue is full). */
struct io_uring_sqe *ursa__ring_sqe(ursa__ring_t *r);
/* Busy path: submits and reaps, entering the kernel only if an op is in
 * flight or queued. */
void ursa__ring_poll(ursa__ring_t *r);
/* Whether nothing is in the ring that a sleep would wait for: no task I/O
 * in flight or watched (task ops count from their prep, so an SQE not yet
 * submitted is one of the ring's own: the eventfd's read, which only a
 * ring sleep needs). */
static inline bool ursa__ring_idle(const ursa__ring_t *r)
{
    return !r->inflight;
}
/* Idle path: sleeps until a completion, a kick, or timeout ns (< 0: no
 * limit), and reaps. */
void ursa__ring_wait(ursa__ring_t *r, ursa_time_t timeout);

/* The fallback (no ring): puts op (op->task set) on the watch list for
 * `events` on fd; the worker's poll sets op->res and op->done and wakes the
 * task. 0, or -ENOMEM (the list could not grow). */
int ursa__ring_watch(ursa__ring_t *r, ursa__io_op_t *op, int fd, short events);
/* Takes op off the watch list (a wait that ended first: deadline, cancel). */
void ursa__ring_unwatch(ursa__ring_t *r, ursa__io_op_t *op);

#endif
