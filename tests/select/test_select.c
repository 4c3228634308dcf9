/* Tests for select (include/ursa/select.h, src/select/): for every case
 * kind, a select that loses leaves the primitive exactly as if it never
 * happened, and one that wins holds what the single call would (in tasks,
 * on plain threads, and in deterministic mode over many seeds); URSA_NOW
 * is a pure try; bad input; the raw form. Races between selects, cancels
 * racing grants and the fairness of the choice: test_select_race.c. */
#include "support.h"

#include "task_checks.h"

#include "kinds.h"

/* ====================================================================== */
/* one kind against an auto-reset event, both made ready by a helper      */
/* ====================================================================== */

typedef struct duel {
    fx_t f;
    ursa_event_t other; /* auto-reset: case 1 */
    ursa_event_t set_up;
    unsigned yields;    /* before the helper makes both ready */
    bool other_first;
    const char *setup_err; /* written before setup_done */
    atomic_int setup_done; /* released after the setup, before set_up is set */
    const char *ready_err; /* read after the helper is joined */
} duel_t;

/* The helper: sets the kind up (its holds are the helper's), then makes
 * both cases ready in the order asked. */
static void *duel_helper(void *arg)
{
    duel_t *d = arg;
    d->setup_err = fx_setup(&d->f, d->f.kind);
    /* release: the setup reaches the select's caller (also under TSan,
     * which does not see the event's acquire fence on a slow path). */
    atomic_store_explicit(&d->setup_done, 1, memory_order_release);
    (void)ursa_event_set(&d->set_up);
    if (d->setup_err)
        return NULL;
    for (unsigned i = 0; i < d->yields; i++)
        (void)ursa_yield();
    if (d->other_first)
        (void)ursa_event_set(&d->other);
    d->ready_err = fx_ready(&d->f);
    if (!d->other_first)
        (void)ursa_event_set(&d->other);
    return NULL;
}

/* What the select's caller checks once it returned i. */
static const char *duel_check(duel_t *d, ursa_case_t *cases, int i)
{
    if (d->ready_err)
        return d->ready_err;
    if (i == 0) {
        CHECK_OK(fx_won(&d->f, cases[0].rc));
        /* the event lost: still set, for the next waiter */
        CHECK_EQ(ursa_event_wait(&d->other, URSA_NOW), 0);
    } else {
        CHECK_EQ(i, 1);
        CHECK_EQ(cases[1].rc, 0);
        CHECK_EQ(ursa_event_wait(&d->other, URSA_NOW), -EAGAIN); /* consumed */
        CHECK_OK(fx_untouched(&d->f));
    }
    return NULL;
}

/* In a task: one duel for `kind` (the select runs here, the helper is a
 * task that may run on another worker). won[i] counts the winners. */
static const char *duel_in_task(int kind, unsigned yields, bool other_first, unsigned *won)
{
    duel_t d;
    memset(&d, 0, sizeof d);
    d.f.kind = kind;
    d.yields = yields;
    d.other_first = other_first;
    CHECK_EQ(ursa_event_init(&d.other, URSA_EVENT_AUTO, false), 0);
    CHECK_EQ(ursa_event_init(&d.set_up, URSA_EVENT_MANUAL, false), 0);
    ursa_task_t *h;
    CHECK_EQ(ursa_spawn(&h, duel_helper, &d, NULL), 0);
    CHECK_EQ(ursa_event_wait(&d.set_up, test_guard_deadline()), 0);
    CHECK(atomic_load_explicit(&d.setup_done, memory_order_acquire)); /* pairs with the helper */
    const char *err = d.setup_err;
    int i = -1;
    ursa_case_t cases[2];
    if (!err) {
        cases[0] = fx_case(&d.f);
        cases[1] = ursa_case_event(&d.other);
        i = ursa_select(cases, 2, 0, test_guard_deadline());
    }
    CHECK_EQ(ursa_task_join(h, NULL, test_guard_deadline()), 0);
    if (!err) {
        CHECK(i == 0 || i == 1);
        err = duel_check(&d, cases, i);
        if (won)
            won[i]++;
    }
    fx_teardown(&d.f);
    (void)ursa_event_destroy(&d.other);
    (void)ursa_event_destroy(&d.set_up);
    return err;
}

