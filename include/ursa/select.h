/* ursa — select: wait until exactly one of N cases completes.
 *
 *     ursa_mpsc_msg_t job;
 *     ursa_case_t cases[] = {
 *         ursa_case_recv_mpsc(&jobs_rx, &job),   // 0: a job
 *         ursa_case_event(&shutdown),            // 1: shutdown
 *     };
 *     int i = ursa_select(cases, 2, 0, ursa_deadline_in(URSA_SEC(5)));
 *     if (i == 0 && cases[0].rc == 0) run(&job);
 *     else if (i == 1) stop();
 *     else if (i == -ETIMEDOUT) idle();
 *
 * Each case is one wait ursa already has (a lock, a permit, a message, a
 * send, a notification, a join, fd readiness, a time). The winning case
 * completes exactly as the single call would have: its hold is
 * established (a guard, a permit, an item...), its message copied out,
 * its value sent, and its return code is in cases[i].rc. Every other case
 * holds nothing and changed nothing: no message taken, no value sent, no
 * lock, permit or item kept, no notification consumed, no queue place
 * taken from anyone. A loser is never granted: the cases share one claim
 * that the granting primitive takes under its own lock before it grants
 * (docs/select.md).
 *
 * Cases live in the caller's memory (an array on the stack) and must stay
 * put during the call; nothing is allocated. Works in a task (the task
 * suspends), on a plain thread (it parks), and, without fd and sleep
 * cases, from a foreign event loop (ursa_select_start/_finish/_cancel). */
#ifndef URSA_SELECT_H
#define URSA_SELECT_H

#include <poll.h>

#include "base.h"
#include "broadcast.h"
#include "event.h"
#include "group.h"
#include "mpmc.h"
#include "mpsc.h"
#include "mutex.h"
#include "notify.h"
#include "once.h"
#include "oneshot.h"
#include "pool.h"
#include "rt.h"
#include "rwlock.h"
#include "semaphore.h"
#include "token.h"
#include "wait.h"
#include "watch.h"

URSA_EXTERN_C_BEGIN

/* What a case waits for. New kinds are appended (src/select/kinds.c holds
 * one table entry per kind). A barrier wait is not a case: arriving is
 * not withdrawable once the barrier trips, and a select that lost would
 * still have counted as an arrival (docs/select.md). */
typedef enum ursa_case_kind {
    URSA_CASE_NONE = 0,      /* not a case: -EINVAL */
    URSA_CASE_MUTEX_LOCK,    /* out: ursa_mutex_guard_t */
    URSA_CASE_RWLOCK_READ,   /* out: ursa_rwlock_read_guard_t */
    URSA_CASE_RWLOCK_WRITE,  /* out: ursa_rwlock_write_guard_t */
    URSA_CASE_SEM_ACQUIRE,   /* n permits; out: ursa_sem_permit_t */
    URSA_CASE_NOTIFY_WAIT,   /* a notification (consumes a stored one) */
    URSA_CASE_EVENT_WAIT,    /* the event is set (an auto-reset one resets) */
    URSA_CASE_ONCE_WAIT,     /* the cell holds a value; out: void * (may be NULL) */
    URSA_CASE_POOL_ACQUIRE,  /* out: ursa_pool_item_t */
    URSA_CASE_MPSC_RECV,     /* out: elem_size bytes */
    URSA_CASE_MPMC_RECV,     /* out: elem_size bytes */
    URSA_CASE_BROADCAST_RECV, /* out: elem_size bytes; missed: uint64_t (may be NULL) */
    URSA_CASE_MPSC_SEND,     /* in: elem_size bytes, sent only if the case wins */
    URSA_CASE_MPMC_SEND,     /* in: elem_size bytes, sent only if the case wins */
    URSA_CASE_WATCH_CHANGED, /* an unseen version (marked seen) */
    URSA_CASE_ONESHOT_RECV,  /* out: elem_size bytes */
    URSA_CASE_TASK_JOIN,     /* the task finished (handle freed); out: void * (may be NULL) */
    URSA_CASE_FD_READABLE,   /* fd readable; rc: revents */
    URSA_CASE_FD_WRITABLE,   /* fd writable; rc: revents */
    URSA_CASE_SLEEP_UNTIL,   /* the time `at` has come (wins only if no other case is ready) */
    URSA_CASE_TOKEN_WAIT,    /* the token is cancelled */
    URSA_CASE_GROUP_JOIN_NEXT, /* a member finished (joined, handle freed); out: void * (may be NULL) */
    URSA_CASE__COUNT
} ursa_case_kind_t;

/* One case. Build it with an ursa_case_* helper below (the fields are
 * what the helper's arguments say); after ursa_select returned index i,
 * cases[i].rc is the case's result, exactly the single call's return code
 * (0, or e.g. -EPIPE for a closed channel, -EOWNERDEAD for a poisoned
 * mutex, -EOVERFLOW for a lagged broadcast receiver; revents for an fd
 * case). The other cases' rc is left as it was. */
