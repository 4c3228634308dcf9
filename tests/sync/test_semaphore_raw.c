/* The semaphore's raw two-phase wait beyond the contract
 * (tests/contract/): woken by a permit another thread releases, ready when
 * its waker runs, granted at start (held only once finished), and
 * cancelled with partial or full permits assigned (handed on). */
#include "support.h"

#include <poll.h>
#include <sys/eventfd.h>

#include "queue_peek.h" /* internal: inspect the wait queue */
#include "task_checks.h"

/* ====================================================================== */
/* raw two-phase wait with a foreign waker                                 */
/* ====================================================================== */

typedef struct handoff {
    ursa_sem_permit_t *p;
    int delay_ms;
    int rc_adopt, rc_release;
} handoff_t;

static void *adopt_release_thread(void *arg)
{
    handoff_t *h = arg;
    h->rc_adopt = ursa_oblig_adopt(&h->p->ob);
    sleep_real_ms(h->delay_ms);
    h->rc_release = ursa_sem_release(h->p);
    return NULL;
}

static void *raw_eventfd_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    ursa_sem_permit_t p0 = {0};
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    CHECK(cw.efd >= 0);
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 1), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &p0, URSA_NOW), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &w, cw_waker(&cw)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), -EAGAIN); /* not ready yet */
    CHECK(p.sem == NULL);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(atomic_load(&cw.calls), 0);

    /* another thread releases the permit we hold */
    handoff_t h = {&p0, 5, 1, 1};
    CHECK_EQ(ursa_oblig_disown(&p0.ob), 0);
    CHECK_EQ(ursa_held_count(), h0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, adopt_release_thread, &h), 0);
    struct pollfd pfd = {.fd = cw.efd, .events = POLLIN};
    int prc = poll(&pfd, 1, 10000);
    bool ready = ursa_wait_ready(&w);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(h.rc_adopt, 0);
    CHECK_EQ(h.rc_release, 0);
    CHECK_EQ(prc, 1);
    uint64_t v = 0;
    CHECK_EQ(read(cw.efd, &v, sizeof v), (ssize_t)sizeof v);
    CHECK_EQ(v, 1);
    CHECK(ready);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK(p.sem == &s);
    CHECK_EQ(p.n, 1);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &q), -EINVAL); /* finished already */
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_available(&s), 1);
    /* the waker was called exactly once: no late second call */
    sleep_real_ms(10);
    CHECK_EQ(atomic_load(&cw.calls), 1);
    pfd.revents = 0;
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    close(cw.efd);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_raw_wait_woken_by_a_permit_released_on_another_thread, raw_eventfd_body(NULL))

typedef struct adder {
    ursa_sem_t *s;
    uint64_t n;
    int rc;
} adder_t;

static void *adder_thread(void *arg)
{
    adder_t *a = arg;
    a->rc = ursa_sem_add(a->s, a->n);
    return NULL;
}

/* The waker is the foreign loop's only signal. When its side effect (the
 * eventfd write) is seen, the wait must be ready: if it is not, the loop
 * (per the wait.h pattern) cancels a wait that was in fact granted. The
 * waker here spins after writing, as if its thread were preempted right
 * after the write. */
static void *raw_ready_on_wake_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t w;
    cw_t cw;
    cw_init(&cw);
    cw.efd = eventfd(0, EFD_CLOEXEC);
    cw.spin_after_ms = 50;
    CHECK(cw.efd >= 0);
    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &w, cw_waker(&cw)), -EINPROGRESS);
    adder_t a = {&s, 1, 1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, adder_thread, &a), 0);
    struct pollfd pfd = {.fd = cw.efd, .events = POLLIN};
    int prc = poll(&pfd, 1, 10000);
    bool ready_at_wake = ursa_wait_ready(&w);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(prc, 1);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK_EQ(ursa_sem_release(&p), 0);
    close(cw.efd);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    CHECK(ready_at_wake); /* checked last: everything above is cleaned up */
    return NULL;
}

TEST_BODY(test_sem_raw_wait_is_ready_when_its_waker_runs, raw_ready_on_wake_body(NULL))

