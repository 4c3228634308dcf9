/* Tests for ursa_barrier beyond the contract (tests/contract/, row
 * barrier: a party of two): argument errors and N = 0/1, exactly one
 * leader per generation over many generations (seeds, and tasks on two
 * workers with plain threads), withdrawal of a cancelled or timed-out
 * arrival among three parties, cancel racing the trip, raw cancel before
 * and after the trip, destroy while busy. */

#include "support.h"
#include "ursa/barrier.h"

#include "checked_alloc.h"
#include "raw_checks.h"

/* ---- arguments, N = 0 and 1 ---- */

static void test_barrier_rejects_bad_arguments_and_a_try_is_not_counted(void **state)
{
    (void)state;
    ursa_barrier_t b;
    ursa_wait_t w;
    rwaker_t k;
    bool leader = false;
    rwaker_init(&k, false);
    assert_int_equal(ursa_barrier_init(NULL, 2), -EINVAL);
    assert_int_equal(ursa_barrier_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_barrier_wait(NULL, &leader, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_barrier_arrived(NULL), 0);
    assert_int_equal(ursa_barrier_generation(NULL), 0);
    assert_int_equal(ursa_barrier_init(&b, 2), 0);
    assert_int_equal(ursa_barrier_wait_start(NULL, &w, rwaker(&k)), -EINVAL);
    assert_int_equal(ursa_barrier_wait_start(&b, NULL, rwaker(&k)), -EINVAL);
    assert_int_equal(ursa_barrier_wait_start(&b, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    /* A try that would wait is not counted. */
    assert_int_equal(ursa_barrier_wait(&b, &leader, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_barrier_arrived(&b), 0);

    assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_barrier_arrived(&b), 1);
    ursa_barrier_t b2;
    assert_int_equal(ursa_barrier_init(&b2, 2), 0);
    assert_int_equal(ursa_barrier_wait_finish(&b2, &w, &leader), -EINVAL); /* other barrier */
    assert_int_equal(ursa_barrier_wait_finish(NULL, &w, &leader), -EINVAL);
    assert_int_equal(ursa_barrier_wait_finish(&b, NULL, &leader), -EINVAL);
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), -EAGAIN);
    /* A try that trips it succeeds, as the leader. */
    leader = false;
    assert_int_equal(ursa_barrier_wait(&b, &leader, URSA_NOW), 0);
    assert_true(leader);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(atomic_load(&k.count), 1);
    leader = true;
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), 0);
    assert_false(leader);
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), -EINVAL); /* finished */
    assert_int_equal(ursa_barrier_generation(&b), 1);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    assert_int_equal(ursa_held_count(), 0); /* nothing is held after a barrier */
    assert_int_equal(ursa_barrier_destroy(&b), 0);
    assert_int_equal(ursa_barrier_destroy(&b2), 0);
    assert_int_equal(test_leak_count(), 0);
}

static void test_barrier_of_zero_or_one_party_never_waits(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= 1; n++) {
        ursa_barrier_t b;
        ursa_wait_t w;
        rwaker_t k;
        rwaker_init(&k, false);
        assert_int_equal(ursa_barrier_init(&b, n), 0);
        for (int i = 0; i < 5; i++) {
            bool leader = false;
            ursa_time_t dl = i % 2 ? URSA_NOW : URSA_NEVER;
            assert_int_equal(ursa_barrier_wait(&b, &leader, dl), 0);
            assert_true(leader);
            assert_int_equal(ursa_barrier_wait(&b, NULL, dl), 0); /* is_leader optional */
        }
        assert_int_equal(ursa_barrier_generation(&b), 10);
        assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&k)), 0);
        bool leader = false;
        assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), 0);
        assert_true(leader);
        assert_int_equal(atomic_load(&k.count), 0); /* completed at start: no wake */
        assert_int_equal(ursa_barrier_generation(&b), 11);
        assert_int_equal(ursa_barrier_arrived(&b), 0);
        assert_int_equal(ursa_barrier_destroy(&b), 0);
    }
    assert_int_equal(test_leak_count(), 0);
}

