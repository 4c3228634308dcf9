/* Select's kinds of case (select.h): each one the raw wait its primitive
 * already has, plus the single call with URSA_NOW as its try. To add a
 * kind: write its five functions here (or in the primitive's folder),
 * append its entry to ursa__case_kinds, its enum value and a builder to
 * include/ursa/select.h. */
#include <poll.h>

#include "../core/waitq.h"
#include "../rt/io_wait.h"
#include "select.h"

#define OBJ URSA__KIND_OBJ
#define OBJ_OUT (URSA__KIND_OBJ | URSA__KIND_OUT)

/* ---- mutex ---- */

static int mutex_check(const ursa_case_t *c)
{
    const ursa_mutex_guard_t *g = c->out;
    return g->mutex ? -EINVAL : 0;
}

static int mutex_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_mutex_lock_at(c->obj, c->out, URSA_NOW, site);
}

static int mutex_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_mutex_lock_start_at(c->obj, &c->wait_, waker, site);
}

static int mutex_finish(ursa_case_t *c)
{
    return ursa_mutex_lock_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t mutex_kind = {OBJ_OUT, mutex_check, mutex_try, mutex_start,
                                             mutex_finish, NULL};

/* ---- rwlock ---- */

static int read_check(const ursa_case_t *c)
{
    const ursa_rwlock_read_guard_t *g = c->out;
    return g->rw ? -EINVAL : 0;
}

static int read_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_rwlock_read_lock_at(c->obj, c->out, URSA_NOW, site);
}

static int read_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_rwlock_read_lock_start_at(c->obj, &c->wait_, waker, site);
}

static int read_finish(ursa_case_t *c)
{
    return ursa_rwlock_read_lock_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t read_kind = {OBJ_OUT, read_check, read_try, read_start, read_finish,
                                            NULL};

static int write_check(const ursa_case_t *c)
{
    const ursa_rwlock_write_guard_t *g = c->out;
    return g->rw ? -EINVAL : 0;
}

static int write_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_rwlock_write_lock_at(c->obj, c->out, URSA_NOW, site);
}

static int write_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_rwlock_write_lock_start_at(c->obj, &c->wait_, waker, site);
}

static int write_finish(ursa_case_t *c)
{
    return ursa_rwlock_write_lock_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t write_kind = {OBJ_OUT, write_check, write_try, write_start,
                                             write_finish, NULL};

/* ---- semaphore ---- */

static int sem_check(const ursa_case_t *c)
{
    const ursa_sem_permit_t *p = c->out;
    return p->sem || c->n == 0 || c->n > URSA_SEM_REQUEST_MAX ? -EINVAL : 0;
}

static int sem_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_sem_acquire_at(c->obj, c->n, c->out, URSA_NOW, site);
}

static int sem_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_sem_acquire_start_at(c->obj, c->n, &c->wait_, waker, site);
}

static int sem_finish(ursa_case_t *c)
{
    return ursa_sem_acquire_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t sem_kind = {OBJ_OUT, sem_check, sem_try, sem_start, sem_finish, NULL};

/* ---- notify, event, once ---- */

static int notify_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_notify_wait_at(c->obj, URSA_NOW, site);
}

static int notify_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_notify_wait_start_at(c->obj, &c->wait_, waker, site);
}

static int notify_finish(ursa_case_t *c)
{
    return ursa_notify_wait_finish(c->obj, &c->wait_);
}

static const ursa__case_kind_t notify_kind = {OBJ, NULL, notify_try, notify_start,
                                              notify_finish, NULL};

static int event_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_event_wait_at(c->obj, URSA_NOW, site);
}

static int event_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_event_wait_start_at(c->obj, &c->wait_, waker, site);
}

static int event_finish(ursa_case_t *c)
{
    return ursa_event_wait_finish(c->obj, &c->wait_);
}

static const ursa__case_kind_t event_kind = {OBJ, NULL, event_try, event_start, event_finish,
                                             NULL};

static int once_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_once_wait_at(c->obj, c->out, URSA_NOW, site);
}

