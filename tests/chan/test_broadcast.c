/* Tests for the broadcast channel (include/ursa/broadcast.h,
 * src/chan/broadcast.c).
 *
 * As in the other tests, checks live in "bodies" that return NULL when they
 * passed or a message saying what failed; a body runs on the test's own
 * (plain) thread, as a task, or as a deterministic scenario over many
 * seeds, and the cmocka assertion is made on the test's own stack. */
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ursa/broadcast.h"

/* ---- failure messages ---- */

#include "task_checks.h"

/* A destructor that counts, per value, how often it ran. Values are
 * uint64_t ids below DT_MAX. */
#define DT_MAX 4096
static atomic_int dt_count[DT_MAX];
static atomic_int dt_total;

static void dt_reset(void)
{
    for (int i = 0; i < DT_MAX; i++)
        atomic_store(&dt_count[i], 0);
    atomic_store(&dt_total, 0);
}

static void dt_fn(void *elem)
{
    uint64_t v;
    memcpy(&v, elem, sizeof v);
    if (v < DT_MAX)
        atomic_fetch_add(&dt_count[v], 1);
    atomic_fetch_add(&dt_total, 1);
}

/* ====================================================================== */
/* arguments                                                              */
/* ====================================================================== */

static void *args_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx = NULL;
    ursa_broadcast_rx_t *rx = NULL, *rx2 = NULL;
    uint64_t v = 1, missed = 0;
    CHECK_EQ(ursa_broadcast_new(NULL, &rx, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_new(&tx, NULL, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, 0, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, 8, 0, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, SIZE_MAX / 2, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, 8, 5, NULL), 0);
    CHECK_EQ(ursa_broadcast_capacity(tx), 8); /* rounded up */
    CHECK_EQ(ursa_broadcast_capacity(NULL), 0);
    CHECK_EQ(ursa_broadcast_send(NULL, &v), -EINVAL);
    CHECK_EQ(ursa_broadcast_send(tx, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_try_recv(NULL, &v, &missed), -EINVAL);
    CHECK_EQ(ursa_broadcast_try_recv(rx, NULL, &missed), -EINVAL);
    CHECK_EQ(ursa_broadcast_recv(NULL, &v, &missed, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_broadcast_subscribe(NULL, &rx2), -EINVAL);
    CHECK_EQ(ursa_broadcast_subscribe(tx, NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_resubscribe(NULL, &rx2), -EINVAL);
    CHECK_EQ(ursa_broadcast_receiver_count(NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_sender_clone(NULL, &tx), -EINVAL);
    CHECK_EQ(ursa_broadcast_sender_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_receiver_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_broadcast_rx_len(NULL), -EINVAL);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    CHECK_EQ(ursa_broadcast_recv_start(NULL, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_broadcast_recv_start(rx, NULL, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), -EAGAIN);
    CHECK_EQ(ursa_broadcast_recv(rx, &v, NULL, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    return NULL;
}

static void test_args_errors(void **state)
{
    (void)state;
    ASSERT_OK(args_body(NULL));
}

/* ====================================================================== */
/* lag: exact, per receiver, and again                                    */
/* ====================================================================== */

/* Sends i to both receivers; the fast one reads it at once. */
static const char *send_keep(ursa_broadcast_tx_t *tx, ursa_broadcast_rx_t *fast, uint64_t i)
{
    uint64_t v, missed = 0;
    CHECK_EQ(ursa_broadcast_send(tx, &i), 2);
    CHECK_EQ(ursa_broadcast_try_recv(fast, &v, &missed), 0);
    CHECK_EQ(v, i);
    return NULL;
}

static void *lag_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *slow, *fast;
    CHECK_EQ(ursa_broadcast_new(&tx, &slow, sizeof(uint64_t), 4, NULL), 0);
    CHECK_EQ(ursa_broadcast_subscribe(tx, &fast), 0);
    uint64_t v, missed = 0;
    for (uint64_t i = 0; i < 10; i++) {
        CHECK_EQ(ursa_broadcast_send(tx, &i), 2);
        CHECK_EQ(ursa_broadcast_try_recv(fast, &v, &missed), 0); /* keeps up */
        CHECK_EQ(v, i);
    }
    CHECK_EQ(ursa_broadcast_try_recv(fast, &v, &missed), -EAGAIN);
    CHECK_EQ(ursa_broadcast_rx_len(slow), 4);
    missed = 0;
    CHECK_EQ(ursa_broadcast_try_recv(slow, &v, &missed), -EOVERFLOW);
    CHECK_EQ(missed, 6);
    for (uint64_t i = 6; i < 10; i++) {
        CHECK_EQ(ursa_broadcast_recv(slow, &v, &missed, URSA_NEVER), 0);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(ursa_broadcast_try_recv(slow, &v, &missed), -EAGAIN);

    /* lag again before the retained values were read: 10..13 retained after
     * the first lag, read one (10), then 5 more sends (14..18) overwrite
     * 11..14 */
    for (uint64_t i = 10; i < 14; i++)
        CHECK_OK(send_keep(tx, fast, i));
    CHECK_EQ(ursa_broadcast_recv(slow, &v, &missed, URSA_NOW), 0);
    CHECK_EQ(v, 10);
    for (uint64_t i = 14; i < 19; i++)
        CHECK_OK(send_keep(tx, fast, i));
    CHECK_EQ(ursa_broadcast_recv(slow, &v, &missed, URSA_NOW), -EOVERFLOW);
    CHECK_EQ(missed, 4); /* 11, 12, 13, 14 */
    CHECK_EQ(ursa_broadcast_rx_len(slow), 4);
    /* lag again right after the -EOVERFLOW, before anything was read */
    for (uint64_t i = 19; i < 22; i++)
        CHECK_OK(send_keep(tx, fast, i));
    CHECK_EQ(ursa_broadcast_recv(slow, &v, &missed, URSA_NOW), -EOVERFLOW);
    CHECK_EQ(missed, 3); /* 15, 16, 17 */
    for (uint64_t i = 18; i < 22; i++) {
        CHECK_EQ(ursa_broadcast_recv(slow, &v, &missed, URSA_NOW), 0);
        CHECK_EQ(v, i);
    }
    /* the fast one saw exactly 0..21 (send_keep checked), never a lag */
    CHECK_EQ(ursa_broadcast_try_recv(fast, &v, &missed), -EAGAIN);
    CHECK_EQ(ursa_broadcast_receiver_drop(fast), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(slow), 0);
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    return NULL;
}

static void test_lag_exact(void **state)
{
    (void)state;
    ASSERT_OK(lag_body(NULL));
}

static void test_lag_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(1, lag_body, NULL));
}

/* ====================================================================== */
/* receivers, senders, closing                                            */
/* ====================================================================== */

static void *handles_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx, *tx2;
    ursa_broadcast_rx_t *rx, *r2, *r3;
    uint64_t v = 7, missed;
    dt_reset();
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 8, dt_fn), 0);
    CHECK_EQ(ursa_broadcast_receiver_count(tx), 1);
    CHECK_EQ(ursa_broadcast_subscribe(tx, &r2), 0);
    CHECK_EQ(ursa_broadcast_receiver_count(tx), 2);
    CHECK_EQ(ursa_broadcast_send(tx, &v), 2);
    CHECK_EQ(ursa_broadcast_subscribe(tx, &r3), 0); /* starts after 7 */
    CHECK_EQ(ursa_broadcast_receiver_count(tx), 3);
    CHECK_EQ(ursa_broadcast_try_recv(r3, &v, &missed), -EAGAIN);
    CHECK_EQ(ursa_broadcast_receiver_drop(r2), 0); /* never read 7 */
    CHECK_EQ(ursa_broadcast_receiver_count(tx), 2);
    CHECK_EQ(ursa_broadcast_receiver_drop(r3), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    CHECK_EQ(ursa_broadcast_receiver_count(tx), 0);
    /* no receivers: -EPIPE, the value stays with the caller */
    v = 8;
    CHECK_EQ(ursa_broadcast_send(tx, &v), -EPIPE);
    CHECK_EQ(atomic_load(&dt_count[8]), 0);
    CHECK_EQ(atomic_load(&dt_total), 0);
    /* a late subscriber sees only what comes after */
    CHECK_EQ(ursa_broadcast_subscribe(tx, &rx), 0);
    v = 9;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), 0);
    CHECK_EQ(v, 9);

    /* clone; dropping one sender keeps the channel open */
    CHECK_EQ(ursa_broadcast_sender_clone(tx, &tx2), 0);
    v = 10;
    CHECK_EQ(ursa_broadcast_send(tx2, &v), 1);
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    v = 11;
    CHECK_EQ(ursa_broadcast_send(tx2, &v), 1);
    /* resubscribe: a new receiver at the tail, not at rx's position */
    CHECK_EQ(ursa_broadcast_resubscribe(rx, &r2), 0);
    CHECK_EQ(ursa_broadcast_try_recv(r2, &v, &missed), -EAGAIN);
    v = 12;
    CHECK_EQ(ursa_broadcast_send(tx2, &v), 2);
    CHECK_EQ(ursa_broadcast_try_recv(r2, &v, &missed), 0);
    CHECK_EQ(v, 12);
    /* last sender gone: rx drains 10, 11, 12, then -EPIPE */
    CHECK_EQ(ursa_broadcast_sender_drop(tx2), 0);
    for (uint64_t i = 10; i <= 12; i++) {
        CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, URSA_NEVER), 0);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), -EPIPE);
    CHECK_EQ(ursa_broadcast_recv(r2, &v, &missed, URSA_NEVER), -EPIPE);
    /* resubscribe on a closed channel: -EPIPE at once */
    CHECK_EQ(ursa_broadcast_resubscribe(r2, &r3), 0);
    CHECK_EQ(ursa_broadcast_try_recv(r3, &v, &missed), -EPIPE);
    CHECK_EQ(ursa_broadcast_receiver_drop(r3), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(r2), 0);
    CHECK_EQ(atomic_load(&dt_total), 0); /* 7, 9..12 still in the ring */
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0); /* last handle: freed */
    CHECK_EQ(atomic_load(&dt_total), 5);
    CHECK_EQ(atomic_load(&dt_count[7]), 1);
    for (int i = 9; i <= 12; i++)
        CHECK_EQ(atomic_load(&dt_count[i]), 1);
    return NULL;
}

