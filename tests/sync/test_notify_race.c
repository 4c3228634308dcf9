/* notify under races: a notification racing a withdrawal (notify_last,
 * enabled waits; the plain-wait cases are in the contract suite) over
 * seeds, and on threads: consumers take every token, and notifications
 * made equal those taken plus the one stored. */
#include "support.h"

#include "queue_peek.h" /* internal: the queue, the stored permit */
#include "task_checks.h"
#include "ursa/notify.h"

/* ====================================================================== */
/* a notification racing a withdrawal, deterministic                      */
/* ====================================================================== */

/* The race in deterministic mode. At instant D, N notifies once while A's
 * deadline fires and/or C cancels A (or A, a raw or enabled waiter,
 * withdraws itself). B waits behind A until D + 1 ms. Whatever the order:
 * exactly one of A, B and the stored permit ends up with the notification. */
enum {
    FW_DEADLINE = 1,
    FW_CANCEL = 2,
    FW_RAW = 4,      /* A: raw wait, cancelled at D */
    FW_ENABLE = 8,   /* A: enabled wait, disabled at D */
    FW_ENWAIT = 16,  /* A: enabled wait, wait_enabled with deadline D */
    FW_LAST = 32,    /* notify_last; B queues before A */
};

typedef struct fw {
    int mode;
    ursa_notify_t n;
    ursa_time_t d;
    ursa_task_t *a;
    int a_ok, b_ok;
    long a_got, a_missed; /* over all seeds: A won / lost the race */
} fw_t;

static void *fw_a(void *arg)
{
    fw_t *f = arg;
    f->a_ok = 0;
    if (f->mode & FW_RAW) {
        ursa_wait_t w;
        cw_t cw;
        cw_init(&cw);
        CHECK_EQ(ursa_notify_wait_start(&f->n, &w, cw_waker(&cw)), -EINPROGRESS);
        (void)ursa_sleep_until(f->d);
        bool reached = ursa_wait_ready(&w);
        CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED); /* always withdraws */
        CHECK_EQ(atomic_load(&cw.calls), reached ? 1 : atomic_load(&cw.calls));
        if (atomic_load(&cw.calls))
            f->a_got++;
        else
            f->a_missed++;
        return NULL;
    }
    if (f->mode & (FW_ENABLE | FW_ENWAIT)) {
        ursa_wait_t w;
        CHECK_EQ(ursa_notify_enable(&f->n, &w), 0);
        if (f->mode & FW_ENABLE) {
            (void)ursa_sleep_until(f->d);
            int rc = ursa_notify_disable(&f->n, &w);
            CHECK(rc == 0 || rc == 1);
            if (rc == 1)
                f->a_got++; /* reached A and was passed on */
            else
                f->a_missed++;
            return NULL;
        }
        int rc = ursa_notify_wait_enabled(&f->n, &w, f->d);
        CHECK(rc == 0 || rc == -ETIMEDOUT);
        f->a_ok = rc == 0;
    } else {
        ursa_time_t dl = (f->mode & FW_DEADLINE) ? f->d : URSA_NEVER;
        int rc = ursa_notify_wait(&f->n, dl);
        if ((f->mode & FW_DEADLINE) && (f->mode & FW_CANCEL))
            CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED);
        else if (f->mode & FW_DEADLINE)
            CHECK(rc == 0 || rc == -ETIMEDOUT);
        else
            CHECK(rc == 0 || rc == -ECANCELED);
        f->a_ok = rc == 0;
    }
    if (f->a_ok)
        f->a_got++;
    else
        f->a_missed++;
    return NULL;
}

static void *fw_b(void *arg)
{
    fw_t *f = arg;
    int rc = ursa_notify_wait(&f->n, f->d + URSA_MSEC(1));
    CHECK(rc == 0 || rc == -ETIMEDOUT);
    f->b_ok = rc == 0;
    return NULL;
}

static void *fw_n(void *arg)
{
    fw_t *f = arg;
    CHECK_EQ(ursa_sleep_until(f->d), 0);
    CHECK_EQ((f->mode & FW_LAST) ? ursa_notify_last(&f->n) : ursa_notify_one(&f->n), 1);
    return NULL;
}

