/* Tests for the mpmc channel (include/ursa/mpmc.h, src/chan/mpmc.c).
 *
 * Checks live in bodies that return NULL or a failure message (CHECK /
 * CHECK_EQ); cmocka asserts are made on the test's own stack. */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ursa/mpmc.h>

#include "chan_checks.h"
#include "close_hook.h"
#include "task_checks.h"
#include "uffd_hold.h"

URSA_MPMC_TYPED(u64q, uint64_t)

/* A waker on c with its count reset (each raw start below counts anew). */
static ursa_waker_t cw_reset_waker(cw_t *c)
{
    cw_init(c);
    return cw_waker(c);
}

/* ====================================================================== */
/* basics                                                                  */
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
    ursa_waker_t wk_fn = cw_reset_waker(&cw);
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

static void test_args(void **state)
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
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    CHECK_EQ(u64q_new(&rx, &tx, cap), 0);
    uint64_t out = 0;
    for (uint64_t i = 0; i < cap; i++)
        CHECK_EQ(u64q_try_send(&tx, i * 7), 0);
    CHECK_EQ(ursa_mpmc_len(rx.ch), cap);
    CHECK_EQ(u64q_try_send(&tx, 99), -EAGAIN);
    CHECK_EQ(u64q_send(&tx, 99, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    for (uint64_t i = 0; i < cap; i++) {
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, i * 7);
    }
    CHECK_EQ(ursa_mpmc_len(rx.ch), 0);
    CHECK_EQ(u64q_try_recv(&rx, &out), -EAGAIN);
    /* many laps through the ring, half full */
    uint64_t next_send = 0, next_recv = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        while (ursa_mpmc_len(rx.ch) < (cap + 1) / 2) {
            CHECK_EQ(u64q_send(&tx, next_send, URSA_NEVER), 0);
            next_send++;
        }
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, next_recv);
        next_recv++;
    }
    ursa_mpmc_permit_t p = {0};
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(u64q_permit_send(&p, 5), 0);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    while (next_recv < next_send) {
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, next_recv);
        next_recv++;
    }
    CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 5);
    CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(u64q_try_recv(&rx, &out), -EPIPE);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    return NULL;
}

static void test_fifo(void **state)
{
    (void)state;
    uint64_t caps[] = {1, 2, 3, 7, 64};
    for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        ASSERT_OK(fifo_body((void *)(uintptr_t)caps[i]));
        ASSERT_OK(test_run(1, fifo_body, (void *)(uintptr_t)caps[i]));
    }
}

static void test_memory(void **state)
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
/* permits, close                                                          */
/* ====================================================================== */

static void *permit_body(void *arg)
{
    (void)arg;
    ursa_mpmc_receiver_t rx, rx2;
    ursa_mpmc_sender_t tx;
    CHECK_EQ(ursa_mpmc_new(&rx, &tx, 8, 4, NULL), 0);
    CHECK_EQ(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    size_t h0 = ursa_held_count();
    ursa_mpmc_permit_t p = {0}, q = {0}, r = {0};
    uint64_t v = 5, out;
    CHECK_EQ(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_mpmc_reserve_many(&tx, 3, &q, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_reserve(&tx, &r, URSA_NOW), -EAGAIN); /* all 4 reserved */
    CHECK_EQ(ursa_mpmc_permit_send(&q, &v), 0);
    CHECK_EQ(q.n, 2);
    CHECK_EQ(ursa_mpmc_permit_release(&q), 0); /* returns 2 */
    CHECK_EQ(ursa_mpmc_reserve_many(&tx, 2, &r, URSA_NOW), 0);
    CHECK_EQ(ursa_mpmc_permit_release(&r), 0);
    CHECK_EQ(ursa_mpmc_try_recv(&rx2, &out), 0);
    CHECK_EQ(out, 5);
    /* close (from the second receiver) with a permit out: the late message
     * is delivered, then -EPIPE on every receiver */
    CHECK_EQ(ursa_mpmc_close(&rx2), 0);
    CHECK(ursa_mpmc_is_closed(rx.ch));
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpmc_reserve(&tx, &q, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_try_recv(&rx, &out), -EAGAIN); /* a permit is out */
    CHECK_EQ(ursa_mpmc_try_recv(&rx2, &out), -EAGAIN);
    v = 77;
    CHECK_EQ(ursa_mpmc_permit_send(&p, &v), 0);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_mpmc_try_recv(&rx, &out), 0);
    CHECK_EQ(out, 77);
    CHECK_EQ(ursa_mpmc_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpmc_recv(&rx2, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    return NULL;
}

static void test_permits_and_close(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(permit_body(NULL));
    ASSERT_OK(test_run(1, permit_body, NULL));
    /* double release is misuse: reported, -EINVAL */
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, 8, 2, NULL), 0);
    ursa_mpmc_permit_t p = {0};
    assert_int_equal(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_permit_release(&p), 0);
    assert_int_equal(ursa_mpmc_permit_release(&p), -EINVAL);
    assert_int_equal(test_leak_count(), 1);
    {
        URSA_SCOPED(mpmc_permit, sp);
        assert_int_equal(ursa_mpmc_reserve_many(&tx, 2, &sp, URSA_NOW), 0);
    }
    assert_int_equal(ursa_mpmc_reserve_many(&tx, 2, &p, URSA_NOW), 0); /* scope returned both */
    assert_int_equal(ursa_mpmc_permit_release(&p), 0);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    ursa_leak_set_hook(NULL, NULL);
}

/* Close with a permit held by another task: two blocked receivers; one
 * gets the late message, then both get -EPIPE. Deterministic, many seeds. */
typedef struct late {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx;
    atomic_int reserved;
    int got[2];
} late_t;

typedef struct late_rx_arg {
    late_t *l;
    int id;
} late_rx_arg_t;

static void *late_sender(void *arg)
{
    late_t *l = arg;
    ursa_mpmc_permit_t p = {0};
    int rc = ursa_mpmc_reserve(&l->tx, &p, URSA_NEVER);
    atomic_store(&l->reserved, rc == 0 ? 1 : 2);
    if (rc)
        return (void *)failf("reserve: %d", rc);
    ursa_yield();
    ursa_sleep_for(URSA_MSEC(1));
    uint64_t v = 42;
    URSA_SIM_CHECK(ursa_mpmc_permit_send(&p, &v) == 0);
    return NULL;
}

static void *late_receiver(void *arg)
{
    late_rx_arg_t *a = arg;
    uint64_t out = 0;
    int rc;
    while ((rc = ursa_mpmc_recv(&a->l->rx[a->id], &out, URSA_NEVER)) == 0) {
        URSA_SIM_CHECK(out == 42);
        a->l->got[a->id]++;
    }
    URSA_SIM_CHECK(rc == -EPIPE);
    return NULL;
}

static void *late_scenario(void *arg)
{
    late_t *l = arg;
    static late_rx_arg_t ra[2];
    URSA_SIM_CHECK(ursa_mpmc_new(&l->rx[0], &l->tx, 8, 1, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&l->rx[0], &l->rx[1]) == 0);
    atomic_store(&l->reserved, 0);
    l->got[0] = l->got[1] = 0;
    ursa_task_t *t = spawn_on(0, late_sender, l, "late");
    ursa_task_t *r[2];
    for (int i = 0; i < 2; i++) {
        ra[i] = (late_rx_arg_t){l, i};
        r[i] = spawn_on(0, late_receiver, &ra[i], "rx");
    }
    while (!atomic_load(&l->reserved))
        ursa_yield();
    URSA_SIM_CHECK(ursa_mpmc_close(&l->rx[1]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(&l->tx) == 0);
    CHECK_OK(join_task(t));
    CHECK_OK(join_task(r[0]));
    CHECK_OK(join_task(r[1]));
    URSA_SIM_CHECK(l->got[0] + l->got[1] == 1);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&l->rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&l->rx[1]) == 0);
    return NULL;
}

