/* Select under contention (include/ursa/select.h): selects competing for
 * the same messages and permits never both win one item (plain threads,
 * tasks on two workers, deterministic seeds); a cancel racing a grant
 * either wins the item or leaves it where it was; the choice among ready
 * cases is uniform (a chi-square bound) or in declared order. */
#include "support.h"

#include "task_checks.h"
#include "ursa/select.h"

/* ====================================================================== */
/* two channels, several selecting receivers: every message exactly once  */
/* ====================================================================== */

#define RACE_IDS 4096

typedef struct race {
    ursa_mpmc_receiver_t rx[2];
    ursa_mpmc_sender_t tx[2];
    unsigned total; /* messages sent over both channels */
    atomic_uint seen[RACE_IDS];
    atomic_uint got;
    atomic_int dup;
} race_t;

static const char *race_init(race_t *r, unsigned total)
{
    memset(r, 0, sizeof *r);
    r->total = total < RACE_IDS ? total : RACE_IDS;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(ursa_mpmc_new(&r->rx[i], &r->tx[i], sizeof(uint32_t), 8, NULL), 0);
    return NULL;
}

static void race_fini(race_t *r)
{
    for (int i = 0; i < 2; i++) {
        (void)ursa_mpmc_sender_drop(&r->tx[i]);
        (void)ursa_mpmc_receiver_drop(&r->rx[i]);
    }
}

/* A receiver: selects over both channels until every message was taken
 * (by anyone), counting each one it gets. */
static const char *race_recv(race_t *r)
{
    while (atomic_load(&r->got) < r->total) {
        uint32_t a = 0, b = 0;
        ursa_case_t c[2] = {ursa_case_recv_mpmc(&r->rx[0], &a),
                            ursa_case_recv_mpmc(&r->rx[1], &b)};
        int i = ursa_select(c, 2, 0, ursa_deadline_in(URSA_MSEC(20)));
        if (i == -ETIMEDOUT)
            continue;
        if (i < 0 || c[i].rc != 0)
            return failf("select returned %d (rc %d)", i, i >= 0 ? c[i].rc : 0);
        uint32_t id = i == 0 ? a : b;
        if (id >= r->total || (id & 1) != (uint32_t)i)
            return failf("case %d got id %u", i, id);
        if (atomic_fetch_add(&r->seen[id], 1) != 0)
            atomic_store(&r->dup, 1);
        atomic_fetch_add(&r->got, 1);
    }
    return NULL;
}

/* A sender: ids even on channel 0, odd on channel 1, half of them each
 * (the sender index picks which half). */
static const char *race_send(race_t *r, unsigned who, unsigned senders)
{
    for (uint32_t id = who; id < r->total; id += senders) {
        int rc = ursa_mpmc_send(&r->tx[id & 1], &id, test_guard_deadline());
        if (rc)
            return failf("send %u: %d", id, rc);
    }
    return NULL;
}

static const char *race_verdict(race_t *r)
{
    CHECK_EQ(atomic_load(&r->dup), 0);
    CHECK_EQ(atomic_load(&r->got), r->total);
    for (unsigned id = 0; id < r->total; id++)
        if (atomic_load(&r->seen[id]) != 1)
            return failf("id %u received %u times", id, atomic_load(&r->seen[id]));
    uint32_t x;
    CHECK_EQ(ursa_mpmc_try_recv(&r->rx[0], &x), -EAGAIN);
    CHECK_EQ(ursa_mpmc_try_recv(&r->rx[1], &x), -EAGAIN);
    return NULL;
}

/* ---- plain threads: 3 receivers, 2 senders ---- */

static race_t thread_race;
static const char *thread_race_err[5];

static void *race_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    thread_race_err[i] = i < 3 ? race_recv(&thread_race) : race_send(&thread_race, i - 3, 2);
    return NULL;
}

static void selects_share_nothing_threads(void **state)
{
    (void)state;
    ASSERT_OK(race_init(&thread_race, (unsigned)test_scale(4000)));
    run_threads(5, race_thread);
    for (int i = 0; i < 5; i++)
        ASSERT_OK(thread_race_err[i]);
    ASSERT_OK(race_verdict(&thread_race));
    race_fini(&thread_race);
}

/* ---- tasks (two workers, or one deterministic worker) ---- */

typedef struct race_task {
    race_t *r;
    unsigned who;
} race_task_t;

static void *race_recv_task(void *arg)
{
    return (void *)race_recv(((race_task_t *)arg)->r);
}

static void *race_send_task(void *arg)
{
    race_task_t *t = arg;
    return (void *)race_send(t->r, t->who, 2);
}

