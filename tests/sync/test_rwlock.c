/* Tests for ursa_rwlock: argument errors, shared/exclusive semantics and
 * deadlines, reader/writer exclusion over many seeds, writer preference
 * and its bound (URSA_RWLOCK_WRITER_STREAK), downgrade, cancelling a
 * queued writer, max readers, the three calling contexts (tasks on two
 * workers + plain threads, raw waits with a foreign waker), leaks and
 * poisoning, ownership, URSA_SCOPED, a multi-thread stress run, and the
 * reader bias (fast readers vs revoking, timed-out and cancelled writers,
 * remote unlocks, recycled reader tables, more locks than table columns).
 *
 * Scenario tasks never call cmocka asserts: they return NULL or a message
 * (URSA_SIM_CHECK); the test body asserts. */
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/sema.h" /* ursa__sema_has_waiters: to know a waiter is queued */
#include "support.h"
#include "ursa/rwlock.h"

/* ---- helpers ---- */

#include "raw_checks.h"

/* ---- argument errors, basics ---- */

static void test_rwlock_invalid_args(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r = {0}, r2 = {0};
    ursa_rwlock_write_guard_t w = {0};
    ursa_wait_t wt;
    rwaker_t k;
    rwaker_init(&k, false);

    assert_int_equal(ursa_rwlock_init(NULL, 0), -EINVAL);
    assert_int_equal(ursa_rwlock_init(&rw, URSA_RWLOCK_MAX_READERS + 1), -EINVAL);
    assert_int_equal(ursa_rwlock_init(&rw, URSA_RWLOCK_MAX_READERS), 0);
    assert_int_equal(rw.max_readers, URSA_RWLOCK_MAX_READERS);
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_int_equal(rw.max_readers, URSA_RWLOCK_DEFAULT_READERS);
    assert_int_equal(ursa_rwlock_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_rwlock_consistent(NULL), -EINVAL);
    assert_int_equal(ursa_rwlock_read_unlock(NULL), -EINVAL);
    assert_int_equal(ursa_rwlock_write_unlock(NULL), -EINVAL);
    assert_int_equal(ursa_rwlock_downgrade(NULL, &r), -EINVAL);
    assert_int_equal(ursa_rwlock_downgrade(&w, NULL), -EINVAL);
    assert_false(ursa_rwlock_is_write_locked(NULL));
    assert_int_equal(ursa_rwlock_readers(NULL), 0);

    assert_int_equal(ursa_rwlock_read_lock(NULL, &r, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock(&rw, NULL, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_rwlock_write_lock(NULL, &w, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_rwlock_write_lock(&rw, NULL, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock_start(NULL, &wt, rwaker(&k)), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, NULL, rwaker(&k)), -EINVAL);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &wt, ((ursa_waker_t){NULL, NULL})),
                     -EINVAL);

    /* A guard that holds cannot be locked into. */
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r, URSA_NEVER), 0);
    assert_ptr_equal(r.rw, &rw);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_rwlock_readers(&rw), 1);
    assert_int_equal(ursa_held_count(), 1);
    /* Downgrade of an empty write guard, into a read guard that holds. */
    assert_int_equal(ursa_rwlock_downgrade(&w, &r2), -EINVAL);
    assert_int_equal(test_leak_count(), 1); /* reported */
    assert_int_equal(ursa_rwlock_read_unlock(&r), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), 0);
    assert_true(ursa_rwlock_is_write_locked(&rw));
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r2, URSA_NOW), -EAGAIN);
    r2.rw = &rw; /* pretend it holds */
    assert_int_equal(ursa_rwlock_downgrade(&w, &r2), -EINVAL);
    r2.rw = NULL;
    assert_true(ursa_rwlock_is_write_locked(&rw));

    /* finish: wrong kind of wait, other lock, NULLs. */
    ursa_rwlock_t rw2;
    assert_int_equal(ursa_rwlock_init(&rw2, 4), 0);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw2, &wt, rwaker(&k)), 0);
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw2, &wt, &w), -EINVAL); /* w holds */
    ursa_rwlock_write_guard_t w2 = {0};
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw2, &wt, &w2), -EINVAL); /* a read wait */
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wt, &r), -EINVAL);    /* other lock */
    assert_int_equal(ursa_rwlock_read_lock_finish(NULL, &wt, &r), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw2, NULL, &r), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw2, &wt, NULL), -EINVAL);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw2, &wt, &r), 0);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw2, &wt, &r2), -EINVAL); /* finished */
    assert_int_equal(ursa_rwlock_readers(&rw2), 1);
    assert_int_equal(ursa_rwlock_read_unlock(&r), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw2), 0);

    /* Double unlocks are detected and reported. */
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), -EINVAL);
    assert_int_equal(ursa_rwlock_read_unlock(&r), -EINVAL);
    assert_int_equal(test_leak_count(), 3);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(atomic_load(&k.count), 0);
}

static void test_rwlock_destroy_busy(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r = {0};
    ursa_rwlock_write_guard_t w = {0};
    ursa_wait_t wt;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r, URSA_NEVER), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), -EBUSY);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &wt, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_unlock(&r), 0);
    assert_true(await_ready(&wt)); /* granted, not finished: still busy */
    assert_int_equal(ursa_rwlock_destroy(&rw), -EBUSY);
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &wt, &w), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), -EBUSY);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(test_leak_count(), 3);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

/* Shared vs exclusive, tries, deadlines, no barging, on a plain thread. */
static void test_rwlock_shared_exclusive_deadlines(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r1 = {0}, r2 = {0}, r3 = {0};
    ursa_rwlock_write_guard_t w = {0};
    ursa_wait_t wt;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);

    assert_int_equal(ursa_rwlock_read_lock(&rw, &r1, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r2, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 2);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, ursa_deadline_in(0)), -ETIMEDOUT);
    ursa_time_t t0 = mono_ns();
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, ursa_deadline_in(URSA_MSEC(20))),
                     -ETIMEDOUT);
    assert_true(mono_ns() - t0 >= URSA_MSEC(20));
    assert_null(w.rw);
    assert_int_equal(ursa_held_count(), 2);
    /* The timed-out writer left nothing behind: readers still get in. */
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r3, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r3), 0);

    /* A queued writer: readers no longer get in (writer preference, no
     * barging), not even with a try. */
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &wt, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r3, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r3, ursa_deadline_in(URSA_MSEC(5))), -ETIMEDOUT);
    assert_null(r3.rw);
    assert_int_equal(ursa_rwlock_read_unlock(&r1), 0);
    assert_false(ursa_wait_ready(&wt));
    assert_int_equal(ursa_rwlock_read_unlock(&r2), 0);
    assert_true(await_ready(&wt));
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &wt, &w), 0);
    assert_true(ursa_rwlock_is_write_locked(&rw));
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r1, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_false(ursa_rwlock_is_write_locked(&rw));
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

