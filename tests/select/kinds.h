/* One fixture per select case kind for the select tests: set the
 * primitive up not ready, make it ready, build its case, check a won case
 * (its hold, then release it) and check a lost one (the primitive exactly
 * as if the select never happened: the permit, message, notification,
 * slot or value still there for the next taker, nothing sent). Bodies
 * return NULL or a message (task_checks.h). Include after support.h and
 * task_checks.h. */
#ifndef URSA_TEST_SELECT_KINDS_H
#define URSA_TEST_SELECT_KINDS_H

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "pool_fixture.h"
#include "ursa/select.h"

/* The kinds the fixtures cover (fd and sleep in their own tests too). */
static const int fx_kinds[] = {
    URSA_CASE_MUTEX_LOCK,    URSA_CASE_RWLOCK_READ,   URSA_CASE_RWLOCK_WRITE,
    URSA_CASE_SEM_ACQUIRE,   URSA_CASE_NOTIFY_WAIT,   URSA_CASE_EVENT_WAIT,
    URSA_CASE_ONCE_WAIT,     URSA_CASE_POOL_ACQUIRE,  URSA_CASE_MPSC_RECV,
    URSA_CASE_MPMC_RECV,     URSA_CASE_BROADCAST_RECV, URSA_CASE_MPSC_SEND,
    URSA_CASE_MPMC_SEND,     URSA_CASE_WATCH_CHANGED, URSA_CASE_ONESHOT_RECV,
    URSA_CASE_TASK_JOIN,     URSA_CASE_FD_READABLE,   URSA_CASE_TOKEN_WAIT,
    URSA_CASE_GROUP_JOIN_NEXT,
};
#define FX_KINDS (sizeof fx_kinds / sizeof fx_kinds[0])

typedef struct fx {
    int kind;
    bool has_pool; /* the pool needs a runtime: tasks only */
    ursa_mutex_t m;
    ursa_mutex_guard_t mg, mg_helper;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t rg, rg_helper;
    ursa_rwlock_write_guard_t wg, wg_helper;
    ursa_sem_t sem;
    ursa_sem_permit_t sp, sp_helper;
    ursa_notify_t nt;
    ursa_event_t ev;
    ursa_once_cell_t once;
    void *once_val;
    fac_t fac;
    ursa_pool_t *pool;
    ursa_pool_item_t it, it_helper;
    ursa_mpsc_receiver_t mrx;
    ursa_mpsc_sender_t mtx;
    ursa_mpmc_receiver_t qrx;
    ursa_mpmc_sender_t qtx;
    ursa_broadcast_tx_t *btx;
    ursa_broadcast_rx_t *brx;
    uint64_t missed;
    ursa_watch_tx_t *wtx;
    ursa_watch_rx_t *wrx;
    ursa_oneshot_t os;
    ursa_task_t *task;
    ursa_token_t tok;
    ursa_group_t group;
    ursa_event_t task_go;
    void *join_res;
    int pipe[2];
    uint64_t in, out;
} fx_t;

static void *fx_task_fn(void *arg)
{
    fx_t *f = arg;
    int rc = ursa_event_wait(&f->task_go, URSA_NEVER);
    return rc ? NULL : (void *)(uintptr_t)77;
}

static const uint64_t FX_VALUE = 4242;