static void test_handles_close(void **state)
{
    (void)state;
    ASSERT_OK(handles_body(NULL));
}

/* The destructor runs exactly once per accepted value: on overwrite, or
 * at the free, however the handles go. */
static void *dtor_body(void *arg)
{
    int order = (int)(intptr_t)arg;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    dt_reset();
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 8, dt_fn), 0);
    uint64_t v, missed;
    for (uint64_t i = 0; i < 100; i++) {
        CHECK_EQ(ursa_broadcast_send(tx, &i), 1);
        if (i % 3 == 0 && ursa_broadcast_try_recv(rx, &v, &missed) < -EOVERFLOW)
            return (void *)"try_recv failed";
        /* everything older than the ring has been destroyed, once */
        CHECK_EQ(atomic_load(&dt_total), i + 1 > 8 ? (int)(i + 1 - 8) : 0);
    }
    if (order) {
        CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
        CHECK_EQ(atomic_load(&dt_total), 92);
        v = 1000;
        CHECK_EQ(ursa_broadcast_send(tx, &v), -EPIPE);
        CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    } else {
        CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
        CHECK_EQ(atomic_load(&dt_total), 92);
        CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    }
    CHECK_EQ(atomic_load(&dt_total), 100);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(atomic_load(&dt_count[i]), 1);
    CHECK_EQ(atomic_load(&dt_count[1000]), 0);
    return NULL;
}

