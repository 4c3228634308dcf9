/* Tests for oneshot (include/ursa/oneshot.h, src/chan/oneshot.c) beyond the
 * contract (tests/contract/, row oneshot_recv): argument errors and one
 * delivery, -EPIPE on a drop or close, closed(), on plain threads and tasks
 * on two workers, the raw recv and closed waits, and every way a wait ends
 * leaving destroy clean. Races: test_oneshot_race.c. */
#include "support.h"

#include <poll.h>
#include <sys/eventfd.h>

#include "queue_peek.h" /* internal: a queued wait */
#include "task_checks.h"
#include "ursa/oneshot.h"

typedef struct big {
    uint64_t a[16]; /* 128 bytes: needs caller storage */
} big_t;

URSA_ONESHOT_TYPED(int_os, int)
URSA_ONESHOT_TYPED(big_os, big_t)

/* ====================================================================== */
/* arguments, basic life                                                  */
/* ====================================================================== */

static void *args_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os, os2;
    ursa_wait_t w, wz;
    memset(&wz, 0, sizeof wz);
    cw_t cw;
    cw_init(&cw);
    int v = 7, out = 0;
    char ext[200];

    CHECK_EQ(ursa_oneshot_init(NULL, 4, NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_init(&os, 0, NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_init(&os, URSA_ONESHOT_INLINE + 1, NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_init(&os, sizeof ext, ext), 0);
    CHECK_EQ(ursa_oneshot_init(&os, URSA_ONESHOT_INLINE, NULL), 0);
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_init(&os2, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_destroy(NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_send(NULL, &v), -EINVAL);
    CHECK_EQ(ursa_oneshot_send(&os, NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv(NULL, &out, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv(&os, NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_oneshot_try_recv(NULL, &out), -EINVAL);
    CHECK_EQ(ursa_oneshot_close(NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_sender_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_receiver_drop(NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_is_closed(NULL), -EINVAL);
    CHECK_EQ(ursa_oneshot_closed(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv_start(NULL, &w, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv_start(&os, NULL, cw_waker(&cw)), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &wz, &out), -EINVAL);
    CHECK_EQ(ursa_oneshot_closed_finish(&os, &wz), -EINVAL);

    /* nothing yet */
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EAGAIN);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_oneshot_closed(&os, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_oneshot_is_closed(&os), 0);

    /* destroy while a raw wait is queued: -EBUSY, reported */
    test_capture_leaks();
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    ursa_wait_t w2;
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w2, cw_waker(&cw)), -EBUSY);
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), -EAGAIN);
    CHECK_EQ(ursa_oneshot_recv_finish(&os2, &w, &out), -EINVAL);
    CHECK_EQ(ursa_oneshot_closed_finish(&os, &w), -EINVAL); /* wrong kind */
    CHECK_EQ(ursa_oneshot_destroy(&os), -EBUSY);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK_EQ(atomic_load(&cw.calls), 0);

    /* send, receive once */
    v = 42;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_EQ(ursa_oneshot_send(&os, &v), -EALREADY);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, URSA_NEVER), 0);
    CHECK_EQ(out, 42);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EALREADY);
    CHECK_EQ(ursa_oneshot_sender_drop(&os), 0); /* after send: a no-op */
    CHECK_EQ(ursa_oneshot_receiver_drop(&os), 0);
    CHECK_EQ(ursa_oneshot_receiver_drop(&os), -EINVAL); /* reported */
    CHECK_EQ(test_leak_count(), 2);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EINVAL);
    CHECK_EQ(ursa_oneshot_close(&os), -EINVAL);
    CHECK_EQ(ursa_oneshot_destroy(&os), 0);

    /* sender drop without send: -EPIPE; dropping twice is misuse */
    CHECK_EQ(ursa_oneshot_sender_drop(&os2), 0);
    CHECK_EQ(ursa_oneshot_sender_drop(&os2), -EINVAL);
    CHECK_EQ(test_leak_count(), 3);
    CHECK_EQ(ursa_oneshot_send(&os2, &v), -EINVAL);
    CHECK_EQ(ursa_oneshot_try_recv(&os2, &out), -EPIPE);
    CHECK_EQ(ursa_oneshot_recv(&os2, &out, URSA_NEVER), -EPIPE);
    CHECK_EQ(ursa_oneshot_recv_start(&os2, &w, cw_waker(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_oneshot_recv_finish(&os2, &w, &out), -EPIPE);
    CHECK_EQ(ursa_oneshot_destroy(&os2), 0);

    /* close: later sends fail, value untouched */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    CHECK_EQ(ursa_oneshot_is_closed(&os), 1);
    CHECK_EQ(ursa_oneshot_closed(&os, URSA_NOW), 0);
    v = 5;
    CHECK_EQ(ursa_oneshot_send(&os, &v), -EPIPE);
    CHECK_EQ(v, 5);
    CHECK_EQ(ursa_oneshot_send(&os, &v), -EALREADY);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EPIPE);

    /* a value sent before the close stays receivable */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    v = 9;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    out = 0;
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), 0);
    CHECK_EQ(out, 9);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EALREADY);

    /* caller storage, bigger than inline */
    ursa_oneshot_t ob;
    big_t bs, bv, bo;
    for (int i = 0; i < 16; i++)
        bv.a[i] = (uint64_t)i * 77;
    CHECK_EQ(ursa_oneshot_init(&ob, sizeof(big_t), &bs), 0);
    CHECK_EQ(ursa_oneshot_send(&ob, &bv), 0);
    CHECK_EQ(ursa_oneshot_recv(&ob, &bo, URSA_NOW), 0);
    CHECK(memcmp(&bo, &bv, sizeof bv) == 0);

    /* typed wrappers */
    int_os_t io;
    CHECK_EQ(int_os_init(&io), 0);
    CHECK_EQ(int_os_send(&io, 123), 0);
    int got = 0;
    CHECK_EQ(int_os_try_recv(&io, &got), 0);
    CHECK_EQ(got, 123);
    CHECK_EQ(int_os_close(&io), 0);
    CHECK_EQ(int_os_closed(&io, URSA_NOW), 0);
    CHECK_EQ(int_os_receiver_drop(&io), 0);
    CHECK_EQ(int_os_sender_drop(&io), 0);
    CHECK_EQ(int_os_destroy(&io), 0);
    big_os_t bt;
    CHECK_EQ(big_os_init(&bt), 0);
    CHECK_EQ(big_os_send(&bt, bv), 0);
    memset(&bo, 0, sizeof bo);
    CHECK_EQ(big_os_recv(&bt, &bo, URSA_NEVER), 0);
    CHECK(memcmp(&bo, &bv, sizeof bv) == 0);
    CHECK_EQ(big_os_sender_drop(NULL), -EINVAL);
    return NULL;
}