static int once_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_once_wait_start_at(c->obj, &c->wait_, waker, site);
}

static int once_finish(ursa_case_t *c)
{
    return ursa_once_wait_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t once_kind = {OBJ, NULL, once_try, once_start, once_finish,
                                            NULL};

/* ---- pool ---- */

static int pool_check(const ursa_case_t *c)
{
    const ursa_pool_item_t *it = c->out;
    return it->pool ? -EINVAL : 0;
}

static int pool_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_pool_acquire_at(c->obj, c->out, URSA_NOW, site);
}

static int pool_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_pool_acquire_start_at(c->obj, &c->wait_, waker, site);
}

static int pool_finish(ursa_case_t *c)
{
    return ursa_pool_acquire_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t pool_kind = {OBJ_OUT, pool_check, pool_try, pool_start, pool_finish,
                                            NULL};

/* ---- receives ---- */

static int mpsc_recv_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpsc_recv(c->obj, c->out, URSA_NOW);
}

static int mpsc_recv_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpsc_recv_start(c->obj, &c->wait_, waker);
}

static int mpsc_recv_finish(ursa_case_t *c)
{
    return ursa_mpsc_recv_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t mpsc_recv_kind = {OBJ_OUT | URSA__KIND_ONE_SLOT, NULL, mpsc_recv_try,
                                                 mpsc_recv_start, mpsc_recv_finish, NULL};

static int mpmc_recv_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpmc_recv(c->obj, c->out, URSA_NOW);
}

static int mpmc_recv_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpmc_recv_start(c->obj, &c->wait_, waker);
}

static int mpmc_recv_finish(ursa_case_t *c)
{
    return ursa_mpmc_recv_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t mpmc_recv_kind = {OBJ_OUT, NULL, mpmc_recv_try,
                                                 mpmc_recv_start, mpmc_recv_finish, NULL};

static int bcast_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_broadcast_recv_at(c->obj, c->out, c->missed, URSA_NOW, site);
}

static int bcast_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_broadcast_recv_start_at(c->obj, &c->wait_, waker, site);
}

static int bcast_finish(ursa_case_t *c)
{
    return ursa_broadcast_recv_finish(c->obj, &c->wait_, c->out, c->missed);
}

static const ursa__case_kind_t bcast_kind = {OBJ_OUT, NULL, bcast_try, bcast_start,
                                             bcast_finish, NULL};

static int oneshot_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_oneshot_recv_at(c->obj, c->out, URSA_NOW, site);
}

static int oneshot_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_oneshot_recv_start_at(c->obj, &c->wait_, waker, site);
}

static int oneshot_finish(ursa_case_t *c)
{
    return ursa_oneshot_recv_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t oneshot_kind = {OBJ_OUT | URSA__KIND_ONE_SLOT, NULL, oneshot_try, oneshot_start,
                                               oneshot_finish, NULL};

static int watch_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_watch_changed_at(c->obj, URSA_NOW, site);
}

static int watch_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_watch_changed_start(c->obj, &c->wait_, waker);
}

static int watch_finish(ursa_case_t *c)
{
    return ursa_watch_changed_finish(c->obj, &c->wait_);
}

static const ursa__case_kind_t watch_kind = {OBJ | URSA__KIND_ONE_SLOT, NULL, watch_try, watch_start, watch_finish,
                                             NULL};

/* ---- sends: a reserve, sent through only by the winner ---- */

static int mpsc_send_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpsc_send(c->obj, c->in, URSA_NOW);
}

static int mpsc_send_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpsc_reserve_start(c->obj, 1, &c->wait_, waker);
}

static int mpsc_send_finish(ursa_case_t *c)
{
    ursa_mpsc_permit_t p = URSA__ZERO;
    int rc = ursa_mpsc_reserve_finish(c->obj, &c->wait_, &p);
    return rc ? rc : ursa_mpsc_permit_send(&p, c->in);
}

static const ursa__case_kind_t mpsc_send_kind = {OBJ | URSA__KIND_IN, NULL, mpsc_send_try, mpsc_send_start,
                                                 mpsc_send_finish, NULL};