static void test_dtor_once(void **state)
{
    (void)state;
    ASSERT_OK(dtor_body((void *)0));
    ASSERT_OK(dtor_body((void *)1));
}

/* ====================================================================== */
/* typed wrapper                                                          */
/* ====================================================================== */

typedef struct point {
    int x, y;
    char tag[10];
} point_t;

URSA_BROADCAST_TYPED(pt_bc, point_t)

static void *typed_body(void *arg)
{
    (void)arg;
    pt_bc_tx_t *tx, *tx2;
    pt_bc_rx_t *rx, *rx2, *rx3;
    CHECK_EQ(pt_bc_new(&tx, &rx, 2, NULL), 0);
    CHECK_EQ(pt_bc_subscribe(tx, &rx2), 0);
    CHECK_EQ(pt_bc_resubscribe(rx2, &rx3), 0);
    CHECK_EQ(pt_bc_receiver_count(tx), 3);
    CHECK_EQ(pt_bc_sender_clone(tx, &tx2), 0);
    point_t p = {3, 4, "hello"}, q;
    uint64_t missed;
    CHECK_EQ(pt_bc_send(tx2, &p), 3);
    CHECK_EQ(pt_bc_recv(rx, &q, &missed, URSA_NEVER), 0);
    CHECK(q.x == 3 && q.y == 4 && strcmp(q.tag, "hello") == 0);
    CHECK_EQ(pt_bc_try_recv(rx3, &q, &missed), 0);
    CHECK_EQ(q.y, 4);
    CHECK_EQ(pt_bc_sender_drop(tx2), 0);
    CHECK_EQ(pt_bc_sender_drop(tx), 0);
    CHECK_EQ(pt_bc_recv(rx2, &q, &missed, URSA_NEVER), 0);
    CHECK_EQ(pt_bc_recv(rx2, &q, &missed, URSA_NEVER), -EPIPE);
    CHECK_EQ(pt_bc_receiver_drop(rx), 0);
    CHECK_EQ(pt_bc_receiver_drop(rx2), 0);
    CHECK_EQ(pt_bc_receiver_drop(rx3), 0);
    return NULL;
}

