/* Tests for the broadcast channel (include/ursa/broadcast.h,
 * src/chan/broadcast.c) beyond the contract (tests/contract/, row
 * broadcast_recv): argument errors, exact lag, handles and close, the
 * destructor, the typed wrapper, deadlines and the end of stream, and the
 * raw recv (lag, cancel, end). Order and stress: test_broadcast_stress.c. */
#include "support.h"

#include <poll.h>
#include <sys/eventfd.h>

#include "task_checks.h"
#include "ursa/broadcast.h"

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
    CHECK_EQ(ursa_broadcast_len(NULL), -EINVAL);
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

TEST_BODY(test_broadcast_rejects_bad_arguments, args_body(NULL))

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
    CHECK_EQ(ursa_broadcast_len(tx), 4); /* the slowest receiver's count */
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

TEST_BODY(test_broadcast_lag_is_exact_per_receiver_and_again_on_a_plain_thread, lag_body(NULL))

TEST_BODY(test_broadcast_lag_is_exact_per_receiver_and_again_in_a_task, test_run(1, lag_body, NULL))

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

TEST_BODY(test_broadcast_subscribe_clone_and_close_by_the_last_sender, handles_body(NULL))

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

static void test_broadcast_destructor_runs_once_per_value(void **state)
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

TEST_BODY(test_broadcast_typed_wrapper_sends_and_receives_structs, typed_body(NULL))

/* ====================================================================== */
/* deadlines                                                              */
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

TEST_BODY(test_broadcast_deadlines_and_end_of_stream_on_a_plain_thread, deadline_body(NULL))

TEST_BODY(test_broadcast_deadlines_and_end_of_stream_in_a_task, test_run(1, deadline_body, NULL))

TEST_EXPLORE(test_broadcast_deadlines_and_end_of_stream_over_seeds, deadline_body, NULL)

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

TEST_BODY(test_broadcast_raw_recv_woken_lagged_cancelled_and_ended, raw_body(NULL))

