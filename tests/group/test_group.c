/* Task groups: bad input, the empty group, join_next in finishing order
 * with each member's result, URSA_NOW tries, cancel with members blocked
 * in several primitives, a parent token, destroy with running members (by
 * a cancelled caller too, and refused for a member or while joined),
 * group_wait, the raw join_next (a cancelled grant handed on), and
 * join/cancel/spawn races explored and stressed. */

#include "support.h"

#include "raw_waker.h"
#include "rt_checks.h"
#include "task_checks.h"

/* ================= bad input, the empty group ================= */

static void *bad_input_in_task(void *arg)
{
    ursa_group_t *g = arg;
    ursa_task_t *t = (ursa_task_t *)1;
    CHECK_EQ(ursa_group_spawn(NULL, &t, ret_arg, NULL, NULL), -EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(ursa_group_spawn(g, &t, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(ursa_group_spawn(g, &t, ret_arg, NULL, &(ursa_spawn_opts_t){.detached = true}),
             -EINVAL);
    CHECK_EQ(ursa_group_spawn(g, &t, ret_arg, NULL, &(ursa_spawn_opts_t){.worker = 3}), -EINVAL);
    CHECK_EQ(ursa_group_len(g), 0); /* nothing was left counted */
    CHECK_EQ(ursa_group_wait(g, URSA_NOW), 0);
    return NULL;
}

static void test_group_bad_input_and_the_empty_group(void **state)
{
    (void)state;
    ursa_group_t g, other;
    assert_int_equal(ursa_group_init(NULL, NULL), -EINVAL);
    assert_int_equal(ursa_group_init(&g, NULL), 0);
    assert_int_equal(ursa_group_init(&other, NULL), 0);
    assert_int_equal(ursa_group_destroy(NULL), -EINVAL);
    assert_int_equal(ursa_group_cancel(NULL), -EINVAL);
    assert_null(ursa_group_token(NULL));
    assert_int_equal(ursa_group_len(NULL), 0);
    ursa_task_t *t = (ursa_task_t *)1;
    assert_int_equal(ursa_group_spawn(&g, &t, ret_arg, NULL, NULL), -EINVAL); /* off-task */
    assert_null(t);
    assert_int_equal(ursa_group_rt_spawn(&g, NULL, &t, ret_arg, NULL, NULL), -EINVAL);
    void *res = R(1);
    ursa_task_t *which = (ursa_task_t *)1;
    assert_int_equal(ursa_group_join_next(NULL, &res, &which, URSA_NOW), -EINVAL);
    assert_null(res);
    assert_null(which);
    assert_int_equal(ursa_group_wait(NULL, URSA_NOW), -EINVAL);
    /* Empty: join_next says so at once, whatever the deadline. */
    assert_int_equal(ursa_group_join_next(&g, &res, &which, URSA_NOW), -ECHILD);
    assert_int_equal(ursa_group_join_next(&g, NULL, NULL, URSA_NEVER), -ECHILD);
    assert_int_equal(ursa_group_wait(&g, URSA_NOW), 0);
    assert_int_equal(ursa_group_wait(&g, URSA_NEVER), 0);
    rwaker_t rw;
    rwaker_init(&rw, false);
    ursa_wait_t w;
    assert_int_equal(ursa_group_join_next_start(NULL, &w, rwaker(&rw)), -EINVAL);
    assert_int_equal(ursa_group_join_next_start(&g, NULL, rwaker(&rw)), -EINVAL);
    assert_int_equal(ursa_group_join_next_start(&g, &w, (ursa_waker_t){NULL, NULL}), -EINVAL);
    assert_int_equal(ursa_group_join_next_start(&g, &w, rwaker(&rw)), -ECHILD);
    assert_int_equal(ursa_group_join_next_finish(&g, &w, &res, &which), -ECHILD);
    assert_int_equal(ursa_group_join_next_finish(&g, &w, &res, &which), -EINVAL); /* over */
    assert_int_equal(ursa_group_join_next_start(&g, &w, rwaker(&rw)), -ECHILD);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED); /* or dropped instead */
    assert_int_equal(atomic_load(&rw.count), 0);
    assert_int_equal(ursa_group_join_next_finish(NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(ursa_group_wait_start(&g, &w, rwaker(&rw)), 0);
    assert_int_equal(ursa_group_wait_finish(&other, &w), -EINVAL);
    assert_int_equal(ursa_group_wait_finish(&g, &w), 0);
    assert_int_equal(ursa_group_wait_finish(&g, &w), -EINVAL);
    assert_null(test_run(1, bad_input_in_task, &g));
    assert_int_equal(ursa_group_cancel(&g), 1);
    assert_int_equal(ursa_group_cancel(&g), 0);
    assert_true(ursa_token_is_cancelled(ursa_group_token(&g)));
    assert_int_equal(ursa_group_destroy(&g), 0);
    assert_int_equal(ursa_group_destroy(&other), 0);
}

/* ================= join_next: order and results ================= */

enum { ORDER_N = 8 };

/* Member i sleeps (ORDER_N - i) ms and returns 100 + i: they finish in
 * reverse order (virtual time makes that exact in deterministic mode). */
static void *sleeps_then_returns(void *arg)
{
    intptr_t i = I(arg);
    if (ursa_sleep_for(URSA_MSEC(ORDER_N - i)) != 0)
        return R(-1);
    return R(100 + i);
}

static void *order_scenario(void *arg)
{
    (void)arg;
    ursa_group_t g;
    URSA_SIM_CHECK(ursa_group_init(&g, NULL) == 0);
    ursa_task_t *t[ORDER_N];
    for (intptr_t i = 0; i < ORDER_N; i++)
        URSA_SIM_CHECK(ursa_group_spawn(&g, &t[i], sleeps_then_returns, R(i), NULL) == 0);
    URSA_SIM_CHECK(ursa_group_len(&g) == ORDER_N);
    URSA_SIM_CHECK(ursa_group_join_next(&g, NULL, NULL, URSA_NOW) == -EAGAIN);
    URSA_SIM_CHECK(ursa_group_wait(&g, URSA_NOW) == -EAGAIN);
    for (intptr_t k = ORDER_N - 1; k >= 0; k--) {
        void *res = NULL;
        ursa_task_t *which = NULL;
        URSA_SIM_CHECK(ursa_group_join_next(&g, &res, &which, URSA_NEVER) == 0);
        URSA_SIM_CHECK(I(res) == 100 + k);
        URSA_SIM_CHECK(which == t[k]);
        URSA_SIM_CHECK(ursa_group_len(&g) == (size_t)k);
    }
    URSA_SIM_CHECK(ursa_group_join_next(&g, NULL, NULL, URSA_NEVER) == -ECHILD);
    URSA_SIM_CHECK(ursa_group_destroy(&g) == 0);
    return NULL;
}

TEST_EXPLORE(test_group_join_next_in_finishing_order, order_scenario, NULL)

/* Errors as data: whatever a member returns comes back, the group goes
 * on; group_wait leaves the results to join_next. */
static void *returns_arg(void *arg)
{
    (void)ursa_yield();
    return arg;
}

/* Holds until the gate is set, then returns 0. */
static void *waits_for_gate(void *arg)
{
    return ursa_event_wait(arg, URSA_NEVER) == 0 ? R(0) : R(-1);
}

static void *results_root(void *arg)
{
    (void)arg;
    ursa_group_t g;
    ursa_event_t gate;
    CHECK_EQ(ursa_event_init(&gate, URSA_EVENT_MANUAL, false), 0);
    CHECK_EQ(ursa_group_init(&g, NULL), 0);
    const intptr_t vals[] = {0, -EIO, 7, -ENOENT, 0};
    int n = (int)(sizeof vals / sizeof vals[0]);
    for (int i = 0; i < n; i++)
        CHECK_EQ(ursa_group_spawn(&g, NULL, returns_arg, R(vals[i]), NULL), 0);
    /* The options of ursa_spawn: a name, a fixed worker, migratable. */
    int wk = (int)ursa_worker_count() - 1;
    ursa_spawn_opts_t fixed = {.name = "fixed", URSA_ON_WORKER(wk)};
    ursa_spawn_opts_t roams = {.name = "roams", .migratable = true};
    ursa_task_t *named = NULL;
    CHECK_EQ(ursa_group_spawn(&g, &named, returns_arg, R(0), &fixed), 0);
    CHECK_STR(ursa_task_name(named), "fixed");
    CHECK_EQ(ursa_group_spawn(&g, NULL, returns_arg, R(0), &roams), 0);
    n += 2;
    /* A member that cannot end before the checks: joining it by hand is
     * refused while it runs and after it ended. */
    ursa_task_t *last = NULL;
    CHECK_EQ(ursa_group_spawn(&g, &last, waits_for_gate, &gate, NULL), 0);
    CHECK_EQ(ursa_task_join(last, NULL, URSA_NOW), -EINVAL); /* the group's to join */
    CHECK_EQ(ursa_task_detach(last), -EINVAL);
    CHECK_EQ(ursa_event_set(&gate), 1);
    CHECK_EQ(ursa_group_wait(&g, test_guard_deadline()), 0);
    CHECK_EQ(ursa_group_wait(&g, URSA_NOW), 0);
    CHECK_EQ(ursa_task_join(last, NULL, URSA_NOW), -EINVAL); /* ended: still the group's */
    CHECK_EQ(ursa_task_detach(last), -EINVAL);
    CHECK_EQ(ursa_group_len(&g), n + 1);
    /* Every member, `last` too (it returns 0), in the order they finished:
     * on two workers that need not be the order they were spawned in. */
    intptr_t sum = 0;
    for (int i = 0; i < n + 1; i++) {
        void *res = R(12345);
        CHECK_EQ(ursa_group_join_next(&g, &res, NULL, URSA_NOW), 0); /* all finished */
        sum += I(res);
    }
    CHECK_EQ(sum, 7 - EIO - ENOENT);
    CHECK_EQ(ursa_group_join_next(&g, NULL, NULL, URSA_NOW), -ECHILD);
    CHECK(!ursa_token_is_cancelled(ursa_group_token(&g)));
    CHECK_EQ(ursa_group_destroy(&g), 0);
    CHECK_EQ(ursa_event_destroy(&gate), 0);
    return NULL;
}

static void test_group_errors_are_data_and_wait_keeps_results(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++)
        ASSERT_OK(test_run(workers, results_root, NULL));
}

/* A member ending in the same virtual instant as a joiner's deadline:
 * joined (0) or left in the group (-ETIMEDOUT), never lost. */
static void *sleeps_1ms(void *arg)
{
    (void)arg;
    return R(ursa_sleep_for(URSA_MSEC(1)) == 0 ? 5 : -1);
}

static void *deadline_race_scenario(void *arg)
{
    (void)arg;
    ursa_group_t g;
    URSA_SIM_CHECK(ursa_group_init(&g, NULL) == 0);
    ursa_time_t at = ursa_deadline_in(URSA_MSEC(1));
    URSA_SIM_CHECK(ursa_group_spawn(&g, NULL, sleeps_1ms, NULL, NULL) == 0);
    void *res = NULL;
    int rc = ursa_group_join_next(&g, &res, NULL, at);
    URSA_SIM_CHECK(rc == 0 || rc == -ETIMEDOUT);
    if (rc == -ETIMEDOUT) {
        URSA_SIM_CHECK(ursa_group_len(&g) == 1);
        URSA_SIM_CHECK(ursa_group_join_next(&g, &res, NULL, URSA_NEVER) == 0);
    }
    URSA_SIM_CHECK(I(res) == 5);
    URSA_SIM_CHECK(ursa_group_join_next(&g, NULL, NULL, URSA_NOW) == -ECHILD);
    URSA_SIM_CHECK(ursa_group_destroy(&g) == 0);
    return NULL;
}

TEST_EXPLORE(test_group_member_ending_at_the_deadline_is_never_lost, deadline_race_scenario, NULL)

/* ================= cancel: members blocked in primitives ================= */

enum { K_SLEEP, K_SEM, K_MUTEX, K_EVENT, K_NOTIFY, K_TOKEN, K_INNER_GROUP, K_YIELDS, K_KINDS };

typedef struct blockers {
    ursa_group_t g, inner;
    ursa_token_t other;
    ursa_sem_t sem, inner_gate;
    ursa_mutex_t mu;
    ursa_event_t ev;
    ursa_notify_t no;
    atomic_int started;
} blockers_t;

typedef struct member_arg {
    blockers_t *b;
    int kind;
} member_arg_t;

static void *blocked_member(void *arg)
{
    member_arg_t *a = arg;
    blockers_t *b = a->b;
    atomic_fetch_add(&b->started, 1);
    int rc;
    switch (a->kind) {
    case K_SLEEP:
        rc = ursa_sleep_for(URSA_SEC(3600));
        break;
    case K_SEM: {
        URSA_SCOPED(sem_permit, p);
        rc = ursa_sem_acquire(&b->sem, 1, &p, URSA_NEVER);
        break;
    }
    case K_MUTEX: {
        URSA_SCOPED(mutex_guard, g);
        rc = ursa_mutex_lock(&b->mu, &g, URSA_NEVER);
        break;
    }
    case K_EVENT:
        rc = ursa_event_wait(&b->ev, URSA_NEVER);
        break;
    case K_NOTIFY:
        rc = ursa_notify_wait(&b->no, URSA_NEVER);
        break;
    case K_TOKEN:
        rc = ursa_token_wait(&b->other, URSA_NEVER);
        break;
    case K_INNER_GROUP: {
        /* A nested group under ours (its token a child of ours): its
         * member (on a gate that never opens) is cancelled with us; we
         * join it, then destroy it. */
        if (ursa_group_spawn(&b->inner, NULL, gated_member, &b->inner_gate, NULL) != 0)
            return R(-3000);
        void *res = NULL;
        rc = ursa_group_join_next(&b->inner, &res, NULL, URSA_NEVER);
        if (rc == -ECANCELED) {
            if (ursa_group_destroy(&b->inner) != 0)
                return R(-3001);
        } else if (rc == 0 && I(res) == -ECANCELED) {
            rc = -ECANCELED; /* the inner member saw the cancel first */
            if (ursa_group_destroy(&b->inner) != 0)
                return R(-3002);
        }
        break;
    }
    default:
        for (;;)
            if ((rc = ursa_yield()) != 0)
                break;
        break;
    }
    return R(rc);
}

static void *cancel_root(void *arg)
{
    blockers_t *b = arg;
    URSA_SCOPED(mutex_guard, held);
    CHECK_EQ(ursa_mutex_lock(&b->mu, &held, URSA_NEVER), 0);
    member_arg_t args[K_KINDS];
    for (int k = 0; k < K_KINDS; k++) {
        args[k] = (member_arg_t){b, k};
        CHECK_EQ(ursa_group_spawn(&b->g, NULL, blocked_member, &args[k], NULL), 0);
    }
    YIELD_UNTIL(atomic_load(&b->started) == K_KINDS);
    yield_n(20);
    CHECK_EQ(ursa_group_join_next(&b->g, NULL, NULL, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_group_cancel(&b->g), 1);
    CHECK(ursa_token_is_cancelled(ursa_group_token(&b->inner)));
    for (int k = 0; k < K_KINDS; k++) {
        void *res = NULL;
        CHECK_EQ(ursa_group_join_next(&b->g, &res, NULL, test_guard_deadline()), 0);
        CHECK_EQ(I(res), -ECANCELED);
    }
    CHECK_EQ(ursa_group_join_next(&b->g, NULL, NULL, URSA_NOW), -ECHILD);
    /* Members spawned after the cancel are born cancelled. */
    CHECK_EQ(ursa_group_spawn(&b->g, NULL, blocked_member, &args[K_SEM], NULL), 0);
    void *res = NULL;
    CHECK_EQ(ursa_group_join_next(&b->g, &res, NULL, test_guard_deadline()), 0);
    CHECK_EQ(I(res), -ECANCELED);
    return NULL;
}

static void blockers_init(blockers_t *b)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(ursa_group_init(&b->g, NULL), 0);
    assert_int_equal(ursa_group_init(&b->inner, ursa_group_token(&b->g)), 0);
    assert_int_equal(ursa_token_init(&b->other, NULL), 0);
    assert_int_equal(ursa_sem_init(&b->sem, 0), 0);
    assert_int_equal(ursa_sem_init(&b->inner_gate, 0), 0);
    assert_int_equal(ursa_mutex_init(&b->mu), 0);
    assert_int_equal(ursa_event_init(&b->ev, URSA_EVENT_MANUAL, false), 0);
    assert_int_equal(ursa_notify_init(&b->no), 0);
}

static void test_group_cancel_reaches_members_in_each_primitive(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        blockers_t b;
        blockers_init(&b);
        assert_null(test_run(workers, cancel_root, &b));
        assert_int_equal(ursa_group_destroy(&b.g), 0);
        assert_int_equal(ursa_token_destroy(&b.other), 0);
    }
    for (uint64_t seed = 0; seed < 20; seed++) {
        blockers_t b;
        blockers_init(&b);
        void *res = R(1);
        assert_int_equal(run_det(seed, cancel_root, &b, &res), 0);
        assert_null(res);
        assert_int_equal(ursa_group_destroy(&b.g), 0);
        assert_int_equal(ursa_token_destroy(&b.other), 0);
    }
}

/* A parent token cancels the group; a group made under a cancelled
 * parent is born cancelled. */
static void *sleeper(void *arg)
{
    (void)arg;
    return R(ursa_sleep_for(URSA_SEC(3600)));
}

static void *parent_scenario(void *arg)
{
    (void)arg;
    ursa_token_t shutdown;
    ursa_group_t g, late;
    URSA_SIM_CHECK(ursa_token_init(&shutdown, NULL) == 0);
    URSA_SIM_CHECK(ursa_group_init(&g, &shutdown) == 0);
    for (int i = 0; i < 3; i++)
        URSA_SIM_CHECK(ursa_group_spawn(&g, NULL, sleeper, NULL, NULL) == 0);
    (void)ursa_yield();
    URSA_SIM_CHECK(ursa_token_destroy(&shutdown) == -EBUSY); /* the group's token is its child */
    URSA_SIM_CHECK(ursa_token_cancel(&shutdown) == 1);
    URSA_SIM_CHECK(ursa_group_cancel(&g) == 0); /* cancelled with its parent */
    for (int i = 0; i < 3; i++) {
        void *res = NULL;
        URSA_SIM_CHECK(ursa_group_join_next(&g, &res, NULL, URSA_NEVER) == 0);
        URSA_SIM_CHECK(I(res) == -ECANCELED);
    }
    URSA_SIM_CHECK(ursa_group_init(&late, &shutdown) == 0);
    URSA_SIM_CHECK(ursa_group_spawn(&late, NULL, sleeper, NULL, NULL) == 0);
    void *res = NULL;
    URSA_SIM_CHECK(ursa_group_join_next(&late, &res, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(I(res) == -ECANCELED);
    URSA_SIM_CHECK(ursa_group_destroy(&late) == 0);
    URSA_SIM_CHECK(ursa_group_destroy(&g) == 0);
    URSA_SIM_CHECK(ursa_token_destroy(&shutdown) == 0);
    return NULL;
}

static void test_group_parent_token_cancels_the_group(void **state)
{
    (void)state;
    test_capture_leaks(); /* the refused token destroy is reported */
    test_explore(parent_scenario, NULL);
    assert_true(test_leak_count() > 0);
    ursa_leak_set_hook(NULL, NULL);
}

/* ================= destroy ================= */

typedef struct destroy_case {
    ursa_group_t g;
    atomic_int ran, ended;
} destroy_case_t;

/* Runs until cancelled, then (sometimes) spawns one more member into its
 * own group on the way out: destroy waits for that one too. */
static void *runs_until_cancelled(void *arg)
{
    destroy_case_t *d = arg;
    atomic_fetch_add(&d->ran, 1);
    int rc = ursa_sleep_for(URSA_SEC(3600));
    if (rc == -ECANCELED && atomic_load(&d->ran) < 6 &&
        ursa_group_spawn(&d->g, NULL, runs_until_cancelled, d, NULL) != 0)
        rc = -1;
    atomic_fetch_add(&d->ended, 1);
    return R(rc);
}

static void *destroys_own_group(void *arg)
{
    destroy_case_t *d = arg;
    return R(ursa_group_destroy(&d->g));
}

static void *destroy_scenario(void *arg)
{
    (void)arg;
    destroy_case_t *d = calloc(1, sizeof *d);
    URSA_SIM_CHECK(d != NULL);
    URSA_SIM_CHECK(ursa_group_init(&d->g, NULL) == 0);
    for (int i = 0; i < 4; i++)
        URSA_SIM_CHECK(ursa_group_spawn(&d->g, NULL, runs_until_cancelled, d, NULL) == 0);
    /* A member may not destroy its own group. */
    URSA_SIM_CHECK(ursa_group_spawn(&d->g, NULL, destroys_own_group, d, NULL) == 0);
    /* Destroyed by a cancelled caller: it still waits for every member,
     * and keeps its cancel for its next wait. */
    URSA_SIM_CHECK(ursa_task_cancel(ursa_task_self()) == 0);
    yield_n(3);
    URSA_SIM_CHECK(ursa_group_destroy(&d->g) == 0);
    int ran = atomic_load(&d->ran), ended = atomic_load(&d->ended);
    URSA_SIM_CHECK(ran >= 4 && ran == ended); /* no member outlived it */
    URSA_SIM_CHECK(ursa_task_cancelled());
    URSA_SIM_CHECK(ursa_yield() == -ECANCELED);
    free(d);
    return NULL;
}

static void test_group_destroy_cancels_and_joins_what_is_left(void **state)
{
    (void)state;
    test_explore(destroy_scenario, NULL);
    test_explore_workers(2, destroy_scenario, NULL);
    for (unsigned workers = 1; workers <= 2; workers++)
        assert_null(test_run(workers, destroy_scenario, NULL));
}

/* The group's own member gets -EDEADLK; destroy refuses while someone
 * joins (and changes nothing). */
static void *joins_forever(void *arg)
{
    return R(ursa_group_join_next((ursa_group_t *)arg, NULL, NULL, URSA_NEVER));
}

/* A member of a nested group may not destroy the outer group either. */
static void *nested_destroys_outer(void *arg)
{
    destroy_case_t *d = arg;
    ursa_group_t inner;
    if (ursa_group_init(&inner, ursa_group_token(&d->g)) != 0)
        return R(-1);
    if (ursa_group_spawn(&inner, NULL, destroys_own_group, d, NULL) != 0)
        return R(-2);
    void *res = NULL;
    int rc = ursa_group_join_next(&inner, &res, NULL, URSA_NEVER);
    if (ursa_group_destroy(&inner) != 0)
        return R(-3);
    return R(rc == 0 ? I(res) : -4);
}

static void *destroy_refusals_root(void *arg)
{
    (void)arg;
    destroy_case_t d;
    memset(&d, 0, sizeof d);
    CHECK_EQ(ursa_group_init(&d.g, NULL), 0);
    ursa_task_t *self_destroyer = NULL, *joiner = NULL;
    CHECK_EQ(ursa_group_spawn(&d.g, &self_destroyer, destroys_own_group, &d, NULL), 0);
    void *res = NULL;
    ursa_task_t *which = NULL;
    CHECK_EQ(ursa_group_join_next(&d.g, &res, &which, test_guard_deadline()), 0);
    CHECK_EQ(I(res), -EDEADLK);
    CHECK(which == self_destroyer);
    CHECK_EQ(ursa_group_spawn(&d.g, NULL, nested_destroys_outer, &d, NULL), 0);
    CHECK_EQ(ursa_group_join_next(&d.g, &res, NULL, test_guard_deadline()), 0);
    CHECK_EQ(I(res), -EDEADLK);
    CHECK_EQ(ursa_group_spawn(&d.g, NULL, sleeper, NULL, NULL), 0);
    CHECK_EQ(ursa_spawn(&joiner, joins_forever, &d.g, NULL), 0);
    yield_n(10); /* the joiner queues (nothing finishes: one sleeps an hour) */
    CHECK_EQ(ursa_group_destroy(&d.g), -EBUSY);
    CHECK(!ursa_token_is_cancelled(ursa_group_token(&d.g)));
    CHECK_EQ(ursa_group_len(&d.g), 1);
    CHECK_EQ(ursa_group_cancel(&d.g), 1);
    CHECK_EQ(ursa_task_join(joiner, &res, test_guard_deadline()), 0);
    CHECK_EQ(I(res), 0); /* it joined the cancelled sleeper */
    CHECK_EQ(ursa_group_destroy(&d.g), 0);
    return NULL;
}

static void test_group_destroy_refusals(void **state)
{
    (void)state;
    test_capture_leaks();
    assert_null(test_run(1, destroy_refusals_root, NULL));
    assert_int_equal(test_leak_count(), 1);
    ursa_leak_set_hook(NULL, NULL);
}

/* ================= the raw join_next ================= */

typedef struct raw_case {
    ursa_rt_t *rt;
    ursa_group_t g;
    ursa_sem_t gate;
} raw_case_t;

static void test_group_raw_join_next_hands_a_cancelled_grant_on(void **state)
{
    (void)state;
    raw_case_t c;
    memset(&c, 0, sizeof c);
    assert_int_equal(ursa_rt_new(&c.rt, &(ursa_rt_config_t){.workers = 2}), 0);
    assert_int_equal(ursa_group_init(&c.g, NULL), 0);
    assert_int_equal(ursa_sem_init(&c.gate, 0), 0);
    ursa_task_t *t1 = NULL, *t2 = NULL;
    assert_int_equal(ursa_group_rt_spawn(&c.g, c.rt, &t1, gated_member, &c.gate, NULL), 0);
    assert_int_equal(ursa_group_rt_spawn(&c.g, c.rt, &t2, gated_member, &c.gate, NULL), 0);
    rwaker_t ra, rb, ri;
    rwaker_init(&ra, false);
    rwaker_init(&rb, false);
    rwaker_init(&ri, false);
    ursa_wait_t a, b, idle;
    assert_int_equal(ursa_group_join_next_start(&c.g, &a, rwaker(&ra)), -EINPROGRESS);
    assert_int_equal(ursa_group_join_next_start(&c.g, &b, rwaker(&rb)), -EINPROGRESS);
    assert_int_equal(ursa_group_wait_start(&c.g, &idle, rwaker(&ri)), -EINPROGRESS);
    assert_int_equal(ursa_group_join_next_finish(&c.g, &a, NULL, NULL), -EAGAIN);
    assert_int_equal(ursa_group_wait_finish(&c.g, &idle), -EAGAIN);
    /* One member ends: the oldest waiter (a) is granted. */
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_true(await_ready(&a));
    assert_false(ursa_wait_ready(&b));
    assert_false(ursa_wait_ready(&idle));
    /* a gives it up: b gets it, nothing is lost. */
    assert_int_equal(ursa_wait_cancel(&a), -ECANCELED);
    assert_true(await_ready(&b));
    assert_int_equal(atomic_load(&ra.count), 1);
    assert_int_equal(atomic_load(&rb.count), 1);
    void *res = NULL;
    ursa_task_t *which = NULL;
    assert_int_equal(ursa_group_join_next_finish(&c.g, &b, &res, &which), 0);
    assert_int_equal(I(res), GATED_MEMBER_RES);
    assert_true(which == t1 || which == t2);
    ursa_task_t *left = which == t1 ? t2 : t1;
    /* A grant cancelled with nobody waiting goes back to the group. */
    assert_int_equal(ursa_group_join_next_start(&c.g, &a, rwaker(&ra)), -EINPROGRESS);
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_true(await_ready(&a));
    assert_true(await_ready(&idle)); /* nothing runs now */
    assert_int_equal(ursa_group_wait_finish(&c.g, &idle), 0);
    assert_int_equal(ursa_wait_cancel(&a), -ECANCELED);
    assert_int_equal(ursa_group_len(&c.g), 1);
    /* Started now, it is set aside at once; the group is not destroyed
     * while a member is set aside for a raw join. */
    assert_int_equal(ursa_group_join_next_start(&c.g, &a, rwaker(&ra)), 0);
    test_capture_leaks();
    assert_int_equal(ursa_group_destroy(&c.g), -EBUSY);
    assert_int_equal(test_leak_count(), 1);
    ursa_leak_set_hook(NULL, NULL);
    assert_int_equal(ursa_group_join_next_finish(&c.g, &a, &res, &which), 0);
    assert_true(which == left);
    assert_int_equal(I(res), 42);
    assert_int_equal(ursa_group_join_next_start(&c.g, &a, rwaker(&ra)), -ECHILD);
    assert_int_equal(ursa_group_destroy(&c.g), 0);
    ursa_rt_free(c.rt);
}

/* ================= races: joiners, cancel, spawn ================= */

enum { RACE_N = 6 };

typedef struct jrace {
    ursa_group_t g;
    ursa_sem_t gate;
    atomic_int joined;
    atomic_int seen[RACE_N];
    intptr_t tags[RACE_N];
} jrace_t;

static void *race_member(void *arg)
{
    intptr_t *tag = arg;
    jrace_t *r = (jrace_t *)((char *)(tag - *tag) - offsetof(jrace_t, tags));
    if (*tag % 2) {
        URSA_SCOPED(sem_permit, p);
        int rc = ursa_sem_acquire(&r->gate, 1, &p, URSA_NEVER);
        if (rc)
            return R(-1000 - *tag);
    } else {
        (void)ursa_yield();
    }
    return R(*tag);
}

/* A joiner: join_next until the group is empty; each member seen once. */
static void *race_joiner(void *arg)
{
    jrace_t *r = arg;
    for (;;) {
        void *res = NULL;
        int rc = ursa_group_join_next(&r->g, &res, NULL, URSA_NEVER);
        if (rc == -ECHILD)
            return NULL;
        if (rc)
            return (void *)failf("join_next: %d", rc);
        intptr_t v = I(res);
        intptr_t tag = v >= 0 ? v : -1000 - v;
        if (tag < 0 || tag >= RACE_N || atomic_fetch_add(&r->seen[tag], 1) != 0)
            return (void *)failf("member %ld joined twice or unknown", (long)tag);
        atomic_fetch_add(&r->joined, 1);
    }
}

static void *race_canceller(void *arg)
{
    jrace_t *r = arg;
    (void)ursa_yield();
    return R(ursa_group_cancel(&r->g));
}

static void *race_scenario(void *arg)
{
    (void)arg;
    jrace_t *r = calloc(1, sizeof *r);
    URSA_SIM_CHECK(r != NULL);
    URSA_SIM_CHECK(ursa_group_init(&r->g, NULL) == 0);
    URSA_SIM_CHECK(ursa_sem_init(&r->gate, 0) == 0);
    for (intptr_t i = 0; i < RACE_N; i++) {
        r->tags[i] = i;
        URSA_SIM_CHECK(ursa_group_spawn(&r->g, NULL, race_member, &r->tags[i], NULL) == 0);
    }
    ursa_task_t *j1, *j2, *c;
    URSA_SIM_CHECK(ursa_spawn(&j1, race_joiner, r, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&j2, race_joiner, r, NULL) == 0);
    URSA_SIM_CHECK(ursa_spawn(&c, race_canceller, r, NULL) == 0);
    void *m1 = NULL, *m2 = NULL, *cr = NULL;
    URSA_SIM_CHECK(ursa_task_join(j1, &m1, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_task_join(j2, &m2, URSA_NEVER) == 0);
    URSA_SIM_CHECK(ursa_task_join(c, &cr, URSA_NEVER) == 0);
    if (m1)
        return m1;
    if (m2)
        return m2;
    URSA_SIM_CHECK(I(cr) == 1);
    URSA_SIM_CHECK(atomic_load(&r->joined) == RACE_N);
    URSA_SIM_CHECK(ursa_group_len(&r->g) == 0);
    URSA_SIM_CHECK(ursa_group_destroy(&r->g) == 0);
    free(r);
    return NULL;
}

static void test_group_joiners_and_cancel_explored(void **state)
{
    (void)state;
    test_explore(race_scenario, NULL);
    test_explore_workers(2, race_scenario, NULL);
}

/* On real threads: members spawned from a task and from a plain thread,
 * two joiner tasks, a cancel from a plain thread at a varying moment;
 * every member is joined exactly once, then destroy. */
typedef struct stress {
    ursa_rt_t *rt;
    jrace_t r;
    atomic_int go;
} stress_t;

static void *stress_spawner(void *arg)
{
    stress_t *s = arg;
    for (intptr_t i = 0; i < RACE_N / 2; i++)
        if (ursa_group_spawn(&s->r.g, NULL, race_member, &s->r.tags[i], NULL) != 0)
            return R(-1);
    return NULL;
}

static void test_group_stress_spawn_join_cancel(void **state)
{
    (void)state;
    long rounds = test_scale(300);
    stress_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ursa_rt_new(&s.rt, &(ursa_rt_config_t){.workers = 2}), 0);
    for (long round = 0; round < rounds; round++) {
        jrace_t *r = &s.r;
        memset(r, 0, sizeof *r);
        assert_int_equal(ursa_group_init(&r->g, NULL), 0);
        assert_int_equal(ursa_sem_init(&r->gate, 0), 0);
        for (intptr_t i = 0; i < RACE_N; i++)
            r->tags[i] = i;
        ursa_task_t *sp, *j1, *j2;
        assert_int_equal(ursa_rt_spawn(s.rt, &sp, stress_spawner, &s, NULL), 0);
        for (intptr_t i = RACE_N / 2; i < RACE_N; i++)
            assert_int_equal(ursa_group_rt_spawn(&r->g, s.rt, NULL, race_member, &r->tags[i], NULL), 0);
        void *res = R(1);
        assert_int_equal(ursa_task_join(sp, &res, test_guard_deadline()), 0);
        assert_null(res);
        assert_int_equal(ursa_rt_spawn(s.rt, &j1, race_joiner, r, NULL), 0);
        assert_int_equal(ursa_rt_spawn(s.rt, &j2, race_joiner, r, NULL), 0);
        if (round % 3 == 0)
            assert_int_equal(ursa_sem_add(&r->gate, RACE_N), 0); /* all may end on their own */
        else if (round % 3 == 1)
            sched_yield();
        assert_true(ursa_group_cancel(&r->g) >= 0);
        assert_int_equal(ursa_task_join(j1, &res, test_guard_deadline()), 0);
        if (res)
            fail_msg("%s", (const char *)res);
        assert_int_equal(ursa_task_join(j2, &res, test_guard_deadline()), 0);
        if (res)
            fail_msg("%s", (const char *)res);
        assert_int_equal(atomic_load(&r->joined), RACE_N);
        assert_int_equal(ursa_group_destroy(&r->g), 0);
    }
    ursa_rt_free(s.rt);
}

/* Destroy from a plain thread while members run on two workers. */
static void test_group_destroy_from_a_thread_with_running_members(void **state)
{
    (void)state;
    long rounds = test_scale(100);
    ursa_rt_t *rt;
    assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = 2}), 0);
    for (long round = 0; round < rounds; round++) {
        destroy_case_t d;
        memset(&d, 0, sizeof d);
        assert_int_equal(ursa_group_init(&d.g, NULL), 0);
        for (int i = 0; i < 4; i++)
            assert_int_equal(ursa_group_rt_spawn(&d.g, rt, NULL, runs_until_cancelled, &d, NULL), 0);
        if (round % 2)
            sched_yield();
        assert_int_equal(ursa_group_destroy(&d.g), 0);
        assert_int_equal(atomic_load(&d.ran), atomic_load(&d.ended));
    }
    ursa_rt_free(rt);
}

TEST_MAIN(cmocka_unit_test(test_group_bad_input_and_the_empty_group),
          cmocka_unit_test(test_group_join_next_in_finishing_order),
          cmocka_unit_test(test_group_errors_are_data_and_wait_keeps_results),
          cmocka_unit_test(test_group_member_ending_at_the_deadline_is_never_lost),
          cmocka_unit_test(test_group_cancel_reaches_members_in_each_primitive),
          cmocka_unit_test(test_group_parent_token_cancels_the_group),
          cmocka_unit_test(test_group_destroy_cancels_and_joins_what_is_left),
          cmocka_unit_test(test_group_destroy_refusals),
          cmocka_unit_test(test_group_raw_join_next_hands_a_cancelled_grant_on),
          cmocka_unit_test(test_group_joiners_and_cancel_explored),
          cmocka_unit_test(test_group_stress_spawn_join_cancel),
          cmocka_unit_test(test_group_destroy_from_a_thread_with_running_members))
