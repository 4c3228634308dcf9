/* ursa_rwlock's writers: a waiting writer keeps new readers out, bounded
 * by URSA_RWLOCK_WRITER_STREAK (over seeds, step by step with raw waits,
 * and on threads); downgrade; a cancelled queued writer lets the readers
 * behind it in. */

#include "support.h"
#include "ursa/rwlock.h"

#include "raw_checks.h"

/* ---- writer preference, bounded ---- */

/* A reader that arrives while a writer waits queues behind it, even
 * though only readers hold the lock. */
static struct {
    ursa_rwlock_t rw;
    bool w_queued, r_queued, w_in, r_in, r_after_w;
} wp;

static void *wp_writer(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t g = {0};
    wp.w_queued = true;
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&wp.rw, &g, URSA_NEVER) == 0);
    wp.w_in = true;
    (void)ursa_yield();
    URSA_SIM_CHECK(!wp.r_in);
    wp.w_in = false;
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
    return NULL;
}

static void *wp_reader(void *arg)
{
    (void)arg;
    YIELD_UNTIL(wp.w_queued);
    ursa_rwlock_read_guard_t g = {0};
    wp.r_queued = true;
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&wp.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(!wp.w_in);
    wp.r_in = true;
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    return NULL;
}

static void *wp_root(void *arg)
{
    (void)arg;
    memset(&wp, 0, sizeof wp);
    URSA_SIM_CHECK(ursa_rwlock_init(&wp.rw, 0) == 0);
    ursa_rwlock_read_guard_t g = {0};
    ursa_task_t *w, *r;
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&wp.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(spawn_named(&r, wp_reader, NULL, "reader", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&w, wp_writer, NULL, "writer", -1) == 0);
    YIELD_UNTIL(wp.r_queued);
    yield_n(5);
    URSA_SIM_CHECK(!wp.r_in && !wp.w_in); /* the reader waits behind the writer */
    URSA_SIM_CHECK(ursa_rwlock_readers(&wp.rw) == 1);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    JOIN_OK(w);
    JOIN_OK(r);
    URSA_SIM_CHECK(wp.r_in);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&wp.rw) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_rwlock_reader_queues_behind_a_waiting_writer, wp_root, NULL)

/* A continuous stream of writers (each re-queues after its turn) and one
 * reader that queues behind `nw` of them: the reader gets in after
 * min(nw, URSA_RWLOCK_WRITER_STREAK) writer hand-offs. */
#define BP_MAX_WRITERS 32

static struct {
    ursa_rwlock_t rw;
    int nw, queued;
    bool r_queued, r_in, stop;
    int handoffs, inside;
    int ids[BP_MAX_WRITERS];
} bp;

static void *bp_writer(void *arg)
{
    (void)arg;
    for (;;) {
        ursa_rwlock_write_guard_t g = {0};
        bp.queued++;
        int rc = ursa_rwlock_write_lock(&bp.rw, &g, URSA_NEVER);
        bp.queued--;
        URSA_SIM_CHECK(rc == 0);
        URSA_SIM_CHECK(bp.inside == 0);
        bp.inside++;
        if (bp.r_queued && !bp.r_in)
            bp.handoffs++;
        (void)ursa_yield();
        bp.inside--;
        URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
        if (bp.stop)
            return NULL;
        (void)ursa_yield();
    }
}

static void *bp_reader(void *arg)
{
    (void)arg;
    YIELD_UNTIL(bp.queued == bp.nw); /* every writer queued ahead of us */
    ursa_rwlock_read_guard_t g = {0};
    bp.r_queued = true;
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&bp.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(bp.inside == 0);
    bp.r_in = true;
    bp.stop = true;
    (void)ursa_yield();
    URSA_SIM_CHECK(bp.inside == 0);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    return NULL;
}

