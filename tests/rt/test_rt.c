/* Runtime tests: configuration, spawn/join/detach, names and workers,
 * yield, sleep, cancel, cross-worker and cross-thread wakes, the
 * deterministic mode and seed exploration, deadlock reports, and the stack
 * guard page.
 *
 * Tasks never call cmocka asserts (they longjmp, and tasks may run on other
 * worker threads): they record what they saw in a struct owned by the test
 * body, which asserts after the runtime has finished. */
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt/task.h" /* struct ursa_task, for the stack bounds */
#include "support.h"

#define R(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

/* Runs fn in deterministic mode under `seed`; returns ursa_run's code. */
static int run_det(uint64_t seed, ursa_task_fn_t fn, void *arg, void **res)
{
    return ursa_run(&(ursa_rt_config_t){.deterministic = true, .seed = seed}, fn, arg, res);
}

static void *ret_arg(void *arg)
{
    return arg;
}

static void *mark_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

/* A task that waits on a gate semaphore (0 permits) and returns 99. */
typedef struct gate {
    ursa_sem_t sem;
    atomic_int started;
} gate_t;

static void gate_init(gate_t *g)
{
    ursa_sem_init(&g->sem, 0);
    atomic_init(&g->started, 0);
}

static void *gated(void *arg)
{
    gate_t *g = arg;
    atomic_store(&g->started, 1);
    URSA_SCOPED(sem_permit, p);
    int rc = ursa_sem_acquire(&g->sem, 1, &p, URSA_NEVER);
    return R(rc == 0 ? 99 : rc);
}

/* Captures what the library prints on stderr (fd 2) around a call. */
typedef struct capture {
    int saved;
    FILE *tmp;
    char text[8192];
} capture_t;

static void capture_begin(capture_t *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), 2) >= 0);
}

static const char *capture_end(capture_t *c)
{
    fflush(stderr);
    assert_true(dup2(c->saved, 2) >= 0);
    close(c->saved);
    rewind(c->tmp);
    size_t n = fread(c->text, 1, sizeof c->text - 1, c->tmp);
    c->text[n] = 0;
    fclose(c->tmp);
    /* Echo it, so the report is visible in the test log too. */
    fputs(c->text, stderr);
    return c->text;
}

/* ================= configuration and block_on ================= */

static void test_rt_config_errors(void **state)
{
    (void)state;
    ursa_rt_t *rt = NULL;
    assert_int_equal(ursa_rt_new(NULL, NULL), -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2, .deterministic = true}),
                     -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = (size_t)1 << 40}),
                     -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = SIZE_MAX}), -EINVAL);
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.stack_size = 1}), -EINVAL);
    /* ursa_run passes the config error through. */
    assert_int_equal(
        ursa_run(&(ursa_rt_config_t){.workers = 3, .deterministic = true}, ret_arg, NULL, NULL),
        -EINVAL);
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
static void test_rt_codes_without_descriptors(void **state)
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

/* ================= spawn / join / detach ================= */

static void *double_it(void *arg)
{
    (void)ursa_yield();
    return R(I(arg) * 2);
}

typedef struct basic_join {
    int spawn_rc[8];
    int join_rc[8];
    intptr_t val[8];
} basic_join_t;

static void *basic_join_root(void *arg)
{
    basic_join_t *b = arg;
    ursa_task_t *t[8] = {0};
    for (int i = 0; i < 8; i++)
        b->spawn_rc[i] = ursa_spawn(&t[i], double_it, R(i + 1), NULL);
    for (int i = 7; i >= 0; i--) { /* join order need not match spawn order */
        void *v = NULL;
        b->join_rc[i] = t[i] ? ursa_task_join(t[i], &v, URSA_NEVER) : -1;
        b->val[i] = I(v);
    }
    return NULL;
}

static void test_rt_spawn_join_results(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        basic_join_t b;
        memset(&b, 0, sizeof b);
        assert_null(test_run(workers, basic_join_root, &b));
        for (int i = 0; i < 8; i++) {
            assert_int_equal(b.spawn_rc[i], 0);
            assert_int_equal(b.join_rc[i], 0);
            assert_int_equal(b.val[i], (i + 1) * 2);
        }
    }
}

typedef struct join_res {
    int spawn_rc;
    int now_rc_queued, now_rc_blocked, expired_rc, short_rc;
    ursa_time_t short_elapsed;
    int self_rc, null_rc;
    int final_rc;
    intptr_t final_val;
} join_res_t;

static void *join_errors_root(void *arg)
{
    join_res_t *r = arg;
    gate_t g;
    gate_init(&g);
    ursa_task_t *t = NULL;
    r->spawn_rc = ursa_spawn(&t, gated, &g, &(ursa_spawn_opts_t){.name = "gated", .worker = -1});
    if (r->spawn_rc)
        return NULL;
    void *v = R(-1);
    r->now_rc_queued = ursa_task_join(t, &v, URSA_NOW); /* not even started */
    if (!yield_until(&g.started))
        return R(-1);
    r->now_rc_blocked = ursa_task_join(t, &v, URSA_NOW); /* blocked on the gate */
    r->expired_rc = ursa_task_join(t, &v, ursa_deadline_in(0));
    ursa_time_t t0 = ursa_now();
    r->short_rc = ursa_task_join(t, &v, ursa_deadline_in(URSA_MSEC(5)));
    r->short_elapsed = ursa_now() - t0;
    r->self_rc = ursa_task_join(ursa_task_self(), NULL, URSA_NEVER);
    r->null_rc = ursa_task_join(NULL, NULL, URSA_NEVER);
    (void)ursa_sem_add(&g.sem, 1);
    v = R(-1);
    r->final_rc = ursa_task_join(t, &v, ursa_deadline_in(URSA_SEC(10)));
    r->final_val = I(v);
    return NULL;
}

static void test_rt_join_errors_keep_handle(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        join_res_t r;
        memset(&r, 0, sizeof r);
        assert_null(test_run(workers, join_errors_root, &r));
        assert_int_equal(r.spawn_rc, 0);
        assert_int_equal(r.now_rc_queued, -EAGAIN);
        assert_int_equal(r.now_rc_blocked, -EAGAIN);
        assert_int_equal(r.expired_rc, -ETIMEDOUT);
        assert_int_equal(r.short_rc, -ETIMEDOUT);
        assert_true(r.short_elapsed >= URSA_MSEC(5));
        assert_int_equal(r.self_rc, -EINVAL);
        assert_int_equal(r.null_rc, -EINVAL);
        assert_int_equal(r.final_rc, 0);
        assert_int_equal(r.final_val, 99);
    }
}

typedef struct detach_res {
    atomic_int ran[5];
    gate_t gate;
    int spawn_rc[5];
    int detach_before_run, detach_after_finish, detach_gated, detach_twice, join_detached;
    int detach_null;
    int spawn_no_out_rc, spawn_out_rc;
    ursa_task_t *out_after;
    bool all_ran;
} detach_res_t;

static void *gated_mark(void *arg)
{
    detach_res_t *d = arg;
    void *r = gated(&d->gate);
    atomic_store(&d->ran[2], 1);
    return r;
}

static void *detach_root(void *arg)
{
    detach_res_t *d = arg;
    ursa_task_t *t = NULL;
    /* Detached before it first runs. */
    d->spawn_rc[0] = ursa_spawn(&t, mark_flag, &d->ran[0], NULL);
    d->detach_before_run = t ? ursa_task_detach(t) : -1;
    /* Detached after it finished (frees it at once). */
    t = NULL;
    d->spawn_rc[1] = ursa_spawn(&t, mark_flag, &d->ran[1], NULL);
    if (!yield_until(&d->ran[1]))
        return R(-1);
    (void)ursa_yield();
    d->detach_after_finish = t ? ursa_task_detach(t) : -1;
    /* Detached while blocked; a second detach and a join are refused. */
    t = NULL;
    d->spawn_rc[2] = ursa_spawn(&t, gated_mark, d, NULL);
    if (!yield_until(&d->gate.started))
        return R(-1);
    d->detach_gated = ursa_task_detach(t);
    d->detach_twice = ursa_task_detach(t);
    d->join_detached = ursa_task_join(t, NULL, URSA_NOW);
    d->detach_null = ursa_task_detach(NULL);
    (void)ursa_sem_add(&d->gate.sem, 1);
    /* Spawned detached: out may be NULL, and is cleared when given. */
    d->spawn_no_out_rc = ursa_spawn(NULL, mark_flag, &d->ran[3],
                                    &(ursa_spawn_opts_t){.detached = true, .worker = -1});
    t = (ursa_task_t *)d; /* garbage that must be overwritten */
    d->spawn_out_rc =
        ursa_spawn(&t, mark_flag, &d->ran[4], &(ursa_spawn_opts_t){.detached = true, .worker = -1});
    d->out_after = t;
    d->all_ran = true;
    for (int i = 0; i < 5; i++)
        d->all_ran &= yield_until(&d->ran[i]);
    return NULL;
}

/* Run under ASan: LeakSanitizer proves the detached tasks freed themselves. */
static void test_rt_detach(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        detach_res_t *d = calloc(1, sizeof *d);
        assert_non_null(d);
        gate_init(&d->gate);
        assert_null(test_run(workers, detach_root, d));
        for (int i = 0; i < 3; i++)
            assert_int_equal(d->spawn_rc[i], 0);
        assert_int_equal(d->detach_before_run, 0);
        assert_int_equal(d->detach_after_finish, 0);
        assert_int_equal(d->detach_gated, 0);
        assert_int_equal(d->detach_twice, -EINVAL);
        assert_int_equal(d->join_detached, -EINVAL);
        assert_int_equal(d->detach_null, -EINVAL);
        assert_int_equal(d->spawn_no_out_rc, 0);
        assert_int_equal(d->spawn_out_rc, 0);
        assert_null(d->out_after);
        assert_true(d->all_ran);
        free(d);
    }
}

