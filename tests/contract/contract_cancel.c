/* The contract checks about ending a wait early: a task cancelled before
 * or while it waits, a cancel or deadline racing a grant (over seeds, and
 * on real threads, raw waits included), and a hold left at the end of a
 * task or thread. Checks return NULL or a message. */
#include "support.h"

#include "contract.h"
#include "core/spin.h" /* ursa__cpu_relax */
#include "raw_waker.h"
#include "task_checks.h"

/* Over seeds, unless one seed is replayed: were both outcomes seen? */
static bool both_ways_expected(void)
{
    const char *replay = getenv("URSA_SEED");
    return TEST_SEEDS >= 50 && !(replay && *replay);
}

/* ---- a task cancelled before or while it waits ---- */

/* Shared by the waiters of one scenario (one at a time: ursa_run finishes
 * every task before it returns). Atomics: on two workers the root reads
 * what the waiters write. */
static struct {
    const contract_row_t *r;
    void *f;
    int worker;                  /* where the waiters run (-1: here) */
    _Atomic int arrived[2], rc[2];
    _Atomic bool held[2];
    _Atomic int holders;         /* waiters holding it now */
    _Atomic bool blocked;        /* the fixture's own block is still on */
} tc;

/* Holds what a wait got across a switch, checking exclusion, then lets go. */
static const char *use_and_release(const contract_row_t *r, void *f, void *hold)
{
    if (r->exclusive) {
        CHECK(!atomic_load(&tc.blocked));
        CHECK_EQ(atomic_fetch_add(&tc.holders, 1), 0);
    }
    (void)ursa_yield(); /* -ECANCELED is fine: it is ours already */
    if (r->exclusive)
        atomic_fetch_sub(&tc.holders, 1);
    return r->release(f, hold);
}