static void *fw_c(void *arg)
{
    fw_t *f = arg;
    CHECK_EQ(ursa_sleep_until(f->d), 0);
    CHECK_EQ(ursa_task_cancel(f->a), 0);
    return NULL;
}

static void *fw_scenario(void *arg)
{
    fw_t *f = arg;
    f->a_ok = f->b_ok = 0;
    CHECK_EQ(ursa_notify_init(&f->n), 0);
    f->d = ursa_now() + URSA_MSEC(10);
    ursa_task_t *b = NULL, *c = NULL;
    if (f->mode & FW_LAST) {
        b = spawn_on(0, fw_b, f, "B");
        CHECK(SETTLE_UNTIL(peek_notify_len(&f->n) >= (1)));
    }
    f->a = spawn_on(0, fw_a, f, "A");
    CHECK(f->a);
    CHECK(SETTLE_UNTIL(peek_notify_len(&f->n) >= ((f->mode & FW_LAST) ? 2 : 1)));
    if (!(f->mode & FW_LAST)) {
        b = spawn_on(0, fw_b, f, "B");
        CHECK(SETTLE_UNTIL(peek_notify_len(&f->n) >= (2)));
    }
    CHECK(b);
    ursa_task_t *nt = spawn_on(0, fw_n, f, "N");
    CHECK(nt);
    if (f->mode & FW_CANCEL) {
        c = spawn_on(0, fw_c, f, "C");
        CHECK(c);
    }
    CHECK_OK(join_task(nt));
    if (c)
        CHECK_OK(join_task(c));
    CHECK_OK(join_task(f->a));
    CHECK_OK(join_task(b));
    int stored = ursa_notify_wait(&f->n, URSA_NOW) == 0;
    /* sent one, delivered exactly one */
    if (f->a_ok + f->b_ok + stored != 1)
        return (void *)failf("notification count: A %d + B %d + stored %d != 1", f->a_ok,
                             f->b_ok, stored);
    CHECK_EQ(peek_notify_len(&f->n), 0);
    CHECK_EQ(ursa_notify_destroy(&f->n), 0);
    return NULL;
}

static void fw_explore(int mode)
{
    fw_t f = {.mode = mode};
    test_explore(fw_scenario, &f);
    const char *replay = getenv("URSA_SEED");
    if (TEST_SEEDS >= 50 && !(replay && *replay) && (f.a_got == 0 || f.a_missed == 0))
        fail_msg("mode %d: notification reached A %ld times, missed it %ld times: the race "
                 "was not exercised both ways",
                 mode, f.a_got, f.a_missed);
}

static void test_notify_last_racing_a_withdrawal_passes_it_on_over_seeds(void **state)
{
    (void)state;
    fw_explore(FW_DEADLINE | FW_LAST);
    fw_explore(FW_RAW | FW_LAST);
}

static void test_notify_enabled_wait_racing_a_notification_passes_it_on_over_seeds(void **state)
{
    (void)state;
    fw_explore(FW_ENABLE);
    fw_explore(FW_ENWAIT);
    fw_explore(FW_ENABLE | FW_LAST);
}

/* ====================================================================== */
/* multi-thread stress                                                    */
/* ====================================================================== */

/* Producers (pthreads and tasks on both workers) add a token and
 * notify_one; consumers take tokens, and wait when there are none, with a
 * plain wait (the stored permit closes the window) or enable/check/wait.
 * A lost wake-up would leave a consumer asleep with tokens left: it would
 * time out (counted, must be 0). Every token is consumed exactly once. */
typedef struct tok {
    ursa_notify_t n;
    atomic_long tokens, consumed, produced, timeouts;
    long per_producer, total;
    _Atomic(const char *) fail;
} tok_t;

static bool tok_take(tok_t *t)
{
    long v = atomic_load(&t->tokens);
    while (v > 0)
        if (atomic_compare_exchange_weak(&t->tokens, &v, v - 1)) {
            atomic_fetch_add(&t->consumed, 1);
            return true;
        }
    return false;
}

static void *tok_producer(void *arg)
{
    tok_t *t = arg;
    for (long i = 0; i < t->per_producer; i++) {
        atomic_fetch_add(&t->tokens, 1);
        atomic_fetch_add(&t->produced, 1);
        CHECK(ursa_notify_one(&t->n) >= 0);
        if (i % 16 == 0)
            CHECK(ursa_notify_waiters(&t->n) >= 0); /* extra wakes are harmless */
        if (i % 64 == 0)
            (void)ursa_yield();
    }
    return NULL;
}