static void test_barrier_destroy_while_waited_is_ebusy(void **state)
{
    (void)state;
    ursa_barrier_t b;
    ursa_wait_t w;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_barrier_init(&b, 3), 0);
    assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_barrier_destroy(&b), -EBUSY);
    assert_int_equal(test_leak_count(), 1);
    assert_int_equal(ursa_barrier_arrived(&b), 1);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    assert_int_equal(ursa_barrier_destroy(&b), 0);
    assert_int_equal(atomic_load(&k.count), 0);
}

/* ---- one leader per generation, over seeds ---- */

#define LD_N 4

#define LD_GENS 6

static struct {
    ursa_barrier_t b;
    int arrivals[LD_GENS], passed[LD_GENS], leaders[LD_GENS];
    int ids[LD_N];
} ld;

static void *ld_party(void *arg)
{
    int id = *(int *)arg;
    for (int g = 0; g < LD_GENS; g++) {
        yield_n((unsigned)((id + g) % 3));
        ld.arrivals[g]++;
        bool leader = false;
        int rc = ursa_barrier_wait(&ld.b, &leader, URSA_NEVER);
        URSA_SIM_CHECK(rc == 0);
        /* Nobody leaves generation g before all N arrived at it. */
        URSA_SIM_CHECK(ld.arrivals[g] == LD_N);
        ld.passed[g]++;
        if (leader)
            ld.leaders[g]++;
    }
    return NULL;
}

static void *ld_root(void *arg)
{
    (void)arg;
    memset(&ld, 0, sizeof ld);
    URSA_SIM_CHECK(ursa_barrier_init(&ld.b, LD_N) == 0);
    ursa_task_t *t[LD_N];
    for (int i = 0; i < LD_N; i++) {
        ld.ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], ld_party, &ld.ids[i], "party", -1) == 0);
    }
    for (int i = 0; i < LD_N; i++)
        JOIN_OK(t[i]);
    for (int g = 0; g < LD_GENS; g++) {
        URSA_SIM_CHECK(ld.passed[g] == LD_N);
        URSA_SIM_CHECK(ld.leaders[g] == 1);
    }
    URSA_SIM_CHECK(ursa_barrier_generation(&ld.b) == LD_GENS);
    URSA_SIM_CHECK(ursa_barrier_arrived(&ld.b) == 0);
    URSA_SIM_CHECK(ursa_barrier_destroy(&ld.b) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_barrier_has_one_leader_per_generation_over_seeds, ld_root, NULL)

/* ---- stress: tasks on two workers and plain threads ---- */

#define SB_TASKS 4

#define SB_THREADS 2

#define SB_N (SB_TASKS + SB_THREADS)

static struct {
    ursa_barrier_t b;
    long gens;
    _Atomic int *arrivals, *leaders, *passed;
    _Atomic int errors, go;
    int worker_of[SB_TASKS];
} sb;

static void sb_loop(void)
{
    for (long g = 0; g < sb.gens; g++) {
        atomic_fetch_add(&sb.arrivals[g], 1);
        bool leader = false;
        if (ursa_barrier_wait(&sb.b, &leader, URSA_NEVER) != 0) {
            atomic_fetch_add(&sb.errors, 1);
            return;
        }
        if (atomic_load(&sb.arrivals[g]) != SB_N)
            atomic_fetch_add(&sb.errors, 1); /* left before everyone arrived */
        atomic_fetch_add(&sb.passed[g], 1);
        if (leader)
            atomic_fetch_add(&sb.leaders[g], 1);
    }
}

static void *sb_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&sb.go))
        sched_yield();
    sb_loop();
    return NULL;
}

