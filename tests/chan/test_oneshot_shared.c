/* The shared oneshot (ursa_oneshot_new: two handles dropped
 * independently, issue 10 defect 11) and the receiver's is_terminated /
 * is_empty (both forms). The request/response case the embedded form
 * could not serve: a requester that gave up drops its receiver, and the
 * late reply fails with -EPIPE instead of reaching the next request. */
#include "support.h"

#include <ursa/mpsc.h>

#include "task_checks.h"
#include "ursa/oneshot.h"

/* ====================================================================== */
/* request/response with a requester that gives up                        */
/* ====================================================================== */

typedef struct request {
    int id;
    ursa_oneshot_tx_t reply;
} request_t;

/* The actor answers request id with 100 + id: what its send returned. */
static int answer(ursa_mpsc_receiver_t *rx, int *id)
{
    request_t req;
    assert_int_equal(ursa_mpsc_recv(rx, &req, URSA_NOW), 0);
    *id = req.id;
    int v = 100 + req.id;
    int rc = ursa_oneshot_tx_send(&req.reply, &v);
    assert_int_equal(ursa_oneshot_tx_drop(&req.reply), 0);
    return rc;
}

/* The sequence of the issue, in one order: request 0 times out and its
 * requester drops the receiver, request 1 is made, then the actor answers
 * both. With the embedded oneshot on the requester's stack (the example
 * before the fix) request 1 received request 0's reply. */