typedef struct ursa_case {
    int kind;        /* ursa_case_kind_t */
    int rc;          /* result of the winning case */
    void *obj;       /* the primitive or handle waited on */
    void *out;       /* where the result goes (guard, permit, buffer, ...) */
    const void *in;  /* what a send case sends */
    uint64_t *missed; /* broadcast: messages skipped when lagging (may be NULL) */
    uint64_t n;      /* semaphore: permits */
    ursa_time_t at;  /* sleep-until: the time */
    int fd;          /* fd cases */
    short events;    /* fd cases: POLLIN / POLLOUT (derived from the kind) */
    /* Private: (in cases[0]) whether the last select over this array
     * blocked; the case's wait, and what an fd wait needs in flight. */
    unsigned short hint_;
    ursa_wait_t wait_;
    uint64_t priv_[5];
} ursa_case_t;

/* Most cases one select takes. */
#define URSA_SELECT_MAX 64

/* flags: cases ready at once are chosen in declared order (the first
 * ready one wins) instead of uniformly at random. */
#define URSA_SELECT_ORDERED 1u

/* Phase 1 (wait): waits until one case completes, the deadline passes or
 * the calling task is cancelled. Cases ready at the call are chosen
 * uniformly at random (URSA_SELECT_ORDERED: the first in declared order);
 * a due sleep-until case only when no other case is ready, as a single
 * call past its deadline still takes what is there.
 *   i >= 0      case i won: its hold is established, cases[i].rc says how
 *               it completed (the single call's return code)
 *   -EAGAIN     deadline is URSA_NOW and no case is ready (a pure try:
 *               nothing was queued anywhere)
 *   -ETIMEDOUT  the deadline passed first (a sleep-until case at or before
 *               the deadline wins instead)
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     cases NULL, n 0 or over URSA_SELECT_MAX, an unknown kind,
 *               or a case's fields wrong (NULL object or out, n out of
 *               range, negative fd, a guard or permit that still holds)
 * After any error no case holds anything and nothing changed. */
#define ursa_select(cases, n, flags, deadline) \
    ursa_select_at(cases, n, flags, deadline, URSA_SITE)
URSA_API int ursa_select_at(ursa_case_t *cases, size_t n, unsigned flags, ursa_time_t deadline,
                            const ursa_site_t *site) URSA_NODISCARD;

/* ---- the raw form, for a foreign event loop (ursa/wait.h) ---- */

/* A started select: caller-owned, must stay put until finished or
 * cancelled. Private. */
typedef struct ursa_select {
    void *priv_[8];
} ursa_select_t;

/* Phase 1 (wait), raw: starts a select over cases (fd and sleep-until
 * cases are refused: the loop polls its fds and keeps its timers).
 *   i >= 0        case i was ready at once and has won (as ursa_select);
 *                 nothing is left started
 *   -EINPROGRESS  started: waker.fn(waker.ctx) is called once, from any
 *                 thread, when a case has won; then call _finish
 *   -EINVAL       bad input (as ursa_select), fd or sleep cases, NULL s
 *                 or waker.fn
 * _finish:
 *   i >= 0        case i won (hold established, rc set); s is over
 *   -EAGAIN       no case has won yet; or one won but found nothing when
 *                 it came to take it (another receiver was faster): the
 *                 select started again and the waker will be called again
 *   -EINVAL       s not started, or over
 * _cancel: withdraws every case (a case that had won but was not finished
 * gives back what it was granted): -ECANCELED, or -EINVAL (not started,
 * or over). */