typedef struct many {
    long n;
    long spawn_fail, join_fail, wrong;
} many_t;

static void *triple(void *arg)
{
    return R(I(arg) * 3);
}

static void *many_root(void *arg)
{
    many_t *m = arg;
    ursa_task_t **h = calloc((size_t)m->n, sizeof *h);
    if (!h)
        return R(-ENOMEM);
    for (long i = 0; i < m->n; i++)
        if (ursa_spawn(&h[i], triple, R(i), &(ursa_spawn_opts_t){.worker = (int)(i % 2)}))
            m->spawn_fail++;
    for (long i = 0; i < m->n; i++) {
        if (!h[i])
            continue;
        void *v = NULL;
        if (ursa_task_join(h[i], &v, ursa_deadline_in(URSA_SEC(30))))
            m->join_fail++;
        else if (I(v) != i * 3)
            m->wrong++;
    }
    free(h);
    return NULL;
}

static void test_rt_spawn_10k_join_all(void **state)
{
    (void)state;
    many_t m = {.n = test_scale(10000)};
    assert_null(test_run(2, many_root, &m));
    assert_int_equal(m.spawn_fail, 0);
    assert_int_equal(m.join_fail, 0);
    assert_int_equal(m.wrong, 0);
}

/* Detached tasks spawned on worker 0 and finished on worker 1: their
 * descriptors go back to the spawner's pool from another thread. */
typedef struct churn {
    atomic_long done;
    long spawn_fail;
    bool stuck;
} churn_t;

static void *churn_body(void *arg)
{
    churn_t *c = arg;
    if (ursa_worker_index() == 1)
        atomic_fetch_add(&c->done, 1);
    return NULL;
}

static void *churn_root(void *arg)
{
    churn_t *c = arg;
    long total = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 100; i++, total++)
            if (ursa_spawn(NULL, churn_body, c, &(ursa_spawn_opts_t){.worker = 1, .detached = true}))
                c->spawn_fail++;
        /* Wait for this batch, so the next one reuses freed descriptors. */
        ursa_time_t end = ursa_now() + URSA_SEC(10);
        while (atomic_load(&c->done) < total - c->spawn_fail && ursa_now() < end)
            (void)ursa_sleep_for(URSA_USEC(100));
        if (atomic_load(&c->done) < total - c->spawn_fail) {
            c->stuck = true;
            break;
        }
    }
    return NULL;
}

static void test_rt_detached_cross_worker_churn(void **state)
{
    (void)state;
    churn_t c;
    memset(&c, 0, sizeof c);
    assert_null(test_run(2, churn_root, &c));
    assert_int_equal(c.spawn_fail, 0);
    assert_false(c.stuck);
    assert_int_equal(atomic_load(&c.done), 2000);
}

/* A task spawned onto a runtime before any block_on runs once it does. */
static void *join_handle_root(void *arg)
{
    void *v = R(-1);
    int rc = ursa_task_join(*(ursa_task_t **)arg, &v, ursa_deadline_in(URSA_SEC(10)));
    return rc ? R(rc) : v;
}

static void test_rt_spawn_before_block_on(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        ursa_rt_t *rt;
        assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = workers}), 0);
        ursa_task_t *t = NULL;
        assert_int_equal(
            ursa_rt_spawn(rt, &t, ret_arg, R(31), &(ursa_spawn_opts_t){.worker = (int)workers - 1}),
            0);
        assert_non_null(t);
        void *res = NULL;
        assert_int_equal(ursa_rt_block_on(rt, join_handle_root, &t, &res), 0);
        ursa_rt_free(rt);
        assert_ptr_equal(res, R(31));
    }
}

/* ursa_rt_free cancels what is left and lets it finish. */
typedef struct leftover {
    ursa_sem_t never; /* no permits, ever */
    atomic_int started;
    atomic_int rc_sleep, rc_sem, rc_sleep1, finished;
} leftover_t;

static void *leftover_sleep(void *arg)
{
    leftover_t *l = arg;
    atomic_fetch_add(&l->started, 1);
    atomic_store(&l->rc_sleep, ursa_sleep_for(URSA_SEC(3600)));
    atomic_fetch_add(&l->finished, 1);
    return NULL;
}

static void *leftover_sem(void *arg)
{
    leftover_t *l = arg;
    URSA_SCOPED(sem_permit, p);
    atomic_fetch_add(&l->started, 1);
    atomic_store(&l->rc_sem, ursa_sem_acquire(&l->never, 1, &p, URSA_NEVER));
    atomic_fetch_add(&l->finished, 1);
    return NULL;
}

static void *leftover_sleep_w1(void *arg)
{
    leftover_t *l = arg;
    atomic_fetch_add(&l->started, 1);
    atomic_store(&l->rc_sleep1, ursa_sleep_for(URSA_SEC(3600)));
    atomic_fetch_add(&l->finished, 1);
    return NULL;
}

static void *leftover_root(void *arg)
{
    leftover_t *l = arg;
    ursa_spawn_opts_t o0 = {.worker = 0, .detached = true};
    ursa_spawn_opts_t o1 = {.worker = 1, .detached = true};
    if (ursa_spawn(NULL, leftover_sleep, l, &o0) || ursa_spawn(NULL, leftover_sem, l, &o1) ||
        ursa_spawn(NULL, leftover_sleep_w1, l, &o1))
        return R(-1);
    ursa_time_t end = ursa_now() + URSA_SEC(10);
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
    atomic_init(&l.rc_sleep, 1);
    atomic_init(&l.rc_sem, 1);
    atomic_init(&l.rc_sleep1, 1);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    void *res = R(-1);
    assert_int_equal(ursa_rt_block_on(rt, leftover_root, &l, &res), 0);
    assert_null(res);
    assert_int_equal(atomic_load(&l.started), 3);
    assert_int_equal(atomic_load(&l.finished), 0);
    ursa_time_t t0 = mono_ns();
    ursa_rt_free(rt);
    assert_true(mono_ns() - t0 < URSA_SEC(3));
    assert_int_equal(atomic_load(&l.finished), 3);
    assert_int_equal(atomic_load(&l.rc_sleep), -ECANCELED);
    assert_int_equal(atomic_load(&l.rc_sem), -ECANCELED);
    assert_int_equal(atomic_load(&l.rc_sleep1), -ECANCELED);
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
        int worker = i % 2 ? -1 : 1;
        if (ursa_spawn(&t, ret_arg, NULL, &(ursa_spawn_opts_t){.worker = worker}))
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
        assert_int_equal(ursa_rt_spawn(rt, &t, ret_arg, NULL, &(ursa_spawn_opts_t){.worker = i % 2}),
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
    atomic_int started, finished, rc;
} free_thread_t;

static void *ft_sleeper(void *arg)
{
    free_thread_t *f = arg;
    atomic_store(&f->started, 1);
    atomic_store(&f->rc, ursa_sleep_for(URSA_SEC(3600)));
    atomic_store(&f->finished, 1);
    return NULL;
}

static void *ft_root(void *arg)
{
    free_thread_t *f = arg;
    if (ursa_spawn(NULL, ft_sleeper, f, &(ursa_spawn_opts_t){.worker = 0, .detached = true}))
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
    atomic_init(&f.rc, 1);
    assert_int_equal(ursa_rt_new(&f.rt, NULL), 0);
    void *res = R(-1);
    assert_int_equal(ursa_rt_block_on(f.rt, ft_root, &f, &res), 0);
    assert_null(res);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ft_freer, &f), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&f.finished), 1);
    assert_int_equal(atomic_load(&f.rc), -ECANCELED);
}

/* ================= names and workers ================= */

typedef struct seen {
    char name[64];
    int worker;
    bool self_ok;
} seen_t;

static void *record_self(void *arg)
{
    seen_t *s = arg;
    ursa_task_t *me = ursa_task_self();
    s->self_ok = me != NULL;
    snprintf(s->name, sizeof s->name, "%s", ursa_task_name(me));
    s->worker = ursa_worker_index();
    return NULL;
}

typedef struct names {
    seen_t alpha, dflt, longn, copied;
    char alpha_handle[64], dflt_handle[64];
    bool root_name_ok;
    int root_worker;
    int spawn_rc[4];
} names_t;

#define LONG_NAME "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF" /* 42 bytes */

