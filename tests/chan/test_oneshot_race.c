/* oneshot under races: close racing send, a blocked receiver against
 * send / drop / its deadline, closed() against close and drop (over
 * seeds); close racing send across workers and threads; a raw recv
 * cancelled while a send lands (the value stays, and the cancel outlives
 * the sender's last touch). */
#include "support.h"

#include "queue_peek.h" /* internal: a queued wait */
#include "task_checks.h"
#include "ursa/oneshot.h"

/* ====================================================================== */
/* deterministic scenarios                                                */
/* ====================================================================== */

typedef struct race {
    ursa_oneshot_t os;
    int send_rc, val;
    int yields_tx, yields_rx;
    int close_kind; /* 0 close, 1 receiver_drop */
} race_t;

static void *race_sender(void *arg)
{
    race_t *r = arg;
    yield_n(r->yields_tx);
    r->val = 1234;
    r->send_rc = ursa_oneshot_send(&r->os, &r->val);
    return NULL;
}

/* close racing send: exactly one of (value received) or (send -EPIPE with
 * the value still the sender's). Every seed runs every yield pattern, so a
 * failing seed replays exactly. */
static const char *close_race_one(race_t *r, int ytx, int yrx)
{
    r->yields_tx = ytx;
    r->yields_rx = yrx;
    URSA_SIM_CHECK(ursa_oneshot_init(&r->os, sizeof(int), NULL) == 0);
    r->send_rc = 1;
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, race_sender, r, NULL) == 0);
    yield_n(r->yields_rx);
    URSA_SIM_CHECK(ursa_oneshot_close(&r->os) == 0);
    int out = 0;
    int rc = ursa_oneshot_try_recv(&r->os, &out);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(r->send_rc == 0 || r->send_rc == -EPIPE);
    if (r->send_rc == 0) {
        URSA_SIM_CHECK(rc == 0);
        URSA_SIM_CHECK(out == 1234);
    } else {
        URSA_SIM_CHECK(rc == -EPIPE);
        URSA_SIM_CHECK(r->val == 1234); /* still the sender's */
    }
    URSA_SIM_CHECK(ursa_oneshot_try_recv(&r->os, &out) == (rc == 0 ? -EALREADY : -EPIPE));
    return NULL;
}

static void *close_race_sim(void *arg)
{
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            CHECK_OK(close_race_one(arg, a, b));
    return NULL;
}

static race_t close_race;
TEST_EXPLORE(test_oneshot_close_racing_send_keeps_the_value_or_refuses_it_over_seeds,
             close_race_sim, &close_race)

/* A blocked receiver vs. send / sender drop / its own deadline. */
typedef struct rsim {
    ursa_oneshot_t os;
    int what; /* 0 send, 1 drop */
    int rx_rc, out;
    ursa_time_t dl;
} rsim_t;

static void *rsim_rx(void *arg)
{
    rsim_t *s = arg;
    s->rx_rc = ursa_oneshot_recv(&s->os, &s->out, s->dl);
    return NULL;
}

static const char *recv_one(rsim_t *s, unsigned r)
{
    s->what = (int)(r & 1);
    s->dl = (r & 2) ? URSA_NEVER : ursa_deadline_in(URSA_MSEC(1));
    URSA_SIM_CHECK(ursa_oneshot_init(&s->os, sizeof(int), NULL) == 0);
    s->rx_rc = 1;
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, rsim_rx, s, NULL) == 0);
    yield_n(r >> 2);
    if (r & 4)
        (void)ursa_sleep_for(URSA_MSEC(2)); /* the deadline (if any) passes */
    int v = 77;
    int src = s->what ? ursa_oneshot_sender_drop(&s->os) : ursa_oneshot_send(&s->os, &v);
    URSA_SIM_CHECK(src == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    int out = 0;
    int left = ursa_oneshot_try_recv(&s->os, &out);
    if (s->rx_rc == 0) {
        URSA_SIM_CHECK(s->what == 0 && s->out == 77);
        URSA_SIM_CHECK(left == -EALREADY);
    } else if (s->rx_rc == -EPIPE) {
        URSA_SIM_CHECK(s->what == 1);
        URSA_SIM_CHECK(left == -EPIPE);
    } else {
        URSA_SIM_CHECK(s->rx_rc == -ETIMEDOUT);
        URSA_SIM_CHECK(s->dl != URSA_NEVER);
        /* nothing lost: the value (or the close) is still there */
        URSA_SIM_CHECK(s->what ? left == -EPIPE : (left == 0 && out == 77));
    }
    URSA_SIM_CHECK(!peek_oneshot_waiting(&s->os));
    return NULL;
}