TEST_BODY(test_oneshot_rejects_bad_arguments_and_delivers_once, args_body(NULL))

static void *args_task(void *arg)
{
    return args_body(arg);
}

TEST_BODY(test_oneshot_rejects_bad_arguments_and_delivers_once_in_a_task,
          test_run(1, args_task, NULL))

/* ====================================================================== */
/* plain threads                                                          */
/* ====================================================================== */

typedef struct thr {
    ursa_oneshot_t *os;
    int mode; /* 0 send, 1 sender_drop, 2 close, 3 receiver_drop */
    int val;
    int delay_ms;
    int rc;
} thr_t;

static void *thr_fn(void *arg)
{
    thr_t *t = arg;
    sleep_real_ms(t->delay_ms);
    switch (t->mode) {
    case 0: t->rc = ursa_oneshot_send(t->os, &t->val); break;
    case 1: t->rc = ursa_oneshot_sender_drop(t->os); break;
    case 2: t->rc = ursa_oneshot_close(t->os); break;
    default: t->rc = ursa_oneshot_receiver_drop(t->os); break;
    }
    return NULL;
}

static void *threads_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os;
    pthread_t th;
    int out = 0;

    /* value across threads, blocking recv */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    thr_t t = {&os, 0, 31337, 5, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, URSA_NEVER), 0);
    pthread_join(th, NULL);
    CHECK_EQ(t.rc, 0);
    CHECK_EQ(out, 31337);

    /* sender drop wakes a blocked receiver with -EPIPE */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    t = (thr_t){&os, 1, 0, 5, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, ursa_deadline_in(URSA_SEC(20))), -EPIPE);
    pthread_join(th, NULL);
    CHECK_EQ(t.rc, 0);

    /* deadline */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    ursa_time_t t0 = mono_ns();
    CHECK_EQ(ursa_oneshot_recv(&os, &out, ursa_deadline_in(URSA_MSEC(20))), -ETIMEDOUT);
    CHECK(mono_ns() - t0 >= URSA_MSEC(19));
    CHECK_EQ(ursa_oneshot_recv(&os, &out, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(!peek_oneshot_waiting(&os));
    CHECK_EQ(ursa_oneshot_closed(&os, ursa_deadline_in(URSA_MSEC(5))), -ETIMEDOUT);
    /* and the channel still works afterwards */
    int v = 3;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, URSA_NOW), 0);
    CHECK_EQ(out, 3);

    /* closed() wakes on close, and on receiver drop */
    for (int mode = 2; mode <= 3; mode++) {
        CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
        t = (thr_t){&os, mode, 0, 5, -1};
        CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
        CHECK_EQ(ursa_oneshot_closed(&os, ursa_deadline_in(URSA_SEC(20))), 0);
        pthread_join(th, NULL);
        CHECK_EQ(t.rc, 0);
        CHECK_EQ(ursa_oneshot_send(&os, &v), -EPIPE);
    }

    /* a blocked recv ends with -EPIPE when the receiver closes (raw/odd
     * use, from another thread) and nothing was sent */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    t = (thr_t){&os, 2, 0, 5, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, ursa_deadline_in(URSA_SEC(20))), -EPIPE);
    pthread_join(th, NULL);
    return NULL;
}