/* Not ready. */
static const char *fx_setup(fx_t *f, int kind)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->pipe[0] = f->pipe[1] = -1;
    switch (kind) {
    case URSA_CASE_MUTEX_LOCK:
        CHECK_EQ(ursa_mutex_init(&f->m), 0);
        CHECK_EQ(ursa_mutex_lock(&f->m, &f->mg_helper, URSA_NOW), 0);
        break;
    case URSA_CASE_RWLOCK_READ:
        CHECK_EQ(ursa_rwlock_init(&f->rw, 4), 0);
        CHECK_EQ(ursa_rwlock_write_lock(&f->rw, &f->wg_helper, URSA_NOW), 0);
        break;
    case URSA_CASE_RWLOCK_WRITE:
        CHECK_EQ(ursa_rwlock_init(&f->rw, 4), 0);
        CHECK_EQ(ursa_rwlock_read_lock(&f->rw, &f->rg_helper, URSA_NOW), 0);
        break;
    case URSA_CASE_SEM_ACQUIRE:
        CHECK_EQ(ursa_sem_init(&f->sem, 2), 0);
        CHECK_EQ(ursa_sem_acquire(&f->sem, 2, &f->sp_helper, URSA_NOW), 0);
        break;
    case URSA_CASE_NOTIFY_WAIT:
        CHECK_EQ(ursa_notify_init(&f->nt), 0);
        break;
    case URSA_CASE_EVENT_WAIT:
        CHECK_EQ(ursa_event_init(&f->ev, URSA_EVENT_AUTO, false), 0);
        break;
    case URSA_CASE_ONCE_WAIT:
        CHECK_EQ(ursa_once_init(&f->once, NULL), 0);
        break;
    case URSA_CASE_POOL_ACQUIRE:
        f->pool = fac_pool(&f->fac, 1, 0);
        CHECK(f->pool);
        f->has_pool = true;
        CHECK_EQ(ursa_pool_acquire(f->pool, &f->it_helper, test_guard_deadline()), 0);
        break;
    case URSA_CASE_MPSC_RECV:
    case URSA_CASE_MPSC_SEND:
        CHECK_EQ(ursa_mpsc_new(&f->mrx, &f->mtx, sizeof(uint64_t), 1, NULL), 0);
        if (kind == URSA_CASE_MPSC_SEND) { /* full */
            uint64_t v = 1;
            CHECK_EQ(ursa_mpsc_send(&f->mtx, &v, URSA_NOW), 0);
        }
        break;
    case URSA_CASE_MPMC_RECV:
    case URSA_CASE_MPMC_SEND:
        CHECK_EQ(ursa_mpmc_new(&f->qrx, &f->qtx, sizeof(uint64_t), 1, NULL), 0);
        if (kind == URSA_CASE_MPMC_SEND) {
            uint64_t v = 1;
            CHECK_EQ(ursa_mpmc_send(&f->qtx, &v, URSA_NOW), 0);
        }
        break;
    case URSA_CASE_BROADCAST_RECV:
        CHECK_EQ(ursa_broadcast_new(&f->btx, &f->brx, sizeof(uint64_t), 4, NULL), 0);
        break;
    case URSA_CASE_WATCH_CHANGED: {
        uint64_t v0 = 0;
        CHECK_EQ(ursa_watch_new(&f->wtx, &f->wrx, sizeof(uint64_t), &v0), 0);
        break;
    }
    case URSA_CASE_ONESHOT_RECV:
        CHECK_EQ(ursa_oneshot_init(&f->os, sizeof(uint64_t), NULL), 0);
        break;
    case URSA_CASE_TASK_JOIN:
        CHECK_EQ(ursa_event_init(&f->task_go, URSA_EVENT_MANUAL, false), 0);
        CHECK_EQ(ursa_spawn(&f->task, fx_task_fn, f, NULL), 0);
        break;
    case URSA_CASE_TOKEN_WAIT:
        CHECK_EQ(ursa_token_init(&f->tok, NULL), 0);
        break;
    case URSA_CASE_GROUP_JOIN_NEXT:
        CHECK_EQ(ursa_event_init(&f->task_go, URSA_EVENT_MANUAL, false), 0);
        CHECK_EQ(ursa_group_init(&f->group, NULL), 0);
        CHECK_EQ(ursa_group_spawn(&f->group, NULL, fx_task_fn, f, NULL), 0);
        break;
    case URSA_CASE_FD_READABLE:
        CHECK_EQ(pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK), 0);
        break;
    default:
        return "fx_setup: unknown kind";
    }
    return NULL;
}