static void *duels_body(void *arg)
{
    (void)arg;
    unsigned rounds = (unsigned)test_scale(40);
    for (size_t k = 0; k < FX_KINDS; k++) {
        unsigned won[2] = {0, 0};
        for (unsigned r = 0; r < rounds; r++) {
            const char *m = duel_in_task(fx_kinds[k], r % 4, r & 1, won);
            if (m)
                return (void *)failf("kind %d round %u: %s", fx_kinds[k], r, m);
        }
        /* both sides won some rounds: each path above was taken */
        if (!won[0] || !won[1])
            return (void *)failf("kind %d: won %u / %u", fx_kinds[k], won[0], won[1]);
    }
    return NULL;
}

static void duels_in_tasks(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, duels_body, NULL));
    ASSERT_OK(test_run(1, duels_body, NULL));
}

/* Deterministic mode: one duel per kind per seed (fd readiness is not
 * simulated: real pipes, skipped). */
static void *duels_scenario(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < FX_KINDS; k++) {
        if (fx_kinds[k] == URSA_CASE_FD_READABLE || fx_kinds[k] == URSA_CASE_POOL_ACQUIRE)
            continue;
        unsigned yields = (unsigned)(ursa_now() % 3);
        const char *m = duel_in_task(fx_kinds[k], yields, k & 1, NULL);
        if (m)
            return (void *)failf("kind %d: %s", fx_kinds[k], m);
    }
    return NULL;
}

TEST_EXPLORE(duels_explored, duels_scenario, NULL)

/* ---- on a plain thread: the helper is a thread ---- */

static void *duel_thread(void *arg)
{
    duel_t *d = arg;
    (void)duel_helper(d);
    return NULL;
}

static const char *duel_on_thread(int kind, bool other_first)
{
    duel_t d;
    memset(&d, 0, sizeof d);
    d.f.kind = kind;
    d.other_first = other_first;
    CHECK_EQ(ursa_event_init(&d.other, URSA_EVENT_AUTO, false), 0);
    CHECK_EQ(ursa_event_init(&d.set_up, URSA_EVENT_MANUAL, false), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, duel_thread, &d), 0);
    CHECK_EQ(ursa_event_wait(&d.set_up, test_guard_deadline()), 0);
    CHECK(atomic_load_explicit(&d.setup_done, memory_order_acquire)); /* pairs with the helper */
    const char *err = d.setup_err;
    int i = -1;
    ursa_case_t cases[2];
    if (!err) {
        cases[0] = fx_case(&d.f);
        cases[1] = ursa_case_event(&d.other);
        i = ursa_select(cases, 2, 0, test_guard_deadline());
    }
    pthread_join(th, NULL);
    if (!err)
        err = i < 0 ? failf("select returned %d", i) : duel_check(&d, cases, i);
    fx_teardown(&d.f);
    (void)ursa_event_destroy(&d.other);
    (void)ursa_event_destroy(&d.set_up);
    return err;
}

static void duels_on_threads(void **state)
{
    (void)state;
    unsigned rounds = (unsigned)test_scale(40);
    for (size_t k = 0; k < FX_KINDS; k++) {
        /* a pool and a task need a runtime */
        if (fx_kinds[k] == URSA_CASE_POOL_ACQUIRE || fx_kinds[k] == URSA_CASE_TASK_JOIN ||
            fx_kinds[k] == URSA_CASE_GROUP_JOIN_NEXT)
            continue;
        for (unsigned r = 0; r < rounds; r++) {
            const char *m = duel_on_thread(fx_kinds[k], r & 1);
            if (m)
                fail_msg("kind %d round %u: %s", fx_kinds[k], r, m);
        }
    }
}

/* ====================================================================== */
/* URSA_NOW: a pure try                                                   */
/* ====================================================================== */