static void test_rwlock_max_readers(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r[4];
    memset(r, 0, sizeof r);
    ursa_rwlock_write_guard_t w = {0};
    ursa_wait_t wt;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_rwlock_init(&rw, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ursa_rwlock_read_lock(&rw, &r[i], URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 3);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r[3], URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r[3], ursa_deadline_in(URSA_MSEC(2))),
                     -ETIMEDOUT);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wt, rwaker(&k)), -EINPROGRESS);
    assert_false(ursa_wait_ready(&wt));
    assert_int_equal(ursa_rwlock_read_unlock(&r[1]), 0);
    assert_true(await_ready(&wt));
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wt, &r[3]), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 3);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r[1], URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_unlock(&r[0]), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[2]), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r[3]), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);

    /* max_readers == 1 behaves like a mutex (downgrade included). */
    ursa_rwlock_t one;
    ursa_rwlock_read_guard_t rg = {0};
    assert_int_equal(ursa_rwlock_init(&one, 1), 0);
    assert_int_equal(ursa_rwlock_read_lock(&one, &r[0], URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_read_lock(&one, &r[1], URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_write_lock(&one, &w, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_unlock(&r[0]), 0);
    assert_int_equal(ursa_rwlock_write_lock(&one, &w, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_downgrade(&w, &rg), 0);
    assert_int_equal(ursa_rwlock_readers(&one), 1);
    assert_int_equal(ursa_rwlock_read_lock(&one, &r[1], URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0);
    assert_int_equal(ursa_rwlock_destroy(&one), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- exclusion over many seeds ---- */

#define EX_READERS 4
#define EX_WRITERS 3
#define EX_ROUNDS 4

static struct {
    ursa_rwlock_t rw;
    int readers_in, writers_in;
    int max_readers_seen;
    long value, writes;
    int ids[EX_READERS + EX_WRITERS];
} ex;

static struct {
    long timeouts, busy, concurrent_reads;
} ex_stats;

static void *ex_reader(void *arg)
{
    int id = *(int *)arg;
    for (int i = 0; i < EX_ROUNDS; i++) {
        ursa_rwlock_read_guard_t g = {0};
        int mode = (id + i) % 3;
        ursa_time_t dl = mode == 0 ? URSA_NEVER : mode == 1 ? URSA_NOW : ursa_deadline_in(URSA_USEC(50));
        int rc = ursa_rwlock_read_lock(&ex.rw, &g, dl);
        if (rc) {
            URSA_SIM_CHECK(mode != 0);
            URSA_SIM_CHECK(rc == (mode == 1 ? -EAGAIN : -ETIMEDOUT));
            URSA_SIM_CHECK(g.rw == NULL);
            if (mode == 1)
                ex_stats.busy++;
            else
                ex_stats.timeouts++;
            (void)ursa_yield();
            continue;
        }
        URSA_SIM_CHECK(ex.writers_in == 0);
        ex.readers_in++;
        if (ex.readers_in > ex.max_readers_seen)
            ex.max_readers_seen = ex.readers_in;
        if (ex.readers_in > 1)
            ex_stats.concurrent_reads++;
        long v = ex.value;
        (void)ursa_yield();
        URSA_SIM_CHECK(ex.writers_in == 0);
        URSA_SIM_CHECK(ex.value == v); /* nobody wrote while we read */
        (void)ursa_yield();
        ex.readers_in--;
        URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    }
    return NULL;
}

static void *ex_writer(void *arg)
{
    int id = *(int *)arg;
    for (int i = 0; i < EX_ROUNDS; i++) {
        ursa_rwlock_write_guard_t g = {0};
        bool timed = (id + i) % 2;
        int rc = ursa_rwlock_write_lock(&ex.rw, &g, timed ? ursa_deadline_in(URSA_USEC(80)) : URSA_NEVER);
        if (rc) {
            URSA_SIM_CHECK(timed && rc == -ETIMEDOUT && g.rw == NULL);
            ex_stats.timeouts++;
            continue;
        }
        URSA_SIM_CHECK(ex.writers_in == 0 && ex.readers_in == 0);
        ex.writers_in++;
        long v = ex.value;
        (void)ursa_yield();
        URSA_SIM_CHECK(ex.readers_in == 0 && ex.writers_in == 1);
        ex.value = v + 1;
        ex.writes++;
        (void)ursa_sleep_for(URSA_USEC(30)); /* let deadlines fire meanwhile */
        URSA_SIM_CHECK(ex.readers_in == 0 && ex.writers_in == 1);
        ex.writers_in--;
        if (i == 1) { /* downgrade now and then: still no writer alongside */
            ursa_rwlock_read_guard_t r = {0};
            ex.writers_in++;
            URSA_SIM_CHECK(ursa_rwlock_downgrade(&g, &r) == 0);
            ex.writers_in--;
            ex.readers_in++;
            (void)ursa_yield();
            URSA_SIM_CHECK(ex.writers_in == 0);
            ex.readers_in--;
            URSA_SIM_CHECK(ursa_rwlock_read_unlock(&r) == 0);
        } else {
            URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
        }
    }
    return NULL;
}

static void *ex_root(void *arg)
{
    (void)arg;
    memset(&ex, 0, sizeof ex);
    URSA_SIM_CHECK(ursa_rwlock_init(&ex.rw, 3) == 0);
    ursa_task_t *t[EX_READERS + EX_WRITERS];
    for (int i = 0; i < EX_READERS + EX_WRITERS; i++) {
        ex.ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], i < EX_READERS ? ex_reader : ex_writer, &ex.ids[i],
                                   i < EX_READERS ? "reader" : "writer", -1) == 0);
    }
    for (int i = 0; i < EX_READERS + EX_WRITERS; i++)
        JOIN_OK(t[i]);
    URSA_SIM_CHECK(ex.value == ex.writes);
    URSA_SIM_CHECK(ex.max_readers_seen <= 3);
    URSA_SIM_CHECK(ursa_rwlock_readers(&ex.rw) == 0 && !ursa_rwlock_is_write_locked(&ex.rw));
    URSA_SIM_CHECK(ursa_held_count() == 0);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&ex.rw) == 0);
    return NULL;
}

static void test_rwlock_exclusion_explore(void **state)
{
    (void)state;
    memset(&ex_stats, 0, sizeof ex_stats);
    test_explore(ex_root, NULL);
    assert_true(ex_stats.concurrent_reads > 0); /* readers did share */
    assert_true(ex_stats.timeouts > 0);
    assert_true(ex_stats.busy > 0);
    assert_int_equal(test_leak_count(), 0);
}

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
    for (int i = 0; i < 5; i++)
        (void)ursa_yield();
    URSA_SIM_CHECK(!wp.r_in && !wp.w_in); /* the reader waits behind the writer */
    URSA_SIM_CHECK(ursa_rwlock_readers(&wp.rw) == 1);
    URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    JOIN_OK(w);
    JOIN_OK(r);
    URSA_SIM_CHECK(wp.r_in);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&wp.rw) == 0);
    return NULL;
}