static void *sb_task(void *arg)
{
    int id = (int)(intptr_t)arg;
    sb.worker_of[id] = ursa_worker_index();
    sb_loop();
    return NULL;
}

static void test_barrier_has_one_leader_per_generation_on_threads(void **state)
{
    (void)state;
    memset(&sb, 0, sizeof sb);
    sb.gens = test_scale(3000);
    sb.arrivals = checked_calloc((size_t)sb.gens, sizeof *sb.arrivals);
    sb.leaders = checked_calloc((size_t)sb.gens, sizeof *sb.leaders);
    sb.passed = checked_calloc((size_t)sb.gens, sizeof *sb.passed);
    assert_int_equal(ursa_barrier_init(&sb.b, SB_N), 0);
    run_tasks_and_threads(SB_TASKS, sb_task, "party", SB_THREADS, sb_thread, &sb.go);
    assert_int_equal(atomic_load(&sb.errors), 0);
    for (long g = 0; g < sb.gens; g++) {
        assert_int_equal(atomic_load(&sb.leaders[g]), 1);
        assert_int_equal(atomic_load(&sb.passed[g]), SB_N);
    }
    for (int i = 0; i < SB_TASKS; i++)
        assert_int_equal(sb.worker_of[i], i % 2);
    assert_int_equal(ursa_barrier_generation(&sb.b), (uint64_t)sb.gens);
    assert_int_equal(ursa_barrier_arrived(&sb.b), 0);
    assert_int_equal(ursa_barrier_destroy(&sb.b), 0);
    free(sb.arrivals);
    free(sb.leaders);
    free(sb.passed);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- a cancelled arrival is withdrawn ---- */

static struct {
    ursa_barrier_t b;
    int rc[4];   /* 1 = not returned yet */
    bool leader[4];
    bool arrived[4];
    ursa_task_t *t[4];
    int ids[4];
} cw;

static void *cw_party(void *arg)
{
    int id = *(int *)arg;
    cw.arrived[id] = true;
    cw.rc[id] = ursa_barrier_wait(&cw.b, &cw.leader[id], URSA_NEVER);
    return NULL;
}

/* Fresh state: no party yet, every rc 1, a barrier of three. */
static void *cw_reset(void)
{
    memset(&cw, 0, sizeof cw);
    for (int i = 0; i < 4; i++) {
        cw.rc[i] = 1;
        cw.ids[i] = i;
    }
    URSA_SIM_CHECK(ursa_barrier_init(&cw.b, 3) == 0);
    return NULL;
}

/* A and C wait (B withdrew): a while later neither has returned, two
 * have arrived, and the barrier has not tripped. */
static void *cw_two_wait_untripped(unsigned yields)
{
    yield_n(yields);
    URSA_SIM_CHECK(cw.rc[0] == 1 && cw.rc[2] == 1);
    URSA_SIM_CHECK(ursa_barrier_arrived(&cw.b) == 2);
    URSA_SIM_CHECK(ursa_barrier_generation(&cw.b) == 0);
    return NULL;
}

/* Then a replacement, D, trips it: A, C and D return 0, one leads. */
static void *cw_replacement_trips(void)
{
    URSA_SIM_CHECK(spawn_named(&cw.t[3], cw_party, &cw.ids[3], "D", -1) == 0);
    JOIN_OK(cw.t[0]);
    JOIN_OK(cw.t[2]);
    JOIN_OK(cw.t[3]);
    URSA_SIM_CHECK(cw.rc[0] == 0 && cw.rc[2] == 0 && cw.rc[3] == 0);
    URSA_SIM_CHECK(cw.leader[0] + cw.leader[2] + cw.leader[3] == 1);
    URSA_SIM_CHECK(ursa_barrier_generation(&cw.b) == 1);
    return NULL;
}

static void *cw_root(void *arg)
{
    (void)arg;
    CHECK_OK(cw_reset());
    /* A and B arrive; B is cancelled. */
    URSA_SIM_CHECK(spawn_named(&cw.t[0], cw_party, &cw.ids[0], "A", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&cw.t[1], cw_party, &cw.ids[1], "B", -1) == 0);
    YIELD_UNTIL(cw.arrived[0] && cw.arrived[1]);
    URSA_SIM_CHECK(ursa_barrier_arrived(&cw.b) == 2);
    URSA_SIM_CHECK(ursa_task_cancel(cw.t[1]) == 0);
    JOIN_OK(cw.t[1]);
    URSA_SIM_CHECK(cw.rc[1] == -ECANCELED);
    URSA_SIM_CHECK(ursa_barrier_arrived(&cw.b) == 1);
    /* C arrives: with B withdrawn that makes two of three, no trip. */
    URSA_SIM_CHECK(spawn_named(&cw.t[2], cw_party, &cw.ids[2], "C", -1) == 0);
    YIELD_UNTIL(cw.arrived[2]);
    CHECK_OK(cw_two_wait_untripped(5));
    /* A replacement (D) trips it. */
    CHECK_OK(cw_replacement_trips());
    URSA_SIM_CHECK(cw.leader[3]); /* the last to arrive leads */
    URSA_SIM_CHECK(ursa_barrier_arrived(&cw.b) == 0);
    URSA_SIM_CHECK(ursa_barrier_destroy(&cw.b) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_barrier_cancelled_arrival_is_withdrawn_over_seeds, cw_root, NULL)

/* Deadlines on a plain thread: a timed-out arrival is withdrawn too. */
static void test_barrier_timed_out_arrival_is_withdrawn(void **state)
{
    (void)state;
    ursa_barrier_t b;
    ursa_wait_t w;
    rwaker_t k;
    bool leader = true;
    rwaker_init(&k, false);
    assert_int_equal(ursa_barrier_init(&b, 2), 0);
    assert_int_equal(ursa_barrier_wait(&b, &leader, ursa_deadline_in(0)), -ETIMEDOUT);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    ursa_time_t t0 = mono_ns();
    assert_int_equal(ursa_barrier_wait(&b, &leader, ursa_deadline_in(URSA_MSEC(20))), -ETIMEDOUT);
    assert_true(mono_ns() - t0 >= URSA_MSEC(20));
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    assert_int_equal(ursa_barrier_generation(&b), 0);
    /* The barrier still needs two: a raw arrival, then ours trips it. */
    assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_barrier_wait(&b, &leader, ursa_deadline_in(URSA_MSEC(20))), 0);
    assert_true(leader);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), 0);
    assert_false(leader);
    assert_int_equal(ursa_barrier_generation(&b), 1);
    assert_int_equal(ursa_barrier_destroy(&b), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- cancel (or deadline) racing the trip, over seeds ---- */

static struct {
    long completed, withdrawn;
} cr_stats;

static void *cr_canceller(void *arg)
{
    (void)arg;
    YIELD_UNTIL(cw.arrived[1]);
    (void)ursa_yield();
    URSA_SIM_CHECK(ursa_task_cancel(cw.t[1]) == 0);
    return NULL;
}

static void *cr_party_deadline(void *arg)
{
    int id = *(int *)arg;
    cw.arrived[id] = true;
    cw.rc[id] = ursa_barrier_wait(&cw.b, &cw.leader[id], ursa_deadline_in(URSA_USEC(10)));
    return NULL;
}

static void *cr_party_late(void *arg)
{
    int id = *(int *)arg;
    YIELD_UNTIL(cw.arrived[1]);
    (void)ursa_sleep_for(URSA_USEC(10)); /* arrive just as B's deadline fires */
    cw.arrived[id] = true;
    cw.rc[id] = ursa_barrier_wait(&cw.b, &cw.leader[id], URSA_NEVER);
    return NULL;
}

/* arg 0: B is cancelled by a task while C arrives; 1: B's deadline fires
 * while C arrives. */
static void *cr_root(void *arg)
{
    bool by_deadline = arg != NULL;
    CHECK_OK(cw_reset());
    ursa_task_t *c = NULL;
    URSA_SIM_CHECK(spawn_named(&cw.t[0], cw_party, &cw.ids[0], "A", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&cw.t[1], by_deadline ? cr_party_deadline : cw_party, &cw.ids[1],
                               "B", -1) == 0);
    if (by_deadline) {
        URSA_SIM_CHECK(spawn_named(&cw.t[2], cr_party_late, &cw.ids[2], "C", -1) == 0);
    } else {
        URSA_SIM_CHECK(spawn_named(&c, cr_canceller, NULL, "canceller", -1) == 0);
        YIELD_UNTIL(cw.arrived[1]);
        (void)ursa_yield();
        URSA_SIM_CHECK(spawn_named(&cw.t[2], cw_party, &cw.ids[2], "C", -1) == 0);
        JOIN_OK(c);
    }
    JOIN_OK(cw.t[1]);
    if (cw.rc[1] == 0) {
        /* B was part of the generation: A, B, C all complete, one leader. */
        JOIN_OK(cw.t[0]);
        JOIN_OK(cw.t[2]);
        URSA_SIM_CHECK(cw.rc[0] == 0 && cw.rc[2] == 0);
        URSA_SIM_CHECK(cw.leader[0] + cw.leader[1] + cw.leader[2] == 1);
        URSA_SIM_CHECK(ursa_barrier_generation(&cw.b) == 1);
        cr_stats.completed++;
    } else {
        /* B withdrew: the generation needs a third party. */
        URSA_SIM_CHECK(cw.rc[1] == (by_deadline ? -ETIMEDOUT : -ECANCELED));
        URSA_SIM_CHECK(!cw.leader[1]);
        YIELD_UNTIL(cw.arrived[0] && cw.arrived[2]);
        CHECK_OK(cw_two_wait_untripped(3));
        CHECK_OK(cw_replacement_trips());
        cr_stats.withdrawn++;
    }
    URSA_SIM_CHECK(ursa_barrier_arrived(&cw.b) == 0);
    URSA_SIM_CHECK(ursa_barrier_destroy(&cw.b) == 0);
    return NULL;
}

static void test_barrier_cancel_or_deadline_racing_the_trip_loses_no_party_over_seeds(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        memset(&cr_stats, 0, sizeof cr_stats);
        uint64_t seed = 0;
        int rc = ursa_sim_explore(NULL, cr_root, mode ? (void *)1 : NULL, 1, TEST_SEEDS, &seed);
        if (rc)
            fail_msg("mode %d: seed %llu: %s", mode, (unsigned long long)seed, ursa_strerror(rc));
        print_message("cancel vs trip (%s): %ld completed, %ld withdrawn\n",
                      mode ? "deadline" : "cancel", cr_stats.completed, cr_stats.withdrawn);
        /* Both outcomes occur over the seeds (unless replaying one). */
        if (!getenv("URSA_SEED") && TEST_SEEDS >= 100) {
            assert_true(cr_stats.completed > 0);
            assert_true(cr_stats.withdrawn > 0);
        }
    }
    assert_int_equal(test_leak_count(), 0);
}