static void *bp_root(void *arg)
{
    memset(&bp, 0, sizeof bp);
    bp.nw = (int)(intptr_t)arg;
    URSA_SIM_CHECK(ursa_rwlock_init(&bp.rw, 8) == 0);
    ursa_rwlock_write_guard_t g = {0};
    ursa_task_t *w[BP_MAX_WRITERS], *r;
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&bp.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(spawn_named(&r, bp_reader, NULL, "reader", -1) == 0);
    for (int i = 0; i < bp.nw; i++)
        URSA_SIM_CHECK(spawn_named(&w[i], bp_writer, NULL, "writer", -1) == 0);
    YIELD_UNTIL(bp.r_queued);
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
    JOIN_OK(r);
    for (int i = 0; i < bp.nw; i++)
        JOIN_OK(w[i]);
    int want = bp.nw < URSA_RWLOCK_WRITER_STREAK ? bp.nw : URSA_RWLOCK_WRITER_STREAK;
    URSA_SIM_CHECK(bp.handoffs == want);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&bp.rw) == 0);
    return NULL;
}

static void test_rwlock_reader_gets_in_after_the_writer_streak_over_seeds(void **state)
{
    (void)state;
    /* Fewer writers ahead than the bound: plain FIFO, the reader waits for
     * each of them. More: exactly URSA_RWLOCK_WRITER_STREAK. */
    static const int counts[] = {5, 16, 17, 32};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint64_t seed = 0;
        int rc = ursa_sim_explore(NULL, bp_root, (void *)(intptr_t)counts[i], 1,
                                  TEST_SEEDS / 6 + 1, &seed);
        if (rc)
            fail_msg("%d writers: seed %llu: %s", counts[i], (unsigned long long)seed,
                     ursa_strerror(rc));
    }
    assert_int_equal(test_leak_count(), 0);
}

/* The same bound, step by step, with raw waits on a plain thread: 20
 * writers queue, then a reader, then 3 more writers. The writers ahead go
 * in FIFO order until 16 have entered; then the reader, ahead of the 4
 * writers still waiting; the rest in FIFO order again. */
