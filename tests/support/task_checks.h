/* Helpers for tests whose bodies run as tasks: failures travel back as
 * messages (never cmocka asserts on a task stack), plus small utilities
 * shared by several test files. Include after support.h.
 *
 * Most checks live in "bodies": functions that return NULL when they
 * passed or a message saying what failed (CHECK / CHECK_EQ). A body can
 * run on the test's own (plain) thread, as the root task of a runtime, as
 * a spawned task on another worker, or as a deterministic scenario over
 * many seeds, and the cmocka assertion is made on the test's own stack
 * (ASSERT_OK, TEST_BODY), never from a task stack. Holds inside bodies are
 * URSA_SCOPED where possible so that a failing check that returns early
 * does not leak them. */
#ifndef URSA_TEST_TASK_CHECKS_H
#define URSA_TEST_TASK_CHECKS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static __attribute__((unused)) char fail_buf[64][384];
static __attribute__((unused)) atomic_uint fail_next;

static const char *failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static __attribute__((unused)) const char *failf(const char *fmt, ...)
{
    /* A ring of static buffers: messages outlive the task (and the worker
     * thread) that made them. */
    char *b = fail_buf[atomic_fetch_add(&fail_next, 1) % 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof fail_buf[0], fmt, ap);
    va_end(ap);
    return b;
}

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c))                                                                         \
            return (void *)failf("%s:%d: check failed: %s", __FILE__, __LINE__, #c);      \
    } while (0)

#define CHECK_EQ(a, b)                                                                    \
    do {                                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);                               \
        if (a_ != b_)                                                                     \
            return (void *)failf("%s:%d: %s is %lld, expected %lld (%s)", __FILE__,       \
                                 __LINE__, #a, a_, b_, #b);                               \
    } while (0)

#define CHECK_STR(a, b)                                                                   \
    do {                                                                                  \
        if (strcmp((a), (b)) != 0)                                                        \
            return (void *)failf("%s:%d: %s is \"%s\", expected \"%s\"", __FILE__,       \
                                 __LINE__, #a, (a), (b));                                 \
    } while (0)

/* Propagates a sub-body's failure. */
#define CHECK_OK(expr)                                                                    \
    do {                                                                                  \
        const char *m_ = (const char *)(expr);                                            \
        if (m_)                                                                           \
            return (void *)m_;                                                            \
    } while (0)

/* A cmocka test that makes one call on the test's own stack: a body (or a
 * run of one) that returns NULL or a message. */
#define TEST_BODY(name, call)                                                             \
    static void name(void **state)                                                        \
    {                                                                                     \
        (void)state;                                                                      \
        ASSERT_OK(call);                                                                  \
    }

/* In a task: yields until cond holds; a cancel ends the wait with a
 * message. */
#define YIELD_UNTIL(cond)                                                        \
    do {                                                                         \
        while (!(cond))                                                          \
            if (ursa_yield() == -ECANCELED)                                      \
                return (void *)(__FILE__ ":" URSA_SIM_STR(__LINE__)              \
                                ": cancelled while waiting for " #cond);         \
    } while (0)

/* In a test body (the test's own stack): fail the test with the message. */
#define ASSERT_OK(expr)                                                                   \
    do {                                                                                  \
        const char *m_ = (const char *)(expr);                                            \
        if (m_)                                                                           \
            fail_msg("%s", m_);                                                           \
    } while (0)

/* ---- small helpers ---- */

static __attribute__((unused)) void sleep_real_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Polls until a condition holds: yields first (all a deterministic run
 * needs, and it never advances virtual time), then sleeps a little (a real
 * runtime waiting on a plain thread). Gives up after the hang guard. */
static __attribute__((unused)) bool settle_loop(unsigned long i, ursa_time_t give_up)
{
    if (mono_ns() > give_up)
        return false;
    if (i < 100000)
        (void)ursa_yield();
    else
        (void)ursa_sleep_for(URSA_USEC(50));
    return true;
}

/* True once cond holds (polled with settle_loop), false after the hang guard. */
#define SETTLE_UNTIL(cond)                                                                \
    ({                                                                                    \
        bool ok_ = true;                                                                  \
        ursa_time_t give_up_ = mono_ns() + test_hang_guard();                             \
        for (unsigned long i_ = 0; ok_ && !(cond); i_++)                                  \
            ok_ = settle_loop(i_, give_up_);                                              \
        ok_;                                                                              \
    })

/* Spawns on worker `worker`, or on the caller's (-1). */
static __attribute__((unused)) ursa_task_t *spawn_on(int worker, ursa_task_fn_t fn, void *arg, const char *name)
{
    ursa_task_t *t = NULL;
    ursa_spawn_opts_t o = {.name = name, URSA_ON_WORKER(worker)};
    if (worker < 0)
        o = (ursa_spawn_opts_t){.name = name, .placement = URSA_PLACE_LOCAL};
    if (ursa_spawn(&t, fn, arg, &o) != 0)
        return NULL;
    return t;
}

/* In a task: yields n times (lets other tasks run a few steps). */
static __attribute__((unused)) void yield_n(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        (void)ursa_yield();
}

/* Joins t; its result (a body's message), or a message if the join failed. */
static __attribute__((unused)) void *join_task(ursa_task_t *t)
{
    void *res = NULL;
    if (!t)
        return (void *)"spawn failed";
    int rc = ursa_task_join(t, &res, URSA_NEVER);
    if (rc)
        return (void *)failf("join failed: %s", ursa_strerror(rc));
    return res;
}

/* Joins the n tasks (each, even after a failure); the first failure among
 * their results, or NULL. */
static __attribute__((unused)) void *join_tasks(ursa_task_t *const *t, int n)
{
    void *first = NULL;
    for (int i = 0; i < n; i++) {
        void *r = join_task(t[i]);
        if (!first)
            first = r;
    }
    return first;
}

/* Joins the n plain threads; the first non-NULL result (a body's
 * message), or NULL. */
static __attribute__((unused)) void *join_threads(const pthread_t *th, int n)
{
    void *first = NULL;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        if (!first)
            first = r;
    }
    return first;
}

/* Runs fn as the root task of a fresh runtime configured as cfg: the
 * root's result (a body's message), or a message if the runtime failed. */
static __attribute__((unused)) void *test_run_cfg_msg(const ursa_rt_config_t *cfg,
                                                      ursa_task_fn_t fn, void *arg)
{
    void *res = NULL;
    int rc = ursa_run(cfg, fn, arg, &res);
    if (rc)
        return (void *)failf("ursa_run: %s", ursa_strerror(rc));
    return res;
}

/* The same with `workers` workers (on fewer threads when the process may
 * use fewer CPUs). */
static __attribute__((unused)) void *test_run_msg(unsigned workers, ursa_task_fn_t fn, void *arg)
{
    return test_run_cfg_msg(&(ursa_rt_config_t){.workers = workers}, fn, arg);
}

/* The same with a thread per worker on any machine. */
static __attribute__((unused)) void *test_run_threads_msg(unsigned workers, ursa_task_fn_t fn,
                                                          void *arg)
{
    return test_run_cfg_msg(&(ursa_rt_config_t){.workers = workers, .threads = workers}, fn, arg);
}

/* As a task (arg: a body): runs the body here (the root task, worker 0),
 * then again as a task spawned on worker 1. */
static __attribute__((unused)) void *body_on_worker1(void *arg)
{
    ursa_task_fn_t body = (ursa_task_fn_t)arg;
    CHECK_OK(body(NULL));
    return join_task(spawn_on(1, body, NULL, "on-worker-1"));
}

/* A foreign waker: counts its calls, optionally writes an eventfd, and
 * optionally spins afterwards (a releasing thread preempted right after
 * the waker's side effect). cw_init gives neither. */
typedef struct cw {
    atomic_int calls;
    int efd;
    int spin_after_ms;
} cw_t;

static __attribute__((unused)) void cw_fn(void *ctx)
{
    cw_t *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    if (c->efd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(c->efd, &one, sizeof one);
        (void)r;
    }
    if (c->spin_after_ms) {
        ursa_time_t until = mono_ns() + URSA_MSEC(c->spin_after_ms);
        while (mono_ns() < until) {
        }
    }
}

static __attribute__((unused)) void cw_init(cw_t *c)
{
    atomic_init(&c->calls, 0);
    c->efd = -1;
    c->spin_after_ms = 0;
}

static __attribute__((unused)) ursa_waker_t cw_waker(cw_t *c)
{
    return (ursa_waker_t){cw_fn, c};
}

/* c's waker with its count reset (each raw start counts anew). */
static __attribute__((unused)) ursa_waker_t cw_fresh(cw_t *c)
{
    cw_init(c);
    return cw_waker(c);
}

/* A small deterministic pseudo-random sequence for stress schedules. */
static __attribute__((unused)) uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Whether this build runs under ThreadSanitizer (whose shadow memory
 * stays resident: process-RSS checks are off there). */
#if defined(__SANITIZE_THREAD__)
#define TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#endif
#ifndef TEST_UNDER_TSAN
#define TEST_UNDER_TSAN 0
#endif

/* A plain thread running a body fn(arg) (NULL or a message). */
static __attribute__((unused)) pthread_t start_body_thread(void *(*fn)(void *), intptr_t arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, (void *)arg), 0);
    return t;
}