static void test_typed(void **state)
{
    (void)state;
    ASSERT_OK(typed_body(NULL));
}

/* ====================================================================== */
/* deadlines and cancel                                                   */
/* ====================================================================== */

static void *deadline_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 4, NULL), 0);
    uint64_t v = 0, missed;
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, URSA_NOW), -EAGAIN);
    ursa_time_t t0 = ursa_now();
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, ursa_deadline_in(URSA_MSEC(20))), -ETIMEDOUT);
    CHECK(ursa_now() - t0 >= URSA_MSEC(20));
    /* an expired deadline still tries once */
    v = 5;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    v = 0;
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, ursa_deadline_in(0)), 0);
    CHECK_EQ(v, 5);
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    CHECK_EQ(ursa_broadcast_recv(rx, &v, &missed, ursa_deadline_in(URSA_MSEC(1))), -EPIPE);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    return NULL;
}

static void test_deadline_thread(void **state)
{
    (void)state;
    ASSERT_OK(deadline_body(NULL));
}

static void test_deadline_task(void **state)
{
    (void)state;
    ASSERT_OK(test_run(1, deadline_body, NULL));
}

static void test_deadline_sim(void **state)
{
    (void)state;
    test_explore(deadline_body, NULL);
}

/* A task waiting in recv is cancelled: -ECANCELED, nothing consumed. */
static void *cancel_waiter(void *arg)
{
    ursa_broadcast_rx_t *rx = arg;
    uint64_t v, missed;
    int rc = ursa_broadcast_recv(rx, &v, &missed, URSA_NEVER);
    return rc == -ECANCELED ? NULL : (void *)failf("recv returned %s", ursa_strerror(rc));
}

static void *cancel_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 4, NULL), 0);
    ursa_task_t *t = spawn_on(0, cancel_waiter, rx, "waiter");
    CHECK(t);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(5)), 0);
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_OK(join_task(t));
    uint64_t v = 3, missed;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), 0);
    CHECK_EQ(v, 3);
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    return NULL;
}

static void test_cancel_sim(void **state)
{
    (void)state;
    test_explore(cancel_body, NULL);
}

/* ====================================================================== */
/* raw waits with a foreign waker                                         */
/* ====================================================================== */

typedef struct delayed {
    ursa_broadcast_tx_t *tx;
    uint64_t value;
    int ms;
    bool drop;
} delayed_t;

static void *delayed_send(void *arg)
{
    delayed_t *d = arg;
    sleep_real_ms(d->ms);
    if (d->drop)
        (void)ursa_broadcast_sender_drop(d->tx);
    else
        (void)ursa_broadcast_send(d->tx, &d->value);
    return NULL;
}

static void *raw_body(void *arg)
{
    (void)arg;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx, *rx2;
    CHECK_EQ(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 4, NULL), 0);
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    CHECK(cw.efd >= 0);
    ursa_wait_t w;
    uint64_t v = 0, missed = 0;

    /* queued, then a send from another thread wakes it */
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), -EAGAIN);
    delayed_t d = {tx, 42, 20, false};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, delayed_send, &d), 0);
    struct pollfd pfd = {cw.efd, POLLIN, 0};
    int pr = poll(&pfd, 1, 10000);
    pthread_join(th, NULL);
    CHECK_EQ(pr, 1);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), 0);
    CHECK_EQ(v, 42);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), -EINVAL); /* finished */

    /* ready at start: no waker call */
    v = 43;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, cw_waker(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), 0);
    CHECK_EQ(v, 43);
    CHECK_EQ(atomic_load(&cw.calls), 1);

    /* a lag is reported through finish too */
    for (uint64_t i = 100; i < 110; i++)
        CHECK_EQ(ursa_broadcast_send(tx, &i), 1);
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, cw_waker(&cw)), 0);
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), -EOVERFLOW);
    CHECK_EQ(missed, 6);
    for (uint64_t i = 106; i < 110; i++) {
        CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), 0);
        CHECK_EQ(v, i);
    }

    /* cancel before anything: nothing consumed; a wake after a cancel
     * never comes */
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, cw_waker(&cw)), -EINPROGRESS);
    /* a queued raw wait keeps its receiver alive */
    test_capture_leaks();
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    v = 44;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), 0);
    CHECK_EQ(v, 44);

    /* granted but cancelled instead of finished: nothing consumed */
    CHECK_EQ(ursa_broadcast_recv_start(rx, &w, cw_waker(&cw)), -EINPROGRESS);
    v = 45;
    CHECK_EQ(ursa_broadcast_send(tx, &v), 1);
    CHECK_EQ(atomic_load(&cw.calls), 2);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_broadcast_try_recv(rx, &v, &missed), 0);
    CHECK_EQ(v, 45);

    /* a wait on another receiver is not rx's */
    CHECK_EQ(ursa_broadcast_subscribe(tx, &rx2), 0);
    CHECK_EQ(ursa_broadcast_recv_start(rx2, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_broadcast_recv_finish(rx, &w, &v, &missed), -EINVAL);

    /* the last sender's drop (another thread) wakes it: -EPIPE */
    uint64_t drain;
    while (read(cw.efd, &drain, sizeof drain) < 0) {
    }
    delayed_t dd = {tx, 0, 10, true};
    CHECK_EQ(pthread_create(&th, NULL, delayed_send, &dd), 0);
    pr = poll(&pfd, 1, 10000);
    pthread_join(th, NULL);
    CHECK_EQ(pr, 1);
    CHECK_EQ(ursa_broadcast_recv_finish(rx2, &w, &v, &missed), -EPIPE);
    CHECK_EQ(atomic_load(&cw.calls), 3);
    close(cw.efd);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx2), 0);
    CHECK_EQ(ursa_broadcast_receiver_drop(rx), 0);
    return NULL;
}