/* The case, built the way a user builds it. */
static ursa_case_t fx_case(fx_t *f)
{
    f->in = FX_VALUE + 1;
    switch (f->kind) {
    case URSA_CASE_MUTEX_LOCK: return ursa_case_lock(&f->m, &f->mg);
    case URSA_CASE_RWLOCK_READ: return ursa_case_read_lock(&f->rw, &f->rg);
    case URSA_CASE_RWLOCK_WRITE: return ursa_case_write_lock(&f->rw, &f->wg);
    case URSA_CASE_SEM_ACQUIRE: return ursa_case_acquire(&f->sem, 2, &f->sp);
    case URSA_CASE_NOTIFY_WAIT: return ursa_case_notify(&f->nt);
    case URSA_CASE_EVENT_WAIT: return ursa_case_event(&f->ev);
    case URSA_CASE_ONCE_WAIT: return ursa_case_once(&f->once, &f->once_val);
    case URSA_CASE_POOL_ACQUIRE: return ursa_case_pool(f->pool, &f->it);
    case URSA_CASE_MPSC_RECV: return ursa_case_recv_mpsc(&f->mrx, &f->out);
    case URSA_CASE_MPMC_RECV: return ursa_case_recv_mpmc(&f->qrx, &f->out);
    case URSA_CASE_BROADCAST_RECV: return ursa_case_recv_broadcast(f->brx, &f->out, &f->missed);
    case URSA_CASE_MPSC_SEND: return ursa_case_send_mpsc(&f->mtx, &f->in);
    case URSA_CASE_MPMC_SEND: return ursa_case_send_mpmc(&f->qtx, &f->in);
    case URSA_CASE_WATCH_CHANGED: return ursa_case_watch_changed(f->wrx);
    case URSA_CASE_ONESHOT_RECV: return ursa_case_recv_oneshot(&f->os, &f->out);
    case URSA_CASE_TASK_JOIN: return ursa_case_join(f->task, &f->join_res);
    case URSA_CASE_TOKEN_WAIT: return ursa_case_token(&f->tok);
    case URSA_CASE_GROUP_JOIN_NEXT: return ursa_case_join_next(&f->group, &f->join_res);
    default: return ursa_case_readable(f->pipe[0]);
    }
}

/* Makes it ready (any thread or task). */
static const char *fx_ready(fx_t *f)
{
    uint64_t v = FX_VALUE;
    switch (f->kind) {
    case URSA_CASE_MUTEX_LOCK: CHECK_EQ(ursa_mutex_unlock(&f->mg_helper), 0); break;
    case URSA_CASE_RWLOCK_READ: CHECK_EQ(ursa_rwlock_write_unlock(&f->wg_helper), 0); break;
    case URSA_CASE_RWLOCK_WRITE: CHECK_EQ(ursa_rwlock_read_unlock(&f->rg_helper), 0); break;
    case URSA_CASE_SEM_ACQUIRE: CHECK_EQ(ursa_sem_release(&f->sp_helper), 0); break;
    case URSA_CASE_NOTIFY_WAIT: CHECK_EQ(ursa_notify_one(&f->nt), 1); break;
    case URSA_CASE_EVENT_WAIT: CHECK_EQ(ursa_event_set(&f->ev), 1); break;
    case URSA_CASE_ONCE_WAIT: CHECK_EQ(ursa_once_set(&f->once, (void *)&FX_VALUE), 0); break;
    case URSA_CASE_POOL_ACQUIRE: CHECK_EQ(ursa_pool_return(f->pool, &f->it_helper), 0); break;
    case URSA_CASE_MPSC_RECV: CHECK_EQ(ursa_mpsc_send(&f->mtx, &v, URSA_NOW), 0); break;
    case URSA_CASE_MPMC_RECV: CHECK_EQ(ursa_mpmc_send(&f->qtx, &v, URSA_NOW), 0); break;
    case URSA_CASE_BROADCAST_RECV: CHECK(ursa_broadcast_send(f->btx, &v) >= 0); break;
    case URSA_CASE_MPSC_SEND: { /* room for one: take the filler out */
        uint64_t o;
        CHECK_EQ(ursa_mpsc_try_recv(&f->mrx, &o), 0);
        CHECK_EQ(o, 1);
        break;
    }
    case URSA_CASE_MPMC_SEND: {
        uint64_t o;
        CHECK_EQ(ursa_mpmc_try_recv(&f->qrx, &o), 0);
        CHECK_EQ(o, 1);
        break;
    }
    case URSA_CASE_WATCH_CHANGED: CHECK(ursa_watch_send(f->wtx, &v) >= 0); break;
    case URSA_CASE_ONESHOT_RECV: CHECK(ursa_oneshot_send(&f->os, &v) >= 0); break;
    case URSA_CASE_TASK_JOIN: CHECK_EQ(ursa_event_set(&f->task_go), 1); break;
    case URSA_CASE_TOKEN_WAIT: CHECK_EQ(ursa_token_cancel(&f->tok), 1); break;
    case URSA_CASE_GROUP_JOIN_NEXT: CHECK_EQ(ursa_event_set(&f->task_go), 1); break;
    default: {
        char b = 'x';
        CHECK_EQ(write(f->pipe[1], &b, 1), 1);
        break;
    }
    }
    return NULL;
}