static int mpmc_send_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpmc_send(c->obj, c->in, URSA_NOW);
}

static int mpmc_send_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_mpmc_reserve_start(c->obj, 1, &c->wait_, waker);
}

static int mpmc_send_finish(ursa_case_t *c)
{
    ursa_mpmc_permit_t p = URSA__ZERO;
    int rc = ursa_mpmc_reserve_finish(c->obj, &c->wait_, &p);
    return rc ? rc : ursa_mpmc_permit_send(&p, c->in);
}

static const ursa__case_kind_t mpmc_send_kind = {OBJ | URSA__KIND_IN, NULL, mpmc_send_try, mpmc_send_start,
                                                 mpmc_send_finish, NULL};

/* ---- task join ---- */

static int join_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_task_join_at(c->obj, c->out, URSA_NOW, site);
}

static int join_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    return ursa_task_join_start(c->obj, &c->wait_, waker);
}

static int join_finish(ursa_case_t *c)
{
    return ursa_task_join_finish(c->obj, &c->wait_, c->out);
}

static const ursa__case_kind_t join_kind = {OBJ | URSA__KIND_ONE_SLOT, NULL, join_try, join_start, join_finish,
                                            NULL};

/* ---- cancellation token ---- */

static int token_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_token_wait_at(c->obj, URSA_NOW, site);
}

static int token_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_token_wait_start_at(c->obj, &c->wait_, waker, site);
}

static int token_finish(ursa_case_t *c)
{
    return ursa_token_wait_finish(c->obj, &c->wait_);
}

static const ursa__case_kind_t token_kind = {OBJ, NULL, token_try, token_start, token_finish,
                                             NULL};

/* ---- a group's join_next ---- */

static int group_try(ursa_case_t *c, const ursa_site_t *site)
{
    return ursa_group_join_next_at(c->obj, c->out, NULL, URSA_NOW, site);
}

static int group_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    return ursa_group_join_next_start_at(c->obj, &c->wait_, waker, site);
}

static int group_finish(ursa_case_t *c)
{
    return ursa_group_join_next_finish(c->obj, &c->wait_, c->out, NULL);
}

static const ursa__case_kind_t group_kind = {OBJ, NULL, group_try, group_start, group_finish,
                                             NULL};

/* ---- fd readiness ---- */

/* An fd case's private part: the poll in flight (a task), or what the
 * select's own ppoll found (a plain thread). */
typedef struct fd_priv {
    ursa__io_op_t op;
    int32_t on_ring; /* started through the task's worker */
    int32_t revents; /* polled by the select's loop */
} fd_priv_t;

_Static_assert(sizeof(fd_priv_t) <= sizeof(((ursa_case_t *)0)->priv_),
               "ursa_case_t.priv_ holds an fd case's poll");

static fd_priv_t *fd_priv(ursa_case_t *c)
{
    return (fd_priv_t *)(void *)c->priv_;
}

/* Never queued on a primitive: the select ends it (fd_cancel). */
static bool fd_wait_cancel(ursa__waiter_t *w)
{
    (void)w;
    return true;
}

static const ursa__wait_ops_t fd_ops = {URSA_WAIT_IO, fd_wait_cancel, NULL};

static int fd_check(const ursa_case_t *c)
{
    short want = c->kind == URSA_CASE_FD_READABLE ? POLLIN : POLLOUT;
    return c->fd >= 0 && (c->events == 0 || c->events == want) ? 0 : -EINVAL;
}

static short fd_events(const ursa_case_t *c)
{
    return c->kind == URSA_CASE_FD_READABLE ? POLLIN : POLLOUT;
}

static int fd_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    struct pollfd p = {.fd = c->fd, .events = fd_events(c)};
    int n = poll(&p, 1, 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EAGAIN;
    return (p.revents & POLLNVAL) ? -EBADF : p.revents; /* as ursa_poll says */
}

