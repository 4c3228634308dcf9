/* Tests for the mpmc channel (include/ursa/mpmc.h, src/chan/mpmc.c) beyond
 * the contract (tests/contract/, rows mpmc_send, mpmc_reserve, mpmc_recv):
 * arguments, FIFO order, memory, handles, the destructor (also racing the
 * last receiver's drop), recv_many. Permits and close:
 * test_mpmc_permit.c; raw recv and woken receivers: test_mpmc_recv.c; many
 * producers and receivers: test_mpmc_stress.c. */
#include "support.h"

#include <ursa/mpmc.h>

#include "task_checks.h"

#define CHAN mpmc
#include "mpxc_checks.h"

URSA_MPMC_TYPED(u64q, uint64_t)

/* ====================================================================== */
/* basics                                                                 */
/* ====================================================================== */

/* Every function refuses bad input with -EINVAL (and never crashes). */
static void *args_body(void *arg)
{
    (void)arg;
    ursa_mpmc_receiver_t rx, rx2, dead_rx = {0};
    ursa_mpmc_sender_t tx, tx2, dead_tx = {0};
    ursa_mpmc_weak_sender_t wk, dead_wk = {0};
    uint64_t v = 1, buf[4];
    ursa_wait_t w;
    cw_t cw;
    ursa_waker_t wk_fn = cw_fresh(&cw);
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 0, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, 0, NULL), -EINVAL); /* no unbounded mpmc */
    CHECK_EQ(ursa_mpmc_new(NULL, &tx, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_new(&rx, NULL, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, URSA_MPMC_MAX_CAPACITY + 1, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, 4, NULL), 0);
    CHECK_EQ(ursa_mpmc_capacity(tx.ch), 4);
    CHECK_EQ(ursa_mpmc_capacity(NULL), 0);
    CHECK_EQ(ursa_mpmc_len(NULL), 0);
    CHECK_EQ(ursa_mpmc_memory(NULL), 0);
    CHECK(!ursa_mpmc_is_closed(NULL));
    /* handles */
    CHECK_EQ(ursa_mpmc_sender_clone(NULL, &tx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_clone(&tx, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_clone(&dead_tx, &tx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_drop(&dead_tx), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_downgrade(NULL, &wk), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_downgrade(&tx, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_upgrade(NULL, &tx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_upgrade(&dead_wk, &tx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_clone(NULL, &wk), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_clone(&dead_wk, &wk), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_weak_drop(&dead_wk), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_clone(NULL, &rx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_clone(&dead_rx, &rx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_drop(&dead_rx), -EINVAL);
    CHECK_EQ(ursa_mpmc_close(NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_close(&dead_rx), -EINVAL);
    /* sending */
    ursa_mpmc_permit_t p = {0};
    CHECK_EQ(ursa_mpmc_send(NULL, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_send(&tx, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_send(&dead_tx, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve(NULL, &p, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve(&tx, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve(&dead_tx, &p, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_many(&tx, 0, &p, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_many(&tx, 5, &p, URSA_NOW), -EINVAL); /* > capacity */
    CHECK_EQ(ursa_mpmc_permit_send(NULL, &v), -EINVAL);
    CHECK_EQ(ursa_mpmc_permit_release(NULL), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_permit_send(&p, NULL), -EINVAL);
    CHECK_EQ(p.n, 1); /* not used by the refused send */
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), -EINVAL); /* already holding */
    CHECK_EQ(ursa_mpmc_permit_release(&p), 0);
    ursa_mpmc_permit_cleanup(NULL);
    CHECK_EQ(ursa_mpmc_reserve_start(NULL, 1, &w, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_start(&tx, 1, NULL, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_start(&tx, 1, &w, (ursa_waker_t){NULL, NULL}), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_start(&tx, 0, &w, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_start(&tx, 5, &w, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_finish(NULL, &w, &p), -EINVAL);
    /* receiving */
    CHECK_EQ(ursa_mpmc_recv(NULL, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv(&rx, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv(&dead_rx, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_try_recv(NULL, &v), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, 0, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_many(&rx, NULL, 4, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_many(NULL, buf, 4, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_start(NULL, &w, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_start(&rx, NULL, wk_fn), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_start(&rx, &w, (ursa_waker_t){NULL, NULL}), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_finish(NULL, &w, &v), -EINVAL);
    /* a reserve wait is not a recv wait, and the other way round */
    CHECK_EQ(ursa_mpmc_reserve_start(&tx, 1, &w, wk_fn), 0);
    CHECK_EQ(ursa_mpmc_recv_finish(&rx, &w, &v), -EINVAL);
    CHECK_EQ(ursa_mpmc_reserve_finish(&tx, &w, &p), 0);
    CHECK_EQ(ursa_mpmc_reserve_finish(&tx, &w, &p), -EINVAL); /* p holding */
    CHECK_EQ(ursa_mpmc_permit_release(&p), 0);
    CHECK_EQ(ursa_mpmc_recv_start(&rx, &w, wk_fn), -EINPROGRESS);
    CHECK_EQ(ursa_mpmc_reserve_finish(&tx, &w, &p), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv_finish(&rx, &w, NULL), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL); /* not started any more */
    CHECK_EQ(ursa_mpmc_recv_finish(&rx, &w, &v), -EINVAL);
    CHECK_EQ(ursa_mpmc_try_recv(&rx, &v), -EAGAIN);
    CHECK_EQ(ursa_mpmc_recv(&rx, &v, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    CHECK_EQ(atomic_load(&cw.calls), 0);
    /* dropped handles */
    CHECK_EQ(ursa_mpmc_sender_clone(&tx, &tx2), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx2), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_send(&tx2, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_recv(&rx2, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_close(&rx2), -EINVAL);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), -EINVAL);
    return NULL;
}

static void test_mpmc_rejects_bad_arguments_and_dropped_handles(void **state)
{
    (void)state;
    test_capture_leaks(); /* permit_send/release on an empty permit are reported */
    ASSERT_OK(args_body(NULL));
    ASSERT_OK(test_run(1, args_body, NULL));
    ursa_leak_set_hook(NULL, NULL);
}

/* FIFO with one receiver, len, capacity 1, typed wrapper, full channel. */
static void *fifo_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    u64q_rx_t rx;
    u64q_tx_t tx;
    CHECK_EQ(u64q_new(&rx, &tx, cap), 0);
    uint64_t out = 0;
    for (uint64_t i = 0; i < cap; i++)
        CHECK_EQ(u64q_try_send(&tx, i * 7), 0);
    CHECK_EQ(ursa_mpmc_len(rx.raw.ch), cap);
    CHECK_EQ(u64q_try_send(&tx, 99), -EAGAIN);
    CHECK_EQ(u64q_send(&tx, 99, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    for (uint64_t i = 0; i < cap; i++) {
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, i * 7);
    }
    CHECK_EQ(ursa_mpmc_len(rx.raw.ch), 0);
    CHECK_EQ(u64q_try_recv(&rx, &out), -EAGAIN);
    /* many laps through the ring, half full */
    uint64_t next_send = 0, next_recv = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        while (ursa_mpmc_len(rx.raw.ch) < (cap + 1) / 2) {
            CHECK_EQ(u64q_send(&tx, next_send, URSA_NEVER), 0);
            next_send++;
        }
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, next_recv);
        next_recv++;
    }
    u64q_permit_t p = {0};
    CHECK_EQ(u64q_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(u64q_permit_send(&p, 5), 0);
    CHECK_EQ(u64q_sender_drop(&tx), 0);
    while (next_recv < next_send) {
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, next_recv);
        next_recv++;
    }
    CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 5);
    CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(u64q_try_recv(&rx, &out), -EPIPE);
    CHECK_EQ(u64q_receiver_drop(&rx), 0);
    return NULL;
}

static void test_mpmc_delivers_in_fifo_order_to_one_receiver(void **state)
{
    (void)state;
    uint64_t caps[] = {1, 2, 3, 7, 64};
    for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        ASSERT_OK(fifo_body((void *)(uintptr_t)caps[i]));
        ASSERT_OK(test_run(1, fifo_body, (void *)(uintptr_t)caps[i]));
    }
}

static void test_mpmc_small_channel_memory_is_exact(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, 8, 1, NULL), 0);
    size_t m = ursa_mpmc_memory(rx.ch);
    assert_true(m >= 16 && m <= 1024); /* header + one 16-byte slot */
    print_message("mpmc memory: cap1 u64 %zu B\n", m);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
}

/* ====================================================================== */
/* handles: sender drop, receiver drop, weak senders, destructor          */
/* ====================================================================== */

static void *handles_body(void *arg)
{
    (void)arg;
    ursa_mpmc_receiver_t rx, rx2;
    ursa_mpmc_sender_t tx, tx2;
    ursa_mpmc_weak_sender_t wk, wk2;
    uint64_t v = 3, out;
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, 2, NULL), 0);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    CHECK_EQ(ursa_mpmc_sender_downgrade(&tx, &wk), 0);
    CHECK_EQ(ursa_mpmc_weak_clone(&wk, &wk2), 0);
    CHECK_EQ(ursa_mpmc_weak_upgrade(&wk, &tx2), 0);
    CHECK_EQ(ursa_mpmc_send(&tx2, &v, URSA_NOW), 0);
    v = 4;
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx2), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    /* only weak senders left: drained (over both receivers), then -EPIPE */
    CHECK_EQ(ursa_mpmc_recv(&rx2, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 3);
    CHECK_EQ(ursa_mpmc_recv(&rx, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 4);
    CHECK_EQ(ursa_mpmc_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpmc_recv(&rx2, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpmc_weak_upgrade(&wk, &tx2), -EPIPE);
    CHECK_EQ(ursa_mpmc_weak_drop(&wk), 0);
    CHECK_EQ(ursa_mpmc_weak_drop(&wk), -EINVAL);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    CHECK_EQ(ursa_mpmc_weak_drop(&wk2), 0); /* frees */

    /* one receiver of two dropped: the channel stays open */
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, 2, NULL), 0);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK(!ursa_mpmc_is_closed(rx2.ch));
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_try_recv(&rx2, &out), 0);
    /* the last receiver dropped: sends fail with -EPIPE, the value stays ours */
    ursa_mpmc_permit_t p = {0};
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    CHECK_OK(check_sends_fail_without_receivers(&tx, &p));
    return NULL;
}

static void test_mpmc_weak_senders_receiver_clones_and_the_last_receiver_drop(void **state)
{
    (void)state;
    ASSERT_OK(handles_body(NULL));
    ASSERT_OK(test_run(1, handles_body, NULL));
}

/* The last sender drops while three receivers wait: the two messages are
 * taken once each, then every receiver gets -EPIPE. */
typedef struct dw {
    ursa_mpmc_receiver_t rx[3];
    ursa_mpmc_sender_t tx;
    int got[3], rc[3];
} dw_t;

typedef struct dw_arg {
    dw_t *d;
    int id;
} dw_arg_t;

static void *dw_sender(void *arg)
{
    dw_t *d = arg;
    ursa_sleep_for(URSA_MSEC(1));
    for (uint64_t v = 11; v < 13; v++)
        if (ursa_mpmc_send(&d->tx, &v, URSA_NEVER))
            return (void *)"send";
    ursa_sleep_for(URSA_MSEC(1));
    (void)ursa_mpmc_sender_drop(&d->tx);
    return NULL;
}

static void *dw_receiver(void *arg)
{
    dw_arg_t *a = arg;
    uint64_t out;
    int rc;
    while ((rc = ursa_mpmc_recv(&a->d->rx[a->id], &out, URSA_NEVER)) == 0) {
        URSA_SIM_CHECK(out == 11 || out == 12);
        a->d->got[a->id]++;
    }
    a->d->rc[a->id] = rc;
    return NULL;
}

static void *drop_wakes_scenario(void *arg)
{
    (void)arg;
    static dw_t d;
    static dw_arg_t a[3];
    memset(&d, 0, sizeof d);
    URSA_SIM_CHECK(ursa_mpmc_new(&d.rx[0], &d.tx, 8, 4, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&d.rx[0], &d.rx[1]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&d.rx[0], &d.rx[2]) == 0);
    ursa_task_t *r[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (dw_arg_t){&d, i};
        r[i] = spawn_on(0, dw_receiver, &a[i], "rx");
    }
    ursa_task_t *t = spawn_on(0, dw_sender, &d, "tx");
    CHECK_OK(join_task(t));
    CHECK_OK(join_tasks(r, 3));
    URSA_SIM_CHECK(d.got[0] + d.got[1] + d.got[2] == 2);
    for (int i = 0; i < 3; i++) {
        URSA_SIM_CHECK(d.rc[i] == -EPIPE);
        URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&d.rx[i]) == 0);
    }
    return NULL;
}

TEST_EXPLORE(test_mpmc_last_sender_drop_wakes_every_receiver_over_seeds, drop_wakes_scenario, NULL)

/* The last receiver's drop hands every undelivered element to the
 * destructor exactly once; delivered ones never. */
static void *dtor_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 256; i++)
        atomic_store(&dtor_count[i], 0);
    ursa_mpmc_receiver_t rx, rx2;
    ursa_mpmc_sender_t tx;
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, cap, id_dtor), 0);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    uint64_t n = cap - 1, out;
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(ursa_mpmc_send(&tx, &i, URSA_NOW), 0);
    for (uint64_t i = 0; i < n / 2; i++)
        CHECK_EQ(ursa_mpmc_try_recv(i % 2 ? &rx : &rx2, &out), 0);
    ursa_mpmc_permit_t p = {0};
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0); /* not the last: nothing destroyed */
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&dtor_count[i]), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0); /* destroys the queued ones */
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&dtor_count[i]), i >= n / 2 ? 1 : 0);
    uint64_t late = 200;
    CHECK_EQ(ursa_mpmc_permit_send(&p, &late), -EPIPE); /* not taken */
    CHECK_EQ(ursa_mpmc_send(&tx, &late, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0); /* frees: nothing more destroyed */
    CHECK_EQ(atomic_load(&dtor_count[200]), 0);
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&dtor_count[i]), i >= n / 2 ? 1 : 0);

    /* last handle is a weak sender: a delivered message is never destroyed,
     * an undelivered one once, at the free */
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, cap, id_dtor), 0);
    uint64_t id = 250;
    CHECK_EQ(ursa_mpmc_send(&tx, &id, URSA_NOW), 0);
    id = 251;
    CHECK_EQ(ursa_mpmc_send(&tx, &id, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_close(&rx), 0);
    ursa_mpmc_weak_sender_t wk;
    CHECK_EQ(ursa_mpmc_sender_downgrade(&tx, &wk), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpmc_try_recv(&rx, &out), 0);
    CHECK_EQ(out, 250);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(atomic_load(&dtor_count[251]), 1);
    CHECK_EQ(ursa_mpmc_weak_drop(&wk), 0);
    CHECK_EQ(atomic_load(&dtor_count[250]), 0);
    CHECK_EQ(atomic_load(&dtor_count[251]), 1);
    return NULL;
}

static void test_mpmc_destructor_runs_for_undelivered_messages_only(void **state)
{
    (void)state;
    ASSERT_OK(dtor_body((void *)(uintptr_t)8));
    ASSERT_OK(dtor_body((void *)(uintptr_t)33));
    ASSERT_OK(dtor_body((void *)(uintptr_t)2));
}

/* Stress: the last receiver drops while producers send; every message is
 * either received or destroyed, exactly once; every send after the drop
 * fails with -EPIPE. */
#define RD_PROD 3

#define RD_IDS 4096

static atomic_int rd_seen[RD_PROD * RD_IDS];

static void rd_dtor(void *e)
{
    uint64_t id;
    memcpy(&id, e, sizeof id);
    atomic_fetch_add(&rd_seen[id], 1);
}

typedef struct rd {
    ursa_mpmc_sender_t tx[RD_PROD];
    atomic_int sent[RD_PROD];
} rd_t;

typedef struct rd_arg {
    rd_t *r;
    int id;
} rd_arg_t;

static void *rd_producer(void *arg)
{
    rd_arg_t *a = arg;
    for (uint64_t i = 0; i < RD_IDS; i++) {
        uint64_t v = (uint64_t)a->id * RD_IDS + i;
        int rc = ursa_mpmc_send(&a->r->tx[a->id], &v, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc)
            return (void *)failf("send %d", rc);
        atomic_fetch_add(&a->r->sent[a->id], 1);
    }
    (void)ursa_mpmc_sender_drop(&a->r->tx[a->id]);
    return NULL;
}

static void test_mpmc_last_receiver_drop_racing_producers_receives_or_destroys_each_once(void **state)
{
    (void)state;
    for (int round = 0; round < (int)test_scale(20); round++) {
        static rd_t r;
        static rd_arg_t a[RD_PROD];
        memset(&r, 0, sizeof r);
        for (int i = 0; i < RD_PROD * RD_IDS; i++)
            atomic_store(&rd_seen[i], 0);
        ursa_mpmc_receiver_t rx;
        assert_int_equal(new_with_senders(&rx, r.tx, RD_PROD, 8, 4, rd_dtor), 0);
        pthread_t th[RD_PROD];
        for (int i = 0; i < RD_PROD; i++) {
            a[i] = (rd_arg_t){&r, i};
            assert_int_equal(pthread_create(&th[i], NULL, rd_producer, &a[i]), 0);
        }
        uint64_t out;
        for (int i = 0; i < 50 + round * 13; i++) {
            assert_int_equal(ursa_mpmc_recv(&rx, &out, URSA_NEVER), 0);
            atomic_fetch_add(&rd_seen[out], 1);
        }
        assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
        for (int i = 0; i < RD_PROD; i++) {
            void *res;
            assert_int_equal(pthread_join(th[i], &res), 0);
            ASSERT_OK(res);
        }
        /* the last sender's drop freed the channel: all destroyed by now */
        for (int p = 0; p < RD_PROD; p++)
            for (int i = 0; i < RD_IDS; i++)
                assert_int_equal(atomic_load(&rd_seen[p * RD_IDS + i]),
                                 i < atomic_load(&r.sent[p]) ? 1 : 0);
    }
}

/* ====================================================================== */
/* recv_many                                                              */
/* ====================================================================== */

static void *recv_many_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    ursa_mpmc_receiver_t rx, rx2;
    static ursa_mpmc_sender_t tx, tx2;
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, cap, NULL), 0);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    uint64_t buf[16];
    uint64_t n = cap < 10 ? cap : 10;
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(ursa_mpmc_send(&tx, &i, URSA_NOW), 0);
    long first = n >= 4 ? 4 : 1;
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, (size_t)first, URSA_NOW), first);
    for (long i = 0; i < first; i++)
        CHECK_EQ(buf[i], i);
    if ((uint64_t)first < n) {
        CHECK_EQ(ursa_mpmc_recv_many(&rx2, buf, 16, URSA_NOW), (long)n - first);
        for (long i = 0; i < (long)n - first; i++)
            CHECK_EQ(buf[i], first + i);
    }
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, 8, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, 8, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    /* a wrapped run of published slots is taken in one claim */
    for (uint64_t i = 0; i < cap; i++)
        CHECK_EQ(ursa_mpmc_send(&tx, &i, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_recv_many(&rx2, buf, 16, URSA_NOW), (long)(cap < 16 ? cap : 16));
    for (uint64_t i = 0; i < (cap < 16 ? cap : 16); i++)
        CHECK_EQ(buf[i], i);
    while (ursa_mpmc_try_recv(&rx, buf) == 0) {
    }
    CHECK_EQ(ursa_mpmc_sender_clone(&tx, &tx2), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    ursa_task_t *t = spawn_on(0, many_sender, &tx2, "s");
    CHECK_OK(recv_many_until_end(&rx, &rx2));
    CHECK_OK(join_task(t));
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, 8, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    return NULL;
}

static void test_mpmc_recv_many_takes_what_is_there(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)16));
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)5));
    ASSERT_OK(test_run(1, recv_many_body, (void *)(uintptr_t)1));
    test_explore(recv_many_body, (void *)(uintptr_t)16);
    test_explore(recv_many_body, (void *)(uintptr_t)3);
}

TEST_MAIN(cmocka_unit_test(test_mpmc_rejects_bad_arguments_and_dropped_handles),
          cmocka_unit_test(test_mpmc_delivers_in_fifo_order_to_one_receiver),
          cmocka_unit_test(test_mpmc_small_channel_memory_is_exact),
          cmocka_unit_test(test_mpmc_weak_senders_receiver_clones_and_the_last_receiver_drop),
          cmocka_unit_test(test_mpmc_last_sender_drop_wakes_every_receiver_over_seeds),
          cmocka_unit_test(test_mpmc_destructor_runs_for_undelivered_messages_only),
          cmocka_unit_test(test_mpmc_last_receiver_drop_racing_producers_receives_or_destroys_each_once),
          cmocka_unit_test(test_mpmc_recv_many_takes_what_is_there))