static void *recv_sim(void *arg)
{
    for (unsigned r = 0; r < 8; r++)
        CHECK_OK(recv_one(arg, r));
    return NULL;
}

static rsim_t recv_race;
TEST_EXPLORE(test_oneshot_blocked_recv_against_send_drop_or_deadline_loses_nothing_over_seeds,
             recv_sim, &recv_race)

typedef struct tk {
    ursa_oneshot_t *os;
    int val;
    int rc;
} tk_t;

/* closed() in a task wakes when the receiver closes or drops. */
static void *closed_sim_tx(void *arg)
{
    tk_t *k = arg;
    k->rc = ursa_oneshot_closed(k->os, URSA_NEVER);
    if (k->rc == 0)
        k->val = ursa_oneshot_send(k->os, &k->val);
    return NULL;
}

static const char *closed_one(unsigned r)
{
    ursa_oneshot_t os;
    URSA_SIM_CHECK(ursa_oneshot_init(&os, sizeof(int), NULL) == 0);
    tk_t k = {&os, 5, -1};
    ursa_task_t *t = NULL;
    URSA_SIM_CHECK(ursa_spawn(&t, closed_sim_tx, &k, NULL) == 0);
    yield_n((unsigned)(r / 2));
    URSA_SIM_CHECK((r & 1 ? ursa_oneshot_receiver_drop(&os) : ursa_oneshot_close(&os)) == 0);
    URSA_SIM_CHECK(ursa_task_join(t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(k.rc == 0);
    URSA_SIM_CHECK(k.val == -EPIPE);
    return NULL;
}

static void *closed_sim(void *arg)
{
    (void)arg;
    for (unsigned r = 0; r < 6; r++)
        CHECK_OK(closed_one(r));
    return NULL;
}

TEST_EXPLORE(test_oneshot_closed_wakes_on_close_or_receiver_drop_over_seeds, closed_sim, NULL)

/* ====================================================================== */
/* stress: close vs send across workers and threads                       */
/* ====================================================================== */

#define SLOTS 64

typedef struct stress {
    ursa_oneshot_t os[SLOTS];
    atomic_int phase[SLOTS]; /* round number each slot is ready for */
    int send_rc[SLOTS];
    long rounds;
    atomic_long received, refused;
    atomic_int fails;
} stress_t;

/* One round window is enough: slots are reused only after both finished.
 * (The sender waits for its phase, the receiver for the sender's.) Either
 * side runs as a task or on a plain thread. */

/* Waits until slot i is ready for `phase`; false (a failure counted)
 * after the hang guard. */
static bool await_phase(stress_t *s, int i, int phase)
{
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    for (unsigned long k = 0; atomic_load(&s->phase[i]) != phase; k++) {
        if (mono_ns() > give_up) {
            atomic_fetch_add(&s->fails, 1);
            return false;
        }
        wait_step(k);
    }
    return true;
}

/* Sender side: for each round, for each slot, send (maybe drop). */
static void *stress_tx(void *arg)
{
    stress_t *s = arg;
    for (long r = 0; r < s->rounds; r++) {
        int i = (int)(r % SLOTS);
        if (!await_phase(s, i, (int)(2 * r + 1)))
            return NULL;
        int v = (int)r;
        if ((r % 7) == 3)
            s->send_rc[i] = ursa_oneshot_sender_drop(&s->os[i]) == 0 ? 1 : -999;
        else {
            s->send_rc[i] = ursa_oneshot_send(&s->os[i], &v);
            if (v != (int)r)
                atomic_fetch_add(&s->fails, 1);
        }
        atomic_store(&s->phase[i], (int)(2 * r + 2));
    }
    return NULL;
}

/* Receiver side: init a slot, hand it over, then recv or close+try_recv. */
static void *stress_rx(void *arg)
{
    stress_t *s = arg;
    for (long r = 0; r < s->rounds; r++) {
        int i = (int)(r % SLOTS);
        ursa_oneshot_init(&s->os[i], sizeof(int), NULL);
        atomic_store(&s->phase[i], (int)(2 * r + 1));
        int out = -1, rc;
        if (r % 3 == 0) {
            rc = ursa_oneshot_recv(&s->os[i], &out, URSA_NEVER);
        } else {
            (void)ursa_yield(); /* off-task: sched_yield */
            ursa_oneshot_close(&s->os[i]);
            rc = ursa_oneshot_try_recv(&s->os[i], &out);
            if (rc == -EAGAIN)
                atomic_fetch_add(&s->fails, 1); /* closed: never "would block" */
        }
        if (!await_phase(s, i, (int)(2 * r + 2)))
            return NULL;
        int src = s->send_rc[i];
        bool ok;
        if (src == 1) /* dropped */
            ok = rc == -EPIPE;
        else if (src == 0)
            ok = rc == 0 && out == (int)r;
        else
            ok = src == -EPIPE && rc == -EPIPE;
        if (!ok)
            atomic_fetch_add(&s->fails, 1);
        if (rc == 0)
            atomic_fetch_add(&s->received, 1);
        else
            atomic_fetch_add(&s->refused, 1);
        ursa_oneshot_receiver_drop(&s->os[i]);
    }
    return NULL;
}

static void stress_init(stress_t *s, long rounds)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < SLOTS; i++)
        atomic_init(&s->phase[i], 0);
    s->rounds = rounds;
}

