/* Notify: a wait node that is still a notify wait cannot be enabled or
 * raw-started again (issue 10, defect 9). Enabling twice used to return 0
 * and link the node into the queue a second time: after disable it stayed
 * queued, destroy said -EBUSY forever, and the next notify_one went to the
 * dead node. Now the second call is -EINVAL and changes nothing. Each test
 * failed at its second enable before the fix (it returned 0). */
#include "support.h"

#include "raw_waker.h"

static void test_notify_enable_twice_is_refused_and_disable_unqueues(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    ursa_wait_t w;
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_enable(&n, &w), -EINVAL);
    assert_int_equal(ursa_notify_disable(&n, &w), 0); /* withdrawn un-notified */
    assert_int_equal(ursa_notify_destroy(&n), 0);     /* nothing left queued */
}

static void test_notify_enable_twice_loses_no_notification(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    ursa_wait_t w, w2;
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_enable(&n, &w), -EINVAL);
    assert_int_equal(ursa_notify_enable(&n, &w2), 0);
    assert_int_equal(ursa_notify_disable(&n, &w), 0);
    /* The next notify_one reaches the live waiter, not the disabled node. */
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_wait_enabled(&n, &w2, URSA_NOW), 0);
    /* And with nobody queued, one is stored for the next wait. */
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_wait(&n, URSA_NOW), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

static void test_notify_enable_of_notified_node_keeps_its_notification(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    ursa_wait_t w;
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_one(&n), 1); /* w is notified, not yet ended */
    assert_int_equal(ursa_notify_enable(&n, &w), -EINVAL);
    assert_int_equal(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);
    assert_int_equal(ursa_notify_wait(&n, URSA_NOW), -EAGAIN); /* consumed once */
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

static void test_notify_enable_on_a_second_notify_is_refused(void **state)
{
    (void)state;
    ursa_notify_t n1, n2;
    assert_int_equal(ursa_notify_init(&n1), 0);
    assert_int_equal(ursa_notify_init(&n2), 0);
    ursa_wait_t w;
    assert_int_equal(ursa_notify_enable(&n1, &w), 0);
    assert_int_equal(ursa_notify_enable(&n2, &w), -EINVAL);
    assert_int_equal(ursa_notify_one(&n1), 1);
    assert_int_equal(ursa_notify_wait_enabled(&n1, &w, URSA_NOW), 0);
    /* n2 never got the node: its notification is stored, not lost. */
    assert_int_equal(ursa_notify_one(&n2), 1);
    assert_int_equal(ursa_notify_wait(&n2, URSA_NOW), 0);
    assert_int_equal(ursa_notify_destroy(&n1), 0);
    assert_int_equal(ursa_notify_destroy(&n2), 0);
}

static void test_notify_raw_started_node_is_refused(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    rwaker_t r;
    rwaker_init(&r, false);
    ursa_wait_t w;
    assert_int_equal(ursa_notify_wait_start(&n, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_notify_enable(&n, &w), -EINVAL);
    assert_int_equal(ursa_notify_wait_start(&n, &w, rwaker(&r)), -EINVAL);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(atomic_load(&r.count), 1);
    assert_int_equal(ursa_notify_wait_finish(&n, &w), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

static void test_notify_ended_node_can_be_enabled_again(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    ursa_wait_t w;
    /* after disable */
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_disable(&n, &w), 0);
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_one(&n), 1);
    /* after wait_enabled */
    assert_int_equal(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    /* after a disable that passed a notification on (to the permit) */
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_disable(&n, &w), 1);
    assert_int_equal(ursa_notify_enable(&n, &w), 0); /* takes that permit at once */
    assert_int_equal(ursa_notify_wait_enabled(&n, &w, URSA_NOW), 0);
    /* after a raw wait finished or cancelled */
    rwaker_t r;
    rwaker_init(&r, false);
    assert_int_equal(ursa_notify_wait_start(&n, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&w), -ECANCELED);
    assert_int_equal(ursa_notify_enable(&n, &w), 0);
    assert_int_equal(ursa_notify_disable(&n, &w), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

TEST_MAIN(cmocka_unit_test(test_notify_enable_twice_is_refused_and_disable_unqueues),
          cmocka_unit_test(test_notify_enable_twice_loses_no_notification),
          cmocka_unit_test(test_notify_enable_of_notified_node_keeps_its_notification),
          cmocka_unit_test(test_notify_enable_on_a_second_notify_is_refused),
          cmocka_unit_test(test_notify_raw_started_node_is_refused),
          cmocka_unit_test(test_notify_ended_node_can_be_enabled_again))