static void *race_tasks(void *arg)
{
    unsigned total = (unsigned)(uintptr_t)arg;
    static race_t r; /* one scenario at a time */
    CHECK_OK(race_init(&r, total));
    race_task_t a[5];
    ursa_task_t *t[5];
    for (unsigned i = 0; i < 5; i++) {
        a[i] = (race_task_t){&r, i < 3 ? 0 : i - 3};
        CHECK_EQ(ursa_spawn(&t[i], i < 3 ? race_recv_task : race_send_task, &a[i], NULL), 0);
    }
    const char *err = NULL;
    for (unsigned i = 0; i < 5; i++) {
        void *m = NULL;
        CHECK_EQ(ursa_task_join(t[i], &m, URSA_NEVER), 0);
        if (m && !err)
            err = m;
    }
    if (!err)
        err = race_verdict(&r);
    race_fini(&r);
    return (void *)err;
}

TEST_BODY(selects_share_nothing_tasks,
          test_run(2, race_tasks, (void *)(uintptr_t)test_scale(4000)))

TEST_EXPLORE(selects_share_nothing_explored, race_tasks, (void *)(uintptr_t)24)

/* ---- permits: two one-permit semaphores, selects holding either ---- */

typedef struct sems {
    ursa_sem_t s[2];
    atomic_int inside[2];
    atomic_int bad;
    unsigned rounds;
} sems_t;

static sems_t sems;

static void *sem_thread(void *arg)
{
    (void)arg;
    for (unsigned n = 0; n < sems.rounds; n++) {
        ursa_sem_permit_t p[2];
        memset(p, 0, sizeof p);
        ursa_case_t c[2] = {ursa_case_acquire(&sems.s[0], 1, &p[0]),
                            ursa_case_acquire(&sems.s[1], 1, &p[1])};
        int i = ursa_select(c, 2, 0, URSA_NEVER);
        if (i < 0 || i > 1 || c[i].rc != 0 || p[!i].sem) {
            atomic_store(&sems.bad, 1);
            return NULL;
        }
        if (atomic_fetch_add(&sems.inside[i], 1) != 0)
            atomic_store(&sems.bad, 1); /* two holders of one permit */
        sched_yield();
        atomic_fetch_sub(&sems.inside[i], 1);
        if (ursa_sem_release(&p[i]) != 0)
            atomic_store(&sems.bad, 1);
    }
    return NULL;
}

static void permits_never_doubled(void **state)
{
    (void)state;
    memset(&sems, 0, sizeof sems);
    sems.rounds = (unsigned)test_scale(3000);
    assert_int_equal(ursa_sem_init(&sems.s[0], 1), 0);
    assert_int_equal(ursa_sem_init(&sems.s[1], 1), 0);
    run_threads(4, sem_thread);
    assert_int_equal(atomic_load(&sems.bad), 0);
    /* every permit is back, nobody is queued */
    ursa_sem_permit_t p = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ursa_sem_acquire(&sems.s[i], 1, &p, URSA_NOW), 0);
        assert_int_equal(ursa_sem_release(&p), 0);
        assert_int_equal(ursa_sem_destroy(&sems.s[i]), 0);
    }
}

/* ---- starts that take the claim and lose the permit to a try ----
 *
 * A select's start takes its claim before the permits, under the queue
 * lock; a lock-free try on another thread can still take them in between
 * (the start then drops its case and the select starts over). Such a
 * winner is never woken by anyone: the select must not block on it.
 * Selects race plain tries here; a select that blocked on such a winner
 * would sit until the hang guard, while permits keep coming back. */

static atomic_int tries_stop;
static ursa_sem_t try_sems[2];
static atomic_int try_bad;

static void *try_hammer(void *arg)
{
    unsigned i = (unsigned)(intptr_t)arg;
    while (!atomic_load(&tries_stop)) {
        ursa_sem_permit_t p = {0};
        if (ursa_sem_acquire(&try_sems[i & 1], 1, &p, URSA_NOW) == 0 && ursa_sem_release(&p))
            atomic_store(&try_bad, 1);
        i++;
    }
    return NULL;
}

static void *try_selector(void *arg)
{
    (void)arg;
    for (unsigned n = 0; n < (unsigned)test_scale(3000); n++) {
        ursa_sem_permit_t p[2];
        memset(p, 0, sizeof p);
        ursa_case_t c[2] = {ursa_case_acquire(&try_sems[0], 1, &p[0]),
                            ursa_case_acquire(&try_sems[1], 1, &p[1])};
        int i = ursa_select(c, 2, 0, test_guard_deadline());
        if (i < 0 || i > 1 || c[i].rc || ursa_sem_release(&p[i])) {
            atomic_store(&try_bad, 1);
            break;
        }
    }
    return NULL;
}