/* ---- raw form ---- */

/* Raw cancel before the trip withdraws the arrival; after it, changes
 * nothing (the trip stands, the grant is discarded). */
static void test_barrier_raw_cancel_withdraws_before_the_trip_changes_nothing_after(void **state)
{
    (void)state;
    ursa_barrier_t b;
    ursa_wait_t w;
    rwaker_t r;
    bool leader = true;
    rwaker_init(&r, false);
    assert_int_equal(ursa_barrier_init(&b, 2), 0);
    assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_wait_cancel(&w), -EINVAL);
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader), -EINVAL);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    assert_int_equal(ursa_barrier_wait(&b, &leader, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_barrier_wait_start(&b, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_barrier_wait(&b, &leader, URSA_NOW), 0); /* trips */
    assert_true(leader);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED); /* too late: discarded */
    assert_int_equal(ursa_barrier_generation(&b), 1);
    assert_int_equal(ursa_barrier_arrived(&b), 0);
    assert_int_equal(atomic_load(&r.count), 1);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_barrier_destroy(&b), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Raw cancel racing another thread's trip on real threads: either the
 * cancel withdrew (then the other party times out alone) or the wait was
 * already granted (the waker ran once, the other party led). */
static struct {
    ursa_barrier_t b;
    _Atomic long round, done;
    _Atomic int rc;
    _Atomic bool leader;
} rt2;

static void *rt2_thread(void *arg)
{
    long n = *(long *)arg;
    for (long i = 1; i <= n; i++) {
        while (atomic_load(&rt2.round) != i)
            sched_yield();
        bool leader = false;
        int rc = ursa_barrier_wait(&rt2.b, &leader, ursa_deadline_in(URSA_MSEC(2)));
        atomic_store(&rt2.leader, leader);
        atomic_store(&rt2.rc, rc);
        atomic_store(&rt2.done, i);
    }
    return NULL;
}

static void test_barrier_raw_cancel_racing_a_trip_on_threads(void **state)
{
    (void)state;
    long n = test_scale(300);
    long granted = 0, withdrawn = 0;
    memset(&rt2, 0, sizeof rt2);
    assert_int_equal(ursa_barrier_init(&rt2.b, 2), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rt2_thread, &n), 0);
    for (long i = 1; i <= n; i++) {
        ursa_wait_t w;
        rwaker_t r;
        rwaker_init(&r, false);
        assert_int_equal(ursa_barrier_wait_start(&rt2.b, &w, rwaker(&r)), -EINPROGRESS);
        atomic_store(&rt2.round, i);
        for (long k = 0; k < (i % 64) * 200; k++)
            atomic_signal_fence(memory_order_seq_cst);
        assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
        int woke = atomic_load(&r.count);
        while (atomic_load(&rt2.done) != i)
            sched_yield();
        if (woke) {
            assert_int_equal(atomic_load(&rt2.rc), 0);
            assert_true(atomic_load(&rt2.leader));
            granted++;
        } else {
            assert_int_equal(atomic_load(&rt2.rc), -ETIMEDOUT);
            withdrawn++;
        }
        assert_int_equal(atomic_load(&r.count), woke); /* no late wake */
        assert_int_equal(ursa_barrier_arrived(&rt2.b), 0);
        assert_int_equal(ursa_barrier_generation(&rt2.b), (uint64_t)granted);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    print_message("raw cancel vs trip: %ld granted, %ld withdrawn\n", granted, withdrawn);
    assert_int_equal(ursa_barrier_destroy(&rt2.b), 0);
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_barrier_rejects_bad_arguments_and_a_try_is_not_counted),
          LEAK_CHECKED(test_barrier_of_zero_or_one_party_never_waits),
          LEAK_CHECKED(test_barrier_destroy_while_waited_is_ebusy),
          LEAK_CHECKED(test_barrier_has_one_leader_per_generation_over_seeds),
          LEAK_CHECKED(test_barrier_has_one_leader_per_generation_on_threads),
          LEAK_CHECKED(test_barrier_cancelled_arrival_is_withdrawn_over_seeds),
          LEAK_CHECKED(test_barrier_timed_out_arrival_is_withdrawn),
          LEAK_CHECKED(test_barrier_cancel_or_deadline_racing_the_trip_loses_no_party_over_seeds),
          LEAK_CHECKED(test_barrier_raw_cancel_withdraws_before_the_trip_changes_nothing_after),
          LEAK_CHECKED(test_barrier_raw_cancel_racing_a_trip_on_threads))