static void test_raw_foreign_waker(void **state)
{
    (void)state;
    ASSERT_OK(raw_body(NULL));
}

/* ====================================================================== */
/* deterministic: every receiver sees every value, in order               */
/* ====================================================================== */

#define SIM_RX 4

typedef struct sim_rx {
    ursa_broadcast_rx_t *rx;
    unsigned n;       /* values sent */
    bool lossy;       /* small ring: lag allowed, counted */
    unsigned got, missed_sum;
} sim_rx_t;

static void *sim_receiver(void *arg)
{
    sim_rx_t *r = arg;
    uint64_t v, missed, expect = 0;
    for (;;) {
        int rc = ursa_broadcast_recv(r->rx, &v, &missed, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc == -EOVERFLOW) {
            if (!r->lossy)
                return (void *)failf("lag of %llu in a ring large enough",
                                     (unsigned long long)missed);
            if (missed == 0)
                return (void *)"lag of 0";
            r->missed_sum += (unsigned)missed;
            expect += missed;
            continue;
        }
        if (rc != 0)
            return (void *)failf("recv: %s", ursa_strerror(rc));
        if (v != expect)
            return (void *)failf("got %llu, expected %llu", (unsigned long long)v,
                                 (unsigned long long)expect);
        expect++;
        r->got++;
        if (v % 3 == 0)
            (void)ursa_yield();
    }
    if (r->got + r->missed_sum != r->n)
        return (void *)failf("got %u + missed %u != sent %u", r->got, r->missed_sum, r->n);
    return NULL;
}

static void *sim_order_body(void *arg)
{
    bool lossy = arg != NULL;
    unsigned n = 64;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *first;
    CHECK_EQ(ursa_broadcast_new(&tx, &first, sizeof(uint64_t), lossy ? 4 : n, NULL), 0);
    sim_rx_t r[SIM_RX];
    ursa_task_t *t[SIM_RX];
    for (int i = 0; i < SIM_RX; i++) {
        r[i] = (sim_rx_t){.n = n, .lossy = lossy};
        if (i == 0)
            r[i].rx = first;
        else
            CHECK_EQ(ursa_broadcast_subscribe(tx, &r[i].rx), 0);
    }
    for (int i = 0; i < SIM_RX; i++)
        t[i] = spawn_on(0, sim_receiver, &r[i], "rx");
    for (uint64_t i = 0; i < n; i++) {
        CHECK_EQ(ursa_broadcast_send(tx, &i), SIM_RX);
        if (i % 2 == 0)
            (void)ursa_yield();
    }
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    for (int i = 0; i < SIM_RX; i++)
        CHECK_OK(join_task(t[i]));
    for (int i = 0; i < SIM_RX; i++)
        CHECK_EQ(ursa_broadcast_receiver_drop(r[i].rx), 0);
    return NULL;
}

static void test_order_sim(void **state)
{
    (void)state;
    test_explore(sim_order_body, NULL);
}

static void test_lossy_sim(void **state)
{
    (void)state;
    test_explore(sim_order_body, (void *)1);
}