TEST_BODY(test_oneshot_recv_and_closed_end_by_send_drop_close_or_deadline_on_threads,
          threads_body(NULL))

/* ====================================================================== */
/* tasks across workers, cancel                                           */
/* ====================================================================== */

typedef struct tk {
    ursa_oneshot_t *os;
    int val;
    int rc;
} tk_t;

static void *recv_task(void *arg)
{
    tk_t *k = arg;
    k->rc = ursa_oneshot_recv(k->os, &k->val, URSA_NEVER);
    return NULL;
}

static void *closed_task(void *arg)
{
    tk_t *k = arg;
    k->rc = ursa_oneshot_closed(k->os, URSA_NEVER);
    return NULL;
}

static void *workers_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os;
    /* receiver task on worker 1, sender here (worker 0) */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    tk_t k = {&os, 0, -1};
    ursa_task_t *t = spawn_on(1, recv_task, &k, "rx");
    CHECK(SETTLE_UNTIL(peek_oneshot_waiting(&os)));
    int v = 99;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(k.rc, 0);
    CHECK_EQ(k.val, 99);

    /* sender drop from worker 0 wakes worker 1 with -EPIPE */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    k = (tk_t){&os, 0, -1};
    t = spawn_on(1, recv_task, &k, "rx");
    CHECK(SETTLE_UNTIL(peek_oneshot_waiting(&os)));
    CHECK_EQ(ursa_oneshot_sender_drop(&os), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(k.rc, -EPIPE);

    /* closed() on worker 1 wakes when the receiver (here) closes */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    k = (tk_t){&os, 0, -1};
    t = spawn_on(1, closed_task, &k, "tx-closed");
    CHECK(SETTLE_UNTIL(peek_oneshot_waiting(&os)));
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(k.rc, 0);

    /* cancelling a receiving task: -ECANCELED, nothing queued after */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    k = (tk_t){&os, 0, -1};
    t = spawn_on(1, recv_task, &k, "rx-cancel");
    CHECK(SETTLE_UNTIL(peek_oneshot_waiting(&os)));
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_OK(join_task(t));
    CHECK_EQ(k.rc, -ECANCELED);
    CHECK(!peek_oneshot_waiting(&os));
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0); /* the value stays for a later recv */
    int out = 0;
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), 0);
    CHECK_EQ(out, 99);

    /* task deadline */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, ursa_deadline_in(URSA_MSEC(5))), -ETIMEDOUT);
    CHECK(!peek_oneshot_waiting(&os));
    return NULL;
}

