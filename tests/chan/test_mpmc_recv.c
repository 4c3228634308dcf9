/* mpmc receivers: the raw recv (woken, cancelled, its wake passed on to
 * a blocked thread, the end of stream), and a woken receiver task
 * cancelled or timed out before it runs (over seeds). */
#include "support.h"

#include <ursa/mpmc.h>

#include "task_checks.h"

#define CHAN mpmc
#include "mpxc_checks.h"

typedef struct rx_thread_arg {
    ursa_mpmc_receiver_t *rx;
    atomic_int started;
    int rc;
    uint64_t out;
} rx_thread_arg_t;

static void *rx_thread(void *arg)
{
    rx_thread_arg_t *a = arg;
    atomic_store(&a->started, 1);
    a->rc = ursa_mpmc_recv(a->rx, &a->out, URSA_NEVER);
    return NULL;
}

static void test_mpmc_raw_recv_woken_cancelled_passed_on_and_ended(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx, rx2;
    static raw_sender_t a;
    new_channel_check_raw_recv(&rx, &a);
    cw_t cw;
    ursa_wait_t w;
    uint64_t out = 0;
    pthread_t th;
    void *res;
    /* ready at start, but another receiver takes it: -EAGAIN, start again */
    assert_int_equal(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    assert_int_equal(ursa_mpmc_send(&a.tx, &out, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_fresh(&cw)), 0);
    assert_int_equal(ursa_mpmc_try_recv(&rx2, &out), 0);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EAGAIN);

    /* Woken, then cancelled: the wake goes to the next waiter (a plain
     * thread blocked in recv behind us in the FIFO). */
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_fresh(&cw)), -EINPROGRESS);
    static rx_thread_arg_t ta;
    ta.rx = &rx2;
    atomic_store(&ta.started, 0);
    ta.rc = 1;
    assert_int_equal(pthread_create(&th, NULL, rx_thread, &ta), 0);
    while (!atomic_load(&ta.started))
        sleep_real_ms(1);
    sleep_real_ms(20); /* let the thread queue behind w */
    out = 77;
    assert_int_equal(ursa_mpmc_send(&a.tx, &out, URSA_NOW), 0);
    assert_true(ursa_wait_ready(&w)); /* the oldest waiter got the wake */
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED); /* passes it on */
    assert_int_equal(pthread_join(th, &res), 0);
    assert_int_equal(ta.rc, 0);
    assert_int_equal(ta.out, 77);

    /* end of stream through the raw form, also for a start after it */
    check_raw_recv_ended_by_the_drop(&rx, &a);
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_fresh(&cw)), 0);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EPIPE);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx2), 0);
}

/* A receiver task woken by a send and cancelled before it runs: either it
 * takes the message (the grant won) or the wake reaches the receiver
 * queued behind it. Never both, never neither. (got: the deadline's
 * scenario, below.) */
typedef struct wc {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx;
    atomic_int queued;
    int rc[2];
    uint64_t out[2];
    int got;
} wc_t;

typedef struct wc_arg {
    wc_t *c;
    int id;
} wc_arg_t;

static void *wc_receiver(void *arg)
{
    wc_arg_t *a = arg;
    atomic_fetch_add(&a->c->queued, 1); /* no yield until recv blocks */
    a->c->rc[a->id] = ursa_mpmc_recv(&a->c->rx[a->id], &a->c->out[a->id], URSA_NEVER);
    return NULL;
}

/* A channel of u64 and capacity cap with two receivers: rx[0] and its
 * clone rx[1]. */
static void *new_two_receivers(ursa_mpmc_receiver_t rx[2], ursa_mpmc_sender_t *tx, uint64_t cap)
{
    URSA_SIM_CHECK(ursa_mpmc_new(&rx[0], tx, 8, cap, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&rx[0], &rx[1]) == 0);
    return NULL;
}

static void *drop_two_receivers(ursa_mpmc_receiver_t rx[2])
{
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&rx[1]) == 0);
    return NULL;
}

/* Resets c, makes its channel (capacity cap, two receivers) and spawns
 * fn on worker 0 once for each receiver as t[i] (its argument a[i] =
 * {c, i}); in_order: t[0] is queued (has counted itself, fn being
 * wc_receiver) before t[1] is spawned. */