static void test_rwlock_writer_preference(void **state)
{
    (void)state;
    test_explore(wp_root, NULL);
    assert_int_equal(test_leak_count(), 0);
}

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

static void test_rwlock_writer_preference_bounded(void **state)
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
static void test_rwlock_writer_streak_raw(void **state)
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

static void test_rwlock_writer_bound_threads(void **state)
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

static void test_rwlock_downgrade_raw(void **state)
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

static void test_rwlock_downgrade_tasks(void **state)
{
    (void)state;
    test_explore(dg_root, NULL);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- cancelling a queued writer ---- */

static void test_rwlock_cancel_writer_wakes_readers_raw(void **state)
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
    for (int i = 0; i < 3; i++)
        (void)ursa_yield();
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

static void test_rwlock_cancel_writer_wakes_readers_tasks(void **state)
{
    (void)state;
    test_explore(cq_root, NULL);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- three calling contexts ---- */

#define CT_TASKS 4
#define CT_THREADS 2

static struct {
    ursa_rwlock_t rw;
    long counter;          /* plain: written under the write lock only */
    _Atomic int readers_in, writers_in;
    long iters;
    _Atomic int errors, go;
    _Atomic long reads, writes, overlap;
    int worker_of[CT_TASKS];
} ct;

static void ct_loop(int id)
{
    unsigned x = (unsigned)id * 2654435761u + 1;
    for (long i = 0; i < ct.iters; i++) {
        x = x * 1103515245u + 12345u;
        if ((x >> 16) % 4 == 0) {
            ursa_rwlock_write_guard_t g = {0};
            if (ursa_rwlock_write_lock(&ct.rw, &g, URSA_NEVER)) {
                atomic_fetch_add(&ct.errors, 1);
                continue;
            }
            if (atomic_fetch_add(&ct.writers_in, 1) != 0 || atomic_load(&ct.readers_in) != 0)
                atomic_fetch_add(&ct.errors, 1);
            long v = ct.counter;
            if ((i & 15) == 0)
                (void)ursa_yield();
            ct.counter = v + 1;
            atomic_fetch_add(&ct.writes, 1);
            atomic_fetch_sub(&ct.writers_in, 1);
            if (ursa_rwlock_write_unlock(&g))
                atomic_fetch_add(&ct.errors, 1);
        } else {
            ursa_rwlock_read_guard_t g = {0};
            if (ursa_rwlock_read_lock(&ct.rw, &g, URSA_NEVER)) {
                atomic_fetch_add(&ct.errors, 1);
                continue;
            }
            if (atomic_fetch_add(&ct.readers_in, 1) > 0)
                atomic_fetch_add(&ct.overlap, 1);
            if (atomic_load(&ct.writers_in) != 0)
                atomic_fetch_add(&ct.errors, 1);
            long v = ct.counter;
            if ((i & 15) == 0)
                (void)ursa_yield();
            if (ct.counter != v)
                atomic_fetch_add(&ct.errors, 1);
            atomic_fetch_add(&ct.reads, 1);
            atomic_fetch_sub(&ct.readers_in, 1);
            if (ursa_rwlock_read_unlock(&g))
                atomic_fetch_add(&ct.errors, 1);
        }
    }
}

static void *ct_thread(void *arg)
{
    while (!atomic_load(&ct.go))
        sched_yield();
    ct_loop(100 + (int)(intptr_t)arg);
    return NULL;
}

static void *ct_task(void *arg)
{
    int id = (int)(intptr_t)arg;
    ct.worker_of[id] = ursa_worker_index();
    ct_loop(id);
    return NULL;
}

static void *ct_root(void *arg)
{
    (void)arg;
    return spawn_tasks_then_go(CT_TASKS, ct_task, "contender", &ct.go);
}

static void run_contend(long iters, uint64_t max_readers)
{
    memset(&ct, 0, sizeof ct);
    assert_int_equal(ursa_rwlock_init(&ct.rw, max_readers), 0);
    ct.iters = iters;
    pthread_t th[CT_THREADS];
    for (int i = 0; i < CT_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ct_thread, (void *)(intptr_t)i), 0);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    void *res = NULL;
    int rc = ursa_rt_block_on(rt, ct_root, NULL, &res);
    atomic_store(&ct.go, 1);
    for (int i = 0; i < CT_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    ursa_rt_free(rt);
    assert_int_equal(rc, 0);
    fail_if_msg(res);
    assert_int_equal(atomic_load(&ct.errors), 0);
    assert_int_equal(ct.counter, atomic_load(&ct.writes));
    assert_int_equal(atomic_load(&ct.reads) + atomic_load(&ct.writes),
                     (CT_TASKS + CT_THREADS) * ct.iters);
    for (int i = 0; i < CT_TASKS; i++)
        assert_int_equal(ct.worker_of[i], i % 2);
    assert_int_equal(ursa_rwlock_readers(&ct.rw), 0);
    assert_false(ursa_rwlock_is_write_locked(&ct.rw));
    assert_int_equal(ursa_rwlock_destroy(&ct.rw), 0);
    print_message("rwlock contend (max_readers %llu): %ld reads (%ld overlapping), %ld writes\n",
                  (unsigned long long)max_readers, atomic_load(&ct.reads),
                  atomic_load(&ct.overlap), atomic_load(&ct.writes));
}

static void test_rwlock_threads_and_tasks_contend(void **state)
{
    (void)state;
    run_contend(test_scale(4000), 0);
    run_contend(test_scale(2000), 2);
    assert_int_equal(test_leak_count(), 0);
}

/* A plain thread holds the write lock; a raw read wait with a foreign
 * waker is woken from that thread's unlock. */
typedef struct holder {
    ursa_rwlock_t *rw;
    pthread_t th;
    _Atomic int state; /* 1 holding, 2 release, 3 released */
    _Atomic pid_t tid;
    int rc;
} holder_t;

static void *holder_main(void *p)
{
    holder_t *h = p;
    ursa_rwlock_write_guard_t g = {0};
    h->rc = ursa_rwlock_write_lock(h->rw, &g, URSA_NEVER);
    atomic_store(&h->tid, gettid());
    atomic_store(&h->state, 1);
    while (atomic_load(&h->state) != 2)
        sched_yield();
    if (h->rc == 0)
        h->rc = ursa_rwlock_write_unlock(&g);
    atomic_store(&h->state, 3);
    return NULL;
}

static void test_rwlock_raw_wait_foreign_waker(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t g = {0};
    ursa_wait_t w;
    rwaker_t r;
    holder_t h;
    memset(&h, 0, sizeof h);
    rwaker_init(&r, true);
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    h.rw = &rw;
    assert_int_equal(pthread_create(&h.th, NULL, holder_main, &h), 0);
    while (atomic_load(&h.state) != 1)
        sched_yield();
    assert_int_equal(h.rc, 0);

    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &w, rwaker(&r)), -EINPROGRESS);
    assert_false(ursa_wait_ready(&w));
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &w, &g), -EAGAIN);
    assert_null(g.rw);
    usleep(2000);
    assert_int_equal(atomic_load(&r.count), 0);

    atomic_store(&h.state, 2);
    struct pollfd p = {.fd = r.efd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    uint64_t v = 0;
    assert_int_equal(read(r.efd, &v, sizeof v), (ssize_t)sizeof v);
    assert_int_equal(v, 1);
    assert_int_equal(pthread_join(h.th, NULL), 0);
    assert_int_equal(h.rc, 0);
    assert_true(await_ready(&w));
    assert_int_equal(atomic_load(&r.count), 1);
    assert_int_equal(atomic_load(&r.tid), atomic_load(&h.tid));
    assert_int_not_equal(atomic_load(&r.tid), gettid());
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &w, &g), 0);
    assert_ptr_equal(g.rw, &rw);
    assert_int_equal(ursa_held_count(), 1);
    assert_int_equal(ursa_rwlock_read_unlock(&g), 0);
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 0), 0); /* no second wake */
    close(r.efd);

    /* Raw write wait, cancelled while queued behind a reader: nothing held. */
    ursa_rwlock_read_guard_t r0 = {0};
    ursa_rwlock_write_guard_t wg = {0};
    rwaker_init(&r, false);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r0, URSA_NEVER), 0);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_wait_cancel(&w), -EINVAL);
    assert_int_not_equal(ursa_rwlock_write_lock_finish(&rw, &w, &wg), 0);
    assert_null(wg.rw);
    assert_int_equal(ursa_rwlock_read_unlock(&r0), 0);
    assert_int_equal(atomic_load(&r.count), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &wg, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&wg), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- leaks and poisoning ---- */

