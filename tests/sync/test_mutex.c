/* Tests for ursa_mutex beyond the contract (tests/contract/): argument
 * errors, destroy while busy, FIFO handoff without barging, mutual
 * exclusion under stress (over seeds, and tasks on two workers with plain
 * threads), ownership (EPERM, double unlock, disown/adopt) and URSA_SCOPED.
 * Leaks and poisoning: test_mutex_poison.c.
 *
 * Scenario state lives in file-scope statics, reset by each root:
 * ursa_run() finishes every task before it returns, so no task outlives
 * its seed. */

#include "support.h"

#include "raw_checks.h"

/* ---- argument errors ---- */

static void test_mutex_rejects_bad_arguments(void **state)
{
    (void)state;
    ursa_mutex_t m, m2;
    ursa_mutex_guard_t g = {0}, g2 = {0};
    ursa_wait_t w;
    rwaker_t r;
    rwaker_init(&r, false);

    assert_int_equal(ursa_mutex_init(NULL), -EINVAL);
    assert_int_equal(ursa_mutex_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_mutex_consistent(NULL), -EINVAL);
    assert_false(ursa_mutex_is_locked(NULL));
    assert_int_equal(ursa_mutex_unlock(NULL), -EINVAL);
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_int_equal(ursa_mutex_init(&m2), 0);

    assert_int_equal(ursa_mutex_lock(NULL, &g, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_mutex_lock(&m, NULL, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_mutex_lock(NULL, &g, URSA_NOW), -EINVAL);
    assert_null(g.mutex);
    assert_false(ursa_mutex_is_locked(&m));

    assert_int_equal(ursa_mutex_lock_start(NULL, &w, rwaker(&r)), -EINVAL);
    assert_int_equal(ursa_mutex_lock_start(&m, NULL, rwaker(&r)), -EINVAL);
    assert_int_equal(ursa_mutex_lock_start(&m, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    assert_false(ursa_mutex_is_locked(&m));
    assert_int_equal(ursa_wait_cancel(NULL), -EINVAL);
    assert_false(ursa_wait_ready(NULL));

    /* A guard that already holds cannot be locked into: not the same mutex
     * (that would deadlock or double-count), not another one. */
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_ptr_equal(g.mutex, &m);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_mutex_lock(&m2, &g, URSA_NEVER), -EINVAL);
    assert_ptr_equal(g.mutex, &m);
    assert_false(ursa_mutex_is_locked(&m2));
    assert_int_equal(ursa_held_count(), 1);

    /* finish: NULLs, a guard that holds, a wait of another mutex. */
    assert_int_equal(ursa_mutex_lock_start(&m2, &w, rwaker(&r)), 0);
    assert_int_equal(ursa_mutex_lock_finish(NULL, &w, &g2), -EINVAL);
    assert_int_equal(ursa_mutex_lock_finish(&m2, NULL, &g2), -EINVAL);
    assert_int_equal(ursa_mutex_lock_finish(&m2, &w, NULL), -EINVAL);
    assert_int_equal(ursa_mutex_lock_finish(&m2, &w, &g), -EINVAL);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w, &g2), -EINVAL);
    assert_null(g2.mutex);
    assert_int_equal(ursa_mutex_lock_finish(&m2, &w, &g2), 0);
    assert_ptr_equal(g2.mutex, &m2);
    assert_int_equal(ursa_mutex_unlock(&g2), 0);

    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_mutex_destroy(&m2), 0);
    assert_int_equal(atomic_load(&r.count), 0);
}

static void test_mutex_destroy_while_held_or_waited_is_ebusy(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_mutex_guard_t g = {0};
    char owner[64], kind[512];
    int line;
    assert_int_equal(ursa_mutex_init(&m), 0);

    /* Locked: -EBUSY, reported as misuse, nothing changed. */
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_int_equal(ursa_mutex_destroy(&m), -EBUSY);
    assert_int_equal(test_leak_count(), 1);
    test_leak_snapshot(owner, sizeof owner, kind, sizeof kind, &line);
    assert_string_equal(owner, "thread");
    assert_true(ursa_mutex_is_locked(&m));
    assert_ptr_equal(g.mutex, &m);
    assert_int_equal(ursa_mutex_unlock(&g), 0);

    /* A raw waiter queued behind a holder: still busy. */
    rwaker_t r;
    rwaker_init(&r, false);
    ursa_wait_t w;
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_mutex_destroy(&m), -EBUSY);
    assert_int_equal(test_leak_count(), 2);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(atomic_load(&r.count), 0);

    /* A granted but unfinished raw wait holds the lock too. */
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&r)), 0);
    assert_int_equal(ursa_mutex_destroy(&m), -EBUSY);
    assert_int_equal(test_leak_count(), 3);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);

    assert_false(ursa_mutex_is_locked(&m));
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(test_leak_count(), 3);
}

