/* The deterministic mode (src/rt/sim.c): a seed replays its interleaving,
 * exploration finds and replays failing seeds (URSA_SEED too), and
 * deadlock reports name the tasks, what they wait on, who holds it and
 * where (in deterministic mode, and a possible deadlock on two workers). */

#include <unistd.h>

#include "support.h"

#include "rt_checks.h"

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

/* Runs root(arg) in deterministic mode with `seed`; it must end in a
 * deadlock. Returns the report printed meanwhile (kept in cap). */
static const char *det_deadlock_report(capture_t *cap, uint64_t seed, ursa_task_fn_t root,
                                       void *arg)
{
    capture_begin(cap);
    int rc = run_det(seed, root, arg, NULL);
    const char *rep = capture_end(cap);
    assert_int_equal(rc, -EDEADLK);
    return rep;
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

static void test_rt_seed_replays_the_same_interleaving(void **state)
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

static void test_rt_explore_finds_and_replays_failing_seeds(void **state)
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

/* After the deadlocked run: neither mutex is held (the lockers, cancelled
 * by ursa_rt_free, gave back every hold); d's parts are destroyed. */
static void abba_released_and_destroyed(abba_t *d)
{
    assert_false(ursa_mutex_is_locked(&d->m1));
    assert_false(ursa_mutex_is_locked(&d->m2));
    assert_int_equal(ursa_mutex_destroy(&d->m1), 0);
    assert_int_equal(ursa_mutex_destroy(&d->m2), 0);
    assert_int_equal(ursa_sem_destroy(&d->done), 0);
}

static void expect_in(const char *text, const char *what)
{
    if (!strstr(text, what))
        fail_msg("report lacks \"%s\":\n%s", what, text);
}

static void test_rt_deadlock_report_names_both_lockers_and_their_sites(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        abba_t d;
        memset(&d, 0, sizeof d);
        assert_int_equal(ursa_mutex_init(&d.m1), 0);
        assert_int_equal(ursa_mutex_init(&d.m2), 0);
        ursa_sem_init(&d.done, 0);
        capture_t cap;
        const char *rep = det_deadlock_report(&cap, seed, abba_root, &d);
        expect_in(rep, "locker-a");
        expect_in(rep, "locker-b");
        expect_in(rep, "mutex");
        char site[64];
        const char *file = strrchr(__FILE__, '/') ? strrchr(__FILE__, '/') + 1 : __FILE__;
        assert_true(d.line_a > 0 && d.line_b > 0);
        snprintf(site, sizeof site, "%s:%d", file, d.line_a);
        expect_in(rep, site);
        snprintf(site, sizeof site, "%s:%d", file, d.line_b);
        expect_in(rep, site);
        /* Cancelled by ursa_rt_free: every hold was given back. */
        abba_released_and_destroyed(&d);
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

static void test_rt_deadlock_report_names_the_locks_their_holders_and_the_join(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        abba_t d;
        memset(&d, 0, sizeof d);
        assert_int_equal(ursa_mutex_init_attr(&d.m1, &(ursa_lock_attr_t){.name = "alpha"}), 0);
        assert_int_equal(ursa_mutex_init_attr(&d.m2, &(ursa_lock_attr_t){.name = "beta"}), 0);
        ursa_sem_init(&d.done, 0);
        capture_t cap;
        const char *rep = det_deadlock_report(&cap, seed, named_abba_root, &d);
        expect_in(rep, "task 'locker-a' waits on mutex 'beta'");
        expect_in(rep, "mutex 'beta' is held by task 'locker-b'");
        expect_in(rep, "task 'locker-b' waits on mutex 'alpha'");
        expect_in(rep, "mutex 'alpha' is held by task 'locker-a'");
        expect_in(rep, "task 'root' waits on join of task 'locker-a'");
        abba_released_and_destroyed(&d);
    }
}

/* Waits for a permit of the semaphore arg (one that none will get). */
static void *wait_forever(void *arg)
{
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire((ursa_sem_t *)arg, 1, &p, URSA_NEVER));
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
    if (ursa_rwlock_write_lock(&r->rw, &g, URSA_NEVER) != 0)
        return R(-1);
    atomic_store(&r->held, 1);
    return wait_forever(&r->never); /* holding the write lock */
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

static void test_rt_deadlock_report_names_the_rwlock_and_its_writer(void **state)
{
    (void)state;
    rw_stuck_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(ursa_rwlock_init_attr(&r.rw, 0, &(ursa_lock_attr_t){.name = "config"}), 0);
    ursa_sem_init(&r.never, 0);
    capture_t cap;
    const char *rep = det_deadlock_report(&cap, 1, rw_stuck_root, &r);
    expect_in(rep, "task 'root' waits on rwlock 'config' to read");
    expect_in(rep, "rwlock 'config' is held by task 'writer' (rwlock write guard taken at");
    expect_in(rep, "task 'writer' waits on semaphore");
    assert_int_equal(ursa_rwlock_destroy(&r.rw), 0);
    assert_int_equal(ursa_sem_destroy(&r.never), 0);
}

static void *join_forever_root(void *arg)
{
    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, wait_forever, arg, &(ursa_spawn_opts_t){.name = "sem-waiter", .placement = URSA_PLACE_LOCAL}))
        return R(-1);
    int rc = ursa_task_join(t, NULL, URSA_NEVER);
    if (rc)
        (void)ursa_task_detach(t); /* cancelled by ursa_rt_free: let it go */
    return R(rc);
}

static void test_rt_deadlock_report_names_a_join_and_a_semaphore_wait(void **state)
{
    (void)state;
    ursa_sem_t s;
    ursa_sem_init(&s, 0);
    capture_t cap;
    const char *rep = det_deadlock_report(&cap, 1, join_forever_root, &s);
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
    if (ursa_spawn(&t, dl_waiter, arg, &(ursa_spawn_opts_t){URSA_ON_WORKER(1), .name = "dl-stuck"}))
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

TEST_MAIN(cmocka_unit_test(test_rt_seed_replays_the_same_interleaving),
          cmocka_unit_test(test_rt_explore_finds_and_replays_failing_seeds),
          cmocka_unit_test(test_rt_deadlock_report_names_both_lockers_and_their_sites),
          cmocka_unit_test(test_rt_deadlock_report_names_a_join_and_a_semaphore_wait),
          cmocka_unit_test(test_rt_deadlock_report_names_the_locks_their_holders_and_the_join),
          cmocka_unit_test(test_rt_deadlock_report_names_the_rwlock_and_its_writer),
          cmocka_unit_test(test_rt_possible_deadlock_report_two_workers))
