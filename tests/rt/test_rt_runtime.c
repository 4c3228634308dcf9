/* The runtime (src/rt/runtime.c): configuration errors, block_on and
 * ursa_run (results, nesting refused), a task spawned before block_on, and
 * ursa_rt_free (from a task of another runtime; cancelling what is left,
 * from any thread; freeing unjoined handles); the codes without a free
 * descriptor. */

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include "support.h"

#include "rt_checks.h"

/* ================= configuration and block_on ================= */

static void test_rt_new_rejects_bad_configurations(void **state)
{
    (void)state;
    ursa_rt_t *rt = NULL;
    assert_int_equal(ursa_rt_new(NULL, NULL), -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 1025}), -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = (size_t)1 << 40}),
                     -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = SIZE_MAX}), -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = 1}), -EINVAL);
    /* ursa_run passes the config error through. */
    assert_int_equal(ursa_run(&(ursa_rt_config_t){.workers = 5000}, ret_arg, NULL, NULL), -EINVAL);
    assert_int_equal(ursa_run(NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(ursa_rt_block_on(NULL, ret_arg, NULL, NULL), -EINVAL);

    assert_int_equal(ursa_rt_new(&rt, NULL), 0);
    assert_non_null(rt);
    assert_int_equal(ursa_rt_block_on(rt, NULL, NULL, NULL), -EINVAL);
    ursa_rt_free(rt);
    ursa_rt_free(NULL); /* harmless */
}

/* Every descriptor number taken (dups of fd 0 under a lowered soft limit),
 * so the next open fails with EMFILE; undone by fds_release. */
typedef struct fd_hog {
    struct rlimit saved;
    int fds[64];
    int n;
} fd_hog_t;

static void fds_exhaust(fd_hog_t *h)
{
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &h->saved), 0);
    int top = dup(0);
    assert_true(top >= 0);
    close(top);
    struct rlimit low = h->saved;
    low.rlim_cur = (rlim_t)top + 8; /* a few free numbers to take */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    h->n = 0;
    int fd;
    while (h->n < 64 && (fd = dup(0)) >= 0)
        h->fds[h->n++] = fd;
    assert_int_equal(errno, EMFILE);
}

static void fds_release(fd_hog_t *h)
{
    while (h->n > 0)
        close(h->fds[--h->n]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &h->saved), 0);
}

/* Without a free descriptor, ursa_rt_new fails with -EMFILE (documented);
 * ursa_rt_block_on needs none (a worker without a ring of its own uses the
 * fallback). Regression: block_on made worker 0's eventfd on its first
 * call and returned an undocumented -EMFILE. */
static void test_rt_new_fails_with_emfile_and_block_on_needs_no_descriptor(void **state)
{
    (void)state;
    fd_hog_t h;
    ursa_rt_t *rt = NULL;
    fds_exhaust(&h);
    int rc = ursa_rt_new(&rt, NULL);
    fds_release(&h);
    assert_int_equal(rc, -EMFILE);
    assert_null(rt);

    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    fds_exhaust(&h);
    void *res = NULL;
    rc = ursa_rt_block_on(rt, ret_arg, R(7), &res);
    fds_release(&h);
    ursa_rt_free(rt);
    assert_int_equal(rc, 0);
    assert_ptr_equal(res, R(7));
}

static void test_rt_run_returns_root_result(void **state)
{
    (void)state;
    void *res = NULL;
    assert_int_equal(ursa_run(NULL, ret_arg, R(0x5eed), &res), 0);
    assert_ptr_equal(res, R(0x5eed));
    assert_int_equal(ursa_run(NULL, ret_arg, R(1), NULL), 0); /* result may be NULL */
    res = NULL;
    assert_int_equal(
        ursa_run(&(ursa_rt_config_t){.deterministic = true, .seed = 3}, ret_arg, R(7), &res), 0);
    assert_ptr_equal(res, R(7));

    /* One runtime, several block_on calls from the same thread. */
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    assert_int_equal(ursa_rt_block_on(rt, ret_arg, R(11), &res), 0);
    assert_ptr_equal(res, R(11));
    assert_int_equal(ursa_rt_block_on(rt, ret_arg, R(12), &res), 0);
    assert_ptr_equal(res, R(12));
    ursa_rt_free(rt);
}

typedef struct nested {
    ursa_rt_t *self_rt, *other_rt;
    int self_rc, other_rc, run_rc;
} nested_t;