static void test_close_with_outstanding_permit(void **state)
{
    (void)state;
    static late_t l;
    test_explore(late_scenario, &l);
    ASSERT_OK(test_run(2, late_scenario, &l));
}

/* A cancelled reserve returns its slot and wakes the closed receivers that
 * wait for the last permit (raw reserve, granted but never finished). */
typedef struct cres {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx;
    atomic_int stage;
    int rc2[2];
} cres_t;

static void *cres_receiver(void *arg)
{
    cres_t *c = arg;
    uint64_t out = 0;
    URSA_SIM_CHECK(ursa_mpmc_recv(&c->rx[0], &out, URSA_NEVER) == 0); /* frees the slot */
    URSA_SIM_CHECK(out == 1);
    URSA_SIM_CHECK(ursa_mpmc_close(&c->rx[0]) == 0);
    atomic_store(&c->stage, 1);
    c->rc2[0] = ursa_mpmc_recv(&c->rx[0], &out, URSA_NEVER); /* waits for the raw reserve */
    atomic_fetch_add(&c->stage, 1);
    return NULL;
}

static void *cres_receiver2(void *arg)
{
    cres_t *c = arg;
    uint64_t out = 0;
    c->rc2[1] = ursa_mpmc_recv(&c->rx[1], &out, URSA_NEVER);
    atomic_fetch_add(&c->stage, 1);
    return NULL;
}

static void *cres_scenario(void *arg)
{
    cres_t *c = arg;
    URSA_SIM_CHECK(ursa_mpmc_new(&c->rx[0], &c->tx, 8, 1, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&c->rx[0], &c->rx[1]) == 0);
    atomic_store(&c->stage, 0);
    uint64_t v = 1;
    URSA_SIM_CHECK(ursa_mpmc_send(&c->tx, &v, URSA_NOW) == 0);
    cw_t cw;
    ursa_wait_t w;
    URSA_SIM_CHECK(ursa_mpmc_reserve_start(&c->tx, 1, &w, cw_reset_waker(&cw)) == -EINPROGRESS);
    ursa_task_t *t = spawn_on(0, cres_receiver, c, "rx");
    while (atomic_load(&c->stage) < 1)
        ursa_yield();
    ursa_task_t *t2 = spawn_on(0, cres_receiver2, c, "rx2"); /* after the message is taken */
    for (int i = 0; i < 5; i++)
        ursa_yield();
    URSA_SIM_CHECK(atomic_load(&c->stage) == 1); /* both still wait for the permit */
    URSA_SIM_CHECK(ursa_wait_ready(&w));         /* the freed slot went to us */
    URSA_SIM_CHECK(atomic_load(&cw.calls) == 1);
    URSA_SIM_CHECK(ursa_wait_cancel(&w) == -ECANCELED);
    CHECK_OK(join_task(t));
    CHECK_OK(join_task(t2));
    URSA_SIM_CHECK(c->rc2[0] == -EPIPE);
    URSA_SIM_CHECK(c->rc2[1] == -EPIPE);
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(&c->tx) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c->rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c->rx[1]) == 0);
    return NULL;
}

/* A blocking reserve cancelled by task cancel returns its slot, and wakes
 * a closed receiver waiting for it. */
static void *blocked_reserver(void *arg)
{
    cres_t *c = arg;
    ursa_mpmc_permit_t p = {0};
    ursa_mpmc_sender_t tx;
    if (ursa_mpmc_sender_clone(&c->tx, &tx))
        return (void *)(intptr_t)-1;
    atomic_store(&c->stage, 1);
    int rc = ursa_mpmc_reserve(&tx, &p, URSA_NEVER);
    if (rc == 0)
        (void)ursa_mpmc_permit_release(&p);
    (void)ursa_mpmc_sender_drop(&tx);
    return (void *)(intptr_t)rc;
}

static void *closed_waiter(void *arg)
{
    cres_t *c = arg;
    uint64_t out;
    c->rc2[1] = ursa_mpmc_recv(&c->rx[1], &out, URSA_NEVER);
    return NULL;
}

static void *cancel_scenario(void *arg)
{
    cres_t *c = arg;
    URSA_SIM_CHECK(ursa_mpmc_new(&c->rx[0], &c->tx, 8, 1, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&c->rx[0], &c->rx[1]) == 0);
    atomic_store(&c->stage, 0);
    c->rc2[1] = 1;
    uint64_t v = 1, out;
    URSA_SIM_CHECK(ursa_mpmc_send(&c->tx, &v, URSA_NOW) == 0);
    ursa_task_t *t = spawn_on(0, blocked_reserver, c, "res");
    while (!atomic_load(&c->stage))
        ursa_yield();
    ursa_yield();
    URSA_SIM_CHECK(ursa_mpmc_try_recv(&c->rx[0], &out) == 0); /* slot may go to the reserver */
    URSA_SIM_CHECK(ursa_mpmc_close(&c->rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(&c->tx) == 0);
    ursa_task_t *w = spawn_on(0, closed_waiter, c, "waiter");
    ursa_yield();
    URSA_SIM_CHECK(ursa_task_cancel(t) == 0);
    void *res = NULL;
    URSA_SIM_CHECK(ursa_task_join(t, &res, URSA_NEVER) == 0);
    int rc = (int)(intptr_t)res;
    URSA_SIM_CHECK(rc == 0 || rc == -ECANCELED || rc == -EPIPE);
    CHECK_OK(join_task(w)); /* woken by the last permit's end */
    URSA_SIM_CHECK(c->rc2[1] == -EPIPE);
    URSA_SIM_CHECK(ursa_mpmc_recv(&c->rx[0], &out, URSA_NEVER) == -EPIPE);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c->rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c->rx[1]) == 0);
    return NULL;
}