static void *tok_consumer(void *arg, bool enable)
{
    tok_t *t = arg;
    ursa_wait_t w;
    while (atomic_load(&t->consumed) < t->total) {
        if (tok_take(t))
            continue;
        int rc;
        if (enable) {
            CHECK_EQ(ursa_notify_enable(&t->n, &w), 0);
            if (atomic_load(&t->tokens) > 0 || atomic_load(&t->consumed) >= t->total) {
                int d = ursa_notify_disable(&t->n, &w);
                CHECK(d == 0 || d == 1);
                continue;
            }
            rc = ursa_notify_wait_enabled(&t->n, &w, test_guard_deadline());
        } else {
            rc = ursa_notify_wait(&t->n, test_guard_deadline());
        }
        if (rc == -ETIMEDOUT)
            atomic_fetch_add(&t->timeouts, 1);
        else
            CHECK_EQ(rc, 0);
    }
    /* the last token taken: let the others see the end */
    CHECK(ursa_notify_waiters(&t->n) >= 0);
    CHECK(ursa_notify_one(&t->n) >= 0);
    return NULL;
}

static void *tok_consumer_plain(void *arg)
{
    return tok_consumer(arg, false);
}

static void *tok_consumer_enable(void *arg)
{
    return tok_consumer(arg, true);
}