/* The case won with rc: its hold is established exactly as the single
 * call's; checks it, then lets it go. */
static const char *fx_won(fx_t *f, int rc)
{
    switch (f->kind) {
    case URSA_CASE_FD_READABLE: {
        CHECK(rc > 0 && (rc & POLLIN));
        char b;
        CHECK_EQ(read(f->pipe[0], &b, 1), 1);
        return NULL;
    }
    default:
        CHECK_EQ(rc, 0);
    }
    switch (f->kind) {
    case URSA_CASE_MUTEX_LOCK:
        CHECK(f->mg.mutex == &f->m);
        CHECK_EQ(ursa_mutex_unlock(&f->mg), 0);
        break;
    case URSA_CASE_RWLOCK_READ:
        CHECK(f->rg.rw == &f->rw);
        CHECK_EQ(ursa_rwlock_read_unlock(&f->rg), 0);
        break;
    case URSA_CASE_RWLOCK_WRITE:
        CHECK(f->wg.rw == &f->rw);
        CHECK_EQ(ursa_rwlock_write_unlock(&f->wg), 0);
        break;
    case URSA_CASE_SEM_ACQUIRE:
        CHECK(f->sp.sem == &f->sem);
        CHECK_EQ(f->sp.n, 2);
        CHECK_EQ(ursa_sem_release(&f->sp), 0);
        break;
    case URSA_CASE_NOTIFY_WAIT: /* consumed: nothing stored */
        CHECK_EQ(ursa_notify_wait(&f->nt, URSA_NOW), -EAGAIN);
        break;
    case URSA_CASE_EVENT_WAIT: /* auto-reset: consumed */
        CHECK_EQ(ursa_event_wait(&f->ev, URSA_NOW), -EAGAIN);
        break;
    case URSA_CASE_ONCE_WAIT:
        CHECK(f->once_val == (void *)&FX_VALUE);
        break;
    case URSA_CASE_POOL_ACQUIRE:
        CHECK(f->it.pool == f->pool);
        CHECK_EQ(ursa_pool_return(f->pool, &f->it), 0);
        break;
    case URSA_CASE_MPSC_RECV:
    case URSA_CASE_MPMC_RECV:
    case URSA_CASE_BROADCAST_RECV:
    case URSA_CASE_ONESHOT_RECV:
        CHECK_EQ(f->out, FX_VALUE);
        break;
    case URSA_CASE_MPSC_SEND: { /* sent: the value is in the channel */
        uint64_t o;
        CHECK_EQ(ursa_mpsc_try_recv(&f->mrx, &o), 0);
        CHECK_EQ(o, FX_VALUE + 1);
        break;
    }
    case URSA_CASE_MPMC_SEND: {
        uint64_t o;
        CHECK_EQ(ursa_mpmc_try_recv(&f->qrx, &o), 0);
        CHECK_EQ(o, FX_VALUE + 1);
        break;
    }
    case URSA_CASE_WATCH_CHANGED: /* marked seen */
        CHECK_EQ(ursa_watch_changed(f->wrx, URSA_NOW), -EAGAIN);
        break;
    case URSA_CASE_TASK_JOIN: /* joined: the handle is gone */
        CHECK(f->join_res == (void *)(uintptr_t)77);
        f->task = NULL;
        break;
    case URSA_CASE_TOKEN_WAIT: /* a cancel is seen, nothing taken */
        CHECK(ursa_token_is_cancelled(&f->tok));
        break;
    case URSA_CASE_GROUP_JOIN_NEXT: /* the member joined: none left */
        CHECK(f->join_res == (void *)(uintptr_t)77);
        CHECK_EQ(ursa_group_len(&f->group), 0);
        break;
    }
    return NULL;
}

