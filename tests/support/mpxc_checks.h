/* What the mpsc and mpmc tests share. The two channels' APIs have the same
 * shape, so these helpers are written once against CH(name), which expands
 * to ursa_<CHAN>_name: the including file defines CHAN (mpsc or mpmc) and
 * includes support.h, task_checks.h and <ursa/mpsc.h> or <ursa/mpmc.h>
 * first. Includes chan_checks.h. */
#ifndef URSA_TEST_MPXC_CHECKS_H
#define URSA_TEST_MPXC_CHECKS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "chan_checks.h"

#define CH_PASTE(c, n) ursa_##c##_##n
#define CH_EXPAND(c, n) CH_PASTE(c, n)
#define CH(n) CH_EXPAND(CHAN, n)
#define CH_STR_(c) #c
#define CH_STR(c) CH_STR_(c)
/* URSA_SCOPED(mpsc_permit, name) or URSA_SCOPED(mpmc_permit, name). */
#define CH_SCOPED_PASTE(c, name) URSA_SCOPED(c##_permit, name)
#define CH_SCOPED_EXPAND(c, name) CH_SCOPED_PASTE(c, name)
#define CH_SCOPED_PERMIT(name) CH_SCOPED_EXPAND(CHAN, name)

/* A plain thread that sends 1234 after delay_ms: the foreign sender of the
 * raw recv tests. */
typedef struct raw_sender {
    CH(sender_t) tx;
    int delay_ms;
} raw_sender_t;

static __attribute__((unused)) void *raw_sender_thread(void *arg)
{
    raw_sender_t *a = arg;
    sleep_real_ms(a->delay_ms);
    uint64_t v = 1234;
    if (CH(send)(&a->tx, &v, URSA_NEVER))
        return (void *)"send";
    return NULL;
}

/* On the test's stack: makes rx and a->tx a new channel (u64, capacity
 * 2); a raw recv from a foreign loop on rx is woken by a plain thread's
 * send; a cancelled one consumes nothing and calls no waker; one that is
 * ready at start finishes at once. */