/* Joins it; its message fails the test. */
static __attribute__((unused)) void join_body_thread(pthread_t t)
{
    void *res;
    assert_int_equal(pthread_join(t, &res), 0);
    ASSERT_OK(res);
}


/* ---- a request/reply pair ---- */

typedef struct test_request {
    long i;
    ursa_oneshot_t *reply;
} test_request_t;

/* A server: answers each request's i with i + 1 until the senders left. */
static __attribute__((unused)) void *test_reqrep_server(void *arg)
{
    ursa_mpsc_receiver_t *rx = arg;
    test_request_t q;
    int rc;
    while ((rc = ursa_mpsc_recv(rx, &q, URSA_NEVER)) == 0) {
        long v = q.i + 1;
        CHECK_EQ(ursa_oneshot_send(q.reply, &v), 0);
    }
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

/* In a task: a client here asks a server fixed on worker 1 `rounds` times,
 * one request at a time, and checks every reply. */
static __attribute__((unused)) void *request_reply_rounds(long rounds)
{
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    CHECK_EQ(ursa_mpsc_new(&rx, &tx, sizeof(test_request_t), 64, NULL), 0);
    ursa_task_t *s = spawn_on(1, test_reqrep_server, &rx, "server");
    CHECK(s != NULL);
    for (long i = 0; i < rounds; i++) {
        ursa_oneshot_t reply;
        CHECK_EQ(ursa_oneshot_init(&reply, sizeof(long), NULL), 0);
        test_request_t q = {i, &reply};
        CHECK_EQ(ursa_mpsc_send(&tx, &q, URSA_NEVER), 0);
        long v = 0;
        CHECK_EQ(ursa_oneshot_recv(&reply, &v, URSA_NEVER), 0);
        CHECK_EQ(v, i + 1);
        CHECK_EQ(ursa_oneshot_destroy(&reply), 0);
    }
    CHECK_EQ(ursa_mpsc_sender_drop(&tx), 0);
    CHECK_OK(join_task(s));
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    return NULL;
}

#endif
