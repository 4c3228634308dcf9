/* ursa_mutex's owner bias (src/sync/mutex_bias.h): the context that keeps
 * taking an uncontended mutex holds it with plain stores; another thread,
 * or a task on another worker, revokes it, whether the owner holds it or
 * not, and gets it FIFO; timeouts, cancel, the raw form, leaks (reported
 * with their site, poisoning), double unlocks and guards unlocked on
 * another thread keep working with bias on; deterministic scenarios over
 * seeds on one and two workers; a stress of revokes racing unlocks; a
 * regression for a fast unlock that touched a freed mutex. */

#include "core/membarrier.h" /* ursa__membarrier_usable: whether bias can be */
#include "core/sema.h"       /* ursa__sema_has_waiters: to know a locker queued */
#include "support.h"
#include "ursa/mutex.h"
#include "ursa/select.h"

#include "raw_checks.h"

/* Metrics builds and kernels without private expedited membarrier never
 * bias (src/sync/mutex_bias.h): the bias's tests are skipped there. */
#define SKIP_WITHOUT_BIAS()                                                                 \
    do {                                                                                    \
        if (URSA_LOCK_METRICS || !ursa__membarrier_usable())                                \
            skip();                                                                         \
    } while (0)

/* Whether g's hold is a fast one (the bias's). */
static bool fast_hold(const ursa_mutex_t *m, const ursa_mutex_guard_t *g)
{
    return atomic_load(&m->held) == (uintptr_t)g;
}

/* Locks and unlocks until a lock comes back fast: true, or false if it
 * never does (a lock that never biases, or biased for another context). */
static bool make_biased(ursa_mutex_t *m)
{
    for (int i = 0; i < 100000; i++) {
        ursa_mutex_guard_t g = {0};
        int rc = ursa_mutex_lock(m, &g, URSA_NOW);
        if (rc != 0 && rc != -EOWNERDEAD)
            return false;
        bool fast = fast_hold(m, &g);
        if (ursa_mutex_unlock(&g) != 0)
            return false;
        if (fast)
            return true;
        if (atomic_load(&m->bias.skip) == UINT32_MAX)
            return false;
    }
    return false;
}

/* ---- plain threads ---- */

static struct {
    ursa_mutex_t m;
    _Atomic int rc, phase;
    ursa_time_t deadline;
} pt;

static void *pt_locker(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    atomic_store(&pt.phase, 1);
    int rc = ursa_mutex_lock(&pt.m, &g, pt.deadline);
    atomic_store(&pt.rc, rc);
    if (rc == 0 && ursa_mutex_unlock(&g) != 0)
        atomic_store(&pt.rc, 99);
    atomic_store(&pt.phase, 2);
    return NULL;
}

static int pt_run(ursa_time_t deadline, pthread_t *th)
{
    pt.deadline = deadline;
    atomic_store(&pt.phase, 0);
    atomic_store(&pt.rc, 12345);
    return pthread_create(th, NULL, pt_locker, NULL);
}

/* Biased by this thread: a second thread's try revokes and fails while we
 * hold, its timed lock times out and loses nothing, its lock waits for our
 * unlock (the token comes back from it); with the bias free, a second
 * thread's try revokes and succeeds at once. Bias comes back for us. */
static void test_mutex_bias_taken_and_revoked_by_a_second_thread(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    pthread_t th;
    ursa_mutex_guard_t g = {0};
    assert_int_equal(ursa_mutex_init(&pt.m), 0);
    assert_true(make_biased(&pt.m));
    assert_false(ursa_mutex_is_locked(&pt.m));

    /* Held fast: a try fails, a timed lock times out. */
    assert_int_equal(ursa_mutex_lock(&pt.m, &g, URSA_NEVER), 0);
    assert_true(fast_hold(&pt.m, &g));
    assert_true(ursa_mutex_is_locked(&pt.m));
    assert_int_equal(pt_run(URSA_NOW, &th), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&pt.rc), -EAGAIN);
    assert_int_equal(atomic_load(&pt.m.bias.on), 0); /* revoked */
    assert_true(ursa_mutex_is_locked(&pt.m));
    assert_int_equal(pt_run(ursa_deadline_in(URSA_MSEC(2)), &th), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&pt.rc), -ETIMEDOUT);
    /* A waiter queued while we hold fast gets the lock from our unlock. */
    assert_int_equal(pt_run(URSA_NEVER, &th), 0);
    while (!ursa__sema_has_waiters(&pt.m.sema))
        sched_yield();
    usleep(1000);
    assert_int_equal(atomic_load(&pt.phase), 1);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&pt.rc), 0);
    assert_false(ursa_mutex_is_locked(&pt.m));

    /* Biased and free: the other thread's try gets it at once. */
    assert_true(make_biased(&pt.m));
    assert_int_equal(pt_run(URSA_NOW, &th), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&pt.rc), 0);
    assert_true(make_biased(&pt.m));
    assert_int_equal(ursa_mutex_destroy(&pt.m), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Biased for another thread's context, a lock never biases for us (the
 * owner is sticky) and stays correct; a barging mutex never biases. */
