/* The mpsc channel gives a big ring back when the receiver finds it empty
 * (src/chan/mpsc/shrink.c): resident memory over a long stream through a
 * channel of capacity 1,000,000 (RSS and mincore, generous margins, never
 * time); bursts of every size on one thread (the send bias's credit is
 * counted), a held permit that keeps the ring; producer threads against a
 * receiver that blocks or polls; the swap over seeds. Also run without
 * membarrier (tests/CMakeLists.txt). */
#include "support.h"

#include <ursa/mpsc.h>

#include "chan/mpsc/mpsc.h"
#include "resident.h"
#include "task_checks.h"

#define BIG 1000000



/* ---- mpsc gives a big ring back when it runs empty (shrink.c) ---- */

#define SH_ESZ 1016 /* 1 KiB slots: URSA__RING_SHRINK_MIN is 2048 of them */
#define SH_CAP 4096 /* a 4 MiB ring: big enough to shrink */

static void sh_fill(unsigned char *v, uint64_t x)
{
    memset(v, (int)(x & 0xff), SH_ESZ);
    memcpy(v, &x, 8);
}

static bool sh_ok(const unsigned char *v, uint64_t x)
{
    uint64_t y;
    memcpy(&y, v, 8);
    return y == x && v[SH_ESZ - 1] == (unsigned char)(x & 0xff);
}

/* Two million u64 (two laps) through a channel of capacity 1,000,000,
 * a few in flight at a time, found empty after each burst: the resident
 * ring never grows past what was written since the last empty (plus the
 * burst), nor does the process. */
static void test_mpsc_big_stream_resident(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    big_chan_t b = BIG_CHAN_NEW(mpsc, &rx, &tx, BIG);
    uint64_t n = (uint64_t)test_scale(2 * BIG), next = 0, got = 0, v;
    size_t most = 0;
    while (got < n) {
        for (int i = 0; i < 100; i++, next++)
            assert_int_equal(ursa_mpsc_send(&tx, &next, URSA_NOW), 0);
        while (ursa_mpsc_recv(&rx, &v, URSA_NOW) == 0)
            assert_int_equal(v, got++);
        if (got % 65536 < 100) {
            size_t res = resident_in(rx.ch->ring, b.bound);
            most = res > most ? res : most;
            /* the whole ring resident would be the b.bound. Not under TSan:
             * its shadow of a ring's pages stays when the pages go back to
             * the kernel, and over the stream every slot of both rings (the
             * current one and the one kept in zmem's cache) is touched once;
             * mincore above still counts the ring's own pages. */
            if (!TEST_UNDER_TSAN)
                assert_true(rss_bytes() < b.r0 + b.bound);
        }
    }
    /* the ring that is current never held more than the threshold's worth
     * (a page more: the last burst) */
    assert_true(most <= URSA__RING_SHRINK_MIN + 2 * 4096);
    assert_true(got >= BIG || test_scale(100) < 100); /* past the first lap */
    assert_int_equal(ursa_mpsc_free_slots(rx.ch), BIG);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NOW), -EPIPE);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

/* One thread (the send bias is its own: the owner's credit is counted):
 * bursts of every size up to the capacity, the ring swapped whenever the
 * queue is found empty with 2 MiB written; a held permit (and a queued
 * message) keeps the ring; FIFO and contents across every swap. */
static void test_mpsc_shrink_one_thread(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, SH_ESZ, SH_CAP, NULL), 0);
    assert_true(rx.ch->shrink);
    static unsigned char v[SH_ESZ];
    uint64_t next = 0, got = 0, swaps = 0;
    unsigned char *ring = rx.ch->ring;
    for (uint64_t burst = 1; burst <= SH_CAP; burst = burst * 3 + 1) {
        for (int rep = 0; rep < 6; rep++) {
            for (uint64_t i = 0; i < burst; i++, next++) {
                sh_fill(v, next);
                assert_int_equal(ursa_mpsc_send(&tx, v, URSA_NOW), 0);
            }
            if (burst == SH_CAP) { /* full: exactly the capacity */
                sh_fill(v, next);
                assert_int_equal(ursa_mpsc_send(&tx, v, URSA_NOW), -EAGAIN);
            }
            while (got < next) {
                assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), 0);
                assert_true(sh_ok(v, got++));
            }
            assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), -EAGAIN); /* may swap */
            swaps += rx.ch->ring != ring;
            ring = rx.ch->ring;
            /* a swap leaves nothing written in the fresh ring */
            assert_true(next - rx.ch->ring_from < URSA__RING_SHRINK_MIN / 1024 + 1);
        }
    }
    assert_true(swaps >= 5);
    /* a held permit: no swap, however much was written */
    ursa_mpsc_permit_t p = {0};
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ursa_mpsc_reserve(&tx, &p, URSA_NOW), 0);
        for (uint64_t i = 0; i < SH_CAP - 1; i++, next++) {
            sh_fill(v, next);
            assert_int_equal(ursa_mpsc_send(&tx, v, URSA_NOW), 0);
        }
        while (got < next) {
            assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), 0);
            assert_true(sh_ok(v, got++));
        }
        unsigned char *before = rx.ch->ring;
        assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), -EAGAIN);
        assert_ptr_equal(rx.ch->ring, before);
        sh_fill(v, next++);
        assert_int_equal(ursa_mpsc_permit_send(&p, v), 0);
        assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), 0);
        assert_true(sh_ok(v, got++));
    }
    assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), -EAGAIN); /* now it may */
    assert_int_equal(ursa_mpsc_free_slots(rx.ch), SH_CAP);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_recv(&rx, v, URSA_NOW), -EPIPE);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