static struct {
    ursa_rwlock_t rw;
    int line;
    bool waiter_queued, leaker_locked;
    int waiter_rc;
    bool waiter_held;
    bool read_leak;
} lk;

static void *lk_leaker(void *arg)
{
    (void)arg;
    if (lk.read_leak) {
        ursa_rwlock_read_guard_t g = {0};
        lk.line = __LINE__; URSA_SIM_CHECK(ursa_rwlock_read_lock(&lk.rw, &g, URSA_NEVER) == 0);
    } else {
        ursa_rwlock_write_guard_t g = {0};
        lk.line = __LINE__; URSA_SIM_CHECK(ursa_rwlock_write_lock(&lk.rw, &g, URSA_NEVER) == 0);
    }
    lk.leaker_locked = true;
    YIELD_UNTIL(lk.waiter_queued);
    for (int i = 0; i < 3; i++)
        (void)ursa_yield();
    return NULL; /* still holding g */
}

static void *lk_waiter(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t g = {0};
    YIELD_UNTIL(lk.leaker_locked);
    lk.waiter_queued = true;
    lk.waiter_rc = ursa_rwlock_write_lock(&lk.rw, &g, URSA_NEVER);
    lk.waiter_held = g.rw == &lk.rw && ursa_rwlock_is_write_locked(&lk.rw);
    if (g.rw)
        URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
    return NULL;
}

static void *lk_root(void *arg)
{
    (void)arg;
    ursa_task_t *t, *w;
    URSA_SIM_CHECK(spawn_named(&t, lk_leaker, NULL, "leaker", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&w, lk_waiter, NULL, "waiter", -1) == 0);
    JOIN_OK(t);
    JOIN_OK(w);
    return NULL;
}

