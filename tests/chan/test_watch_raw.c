/* watch's raw two-phase waits (changed_start/finish, closed_start/finish)
 * beyond the contract (tests/contract/, row watch_changed): bad input,
 * every outcome, a restart on a queued node, the waits racing a send or a
 * drop (over seeds), a closed wait woken from another thread, and a
 * cancel racing a send on threads. */
#include "support.h"

#include <poll.h>

#include "raw_waker.h"
#include "task_checks.h"
#include "ursa/watch.h"
#include "watch_pair.h"

/* ====================================================================== */
/* raw two-phase waits: changed_start/finish, closed_start/finish         */
/* ====================================================================== */

/* The foreign waker of raw_waker.h, its counts reset, signalling efd (-1:
 * none) the way an event loop would be woken. */
static ursa_waker_t rwaker_efd(rwaker_t *k, int efd)
{
    atomic_init(&k->count, 0);
    atomic_init(&k->tid, 0);
    k->efd = efd;
    return rwaker(k);
}

/* Bad input: clear codes, nothing changes, no crash. */
static void *raw_bad_input_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx, *tx2;
    ursa_watch_rx_t *rx, *rx2;
    CHECK_EQ(pw_new_of(&tx, &rx, 0), 0);
    CHECK_EQ(pw_new_of(&tx2, &rx2, 0), 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n, n2;
    memset(&n, 0, sizeof n);
    memset(&n2, 0, sizeof n2);
    CHECK_EQ(ursa_watch_changed_start(NULL, &n, wk), -EINVAL);
    CHECK_EQ(ursa_watch_changed_start(rx, NULL, wk), -EINVAL);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, (ursa_waker_t){NULL, NULL}), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(NULL, &n, wk), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(tx, NULL, wk), -EINVAL);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, (ursa_waker_t){NULL, NULL}), -EINVAL);
    /* never started */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(NULL, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(rx, NULL), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(NULL, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, NULL), -EINVAL);
    /* started on one watch / kind, finished as another */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_closed_start(tx, &n2, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n2), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx2, &n2), -EINVAL);
    /* not woken yet: -EAGAIN, still queued */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n2), -EAGAIN);
    CHECK(!ursa_wait_ready(&n) && !ursa_wait_ready(&n2));
    CHECK_EQ(ursa_wait_cancel(&n), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&n2), -ECANCELED);
    /* cancelled: finish and a second cancel refuse */
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n2), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&n), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(NULL), -EINVAL);
    CHECK_EQ(atomic_load(&k.count), 0);
    /* the channel still works, nothing was marked or woken */
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_send(tx, mk(1)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(atomic_load(&k.count), 0);
    /* finished: a second finish refuses */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&n), -EINVAL);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx2), 0);
    return NULL;
}

TEST_BODY(test_watch_raw_waits_reject_bad_input_and_change_nothing, raw_bad_input_body(NULL))

/* The raw forms' outcomes, one by one, on a plain thread. */
static void *raw_basic_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx, *rx2;
    pair_t p = mk(0), q;
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n, n2;
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx2), 0);

    /* queued; a send wakes it once; finish marks the value seen */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), -EINPROGRESS);
    CHECK_EQ(pw_send(tx, mk(1)), 0);
    CHECK_EQ(atomic_load(&k.count), 2); /* every queued receiver */
    CHECK(ursa_wait_ready(&n) && ursa_wait_ready(&n2));
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 0);
    CHECK_EQ(pw_get(rx, &q), 0);
    CHECK_EQ(q.a, 1);

    /* woken, but the change was marked before finish: -EAGAIN */
    CHECK_EQ(pw_get_and_update(rx2, &q), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), -EAGAIN);

    /* something unseen already: 0 at once, no waker call */
    CHECK_EQ(pw_send(tx, mk(2)), 0);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), 0);
    CHECK(ursa_wait_ready(&n));
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(atomic_load(&k.count), 2);

    /* a modify that changes nothing does not wake */
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(pw_get_and_update(rx2, &q), 0);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 1); /* 2 -> 3 */
    CHECK_EQ(atomic_load(&k.count), 3);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_send_modify(tx, inc_if_even, NULL), 0); /* odd: no change */
    CHECK_EQ(atomic_load(&k.count), 3);
    CHECK(!ursa_wait_ready(&n));

    /* the last sender drop wakes it: the unseen... nothing unseen: -EPIPE */
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(atomic_load(&k.count), 4);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EPIPE);
    /* after the close: rx2 still has an unseen value, then -EPIPE */
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), 0);
    CHECK_EQ(ursa_watch_changed_start(rx2, &n2, wk), 0);
    CHECK_EQ(ursa_watch_changed_finish(rx2, &n2), -EPIPE);
    CHECK_EQ(atomic_load(&k.count), 4);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);

    /* closed: queued until the last receiver drops */
    CHECK_EQ(pw_new(&tx, &rx, &p), 0);
    CHECK_EQ(ursa_watch_receiver_clone(rx, &rx2), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK(!ursa_wait_ready(&n));
    CHECK_EQ(ursa_watch_receiver_drop(rx2), 0);
    CHECK_EQ(atomic_load(&k.count), 5);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), 0); /* already: no waker */
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    /* woken, but a receiver subscribed again before finish: -EAGAIN */
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(atomic_load(&k.count), 6);
    CHECK_EQ(ursa_watch_subscribe(tx, &rx), 0);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    CHECK_EQ(atomic_load(&k.count), 6);
    return NULL;
}

