/* Tests for the mpsc channel (include/ursa/mpsc.h, src/chan/mpsc.c) beyond
 * the contract (tests/contract/, rows mpsc_send, mpsc_reserve, mpsc_recv):
 * arguments, FIFO order, memory and blocks, handles, the destructor,
 * recv_many. Permits and close: test_mpsc_permit.c; many producers:
 * test_mpsc_stress.c; the send bias: test_mpsc_send_bias.c. */
#include "support.h"

#include <ursa/mpsc.h>

#include "task_checks.h"

#define CHAN mpsc
#include "mpxc_checks.h"

URSA_MPSC_TYPED(u64q, uint64_t)

/* ====================================================================== */
/* basics                                                                 */
/* ====================================================================== */

static void *args_body(void *arg)
{
    (void)arg;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx, tx2;
    uint64_t v = 1;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 0, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpsc_new(NULL, &tx, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpsc_new(&rx, NULL, 8, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, URSA_MPSC_MAX_CAPACITY + 1, NULL), -EINVAL);
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, 4, NULL), 0);
    CHECK_EQ(ursa_mpsc_capacity(tx.ch), 4);
    CHECK_EQ(ursa_mpsc_send(NULL, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_send(&tx, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_recv(NULL, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_recv_many(&rx, &v, 0, URSA_NOW), -EINVAL);
    ursa_mpsc_permit_t p = {0};
    CHECK_EQ(ursa_mpsc_reserve_many(&tx, 0, &p, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_reserve_many(&tx, 5, &p, URSA_NOW), -EINVAL); /* > capacity */
    CHECK_EQ(ursa_mpsc_try_recv(&rx, &v), -EAGAIN);
    CHECK_EQ(ursa_mpsc_recv(&rx, &v, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    CHECK_EQ(ursa_mpsc_sender_clone(&tx, &tx2), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx2), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx2), -EINVAL); /* dropped handle */
    CHECK_EQ(ursa_mpsc_send(&tx2, &v, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), -EINVAL);
    return NULL;
}

static void test_mpsc_rejects_bad_arguments_and_dropped_handles(void **state)
{
    (void)state;
    ASSERT_OK(args_body(NULL));
    ASSERT_OK(test_run(1, args_body, NULL));
}

/* FIFO, len, capacity 1, typed wrapper, try send on a full channel. */
static void *fifo_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    u64q_rx_t rx;
    u64q_tx_t tx;
    CHECK_EQ(u64q_new(&rx, &tx, cap), 0);
    uint64_t n = cap ? cap : 100, out = 0;
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(u64q_try_send(&tx, i * 7), 0);
    CHECK_EQ(ursa_mpsc_len(rx.raw.ch), n);
    if (cap) {
        CHECK_EQ(u64q_try_send(&tx, 99), -EAGAIN);
        CHECK_EQ(u64q_send(&tx, 99, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    }
    for (uint64_t i = 0; i < n; i++) {
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, i * 7);
    }
    CHECK_EQ(ursa_mpsc_len(rx.raw.ch), 0);
    CHECK_EQ(u64q_try_recv(&rx, &out), -EAGAIN);
    /* many cycles through the ring / blocks */
    for (uint64_t i = 0; i < 1000; i++) {
        CHECK_EQ(u64q_send(&tx, i, URSA_NEVER), 0);
        CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), 0);
        CHECK_EQ(out, i);
    }
    CHECK_EQ(u64q_sender_drop(&tx), 0);
    CHECK_EQ(u64q_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(u64q_receiver_drop(&rx), 0);
    return NULL;
}

static void test_mpsc_delivers_in_fifo_order_at_every_capacity(void **state)
{
    (void)state;
    uint64_t caps[] = {1, 2, 3, 7, 64, 0};
    for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        ASSERT_OK(fifo_body((void *)(uintptr_t)caps[i]));
        ASSERT_OK(test_run(1, fifo_body, (void *)(uintptr_t)caps[i]));
    }
}

/* Memory: exact for small bounded channels. */
static void test_mpsc_small_bounded_channel_memory_is_exact(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, 4096, 1, NULL), 0);
    size_t m1 = ursa_mpsc_memory(rx.ch);
    assert_true(m1 < 4096 + 8 + 1024); /* one slot + header */
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_mpsc_new(&rx, &tx, 8, 1, NULL), 0);
    assert_true(ursa_mpsc_memory(rx.ch) <= 512);
    print_message("mpsc memory: cap1 u64 %zu B, cap1 4KiB elem %zu B\n",
                  ursa_mpsc_memory(rx.ch), m1);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