static int fd_start(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site)
{
    (void)site;
    fd_priv_t *f = fd_priv(c);
    ursa__waiter_init(&c->wait_.waiter, waker, &fd_ops);
    c->wait_.site = NULL;
    f->revents = 0;
    f->on_ring = ursa__io_wait_in_task();
    if (!f->on_ring) {
        /* The plain thread's select polls it and takes the claim for it
         * itself: no waker call will ever be in flight for this node.
         * relaxed: our own node. */
        atomic_store_explicit(&c->wait_.waiter.done, 1, memory_order_relaxed);
        return -EINPROGRESS;
    }
    int rc = ursa__io_wait_start(&f->op, &c->wait_.waiter, c->fd, fd_events(c));
    if (rc != -EINPROGRESS)
        f->on_ring = 0;
    return rc;
}

void ursa__fd_case_polled(ursa_case_t *c, int revents)
{
    fd_priv(c)->revents = (revents & POLLNVAL) ? -EBADF : revents;
}

static int fd_finish(ursa_case_t *c)
{
    fd_priv_t *f = fd_priv(c);
    if (!f->on_ring)
        return f->revents;
    ursa__io_wait_end(&f->op); /* completed: nothing to withdraw */
    f->on_ring = 0;
    int res = f->op.res;
    return (res > 0 && (res & POLLNVAL)) ? -EBADF : res;
}

static void fd_cancel(ursa_case_t *c)
{
    fd_priv_t *f = fd_priv(c);
    if (f->on_ring)
        ursa__io_wait_end(&f->op);
    f->on_ring = 0;
}

static const ursa__case_kind_t fd_kind = {URSA__KIND_FD, fd_check, fd_try, fd_start, fd_finish,
                                          fd_cancel};

/* ---- sleep-until: the select's deadline does the waiting ---- */

static int sleep_check(const ursa_case_t *c)
{
    return c->at >= 0 ? 0 : -EINVAL;
}

static int sleep_try(ursa_case_t *c, const ursa_site_t *site)
{
    (void)site;
    return ursa_now() >= c->at ? 0 : -EAGAIN;
}

static int sleep_finish(ursa_case_t *c)
{
    (void)c;
    return 0;
}

static const ursa__case_kind_t sleep_kind = {URSA__KIND_SLEEP, sleep_check, sleep_try, NULL,
                                             sleep_finish, NULL};

/* ---- the table ---- */

const ursa__case_kind_t *const ursa__case_kinds[URSA_CASE__COUNT] = {
    [URSA_CASE_MUTEX_LOCK] = &mutex_kind,
    [URSA_CASE_RWLOCK_READ] = &read_kind,
    [URSA_CASE_RWLOCK_WRITE] = &write_kind,
    [URSA_CASE_SEM_ACQUIRE] = &sem_kind,
    [URSA_CASE_NOTIFY_WAIT] = &notify_kind,
    [URSA_CASE_EVENT_WAIT] = &event_kind,
    [URSA_CASE_ONCE_WAIT] = &once_kind,
    [URSA_CASE_POOL_ACQUIRE] = &pool_kind,
    [URSA_CASE_MPSC_RECV] = &mpsc_recv_kind,
    [URSA_CASE_MPMC_RECV] = &mpmc_recv_kind,
    [URSA_CASE_BROADCAST_RECV] = &bcast_kind,
    [URSA_CASE_MPSC_SEND] = &mpsc_send_kind,
    [URSA_CASE_MPMC_SEND] = &mpmc_send_kind,
    [URSA_CASE_WATCH_CHANGED] = &watch_kind,
    [URSA_CASE_ONESHOT_RECV] = &oneshot_kind,
    [URSA_CASE_TASK_JOIN] = &join_kind,
    [URSA_CASE_FD_READABLE] = &fd_kind,
    [URSA_CASE_FD_WRITABLE] = &fd_kind,
    [URSA_CASE_SLEEP_UNTIL] = &sleep_kind,
    [URSA_CASE_TOKEN_WAIT] = &token_kind,
    [URSA_CASE_GROUP_JOIN_NEXT] = &group_kind,
};