static void *try_race_thread(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i < 2) {
        try_selector(NULL);
        atomic_fetch_add(&tries_stop, 1);
    } else {
        try_hammer((void *)i);
    }
    return NULL;
}

static void starts_racing_tries(void **state)
{
    (void)state;
    atomic_store(&tries_stop, 0);
    atomic_store(&try_bad, 0);
    assert_int_equal(ursa_sem_init(&try_sems[0], 1), 0);
    assert_int_equal(ursa_sem_init(&try_sems[1], 1), 0);
    run_threads(4, try_race_thread);
    assert_int_equal(atomic_load(&try_bad), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ursa_sem_destroy(&try_sems[i]), 0);
}

/* ====================================================================== */
/* a cancel racing a grant                                                */
/* ====================================================================== */

typedef struct cancel_race {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    ursa_notify_t n;
    atomic_int in_select;
    int rc;
    uint64_t out;
} cancel_race_t;

static void *cancel_victim(void *arg)
{
    cancel_race_t *c = arg;
    ursa_case_t cs[2] = {ursa_case_recv_mpsc(&c->rx, &c->out), ursa_case_notify(&c->n)};
    atomic_store(&c->in_select, 1);
    c->rc = ursa_select(cs, 2, 0, URSA_NEVER);
    return NULL;
}

/* One round: the victim selects; we send and cancel it in either order.
 * Whatever the outcome, the message is received exactly once. */
static void *cancel_round(void *arg)
{
    unsigned order = (unsigned)(uintptr_t)arg;
    cancel_race_t c;
    memset(&c, 0, sizeof c);
    CHECK_EQ(ursa_mpsc_new(&c.rx, &c.tx, sizeof(uint64_t), 4, NULL), 0);
    CHECK_EQ(ursa_notify_init(&c.n), 0);
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, cancel_victim, &c, NULL), 0);
    YIELD_UNTIL(atomic_load(&c.in_select));
    uint64_t v = 99;
    if (order & 1) {
        CHECK_EQ(ursa_task_cancel(t), 0);
        CHECK_EQ(ursa_mpsc_send(&c.tx, &v, URSA_NOW), 0);
    } else {
        CHECK_EQ(ursa_mpsc_send(&c.tx, &v, URSA_NOW), 0);
        CHECK_EQ(ursa_task_cancel(t), 0);
    }
    CHECK_EQ(ursa_task_join(t, NULL, URSA_NEVER), 0);
    uint64_t o = 0;
    if (c.rc == 0) {
        CHECK_EQ(c.out, 99);
        CHECK_EQ(ursa_mpsc_try_recv(&c.rx, &o), -EAGAIN);
    } else {
        CHECK_EQ(c.rc, -ECANCELED);
        CHECK_EQ(ursa_mpsc_try_recv(&c.rx, &o), 0); /* left where it was */
        CHECK_EQ(o, 99);
    }
    /* the notify case never held anything either */
    CHECK_EQ(ursa_notify_one(&c.n), 1);
    CHECK_EQ(ursa_notify_wait(&c.n, URSA_NOW), 0);
    (void)ursa_mpsc_sender_drop(&c.tx);
    (void)ursa_mpsc_receiver_drop(&c.rx);
    (void)ursa_notify_destroy(&c.n);
    return NULL;
}

static void *cancel_rounds(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < (unsigned)test_scale(400); i++)
        CHECK_OK(cancel_round((void *)(uintptr_t)i));
    return NULL;
}

TEST_BODY(cancel_racing_a_grant_tasks, test_run(2, cancel_rounds, NULL))
TEST_EXPLORE_EACH(cancel_racing_a_grant_explored, cancel_round, 0, 1)

/* ====================================================================== */
/* selects in a group that is being cancelled                             */
/* ====================================================================== */

#define GROUP_MEMBERS 4

typedef struct gsel {
    ursa_mpsc_receiver_t rx[GROUP_MEMBERS];
    ursa_mpsc_sender_t tx[GROUP_MEMBERS];
    ursa_notify_t n;
    atomic_int in_select;
    int rc[GROUP_MEMBERS];
    uint64_t out[GROUP_MEMBERS];
} gsel_t;

typedef struct gmember {
    gsel_t *g;
    int i;
} gmember_t;

