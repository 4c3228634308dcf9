/* The raw-wait line of ursa/wait.h, written as the header shows it, for
 * each of the twelve _start macros: the waker as a compound literal,
 * `(ursa_waker_t){fn, ctx}`, whose comma once split the macro argument
 * (issue 10, defect 10: this file did not compile). Each wait is queued,
 * then completed by its primitive's signal: the literal's fn must run
 * with the literal's ctx, exactly once, and _finish then succeeds. Plain
 * threads only: the raw form needs no runtime (the pool's own tasks do:
 * its test makes the pool in a runtime's root task). */
#include "support.h"

/* The waker of every literal below: counts its calls on ctx. */
static void count_wake(void *ctx)
{
    atomic_fetch_add((_Atomic int *)ctx, 1);
}

static void test_mutex_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_mutex_init(&m);
    ursa_mutex_guard_t first = {0}, second = {0};
    assert_int_equal(ursa_mutex_lock(&m, &first, URSA_NOW), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_mutex_lock_start(&m, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_mutex_unlock(&first), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_mutex_lock_finish(&m, &w, &second), 0);
    assert_int_equal(ursa_mutex_unlock(&second), 0);
    assert_int_equal(ursa_mutex_destroy(&m), 0);
}

static void test_rwlock_read_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    ursa_rwlock_write_guard_t wg = {0};
    ursa_rwlock_read_guard_t rg = {0};
    assert_int_equal(ursa_rwlock_write_lock(&rw, &wg, URSA_NOW), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_rwlock_read_lock_start(&rw, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_rwlock_write_unlock(&wg), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &w, &rg), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

static void test_rwlock_write_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    assert_int_equal(ursa_rwlock_init(&rw, 0), 0);
    ursa_rwlock_write_guard_t wg = {0};
    ursa_rwlock_read_guard_t rg = {0};
    assert_int_equal(ursa_rwlock_read_lock(&rw, &rg, URSA_NOW), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_rwlock_write_lock_start(&rw, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &w, &wg), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&wg), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

static void test_semaphore_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 0), 0);
    ursa_sem_permit_t p = {0};
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_sem_acquire_start(&s, 2, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_sem_add(&s, 2), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_sem_acquire_finish(&s, &w, &p), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(ursa_sem_release(&p), 0);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void test_barrier_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_barrier_t b;
    assert_int_equal(ursa_barrier_init(&b, 2), 0);
    _Atomic int woken = 0, woken2 = 0;
    ursa_wait_t w, w2;
    int rc = ursa_barrier_wait_start(&b, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    /* The second party trips the barrier: done at once, its waker unused. */
    rc = ursa_barrier_wait_start(&b, &w2, (ursa_waker_t){count_wake, &woken2});
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(atomic_load(&woken2), 0);
    bool leader1 = false, leader2 = false;
    assert_int_equal(ursa_barrier_wait_finish(&b, &w, &leader1), 0);
    assert_int_equal(ursa_barrier_wait_finish(&b, &w2, &leader2), 0);
    assert_true(leader1 != leader2);
    assert_int_equal(ursa_barrier_destroy(&b), 0);
}

static void test_event_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_event_t e;
    assert_int_equal(ursa_event_init(&e, URSA_EVENT_MANUAL, false), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_event_wait_start(&e, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_event_wait_finish(&e, &w), 0);
    assert_int_equal(ursa_event_destroy(&e), 0);
}

static void test_notify_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_notify_wait_start(&n, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_notify_wait_finish(&n, &w), 0);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

static void test_once_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    assert_int_equal(ursa_once_init(&cell, NULL), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_once_wait_start(&cell, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    static int value;
    assert_int_equal(ursa_once_set(&cell, &value), 0);
    assert_int_equal(atomic_load(&woken), 1);
    void *got = NULL;
    assert_int_equal(ursa_once_wait_finish(&cell, &w, &got), 0);
    assert_ptr_equal(got, &value);
    assert_int_equal(ursa_once_destroy(&cell), 0);
}

static void test_oneshot_recv_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_oneshot_t os;
    assert_int_equal(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_oneshot_recv_start(&os, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    int v = 7, out = 0;
    assert_int_equal(ursa_oneshot_send(&os, &v), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_oneshot_recv_finish(&os, &w, &out), 0);
    assert_int_equal(out, 7);
    assert_int_equal(ursa_oneshot_destroy(&os), 0);
}

static void test_oneshot_closed_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_oneshot_t os;
    assert_int_equal(ursa_oneshot_init(&os, sizeof(int), NULL), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_oneshot_closed_start(&os, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    assert_int_equal(ursa_oneshot_receiver_drop(&os), 0);
    assert_int_equal(atomic_load(&woken), 1);
    assert_int_equal(ursa_oneshot_closed_finish(&os, &w), 0);
    assert_int_equal(ursa_oneshot_destroy(&os), 0);
}

static void test_broadcast_recv_start_takes_a_waker_literal(void **state)
{
    (void)state;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof(int), 4, NULL), 0);
    _Atomic int woken = 0;
    ursa_wait_t w;
    int rc = ursa_broadcast_recv_start(rx, &w, (ursa_waker_t){count_wake, &woken});
    assert_int_equal(rc, -EINPROGRESS);
    int v = 9, out = 0;
    assert_int_equal(ursa_broadcast_send(tx, &v), 1);
    assert_int_equal(atomic_load(&woken), 1);
    uint64_t missed = 0;
    assert_int_equal(ursa_broadcast_recv_finish(rx, &w, &out, &missed), 0);
    assert_int_equal(out, 9);
    assert_int_equal(missed, 0);
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
}

static int pool_res_create(void *ctx, void **res)
{
    *res = ctx;
    return 0;
}

static void pool_res_destroy(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
}

/* As the root task: a pool of one item, held, so the raw start queues. */
static void *pool_literal_root(void *arg)
{
    int *fails = arg;
    ursa_pool_config_t c = {0};
    c.factory = (ursa_pool_factory_t){pool_res_create, pool_res_destroy, NULL, NULL, fails};
    c.max_size = 1;
    ursa_pool_t *p;
    if (ursa_pool_new(&p, &c) != 0)
        return "ursa_pool_new";
    ursa_pool_item_t held = {0}, it = {0};
    _Atomic int woken = 0;
    ursa_wait_t w;
    *fails += ursa_pool_acquire(p, &held, URSA_NEVER) != 0;
    int rc = ursa_pool_acquire_start(p, &w, (ursa_waker_t){count_wake, &woken});
    *fails += rc != -EINPROGRESS;
    *fails += ursa_pool_return(p, &held) != 0; /* hands it to w */
    *fails += atomic_load(&woken) != 1;
    *fails += ursa_pool_acquire_finish(p, &w, &it) != 0 || it.res != fails;
    *fails += ursa_pool_return(p, &it) != 0;
    *fails += ursa_pool_free(p) != 0;
    return NULL;
}

static void test_pool_start_takes_a_waker_literal(void **state)
{
    (void)state;
    int fails = 0;
    assert_null(test_run(1, pool_literal_root, &fails));
    assert_int_equal(fails, 0);
}

TEST_MAIN(cmocka_unit_test(test_mutex_start_takes_a_waker_literal),
          cmocka_unit_test(test_rwlock_read_start_takes_a_waker_literal),
          cmocka_unit_test(test_rwlock_write_start_takes_a_waker_literal),
          cmocka_unit_test(test_semaphore_start_takes_a_waker_literal),
          cmocka_unit_test(test_barrier_start_takes_a_waker_literal),
          cmocka_unit_test(test_event_start_takes_a_waker_literal),
          cmocka_unit_test(test_notify_start_takes_a_waker_literal),
          cmocka_unit_test(test_once_start_takes_a_waker_literal),
          cmocka_unit_test(test_oneshot_recv_start_takes_a_waker_literal),
          cmocka_unit_test(test_oneshot_closed_start_takes_a_waker_literal),
          cmocka_unit_test(test_broadcast_recv_start_takes_a_waker_literal),
          cmocka_unit_test(test_pool_start_takes_a_waker_literal))
