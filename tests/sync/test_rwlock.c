/* Tests for ursa_rwlock beyond the contract (tests/contract/): argument
 * errors, shared/exclusive semantics, max readers, reader/writer exclusion
 * over seeds and on threads (tasks on two workers with plain threads),
 * leaks and poisoning, ownership and URSA_SCOPED. Writer preference and
 * downgrade: test_rwlock_writers.c; the reader bias: test_rwlock_bias.c. */

#include "support.h"
#include "ursa/rwlock.h"

#include "raw_checks.h"

/* ---- argument errors, basics ---- */

static void test_rwlock_rejects_bad_arguments_and_double_unlocks(void **state)
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

static void test_rwlock_destroy_while_held_or_waited_is_ebusy(void **state)
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
static void test_rwlock_readers_share_and_a_queued_writer_keeps_new_readers_out(void **state)
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

static void test_rwlock_caps_readers_at_max_readers(void **state)
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

static void test_rwlock_excludes_writers_and_readers_over_seeds(void **state)
{
    (void)state;
    memset(&ex_stats, 0, sizeof ex_stats);
    test_explore(ex_root, NULL);
    assert_true(ex_stats.concurrent_reads > 0); /* readers did share */
    assert_true(ex_stats.timeouts > 0);
    assert_true(ex_stats.busy > 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- tasks on two workers and plain threads ---- */

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

static void run_contend(long iters, uint64_t max_readers)
{
    memset(&ct, 0, sizeof ct);
    assert_int_equal(ursa_rwlock_init(&ct.rw, max_readers), 0);
    ct.iters = iters;
    run_tasks_and_threads(CT_TASKS, ct_task, "contender", CT_THREADS, ct_thread, &ct.go);
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

static void test_rwlock_excludes_tasks_on_both_workers_and_plain_threads(void **state)
{
    (void)state;
    run_contend(test_scale(4000), 0);
    run_contend(test_scale(2000), 2);
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
    yield_n(3);
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

static void test_rwlock_write_guard_left_by_a_task_poisons_until_consistent(void **state)
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

static void test_rwlock_downgraded_guard_left_by_a_task_is_a_read_leak(void **state)
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

static void test_rwlock_unlock_by_another_thread_is_eperm_and_scoped_guards_unlock(void **state)
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

static void test_rwlock_readers_never_see_a_half_write_on_threads(void **state)
{
    (void)state;
    memset(&st, 0, sizeof st);
    assert_int_equal(ursa_rwlock_init(&st.rw, 0), 0);
    st.iters = test_scale(20000);
    run_threads(ST_THREADS, st_thread);
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(st.data[0], st.data[3]);
    assert_int_equal(ursa_rwlock_readers(&st.rw), 0);
    assert_false(ursa_rwlock_is_write_locked(&st.rw));
    assert_int_equal(ursa_rwlock_destroy(&st.rw), 0);
    print_message("rwlock stress: %ld writes, %ld timeouts\n", st.data[0],
                  atomic_load(&st.timeouts));
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_rwlock_rejects_bad_arguments_and_double_unlocks),
          LEAK_CHECKED(test_rwlock_destroy_while_held_or_waited_is_ebusy),
          LEAK_CHECKED(test_rwlock_readers_share_and_a_queued_writer_keeps_new_readers_out),
          LEAK_CHECKED(test_rwlock_caps_readers_at_max_readers),
          LEAK_CHECKED(test_rwlock_excludes_writers_and_readers_over_seeds),
          LEAK_CHECKED(test_rwlock_excludes_tasks_on_both_workers_and_plain_threads),
          LEAK_CHECKED(test_rwlock_write_guard_left_by_a_task_poisons_until_consistent),
          LEAK_CHECKED(test_rwlock_downgraded_guard_left_by_a_task_is_a_read_leak),
          LEAK_CHECKED(test_rwlock_unlock_by_another_thread_is_eperm_and_scoped_guards_unlock),
          LEAK_CHECKED(test_rwlock_readers_never_see_a_half_write_on_threads))