/* rx on worker 1 (task) vs tx on worker 0 (task), then threads both ways. */
static void *stress_workers(void *arg)
{
    stress_t *s = arg;
    ursa_task_t *rx = spawn_on(1, stress_rx, s, "rx");
    stress_tx(s);
    CHECK_OK(join_task(rx));
    return NULL;
}

static void test_oneshot_close_racing_send_keeps_the_value_or_refuses_it_on_threads(void **state)
{
    (void)state;
    static stress_t s;
    long rounds = test_scale(30000);
    stress_init(&s, rounds);
    ASSERT_OK(test_run(2, stress_workers, &s));
    assert_int_equal(atomic_load(&s.fails), 0);
    assert_int_equal(atomic_load(&s.received) + atomic_load(&s.refused), rounds);

    /* task sender, plain-thread receiver */
    stress_init(&s, rounds);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stress_rx, &s), 0);
    test_run(1, stress_tx, &s);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&s.fails), 0);
    assert_int_equal(atomic_load(&s.received) + atomic_load(&s.refused), rounds);

    /* two plain threads */
    stress_init(&s, rounds);
    assert_int_equal(pthread_create(&th, NULL, stress_tx, &s), 0);
    stress_rx(&s);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&s.fails), 0);
    assert_int_equal(atomic_load(&s.received) + atomic_load(&s.refused), rounds);
}

/* ====================================================================== */
/* a raw recv cancelled while a send lands                                */
/* ====================================================================== */

/* The send publishes with one CAS and only then takes the lock to decide
 * the queued waiter; a cancel in between must wait for that decision
 * (the sender still touches the channel). Either way the value stays
 * receivable, the waker runs at most once, and destroy is clean. */
typedef struct cancel_race {
    ursa_oneshot_t os;
    atomic_long go;   /* round the sender may send in */
    atomic_long sent; /* rounds the sender finished */
    long rounds;
    atomic_int fails;
} cancel_race_t;

static void *cancel_race_tx(void *arg)
{
    cancel_race_t *c = arg;
    for (long r = 1; r <= c->rounds; r++) {
        ursa_time_t since = mono_ns(), give_up = since + test_hang_guard();
        while (atomic_load(&c->go) != r) {
            if (mono_ns() > give_up) {
                atomic_fetch_add(&c->fails, 1);
                return NULL;
            }
            spin_then_yield(&since);
        }
        long v = r;
        if (ursa_oneshot_send(&c->os, &v) != 0)
            atomic_fetch_add(&c->fails, 1);
        atomic_store(&c->sent, r);
    }
    return NULL;
}

