/* Barging mode (URSA_LOCK_BARGING, URSA_SEM_BARGING): an unlock frees the
 * lock and wakes a waiter that must look again; arrivals may take a free
 * lock past queued waiters; a waiter that waited 1 ms switches the lock to
 * FIFO hand-off until its queue drains. Tests: bad flags, barging past a
 * queued waiter, the starvation bound (deterministic, virtual time; the
 * switch is asserted through the core's HANDOFF state and counter, never
 * by wall-clock), cancel and timeout of barging waiters holding nothing,
 * a leaked guard poisoning, raw waits still handed over, mutual exclusion
 * over seeds and under multi-thread stress, rwlock writers and
 * semaphore(n). The default mode's FIFO is test_mutex.c's, unchanged; the
 * whole contract on barging locks is test_contract_barging.
 *
 * Scenario state lives in file-scope statics, reset by each root. */

#include "support.h"

#include "core/sema.h"
#include "raw_checks.h"

static const ursa_lock_attr_t barging_attr = {.name = "barging", .flags = URSA_LOCK_BARGING};

static uint64_t handoffs(void)
{
    return atomic_load(&ursa__sema_handoffs);
}

/* ---- flags ---- */

static void test_barging_rejects_unknown_flags(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_rwlock_t rw;
    ursa_sem_t s;
    assert_int_equal(ursa_mutex_init_attr(&m, &(ursa_lock_attr_t){.flags = 2}), -EINVAL);
    assert_int_equal(ursa_rwlock_init_attr(&rw, 0, &(ursa_lock_attr_t){.flags = 0x80}), -EINVAL);
    assert_int_equal(ursa_sem_init_flags(&s, 1, 4), -EINVAL);
    assert_int_equal(ursa_sem_init_flags(NULL, 1, URSA_SEM_BARGING), -EINVAL);
    assert_int_equal(ursa_sem_init_flags(&s, URSA_SEM_MAX + 1, URSA_SEM_BARGING), -EINVAL);
    /* The default stays FIFO; barging is set only on request. */
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_false(ursa__sema_barging(&m.sema));
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_mutex_init_attr(&m, &barging_attr), 0);
    assert_true(ursa__sema_barging(&m.sema));
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_sem_init_flags(&s, 3, URSA_SEM_BARGING), 0);
    assert_true(ursa__sema_barging(&s.sema));
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

/* ---- an arrival takes the lock past a queued waiter ---- */

static struct {
    ursa_mutex_t m;
    int waiter_rc;
    bool waiter_in;
} bp;

static void *bp_waiter(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    bp.waiter_rc = ursa_mutex_lock(&bp.m, &g, URSA_NEVER);
    bp.waiter_in = true;
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

static void *bp_root(void *arg)
{
    (void)arg;
    memset(&bp, 0, sizeof bp);
    bp.waiter_rc = 1;
    URSA_SIM_CHECK(ursa_mutex_init_attr(&bp.m, &barging_attr) == 0);
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&bp.m, &g, URSA_NEVER) == 0);
    ursa_task_t *t;
    URSA_SIM_CHECK(spawn_named(&t, bp_waiter, NULL, "waiter", -1) == 0);
    YIELD_UNTIL(ursa__waitq_queued(&bp.m.sema.q) == 1);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    /* The waiter was woken, not handed the lock: a try takes it now (the
     * FIFO mutex answers -EAGAIN here, test_mutex.c). */
    URSA_SIM_CHECK(ursa_mutex_lock(&bp.m, &g, URSA_NOW) == 0);
    URSA_SIM_CHECK(!bp.waiter_in);
    yield_n(3); /* the woken waiter looks, loses, queues again at the front */
    URSA_SIM_CHECK(!bp.waiter_in);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    JOIN_OK(t);
    URSA_SIM_CHECK(bp.waiter_rc == 0 && bp.waiter_in);
    URSA_SIM_CHECK(!ursa_mutex_is_locked(&bp.m));
    URSA_SIM_CHECK(ursa_mutex_destroy(&bp.m) == 0);
    return NULL;
}

TEST_EXPLORE_NO_LEAKS(test_barging_mutex_lets_an_arrival_past_a_woken_waiter, bp_root, NULL)

/* ---- the starvation bound ----
 *
 * A hog locks, sleeps 200 µs (virtual) holding the lock, unlocks and locks
 * again at once, so each woken waiter loses its look. After 1 ms of
 * virtual time the waiter's lost look switches the lock to HANDOFF: the
 * hog's next unlock hands the lock over. Without the bound the waiter
 * would get in only when the hog stops (after HOG_ROUNDS). */