static void test_order_workers(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, sim_order_body, NULL));
    ASSERT_OK(test_run(2, sim_order_body, (void *)1));
}

/* ====================================================================== */
/* stress: 2 sender threads, 4 receivers (2 tasks on 2 workers, 2 threads) */
/* ====================================================================== */

#define ST_SENDERS 2
#define ST_RX 4

typedef struct stress {
    ursa_broadcast_tx_t *tx[ST_SENDERS];
    ursa_broadcast_rx_t *rx[ST_RX];
    uint64_t per_sender;
    unsigned pace; /* senders yield every `pace` values (receivers then wait) */
    atomic_int go;
    uint64_t got[ST_RX], missed[ST_RX];
    const char *res[ST_RX];
} stress_t;

typedef struct st_arg {
    stress_t *s;
    int id;
} st_arg_t;

static void *st_sender(void *arg)
{
    st_arg_t *a = arg;
    stress_t *s = a->s;
    while (!atomic_load(&s->go))
        sched_yield();
    for (uint64_t i = 0; i < s->per_sender; i++) {
        uint64_t v = ((uint64_t)a->id << 48) | i;
        int rc = ursa_broadcast_send(s->tx[a->id], &v);
        if (rc != ST_RX)
            return (void *)failf("send returned %d", rc);
        if (i % s->pace == 0)
            sched_yield();
    }
    (void)ursa_broadcast_sender_drop(s->tx[a->id]);
    return NULL;
}

static void *st_receiver(void *arg)
{
    st_arg_t *a = arg;
    stress_t *s = a->s;
    uint64_t next[ST_SENDERS] = {0}, v, missed, got = 0, lost = 0;
    atomic_fetch_add(&s->go, 0);
    for (;;) {
        int rc = ursa_broadcast_recv(s->rx[a->id], &v, &missed, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc == -EOVERFLOW) {
            if (missed == 0)
                return (void *)"lag of 0";
            lost += missed;
            continue;
        }
        if (rc != 0)
            return (void *)failf("recv: %s", ursa_strerror(rc));
        unsigned from = (unsigned)(v >> 48);
        uint64_t seq = v & ((1ull << 48) - 1);
        if (from >= ST_SENDERS || seq < next[from])
            return (void *)failf("rx %d: sender %u value %llu after %llu", a->id, from,
                                 (unsigned long long)seq, (unsigned long long)next[from]);
        next[from] = seq + 1;
        got++;
    }
    s->got[a->id] = got;
    s->missed[a->id] = lost;
    if (got + lost != ST_SENDERS * s->per_sender)
        return (void *)failf("rx %d: got %llu + missed %llu != sent %llu", a->id,
                             (unsigned long long)got, (unsigned long long)lost,
                             (unsigned long long)(ST_SENDERS * s->per_sender));
    return NULL;
}

static void *st_thread_rx(void *arg)
{
    st_arg_t *a = arg;
    a->s->res[a->id] = st_receiver(arg);
    return NULL;
}

static st_arg_t st_args[ST_RX + ST_SENDERS];

/* Root task on worker 0: receiver 0 here, receiver 1 on worker 1. */
static void *st_root(void *arg)
{
    stress_t *s = arg;
    ursa_task_t *t = spawn_on(1, st_receiver, &st_args[1], "rx1");
    atomic_store(&s->go, 1);
    s->res[0] = st_receiver(&st_args[0]);
    s->res[1] = join_task(t);
    return NULL;
}

static void stress_run(size_t cap, unsigned pace, long n)
{
    stress_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->per_sender = (uint64_t)test_scale(n);
    s->pace = pace;
    assert_int_equal(ursa_broadcast_new(&s->tx[0], &s->rx[0], sizeof(uint64_t), cap, NULL), 0);
    assert_int_equal(ursa_broadcast_sender_clone(s->tx[0], &s->tx[1]), 0);
    for (int i = 1; i < ST_RX; i++)
        assert_int_equal(ursa_broadcast_subscribe(s->tx[0], &s->rx[i]), 0);
    for (int i = 0; i < ST_RX; i++)
        st_args[i] = (st_arg_t){s, i};
    pthread_t rth[2], sth[ST_SENDERS];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&rth[i], NULL, st_thread_rx, &st_args[2 + i]), 0);
    for (int i = 0; i < ST_SENDERS; i++) {
        st_args[ST_RX + i] = (st_arg_t){s, i};
        assert_int_equal(pthread_create(&sth[i], NULL, st_sender, &st_args[ST_RX + i]), 0);
    }
    assert_null(test_run(2, st_root, s));
    for (int i = 0; i < ST_SENDERS; i++) {
        void *r = NULL;
        pthread_join(sth[i], &r);
        ASSERT_OK(r);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(rth[i], NULL);
    for (int i = 0; i < ST_RX; i++)
        ASSERT_OK(s->res[i]);
    for (int i = 0; i < ST_RX; i++)
        print_message("  cap %zu rx %d: got %llu missed %llu\n", cap, i,
                      (unsigned long long)s->got[i], (unsigned long long)s->missed[i]);
    for (int i = 0; i < ST_RX; i++)
        assert_int_equal(ursa_broadcast_receiver_drop(s->rx[i]), 0);
    free(s);
}