TEST_BODY(test_watch_raw_changed_and_closed_outcomes, raw_basic_body(NULL))

/* Regressions (review): _start again on a node that _finish left queued
 * ("not woken yet") keeps it queued once — it used to link the node to
 * itself, and the next send spun forever; a wait_for that fails marks
 * nothing seen (it used to swallow the values its predicate rejected). */
static void *restart_body(void *arg)
{
    (void)arg;
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    ursa_watch_borrow_t g = {0};
    CHECK_EQ(pw_new_of(&tx, &rx, 0), 0);
    rwaker_t k;
    ursa_waker_t wk = rwaker_efd(&k, -1);
    ursa_wait_t n;
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_changed_start(rx, &n, wk), -EINPROGRESS);
    CHECK_EQ(pw_send(tx, mk(2)), 0);
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(ursa_watch_changed_finish(rx, &n), 0);

    CHECK_EQ(pw_send(tx, mk(4)), 0);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    long want = 5;
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_wait_for(rx, ge, &want, &g, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
    CHECK_EQ(ursa_watch_has_changed(rx), 1);
    CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0);

    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), -EAGAIN);
    CHECK_EQ(ursa_watch_closed_start(tx, &n, wk), -EINPROGRESS);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(atomic_load(&k.count), 2);
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    return NULL;
}

TEST_BODY(test_watch_raw_restart_stays_queued_once_and_a_failed_wait_for_marks_nothing,
          restart_body(NULL))

/* Deterministic: a raw changed wait against a sender task, or a raw
 * closed wait against a task that drops the last receiver, over seeds
 * and yield counts; the root either waits for the wake or cancels
 * (racing the send or the drop). Either way the change is never lost and
 * the waker runs at most once. */
typedef struct raw_scene {
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    rwaker_t k;
    ursa_wait_t n;
    ursa_task_t *t;
    unsigned yields;
    bool drop;
    int rc; /* the task's send */
} raw_scene_t;

/* The task: after `yields` yields, drops rx or sends mk(5). */
static void *raw_scene_task(void *arg)
{
    raw_scene_t *r = arg;
    yield_n(r->yields);
    if (r->drop)
        (void)ursa_watch_receiver_drop(r->rx);
    else
        r->rc = pw_send(r->tx, mk(5));
    return NULL;
}

/* A new watch of mk(0); a raw wait n with the counting waker k, closed()
 * on tx when drop, else changed() on rx; the task spawned as t. */
static const char *raw_scene_start(raw_scene_t *r, unsigned yields, bool drop)
{
    r->yields = yields;
    r->drop = drop;
    r->rc = -1;
    r->t = NULL;
    URSA_SIM_CHECK(pw_new_of(&r->tx, &r->rx, 0) == 0);
    ursa_waker_t wk = rwaker_efd(&r->k, -1);
    if (drop)
        URSA_SIM_CHECK(ursa_watch_closed_start(r->tx, &r->n, wk) == -EINPROGRESS);
    else
        URSA_SIM_CHECK(ursa_watch_changed_start(r->rx, &r->n, wk) == -EINPROGRESS);
    URSA_SIM_CHECK(ursa_spawn(&r->t, raw_scene_task, r, NULL) == 0);
    return NULL;
}