#define HOG_ROUNDS 40

static struct {
    ursa_mutex_t m;
    ursa_rwlock_t rw;
    ursa_sem_t s;
    /* 0 mutex, 1 rwlock writers, 2 semaphore(2) of 2 and 1, 3 mutex with
     * three hogs (the queue never drains: HANDOFF must end by Go's rule) */
    int kind;
    int hog_round, waiter_got_at, hogs_done;
    bool waiter_in, handoff_seen, barging_again;
    uint64_t handoffs0;
} sv;

typedef union any_guard {
    ursa_mutex_guard_t m;
    ursa_rwlock_write_guard_t w;
    ursa_sem_permit_t p;
} any_guard_t;

static int sv_lock(any_guard_t *g, uint64_t n)
{
    memset(g, 0, sizeof *g);
    switch (sv.kind) {
    case 0:
    case 3:
        return ursa_mutex_lock(&sv.m, &g->m, URSA_NEVER);
    case 1:
        return ursa_rwlock_write_lock(&sv.rw, &g->w, URSA_NEVER);
    default:
        return ursa_sem_acquire(&sv.s, n, &g->p, URSA_NEVER);
    }
}

static int sv_unlock(any_guard_t *g)
{
    switch (sv.kind) {
    case 0:
    case 3:
        return ursa_mutex_unlock(&g->m);
    case 1:
        return ursa_rwlock_write_unlock(&g->w);
    default:
        return ursa_sem_release(&g->p);
    }
}

static ursa__sema_t *sv_sema(void)
{
    return sv.kind == 1 ? &sv.rw.sema : sv.kind == 2 ? &sv.s.sema : &sv.m.sema;
}

static void *sv_hog(void *arg)
{
    (void)arg;
    any_guard_t g;
    /* The semaphore's hog takes 1 of 2 permits, two of them: the waiter
     * wants both, so it is the head that bargers keep short. */
    for (int r = 0; r < HOG_ROUNDS; r++, sv.hog_round++) { /* hog_round: all hogs' */
        URSA_SIM_CHECK(sv_lock(&g, 1) == 0);
        URSA_SIM_CHECK(!sv.waiter_in);
        URSA_SIM_CHECK(ursa_sleep_for(URSA_USEC(200)) == 0);
        if (ursa__sema_handoff(sv_sema()))
            sv.handoff_seen = true;
        else if (sv.handoff_seen && !sv.hogs_done && ursa__waitq_queued(&sv_sema()->q) > 0)
            sv.barging_again = true; /* HANDOFF over while waiters still queue */
        URSA_SIM_CHECK(sv_unlock(&g) == 0);
    }
    sv.hogs_done++;
    return NULL;
}

static void *sv_waiter(void *arg)
{
    (void)arg;
    any_guard_t g;
    URSA_SIM_CHECK(sv_lock(&g, sv.kind == 2 ? 2 : 1) == 0);
    sv.waiter_in = true;
    sv.waiter_got_at = sv.hog_round;
    URSA_SIM_CHECK(ursa_sleep_for(URSA_USEC(10)) == 0);
    sv.waiter_in = false;
    URSA_SIM_CHECK(sv_unlock(&g) == 0);
    return NULL;
}

