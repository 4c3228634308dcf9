/* ursa_once_cell_t's initializer role: a failed init hands it to the
 * oldest waiter (one only), an initializer cancelled at random points is
 * taken over (over seeds), the handover racing the heir's timeout or
 * cancel (over seeds and on threads), and tasks on two workers with plain
 * threads racing get_or_init over many cells. */

#include "queue_peek.h" /* the queued callers */
#include "support.h"
#include "ursa/once.h"

#include "checked_alloc.h"
#include "raw_checks.h"
#include <sys/prctl.h>

/* Like test_explore, for a scenario explored in several modes: each mode
 * gets a share of the seeds (from its own range), so the total stays about
 * TEST_SEEDS runs per test. */
static void explore_mode(ursa_task_fn_t scenario, intptr_t mode, unsigned nmodes)
{
    unsigned count = TEST_SEEDS / nmodes * 2;
    if (count < 2)
        count = 2;
    uint64_t seed = 0;
    int rc = ursa_sim_explore(NULL, scenario, (void *)mode, 1 + (uint64_t)mode * 100000, count,
                              &seed);
    if (rc)
        fail_msg("scenario (mode %ld) failed at seed %llu: %s", (long)mode,
                 (unsigned long long)seed, ursa_strerror(rc));
}

static int init_value(void *arg, void **outv)
{
    *outv = arg;
    return 0;
}

/* ---- init failure: the oldest waiter (only) takes over ---- */

#define FH_N 5

static struct {
    ursa_once_cell_t c;
    int values[FH_N];
    int arrival[FH_N], narr;
    int started[FH_N], nstarted;
    int inside, max_inside;
    int fail_first; /* how many initializers fail */
    int rc[FH_N];
    void *got[FH_N];
} fh;

static int fh_init(void *arg, void **outv)
{
    int id = *(int *)arg;
    fh.started[fh.nstarted++] = id;
    if (++fh.inside > fh.max_inside)
        fh.max_inside = fh.inside;
    /* Others queue meanwhile; with one worker, a yield is a scheduling point. */
    for (int i = 0; i < 3; i++)
        (void)ursa_sleep_for(URSA_MSEC(1));
    int n = fh.nstarted;
    fh.inside--;
    if (n <= fh.fail_first)
        return -EIO;
    *outv = &fh.values[id];
    return 0;
}

static void *fh_task(void *arg)
{
    int id = *(int *)arg;
    fh.arrival[fh.narr++] = id;
    fh.rc[id] = ursa_once_get_or_init(&fh.c, fh_init, arg, &fh.got[id], URSA_NEVER);
    return NULL;
}

static void *fh_root(void *arg)
{
    static int ids[FH_N];
    memset(&fh, 0, sizeof fh);
    fh.fail_first = (int)(intptr_t)arg;
    URSA_SIM_CHECK(ursa_once_init(&fh.c, NULL) == 0);
    ursa_task_t *t[FH_N];
    for (int i = 0; i < FH_N; i++) {
        ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], fh_task, &ids[i], "fh", -1) == 0);
    }
    /* Everybody arrived: one initializer, the rest queued in order. */
    YIELD_UNTIL(fh.narr == FH_N && fh.nstarted >= 1 && peek_once_inits(&fh.c) == FH_N - 1);
    for (int i = 0; i < FH_N; i++)
        JOIN_OK(t[i]);
    URSA_SIM_CHECK(fh.max_inside == 1);
    int expect_inits = fh.fail_first < FH_N ? fh.fail_first + 1 : FH_N;
    URSA_SIM_CHECK(fh.nstarted == expect_inits);
    /* Initializers ran in arrival order: FIFO handover. */
    for (int i = 0; i < fh.nstarted; i++)
        URSA_SIM_CHECK(fh.started[i] == fh.arrival[i]);
    for (int k = 0; k < FH_N; k++) {
        int id = fh.arrival[k];
        if (k < fh.fail_first) {
            URSA_SIM_CHECK(fh.rc[id] == -EIO); /* its own init failed */
            URSA_SIM_CHECK(fh.got[id] == NULL);
        } else {
            URSA_SIM_CHECK(fh.rc[id] == 0);
            URSA_SIM_CHECK(fh.got[id] == &fh.values[fh.arrival[fh.fail_first]]);
        }
    }
    URSA_SIM_CHECK(ursa_once_is_set(&fh.c) == (fh.fail_first < FH_N));
    URSA_SIM_CHECK(peek_once_inits(&fh.c) == 0);
    URSA_SIM_CHECK(ursa_once_destroy(&fh.c) == 0);
    return NULL;
}