static void *names_root(void *arg)
{
    names_t *n = arg;
    const char *rn = ursa_task_name(ursa_task_self());
    n->root_name_ok = rn != NULL && rn[0] != 0;
    n->root_worker = ursa_worker_index();
    ursa_task_t *t[4] = {0};
    n->spawn_rc[0] = ursa_spawn(&t[0], record_self, &n->alpha,
                                &(ursa_spawn_opts_t){.name = "alpha", .worker = -1});
    n->spawn_rc[1] = ursa_spawn(&t[1], record_self, &n->dflt, NULL);
    n->spawn_rc[2] = ursa_spawn(&t[2], record_self, &n->longn,
                                &(ursa_spawn_opts_t){.name = LONG_NAME, .worker = -1});
    char buf[16];
    snprintf(buf, sizeof buf, "copied");
    n->spawn_rc[3] =
        ursa_spawn(&t[3], record_self, &n->copied, &(ursa_spawn_opts_t){.name = buf, .worker = -1});
    snprintf(buf, sizeof buf, "CLOBBERED"); /* the name must have been copied */
    if (t[0])
        snprintf(n->alpha_handle, sizeof n->alpha_handle, "%s", ursa_task_name(t[0]));
    if (t[1])
        snprintf(n->dflt_handle, sizeof n->dflt_handle, "%s", ursa_task_name(t[1]));
    for (int i = 0; i < 4; i++)
        if (t[i] && ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-100);
    return NULL;
}

static void test_rt_task_names(void **state)
{
    (void)state;
    names_t n;
    memset(&n, 0, sizeof n);
    assert_null(test_run(1, names_root, &n));
    for (int i = 0; i < 4; i++)
        assert_int_equal(n.spawn_rc[i], 0);
    assert_true(n.root_name_ok);
    assert_int_equal(n.root_worker, 0);
    assert_true(n.alpha.self_ok);
    assert_string_equal(n.alpha.name, "alpha");
    assert_string_equal(n.alpha_handle, "alpha");
    assert_string_equal(n.dflt.name, "task");
    assert_string_equal(n.dflt_handle, "task");
    assert_int_equal(strlen(n.longn.name), 31);
    assert_int_equal(strncmp(n.longn.name, LONG_NAME, 31), 0);
    assert_string_equal(n.copied.name, "copied");
    /* Off-task. */
    assert_null(ursa_task_self());
    assert_int_equal(ursa_worker_index(), -1);
    assert_false(ursa_task_cancelled());
    assert_non_null(ursa_task_name(NULL));
}

typedef struct workers_res {
    seen_t on1, on0, cur, from1;
    int root_worker;
    int spawn_rc[4];
    int bad_rc[3];
    ursa_task_t *bad_out[3];
} workers_res_t;

/* Runs on worker 1 and spawns with worker = -1: the child lands here too. */
static void *spawn_from_worker1(void *arg)
{
    workers_res_t *w = arg;
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, record_self, &w->from1, NULL))
        return R(-1);
    return R(ursa_task_join(t, NULL, URSA_NEVER));
}

static void *workers_root(void *arg)
{
    workers_res_t *w = arg;
    w->root_worker = ursa_worker_index();
    ursa_task_t *t[4] = {0};
    w->spawn_rc[0] = ursa_spawn(&t[0], record_self, &w->on1, &(ursa_spawn_opts_t){.worker = 1});
    w->spawn_rc[1] = ursa_spawn(&t[1], record_self, &w->on0, &(ursa_spawn_opts_t){.worker = 0});
    w->spawn_rc[2] = ursa_spawn(&t[2], record_self, &w->cur, &(ursa_spawn_opts_t){.worker = -1});
    w->spawn_rc[3] =
        ursa_spawn(&t[3], spawn_from_worker1, w, &(ursa_spawn_opts_t){.worker = 1});
    const int bad[3] = {2, -2, 1000};
    for (int i = 0; i < 3; i++) {
        ursa_task_t *b = (ursa_task_t *)w; /* garbage that must be cleared */
        w->bad_rc[i] = ursa_spawn(&b, record_self, &w->on0, &(ursa_spawn_opts_t){.worker = bad[i]});
        w->bad_out[i] = b;
    }
    for (int i = 0; i < 4; i++)
        if (t[i] && ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-100);
    return NULL;
}

static void test_rt_spawn_on_chosen_worker(void **state)
{
    (void)state;
    workers_res_t w;
    memset(&w, 0, sizeof w);
    assert_null(test_run(2, workers_root, &w));
    for (int i = 0; i < 4; i++)
        assert_int_equal(w.spawn_rc[i], 0);
    assert_int_equal(w.root_worker, 0);
    assert_int_equal(w.on1.worker, 1);
    assert_int_equal(w.on0.worker, 0);
    assert_int_equal(w.cur.worker, 0);
    assert_int_equal(w.from1.worker, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w.bad_rc[i], -EINVAL);
        assert_null(w.bad_out[i]);
    }
    /* Off-task spawn and bad arguments. */
    ursa_task_t *t = NULL;
    assert_int_equal(ursa_spawn(&t, ret_arg, NULL, NULL), -EINVAL);
    assert_null(t);
    assert_int_equal(ursa_rt_spawn(NULL, &t, ret_arg, NULL, NULL), -EINVAL);
}

typedef struct xspawn {
    ursa_rt_t *rt;
    ursa_sem_t done;
    gate_t gate;
    int spawn_rc, null_fn_rc, now_rc, timed_rc, join_rc, root_rc;
    intptr_t result;
    seen_t seen;
} xspawn_t;

static void *xs_body(void *arg)
{
    xspawn_t *x = arg;
    record_self(&x->seen);
    return gated(&x->gate);
}

static void *xs_thread(void *arg)
{
    xspawn_t *x = arg;
    ursa_task_t *t = NULL;
    x->null_fn_rc = ursa_rt_spawn(x->rt, &t, NULL, NULL, NULL);
    x->spawn_rc = ursa_rt_spawn(x->rt, &t, xs_body, x,
                                &(ursa_spawn_opts_t){.name = "from-thread", .worker = -1});
    if (x->spawn_rc == 0) {
        void *v = R(-1);
        x->now_rc = ursa_task_join(t, &v, URSA_NOW);
        x->timed_rc = ursa_task_join(t, &v, ursa_deadline_in(URSA_MSEC(2)));
        (void)ursa_sem_add(&x->gate.sem, 1);
        /* A plain thread: parks on a futex until the task is done. */
        x->join_rc = ursa_task_join(t, &v, ursa_deadline_in(URSA_SEC(10)));
        x->result = I(v);
    }
    (void)ursa_sem_add(&x->done, 1);
    return NULL;
}

static void *xs_root(void *arg)
{
    xspawn_t *x = arg;
    pthread_t th;
    if (pthread_create(&th, NULL, xs_thread, x) != 0)
        return R(-1);
    URSA_SCOPED(sem_permit, p);
    x->root_rc = ursa_sem_acquire(&x->done, 1, &p, ursa_deadline_in(URSA_SEC(20)));
    pthread_join(th, NULL);
    return NULL;
}

static void test_rt_spawn_from_plain_thread(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        xspawn_t x;
        memset(&x, 0, sizeof x);
        ursa_sem_init(&x.done, 0);
        gate_init(&x.gate);
        assert_int_equal(ursa_rt_new(&x.rt, &(ursa_rt_config_t){.workers = workers}), 0);
        assert_int_equal(ursa_rt_block_on(x.rt, xs_root, &x, NULL), 0);
        ursa_rt_free(x.rt);
        assert_int_equal(x.root_rc, 0);
        assert_int_equal(x.null_fn_rc, -EINVAL);
        assert_int_equal(x.spawn_rc, 0);
        assert_int_equal(x.now_rc, -EAGAIN);
        assert_int_equal(x.timed_rc, -ETIMEDOUT);
        assert_int_equal(x.join_rc, 0);
        assert_int_equal(x.result, 99);
        assert_string_equal(x.seen.name, "from-thread");
        assert_int_equal(x.seen.worker, 0);
    }
}

/* ================= yield ================= */

typedef struct alt {
    char trace[64];
    int len;
    int bad_yield;
} alt_t;

typedef struct alt_arg {
    alt_t *a;
    char id;
} alt_arg_t;

static void *alternator(void *arg)
{
    alt_arg_t *x = arg;
    for (int i = 0; i < 10; i++) {
        x->a->trace[x->a->len++] = x->id;
        if (ursa_yield() != 0)
            x->a->bad_yield++;
    }
    return NULL;
}

static void *alt_root(void *arg)
{
    alt_t *a = arg;
    alt_arg_t xa = {a, 'A'}, xb = {a, 'B'};
    ursa_task_t *ta = NULL, *tb = NULL;
    if (ursa_spawn(&ta, alternator, &xa, NULL) || ursa_spawn(&tb, alternator, &xb, NULL))
        return R(-1);
    if (ursa_task_join(ta, NULL, URSA_NEVER) != 0 || ursa_task_join(tb, NULL, URSA_NEVER) != 0)
        return R(-100);
    return NULL;
}

static void test_rt_yield_alternates(void **state)
{
    (void)state;
    alt_t a;
    memset(&a, 0, sizeof a);
    assert_null(test_run(1, alt_root, &a));
    assert_string_equal(a.trace, "ABABABABABABABABABAB");
    assert_int_equal(a.bad_yield, 0);
    assert_int_equal(ursa_yield(), 0); /* plain thread */
}

/* ================= sleep ================= */

typedef struct sleep_res {
    ursa_time_t d1, d2, d0, real;
    int rc1, rc2, rc0;
} sleep_res_t;

static void *sleep_root(void *arg)
{
    sleep_res_t *s = arg;
    ursa_time_t r0 = mono_ns();
    ursa_time_t t0 = ursa_now();
    s->rc1 = ursa_sleep_for(URSA_MSEC(20));
    ursa_time_t t1 = ursa_now();
    s->d1 = t1 - t0;
    s->rc2 = ursa_sleep_until(t1 + URSA_USEC(1234));
    ursa_time_t t2 = ursa_now();
    s->d2 = t2 - t1;
    s->rc0 = ursa_sleep_for(0);
    s->d0 = ursa_now() - t2;
    s->real = mono_ns() - r0;
    return NULL;
}