static void *make_biased_thread(void *m)
{
    return make_biased(m) ? m : NULL;
}

static void test_mutex_bias_sticky_owner_and_barging_never_biased(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    pthread_t th;
    assert_int_equal(ursa_mutex_init(&pt.m), 0);
    assert_true(make_biased(&pt.m));
    assert_int_equal(pthread_create(&th, NULL, make_biased_thread, &pt.m), 0);
    void *res;
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res); /* false: never biased for that thread */
    assert_true(make_biased(&pt.m)); /* again for us */
    assert_int_equal(ursa_mutex_destroy(&pt.m), 0);

    ursa_mutex_t b;
    assert_int_equal(ursa_mutex_init_attr(&b, &(ursa_lock_attr_t){.flags = URSA_LOCK_BARGING}), 0);
    assert_false(make_biased(&b));
    assert_int_equal(atomic_load(&b.bias.on), 0);
    assert_int_equal(ursa_mutex_destroy(&b), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Poisoning and double unlocks with bias on; a fast guard disowned and
 * unlocked on another thread; destroy while held fast is refused. */
static ursa_mutex_guard_t dg;

static void *dg_unlock(void *arg)
{
    (void)arg;
    if (ursa_oblig_adopt(&dg.ob) != 0)
        return (void *)"adopt";
    return ursa_mutex_unlock(&dg) == 0 ? NULL : (void *)"unlock";
}

static void test_mutex_bias_poison_double_unlock_and_disowned_guard(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    ursa_mutex_t m;
    ursa_mutex_guard_t g = {0};
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_true(make_biased(&m));
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_true(fast_hold(&m, &g));
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_unlock(&g), -EINVAL); /* reported */
    assert_int_equal(test_leak_count(), 1);
    ursa_mutex_guard_cleanup(&g); /* empty: nothing */

    /* Disowned fast guard, unlocked (remotely) by another thread. */
    assert_true(make_biased(&m));
    assert_int_equal(ursa_mutex_lock(&m, &dg, URSA_NEVER), 0);
    assert_true(fast_hold(&m, &dg));
    assert_int_equal(ursa_mutex_destroy(&m), -EBUSY); /* revokes; reported */
    assert_int_equal(test_leak_count(), 2);
    assert_int_equal(ursa_oblig_disown(&dg.ob), 0);
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, dg_unlock, NULL), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    assert_false(ursa_mutex_is_locked(&m));

    /* Poisoning through a fast hold: consistent clears it. */
    assert_true(make_biased(&m));
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    atomic_store(&m.poisoned, true); /* as a leak sweep would (tested below) */
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), -EOWNERDEAD);
    assert_int_equal(ursa_mutex_consistent(&m), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(test_leak_count(), 2);
}

/* The raw form from a foreign waker revokes; a select case on the biased
 * mutex gets it. */