static void *now_body(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < FX_KINDS; k++) {
        fx_t f;
        CHECK_OK(fx_setup(&f, fx_kinds[k]));
        ursa_notify_t n;
        CHECK_EQ(ursa_notify_init(&n), 0);
        ursa_case_t cases[2] = {fx_case(&f), ursa_case_notify(&n)};
        /* nothing ready: -EAGAIN, and nobody was queued anywhere: a
         * notification now is stored, not taken by a leftover waiter */
        CHECK_EQ(ursa_select(cases, 2, 0, URSA_NOW), -EAGAIN);
        CHECK_EQ(ursa_notify_one(&n), 1);
        CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0);
        CHECK_OK(fx_ready(&f));
        /* now the kind is ready: it wins, exactly as its try would */
        cases[0] = fx_case(&f);
        int i;
        for (int t = 0; (i = ursa_select(cases, 2, URSA_SELECT_ORDERED, URSA_NOW)) == -EAGAIN &&
                        t < 100000;
             t++)
            (void)ursa_yield(); /* a joined task must run to its end first */
        CHECK_EQ(i, 0);
        CHECK_OK(fx_won(&f, cases[0].rc));
        fx_teardown(&f);
        (void)ursa_notify_destroy(&n);
    }
    return NULL;
}

TEST_BODY(now_is_a_pure_try, test_run(1, now_body, NULL))

/* ====================================================================== */
/* bad input                                                              */
/* ====================================================================== */

static void bad_input(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_mutex_guard_t g = {0}, held = {0};
    assert_int_equal(ursa_mutex_init(&m), 0);
    ursa_event_t e;
    assert_int_equal(ursa_event_init(&e, URSA_EVENT_MANUAL, false), 0);
    ursa_case_t c[URSA_SELECT_MAX + 1];
    for (int i = 0; i <= URSA_SELECT_MAX; i++)
        c[i] = ursa_case_event(&e);

    assert_int_equal(ursa_select(NULL, 1, 0, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_select(c, 0, 0, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_select(c, URSA_SELECT_MAX + 1, 0, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_select(c, URSA_SELECT_MAX, 0, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_select(c, 1, 0x80, URSA_NOW), -EINVAL); /* unknown flag */
    c[0].kind = URSA_CASE_NONE;
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0].kind = URSA_CASE__COUNT;
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0].kind = -3;
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_event(NULL);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_lock(&m, NULL);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    /* a guard that still holds */
    assert_int_equal(ursa_mutex_lock(&m, &held, URSA_NOW), 0);
    c[0] = ursa_case_lock(&m, &held);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NEVER), -EINVAL);
    assert_int_equal(ursa_mutex_unlock(&held), 0);
    ursa_sem_t s;
    ursa_sem_permit_t p = {0};
    assert_int_equal(ursa_sem_init(&s, 1), 0);
    c[0] = ursa_case_acquire(&s, 0, &p);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_acquire(&s, URSA_SEM_REQUEST_MAX + 1, &p);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_readable(-1);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_send_mpsc(NULL, &g);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    c[0] = ursa_case_sleep_until(-5);
    assert_int_equal(ursa_select(c, 1, 0, URSA_NOW), -EINVAL);
    /* one receiver twice: its single wait slot cannot hold two waits */
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    uint64_t o;
    assert_int_equal(ursa_mpsc_new(&rx, &tx, sizeof o, 4, NULL), 0);
    c[0] = ursa_case_recv_mpsc(&rx, &o);
    c[1] = ursa_case_recv_mpsc(&rx, &o);
    assert_int_equal(ursa_select(c, 2, 0, URSA_NEVER), -EINVAL);
    /* raw form: fd and sleep cases are the loop's own business */
    ursa_select_t sel;
    ursa_waker_t wk = {(void (*)(void *))abort, NULL};
    c[0] = ursa_case_event(&e);
    c[1] = ursa_case_sleep_until(URSA_NEVER);
    assert_int_equal(ursa_select_start(&sel, c, 2, 0, wk), -EINVAL);
    c[1] = ursa_case_readable(0);
    assert_int_equal(ursa_select_start(&sel, c, 2, 0, wk), -EINVAL);
    assert_int_equal(ursa_select_start(NULL, c, 1, 0, wk), -EINVAL);
    assert_int_equal(ursa_select_start(&sel, c, 1, 0, (ursa_waker_t){NULL, NULL}), -EINVAL);
    assert_int_equal(ursa_select_finish(NULL), -EINVAL);
    assert_int_equal(ursa_select_cancel(NULL), -EINVAL);
    /* nothing changed by any of it */
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
    assert_int_equal(ursa_sem_release(&p), 0);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_sem_destroy(&s), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_event_destroy(&e), 0);
}