static void *sleep_hour(void *arg)
{
    ursa_time_t *d = arg;
    ursa_time_t t0 = ursa_now();
    int rc = ursa_sleep_for(URSA_SEC(3600));
    *d = ursa_now() - t0;
    return R(rc);
}

static void test_rt_sleep_virtual_and_real(void **state)
{
    (void)state;
    /* Deterministic: virtual time advances by exactly what was asked. */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sleep_res_t s;
        memset(&s, 0, sizeof s);
        assert_int_equal(run_det(seed, sleep_root, &s, NULL), 0);
        assert_int_equal(s.rc1, 0);
        assert_int_equal(s.rc2, 0);
        assert_int_equal(s.rc0, 0);
        assert_int_equal(s.d1, URSA_MSEC(20));
        assert_int_equal(s.d2, URSA_USEC(1234));
        assert_int_equal(s.d0, 0);
    }
    /* An hour of virtual time passes at once. */
    ursa_time_t d = 0;
    void *res = R(-1);
    ursa_time_t r0 = mono_ns();
    assert_int_equal(run_det(9, sleep_hour, &d, &res), 0);
    assert_ptr_equal(res, NULL);
    assert_int_equal(d, URSA_SEC(3600));
    assert_true(mono_ns() - r0 < URSA_SEC(5));

    /* Normal mode: at least the requested time. */
    sleep_res_t s;
    memset(&s, 0, sizeof s);
    assert_null(test_run(1, sleep_root, &s));
    assert_int_equal(s.rc1, 0);
    assert_int_equal(s.rc2, 0);
    assert_int_equal(s.rc0, 0);
    assert_true(s.d1 >= URSA_MSEC(20));
    assert_true(s.d2 >= URSA_USEC(1234));
    assert_true(s.real >= URSA_MSEC(20) + URSA_USEC(1234));

    /* Off-task: nanosleep. */
    ursa_time_t t0 = mono_ns();
    assert_int_equal(ursa_sleep_for(URSA_MSEC(3)), 0);
    assert_true(mono_ns() - t0 >= URSA_MSEC(3));
}

#define N_SLEEPERS 64

typedef struct sleepers {
    ursa_sem_t go;   /* opened once every sleeper is parked on it */
    atomic_int ready;
    ursa_time_t base, lead, step;
    int delay[N_SLEEPERS]; /* a permutation of 1..N */
    int order[N_SLEEPERS]; /* delays, in wake order */
    atomic_int n;
    int rc_bad;
} sleepers_t;

typedef struct sleeper_arg {
    sleepers_t *s;
    int i;
} sleeper_arg_t;

static void *sleeper(void *arg)
{
    sleeper_arg_t *a = arg;
    sleepers_t *s = a->s;
    ursa_sem_permit_t p = {0};
    atomic_fetch_add(&s->ready, 1);
    if (ursa_sem_acquire(&s->go, 1, &p, URSA_NEVER) != 0 || ursa_sem_permit_forget(&p) != 0)
        s->rc_bad++;
    /* Every deadline lies ahead (lead), however slowly the tasks started:
     * a deadline already past would end in run order, not deadline order. */
    if (ursa_sleep_until(s->base + s->delay[a->i] * s->step) != 0)
        s->rc_bad++;
    s->order[atomic_fetch_add(&s->n, 1)] = s->delay[a->i];
    return NULL;
}

static void *sleepers_root(void *arg)
{
    sleepers_t *s = arg;
    sleeper_arg_t a[N_SLEEPERS];
    ursa_task_t *t[N_SLEEPERS] = {0};
    for (int i = 0; i < N_SLEEPERS; i++) {
        a[i] = (sleeper_arg_t){s, i};
        if (ursa_spawn(&t[i], sleeper, &a[i], NULL))
            return R(-1);
    }
    while (atomic_load(&s->ready) < N_SLEEPERS)
        (void)ursa_yield();
    (void)ursa_yield(); /* the last one is parked on the gate too */
    s->base = ursa_now() + s->lead;
    (void)ursa_sem_add(&s->go, N_SLEEPERS);
    for (int i = 0; i < N_SLEEPERS; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-100);
    return NULL;
}

static void sleepers_init(sleepers_t *s, ursa_time_t step, unsigned rng)
{
    memset(s, 0, sizeof *s);
    ursa_sem_init(&s->go, 0);
    s->step = step;
    s->lead = URSA_MSEC(20);
    for (int i = 0; i < N_SLEEPERS; i++)
        s->delay[i] = i + 1;
    for (int i = N_SLEEPERS - 1; i > 0; i--) { /* Fisher-Yates */
        rng = rng * 1103515245u + 12345u;
        int j = (int)((rng >> 8) % (unsigned)(i + 1));
        int tmp = s->delay[i];
        s->delay[i] = s->delay[j];
        s->delay[j] = tmp;
    }
}

static void test_rt_sleepers_wake_in_deadline_order(void **state)
{
    (void)state;
    sleepers_t s;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        sleepers_init(&s, URSA_USEC(10), (unsigned)seed);
        assert_int_equal(run_det(seed, sleepers_root, &s, NULL), 0);
        assert_int_equal(atomic_load(&s.n), N_SLEEPERS);
        assert_int_equal(s.rc_bad, 0);
        for (int i = 0; i < N_SLEEPERS; i++)
            assert_int_equal(s.order[i], i + 1);
    }
    /* Normal mode, one worker, deadlines 1 ms apart. */
    sleepers_init(&s, URSA_MSEC(1), 77);
    assert_null(test_run(1, sleepers_root, &s));
    assert_int_equal(atomic_load(&s.n), N_SLEEPERS);
    assert_int_equal(s.rc_bad, 0);
    for (int i = 0; i < N_SLEEPERS; i++)
        assert_int_equal(s.order[i], i + 1);
}

/* ================= deadlines when the timer heap cannot grow ================= */

/* test_rt links with --wrap=realloc (tests/CMakeLists.txt): while
 * fail_realloc is set every realloc fails, among them the timer heap's
 * growth (a fresh worker's heap has no room yet). */
static atomic_bool fail_realloc;
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
    return atomic_load(&fail_realloc) ? NULL : __real_realloc(p, n);
}

#define N_NOHEAP 6

typedef struct noheap {
    ursa_mutex_t m; /* held by the root: the lock waits time out */
    atomic_int started;
    ursa_time_t deadline[N_NOHEAP], woke[N_NOHEAP];
    int rc[N_NOHEAP];
    int order[N_NOHEAP]; /* waiter indexes, in wake order */
    atomic_int n;
} noheap_t;

typedef struct noheap_arg {
    noheap_t *s;
    int i;
} noheap_arg_t;

/* Even waiters sleep, odd ones wait for the mutex: both are deadline waits. */
static void *noheap_waiter(void *arg)
{
    noheap_arg_t *a = arg;
    noheap_t *s = a->s;
    atomic_fetch_add(&s->started, 1); /* and then waits, in the same run */
    if (a->i % 2) {
        URSA_SCOPED(mutex_guard, g);
        s->rc[a->i] = ursa_mutex_lock(&s->m, &g, s->deadline[a->i]);
    } else {
        s->rc[a->i] = ursa_sleep_until(s->deadline[a->i]);
    }
    s->woke[a->i] = ursa_now();
    s->order[atomic_fetch_add(&s->n, 1)] = a->i;
    return NULL;
}

static void *noheap_root(void *arg)
{
    noheap_t *s = arg;
    static const int delay_ms[N_NOHEAP] = {50, 10, 40, 20, 60, 30};
    noheap_arg_t a[N_NOHEAP];
    ursa_task_t *t[N_NOHEAP] = {0};
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(&s->m, &g, URSA_NEVER))
        return R(-1);
    ursa_time_t now = ursa_now();
    for (int i = 0; i < N_NOHEAP; i++) {
        s->deadline[i] = now + URSA_MSEC(delay_ms[i]);
        a[i] = (noheap_arg_t){s, i};
    }
    /* The first half start waiting while the heap cannot grow, the rest
     * once it can: both kinds of timer are pending at once. */
    atomic_store(&fail_realloc, true);
    for (int i = 0; i < N_NOHEAP; i++) {
        if (i == N_NOHEAP / 2) {
            while (atomic_load(&s->started) < i)
                (void)ursa_yield();
            atomic_store(&fail_realloc, false);
        }
        if (ursa_spawn(&t[i], noheap_waiter, &a[i], NULL))
            return R(-2);
    }
    for (int i = 0; i < N_NOHEAP; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-3);
    return NULL;
}

/* Regression: a deadline wait that could not put its timer in the heap
 * was woken once to poll but stayed marked armed, so it slept for good
 * (deterministic mode: -EDEADLK; normal mode: a hang). Now such a timer
 * waits on the worker's spill list: it fires on time, in deadline order
 * with the others (exactly, in virtual time). */