static const char *raw_sim_one(unsigned v, unsigned cancel_after)
{
    raw_scene_t r;
    CHECK_OK(raw_scene_start(&r, v, false));
    bool finished = false;
    for (unsigned i = 0;; i++) {
        if (cancel_after != ~0u && i >= cancel_after) {
            URSA_SIM_CHECK(ursa_wait_cancel(&r.n) == -ECANCELED);
            break;
        }
        if (ursa_wait_ready(&r.n)) {
            URSA_SIM_CHECK(ursa_watch_changed_finish(r.rx, &r.n) == 0);
            finished = true;
            break;
        }
        URSA_SIM_CHECK(ursa_watch_changed_finish(r.rx, &r.n) == -EAGAIN);
        (void)ursa_yield();
    }
    URSA_SIM_CHECK(ursa_task_join(r.t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(r.rc == 0);
    int wakes = atomic_load(&r.k.count);
    URSA_SIM_CHECK(wakes <= 1);
    if (finished) {
        URSA_SIM_CHECK(wakes == 1);
        URSA_SIM_CHECK(ursa_watch_has_changed(r.rx) == 0); /* marked by finish */
    } else {
        /* cancelled: nothing marked, the send is still there to see */
        URSA_SIM_CHECK(ursa_watch_has_changed(r.rx) == 1);
        URSA_SIM_CHECK(ursa_watch_changed(r.rx, URSA_NOW) == 0);
    }
    pair_t q;
    URSA_SIM_CHECK(pw_get(r.rx, &q) == 0);
    URSA_SIM_CHECK(q.a == 5 && q.b == 15);
    URSA_SIM_CHECK(ursa_watch_receiver_drop(r.rx) == 0);
    URSA_SIM_CHECK(ursa_watch_sender_drop(r.tx) == 0);
    return NULL;
}

static const char *raw_closed_sim_one(unsigned v, bool cancel)
{
    raw_scene_t r;
    CHECK_OK(raw_scene_start(&r, v, true));
    if (cancel) {
        (void)ursa_yield();
        URSA_SIM_CHECK(ursa_wait_cancel(&r.n) == -ECANCELED);
    } else {
        while (!ursa_wait_ready(&r.n))
            (void)ursa_yield();
        URSA_SIM_CHECK(ursa_watch_closed_finish(r.tx, &r.n) == 0);
        URSA_SIM_CHECK(atomic_load(&r.k.count) == 1);
    }
    URSA_SIM_CHECK(ursa_task_join(r.t, NULL, URSA_NEVER) == 0);
    URSA_SIM_CHECK(atomic_load(&r.k.count) <= 1);
    URSA_SIM_CHECK(ursa_watch_closed(r.tx, URSA_NOW) == 0);
    URSA_SIM_CHECK(pw_send(r.tx, mk(1)) == -EPIPE);
    URSA_SIM_CHECK(ursa_watch_sender_drop(r.tx) == 0);
    return NULL;
}

static void *raw_sim(void *arg)
{
    (void)arg;
    for (unsigned v = 0; v < 4; v++) {
        CHECK_OK(raw_sim_one(v, ~0u));
        for (unsigned c = 0; c < 5; c++)
            CHECK_OK(raw_sim_one(v, c));
        CHECK_OK(raw_closed_sim_one(v, false));
        CHECK_OK(raw_closed_sim_one(v, true));
    }
    return NULL;
}

TEST_EXPLORE(test_watch_raw_waits_racing_a_send_or_drop_lose_nothing_over_seeds, raw_sim, NULL)

/* A raw closed() wait woken from another thread: the waker runs on the
 * thread that drops the last receiver and signals an eventfd that this
 * thread polls, as a foreign event loop would. (The raw changed() wait
 * woken by a send is in the contract suite.) */
typedef struct rthr {
    ursa_watch_rx_t *rx;
    atomic_int tid;
} rthr_t;

static void *rthr_drop(void *arg)
{
    rthr_t *r = arg;
    atomic_store(&r->tid, (int)gettid());
    sleep_real_ms(2);
    (void)ursa_watch_receiver_drop(r->rx);
    return NULL;
}

static const char *poll_efd(int efd)
{
    struct pollfd pfd = {efd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1)
        return "eventfd not signalled within 5 s";
    uint64_t c;
    if (read(efd, &c, sizeof c) != (ssize_t)sizeof c || c != 1)
        return "eventfd count is not 1";
    return NULL;
}

static void *raw_closed_thread_body(void *arg)
{
    (void)arg;
    int efd = eventfd(0, EFD_CLOEXEC);
    CHECK(efd >= 0);
    ursa_watch_tx_t *tx;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&tx, &rx, 0), 0);
    rwaker_t k;
    ursa_wait_t n;
    rthr_t r = {rx, 0};
    pthread_t th;
    CHECK_EQ(ursa_watch_closed_start(tx, &n, rwaker_efd(&k, efd)), -EINPROGRESS);
    CHECK_EQ(pthread_create(&th, NULL, rthr_drop, &r), 0);
    CHECK_OK(poll_efd(efd));
    CHECK_EQ(ursa_watch_closed_finish(tx, &n), 0);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(atomic_load(&k.tid), atomic_load(&r.tid)); /* called by the dropper */
    CHECK(atomic_load(&k.tid) != (int)gettid());
    CHECK_EQ(ursa_watch_sender_drop(tx), 0);
    close(efd);
    return NULL;
}