TEST_BODY(test_oneshot_recv_and_closed_in_tasks_on_two_workers, test_run(2, workers_body, NULL))

/* A task receives a value sent by a plain thread, and vice versa. */
static void *task_thread_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os;
    pthread_t th;
    int out = 0;
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    thr_t t = {&os, 0, 4242, 2, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(ursa_oneshot_recv(&os, &out, URSA_NEVER), 0);
    pthread_join(th, NULL);
    CHECK_EQ(out, 4242);
    CHECK_EQ(t.rc, 0);
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    t = (thr_t){&os, 3, 0, 2, -1}; /* thread drops the receiver */
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(ursa_oneshot_closed(&os, URSA_NEVER), 0);
    pthread_join(th, NULL);
    return NULL;
}

TEST_BODY(test_oneshot_task_receives_from_a_plain_thread_and_sees_its_drop,
          test_run(1, task_thread_body, NULL))

/* ====================================================================== */
/* raw waits with a foreign waker                                         */
/* ====================================================================== */

static void *raw_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os;
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, 0);
    CHECK(cw.efd >= 0);
    pthread_t th;
    int out = 0;

    /* recv: queued, a thread sends, the eventfd fires */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    thr_t t = {&os, 0, 555, 2, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    struct pollfd p = {cw.efd, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 20000), 1);
    uint64_t cnt;
    CHECK_EQ(read(cw.efd, &cnt, sizeof cnt), (ssize_t)sizeof cnt);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), 0);
    CHECK_EQ(out, 555);
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), -EINVAL);
    pthread_join(th, NULL);
    CHECK_EQ(t.rc, 0);
    CHECK_EQ(atomic_load(&cw.calls), 1);

    /* already sent: start returns 0, finish at once, no waker call */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    int v = 8;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), 0);
    CHECK_EQ(out, 8);
    CHECK_EQ(atomic_load(&cw.calls), 1);

    /* cancel after the value landed: the value stays in the channel */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    v = 11;
    CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
    CHECK_EQ(atomic_load(&cw.calls), 2);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), 0);
    CHECK_EQ(out, 11);
    CHECK_EQ(read(cw.efd, &cnt, sizeof cnt), (ssize_t)sizeof cnt);

    /* sender drop decides the raw wait: -EPIPE */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_oneshot_sender_drop(&os), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), -EPIPE);
    CHECK_EQ(atomic_load(&cw.calls), 3);
    CHECK_EQ(read(cw.efd, &cnt, sizeof cnt), (ssize_t)sizeof cnt);

    /* closed(): raw, woken by a thread's receiver_drop */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_closed_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    ursa_wait_t w2;
    CHECK_EQ(ursa_oneshot_closed_start(&os, &w2, cw_waker(&cw)), -EBUSY);
    CHECK_EQ(ursa_oneshot_closed_finish(&os, &w), -EAGAIN);
    t = (thr_t){&os, 3, 0, 2, -1};
    CHECK_EQ(pthread_create(&th, NULL, thr_fn, &t), 0);
    CHECK_EQ(poll(&p, 1, 20000), 1);
    CHECK_EQ(read(cw.efd, &cnt, sizeof cnt), (ssize_t)sizeof cnt);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_oneshot_closed_finish(&os, &w), 0);
    pthread_join(th, NULL);
    CHECK_EQ(ursa_oneshot_closed_start(&os, &w, cw_waker(&cw)), 0);
    CHECK_EQ(ursa_oneshot_closed_finish(&os, &w), 0);
    /* closed() cancel */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_closed_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK(!peek_oneshot_waiting(&os));
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    CHECK_EQ(atomic_load(&cw.calls), 4);
    close(cw.efd);
    return NULL;
}

TEST_BODY(test_oneshot_raw_recv_and_closed_waits_with_a_foreign_waker, raw_body(NULL))

/* ====================================================================== */
/* wait bits: every way a wait ends leaves destroy clean                  */
/* ====================================================================== */

