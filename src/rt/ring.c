#include "ring.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/clock.h"
#include "task.h"

static void arm_eventfd(ursa__ring_t *r)
{
    struct io_uring_sqe *sqe = ursa__ring_sqe(r);
    io_uring_prep_read(sqe, r->evfd, &r->evbuf, sizeof r->evbuf, 0);
    io_uring_sqe_set_data64(sqe, URSA__UD_EVENTFD);
    r->ev_armed = true;
}

struct io_uring_sqe *ursa__ring_sqe(ursa__ring_t *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    while (!sqe) {
        io_uring_submit(&r->uring);
        sqe = io_uring_get_sqe(&r->uring);
    }
    return sqe;
}

/* A completion of one of our MSG_RING kicks that did not land (user_data:
 * the target tagged URSA__UD_KICK_FAILED): the target gets its eventfd
 * written instead. False for any other completion. */
static bool kick_failed(uint64_t ud)
{
    if (!(ud & URSA__UD_KICK_FAILED))
        return false;
    ursa__ring_kick((ursa__ring_t *)(uintptr_t)(ud & ~(uint64_t)URSA__UD_KICK_FAILED));
    return true;
}

static void reap(ursa__ring_t *r)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&r->uring, head, cqe)
    {
        n++;
        uint64_t ud = cqe->user_data;
        if (ud == URSA__UD_IGNORE || ud == URSA__UD_KICK)
            continue;
        if (ud == URSA__UD_EVENTFD) {
            r->ev_armed = false;
            continue;
        }
        if (kick_failed(ud))
            continue;
        ursa__io_op_t *op = (ursa__io_op_t *)(uintptr_t)ud;
        op->res = cqe->res;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed); /* same thread */
        r->inflight--;
        ursa__io_op_complete(op);
    }
    io_uring_cq_advance(&r->uring, n);
    if (!r->ev_armed)
        arm_eventfd(r);
}

/* ---- the fallback: a watch list polled with ppoll ---- */

int ursa__ring_watch(ursa__ring_t *r, ursa__io_op_t *op, int fd, short events)
{
    if (r->nwatch == r->watch_cap) {
        unsigned cap = r->watch_cap ? r->watch_cap * 2 : 16;
        struct pollfd *pfd = realloc(r->pfd, (cap + 1) * sizeof *pfd);
        if (!pfd)
            return -ENOMEM;
        r->pfd = pfd;
        ursa__io_op_t **watch = realloc(r->watch, cap * sizeof *watch);
        if (!watch)
            return -ENOMEM; /* pfd is merely larger than it needs to be */
        r->watch = watch;
        r->watch_cap = cap;
    }
    unsigned i = r->nwatch++;
    r->pfd[i + 1] = (struct pollfd){.fd = fd, .events = events};
    r->watch[i] = op;
    op->slot = i;
    r->inflight++;
    return 0;
}

/* Removes watch[i]: the last one takes its place. */
static void unwatch_slot(ursa__ring_t *r, unsigned i)
{
    unsigned last = --r->nwatch;
    if (i != last) {
        r->pfd[i + 1] = r->pfd[last + 1];
        r->watch[i] = r->watch[last];
        r->watch[i]->slot = i;
    }
    r->inflight--;
}

void ursa__ring_unwatch(ursa__ring_t *r, ursa__io_op_t *op)
{
    unwatch_slot(r, op->slot);
}

static void drain_eventfd(ursa__ring_t *r)
{
    uint64_t v;
    ssize_t n = read(r->evfd, &v, sizeof v);
    (void)n; /* EAGAIN: someone else's kick was drained already */
}

/* Waits up to timeout ns (< 0: no limit; 0: just looks) for a watched fd
 * or the eventfd, and wakes the tasks whose fd is ready. */
static void fallback_poll(ursa__ring_t *r, ursa_time_t timeout)
{
    struct pollfd ev = {.fd = r->evfd, .events = POLLIN};
    struct pollfd *set = r->nwatch ? r->pfd : &ev;
    set[0] = ev;
    struct timespec ts = ursa__timespec(timeout < 0 ? 0 : timeout);
    if (ppoll(set, r->nwatch + 1, timeout < 0 ? NULL : &ts, NULL) <= 0)
        return; /* nothing ready, or a signal: the loop comes back */
    if (set[0].revents)
        drain_eventfd(r);
    /* From the end: a removal moves the last entry, already seen, into i. */
    for (unsigned i = r->nwatch; i-- > 0;) {
        short re = r->pfd[i + 1].revents;
        if (!re)
            continue;
        ursa__io_op_t *op = r->watch[i];
        op->res = (re & POLLNVAL) ? -EBADF : re;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed); /* same thread */
        unwatch_slot(r, i);
        ursa__io_op_complete(op);
    }
}