static void test_rwlock_writer_streak_step_by_step_with_raw_waits(void **state)
{
    (void)state;
    enum { NB = 20, NA = 3 };
    ursa_rwlock_t rw;
    ursa_rwlock_write_guard_t g = {0};
    ursa_rwlock_read_guard_t rg = {0};
    ursa_wait_t ww[NB + NA], rw_wait;
    rwaker_t kw[NB + NA], kr;
    assert_int_equal(ursa_rwlock_init(&rw, 4), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g, URSA_NOW), 0);
    for (int i = 0; i < NB; i++) {
        rwaker_init(&kw[i], false);
        assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww[i], rwaker(&kw[i])), -EINPROGRESS);
    }
    rwaker_init(&kr, false);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &rw_wait, rwaker(&kr)), -EINPROGRESS);
    for (int i = NB; i < NB + NA; i++) {
        rwaker_init(&kw[i], false);
        assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww[i], rwaker(&kw[i])), -EINPROGRESS);
    }
    /* Order of entry expected: W0..W15, R, W16..W22. */
    for (int i = 0; i < URSA_RWLOCK_WRITER_STREAK; i++) {
        assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
        assert_true(ursa_wait_ready(&ww[i]));
        assert_false(ursa_wait_ready(&rw_wait));
        assert_false(ursa_wait_ready(&ww[i + 1]));
        assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww[i], &g), 0);
    }
    assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
    assert_true(ursa_wait_ready(&rw_wait));
    assert_int_equal(atomic_load(&kr.count), 1);
    for (int i = URSA_RWLOCK_WRITER_STREAK; i < NB + NA; i++)
        assert_false(ursa_wait_ready(&ww[i]));
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &rw_wait, &rg), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 1);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0);
    for (int i = URSA_RWLOCK_WRITER_STREAK; i < NB + NA; i++) {
        assert_true(ursa_wait_ready(&ww[i]));
        if (i + 1 < NB + NA)
            assert_false(ursa_wait_ready(&ww[i + 1]));
        assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww[i], &g), 0);
        assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
    }
    for (int i = 0; i < NB + NA; i++)
        assert_int_equal(atomic_load(&kw[i].count), 1);
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);

    /* The streak runs out while the head writer has permits partly
     * assigned (a downgraded reader still holds): those go to the promoted
     * readers too, so all of them get in at once. A reader X queues behind
     * 17 writers so that 16 count, then withdraws. */
    enum { NR = 3 };
    ursa_wait_t rr[NR], wx;
    rwaker_t krr[NR], kx;
    ursa_rwlock_read_guard_t rgs[NR];
    memset(rgs, 0, sizeof rgs);
    assert_int_equal(ursa_rwlock_init(&rw, 4), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g, URSA_NOW), 0);
    for (int i = 0; i < URSA_RWLOCK_WRITER_STREAK + 1; i++) {
        rwaker_init(&kw[i], false);
        assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww[i], rwaker(&kw[i])), -EINPROGRESS);
    }
    rwaker_init(&kx, false);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wx, rwaker(&kx)), -EINPROGRESS);
    for (int i = 0; i < URSA_RWLOCK_WRITER_STREAK; i++) {
        assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
        assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww[i], &g), 0);
    }
    assert_false(ursa_wait_ready(&wx));
    assert_int_equal(ursa_wait_cancel(&wx), -ECANCELED);
    /* No reader queued: the downgrade assigns 3 of 4 permits to W16. */
    assert_int_equal(ursa_rwlock_downgrade(&g, &rg), 0);
    assert_false(ursa_wait_ready(&ww[URSA_RWLOCK_WRITER_STREAK]));
    for (int i = 0; i < NR; i++) {
        rwaker_init(&krr[i], false);
        assert_int_equal(ursa_rwlock_read_lock_start(&rw, &rr[i], rwaker(&krr[i])), -EINPROGRESS);
    }
    for (int i = 0; i < NR; i++)
        assert_false(ursa_wait_ready(&rr[i]));
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0); /* streak used up: readers first */
    for (int i = 0; i < NR; i++) {
        assert_true(ursa_wait_ready(&rr[i]));
        assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &rr[i], &rgs[i]), 0);
    }
    assert_int_equal(ursa_rwlock_readers(&rw), NR);
    assert_false(ursa_wait_ready(&ww[URSA_RWLOCK_WRITER_STREAK]));
    for (int i = 0; i < NR; i++)
        assert_int_equal(ursa_rwlock_read_unlock(&rgs[i]), 0);
    assert_true(ursa_wait_ready(&ww[URSA_RWLOCK_WRITER_STREAK]));
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww[URSA_RWLOCK_WRITER_STREAK], &g), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* The bound on real threads: writer tasks on two workers lock in a loop
 * while a plain thread queues a raw read wait and counts the writers that
 * enter between its queueing and its grant. */
#define WB_WRITERS 24

static struct {
    ursa_rwlock_t rw;
    _Atomic long entries;
    _Atomic int stop, inside, errors;
    long rounds, max_seen, total;
} wb;

static void *wb_writer(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&wb.stop); i++) {
        ursa_rwlock_write_guard_t g = {0};
        if (ursa_rwlock_write_lock(&wb.rw, &g, URSA_NEVER)) {
            atomic_fetch_add(&wb.errors, 1);
            return NULL;
        }
        if (atomic_fetch_add(&wb.inside, 1) != 0)
            atomic_fetch_add(&wb.errors, 1);
        atomic_fetch_add(&wb.entries, 1);
        if (i & 1)
            (void)ursa_yield();
        atomic_fetch_sub(&wb.inside, 1);
        if (ursa_rwlock_write_unlock(&g))
            atomic_fetch_add(&wb.errors, 1);
    }
    return NULL;
}

static void *wb_root(void *arg)
{
    (void)arg;
    ursa_task_t *t[WB_WRITERS];
    for (int i = 0; i < WB_WRITERS; i++)
        if (spawn_named(&t[i], wb_writer, NULL, "writer", i % 2))
            return "spawn failed";
    for (int i = 0; i < WB_WRITERS; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER))
            return "join failed";
    return NULL;
}

