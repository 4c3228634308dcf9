/* The bounded mpsc's switch from membarrier to fences (chan/mpsc/lazy.c):
 * senders that queue often (a capacity-1 channel, three producers) move
 * the channel to fenced mode, and nothing is lost or stuck across the
 * switch or after it, on plain threads against a receiving task and over
 * seeds in deterministic mode; senders that queue once per ring's worth of
 * messages keep membarrier; one sender thread on a capacity-1 channel (no
 * other sender's harvest to heal a lost wake). White-box: reads the channel's mode. Without
 * membarrier (the _no_membarrier run) permits go back eagerly and the mode
 * never moves. */
#include "support.h"

#include <ursa/mpsc.h>

#include "chan/mpsc/mpsc.h"
#include "task_checks.h"

#define CHAN mpsc
#include "mpxc_checks.h"

#define PRODUCERS 3

/* relaxed: read after every sender and the receiver are done. */
static uint32_t mode_of(ursa_mpsc_receiver_t *rx)
{
    return atomic_load_explicit(&rx->ch->fence_mode, memory_order_relaxed);
}

/* Receives n producers' id << 40 | i, in each producer's order, until the
 * end: NULL, or what went wrong. */
static void *consume_in_order(ursa_mpsc_receiver_t *rx, uint64_t per)
{
    uint64_t next[PRODUCERS] = {0}, total = 0, v;
    int rc;
    while ((rc = ursa_mpsc_recv(rx, &v, URSA_NEVER)) == 0) {
        uint64_t id = v >> 40, seq = v & ((1ULL << 40) - 1);
        CHECK(id < PRODUCERS);
        CHECK_EQ(seq, next[id]);
        next[id]++;
        total++;
    }
    CHECK_EQ(rc, -EPIPE);
    CHECK_EQ(total, PRODUCERS * per);
    return NULL;
}

/* ---- plain threads against a receiving task ---- */

typedef struct threads_case {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx[PRODUCERS];
    stress_producer_t args[PRODUCERS];
    uint64_t per;
} threads_case_t;

static void *threads_root(void *arg)
{
    threads_case_t *c = arg;
    pthread_t th[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        if (pthread_create(&th[i], NULL, stress_producer, &c->args[i]))
            return (void *)"pthread_create";
    void *res = consume_in_order(&c->rx, c->per);
    void *tres = join_threads(th, PRODUCERS);
    return res ? res : tres;
}

/* Only producer 0 sends (c->per each), on a plain thread. */
static void *one_sender_root(void *arg)
{
    threads_case_t *c = arg;
    pthread_t th;
    if (pthread_create(&th, NULL, stress_producer, &c->args[0]))
        return (void *)"pthread_create";
    uint64_t v, want = 0;
    int rc;
    while ((rc = ursa_mpsc_recv(&c->rx, &v, URSA_NEVER)) == 0)
        CHECK_EQ(v, want++);
    CHECK_EQ(rc, -EPIPE);
    CHECK_EQ(want, c->per);
    return join_threads(&th, 1);
}

static void test_mpsc_senders_that_queue_often_switch_to_fences_and_lose_nothing(void **state)
{
    (void)state;
    static threads_case_t c;
    uint64_t caps[] = {1, 4};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        memset(&c, 0, sizeof c);
        c.per = (uint64_t)test_scale(20000);
        assert_int_equal(new_with_senders(&c.rx, c.tx, PRODUCERS, 8, caps[k], NULL), 0);
        for (uint64_t i = 0; i < PRODUCERS; i++)
            c.args[i] = (stress_producer_t){&c.tx[i], i, c.per, caps[k], false};
        bool lazy = c.rx.ch->lazy;
        ASSERT_OK(test_run(2, threads_root, &c));
        assert_int_equal(mode_of(&c.rx),
                         lazy ? URSA__MPSC_LAZY_FENCED : URSA__MPSC_LAZY_MEMBARRIER);
        assert_int_equal(ursa_mpsc_receiver_drop(&c.rx), 0);
    }
}

/* ---- one producer thread, capacity 1 ---- */

/* No other producer's harvest can heal a lost wake here: with a fence
 * missing on either side (or the mode read before the head store), the
 * sender sleeps with its slot owed and both sides hang (the test's
 * timeout). From the start in fenced mode, and switching by itself. */