static void test_mutex_bias_raw_wait_and_select(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    ursa_mutex_t m;
    ursa_mutex_guard_t g = {0}, g2 = {0};
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_true(make_biased(&m));
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_true(fast_hold(&m, &g));
    ursa_wait_t w;
    rwaker_t k;
    rwaker_init(&k, false);
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&k)), -EINPROGRESS);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w, &g2), -EAGAIN);
    assert_int_equal(ursa_mutex_unlock(&g), 0); /* the token goes to w */
    assert_true(await_ready(&w));
    assert_int_equal(atomic_load(&k.count), 1);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w, &g2), 0);
    assert_int_equal(ursa_mutex_unlock(&g2), 0);

    /* A cancelled raw wait while held fast loses nothing. */
    assert_true(make_biased(&m));
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&k)), -EINPROGRESS);
    ursa_wait_cancel(&w);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_false(ursa_mutex_is_locked(&m));

    /* select: biased (for us) and free: the case wins at once. */
    assert_true(make_biased(&m));
    ursa_case_t cases[] = {ursa_case_lock(&m, &g)};
    assert_int_equal(ursa_select(cases, 1, 0, URSA_NOW), 0);
    assert_int_equal(g.mutex, &m);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Regression (this change's review): a fast unlock reads the drain state
 * after its store; were that store the one that let a revoker in, the
 * revoker could lock, unlock, destroy and free the mutex first (ASan).
 * The unlock stores LEAVING, and a revoke waits it out. Many short rounds. */
typedef struct {
    ursa_mutex_t *m;
    _Atomic int phase; /* 1 holding, 2 release */
} uaf_t;

static void *uaf_owner(void *arg)
{
    uaf_t *u = arg;
    if (!make_biased(u->m))
        return (void *)"not biased";
    ursa_mutex_guard_t g = {0};
    if (ursa_mutex_lock(u->m, &g, URSA_NEVER) != 0 || !fast_hold(u->m, &g))
        return (void *)"lock";
    atomic_store(&u->phase, 1);
    while (atomic_load(&u->phase) != 2)
        sched_yield();
    return ursa_mutex_unlock(&g) ? (void *)"unlock" : NULL;
}

static void test_mutex_bias_fast_unlock_then_free_is_safe(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    long rounds = test_scale(300);
    for (long i = 0; i < rounds; i++) {
        uaf_t u = {malloc(sizeof(ursa_mutex_t)), 0};
        assert_non_null(u.m);
        assert_int_equal(ursa_mutex_init(u.m), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, uaf_owner, &u), 0);
        while (atomic_load(&u.phase) != 1)
            sched_yield();
        ursa_mutex_guard_t g = {0};
        if (i % 2) {
            /* revoke while held (ARMED): the token comes from the unlock */
            ursa_wait_t w;
            rwaker_t k;
            rwaker_init(&k, false);
            assert_int_equal(ursa_mutex_lock_start(u.m, &w, rwaker(&k)), -EINPROGRESS);
            atomic_store(&u.phase, 2);
            assert_true(await_ready(&w));
            assert_int_equal(ursa_mutex_lock_finish(u.m, &w, &g), 0);
        } else {
            /* revoke racing the unlock */
            atomic_store(&u.phase, 2);
            assert_int_equal(ursa_mutex_lock(u.m, &g, URSA_NEVER), 0);
        }
        assert_int_equal(ursa_mutex_unlock(&g), 0);
        assert_int_equal(ursa_mutex_destroy(u.m), 0);
        memset(u.m, 0xa5, sizeof *u.m);
        free(u.m);
        void *res;
        assert_int_equal(pthread_join(th, &res), 0);
        assert_null(res);
    }
}

/* Threads: one takes the lock in a tight loop (biased most of the time),
 * the others now and then, so revokes race fast locks and unlocks; the
 * critical sections never overlap and no increment is lost. */
#define ST_THREADS 3

static struct {
    ursa_mutex_t m;
    long count, iters;
    _Atomic int inside;
    _Atomic long errors, fast;
} st;

static void *st_thread(void *arg)
{
    intptr_t id = (intptr_t)arg;
    long n = id == 0 ? st.iters : st.iters / 64;
    for (long i = 0; i < n; i++) {
        ursa_mutex_guard_t g = {0};
        if (ursa_mutex_lock(&st.m, &g, URSA_NEVER)) {
            atomic_fetch_add(&st.errors, 1);
            continue;
        }
        if (atomic_fetch_add(&st.inside, 1) != 0)
            atomic_fetch_add(&st.errors, 1);
        if (fast_hold(&st.m, &g))
            atomic_fetch_add_explicit(&st.fast, 1, memory_order_relaxed);
        st.count++;
        atomic_fetch_sub(&st.inside, 1);
        if (ursa_mutex_unlock(&g))
            atomic_fetch_add(&st.errors, 1);
        if (id != 0)
            for (volatile int k = 0; k < 500; k++)
                ;
    }
    return NULL;
}