static void test_rwlock_leak_write_guard_poisons(void **state)
{
    (void)state;
    char kind[96];
    int line;
    ursa_rwlock_read_guard_t r = {0};
    ursa_rwlock_write_guard_t w = {0};
    memset(&lk, 0, sizeof lk);
    assert_int_equal(ursa_rwlock_init(&lk.rw, 0), 0);
    fail_if_msg(test_run(1, lk_root, NULL));
    assert_int_equal(test_leak_count(), 1);
    test_leak_snapshot(NULL, 0, kind, sizeof kind, &line);
    assert_string_equal(kind, "rwlock write guard");
    assert_int_equal(line, lk.line);
    /* The queued writer got the lock, poisoned, and held it. */
    assert_int_equal(lk.waiter_rc, -EOWNERDEAD);
    assert_true(lk.waiter_held);
    /* Still poisoned for every locker, read or write, raw or not, until
     * made consistent; each gets the lock despite the error. */
    assert_int_equal(ursa_rwlock_read_lock(&lk.rw, &r, URSA_NOW), -EOWNERDEAD);
    assert_ptr_equal(r.rw, &lk.rw);
    assert_int_equal(ursa_rwlock_read_unlock(&r), 0);
    ursa_wait_t wt;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_rwlock_write_lock_start(&lk.rw, &wt, rwaker(&k)), 0);
    assert_int_equal(ursa_rwlock_write_lock_finish(&lk.rw, &wt, &w), -EOWNERDEAD);
    assert_ptr_equal(w.rw, &lk.rw);
    assert_int_equal(ursa_rwlock_consistent(&lk.rw), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(ursa_rwlock_read_lock(&lk.rw, &r, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r), 0);
    assert_int_equal(ursa_rwlock_destroy(&lk.rw), 0);

    /* A leaked read guard is released and reported, but does not poison. */
    memset(&lk, 0, sizeof lk);
    lk.read_leak = true;
    assert_int_equal(ursa_rwlock_init(&lk.rw, 0), 0);
    fail_if_msg(test_run(1, lk_root, NULL));
    assert_int_equal(test_leak_count(), 2);
    test_leak_snapshot(NULL, 0, kind, sizeof kind, &line);
    assert_string_equal(kind, "rwlock read guard");
    assert_int_equal(line, lk.line);
    assert_int_equal(lk.waiter_rc, 0);
    assert_true(lk.waiter_held);
    assert_int_equal(ursa_rwlock_write_lock(&lk.rw, &w, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(ursa_rwlock_destroy(&lk.rw), 0);
}

/* A write guard downgraded and then leaked is reported as a read guard
 * and releases one permit (no poison). */
static struct {
    ursa_rwlock_t rw;
} dl;

static void *dl_leaker(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t g = {0};
    ursa_rwlock_read_guard_t r = {0};
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&dl.rw, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_rwlock_downgrade(&g, &r) == 0);
    URSA_SIM_CHECK(ursa_held_count() == 1);
    return NULL; /* leaks r */
}

static void test_rwlock_leak_after_downgrade(void **state)
{
    (void)state;
    char kind[96];
    int line;
    ursa_rwlock_write_guard_t w = {0};
    assert_int_equal(ursa_rwlock_init(&dl.rw, 0), 0);
    fail_if_msg(test_run(1, dl_leaker, NULL));
    assert_int_equal(test_leak_count(), 1);
    test_leak_snapshot(NULL, 0, kind, sizeof kind, &line);
    assert_string_equal(kind, "rwlock read guard");
    assert_int_equal(ursa_rwlock_readers(&dl.rw), 0);
    assert_int_equal(ursa_rwlock_write_lock(&dl.rw, &w, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_int_equal(ursa_rwlock_destroy(&dl.rw), 0);
}

/* ---- ownership, scoped guards ---- */

static struct {
    ursa_rwlock_read_guard_t r;
    ursa_rwlock_write_guard_t w;
    int rc_r, rc_w, rc_dg;
} own;

static void *own_thread(void *arg)
{
    (void)arg;
    ursa_rwlock_read_guard_t rg = {0};
    own.rc_r = ursa_rwlock_read_unlock(&own.r);
    own.rc_w = ursa_rwlock_write_unlock(&own.w);
    own.rc_dg = ursa_rwlock_downgrade(&own.w, &rg);
    return NULL;
}

static void test_rwlock_ownership_and_scoped(void **state)
{
    (void)state;
    ursa_rwlock_t rw, rw2;
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_int_equal(ursa_rwlock_init(&rw2, 0), 0);
    memset(&own, 0, sizeof own);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &own.r, URSA_NEVER), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw2, &own.w, URSA_NEVER), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, own_thread, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(own.rc_r, -EPERM);
    assert_int_equal(own.rc_w, -EPERM);
    assert_int_equal(own.rc_dg, -EPERM);
    assert_ptr_equal(own.r.rw, &rw);
    assert_ptr_equal(own.w.rw, &rw2);
    assert_true(ursa_rwlock_is_write_locked(&rw2));
    /* Hand-over through disown/adopt works for rwlock guards too. */
    assert_int_equal(ursa_oblig_disown(&own.w.ob), 0);
    assert_int_equal(ursa_held_count(), 1);
    assert_int_equal(ursa_oblig_adopt(&own.w.ob), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&own.r), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&own.w), 0);

    {
        URSA_SCOPED(rwlock_read_guard, a);
        URSA_SCOPED(rwlock_read_guard, b);
        URSA_SCOPED(rwlock_write_guard, c);
        URSA_SCOPED(rwlock_read_guard, unused);
        (void)unused;
        assert_int_equal(ursa_rwlock_read_lock(&rw, &a, URSA_NEVER), 0);
        assert_int_equal(ursa_rwlock_read_lock(&rw, &b, URSA_NEVER), 0);
        assert_int_equal(ursa_rwlock_write_lock(&rw2, &c, URSA_NEVER), 0);
        assert_int_equal(ursa_rwlock_read_unlock(&b), 0); /* early: cleanup skips it */
        assert_int_equal(ursa_held_count(), 2);
    }
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_false(ursa_rwlock_is_write_locked(&rw2));
    {
        URSA_SCOPED(rwlock_write_guard, c);
        URSA_SCOPED(rwlock_read_guard, d);
        assert_int_equal(ursa_rwlock_write_lock(&rw, &c, URSA_NEVER), 0);
        assert_int_equal(ursa_rwlock_downgrade(&c, &d), 0); /* c empty, d released at exit */
        assert_int_equal(ursa_rwlock_readers(&rw), 1);
    }
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw2), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- multi-thread stress (TSan) ---- */

#define ST_THREADS 4

static struct {
    ursa_rwlock_t rw;
    long data[4]; /* plain: only the rwlock protects them */
    long iters;
    _Atomic int errors;
    _Atomic long timeouts;
} st;

static void *st_thread(void *arg)
{
    unsigned x = (unsigned)(intptr_t)arg * 7919u + 3;
    for (long i = 0; i < st.iters; i++) {
        x = x * 1103515245u + 12345u;
        unsigned op = (x >> 16) % 8;
        if (op == 0 || op == 1) {
            ursa_rwlock_write_guard_t g = {0};
            int rc = ursa_rwlock_write_lock(&st.rw, &g, op ? URSA_NEVER : ursa_deadline_in(URSA_USEC(20)));
            if (rc == -ETIMEDOUT) {
                atomic_fetch_add(&st.timeouts, 1);
                continue;
            }
            if (rc) {
                atomic_fetch_add(&st.errors, 1);
                continue;
            }
            for (int k = 0; k < 4; k++)
                st.data[k]++;
            if (op == 1) {
                ursa_rwlock_read_guard_t r = {0};
                if (ursa_rwlock_downgrade(&g, &r))
                    atomic_fetch_add(&st.errors, 1);
                if (st.data[0] != st.data[3])
                    atomic_fetch_add(&st.errors, 1);
                if (ursa_rwlock_read_unlock(&r))
                    atomic_fetch_add(&st.errors, 1);
            } else if (ursa_rwlock_write_unlock(&g)) {
                atomic_fetch_add(&st.errors, 1);
            }
        } else {
            ursa_rwlock_read_guard_t g = {0};
            int rc = ursa_rwlock_read_lock(&st.rw, &g, op == 2 ? URSA_NOW : URSA_NEVER);
            if (rc == -EAGAIN)
                continue;
            if (rc) {
                atomic_fetch_add(&st.errors, 1);
                continue;
            }
            long a = st.data[0], b = st.data[1], c = st.data[2], d = st.data[3];
            if (a != b || b != c || c != d)
                atomic_fetch_add(&st.errors, 1);
            if (ursa_rwlock_read_unlock(&g))
                atomic_fetch_add(&st.errors, 1);
        }
    }
    return NULL;
}

