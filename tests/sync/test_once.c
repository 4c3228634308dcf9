/* Tests for ursa_once_cell_t beyond the contract (tests/contract/, row
 * once: waiting for a set): argument errors, get/set/get_or_init basics,
 * set vs get_or_init conflicts and self-deadlock detection, deadlines while
 * an init runs, waiting from plain threads, the raw wait woken by a set on
 * another thread, SetOnce waited on by tasks. The initializer role (failure,
 * cancel, handover races, racing stress): test_once_init.c. */
#include <poll.h>

#include "queue_peek.h" /* the queued callers */
#include "support.h"
#include "ursa/once.h"

#include "raw_checks.h"

/* ---- helpers ---- */

/* A destructor that counts its calls. */
static _Atomic int dtor_calls;

static void *dtor_last;

static void count_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    dtor_last = v;
}

static int init_value(void *arg, void **outv)
{
    *outv = arg;
    return 0;
}

static int init_fail(void *arg, void **outv)
{
    (void)outv;
    return (int)(intptr_t)arg;
}

static int init_never_called(void *arg, void **outv)
{
    (void)arg;
    (void)outv;
    fail_msg("init_fn ran on a set cell");
    return -EIO;
}

/* ---- argument errors and basics ---- */

static void test_once_rejects_bad_arguments_and_leaves_outputs_alone(void **state)
{
    (void)state;
    ursa_once_cell_t c;
    void *v = (void *)1;
    ursa_wait_t w;
    assert_int_equal(ursa_once_init(NULL, NULL), -EINVAL);
    assert_int_equal(ursa_once_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_once_init(&c, NULL), 0);
    assert_int_equal(ursa_once_get_or_init(NULL, init_value, NULL, &v, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_once_get_or_init(&c, NULL, NULL, &v, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_once_set(NULL, v), -EINVAL);
    assert_int_equal(ursa_once_get(NULL, &v), -EINVAL);
    assert_int_equal(ursa_once_wait(NULL, &v, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_once_wait_start(NULL, &w, ((ursa_waker_t){rwaker_fn, NULL})),
                     -EINVAL);
    assert_int_equal(ursa_once_wait_start(&c, NULL, ((ursa_waker_t){rwaker_fn, NULL})),
                     -EINVAL);
    assert_int_equal(ursa_once_wait_start(&c, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    assert_int_equal(ursa_once_wait_finish(NULL, &w, &v), -EINVAL);
    assert_int_equal(ursa_once_wait_finish(&c, NULL, &v), -EINVAL);
    assert_false(ursa_once_is_set(NULL));
    assert_ptr_equal(v, (void *)1); /* untouched by every failed call */
    assert_false(ursa_once_is_set(&c));
    assert_int_equal(ursa_once_destroy(&c), 0);
    assert_int_equal(test_leak_count(), 0);
}

static void test_once_get_set_and_get_or_init_on_a_plain_thread(void **state)
{
    (void)state;
    static int a, b;
    ursa_once_cell_t c;
    void *v = NULL;
    atomic_store(&dtor_calls, 0);
    assert_int_equal(ursa_once_init(&c, count_dtor), 0);
    assert_int_equal(ursa_once_get(&c, &v), -EAGAIN);
    assert_int_equal(ursa_once_wait(&c, &v, URSA_NOW), -EAGAIN);
    assert_null(v);
    /* A failing init leaves the cell empty and returns its error. */
    assert_int_equal(ursa_once_get_or_init(&c, init_fail, (void *)(intptr_t)-EIO, &v, URSA_NEVER),
                     -EIO);
    assert_false(ursa_once_is_set(&c));
    assert_null(v);
    /* URSA_NOW on an empty, idle cell still initialises: not a wait. */
    assert_int_equal(ursa_once_get_or_init(&c, init_value, &a, &v, URSA_NOW), 0);
    assert_ptr_equal(v, &a);
    assert_true(ursa_once_is_set(&c));
    v = NULL;
    assert_int_equal(ursa_once_get(&c, &v), 0);
    assert_ptr_equal(v, &a);
    assert_int_equal(ursa_once_get(&c, NULL), 0);
    v = NULL;
    assert_int_equal(ursa_once_wait(&c, &v, URSA_NOW), 0);
    assert_ptr_equal(v, &a);
    assert_int_equal(ursa_once_get_or_init(&c, init_never_called, &b, &v, URSA_NEVER), 0);
    assert_ptr_equal(v, &a);
    assert_int_equal(ursa_once_set(&c, &b), -EEXIST);
    assert_int_equal(ursa_once_get(&c, &v), 0);
    assert_ptr_equal(v, &a);
    assert_int_equal(atomic_load(&dtor_calls), 0);
    assert_int_equal(ursa_once_destroy(&c), 0);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_ptr_equal(dtor_last, &a);
    assert_int_equal(ursa_once_destroy(&c), 0); /* empty now: runs nothing */
    assert_int_equal(atomic_load(&dtor_calls), 1);

    /* SetOnce use: set, then get and wait see it; static initialiser. */
    static ursa_set_once_t so = URSA_ONCE_CELL_INIT(count_dtor);
    assert_int_equal(ursa_once_get(&so, &v), -EAGAIN);
    assert_int_equal(ursa_once_set(&so, &b), 0);
    assert_int_equal(ursa_once_set(&so, &a), -EEXIST);
    assert_int_equal(ursa_once_wait(&so, &v, URSA_NEVER), 0);
    assert_ptr_equal(v, &b);
    assert_int_equal(ursa_once_destroy(&so), 0);
    assert_int_equal(atomic_load(&dtor_calls), 2);
    assert_ptr_equal(dtor_last, &b);

    /* A cell without destructor, set to NULL: set is about the state, not
     * the pointer. */
    assert_int_equal(ursa_once_init(&c, NULL), 0);
    assert_int_equal(ursa_once_set(&c, NULL), 0);
    assert_int_equal(ursa_once_set(&c, &a), -EEXIST);
    v = &a;
    assert_int_equal(ursa_once_get(&c, &v), 0);
    assert_null(v);
    assert_int_equal(ursa_once_destroy(&c), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- set vs get_or_init; destroy while busy; self-deadlock ---- */

static struct {
    ursa_once_cell_t c;
    int a, b;
    _Atomic int in_init;
    int release;
    int self_rc, self_wait_rc, self_set_rc;
} sv;

static int sv_slow_init(void *arg, void **outv)
{
    (void)arg;
    atomic_store(&sv.in_init, 1);
    /* Calls on our own cell from inside init: detected, not a hang. */
    void *v;
    sv.self_rc = ursa_once_get_or_init(&sv.c, init_value, &sv.b, &v, URSA_NEVER);
    sv.self_wait_rc = ursa_once_wait(&sv.c, &v, URSA_NEVER);
    sv.self_set_rc = ursa_once_set(&sv.c, &sv.b);
    while (!sv.release)
        if (ursa_sleep_for(URSA_MSEC(1)) == -ECANCELED)
            return -ECANCELED;
    *outv = &sv.a;
    return 0;
}

static void *sv_initializer(void *arg)
{
    (void)arg;
    void *v = NULL;
    URSA_SIM_CHECK(ursa_once_get_or_init(&sv.c, sv_slow_init, NULL, &v, URSA_NEVER) == 0);
    URSA_SIM_CHECK(v == &sv.a);
    return NULL;
}

static void *sv_root(void *arg)
{
    (void)arg;
    memset(&sv, 0, sizeof sv);
    atomic_store(&dtor_calls, 0);
    URSA_SIM_CHECK(ursa_once_init(&sv.c, count_dtor) == 0);
    ursa_task_t *t;
    URSA_SIM_CHECK(spawn_named(&t, sv_initializer, NULL, "init", -1) == 0);
    YIELD_UNTIL(atomic_load(&sv.in_init));
    void *v = NULL;
    URSA_SIM_CHECK(ursa_once_set(&sv.c, &sv.b) == -EBUSY);
    URSA_SIM_CHECK(ursa_once_get(&sv.c, &v) == -EAGAIN);
    URSA_SIM_CHECK(ursa_once_get_or_init(&sv.c, init_value, &sv.b, &v, URSA_NOW) == -EAGAIN);
    URSA_SIM_CHECK(v == NULL);
    /* Destroy while an initializer runs: refused and reported. */
    URSA_SIM_CHECK(ursa_once_destroy(&sv.c) == -EBUSY);
    URSA_SIM_CHECK(test_leak_count() == 1);
    sv.release = 1;
    JOIN_OK(t);
    URSA_SIM_CHECK(sv.self_rc == -EDEADLK);
    URSA_SIM_CHECK(sv.self_wait_rc == -EDEADLK);
    URSA_SIM_CHECK(sv.self_set_rc == -EBUSY);
    URSA_SIM_CHECK(ursa_once_set(&sv.c, &sv.b) == -EEXIST);
    URSA_SIM_CHECK(ursa_once_get(&sv.c, &v) == 0 && v == &sv.a);
    URSA_SIM_CHECK(atomic_load(&dtor_calls) == 0);
    URSA_SIM_CHECK(ursa_once_destroy(&sv.c) == 0);
    URSA_SIM_CHECK(atomic_load(&dtor_calls) == 1 && dtor_last == &sv.a);

    /* set on an empty cell wins over a later get_or_init. */
    URSA_SIM_CHECK(ursa_once_init(&sv.c, NULL) == 0);
    URSA_SIM_CHECK(ursa_once_set(&sv.c, &sv.b) == 0);
    URSA_SIM_CHECK(ursa_once_get_or_init(&sv.c, init_value, &sv.a, &v, URSA_NEVER) == 0);
    URSA_SIM_CHECK(v == &sv.b);
    URSA_SIM_CHECK(ursa_once_destroy(&sv.c) == 0);
    return NULL;
}

static void test_once_set_during_an_init_is_ebusy_and_self_calls_are_edeadlk(void **state)
{
    (void)state;
    /* One seed at a time: the leak count is per run. */
    for (unsigned s = 0; s < 20; s++) {
        test_capture_leaks();
        void *res = NULL;
        int rc = ursa_run(&(ursa_rt_config_t){.deterministic = true, .seed = s}, sv_root, NULL,
                          &res);
        assert_int_equal(rc, 0);
        fail_if_msg(res);
        assert_int_equal(test_leak_count(), 1);
    }
}

/* ---- deadlines while an initializer runs ---- */

static struct {
    ursa_once_cell_t c;
    int a, b;
    int fail;
    int in_init;
    int late_rc;
    void *late_v;
} dl;

static int dl_init(void *arg, void **outv)
{
    (void)arg;
    dl.in_init = 1;
    if (ursa_sleep_for(URSA_MSEC(20)))
        return -ECANCELED;
    if (dl.fail)
        return -EIO;
    *outv = &dl.a;
    return 0;
}

static void *dl_initializer(void *arg)
{
    (void)arg;
    void *v = NULL;
    int rc = ursa_once_get_or_init(&dl.c, dl_init, NULL, &v, URSA_NEVER);
    URSA_SIM_CHECK(rc == (dl.fail ? -EIO : 0));
    return NULL;
}

static void *dl_late(void *arg)
{
    (void)arg;
    /* Queued behind the timed-out ones: gets the role or the value. */
    dl.late_rc = ursa_once_get_or_init(&dl.c, init_value, &dl.b, &dl.late_v, URSA_NEVER);
    return NULL;
}

static void *dl_root(void *arg)
{
    memset(&dl, 0, sizeof dl);
    dl.fail = (int)(intptr_t)arg;
    URSA_SIM_CHECK(ursa_once_init(&dl.c, NULL) == 0);
    ursa_task_t *t, *late;
    URSA_SIM_CHECK(spawn_named(&t, dl_initializer, NULL, "init", -1) == 0);
    YIELD_UNTIL(dl.in_init);
    void *v = NULL;
    URSA_SIM_CHECK(ursa_once_get_or_init(&dl.c, init_value, &dl.b, &v, URSA_NOW) == -EAGAIN);
    URSA_SIM_CHECK(ursa_once_wait(&dl.c, &v, URSA_NOW) == -EAGAIN);
    URSA_SIM_CHECK(ursa_once_get_or_init(&dl.c, init_value, &dl.b, &v, ursa_deadline_in(0)) ==
                   -ETIMEDOUT);
    URSA_SIM_CHECK(ursa_once_wait(&dl.c, &v, ursa_deadline_in(0)) == -ETIMEDOUT);
    ursa_time_t t0 = ursa_now();
    URSA_SIM_CHECK(ursa_once_get_or_init(&dl.c, init_value, &dl.b, &v,
                                         ursa_deadline_in(URSA_MSEC(5))) == -ETIMEDOUT);
    URSA_SIM_CHECK(ursa_now() - t0 >= URSA_MSEC(5));
    URSA_SIM_CHECK(ursa_now() - t0 < URSA_MSEC(20));
    t0 = ursa_now();
    URSA_SIM_CHECK(ursa_once_wait(&dl.c, &v, ursa_deadline_in(URSA_MSEC(3))) == -ETIMEDOUT);
    URSA_SIM_CHECK(ursa_now() - t0 >= URSA_MSEC(3));
    URSA_SIM_CHECK(v == NULL);
    /* The timed-out calls left nothing queued behind. */
    URSA_SIM_CHECK(peek_once_inits(&dl.c) == 0 && peek_once_waits(&dl.c) == 0);
    URSA_SIM_CHECK(!ursa_once_is_set(&dl.c));
    URSA_SIM_CHECK(spawn_named(&late, dl_late, NULL, "late", -1) == 0);
    JOIN_OK(t);
    JOIN_OK(late);
    URSA_SIM_CHECK(dl.late_rc == 0);
    /* On failure the late waiter became the initializer with its own value. */
    URSA_SIM_CHECK(dl.late_v == (dl.fail ? (void *)&dl.b : (void *)&dl.a));
    URSA_SIM_CHECK(ursa_once_get(&dl.c, &v) == 0 && v == dl.late_v);
    URSA_SIM_CHECK(ursa_once_destroy(&dl.c) == 0);
    return NULL;
}

static void test_once_deadlines_while_an_init_runs_leave_nothing_queued(void **state)
{
    (void)state;
    test_explore(dl_root, (void *)0);
    test_explore(dl_root, (void *)1);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- plain threads: wait until set from another thread ---- */

typedef struct thr_wait {
    ursa_once_cell_t *c;
    ursa_time_t deadline;
    int rc;
    void *v;
    ursa_time_t end; /* when the wait returned */
} thr_wait_t;

static void *thr_wait_main(void *p)
{
    thr_wait_t *tw = p;
    tw->rc = ursa_once_wait(tw->c, &tw->v, tw->deadline);
    tw->end = mono_ns();
    return NULL;
}

static int thr_init_sleepy(void *arg, void **outv)
{
    usleep(30000);
    *outv = arg;
    return 0;
}

static void *thr_get_or_init_main(void *p)
{
    thr_wait_t *tw = p;
    static int other;
    tw->rc = ursa_once_get_or_init(tw->c, init_value, &other, &tw->v, tw->deadline);
    return NULL;
}

static void test_once_plain_threads_wait_for_a_set_and_for_an_init(void **state)
{
    (void)state;
    static int val;
    ursa_once_cell_t c;
    assert_int_equal(ursa_once_init(&c, NULL), 0);

    /* A timed wait on a plain thread times out, nothing queued after. */
    thr_wait_t tw = {&c, ursa_deadline_in(URSA_MSEC(10)), 1, NULL, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thr_wait_main, &tw), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(tw.rc, -ETIMEDOUT);
    assert_null(tw.v);
    assert_true(tw.end >= tw.deadline); /* not before the deadline */
    assert_int_equal(peek_once_waits(&c), 0);

    /* Two waiting threads, set from this one. */
    thr_wait_t w[2] = {{&c, URSA_NEVER, 1, NULL, 0}, {&c, URSA_NEVER, 1, NULL, 0}};
    pthread_t wt[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&wt[i], NULL, thr_wait_main, &w[i]), 0);
    ursa_time_t end = mono_ns() + test_hang_guard();
    for (;;) {
        int n = peek_once_waits(&c);
        if (n == 2 || mono_ns() > end)
            break;
        usleep(500);
    }
    assert_int_equal(peek_once_waits(&c), 2);
    assert_int_equal(ursa_once_set(&c, &val), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(wt[i], NULL), 0);
        assert_int_equal(w[i].rc, 0);
        assert_ptr_equal(w[i].v, &val);
    }
    assert_int_equal(ursa_once_destroy(&c), 0);

    /* An initializer on this thread; another thread's get_or_init waits
     * for it and never runs its own init. */
    assert_int_equal(ursa_once_init(&c, NULL), 0);
    thr_wait_t g = {&c, URSA_NEVER, 1, NULL, 0};
    pthread_t gt;
    void *v = NULL;
    /* The other thread starts while our init sleeps 30 ms. */
    assert_int_equal(pthread_create(&gt, NULL, thr_get_or_init_main, &g), 0);
    usleep(1000);
    assert_int_equal(ursa_once_get_or_init(&c, thr_init_sleepy, &val, &v, URSA_NEVER), 0);
    assert_int_equal(pthread_join(gt, NULL), 0);
    assert_int_equal(g.rc, 0);
    /* Either it came first (its init ran, ours did not) or it waited. */
    void *cur = NULL;
    assert_int_equal(ursa_once_get(&c, &cur), 0);
    assert_ptr_equal(v, cur);
    assert_ptr_equal(g.v, cur);
    assert_int_equal(ursa_once_destroy(&c), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- raw wait with a foreign waker ---- */

static void *raw_setter(void *p)
{
    static int val;
    usleep(2000);
    intptr_t rc = ursa_once_set(p, &val);
    return (void *)rc;
}

static void test_once_raw_wait_woken_by_a_set_on_another_thread(void **state)
{
    (void)state;
    ursa_once_cell_t c;
    ursa_wait_t w, w2;
    rwaker_t r;
    atomic_init(&r.count, 0);
    atomic_init(&r.tid, 0);
    r.efd = eventfd(0, EFD_CLOEXEC);
    assert_true(r.efd >= 0);
    assert_int_equal(ursa_once_init(&c, NULL), 0);

    void *v = NULL;
    assert_int_equal(ursa_once_wait_start(&c, &w, rwaker(&r)), -EINPROGRESS);
    assert_false(ursa_wait_ready(&w));
    assert_int_equal(ursa_once_wait_finish(&c, &w, &v), -EAGAIN);
    /* A second raw wait, cancelled while queued. */
    assert_int_equal(ursa_once_wait_start(&c, &w2, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(peek_once_waits(&c), 2);
    assert_int_equal(ursa_wait_cancel(&w2), -ECANCELED);
    assert_int_equal(ursa_wait_cancel(&w2), -EINVAL);
    assert_int_equal(peek_once_waits(&c), 1);
    /* Destroy with a raw waiter queued: refused. */
    assert_int_equal(ursa_once_destroy(&c), -EBUSY);
    assert_int_equal(test_leak_count(), 1);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, raw_setter, &c), 0);
    struct pollfd p = {.fd = r.efd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    uint64_t n = 0;
    assert_int_equal(read(r.efd, &n, sizeof n), (ssize_t)sizeof n);
    assert_int_equal(n, 1);
    void *setrc;
    assert_int_equal(pthread_join(th, &setrc), 0);
    assert_int_equal((intptr_t)setrc, 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(atomic_load(&r.count), 1);
    assert_int_not_equal(atomic_load(&r.tid), gettid()); /* woken from the setter */
    assert_int_equal(ursa_once_wait_finish(&c, &w, &v), 0);
    void *cur;
    assert_int_equal(ursa_once_get(&c, &cur), 0);
    assert_ptr_equal(v, cur);
    assert_int_equal(ursa_once_wait_finish(&c, &w, &v), -EINVAL); /* finished already */
    assert_int_equal(ursa_wait_cancel(&w), -EINVAL);

    /* Start on a set cell: done at once, no waker call; cancelling a
     * granted raw wait is harmless (it holds nothing). */
    assert_int_equal(ursa_once_wait_start(&c, &w2, rwaker(&r)), 0);
    assert_true(ursa_wait_ready(&w2));
    assert_int_equal(ursa_wait_cancel(&w2), -ECANCELED);
    assert_int_equal(ursa_once_wait_finish(&c, &w2, &v), -EINVAL);
    assert_int_equal(ursa_once_wait_start(&c, &w2, rwaker(&r)), 0);
    v = NULL;
    assert_int_equal(ursa_once_wait_finish(&c, &w2, &v), 0);
    assert_ptr_equal(v, cur);
    /* A wait of another cell is refused. */
    ursa_once_cell_t other;
    assert_int_equal(ursa_once_init(&other, NULL), 0);
    assert_int_equal(ursa_once_wait_finish(&other, &w2, &v), -EINVAL);

    usleep(2000);
    assert_int_equal(atomic_load(&r.count), 1);
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 0), 0); /* no second wake */
    close(r.efd);
    assert_int_equal(ursa_once_destroy(&c), 0);
    assert_int_equal(ursa_once_destroy(&other), 0);
    assert_int_equal(test_leak_count(), 1);
}

/* ---- SetOnce: tasks wait, a task sets ---- */

static struct {
    ursa_set_once_t s;
    int val;
    int woke;
    void *got[4];
} so;

static void *so_waiter(void *arg)
{
    int id = (int)(intptr_t)arg;
    URSA_SIM_CHECK(ursa_once_wait(&so.s, &so.got[id], URSA_NEVER) == 0);
    so.woke++;
    return NULL;
}

static void *so_root(void *arg)
{
    (void)arg;
    memset(&so, 0, sizeof so);
    URSA_SIM_CHECK(ursa_once_init(&so.s, NULL) == 0);
    ursa_task_t *t[4];
    for (int i = 0; i < 4; i++)
        URSA_SIM_CHECK(spawn_named(&t[i], so_waiter, (void *)(intptr_t)i, "w", -1) == 0);
    YIELD_UNTIL(peek_once_waits(&so.s) == 4);
    URSA_SIM_CHECK(so.woke == 0);
    URSA_SIM_CHECK(ursa_once_set(&so.s, &so.val) == 0);
    URSA_SIM_CHECK(ursa_once_set(&so.s, &so) == -EEXIST);
    for (int i = 0; i < 4; i++)
        JOIN_OK(t[i]);
    URSA_SIM_CHECK(so.woke == 4);
    for (int i = 0; i < 4; i++)
        URSA_SIM_CHECK(so.got[i] == &so.val);
    URSA_SIM_CHECK(ursa_once_destroy(&so.s) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_once_set_wakes_every_waiting_task_over_seeds, so_root, NULL)

TEST_MAIN(LEAK_CHECKED(test_once_rejects_bad_arguments_and_leaves_outputs_alone),
          LEAK_CHECKED(test_once_get_set_and_get_or_init_on_a_plain_thread),
          LEAK_CHECKED(test_once_set_during_an_init_is_ebusy_and_self_calls_are_edeadlk),
          LEAK_CHECKED(test_once_deadlines_while_an_init_runs_leave_nothing_queued),
          LEAK_CHECKED(test_once_plain_threads_wait_for_a_set_and_for_an_init),
          LEAK_CHECKED(test_once_raw_wait_woken_by_a_set_on_another_thread),
          LEAK_CHECKED(test_once_set_wakes_every_waiting_task_over_seeds))