/* ====================================================================== */
/* unbounded: block boundaries and reuse                                  */
/* ====================================================================== */

static void *blocks_body(void *arg)
{
    (void)arg;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), 0, NULL), 0);
    size_t m0 = ursa_mpsc_memory(rx.ch);
    uint64_t next_send = 0, next_recv = 0, out;
    long sizes[] = {32, 31, 33, 1, 64, 63, 65, 96, 2, 32};
    for (int cycle = 0; cycle < 200; cycle++) {
        long k = sizes[cycle % 10];
        for (long i = 0; i < k; i++)
        {
            CHECK_EQ(ursa_mpsc_send(&tx, &next_send, URSA_NOW), 0);
            next_send++;
        }
        CHECK_EQ(ursa_mpsc_len(rx.ch), k);
        for (long i = 0; i < k; i++) {
            CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), 0);
            CHECK_EQ(out, next_recv);
            next_recv++;
        }
        CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), -EAGAIN);
    }
    /* blocks were reused: memory stays near the peak working set
     * (96 elements = 3-4 blocks), not proportional to the 8000+ sent. */
    size_t blk = ursa_mpsc_memory(rx.ch) - m0;
    CHECK(ursa_mpsc_memory(rx.ch) <= m0 + 6 * (32 * 8 + 64));
    (void)blk;
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), -EPIPE);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    return NULL;
}

static void test_mpsc_unbounded_reuses_its_blocks(void **state)
{
    (void)state;
    ASSERT_OK(blocks_body(NULL));
    ASSERT_OK(test_run(1, blocks_body, NULL));
}

/* Big elements: small blocks. */
typedef struct big {
    uint64_t id;
    char pad[3000];
} big_t;

static void test_mpsc_big_elements_use_small_blocks(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, sizeof(big_t), 0, NULL), 0);
    static big_t b, o;
    for (uint64_t round = 0; round < 20; round++) {
        for (uint64_t i = 0; i < 7; i++) {
            b.id = round * 100 + i;
            memset(b.pad, (int)i, sizeof b.pad);
            assert_int_equal(ursa_mpsc_send(&tx, &b, URSA_NOW), 0);
        }
        for (uint64_t i = 0; i < 7; i++) {
            assert_int_equal(ursa_mpsc_try_recv(&rx, &o), 0);
            assert_int_equal(o.id, round * 100 + i);
            assert_int_equal(o.pad[2999], (char)i);
        }
    }
    assert_true(ursa_mpsc_memory(rx.ch) < 64 * 1024);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

/* ====================================================================== */
/* handles: sender drop, receiver drop, weak senders, destructor          */
/* ====================================================================== */