static void test_rt_deadline_without_heap_memory(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        noheap_t s;
        memset(&s, 0, sizeof s);
        assert_int_equal(ursa_mutex_init(&s.m), 0);
        void *res = R(-9);
        int rc = run_det(seed, noheap_root, &s, &res);
        atomic_store(&fail_realloc, false);
        assert_int_equal(rc, 0);
        assert_null(res);
        assert_int_equal(atomic_load(&s.n), N_NOHEAP);
        for (int i = 0; i < N_NOHEAP; i++) {
            assert_int_equal(s.rc[i], i % 2 ? -ETIMEDOUT : 0);
            assert_int_equal(s.woke[i], s.deadline[i]);
        }
        for (int k = 1; k < N_NOHEAP; k++)
            assert_true(s.deadline[s.order[k - 1]] < s.deadline[s.order[k]]);
        assert_int_equal(ursa_mutex_destroy(&s.m), 0);
    }
    /* Normal mode: each wait ends at its deadline, not before. */
    noheap_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ursa_mutex_init(&s.m), 0);
    assert_null(test_run(1, noheap_root, &s));
    assert_int_equal(atomic_load(&s.n), N_NOHEAP);
    for (int i = 0; i < N_NOHEAP; i++) {
        assert_int_equal(s.rc[i], i % 2 ? -ETIMEDOUT : 0);
        assert_true(s.woke[i] >= s.deadline[i]);
    }
    assert_int_equal(ursa_mutex_destroy(&s.m), 0);
}

/* ================= cancel ================= */

typedef struct cancel_sleep {
    atomic_int started;
    int rc, rc_again;
    bool cancelled;
    ursa_time_t elapsed;
} cancel_sleep_t;

static void *long_sleeper(void *arg)
{
    cancel_sleep_t *c = arg;
    atomic_store(&c->started, 1);
    ursa_time_t t0 = mono_ns();
    c->rc = ursa_sleep_for(URSA_SEC(10));
    c->elapsed = mono_ns() - t0;
    c->cancelled = ursa_task_cancelled();
    c->rc_again = ursa_sleep_for(URSA_SEC(10)); /* later waits fail too */
    return NULL;
}

static void *cancel_sleep_root(void *arg)
{
    cancel_sleep_t *c = arg;
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, long_sleeper, c, NULL))
        return R(-1);
    if (!yield_until(&c->started))
        return R(-2);
    (void)ursa_sleep_for(URSA_MSEC(5));
    int rc = ursa_task_cancel(t);
    int rc2 = ursa_task_cancel(t);
    if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
        return R(-3);
    return R(rc == 0 && rc2 == 0 ? 0 : -4);
}

static void test_rt_cancel_sleep(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_sleep_t c;
        memset(&c, 0, sizeof c);
        ursa_time_t t0 = mono_ns();
        assert_null(test_run(workers, cancel_sleep_root, &c));
        assert_int_equal(c.rc, -ECANCELED);
        assert_int_equal(c.rc_again, -ECANCELED);
        assert_true(c.cancelled);
        assert_true(c.elapsed < URSA_SEC(2));
        assert_true(mono_ns() - t0 < URSA_SEC(4));
    }
    /* Deterministic mode too: the cancel beats the 10 s virtual timer. */
    cancel_sleep_t c;
    memset(&c, 0, sizeof c);
    void *res = R(-1);
    assert_int_equal(run_det(5, cancel_sleep_root, &c, &res), 0);
    assert_null(res);
    assert_int_equal(c.rc, -ECANCELED);
}

typedef struct cancel_join {
    gate_t gate;
    ursa_task_t *y;
    atomic_int started;
    int join_rc;
    bool cancelled_after;
    int y_now_rc, y_final_rc;
    intptr_t y_val;
    int cancel_rc;
} cancel_join_t;

static void *joiner(void *arg)
{
    cancel_join_t *c = arg;
    atomic_store(&c->started, 1);
    c->join_rc = ursa_task_join(c->y, NULL, URSA_NEVER);
    c->cancelled_after = ursa_task_cancelled();
    return NULL;
}

static void *cancel_join_root(void *arg)
{
    cancel_join_t *c = arg;
    ursa_task_t *x = NULL;
    if (ursa_spawn(&c->y, gated, &c->gate, NULL) || ursa_spawn(&x, joiner, c, NULL))
        return R(-1);
    if (!yield_until(&c->started) || !yield_until(&c->gate.started))
        return R(-2);
    (void)ursa_sleep_for(URSA_MSEC(2));
    c->cancel_rc = ursa_task_cancel(x);
    if (ursa_task_join(x, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
        return R(-3);
    /* Y was not disturbed and may still be joined. */
    c->y_now_rc = ursa_task_join(c->y, NULL, URSA_NOW);
    (void)ursa_sem_add(&c->gate.sem, 1);
    void *v = NULL;
    c->y_final_rc = ursa_task_join(c->y, &v, ursa_deadline_in(URSA_SEC(5)));
    c->y_val = I(v);
    return NULL;
}

static void test_rt_cancel_join(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_join_t c;
        memset(&c, 0, sizeof c);
        gate_init(&c.gate);
        assert_null(test_run(workers, cancel_join_root, &c));
        assert_int_equal(c.cancel_rc, 0);
        assert_int_equal(c.join_rc, -ECANCELED);
        assert_true(c.cancelled_after);
        assert_int_equal(c.y_now_rc, -EAGAIN);
        assert_int_equal(c.y_final_rc, 0);
        assert_int_equal(c.y_val, 99);
    }
}

typedef struct cancel_mutex {
    ursa_mutex_t m;
    atomic_int started[2];
    int rc[2];
    bool cancelled[2];
    int cancel_rc[2];
    bool locked_after_cancel;
    int try_after_rc;
} cancel_mutex_t;

typedef struct locker_arg {
    cancel_mutex_t *c;
    int i;
} locker_arg_t;

static void *locker(void *arg)
{
    locker_arg_t *a = arg;
    cancel_mutex_t *c = a->c;
    URSA_SCOPED(mutex_guard, g);
    atomic_store(&c->started[a->i], 1);
    c->rc[a->i] = ursa_mutex_lock(&c->m, &g, URSA_NEVER);
    c->cancelled[a->i] = ursa_task_cancelled();
    return NULL; /* g unlocked at scope exit when held */
}

static void *cancel_mutex_root(void *arg)
{
    cancel_mutex_t *c = arg;
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(&c->m, &g, URSA_NEVER) != 0)
        return R(-1);
    locker_arg_t a0 = {c, 0}, a1 = {c, 1};
    ursa_task_t *t0 = NULL, *t1 = NULL;
    /* t0 queues first, t1 behind it; t0 is cancelled. */
    if (ursa_spawn(&t0, locker, &a0, NULL))
        return R(-2);
    if (!yield_until(&c->started[0]))
        return R(-3);
    (void)ursa_sleep_for(URSA_MSEC(2));
    if (ursa_spawn(&t1, locker, &a1, NULL))
        return R(-4);
    if (!yield_until(&c->started[1]))
        return R(-5);
    (void)ursa_sleep_for(URSA_MSEC(2));
    c->cancel_rc[0] = ursa_task_cancel(t0);
    c->cancel_rc[1] = ursa_task_cancel(t0); /* idempotent */
    if (ursa_task_join(t0, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
        return R(-6);
    c->locked_after_cancel = ursa_mutex_is_locked(&c->m);
    /* The cancelled waiter left the queue: the unlock goes to t1. */
    (void)ursa_mutex_unlock(&g);
    if (ursa_task_join(t1, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
        return R(-7);
    c->try_after_rc = ursa_mutex_lock(&c->m, &g, URSA_NOW);
    return NULL;
}

static void test_rt_cancel_mutex_lock(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_mutex_t c;
        memset(&c, 0, sizeof c);
        assert_int_equal(ursa_mutex_init(&c.m), 0);
        assert_null(test_run(workers, cancel_mutex_root, &c));
        assert_int_equal(c.cancel_rc[0], 0);
        assert_int_equal(c.cancel_rc[1], 0);
        assert_int_equal(c.rc[0], -ECANCELED);
        assert_true(c.cancelled[0]);
        assert_int_equal(c.rc[1], 0);
        assert_false(c.cancelled[1]);
        assert_true(c.locked_after_cancel);
        assert_int_equal(c.try_after_rc, 0);
        assert_false(ursa_mutex_is_locked(&c.m));
        assert_int_equal(ursa_mutex_destroy(&c.m), 0);
    }
}

typedef struct cancel_misc {
    atomic_int ran;
    int cancel_rc[2], join_rc;
    intptr_t val;
    int self_cancel_rc, yield_rc, sleep_rc, null_rc;
    bool cancelled;
    ursa_time_t sleep_elapsed;
} cancel_misc_t;

static void *finish_fast(void *arg)
{
    cancel_misc_t *c = arg;
    atomic_store(&c->ran, 1);
    return R(123);
}

static void *self_canceller(void *arg)
{
    cancel_misc_t *c = arg;
    c->self_cancel_rc = ursa_task_cancel(ursa_task_self());
    c->cancelled = ursa_task_cancelled();
    c->yield_rc = ursa_yield(); /* still yields, reports the cancel */
    ursa_time_t t0 = mono_ns();
    c->sleep_rc = ursa_sleep_for(URSA_SEC(10));
    c->sleep_elapsed = mono_ns() - t0;
    return NULL;
}

static void *cancel_misc_root(void *arg)
{
    cancel_misc_t *c = arg;
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, finish_fast, c, NULL))
        return R(-1);
    if (!yield_until(&c->ran))
        return R(-2);
    (void)ursa_sleep_for(URSA_MSEC(1));
    /* Finished but not joined: cancel is harmless. */
    c->cancel_rc[0] = ursa_task_cancel(t);
    c->cancel_rc[1] = ursa_task_cancel(t);
    void *v = NULL;
    c->join_rc = ursa_task_join(t, &v, ursa_deadline_in(URSA_SEC(5)));
    c->val = I(v);
    c->null_rc = ursa_task_cancel(NULL);
    if (ursa_spawn(&t, self_canceller, c, NULL))
        return R(-3);
    return R(ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(5))));
}

