/* Core pieces under the primitives: thread parker, the wait-node
 * handshake (decided, then waker, then done), ursa_strerror. The wait
 * queue itself and the select claim: test_waitq.c. */
#include "support.h"

#include <limits.h>

#include "core/park.h"
#include "core/sema.h"

static const ursa__wait_ops_t test_ops = {URSA_WAIT_OTHER, ursa__sema_cancel,
                                          ursa__sema_give_back};

/* ---- a waker that counts ---- */

typedef struct counter {
    atomic_int calls;
    ursa__waiter_t *node;  /* if set: what the node looked like during the call */
    atomic_int saw_decided, saw_done;
} counter_t;

static void count_wake(void *p)
{
    counter_t *c = p;
    if (c->node) {
        atomic_store(&c->saw_decided, ursa__wait_is_decided(c->node));
        atomic_store(&c->saw_done, ursa__wait_is_done(c->node));
    }
    atomic_fetch_add(&c->calls, 1);
}

/* ---- parker ---- */

static void *unpark_later(void *p)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ursa__unpark(p);
    return NULL;
}

static void test_parker_returns_on_unpark_or_deadline(void **state)
{
    (void)state;
    ursa__parker_t p;
    atomic_init(&p.word, 0);
    /* An unpark before the park makes it return (a lost one would hang). */
    ursa__unpark(&p);
    ursa__park(&p, URSA_NEVER);
    /* Nothing pending now: a deadline ends the park. */
    ursa_time_t t0 = ursa__mono_now();
    ursa__park(&p, t0 + URSA_MSEC(5));
    assert_true(ursa__mono_now() - t0 >= URSA_MSEC(5));
    /* Another thread's unpark wakes a parked thread: the park ends before
     * its deadline, the hang guard. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, unpark_later, &p), 0);
    ursa_time_t guard = ursa__mono_now() + test_hang_guard();
    ursa__park(&p, guard);
    assert_true(ursa__mono_now() < guard);
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* ---- wait queue and the node handshake ---- */

/* A granted node is decided before its waker runs and done only after:
 * what lets a waiter trust `decided` and keep the node until `done`. */
static void test_wait_node_is_decided_before_its_waker_and_done_after(void **state)
{
    (void)state;
    ursa__sema_t s;
    ursa__sema_init(&s, 0);
    ursa__waiter_t w;
    counter_t c = {0};
    c.node = &w;
    ursa__waiter_init(&w, (ursa_waker_t){count_wake, &c}, &test_ops);
    assert_int_equal(ursa__sema_start(&s, &w, 2), -EINPROGRESS);
    assert_false(ursa__wait_is_decided(&w));
    ursa__sema_release(&s, 1); /* partial: still queued */
    assert_false(ursa__wait_is_decided(&w));
    assert_int_equal(w.got, 1);
    ursa__sema_release(&s, 1);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_int_equal(atomic_load(&c.saw_decided), 1);
    assert_int_equal(atomic_load(&c.saw_done), 0);
    assert_true(ursa__wait_is_done(&w));
    assert_int_equal(w.got, 2);
    assert_int_equal(ursa__sema_available(&s), 0);
    /* Cancel after the grant reports "completed" and changes nothing. */
    assert_false(ursa__sema_cancel(&w));
    assert_int_equal(ursa__sema_available(&s), 0);
}

/* Close completes queued nodes with CLOSED and returns their partial
 * permits to the count; a start after close fails at once. */
static void test_sema_close_completes_queued_nodes_and_returns_their_permits(void **state)
{
    (void)state;
    ursa__sema_t s;
    ursa__sema_init(&s, 1);
    ursa__waiter_t a, b;
    counter_t c = {0};
    ursa__waiter_init(&a, (ursa_waker_t){count_wake, &c}, &test_ops);
    ursa__waiter_init(&b, (ursa_waker_t){count_wake, &c}, &test_ops);
    assert_int_equal(ursa__sema_start(&s, &a, 3), -EINPROGRESS); /* takes the 1 */
    assert_int_equal(ursa__sema_start(&s, &b, 1), -EINPROGRESS);
    assert_int_equal(ursa__sema_available(&s), 0);
    ursa__sema_close(&s);
    assert_int_equal(atomic_load(&c.calls), 2);
    assert_int_equal(atomic_load(&a.state), URSA__W_CLOSED);
    assert_int_equal(atomic_load(&b.state), URSA__W_CLOSED);
    assert_int_equal(ursa__sema_available(&s), 1);
    ursa__waiter_t d;
    ursa__waiter_init(&d, (ursa_waker_t){count_wake, &c}, &test_ops);
    assert_int_equal(ursa__sema_start(&s, &d, 1), -EPIPE);
    assert_true(ursa__wait_is_done(&d));
    assert_int_equal(atomic_load(&c.calls), 2); /* no waker for an immediate result */
}

/* ursa_strerror takes any int: INT_MIN used to be negated (undefined
 * behaviour; regression, seen under UBSan). */
static void test_strerror_takes_any_int(void **state)
{
    (void)state;
    assert_string_equal(ursa_strerror(0), "OK");
    assert_string_equal(ursa_strerror(-ETIMEDOUT), "ETIMEDOUT: deadline passed");
    assert_string_equal(ursa_strerror(INT_MIN), "not an error code");
    assert_string_equal(ursa_strerror(INT_MIN + 1), "not an error code");
    assert_string_equal(ursa_strerror(INT_MAX), "not an error code");
    assert_string_equal(ursa_strerror(1), "not an error code");
    assert_non_null(ursa_strerror(-ENOENT));
    assert_string_equal(ursa_strerror(-ENOENT), strerror(ENOENT));
}

TEST_MAIN(cmocka_unit_test(test_parker_returns_on_unpark_or_deadline),
          cmocka_unit_test(test_wait_node_is_decided_before_its_waker_and_done_after),
          cmocka_unit_test(test_sema_close_completes_queued_nodes_and_returns_their_permits),
          cmocka_unit_test(test_strerror_takes_any_int))
