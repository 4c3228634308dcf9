/* Opt-in migration: a migratable task moved at every kind of wait (to
 * its waker's worker, or stolen while runnable), a cancel racing the move,
 * timed waits whose timer lives on another worker; deterministic mode with
 * several workers over many seeds, and threads. Nothing is lost. Tasks
 * return NULL or a message (CHECK); the test asserts. */
#include "support.h"

#include <pthread.h>

#include "rt_checks.h"
#include "task_checks.h"

/* ================= migration ================= */

/* A migratable task M waits, in turn, on every kind of wait; each time a
 * task fixed on worker 0 or 1 (by turns) is the one that ends the wait.
 * M counts the waits after which it ran on the waker's worker. */
typedef struct hop {
    ursa_notify_t go[2]; /* M's partner on worker k waits here for M's turn */
    ursa_notify_t kick;
    ursa_mutex_t mutex;
    ursa_sem_t sem;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx[2];
    ursa_oneshot_t shot;
    ursa_time_t deadline;
    int kind, rounds;
    long moved, waits;
    _Atomic int stop;
    ursa_task_t *joinee;
} hop_t;

enum { WAIT_NOTIFY, WAIT_MUTEX, WAIT_SEM, WAIT_MPSC, WAIT_ONESHOT, WAIT_TIMED, WAIT_JOIN,
       WAIT_KINDS };

static void *return_quickly(void *arg)
{
    (void)ursa_yield();
    return arg;
}

/* The partner on worker k: on its turn, ends M's current wait. */
static void *partner(void *arg)
{
    hop_t *h = (hop_t *)((uintptr_t)arg & ~(uintptr_t)1);
    int k = (int)((uintptr_t)arg & 1);
    for (;;) {
        CHECK_EQ(ursa_notify_wait(&h->go[k], URSA_NEVER), 0);
        if (atomic_load(&h->stop))
            return NULL;
        switch (h->kind) {
        case WAIT_NOTIFY:
        case WAIT_TIMED:
            ursa_notify_one(&h->kick);
            break;
        case WAIT_MUTEX: { /* held by us while M queues, then handed over */
            ursa_mutex_guard_t g = {0};
            CHECK_EQ(ursa_mutex_lock(&h->mutex, &g, URSA_NEVER), 0);
            ursa_notify_one(&h->kick);
            (void)ursa_sleep_for(URSA_USEC(100)); /* M queues meanwhile */
            CHECK_EQ(ursa_mutex_unlock(&g), 0);
            break;
        }
        case WAIT_SEM:
            CHECK_EQ(ursa_sem_add(&h->sem, 1), 0);
            break;
        case WAIT_MPSC: {
            long v = k;
            CHECK_EQ(ursa_mpsc_send(&h->tx[k], &v, URSA_NEVER), 0);
            break;
        }
        case WAIT_ONESHOT: {
            int v = k;
            CHECK_EQ(ursa_oneshot_send(&h->shot, &v), 0);
            break;
        }
        default: /* WAIT_JOIN: the joinee is fixed here, spawned by us */
            CHECK_EQ(ursa_spawn(&h->joinee, return_quickly, R(7),
                                &(ursa_spawn_opts_t){URSA_ON_WORKER(k)}),
                     0);
            ursa_notify_one(&h->kick); /* M may join it now */
            break;
        }
    }
}

/* M: one wait of kind h->kind, ended by the partner on worker k. */
static const char *one_wait(hop_t *h, int k)
{
    switch (h->kind) {
    case WAIT_NOTIFY:
        ursa_notify_one(&h->go[k]);
        return ursa_notify_wait(&h->kick, URSA_NEVER) ? "notify wait" : NULL;
    case WAIT_TIMED: { /* woken before its deadline: the timer is disarmed
                        * on the worker it was armed on, from where M runs */
        ursa_notify_one(&h->go[k]);
        int rc = ursa_notify_wait(&h->kick, ursa_deadline_in(URSA_SEC(3600)));
        return rc ? "timed notify wait" : NULL;
    }
    case WAIT_MUTEX: {
        ursa_mutex_guard_t g = {0};
        ursa_notify_one(&h->go[k]);
        if (ursa_notify_wait(&h->kick, URSA_NEVER)) /* the partner holds it */
            return "mutex: kick";
        if (ursa_mutex_lock(&h->mutex, &g, URSA_NEVER))
            return "mutex lock";
        return ursa_mutex_unlock(&g) ? "mutex unlock" : NULL;
    }
    case WAIT_SEM: {
        ursa_sem_permit_t p = {0};
        ursa_notify_one(&h->go[k]);
        if (ursa_sem_acquire(&h->sem, 1, &p, URSA_NEVER))
            return "sem acquire";
        return ursa_sem_permit_forget(&p) ? "sem forget" : NULL;
    }
    case WAIT_MPSC: {
        long v = -1;
        ursa_notify_one(&h->go[k]);
        if (ursa_mpsc_recv(&h->rx, &v, URSA_NEVER) || v != k)
            return "mpsc recv";
        return NULL;
    }
    case WAIT_ONESHOT: {
        int v = -1;
        if (ursa_oneshot_init(&h->shot, sizeof(int), NULL))
            return "oneshot init";
        ursa_notify_one(&h->go[k]);
        if (ursa_oneshot_recv(&h->shot, &v, URSA_NEVER) || v != k)
            return "oneshot recv";
        return ursa_oneshot_destroy(&h->shot) ? "oneshot destroy" : NULL;
    }
    default: { /* WAIT_JOIN */
        void *r = NULL;
        h->joinee = NULL;
        ursa_notify_one(&h->go[k]);
        if (ursa_notify_wait(&h->kick, URSA_NEVER))
            return "join: kick";
        if (ursa_task_join(h->joinee, &r, URSA_NEVER) || r != R(7))
            return "join";
        return NULL;
    }
    }
}