URSA_API int ursa_select_start(ursa_select_t *s, ursa_case_t *cases, size_t n, unsigned flags,
                               ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_select_finish(ursa_select_t *s) URSA_NODISCARD;
URSA_API int ursa_select_cancel(ursa_select_t *s);

/* ---- building cases ---- */

/* Every builder fills the public fields at once (a C compound literal, so
 * the case is built in place, not field by field over a cleared copy);
 * the private part starts zeroed. */
static inline ursa_case_t ursa__case(int kind, void *obj, void *out, const void *in,
                                     uint64_t *missed, uint64_t n, ursa_time_t at, int fd,
                                     short events)
{
#ifdef __cplusplus
    ursa_case_t c{};
    c.kind = kind;
    c.obj = obj;
    c.out = out;
    c.in = in;
    c.missed = missed;
    c.n = n;
    c.at = at;
    c.fd = fd;
    c.events = events;
    return c;
#else
    return (ursa_case_t){.kind = kind, .obj = obj, .out = out, .in = in, .missed = missed,
                         .n = n, .at = at, .fd = fd, .events = events};
#endif
}

#define URSA__CASE(kind, obj, out) ursa__case(kind, obj, out, NULL, NULL, 0, 0, -1, 0)

static inline ursa_case_t ursa_case_lock(ursa_mutex_t *m, ursa_mutex_guard_t *g)
{
    return URSA__CASE(URSA_CASE_MUTEX_LOCK, m, g);
}

static inline ursa_case_t ursa_case_read_lock(ursa_rwlock_t *rw, ursa_rwlock_read_guard_t *g)
{
    return URSA__CASE(URSA_CASE_RWLOCK_READ, rw, g);
}

static inline ursa_case_t ursa_case_write_lock(ursa_rwlock_t *rw, ursa_rwlock_write_guard_t *g)
{
    return URSA__CASE(URSA_CASE_RWLOCK_WRITE, rw, g);
}

static inline ursa_case_t ursa_case_acquire(ursa_sem_t *s, uint64_t n, ursa_sem_permit_t *p)
{
    return ursa__case(URSA_CASE_SEM_ACQUIRE, s, p, NULL, NULL, n, 0, -1, 0);
}

static inline ursa_case_t ursa_case_notify(ursa_notify_t *n)
{
    return URSA__CASE(URSA_CASE_NOTIFY_WAIT, n, NULL);
}

static inline ursa_case_t ursa_case_event(ursa_event_t *e)
{
    return URSA__CASE(URSA_CASE_EVENT_WAIT, e, NULL);
}

/* value: gets the cell's value (may be NULL). */
static inline ursa_case_t ursa_case_once(ursa_once_cell_t *cell, void **value)
{
    return URSA__CASE(URSA_CASE_ONCE_WAIT, cell, value);
}

static inline ursa_case_t ursa_case_pool(ursa_pool_t *p, ursa_pool_item_t *it)
{
    return URSA__CASE(URSA_CASE_POOL_ACQUIRE, p, it);
}

static inline ursa_case_t ursa_case_recv_mpsc(const ursa_mpsc_receiver_t *rx, void *out)
{
    return URSA__CASE(URSA_CASE_MPSC_RECV, (void *)rx, out);
}

static inline ursa_case_t ursa_case_recv_mpmc(const ursa_mpmc_receiver_t *rx, void *out)
{
    return URSA__CASE(URSA_CASE_MPMC_RECV, (void *)rx, out);
}

/* missed: may be NULL (then a lag is only reported by rc -EOVERFLOW). */
static inline ursa_case_t ursa_case_recv_broadcast(ursa_broadcast_rx_t *rx, void *out,
                                                   uint64_t *missed)
{
    return ursa__case(URSA_CASE_BROADCAST_RECV, rx, out, NULL, missed, 0, 0, -1, 0);
}

/* value: read only if the case wins (it must stay valid until then). */
static inline ursa_case_t ursa_case_send_mpsc(const ursa_mpsc_sender_t *tx, const void *value)
{
    return ursa__case(URSA_CASE_MPSC_SEND, (void *)tx, NULL, value, NULL, 0, 0, -1, 0);
}

static inline ursa_case_t ursa_case_send_mpmc(const ursa_mpmc_sender_t *tx, const void *value)
{
    return ursa__case(URSA_CASE_MPMC_SEND, (void *)tx, NULL, value, NULL, 0, 0, -1, 0);
}

static inline ursa_case_t ursa_case_watch_changed(ursa_watch_rx_t *rx)
{
    return URSA__CASE(URSA_CASE_WATCH_CHANGED, rx, NULL);
}

static inline ursa_case_t ursa_case_recv_oneshot(ursa_oneshot_t *os, void *out)
{
    return URSA__CASE(URSA_CASE_ONESHOT_RECV, os, out);
}

/* result: gets the task's return value (may be NULL). A won join frees
 * the handle, as ursa_task_join does. */
static inline ursa_case_t ursa_case_join(ursa_task_t *t, void **result)
{
    return URSA__CASE(URSA_CASE_TASK_JOIN, t, result);
}

static inline ursa_case_t ursa_case_readable(int fd)
{
    return ursa__case(URSA_CASE_FD_READABLE, NULL, NULL, NULL, NULL, 0, 0, fd, POLLIN);
}

static inline ursa_case_t ursa_case_writable(int fd)
{
    return ursa__case(URSA_CASE_FD_WRITABLE, NULL, NULL, NULL, NULL, 0, 0, fd, POLLOUT);
}

static inline ursa_case_t ursa_case_sleep_until(ursa_time_t at)
{
    return ursa__case(URSA_CASE_SLEEP_UNTIL, NULL, NULL, NULL, NULL, 0, at, -1, 0);
}

/* Wins once tok is cancelled (rc 0), as ursa_token_wait. */
static inline ursa_case_t ursa_case_token(ursa_token_t *tok)
{
    return URSA__CASE(URSA_CASE_TOKEN_WAIT, tok, NULL);
}

/* Wins when a member of g has finished: joined as ursa_group_join_next
 * does (rc 0, -ENOMEM, or -ECHILD once no member is left); result (may
 * be NULL) gets its return value. */
static inline ursa_case_t ursa_case_join_next(ursa_group_t *g, void **result)
{
    return URSA__CASE(URSA_CASE_GROUP_JOIN_NEXT, g, result);
}

URSA_EXTERN_C_END

#endif