static void *tc_waiter(void *arg)
{
    int who = (int)(intptr_t)arg;
    const contract_row_t *r = tc.r;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    if (who == 1)
        YIELD_UNTIL(atomic_load(&tc.arrived[0]));
    atomic_store(&tc.arrived[who], 1);
    int rc = r->wait(tc.f, who, &h, URSA_NEVER);
    atomic_store(&tc.held[who], contract_held(r, &h));
    atomic_store(&tc.rc[who], rc);
    if (rc == 0)
        return (void *)use_and_release(r, tc.f, &h);
    CHECK_EQ(rc, -ECANCELED);
    CHECK(!contract_held(r, &h));
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

/* Already cancelled when it waits: -ECANCELED at once, nothing queued. */
static void *tc_precancelled(void *arg)
{
    (void)arg;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    while (!ursa_task_cancelled())
        (void)ursa_yield();
    atomic_store(&tc.rc[0], tc.r->wait(tc.f, 0, &h, URSA_NEVER));
    atomic_store(&tc.held[0], contract_held(tc.r, &h));
    return NULL;
}

static void tc_reset(const contract_row_t *r, void *f)
{
    tc.r = r;
    tc.f = f;
    for (int i = 0; i < 2; i++) {
        atomic_store(&tc.arrived[i], 0);
        atomic_store(&tc.rc[i], 1); /* 1: not returned yet */
        atomic_store(&tc.held[i], false);
    }
    atomic_store(&tc.holders, 0);
    atomic_store(&tc.blocked, true);
}

static const char *grant(const contract_row_t *r, void *f)
{
    atomic_store(&tc.blocked, false);
    return r->grant(f);
}

static void *tc_precancel_root(void *arg)
{
    const contract_row_t *r = arg;
    void *f = r->make();
    CHECK(f);
    tc_reset(r, f);
    ursa_task_t *t = spawn_on(tc.worker, tc_precancelled, NULL, "pre");
    CHECK(t);
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(atomic_load(&tc.rc[0]), -ECANCELED);
    CHECK(!atomic_load(&tc.held[0]));
    CHECK_OK(contract_unchanged(r, f, 0));
    if (!r->grant_needs_waiter) {
        CHECK_OK(grant(r, f));
        CHECK_EQ(r->take(f), 1);
    }
    return (void *)r->destroy(f);
}

/* W1 queues (then W2 behind it); W1 is cancelled: -ECANCELED, nothing
 * held, nothing changed, W2 still waiting; the grant goes to W2 (or, alone,
 * stays for a try; a barrier needs a new waiter). */
static void *tc_queued_root(void *arg)
{
    const contract_row_t *r = arg;
    void *f = r->make();
    CHECK(f);
    tc_reset(r, f);
    bool two = !r->one_waiter;
    ursa_task_t *w2 = NULL;
    if (two) {
        w2 = spawn_on(tc.worker, tc_waiter, (void *)(intptr_t)1, "w2");
        CHECK(w2);
    }
    ursa_task_t *w1 = spawn_on(tc.worker, tc_waiter, (void *)(intptr_t)0, "w1");
    CHECK(w1);
    YIELD_UNTIL(atomic_load(&tc.arrived[0]) && (!two || atomic_load(&tc.arrived[1])));
    CHECK(contract_wait_queued(r, f, two ? 2 : 1));
    CHECK_EQ(ursa_task_cancel(w1), 0);
    CHECK_OK(join_task(w1));
    CHECK_EQ(atomic_load(&tc.rc[0]), -ECANCELED);
    CHECK(!atomic_load(&tc.held[0]));
    CHECK_OK(contract_unchanged(r, f, two ? 1 : 0));
    yield_n(3);
    if (two) {
        CHECK_EQ(atomic_load(&tc.rc[1]), 1); /* still queued */
        CHECK_OK(grant(r, f));
        CHECK_OK(join_task(w2));
        CHECK_EQ(atomic_load(&tc.rc[1]), 0);
        CHECK_EQ(r->take(f), contract_left(r, 0, 1));
    } else if (r->grant_needs_waiter) {
        atomic_store(&tc.arrived[0], 0);
        w1 = spawn_on(tc.worker, tc_waiter, (void *)(intptr_t)0, "next");
        CHECK(w1);
        YIELD_UNTIL(atomic_load(&tc.arrived[0]));
        CHECK(contract_wait_queued(r, f, 1));
        CHECK_OK(grant(r, f));
        CHECK_OK(join_task(w1));
        CHECK_EQ(atomic_load(&tc.rc[0]), 0);
        CHECK_EQ(r->take(f), contract_left(r, 1, 0));
    } else {
        CHECK_OK(grant(r, f));
        CHECK_EQ(r->take(f), 1); /* nothing taken by the cancelled wait */
    }
    return (void *)r->destroy(f);
}

const char *contract_task_cancel_sim(const contract_row_t *r)
{
    tc.worker = -1;
    CHECK_OK(contract_explore(tc_precancel_root, r));
    return contract_explore(tc_queued_root, r);
}

/* The same on two workers: the waiters on worker 1, the root on worker 0. */
const char *contract_task_cancel_workers(const contract_row_t *r)
{
    tc.worker = 1;
    void *res = test_run_msg(2, tc_precancel_root, (void *)r);
    if (!res)
        res = test_run_msg(2, tc_queued_root, (void *)r);
    tc.worker = -1;
    return res;
}

/* ---- a cancel or deadline racing a grant, over seeds ---- */

/* At instant D the grant comes while A's deadline passes and/or C cancels
 * A (or A, a raw waiter, withdraws). B waits behind A until D + 1 ms. By
 * yields: C cancels A right after A queued, while the root grants.
 * Whatever the order, the grant is neither lost nor doubled. */
enum { RACE_CANCEL = 1, RACE_DEADLINE = 2, RACE_RAW = 4, RACE_BY_YIELDS = 8 };

static struct {
    const contract_row_t *r;
    void *f;
    int mode;
    ursa_time_t d;
    ursa_task_t *a;
    int a_ok, b_ok;
    long a_got, a_missed; /* over all seeds: the grant reached A, or not */
} race;

static void *race_a(void *arg)
{
    (void)arg;
    const contract_row_t *r = race.r;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    race.a_ok = 0;
    if (race.mode & RACE_RAW) {
        ursa_wait_t w;
        rwaker_t k;
        rwaker_init(&k, false);
        atomic_store(&tc.arrived[0], 1);
        CHECK_EQ(r->start(race.f, 0, &w, rwaker(&k)), -EINPROGRESS);
        (void)ursa_sleep_until(race.d);
        bool reached = ursa_wait_ready(&w);
        CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED); /* always withdraws */
        CHECK(!reached || atomic_load(&k.count) == 1);
        if (atomic_load(&k.count))
            race.a_got++;
        else
            race.a_missed++;
        return NULL;
    }
    ursa_time_t dl = (race.mode & RACE_DEADLINE) ? race.d : URSA_NEVER;
    atomic_store(&tc.arrived[0], 1);
    int rc = r->wait(race.f, 0, &h, dl);
    if ((race.mode & RACE_DEADLINE) && (race.mode & RACE_CANCEL))
        CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED);
    else if (race.mode & RACE_DEADLINE)
        CHECK(rc == 0 || rc == -ETIMEDOUT);
    else
        CHECK(rc == 0 || rc == -ECANCELED);
    race.a_ok = rc == 0;
    if (race.a_ok) {
        race.a_got++;
        return (void *)use_and_release(r, race.f, &h);
    }
    race.a_missed++;
    CHECK(!contract_held(r, &h));
    CHECK_EQ(ursa_held_count(), 0);
    return NULL;
}