static void *migrant(void *arg)
{
    hop_t *h = arg;
    for (int r = 0; r < h->rounds; r++) {
        for (int kind = 0; kind < WAIT_KINDS; kind++) {
            int k = (r + kind) % 2;
            h->kind = kind;
            const char *m = one_wait(h, k);
            if (m)
                return (void *)m;
            h->waits++;
            h->moved += ursa_worker_index() == k;
            if (ursa_yield() != 0) /* a yield: stealable while runnable */
                return "cancelled";
        }
    }
    return NULL;
}

static void *hop_root(void *arg)
{
    hop_t *h = arg;
    h->waits = h->moved = 0;
    atomic_store(&h->stop, 0);
    ursa_notify_init(&h->go[0]);
    ursa_notify_init(&h->go[1]);
    ursa_notify_init(&h->kick);
    ursa_mutex_init(&h->mutex);
    ursa_sem_init(&h->sem, 0);
    CHECK_EQ(ursa_mpsc_new(&h->rx, &h->tx[0], sizeof(long), 4, NULL), 0);
    CHECK_EQ(ursa_mpsc_sender_clone(&h->tx[0], &h->tx[1]), 0);
    ursa_task_t *p[2], *m;
    for (uintptr_t k = 0; k < 2; k++)
        CHECK_EQ(ursa_spawn(&p[k], partner, (void *)((uintptr_t)h | k),
                            &(ursa_spawn_opts_t){URSA_ON_WORKER((int)k)}),
                 0);
    CHECK_EQ(ursa_spawn(&m, migrant, h, &(ursa_spawn_opts_t){.migratable = true}), 0);
    CHECK_OK(join_task(m));
    atomic_store(&h->stop, 1);
    ursa_notify_one(&h->go[0]);
    ursa_notify_one(&h->go[1]);
    CHECK_OK(join_task(p[0]));
    CHECK_OK(join_task(p[1]));
    CHECK_EQ(h->waits, (long)h->rounds * WAIT_KINDS);
    CHECK_EQ(ursa_mpsc_sender_drop(&h->tx[0]), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&h->tx[1]), 0);
    CHECK_EQ(ursa_mpsc_receiver_drop(&h->rx), 0);
    CHECK_EQ(ursa_sem_available(&h->sem), 0);
    return NULL;
}

static hop_t hop;
static long hop_moved, hop_waits;

static void *hop_scenario(void *arg)
{
    (void)arg;
    hop.rounds = 2;
    CHECK_OK(hop_root(&hop));
    hop_moved += hop.moved;
    hop_waits += hop.waits;
    return NULL;
}

/* Deterministic, 2 workers: M is moved at every kind of wait and nothing
 * is lost; most waits end with M on its waker's worker (not all: a wake
 * that lands while M still switches out requeues it where it was). */
static void test_rt_migrate_at_every_kind_of_wait_under_many_seeds(void **state)
{
    (void)state;
    hop_moved = hop_waits = 0;
    test_explore_workers(2, hop_scenario, NULL);
    print_message("migration: %ld of %ld waits ended on the waker's worker\n", hop_moved,
                  hop_waits);
    assert_true(hop_moved > hop_waits / 2);
}

/* Threads: the same hops, many rounds. */
static void test_rt_migrate_at_every_kind_of_wait_on_two_threads(void **state)
{
    (void)state;
    hop.rounds = (int)test_scale(300);
    ASSERT_OK(test_run(2, hop_root, &hop));
    print_message("migration: %ld of %ld waits ended on the waker's worker\n", hop.moved,
                  hop.waits);
}

/* A cancel racing the move: migratable waiters on a semaphore, permits
 * added from a task on one worker while a task on the other cancels
 * waiters. Each waiter either holds a permit (returned) or saw
 * -ECANCELED; no permit is lost or granted twice. */
typedef struct race {
    ursa_sem_t sem;
    ursa_task_t *waiter[4];
    _Atomic long got, cancelled;
} race_t;