static void test_once_failed_init_hands_the_role_to_the_oldest_waiter_over_seeds(void **state)
{
    (void)state;
    for (intptr_t fails = 0; fails <= FH_N; fails++)
        explore_mode(fh_root, fails, FH_N + 1);
    assert_int_equal(test_leak_count(), 0);
}

/* Handover wakes one waiter, not all: with the initializer failing, the
 * queued waiters other than the head stay queued (and blocked). */
static struct {
    ursa_once_cell_t c;
    int phase; /* 0 first init running, 1 released to fail */
    int second_started;
    int release_second;
    int done;
} wo;

static int wo_first_init(void *arg, void **outv)
{
    (void)arg;
    (void)outv;
    while (!wo.phase)
        if (ursa_sleep_for(URSA_MSEC(1)))
            return -ECANCELED;
    return -EIO;
}

static int wo_next_init(void *arg, void **outv)
{
    wo.second_started++;
    while (!wo.release_second)
        if (ursa_sleep_for(URSA_MSEC(1)))
            return -ECANCELED;
    *outv = arg;
    return 0;
}

static void *wo_first(void *arg)
{
    (void)arg;
    void *v;
    URSA_SIM_CHECK(ursa_once_get_or_init(&wo.c, wo_first_init, NULL, &v, URSA_NEVER) == -EIO);
    return NULL;
}

static void *wo_other(void *arg)
{
    void *v = NULL;
    URSA_SIM_CHECK(ursa_once_get_or_init(&wo.c, wo_next_init, arg, &v, URSA_NEVER) == 0);
    URSA_SIM_CHECK(v == &wo);
    wo.done++;
    return NULL;
}