static void *nested_block_on_root(void *arg)
{
    nested_t *n = arg;
    n->self_rc = ursa_rt_block_on(n->self_rt, ret_arg, NULL, NULL);
    n->other_rc = ursa_rt_block_on(n->other_rt, ret_arg, NULL, NULL);
    return R(1);
}

static void test_rt_block_on_inside_task_einval(void **state)
{
    (void)state;
    nested_t n = {0};
    assert_int_equal(ursa_rt_new(&n.self_rt, NULL), 0);
    assert_int_equal(ursa_rt_new(&n.other_rt, NULL), 0);
    void *res = NULL;
    assert_int_equal(ursa_rt_block_on(n.self_rt, nested_block_on_root, &n, &res), 0);
    ursa_rt_free(n.self_rt);
    ursa_rt_free(n.other_rt);
    assert_ptr_equal(res, R(1));
    assert_int_equal(n.self_rc, -EINVAL);  /* its own runtime */
    assert_int_equal(n.other_rc, -EINVAL); /* any runtime */
}

/* Misuse reports (ursa__report_misuse) are routed to the leak hook; these
 * tests turn one into a test failure instead of an abort of the program. */
static bool misuse_begin(void)
{
    bool old_abort = ursa_leak_set_abort(false);
    test_capture_leaks();
    return old_abort;
}

static void misuse_end(bool old_abort)
{
    int reports = test_leak_count();
    char what[512];
    test_leak_snapshot(NULL, 0, what, sizeof what, NULL);
    ursa_leak_set_hook(NULL, NULL);
    ursa_leak_set_abort(old_abort);
    if (reports)
        fail_msg("%d misuse report(s), last: \"%s\"", reports, what);
}

static void *nested_run_root(void *arg)
{
    nested_t *n = arg;
    n->run_rc = ursa_run(NULL, ret_arg, NULL, NULL);
    return R(1);
}

/* ursa_run inside a task: its block_on fails with -EINVAL, and the runtime
 * it made must still be freed quietly (nothing of it ever ran). */
static void test_rt_run_inside_task_einval(void **state)
{
    (void)state;
    bool old = misuse_begin();
    nested_t n = {0};
    void *res = NULL;
    int rc = ursa_run(NULL, nested_run_root, &n, &res);
    assert_int_equal(rc, 0);
    assert_ptr_equal(res, R(1));
    assert_int_equal(n.run_rc, -EINVAL);
    misuse_end(old);
}

static void *free_other_root(void *arg)
{
    ursa_rt_free(arg); /* not one of this runtime's tasks: allowed */
    return R(1);
}

/* ursa_rt_free "must not be called from inside one of its tasks": a
 * runtime that has no tasks may be freed from a task of another one. */
static void test_rt_free_other_runtime_from_task(void **state)
{
    (void)state;
    bool old = misuse_begin();
    ursa_rt_t *other;
    assert_int_equal(ursa_rt_new(&other, &(ursa_rt_config_t){.workers = 2}), 0);
    void *res = NULL;
    assert_int_equal(ursa_run(NULL, free_other_root, other, &res), 0);
    assert_ptr_equal(res, R(1));
    misuse_end(old);
}

/* A task spawned onto a runtime before any block_on runs once it does. */
static void *join_handle_root(void *arg)
{
    void *v = R(-1);
    int rc = ursa_task_join(*(ursa_task_t **)arg, &v, test_guard_deadline());
    return rc ? R(rc) : v;
}

static void test_rt_task_spawned_before_block_on_runs_in_it(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        ursa_rt_t *rt;
        assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = workers}), 0);
        ursa_task_t *t = NULL;
        assert_int_equal(
            ursa_rt_spawn(rt, &t, ret_arg, R(31), &(ursa_spawn_opts_t){URSA_ON_WORKER((int)workers - 1)}),
            0);
        assert_non_null(t);
        void *res = NULL;
        assert_int_equal(ursa_rt_block_on(rt, join_handle_root, &t, &res), 0);
        ursa_rt_free(rt);
        assert_ptr_equal(res, R(31));
    }
}

/* A plain thread spawns onto worker 0 while another thread's first
 * block_on makes worker 0's ring: the spawn's kick and the ring's setup
 * must not race (TSan saw one on worker 0's eventfd). */
typedef struct first_block_on {
    ursa_rt_t *rt;
    void *res;
    int rc;
} first_block_on_t;