static void *race_b(void *arg)
{
    (void)arg;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    atomic_store(&tc.arrived[1], 1);
    int rc = race.r->wait(race.f, 1, &h, race.d + URSA_MSEC(1));
    CHECK(rc == 0 || rc == -ETIMEDOUT);
    race.b_ok = rc == 0;
    if (rc == 0)
        return (void *)use_and_release(race.r, race.f, &h);
    return NULL;
}

static void *race_grant_at_d(void *arg)
{
    (void)arg;
    CHECK_EQ(ursa_sleep_until(race.d), 0);
    return (void *)grant(race.r, race.f);
}

static void *race_cancel(void *arg)
{
    (void)arg;
    if (race.mode & RACE_BY_YIELDS) {
        YIELD_UNTIL(atomic_load(&tc.arrived[0]));
        (void)ursa_yield();
    } else {
        CHECK_EQ(ursa_sleep_until(race.d), 0);
    }
    CHECK_EQ(ursa_task_cancel(race.a), 0);
    return NULL;
}

static void *race_root(void *arg)
{
    (void)arg;
    const contract_row_t *r = race.r;
    bool two = !r->one_waiter;
    race.f = r->make();
    CHECK(race.f);
    tc_reset(r, race.f);
    race.a_ok = race.b_ok = 0;
    race.d = ursa_now() + URSA_MSEC(10);
    race.a = spawn_on(0, race_a, NULL, "A");
    CHECK(race.a);
    CHECK(contract_wait_queued(r, race.f, 1));
    ursa_task_t *b = NULL, *n = NULL, *c = NULL;
    if (two) {
        b = spawn_on(0, race_b, NULL, "B");
        CHECK(b);
        CHECK(contract_wait_queued(r, race.f, 2));
    }
    if (!(race.mode & RACE_BY_YIELDS)) {
        n = spawn_on(0, race_grant_at_d, NULL, "N");
        CHECK(n);
    }
    if (race.mode & RACE_CANCEL) {
        c = spawn_on(0, race_cancel, NULL, "C");
        CHECK(c);
    }
    if (race.mode & RACE_BY_YIELDS) {
        YIELD_UNTIL(atomic_load(&tc.arrived[0]) && (!two || atomic_load(&tc.arrived[1])));
        (void)ursa_yield();
        CHECK_OK(grant(r, race.f));
    }
    if (n)
        CHECK_OK(join_task(n));
    if (c)
        CHECK_OK(join_task(c));
    CHECK_OK(join_task(race.a));
    if (b)
        CHECK_OK(join_task(b));
    int left = r->take(race.f);
    CHECK(left >= 0);
    if (r->kind == CONTRACT_CONSUMED) {
        if (race.a_ok + race.b_ok + left != 1)
            return (void *)failf("one grant: A got %d + B got %d + left %d != 1", race.a_ok,
                                 race.b_ok, left);
    } else {
        CHECK_EQ(left, 1);              /* given back, or still there */
        CHECK(!two || race.b_ok == 1);  /* and B got it too */
    }
    if (r->queued)
        CHECK_EQ(r->queued(race.f), 0);
    return (void *)r->destroy(race.f);
}