/* Tokio's Sender::new: a sender alone; sends fail until a subscribe. */
static void test_broadcast_sender_only_channel_sends_once_subscribed(void **state)
{
    (void)state;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    uint64_t v = 7, out = 0, missed = 0;
    assert_int_equal(ursa_broadcast_new(&tx, NULL, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_receiver_count(tx), 0);
    assert_int_equal(ursa_broadcast_send(tx, &v), -EPIPE);
    assert_int_equal(ursa_broadcast_subscribe(tx, &rx), 0);
    assert_int_equal(ursa_broadcast_send(tx, &v), 1);
    assert_int_equal(ursa_broadcast_try_recv(rx, &out, &missed), 0);
    assert_int_equal(out, 7);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    assert_int_equal(ursa_broadcast_try_recv(rx, &out, &missed), -EPIPE);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    /* the sender alone is the last handle too */
    assert_int_equal(ursa_broadcast_new(&tx, NULL, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
}

/* Tokio's Sender::closed / is_closed: the sender's wait ends when no
 * receiver is left, and not while one is (a subscribe after a wake makes
 * the raw wait start again). */
static void *closed_waiter(void *arg)
{
    CHECK_EQ(ursa_broadcast_closed(arg, URSA_NEVER), 0);
    return NULL;
}

static void test_broadcast_senders_closed_waits_for_the_last_receiver(void **state)
{
    (void)state;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx, *rx2;
    ursa_wait_t w;
    cw_t cw;
    uint64_t v = 1;
    assert_int_equal(ursa_broadcast_closed(NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_broadcast_is_closed(NULL), -EINVAL);
    assert_int_equal(ursa_broadcast_closed_start(NULL, &w, cw_fresh(&cw)), -EINVAL);
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_is_closed(tx), 0);
    assert_int_equal(ursa_broadcast_closed(tx, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_broadcast_closed(tx, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    /* raw: the first of two receivers going does not wake it */
    assert_int_equal(ursa_broadcast_closed_start(tx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_broadcast_subscribe(tx, &rx2), 0);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_false(ursa_wait_ready(&w));
    assert_int_equal(ursa_broadcast_closed_finish(tx, &w), -EAGAIN);
    assert_int_equal(ursa_broadcast_receiver_drop(rx2), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_int_equal(ursa_broadcast_closed_finish(tx, &w), 0);
    assert_int_equal(ursa_broadcast_is_closed(tx), 1);
    assert_int_equal(ursa_broadcast_closed(tx, URSA_NOW), 0);
    assert_int_equal(ursa_broadcast_closed_start(tx, &w, cw_fresh(&cw)), 0);
    assert_int_equal(ursa_broadcast_closed_finish(tx, &w), 0);
    /* woken, then a subscribe: the raw wait says start again */
    assert_int_equal(ursa_broadcast_subscribe(tx, &rx), 0);
    assert_int_equal(ursa_broadcast_closed_start(tx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_subscribe(tx, &rx), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(ursa_broadcast_closed_finish(tx, &w), -EAGAIN);
    /* a cancelled raw wait calls no waker */
    assert_int_equal(ursa_broadcast_closed_start(tx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(atomic_load(&cw.calls), 0);
    /* a thread waiting is woken by the drop */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closed_waiter, tx), 0);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    ASSERT_OK(join_threads(&th, 1));
    assert_int_equal(ursa_broadcast_send(tx, &v), -EPIPE);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
}

/* Tokio's WeakSender: keeps the memory, not the sending side. */
static void test_broadcast_weak_sender_upgrades_only_while_a_sender_lives(void **state)
{
    (void)state;
    ursa_broadcast_tx_t *tx, *tx2;
    ursa_broadcast_rx_t *rx;
    ursa_broadcast_weak_t *wk, *wk2;
    uint64_t v = 3, out = 0, missed = 0;
    assert_int_equal(ursa_broadcast_sender_downgrade(NULL, &wk), -EINVAL);
    assert_int_equal(ursa_broadcast_weak_upgrade(NULL, &tx2), -EINVAL);
    assert_int_equal(ursa_broadcast_weak_drop(NULL), -EINVAL);
    assert_int_equal(ursa_broadcast_sender_count(NULL), -EINVAL);
    assert_int_equal(ursa_broadcast_weak_count(NULL), -EINVAL);
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_sender_downgrade(tx, &wk), 0);
    assert_int_equal(ursa_broadcast_sender_downgrade(tx, &wk2), 0);
    assert_int_equal(ursa_broadcast_sender_count(tx), 1);
    assert_int_equal(ursa_broadcast_weak_count(tx), 2);
    assert_int_equal(ursa_broadcast_weak_upgrade(wk, &tx2), 0);
    assert_int_equal(ursa_broadcast_sender_count(tx), 2);
    assert_int_equal(ursa_broadcast_send(tx2, &v), 1);
    assert_int_equal(ursa_broadcast_sender_drop(tx2), 0);
    assert_int_equal(ursa_broadcast_weak_drop(wk2), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0); /* closes: weak senders do not count */
    assert_int_equal(ursa_broadcast_try_recv(rx, &out, &missed), 0);
    assert_int_equal(out, 3);
    assert_int_equal(ursa_broadcast_try_recv(rx, &out, &missed), -EPIPE);
    assert_int_equal(ursa_broadcast_weak_upgrade(wk, &tx2), -EPIPE);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_weak_drop(wk), 0); /* the last handle frees */
    /* a weak sender alone outlives the other handles' drops too */
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_sender_downgrade(tx, &wk), 0);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    assert_int_equal(ursa_broadcast_weak_upgrade(wk, &tx2), -EPIPE);
    assert_int_equal(ursa_broadcast_weak_drop(wk), 0);
}

/* Tokio's Sender::len: what the slowest receiver has still to read, capped
 * at the capacity; a receiver that goes or comes moves it. */
static ursa_broadcast_tx_t *len_tx;
static atomic_long len_seen_bad;

static void *len_reader(void *arg)
{
    ursa_broadcast_rx_t *rx = arg;
    uint64_t v, missed, expect = 0;
    for (;;) {
        int rc = ursa_broadcast_recv(rx, &v, &missed, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc != 0 || v != expect++)
            atomic_fetch_add(&len_seen_bad, 1);
    }
    return NULL;
}

static void test_broadcast_len_follows_the_slowest_receiver(void **state)
{
    (void)state;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *a, *b;
    uint64_t v = 0, missed = 0;
    assert_int_equal(ursa_broadcast_new(&tx, NULL, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_broadcast_len(tx), 0); /* no receiver */
    assert_int_equal(ursa_broadcast_subscribe(tx, &a), 0);
    assert_int_equal(ursa_broadcast_subscribe(tx, &b), 0);
    for (v = 0; v < 3; v++)
        assert_int_equal(ursa_broadcast_send(tx, &v), 2);
    assert_int_equal(ursa_broadcast_len(tx), 3);
    assert_int_equal(ursa_broadcast_try_recv(a, &v, &missed), 0);
    assert_int_equal(ursa_broadcast_len(tx), 3); /* b has read nothing */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ursa_broadcast_try_recv(b, &v, &missed), 0);
    assert_int_equal(ursa_broadcast_len(tx), 2); /* now a is the slowest */
    for (v = 3; v < 13; v++)
        assert_int_equal(ursa_broadcast_send(tx, &v), 2);
    assert_int_equal(ursa_broadcast_len(tx), 4); /* overwritten ones do not count */
    assert_int_equal(ursa_broadcast_receiver_drop(a), 0);
    assert_int_equal(ursa_broadcast_len(tx), 4); /* b lags too */
    assert_int_equal(ursa_broadcast_try_recv(b, &v, &missed), -EOVERFLOW);
    assert_int_equal(ursa_broadcast_len(tx), 4); /* b moved to the oldest kept */
    for (uint64_t i = 9; i < 13; i++) {
        assert_int_equal(ursa_broadcast_try_recv(b, &v, &missed), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(ursa_broadcast_len(tx), 0);
    assert_int_equal(ursa_broadcast_subscribe(tx, &a), 0);
    assert_int_equal(ursa_broadcast_len(tx), 0); /* a new receiver starts at the tail */
    assert_int_equal(ursa_broadcast_receiver_drop(a), 0);
    assert_int_equal(ursa_broadcast_receiver_drop(b), 0);
    assert_int_equal(ursa_broadcast_len(tx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);

    /* Beside a receiver on another thread (for TSan): always within the
     * capacity, and the receiver misses nothing (capacity >= sends). */
    long n = test_scale(20000);
    assert_int_equal(ursa_broadcast_new(&len_tx, &a, sizeof v, (size_t)n, NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, len_reader, a), 0);
    long cap = (long)ursa_broadcast_capacity(len_tx);
    for (v = 0; v < (uint64_t)n; v++) {
        assert_int_equal(ursa_broadcast_send(len_tx, &v), 1);
        long len = ursa_broadcast_len(len_tx);
        assert_true(len >= 0 && len <= cap);
    }
    assert_int_equal(ursa_broadcast_sender_drop(len_tx), 0);
    ASSERT_OK(join_threads(&th, 1));
    assert_int_equal(atomic_load(&len_seen_bad), 0);
    assert_int_equal(ursa_broadcast_receiver_drop(a), 0);
}

TEST_MAIN(cmocka_unit_test(test_broadcast_rejects_bad_arguments),
          cmocka_unit_test(test_broadcast_lag_is_exact_per_receiver_and_again_on_a_plain_thread),
          cmocka_unit_test(test_broadcast_lag_is_exact_per_receiver_and_again_in_a_task),
          cmocka_unit_test(test_broadcast_subscribe_clone_and_close_by_the_last_sender),
          cmocka_unit_test(test_broadcast_destructor_runs_once_per_value),
          cmocka_unit_test(test_broadcast_typed_wrapper_sends_and_receives_structs),
          cmocka_unit_test(test_broadcast_deadlines_and_end_of_stream_on_a_plain_thread),
          cmocka_unit_test(test_broadcast_deadlines_and_end_of_stream_in_a_task),
          cmocka_unit_test(test_broadcast_deadlines_and_end_of_stream_over_seeds),
          cmocka_unit_test(test_broadcast_raw_recv_woken_lagged_cancelled_and_ended),
          cmocka_unit_test(test_broadcast_sender_only_channel_sends_once_subscribed),
          cmocka_unit_test(test_broadcast_senders_closed_waits_for_the_last_receiver),
          cmocka_unit_test(test_broadcast_weak_sender_upgrades_only_while_a_sender_lives),
          cmocka_unit_test(test_broadcast_len_follows_the_slowest_receiver))