static void *start_two_receivers(wc_t *c, wc_arg_t a[2], ursa_task_t *t[2], uint64_t cap,
                                 ursa_task_fn_t fn, bool in_order)
{
    memset(c, 0, sizeof *c);
    CHECK_OK(new_two_receivers(c->rx, &c->tx, cap));
    for (int i = 0; i < 2; i++) {
        a[i] = (wc_arg_t){c, i};
        t[i] = spawn_on(0, fn, &a[i], "rx");
        while (in_order && atomic_load(&c->queued) < i + 1)
            ursa_yield(); /* t[i] is queued once it has counted (one worker) */
    }
    return NULL;
}

static void *wc_scenario(void *arg)
{
    bool timeout = arg != NULL;
    static wc_t c;
    static wc_arg_t a[2];
    ursa_task_t *t[2];
    CHECK_OK(start_two_receivers(&c, a, t, 2, wc_receiver, true));
    uint64_t v = 5;
    URSA_SIM_CHECK(ursa_mpmc_send(&c.tx, &v, URSA_NOW) == 0); /* wakes t[0] */
    if (!timeout) {
        URSA_SIM_CHECK(ursa_task_cancel(t[0]) == 0);
    }
    CHECK_OK(join_task(t[0]));
    if (c.rc[0] == 0) {
        URSA_SIM_CHECK(c.out[0] == 5);
        URSA_SIM_CHECK(ursa_mpmc_sender_drop(&c.tx) == 0); /* t[1] ends */
        CHECK_OK(join_task(t[1]));
        URSA_SIM_CHECK(c.rc[1] == -EPIPE);
    } else {
        URSA_SIM_CHECK(c.rc[0] == -ECANCELED);
        CHECK_OK(join_task(t[1])); /* the wake was passed on */
        URSA_SIM_CHECK(c.rc[1] == 0);
        URSA_SIM_CHECK(c.out[1] == 5);
        URSA_SIM_CHECK(ursa_mpmc_sender_drop(&c.tx) == 0);
    }
    return drop_two_receivers(c.rx);
}

/* The same with a deadline: the woken receiver's timer fires first. */
static void *wt_receiver(void *arg)
{
    wc_arg_t *a = arg;
    wc_t *c = a->c;
    uint64_t out;
    for (;;) {
        int rc = ursa_mpmc_recv(&c->rx[a->id], &out,
                                a->id == 0 ? ursa_deadline_in(URSA_USEC(30)) : URSA_NEVER);
        if (rc == 0) {
            c->got++;
            continue;
        }
        if (rc == -ETIMEDOUT && a->id == 0)
            continue;
        c->rc[a->id] = rc;
        return NULL;
    }
}

static void *wt_sender(void *arg)
{
    wc_t *c = arg;
    for (uint64_t i = 0; i < 20; i++) {
        if (i % 3 == 0)
            ursa_sleep_for(URSA_USEC(10 * (i % 7)));
        if (ursa_mpmc_send(&c->tx, &i, URSA_NEVER))
            return (void *)"send";
    }
    (void)ursa_mpmc_sender_drop(&c->tx);
    return NULL;
}

static void *wt_scenario(void *arg)
{
    (void)arg;
    static wc_t c;
    static wc_arg_t a[2];
    ursa_task_t *t[2];
    CHECK_OK(start_two_receivers(&c, a, t, 1, wt_receiver, false));
    ursa_task_t *s = spawn_on(0, wt_sender, &c, "tx");
    CHECK_OK(join_task(s));
    CHECK_OK(join_task(t[0]));
    CHECK_OK(join_task(t[1]));
    URSA_SIM_CHECK(c.got == 20);
    URSA_SIM_CHECK(c.rc[0] == -EPIPE && c.rc[1] == -EPIPE);
    return drop_two_receivers(c.rx);
}

static void test_mpmc_woken_receiver_cancelled_or_timed_out_passes_the_wake_on_over_seeds(void **state)
{
    (void)state;
    test_explore(wc_scenario, NULL);
    test_explore(wt_scenario, NULL);
}

TEST_MAIN(cmocka_unit_test(test_mpmc_raw_recv_woken_cancelled_passed_on_and_ended),
          cmocka_unit_test(test_mpmc_woken_receiver_cancelled_or_timed_out_passes_the_wake_on_over_seeds))