/* ====================================================================== */
/* deadlines, sleep-until, cancel                                         */
/* ====================================================================== */

static void *deadline_body(void *arg)
{
    (void)arg;
    ursa_notify_t n;
    CHECK_EQ(ursa_notify_init(&n), 0);
    ursa_case_t c[3] = {ursa_case_notify(&n)};
    CHECK_EQ(ursa_select(c, 1, 0, ursa_deadline_in(URSA_MSEC(2))), -ETIMEDOUT);
    /* withdrawn: a notification is stored, not lost to a stale waiter */
    CHECK_EQ(ursa_notify_one(&n), 1);
    CHECK_EQ(ursa_notify_wait(&n, URSA_NOW), 0);
    /* the earliest due sleep wins; a deadline before it times out */
    ursa_time_t now = ursa_now();
    c[1] = ursa_case_sleep_until(now + URSA_MSEC(3));
    c[2] = ursa_case_sleep_until(now + URSA_MSEC(1));
    c[1].rc = c[2].rc = 99;
    CHECK_EQ(ursa_select(c, 3, 0, URSA_NEVER), 2);
    CHECK_EQ(c[2].rc, 0);
    CHECK_EQ(c[1].rc, 99);
    c[1] = ursa_case_sleep_until(ursa_now() + URSA_SEC(60));
    CHECK_EQ(ursa_select(c, 2, 0, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    c[1] = ursa_case_sleep_until(0); /* past: ready at once */
    CHECK_EQ(ursa_select(c, 2, 0, URSA_NOW), 1);
    (void)ursa_notify_destroy(&n);
    return NULL;
}

TEST_BODY(deadlines_and_sleeps_in_a_task, test_run(1, deadline_body, NULL))
TEST_BODY(deadlines_and_sleeps_on_a_thread, deadline_body(NULL))

typedef struct blocked {
    ursa_notify_t n;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    atomic_int in_select;
    int rc;
} blocked_t;

static void *blocked_fn(void *arg)
{
    blocked_t *b = arg;
    uint64_t o;
    ursa_case_t c[2] = {ursa_case_notify(&b->n), ursa_case_recv_mpsc(&b->rx, &o)};
    atomic_store(&b->in_select, 1);
    b->rc = ursa_select(c, 2, 0, URSA_NEVER);
    return NULL;
}

static void *cancel_body(void *arg)
{
    (void)arg;
    blocked_t b;
    memset(&b, 0, sizeof b);
    CHECK_EQ(ursa_notify_init(&b.n), 0);
    CHECK_EQ(ursa_mpsc_new(&b.rx, &b.tx, sizeof(uint64_t), 2, NULL), 0);
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, blocked_fn, &b, NULL), 0);
    YIELD_UNTIL(atomic_load(&b.in_select));
    for (int i = 0; i < 3; i++)
        (void)ursa_yield();
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_EQ(ursa_task_join(t, NULL, test_guard_deadline()), 0);
    CHECK_EQ(b.rc, -ECANCELED);
    /* nothing left behind: a notification is stored, a message stays */
    CHECK_EQ(ursa_notify_one(&b.n), 1);
    CHECK_EQ(ursa_notify_wait(&b.n, URSA_NOW), 0);
    uint64_t v = 5, o = 0;
    CHECK_EQ(ursa_mpsc_send(&b.tx, &v, URSA_NOW), 0);
    CHECK_EQ(ursa_mpsc_try_recv(&b.rx, &o), 0);
    CHECK_EQ(o, 5);
    (void)ursa_mpsc_sender_drop(&b.tx);
    (void)ursa_mpsc_receiver_drop(&b.rx);
    (void)ursa_notify_destroy(&b.n);
    return NULL;
}