static void test_cancelled_reserve(void **state)
{
    (void)state;
    static cres_t c;
    test_explore(cres_scenario, &c);
    test_explore(cancel_scenario, &c);
    ASSERT_OK(test_run(2, cancel_scenario, &c));
}

/* ====================================================================== */
/* handles: sender drop, receiver drop, weak senders, destructor           */
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
    v = 9;
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_send(&tx, &v, URSA_NEVER), -EPIPE);
    CHECK_EQ(v, 9);
    CHECK_EQ(ursa_mpmc_permit_send(&p, &v), -EPIPE);
    CHECK(p.ch == NULL); /* discharged */
    CHECK_EQ(ursa_mpmc_sender_drop(&tx), 0);
    return NULL;
}

static void test_handles(void **state)
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
    for (int i = 0; i < 3; i++)
        CHECK_OK(join_task(r[i]));
    URSA_SIM_CHECK(d.got[0] + d.got[1] + d.got[2] == 2);
    for (int i = 0; i < 3; i++) {
        URSA_SIM_CHECK(d.rc[i] == -EPIPE);
        URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&d.rx[i]) == 0);
    }
    return NULL;
}

static void test_sender_drop_wakes(void **state)
{
    (void)state;
    test_explore(drop_wakes_scenario, NULL);
}

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

static void test_destructor(void **state)
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

static void test_receiver_drop_race(void **state)
{
    (void)state;
    for (int round = 0; round < (int)test_scale(20); round++) {
        static rd_t r;
        static rd_arg_t a[RD_PROD];
        memset(&r, 0, sizeof r);
        for (int i = 0; i < RD_PROD * RD_IDS; i++)
            atomic_store(&rd_seen[i], 0);
        ursa_mpmc_receiver_t rx;
        assert_int_equal(ursa_mpmc_new(&rx, &r.tx[0], 8, 4, rd_dtor), 0);
        for (int i = 1; i < RD_PROD; i++)
            assert_int_equal(ursa_mpmc_sender_clone(&r.tx[0], &r.tx[i]), 0);
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
/* leaked permit                                                           */
/* ====================================================================== */

static int leak_line;

static void *leaker(void *arg)
{
    ursa_mpmc_sender_t *tx = arg;
    static ursa_mpmc_permit_t kept;
    memset(&kept, 0, sizeof kept);
    leak_line = __LINE__ + 1;
    if (ursa_mpmc_reserve_many(tx, 3, &kept, URSA_NEVER) != 0)
        return (void *)"reserve failed";
    uint64_t v = 1;
    if (ursa_mpmc_permit_send(&kept, &v) != 0)
        return (void *)"send failed";
    return NULL; /* ends holding 2 slots */
}

static void *leak_root(void *arg)
{
    return join_task(spawn_on(1, leaker, arg, "leaker"));
}

static void test_leaked_permit(void **state)
{
    (void)state;
    test_capture_leaks();
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, 8, 3, NULL), 0);
    ASSERT_OK(test_run(2, leak_root, &tx));
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "mpmc send permit");
    assert_string_equal(test_leaks.owner, "leaker");
    assert_int_equal(test_leaks.line, leak_line);
    /* 1 message queued + 2 slots returned = 2 free */
    ursa_mpmc_permit_t p = {0};
    assert_int_equal(ursa_mpmc_reserve_many(&tx, 3, &p, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_mpmc_reserve_many(&tx, 2, &p, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_permit_release(&p), 0);
    /* the leaked permit no longer counts: a closed receiver ends */
    uint64_t out;
    assert_int_equal(ursa_mpmc_close(&rx), 0);
    assert_int_equal(ursa_mpmc_recv(&rx, &out, URSA_NEVER), 0);
    assert_int_equal(ursa_mpmc_recv(&rx, &out, URSA_NEVER), -EPIPE);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    ursa_leak_set_hook(NULL, NULL);
}

/* ====================================================================== */
/* recv_many, raw recv, pass-on of a wake                                  */
/* ====================================================================== */

static void *many_sender(void *arg)
{
    ursa_mpmc_sender_t *tx = arg;
    ursa_sleep_for(URSA_MSEC(1));
    for (uint64_t i = 100; i < 103; i++)
        if (ursa_mpmc_send(tx, &i, URSA_NEVER))
            return (void *)"send";
    (void)ursa_mpmc_sender_drop(tx);
    return NULL;
}

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
    uint64_t got = 0, sum = 0;
    for (;;) {
        long k = ursa_mpmc_recv_many(got % 2 ? &rx : &rx2, buf, 8, URSA_NEVER);
        if (k == -EPIPE)
            break;
        CHECK(k >= 1);
        for (long i = 0; i < k; i++) {
            CHECK_EQ(buf[i], 100 + got + (uint64_t)i);
            sum += buf[i];
        }
        got += (uint64_t)k;
    }
    CHECK_EQ(got, 3);
    CHECK_EQ(sum, 303);
    CHECK_OK(join_task(t));
    CHECK_EQ(ursa_mpmc_recv_many(&rx, buf, 8, URSA_NOW), -EPIPE);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpmc_receiver_drop(&rx2), 0);
    return NULL;
}

static void test_recv_many(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)16));
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)5));
    ASSERT_OK(test_run(1, recv_many_body, (void *)(uintptr_t)1));
    test_explore(recv_many_body, (void *)(uintptr_t)16);
    test_explore(recv_many_body, (void *)(uintptr_t)3);
}

typedef struct rawarg {
    ursa_mpmc_sender_t tx;
    int delay_ms;
} rawarg_t;

static void *raw_sender_thread(void *arg)
{
    rawarg_t *a = arg;
    sleep_real_ms(a->delay_ms);
    uint64_t v = 1234;
    if (ursa_mpmc_send(&a->tx, &v, URSA_NEVER))
        return (void *)"send";
    return NULL;
}

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

