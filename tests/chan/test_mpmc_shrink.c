/* The mpmc channel swaps a big ring for its spare when a receiver finds it
 * empty (src/chan/mpmc/shrink.c): resident memory over a long stream
 * through a channel of capacity 1,000,000 (mincore and RSS, generous
 * margins, never time); a held permit keeps the ring; producer and
 * receiver threads (receivers polling and blocking, some holding the old
 * ring's address across swaps); the swap over seeds. */
#include "support.h"

#include <ursa/mpmc.h>

#include "chan/mpmc/mpmc.h"
#include "chan_checks.h"
#include "resident.h"
#include "task_checks.h"

#define BIG 1000000


static unsigned char *ring_of(ursa_mpmc_receiver_t *rx)
{
    return atomic_load(&rx->ch->ring);
}

/* Two million u64 through a channel of capacity 1,000,000, a few in flight
 * at a time: the current ring never holds more than the threshold's worth
 * (plus a burst) resident, nor does the process hold the bound. */
static void test_mpmc_big_stream_resident(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    big_chan_t b = BIG_CHAN_NEW(mpmc, &rx, &tx, BIG);
    uint64_t n = (uint64_t)test_scale(2 * BIG), next = 0, got = 0, v;
    size_t most = 0;
    unsigned swaps = 0;
    unsigned char *ring = ring_of(&rx);
    while (got < n) {
        for (int i = 0; i < 100; i++, next++)
            assert_int_equal(ursa_mpmc_send(&tx, &next, URSA_NOW), 0);
        while (ursa_mpmc_recv(&rx, &v, URSA_NOW) == 0)
            assert_int_equal(v, got++);
        swaps += ring_of(&rx) != ring;
        ring = ring_of(&rx);
        if (got % 65536 < 100) {
            size_t res = resident_in(ring, b.bound);
            most = res > most ? res : most;
            /* Not under TSan: its shadow stays after MADV_DONTNEED. */
            if (!TEST_UNDER_TSAN)
                assert_true(rss_bytes() < b.r0 + b.bound);
        }
    }
    assert_true(most <= URSA__RING_SHRINK_MIN + 2 * 4096);
    assert_true(swaps >= 2 || test_scale(100) < 100);
    assert_int_equal(ursa_mpmc_free_slots(rx.ch), BIG);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_recv(&rx, &v, URSA_NOW), -EPIPE);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
}

/* A held permit keeps the ring; once sent and received, the ring goes. */
static void test_mpmc_permit_keeps_ring(void **state)
{
    (void)state;
    const uint64_t cap = 300000; /* 4.8 MB */
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, sizeof(uint64_t), cap, NULL), 0);
    ursa_mpmc_permit_t p = {0};
    assert_int_equal(ursa_mpmc_reserve(&tx, &p, URSA_NOW), 0);
    uint64_t next = 0, got = 0, v;
    for (; next < 200000; next++)
        assert_int_equal(ursa_mpmc_send(&tx, &next, URSA_NOW), 0);
    unsigned char *ring = ring_of(&rx);
    while (ursa_mpmc_recv(&rx, &v, URSA_NOW) == 0)
        assert_int_equal(v, got++);
    assert_int_equal(got, next);
    assert_ptr_equal(ring_of(&rx), ring);
    assert_int_equal(ursa_mpmc_permit_send(&p, &next), 0);
    next++;
    assert_int_equal(ursa_mpmc_recv(&rx, &v, URSA_NOW), 0);
    assert_int_equal(v, got++);
    assert_int_equal(ursa_mpmc_recv(&rx, &v, URSA_NOW), -EAGAIN);
    assert_true(ring_of(&rx) != ring); /* swapped now */
    /* laps over the two rings, swapping back and forth */
    for (int round = 0; round < 4; round++) {
        for (uint64_t i = 0; i < 150000; i++, next++)
            assert_int_equal(ursa_mpmc_send(&tx, &next, URSA_NOW), 0);
        while (ursa_mpmc_recv(&rx, &v, URSA_NOW) == 0)
            assert_int_equal(v, got++);
        assert_int_equal(got, next);
    }
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
}