TEST_BODY(a_cancelled_task_leaves_nothing, test_run(2, cancel_body, NULL))

/* ====================================================================== */
/* fd cases                                                               */
/* ====================================================================== */

typedef struct piped {
    int fd[2];
    ursa_time_t delay;
} piped_t;

static void *late_writer(void *arg)
{
    piped_t *p = arg;
    sleep_real_ms((int)(p->delay / 1000000));
    char b = 'y';
    ssize_t n = write(p->fd[1], &b, 1);
    (void)n;
    return NULL;
}

static void *fd_body(void *arg)
{
    (void)arg;
    piped_t p = {.delay = URSA_MSEC(5)};
    CHECK_EQ(pipe2(p.fd, O_CLOEXEC | O_NONBLOCK), 0);
    ursa_event_t e;
    CHECK_EQ(ursa_event_init(&e, URSA_EVENT_MANUAL, false), 0);
    ursa_case_t c[3] = {ursa_case_readable(p.fd[0]), ursa_case_event(&e),
                        ursa_case_writable(p.fd[1])};
    /* writable at once; readable not */
    CHECK_EQ(ursa_select(c, 3, 0, URSA_NOW), 2);
    CHECK(c[2].rc & POLLOUT);
    CHECK_EQ(ursa_select(c, 2, 0, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_select(c, 2, 0, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    /* a byte arrives from another thread while we wait */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_writer, &p), 0);
    CHECK_EQ(ursa_select(c, 2, 0, test_guard_deadline()), 0);
    CHECK(c[0].rc & POLLIN);
    pthread_join(th, NULL);
    /* the event set while the fd waits: the fd case is withdrawn */
    char b;
    CHECK_EQ(read(p.fd[0], &b, 1), 1);
    CHECK_EQ(ursa_event_set(&e), 1);
    CHECK_EQ(ursa_select(c, 2, 0, test_guard_deadline()), 1);
    close(p.fd[0]);
    close(p.fd[1]);
    (void)ursa_event_destroy(&e);
    return NULL;
}

TEST_BODY(fd_cases_in_a_task, test_run(1, fd_body, NULL))
TEST_BODY(fd_cases_on_a_thread, fd_body(NULL))

/* ====================================================================== */
/* the raw form                                                           */
/* ====================================================================== */

static atomic_int raw_wakes;

static void raw_wake(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&raw_wakes, 1);
}

static void raw_form(void **state)
{
    (void)state;
    ursa_notify_t n;
    ursa_mutex_t m;
    ursa_mutex_guard_t held = {0}, g = {0};
    assert_int_equal(ursa_notify_init(&n), 0);
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_int_equal(ursa_mutex_lock(&m, &held, URSA_NOW), 0);
    ursa_case_t c[2] = {ursa_case_lock(&m, &g), ursa_case_notify(&n)};
    ursa_select_t s;
    ursa_waker_t wk = {raw_wake, NULL};

    /* started, won by the notify, finished */
    atomic_store(&raw_wakes, 0);
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_select_finish(&s), -EAGAIN);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(atomic_load(&raw_wakes), 1);
    assert_int_equal(ursa_select_finish(&s), 1);
    assert_int_equal(ursa_select_finish(&s), -EINVAL); /* over */
    /* the lock case lost: unlocking hands the mutex to nobody */
    assert_int_equal(ursa_mutex_unlock(&held), 0);
    assert_null(g.mutex);
    assert_int_equal(atomic_load(&raw_wakes), 1);

    /* ready at once: the index straight away */
    assert_int_equal(ursa_select_start(&s, c, 2, URSA_SELECT_ORDERED, wk), 0);
    assert_ptr_equal(g.mutex, &m);
    assert_int_equal(ursa_mutex_unlock(&g), 0);

    /* cancelled: nothing held, the notification goes to the next */
    assert_int_equal(ursa_mutex_lock(&m, &held, URSA_NOW), 0);
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_select_cancel(&s), -ECANCELED);
    assert_int_equal(ursa_select_cancel(&s), -EINVAL);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_wait(&n, URSA_NOW), 0);
    /* won but cancelled before the finish: given back */
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_mutex_unlock(&held), 0);
    assert_int_equal(ursa_select_cancel(&s), -ECANCELED);
    assert_null(g.mutex);
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