static void *first_block_on_thread(void *arg)
{
    first_block_on_t *f = arg;
    f->rc = ursa_rt_block_on(f->rt, ret_arg, R(7), &f->res);
    return NULL;
}

static void test_rt_spawn_racing_the_first_block_on(void **state)
{
    (void)state;
    long rounds = test_scale(50);
    for (long r = 0; r < rounds; r++) {
        first_block_on_t f = {NULL, NULL, -1};
        assert_int_equal(ursa_rt_new(&f.rt, &(ursa_rt_config_t){.workers = 1}), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, first_block_on_thread, &f), 0);
        ursa_task_t *t = NULL;
        assert_int_equal(
            ursa_rt_spawn(f.rt, &t, ret_arg, R(31), &(ursa_spawn_opts_t){URSA_ON_WORKER(0)}), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(f.rc, 0);
        assert_ptr_equal(f.res, R(7));
        void *res = NULL;
        assert_int_equal(ursa_rt_block_on(f.rt, join_handle_root, &t, &res), 0);
        assert_ptr_equal(res, R(31));
        ursa_rt_free(f.rt);
    }
}

/* A task its runtime is freed under: counts itself started, waits an
 * hour's sleep (or, with `never`, for a permit that never comes), keeps
 * the wait's result and counts itself finished. */
typedef struct leftover_wait {
    atomic_int *started, *finished;
    ursa_sem_t *never;
    atomic_int rc;
} leftover_wait_t;

static void *leftover_waiter(void *arg)
{
    leftover_wait_t *w = arg;
    URSA_SCOPED(sem_permit, p);
    atomic_fetch_add(w->started, 1);
    int rc = w->never ? ursa_sem_acquire(w->never, 1, &p, URSA_NEVER)
                      : ursa_sleep_for(URSA_SEC(3600));
    atomic_store(&w->rc, rc);
    atomic_fetch_add(w->finished, 1);
    return NULL;
}

/* w waits, counting into started and finished (never: as above); its rc
 * starts at 1, no result yet. */
static void leftover_init(leftover_wait_t *w, atomic_int *started, atomic_int *finished,
                          ursa_sem_t *never)
{
    w->started = started;
    w->finished = finished;
    w->never = never;
    atomic_init(&w->rc, 1);
}

/* ursa_rt_free cancels what is left and lets it finish. */
typedef struct leftover {
    ursa_sem_t never; /* no permits, ever */
    atomic_int started, finished;
    leftover_wait_t sleep, sem, sleep1; /* on workers 0, 1, 1 */
} leftover_t;

static void *leftover_root(void *arg)
{
    leftover_t *l = arg;
    ursa_spawn_opts_t o0 = {URSA_ON_WORKER(0), .detached = true};
    ursa_spawn_opts_t o1 = {URSA_ON_WORKER(1), .detached = true};
    if (ursa_spawn(NULL, leftover_waiter, &l->sleep, &o0) ||
        ursa_spawn(NULL, leftover_waiter, &l->sem, &o1) ||
        ursa_spawn(NULL, leftover_waiter, &l->sleep1, &o1))
        return R(-1);
    ursa_time_t end = ursa_now() + test_hang_guard();
    while (atomic_load(&l->started) < 3 && ursa_now() < end)
        (void)ursa_sleep_for(URSA_USEC(200));
    (void)ursa_sleep_for(URSA_MSEC(2)); /* all parked */
    return NULL; /* the root ends; the three are still waiting */
}

static void test_rt_free_cancels_leftover_tasks(void **state)
{
    (void)state;
    leftover_t l;
    memset(&l, 0, sizeof l);
    ursa_sem_init(&l.never, 0);
    leftover_init(&l.sleep, &l.started, &l.finished, NULL);
    leftover_init(&l.sem, &l.started, &l.finished, &l.never);
    leftover_init(&l.sleep1, &l.started, &l.finished, NULL);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    void *res = R(-1);
    assert_int_equal(ursa_rt_block_on(rt, leftover_root, &l, &res), 0);
    assert_null(res);
    assert_int_equal(atomic_load(&l.started), 3);
    assert_int_equal(atomic_load(&l.finished), 0);
    ursa_rt_free(rt); /* returns only once the hour-long waits have ended */
    assert_int_equal(atomic_load(&l.finished), 3);
    assert_int_equal(atomic_load(&l.sleep.rc), -ECANCELED);
    assert_int_equal(atomic_load(&l.sem.rc), -ECANCELED);
    assert_int_equal(atomic_load(&l.sleep1.rc), -ECANCELED);
    assert_int_equal(ursa_sem_destroy(&l.never), 0);
}