/* Producer threads (each its own order) against a receiver that swaps the
 * ring whenever it finds the queue empty: nothing lost, doubled or torn. */
static ursa_mpsc_sender_t sh_tx[3];
static uint64_t sh_per;

static void *sh_producer(void *arg)
{
    uint64_t id = (uint64_t)(intptr_t)arg;
    unsigned char *v = malloc(SH_ESZ);
    for (uint64_t i = 0; i < sh_per; i++) {
        sh_fill(v, id << 40 | i);
        if (ursa_mpsc_send(&sh_tx[id], v, ursa_deadline_in(test_hang_guard())))
            return (void *)"send";
        if (i % 97 == 0)
            sched_yield(); /* let the receiver find the queue empty */
    }
    free(v);
    return ursa_mpsc_sender_drop(&sh_tx[id]) ? (void *)"drop" : NULL;
}

static void test_mpsc_shrink_threads(void **state)
{
    (void)state;
    sh_per = (uint64_t)test_scale(8000);
    for (int round = 0; round < 3; round++) {
        ursa_mpsc_receiver_t rx;
        assert_int_equal(ursa_mpsc_new(&rx, &sh_tx[0], SH_ESZ, SH_CAP, NULL), 0);
        for (int i = 1; i < 3; i++)
            assert_int_equal(ursa_mpsc_sender_clone(&sh_tx[0], &sh_tx[i]), 0);
        pthread_t p[3];
        for (int i = 0; i < 3; i++)
            p[i] = start_body_thread(sh_producer, i);
        static unsigned char v[SH_ESZ];
        uint64_t next[3] = {0}, n = 0, swaps = 0;
        unsigned char *ring = rx.ch->ring;
        int rc;
        /* round 1 polls (every empty find may swap); the others block */
        while ((rc = ursa_mpsc_recv(&rx, v, round == 1 ? URSA_NOW
                                                      : ursa_deadline_in(test_hang_guard()))) !=
               -EPIPE) {
            if (rc == -EAGAIN) {
                sched_yield();
                continue;
            }
            assert_int_equal(rc, 0);
            uint64_t x;
            memcpy(&x, v, 8);
            uint64_t id = x >> 40;
            assert_true(id < 3);
            assert_true(sh_ok(v, id << 40 | next[id]));
            next[id]++;
            n++;
            swaps += rx.ch->ring != ring;
            ring = rx.ch->ring;
        }
        for (int i = 0; i < 3; i++)
            join_body_thread(p[i]);
        assert_int_equal(n, 3 * sh_per);
        print_message("round %d: %llu swaps\n", round, (unsigned long long)swaps);
        assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
    }
}

/* The swap over seeds: two producer tasks (one of them on the making
 * thread, so the send bias may hold) and a receiver that finds the queue
 * empty now and then. */
#define SHX_PER 1100

static void *shx_producer(void *arg)
{
    ursa_mpsc_sender_t *tx = arg;
    uint64_t id = tx == &sh_tx[0] ? 0 : 1;
    static unsigned char vs[2][SH_ESZ];
    for (uint64_t i = 0; i < SHX_PER; i++) {
        sh_fill(vs[id], id << 40 | i);
        URSA_SIM_CHECK(ursa_mpsc_send(tx, vs[id], URSA_NEVER) == 0);
        if (i % 61 == 0)
            ursa_yield();
    }
    URSA_SIM_CHECK(ursa_mpsc_sender_drop(tx) == 0);
    return NULL;
}

static void *shx_scenario(void *arg)
{
    (void)arg;
    ursa_mpsc_receiver_t rx;
    URSA_SIM_CHECK(ursa_mpsc_new(&rx, &sh_tx[0], SH_ESZ, SH_CAP, NULL) == 0);
    URSA_SIM_CHECK(ursa_mpsc_sender_clone(&sh_tx[0], &sh_tx[1]) == 0);
    ursa_task_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = spawn_on(0, shx_producer, &sh_tx[i], "p");
    static unsigned char v[SH_ESZ];
    uint64_t next[2] = {0}, n = 0;
    int rc;
    while ((rc = ursa_mpsc_recv(&rx, v, n % 5 == 0 ? URSA_NOW : URSA_NEVER)) != -EPIPE) {
        if (rc == -EAGAIN) {
            ursa_yield();
            continue;
        }
        URSA_SIM_CHECK(rc == 0);
        uint64_t x;
        memcpy(&x, v, 8);
        uint64_t id = x >> 40;
        URSA_SIM_CHECK(id < 2 && sh_ok(v, id << 40 | next[id]));
        next[id]++;
        n++;
    }
    URSA_SIM_CHECK(n == 2 * SHX_PER);
    CHECK_OK(join_tasks(t, 2));
    URSA_SIM_CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
    return NULL;
}

static void test_shrink_seeds(void **state)
{
    (void)state;
    uint64_t seed = 0;
    int rc = ursa_sim_explore(&(ursa_rt_config_t){.workers = 1}, shx_scenario, NULL, 1,
                              (unsigned)test_scale(40), &seed);
    if (rc)
        fail_msg("scenario failed at seed %llu: %s", (unsigned long long)seed, ursa_strerror(rc));
}

TEST_MAIN(cmocka_unit_test(test_mpsc_big_stream_resident),
          cmocka_unit_test(test_mpsc_shrink_one_thread), cmocka_unit_test(test_mpsc_shrink_threads),
          cmocka_unit_test(test_shrink_seeds))
