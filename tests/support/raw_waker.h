/* A foreign waker for raw two-phase waits: counts its calls, remembers the
 * calling thread, and optionally writes an eventfd (as an event loop's
 * wake-up would). Include after support.h. */
#ifndef URSA_TEST_RAW_WAKER_H
#define URSA_TEST_RAW_WAKER_H

#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct rwaker {
    _Atomic int count;
    _Atomic pid_t tid;
    int efd;
} rwaker_t;

static __attribute__((unused)) void rwaker_fn(void *p)
{
    rwaker_t *r = p;
    atomic_store(&r->tid, gettid());
    atomic_fetch_add(&r->count, 1);
    if (r->efd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(r->efd, &one, sizeof one);
        (void)n;
    }
}

/* Zero counts; with_eventfd: a fresh eventfd the waker writes (the caller
 * closes it), else none. Asserts, so call it on the test's own stack. */
static __attribute__((unused)) void rwaker_init(rwaker_t *r, bool with_eventfd)
{
    atomic_init(&r->count, 0);
    atomic_init(&r->tid, 0);
    r->efd = with_eventfd ? eventfd(0, EFD_CLOEXEC) : -1;
    if (with_eventfd)
        assert_true(r->efd >= 0);
}

static __attribute__((unused)) ursa_waker_t rwaker(rwaker_t *r)
{
    return (ursa_waker_t){rwaker_fn, r};
}

/* Spins (sched_yield) until w is ready, until the hang guard. */
static __attribute__((unused)) bool await_ready(const ursa_wait_t *w)
{
    ursa_time_t end = mono_ns() + test_hang_guard();
    while (!ursa_wait_ready(w)) {
        if (mono_ns() > end)
            return false;
        sched_yield();
    }
    return true;
}

/* Spins (sched_yield) until r has been called n times, until the hang
 * guard. A wait is ready (ursa_wait_ready) before its waker is called:
 * the call comes after the primitive drops its lock. */
static __attribute__((unused)) bool await_woken(rwaker_t *r, int n)
{
    ursa_time_t end = mono_ns() + test_hang_guard();
    while (atomic_load(&r->count) < n) {
        if (mono_ns() > end)
            return false;
        sched_yield();
    }
    return true;
}

#endif