static void *sv_root(void *arg)
{
    memset(&sv, 0, sizeof sv);
    sv.kind = (int)(intptr_t)arg;
    sv.waiter_got_at = -1;
    sv.handoffs0 = handoffs();
    if (sv.kind == 0 || sv.kind == 3)
        URSA_SIM_CHECK(ursa_mutex_init_attr(&sv.m, &barging_attr) == 0);
    else if (sv.kind == 1)
        URSA_SIM_CHECK(ursa_rwlock_init_attr(&sv.rw, 4, &barging_attr) == 0);
    else
        URSA_SIM_CHECK(ursa_sem_init_flags(&sv.s, 2, URSA_SEM_BARGING) == 0);
    ursa_task_t *hog[3], *w;
    /* Three hogs: one holds and two queue, so the queue never drains. */
    int nhogs = sv.kind == 3 ? 3 : sv.kind == 2 ? 2 : 1;
    for (int i = 0; i < nhogs; i++)
        URSA_SIM_CHECK(spawn_named(&hog[i], sv_hog, NULL, "hog", -1) == 0);
    YIELD_UNTIL(sv.hog_round > 0 || ursa_sleep_for(URSA_USEC(1)) != 0);
    URSA_SIM_CHECK(spawn_named(&w, sv_waiter, NULL, "waiter", -1) == 0);
    JOIN_OK(w);
    for (int i = 0; i < nhogs; i++)
        JOIN_OK(hog[i]);
    /* The waiter got in long before the hog stopped: the bound switched
     * the lock to hand-off (at least once), and with the queue drained
     * it barges again. */
    URSA_SIM_CHECK(sv.waiter_got_at >= 0 && sv.waiter_got_at < HOG_ROUNDS / 2);
    URSA_SIM_CHECK(handoffs() > sv.handoffs0);
    URSA_SIM_CHECK(!ursa__sema_handoff(sv_sema()));
    URSA_SIM_CHECK(ursa__sema_free(sv_sema()) != UINT64_MAX); /* no waiters */
    if (sv.kind == 3)
        URSA_SIM_CHECK(sv.handoff_seen && sv.barging_again);
    if (sv.kind == 0 || sv.kind == 3)
        URSA_SIM_CHECK(ursa_mutex_destroy(&sv.m) == 0);
    else if (sv.kind == 1)
        URSA_SIM_CHECK(ursa_rwlock_destroy(&sv.rw) == 0);
    else
        URSA_SIM_CHECK(ursa__sema_available(&sv.s.sema) == 2 && ursa_sem_destroy(&sv.s) == 0);
    return NULL;
}

static void test_barging_waiter_is_not_starved_past_the_bound(void **state)
{
    (void)state;
    for (intptr_t kind = 0; kind < 4; kind++)
        test_explore(sv_root, (void *)kind);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- cancel and timeout of barging waiters hold nothing ---- */

static struct {
    ursa_mutex_t m;
    int rc_cancelled, rc_timed;
    bool cancelled_in;
} cw;

static void *cw_cancelled(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    cw.rc_cancelled = ursa_mutex_lock(&cw.m, &g, URSA_NEVER);
    if (cw.rc_cancelled == 0) {
        cw.cancelled_in = true;
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    }
    URSA_SIM_CHECK(cw.rc_cancelled == 0 || g.mutex == NULL);
    return NULL;
}

static void *cw_timed(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    cw.rc_timed = ursa_mutex_lock(&cw.m, &g, ursa_deadline_in(URSA_USEC(300)));
    if (cw.rc_timed == 0)
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    else
        URSA_SIM_CHECK(g.mutex == NULL);
    return NULL;
}

static void *cw_root(void *arg)
{
    unsigned when = (unsigned)(uintptr_t)arg; /* how long the root holds, in yields */
    memset(&cw, 0, sizeof cw);
    cw.rc_cancelled = cw.rc_timed = 1;
    URSA_SIM_CHECK(ursa_mutex_init_attr(&cw.m, &barging_attr) == 0);
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&cw.m, &g, URSA_NEVER) == 0);
    ursa_task_t *a, *b;
    URSA_SIM_CHECK(spawn_named(&a, cw_cancelled, NULL, "cancelled", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&b, cw_timed, NULL, "timed", -1) == 0);
    yield_n(when % 4);
    /* Unlock (a wake) and lock again (a barge) around the cancel and the
     * timeout, so they hit a queued waiter, a woken one, or one that lost
     * its look and queued again. */
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    if (when & 4)
        URSA_SIM_CHECK(ursa_mutex_lock(&cw.m, &g, URSA_NOW) == 0);
    URSA_SIM_CHECK(ursa_task_cancel(a) == 0);
    URSA_SIM_CHECK(ursa_sleep_for(URSA_USEC(500)) == 0);
    if (when & 4)
        URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    JOIN_OK(a);
    JOIN_OK(b);
    URSA_SIM_CHECK(cw.rc_cancelled == 0 || cw.rc_cancelled == -ECANCELED);
    URSA_SIM_CHECK(cw.rc_timed == 0 || cw.rc_timed == -ETIMEDOUT);
    if (when & 4)
        URSA_SIM_CHECK(cw.rc_timed == -ETIMEDOUT); /* held past its deadline */
    /* Nothing held, no look lost: the lock is free and takes a try. */
    URSA_SIM_CHECK(!ursa_mutex_is_locked(&cw.m));
    URSA_SIM_CHECK(ursa__waitq_queued(&cw.m.sema.q) == 0);
    URSA_SIM_CHECK(ursa_mutex_lock(&cw.m, &g, URSA_NOW) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    URSA_SIM_CHECK(ursa_mutex_destroy(&cw.m) == 0);
    return NULL;
}