static void *wb_reader(void *arg)
{
    (void)arg;
    for (long r = 0; r < wb.rounds; r++) {
        ursa_wait_t w;
        rwaker_t k;
        ursa_rwlock_read_guard_t g = {0};
        rwaker_init(&k, false);
        int rc = ursa_rwlock_read_lock_start(&wb.rw, &w, rwaker(&k));
        long c0 = atomic_load(&wb.entries); /* we are queued by now (or granted) */
        if (rc != 0 && rc != -EINPROGRESS) {
            atomic_fetch_add(&wb.errors, 1);
            break;
        }
        if (!await_ready(&w)) {
            atomic_fetch_add(&wb.errors, 1000); /* starved */
            (void)ursa_wait_cancel(&w);
            break;
        }
        /* No writer enters while our granted wait holds its permit. */
        long seen = atomic_load(&wb.entries) - c0;
        if (ursa_rwlock_read_lock_finish(&wb.rw, &w, &g) != 0 || atomic_load(&wb.inside) != 0)
            atomic_fetch_add(&wb.errors, 1);
        if (ursa_rwlock_read_unlock(&g))
            atomic_fetch_add(&wb.errors, 1);
        if (seen > wb.max_seen)
            wb.max_seen = seen;
        wb.total += seen;
        if (r % 8 == 0)
            usleep(100);
    }
    atomic_store(&wb.stop, 1);
    return NULL;
}

static void test_rwlock_writer_streak_bounds_a_reader_wait_on_threads(void **state)
{
    (void)state;
    memset(&wb, 0, sizeof wb);
    assert_int_equal(ursa_rwlock_init(&wb.rw, 0), 0);
    wb.rounds = test_scale(300);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wb_reader, NULL), 0);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    void *res = NULL;
    int rc = ursa_rt_block_on(rt, wb_root, NULL, &res);
    atomic_store(&wb.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    ursa_rt_free(rt);
    assert_int_equal(rc, 0);
    fail_if_msg(res);
    assert_int_equal(atomic_load(&wb.errors), 0);
    print_message("writer bound on threads: at most %ld writers (avg %.1f) ahead of a reader, "
                  "%ld writes\n", wb.max_seen, (double)wb.total / (double)wb.rounds,
                  atomic_load(&wb.entries));
    /* A writer that already held (or had been granted) the lock when the
     * reader queued may count its entry after c0 was read: it is the one
     * extra allowed. The exact bound is checked in the scenario tests. */
    assert_true(wb.max_seen <= URSA_RWLOCK_WRITER_STREAK + 1);
    assert_int_equal(ursa_rwlock_readers(&wb.rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&wb.rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- downgrade ---- */

static void test_rwlock_downgrade_admits_queued_readers_not_writers(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_write_guard_t g = {0}, g2 = {0};
    ursa_rwlock_read_guard_t rg = {0}, r[3];
    memset(r, 0, sizeof r);
    ursa_wait_t wr[3], ww;
    rwaker_t kr[3], kw;
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g, URSA_NEVER), 0);
    /* R0, R1 queue, then W, then R2 (behind W). */
    for (int i = 0; i < 2; i++) {
        rwaker_init(&kr[i], false);
        assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wr[i], rwaker(&kr[i])), -EINPROGRESS);
    }
    rwaker_init(&kw, false);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww, rwaker(&kw)), -EINPROGRESS);
    rwaker_init(&kr[2], false);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wr[2], rwaker(&kr[2])), -EINPROGRESS);
    assert_int_equal(ursa_held_count(), 1);

    assert_int_equal(ursa_rwlock_downgrade(&g, &rg), 0);
    assert_null(g.rw);
    assert_ptr_equal(rg.rw, &rw);
    assert_int_equal(ursa_held_count(), 1); /* the same hold, now a read guard */
    assert_false(ursa_rwlock_is_write_locked(&rw));
    assert_true(ursa_wait_ready(&wr[0]));
    assert_true(ursa_wait_ready(&wr[1]));
    assert_false(ursa_wait_ready(&ww));    /* writers still wait */
    assert_false(ursa_wait_ready(&wr[2])); /* and so do readers behind them */
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr[0], &r[0]), 0);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr[1], &r[1]), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 3);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g2, URSA_NOW), -EAGAIN);
    /* The downgraded guard is a read guard: it can't be write-unlocked or
     * downgraded again, and it unlocks as a read guard. */
    assert_int_equal(ursa_rwlock_write_unlock(&g), -EINVAL);
    assert_int_equal(ursa_rwlock_downgrade(&g, &r[2]), -EINVAL);
    assert_int_equal(test_leak_count(), 2);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[0]), 0);
    assert_false(ursa_wait_ready(&ww));
    assert_int_equal(ursa_rwlock_read_unlock(&r[1]), 0);
    assert_true(ursa_wait_ready(&ww));
    assert_false(ursa_wait_ready(&wr[2]));
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww, &g2), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&g2), 0);
    assert_true(ursa_wait_ready(&wr[2]));
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr[2], &r[2]), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[2]), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