static void test_raw_recv(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx, rx2;
    static rawarg_t a;
    assert_int_equal(ursa_mpmc_new(&rx, &a.tx, 8, 2, NULL), 0);
    a.delay_ms = 5;
    cw_t cw;
    ursa_wait_t w;
    uint64_t out = 0;
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EAGAIN);
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, raw_sender_thread, &a), 0);
    while (!ursa_wait_ready(&w))
        sleep_real_ms(1);
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), 0);
    assert_int_equal(out, 1234);
    assert_int_equal(pthread_join(th, &res), 0);
    ASSERT_OK(res);
    /* cancelled raw recv: nothing consumed, no waker call */
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_mpmc_send(&a.tx, &out, URSA_NOW), 0);
    assert_int_equal(atomic_load(&cw.calls), 0);
    /* ready at start */
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), 0);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), 0);
    /* ready at start, but another receiver takes it: -EAGAIN, start again */
    assert_int_equal(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    assert_int_equal(ursa_mpmc_send(&a.tx, &out, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), 0);
    assert_int_equal(ursa_mpmc_try_recv(&rx2, &out), 0);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EAGAIN);

    /* Woken, then cancelled: the wake goes to the next waiter (a plain
     * thread blocked in recv behind us in the FIFO). */
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), -EINPROGRESS);
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

    /* end of stream through the raw form */
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_mpmc_sender_drop(&a.tx), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EPIPE);
    assert_int_equal(ursa_mpmc_recv_start(&rx, &w, cw_reset_waker(&cw)), 0);
    assert_int_equal(ursa_mpmc_recv_finish(&rx, &w, &out), -EPIPE);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx2), 0);
}

/* Raw reserve from a foreign loop. */
static void test_raw_reserve(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, 8, 1, NULL), 0);
    cw_t cw;
    ursa_wait_t w;
    ursa_mpmc_permit_t p = {0};
    uint64_t v = 3, out;
    assert_int_equal(ursa_mpmc_reserve_start(&tx, 1, &w, cw_reset_waker(&cw)), 0);
    assert_int_equal(ursa_mpmc_reserve_finish(&tx, &w, &p), 0);
    assert_int_equal(ursa_mpmc_reserve_start(&tx, 1, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_mpmc_permit_send(&p, &v), 0);
    assert_int_equal(ursa_mpmc_reserve_finish(&tx, &w, &p), -EAGAIN);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &out), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_int_equal(ursa_mpmc_reserve_finish(&tx, &w, &p), 0);
    assert_int_equal(ursa_mpmc_permit_release(&p), 0);
    /* cancelled while queued: the slot is not lost */
    assert_int_equal(ursa_mpmc_send(&tx, &v, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_reserve_start(&tx, 1, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &out), 0);
    assert_int_equal(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_permit_release(&p), 0);
    /* closed while queued */
    assert_int_equal(ursa_mpmc_send(&tx, &v, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_reserve_start(&tx, 1, &w, cw_reset_waker(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_mpmc_close(&rx), 0);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &out), 0);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &out), -EAGAIN); /* the raw reserve counts */
    assert_int_equal(ursa_mpmc_reserve_finish(&tx, &w, &p), -EPIPE);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &out), -EPIPE);
    assert_int_equal(ursa_mpmc_reserve_start(&tx, 1, &w, cw_reset_waker(&cw)), -EPIPE);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
}

/* A receiver task woken by a send and cancelled before it runs: either it
 * takes the message (the grant won) or the wake reaches the receiver
 * queued behind it. Never both, never neither. */
typedef struct wc {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx;
    atomic_int queued;
    int rc[2];
    uint64_t out[2];
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

static void *wc_scenario(void *arg)
{
    bool timeout = arg != NULL;
    static wc_t c;
    static wc_arg_t a[2];
    memset(&c, 0, sizeof c);
    URSA_SIM_CHECK(ursa_mpmc_new(&c.rx[0], &c.tx, 8, 2, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&c.rx[0], &c.rx[1]) == 0);
    ursa_task_t *t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (wc_arg_t){&c, i};
        t[i] = spawn_on(0, wc_receiver, &a[i], "rx");
        while (atomic_load(&c.queued) < i + 1)
            ursa_yield(); /* t[i] is queued once it has counted (one worker) */
    }
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
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c.rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c.rx[1]) == 0);
    return NULL;
}

/* The same with a deadline: the woken receiver's timer fires first. */
typedef struct wt {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx;
    int rc[2];
    int got;
} wt_t;

static void *wt_receiver(void *arg)
{
    wc_arg_t *a = arg;
    wt_t *c = (wt_t *)a->c;
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
    wt_t *c = arg;
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
    static wt_t c;
    static wc_arg_t a[2];
    memset(&c, 0, sizeof c);
    URSA_SIM_CHECK(ursa_mpmc_new(&c.rx[0], &c.tx, 8, 1, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&c.rx[0], &c.rx[1]) == 0);
    ursa_task_t *t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (wc_arg_t){(wc_t *)&c, i};
        t[i] = spawn_on(0, wt_receiver, &a[i], "rx");
    }
    ursa_task_t *s = spawn_on(0, wt_sender, &c, "tx");
    CHECK_OK(join_task(s));
    CHECK_OK(join_task(t[0]));
    CHECK_OK(join_task(t[1]));
    URSA_SIM_CHECK(c.got == 20);
    URSA_SIM_CHECK(c.rc[0] == -EPIPE && c.rc[1] == -EPIPE);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c.rx[0]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&c.rx[1]) == 0);
    return NULL;
}

static void test_woken_then_cancelled(void **state)
{
    (void)state;
    test_explore(wc_scenario, NULL);
    test_explore(wt_scenario, NULL);
}

/* ====================================================================== */
/* deterministic exploration: producers x receivers, with cancels          */
/* ====================================================================== */

#define EX_PROD 3
#define EX_RECV 3
#define EX_PER 6

typedef struct ex {
    ursa_mpmc_sender_t tx[EX_PROD];
    ursa_mpmc_receiver_t rx[EX_RECV];
    uint64_t cap;
    int seen[EX_PROD][EX_PER];
} ex_t;

typedef struct ex_arg {
    ex_t *e;
    uint64_t id;
} ex_arg_t;

static void *ex_producer(void *arg)
{
    ex_arg_t *a = arg;
    ursa_mpmc_sender_t *tx = &a->e->tx[a->id];
    for (uint64_t i = 0; i < EX_PER; i++) {
        uint64_t v = a->id << 32 | i;
        if (i % 3 == 1) {
            ursa_mpmc_permit_t p = {0};
            URSA_SIM_CHECK(ursa_mpmc_reserve(tx, &p, URSA_NEVER) == 0);
            ursa_yield();
            URSA_SIM_CHECK(ursa_mpmc_permit_send(&p, &v) == 0);
        } else if (i % 3 == 2) {
            /* short deadlines: a reserve that times out gives its place up */
            int rc;
            while ((rc = ursa_mpmc_send(tx, &v, ursa_deadline_in(URSA_USEC(5)))) == -ETIMEDOUT)
                ursa_yield();
            URSA_SIM_CHECK(rc == 0);
        } else {
            URSA_SIM_CHECK(ursa_mpmc_send(tx, &v, URSA_NEVER) == 0);
        }
    }
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(tx) == 0);
    return NULL;
}