TEST_BODY(test_watch_raw_closed_woken_by_a_drop_on_another_thread, raw_closed_thread_body(NULL))

/* Threads: a raw wait cancelled (or finished) while another thread sends,
 * many times. Whatever wins, the change is seen exactly once: by the
 * finish, or (after a cancel) by the next changed. */
typedef struct rrace {
    ursa_watch_tx_t *tx;
    long n;
    atomic_long go, sent;
} rrace_t;

static void *rrace_sender(void *arg)
{
    rrace_t *r = arg;
    for (long i = 1; i <= r->n; i++) {
        while (atomic_load(&r->go) < i)
            sched_yield();
        if (pw_send(r->tx, mk(i)) != 0)
            return (void *)"send failed";
        atomic_store(&r->sent, i);
    }
    return NULL;
}

static void *raw_race_body(void *arg)
{
    (void)arg;
    static rrace_t r;
    ursa_watch_rx_t *rx;
    CHECK_EQ(pw_new_of(&r.tx, &rx, 0), 0);
    r.n = test_scale(3000);
    atomic_init(&r.go, 0);
    atomic_init(&r.sent, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, rrace_sender, &r), 0);
    long cancels = 0, finishes = 0;
    for (long i = 1; i <= r.n; i++) {
        rwaker_t k;
        ursa_wait_t n;
        CHECK_EQ(ursa_watch_changed_start(rx, &n, rwaker_efd(&k, -1)), -EINPROGRESS);
        atomic_store(&r.go, i);
        for (long spin = i % 7; spin > 0; spin--)
            sched_yield();
        bool cancel = (i % 3) != 0 || !ursa_wait_ready(&n);
        int rc;
        if (cancel)
            rc = ursa_wait_cancel(&n);
        else
            rc = ursa_watch_changed_finish(rx, &n);
        while (atomic_load(&r.sent) < i)
            sched_yield();
        int wakes = atomic_load(&k.count);
        CHECK(wakes <= 1);
        if (cancel) {
            CHECK_EQ(rc, -ECANCELED);
            cancels++;
            CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), 0); /* not lost */
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(wakes, 1);
            finishes++;
        }
        CHECK_EQ(ursa_watch_changed(rx, URSA_NOW), -EAGAIN); /* seen once */
        pair_t q;
        CHECK_EQ(pw_get(rx, &q), 0);
        CHECK_EQ(q.a, i);
        CHECK_EQ(q.b, 3 * i);
    }
    void *res = NULL;
    pthread_join(th, &res);
    CHECK_OK(res);
    CHECK(cancels > 0);
    CHECK_EQ(ursa_watch_receiver_drop(rx), 0);
    CHECK_EQ(ursa_watch_sender_drop(r.tx), 0);
    (void)finishes;
    return NULL;
}

TEST_BODY(test_watch_raw_changed_cancel_racing_a_send_sees_it_once_on_threads, raw_race_body(NULL))

TEST_MAIN(cmocka_unit_test(test_watch_raw_waits_reject_bad_input_and_change_nothing),
          cmocka_unit_test(test_watch_raw_changed_and_closed_outcomes),
          cmocka_unit_test(test_watch_raw_restart_stays_queued_once_and_a_failed_wait_for_marks_nothing),
          cmocka_unit_test(test_watch_raw_waits_racing_a_send_or_drop_lose_nothing_over_seeds),
          cmocka_unit_test(test_watch_raw_closed_woken_by_a_drop_on_another_thread),
          cmocka_unit_test(test_watch_raw_changed_cancel_racing_a_send_sees_it_once_on_threads))
