#include "ring.h"

#include <errno.h>
#include <poll.h>
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

static void reap(ursa__ring_t *r)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&r->uring, head, cqe)
    {
        n++;
        uint64_t ud = cqe->user_data;
        if (ud == URSA__UD_IGNORE)
            continue;
        if (ud == URSA__UD_EVENTFD) {
            r->ev_armed = false;
            continue;
        }
        ursa__io_op_t *op = (ursa__io_op_t *)(uintptr_t)ud;
        op->res = cqe->res;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed); /* same thread */
        r->inflight--;
        ursa__task_wake(op->task);
    }
    io_uring_cq_advance(&r->uring, n);
    if (!r->ev_armed)
        arm_eventfd(r);
}

void ursa__ring_poll(ursa__ring_t *r)
{
    if (!r->ok)
        return;
    if (r->inflight || io_uring_sq_ready(&r->uring)) {
        io_uring_submit_and_get_events(&r->uring);
        reap(r);
    }
}

void ursa__ring_wait(ursa__ring_t *r, ursa_time_t timeout)
{
    if (!r->ok) {
        struct pollfd p = {.fd = r->evfd, .events = POLLIN};
        struct timespec ts = ursa__timespec(timeout < 0 ? 0 : timeout);
        if (ppoll(&p, 1, timeout < 0 ? NULL : &ts, NULL) > 0) {
            uint64_t v;
            ssize_t n = read(r->evfd, &v, sizeof v);
            (void)n;
        }
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
    r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return r->evfd < 0 ? -errno : 0;
}

void ursa__ring_init(ursa__ring_t *r)
{
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
    if (r->ok)
        arm_eventfd(r);
}

void ursa__ring_fini(ursa__ring_t *r)
{
    if (r->ok)
        io_uring_queue_exit(&r->uring);
    r->ok = false;
    r->ev_armed = false;
}

void ursa__ring_exit(ursa__ring_t *r)
{
    ursa__ring_fini(r);
    if (r->evfd >= 0)
        close(r->evfd);
    r->evfd = -1;
}
