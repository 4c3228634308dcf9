/* Task I/O: io_uring operations with deadlines and cancellation for a task
 * on a worker with a ring; readiness waits followed by the syscall for a
 * plain thread (ppoll) and for a task on the fallback (the worker's watch
 * list, rt/ring.h). */
#include "ursa/io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io_wait.h"
#include "ring.h"
#include "task.h"
#include "worker.h"

/* Submits the prepared op and waits for its completion. On deadline or
 * cancel the op is cancelled in the kernel, and we still wait for its CQE:
 * the kernel may be using our buffer, and if the op completed anyway its
 * result wins (nothing is lost). */
static int run_op(ursa__worker_t *w, ursa_task_t *t, ursa__io_op_t *op, ursa_time_t deadline)
{
    w->ring.inflight++;
    /* The op's completion arrives on this worker's ring: a migratable task
     * stays here until it has it. */
    t->io_busy = true;
    ursa_time_t d = deadline == URSA_NOW ? ursa__worker_now(w) : deadline;
    int rc = ursa__task_wait(t, &op->done, 0, d);
    if (rc) {
        struct io_uring_sqe *sqe = ursa__ring_sqe(&w->ring);
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
        io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
        /* Uninterruptible now: the op must come back before we return. */
        while (!atomic_load_explicit(&op->done, memory_order_relaxed)) {
            t->wait_kind = URSA_WAIT_IO;
            ursa__task_park(t);
        }
        t->io_busy = false;
        if (op->res != -ECANCELED && op->res != -EINTR)
            return op->res; /* completed after all */
        return deadline == URSA_NOW && rc == -ETIMEDOUT ? -EAGAIN : rc;
    }
    t->io_busy = false;
    return op->res;
}

/* The calling task, or NULL on a plain thread; *w: the worker whose ring
 * (or watch list) carries its I/O, the host of its worker. */
static ursa_task_t *io_task(ursa__worker_t **w)
{
    ursa__worker_t *cur = ursa__cur_worker;
    *w = cur ? cur->host : NULL;
    return cur ? cur->current : NULL;
}

/* Whether the caller's I/O goes through a ring. */
static bool on_ring(const ursa__worker_t *w, const ursa_task_t *t)
{
    return t && w->ring.ok;
}

/* Off-task: waits with ppoll(2) until fd has one of `events`, honouring
 * the deadline; an expired deadline still looks once. revents or -errno. */