static void test_rt_cancel_finished_and_self(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_misc_t c;
        memset(&c, 0, sizeof c);
        assert_null(test_run(workers, cancel_misc_root, &c));
        assert_int_equal(c.cancel_rc[0], 0);
        assert_int_equal(c.cancel_rc[1], 0);
        assert_int_equal(c.join_rc, 0);
        assert_int_equal(c.val, 123);
        assert_int_equal(c.null_rc, -EINVAL);
        assert_int_equal(c.self_cancel_rc, 0);
        assert_true(c.cancelled);
        assert_int_equal(c.yield_rc, -ECANCELED);
        assert_int_equal(c.sleep_rc, -ECANCELED);
        assert_true(c.sleep_elapsed < URSA_SEC(2));
    }
}

/* ================= cross-worker and cross-thread wakes ================= */

typedef struct pingpong {
    ursa_sem_t ping, pong;
    long rounds;
    long turn; /* plain: the semaphores must order it (TSan checks) */
    long bad_turn;
    int rc[2];
    int worker[2];
    ursa_time_t max_wait[2];
} pingpong_t;

/* A granted wait whose wake is lost still returns 0 when its deadline
 * timer fires and it finds the grant: so deadlines are long, and the time
 * each wait took is what shows a lost wake. */
#define SLOW_WAKE URSA_SEC(1)

static int take_one_timed(ursa_sem_t *s, ursa_time_t *max_wait)
{
    ursa_sem_permit_t p = {0};
    ursa_time_t t0 = mono_ns();
    int rc = ursa_sem_acquire(s, 1, &p, ursa_deadline_in(URSA_SEC(10)));
    ursa_time_t d = mono_ns() - t0;
    if (max_wait && d > *max_wait)
        *max_wait = d;
    if (rc == 0)
        rc = ursa_sem_permit_forget(&p);
    return rc;
}

static void *pinger(void *arg)
{
    pingpong_t *pp = arg;
    pp->worker[0] = ursa_worker_index();
    for (long i = 0; i < pp->rounds; i++) {
        if (pp->turn != 2 * i)
            pp->bad_turn++;
        pp->turn = 2 * i + 1;
        (void)ursa_sem_add(&pp->ping, 1);
        int rc = take_one_timed(&pp->pong, &pp->max_wait[0]);
        if (rc)
            return R(rc);
    }
    return R(0);
}

static void *ponger(void *arg)
{
    pingpong_t *pp = arg;
    pp->worker[1] = ursa_worker_index();
    for (long i = 0; i < pp->rounds; i++) {
        int rc = take_one_timed(&pp->ping, &pp->max_wait[1]);
        if (rc)
            return R(rc);
        if (pp->turn != 2 * i + 1)
            pp->bad_turn++;
        pp->turn = 2 * i + 2;
        (void)ursa_sem_add(&pp->pong, 1);
    }
    return R(0);
}

static void *pingpong_root(void *arg)
{
    pingpong_t *pp = arg;
    ursa_task_t *a = NULL, *b = NULL;
    if (ursa_spawn(&b, ponger, pp, &(ursa_spawn_opts_t){.name = "ponger", .worker = 1}) ||
        ursa_spawn(&a, pinger, pp, &(ursa_spawn_opts_t){.name = "pinger", .worker = 0}))
        return R(-1);
    void *v = R(-1);
    if (ursa_task_join(a, &v, URSA_NEVER) != 0)
        return R(-100);
    pp->rc[0] = (int)I(v);
    v = R(-1);
    if (ursa_task_join(b, &v, URSA_NEVER) != 0)
        return R(-100);
    pp->rc[1] = (int)I(v);
    return NULL;
}

static void test_rt_cross_worker_pingpong(void **state)
{
    (void)state;
    pingpong_t pp;
    memset(&pp, 0, sizeof pp);
    pp.rounds = test_scale(20000);
    ursa_sem_init(&pp.ping, 0);
    ursa_sem_init(&pp.pong, 0);
    assert_null(test_run(2, pingpong_root, &pp));
    assert_int_equal(pp.worker[0], 0);
    assert_int_equal(pp.worker[1], 1);
    assert_int_equal(pp.rc[0], 0);
    assert_int_equal(pp.rc[1], 0);
    assert_int_equal(pp.bad_turn, 0);
    assert_int_equal(pp.turn, 2 * pp.rounds);
    /* No wake lost: no round waited for its deadline timer. */
    if (pp.max_wait[0] > SLOW_WAKE || pp.max_wait[1] > SLOW_WAKE)
        fail_msg("a wake was lost: longest wait %lld ms (pinger), %lld ms (ponger)",
                 (long long)(pp.max_wait[0] / 1000000), (long long)(pp.max_wait[1] / 1000000));
    assert_int_equal(ursa_sem_available(&pp.ping), 0);
    assert_int_equal(ursa_sem_available(&pp.pong), 0);
}

typedef struct thread_wake {
    ursa_sem_t sem;
    int rounds;
    int rc_bad;
    ursa_time_t max_wait;
} thread_wake_t;

static void *waker_thread(void *arg)
{
    thread_wake_t *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        struct timespec ts = {0, 3 * 1000000}; /* let the worker fall asleep in the ring */
        nanosleep(&ts, NULL);
        (void)ursa_sem_add(&w->sem, 1);
    }
    return NULL;
}

static void *thread_wake_root(void *arg)
{
    thread_wake_t *w = arg;
    pthread_t th;
    if (pthread_create(&th, NULL, waker_thread, w) != 0)
        return R(-1);
    for (int i = 0; i < w->rounds; i++) {
        if (take_one_timed(&w->sem, &w->max_wait) != 0)
            w->rc_bad++;
    }
    pthread_join(th, NULL);
    return NULL;
}

static void test_rt_plain_thread_wakes_idle_worker(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        thread_wake_t w;
        memset(&w, 0, sizeof w);
        w.rounds = 20;
        ursa_sem_init(&w.sem, 0);
        assert_null(test_run(workers, thread_wake_root, &w));
        assert_int_equal(w.rc_bad, 0);
        /* Each wait ends soon after the thread's release, not at the 10 s
         * deadline: the wake reached the sleeping ring. */
        assert_true(w.max_wait < SLOW_WAKE);
    }
}

/* ================= deterministic mode and exploration ================= */

typedef struct trace {
    char buf[128];
    int len;
} trace_t;

typedef struct tracer_arg {
    trace_t *tr;
    char id;
} tracer_arg_t;

static void *tracer(void *arg)
{
    tracer_arg_t *a = arg;
    uint32_t x = (uint32_t)a->id * 2654435761u;
    for (int i = 0; i < 20; i++) {
        a->tr->buf[a->tr->len++] = a->id;
        x = x * 1103515245u + 12345u;
        if ((x >> 16) & 1)
            (void)ursa_yield();
    }
    return NULL;
}

static void *trace_root(void *arg)
{
    trace_t *tr = arg;
    tracer_arg_t a[3] = {{tr, 'a'}, {tr, 'b'}, {tr, 'c'}};
    ursa_task_t *t[3] = {0};
    for (int i = 0; i < 3; i++)
        if (ursa_spawn(&t[i], tracer, &a[i], NULL))
            return R(-1);
    for (int i = 0; i < 3; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-100);
    return NULL;
}

static void traced_run(uint64_t seed, trace_t *tr)
{
    memset(tr, 0, sizeof *tr);
    void *res = R(-1);
    assert_int_equal(run_det(seed, trace_root, tr, &res), 0);
    assert_null(res);
    assert_int_equal(tr->len, 60);
}

static void test_rt_deterministic_replay(void **state)
{
    (void)state;
    trace_t t1, t2;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        traced_run(seed, &t1);
        traced_run(seed, &t2);
        assert_string_equal(t1.buf, t2.buf);
    }
    /* Different seeds give different interleavings. */
    traced_run(1, &t1);
    int differing = 0;
    for (uint64_t seed = 2; seed <= 40 && differing < 2; seed++) {
        traced_run(seed, &t2);
        if (strcmp(t1.buf, t2.buf) != 0)
            differing++;
    }
    assert_true(differing >= 2);
}

typedef struct counter {
    ursa_mutex_t m;
    int value;
    int runs;
} counter_t;

static void *locked_incr(void *arg)
{
    counter_t *c = arg;
    for (int i = 0; i < 5; i++) {
        URSA_SCOPED(mutex_guard, g);
        if (ursa_mutex_lock(&c->m, &g, URSA_NEVER) != 0)
            return R(-1);
        int v = c->value;
        (void)ursa_yield();
        c->value = v + 1;
    }
    return NULL;
}

static void *racy_incr(void *arg)
{
    counter_t *c = arg;
    int v = c->value;
    (void)ursa_yield();
    c->value = v + 1; /* lost update if the other task ran in between */
    return NULL;
}