/* ursa_rt_free frees the handles of tasks never joined: spawned from a
 * task (each worker's descriptor pool; plain malloc under ASan) and from a
 * plain thread (plain malloc), finished or still running. Regression:
 * those allocated with malloc leaked (LSan, 344 B each). Checked here by
 * the heap in use across many runtimes (glibc's mallinfo2; under ASan the
 * CI's LeakSanitizer sees it). */
#define UNJOINED_PER_RT 64

static void *spawn_unjoined_root(void *arg)
{
    (void)arg;
    for (int i = 0; i < UNJOINED_PER_RT; i++) {
        ursa_task_t *t;
        ursa_spawn_opts_t o = {URSA_ON_WORKER(1)};
        if (i % 2)
            o = (ursa_spawn_opts_t){.placement = URSA_PLACE_LOCAL};
        if (ursa_spawn(&t, ret_arg, NULL, &o))
            return R(-1);
    }
    return NULL;
}

static void unjoined_round(void)
{
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    /* From a plain thread, before block_on: malloc'd descriptors. */
    for (int i = 0; i < UNJOINED_PER_RT; i++) {
        ursa_task_t *t;
        assert_int_equal(ursa_rt_spawn(rt, &t, ret_arg, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}),
                         0);
    }
    void *res = R(-9);
    assert_int_equal(ursa_rt_block_on(rt, spawn_unjoined_root, NULL, &res), 0);
    assert_null(res);
    ursa_rt_free(rt);
}

static void test_rt_free_frees_unjoined_handles(void **state)
{
    (void)state;
    unjoined_round(); /* warm-up: per-thread state, stdio, arenas */
    size_t before = mallinfo2().uordblks;
    for (int r = 0; r < 50; r++)
        unjoined_round();
    size_t after = mallinfo2().uordblks;
    /* A leak of one descriptor per unjoined task would be > 1 MB here. */
    if (after > before)
        assert_true(after - before < 64 * 1024);
}

/* The same from a thread other than the one that ran block_on: the doc
 * does not restrict the thread, and worker 0's leftovers must still be
 * cancelled and finished (not leaked with their stacks). */
typedef struct free_thread {
    ursa_rt_t *rt;
    atomic_int started, finished;
    leftover_wait_t sleeper;
} free_thread_t;

static void *ft_root(void *arg)
{
    free_thread_t *f = arg;
    if (ursa_spawn(NULL, leftover_waiter, &f->sleeper,
                   &(ursa_spawn_opts_t){URSA_ON_WORKER(0), .detached = true}))
        return R(-1);
    return yield_until(&f->started) ? NULL : R(-2);
}

static void *ft_freer(void *arg)
{
    ursa_rt_free(((free_thread_t *)arg)->rt);
    return NULL;
}

static void test_rt_free_from_other_thread_cancels_leftovers(void **state)
{
    (void)state;
    free_thread_t f;
    memset(&f, 0, sizeof f);
    leftover_init(&f.sleeper, &f.started, &f.finished, NULL);
    assert_int_equal(ursa_rt_new(&f.rt, NULL), 0);
    void *res = R(-1);
    assert_int_equal(ursa_rt_block_on(f.rt, ft_root, &f, &res), 0);
    assert_null(res);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ft_freer, &f), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&f.finished), 1);
    assert_int_equal(atomic_load(&f.sleeper.rc), -ECANCELED);
}

TEST_MAIN(cmocka_unit_test(test_rt_new_rejects_bad_configurations),
          cmocka_unit_test(test_rt_run_returns_root_result),
          cmocka_unit_test(test_rt_new_fails_with_emfile_and_block_on_needs_no_descriptor),
          cmocka_unit_test(test_rt_block_on_inside_task_einval),
          cmocka_unit_test(test_rt_run_inside_task_einval),
          cmocka_unit_test(test_rt_free_other_runtime_from_task),
          cmocka_unit_test(test_rt_task_spawned_before_block_on_runs_in_it),
          cmocka_unit_test(test_rt_spawn_racing_the_first_block_on),
          cmocka_unit_test(test_rt_free_cancels_leftover_tasks),
          cmocka_unit_test(test_rt_free_frees_unjoined_handles),
          cmocka_unit_test(test_rt_free_from_other_thread_cancels_leftovers))