/* Downgrade in tasks: queued readers get in while the downgrader still
 * reads; a writer still waits until every reader left. */
static struct {
    ursa_rwlock_t rw;
    int r_queued, r_in, w_queued;
    bool w_in, down_done;
} dg;

static void *dg_reader(void *arg)
{
    (void)arg;
    ursa_rwlock_read_guard_t g = {0};
    dg.r_queued++;
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&dg.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(dg.down_done && !dg.w_in);
    dg.r_in++;
    YIELD_UNTIL(dg.r_in == 2); /* both readers inside at once */
    (void)ursa_yield();
    URSA_SIM_CHECK(!dg.w_in);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    return NULL;
}

static void *dg_writer(void *arg)
{
    (void)arg;
    YIELD_UNTIL(dg.r_queued == 2);
    ursa_rwlock_write_guard_t g = {0};
    dg.w_queued = 1;
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&dg.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_rwlock_readers(&dg.rw) == 0);
    dg.w_in = true;
    (void)ursa_yield();
    dg.w_in = false;
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
    return NULL;
}

static void *dg_root(void *arg)
{
    (void)arg;
    memset(&dg, 0, sizeof dg);
    URSA_SIM_CHECK(ursa_rwlock_init(&dg.rw, 0) == 0);
    ursa_rwlock_write_guard_t g = {0};
    ursa_rwlock_read_guard_t rg = {0};
    ursa_task_t *r[2], *w;
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&dg.rw, &g, URSA_NEVER) == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(spawn_named(&r[i], dg_reader, NULL, "reader", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&w, dg_writer, NULL, "writer", -1) == 0);
    YIELD_UNTIL(dg.w_queued);
    dg.down_done = true;
    URSA_SIM_CHECK(ursa_rwlock_downgrade(&g, &rg) == 0);
    YIELD_UNTIL(dg.r_in == 2); /* readers in while we still hold a read lock */
    URSA_SIM_CHECK(!dg.w_in);
    URSA_SIM_CHECK(ursa_held_count() == 1);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&rg) == 0);
    JOIN_OK(r[0]);
    JOIN_OK(r[1]);
    JOIN_OK(w);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&dg.rw) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_rwlock_downgrade_lets_readers_in_while_still_reading, dg_root, NULL)

/* ---- cancelling a queued writer ---- */

static void test_rwlock_cancelled_writer_lets_the_readers_behind_it_in(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r0 = {0}, r[2];
    memset(r, 0, sizeof r);
    ursa_wait_t ww, wr[2];
    rwaker_t kw, kr[2];
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r0, URSA_NEVER), 0);
    rwaker_init(&kw, false);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww, rwaker(&kw)), -EINPROGRESS);
    for (int i = 0; i < 2; i++) {
        rwaker_init(&kr[i], false);
        assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wr[i], rwaker(&kr[i])), -EINPROGRESS);
        assert_false(ursa_wait_ready(&wr[i]));
    }
    /* The writer holds all but one permit assigned; cancelling hands them
     * on: both readers get in while r0 still reads. */
    assert_int_equal(ursa_wait_cancel(&ww), -ECANCELED);
    assert_int_equal(atomic_load(&kw.count), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(ursa_wait_ready(&wr[i]));
        assert_int_equal(atomic_load(&kr[i].count), 1);
        assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr[i], &r[i]), 0);
    }
    assert_int_equal(ursa_rwlock_readers(&rw), 3);
    assert_int_equal(ursa_rwlock_read_unlock(&r0), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[0]), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[1]), 0);

    /* A granted but never finished raw writer, cancelled: the lock goes
     * on to the readers behind it. */
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r0, URSA_NEVER), 0);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww, rwaker(&kw)), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wr[0], rwaker(&kr[0])), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_unlock(&r0), 0);
    assert_true(ursa_wait_ready(&ww));
    assert_false(ursa_wait_ready(&wr[0]));
    assert_int_equal(ursa_wait_cancel(&ww), -ECANCELED);
    assert_true(ursa_wait_ready(&wr[0]));
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr[0], &r[0]), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[0]), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