static const char *ex_take(ex_t *e, uint64_t v, uint64_t *last)
{
    uint64_t id = v >> 32, seq = v & 0xffffffff;
    if (id >= EX_PROD || seq >= EX_PER)
        return failf("bad message %llx", (unsigned long long)v);
    if (e->seen[id][seq]++)
        return failf("duplicate %llx", (unsigned long long)v);
    if (last[id] != UINT64_MAX && seq <= last[id])
        return failf("producer %llu out of order", (unsigned long long)id);
    last[id] = seq;
    return NULL;
}

/* Receiver 0: recv with short deadlines; 1: recv_many; 2: recv, and gets
 * cancelled by the root at some point. */
static void *ex_receiver(void *arg)
{
    ex_arg_t *a = arg;
    ex_t *e = a->e;
    uint64_t last[EX_PROD], buf[4];
    for (int i = 0; i < EX_PROD; i++)
        last[i] = UINT64_MAX;
    for (;;) {
        long k;
        if (a->id == 1) {
            k = ursa_mpmc_recv_many(&e->rx[1], buf, 4, URSA_NEVER);
        } else {
            ursa_time_t dl = a->id == 0 ? ursa_deadline_in(URSA_USEC(7)) : URSA_NEVER;
            int rc = ursa_mpmc_recv(&e->rx[a->id], buf, dl);
            k = rc == 0 ? 1 : rc;
        }
        if (k == -ETIMEDOUT)
            continue;
        if (k == -ECANCELED && a->id == 2)
            return NULL;
        if (k == -EPIPE)
            return NULL;
        URSA_SIM_CHECK(k >= 1);
        for (long j = 0; j < k; j++)
            CHECK_OK(ex_take(e, buf[j], last));
    }
}

static void *ex_scenario(void *arg)
{
    static ex_t e;
    static ex_arg_t pa[EX_PROD], ra[EX_RECV];
    memset(&e, 0, sizeof e);
    e.cap = (uint64_t)(uintptr_t)arg;
    URSA_SIM_CHECK(ursa_mpmc_new(&e.rx[0], &e.tx[0], 8, e.cap, NULL) == 0);
    for (int i = 1; i < EX_PROD; i++)
        URSA_SIM_CHECK(ursa_mpmc_sender_clone(&e.tx[0], &e.tx[i]) == 0);
    for (int i = 1; i < EX_RECV; i++)
        URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&e.rx[0], &e.rx[i]) == 0);
    ursa_task_t *rt[EX_RECV], *pt[EX_PROD];
    for (int i = 0; i < EX_RECV; i++) {
        ra[i] = (ex_arg_t){&e, (uint64_t)i};
        rt[i] = spawn_on(0, ex_receiver, &ra[i], "rx");
    }
    for (int i = 0; i < EX_PROD; i++) {
        pa[i] = (ex_arg_t){&e, (uint64_t)i};
        pt[i] = spawn_on(0, ex_producer, &pa[i], "tx");
    }
    for (int i = 0; i < 4; i++)
        ursa_yield();
    URSA_SIM_CHECK(ursa_task_cancel(rt[2]) == 0);
    for (int i = 0; i < EX_PROD; i++)
        CHECK_OK(join_task(pt[i]));
    for (int i = 0; i < EX_RECV; i++)
        CHECK_OK(join_task(rt[i]));
    for (int p = 0; p < EX_PROD; p++)
        for (int i = 0; i < EX_PER; i++)
            URSA_SIM_CHECK(e.seen[p][i] == 1);
    for (int i = 0; i < EX_RECV; i++)
        URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&e.rx[i]) == 0);
    return NULL;
}

static void test_explore_mpmc(void **state)
{
    (void)state;
    test_explore(ex_scenario, (void *)(uintptr_t)1);
    test_explore(ex_scenario, (void *)(uintptr_t)2);
    test_explore(ex_scenario, (void *)(uintptr_t)5);
}

/* ====================================================================== */
/* stress: producer threads and tasks, receiver threads and tasks          */
/* ====================================================================== */

#define ST_PTHREADS 4
#define ST_PTASKS 2
#define ST_RTHREADS 3
#define ST_RTASKS 2
#define ST_PROD (ST_PTHREADS + ST_PTASKS)
#define ST_RECV (ST_RTHREADS + ST_RTASKS)

typedef struct st {
    ursa_mpmc_sender_t tx[ST_PROD];
    ursa_mpmc_receiver_t rx[ST_RECV];
    uint64_t per, cap;
    atomic_ullong total, sum;
} st_t;

typedef struct st_arg {
    st_t *s;
    uint64_t id;
} st_arg_t;

static void *st_producer(void *arg)
{
    st_arg_t *a = arg;
    st_t *s = a->s;
    ursa_mpmc_sender_t *tx = &s->tx[a->id];
    for (uint64_t i = 0; i < s->per; i++) {
        uint64_t v = a->id << 40 | i;
        int rc;
        if (i % 3 == 0) {
            ursa_mpmc_permit_t p = {0};
            rc = ursa_mpmc_reserve(tx, &p, URSA_NEVER);
            if (rc == 0)
                rc = ursa_mpmc_permit_send(&p, &v);
        } else if (i % 7 == 1 && s->cap >= 2 && i + 1 < s->per) {
            ursa_mpmc_permit_t p = {0};
            rc = ursa_mpmc_reserve_many(tx, 2, &p, URSA_NEVER);
            if (rc == 0)
                rc = ursa_mpmc_permit_send(&p, &v);
            v++;
            i++;
            if (rc == 0)
                rc = ursa_mpmc_permit_send(&p, &v);
        } else if (i % 11 == 5) {
            while ((rc = ursa_mpmc_send(tx, &v, ursa_deadline_in(URSA_USEC(20)))) == -ETIMEDOUT) {
            }
        } else {
            rc = ursa_mpmc_send(tx, &v, URSA_NEVER);
        }
        if (rc)
            return (void *)failf("producer %llu send %llu: %d", (unsigned long long)a->id,
                                 (unsigned long long)i, rc);
    }
    (void)ursa_mpmc_sender_drop(tx);
    return NULL;
}