static void test_stress_small_ring(void **state)
{
    (void)state;
    stress_run(8, 256, 50000); /* lag is common: checks missed accounting */
}

static void test_stress_large_ring(void **state)
{
    (void)state;
    stress_run(1024, 256, 50000);
}

/* Senders yield after every value: receivers keep up and mostly wait. */
static void test_stress_paced(void **state)
{
    (void)state;
    stress_run(64, 1, 20000);
}

/* Senders race a whole lap around a tiny ring: a value may be overwritten
 * before it was written; the destructor still runs once per value. */
static atomic_int lap_dt;
static void lap_dtor(void *e)
{
    (void)e;
    atomic_fetch_add(&lap_dt, 1);
}

typedef struct lap {
    ursa_broadcast_tx_t *tx;
    int n;
} lap_t;

static void *lap_sender(void *arg)
{
    lap_t *l = arg;
    for (int i = 0; i < l->n; i++) {
        uint64_t v = (uint64_t)i;
        if (ursa_broadcast_send(l->tx, &v) != 1)
            return (void *)"send failed";
    }
    return NULL;
}

static void test_lap_race_dtor(void **state)
{
    (void)state;
    atomic_store(&lap_dt, 0);
    ursa_broadcast_tx_t *tx, *tx2;
    ursa_broadcast_rx_t *rx;
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 1, lap_dtor), 0);
    assert_int_equal(ursa_broadcast_sender_clone(tx, &tx2), 0);
    int n = (int)test_scale(50000);
    lap_t a = {tx, n}, b = {tx2, n};
    pthread_t th[2];
    assert_int_equal(pthread_create(&th[0], NULL, lap_sender, &a), 0);
    assert_int_equal(pthread_create(&th[1], NULL, lap_sender, &b), 0);
    uint64_t v, missed;
    uint64_t got = 0, lost = 0;
    while (got + lost < (uint64_t)(2 * n)) {
        int rc = ursa_broadcast_try_recv(rx, &v, &missed);
        if (rc == 0)
            got++;
        else if (rc == -EOVERFLOW)
            lost += missed;
        else if (rc == -EAGAIN)
            sched_yield();
        else
            fail_msg("recv: %s", ursa_strerror(rc));
    }
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        ASSERT_OK(r);
    }
    assert_int_equal(got + lost, 2 * n);
    assert_int_equal(ursa_broadcast_try_recv(rx, &v, &missed), -EAGAIN);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx2), 0);
    assert_int_equal(atomic_load(&lap_dt), 2 * n - 1); /* one still in the ring */
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(atomic_load(&lap_dt), 2 * n);
}

/* Receivers read without a lock (a seqlock over the slot's words): a copy
 * that overlaps an overwrite must be thrown away, never returned torn, and
 * a lag must leave *out untouched. Two sender threads lap a 2-slot ring
 * while a plain thread (try_recv) and a task (recv) receive; elements of
 * 40 bytes (whole words) and 21 bytes (a partial last word). */
typedef struct torn {
    ursa_broadcast_tx_t *tx[2];
    ursa_broadcast_rx_t *rx[2];
    size_t size;
    uint64_t per_sender;
    atomic_int go;
} torn_t;

typedef struct torn_arg {
    torn_t *t;
    int id;
} torn_arg_t;

static void torn_fill(unsigned char *b, size_t size, uint64_t v)
{
    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)((v >> (8 * (i % 8))) ^ i);
}