/* destroy checks the queued-wait bits without a lock, so every path that
 * empties a wait slot must clear its bit (regression for the lock-free
 * send/recv). */
static void *wait_bits_body(void *arg)
{
    (void)arg;
    ursa_oneshot_t os;
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    int v = 5, out = 0;
    for (int how = 0; how < 6; how++) {
        CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
        CHECK_EQ(ursa_oneshot_recv_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
        int want = 0;
        switch (how) {
        case 0: CHECK_EQ(ursa_oneshot_send(&os, &v), 0); break;
        case 1: CHECK_EQ(ursa_oneshot_sender_drop(&os), 0); want = -EPIPE; break;
        case 2: CHECK_EQ(ursa_oneshot_close(&os), 0); want = -EPIPE; break;
        case 3: CHECK_EQ(ursa_oneshot_receiver_drop(&os), 0); want = -EINVAL; break;
        case 4: /* sent, then closed: the close leaves the granted wait */
            CHECK_EQ(ursa_oneshot_send(&os, &v), 0);
            CHECK_EQ(ursa_oneshot_close(&os), 0);
            break;
        default: break;
        }
        if (how == 5) {
            CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
            CHECK_EQ(ursa_oneshot_send(&os, &v), 0); /* nobody to wake */
            CHECK_EQ(ursa_oneshot_try_recv(&os, &out), 0);
            CHECK_EQ(out, 5);
        } else {
            CHECK(ursa_wait_ready(&w));
            out = 0;
            CHECK_EQ(ursa_oneshot_recv_finish(&os, &w, &out), want);
            if (want == 0)
                CHECK_EQ(out, 5);
        }
        CHECK_EQ(ursa_oneshot_destroy(&os), 0);
    }
    CHECK_EQ(atomic_load(&cw.calls), 5);

    /* closed(): decided by close, or cancelled */
    for (int how = 0; how < 2; how++) {
        CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
        CHECK_EQ(ursa_oneshot_closed_start(&os, &w, cw_waker(&cw)), -EINPROGRESS);
        CHECK_EQ(ursa_oneshot_send(&os, &v), 0); /* a send does not end it */
        CHECK(!ursa_wait_ready(&w));
        if (how == 0) {
            CHECK_EQ(ursa_oneshot_receiver_drop(&os), 0);
            CHECK_EQ(ursa_oneshot_closed_finish(&os, &w), 0);
        } else
            CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
        CHECK_EQ(ursa_oneshot_destroy(&os), 0);
    }
    CHECK_EQ(atomic_load(&cw.calls), 6);

    /* a send that fails on a close: -EPIPE once, then -EALREADY */
    CHECK_EQ(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    CHECK_EQ(ursa_oneshot_close(&os), 0);
    v = 9;
    CHECK_EQ(ursa_oneshot_send(&os, &v), -EPIPE);
    CHECK_EQ(v, 9);
    CHECK_EQ(ursa_oneshot_send(&os, &v), -EALREADY);
    CHECK_EQ(ursa_oneshot_try_recv(&os, &out), -EPIPE);
    CHECK_EQ(ursa_oneshot_destroy(&os), 0);
    return NULL;
}

TEST_BODY(test_oneshot_every_way_a_wait_ends_leaves_destroy_clean, wait_bits_body(NULL))

TEST_MAIN(cmocka_unit_test(test_oneshot_rejects_bad_arguments_and_delivers_once),
          cmocka_unit_test(test_oneshot_rejects_bad_arguments_and_delivers_once_in_a_task),
          cmocka_unit_test(test_oneshot_recv_and_closed_end_by_send_drop_close_or_deadline_on_threads),
          cmocka_unit_test(test_oneshot_recv_and_closed_in_tasks_on_two_workers),
          cmocka_unit_test(test_oneshot_task_receives_from_a_plain_thread_and_sees_its_drop),
          cmocka_unit_test(test_oneshot_raw_recv_and_closed_waits_with_a_foreign_waker),
          cmocka_unit_test(test_oneshot_every_way_a_wait_ends_leaves_destroy_clean))