static void test_rwlock_stress_threads(void **state)
{
    (void)state;
    memset(&st, 0, sizeof st);
    assert_int_equal(ursa_rwlock_init(&st.rw, 0), 0);
    st.iters = test_scale(20000);
    pthread_t th[ST_THREADS];
    for (int i = 0; i < ST_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, st_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < ST_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(st.data[0], st.data[3]);
    assert_int_equal(ursa_rwlock_readers(&st.rw), 0);
    assert_false(ursa_rwlock_is_write_locked(&st.rw));
    assert_int_equal(ursa_rwlock_destroy(&st.rw), 0);
    print_message("rwlock stress: %ld writes, %ld timeouts\n", st.data[0],
                  atomic_load(&st.timeouts));
    assert_int_equal(test_leak_count(), 0);
}

/* ---- reader bias ---- */

/* Read-locks and unlocks until a read lock comes back counted in the
 * caller's reader table (bias on): true, or false if it never does. */
static bool make_biased(ursa_rwlock_t *rw)
{
    for (long i = 0; i < (1L << 22); i++) {
        ursa_rwlock_read_guard_t g = {0};
        if (ursa_rwlock_read_lock(rw, &g, URSA_NOW) != 0)
            return false;
        bool fast = g.rtab != NULL;
        if (ursa_rwlock_read_unlock(&g) != 0)
            return false;
        if (fast)
            return true;
        if (atomic_load(&rw->bias.skip) == UINT32_MAX)
            return false; /* never biased: a reader limit, or no column free */
    }
    return false;
}

/* On a plain thread: fast read locks count as readers; a writer revokes
 * the bias and gets in only after the last fast reader left; a writer that
 * times out while fast readers drain loses nothing (the token comes back);
 * bias returns after reads; a limited lock never biases. */
static void test_rwlock_bias_basics(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t r1 = {0}, r2 = {0};
    ursa_rwlock_write_guard_t w = {0};
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    assert_true(make_biased(&rw));
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r1, URSA_NEVER), 0);
    assert_non_null(r1.rtab);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r2, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_readers(&rw), 2);
    assert_int_equal(ursa_rwlock_destroy(&rw), -EBUSY);            /* revokes */
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    assert_int_equal(ursa_rwlock_readers(&rw), 2);
    assert_int_equal(ursa_rwlock_read_unlock(&r1), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_unlock(&r2), 0);           /* the last: token back */
    assert_int_equal(ursa_rwlock_readers(&rw), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &w, URSA_NOW), 0);
    assert_true(ursa_rwlock_is_write_locked(&rw));
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r1, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
    assert_true(make_biased(&rw));
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
    assert_int_equal(test_leak_count(), 1); /* the -EBUSY report */

    /* A reader limit below the default: never biased, limit kept. */
    assert_int_equal(ursa_rwlock_init(&rw, 2), 0);
    assert_false(make_biased(&rw));
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r1, URSA_NOW), 0);
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r2, URSA_NOW), 0);
    ursa_rwlock_read_guard_t r3 = {0};
    assert_int_equal(ursa_rwlock_read_lock(&rw, &r3, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_rwlock_read_unlock(&r1), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&r2), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

/* Many biased locks at once: the reader tables have a column per lock;
 * past URSA__RBIAS_SLOTS the rest run unbiased, correctly. Destroy gives
 * the columns back. */
#define MANY_LOCKS 300
static void test_rwlock_bias_many_locks(void **state)
{
    (void)state;
    static ursa_rwlock_t rw[MANY_LOCKS];
    ursa_rwlock_read_guard_t g[MANY_LOCKS];
    int biased = 0;
    for (int i = 0; i < MANY_LOCKS; i++) {
        assert_int_equal(ursa_rwlock_init(&rw[i], 0), 0);
        biased += make_biased(&rw[i]);
    }
    assert_true(biased > 0 && biased < MANY_LOCKS);
    for (int i = 0; i < MANY_LOCKS; i++) {
        memset(&g[i], 0, sizeof g[i]);
        assert_int_equal(ursa_rwlock_read_lock(&rw[i], &g[i], URSA_NOW), 0);
    }
    for (int i = 0; i < MANY_LOCKS; i++) {
        ursa_rwlock_write_guard_t w = {0};
        assert_int_equal(ursa_rwlock_readers(&rw[i]), 1);
        assert_int_equal(ursa_rwlock_write_lock(&rw[i], &w, URSA_NOW), -EAGAIN);
        assert_int_equal(ursa_rwlock_read_unlock(&g[i]), 0);
        assert_int_equal(ursa_rwlock_write_lock(&rw[i], &w, URSA_NOW), 0);
        assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
        assert_int_equal(ursa_rwlock_destroy(&rw[i]), 0);
    }
    /* The columns came back: a new lock biases again. */
    ursa_rwlock_t again;
    assert_int_equal(ursa_rwlock_init(&again, 0), 0);
    assert_true(make_biased(&again));
    assert_int_equal(ursa_rwlock_destroy(&again), 0);
}

/* A fast read guard taken on one thread, disowned, adopted and unlocked on
 * another (the remote count), while a writer waits on a third: the writer
 * gets in exactly when that unlock happens. Also a thread that exits
 * while its fast guard is still out (its table is recycled). */
static struct {
    ursa_rwlock_t rw;
    ursa_rwlock_read_guard_t g;
    _Atomic int step;
    _Atomic bool released, writer_in;
    int rc;
} xr;

static void *xr_taker(void *arg)
{
    (void)arg;
    xr.rc = ursa_rwlock_read_lock(&xr.rw, &xr.g, URSA_NEVER);
    if (xr.rc == 0 && !xr.g.rtab)
        xr.rc = -EPROTO; /* expected the fast path */
    if (xr.rc == 0)
        xr.rc = ursa_oblig_disown(&xr.g.ob);
    return NULL; /* exits with the guard out: it is disowned, not leaked */
}

static void *xr_writer(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t w = {0};
    int rc = ursa_rwlock_write_lock(&xr.rw, &w, URSA_NEVER);
    if (rc == 0) {
        if (!atomic_load(&xr.released))
            xr.rc = -EPROTO;
        atomic_store(&xr.writer_in, true);
        rc = ursa_rwlock_write_unlock(&w);
    }
    return rc ? (void *)"writer failed" : NULL;
}

static void test_rwlock_bias_remote_unlock(void **state)
{
    (void)state;
    memset(&xr, 0, sizeof xr);
    assert_int_equal(ursa_rwlock_init(&xr.rw, 0), 0);
    pthread_t th;
    /* Bias it from another thread, then the taker (a third) takes a guard. */
    assert_true(make_biased(&xr.rw));
    assert_int_equal(pthread_create(&th, NULL, xr_taker, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(xr.rc, 0);
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, xr_writer, NULL), 0);
    while (!ursa__sema_has_waiters(&xr.rw.sema))
        sched_yield();
    usleep(2000);
    assert_false(atomic_load(&xr.writer_in));
    assert_int_equal(ursa_rwlock_readers(&xr.rw), 1);
    assert_int_equal(ursa_oblig_adopt(&xr.g.ob), 0);
    atomic_store(&xr.released, true);
    assert_int_equal(ursa_rwlock_read_unlock(&xr.g), 0); /* a remote unlock */
    void *res;
    assert_int_equal(pthread_join(wt, &res), 0);
    assert_null(res);
    assert_int_equal(xr.rc, 0);
    assert_true(atomic_load(&xr.writer_in));
    /* The taker's recycled table keeps correct counts for a new thread. */
    assert_true(make_biased(&xr.rw));
    assert_int_equal(pthread_create(&th, NULL, xr_taker, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(xr.rc, 0);
    assert_int_equal(ursa_rwlock_readers(&xr.rw), 1);
    assert_int_equal(ursa_oblig_adopt(&xr.g.ob), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&xr.g), 0);
    assert_int_equal(ursa_rwlock_readers(&xr.rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&xr.rw), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Deterministic: tasks holding fast read guards across yields, writers
 * that revoke, time out or are cancelled while the readers drain, and a
 * task that leaks a fast guard. Nothing is lost: afterwards the lock is
 * free and destroys cleanly. */
#define BX_READERS 3
static struct {
    ursa_rwlock_t rw;
    int readers_in, writers_in;
    long fast_reads;
} bx;

static void *bx_reader(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < 12; i++) {
        ursa_rwlock_read_guard_t g = {0};
        URSA_SIM_CHECK(ursa_rwlock_read_lock(&bx.rw, &g, URSA_NEVER) == 0);
        URSA_SIM_CHECK(bx.writers_in == 0);
        bx.fast_reads += g.rtab != NULL;
        bx.readers_in++;
        (void)ursa_yield();
        URSA_SIM_CHECK(bx.writers_in == 0);
        bx.readers_in--;
        if (id == 0 && i == 11)
            return NULL; /* leaks a (maybe fast) read guard */
        URSA_SIM_CHECK(ursa_rwlock_read_unlock(&g) == 0);
    }
    return NULL;
}

static void *bx_writer(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < 6; i++) {
        ursa_rwlock_write_guard_t g = {0};
        ursa_time_t deadline = id == 0 ? ursa_deadline_in(URSA_USEC(5)) : URSA_NEVER;
        int rc = ursa_rwlock_write_lock(&bx.rw, &g, deadline);
        if (rc) {
            URSA_SIM_CHECK(rc == -ETIMEDOUT && g.rw == NULL);
            continue;
        }
        URSA_SIM_CHECK(bx.readers_in == 0 && bx.writers_in == 0);
        bx.writers_in++;
        (void)ursa_yield();
        bx.writers_in--;
        URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
        for (int k = 0; k < 3; k++)
            (void)ursa_yield();
    }
    return NULL;
}

static void *bx_cancelled_writer(void *arg)
{
    (void)arg;
    ursa_rwlock_write_guard_t g = {0};
    int rc = ursa_rwlock_write_lock(&bx.rw, &g, URSA_NEVER);
    if (rc == 0) {
        URSA_SIM_CHECK(bx.readers_in == 0 && bx.writers_in == 0);
        URSA_SIM_CHECK(ursa_rwlock_write_unlock(&g) == 0);
    } else {
        URSA_SIM_CHECK(rc == -ECANCELED && g.rw == NULL);
    }
    return NULL;
}

static void *bx_root(void *arg)
{
    (void)arg;
    memset(&bx, 0, sizeof bx);
    URSA_SIM_CHECK(ursa_rwlock_init(&bx.rw, 0) == 0);
    URSA_SIM_CHECK(make_biased(&bx.rw));
    ursa_task_t *t[BX_READERS + 3];
    for (int i = 0; i < BX_READERS; i++)
        URSA_SIM_CHECK(spawn_named(&t[i], bx_reader, (void *)(intptr_t)i, "reader", -1) == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(spawn_named(&t[BX_READERS + i], bx_writer, (void *)(intptr_t)i,
                                   "writer", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&t[BX_READERS + 2], bx_cancelled_writer, NULL, "cancelled", -1) ==
                   0);
    for (int k = 0; k < 4; k++)
        (void)ursa_yield();
    URSA_SIM_CHECK(ursa_task_cancel(t[BX_READERS + 2]) == 0);
    for (int i = 0; i < BX_READERS + 3; i++) {
        void *res = NULL;
        URSA_SIM_CHECK(ursa_task_join(t[i], &res, URSA_NEVER) == 0);
        URSA_SIM_CHECK(res == NULL || i == BX_READERS + 2);
    }
    URSA_SIM_CHECK(bx.readers_in == 0 && bx.writers_in == 0);
    URSA_SIM_CHECK(ursa_rwlock_readers(&bx.rw) == 0 && !ursa_rwlock_is_write_locked(&bx.rw));
    ursa_rwlock_write_guard_t w = {0};
    URSA_SIM_CHECK(ursa_rwlock_write_lock(&bx.rw, &w, URSA_NOW) == 0);
    URSA_SIM_CHECK(ursa_rwlock_write_unlock(&w) == 0);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&bx.rw) == 0);
    return NULL;
}

static void test_rwlock_bias_explore(void **state)
{
    (void)state;
    long leaks0 = test_leak_count(), fast = 0;
    uint64_t seed = 0;
    unsigned seeds = TEST_SEEDS;
    for (unsigned i = 0; i < seeds; i++) {
        int rc = ursa_sim_explore(NULL, bx_root, NULL, 1 + i, 1, &seed);
        if (rc)
            fail_msg("bias scenario failed at seed %llu: %s", (unsigned long long)seed,
                     ursa_strerror(rc));
        fast += bx.fast_reads;
    }
    assert_int_equal(test_leak_count() - leaks0, (int)seeds); /* one leaked guard each */
    assert_true(fast > 0); /* the fast path did run under writers */
}

/* Threads: mostly readers, a writer now and then, so the bias goes on and
 * off under load; a reader never sees a write half done, a writer never
 * sees a reader inside. */
#define BT_THREADS 4
static struct {
    ursa_rwlock_t rw;
    long a, b;
    _Atomic long readers_in, errors, fast;
    long iters;
} bt;

static void *bt_thread(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (long i = 0; i < bt.iters; i++) {
        if (id == 0 && i % 64 == 0) {
            ursa_rwlock_write_guard_t w = {0};
            if (ursa_rwlock_write_lock(&bt.rw, &w, URSA_NEVER)) {
                atomic_fetch_add(&bt.errors, 1);
                continue;
            }
            if (atomic_load(&bt.readers_in))
                atomic_fetch_add(&bt.errors, 1);
            bt.a++;
            bt.b++;
            if (ursa_rwlock_write_unlock(&w))
                atomic_fetch_add(&bt.errors, 1);
            continue;
        }
        ursa_rwlock_read_guard_t g = {0};
        if (ursa_rwlock_read_lock(&bt.rw, &g, URSA_NEVER)) {
            atomic_fetch_add(&bt.errors, 1);
            continue;
        }
        atomic_fetch_add(&bt.readers_in, 1);
        if (g.rtab)
            atomic_fetch_add(&bt.fast, 1);
        if (bt.a != bt.b)
            atomic_fetch_add(&bt.errors, 1);
        atomic_fetch_sub(&bt.readers_in, 1);
        if (ursa_rwlock_read_unlock(&g))
            atomic_fetch_add(&bt.errors, 1);
    }
    return NULL;
}

static void test_rwlock_bias_threads(void **state)
{
    (void)state;
    memset(&bt, 0, sizeof bt);
    assert_int_equal(ursa_rwlock_init(&bt.rw, 0), 0);
    bt.iters = test_scale(40000);
    pthread_t th[BT_THREADS];
    for (int i = 0; i < BT_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, bt_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < BT_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(atomic_load(&bt.errors), 0);
    assert_int_equal(bt.a, (bt.iters + 63) / 64);
    assert_int_equal(ursa_rwlock_readers(&bt.rw), 0);
    assert_int_equal(ursa_rwlock_destroy(&bt.rw), 0);
    print_message("rwlock bias threads: %ld of %ld reads fast\n", atomic_load(&bt.fast),
                  (long)(BT_THREADS * bt.iters - bt.a));
    assert_int_equal(test_leak_count(), 0);
}

/* Regression (review): a reader turned the bias on between a writer's
 * look at the flag and its queueing; nothing revoked it again, so the
 * writer waited forever with no reader inside (here: its deadline). Two
 * reader threads, one writer with a generous deadline. */
static struct {
    ursa_rwlock_t rw;
    _Atomic bool stop;
    _Atomic long reads;
} rr;

static void *rr_reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&rr.stop)) {
        ursa_rwlock_read_guard_t g = {0};
        if (ursa_rwlock_read_lock(&rr.rw, &g, URSA_NEVER) == 0) {
            atomic_fetch_add(&rr.reads, 1);
            (void)ursa_rwlock_read_unlock(&g);
        }
    }
    return NULL;
}

