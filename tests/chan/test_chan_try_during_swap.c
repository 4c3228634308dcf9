/* A try send never fails spuriously while a receiver swaps a big ring
 * (src/chan/mpsc/shrink.c, src/chan/mpmc/shrink.c): the swap holds every
 * permit for a few instructions, and a try that found none in that window
 * must wait it out, as it waits out a harvest (issue 10, defect 1). The
 * sender keeps at most half the capacity in flight, so every -EAGAIN it
 * sees is spurious. Also run without membarrier (tests/CMakeLists.txt). */
#include "support.h"

#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "task_checks.h"

#define ESZ 1016 /* 1 KiB slots: URSA__RING_SHRINK_MIN is 2048 of them */
#define CAP 4096 /* a 4 MiB ring: big enough to be swapped */

typedef struct swap_run {
    bool mpmc;
    ursa_mpsc_sender_t stx;
    ursa_mpsc_receiver_t srx;
    ursa_mpmc_sender_t mtx;
    ursa_mpmc_receiver_t mrx;
    uint64_t n;
    _Atomic uint64_t received;
    uint64_t spurious, bad;
} swap_run_t;

static int try_send(swap_run_t *r, const void *v)
{
    return r->mpmc ? ursa_mpmc_send(&r->mtx, v, URSA_NOW) : ursa_mpsc_send(&r->stx, v, URSA_NOW);
}

static void *trying_sender(void *arg)
{
    swap_run_t *r = arg;
    static unsigned char v[ESZ];
    for (uint64_t i = 0; i < r->n;) {
        /* acquire: the received count is only a bound; nothing else rides on it. */
        while (i - atomic_load_explicit(&r->received, memory_order_acquire) >= CAP / 2)
            sched_yield();
        memcpy(v, &i, sizeof i);
        int rc = try_send(r, v);
        if (rc == 0)
            i++;
        else if (rc == -EAGAIN)
            r->spurious++; /* at most CAP / 2 in flight: never full */
        else
            r->bad++;
    }
    if (r->mpmc)
        assert_int_equal(ursa_mpmc_sender_drop(&r->mtx), 0);
    else
        assert_int_equal(ursa_mpsc_sender_drop(&r->stx), 0);
    return NULL;
}

/* Receives on this thread, blocking: each time it finds the channel empty
 * with 2 MiB of the ring written, it swaps the ring. */
static void expect_no_spurious_try(bool mpmc)
{
    swap_run_t r = {.mpmc = mpmc, .n = (uint64_t)test_scale(100000)};
    if (mpmc)
        assert_int_equal(ursa_mpmc_new(&r.mrx, &r.mtx, ESZ, CAP, NULL), 0);
    else
        assert_int_equal(ursa_mpsc_new(&r.srx, &r.stx, ESZ, CAP, NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, trying_sender, &r), 0);
    static unsigned char v[ESZ];
    uint64_t next = 0;
    ursa_time_t guard = ursa_deadline_in(test_hang_guard());
    int rc;
    while ((rc = mpmc ? ursa_mpmc_recv(&r.mrx, v, guard) : ursa_mpsc_recv(&r.srx, v, guard)) == 0) {
        uint64_t x;
        memcpy(&x, v, sizeof x);
        assert_int_equal(x, next);
        next++;
        /* release: pairs with the sender's acquire (a bound only). */
        atomic_store_explicit(&r.received, next, memory_order_release);
    }
    assert_int_equal(rc, -EPIPE);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(next, r.n);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.spurious, 0);
    if (mpmc)
        assert_int_equal(ursa_mpmc_receiver_drop(&r.mrx), 0);
    else
        assert_int_equal(ursa_mpsc_receiver_drop(&r.srx), 0);
}

static void test_mpsc_try_send_never_fails_spuriously_during_a_ring_swap(void **state)
{
    (void)state;
    expect_no_spurious_try(false);
}

static void test_mpmc_try_send_never_fails_spuriously_during_a_ring_swap(void **state)
{
    (void)state;
    expect_no_spurious_try(true);
}

TEST_MAIN(cmocka_unit_test(test_mpsc_try_send_never_fails_spuriously_during_a_ring_swap),
          cmocka_unit_test(test_mpmc_try_send_never_fails_spuriously_during_a_ring_swap))