static void *st_consumer(void *arg)
{
    st_arg_t *a = arg;
    st_t *s = a->s;
    ursa_mpmc_receiver_t *rx = &s->rx[a->id];
    uint64_t last[ST_PROD], total = 0, sum = 0, buf[16];
    for (int i = 0; i < ST_PROD; i++)
        last[i] = UINT64_MAX;
    for (uint64_t round = 0;; round++) {
        long k;
        switch (round % 4) {
        case 0:
            k = ursa_mpmc_recv_many(rx, buf, 16, URSA_NEVER);
            break;
        case 1: {
            int rc = ursa_mpmc_recv(rx, buf, ursa_deadline_in(URSA_USEC(50)));
            k = rc == 0 ? 1 : rc;
            break;
        }
        case 2: {
            int rc = ursa_mpmc_try_recv(rx, buf);
            k = rc == 0 ? 1 : rc;
            break;
        }
        default: {
            int rc = ursa_mpmc_recv(rx, buf, URSA_NEVER);
            k = rc == 0 ? 1 : rc;
        }
        }
        if (k == -EPIPE)
            break;
        if (k == -EAGAIN || k == -ETIMEDOUT)
            continue;
        if (k < 1)
            return (void *)failf("recv: %ld", k);
        for (long j = 0; j < k; j++) {
            uint64_t id = buf[j] >> 40, seq = buf[j] & ((1ULL << 40) - 1);
            if (id >= ST_PROD || (last[id] != UINT64_MAX && seq <= last[id]))
                return (void *)failf("order: producer %llu got %llu after %llu",
                                     (unsigned long long)id, (unsigned long long)seq,
                                     (unsigned long long)(id < ST_PROD ? last[id] : 0));
            last[id] = seq;
            sum += mix(buf[j]);
        }
        total += (uint64_t)k;
    }
    atomic_fetch_add(&s->total, total);
    atomic_fetch_add(&s->sum, sum);
    return NULL;
}

static void *st_root(void *arg)
{
    st_t *s = arg;
    static st_arg_t pa[ST_PROD], ra[ST_RECV];
    ursa_task_t *pt[ST_PTASKS], *rt[ST_RTASKS];
    pthread_t pth[ST_PTHREADS], rth[ST_RTHREADS];
    for (uint64_t i = 0; i < ST_PROD; i++)
        pa[i] = (st_arg_t){s, i};
    for (uint64_t i = 0; i < ST_RECV; i++)
        ra[i] = (st_arg_t){s, i};
    for (int i = 0; i < ST_RTASKS; i++)
        rt[i] = spawn_on(i % 2, st_consumer, &ra[ST_RTHREADS + i], "cons");
    for (int i = 0; i < ST_PTASKS; i++)
        pt[i] = spawn_on(i % 2, st_producer, &pa[ST_PTHREADS + i], "prod");
    for (int i = 0; i < ST_RTHREADS; i++)
        if (pthread_create(&rth[i], NULL, st_consumer, &ra[i]))
            return (void *)"pthread_create";
    for (int i = 0; i < ST_PTHREADS; i++)
        if (pthread_create(&pth[i], NULL, st_producer, &pa[i]))
            return (void *)"pthread_create";
    void *res = NULL;
    for (int i = 0; i < ST_PTASKS; i++) {
        void *r = join_task(pt[i]);
        if (!res)
            res = r;
    }
    /* receiver tasks end at -EPIPE, i.e. after every producer thread */
    for (int i = 0; i < ST_RTASKS; i++) {
        void *r = join_task(rt[i]);
        if (!res)
            res = r;
    }
    for (int i = 0; i < ST_PTHREADS; i++) {
        void *r = NULL;
        pthread_join(pth[i], &r);
        if (!res)
            res = r;
    }
    for (int i = 0; i < ST_RTHREADS; i++) {
        void *r = NULL;
        pthread_join(rth[i], &r);
        if (!res)
            res = r;
    }
    return res;
}

static void run_stress(uint64_t cap, long per)
{
    static st_t s;
    memset(&s, 0, sizeof s);
    s.per = (uint64_t)test_scale(per);
    s.cap = cap;
    assert_int_equal(ursa_mpmc_new(&s.rx[0], &s.tx[0], 8, cap, NULL), 0);
    for (int i = 1; i < ST_PROD; i++)
        assert_int_equal(ursa_mpmc_sender_clone(&s.tx[0], &s.tx[i]), 0);
    for (int i = 1; i < ST_RECV; i++)
        assert_int_equal(ursa_mpmc_receiver_clone(&s.rx[0], &s.rx[i]), 0);
    ASSERT_OK(test_run(2, st_root, &s));
    uint64_t want = 0;
    for (uint64_t id = 0; id < ST_PROD; id++)
        for (uint64_t i = 0; i < s.per; i++)
            want += mix(id << 40 | i);
    assert_int_equal(atomic_load(&s.total), ST_PROD * s.per);
    assert_true(atomic_load(&s.sum) == want);
    for (int i = 0; i < ST_RECV; i++)
        assert_int_equal(ursa_mpmc_receiver_drop(&s.rx[i]), 0);
}

static void test_stress(void **state)
{
    (void)state;
    run_stress(1, 3000);
    run_stress(8, 10000);
    run_stress(1024, 10000);
}

/* No lost wake: receiver threads sleep on an empty channel, then producer
 * threads send one message each at the same moment (positions published
 * out of order). Each receiver takes one message per round and then waits
 * for the round to end, so a message left sitting while a receiver sleeps
 * (a wake lost on the way) shows as a round that never completes. */
#define LW_N 4

typedef struct lw {
    ursa_mpmc_sender_t tx[LW_N];
    ursa_mpmc_receiver_t rx[LW_N];
    pthread_barrier_t go, done;
    atomic_long got;
    long rounds;
    size_t esz; /* big elements: a long copy between claim and publish */
    unsigned char *in[LW_N], *out[LW_N];
} lw_t;

typedef struct lw_arg {
    lw_t *l;
    int id;
} lw_arg_t;

static void *lw_receiver(void *arg)
{
    lw_arg_t *a = arg;
    for (long r = 0; r < a->l->rounds; r++) {
        pthread_barrier_wait(&a->l->go);
        int rc = ursa_mpmc_recv(&a->l->rx[a->id], a->l->out[a->id], URSA_NEVER);
        if (rc)
            return (void *)failf("recv %d", rc);
        atomic_fetch_add(&a->l->got, 1);
        pthread_barrier_wait(&a->l->done);
    }
    return NULL;
}