/* Threads: 3 producers, 3 receivers (one polling), 1 KiB elements over a
 * 4 MiB ring that swaps whenever a receiver finds it empty with 2 MiB
 * written. Per-producer order within each receiver, checksum, count. */
#define TH_ESZ 1016
#define TH_CAP 4096
#define TH_P 3
#define TH_R 3

static ursa_mpmc_sender_t th_tx[TH_P];
static ursa_mpmc_receiver_t th_rx[TH_R];
static uint64_t th_per;
static _Atomic uint64_t th_sum, th_n;

static void th_fill(unsigned char *v, uint64_t x)
{
    memset(v, (int)(x & 0xff), TH_ESZ);
    memcpy(v, &x, 8);
}

static void *th_producer(void *arg)
{
    uint64_t id = (uint64_t)(intptr_t)arg;
    unsigned char *v = malloc(TH_ESZ);
    for (uint64_t i = 0; i < th_per; i++) {
        th_fill(v, id << 40 | i);
        if (ursa_mpmc_send(&th_tx[id], v, ursa_deadline_in(test_hang_guard())))
            return (void *)"send";
        if (i % 89 == 0)
            sched_yield(); /* let the receivers find the queue empty */
    }
    free(v);
    return ursa_mpmc_sender_drop(&th_tx[id]) ? (void *)"drop" : NULL;
}

static void *th_receiver(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned char *v = malloc(TH_ESZ);
    uint64_t next[TH_P] = {0}, sum = 0, n = 0;
    int rc;
    for (;;) {
        rc = ursa_mpmc_recv(&th_rx[me], v, me == 0 ? URSA_NOW
                                                   : ursa_deadline_in(test_hang_guard()));
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc)
            break;
        uint64_t x;
        memcpy(&x, v, 8);
        uint64_t id = x >> 40, i = x & ((1ull << 40) - 1);
        if (id >= TH_P || i < next[id] || v[TH_ESZ - 1] != (unsigned char)(x & 0xff))
            return (void *)"order or contents";
        next[id] = i + 1;
        sum += mix(x);
        n++;
    }
    free(v);
    atomic_fetch_add(&th_sum, sum);
    atomic_fetch_add(&th_n, n);
    return rc == -EPIPE ? NULL : (void *)"end";
}

static pthread_t th_spawn(void *(*fn)(void *), intptr_t arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, (void *)arg), 0);
    return t;
}

static void th_join(pthread_t t)
{
    void *res;
    assert_int_equal(pthread_join(t, &res), 0);
    ASSERT_OK(res);
}

static void test_mpmc_shrink_threads(void **state)
{
    (void)state;
    th_per = (uint64_t)test_scale(6000);
    uint64_t want = stress_want(TH_P, th_per);
    for (int round = 0; round < 2; round++) {
        atomic_store(&th_sum, 0);
        atomic_store(&th_n, 0);
        assert_int_equal(ursa_mpmc_new(&th_rx[0], &th_tx[0], TH_ESZ, TH_CAP, NULL), 0);
        for (int i = 1; i < TH_P; i++)
            assert_int_equal(ursa_mpmc_sender_clone(&th_tx[0], &th_tx[i]), 0);
        for (int i = 1; i < TH_R; i++)
            assert_int_equal(ursa_mpmc_receiver_clone(&th_rx[0], &th_rx[i]), 0);
        ursa_mpmc_t *ch = th_rx[0].ch;
        ursa__chan_ref_get(&ch->chan); /* to look at it after the drops */
        pthread_t r[TH_R], p[TH_P];
        for (int i = 0; i < TH_R; i++)
            r[i] = th_spawn(th_receiver, i);
        for (int i = 0; i < TH_P; i++)
            p[i] = th_spawn(th_producer, i);
        for (int i = 0; i < TH_P; i++)
            th_join(p[i]);
        for (int i = 0; i < TH_R; i++)
            th_join(r[i]);
        assert_int_equal(atomic_load(&th_n), TH_P * th_per);
        assert_true(atomic_load(&th_sum) == want);
        /* ring_from: where the last swap happened (0: none) */
        print_message("round %d: last swap at %llu of %llu\n", round,
                      (unsigned long long)atomic_load(&ch->ring_from),
                      (unsigned long long)(TH_P * th_per));
        for (int i = 0; i < TH_R; i++)
            assert_int_equal(ursa_mpmc_receiver_drop(&th_rx[i]), 0);
        ursa__chan_ref_put(&ch->chan);
    }
}