static void one_sender_case(bool fenced_from_start)
{
    static threads_case_t c;
    memset(&c, 0, sizeof c);
    c.per = (uint64_t)test_scale(100000);
    assert_int_equal(ursa_mpsc_new(&c.rx, &c.tx[0], 8, 1, NULL), 0);
    bool lazy = c.rx.ch->lazy;
    if (fenced_from_start && lazy)
        /* relaxed: before any other thread uses the channel. */
        atomic_store_explicit(&c.rx.ch->fence_mode, URSA__MPSC_LAZY_FENCED,
                              memory_order_relaxed);
    c.args[0] = (stress_producer_t){&c.tx[0], 0, c.per, 1, false};
    ASSERT_OK(test_run(2, one_sender_root, &c));
    assert_int_equal(mode_of(&c.rx), lazy ? URSA__MPSC_LAZY_FENCED : URSA__MPSC_LAZY_MEMBARRIER);
    assert_int_equal(ursa_mpsc_receiver_drop(&c.rx), 0);
}

static void test_mpsc_one_sender_on_a_thread_never_sleeps_with_its_slot_owed(void **state)
{
    (void)state;
    one_sender_case(true);
    one_sender_case(false);
}

/* ---- over seeds: the switch happens among queued tasks ---- */

#define SEED_PER 40

static void *seeds_scenario(void *arg)
{
    (void)arg;
    static ursa_mpsc_sender_t tx[PRODUCERS];
    static stress_producer_t args[PRODUCERS];
    ursa_mpsc_receiver_t rx;
    URSA_SIM_CHECK(new_with_senders(&rx, tx, PRODUCERS, 8, 1, NULL) == 0);
    ursa_task_t *t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        args[i] = (stress_producer_t){&tx[i], (uint64_t)i, SEED_PER, 1, false};
        t[i] = spawn_on(i % 2, stress_producer, &args[i], "p");
    }
    CHECK_OK(consume_in_order(&rx, SEED_PER));
    CHECK_OK(join_tasks(t, PRODUCERS));
    CHECK_EQ(mode_of(&rx), rx.ch->lazy ? URSA__MPSC_LAZY_FENCED : URSA__MPSC_LAZY_MEMBARRIER);
    URSA_SIM_CHECK(ursa_mpsc_receiver_drop(&rx) == 0);
    return NULL;
}

static void test_mpsc_fenced_switch_among_queued_tasks_over_seeds(void **state)
{
    (void)state;
    test_explore_workers(2, seeds_scenario, NULL);
}

/* ---- senders that queue once per ring's worth keep membarrier ---- */

static void *ring_producer(void *arg)
{
    ursa_mpsc_sender_t *tx = arg;
    for (uint64_t i = 0; i < 1024 * 40; i++)
        CHECK_EQ(ursa_mpsc_send(tx, &i, URSA_NEVER), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(tx), 0);
    return NULL;
}

typedef struct pair {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
} pair_t;

static void *rare_root(void *arg)
{
    pair_t *c = arg;
    ursa_task_t *t = spawn_on(0, ring_producer, &c->tx, "p");
    uint64_t v, want = 0;
    int rc;
    while ((rc = ursa_mpsc_recv(&c->rx, &v, URSA_NEVER)) == 0)
        CHECK_EQ(v, want++);
    CHECK_EQ(rc, -EPIPE);
    CHECK_EQ(want, 1024 * 40);
    return join_task(t);
}

static void test_mpsc_senders_that_queue_once_a_ring_keep_membarrier(void **state)
{
    (void)state;
    static pair_t c;
    assert_int_equal(ursa_mpsc_new(&c.rx, &c.tx, 8, 1024, NULL), 0);
    ASSERT_OK(test_run(1, rare_root, &c));
    assert_int_equal(mode_of(&c.rx), URSA__MPSC_LAZY_MEMBARRIER);
    assert_int_equal(ursa_mpsc_receiver_drop(&c.rx), 0);
}

TEST_MAIN(cmocka_unit_test(test_mpsc_senders_that_queue_often_switch_to_fences_and_lose_nothing),
          cmocka_unit_test(test_mpsc_one_sender_on_a_thread_never_sleeps_with_its_slot_owed),
          cmocka_unit_test(test_mpsc_fenced_switch_among_queued_tasks_over_seeds),
          cmocka_unit_test(test_mpsc_senders_that_queue_once_a_ring_keep_membarrier))