static const char *race_explore(const contract_row_t *r, int mode)
{
    memset(&race, 0, sizeof race);
    race.r = r;
    race.mode = mode;
    uint64_t seed = 0;
    int rc = ursa_sim_explore(NULL, race_root, NULL, 1, TEST_SEEDS, &seed);
    if (rc)
        return failf("%s, race mode %d: scenario failed at seed %llu: %s", r->name, mode,
                     (unsigned long long)seed, ursa_strerror(rc));
    if (both_ways_expected() && (race.a_got == 0 || race.a_missed == 0))
        return failf("%s, race mode %d: the grant reached A %ld times, missed it %ld times: "
                     "the race was not exercised both ways",
                     r->name, mode, race.a_got, race.a_missed);
    return NULL;
}

const char *contract_race_sim(const contract_row_t *r)
{
    CHECK_OK(race_explore(r, RACE_CANCEL | RACE_BY_YIELDS));
    CHECK_OK(race_explore(r, RACE_CANCEL));
    CHECK_OK(race_explore(r, RACE_DEADLINE));
    CHECK_OK(race_explore(r, RACE_CANCEL | RACE_DEADLINE));
    if (r->checks & CONTRACT_RAW)
        CHECK_OK(race_explore(r, RACE_RAW));
    return NULL;
}

/* ---- the same race on two workers ---- */

#define GOT ((void *)(intptr_t)1)
#define CANCELLED ((void *)(intptr_t)2)

static inline void cpu_relax_n(long n)
{
    for (long k = 0; k < n; k++)
        ursa__cpu_relax();
}

static void *rt_waiter(void *arg)
{
    int who = (int)(intptr_t)arg;
    const contract_row_t *r = tc.r;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    atomic_store(&tc.arrived[who], 1);
    int rc = r->wait(tc.f, who, &h, URSA_NEVER);
    if (rc == -ECANCELED && !contract_held(r, &h))
        return CANCELLED;
    if (rc != 0 || (r->holds && !r->holds(&h)))
        return (void *)failf("waiter %d: %s", who, ursa_strerror(rc));
    if (r->exclusive && atomic_fetch_add(&tc.holders, 1) != 0)
        return (void *)"two holders";
    if (r->exclusive)
        atomic_fetch_sub(&tc.holders, 1);
    CHECK_OK(r->release(tc.f, &h));
    return GOT;
}

/* W1 waits on worker 1 (W2 queued behind it) while the root, on worker 0,
 * cancels it and grants, in either order and with varying delays in
 * between; every fourth round W1 must give up while the grant is not there
 * yet. W2 is never cancelled: it must get a grant. */