static void *lw_producer(void *arg)
{
    lw_arg_t *a = arg;
    for (long r = 0; r < a->l->rounds; r++) {
        pthread_barrier_wait(&a->l->go);
        if (r % 4 == 0)
            sleep_real_ms(1); /* let the receivers fall asleep first */
        memcpy(a->l->in[a->id], &r, sizeof r);
        if (ursa_mpmc_send(&a->l->tx[a->id], a->l->in[a->id], URSA_NEVER))
            return (void *)"send";
        pthread_barrier_wait(&a->l->done);
    }
    (void)ursa_mpmc_sender_drop(&a->l->tx[a->id]);
    return NULL;
}

static void test_no_lost_wake(void **state)
{
    (void)state;
    for (int run = 0; run < 3; run++) {
        uint64_t cap = run == 1 ? 8 : 4;
        static lw_t l;
        static lw_arg_t ra[LW_N], pa[LW_N];
        memset(&l, 0, sizeof l);
        l.rounds = test_scale(run == 2 ? 200 : 400);
        l.esz = run == 2 ? 256 * 1024 : 8;
        for (int i = 0; i < LW_N; i++) {
            l.in[i] = calloc(1, l.esz);
            l.out[i] = calloc(1, l.esz);
            assert_non_null(l.in[i]);
            assert_non_null(l.out[i]);
        }
        assert_int_equal(pthread_barrier_init(&l.go, NULL, 2 * LW_N + 1), 0);
        assert_int_equal(pthread_barrier_init(&l.done, NULL, 2 * LW_N + 1), 0);
        assert_int_equal(ursa_mpmc_new(&l.rx[0], &l.tx[0], l.esz, cap, NULL), 0);
        for (int i = 1; i < LW_N; i++) {
            assert_int_equal(ursa_mpmc_sender_clone(&l.tx[0], &l.tx[i]), 0);
            assert_int_equal(ursa_mpmc_receiver_clone(&l.rx[0], &l.rx[i]), 0);
        }
        pthread_t rth[LW_N], pth[LW_N];
        for (int i = 0; i < LW_N; i++) {
            ra[i] = (lw_arg_t){&l, i};
            pa[i] = (lw_arg_t){&l, i};
            assert_int_equal(pthread_create(&rth[i], NULL, lw_receiver, &ra[i]), 0);
            assert_int_equal(pthread_create(&pth[i], NULL, lw_producer, &pa[i]), 0);
        }
        for (long r = 0; r < l.rounds; r++) {
            pthread_barrier_wait(&l.go);
            ursa_time_t give_up = mono_ns() + URSA_SEC(10);
            while (atomic_load(&l.got) < (r + 1) * LW_N) {
                if (mono_ns() > give_up)
                    fail_msg("round %ld: %ld of %ld messages taken, the rest sit in the queue",
                             r, atomic_load(&l.got), (r + 1) * LW_N);
                sched_yield();
            }
            pthread_barrier_wait(&l.done);
        }
        for (int i = 0; i < LW_N; i++) {
            void *res;
            assert_int_equal(pthread_join(pth[i], &res), 0);
            ASSERT_OK(res);
            assert_int_equal(pthread_join(rth[i], &res), 0);
            ASSERT_OK(res);
        }
        for (int i = 0; i < LW_N; i++) {
            assert_int_equal(ursa_mpmc_try_recv(&l.rx[i], l.out[i]), -EPIPE);
            assert_int_equal(ursa_mpmc_receiver_drop(&l.rx[i]), 0);
            free(l.in[i]);
            free(l.out[i]);
        }
        pthread_barrier_destroy(&l.go);
        pthread_barrier_destroy(&l.done);
    }
}

/* The same, made deterministic: a sender is held between its claim of
 * position p and its publication by a page fault (userfaultfd on the
 * value it copies), while position p+1 is published. The wake of p+1 goes
 * to receiver R1, which finds p unpublished and sleeps again (behind R2).
 * When p is published its wake goes to R2; R1 must then be woken for p+1
 * by R2's claim (the chain wake), or p+1 sits while R1 sleeps. */
typedef struct uf {
    ursa_mpmc_sender_t tx[2];
    ursa_mpmc_receiver_t rx[2];
    atomic_int started[2], got[2];
    unsigned char *page;
    int rc[2];
} uf_t;

typedef struct uf_arg {
    uf_t *u;
    int id;
} uf_arg_t;

static void *uf_receiver(void *arg)
{
    uf_arg_t *a = arg;
    uint64_t v;
    atomic_store(&a->u->started[a->id], 1);
    a->u->rc[a->id] = ursa_mpmc_recv(&a->u->rx[a->id], &v, URSA_NEVER);
    if (a->u->rc[a->id] == 0)
        atomic_store(&a->u->got[a->id], 1);
    return NULL;
}

static void *uf_stalled_sender(void *arg)
{
    uf_t *u = arg;
    /* the copy from u->page faults and waits for the test to resolve it */
    return ursa_mpmc_send(&u->tx[0], u->page, URSA_NEVER) ? (void *)"send" : NULL;
}