/* ---- FIFO handoff, no barging ---- */

#define FIFO_N 8

static struct {
    ursa_mutex_t m;
    int arrival[FIFO_N], narr;
    int acq[FIFO_N], nacq;
    int waiting, inside;
    bool root_holds, all_done;
    int ids[FIFO_N];
} ff;

static struct {
    long barge_fail, barge_ok;
} ff_stats;

static void *ff_task(void *arg)
{
    int id = *(int *)arg;
    yield_n((unsigned)(id % 3));
    ursa_mutex_guard_t g = {0};
    /* Arrival and the lock call run without a switch in between, so the
     * arrival order is the queue order. */
    ff.arrival[ff.narr++] = id;
    ff.waiting++;
    int rc = ursa_mutex_lock(&ff.m, &g, URSA_NEVER);
    ff.waiting--;
    URSA_SIM_CHECK(rc == 0);
    URSA_SIM_CHECK(g.mutex == &ff.m);
    URSA_SIM_CHECK(ff.inside == 0 && !ff.root_holds);
    ff.inside++;
    ff.acq[ff.nacq++] = id;
    (void)ursa_yield();
    (void)ursa_yield();
    ff.inside--;
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

/* Tries the lock all along: it must fail exactly while someone holds it or
 * waits for it (granted but not yet running counts as waiting). */
static void *ff_barger(void *arg)
{
    (void)arg;
    while (!ff.all_done) {
        bool busy = ff.waiting > 0 || ff.inside > 0 || ff.root_holds;
        ursa_mutex_guard_t g = {0};
        int rc = ursa_mutex_lock(&ff.m, &g, URSA_NOW);
        if (busy) {
            URSA_SIM_CHECK(rc == -EAGAIN);
            URSA_SIM_CHECK(g.mutex == NULL);
            ff_stats.barge_fail++;
        } else {
            URSA_SIM_CHECK(rc == 0);
            URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
            ff_stats.barge_ok++;
        }
        if (ursa_yield() == -ECANCELED)
            return "barger cancelled";
    }
    return NULL;
}

static void *ff_root(void *arg)
{
    (void)arg;
    memset(&ff, 0, sizeof ff);
    URSA_SIM_CHECK(ursa_mutex_init(&ff.m) == 0);
    ursa_mutex_guard_t g = {0};
    ursa_task_t *t[FIFO_N], *barger;
    URSA_SIM_CHECK(ursa_mutex_lock(&ff.m, &g, URSA_NEVER) == 0);
    ff.root_holds = true;
    URSA_SIM_CHECK(spawn_named(&barger, ff_barger, NULL, "barger", -1) == 0);
    for (int i = 0; i < FIFO_N; i++) {
        ff.ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], ff_task, &ff.ids[i], "fifo", -1) == 0);
    }
    YIELD_UNTIL(ff.narr >= FIFO_N / 2);
    ff.root_holds = false;
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    /* Right after the unlock, with waiters queued: a try must not barge. */
    URSA_SIM_CHECK(ursa_mutex_lock(&ff.m, &g, URSA_NOW) == -EAGAIN);
    URSA_SIM_CHECK(g.mutex == NULL);
    for (int i = 0; i < FIFO_N; i++)
        JOIN_OK(t[i]);
    ff.all_done = true;
    JOIN_OK(barger);
    URSA_SIM_CHECK(ff.narr == FIFO_N && ff.nacq == FIFO_N);
    for (int i = 0; i < FIFO_N; i++)
        URSA_SIM_CHECK(ff.arrival[i] == ff.acq[i]);
    URSA_SIM_CHECK(!ursa_mutex_is_locked(&ff.m));
    URSA_SIM_CHECK(ursa_mutex_destroy(&ff.m) == 0);
    return NULL;
}