TEST_EXPLORE_EACH(test_barging_cancelled_or_timed_out_waiter_holds_nothing, cw_root, 0, 1, 2, 3,
                  4, 5, 6, 7)

/* ---- a leaked guard poisons a barging mutex too ---- */

static struct {
    ursa_mutex_t m;
    bool leaker_in;
    int waiter_rc;
} lp;

static void *lp_leaker(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&lp.m, &g, URSA_NEVER) == 0);
    lp.leaker_in = true;
    yield_n(3); /* the waiter queues (or not yet) */
    return NULL; /* still holding g */
}

static void *lp_waiter(void *arg)
{
    (void)arg;
    ursa_mutex_guard_t g = {0};
    YIELD_UNTIL(lp.leaker_in);
    lp.waiter_rc = ursa_mutex_lock(&lp.m, &g, URSA_NEVER);
    URSA_SIM_CHECK(g.mutex == &lp.m);
    if (lp.waiter_rc == -EOWNERDEAD)
        URSA_SIM_CHECK(ursa_mutex_consistent(&lp.m) == 0);
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    return NULL;
}

static void *lp_root(void *arg)
{
    (void)arg;
    memset(&lp, 0, sizeof lp);
    lp.waiter_rc = 1;
    URSA_SIM_CHECK(ursa_mutex_init_attr(&lp.m, &barging_attr) == 0);
    ursa_task_t *l, *w;
    URSA_SIM_CHECK(spawn_named(&l, lp_leaker, NULL, "leaker", -1) == 0);
    URSA_SIM_CHECK(spawn_named(&w, lp_waiter, NULL, "waiter", -1) == 0);
    JOIN_OK(l);
    JOIN_OK(w);
    URSA_SIM_CHECK(lp.waiter_rc == -EOWNERDEAD);
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&lp.m, &g, URSA_NOW) == 0); /* repaired */
    URSA_SIM_CHECK(ursa_mutex_unlock(&g) == 0);
    URSA_SIM_CHECK(ursa_mutex_destroy(&lp.m) == 0);
    return NULL;
}

static void test_barging_leaked_guard_poisons(void **state)
{
    (void)state;
    test_explore(lp_root, NULL);
    /* One leak report per seed. */
    assert_int_equal(test_leak_count(), (int)TEST_SEEDS);
}

/* ---- raw waits are handed the lock (they cannot look again) ---- */

static void test_barging_raw_wait_is_handed_the_lock(void **state)
{
    (void)state;
    ursa_mutex_t m;
    assert_int_equal(ursa_mutex_init_attr(&m, &barging_attr), 0);
    ursa_mutex_guard_t g = {0}, rg = {0};
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), 0);
    rwaker_t rw;
    rwaker_init(&rw, false);
    ursa_wait_t w;
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    /* Handed over: no try barges past it, and its waker ran once. */
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(atomic_load(&rw.count), 1);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w, &rg), 0);
    assert_int_equal(ursa_mutex_unlock(&rg), 0);

    /* Cancelled while queued: nothing held. */
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_lock_start(&m, &w, rwaker(&rw)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_false(ursa_mutex_is_locked(&m));
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(test_leak_count(), 0);
}

/* ---- mutual exclusion over seeds: mutex, rwlock, semaphore(3) ---- */

#define EX_TASKS 6
#define EX_ROUNDS 16

static struct {
    int kind; /* 0 mutex, 1 rwlock (writers and readers), 2 semaphore(3) */
    ursa_mutex_t m;
    ursa_rwlock_t rw;
    ursa_sem_t s;
    int inside, readers, writers;
    uint64_t in_use;
    long successes, timeouts;
    int ids[EX_TASKS];
} ex;