static void *rt_root(void *arg)
{
    const contract_row_t *r = arg;
    long iters = test_scale(1000), ok = 0, cancelled = 0;
    bool two = !r->one_waiter;
    for (long i = 0; i < iters; i++) {
        void *f = r->make();
        CHECK(f);
        tc_reset(r, f);
        atomic_store(&tc.blocked, false); /* exclusion is checked by holders alone */
        void *r1 = NULL, *r2 = NULL;
        int round = (int)(i % 4);
        ursa_task_t *w1 = spawn_on(1, rt_waiter, (void *)(intptr_t)0, "w1"), *w2 = NULL;
        CHECK(w1);
        /* W1 is queued (a row that cannot tell: about to be) */
        YIELD_UNTIL(atomic_load(&tc.arrived[0]));
        if (r->queued)
            CHECK(contract_wait_queued(r, f, 1));
        if (two) {
            w2 = spawn_on(1, rt_waiter, (void *)(intptr_t)1, "w2");
            CHECK(w2);
        }
        if (round == 0) { /* grant (to W1), then cancel */
            CHECK_OK(r->grant(f));
            CHECK_EQ(ursa_task_cancel(w1), 0);
        } else if (round < 3) { /* cancel, then grant while W1 may withdraw */
            CHECK_EQ(ursa_task_cancel(w1), 0);
            cpu_relax_n(((i >> 2) % 16) * 32);
            CHECK_OK(r->grant(f));
        } else { /* cancel; W1 must give up before the grant */
            CHECK_EQ(ursa_task_cancel(w1), 0);
            CHECK_EQ(ursa_task_join(w1, &r1, URSA_NEVER), 0);
            if (r1 != CANCELLED)
                return r1 == GOT ? (void *)"W1 got what was never granted" : r1;
            CHECK_OK(r->grant(f));
        }
        if (round != 3)
            CHECK_EQ(ursa_task_join(w1, &r1, URSA_NEVER), 0);
        if (r1 == GOT)
            ok++;
        else if (r1 == CANCELLED)
            cancelled++;
        else
            return r1;
        int grants = 1;
        if (two) {
            if (r->kind == CONTRACT_CONSUMED && r1 == GOT) {
                CHECK_OK(r->grant(f)); /* W1 consumed the first */
                grants++;
            }
            CHECK_EQ(ursa_task_join(w2, &r2, URSA_NEVER), 0);
            if (r2 != GOT)
                return r2 == CANCELLED ? (void *)"W2 cancelled" : r2;
        }
        int consumed = (r1 == GOT) + (r2 == GOT);
        int want = r->kind == CONTRACT_CONSUMED ? grants - consumed : 1;
        CHECK_EQ(r->take(f), want); /* not lost, not doubled */
        CHECK_OK(r->destroy(f));
    }
    CHECK_EQ(ok + cancelled, iters);
    CHECK(cancelled >= iters / 4); /* every fourth round at least */
    print_message("%s: cancel vs grant on two workers: %ld granted, %ld cancelled\n", r->name,
                  ok, cancelled);
    return NULL;
}

const char *contract_race_threads(const contract_row_t *r)
{
    return test_run_msg(2, rt_root, (void *)r);
}

/* ---- a raw cancel racing a grant on another thread ---- */

static struct {
    const contract_row_t *r;
    void *_Atomic f;
    _Atomic long go, granted;
    const char *_Atomic msg;
} rr;

static void *rr_granter(void *arg)
{
    long n = *(long *)arg;
    for (long i = 1; i <= n; i++) {
        /* Spin (to race the cancel tightly), yielding now and then in case
         * both threads share a CPU. */
        long g;
        for (unsigned k = 1; (g = atomic_load(&rr.go)) != i; k++) {
            if (g < 0)
                return NULL; /* the test stopped early */
            if (k % 1024)
                ursa__cpu_relax();
            else
                sched_yield();
        }
        const char *m = rr.r->grant(atomic_load(&rr.f));
        if (m)
            atomic_store(&rr.msg, m);
        atomic_store(&rr.granted, i);
    }
    return NULL;
}

/* Each round: a raw wait starts, the other thread grants while this one
 * cancels after a varying delay. The cancel always wins the wait back
 * (-ECANCELED), the waker ran at most once (once if the wait was seen
 * ready) and never after the cancel returned, and what was granted is
 * still there for a try. */