static void *wo_root(void *arg)
{
    (void)arg;
    memset(&wo, 0, sizeof wo);
    URSA_SIM_CHECK(ursa_once_init(&wo.c, NULL) == 0);
    ursa_task_t *f, *o[4];
    URSA_SIM_CHECK(spawn_named(&f, wo_first, NULL, "first", -1) == 0);
    YIELD_UNTIL(atomic_load(&wo.c.state) == 1);
    for (int i = 0; i < 4; i++)
        URSA_SIM_CHECK(spawn_named(&o[i], wo_other, &wo, "other", -1) == 0);
    YIELD_UNTIL(peek_once_inits(&wo.c) == 4);
    wo.phase = 1;
    JOIN_OK(f);
    YIELD_UNTIL(wo.second_started == 1);
    /* Let everything runnable run: still exactly one new initializer and
     * three waiters queued. */
    for (int i = 0; i < 20; i++)
        (void)ursa_sleep_for(URSA_USEC(100));
    URSA_SIM_CHECK(wo.second_started == 1);
    URSA_SIM_CHECK(peek_once_inits(&wo.c) == 3);
    URSA_SIM_CHECK(wo.done == 0);
    wo.release_second = 1;
    for (int i = 0; i < 4; i++)
        JOIN_OK(o[i]);
    URSA_SIM_CHECK(wo.done == 4 && wo.second_started == 1);
    URSA_SIM_CHECK(ursa_once_destroy(&wo.c) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_once_failed_init_wakes_only_the_next_initializer, wo_root, NULL)

/* ---- initializer cancelled at random points: another takes over ---- */

#define CX_N 5

static struct {
    ursa_once_cell_t c;
    ursa_task_t *t[CX_N];
    int values[CX_N];
    int inside, max_inside;
    int inits_started, inits_ok, inits_cancelled;
    int runner; /* id of the running initializer, -1 */
    int rc[CX_N];
    void *got[CX_N];
    bool cancelled[CX_N];
    int waiter_rc, waiter_ok;
    void *waiter_got;
} cx;

static struct {
    long takeovers, cancelled_waiters;
} cx_stats;

static int cx_init(void *arg, void **outv)
{
    int id = *(int *)arg;
    cx.inits_started++;
    if (++cx.inside > cx.max_inside)
        cx.max_inside = cx.inside;
    cx.runner = id;
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = (i & 1) ? ursa_yield() : ursa_sleep_for(URSA_USEC(300));
    cx.inside--;
    cx.runner = -1;
    if (rc) {
        cx.inits_cancelled++;
        return rc; /* -ECANCELED: our waits failed */
    }
    *outv = &cx.values[id];
    cx.inits_ok++;
    return 0;
}

static void *cx_task(void *arg)
{
    int id = *(int *)arg;
    cx.rc[id] = ursa_once_get_or_init(&cx.c, cx_init, arg, &cx.got[id], URSA_NEVER);
    return NULL;
}

static void *cx_waiter(void *arg)
{
    (void)arg;
    cx.waiter_rc = ursa_once_wait(&cx.c, &cx.waiter_got, URSA_NEVER);
    cx.waiter_ok = 1;
    return NULL;
}

/* Cancels `ncancel` tasks: each time the current initializer, after a few
 * scheduling points (the seeded scheduler decides where they land), or a
 * queued waiter when arg says so. */
static void *cx_root(void *arg)
{
    static int ids[CX_N];
    int mode = (int)(intptr_t)arg;
    memset(&cx, 0, sizeof cx);
    cx.runner = -1;
    URSA_SIM_CHECK(ursa_once_init(&cx.c, NULL) == 0);
    ursa_task_t *w;
    URSA_SIM_CHECK(spawn_named(&w, cx_waiter, NULL, "waiter", -1) == 0);
    for (int i = 0; i < CX_N; i++) {
        ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&cx.t[i], cx_task, &ids[i], "cx", -1) == 0);
    }
    int ncancel = 1 + mode % 3;
    for (int k = 0; k < ncancel; k++) {
        yield_n((unsigned)(mode / 3 + 1));
        int victim = cx.runner;
        if ((mode & 4) && k == 0) {
            /* a queued waiter instead: the last task not yet cancelled */
            for (int i = CX_N - 1; i >= 0; i--)
                if (!cx.cancelled[i] && i != cx.runner) {
                    victim = i;
                    break;
                }
        }
        if (victim < 0 || cx.cancelled[victim])
            continue;
        cx.cancelled[victim] = true;
        URSA_SIM_CHECK(ursa_task_cancel(cx.t[victim]) == 0);
    }
    for (int i = 0; i < CX_N; i++)
        JOIN_OK(cx.t[i]);
    JOIN_OK(w);
    /* One initializer at a time; exactly one succeeded. */
    URSA_SIM_CHECK(cx.max_inside == 1);
    URSA_SIM_CHECK(cx.inits_ok == 1);
    URSA_SIM_CHECK(cx.inits_started == cx.inits_ok + cx.inits_cancelled);
    URSA_SIM_CHECK(ursa_once_is_set(&cx.c));
    void *v = NULL;
    URSA_SIM_CHECK(ursa_once_get(&cx.c, &v) == 0);
    URSA_SIM_CHECK(v >= (void *)&cx.values[0] && v <= (void *)&cx.values[CX_N - 1]);
    for (int i = 0; i < CX_N; i++) {
        if (!cx.cancelled[i]) {
            URSA_SIM_CHECK(cx.rc[i] == 0); /* never cancelled: it must get the value */
            URSA_SIM_CHECK(cx.got[i] == v);
        } else {
            URSA_SIM_CHECK(cx.rc[i] == 0 || cx.rc[i] == -ECANCELED);
            URSA_SIM_CHECK(cx.rc[i] != 0 || cx.got[i] == v);
            if (cx.rc[i])
                URSA_SIM_CHECK(cx.got[i] == NULL);
        }
    }
    URSA_SIM_CHECK(cx.waiter_ok && cx.waiter_rc == 0 && cx.waiter_got == v);
    URSA_SIM_CHECK(peek_once_inits(&cx.c) == 0 && peek_once_waits(&cx.c) == 0);
    cx_stats.takeovers += cx.inits_cancelled;
    for (int i = 0; i < CX_N; i++)
        if (cx.cancelled[i] && cx.rc[i] == -ECANCELED)
            cx_stats.cancelled_waiters++;
    URSA_SIM_CHECK(ursa_once_destroy(&cx.c) == 0);
    return NULL;
}