static struct {
    ursa_rwlock_t rw;
    int w_rc, r_in;
    bool w_queued, r_queued[2];
    ursa_task_t *w;
} cq;

static void *cq_writer(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t g = {0};
    cq.w_queued = true;
    cq.w_rc = ursa_rwlock_write_lock(&cq.rw, &g, URSA_NEVER);
    URSA_SIM_CHECK(cq.w_rc == -ECANCELED && g.rw == NULL);
    URSA_SIM_CHECK(ursa_held_count() == 0);
    return NULL;
}

static void *cq_reader(void *arg)
{
    int id = *(int *)arg;
    YIELD_UNTIL(cq.w_queued);
    ursa_rwlock_read_guard_t g = {0};
    cq.r_queued[id] = true;
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&cq.rw, &g, URSA_NEVER) == 0);
    cq.r_in++;
    YIELD_UNTIL(cq.r_in == 2);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    return NULL;
}

static void *cq_root(void *arg)
{
    (void)arg;
    static int ids[2] = {0, 1};
    memset(&cq, 0, sizeof cq);
    cq.w_rc = 1;
    URSA_SIM_CHECK(ursa_rwlock_init(&cq.rw, 0) == 0);
    ursa_rwlock_read_guard_t g = {0};
    ursa_task_t *r[2];
    URSA_SIM_CHECK(ursa_rwlock_read_lock(&cq.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(spawn_named(&cq.w, cq_writer, NULL, "writer", -1) == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(spawn_named(&r[i], cq_reader, &ids[i], "reader", -1) == 0);
    YIELD_UNTIL(cq.r_queued[0] && cq.r_queued[1]);
    yield_n(3);
    URSA_SIM_CHECK(cq.r_in == 0); /* behind the writer */
    URSA_SIM_CHECK(ursa_task_cancel(cq.w) == 0);
    JOIN_OK(cq.w);
    /* Both readers get in while we still hold our read lock. */
    YIELD_UNTIL(cq.r_in == 2);
    URSA_SIM_CHECK(g.rw == &cq.rw);
    JOIN_OK(r[0]);
    JOIN_OK(r[1]);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    ursa_rwlock_write_guard_t wg = {0};
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&cq.rw, &wg, URSA_NOW) == 0); /* nothing lost */
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&wg) == 0);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&cq.rw) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_rwlock_cancelled_writer_task_lets_readers_in_over_seeds, cq_root, NULL)

TEST_MAIN(LEAK_CHECKED(test_rwlock_reader_queues_behind_a_waiting_writer),
          LEAK_CHECKED(test_rwlock_reader_gets_in_after_the_writer_streak_over_seeds),
          LEAK_CHECKED(test_rwlock_writer_streak_step_by_step_with_raw_waits),
          LEAK_CHECKED(test_rwlock_writer_streak_bounds_a_reader_wait_on_threads),
          LEAK_CHECKED(test_rwlock_downgrade_admits_queued_readers_not_writers),
          LEAK_CHECKED(test_rwlock_downgrade_lets_readers_in_while_still_reading),
          LEAK_CHECKED(test_rwlock_cancelled_writer_lets_the_readers_behind_it_in),
          LEAK_CHECKED(test_rwlock_cancelled_writer_task_lets_readers_in_over_seeds))