const char *contract_raw_race_threads(const contract_row_t *r)
{
    long n = test_scale(1000), reached = 0;
    memset(&rr, 0, sizeof rr);
    rr.r = r;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, rr_granter, &n), 0);
    const char *msg = NULL;
    for (long i = 1; i <= n && !msg; i++) {
        void *f = r->make();
        if (!f) {
            msg = "make failed";
            break;
        }
        atomic_store(&rr.f, f);
        ursa_wait_t w;
        rwaker_t k;
        rwaker_init(&k, false);
        int rc = r->start(f, 0, &w, rwaker(&k));
        atomic_store(&rr.go, i);
        cpu_relax_n((i % 32) * 64); /* vary who comes first */
        bool ready = ursa_wait_ready(&w);
        int crc = ursa_wait_cancel(&w);
        int calls = atomic_load(&k.count);
        while (atomic_load(&rr.granted) != i)
            sched_yield();
        if (rc != -EINPROGRESS)
            msg = failf("round %ld: start returned %d", i, rc);
        else if (crc != -ECANCELED)
            msg = failf("round %ld: cancel returned %d", i, crc);
        else if (calls > 1 || (ready && calls != 1) || atomic_load(&k.count) != calls)
            msg = failf("round %ld: waker called %d times, %d after the cancel", i, calls,
                        atomic_load(&k.count) - calls);
        else if (r->take(f) != 1)
            msg = failf("round %ld: the grant was lost", i);
        reached += calls;
        const char *d = r->destroy(f);
        if (!msg)
            msg = d;
    }
    if (msg)
        atomic_store(&rr.go, -1); /* the granter stops waiting */
    pthread_join(th, NULL);
    CHECK_OK(msg);
    CHECK_OK(atomic_load(&rr.msg));
    print_message("%s: raw cancel vs grant: %ld of %ld cancels came after the grant\n",
                  r->name, reached, n);
    return NULL;
}

/* ---- a hold left at the end of a task or a thread ---- */

static void *leaker(void *arg)
{
    contract_hold_t h; /* on this task's stack: the sweep only reads the ledger */
    memset(&h, 0, sizeof h);
    int rc = tc.r->wait(arg, 0, &h, URSA_NEVER);
    return rc ? (void *)failf("wait: %s", ursa_strerror(rc)) : NULL; /* ends holding it */
}

static void *leak_root(void *arg)
{
    return join_task(spawn_on(1, leaker, arg, "leaker"));
}

static contract_hold_t thread_hold; /* outlives the thread, like a static guard */

static void *leaking_thread(void *arg)
{
    memset(&thread_hold, 0, sizeof thread_hold);
    int rc = tc.r->wait(arg, 0, &thread_hold, URSA_NEVER);
    return rc ? (void *)failf("wait: %s", ursa_strerror(rc)) : NULL; /* exits holding it */
}

/* One report: the owner, the hold's kind, the acquire line; the grant is
 * back (a try gets it). */
static const char *reported_and_released(const contract_row_t *r, void *f, const char *owner)
{
    char who[64], kind[512];
    int line = 0;
    CHECK_EQ(test_leak_count(), 1);
    test_leak_snapshot(who, sizeof who, kind, sizeof kind, &line);
    if (strcmp(who, owner) != 0 || strcmp(kind, r->hold_kind) != 0)
        return failf("report: owner \"%s\" kind \"%s\", expected \"%s\" \"%s\"", who, kind,
                     owner, r->hold_kind);
    CHECK_EQ(line, *r->line);
    if (r->queued)
        CHECK_EQ(r->queued(f), 0);
    CHECK_EQ(r->take(f), 1);
    return r->destroy(f);
}

const char *contract_leak(const contract_row_t *r)
{
    tc.r = r;
    test_capture_leaks();
    void *f = r->make();
    CHECK(f);
    CHECK_OK(r->grant(f));
    CHECK_OK(test_run_msg(2, leak_root, f));
    CHECK_OK(reported_and_released(r, f, "leaker"));

    test_capture_leaks();
    f = r->make();
    CHECK(f);
    CHECK_OK(r->grant(f));
    pthread_t th;
    void *res = NULL;
    CHECK_EQ(pthread_create(&th, NULL, leaking_thread, f), 0);
    CHECK_EQ(pthread_join(th, &res), 0);
    CHECK_OK(res);
    return reported_and_released(r, f, "thread");
}