/* The case lost (after fx_ready): everything is still there for the next
 * taker, nobody is left queued, and nothing of ours was sent. */
static const char *fx_untouched(fx_t *f)
{
    switch (f->kind) {
    case URSA_CASE_MUTEX_LOCK:
        CHECK(f->mg.mutex == NULL);
        CHECK_EQ(ursa_mutex_lock(&f->m, &f->mg, URSA_NOW), 0);
        CHECK_EQ(ursa_mutex_unlock(&f->mg), 0);
        break;
    case URSA_CASE_RWLOCK_READ:
    case URSA_CASE_RWLOCK_WRITE:
        CHECK(f->rg.rw == NULL && f->wg.rw == NULL);
        CHECK_EQ(ursa_rwlock_write_lock(&f->rw, &f->wg, URSA_NOW), 0);
        CHECK_EQ(ursa_rwlock_write_unlock(&f->wg), 0);
        break;
    case URSA_CASE_SEM_ACQUIRE:
        CHECK(f->sp.sem == NULL);
        CHECK_EQ(ursa_sem_acquire(&f->sem, 2, &f->sp, URSA_NOW), 0);
        CHECK_EQ(ursa_sem_release(&f->sp), 0);
        break;
    case URSA_CASE_NOTIFY_WAIT: /* the stored notification is still there */
        CHECK_EQ(ursa_notify_wait(&f->nt, URSA_NOW), 0);
        break;
    case URSA_CASE_EVENT_WAIT: /* still set */
        CHECK_EQ(ursa_event_wait(&f->ev, URSA_NOW), 0);
        break;
    case URSA_CASE_ONCE_WAIT: {
        void *v = NULL;
        CHECK_EQ(ursa_once_get(&f->once, &v), 0);
        CHECK(v == (void *)&FX_VALUE);
        break;
    }
    case URSA_CASE_POOL_ACQUIRE:
        CHECK(f->it.pool == NULL);
        CHECK_EQ(ursa_pool_acquire(f->pool, &f->it, URSA_NOW), 0);
        CHECK_EQ(ursa_pool_return(f->pool, &f->it), 0);
        break;
    case URSA_CASE_MPSC_RECV: {
        uint64_t o = 0;
        CHECK_EQ(ursa_mpsc_try_recv(&f->mrx, &o), 0);
        CHECK_EQ(o, FX_VALUE);
        CHECK_EQ(ursa_mpsc_try_recv(&f->mrx, &o), -EAGAIN);
        break;
    }
    case URSA_CASE_MPMC_RECV: {
        uint64_t o = 0;
        CHECK_EQ(ursa_mpmc_try_recv(&f->qrx, &o), 0);
        CHECK_EQ(o, FX_VALUE);
        CHECK_EQ(ursa_mpmc_try_recv(&f->qrx, &o), -EAGAIN);
        break;
    }
    case URSA_CASE_BROADCAST_RECV: {
        uint64_t o = 0;
        CHECK_EQ(ursa_broadcast_recv(f->brx, &o, NULL, URSA_NOW), 0);
        CHECK_EQ(o, FX_VALUE);
        break;
    }
    case URSA_CASE_MPSC_SEND: { /* our value was not sent */
        uint64_t o;
        CHECK_EQ(ursa_mpsc_try_recv(&f->mrx, &o), -EAGAIN);
        break;
    }
    case URSA_CASE_MPMC_SEND: {
        uint64_t o;
        CHECK_EQ(ursa_mpmc_try_recv(&f->qrx, &o), -EAGAIN);
        break;
    }
    case URSA_CASE_WATCH_CHANGED: /* the change is still unseen */
        CHECK_EQ(ursa_watch_changed(f->wrx, URSA_NOW), 0);
        break;
    case URSA_CASE_ONESHOT_RECV: {
        uint64_t o = 0;
        CHECK_EQ(ursa_oneshot_recv(&f->os, &o, URSA_NOW), 0);
        CHECK_EQ(o, FX_VALUE);
        break;
    }
    case URSA_CASE_TASK_JOIN: { /* still joinable, once it is done */
        void *r = NULL;
        CHECK_EQ(ursa_task_join(f->task, &r, test_guard_deadline()), 0);
        CHECK(r == (void *)(uintptr_t)77);
        f->task = NULL;
        break;
    }
    case URSA_CASE_TOKEN_WAIT: /* still cancelled; a later wait sees it */
        CHECK(ursa_token_is_cancelled(&f->tok));
        CHECK_EQ(ursa_token_wait(&f->tok, URSA_NOW), 0);
        break;
    case URSA_CASE_GROUP_JOIN_NEXT: { /* the member still there for a join */
        void *r = NULL;
        CHECK_EQ(ursa_group_len(&f->group), 1);
        CHECK_EQ(ursa_group_join_next(&f->group, &r, NULL, test_guard_deadline()), 0);
        CHECK(r == (void *)(uintptr_t)77);
        break;
    }
    default: {
        char b;
        CHECK_EQ(read(f->pipe[0], &b, 1), 1);
        break;
    }
    }
    return NULL;
}

