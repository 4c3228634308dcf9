/* Tasks (src/rt/task.c): spawn, join (results, errors that keep the
 * handle), detach, 10k tasks, detached tasks recycled across workers,
 * names, the chosen worker, and spawning and joining from a plain
 * thread. */

#include "support.h"

#include "rt_checks.h"

/* ================= spawn / join / detach ================= */

/* Each of the n spawns returned 0. */
static void assert_all_spawned(const int *spawn_rc, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(spawn_rc[i], 0);
}

/* Joins each task of t[0..n) that was spawned (not NULL); whether all
 * joins succeeded. */
static bool join_spawned(ursa_task_t **t, int n)
{
    for (int i = 0; i < n; i++)
        if (t[i] && ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return false;
    return true;
}

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

static void test_rt_join_returns_each_tasks_result(void **state)
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
    r->spawn_rc = ursa_spawn(&t, gated, &g, &(ursa_spawn_opts_t){.name = "gated", .placement = URSA_PLACE_LOCAL});
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
                                    &(ursa_spawn_opts_t){.detached = true, .placement = URSA_PLACE_LOCAL});
    t = (ursa_task_t *)d; /* garbage that must be overwritten */
    d->spawn_out_rc =
        ursa_spawn(&t, mark_flag, &d->ran[4], &(ursa_spawn_opts_t){.detached = true, .placement = URSA_PLACE_LOCAL});
    d->out_after = t;
    d->all_ran = true;
    for (int i = 0; i < 5; i++)
        d->all_ran &= yield_until(&d->ran[i]);
    return NULL;
}

/* Run under ASan: LeakSanitizer proves the detached tasks freed themselves. */
static void test_rt_detached_tasks_free_themselves(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        detach_res_t *d = calloc(1, sizeof *d);
        assert_non_null(d);
        gate_init(&d->gate);
        assert_null(test_run(workers, detach_root, d));
        assert_all_spawned(d->spawn_rc, 3);
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
        if (ursa_spawn(&h[i], triple, R(i), &(ursa_spawn_opts_t){URSA_ON_WORKER((int)(i % 2))}))
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
            if (ursa_spawn(NULL, churn_body, c, &(ursa_spawn_opts_t){URSA_ON_WORKER(1), .detached = true}))
                c->spawn_fail++;
        /* Wait for this batch, so the next one reuses freed descriptors. */
        ursa_time_t end = ursa_now() + test_hang_guard();
        while (atomic_load(&c->done) < total - c->spawn_fail && ursa_now() < end)
            (void)ursa_sleep_for(URSA_USEC(100));
        if (atomic_load(&c->done) < total - c->spawn_fail) {
            c->stuck = true;
            break;
        }
    }
    return NULL;
}

static void test_rt_detached_tasks_ending_on_another_worker_are_recycled(void **state)
{
    (void)state;
    churn_t c;
    memset(&c, 0, sizeof c);
    assert_null(test_run(2, churn_root, &c));
    assert_int_equal(c.spawn_fail, 0);
    assert_false(c.stuck);
    assert_int_equal(atomic_load(&c.done), 2000);
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
                                &(ursa_spawn_opts_t){.name = "alpha", .placement = URSA_PLACE_LOCAL});
    n->spawn_rc[1] = ursa_spawn(&t[1], record_self, &n->dflt, NULL);
    n->spawn_rc[2] = ursa_spawn(&t[2], record_self, &n->longn,
                                &(ursa_spawn_opts_t){.name = LONG_NAME, .placement = URSA_PLACE_LOCAL});
    char buf[16];
    snprintf(buf, sizeof buf, "copied");
    n->spawn_rc[3] =
        ursa_spawn(&t[3], record_self, &n->copied, &(ursa_spawn_opts_t){.name = buf, .placement = URSA_PLACE_LOCAL});
    snprintf(buf, sizeof buf, "CLOBBERED"); /* the name must have been copied */
    if (t[0])
        snprintf(n->alpha_handle, sizeof n->alpha_handle, "%s", ursa_task_name(t[0]));
    if (t[1])
        snprintf(n->dflt_handle, sizeof n->dflt_handle, "%s", ursa_task_name(t[1]));
    return join_spawned(t, 4) ? NULL : R(-100);
}