static void test_oneshot_shared_late_reply_fails_instead_of_reaching_the_next_request(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t qrx;
    ursa_mpsc_sender_t qtx;
    assert_int_equal(ursa_mpsc_new(&qrx, &qtx, sizeof(request_t), 8, NULL), 0);
    ursa_oneshot_rx_t rx;
    int out = 0, id = -1;
    for (int i = 0; i < 2; i++) {
        request_t req = {.id = i};
        assert_int_equal(ursa_oneshot_new(&req.reply, &rx, sizeof(int)), 0);
        assert_int_equal(ursa_mpsc_send(&qtx, &req, URSA_NOW), 0);
        if (i == 0) { /* gives up: no reply yet */
            assert_int_equal(ursa_oneshot_rx_recv(&rx, &out, URSA_NOW), -EAGAIN);
            assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
        }
    }
    assert_int_equal(answer(&qrx, &id), -EPIPE); /* nobody wants reply 0 */
    assert_int_equal(id, 0);
    assert_int_equal(answer(&qrx, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(ursa_oneshot_rx_recv(&rx, &out, URSA_NEVER), 0);
    assert_int_equal(out, 101); /* its own reply */
    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
    assert_int_equal(ursa_mpsc_sender_drop(&qtx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&qrx), 0);
}

/* ====================================================================== */
/* handles                                                                */
/* ====================================================================== */

static void test_oneshot_shared_rejects_bad_arguments_and_dropped_handles(void **state)
{
    (void)state;
    ursa_oneshot_tx_t tx;
    ursa_oneshot_rx_t rx;
    int v = 1, out = 0;
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    assert_int_equal(ursa_oneshot_new(NULL, &rx, 4), -EINVAL);
    assert_int_equal(ursa_oneshot_new(&tx, NULL, 4), -EINVAL);
    assert_int_equal(ursa_oneshot_new(&tx, &rx, 0), -EINVAL);
    assert_int_equal(ursa_oneshot_new(&tx, &rx, ((size_t)1 << 30) + 1), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_send(NULL, &v), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_drop(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_is_closed(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_closed(NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv(NULL, &out, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_try_recv(NULL, &out), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv_start(NULL, &w, cw_waker(&cw)), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv_finish(NULL, &w, &out), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_close(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_is_terminated(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_is_empty(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_drop(NULL), -EINVAL);

    assert_int_equal(ursa_oneshot_new(&tx, &rx, sizeof v), 0);
    assert_int_equal(ursa_oneshot_tx_send(&tx, NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv(&rx, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_drop(&tx), 0);
    /* dropped handles: -EINVAL, never a touch of the channel */
    assert_int_equal(ursa_oneshot_tx_drop(&tx), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_send(&tx, &v), -EINVAL);
    assert_int_equal(ursa_oneshot_tx_is_closed(&tx), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv(&rx, &out, URSA_NOW), -EPIPE);
    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
    assert_int_equal(ursa_oneshot_rx_drop(&rx), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_try_recv(&rx, &out), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_close(&rx), -EINVAL);
    assert_int_equal(ursa_oneshot_rx_recv_start(&rx, &w, cw_waker(&cw)), -EINVAL);
}

/* Both drop orders, with and without a send, inline and allocated values:
 * each end sees what the embedded oneshot gives, and the last drop frees
 * (the sanitizer builds see a leak or a use after free). */
static void test_oneshot_shared_ends_drop_in_either_order(void **state)
{
    (void)state;
    static const size_t sizes[] = {sizeof(uint64_t), URSA_ONESHOT_INLINE + 200};
    unsigned char v[URSA_ONESHOT_INLINE + 200], out[sizeof v];
    for (size_t s = 0; s < 2; s++) {
        for (int sent = 0; sent < 2; sent++) {
            for (int tx_first = 0; tx_first < 2; tx_first++) {
                ursa_oneshot_tx_t tx;
                ursa_oneshot_rx_t rx;
                memset(v, 0x40 + (int)s + sent, sizeof v);
                memset(out, 0, sizeof out);
                assert_int_equal(ursa_oneshot_new(&tx, &rx, sizes[s]), 0);
                if (sent)
                    assert_int_equal(ursa_oneshot_tx_send(&tx, v), 0);
                if (tx_first) {
                    assert_int_equal(ursa_oneshot_tx_drop(&tx), 0);
                    assert_int_equal(ursa_oneshot_rx_recv(&rx, out, URSA_NEVER), sent ? 0 : -EPIPE);
                    if (sent)
                        assert_memory_equal(out, v, sizes[s]);
                    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
                } else {
                    assert_int_equal(ursa_oneshot_tx_is_closed(&tx), 0);
                    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
                    assert_int_equal(ursa_oneshot_tx_is_closed(&tx), 1);
                    assert_int_equal(ursa_oneshot_tx_closed(&tx, URSA_NOW), 0);
                    assert_int_equal(ursa_oneshot_tx_send(&tx, v), sent ? -EALREADY : -EPIPE);
                    assert_int_equal(ursa_oneshot_tx_drop(&tx), 0);
                }
            }
        }
    }
}

/* The sender's closed() wait is woken by the receiver's drop (and the
 * raw recv through the handle by the send). */
static void *closed_waiter(void *arg)
{
    ursa_oneshot_tx_t *tx = arg;
    CHECK_EQ(ursa_oneshot_tx_closed(tx, URSA_NEVER), 0);
    int v = 5;
    CHECK_EQ(ursa_oneshot_tx_send(tx, &v), -EPIPE);
    CHECK_EQ(ursa_oneshot_tx_drop(tx), 0);
    return NULL;
}

static void test_oneshot_shared_closed_wakes_on_the_receivers_drop(void **state)
{
    (void)state;
    static ursa_oneshot_tx_t tx;
    ursa_oneshot_rx_t rx;
    assert_int_equal(ursa_oneshot_new(&tx, &rx, sizeof(int)), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closed_waiter, &tx), 0);
    /* raw recv first: queued, then the receiver closes it by dropping */
    cw_t cw;
    cw_init(&cw);
    ursa_wait_t w;
    int out = 0;
    assert_int_equal(ursa_oneshot_rx_recv_start(&rx, &w, cw_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_oneshot_rx_recv_finish(&rx, &w, &out), -EAGAIN);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
    ASSERT_OK(join_threads(&th, 1));
}

/* ====================================================================== */
/* drops racing a send                                                    */
/* ====================================================================== */

typedef struct race {
    ursa_oneshot_tx_t tx;
    int send_rc;
} race_t;

static void *racing_sender(void *arg)
{
    race_t *r = arg;
    int v = 77;
    r->send_rc = ursa_oneshot_tx_send(&r->tx, &v);
    if (ursa_oneshot_tx_drop(&r->tx) != 0)
        return "tx_drop";
    return NULL;
}

/* The receiver takes what is there and drops while the sender sends and
 * drops on another thread: a reply received was sent (0), a send that
 * failed (-EPIPE) delivered nothing, and whichever drop is last frees. */
static void test_oneshot_shared_drop_racing_send_on_threads(void **state)
{
    (void)state;
    long rounds = test_scale(3000);
    for (long i = 0; i < rounds; i++) {
        static race_t r;
        ursa_oneshot_rx_t rx;
        assert_int_equal(ursa_oneshot_new(&r.tx, &rx, sizeof(int)), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, racing_sender, &r), 0);
        int out = 0;
        int rc = ursa_oneshot_rx_try_recv(&rx, &out);
        assert_true(rc == 0 || rc == -EAGAIN || rc == -EPIPE);
        assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
        ASSERT_OK(join_threads(&th, 1));
        if (rc == 0) {
            assert_int_equal(out, 77);
            assert_int_equal(r.send_rc, 0);
        }
        if (rc == -EPIPE) /* the sender always sends before it drops */
            fail_msg("round %ld: the receiver saw a drop without a send", i);
        assert_true(r.send_rc == 0 || r.send_rc == -EPIPE);
    }
}

/* ====================================================================== */
/* is_terminated / is_empty                                               */
/* ====================================================================== */

static void test_oneshot_is_terminated_and_is_empty_follow_the_value(void **state)
{
    (void)state;
    ursa_oneshot_t os;
    int v = 3, out = 0;
    assert_int_equal(ursa_oneshot_is_terminated(NULL), -EINVAL);
    assert_int_equal(ursa_oneshot_is_empty(NULL), -EINVAL);
    /* sent, then received */
    assert_int_equal(ursa_oneshot_init(&os, sizeof v, NULL), 0);
    assert_int_equal(ursa_oneshot_is_empty(&os), 1);
    assert_int_equal(ursa_oneshot_is_terminated(&os), 0);
    assert_int_equal(ursa_oneshot_send(&os, &v), 0);
    assert_int_equal(ursa_oneshot_is_empty(&os), 0);
    assert_int_equal(ursa_oneshot_close(&os), 0); /* a sent value stays */
    assert_int_equal(ursa_oneshot_is_empty(&os), 0);
    assert_int_equal(ursa_oneshot_is_terminated(&os), 0);
    assert_int_equal(ursa_oneshot_try_recv(&os, &out), 0);
    assert_int_equal(ursa_oneshot_is_empty(&os), 1);
    assert_int_equal(ursa_oneshot_is_terminated(&os), 1);
    assert_int_equal(ursa_oneshot_receiver_drop(&os), 0);
    assert_int_equal(ursa_oneshot_is_empty(&os), -EINVAL);
    assert_int_equal(ursa_oneshot_is_terminated(&os), -EINVAL);
    assert_int_equal(ursa_oneshot_destroy(&os), 0);
    /* ended without a value: the sender dropped, or the receiver closed */
    for (int close = 0; close < 2; close++) {
        assert_int_equal(ursa_oneshot_init(&os, sizeof v, NULL), 0);
        assert_int_equal(close ? ursa_oneshot_close(&os) : ursa_oneshot_sender_drop(&os), 0);
        assert_int_equal(ursa_oneshot_is_empty(&os), 1);
        assert_int_equal(ursa_oneshot_is_terminated(&os), 1);
        assert_int_equal(ursa_oneshot_destroy(&os), 0);
    }
    /* through the shared receiver */
    ursa_oneshot_tx_t tx;
    ursa_oneshot_rx_t rx;
    assert_int_equal(ursa_oneshot_new(&tx, &rx, sizeof v), 0);
    assert_int_equal(ursa_oneshot_rx_is_terminated(&rx), 0);
    assert_int_equal(ursa_oneshot_tx_send(&tx, &v), 0);
    assert_int_equal(ursa_oneshot_rx_is_empty(&rx), 0);
    assert_int_equal(ursa_oneshot_tx_drop(&tx), 0);
    assert_int_equal(ursa_oneshot_rx_try_recv(&rx, &out), 0);
    assert_int_equal(ursa_oneshot_rx_is_terminated(&rx), 1);
    assert_int_equal(ursa_oneshot_rx_is_empty(&rx), 1);
    assert_int_equal(ursa_oneshot_rx_drop(&rx), 0);
}

TEST_MAIN(
    cmocka_unit_test(test_oneshot_shared_late_reply_fails_instead_of_reaching_the_next_request),
    cmocka_unit_test(test_oneshot_shared_rejects_bad_arguments_and_dropped_handles),
    cmocka_unit_test(test_oneshot_shared_ends_drop_in_either_order),
    cmocka_unit_test(test_oneshot_shared_closed_wakes_on_the_receivers_drop),
    cmocka_unit_test(test_oneshot_shared_drop_racing_send_on_threads),
    cmocka_unit_test(test_oneshot_is_terminated_and_is_empty_follow_the_value))