static void test_out_of_order_publish(void **state)
{
    (void)state;
    uffd_hold_t hold = {0};
    if (!uffd_hold_open(&hold))
        skip();
    static uf_t u;
    static uf_arg_t ra[2];
    memset(&u, 0, sizeof u);
    u.page = hold.page;

    assert_int_equal(ursa_mpmc_new(&u.rx[0], &u.tx[0], 8, 4, NULL), 0);
    assert_int_equal(ursa_mpmc_sender_clone(&u.tx[0], &u.tx[1]), 0);
    assert_int_equal(ursa_mpmc_receiver_clone(&u.rx[0], &u.rx[1]), 0);
    pthread_t r[2], s;
    for (int i = 0; i < 2; i++) { /* R1 queues first, then R2 */
        ra[i] = (uf_arg_t){&u, i};
        assert_int_equal(pthread_create(&r[i], NULL, uf_receiver, &ra[i]), 0);
        while (!atomic_load(&u.started[i]))
            sleep_real_ms(1);
        sleep_real_ms(20);
    }
    assert_int_equal(pthread_create(&s, NULL, uf_stalled_sender, &u), 0);
    uffd_hold_wait_fault(&hold); /* the sender is inside its copy */
    uint64_t v = 2;
    assert_int_equal(ursa_mpmc_send(&u.tx[1], &v, URSA_NOW), 0); /* p+1, published first */
    sleep_real_ms(50); /* R1 wakes, finds p unpublished, sleeps again */
    assert_int_equal(atomic_load(&u.got[0]) + atomic_load(&u.got[1]), 0);
    /* resolve the fault: the stalled sender publishes p */
    uffd_hold_release(&hold, 1);
    void *res;
    assert_int_equal(pthread_join(s, &res), 0);
    ASSERT_OK(res);
    ursa_time_t give_up = mono_ns() + URSA_SEC(5);
    while (atomic_load(&u.got[0]) + atomic_load(&u.got[1]) < 2 && mono_ns() < give_up)
        sleep_real_ms(1);
    int got = atomic_load(&u.got[0]) + atomic_load(&u.got[1]);
    /* end the stream either way, so that the threads can be joined */
    assert_int_equal(ursa_mpmc_sender_drop(&u.tx[0]), 0);
    assert_int_equal(ursa_mpmc_sender_drop(&u.tx[1]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(r[i], &res), 0);
    assert_int_equal(got, 2); /* both taken while the stream was open */
    assert_int_equal(u.rc[0], 0);
    assert_int_equal(u.rc[1], 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ursa_mpmc_receiver_drop(&u.rx[i]), 0);
    uffd_hold_close(&hold);
}

/* Close races: producers keep sending while a receiver closes; every
 * message sent successfully is received once, the rest fail with -EPIPE. */
typedef struct cr {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx[4];
    atomic_ullong sent_ok, got;
} cr_t;

typedef struct cr_arg {
    cr_t *c;
    int id;
} cr_arg_t;

static void *cr_producer(void *arg)
{
    cr_arg_t *a = arg;
    for (uint64_t i = 0;; i++) {
        ursa_mpmc_permit_t p = {0};
        int rc = ursa_mpmc_reserve(&a->c->tx[a->id], &p, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc)
            return (void *)failf("reserve %d", rc);
        if (i % 5 == 0)
            ursa_yield();
        rc = ursa_mpmc_permit_send(&p, &i);
        if (rc)
            return (void *)failf("permit_send %d", rc);
        atomic_fetch_add(&a->c->sent_ok, 1);
    }
    (void)ursa_mpmc_sender_drop(&a->c->tx[a->id]);
    return NULL;
}

static void *cr_consumer(void *arg)
{
    cr_arg_t *a = arg;
    uint64_t v;
    long stop_after = test_scale(2000);
    int rc;
    while ((rc = ursa_mpmc_recv(&a->c->rx[a->id], &v, URSA_NEVER)) == 0) {
        if (atomic_fetch_add(&a->c->got, 1) + 1 == (uint64_t)stop_after)
            (void)ursa_mpmc_close(&a->c->rx[a->id]);
    }
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static void *cr_root(void *arg)
{
    cr_t *c = arg;
    static cr_arg_t args[4], rargs[2];
    ursa_task_t *t[4], *r[2];
    for (int i = 0; i < 2; i++) {
        rargs[i] = (cr_arg_t){c, i};
        r[i] = spawn_on(i % 2, cr_consumer, &rargs[i], "crx");
    }
    for (int i = 0; i < 4; i++) {
        args[i] = (cr_arg_t){c, i};
        t[i] = spawn_on(i % 2, cr_producer, &args[i], "cr");
    }
    for (int i = 0; i < 4; i++)
        CHECK_OK(join_task(t[i]));
    for (int i = 0; i < 2; i++)
        CHECK_OK(join_task(r[i]));
    CHECK_EQ(atomic_load(&c->got), atomic_load(&c->sent_ok));
    return NULL;
}

static void test_close_race(void **state)
{
    (void)state;
    static cr_t c;
    for (uint64_t cap = 1; cap <= 4; cap += 3) {
        memset(&c, 0, sizeof c);
        assert_int_equal(ursa_mpmc_new(&c.rx[0], &c.tx[0], 8, cap, NULL), 0);
        assert_int_equal(ursa_mpmc_receiver_clone(&c.rx[0], &c.rx[1]), 0);
        for (int i = 1; i < 4; i++)
            assert_int_equal(ursa_mpmc_sender_clone(&c.tx[0], &c.tx[i]), 0);
        ASSERT_OK(test_run(2, cr_root, &c));
        assert_int_equal(ursa_mpmc_receiver_drop(&c.rx[0]), 0);
        assert_int_equal(ursa_mpmc_receiver_drop(&c.rx[1]), 0);
    }
}

/* Regression (review): a reserve that comes after close marked the channel
 * closed, but before close closed the semaphore, used to get a free permit
 * and send — after a receiver had already been told -EPIPE. The wrap
 * (see tests/CMakeLists.txt) runs the hook inside that window. */
typedef struct {
    ursa_mpmc_receiver_t *rx2;
    ursa_mpmc_sender_t *tx;
    ursa_mpmc_permit_t *p;
    int recv_rc, send_rc, reserve_rc;
} window_t;

static void in_close_window(void *arg)
{
    window_t *w = arg;
    uint64_t v = 7;
    w->recv_rc = ursa_mpmc_try_recv(w->rx2, &v);
    w->send_rc = ursa_mpmc_send(w->tx, &v, URSA_NOW);
    w->reserve_rc = ursa_mpmc_reserve(w->tx, w->p, URSA_NOW);
}

static void test_reserve_in_close_window(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx, rx2;
    ursa_mpmc_sender_t tx;
    ursa_mpmc_permit_t p = {0};
    assert_int_equal(ursa_mpmc_new(&rx, &tx, 8, 4, NULL), 0);
    assert_int_equal(ursa_mpmc_receiver_clone(&rx, &rx2), 0);
    window_t w = {&rx2, &tx, &p, 1, 1, 1};
    close_hook = in_close_window;
    close_hook_arg = &w;
    assert_int_equal(ursa_mpmc_close(&rx), 0);
    assert_null(close_hook); /* the hook ran */
    assert_int_equal(w.recv_rc, -EPIPE); /* closed, empty, no permit out: the end */
    assert_int_equal(w.send_rc, -EPIPE);
    assert_int_equal(w.reserve_rc, -EPIPE);
    assert_null(p.ch);
    uint64_t v;
    assert_int_equal(ursa_mpmc_try_recv(&rx, &v), -EPIPE); /* nothing came after the end */
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_permits_and_close),
        cmocka_unit_test(test_close_with_outstanding_permit),
        cmocka_unit_test(test_cancelled_reserve),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_sender_drop_wakes),
        cmocka_unit_test(test_destructor),
        cmocka_unit_test(test_receiver_drop_race),
        cmocka_unit_test(test_leaked_permit),
        cmocka_unit_test(test_recv_many),
        cmocka_unit_test(test_raw_recv),
        cmocka_unit_test(test_raw_reserve),
        cmocka_unit_test(test_woken_then_cancelled),
        cmocka_unit_test(test_explore_mpmc),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_no_lost_wake),
        cmocka_unit_test(test_out_of_order_publish),
        cmocka_unit_test(test_close_race),
        cmocka_unit_test(test_reserve_in_close_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