static void test_oneshot_raw_recv_cancel_racing_a_send_keeps_the_value_on_threads(void **state)
{
    (void)state;
    static cancel_race_t c;
    c.rounds = test_scale(20000);
    atomic_init(&c.go, 0);
    atomic_init(&c.sent, 0);
    atomic_init(&c.fails, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_race_tx, &c), 0);
    long granted = 0;
    for (long r = 1; r <= c.rounds; r++) {
        assert_int_equal(ursa_oneshot_init(&c.os, sizeof(long), NULL), 0);
        cw_t cw;
        cw_init(&cw);
        ursa_wait_t w;
        assert_int_equal(ursa_oneshot_recv_start(&c.os, &w, cw_waker(&cw)), -EINPROGRESS);
        atomic_store(&c.go, r);
        for (long k = 0; k < r % 8; k++) /* vary where the cancel lands */
            ursa__cpu_relax();
        bool ready = ursa_wait_ready(&w);
        assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
        int calls = atomic_load(&cw.calls);
        if (ready)
            assert_int_equal(calls, 1);
        assert_true(calls <= 1);
        granted += calls;
        while (atomic_load(&c.sent) != r)
            sched_yield();
        long out = 0;
        assert_int_equal(ursa_oneshot_try_recv(&c.os, &out), 0);
        assert_int_equal(out, r);
        assert_int_equal(ursa_oneshot_destroy(&c.os), 0);
        assert_int_equal(atomic_load(&cw.calls), calls); /* no late wake */
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&c.fails), 0);
    print_message("cancel/send race: %ld of %ld waits were granted first\n", granted, c.rounds);
}

/* Regression (review): a raw recv wait cancelled while a send lands must
 * not return before the sender's last touch of the oneshot. The receiver
 * then takes the value, destroys and re-inits the oneshot in place and
 * starts a new wait: a stale sender used to "grant" that new wait. */
static ursa_oneshot_t life_os;

static _Atomic int life_go, life_done;

static void life_nop(void *c)
{
    (void)c;
}

static void life_spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

static void *life_sender(void *a)
{
    (void)a;
    unsigned seed = 1;
    for (int k = 1;; k++) {
        int g;
        ursa_time_t since = mono_ns();
        while ((g = atomic_load(&life_go)) != k) {
            if (g < 0)
                return NULL;
            spin_then_yield(&since);
        }
        life_spin(rand_r(&seed) % 64);
        int v = k;
        (void)ursa_oneshot_send(&life_os, &v);
        atomic_store(&life_done, k);
    }
}

static void test_oneshot_cancelled_recv_outlives_the_senders_last_touch(void **state)
{
    (void)state;
    atomic_store(&life_go, 0);
    atomic_store(&life_done, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, life_sender, NULL), 0);
    ursa_waker_t wk = {life_nop, NULL};
    unsigned seed = 2;
    long rounds = test_scale(20000), bad = 0;
    for (int k = 1; k <= rounds; k++) {
        assert_int_equal(ursa_oneshot_init(&life_os, sizeof(int), NULL), 0);
        ursa_wait_t w, w2;
        assert_int_equal(ursa_oneshot_recv_start(&life_os, &w, wk), -EINPROGRESS);
        atomic_store(&life_go, k);
        life_spin(rand_r(&seed) % 64);
        bool granted = ursa_wait_ready(&w);
        int out;
        if (ursa_wait_cancel(&w) == -ECANCELED && !granted &&
            ursa_oneshot_try_recv(&life_os, &out) == 0) {
            assert_int_equal(out, k);
            assert_int_equal(ursa_oneshot_destroy(&life_os), 0);
            assert_int_equal(ursa_oneshot_init(&life_os, sizeof(int), NULL), 0);
            assert_int_equal(ursa_oneshot_recv_start(&life_os, &w2, wk), -EINPROGRESS);
            for (int i = 0; i < 2000 && !ursa_wait_ready(&w2); i++)
                life_spin(8);
            if (ursa_wait_ready(&w2))
                bad++; /* granted with nothing sent this round */
            else
                (void)ursa_wait_cancel(&w2);
        }
        while (atomic_load(&life_done) != k)
            sched_yield();
        (void)ursa_oneshot_destroy(&life_os);
    }
    atomic_store(&life_go, -1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(bad, 0);
}

TEST_MAIN(cmocka_unit_test(test_oneshot_close_racing_send_keeps_the_value_or_refuses_it_over_seeds),
          cmocka_unit_test(test_oneshot_blocked_recv_against_send_drop_or_deadline_loses_nothing_over_seeds),
          cmocka_unit_test(test_oneshot_closed_wakes_on_close_or_receiver_drop_over_seeds),
          cmocka_unit_test(test_oneshot_close_racing_send_keeps_the_value_or_refuses_it_on_threads),
          cmocka_unit_test(test_oneshot_raw_recv_cancel_racing_a_send_keeps_the_value_on_threads),
          cmocka_unit_test(test_oneshot_cancelled_recv_outlives_the_senders_last_touch))