static void test_mutex_hands_off_in_arrival_order_without_barging(void **state)
{
    (void)state;
    memset(&ff_stats, 0, sizeof ff_stats);
    test_explore(ff_root, NULL);
    /* The barger saw both a busy and a free mutex. */
    assert_true(ff_stats.barge_fail > 0);
    assert_true(ff_stats.barge_ok > 0);
    assert_int_equal(test_leak_count(), 0);
}

/* Explicit no-barging: W1 and W2 queue; the holder unlocks (W1 granted);
 * a third task tries while W1 holds back its unlock until the try is
 * done, so W2 is certainly still queued. */
static struct {
    ursa_mutex_t m;
    int queued;
    bool tried, unlocked;
    int try_rc, w_rc[2];
    int order[2], norder;
} nb;

static void *nb_waiter(void *arg)
{
    int id = *(int *)arg;
    ursa_mutex_guard_t g = {0};
    YIELD_UNTIL(nb.queued == id); /* W1 queues first, then W2 */
    nb.queued++;
    nb.w_rc[id] = ursa_mutex_lock(&nb.m, &g, URSA_NEVER);
    URSA_SIM_CHECK(nb.w_rc[id] == 0);
    nb.order[nb.norder++] = id;
    YIELD_UNTIL(nb.tried);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

static void *nb_trier(void *arg)
{
    (void)arg;
    YIELD_UNTIL(nb.unlocked);
    ursa_mutex_guard_t g = {0};
    nb.try_rc = ursa_mutex_lock(&nb.m, &g, URSA_NOW);
    nb.tried = true;
    URSA_SIM_CHECK(nb.try_rc == -EAGAIN);
    URSA_SIM_CHECK(g.mutex == NULL);
    return NULL;
}

static void *nb_root(void *arg)
{
    (void)arg;
    static int ids[2] = {0, 1};
    memset(&nb, 0, sizeof nb);
    URSA_SIM_CHECK(ursa_mutex_init(&nb.m) == 0);
    ursa_mutex_guard_t g = {0};
    ursa_task_t *w1, *w2, *tr;
    URSA_SIM_CHECK(ursa_mutex_lock(&nb.m, &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(spawn_named(&w1, nb_waiter, &ids[0], "w1", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&w2, nb_waiter, &ids[1], "w2", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&tr, nb_trier, NULL, "trier", -1) == 0);
    YIELD_UNTIL(nb.queued >= 2);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    nb.unlocked = true;
    URSA_SIM_CHECK(ursa_mutex_lock(&nb.m, &g, URSA_NOW) == -EAGAIN);
    JOIN_OK(tr);
    JOIN_OK(w1);
    JOIN_OK(w2);
    URSA_SIM_CHECK(nb.norder == 2 && nb.order[0] == 0 && nb.order[1] == 1);
    URSA_SIM_CHECK(ursa_mutex_lock(&nb.m, &g, URSA_NOW) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_mutex_try_after_unlock_leaves_it_to_the_queued, nb_root, NULL)

/* ---- plain threads and tasks contending ---- */

#define CT_TASKS 4

#define CT_THREADS 2

static struct {
    ursa_mutex_t m;
    long counter; /* plain: the mutex is all that protects it */
    long iters;
    _Atomic int errors;
    _Atomic int go;
    int worker_of[CT_TASKS];
} ct;

static void ct_loop(void)
{
    for (long i = 0; i < ct.iters; i++) {
        ursa_mutex_guard_t g = {0};
        int rc = ursa_mutex_lock(&ct.m, &g, URSA_NEVER);
        if (rc) {
            atomic_fetch_add(&ct.errors, 1);
            continue;
        }
        long v = ct.counter;
        if ((i & 31) == 0)
            (void)ursa_yield(); /* a task lets its worker run others; a thread yields */
        ct.counter = v + 1;
        if (ursa_mutex_unlock(&g))
            atomic_fetch_add(&ct.errors, 1);
    }
}

static void *ct_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&ct.go))
        sched_yield();
    ct_loop();
    return NULL;
}

static void *ct_task(void *arg)
{
    int id = (int)(intptr_t)arg;
    ct.worker_of[id] = ursa_worker_index();
    ct_loop();
    return NULL;
}

static void test_mutex_excludes_tasks_on_both_workers_and_plain_threads(void **state)
{
    (void)state;
    memset(&ct, 0, sizeof ct);
    assert_int_equal(ursa_mutex_init(&ct.m), 0);
    ct.iters = test_scale(5000);
    run_tasks_and_threads(CT_TASKS, ct_task, "contender", CT_THREADS, ct_thread, &ct.go);
    assert_int_equal(atomic_load(&ct.errors), 0);
    assert_int_equal(ct.counter, (CT_TASKS + CT_THREADS) * ct.iters);
    for (int i = 0; i < CT_TASKS; i++)
        assert_int_equal(ct.worker_of[i], i % 2);
    assert_false(ursa_mutex_is_locked(&ct.m));
    assert_int_equal(ursa_mutex_destroy(&ct.m), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- ownership: double unlock, EPERM, disown/adopt, held count ---- */

static struct {
    ursa_mutex_t m;
    ursa_mutex_guard_t g;
    int rc_unlock_other, rc_unlock_thread, rc_disown_other;
    int rc_adopt, rc_adopt_again, rc_unlock_adopted;
    size_t held_before, held_after_adopt, held_after_unlock;
} ow;

static void *ow_other_unlock(void *arg)
{
    (void)arg;
    ow.rc_unlock_other = ursa_mutex_unlock(&ow.g);
    ow.rc_disown_other = ursa_oblig_disown(&ow.g.ob);
    return NULL;
}

static void *ow_thread_unlock(void *arg)
{
    (void)arg;
    ow.rc_unlock_thread = ursa_mutex_unlock(&ow.g);
    return NULL;
}

static void *ow_root(void *arg)
{
    (void)arg;
    ursa_task_t *t;
    pthread_t th;
    URSA_SIM_CHECK(ursa_mutex_lock(&ow.m, &ow.g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(spawn_named(&t, ow_other_unlock, NULL, "other", -1) == 0);
    JOIN_OK(t);
    URSA_SIM_CHECK(pthread_create(&th, NULL, ow_thread_unlock, NULL) == 0);
    URSA_SIM_CHECK(pthread_join(th, NULL) == 0);
    /* Still ours, still locked. */
    URSA_SIM_CHECK(ursa_mutex_is_locked(&ow.m));
    URSA_SIM_CHECK(ow.g.mutex == &ow.m);
    URSA_SIM_CHECK(ursa_held_count() == 1);
    URSA_SIM_CHECK(ursa_mutex_unlock(&ow.g) == 0);
    URSA_SIM_CHECK(ursa_held_count() == 0);
    return NULL;
}

static void test_mutex_unlock_by_another_task_or_thread_is_eperm(void **state)
{
    (void)state;
    memset(&ow, 0, sizeof ow);
    assert_int_equal(ursa_mutex_init(&ow.m), 0);
    fail_if_msg(test_run(1, ow_root, NULL));
    assert_int_equal(ow.rc_unlock_other, -EPERM);
    assert_int_equal(ow.rc_disown_other, -EPERM);
    assert_int_equal(ow.rc_unlock_thread, -EPERM);
    assert_false(ursa_mutex_is_locked(&ow.m));

    /* A plain thread's guard cannot be unlocked by another thread either. */
    memset(&ow.g, 0, sizeof ow.g);
    assert_int_equal(ursa_mutex_lock(&ow.m, &ow.g, URSA_NEVER), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ow_thread_unlock, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ow.rc_unlock_thread, -EPERM);
    assert_true(ursa_mutex_is_locked(&ow.m));
    assert_int_equal(ursa_mutex_unlock(&ow.g), 0);
    assert_int_equal(ursa_mutex_destroy(&ow.m), 0);
    assert_int_equal(test_leak_count(), 0);
}

static void test_mutex_double_unlock_is_reported_and_changes_nothing(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_mutex_guard_t g = {0}, empty = {0};
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NEVER), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(test_leak_count(), 0);
    assert_int_equal(ursa_mutex_unlock(&g), -EINVAL);
    assert_int_equal(test_leak_count(), 1); /* reported */
    assert_false(ursa_mutex_is_locked(&m)); /* and no permit was added */
    assert_int_equal(ursa_mutex_unlock(&empty), -EINVAL);
    assert_int_equal(test_leak_count(), 2);

    /* State intact: one lock at a time still. */
    ursa_mutex_guard_t a = {0}, b = {0};
    assert_int_equal(ursa_mutex_lock(&m, &a, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_lock(&m, &b, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_mutex_unlock(&a), 0);
    assert_int_equal(ursa_mutex_unlock(&a), -EINVAL);
    assert_int_equal(test_leak_count(), 3);
    assert_int_equal(ursa_mutex_lock(&m, &b, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_lock(&m, &a, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_mutex_unlock(&b), 0);
    assert_int_equal(ursa_held_count(), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
}

static void *ow_adopter(void *arg)
{
    bool leak = arg != NULL;
    ow.held_before = ursa_held_count();
    ow.rc_adopt = ursa_oblig_adopt(&ow.g.ob);
    ow.held_after_adopt = ursa_held_count();
    ow.rc_adopt_again = ursa_oblig_adopt(&ow.g.ob);
    if (!leak) {
        ow.rc_unlock_adopted = ursa_mutex_unlock(&ow.g);
        ow.held_after_unlock = ursa_held_count();
    }
    return NULL;
}

static void *ow_handoff_root(void *arg)
{
    ursa_task_t *t;
    URSA_SIM_CHECK(ursa_held_count() == 0);
    URSA_SIM_CHECK(ursa_mutex_lock(&ow.m, &ow.g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_held_count() == 1);
    URSA_SIM_CHECK(ursa_oblig_disown(&ow.g.ob) == 0);
    URSA_SIM_CHECK(ursa_held_count() == 0);
    URSA_SIM_CHECK(ursa_oblig_disown(&ow.g.ob) == -EINVAL); /* not owned now */
    URSA_SIM_CHECK(ursa_mutex_is_locked(&ow.m));
    URSA_SIM_CHECK(spawn_named(&t, ow_adopter, arg, "adopter", -1) == 0);
    JOIN_OK(t);
    return NULL;
}

static void test_mutex_guard_moves_between_owners_by_disown_and_adopt(void **state)
{
    (void)state;
    memset(&ow, 0, sizeof ow);
    assert_int_equal(ursa_oblig_disown(NULL), -EINVAL);
    assert_int_equal(ursa_oblig_adopt(NULL), -EINVAL);
    ursa_mutex_guard_t empty = {0};
    assert_int_equal(ursa_oblig_disown(&empty.ob), -EINVAL);
    assert_int_equal(ursa_oblig_adopt(&empty.ob), -EINVAL);
    assert_int_equal(ursa_mutex_init(&ow.m), 0);

    /* Task to task: the adopter unlocks; the disowner ends without a leak. */
    fail_if_msg(test_run(1, ow_handoff_root, NULL));
    assert_int_equal(ow.held_before, 0);
    assert_int_equal(ow.rc_adopt, 0);
    assert_int_equal(ow.held_after_adopt, 1);
    assert_int_equal(ow.rc_adopt_again, -EINVAL);
    assert_int_equal(ow.rc_unlock_adopted, 0);
    assert_int_equal(ow.held_after_unlock, 0);
    assert_false(ursa_mutex_is_locked(&ow.m));
    assert_int_equal(test_leak_count(), 0);

    /* Plain thread to task. */
    memset(&ow.g, 0, sizeof ow.g);
    assert_int_equal(ursa_mutex_lock(&ow.m, &ow.g, URSA_NEVER), 0);
    assert_int_equal(ursa_held_count(), 1);
    assert_int_equal(ursa_oblig_adopt(&ow.g.ob), -EINVAL); /* still owned */
    assert_int_equal(ursa_oblig_disown(&ow.g.ob), 0);
    assert_int_equal(ursa_held_count(), 0);
    fail_if_msg(test_run(1, ow_adopter, NULL));
    assert_int_equal(ow.rc_adopt, 0);
    assert_int_equal(ow.rc_unlock_adopted, 0);
    assert_false(ursa_mutex_is_locked(&ow.m));
    assert_int_equal(test_leak_count(), 0);

    /* The adopter ends holding it: reported as the adopter's leak. */
    memset(&ow.g, 0, sizeof ow.g);
    fail_if_msg(test_run(1, ow_handoff_root, (void *)1));
    assert_int_equal(ow.rc_adopt, 0);
    char owner[64], kind[512];
    int line;
    assert_int_equal(test_leak_count(), 1);
    test_leak_snapshot(owner, sizeof owner, kind, sizeof kind, &line);
    assert_string_equal(owner, "adopter");
    assert_string_equal(kind, "mutex guard");
    ursa_mutex_guard_t g = {0};
    assert_int_equal(ursa_mutex_lock(&ow.m, &g, URSA_NOW), -EOWNERDEAD);
    assert_int_equal(ursa_mutex_consistent(&ow.m), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_destroy(&ow.m), 0);
}

/* ---- URSA_SCOPED ---- */

static struct {
    ursa_mutex_t m;
    int waiter_rc;
    bool in_scope_locked, after_scope_unlocked;
} sc;

static void *sc_waiter(void *arg)
{
    (void)arg;
    URSA_SCOPED(mutex_guard, g);
    sc.waiter_rc = ursa_mutex_lock(&sc.m, &g, URSA_NEVER);
    return NULL; /* g unlocked by the cleanup: no leak */
}

static void *sc_root(void *arg)
{
    (void)arg;
    ursa_task_t *t;
    {
        URSA_SCOPED(mutex_guard, g);
        URSA_SIM_CHECK(ursa_mutex_lock(&sc.m, &g, URSA_NEVER) == 0);
        URSA_SIM_CHECK(spawn_named(&t, sc_waiter, NULL, "scoped", -1) == 0);
        yield_n(3);
        sc.in_scope_locked = ursa_mutex_is_locked(&sc.m) && sc.waiter_rc == 1;
    }
    JOIN_OK(t);
    sc.after_scope_unlocked = !ursa_mutex_is_locked(&sc.m) && ursa_held_count() == 0;
    return NULL;
}

static void test_mutex_scoped_guard_unlocks_at_scope_exit(void **state)
{
    (void)state;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ursa_mutex_init(&sc.m), 0);

    {
        URSA_SCOPED(mutex_guard, g);
        assert_null(g.mutex);
        assert_int_equal(ursa_mutex_lock(&sc.m, &g, URSA_NEVER), 0);
        assert_true(ursa_mutex_is_locked(&sc.m));
        assert_int_equal(ursa_held_count(), 1);
    }
    assert_false(ursa_mutex_is_locked(&sc.m));
    assert_int_equal(ursa_held_count(), 0);

    /* Failed lock: the cleanup does nothing (no unlock, no report). */
    ursa_mutex_guard_t outer = {0};
    assert_int_equal(ursa_mutex_lock(&sc.m, &outer, URSA_NEVER), 0);
    {
        URSA_SCOPED(mutex_guard, g);
        assert_int_equal(ursa_mutex_lock(&sc.m, &g, URSA_NOW), -EAGAIN);
        assert_null(g.mutex);
    }
    assert_true(ursa_mutex_is_locked(&sc.m));
    assert_int_equal(ursa_held_count(), 1);
    assert_int_equal(ursa_mutex_unlock(&outer), 0);

    /* Unlocked by hand inside the scope: the cleanup does not unlock twice. */
    {
        URSA_SCOPED(mutex_guard, g);
        assert_int_equal(ursa_mutex_lock(&sc.m, &g, URSA_NEVER), 0);
        assert_int_equal(ursa_mutex_unlock(&g), 0);
    }
    assert_false(ursa_mutex_is_locked(&sc.m));
    ursa_mutex_guard_cleanup(NULL); /* harmless */

    /* In tasks: scope exit hands the lock to the waiter; a task returning
     * from a scoped guard leaks nothing. */
    sc.waiter_rc = 1;
    fail_if_msg(test_run(1, sc_root, NULL));
    assert_true(sc.in_scope_locked);
    assert_int_equal(sc.waiter_rc, 0);
    assert_true(sc.after_scope_unlocked);
    assert_false(ursa_mutex_is_locked(&sc.m));
    assert_int_equal(ursa_mutex_destroy(&sc.m), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- mutual exclusion stress (deterministic, over seeds) ---- */

#define MX_TASKS 6

#define MX_ROUNDS 20

static struct {
    ursa_mutex_t m;
    int inside;
    long counter, successes;
    int ids[MX_TASKS];
} mx;

static struct {
    long timeouts, busy;
} mx_stats;

static void *mx_task(void *arg)
{
    int id = *(int *)arg;
    for (int k = 0; k < MX_ROUNDS; k++) {
        ursa_mutex_guard_t g = {0};
        int mode = (id + k) % 4;
        ursa_time_t deadline = mode == 1   ? ursa_deadline_in(URSA_USEC(50 * (1 + id)))
                         : mode == 2 ? URSA_NOW
                                     : URSA_NEVER;
        int rc = ursa_mutex_lock(&mx.m, &g, deadline);
        if (rc == -ETIMEDOUT) {
            URSA_SIM_CHECK(mode == 1 && g.mutex == NULL);
            mx_stats.timeouts++;
            continue;
        }
        if (rc == -EAGAIN) {
            URSA_SIM_CHECK(mode == 2 && g.mutex == NULL);
            mx_stats.busy++;
            continue;
        }
        URSA_SIM_CHECK(rc == 0);
        URSA_SIM_CHECK(mx.inside == 0);
        mx.inside++;
        long v = mx.counter;
        yield_n((unsigned)((id + k) % 3));
        if (k % 5 == 0)
            URSA_SIM_CHECK(ursa_sleep_for(URSA_USEC(100)) == 0);
        URSA_SIM_CHECK(mx.inside == 1);
        mx.counter = v + 1;
        mx.successes++;
        mx.inside--;
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
        if (k % 2)
            (void)ursa_yield();
    }
    return NULL;
}

static void *mx_root(void *arg)
{
    (void)arg;
    memset(&mx, 0, sizeof mx);
    URSA_SIM_CHECK(ursa_mutex_init(&mx.m) == 0);
    ursa_task_t *t[MX_TASKS];
    for (int i = 0; i < MX_TASKS; i++) {
        mx.ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], mx_task, &mx.ids[i], "mx", -1) == 0);
    }
    for (int i = 0; i < MX_TASKS; i++)
        JOIN_OK(t[i]);
    URSA_SIM_CHECK(mx.counter == mx.successes);
    URSA_SIM_CHECK(mx.successes >= MX_TASKS * MX_ROUNDS / 2); /* NEVER modes always succeed */
    URSA_SIM_CHECK(!ursa_mutex_is_locked(&mx.m));
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&mx.m, &g, URSA_NOW) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    URSA_SIM_CHECK(ursa_mutex_destroy(&mx.m) == 0);
    return NULL;
}

static void test_mutex_excludes_with_timeouts_and_tries_over_seeds(void **state)
{
    (void)state;
    memset(&mx_stats, 0, sizeof mx_stats);
    test_explore(mx_root, NULL);
    /* The timed and try paths were exercised, not just the happy path. */
    assert_true(mx_stats.timeouts > 0);
    assert_true(mx_stats.busy > 0);
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_mutex_rejects_bad_arguments),
          LEAK_CHECKED(test_mutex_destroy_while_held_or_waited_is_ebusy),
          LEAK_CHECKED(test_mutex_hands_off_in_arrival_order_without_barging),
          LEAK_CHECKED(test_mutex_try_after_unlock_leaves_it_to_the_queued),
          LEAK_CHECKED(test_mutex_excludes_tasks_on_both_workers_and_plain_threads),
          LEAK_CHECKED(test_mutex_unlock_by_another_task_or_thread_is_eperm),
          LEAK_CHECKED(test_mutex_double_unlock_is_reported_and_changes_nothing),
          LEAK_CHECKED(test_mutex_guard_moves_between_owners_by_disown_and_adopt),
          LEAK_CHECKED(test_mutex_scoped_guard_unlocks_at_scope_exit),
          LEAK_CHECKED(test_mutex_excludes_with_timeouts_and_tries_over_seeds))