static void test_rt_task_names_are_copied_and_truncated(void **state)
{
    (void)state;
    names_t n;
    memset(&n, 0, sizeof n);
    assert_null(test_run(1, names_root, &n));
    assert_all_spawned(n.spawn_rc, 4);
    assert_true(n.root_name_ok);
    assert_int_equal(n.root_worker, 0);
    assert_true(n.alpha.self_ok);
    assert_string_equal(n.alpha.name, "alpha");
    assert_string_equal(n.alpha_handle, "alpha");
    assert_string_equal(n.dflt.name, "task");
    assert_string_equal(n.dflt_handle, "task");
    assert_int_equal(strlen(n.longn.name), URSA_TASK_NAME_MAX);
    assert_int_equal(strncmp(n.longn.name, LONG_NAME, URSA_TASK_NAME_MAX), 0);
    assert_string_equal(n.copied.name, "copied");
    /* Off-task. */
    assert_null(ursa_task_self());
    assert_int_equal(ursa_worker_index(), -1);
    assert_false(ursa_task_cancelled());
    assert_non_null(ursa_task_name(NULL));
}

enum { BAD_OPTS = 9 };

typedef struct workers_res {
    seen_t on1, on0, cur, from1;
    int root_worker;
    int spawn_rc[4];
    int bad_rc[BAD_OPTS];
    ursa_task_t *bad_out[BAD_OPTS];
    unsigned count;
} workers_res_t;

/* Runs on worker 1 and spawns with URSA_PLACE_LOCAL: the child lands here too. */
static void *spawn_from_worker1(void *arg)
{
    workers_res_t *w = arg;
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, record_self, &w->from1, &(ursa_spawn_opts_t){.placement = URSA_PLACE_LOCAL}))
        return R(-1);
    return R(ursa_task_join(t, NULL, URSA_NEVER));
}

static void *workers_root(void *arg)
{
    workers_res_t *w = arg;
    w->root_worker = ursa_worker_index();
    ursa_task_t *t[4] = {0};
    w->spawn_rc[0] = ursa_spawn(&t[0], record_self, &w->on1, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)});
    w->spawn_rc[1] = ursa_spawn(&t[1], record_self, &w->on0, &(ursa_spawn_opts_t){URSA_ON_WORKER(0)});
    w->spawn_rc[2] = ursa_spawn(&t[2], record_self, &w->cur, &(ursa_spawn_opts_t){.placement = URSA_PLACE_LOCAL});
    w->spawn_rc[3] =
        ursa_spawn(&t[3], spawn_from_worker1, w, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)});
    const ursa_spawn_opts_t bad[] = {
        {URSA_ON_WORKER(2)},
        {URSA_ON_WORKER(-2)},
        {URSA_ON_WORKER(1000)},
        /* `.worker` alone: code from before placements, refused */
        {.worker = 1},
        {.worker = -1},
        {.placement = URSA_PLACE_LOCAL, .worker = 1},
        /* migratable needs the default placement */
        {URSA_ON_WORKER(1), .migratable = true},
        {.placement = URSA_PLACE_LOCAL, .migratable = true},
        {.placement = (ursa_placement_t)7},
    };
    for (int i = 0; i < BAD_OPTS; i++) {
        ursa_task_t *b = (ursa_task_t *)w; /* garbage that must be cleared */
        w->bad_rc[i] = ursa_spawn(&b, record_self, &w->on0, &bad[i]);
        w->bad_out[i] = b;
    }
    w->count = ursa_worker_count();
    return join_spawned(t, 4) ? NULL : R(-100);
}

static void test_rt_spawn_on_chosen_worker(void **state)
{
    (void)state;
    workers_res_t w;
    memset(&w, 0, sizeof w);
    assert_null(test_run(2, workers_root, &w));
    assert_all_spawned(w.spawn_rc, 4);
    assert_int_equal(w.root_worker, 0);
    assert_int_equal(w.on1.worker, 1);
    assert_int_equal(w.on0.worker, 0);
    assert_int_equal(w.cur.worker, 0);
    assert_int_equal(w.from1.worker, 1);
    for (int i = 0; i < BAD_OPTS; i++) {
        assert_int_equal(w.bad_rc[i], -EINVAL);
        assert_null(w.bad_out[i]);
    }
    assert_int_equal(w.count, 2);
    assert_int_equal(ursa_worker_count(), 0); /* a plain thread */
    assert_int_equal(ursa_rt_worker_count(NULL), 0);
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
                                &(ursa_spawn_opts_t){.name = "from-thread", .placement = URSA_PLACE_LOCAL});
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

static void test_rt_spawn_and_join_from_a_plain_thread(void **state)
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

TEST_MAIN(cmocka_unit_test(test_rt_join_returns_each_tasks_result),
          cmocka_unit_test(test_rt_join_errors_keep_handle),
          cmocka_unit_test(test_rt_detached_tasks_free_themselves),
          cmocka_unit_test(test_rt_spawn_10k_join_all),
          cmocka_unit_test(test_rt_detached_tasks_ending_on_another_worker_are_recycled),
          cmocka_unit_test(test_rt_task_names_are_copied_and_truncated),
          cmocka_unit_test(test_rt_spawn_on_chosen_worker),
          cmocka_unit_test(test_rt_spawn_and_join_from_a_plain_thread))