/* ====================================================================== */
/* queue order: a select's losing case neither keeps nor takes a place    */
/* ====================================================================== */

static void queue_order_kept(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_notify_t n;
    ursa_event_t e;
    ursa_mutex_guard_t h = {0}, g = {0}, g1 = {0}, g2 = {0};
    assert_int_equal(ursa_mutex_init(&m), 0);
    assert_int_equal(ursa_notify_init(&n), 0);
    assert_int_equal(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    ursa_waker_t wk = {raw_wake, NULL};
    ursa_wait_t w1, w2;
    ursa_select_t s;

    /* W1, then the select's lock case, then W2 queue on m; the select
     * wins by its event; the unlock goes to W1, and W1's to W2. */
    assert_int_equal(ursa_mutex_lock(&m, &h, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_lock_start(&m, &w1, wk), -EINPROGRESS);
    ursa_case_t c[2] = {ursa_case_lock(&m, &g), ursa_case_event(&e)};
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_mutex_lock_start(&m, &w2, wk), -EINPROGRESS);
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(ursa_select_finish(&s), 1);
    assert_int_equal(ursa_mutex_unlock(&h), 0);
    assert_true(ursa_wait_ready(&w1));
    assert_false(ursa_wait_ready(&w2));
    assert_int_equal(ursa_mutex_lock_finish(&m, &w1, &g1), 0);
    assert_int_equal(ursa_mutex_unlock(&g1), 0);
    assert_true(ursa_wait_ready(&w2));
    assert_int_equal(ursa_mutex_lock_finish(&m, &w2, &g2), 0);
    assert_int_equal(ursa_mutex_unlock(&g2), 0);
    assert_null(g.mutex);

    /* The select's lock case at the head of the queue with its claim
     * already lost (the event won, not finished yet): the unlock passes
     * over it to W2, never granting it. */
    assert_int_equal(ursa_mutex_lock(&m, &h, URSA_NOW), 0);
    c[0] = ursa_case_lock(&m, &g);
    c[1] = ursa_case_event(&e);
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_mutex_lock_start(&m, &w2, wk), -EINPROGRESS);
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(ursa_mutex_unlock(&h), 0);
    assert_true(ursa_wait_ready(&w2));
    assert_int_equal(ursa_select_finish(&s), 1);
    assert_null(g.mutex);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w2, &g2), 0);
    assert_int_equal(ursa_mutex_unlock(&g2), 0);

    /* The same for a notification: it goes to the plain waiter behind the
     * select's dropped case, and the next one is stored. */
    c[0] = ursa_case_notify(&n);
    c[1] = ursa_case_event(&e);
    assert_int_equal(ursa_select_start(&s, c, 2, 0, wk), -EINPROGRESS);
    assert_int_equal(ursa_notify_wait_start(&n, &w2, wk), -EINPROGRESS);
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_true(ursa_wait_ready(&w2));
    assert_int_equal(ursa_notify_wait_finish(&n, &w2), 0);
    assert_int_equal(ursa_select_finish(&s), 1);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_wait(&n, URSA_NOW), 0);

    assert_int_equal(ursa_mutex_destroy(&m), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
    assert_int_equal(ursa_event_destroy(&e), 0);
}

/* The raw form over every kind: started while nothing is ready, then the
 * kind and the event are made ready in either order (the first one
 * wins: the select's waker is called once), finished; the loser is left
 * as if never started. In a task (the pool and the join need one). */