static int poll_thread(int fd, short events, ursa_time_t deadline)
{
    for (;;) {
        ursa_time_t left = deadline == URSA_NEVER ? -1
                           : deadline == URSA_NOW ? 0
                                                  : ursa__time_left(deadline, ursa__mono_now());
        struct timespec ts = ursa__timespec(left < 0 ? 0 : left);
        struct pollfd p = {.fd = fd, .events = events};
        int n = ppoll(&p, 1, left < 0 ? NULL : &ts, NULL);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : p.revents; /* as the ring says */
        if (n == 0 && left == 0)
            return deadline == URSA_NOW ? -EAGAIN : -ETIMEDOUT;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* A task on the fallback: looks once, then waits on its worker's watch
 * list, which the worker polls from its loop (rt/ring.c) while it runs
 * other tasks. revents, or -errno (-ENOMEM: the list could not grow). */
static int poll_task(ursa__worker_t *w, ursa_task_t *t, int fd, short events,
                     ursa_time_t deadline)
{
    int rc = poll_thread(fd, events, URSA_NOW);
    if (rc != -EAGAIN || deadline == URSA_NOW)
        return rc;
    ursa__io_op_t op = {.task = t};
    rc = ursa__ring_watch(&w->ring, &op, fd, events);
    if (rc)
        return rc;
    t->wait_kind = URSA_WAIT_IO;
    t->io_busy = true; /* on this worker's watch list: a migratable task stays */
    rc = ursa__task_wait(t, &op.done, 0, deadline);
    /* relaxed: the worker that set it is this thread. */
    if (!atomic_load_explicit(&op.done, memory_order_relaxed))
        ursa__ring_unwatch(&w->ring, &op);
    else
        rc = op.res; /* ready, even if the deadline or a cancel came too */
    t->io_busy = false;
    return rc;
}

/* Waits without a ring until fd has one of `events`: revents or -errno. */
static int wait_ready(ursa__worker_t *w, ursa_task_t *t, int fd, short events,
                      ursa_time_t deadline)
{
    return t ? poll_task(w, t, fd, events, deadline) : poll_thread(fd, events, deadline);
}

/* One read or write (preadv2/pwritev2: offset -1 is the current position;
 * flags RWF_NOWAIT: only what needs no waiting, else -EAGAIN). An offset
 * on a descriptor that cannot seek is ignored, as the ring ignores it. */
static ssize_t rw_once(int fd, void *buf, size_t len, int64_t offset, bool out, int flags)
{
    struct iovec v = {buf, len};
    ssize_t n = out ? pwritev2(fd, &v, 1, offset, flags) : preadv2(fd, &v, 1, offset, flags);
    if (n < 0 && errno == ESPIPE && offset >= 0)
        return rw_once(fd, buf, len, -1, out, flags);
    return n < 0 ? -errno : n;
}

/* A read or write without the ring: a try that cannot block; if the fd is
 * not ready, a wait for readiness and a second try. The plain (blocking)
 * call only where the kernel cannot try without blocking (RWF_NOWAIT not
 * supported for this descriptor), after the wait, or when it says "not
 * ready" just after poll said ready (a regular file whose data is not
 * cached: readiness means nothing there). */
static ssize_t rw_ready(ursa__worker_t *w, ursa_task_t *t, int fd, void *buf, size_t len,
                        int64_t offset, ursa_time_t deadline, bool out)
{
    ssize_t n = rw_once(fd, buf, len, offset, out, RWF_NOWAIT);
    bool nowait = n != -EOPNOTSUPP && n != -ENOSYS;
    if (nowait && n != -EAGAIN)
        return n;
    if (n == -EAGAIN && deadline == URSA_NOW)
        return -EAGAIN;
    int rc = wait_ready(w, t, fd, out ? POLLOUT : POLLIN, deadline);
    if (rc < 0)
        return rc;
    if (nowait && (n = rw_once(fd, buf, len, offset, out, RWF_NOWAIT)) != -EAGAIN)
        return n;
    return rw_once(fd, buf, len, offset, out, 0);
}

/* Accept without the ring: what accept(2) would fail with at once (not a
 * socket, not listening, a bad descriptor) before any wait, as the ring
 * does. */
static int accept_ready(ursa__worker_t *w, ursa_task_t *t, int fd, struct sockaddr *addr,
                        socklen_t *addrlen, int flags, ursa_time_t deadline)
{
    int listening = 0;
    socklen_t l = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0)
        return -errno;
    if (!listening)
        return -EINVAL;
    int rc = wait_ready(w, t, fd, POLLIN, deadline);
    if (rc < 0)
        return rc;
    int s = accept4(fd, addr, addrlen, flags);
    return s < 0 ? -errno : s;
}

/* Connect without the ring. connect(2) on a blocking socket waits for the
 * handshake, deaf to the deadline (and, in a task, holding the worker), so
 * the socket is nonblocking for the length of the call. */
static int connect_ready(ursa__worker_t *w, ursa_task_t *t, int fd, const struct sockaddr *addr,
                         socklen_t addrlen, ursa_time_t deadline)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    bool blocking = !(fl & O_NONBLOCK);
    if (blocking && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int rc = connect(fd, addr, addrlen) == 0 ? 0 : -errno;
    if (blocking)
        (void)fcntl(fd, F_SETFL, fl);
    if (rc != -EINPROGRESS)
        return rc;
    rc = wait_ready(w, t, fd, POLLOUT, deadline);
    if (rc < 0)
        return rc;
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        return -errno;
    return -err;
}

/* The kernel moves at most this much per read/write (MAX_RW_COUNT); a
 * longer request is a short one, as with read(2). */
#define URSA__IO_MAX 0x7ffff000u

static unsigned io_len(size_t len)
{
    return len > URSA__IO_MAX ? URSA__IO_MAX : (unsigned)len;
}

/* Starts task t's op: an SQE for the caller to prepare, with op as its
 * user_data. */
static struct io_uring_sqe *op_begin(ursa__worker_t *w, ursa_task_t *t, ursa__io_op_t *op)
{
    op->task = t;
    op->res = 0;
    op->waiter = NULL;
    atomic_init(&op->done, 0);
    struct io_uring_sqe *sqe = ursa__ring_sqe(&w->ring);
    io_uring_sqe_set_data(sqe, op);
    return sqe;
}

/* read and write differ only in direction. */
static ssize_t rw(int fd, void *buf, size_t len, int64_t offset, ursa_time_t deadline, bool out)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (fd < 0 || (!buf && len) || offset < -1)
        return -EINVAL;
    if (!on_ring(w, t))
        return rw_ready(w, t, fd, buf, len, offset, deadline, out);
    ursa__io_op_t op;
    struct io_uring_sqe *sqe = op_begin(w, t, &op);
    if (out)
        io_uring_prep_write(sqe, fd, buf, io_len(len), (uint64_t)offset);
    else
        io_uring_prep_read(sqe, fd, buf, io_len(len), (uint64_t)offset);
    return run_op(w, t, &op, deadline);
}