/* ---- the ring ---- */

void ursa__ring_poll(ursa__ring_t *r)
{
    if (!r->ok) {
        if (r->nwatch)
            fallback_poll(r, 0);
        return;
    }
    if (r->inflight || io_uring_sq_ready(&r->uring)) {
        io_uring_submit_and_get_events(&r->uring);
        reap(r);
    }
}

void ursa__ring_wait(ursa__ring_t *r, ursa_time_t timeout)
{
    if (!r->ok) {
        fallback_poll(r, timeout);
        return;
    }
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = timeout / 1000000000,
                                   .tv_nsec = timeout % 1000000000};
    io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, timeout < 0 ? NULL : &ts, NULL);
    reap(r);
}

void ursa__ring_kick(ursa__ring_t *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->evfd, &one, sizeof one);
    (void)n; /* EAGAIN means the counter is already non-zero: awake anyway */
}

int ursa__ring_evfd_init(ursa__ring_t *r)
{
    atomic_init(&r->kick_fd, -1);
    r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return r->evfd < 0 ? -errno : 0;
}

void ursa__ring_init(ursa__ring_t *r)
{
    /* URSA_NO_IO_URING=1: the fallback even where io_uring works (tests,
     * and programs that must not use it). */
    const char *no = getenv("URSA_NO_IO_URING");
    if (no && *no && strcmp(no, "0") != 0) {
        r->ok = false;
        return;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* One issuer and deferred task work: completions run only when we ask,
     * which suits a loop that owns its ring. Older kernels: plain ring. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(256, &r->uring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(256, &r->uring, &p);
    }
    r->ok = rc == 0;
    if (!r->ok)
        return;
    arm_eventfd(r);
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->uring);
    r->msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    if (probe)
        io_uring_free_probe(probe);
    /* release: a kicker that reads the fd sees the ring set up. */
    atomic_store_explicit(&r->kick_fd, r->uring.ring_fd, memory_order_release);
}

/* The ring goes away: a kick of ours that failed and was not reaped yet
 * still reaches its target, through the eventfd (its target may sleep until
 * then). No task op is in flight now. */
static void kicks_failed_fallback(ursa__ring_t *r)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&r->uring, head, cqe)
    {
        n++;
        (void)kick_failed(cqe->user_data);
    }
    io_uring_cq_advance(&r->uring, n);
}

void ursa__ring_fini(ursa__ring_t *r)
{
    if (r->ok) {
        /* seq_cst: Dekker with ursa__ring_msg (kickers++, then the fd). */
        atomic_store_explicit(&r->kick_fd, -1, memory_order_seq_cst);
        while (atomic_load_explicit(&r->kickers, memory_order_seq_cst))
            sched_yield(); /* a kicker between reading the fd and submitting */
        kicks_failed_fallback(r);
        io_uring_queue_exit(&r->uring);
    }
    r->ok = false;
    r->ev_armed = false;
}

bool ursa__ring_msg(ursa__ring_t *from, ursa__ring_t *to)
{
    if (!from->ok || !from->msg_ring)
        return false;
    /* seq_cst: Dekker with ursa__ring_fini (fd = -1, then kickers). */
    atomic_fetch_add_explicit(&to->kickers, 1, memory_order_seq_cst);
    int fd = atomic_load_explicit(&to->kick_fd, memory_order_seq_cst);
    if (fd < 0) {
        ursa__ring_msg_done(to);
        return false;
    }
    struct io_uring_sqe *sqe = ursa__ring_sqe(from);
    io_uring_prep_msg_ring(sqe, fd, 0, URSA__UD_KICK, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)to | URSA__UD_KICK_FAILED);
    return true;
}

void ursa__ring_msg_done(ursa__ring_t *to)
{
    /* release: our submit, which used the fd, happens before fini closes it. */
    atomic_fetch_sub_explicit(&to->kickers, 1, memory_order_release);
}

void ursa__ring_submit(ursa__ring_t *r)
{
    if (r->ok)
        io_uring_submit(&r->uring);
}

void ursa__ring_exit(ursa__ring_t *r)
{
    ursa__ring_fini(r);
    free(r->pfd);
    free(r->watch);
    r->pfd = NULL;
    r->watch = NULL;
    r->nwatch = r->watch_cap = 0;
    if (r->evfd >= 0)
        close(r->evfd);
    r->evfd = -1;
}