static void fx_teardown(fx_t *f)
{
    switch (f->kind) {
    case URSA_CASE_MUTEX_LOCK: (void)ursa_mutex_destroy(&f->m); break;
    case URSA_CASE_RWLOCK_READ:
    case URSA_CASE_RWLOCK_WRITE: (void)ursa_rwlock_destroy(&f->rw); break;
    case URSA_CASE_SEM_ACQUIRE: (void)ursa_sem_destroy(&f->sem); break;
    case URSA_CASE_NOTIFY_WAIT: (void)ursa_notify_destroy(&f->nt); break;
    case URSA_CASE_EVENT_WAIT: (void)ursa_event_destroy(&f->ev); break;
    case URSA_CASE_ONCE_WAIT: (void)ursa_once_destroy(&f->once); break;
    case URSA_CASE_POOL_ACQUIRE: (void)ursa_pool_free(f->pool); break;
    case URSA_CASE_MPSC_RECV:
    case URSA_CASE_MPSC_SEND:
        (void)ursa_mpsc_sender_drop(&f->mtx);
        (void)ursa_mpsc_receiver_drop(&f->mrx);
        break;
    case URSA_CASE_MPMC_RECV:
    case URSA_CASE_MPMC_SEND:
        (void)ursa_mpmc_sender_drop(&f->qtx);
        (void)ursa_mpmc_receiver_drop(&f->qrx);
        break;
    case URSA_CASE_BROADCAST_RECV:
        (void)ursa_broadcast_receiver_drop(f->brx);
        (void)ursa_broadcast_sender_drop(f->btx);
        break;
    case URSA_CASE_WATCH_CHANGED:
        (void)ursa_watch_receiver_drop(f->wrx);
        (void)ursa_watch_sender_drop(f->wtx);
        break;
    case URSA_CASE_ONESHOT_RECV: (void)ursa_oneshot_destroy(&f->os); break;
    case URSA_CASE_TASK_JOIN:
        if (f->task) {
            (void)ursa_event_set(&f->task_go);
            int rc = ursa_task_join(f->task, NULL, URSA_NEVER);
            (void)rc;
        }
        (void)ursa_event_destroy(&f->task_go);
        break;
    case URSA_CASE_TOKEN_WAIT:
        (void)ursa_token_destroy(&f->tok);
        break;
    case URSA_CASE_GROUP_JOIN_NEXT:
        (void)ursa_event_set(&f->task_go);
        (void)ursa_group_destroy(&f->group);
        (void)ursa_event_destroy(&f->task_go);
        break;
    default:
        close(f->pipe[0]);
        close(f->pipe[1]);
    }
}

#endif