static void *handles_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx, tx2;
    ursa_mpsc_weak_sender_t wk, wk2;
    uint64_t v = 3, out;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, cap, NULL), 0);
    CHECK_EQ(ursa_mpsc_sender_downgrade(&tx, &wk), 0);
    CHECK_EQ(ursa_mpsc_weak_clone(&wk, &wk2), 0);
    CHECK_EQ(ursa_mpsc_weak_upgrade(&wk, &tx2), 0);
    CHECK_EQ(ursa_mpsc_send(&tx2, &v, URSA_NOW), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx2), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    /* only weak senders left: drained, then -EPIPE */
    CHECK_EQ(ursa_mpsc_recv(&rx, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 3);
    CHECK_EQ(ursa_mpsc_recv(&rx, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_mpsc_weak_upgrade(&wk, &tx2), -EPIPE);
    CHECK_EQ(ursa_mpsc_weak_drop(&wk), 0);
    CHECK_EQ(ursa_mpsc_weak_drop(&wk), -EINVAL);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpsc_weak_drop(&wk2), 0); /* frees */

    /* receiver dropped: sends fail with -EPIPE, the value stays ours */
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, cap, NULL), 0);
    ursa_mpsc_permit_t p = {0};
    CHECK_EQ(ursa_mpsc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    CHECK_OK(check_sends_fail_without_receivers(&tx, &p));

    /* sender dropped while the receiver waits */
    return NULL;
}

static void test_mpsc_weak_senders_and_receiver_drop(void **state)
{
    (void)state;
    ASSERT_OK(handles_body((void *)(uintptr_t)2));
    ASSERT_OK(handles_body((void *)(uintptr_t)0));
    ASSERT_OK(test_run(1, handles_body, (void *)(uintptr_t)2));
}

static void *drop_sender_task(void *arg)
{
    ursa_mpsc_sender_t *tx = arg;
    uint64_t v = 11;
    ursa_sleep_for(URSA_MSEC(1));
    if (ursa_mpsc_send(tx, &v, URSA_NEVER))
        return (void *)"send";
    ursa_sleep_for(URSA_MSEC(1));
    ursa_mpsc_sender_drop(tx);
    return NULL;
}

static void *drop_wakes_scenario(void *arg)
{
    (void)arg;
    ursa_mpsc_receiver_t rx;
    static ursa_mpsc_sender_t tx;
    URSA_SIM_CHECK(ursa_mpsc_new(&rx, &tx, 8, 4, NULL) == 0);
    ursa_task_t *t = spawn_on(0, drop_sender_task, &tx, "tx");
    uint64_t out = 0;
    URSA_SIM_CHECK(ursa_mpsc_recv(&rx, &out, URSA_NEVER) == 0 && out == 11);
    URSA_SIM_CHECK(ursa_mpsc_recv(&rx, &out, URSA_NEVER) == -EPIPE);
    void *r = join_task(t);
    ursa_mpsc_receiver_drop(&rx);
    return r;
}

TEST_EXPLORE(test_mpsc_last_sender_drop_wakes_the_receiver_over_seeds, drop_wakes_scenario, NULL)