static void *ex_task(void *arg)
{
    int id = *(int *)arg;
    for (int k = 0; k < EX_ROUNDS; k++) {
        int mode = (id + k) % 4;
        ursa_time_t deadline = mode == 1   ? ursa_deadline_in(URSA_USEC(40 * (1 + id)))
                               : mode == 2 ? URSA_NOW
                                           : URSA_NEVER;
        int rc;
        ursa_mutex_guard_t mg = {0};
        ursa_rwlock_write_guard_t wg = {0};
        ursa_rwlock_read_guard_t rg = {0};
        ursa_sem_permit_t p = {0};
        bool reader = ex.kind == 1 && (id % 3) == 2;
        uint64_t n = ex.kind == 2 ? 1 + (uint64_t)((id + k) % 2) : 1;
        if (ex.kind == 0)
            rc = ursa_mutex_lock(&ex.m, &mg, deadline);
        else if (reader)
            rc = ursa_rwlock_read_lock(&ex.rw, &rg, deadline);
        else if (ex.kind == 1)
            rc = ursa_rwlock_write_lock(&ex.rw, &wg, deadline);
        else
            rc = ursa_sem_acquire(&ex.s, n, &p, deadline);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            URSA_SIM_CHECK(mode == (rc == -EAGAIN ? 2 : 1));
            URSA_SIM_CHECK(!mg.mutex && !wg.rw && !rg.rw && !p.sem);
            ex.timeouts++;
            continue;
        }
        URSA_SIM_CHECK(rc == 0);
        if (ex.kind == 0) {
            URSA_SIM_CHECK(ex.inside++ == 0);
        } else if (ex.kind == 1 && reader) {
            URSA_SIM_CHECK(ex.writers == 0);
            ex.readers++;
        } else if (ex.kind == 1) {
            URSA_SIM_CHECK(ex.writers++ == 0 && ex.readers == 0);
        } else {
            ex.in_use += n;
            URSA_SIM_CHECK(ex.in_use <= 3);
        }
        yield_n((unsigned)((id + k) % 3));
        if (k % 5 == 0)
            URSA_SIM_CHECK(ursa_sleep_for(URSA_USEC(100)) == 0);
        ex.successes++;
        if (ex.kind == 0) {
            ex.inside--;
            URSA_SIM_CHECK(ursa_mutex_unlock(&mg) == 0);
        } else if (ex.kind == 1 && reader) {
            ex.readers--;
            URSA_SIM_CHECK(ursa_rwlock_read_unlock(&rg) == 0);
        } else if (ex.kind == 1) {
            ex.writers--;
            URSA_SIM_CHECK(ursa_rwlock_write_unlock(&wg) == 0);
        } else {
            ex.in_use -= n;
            URSA_SIM_CHECK(ursa_sem_release(&p) == 0);
        }
        if (k % 2)
            (void)ursa_yield();
    }
    return NULL;
}

static void *ex_root(void *arg)
{
    memset(&ex, 0, sizeof ex);
    ex.kind = (int)(intptr_t)arg;
    URSA_SIM_CHECK(ursa_mutex_init_attr(&ex.m, &barging_attr) == 0);
    URSA_SIM_CHECK(ursa_rwlock_init_attr(&ex.rw, 8, &barging_attr) == 0);
    URSA_SIM_CHECK(ursa_sem_init_flags(&ex.s, 3, URSA_SEM_BARGING) == 0);
    ursa_task_t *t[EX_TASKS];
    for (int i = 0; i < EX_TASKS; i++) {
        ex.ids[i] = i;
        URSA_SIM_CHECK(spawn_named(&t[i], ex_task, &ex.ids[i], "ex", -1) == 0);
    }
    for (int i = 0; i < EX_TASKS; i++)
        JOIN_OK(t[i]);
    URSA_SIM_CHECK(ex.successes >= EX_TASKS * EX_ROUNDS / 2); /* NEVER modes always succeed */
    URSA_SIM_CHECK(ex.successes + ex.timeouts == EX_TASKS * EX_ROUNDS);
    /* Everything came back, nobody queues. */
    URSA_SIM_CHECK(ursa_mutex_destroy(&ex.m) == 0);
    URSA_SIM_CHECK(ursa_rwlock_destroy(&ex.rw) == 0);
    URSA_SIM_CHECK(ursa__sema_available(&ex.s.sema) == 3);
    URSA_SIM_CHECK(ursa_sem_destroy(&ex.s) == 0);
    return NULL;
}

static void test_barging_excludes_with_timeouts_and_tries_over_seeds(void **state)
{
    (void)state;
    for (intptr_t kind = 0; kind < 3; kind++) {
        test_explore(ex_root, (void *)kind);
        test_explore_workers(2, ex_root, (void *)kind);
    }
    assert_int_equal(test_leak_count(), 0);
}

/* ---- stress: tasks on two workers and plain threads ---- */

#define ST_TASKS 4
#define ST_THREADS 2