static void test_rwlock_bias_rebias_race(void **state)
{
    (void)state;
    memset(&rr, 0, sizeof rr);
    assert_int_equal(ursa_rwlock_init(&rr.rw, 0), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, rr_reader, NULL), 0);
    ursa_time_t end = ursa_now() + URSA_MSEC(test_scale(600));
    long writes = 0, timeouts = 0;
    while (ursa_now() < end) {
        ursa_rwlock_write_guard_t w = {0};
        int rc = ursa_rwlock_write_lock(&rr.rw, &w, ursa_deadline_in(URSA_MSEC(200)));
        if (rc == -ETIMEDOUT) {
            timeouts++;
            continue;
        }
        assert_int_equal(rc, 0);
        writes++;
        assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
        for (volatile int i = 0; i < 2000; i++)
            ;
    }
    atomic_store(&rr.stop, true);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(timeouts, 0);
    assert_true(writes > 0 && atomic_load(&rr.reads) > 0);
    assert_int_equal(ursa_rwlock_destroy(&rr.rw), 0);
}

/* Regression (review): a fast read unlock read the lock after its release
 * store, so a writer that got in, unlocked, destroyed and freed the lock
 * at once could race a use-after-free (ASan). Now the unlock's last touch
 * of the lock is that store. Probabilistic: many short rounds. */
