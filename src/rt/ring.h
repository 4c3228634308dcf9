/* A worker's io_uring and wake-up eventfd.
 *
 * The ring is made on the thread that runs the worker (a SINGLE_ISSUER ring
 * belongs to its creator), probing for flags and falling back to a plain
 * ring on older kernels; without any ring the worker idles in poll(2) on
 * the eventfd and task I/O falls back to blocking calls (rt/io.c). The
 * eventfd is how other threads wake a sleeping worker: the ring keeps a
 * read of it armed. Owner thread only, but for ursa__ring_kick. */
#ifndef URSA_RT_RING_H
#define URSA_RT_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ursa/rt.h"

typedef struct ursa__ring {
    bool ok;               /* the io_uring exists */
    struct io_uring uring;
    int evfd;              /* wake-up eventfd, or -1 */
    uint64_t evbuf;        /* where the armed eventfd read lands */
    bool ev_armed;
    unsigned inflight;     /* task I/O ops in the ring */
} ursa__ring_t;

/* One task I/O op in flight; its address is the SQE's user_data. */
typedef struct ursa__io_op {
    ursa_task_t *task;
    int32_t res;
    _Atomic uint32_t done; /* set by the reaping worker (the same thread) */
} ursa__io_op_t;
/* user_data of SQEs that are not task ops. */
#define URSA__UD_IGNORE 0u
#define URSA__UD_EVENTFD 1u

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
/* An SQE (submitting to make room when the queue is full). */
struct io_uring_sqe *ursa__ring_sqe(ursa__ring_t *r);
/* Busy path: submits and reaps, entering the kernel only if an op is in
 * flight or queued. */
void ursa__ring_poll(ursa__ring_t *r);
/* Idle path: sleeps until a completion, a kick, or timeout ns (< 0: no
 * limit), and reaps. */
void ursa__ring_wait(ursa__ring_t *r, ursa_time_t timeout);

#endif