/* Over seeds: two producer tasks, two receiver tasks (one polls), 1 KiB
 * elements over a 4 MiB ring. */
#define SX_PER 1100

static ursa_mpmc_sender_t sx_tx[2];
static ursa_mpmc_receiver_t sx_rx[2];
static uint64_t sx_n[2];

static void *sx_producer(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    static unsigned char vs[2][TH_ESZ];
    for (uint64_t i = 0; i < SX_PER; i++) {
        th_fill(vs[id], id << 40 | i);
        URSA_SIM_CHECK(ursa_mpmc_send(&sx_tx[id], vs[id], URSA_NEVER) == 0);
        if (i % 61 == 0)
            ursa_yield();
    }
    URSA_SIM_CHECK(ursa_mpmc_sender_drop(&sx_tx[id]) == 0);
    return NULL;
}

static void *sx_receiver(void *arg)
{
    uint64_t me = (uint64_t)(uintptr_t)arg;
    static unsigned char vs[2][TH_ESZ];
    uint64_t next[2] = {0};
    int rc;
    while ((rc = ursa_mpmc_recv(&sx_rx[me], vs[me], me == 0 ? URSA_NOW : URSA_NEVER)) !=
           -EPIPE) {
        if (rc == -EAGAIN) {
            ursa_yield();
            continue;
        }
        URSA_SIM_CHECK(rc == 0);
        uint64_t x;
        memcpy(&x, vs[me], 8);
        uint64_t id = x >> 40, i = x & ((1ull << 40) - 1);
        URSA_SIM_CHECK(id < 2 && i >= next[id]);
        URSA_SIM_CHECK(vs[me][TH_ESZ - 1] == (unsigned char)(x & 0xff));
        next[id] = i + 1;
        sx_n[me]++;
    }
    URSA_SIM_CHECK(ursa_mpmc_receiver_drop(&sx_rx[me]) == 0);
    return NULL;
}

static void *sx_scenario(void *arg)
{
    (void)arg;
    URSA_SIM_CHECK(ursa_mpmc_new(&sx_rx[0], &sx_tx[0], TH_ESZ, TH_CAP, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpmc_sender_clone(&sx_tx[0], &sx_tx[1]) == 0);
    URSA_SIM_CHECK(ursa_mpmc_receiver_clone(&sx_rx[0], &sx_rx[1]) == 0);
    sx_n[0] = sx_n[1] = 0;
    ursa_task_t *t[4];
    for (uintptr_t i = 0; i < 2; i++) {
        t[i] = spawn_on(0, sx_receiver, (void *)i, "r");
        t[2 + i] = spawn_on(0, sx_producer, (void *)i, "p");
    }
    CHECK_OK(join_tasks(t, 4));
    URSA_SIM_CHECK(sx_n[0] + sx_n[1] == 2 * SX_PER);
    return NULL;
}

static void test_mpmc_shrink_seeds(void **state)
{
    (void)state;
    uint64_t seed = 0;
    int rc = ursa_sim_explore(&(ursa_rt_config_t){.workers = 1}, sx_scenario, NULL, 1,
                              (unsigned)test_scale(40), &seed);
    if (rc)
        fail_msg("scenario failed at seed %llu: %s", (unsigned long long)seed, ursa_strerror(rc));
}

TEST_MAIN(cmocka_unit_test(test_mpmc_big_stream_resident),
          cmocka_unit_test(test_mpmc_permit_keeps_ring), cmocka_unit_test(test_mpmc_shrink_threads),
          cmocka_unit_test(test_mpmc_shrink_seeds))