static void test_mutex_bias_revokes_race_fast_locks_on_threads(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    memset(&st, 0, sizeof st);
    assert_int_equal(ursa_mutex_init(&st.m), 0);
    st.iters = test_scale(200000);
    run_threads(ST_THREADS, st_thread);
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(st.count, st.iters + (ST_THREADS - 1) * (st.iters / 64));
    assert_false(ursa_mutex_is_locked(&st.m));
    assert_int_equal(ursa_mutex_destroy(&st.m), 0);
    print_message("mutex bias threads: %ld of %ld locks fast\n", atomic_load(&st.fast),
                  st.count);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- tasks ---- */

/* Deterministic, on one or two workers: a task biases the mutex and holds
 * it fast across yields; others (timed, cancelled, plain) revoke and wait;
 * one task leaks a (maybe fast) guard: reported with its site, the next
 * locker gets -EOWNERDEAD. Exclusion holds throughout; the mutex ends
 * free. */
static struct {
    ursa_mutex_t m;
    int inside;
    long fast, fast_contended, locks;
    bool go, poisoned_seen;
    int leak_line;
} bx;

static void *bx_owner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        if (i == 100)
            bx.go = true; /* alone until now: the bias is ours */
        ursa_mutex_guard_t g = {0};
        int rc = ursa_mutex_lock(&bx.m, &g, URSA_NEVER);
        URSA_SIM_CHECK(rc == 0 || rc == -EOWNERDEAD);
        if (rc == -EOWNERDEAD) {
            bx.poisoned_seen = true;
            URSA_SIM_CHECK(ursa_mutex_consistent(&bx.m) == 0);
        }
        URSA_SIM_CHECK(bx.inside++ == 0);
        bx.fast += fast_hold(&bx.m, &g);
        if (bx.go)
            bx.fast_contended += fast_hold(&bx.m, &g);
        bx.locks++;
        if (i % 50 == 49)
            (void)ursa_yield(); /* held across a switch: a revoke finds it held */
        URSA_SIM_CHECK(--bx.inside == 0);
        if (i == 299) {
            bx.leak_line = g.ob.site->line;
            return NULL; /* leaks g */
        }
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
        if (i % 25 == 0)
            (void)ursa_yield();
    }
    return NULL;
}

static void *bx_other(void *arg)
{
    intptr_t id = (intptr_t)arg;
    while (!bx.go)
        (void)ursa_yield();
    for (int i = 0; i < 6; i++) {
        ursa_mutex_guard_t g = {0};
        ursa_time_t deadline = id == 0 ? ursa_deadline_in(URSA_USEC(3)) : URSA_NEVER;
        int rc = ursa_mutex_lock(&bx.m, &g, deadline);
        if (rc == -ETIMEDOUT) {
            URSA_SIM_CHECK(g.mutex == NULL);
            continue;
        }
        URSA_SIM_CHECK(rc == 0 || rc == -EOWNERDEAD);
        if (rc == -EOWNERDEAD) {
            bx.poisoned_seen = true;
            URSA_SIM_CHECK(ursa_mutex_consistent(&bx.m) == 0);
        }
        URSA_SIM_CHECK(bx.inside++ == 0);
        bx.locks++;
        (void)ursa_yield();
        URSA_SIM_CHECK(--bx.inside == 0);
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
        for (int k = 0; k < 5; k++)
            (void)ursa_yield();
    }
    return NULL;
}

static void *bx_cancelled(void *arg)
{
    (void)arg;
    while (!bx.go)
        if (ursa_yield() == -ECANCELED)
            return NULL;
    ursa_mutex_guard_t g = {0};
    int rc = ursa_mutex_lock(&bx.m, &g, URSA_NEVER);
    if (rc == 0 || rc == -EOWNERDEAD) {
        URSA_SIM_CHECK(bx.inside == 0);
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    } else {
        URSA_SIM_CHECK(rc == -ECANCELED && g.mutex == NULL);
    }
    return NULL;
}