static void *raw_kinds_body(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < FX_KINDS; k++) {
        if (fx_kinds[k] == URSA_CASE_FD_READABLE)
            continue; /* the loop polls its own fds */
        for (int kind_first = 0; kind_first < 2; kind_first++) {
            fx_t f;
            ursa_event_t e;
            CHECK_OK(fx_setup(&f, fx_kinds[k]));
            CHECK_EQ(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
            ursa_case_t c[2] = {fx_case(&f), ursa_case_event(&e)};
            ursa_select_t s;
            atomic_store(&raw_wakes, 0);
            CHECK_EQ(ursa_select_start(&s, c, 2, 0, (ursa_waker_t){raw_wake, NULL}), -EINPROGRESS);
            if (kind_first) {
                CHECK_OK(fx_ready(&f));
                /* a joined task must end first: let it run */
                for (int t = 0; t < 100000 && !atomic_load(&raw_wakes); t++)
                    (void)ursa_yield();
                CHECK_EQ(ursa_event_set(&e), 1);
            } else {
                CHECK_EQ(ursa_event_set(&e), 1);
                CHECK_OK(fx_ready(&f));
            }
            CHECK_EQ(atomic_load(&raw_wakes), 1);
            int i = ursa_select_finish(&s);
            if (kind_first) {
                CHECK_EQ(i, 0);
                CHECK_OK(fx_won(&f, c[0].rc));
                CHECK_EQ(ursa_event_wait(&e, URSA_NOW), 0); /* the event lost: still set */
            } else {
                CHECK_EQ(i, 1);
                CHECK_OK(fx_untouched(&f));
            }
            fx_teardown(&f);
            (void)ursa_event_destroy(&e);
        }
    }
    return NULL;
}

TEST_BODY(raw_form_over_every_kind, test_run(1, raw_kinds_body, NULL))

/* An mpmc receive that won finds the message gone (another receiver was
 * faster): the select starts over, nothing taken, and later wins by
 * another case. */
static void a_won_case_that_finds_nothing_starts_over(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    ursa_event_t e;
    uint64_t out = 0, v = 7, o = 0;
    assert_int_equal(ursa_mpmc_new(&rx, &tx, sizeof v, 4, NULL), 0);
    assert_int_equal(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    ursa_case_t c[2] = {ursa_case_recv_mpmc(&rx, &out), ursa_case_event(&e)};
    ursa_select_t s;
    atomic_store(&raw_wakes, 0);
    assert_int_equal(ursa_select_start(&s, c, 2, 0, (ursa_waker_t){raw_wake, NULL}), -EINPROGRESS);
    assert_int_equal(ursa_mpmc_send(&tx, &v, URSA_NOW), 0); /* wakes the select's receive */
    assert_int_equal(atomic_load(&raw_wakes), 1);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &o), 0); /* another receiver takes it */
    assert_int_equal(o, 7);
    assert_int_equal(ursa_select_finish(&s), -EAGAIN); /* started again */
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(atomic_load(&raw_wakes), 2);
    assert_int_equal(ursa_select_finish(&s), 1);
    assert_int_equal(out, 0);
    /* the receive case was withdrawn: a new message is there for anyone */
    assert_int_equal(ursa_mpmc_send(&tx, &v, URSA_NOW), 0);
    assert_int_equal(ursa_mpmc_try_recv(&rx, &o), 0);
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
    assert_int_equal(ursa_event_destroy(&e), 0);
}

TEST_MAIN(cmocka_unit_test(queue_order_kept), cmocka_unit_test(raw_form_over_every_kind),
          cmocka_unit_test(a_won_case_that_finds_nothing_starts_over), cmocka_unit_test(bad_input), cmocka_unit_test(now_is_a_pure_try),
          cmocka_unit_test(duels_in_tasks), cmocka_unit_test(duels_on_threads),
          cmocka_unit_test(duels_explored), cmocka_unit_test(deadlines_and_sleeps_in_a_task),
          cmocka_unit_test(deadlines_and_sleeps_on_a_thread),
          cmocka_unit_test(a_cancelled_task_leaves_nothing),
          cmocka_unit_test(fd_cases_in_a_task), cmocka_unit_test(fd_cases_on_a_thread),
          cmocka_unit_test(raw_form))