static void *race_waiter(void *arg)
{
    race_t *r = arg;
    ursa_sem_permit_t p = {0};
    int rc = ursa_sem_acquire(&r->sem, 1, &p, URSA_NEVER);
    if (rc == 0) {
        atomic_fetch_add(&r->got, 1);
        (void)ursa_yield(); /* runnable while holding: may be stolen */
        return ursa_sem_release(&p) ? "release" : NULL;
    }
    if (rc != -ECANCELED)
        return "acquire: neither granted nor cancelled";
    atomic_fetch_add(&r->cancelled, 1);
    return NULL;
}

static void *race_canceller(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 4; i += 2)
        CHECK_EQ(ursa_task_cancel(r->waiter[i]), 0);
    return NULL;
}

static void *race_adder(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(ursa_sem_add(&r->sem, 1), 0);
        (void)ursa_yield();
    }
    return NULL;
}

static void *cancel_race_root(void *arg)
{
    (void)arg;
    race_t r;
    memset(&r, 0, sizeof r);
    ursa_sem_init(&r.sem, 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(ursa_spawn(&r.waiter[i], race_waiter, &r, &(ursa_spawn_opts_t){.migratable = true}),
                 0);
    (void)ursa_yield();
    ursa_task_t *c, *a;
    CHECK_EQ(ursa_spawn(&c, race_canceller, &r, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}), 0);
    CHECK_EQ(ursa_spawn(&a, race_adder, &r, &(ursa_spawn_opts_t){URSA_ON_WORKER(0)}), 0);
    CHECK_OK(join_task(c));
    CHECK_OK(join_task(a));
    for (int i = 0; i < 4; i++)
        CHECK_OK(join_task(r.waiter[i]));
    CHECK_EQ(atomic_load(&r.got) + atomic_load(&r.cancelled), 4);
    /* every permit added is back: none lost to a cancel, none granted twice */
    CHECK_EQ(ursa_sem_available(&r.sem), 4);
    return NULL;
}

static void test_rt_migrate_cancel_racing_the_move_loses_no_permit(void **state)
{
    (void)state;
    test_explore_workers(2, cancel_race_root, NULL);
    for (long i = 0; i < test_scale(300); i++)
        ASSERT_OK(test_run(2, cancel_race_root, NULL));
}

/* A migratable task that times out: its timer fires on the worker it
 * armed it on, and it runs there; one woken just before its deadline
 * disarms from wherever it runs. Virtual time decides which. */
typedef struct timed {
    ursa_sem_t sem;
    _Atomic long ok, timed_out;
} timed_t;

static void *timed_waiter(void *arg)
{
    timed_t *t = arg;
    for (int i = 0; i < 6; i++) {
        ursa_sem_permit_t p = {0};
        int rc = ursa_sem_acquire(&t->sem, 1, &p, ursa_deadline_in(URSA_MSEC(1 + i % 3)));
        if (rc == 0) {
            atomic_fetch_add(&t->ok, 1);
            if (ursa_sem_permit_forget(&p))
                return "forget";
        } else if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&t->timed_out, 1);
        } else {
            return "acquire";
        }
    }
    return NULL;
}

static void *timed_adder(void *arg)
{
    timed_t *t = arg;
    for (int i = 0; i < 6; i++) {
        (void)ursa_sleep_for(URSA_MSEC(i % 2 ? 1 : 2));
        CHECK_EQ(ursa_sem_add(&t->sem, 1), 0);
    }
    return NULL;
}

static void *timers_root(void *arg)
{
    (void)arg;
    timed_t t;
    memset(&t, 0, sizeof t);
    ursa_sem_init(&t.sem, 0);
    ursa_task_t *w[2], *a[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(ursa_spawn(&w[i], timed_waiter, &t, &(ursa_spawn_opts_t){.migratable = true}),
                 0);
        CHECK_EQ(ursa_spawn(&a[i], timed_adder, &t, &(ursa_spawn_opts_t){URSA_ON_WORKER(i)}), 0);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_OK(join_task(w[i]));
        CHECK_OK(join_task(a[i]));
    }
    CHECK_EQ(atomic_load(&t.ok) + atomic_load(&t.timed_out), 12);
    CHECK_EQ(atomic_load(&t.ok) + ursa_sem_available(&t.sem), 12);
    return NULL;
}

static void test_rt_migrate_timed_waits_fire_or_disarm_wherever_the_task_runs(void **state)
{
    (void)state;
    test_explore_workers(2, timers_root, NULL);
    for (long i = 0; i < test_scale(20); i++)
        ASSERT_OK(test_run(2, timers_root, NULL));
}

TEST_MAIN(cmocka_unit_test(test_rt_migrate_at_every_kind_of_wait_under_many_seeds),
          cmocka_unit_test(test_rt_migrate_at_every_kind_of_wait_on_two_threads),
          cmocka_unit_test(test_rt_migrate_cancel_racing_the_move_loses_no_permit),
          cmocka_unit_test(test_rt_migrate_timed_waits_fire_or_disarm_wherever_the_task_runs))