static void *counter_scenario(ursa_task_fn_t body, int ntasks, int expect)
{
    counter_t c;
    memset(&c, 0, sizeof c);
    (void)ursa_mutex_init(&c.m);
    ursa_task_t *t[4] = {0};
    for (int i = 0; i < ntasks; i++)
        if (ursa_spawn(&t[i], body, &c, NULL))
            return "spawn failed";
    for (int i = 0; i < ntasks; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return "join failed";
    URSA_SIM_CHECK(c.value == expect);
    return NULL;
}

static void *scenario_locked(void *arg)
{
    (void)arg;
    return counter_scenario(locked_incr, 3, 15);
}

static void *scenario_racy(void *arg)
{
    int *runs = arg;
    if (runs)
        (*runs)++;
    return counter_scenario(racy_incr, 2, 2);
}

static void *scenario_stuck(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    ursa_sem_init(&s, 0);
    URSA_SCOPED(sem_permit, p);
    if (ursa_sem_acquire(&s, 1, &p, URSA_NEVER) == 0)
        return "acquired from an empty semaphore";
    return NULL;
}

static void test_rt_sim_explore(void **state)
{
    (void)state;
    unsetenv("URSA_SEED");
    /* A passing scenario. */
    test_explore(scenario_locked, NULL);
    uint64_t seed = 12345;
    assert_int_equal(ursa_sim_explore(NULL, scenario_locked, NULL, 1, 50, &seed), 0);
    assert_int_equal(ursa_sim_explore(NULL, NULL, NULL, 1, 1, &seed), -EINVAL);

    /* A scenario that fails for some seeds only. */
    seed = 0;
    assert_int_equal(ursa_sim_explore(NULL, scenario_racy, NULL, 1, 200, &seed), -EPROTO);
    assert_true(seed >= 1 && seed <= 200);
    uint64_t failing = seed;
    uint64_t passing = 0;
    for (uint64_t s = 1; s <= 200 && !passing; s++)
        if (ursa_sim_explore(NULL, scenario_racy, NULL, s, 1, NULL) == 0)
            passing = s;
    assert_true(passing != 0);
    /* The failing seed replays. */
    seed = 0;
    assert_int_equal(ursa_sim_explore(NULL, scenario_racy, NULL, failing, 1, &seed), -EPROTO);
    assert_int_equal(seed, failing);

    /* A scenario where every task blocks. */
    seed = 0;
    assert_int_equal(ursa_sim_explore(NULL, scenario_stuck, NULL, 7, 3, &seed), -EDEADLK);
    assert_int_equal(seed, 7);

    /* URSA_SEED replays only that seed, whatever the range asked for. */
    char buf[32];
    int runs = 0;
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)failing);
    assert_int_equal(setenv("URSA_SEED", buf, 1), 0);
    seed = 0;
    int rc = ursa_sim_explore(NULL, scenario_racy, &runs, 100000, 500, &seed);
    int runs_fail = runs;
    runs = 0;
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)passing);
    assert_int_equal(setenv("URSA_SEED", buf, 1), 0);
    int rc2 = ursa_sim_explore(NULL, scenario_racy, &runs, failing, 500, NULL);
    int runs_pass = runs;
    unsetenv("URSA_SEED");
    assert_int_equal(rc, -EPROTO);
    assert_int_equal(seed, failing);
    assert_int_equal(runs_fail, 1);
    assert_int_equal(rc2, 0);
    assert_int_equal(runs_pass, 1);
}

/* ================= deadlock reports ================= */

/* Locks, noting the line the lock call's site will report: both __LINE__s
 * come from one macro expansion, so they agree however it is formatted. */
#define LOCK_NOTING_LINE(linep, m, g) (*(linep) = __LINE__, ursa_mutex_lock(m, g, URSA_NEVER))

typedef struct abba {
    ursa_mutex_t m1, m2;
    atomic_int a_has, b_has;
    ursa_sem_t done;
    int line_a, line_b;
} abba_t;

static void *abba_a(void *arg)
{
    abba_t *d = arg;
    URSA_SCOPED(mutex_guard, g1);
    URSA_SCOPED(mutex_guard, g2);
    int rc = ursa_mutex_lock(&d->m1, &g1, URSA_NEVER);
    if (rc == 0) {
        atomic_store(&d->a_has, 1);
        while (!atomic_load(&d->b_has) && ursa_yield() == 0) {
        }
        rc = LOCK_NOTING_LINE(&d->line_a, &d->m2, &g2); /* blocks */
    }
    (void)ursa_sem_add(&d->done, 1);
    return R(rc);
}

static void *abba_b(void *arg)
{
    abba_t *d = arg;
    URSA_SCOPED(mutex_guard, g2);
    URSA_SCOPED(mutex_guard, g1);
    int rc = ursa_mutex_lock(&d->m2, &g2, URSA_NEVER);
    if (rc == 0) {
        atomic_store(&d->b_has, 1);
        while (!atomic_load(&d->a_has) && ursa_yield() == 0) {
        }
        rc = LOCK_NOTING_LINE(&d->line_b, &d->m1, &g1); /* blocks */
    }
    (void)ursa_sem_add(&d->done, 1);
    return R(rc);
}

static void *abba_root(void *arg)
{
    abba_t *d = arg;
    /* Detached: after the deadlock, ursa_rt_free cancels them and they free
     * themselves. */
    if (ursa_spawn(NULL, abba_a, d, &(ursa_spawn_opts_t){.name = "locker-a", .detached = true}) ||
        ursa_spawn(NULL, abba_b, d, &(ursa_spawn_opts_t){.name = "locker-b", .detached = true}))
        return R(-1);
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire(&d->done, 2, &p, URSA_NEVER));
}

static void expect_in(const char *text, const char *what)
{
    if (!strstr(text, what))
        fail_msg("report lacks \"%s\":\n%s", what, text);
}

static void test_rt_deadlock_report_abba(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        abba_t d;
        memset(&d, 0, sizeof d);
        assert_int_equal(ursa_mutex_init(&d.m1), 0);
        assert_int_equal(ursa_mutex_init(&d.m2), 0);
        ursa_sem_init(&d.done, 0);
        capture_t cap;
        capture_begin(&cap);
        int rc = run_det(seed, abba_root, &d, NULL);
        const char *rep = capture_end(&cap);
        assert_int_equal(rc, -EDEADLK);
        expect_in(rep, "locker-a");
        expect_in(rep, "locker-b");
        expect_in(rep, "mutex");
        char site[64];
        assert_true(d.line_a > 0 && d.line_b > 0);
        snprintf(site, sizeof site, "test_rt.c:%d", d.line_a);
        expect_in(rep, site);
        snprintf(site, sizeof site, "test_rt.c:%d", d.line_b);
        expect_in(rep, site);
        /* Cancelled by ursa_rt_free: every hold was given back. */
        assert_false(ursa_mutex_is_locked(&d.m1));
        assert_false(ursa_mutex_is_locked(&d.m2));
        assert_int_equal(ursa_mutex_destroy(&d.m1), 0);
        assert_int_equal(ursa_mutex_destroy(&d.m2), 0);
        assert_int_equal(ursa_sem_destroy(&d.done), 0);
    }
}

/* The report names what each task waits on and who holds it, so the cycle
 * reads off the report: named mutexes by name, each with its holder task
 * (and where it locked), and a join by the joined task's name.
 * Regression: the report printed bare addresses and no holders. */
static void *named_abba_root(void *arg)
{
    abba_t *d = arg;
    ursa_task_t *a = NULL, *b = NULL;
    if (ursa_spawn(&a, abba_a, d, &(ursa_spawn_opts_t){.name = "locker-a"}) ||
        ursa_spawn(&b, abba_b, d, &(ursa_spawn_opts_t){.name = "locker-b", .detached = true}))
        return R(-1);
    int rc = ursa_task_join(a, NULL, URSA_NEVER);
    if (rc)
        (void)ursa_task_detach(a); /* cancelled by ursa_rt_free: let it go */
    return R(rc);
}

static void test_rt_deadlock_report_names_and_holders(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        abba_t d;
        memset(&d, 0, sizeof d);
        assert_int_equal(ursa_mutex_init_attr(&d.m1, &(ursa_lock_attr_t){.name = "alpha"}), 0);
        assert_int_equal(ursa_mutex_init_attr(&d.m2, &(ursa_lock_attr_t){.name = "beta"}), 0);
        ursa_sem_init(&d.done, 0);
        capture_t cap;
        capture_begin(&cap);
        int rc = run_det(seed, named_abba_root, &d, NULL);
        const char *rep = capture_end(&cap);
        assert_int_equal(rc, -EDEADLK);
        expect_in(rep, "task 'locker-a' waits on mutex 'beta'");
        expect_in(rep, "mutex 'beta' is held by task 'locker-b'");
        expect_in(rep, "task 'locker-b' waits on mutex 'alpha'");
        expect_in(rep, "mutex 'alpha' is held by task 'locker-a'");
        expect_in(rep, "task 'root' waits on join of task 'locker-a'");
        assert_false(ursa_mutex_is_locked(&d.m1));
        assert_false(ursa_mutex_is_locked(&d.m2));
        assert_int_equal(ursa_mutex_destroy(&d.m1), 0);
        assert_int_equal(ursa_mutex_destroy(&d.m2), 0);
        assert_int_equal(ursa_sem_destroy(&d.done), 0);
    }
}

/* A writer holds rwlock 'config' and waits forever on a semaphore; the
 * root waits to read 'config'. */
typedef struct rw_stuck {
    ursa_rwlock_t rw;
    ursa_sem_t never;
    atomic_int held;
} rw_stuck_t;