static void test_once_cancelled_initializer_is_taken_over_over_seeds(void **state)
{
    (void)state;
    memset(&cx_stats, 0, sizeof cx_stats);
    for (intptr_t mode = 0; mode < 8; mode++)
        explore_mode(cx_root, mode, 8);
    print_message("cancel takeover: %ld cancelled inits taken over, %ld cancelled calls\n",
                  cx_stats.takeovers, cx_stats.cancelled_waiters);
    /* The interesting paths actually happened. */
    assert_true(cx_stats.takeovers > 0);
    assert_true(cx_stats.cancelled_waiters > 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- the role handed over in the instant the heir gives up ---- */

/* The initializer fails at virtual time T; the oldest waiter's deadline is
 * T too (or it is cancelled at T), so the seeded scheduler sometimes
 * grants it the role just as its wait ends. Whatever happens, the role
 * must not be lost: the next waiter gets a value. */
static struct {
    ursa_once_cell_t c;
    ursa_time_t T;
    int a, b;
    int heir_rc, next_rc;
    void *heir_v, *next_v;
    int heir_queued;
} hr;

static struct {
    long heir_ran_init, heir_gave_up;
} hr_stats;

static int hr_fail_at_T(void *arg, void **outv)
{
    (void)arg;
    (void)outv;
    (void)ursa_sleep_until(hr.T);
    return -EIO;
}

static void *hr_first(void *arg)
{
    (void)arg;
    void *v;
    URSA_SIM_CHECK(ursa_once_get_or_init(&hr.c, hr_fail_at_T, NULL, &v, URSA_NEVER) == -EIO);
    return NULL;
}

static void *hr_heir(void *arg)
{
    bool timed = arg != NULL;
    hr.heir_queued = 1;
    hr.heir_rc = ursa_once_get_or_init(&hr.c, init_value, &hr.a, &hr.heir_v,
                                       timed ? hr.T : URSA_NEVER);
    return NULL;
}

static void *hr_next(void *arg)
{
    (void)arg;
    hr.next_rc = ursa_once_get_or_init(&hr.c, init_value, &hr.b, &hr.next_v, URSA_NEVER);
    return NULL;
}

static void *hr_root(void *arg)
{
    bool timed = arg != NULL;
    memset(&hr, 0, sizeof hr);
    hr.T = ursa_now() + URSA_MSEC(5);
    URSA_SIM_CHECK(ursa_once_init(&hr.c, NULL) == 0);
    ursa_task_t *f, *h, *n;
    URSA_SIM_CHECK(spawn_named(&f, hr_first, NULL, "first", -1) == 0);
    YIELD_UNTIL(atomic_load(&hr.c.state) == 1);
    URSA_SIM_CHECK(spawn_named(&h, hr_heir, arg, "heir", -1) == 0);
    YIELD_UNTIL(peek_once_inits(&hr.c) == 1);
    URSA_SIM_CHECK(spawn_named(&n, hr_next, NULL, "next", -1) == 0);
    YIELD_UNTIL(peek_once_inits(&hr.c) == 2);
    if (!timed) {
        (void)ursa_sleep_until(hr.T);
        URSA_SIM_CHECK(ursa_task_cancel(h) == 0);
    }
    JOIN_OK(f);
    JOIN_OK(h);
    JOIN_OK(n);
    URSA_SIM_CHECK(hr.next_rc == 0);
    if (hr.heir_rc == 0) {
        /* it took the role in time and initialised with its value */
        URSA_SIM_CHECK(hr.heir_v == &hr.a && hr.next_v == &hr.a);
        hr_stats.heir_ran_init++;
    } else {
        URSA_SIM_CHECK(hr.heir_rc == (timed ? -ETIMEDOUT : -ECANCELED));
        URSA_SIM_CHECK(hr.heir_v == NULL);
        URSA_SIM_CHECK(hr.next_v == &hr.b); /* the role went on to the next one */
        hr_stats.heir_gave_up++;
    }
    URSA_SIM_CHECK(peek_once_inits(&hr.c) == 0);
    URSA_SIM_CHECK(ursa_once_destroy(&hr.c) == 0);
    return NULL;
}

static void test_once_handover_racing_the_heirs_timeout_or_cancel_is_not_lost_over_seeds(void **state)
{
    (void)state;
    memset(&hr_stats, 0, sizeof hr_stats);
    test_explore(hr_root, (void *)1); /* heir's deadline is T */
    test_explore(hr_root, NULL);      /* heir cancelled at T */
    print_message("handover vs give-up at the same instant: heir ran init %ld, gave up %ld\n",
                  hr_stats.heir_ran_init, hr_stats.heir_gave_up);
    assert_true(hr_stats.heir_gave_up > 0);
    assert_int_equal(test_leak_count(), 0);
}

static uint32_t rs_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The same race on plain threads, where a timed-out waiter can be handed
 * the role between its deadline check and its withdrawal: the first
 * initializer fails around the heir's deadline (jittered), and the next
 * waiter must always get a value. */
typedef struct hrt {
    ursa_once_cell_t c;
    ursa_time_t fail_at, heir_deadline;
    _Atomic int stage; /* 1 first is initialising, 2 heir queued, 3 next queued */
    int heir_rc, next_rc;
    void *heir_v, *next_v;
    int a, b;
} hrt_t;

static int hrt_fail_init(void *arg, void **outv)
{
    hrt_t *h = arg;
    (void)outv;
    atomic_store(&h->stage, 1);
    while (mono_ns() < h->fail_at)
        sched_yield();
    return -EIO;
}

static void *hrt_first(void *arg)
{
    hrt_t *h = arg;
    void *v;
    intptr_t rc = ursa_once_get_or_init(&h->c, hrt_fail_init, h, &v, URSA_NEVER);
    return (void *)rc;
}

static void *hrt_heir(void *arg)
{
    hrt_t *h = arg;
    /* Wake close to the deadline, so the failure lands near it often. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    while (atomic_load(&h->stage) < 1)
        sched_yield();
    atomic_store(&h->stage, 2);
    h->heir_rc = ursa_once_get_or_init(&h->c, init_value, &h->a, &h->heir_v, h->heir_deadline);
    return NULL;
}

static void *hrt_next(void *arg)
{
    hrt_t *h = arg;
    while (atomic_load(&h->stage) < 2)
        sched_yield();
    usleep(20); /* queue behind the heir (checked below) */
    atomic_store(&h->stage, 3);
    h->next_rc = ursa_once_get_or_init(&h->c, init_value, &h->b, &h->next_v,
                                       test_guard_deadline());
    return NULL;
}

static void test_once_handover_racing_the_heirs_timeout_is_not_lost_on_threads(void **state)
{
    (void)state;
    long rounds = test_scale(400), heir_ran = 0, heir_timed_out = 0;
    uint32_t rng = 12345;
    for (long i = 0; i < rounds; i++) {
        hrt_t h;
        memset(&h, 0, sizeof h);
        assert_int_equal(ursa_once_init(&h.c, NULL), 0);
        ursa_time_t now = mono_ns();
        h.heir_deadline = now + URSA_USEC(600);
        h.fail_at = h.heir_deadline - URSA_USEC(5) + (ursa_time_t)(rs_rand(&rng) % 30000);
        pthread_t f, hh, n;
        assert_int_equal(pthread_create(&f, NULL, hrt_first, &h), 0);
        assert_int_equal(pthread_create(&hh, NULL, hrt_heir, &h), 0);
        assert_int_equal(pthread_create(&n, NULL, hrt_next, &h), 0);
        void *frc;
        assert_int_equal(pthread_join(f, &frc), 0);
        assert_int_equal(pthread_join(hh, NULL), 0);
        assert_int_equal(pthread_join(n, NULL), 0);
        assert_int_equal((intptr_t)frc, -EIO);
        assert_int_equal(h.next_rc, 0); /* the role was never lost */
        void *v = NULL;
        assert_int_equal(ursa_once_get(&h.c, &v), 0);
        assert_ptr_equal(h.next_v, v);
        if (h.heir_rc == 0) {
            assert_ptr_equal(h.heir_v, v);
            heir_ran++;
        } else {
            assert_int_equal(h.heir_rc, -ETIMEDOUT);
            assert_null(h.heir_v);
            heir_timed_out++;
        }
        assert_int_equal(ursa_once_destroy(&h.c), 0);
    }
    print_message("handover vs timeout on threads: heir got a value %ld, timed out %ld\n",
                  heir_ran, heir_timed_out);
    assert_int_equal(heir_ran + heir_timed_out, rounds);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- stress: tasks on two workers and plain threads race get_or_init ---- */

#define RS_TASKS 4

#define RS_THREADS 2

#define RS_PART (RS_TASKS + RS_THREADS)

typedef struct rs_val {
    int cell;
    int writer;
    long magic;
} rs_val_t;

static struct {
    ursa_once_cell_t *cells;
    _Atomic int *inside;  /* per cell: initializers running now */
    _Atomic int *ok;      /* per cell: successful inits */
    void **seen;          /* [part][cell] */
    long ncells;
    _Atomic int errors;
    _Atomic int overlap;
    _Atomic int go;
    _Atomic long failed_inits;
    _Atomic int dtors;
    _Atomic long contended; /* found empty, got another's value */
} rs;

typedef struct rs_arg {
    int part;
    int cell;
    uint32_t *rng;
} rs_arg_t;

static void rs_dtor(void *v)
{
    atomic_fetch_add(&rs.dtors, 1);
    free(v);
}

static int rs_init(void *arg, void **outv)
{
    rs_arg_t *a = arg;
    if (atomic_fetch_add(&rs.inside[a->cell], 1) != 0)
        atomic_fetch_add(&rs.overlap, 1);
    uint32_t r = rs_rand(a->rng);
    if (r & 1)
        (void)ursa_yield();
    int rc = 0;
    if ((r & 6) == 0) {
        rc = -EIO; /* a failing initializer: the next caller takes over */
        atomic_fetch_add(&rs.failed_inits, 1);
    } else {
        rs_val_t *v = malloc(sizeof *v);
        if (!v) {
            rc = -ENOMEM;
        } else {
            v->cell = a->cell;
            v->writer = a->part;
            v->magic = 0x5eed0000L + a->cell;
            *outv = v;
            atomic_fetch_add(&rs.ok[a->cell], 1);
        }
    }
    atomic_fetch_sub(&rs.inside[a->cell], 1);
    return rc;
}

static void rs_loop(int part)
{
    uint32_t rng = 0x9e3779b9u * (uint32_t)(part + 1);
    for (long i = 0; i < rs.ncells; i++) {
        rs_arg_t a = {part, (int)i, &rng};
        void *v = NULL;
        int rc;
        bool was_empty = !ursa_once_is_set(&rs.cells[i]);
        do
            rc = ursa_once_get_or_init(&rs.cells[i], rs_init, &a, &v, URSA_NEVER);
        while (rc == -EIO); /* our own init failed: try again (or get the value) */
        if (rc) {
            atomic_fetch_add(&rs.errors, 1);
            continue;
        }
        rs_val_t *val = v;
        /* acquire: the contents written before the value was set */
        if (!val || val->cell != (int)i || val->magic != 0x5eed0000L + i)
            atomic_fetch_add(&rs.errors, 1);
        rs.seen[(long)part * rs.ncells + i] = v;
        if (was_empty && val && val->writer != part)
            atomic_fetch_add(&rs.contended, 1);
    }
}

static void *rs_thread(void *arg)
{
    int part = RS_TASKS + (int)(intptr_t)arg; /* after the tasks' parts */
    while (!atomic_load(&rs.go))
        sched_yield();
    rs_loop(part);
    return NULL;
}

static void *rs_task(void *arg)
{
    rs_loop((int)(intptr_t)arg);
    return NULL;
}

static void test_once_racing_get_or_init_runs_one_init_per_cell_on_threads(void **state)
{
    (void)state;
    memset(&rs, 0, sizeof rs);
    rs.ncells = test_scale(3000);
    rs.cells = checked_calloc((size_t)rs.ncells, sizeof *rs.cells);
    rs.inside = checked_calloc((size_t)rs.ncells, sizeof *rs.inside);
    rs.ok = checked_calloc((size_t)rs.ncells, sizeof *rs.ok);
    rs.seen = checked_calloc((size_t)(rs.ncells * RS_PART), sizeof *rs.seen);
    for (long i = 0; i < rs.ncells; i++)
        assert_int_equal(ursa_once_init(&rs.cells[i], rs_dtor), 0);
    run_tasks_and_threads(RS_TASKS, rs_task, "racer", RS_THREADS, rs_thread, &rs.go);
    assert_int_equal(atomic_load(&rs.errors), 0);
    assert_int_equal(atomic_load(&rs.overlap), 0);
    for (long i = 0; i < rs.ncells; i++) {
        assert_int_equal(atomic_load(&rs.ok[i]), 1); /* exactly one successful init */
        void *v = NULL;
        assert_int_equal(ursa_once_get(&rs.cells[i], &v), 0);
        for (int p = 0; p < RS_PART; p++)
            assert_ptr_equal(rs.seen[(long)p * rs.ncells + i], v);
        assert_int_equal(ursa_once_destroy(&rs.cells[i]), 0);
    }
    assert_int_equal(atomic_load(&rs.dtors), rs.ncells);
    print_message("racing get_or_init: %ld cells, %ld failed inits, %ld calls found the cell "
                  "empty and got another's value\n",
                  rs.ncells, atomic_load(&rs.failed_inits), atomic_load(&rs.contended));
    assert_true(atomic_load(&rs.failed_inits) > 0);
    assert_true(atomic_load(&rs.contended) > 0); /* they really raced */
    free(rs.cells);
    free((void *)rs.inside);
    free((void *)rs.ok);
    free(rs.seen);
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_once_failed_init_hands_the_role_to_the_oldest_waiter_over_seeds),
          LEAK_CHECKED(test_once_failed_init_wakes_only_the_next_initializer),
          LEAK_CHECKED(test_once_cancelled_initializer_is_taken_over_over_seeds),
          LEAK_CHECKED(test_once_handover_racing_the_heirs_timeout_or_cancel_is_not_lost_over_seeds),
          LEAK_CHECKED(test_once_handover_racing_the_heirs_timeout_is_not_lost_on_threads),
          LEAK_CHECKED(test_once_racing_get_or_init_runs_one_init_per_cell_on_threads))