static void *gsel_member(void *arg)
{
    gmember_t *m = arg;
    gsel_t *g = m->g;
    ursa_case_t c[2] = {ursa_case_recv_mpsc(&g->rx[m->i], &g->out[m->i]),
                        ursa_case_notify(&g->n)};
    atomic_fetch_add(&g->in_select, 1);
    g->rc[m->i] = ursa_select(c, 2, 0, URSA_NEVER);
    return NULL;
}

/* Members select over their own channel and a shared notify; messages
 * race the group's cancel. Each member either won its message or was
 * cancelled with the message left in its channel; no notification was
 * consumed by anyone. */
static void *group_cancel_round(void *arg)
{
    unsigned round = (unsigned)(uintptr_t)arg;
    static gsel_t g;
    memset(&g, 0, sizeof g);
    CHECK_EQ(ursa_notify_init(&g.n), 0);
    for (int i = 0; i < GROUP_MEMBERS; i++)
        CHECK_EQ(ursa_mpsc_new(&g.rx[i], &g.tx[i], sizeof(uint64_t), 2, NULL), 0);
    ursa_group_t grp;
    CHECK_EQ(ursa_group_init(&grp, NULL), 0);
    gmember_t m[GROUP_MEMBERS];
    for (int i = 0; i < GROUP_MEMBERS; i++) {
        m[i] = (gmember_t){&g, i};
        CHECK_EQ(ursa_group_spawn(&grp, NULL, gsel_member, &m[i], NULL), 0);
    }
    if (round & 1)
        YIELD_UNTIL(atomic_load(&g.in_select) == GROUP_MEMBERS);
    for (int i = 0; i < GROUP_MEMBERS; i++) {
        uint64_t v = 100 + (uint64_t)i;
        if ((round >> 1) % GROUP_MEMBERS == (unsigned)i)
            CHECK_EQ(ursa_group_cancel(&grp), 1); /* in the middle of the sends */
        CHECK_EQ(ursa_mpsc_send(&g.tx[i], &v, URSA_NOW), 0);
    }
    CHECK_EQ(ursa_group_destroy(&grp), 0); /* joins every member */
    for (int i = 0; i < GROUP_MEMBERS; i++) {
        uint64_t o = 0;
        if (g.rc[i] == 0) {
            CHECK_EQ(g.out[i], 100 + (uint64_t)i);
            CHECK_EQ(ursa_mpsc_try_recv(&g.rx[i], &o), -EAGAIN);
        } else {
            CHECK_EQ(g.rc[i], -ECANCELED);
            CHECK_EQ(ursa_mpsc_try_recv(&g.rx[i], &o), 0); /* left where it was */
            CHECK_EQ(o, 100 + (uint64_t)i);
        }
        (void)ursa_mpsc_sender_drop(&g.tx[i]);
        (void)ursa_mpsc_receiver_drop(&g.rx[i]);
    }
    CHECK_EQ(ursa_notify_one(&g.n), 1); /* nobody left queued on it */
    CHECK_EQ(ursa_notify_wait(&g.n, URSA_NOW), 0);
    (void)ursa_notify_destroy(&g.n);
    return NULL;
}

static void *group_cancel_rounds(void *arg)
{
    (void)arg;
    for (unsigned r = 0; r < (unsigned)test_scale(200); r++)
        CHECK_OK(group_cancel_round((void *)(uintptr_t)r));
    return NULL;
}

TEST_BODY(selects_in_a_cancelled_group, test_run(2, group_cancel_rounds, NULL))
TEST_EXPLORE_EACH(selects_in_a_cancelled_group_explored, group_cancel_round, 0, 1, 2, 3, 5, 7)

/* ====================================================================== */
/* fairness                                                               */
/* ====================================================================== */

/* Every case ready: each index wins about equally often. Chi-square with
 * k-1 degrees of freedom against the 0.1% critical value: a fair choice
 * fails it one run in a thousand at most (the draw is a fixed xorshift
 * sequence per thread, so in practice never or always). */