static void *tok_root(void *arg)
{
    tok_t *t = arg;
    pthread_t th[4];
    void *thres[4];
    ursa_task_t *tk[6];
    CHECK_EQ(ursa_notify_init(&t->n), 0);
    /* 3 producers (2 tasks, 1 thread); 5 consumers (3 tasks, 2 threads) */
    t->total = 3 * t->per_producer;
    tk[0] = spawn_on(0, tok_consumer_plain, t, "cons-plain");
    tk[1] = spawn_on(1, tok_consumer_enable, t, "cons-enable");
    tk[2] = spawn_on(1, tok_consumer_plain, t, "cons-plain");
    CHECK_EQ(pthread_create(&th[0], NULL, tok_consumer_plain, t), 0);
    CHECK_EQ(pthread_create(&th[1], NULL, tok_consumer_enable, t), 0);
    tk[3] = spawn_on(0, tok_producer, t, "prod");
    tk[4] = spawn_on(1, tok_producer, t, "prod");
    CHECK_EQ(pthread_create(&th[2], NULL, tok_producer, t), 0);
    const char *msg = NULL;
    for (int i = 0; i < 5; i++) {
        const char *m = join_task(tk[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(th[i], &thres[i]), 0);
        if (thres[i] && !msg)
            msg = thres[i];
    }
    CHECK_OK(msg);
    CHECK_EQ(atomic_load(&t->produced), t->total);
    CHECK_EQ(atomic_load(&t->consumed), t->total);
    CHECK_EQ(atomic_load(&t->tokens), 0);
    CHECK_EQ(atomic_load(&t->timeouts), 0);
    CHECK_EQ(peek_notify_len(&t->n), 0);
    int left = ursa_notify_wait(&t->n, URSA_NOW); /* a permit may be left stored */
    CHECK(left == 0 || left == -EAGAIN);
    CHECK_EQ(ursa_notify_destroy(&t->n), 0);
    return NULL;
}

static void test_notify_consumers_take_every_token_on_threads(void **state)
{
    (void)state;
    tok_t t = {.per_producer = test_scale(20000)};
    ASSERT_OK(test_run(2, tok_root, &t));
}

/* Notifications made (calls that returned 1) against notifications taken
 * (waits that returned 0), with waits of every kind timing out, being
 * cancelled and withdrawn at random meanwhile. A withdrawn waiter passes
 * its notification on; when it finds the permit already stored, it is
 * absorbed exactly as a notify_one would be (the permit does not count
 * up). In deterministic mode nothing runs between a waiter's look at the
 * state and its withdrawal, so absorptions are counted and the books must
 * balance exactly: made == taken + absorbed + stored. With real threads
 * they cannot be counted, and taken + stored <= made must hold. */
static const char *cons_check(long made, long taken, long absorbed, long left, bool exact)
{
    if (exact ? made != taken + absorbed + left : taken + left > made)
        return failf("made %ld notifications, taken %ld, absorbed %ld, stored at the end %ld",
                     made, taken, absorbed, left);
    return NULL;
}

typedef struct cons {
    ursa_notify_t n;
    long iters;
    atomic_long made, taken, absorbed;
    atomic_int stop;
    bool exact;      /* deterministic mode: count absorptions */
    bool no_forward; /* no withdrawals after the fact: nothing is absorbed */
    uint64_t seed;
} cons_t;

typedef struct cons_arg {
    cons_t *c;
    uint64_t seed;
} cons_arg_t;

static void *cons_notifier(void *arg)
{
    cons_arg_t *a = arg;
    cons_t *c = a->c;
    uint64_t x = a->seed;
    for (long i = 0; i < c->iters; i++) {
        int rc = (xorshift(&x) & 1) ? ursa_notify_one(&c->n) : ursa_notify_last(&c->n);
        CHECK(rc == 0 || rc == 1);
        atomic_fetch_add(&c->made, rc);
        if ((xorshift(&x) & 7) == 0)
            (void)ursa_yield();
    }
    return NULL;
}

static void *cons_waiter(void *arg)
{
    cons_arg_t *a = arg;
    cons_t *c = a->c;
    uint64_t x = a->seed;
    long taken = 0, waits = 0;
    while (!atomic_load(&c->stop)) {
        waits++;
        int rc;
        ursa_wait_t w;
        unsigned pick = (unsigned)(xorshift(&x) % 5);
        if (c->no_forward && (pick == 2 || pick == 4))
            pick = pick == 2 ? 1 : 3; /* only waits that keep what reaches them */
        switch (pick) {
        case 0:
            rc = ursa_notify_wait(&c->n, URSA_NOW);
            CHECK(rc == 0 || rc == -EAGAIN);
            break;
        case 1:
            rc = ursa_notify_wait(&c->n, ursa_deadline_in((ursa_time_t)(xorshift(&x) % 20000)));
            CHECK(rc == 0 || rc == -ETIMEDOUT);
            break;
        case 2: {
            CHECK_EQ(ursa_notify_enable(&c->n, &w), 0);
            if (xorshift(&x) & 1)
                (void)ursa_yield();
            bool pre = peek_notify_permit(&c->n);
            int d = ursa_notify_disable(&c->n, &w);
            CHECK(d == 0 || d == 1);
            if (c->exact && d == 1 && pre)
                atomic_fetch_add(&c->absorbed, 1);
            rc = -1; /* passed on, never taken */
            break;
        }
        case 3:
            CHECK_EQ(ursa_notify_enable(&c->n, &w), 0);
            (void)ursa_yield();
            rc = ursa_notify_wait_enabled(&c->n, &w,
                                          ursa_deadline_in((ursa_time_t)(xorshift(&x) % 20000)));
            CHECK(rc == 0 || rc == -ETIMEDOUT);
            break;
        default: {
            cw_t cw;
            cw_init(&cw);
            rc = ursa_notify_wait_start(&c->n, &w, cw_waker(&cw));
            CHECK(rc == 0 || rc == -EINPROGRESS);
            (void)ursa_yield();
            if ((xorshift(&x) & 1) && ursa_wait_ready(&w)) {
                CHECK_EQ(ursa_notify_wait_finish(&c->n, &w), 0);
                rc = 0;
            } else {
                bool pre = peek_notify_permit(&c->n), reached = ursa_wait_ready(&w);
                CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
                if (c->exact && pre && reached)
                    atomic_fetch_add(&c->absorbed, 1);
                rc = -1;
            }
            break;
        }
        }
        if (rc == 0)
            taken++;
    }
    atomic_fetch_add(&c->taken, taken);
    return NULL;
}

/* After the run: nothing queued, and every notification made was taken,
 * absorbed or is still stored (cons_check); destroys the notify. */
static void *cons_finish(cons_t *c)
{
    CHECK_EQ(peek_notify_len(&c->n), 0);
    long left = ursa_notify_wait(&c->n, URSA_NOW) == 0;
    CHECK_OK(cons_check(atomic_load(&c->made), atomic_load(&c->taken),
                        atomic_load(&c->absorbed), left, c->exact));
    CHECK_EQ(ursa_notify_destroy(&c->n), 0);
    return NULL;
}

static void *cons_root(void *arg)
{
    cons_t *c = arg;
    enum { NT = 2, WT = 3, NTH = 1, WTH = 1 };
    cons_arg_t args[NT + WT + NTH + WTH];
    ursa_task_t *nt[NT], *wt[WT];
    pthread_t nth[NTH], wth[WTH];
    void *res;
    const char *msg = NULL;
    CHECK_EQ(ursa_notify_init(&c->n), 0);
    for (int i = 0; i < NT + WT + NTH + WTH; i++)
        args[i] = (cons_arg_t){c, c->seed * 7919 + (uint64_t)i * 104729 + 1};
    int k = 0;
    for (int i = 0; i < WT; i++)
        wt[i] = spawn_on(i % 2, cons_waiter, &args[k++], "waiter");
    for (int i = 0; i < WTH; i++)
        CHECK_EQ(pthread_create(&wth[i], NULL, cons_waiter, &args[k++]), 0);
    for (int i = 0; i < NT; i++)
        nt[i] = spawn_on(i % 2, cons_notifier, &args[k++], "notifier");
    for (int i = 0; i < NTH; i++)
        CHECK_EQ(pthread_create(&nth[i], NULL, cons_notifier, &args[k++]), 0);
    for (int i = 0; i < NT; i++) {
        const char *m = join_task(nt[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < NTH; i++) {
        CHECK_EQ(pthread_join(nth[i], &res), 0);
        if (res && !msg)
            msg = res;
    }
    atomic_store(&c->stop, 1);
    for (int i = 0; i < WT; i++) {
        const char *m = join_task(wt[i]);
        if (m && !msg)
            msg = m;
    }
    for (int i = 0; i < WTH; i++) {
        CHECK_EQ(pthread_join(wth[i], &res), 0);
        if (res && !msg)
            msg = res;
    }
    CHECK_OK(msg);
    return cons_finish(c);
}

static void test_notify_notifications_made_are_taken_or_stored_on_threads(void **state)
{
    (void)state;
    cons_t c = {.iters = test_scale(30000), .seed = 12345};
    ASSERT_OK(test_run(2, cons_root, &c));
    /* Only waits that keep a notification that reached them (blocking
     * waits racing their deadlines, tries, enabled waits): exact. */
    memset(&c, 0, sizeof c);
    c.iters = test_scale(30000);
    c.seed = 777;
    c.no_forward = c.exact = true;
    ASSERT_OK(test_run(2, cons_root, &c));
}

/* The same in deterministic mode over many seeds (smaller). */
static void *cons_sim(void *arg)
{
    cons_t *c = arg;
    memset(c, 0, sizeof *c);
    c->iters = 40;
    c->exact = true;
    c->seed = (uint64_t)ursa_now() + 1;
    cons_arg_t args[5];
    ursa_task_t *t[5];
    CHECK_EQ(ursa_notify_init(&c->n), 0);
    for (int i = 0; i < 5; i++) {
        args[i] = (cons_arg_t){c, (uint64_t)i * 2654435761u + 7};
        t[i] = spawn_on(0, i < 2 ? cons_notifier : cons_waiter, &args[i], "t");
        CHECK(t[i]);
    }
    CHECK_OK(join_task(t[0]));
    CHECK_OK(join_task(t[1]));
    atomic_store(&c->stop, 1);
    CHECK_OK(join_tasks(t + 2, 3));
    return cons_finish(c);
}

static cons_t cons_seeds;
TEST_EXPLORE(test_notify_notifications_made_are_taken_or_stored_over_seeds, cons_sim, &cons_seeds)

TEST_MAIN(cmocka_unit_test(test_notify_last_racing_a_withdrawal_passes_it_on_over_seeds),
          cmocka_unit_test(test_notify_enabled_wait_racing_a_notification_passes_it_on_over_seeds),
          cmocka_unit_test(test_notify_consumers_take_every_token_on_threads),
          cmocka_unit_test(test_notify_notifications_made_are_taken_or_stored_on_threads),
          cmocka_unit_test(test_notify_notifications_made_are_taken_or_stored_over_seeds))