static void *torn_send(void *arg)
{
    torn_arg_t *a = arg;
    torn_t *t = a->t;
    unsigned char b[64];
    while (atomic_load(&t->go) < 2)
        sched_yield();
    for (uint64_t i = 0; i < t->per_sender; i++) {
        torn_fill(b, t->size, ((uint64_t)(a->id + 1) << 40) | i);
        if (ursa_broadcast_send(t->tx[a->id], b) != 2)
            return (void *)"send failed";
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void *torn_recv(void *arg)
{
    torn_arg_t *a = arg;
    torn_t *t = a->t;
    unsigned char b[64], want[64];
    uint64_t missed, got = 0, lost = 0, next[2] = {0, 0};
    atomic_fetch_add(&t->go, 1);
    for (;;) {
        memset(b, 0xA5, sizeof b);
        int rc = a->id ? ursa_broadcast_recv(t->rx[1], b, &missed, URSA_NEVER)
                       : ursa_broadcast_try_recv(t->rx[0], b, &missed);
        if (rc == -EPIPE)
            break;
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc == -EOVERFLOW) {
            CHECK(missed >= 1);
            for (size_t i = 0; i < sizeof b; i++)
                CHECK(b[i] == 0xA5); /* *out untouched on a lag */
            lost += missed;
            continue;
        }
        CHECK_EQ(rc, 0);
        for (size_t i = t->size; i < sizeof b; i++)
            CHECK(b[i] == 0xA5); /* exactly elem_size bytes written */
        uint64_t v = 0;
        for (size_t i = 0; i < 8; i++)
            v |= (uint64_t)(unsigned char)(b[i] ^ i) << (8 * i);
        torn_fill(want, t->size, v);
        if (memcmp(b, want, t->size) != 0)
            return (void *)failf("torn value (elem_size %zu)", t->size);
        int who = (int)(v >> 40) - 1;
        CHECK(who == 0 || who == 1);
        uint64_t seq = v & ((1ull << 40) - 1);
        CHECK(seq >= next[who]); /* each sender's values in order, once */
        next[who] = seq + 1;
        got++;
    }
    CHECK_EQ(got + lost, 2 * t->per_sender);
    return NULL;
}

static void *torn_task_thread(void *arg)
{
    return test_run(1, torn_recv, arg);
}

static void test_torn_reads(void **state)
{
    (void)state;
    static const size_t sizes[] = {40, 21};
    for (int k = 0; k < 2; k++) {
        static torn_t t;
        memset(&t, 0, sizeof t);
        t.size = sizes[k];
        t.per_sender = (uint64_t)test_scale(100000);
        assert_int_equal(ursa_broadcast_new(&t.tx[0], &t.rx[0], t.size, 2, NULL), 0);
        assert_int_equal(ursa_broadcast_subscribe(t.tx[0], &t.rx[1]), 0);
        assert_int_equal(ursa_broadcast_sender_clone(t.tx[0], &t.tx[1]), 0);
        torn_arg_t sa[2] = {{&t, 0}, {&t, 1}}, ra[2] = {{&t, 0}, {&t, 1}};
        pthread_t th[4];
        assert_int_equal(pthread_create(&th[0], NULL, torn_send, &sa[0]), 0);
        assert_int_equal(pthread_create(&th[1], NULL, torn_send, &sa[1]), 0);
        assert_int_equal(pthread_create(&th[2], NULL, torn_recv, &ra[0]), 0);
        assert_int_equal(pthread_create(&th[3], NULL, torn_task_thread, &ra[1]), 0);
        for (int i = 0; i < 2; i++) {
            void *r = NULL;
            pthread_join(th[i], &r);
            ASSERT_OK(r);
        }
        assert_int_equal(ursa_broadcast_sender_drop(t.tx[0]), 0);
        assert_int_equal(ursa_broadcast_sender_drop(t.tx[1]), 0);
        for (int i = 2; i < 4; i++) {
            void *r = NULL;
            pthread_join(th[i], &r);
            ASSERT_OK(r);
        }
        assert_int_equal(ursa_broadcast_receiver_drop(t.rx[0]), 0);
        assert_int_equal(ursa_broadcast_receiver_drop(t.rx[1]), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_lag_exact),
        cmocka_unit_test(test_lag_task),
        cmocka_unit_test(test_handles_close),
        cmocka_unit_test(test_dtor_once),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_deadline_thread),
        cmocka_unit_test(test_deadline_task),
        cmocka_unit_test(test_deadline_sim),
        cmocka_unit_test(test_cancel_sim),
        cmocka_unit_test(test_raw_foreign_waker),
        cmocka_unit_test(test_order_sim),
        cmocka_unit_test(test_lossy_sim),
        cmocka_unit_test(test_order_workers),
        cmocka_unit_test(test_stress_small_ring),
        cmocka_unit_test(test_stress_large_ring),
        cmocka_unit_test(test_stress_paced),
        cmocka_unit_test(test_lap_race_dtor),
        cmocka_unit_test(test_torn_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