static struct {
    ursa_mutex_t m;
    ursa_rwlock_t rw;
    ursa_sem_t s;
    long iters, counter, rcounter;
    _Atomic long sem_in;
    _Atomic int errors, go;
} st;

static void st_loop(int id)
{
    for (long i = 0; i < st.iters; i++) {
        ursa_mutex_guard_t g = {0};
        if (ursa_mutex_lock(&st.m, &g, URSA_NEVER)) {
            atomic_fetch_add(&st.errors, 1);
            continue;
        }
        long v = st.counter;
        if ((i & 63) == 0)
            (void)ursa_yield();
        st.counter = v + 1;
        if (ursa_mutex_unlock(&g))
            atomic_fetch_add(&st.errors, 1);

        if ((i & 3) == (id & 3)) { /* a rwlock writer every few rounds */
            ursa_rwlock_write_guard_t wg = {0};
            if (ursa_rwlock_write_lock(&st.rw, &wg, URSA_NEVER)) {
                atomic_fetch_add(&st.errors, 1);
            } else {
                st.rcounter++;
                if (ursa_rwlock_write_unlock(&wg))
                    atomic_fetch_add(&st.errors, 1);
            }
        } else if ((i & 7) == 1) {
            ursa_rwlock_read_guard_t rg = {0};
            if (ursa_rwlock_read_lock(&st.rw, &rg, URSA_NEVER) == 0) {
                (void)st.rcounter;
                (void)ursa_rwlock_read_unlock(&rg);
            } else {
                atomic_fetch_add(&st.errors, 1);
            }
        }
        ursa_sem_permit_t p = {0};
        uint64_t n = 1 + (uint64_t)(i % 2);
        if (ursa_sem_acquire(&st.s, n, &p, URSA_NEVER)) {
            atomic_fetch_add(&st.errors, 1);
            continue;
        }
        if (atomic_fetch_add(&st.sem_in, (long)n) + (long)n > 3)
            atomic_fetch_add(&st.errors, 1);
        atomic_fetch_sub(&st.sem_in, (long)n);
        if (ursa_sem_release(&p))
            atomic_fetch_add(&st.errors, 1);
    }
}

static void *st_thread(void *arg)
{
    while (!atomic_load(&st.go))
        sched_yield();
    st_loop(ST_TASKS + (int)(intptr_t)arg);
    return NULL;
}

static void *st_task(void *arg)
{
    st_loop((int)(intptr_t)arg);
    return NULL;
}

static void test_barging_excludes_tasks_on_both_workers_and_plain_threads(void **state)
{
    (void)state;
    memset(&st, 0, sizeof st);
    assert_int_equal(ursa_mutex_init_attr(&st.m, &barging_attr), 0);
    assert_int_equal(ursa_rwlock_init_attr(&st.rw, 0, &barging_attr), 0);
    assert_int_equal(ursa_sem_init_flags(&st.s, 3, URSA_SEM_BARGING), 0);
    st.iters = test_scale(5000); /* as test_mutex's stress; CI runs it at 10x */
    run_tasks_and_threads(ST_TASKS, st_task, "contender", ST_THREADS, st_thread, &st.go);
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(st.counter, (ST_TASKS + ST_THREADS) * st.iters);
    assert_false(ursa_mutex_is_locked(&st.m));
    assert_int_equal(ursa_mutex_destroy(&st.m), 0);
    assert_int_equal(ursa_rwlock_destroy(&st.rw), 0);
    assert_int_equal(ursa__sema_available(&st.s.sema), 3);
    assert_int_equal(ursa_sem_destroy(&st.s), 0);
    assert_int_equal(test_leak_count(), 0);
}

TEST_MAIN(LEAK_CHECKED(test_barging_rejects_unknown_flags),
          LEAK_CHECKED(test_barging_mutex_lets_an_arrival_past_a_woken_waiter),
          LEAK_CHECKED(test_barging_waiter_is_not_starved_past_the_bound),
          LEAK_CHECKED(test_barging_cancelled_or_timed_out_waiter_holds_nothing),
          LEAK_CHECKED(test_barging_leaked_guard_poisons),
          LEAK_CHECKED(test_barging_raw_wait_is_handed_the_lock),
          LEAK_CHECKED(test_barging_excludes_with_timeouts_and_tries_over_seeds),
          LEAK_CHECKED(test_barging_excludes_tasks_on_both_workers_and_plain_threads))