static void *rw_stuck_writer(void *arg)
{
    rw_stuck_t *r = arg;
    URSA_SCOPED(rwlock_write_guard, g);
    URSA_SCOPED(sem_permit, p);
    if (ursa_rwlock_write_lock(&r->rw, &g, URSA_NEVER) == 0) {
        atomic_store(&r->held, 1);
        return R(ursa_sem_acquire(&r->never, 1, &p, URSA_NEVER));
    }
    return R(-1);
}

static void *rw_stuck_root(void *arg)
{
    rw_stuck_t *r = arg;
    if (ursa_spawn(NULL, rw_stuck_writer, r,
                   &(ursa_spawn_opts_t){.name = "writer", .detached = true}))
        return R(-1);
    if (!yield_until(&r->held))
        return R(-2);
    URSA_SCOPED(rwlock_read_guard, g);
    return R(ursa_rwlock_read_lock(&r->rw, &g, URSA_NEVER));
}

static void test_rt_deadlock_report_rwlock_holder(void **state)
{
    (void)state;
    rw_stuck_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(ursa_rwlock_init_attr(&r.rw, 0, &(ursa_lock_attr_t){.name = "config"}), 0);
    ursa_sem_init(&r.never, 0);
    capture_t cap;
    capture_begin(&cap);
    int rc = run_det(1, rw_stuck_root, &r, NULL);
    const char *rep = capture_end(&cap);
    assert_int_equal(rc, -EDEADLK);
    expect_in(rep, "task 'root' waits on rwlock 'config' to read");
    expect_in(rep, "rwlock 'config' is held by task 'writer' (rwlock write guard taken at");
    expect_in(rep, "task 'writer' waits on semaphore");
    assert_int_equal(ursa_rwlock_destroy(&r.rw), 0);
    assert_int_equal(ursa_sem_destroy(&r.never), 0);
}

static void *wait_forever(void *arg)
{
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire((ursa_sem_t *)arg, 1, &p, URSA_NEVER));
}

static void *join_forever_root(void *arg)
{
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, wait_forever, arg, &(ursa_spawn_opts_t){.name = "sem-waiter", .worker = -1}))
        return R(-1);
    int rc = ursa_task_join(t, NULL, URSA_NEVER);
    if (rc)
        (void)ursa_task_detach(t); /* cancelled by ursa_rt_free: let it go */
    return R(rc);
}

static void test_rt_deadlock_join_semaphore(void **state)
{
    (void)state;
    ursa_sem_t s;
    ursa_sem_init(&s, 0);
    capture_t cap;
    capture_begin(&cap);
    int rc = run_det(1, join_forever_root, &s, NULL);
    const char *rep = capture_end(&cap);
    assert_int_equal(rc, -EDEADLK);
    expect_in(rep, "sem-waiter");
    expect_in(rep, "semaphore");
    expect_in(rep, "join");
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

/* Normal mode, two workers: when every worker has been idle past
 * deadlock_report_after with tasks waiting and no timer or I/O, each worker
 * reports its waiting tasks (regression: a worker without tasks used to
 * keep the count of idle workers short, so nothing was ever reported).
 * A plain thread then resolves it, which is why it's only "possible". */
static void *dl_waiter(void *arg)
{
    ursa_sem_permit_t p = {0};
    int rc = ursa_sem_acquire((ursa_sem_t *)arg, 1, &p, URSA_NEVER);
    if (rc == 0)
        (void)ursa_sem_release(&p);
    return (void *)(intptr_t)rc;
}

static void *dl_root(void *arg)
{
    ursa_task_t *t;
    if (ursa_spawn(&t, dl_waiter, arg, &(ursa_spawn_opts_t){.worker = 1, .name = "dl-stuck"}))
        return (void *)1;
    void *r = (void *)1;
    if (ursa_task_join(t, &r, URSA_NEVER))
        return (void *)2;
    return r;
}

static void *dl_rescue(void *arg)
{
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    (void)ursa_sem_add((ursa_sem_t *)arg, 1);
    return NULL;
}

static void test_rt_possible_deadlock_report_two_workers(void **state)
{
    (void)state;
    ursa_sem_t s;
    ursa_sem_init(&s, 0);
    capture_t cap;
    capture_begin(&cap);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dl_rescue, &s), 0);
    void *res = (void *)9;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2, .deadlock_report_after = URSA_MSEC(100)},
                      dl_root, &s, &res);
    assert_int_equal(pthread_join(th, NULL), 0);
    const char *rep = capture_end(&cap);
    assert_int_equal(rc, 0);
    assert_null(res);
    expect_in(rep, "possible deadlock");
    expect_in(rep, "dl-stuck");
    expect_in(rep, "semaphore");
    expect_in(rep, "'root' waits on join");
}

/* ================= stack guard page ================= */

static volatile int guard_limit = INT_MAX;
static volatile size_t guard_page;

static __attribute__((noinline)) int deep(int d, volatile char *up)
{
    volatile char buf[512];
    buf[0] = (char)(up ? up[0] + 1 : 0);
    buf[511] = (char)d;
    if (d >= guard_limit)
        return buf[0];
    /* buf is passed down, so every frame stays live: no loop, no tail call. */
    return deep(d + 1, buf) + buf[511];
}

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    ursa_task_t *t = ursa_task_self();
    if (!t || !t->stack)
        _exit(43);
    uintptr_t lo = (uintptr_t)t->stack->lo;
    uintptr_t a = (uintptr_t)si->si_addr;
    _exit(a >= lo - guard_page && a < lo ? 42 : 43);
}

static void *guard_task(void *arg)
{
    (void)arg;
    return R(deep(0, NULL));
}

#if defined(URSA__ASAN)
#define GUARD_ASAN 1
#else
#define GUARD_ASAN 0
#endif
#if defined(URSA__TSAN)
#define GUARD_TSAN 1
#else
#define GUARD_TSAN 0
#endif

static void test_rt_stack_guard_page(void **state)
{
    (void)state;
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
    FILE *err = tmpfile();
    assert_non_null(err);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30); /* never hang: SIGALRM ends the child, and the test fails */
        dup2(fileno(err), 2);
        size_t alt_size = 256 * 1024;
        void *alt = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                         0);
        if (alt == MAP_FAILED)
            _exit(50);
        stack_t ss = {.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0)
            _exit(51);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = guard_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
            _exit(52);
        int rc = ursa_run(&(ursa_rt_config_t){.workers = 1}, guard_task, NULL, NULL);
        _exit(rc == 0 ? 44 : 45);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char text[4096];
    rewind(err);
    size_t n = fread(text, 1, sizeof text - 1, err);
    text[n] = 0;
    fclose(err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 42)
        return;
    if (GUARD_ASAN && strstr(text, "stack-overflow")) {
        print_message("ASan's own handler caught the overflow first\n");
        return;
    }
    if (GUARD_TSAN) {
        /* TSan intercepts signals; if ours could not run, say so. */
        print_message("under TSan the child ended with %s %d; skipping\n",
                      WIFEXITED(status) ? "exit" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        skip();
    }
    fail_msg("child: %s %d; stderr:\n%s", WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text);
}

/* An argument runs only the tests whose names match it (a glob). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rt_config_errors),
        cmocka_unit_test(test_rt_run_returns_root_result),
        cmocka_unit_test(test_rt_codes_without_descriptors),
        cmocka_unit_test(test_rt_block_on_inside_task_einval),
        cmocka_unit_test(test_rt_run_inside_task_einval),
        cmocka_unit_test(test_rt_free_other_runtime_from_task),
        cmocka_unit_test(test_rt_spawn_join_results),
        cmocka_unit_test(test_rt_join_errors_keep_handle),
        cmocka_unit_test(test_rt_detach),
        cmocka_unit_test(test_rt_spawn_10k_join_all),
        cmocka_unit_test(test_rt_detached_cross_worker_churn),
        cmocka_unit_test(test_rt_spawn_before_block_on),
        cmocka_unit_test(test_rt_free_cancels_leftover_tasks),
        cmocka_unit_test(test_rt_free_frees_unjoined_handles),
        cmocka_unit_test(test_rt_free_from_other_thread_cancels_leftovers),
        cmocka_unit_test(test_rt_task_names),
        cmocka_unit_test(test_rt_spawn_on_chosen_worker),
        cmocka_unit_test(test_rt_spawn_from_plain_thread),
        cmocka_unit_test(test_rt_yield_alternates),
        cmocka_unit_test(test_rt_sleep_virtual_and_real),
        cmocka_unit_test(test_rt_sleepers_wake_in_deadline_order),
        cmocka_unit_test(test_rt_deadline_without_heap_memory),
        cmocka_unit_test(test_rt_cancel_sleep),
        cmocka_unit_test(test_rt_cancel_join),
        cmocka_unit_test(test_rt_cancel_mutex_lock),
        cmocka_unit_test(test_rt_cancel_finished_and_self),
        cmocka_unit_test(test_rt_cross_worker_pingpong),
        cmocka_unit_test(test_rt_plain_thread_wakes_idle_worker),
        cmocka_unit_test(test_rt_deterministic_replay),
        cmocka_unit_test(test_rt_sim_explore),
        cmocka_unit_test(test_rt_deadlock_report_abba),
        cmocka_unit_test(test_rt_deadlock_join_semaphore),
        cmocka_unit_test(test_rt_deadlock_report_names_and_holders),
        cmocka_unit_test(test_rt_deadlock_report_rwlock_holder),
        cmocka_unit_test(test_rt_possible_deadlock_report_two_workers),
        cmocka_unit_test(test_rt_stack_guard_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