typedef struct {
    ursa_rwlock_t *rw;
    _Atomic int phase; /* 1 holding, 2 release */
} uaf_t;

static void *uaf_reader(void *arg)
{
    uaf_t *u = arg;
    ursa_rwlock_read_guard_t g = {0};
    if (ursa_rwlock_read_lock(u->rw, &g, URSA_NEVER) != 0)
        return (void *)"read lock";
    atomic_store(&u->phase, 1);
    while (atomic_load(&u->phase) != 2)
        sched_yield();
    return ursa_rwlock_read_unlock(&g) ? (void *)"read unlock" : NULL;
}

static void test_rwlock_bias_unlock_then_free(void **state)
{
    (void)state;
    long rounds = test_scale(300);
    for (long i = 0; i < rounds; i++) {
        uaf_t u = {malloc(sizeof(ursa_rwlock_t)), 0};
        assert_non_null(u.rw);
        assert_int_equal(ursa_rwlock_init(u.rw, 0), 0);
        assert_true(make_biased(u.rw));
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, uaf_reader, &u), 0);
        while (atomic_load(&u.phase) != 1)
            sched_yield();
        ursa_wait_t wt;
        ursa_rwlock_write_guard_t w = {0};
        rwaker_t k;
        rwaker_init(&k, false);
        assert_int_equal(ursa_rwlock_write_lock_start(u.rw, &wt, rwaker(&k)), -EINPROGRESS);
        atomic_store(&u.phase, 2);
        assert_true(await_ready(&wt));
        assert_int_equal(ursa_rwlock_write_lock_finish(u.rw, &wt, &w), 0);
        assert_int_equal(ursa_rwlock_write_unlock(&w), 0);
        assert_int_equal(ursa_rwlock_destroy(u.rw), 0);
        memset(u.rw, 0xa5, sizeof *u.rw);
        free(u.rw);
        void *res;
        assert_int_equal(pthread_join(th, &res), 0);
        assert_null(res);
    }
}

int main(void)
{
    default_abort_on_leak = ursa_leak_set_abort(true);
    ursa_leak_set_abort(default_abort_on_leak);

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_rwlock_invalid_args),
        T(test_rwlock_destroy_busy),
        T(test_rwlock_shared_exclusive_deadlines),
        T(test_rwlock_max_readers),
        T(test_rwlock_exclusion_explore),
        T(test_rwlock_writer_preference),
        T(test_rwlock_writer_preference_bounded),
        T(test_rwlock_writer_streak_raw),
        T(test_rwlock_writer_bound_threads),
        T(test_rwlock_downgrade_raw),
        T(test_rwlock_downgrade_tasks),
        T(test_rwlock_cancel_writer_wakes_readers_raw),
        T(test_rwlock_cancel_writer_wakes_readers_tasks),
        T(test_rwlock_threads_and_tasks_contend),
        T(test_rwlock_raw_wait_foreign_waker),
        T(test_rwlock_leak_write_guard_poisons),
        T(test_rwlock_leak_after_downgrade),
        T(test_rwlock_ownership_and_scoped),
        T(test_rwlock_stress_threads),
        T(test_rwlock_bias_basics),
        T(test_rwlock_bias_many_locks),
        T(test_rwlock_bias_remote_unlock),
        T(test_rwlock_bias_explore),
        T(test_rwlock_bias_threads),
        T(test_rwlock_bias_rebias_race),
        T(test_rwlock_bias_unlock_then_free),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