static void *bx_root(void *arg)
{
    intptr_t workers = (intptr_t)arg;
    memset(&bx, 0, sizeof bx);
    URSA_SIM_CHECK(ursa_mutex_init(&bx.m) == 0);
    ursa_task_t *t[5];
    /* The owner alone first (the others wait for bx.go), so that the bias
     * is its; it leaks its last guard. */
    URSA_SIM_CHECK(spawn_named(&t[0], bx_owner, NULL, "owner", 0) == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(spawn_named(&t[1 + i], bx_other, (void *)(intptr_t)i, "other",
                                   (int)(workers - 1)) == 0);
    URSA_SIM_CHECK(spawn_named(&t[3], bx_cancelled, NULL, "cancelled", (int)(workers - 1)) == 0);
    (void)ursa_yield();
    URSA_SIM_CHECK(ursa_task_cancel(t[3]) == 0);
    for (int i = 0; i < 4; i++)
        URSA_SIM_CHECK(ursa_task_join(t[i], NULL, URSA_NEVER) == 0 || i == 3);
    URSA_SIM_CHECK(bx.inside == 0 && bx.fast > 0);
    ursa_mutex_guard_t g = {0};
    int rc = ursa_mutex_lock(&bx.m, &g, URSA_NOW);
    URSA_SIM_CHECK(rc == 0 || rc == -EOWNERDEAD);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    URSA_SIM_CHECK(ursa_mutex_destroy(&bx.m) == 0);
    return NULL;
}

static void bx_explore(unsigned workers)
{
    long leaks0 = test_leak_count(), fast = 0;
    unsigned seeds = TEST_SEEDS;
    for (unsigned i = 0; i < seeds; i++) {
        uint64_t seed = 0;
        int rc = ursa_sim_explore(&(ursa_rt_config_t){.workers = workers}, bx_root,
                                  (void *)(uintptr_t)workers, 1 + i, 1, &seed);
        if (rc)
            fail_msg("mutex bias scenario failed at seed %llu: %s", (unsigned long long)seed,
                     ursa_strerror(rc));
        fast += bx.fast_contended;
    }
    print_message("mutex bias seeds (%u workers): %ld fast holds among the others\n", workers,
                  fast);
    assert_true(fast > 0); /* the bias did run while others revoked */
    assert_int_equal(test_leak_count() - leaks0, (int)seeds); /* one leaked guard each */
    char kind[96];
    int line = 0;
    test_leak_snapshot(NULL, 0, kind, sizeof kind, &line);
    assert_string_equal(kind, "mutex guard");
    assert_int_equal(line, bx.leak_line);
}

static void test_mutex_bias_tasks_over_seeds_one_worker(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    bx_explore(1);
}

static void test_mutex_bias_tasks_over_seeds_two_workers(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    bx_explore(2);
}

/* Real threads: a task on worker 0 holds the mutex fast; a task on worker
 * 1 revokes and waits; it gets the lock once the owner unlocks. */
static struct {
    ursa_mutex_t m;
    _Atomic int phase;
    int rc;
} wk;

static void *wk_other(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    atomic_store(&wk.phase, 1);
    wk.rc = ursa_mutex_lock(&wk.m, &g, URSA_NEVER);
    if (wk.rc == 0)
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

static void *wk_root(void *arg)
{
    (void)arg;
    URSA_SIM_CHECK(ursa_mutex_init(&wk.m) == 0);
    URSA_SIM_CHECK(make_biased(&wk.m));
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&wk.m, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(fast_hold(&wk.m, &g));
    ursa_task_t *t;
    URSA_SIM_CHECK(spawn_named(&t, wk_other, NULL, "other", 1) == 0);
    while (!ursa__sema_has_waiters(&wk.m.sema))
        (void)ursa_sleep_until(ursa_deadline_in(URSA_USEC(100)));
    URSA_SIM_CHECK(atomic_load(&wk.m.bias.on) == 0);
    URSA_SIM_CHECK(ursa_mutex_is_locked(&wk.m));
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(wk.rc == 0);
    URSA_SIM_CHECK(!ursa_mutex_is_locked(&wk.m));
    URSA_SIM_CHECK(ursa_mutex_destroy(&wk.m) == 0);
    return NULL;
}

static void test_mutex_bias_revoked_by_a_task_on_another_worker(void **state)
{
    (void)state;
    SKIP_WITHOUT_BIAS();
    for (int i = 0; i < 20; i++) {
        memset(&wk, 0, sizeof wk);
        fail_if_msg(test_run(2, wk_root, NULL));
    }
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_mutex_bias_taken_and_revoked_by_a_second_thread),
          LEAK_CHECKED(test_mutex_bias_sticky_owner_and_barging_never_biased),
          LEAK_CHECKED(test_mutex_bias_poison_double_unlock_and_disowned_guard),
          LEAK_CHECKED(test_mutex_bias_raw_wait_and_select),
          LEAK_CHECKED(test_mutex_bias_fast_unlock_then_free_is_safe),
          LEAK_CHECKED(test_mutex_bias_revokes_race_fast_locks_on_threads),
          LEAK_CHECKED(test_mutex_bias_tasks_over_seeds_one_worker),
          LEAK_CHECKED(test_mutex_bias_tasks_over_seeds_two_workers),
          LEAK_CHECKED(test_mutex_bias_revoked_by_a_task_on_another_worker))