static void *dtor_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 256; i++)
        atomic_store(&dtor_count[i], 0);
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, cap, id_dtor), 0);
    uint64_t n = cap ? cap : 100, out;
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(ursa_mpsc_send(&tx, &i, URSA_NOW), 0);
    for (uint64_t i = 0; i < n / 2; i++)
        CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), 0);
    /* a permit outlives the receiver: its late message is destroyed too */
    ursa_mpsc_permit_t p = {0};
    if (cap) {
        CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), 0);
        CHECK_EQ(out, n / 2);
    }
    CHECK_EQ(ursa_mpsc_reserve(&tx, &p, URSA_NOW), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0); /* destroys the queued ones */
    uint64_t first = cap ? n / 2 + 1 : n / 2;
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&dtor_count[i]), i >= first ? 1 : 0);
    uint64_t late = 200;
    CHECK_EQ(ursa_mpsc_permit_send(&p, &late), -EPIPE); /* not taken */
    CHECK_EQ(atomic_load(&dtor_count[200]), 0);

    /* last handle is a sender: destruction at its drop */
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, cap, id_dtor), 0);
    uint64_t id = 250;
    CHECK_EQ(ursa_mpsc_send(&tx, &id, URSA_NOW), 0);
    CHECK_EQ(ursa_mpsc_close(&rx), 0);
    ursa_mpsc_weak_sender_t wk;
    CHECK_EQ(ursa_mpsc_sender_downgrade(&tx, &wk), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_EQ(ursa_mpsc_try_recv(&rx, &out), 0);
    CHECK_EQ(out, 250);
    id = 251;
    CHECK_EQ(atomic_load(&dtor_count[250]), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    CHECK_EQ(ursa_mpsc_weak_drop(&wk), 0);
    CHECK_EQ(atomic_load(&dtor_count[250]), 0); /* delivered: never destroyed */
    return NULL;
}

static void test_mpsc_destructor_runs_for_undelivered_messages_only(void **state)
{
    (void)state;
    ASSERT_OK(dtor_body((void *)(uintptr_t)8));
    ASSERT_OK(dtor_body((void *)(uintptr_t)0));
    ASSERT_OK(dtor_body((void *)(uintptr_t)33));
}

/* Messages still queued when the last handle goes, dropped by a sender. */
static void test_mpsc_send_after_the_receiver_drop_is_refused_not_destroyed(void **state)
{
    (void)state;
    for (int i = 0; i < 256; i++)
        atomic_store(&dtor_count[i], 0);
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, 8, 0, id_dtor), 0);
    ursa_mpsc_permit_t p = {0};
    assert_int_equal(ursa_mpsc_reserve(&tx, &p, URSA_NOW), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
    /* a send racing the drop (the drop check passed): pushed after drain */
    uint64_t id = 7;
    assert_int_equal(ursa_mpsc_permit_send(&p, &id), -EPIPE);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(atomic_load(&dtor_count[7]), 0);
}

/* ====================================================================== */
/* recv_many                                                              */
/* ====================================================================== */

static void *recv_many_body(void *arg)
{
    uint64_t cap = (uint64_t)(uintptr_t)arg;
    ursa_mpsc_receiver_t rx;
    static ursa_mpsc_sender_t tx, tx2;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, 8, cap, NULL), 0);
    for (uint64_t i = 0; i < 10; i++)
        CHECK_EQ(ursa_mpsc_send(&tx, &i, URSA_NOW), 0);
    uint64_t buf[8];
    CHECK_EQ(ursa_mpsc_recv_many(&rx, buf, 4, URSA_NOW), 4);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[3], 3);
    CHECK_EQ(ursa_mpsc_recv_many(&rx, buf, 8, URSA_NOW), 6);
    CHECK_EQ(buf[0], 4);
    CHECK_EQ(buf[5], 9);
    CHECK_EQ(ursa_mpsc_recv_many(&rx, buf, 8, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_mpsc_sender_clone(&tx, &tx2), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    ursa_task_t *t = spawn_on(0, many_sender, &tx2, "s");
    CHECK_OK(recv_many_until_end(&rx, &rx));
    CHECK_OK(join_task(t));
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    return NULL;
}

static void test_mpsc_recv_many_takes_what_is_there(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)16));
    ASSERT_OK(test_run(2, recv_many_body, (void *)(uintptr_t)0));
    test_explore(recv_many_body, (void *)(uintptr_t)16);
}

TEST_MAIN(cmocka_unit_test(test_mpsc_rejects_bad_arguments_and_dropped_handles),
          cmocka_unit_test(test_mpsc_delivers_in_fifo_order_at_every_capacity),
          cmocka_unit_test(test_mpsc_small_bounded_channel_memory_is_exact),
          cmocka_unit_test(test_mpsc_unbounded_reuses_its_blocks),
          cmocka_unit_test(test_mpsc_big_elements_use_small_blocks),
          cmocka_unit_test(test_mpsc_weak_senders_and_receiver_drop),
          cmocka_unit_test(test_mpsc_last_sender_drop_wakes_the_receiver_over_seeds),
          cmocka_unit_test(test_mpsc_destructor_runs_for_undelivered_messages_only),
          cmocka_unit_test(test_mpsc_send_after_the_receiver_drop_is_refused_not_destroyed),
          cmocka_unit_test(test_mpsc_recv_many_takes_what_is_there))