static void *raw_immediate_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t w;
    cw_t cw;
    size_t h0 = ursa_held_count();
    CHECK_EQ(ursa_sem_init(&s, 3), 0);
    /* granted at once: 0, ready, waker never called */
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &w, cw_fresh(&cw)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_sem_available(&s), 1);
    CHECK_EQ(ursa_held_count(), h0); /* held only once finished */
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), 0);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_held_count(), h0);
    /* granted at once, then cancelled instead of finished: permits back */
    CHECK_EQ(ursa_sem_acquire_start(&s, 3, &w, cw_waker(&cw)), 0);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &w, &p), -EINVAL);
    CHECK_EQ(atomic_load(&cw.calls), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_raw_wait_granted_at_start_is_held_only_once_finished, raw_immediate_body(NULL))

/* Cancel of a queued raw wait with partly assigned permits hands them on. */
static void *raw_cancel_queued_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    URSA_SCOPED(sem_permit, q);
    ursa_wait_t wa, wb, wc;
    cw_t ca, cb, cc;
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 2), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 5, &wa, cw_fresh(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_head_got(&s.sema), 2);
    CHECK_EQ(ursa_sem_acquire_start(&s, 3, &wb, cw_fresh(&cb)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_acquire_start(&s, 1, &wc, cw_fresh(&cc)), -EINPROGRESS);
    CHECK_EQ(peek_sema_len(&s.sema), 3);
    CHECK_EQ(peek_sema_got_sum(&s.sema), 2);

    CHECK_EQ(ursa_wait_cancel(&wa), -ECANCELED);
    CHECK_EQ(atomic_load(&ca.calls), 0); /* a cancelled wait is not woken */
    CHECK_EQ(ursa_held_count(), h0);
    /* b (3) is the head now with a's 2; c (1) queues behind it */
    CHECK_EQ(peek_sema_len(&s.sema), 2);
    CHECK_EQ(peek_sema_head_got(&s.sema), 2);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK(!ursa_wait_ready(&wb));
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wa, &p), -EINVAL);
    CHECK_EQ(ursa_wait_cancel(&wa), -EINVAL);

    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK(ursa_wait_ready(&wb));
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cb.calls), 1);
    CHECK_EQ(ursa_sem_add(&s, 1), 0);
    CHECK(ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wb, &p), 0);
    CHECK_EQ(p.n, 3);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wc, &q), 0);
    CHECK_EQ(q.n, 1);
    CHECK_EQ(ursa_sem_release(&p), 0);
    CHECK_EQ(ursa_sem_release(&q), 0);
    CHECK_EQ(ursa_sem_available(&s), 4);
    CHECK_EQ(atomic_load(&ca.calls), 0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_cancelled_raw_wait_hands_its_partial_permits_on, raw_cancel_queued_body(NULL))

/* Cancel after the grant but before finish: nothing held, the permits go
 * to the next waiter (or back). */
static void *raw_cancel_granted_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, p);
    ursa_wait_t wa, wc;
    cw_t ca, cc;
    size_t h0 = ursa_held_count();

    CHECK_EQ(ursa_sem_init(&s, 0), 0);
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &wa, cw_fresh(&ca)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_acquire_start(&s, 2, &wc, cw_fresh(&cc)), -EINPROGRESS);
    CHECK_EQ(ursa_sem_add(&s, 2), 0);
    CHECK(ursa_wait_ready(&wa));
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK(!ursa_wait_ready(&wc));
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(ursa_wait_cancel(&wa), -ECANCELED);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_acquire_finish(&s, &wa, &p), -EINVAL);
    CHECK(p.sem == NULL);
    /* handed on to c */
    CHECK(ursa_wait_ready(&wc));
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_available(&s), 0);
    CHECK_EQ(peek_sema_len(&s.sema), 0);
    CHECK_EQ(ursa_wait_cancel(&wc), -ECANCELED); /* nobody behind: back to the count */
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(atomic_load(&ca.calls), 1);
    CHECK_EQ(atomic_load(&cc.calls), 1);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

TEST_BODY(test_sem_cancelled_granted_raw_wait_hands_its_permits_to_the_next,
          raw_cancel_granted_body(NULL))

TEST_MAIN(cmocka_unit_test(test_sem_raw_wait_woken_by_a_permit_released_on_another_thread),
          cmocka_unit_test(test_sem_raw_wait_is_ready_when_its_waker_runs),
          cmocka_unit_test(test_sem_raw_wait_granted_at_start_is_held_only_once_finished),
          cmocka_unit_test(test_sem_cancelled_raw_wait_hands_its_partial_permits_on),
          cmocka_unit_test(test_sem_cancelled_granted_raw_wait_hands_its_permits_to_the_next))