ssize_t ursa_read(int fd, void *buf, size_t len, int64_t offset, ursa_time_t deadline)
{
    return rw(fd, buf, len, offset, deadline, false);
}

ssize_t ursa_write(int fd, const void *buf, size_t len, int64_t offset, ursa_time_t deadline)
{
    return rw(fd, (void *)buf, len, offset, deadline, true);
}

int ursa_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                ursa_time_t deadline)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (fd < 0)
        return -EINVAL;
    if (!on_ring(w, t))
        return accept_ready(w, t, fd, addr, addrlen, flags, deadline);
    ursa__io_op_t op;
    struct io_uring_sqe *sqe = op_begin(w, t, &op);
    io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
    return run_op(w, t, &op, deadline);
}

int ursa_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, ursa_time_t deadline)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (fd < 0 || !addr)
        return -EINVAL;
    if (!on_ring(w, t))
        return connect_ready(w, t, fd, addr, addrlen, deadline);
    ursa__io_op_t op;
    struct io_uring_sqe *sqe = op_begin(w, t, &op);
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    return run_op(w, t, &op, deadline);
}

int ursa_poll(int fd, short events, ursa_time_t deadline)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (fd < 0)
        return -EINVAL;
    /* A try is a readiness check, which poll(2) answers without blocking;
     * through the ring, a ready poll's completion could lose the race with
     * the immediate cancel. */
    if (!on_ring(w, t) || deadline == URSA_NOW)
        return wait_ready(w, t, fd, events, deadline);
    ursa__io_op_t op;
    struct io_uring_sqe *sqe = op_begin(w, t, &op);
    io_uring_prep_poll_add(sqe, fd, (unsigned)events);
    return run_op(w, t, &op, deadline);
}

/* ---- a select's readiness wait (rt/io_wait.h) ---- */

void ursa__io_op_complete(ursa__io_op_t *op)
{
    /* A won wait's waker (the select's) wakes the task; a lost or plain
     * one is woken here. */
    if (!op->waiter || !ursa__waiter_decide_now(op->waiter, URSA__W_GRANTED))
        ursa__task_wake(op->task);
}

bool ursa__io_wait_in_task(void)
{
    ursa__worker_t *w;
    return io_task(&w) != NULL;
}

int ursa__io_wait_start(ursa__io_op_t *op, ursa__waiter_t *wt, int fd, short events)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (!t)
        return -EINVAL;
    /* relaxed: the completion runs on this thread (the task stays on its
     * worker while the op is in flight). */
    atomic_store_explicit(&wt->state, URSA__W_QUEUED, memory_order_relaxed);
    if (!w->ring.ok) {
        op->task = t;
        op->res = 0;
        op->waiter = wt;
        atomic_init(&op->done, 0);
        int rc = ursa__ring_watch(&w->ring, op, fd, events);
        if (rc)
            return rc;
    } else {
        struct io_uring_sqe *sqe = op_begin(w, t, op);
        op->waiter = wt;
        io_uring_prep_poll_add(sqe, fd, (unsigned)events);
        w->ring.inflight++;
    }
    t->io_busy = true; /* the completion comes to this worker */
    return -EINPROGRESS;
}

void ursa__io_wait_end(ursa__io_op_t *op)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    /* relaxed: set on this thread by the reaping worker. */
    if (!atomic_load_explicit(&op->done, memory_order_relaxed)) {
        if (!w->ring.ok) {
            ursa__ring_unwatch(&w->ring, op);
        } else {
            struct io_uring_sqe *sqe = ursa__ring_sqe(&w->ring);
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
            io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
            /* Uninterruptible: the kernel holds op until its CQE. */
            while (!atomic_load_explicit(&op->done, memory_order_relaxed)) {
                t->wait_kind = URSA_WAIT_IO;
                ursa__task_park(t);
            }
        }
    }
}

void ursa__io_wait_release(void)
{
    ursa__worker_t *w;
    ursa_task_t *t = io_task(&w);
    if (t)
        t->io_busy = false;
}