static __attribute__((unused)) void new_channel_check_raw_recv(CH(receiver_t) *rx, raw_sender_t *a)
{
    assert_int_equal(CH(new)(rx, &a->tx, 8, 2, NULL), 0);
    a->delay_ms = 5;
    cw_t cw;
    ursa_wait_t w;
    uint64_t out = 0;
    assert_int_equal(CH(recv_start)(rx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(CH(recv_finish)(rx, &w, &out), -EAGAIN);
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, raw_sender_thread, a), 0);
    while (!ursa_wait_ready(&w))
        sleep_real_ms(1);
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_int_equal(CH(recv_finish)(rx, &w, &out), 0);
    assert_int_equal(out, 1234);
    assert_int_equal(pthread_join(th, &res), 0);
    ASSERT_OK(res);
    /* cancelled raw recv: nothing consumed, no waker call */
    assert_int_equal(CH(recv_start)(rx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(CH(send)(&a->tx, &out, URSA_NOW), 0);
    assert_int_equal(atomic_load(&cw.calls), 0);
    /* ready at start */
    assert_int_equal(CH(recv_start)(rx, &w, cw_fresh(&cw)), 0);
    assert_int_equal(CH(recv_finish)(rx, &w, &out), 0);
}

/* On the test's stack: a raw recv on rx (empty, a->tx its last sender)
 * is woken by the sender's drop and finishes with the end of stream. */
static __attribute__((unused)) void check_raw_recv_ended_by_the_drop(CH(receiver_t) *rx,
                                                                    raw_sender_t *a)
{
    cw_t cw;
    ursa_wait_t w;
    uint64_t out = 0;
    assert_int_equal(CH(recv_start)(rx, &w, cw_fresh(&cw)), -EINPROGRESS);
    assert_int_equal(CH(sender_drop)(&a->tx), 0);
    assert_true(ursa_wait_ready(&w));
    assert_int_equal(CH(recv_finish)(rx, &w, &out), -EPIPE);
}

/* A new channel of esz-byte elements with n senders: tx[0] and n - 1
 * clones. 0, or the first call's error. */
static __attribute__((unused)) int new_with_senders(CH(receiver_t) *rx, CH(sender_t) *tx, int n,
                                                    size_t esz, uint64_t cap,
                                                    void (*dtor)(void *))
{
    int rc = CH(new)(rx, &tx[0], esz, cap, dtor);
    for (int i = 1; i < n && rc == 0; i++)
        rc = CH(sender_clone)(&tx[0], &tx[i]);
    return rc;
}

/* A stress producer's i-th send of id << 40 | i: by a permit (i % 3 == 0),
 * by a permit of two slots for i and i + 1 (i % 7 == 1, bounded, *i
 * advances), by a send with a short deadline, retried (i % 11 == 5, when
 * timed), or by a plain blocking send. 0 or the error. */
static __attribute__((unused)) int stress_send(CH(sender_t) *tx, uint64_t id, uint64_t *i,
                                               uint64_t per, uint64_t cap, bool timed)
{
    uint64_t v = id << 40 | *i;
    CH(permit_t) p = {0};
    int rc;
    if (*i % 3 == 0) {
        rc = CH(reserve)(tx, &p, URSA_NEVER);
        if (rc == 0)
            rc = CH(permit_send)(&p, &v);
    } else if (*i % 7 == 1 && cap >= 2 && *i + 1 < per) {
        rc = CH(reserve_many)(tx, 2, &p, URSA_NEVER);
        if (rc == 0)
            rc = CH(permit_send)(&p, &v);
        v++;
        (*i)++;
        if (rc == 0)
            rc = CH(permit_send)(&p, &v);
    } else if (timed && *i % 11 == 5) {
        while ((rc = CH(send)(tx, &v, ursa_deadline_in(URSA_USEC(20)))) == -ETIMEDOUT) {
        }
    } else {
        rc = CH(send)(tx, &v, URSA_NEVER);
    }
    return rc;
}

/* A stress producer's whole run: ids id << 40 | 0 .. per - 1 through
 * stress_send, then drops tx. NULL, or the first failure (tx kept). */
static __attribute__((unused)) const char *stress_produce(CH(sender_t) *tx, uint64_t id,
                                                          uint64_t per, uint64_t cap, bool timed)
{
    for (uint64_t i = 0; i < per; i++) {
        int rc = stress_send(tx, id, &i, per, cap, timed);
        if (rc)
            return failf("producer %llu send %llu: %d", (unsigned long long)id,
                         (unsigned long long)i, rc);
    }
    (void)CH(sender_drop)(tx);
    return NULL;
}

/* A stress producer as a task or a plain thread: stress_produce with
 * these arguments. */
typedef struct stress_producer {
    CH(sender_t) *tx;
    uint64_t id, per, cap;
    bool timed;
} stress_producer_t;

static __attribute__((unused)) void *stress_producer(void *arg)
{
    stress_producer_t *a = arg;
    return (void *)stress_produce(a->tx, a->id, a->per, a->cap, a->timed);
}

/* A task that sends 100, 101, 102 a little later, then drops its sender
 * (the last one): recv_many_until_end's other side. */
static __attribute__((unused)) void *many_sender(void *arg)
{
    CH(sender_t) *tx = arg;
    ursa_sleep_for(URSA_MSEC(1));
    for (uint64_t i = 100; i < 103; i++)
        if (CH(send)(tx, &i, URSA_NEVER))
            return (void *)"send";
    (void)CH(sender_drop)(tx);
    return NULL;
}

/* Blocking recv_many until the end of stream, alternating between two
 * receivers (the same one twice for mpsc): gets many_sender's 100..102 in
 * order, each once. */
static __attribute__((unused)) void *recv_many_until_end(CH(receiver_t) *rx,
                                                         CH(receiver_t) *rx2)
{
    uint64_t buf[8], got = 0, sum = 0;
    for (;;) {
        long k = CH(recv_many)(got % 2 ? rx : rx2, buf, 8, URSA_NEVER);
        if (k == -EPIPE)
            break;
        CHECK(k >= 1);
        for (long i = 0; i < k; i++) {
            CHECK_EQ(buf[i], 100 + got + (uint64_t)i);
            sum += buf[i];
        }
        got += (uint64_t)k;
    }
    CHECK_EQ(got, 3);
    CHECK_EQ(sum, 303);
    return NULL;
}

/* As a task or on a plain thread: tx's last receiver is gone and p was
 * reserved before that. Sends fail with -EPIPE (a try and a blocking one)
 * and leave the value with the caller; p's send fails too and discharges
 * it. Drops tx. NULL or a message. */
static __attribute__((unused)) void *check_sends_fail_without_receivers(CH(sender_t) *tx,
                                                                       CH(permit_t) *p)
{
    uint64_t v = 9;
    CHECK_EQ(CH(send)(tx, &v, URSA_NOW), -EPIPE);
    CHECK_EQ(CH(send)(tx, &v, URSA_NEVER), -EPIPE);
    CHECK_EQ(v, 9);
    CHECK_EQ(CH(permit_send)(p, &v), -EPIPE);
    CHECK(p->ch == NULL); /* discharged */
    CHECK_EQ(CH(sender_drop)(tx), 0);
    return NULL;
}

/* The sender side of "close with a permit held by another task": reserves
 * (blocking), says so, sends 42 a little later. Embedded in each test's
 * own state. */
typedef struct late_send {
    CH(sender_t) tx;
    atomic_int reserved;
} late_send_t;

static __attribute__((unused)) void *late_sender(void *arg)
{
    late_send_t *l = arg;
    CH(permit_t) p = {0};
    int rc = CH(reserve)(&l->tx, &p, URSA_NEVER);
    atomic_store(&l->reserved, rc == 0 ? 1 : 2);
    if (rc)
        return (void *)failf("reserve: %d", rc);
    ursa_yield();
    ursa_sleep_for(URSA_MSEC(1));
    uint64_t v = 42;
    URSA_SIM_CHECK(CH(permit_send)(&p, &v) == 0);
    return NULL;
}

/* One permit send of the close-race producers: reserve on tx (blocking),
 * yield between the reserve and the send every 5th i, send i. NULL with
 * *closed false when sent, NULL with *closed true when the reserve found
 * the channel closed, a failure message otherwise. */
static __attribute__((unused)) const char *reserve_then_send(CH(sender_t) *tx, uint64_t i,
                                                             bool *closed)
{
    CH(permit_t) p = {0};
    int rc = CH(reserve)(tx, &p, URSA_NEVER);
    *closed = rc == -EPIPE;
    if (rc == -EPIPE)
        return NULL;
    if (rc)
        return failf("reserve %d", rc);
    if (i % 5 == 0)
        ursa_yield();
    rc = CH(permit_send)(&p, &i);
    if (rc)
        return failf("permit_send %d", rc);
    return NULL;
}

/* On the test's stack, leak capture on: releasing a permit twice is
 * misuse (reported, -EINVAL); a scoped permit returns every slot it
 * holds. */
static __attribute__((unused)) void check_double_release_and_scoped_permit(void)
{
    CH(receiver_t) rx;
    CH(sender_t) tx;
    assert_int_equal(CH(new)(&rx, &tx, 8, 2, NULL), 0);
    CH(permit_t) p = {0};
    assert_int_equal(CH(reserve)(&tx, &p, URSA_NOW), 0);
    assert_int_equal(CH(permit_release)(&p), 0);
    assert_int_equal(CH(permit_release)(&p), -EINVAL);
    assert_int_equal(test_leak_count(), 1);
    {
        CH_SCOPED_PERMIT(sp);
        assert_int_equal(CH(reserve_many)(&tx, 2, &sp, URSA_NOW), 0);
    }
    assert_int_equal(CH(reserve_many)(&tx, 2, &p, URSA_NOW), 0); /* scope returned both */
    assert_int_equal(CH(permit_release)(&p), 0);
    assert_int_equal(CH(sender_drop)(&tx), 0);
    assert_int_equal(CH(receiver_drop)(&rx), 0);
}

/* A task that ends holding a permit of 3 slots after sending once. */
static int leak_line;

static __attribute__((unused)) void *leaker(void *arg)
{
    CH(sender_t) *tx = arg;
    static CH(permit_t) kept;
    memset(&kept, 0, sizeof kept);
    leak_line = __LINE__ + 1;
    if (CH(reserve_many)(tx, 3, &kept, URSA_NEVER) != 0)
        return (void *)"reserve failed";
    uint64_t v = 1;
    if (CH(permit_send)(&kept, &v) != 0)
        return (void *)"send failed";
    return NULL; /* ends holding 2 slots */
}

static __attribute__((unused)) void *leak_root(void *arg)
{
    return join_task(spawn_on(1, leaker, arg, "leaker"));
}

/* The permit left at task exit is reported with its acquire site, its
 * slots come back, and it no longer keeps a closed channel's stream open. */
static __attribute__((unused)) void check_permit_left_at_task_exit(void)
{
    test_capture_leaks();
    CH(receiver_t) rx;
    CH(sender_t) tx;
    assert_int_equal(CH(new)(&rx, &tx, 8, 3, NULL), 0);
    ASSERT_OK(test_run(2, leak_root, &tx));
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, CH_STR(CHAN) " send permit");
    assert_string_equal(test_leaks.owner, "leaker");
    assert_int_equal(test_leaks.line, leak_line);
    /* 1 message queued + 2 slots returned = 2 free */
    CH(permit_t) p = {0};
    assert_int_equal(CH(reserve_many)(&tx, 3, &p, URSA_NOW), -EAGAIN);
    assert_int_equal(CH(reserve_many)(&tx, 2, &p, URSA_NOW), 0);
    assert_int_equal(CH(permit_release)(&p), 0);
    /* the leaked permit no longer counts: a closed receiver ends */
    uint64_t out;
    assert_int_equal(CH(close)(&rx), 0);
    assert_int_equal(CH(recv)(&rx, &out, URSA_NEVER), 0);
    assert_int_equal(CH(recv)(&rx, &out, URSA_NEVER), -EPIPE);
    assert_int_equal(CH(sender_drop)(&tx), 0);
    assert_int_equal(CH(receiver_drop)(&rx), 0);
    ursa_leak_set_hook(NULL, NULL);
}

#endif
