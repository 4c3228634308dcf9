/* Cancellation tokens: bad input, cancel and its tree (deep chains
 * included), waits in the three contexts, tasks bound at spawn and at run
 * time (blocked in several primitives and I/O, binding after the cancel), destroy
 * refusals, and the races (cancel vs bind vs wait vs finish) explored in
 * deterministic mode and stressed on real threads. */

#include "support.h"

#include "raw_waker.h"
#include "rt_checks.h"
#include "task_checks.h"

/* ================= bad input ================= */

static void *bad_input_in_task(void *arg)
{
    ursa_token_t *tok = arg;
    CHECK_EQ(ursa_token_bind(NULL), -EINVAL);
    ursa_task_t *t = (ursa_task_t *)1;
    CHECK_EQ(ursa_token_spawn(NULL, &t, ret_arg, NULL, NULL), -EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(ursa_token_spawn(tok, &t, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(ursa_token_spawn(tok, NULL, ret_arg, NULL, NULL), -EINVAL);
    CHECK(ursa_token_current() == NULL);
    return NULL;
}

static void test_token_bad_input(void **state)
{
    (void)state;
    ursa_token_t tok, other;
    assert_int_equal(ursa_token_init(NULL, NULL), -EINVAL);
    assert_int_equal(ursa_token_init(&tok, &tok), -EINVAL);
    assert_int_equal(ursa_token_init(&tok, NULL), 0);
    assert_int_equal(ursa_token_init(&other, NULL), 0);
    assert_int_equal(ursa_token_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_token_cancel(NULL), -EINVAL);
    assert_false(ursa_token_is_cancelled(NULL));
    assert_int_equal(ursa_token_bind(&tok), -EINVAL); /* not a task */
    assert_null(ursa_token_current());
    assert_int_equal(ursa_token_wait(NULL, URSA_NOW), -EINVAL);
    ursa_task_t *t = (ursa_task_t *)1;
    assert_int_equal(ursa_token_spawn(&tok, &t, ret_arg, NULL, NULL), -EINVAL); /* off-task */
    assert_null(t);
    assert_int_equal(ursa_token_rt_spawn(&tok, NULL, &t, ret_arg, NULL, NULL), -EINVAL);
    rwaker_t rw;
    rwaker_init(&rw, false);
    ursa_wait_t w;
    assert_int_equal(ursa_token_wait_start(NULL, &w, rwaker(&rw)), -EINVAL);
    assert_int_equal(ursa_token_wait_start(&tok, NULL, rwaker(&rw)), -EINVAL);
    assert_int_equal(ursa_token_wait_start(&tok, &w, (ursa_waker_t){NULL, NULL}), -EINVAL);
    assert_int_equal(ursa_token_wait_finish(&tok, NULL), -EINVAL);
    assert_int_equal(ursa_token_wait_start(&tok, &w, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(ursa_token_wait_finish(&other, &w), -EINVAL); /* another token's */
    assert_int_equal(ursa_token_wait_finish(NULL, &w), -EINVAL);
    assert_int_equal(ursa_token_wait_finish(&tok, &w), -EAGAIN);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_token_wait_finish(&tok, &w), -EINVAL); /* over */
    assert_int_equal(ursa_wait_cancel(&w), -EINVAL);
    assert_int_equal(atomic_load(&rw.count), 0);
    assert_null(test_run(1, bad_input_in_task, &tok));
    assert_false(ursa_token_is_cancelled(&tok)); /* nothing above changed it */
    assert_int_equal(ursa_token_destroy(&other), 0);
    assert_int_equal(ursa_token_destroy(&tok), 0);
}

/* ================= cancel, the tree, waits off-task ================= */

static void test_token_cancel_is_idempotent_and_waits_see_it(void **state)
{
    (void)state;
    ursa_token_t tok;
    assert_int_equal(ursa_token_init(&tok, NULL), 0);
    assert_false(ursa_token_is_cancelled(&tok));
    assert_int_equal(ursa_token_wait(&tok, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_token_wait(&tok, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    assert_int_equal(ursa_token_cancel(&tok), 1);
    assert_int_equal(ursa_token_cancel(&tok), 0);
    assert_true(ursa_token_is_cancelled(&tok));
    assert_int_equal(ursa_token_wait(&tok, URSA_NOW), 0);
    assert_int_equal(ursa_token_wait(&tok, URSA_NEVER), 0);
    /* A raw wait started after the cancel completes at once. */
    rwaker_t rw;
    rwaker_init(&rw, false);
    ursa_wait_t w;
    assert_int_equal(ursa_token_wait_start(&tok, &w, rwaker(&rw)), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(ursa_token_wait_finish(&tok, &w), 0);
    assert_int_equal(ursa_token_wait_finish(&tok, &w), -EINVAL);
    assert_int_equal(atomic_load(&rw.count), 0); /* never queued: no waker call */
    assert_int_equal(ursa_token_destroy(&tok), 0);
}

static ursa_token_t thread_tok;
static atomic_int thread_waiting;

static void *thread_waits(void *arg)
{
    (void)arg;
    atomic_fetch_add(&thread_waiting, 1);
    return (void *)(intptr_t)ursa_token_wait(&thread_tok, URSA_NEVER);
}

static void test_token_plain_threads_wait_for_a_cancel(void **state)
{
    (void)state;
    assert_int_equal(ursa_token_init(&thread_tok, NULL), 0);
    atomic_store(&thread_waiting, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_waits, NULL), 0);
    while (atomic_load(&thread_waiting) < 4)
        sched_yield();
    assert_int_equal(ursa_token_cancel(&thread_tok), 1);
    for (int i = 0; i < 4; i++) {
        void *rc = R(1);
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_int_equal(I(rc), 0);
    }
    assert_int_equal(ursa_token_destroy(&thread_tok), 0);
}

static void test_token_children_go_with_their_parent(void **state)
{
    (void)state;
    test_capture_leaks();
    ursa_token_t root, a, b, c, d;
    assert_int_equal(ursa_token_init(&root, NULL), 0);
    assert_int_equal(ursa_token_init(&a, &root), 0);
    assert_int_equal(ursa_token_init(&b, &a), 0);
    assert_int_equal(ursa_token_init(&c, &root), 0);
    /* Cancelling a child leaves its parent and siblings alone. */
    assert_int_equal(ursa_token_cancel(&a), 1);
    assert_true(ursa_token_is_cancelled(&a));
    assert_true(ursa_token_is_cancelled(&b));
    assert_false(ursa_token_is_cancelled(&root));
    assert_false(ursa_token_is_cancelled(&c));
    /* A child made under a cancelled parent is born cancelled. */
    assert_int_equal(ursa_token_init(&d, &b), 0);
    assert_true(ursa_token_is_cancelled(&d));
    assert_int_equal(ursa_token_cancel(&d), 0);
    /* A parent with live children is not destroyed. */
    assert_int_equal(ursa_token_destroy(&root), -EBUSY);
    assert_int_equal(ursa_token_destroy(&b), -EBUSY);
    assert_int_equal(test_leak_count(), 2);
    /* A destroyed child left its parent: cancelling it does not reach
     * the child's memory (ASan would see it). */
    assert_int_equal(ursa_token_destroy(&c), 0);
    memset(&c, 0xa5, sizeof c);
    assert_int_equal(ursa_token_cancel(&root), 1);
    assert_int_equal(ursa_token_cancel(&root), 0);
    assert_int_equal(ursa_token_destroy(&d), 0);
    assert_int_equal(ursa_token_destroy(&b), 0);
    assert_int_equal(ursa_token_destroy(&a), 0);
    assert_int_equal(ursa_token_destroy(&root), 0);
    ursa_leak_set_hook(NULL, NULL);
}

/* A deep chain and a wide fan: the cancel walks without recursion. */
static void test_token_deep_chain_and_wide_fan(void **state)
{
    (void)state;
    enum { DEPTH = 20000, FAN = 1000 };
    ursa_token_t *chain = calloc(DEPTH, sizeof *chain);
    ursa_token_t *fan = calloc(FAN, sizeof *fan);
    assert_non_null(chain);
    assert_non_null(fan);
    assert_int_equal(ursa_token_init(&chain[0], NULL), 0);
    for (int i = 1; i < DEPTH; i++)
        assert_int_equal(ursa_token_init(&chain[i], &chain[i - 1]), 0);
    /* A fan of leaves on a middle link, each with a raw waiter. */
    ursa_wait_t *w = calloc(FAN, sizeof *w);
    assert_non_null(w);
    rwaker_t rw;
    rwaker_init(&rw, false);
    for (int i = 0; i < FAN; i++) {
        assert_int_equal(ursa_token_init(&fan[i], &chain[DEPTH / 2]), 0);
        assert_int_equal(ursa_token_wait_start(&fan[i], &w[i], rwaker(&rw)), -EINPROGRESS);
    }
    ursa_wait_t deep;
    assert_int_equal(ursa_token_wait_start(&chain[DEPTH - 1], &deep, rwaker(&rw)),
                     -EINPROGRESS);
    /* Cancelling below the fan's link reaches neither the fan nor above. */
    assert_int_equal(ursa_token_cancel(&chain[DEPTH / 2 + 1]), 1);
    assert_true(ursa_token_is_cancelled(&chain[DEPTH - 1]));
    assert_false(ursa_token_is_cancelled(&chain[DEPTH / 2]));
    assert_false(ursa_token_is_cancelled(&fan[0]));
    assert_int_equal(atomic_load(&rw.count), 1);
    assert_int_equal(ursa_token_wait_finish(&chain[DEPTH - 1], &deep), 0);
    /* The root takes everything else. */
    assert_int_equal(ursa_token_cancel(&chain[0]), 1);
    assert_int_equal(atomic_load(&rw.count), 1 + FAN);
    for (int i = 0; i < DEPTH; i++)
        assert_true(ursa_token_is_cancelled(&chain[i]));
    for (int i = 0; i < FAN; i++) {
        assert_true(ursa_wait_ready(&w[i]));
        assert_int_equal(ursa_token_wait_finish(&fan[i], &w[i]), 0);
        assert_int_equal(ursa_token_destroy(&fan[i]), 0);
    }
    for (int i = DEPTH - 1; i >= 0; i--)
        assert_int_equal(ursa_token_destroy(&chain[i]), 0);
    free(w);
    free(fan);
    free(chain);
}

/* ================= tasks bound to a token ================= */

/* What a bound task blocks in. */
enum {
    B_SLEEP,
    B_SEM,
    B_MUTEX,
    B_EVENT,
    B_NOTIFY,
    B_JOIN,
    B_OTHER_TOKEN,
    B_IO,        /* a read of an empty pipe (real runtimes only) */
    B_OWN_TOKEN, /* waits for the token it is bound to: 0, not -ECANCELED */
    B_KINDS
};

typedef struct blockers {
    ursa_token_t tok, other;
    ursa_sem_t sem;
    ursa_mutex_t mu;
    ursa_event_t ev;
    ursa_notify_t no;
    gate_t gate;
    ursa_task_t *gated;
    atomic_int started;
    int pipe[2]; /* B_IO reads pipe[0]; -1 when not used */
    int kind_of[B_KINDS];
} blockers_t;

typedef struct blocked_arg {
    blockers_t *b;
    int kind;
} blocked_arg_t;

/* Blocks in one primitive; returns its code (then checks that a later
 * wait fails too, unless it waited for its own token). */
static void *blocked(void *arg)
{
    blocked_arg_t *a = arg;
    blockers_t *b = a->b;
    atomic_fetch_add(&b->started, 1);
    int rc;
    switch (a->kind) {
    case B_SLEEP:
        rc = ursa_sleep_for(URSA_SEC(3600));
        break;
    case B_SEM: {
        URSA_SCOPED(sem_permit, p);
        rc = ursa_sem_acquire(&b->sem, 1, &p, URSA_NEVER);
        break;
    }
    case B_MUTEX: {
        URSA_SCOPED(mutex_guard, g);
        rc = ursa_mutex_lock(&b->mu, &g, URSA_NEVER);
        break;
    }
    case B_EVENT:
        rc = ursa_event_wait(&b->ev, URSA_NEVER);
        break;
    case B_NOTIFY:
        rc = ursa_notify_wait(&b->no, URSA_NEVER);
        break;
    case B_JOIN:
        rc = ursa_task_join(b->gated, NULL, URSA_NEVER);
        break;
    case B_OTHER_TOKEN:
        rc = ursa_token_wait(&b->other, URSA_NEVER);
        break;
    case B_IO: {
        char c;
        rc = (int)ursa_read(b->pipe[0], &c, 1, -1, URSA_NEVER);
        break;
    }
    default:
        rc = ursa_token_wait(&b->tok, URSA_NEVER);
        return R(rc == 0 && ursa_task_cancelled() ? 0 : -1000 + rc);
    }
    if (!ursa_task_cancelled() || ursa_yield() != -ECANCELED)
        return R(-2000);
    return R(rc);
}

static void *bound_tasks_root(void *arg)
{
    blockers_t *b = arg;
    URSA_SCOPED(mutex_guard, held);
    CHECK_EQ(ursa_mutex_lock(&b->mu, &held, URSA_NEVER), 0);
    CHECK_EQ(ursa_spawn(&b->gated, gated, &b->gate, NULL), 0);
    blocked_arg_t args[B_KINDS];
    ursa_task_t *t[B_KINDS];
    int kinds = 0;
    for (int k = 0; k < B_KINDS; k++) {
        t[k] = NULL;
        if (k == B_IO && b->pipe[0] < 0)
            continue;
        args[k] = (blocked_arg_t){b, k};
        CHECK_EQ(ursa_token_spawn(&b->tok, &t[k], blocked, &args[k], NULL), 0);
        kinds++;
    }
    YIELD_UNTIL(atomic_load(&b->started) == kinds);
    yield_n(20); /* let them block */
    CHECK_EQ(ursa_token_cancel(&b->tok), 1);
    for (int k = 0; k < B_KINDS; k++) {
        void *res = R(-ECANCELED);
        if (t[k])
            CHECK_EQ(ursa_task_join(t[k], &res, test_guard_deadline()), 0);
        b->kind_of[k] = (int)I(res);
    }
    /* The gated task was not bound: it is still there, and the token
     * destroys once its bound tasks ended. */
    CHECK_EQ(ursa_sem_add(&b->gate.sem, 1), 0);
    void *v = NULL;
    CHECK_EQ(ursa_task_join(b->gated, &v, test_guard_deadline()), 0);
    CHECK_EQ(I(v), 99);
    return NULL;
}

static void blockers_init(blockers_t *b, bool with_io)
{
    memset(b, 0, sizeof *b);
    b->pipe[0] = b->pipe[1] = -1;
    if (with_io)
        assert_int_equal(pipe(b->pipe), 0);
    assert_int_equal(ursa_token_init(&b->tok, NULL), 0);
    assert_int_equal(ursa_token_init(&b->other, NULL), 0);
    assert_int_equal(ursa_sem_init(&b->sem, 0), 0);
    assert_int_equal(ursa_mutex_init(&b->mu), 0);
    assert_int_equal(ursa_event_init(&b->ev, URSA_EVENT_MANUAL, false), 0);
    assert_int_equal(ursa_notify_init(&b->no), 0);
    gate_init(&b->gate);
}

static void blockers_check(blockers_t *b)
{
    for (int k = 0; k < B_OWN_TOKEN; k++)
        assert_int_equal(b->kind_of[k], -ECANCELED);
    assert_int_equal(b->kind_of[B_OWN_TOKEN], 0);
    assert_int_equal(ursa_token_destroy(&b->tok), 0);
    assert_int_equal(ursa_token_destroy(&b->other), 0);
    assert_int_equal(ursa_event_destroy(&b->ev), 0);
    if (b->pipe[0] >= 0) {
        close(b->pipe[0]);
        close(b->pipe[1]);
    }
}

static void test_token_cancels_tasks_blocked_in_each_primitive(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        blockers_t b;
        blockers_init(&b, true);
        assert_null(test_run(workers, bound_tasks_root, &b));
        blockers_check(&b);
    }
    for (uint64_t seed = 0; seed < 20; seed++) {
        blockers_t b;
        blockers_init(&b, false);
        void *res = R(1);
        assert_int_equal(run_det(seed, bound_tasks_root, &b, &res), 0);
        assert_null(res);
        blockers_check(&b);
    }
}

/* Binding after the cancel: the task fails at its next wait. */
static void *binds_late(void *arg)
{
    ursa_token_t *tok = arg;
    if (ursa_task_cancelled())
        return R(-1);
    if (ursa_token_bind(tok) != 0 || ursa_token_current() != tok)
        return R(-2);
    if (!ursa_task_cancelled())
        return R(-3);
    return R(ursa_sleep_for(URSA_SEC(3600)));
}

static void *born_cancelled(void *arg)
{
    (void)arg;
    if (!ursa_task_cancelled())
        return R(-1);
    return R(ursa_sleep_for(URSA_SEC(3600)));
}

/* The token the root binds to: outside the root's stack, since the root
 * leaves it only once its stack is gone. */
static ursa_token_t late_other;

static void *bind_after_cancel_root(void *arg)
{
    (void)arg;
    ursa_token_t tok;
    CHECK_EQ(ursa_token_init(&tok, NULL), 0);
    CHECK_EQ(ursa_token_cancel(&tok), 1);
    ursa_task_t *a, *b;
    CHECK_EQ(ursa_spawn(&a, binds_late, &tok, NULL), 0);
    CHECK_EQ(ursa_token_spawn(&tok, &b, born_cancelled, NULL, NULL), 0);
    void *ra = NULL, *rb = NULL;
    CHECK_EQ(ursa_task_join(a, &ra, URSA_NEVER), 0);
    CHECK_EQ(ursa_task_join(b, &rb, URSA_NEVER), 0);
    CHECK_EQ(I(ra), -ECANCELED);
    CHECK_EQ(I(rb), -ECANCELED);
    /* The root binds: a second token is refused, the same is fine; a
     * token with a bound task is not destroyed until the task ends. */
    CHECK_EQ(ursa_token_bind(&late_other), 0);
    CHECK_EQ(ursa_token_bind(&late_other), 0);
    CHECK_EQ(ursa_token_bind(&tok), -EBUSY);
    CHECK(ursa_token_current() == &late_other);
    CHECK(!ursa_task_cancelled());
    CHECK_EQ(ursa_token_destroy(&late_other), -EBUSY);
    CHECK_EQ(ursa_token_destroy(&tok), 0);
    return NULL;
}

static void test_token_bind_after_cancel_and_destroy_refusals(void **state)
{
    (void)state;
    test_capture_leaks();
    assert_int_equal(ursa_token_init(&late_other, NULL), 0);
    assert_null(test_run(1, bind_after_cancel_root, NULL));
    assert_int_equal(test_leak_count(), 1); /* the refused destroy */
    ursa_leak_set_hook(NULL, NULL);
    assert_int_equal(ursa_token_destroy(&late_other), 0); /* the root ended */
}

/* ================= races, explored ================= */

typedef struct race {
    ursa_token_t root, tok;
    ursa_sem_t never; /* no permits: a wait that only a cancel ends */
    int binder_rc, spawned_rc, waiter_rc, quick_rc;
} race_t;

static void *race_binder(void *arg)
{
    race_t *r = arg;
    yield_n((unsigned)(ursa_now() & 3));
    if (ursa_token_bind(&r->tok) != 0)
        return R(-1);
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire(&r->never, 1, &p, URSA_NEVER));
}

static void *race_spawned(void *arg)
{
    race_t *r = arg;
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire(&r->never, 1, &p, URSA_NEVER));
}

static void *race_waiter(void *arg)
{
    race_t *r = arg;
    return R(ursa_token_wait(&r->tok, URSA_NEVER));
}

static void *race_quick(void *arg)
{
    (void)arg;
    return R(ursa_yield()); /* ends while the cancel may be walking */
}

static void *race_canceller(void *arg)
{
    race_t *r = arg;
    (void)ursa_yield();
    return R(ursa_token_cancel(&r->root));
}

/* Cancel (of the parent) vs bind vs wait vs finish, in every order the
 * seeds draw. Whatever the order, every wait that only a cancel ends
 * ends with -ECANCELED, the waiter with 0, and the token destroys. */
static void *race_scenario(void *arg)
{
    (void)arg;
    race_t r;
    memset(&r, 0, sizeof r);
    URSA_SIM_CHECK(ursa_token_init(&r.root, NULL) == 0);
    URSA_SIM_CHECK(ursa_token_init(&r.tok, &r.root) == 0);
    URSA_SIM_CHECK(ursa_sem_init(&r.never, 0) == 0);
    ursa_task_t *t[6];
    URSA_SIM_CHECK(ursa_spawn(&t[0], race_binder, &r, NULL) == 0);
    URSA_SIM_CHECK(ursa_token_spawn(&r.tok, &t[1], race_spawned, &r, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&t[2], race_waiter, &r, NULL) == 0);
    URSA_SIM_CHECK(ursa_token_spawn(&r.tok, &t[3], race_quick, &r, NULL) == 0);
    URSA_SIM_CHECK(ursa_token_spawn(&r.tok, &t[4], race_quick, &r, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&t[5], race_canceller, &r, NULL) == 0);
    void *res[6];
    for (int i = 0; i < 6; i++)
        URSA_SIM_CHECK(ursa_task_join(t[i], &res[i], URSA_NEVER) == 0);
    URSA_SIM_CHECK(I(res[0]) == -ECANCELED);
    URSA_SIM_CHECK(I(res[1]) == -ECANCELED);
    URSA_SIM_CHECK(I(res[2]) == 0);
    URSA_SIM_CHECK(I(res[3]) == 0 || I(res[3]) == -ECANCELED);
    URSA_SIM_CHECK(I(res[5]) == 1);
    URSA_SIM_CHECK(ursa_token_is_cancelled(&r.tok));
    URSA_SIM_CHECK(ursa_token_destroy(&r.tok) == 0);
    URSA_SIM_CHECK(ursa_token_destroy(&r.root) == 0);
    return NULL;
}

static void test_token_races_explored(void **state)
{
    (void)state;
    test_explore(race_scenario, NULL);
    test_explore_workers(2, race_scenario, NULL);
}

/* ================= races, on real threads ================= */

typedef struct stress {
    ursa_rt_t *rt;
    ursa_token_t tok;
    ursa_sem_t never;
    atomic_int go;
} stress_t;

static void *stress_member(void *arg)
{
    stress_t *s = arg;
    uintptr_t k = (uintptr_t)ursa_task_self() >> 6;
    if (k % 3 == 0)
        return R(1); /* ends at once: its end races the cancel */
    if (k % 3 == 1 && ursa_token_bind(&s->tok) != 0)
        return R(-1);
    URSA_SCOPED(sem_permit, p);
    return R(ursa_sem_acquire(&s->never, 1, &p, URSA_NEVER));
}

static void *stress_canceller_thread(void *arg)
{
    stress_t *s = arg;
    while (!atomic_load(&s->go))
        sched_yield();
    return R(ursa_token_cancel(&s->tok));
}

static void test_token_stress_cancel_races_binds_and_ends(void **state)
{
    (void)state;
    long rounds = test_scale(200);
    enum { N = 24 };
    stress_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ursa_rt_new(&s.rt, &(ursa_rt_config_t){.workers = 2}), 0);
    assert_int_equal(ursa_sem_init(&s.never, 0), 0);
    for (long r = 0; r < rounds; r++) {
        assert_int_equal(ursa_token_init(&s.tok, NULL), 0);
        atomic_store(&s.go, 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, stress_canceller_thread, &s), 0);
        ursa_task_t *t[N];
        for (int i = 0; i < N; i++) {
            if (i == N / 2)
                atomic_store(&s.go, 1); /* the cancel races the rest */
            if (i % 2)
                assert_int_equal(ursa_token_rt_spawn(&s.tok, s.rt, &t[i], stress_member, &s, NULL), 0);
            else
                assert_int_equal(ursa_rt_spawn(s.rt, &t[i], stress_member, &s, NULL), 0);
        }
        void *crc = NULL;
        assert_int_equal(pthread_join(th, &crc), 0);
        assert_int_equal(I(crc), 1);
        for (int i = 0; i < N; i++) {
            void *res = NULL;
            uintptr_t k = (uintptr_t)t[i] >> 6;
            bool bound = i % 2 || k % 3 == 1;
            if (!bound && k % 3 != 0) {
                /* Not bound and blocked: only its own cancel ends it. */
                assert_int_equal(ursa_task_cancel(t[i]), 0);
            }
            assert_int_equal(ursa_task_join(t[i], &res, test_guard_deadline()), 0);
            if (k % 3 == 0)
                assert_int_equal(I(res), 1);
            else
                assert_int_equal(I(res), -ECANCELED);
        }
        assert_int_equal(ursa_token_destroy(&s.tok), 0);
    }
    ursa_rt_free(s.rt);
}

TEST_MAIN(cmocka_unit_test(test_token_bad_input),
          cmocka_unit_test(test_token_cancel_is_idempotent_and_waits_see_it),
          cmocka_unit_test(test_token_plain_threads_wait_for_a_cancel),
          cmocka_unit_test(test_token_children_go_with_their_parent),
          cmocka_unit_test(test_token_deep_chain_and_wide_fan),
          cmocka_unit_test(test_token_cancels_tasks_blocked_in_each_primitive),
          cmocka_unit_test(test_token_bind_after_cancel_and_destroy_refusals),
          cmocka_unit_test(test_token_races_explored),
          cmocka_unit_test(test_token_stress_cancel_races_binds_and_ends))