static void random_choice_is_uniform(void **state)
{
    (void)state;
    enum { K = 4 };
    static const double crit_999[K] = {0, 10.83, 13.82, 16.27}; /* df 1..3 */
    ursa_event_t e[K];
    ursa_case_t c[K];
    for (int i = 0; i < K; i++) {
        assert_int_equal(ursa_event_init(&e[i], URSA_EVENT_MANUAL, true), 0);
        c[i] = ursa_case_event(&e[i]);
    }
    for (int k = 2; k <= K; k++) {
        unsigned runs = (unsigned)test_scale(8000), count[K] = {0};
        for (unsigned r = 0; r < runs; r++) {
            int i = ursa_select(c, (size_t)k, 0, URSA_NEVER);
            assert_true(i >= 0 && i < k);
            count[i]++;
        }
        double expect = (double)runs / k, chi2 = 0;
        for (int i = 0; i < k; i++)
            chi2 += (count[i] - expect) * (count[i] - expect) / expect;
        if (chi2 > crit_999[k - 1])
            fail_msg("k=%d: chi2 %.2f over %.2f (counts %u %u %u %u)", k, chi2,
                     crit_999[k - 1], count[0], count[1], count[2], count[3]);
    }
    /* The same when the array's last select had to wait, so that this
     * one skips its try pass and its start pass finds them ready. */
    {
        unsigned runs = (unsigned)test_scale(4000), count[K] = {0};
        for (unsigned r = 0; r < runs; r++) {
            for (int i = 0; i < K; i++)
                assert_true(ursa_event_reset(&e[i]) >= 0);
            assert_int_equal(ursa_select(c, K, 0, ursa_now()), -ETIMEDOUT); /* waited */
            for (int i = 0; i < K; i++)
                assert_true(ursa_event_set(&e[i]) >= 0);
            int i = ursa_select(c, K, 0, URSA_NEVER);
            assert_true(i >= 0 && i < K);
            count[i]++;
        }
        double expect = (double)runs / K, chi2 = 0;
        for (int i = 0; i < K; i++)
            chi2 += (count[i] - expect) * (count[i] - expect) / expect;
        if (chi2 > crit_999[K - 1])
            fail_msg("after a wait: chi2 %.2f over %.2f (counts %u %u %u %u)", chi2,
                     crit_999[K - 1], count[0], count[1], count[2], count[3]);
    }
    /* declared order: the first ready one, always */
    for (int r = 0; r < 100; r++)
        assert_int_equal(ursa_select(c, K, URSA_SELECT_ORDERED, URSA_NEVER), 0);
    assert_true(ursa_event_reset(&e[0]) >= 0);
    assert_true(ursa_event_reset(&e[1]) >= 0);
    for (int r = 0; r < 100; r++)
        assert_int_equal(ursa_select(c, K, URSA_SELECT_ORDERED, URSA_NEVER), 2);
    /* and random among the ready ones only */
    unsigned two = 0;
    for (int r = 0; r < 1000; r++) {
        int i = ursa_select(c, K, 0, URSA_NEVER);
        assert_true(i == 2 || i == 3);
        two += i == 2;
    }
    assert_true(two > 400 && two < 600); /* binomial(1000, 1/2): 6.3 sigma */
    for (int i = 0; i < K; i++)
        assert_int_equal(ursa_event_destroy(&e[i]), 0);
}

/* Deterministic mode: the choice among ready cases comes from the seed's
 * stream, so a seed replays it. */
static char seq_buf[2][64];
static int seq_run;

static void *choices_scenario(void *arg)
{
    (void)arg;
    ursa_event_t e[4];
    ursa_case_t c[4];
    for (int i = 0; i < 4; i++) {
        if (ursa_event_init(&e[i], URSA_EVENT_MANUAL, true))
            return (void *)"event init";
        c[i] = ursa_case_event(&e[i]);
    }
    for (int r = 0; r < 48; r++) {
        int i = ursa_select(c, 4, 0, URSA_NEVER);
        if (i < 0)
            return (void *)"select failed";
        seq_buf[seq_run][r] = (char)('0' + i);
    }
    for (int i = 0; i < 4; i++)
        (void)ursa_event_destroy(&e[i]);
    return NULL;
}

static void a_seed_replays_the_choices(void **state)
{
    (void)state;
    for (seq_run = 0; seq_run < 2; seq_run++) {
        uint64_t failed = 0;
        assert_int_equal(ursa_sim_explore(&(ursa_rt_config_t){.workers = 1}, choices_scenario,
                                          NULL, 42, 1, &failed),
                         0);
    }
    assert_memory_equal(seq_buf[0], seq_buf[1], 48);
    assert_true(strspn(seq_buf[0], "0") < 48); /* and it is a choice */
}

TEST_MAIN(cmocka_unit_test(a_seed_replays_the_choices),
          cmocka_unit_test(selects_share_nothing_threads),
          cmocka_unit_test(selects_share_nothing_tasks),
          cmocka_unit_test(selects_share_nothing_explored),
          cmocka_unit_test(permits_never_doubled), cmocka_unit_test(starts_racing_tries),
          cmocka_unit_test(cancel_racing_a_grant_tasks),
          cmocka_unit_test(cancel_racing_a_grant_explored),
          cmocka_unit_test(selects_in_a_cancelled_group),
          cmocka_unit_test(selects_in_a_cancelled_group_explored),
          cmocka_unit_test(random_choice_is_uniform))
