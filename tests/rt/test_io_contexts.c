/* Task I/O (src/rt/io.c) behaves one way wherever it runs: each call
 * gives the documented result in a task and on a plain thread, with or
 * without io_uring (the _no_io_uring run); a task waiting for I/O leaves
 * its worker free, and deadlines, cancel and ursa_rt_free end its wait;
 * any deadline is valid input. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>

#include "support.h"

#include "rt_checks.h"

/* ================= one behaviour inside and outside tasks ================= */

/* Each I/O call gives the same result in a task and on a plain thread
 * (and with or without io_uring: test_io_contexts_no_io_uring), for the
 * cases include/ursa/io.h documents. Regression: off-task, a 0-byte read
 * of an empty pipe waited for data (-ETIMEDOUT) while the ring returned 0;
 * an offset of -5 meant "current position" off-task and -EINVAL in a
 * task; an offset on a pipe was ESPIPE off-task and ignored by the ring;
 * accept on a pipe waited off-task and was -ENOTSOCK in a task; an
 * expired deadline never tried off-task. */
enum {
    P_READ0_EMPTY, P_READ0_NULL, P_WRITE0_NULL,
    P_READ_OFF_NEG, P_WRITE_OFF_NEG, P_AFTER_NEG,
    P_WRITE_OFF0, P_READ_OFF0,
    P_ACCEPT_PIPE, P_ACCEPT_UNLISTENED, P_ACCEPT_CLOSED,
    P_NEG_READ, P_NEG_WRITE, P_NEG_ACCEPT, P_NEG_CONNECT, P_NEG_POLL,
    P_NULL_READ, P_NULL_WRITE, P_NULL_ADDR,
    P_EXPIRED_WRITE, P_EXPIRED_POLL, P_EXPIRED_READ, P_EXPIRED_EMPTY,
    P_N
};

static const long parity_expected[P_N] = {
    [P_READ0_EMPTY] = 0, [P_READ0_NULL] = 0, [P_WRITE0_NULL] = 0,
    [P_READ_OFF_NEG] = -EINVAL, [P_WRITE_OFF_NEG] = -EINVAL, [P_AFTER_NEG] = -EAGAIN,
    [P_WRITE_OFF0] = 3, [P_READ_OFF0] = 3,
    [P_ACCEPT_PIPE] = -ENOTSOCK, [P_ACCEPT_UNLISTENED] = -EINVAL, [P_ACCEPT_CLOSED] = -EBADF,
    [P_NEG_READ] = -EINVAL, [P_NEG_WRITE] = -EINVAL, [P_NEG_ACCEPT] = -EINVAL,
    [P_NEG_CONNECT] = -EINVAL, [P_NEG_POLL] = -EINVAL,
    [P_NULL_READ] = -EINVAL, [P_NULL_WRITE] = -EINVAL, [P_NULL_ADDR] = -EINVAL,
    [P_EXPIRED_WRITE] = 2, [P_EXPIRED_POLL] = POLLIN, [P_EXPIRED_READ] = 2,
    [P_EXPIRED_EMPTY] = -ETIMEDOUT,
};

typedef struct parity {
    int fd[2];
    int tcp; /* a TCP socket, not listening */
    int closed;
    long rc[P_N];
} parity_t;

static ursa_time_t soon(void)
{
    return in_ms(200); /* long enough to see a wait that should not be */
}

static void parity_battery(parity_t *p)
{
    char buf[8];
    struct sockaddr_in a = {.sin_family = AF_INET};
    long *rc = p->rc;
    rc[P_READ0_EMPTY] = ursa_read(p->fd[0], buf, 0, -1, soon());
    rc[P_READ0_NULL] = ursa_read(p->fd[0], NULL, 0, -1, soon());
    rc[P_WRITE0_NULL] = ursa_write(p->fd[1], NULL, 0, -1, soon());
    rc[P_READ_OFF_NEG] = ursa_read(p->fd[0], buf, 4, -5, soon());
    rc[P_WRITE_OFF_NEG] = ursa_write(p->fd[1], "ab", 2, -5, soon());
    rc[P_AFTER_NEG] = ursa_read(p->fd[0], buf, sizeof buf, -1, URSA_NOW); /* nothing written */
    rc[P_WRITE_OFF0] = ursa_write(p->fd[1], "xyz", 3, 0, soon()); /* a pipe: offset ignored */
    rc[P_READ_OFF0] = ursa_read(p->fd[0], buf, sizeof buf, 0, soon());
    rc[P_ACCEPT_PIPE] = ursa_accept(p->fd[0], NULL, NULL, 0, soon());
    rc[P_ACCEPT_UNLISTENED] = ursa_accept(p->tcp, NULL, NULL, 0, soon());
    rc[P_ACCEPT_CLOSED] = ursa_accept(p->closed, NULL, NULL, 0, soon());
    rc[P_NEG_READ] = ursa_read(-1, buf, 4, -1, soon());
    rc[P_NEG_WRITE] = ursa_write(-1, buf, 4, -1, soon());
    rc[P_NEG_ACCEPT] = ursa_accept(-1, NULL, NULL, 0, soon());
    rc[P_NEG_CONNECT] = ursa_connect(-1, (struct sockaddr *)&a, sizeof a, soon());
    rc[P_NEG_POLL] = ursa_poll(-1, POLLIN, soon());
    rc[P_NULL_READ] = ursa_read(p->fd[0], NULL, 4, -1, soon());
    rc[P_NULL_WRITE] = ursa_write(p->fd[1], NULL, 4, -1, soon());
    rc[P_NULL_ADDR] = ursa_connect(p->tcp, NULL, sizeof a, soon());
    /* An expired deadline still tries once. */
    rc[P_EXPIRED_WRITE] = ursa_write(p->fd[1], "ok", 2, -1, ursa_deadline_in(0));
    rc[P_EXPIRED_POLL] = ursa_poll(p->fd[0], POLLIN, ursa_deadline_in(0));
    rc[P_EXPIRED_READ] = ursa_read(p->fd[0], buf, sizeof buf, -1, ursa_deadline_in(0));
    rc[P_EXPIRED_EMPTY] = ursa_read(p->fd[0], buf, sizeof buf, -1, ursa_deadline_in(0));
}

static void *parity_root(void *arg)
{
    parity_battery(arg);
    return NULL;
}

/* The number of cases that differ from the documented result (each
 * printed). */
static int parity_mismatches(const parity_t *p, const char *where)
{
    int bad = 0;
    for (int i = 0; i < P_N; i++) {
        if (p->rc[i] != parity_expected[i]) {
            print_message("%s: case %d: got %ld, expected %ld\n", where, i, p->rc[i],
                          parity_expected[i]);
            bad++;
        }
    }
    return bad;
}

static void test_io_calls_give_the_same_results_in_a_task_and_on_a_plain_thread(void **state)
{
    (void)state;
    int bad = 0;
    for (int in_task = 0; in_task <= 1; in_task++) {
        parity_t p;
        memset(&p, 0, sizeof p);
        make_pipe(p.fd);
        p.tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(p.tcp >= 0);
        p.closed = closed_fd();
        if (in_task)
            assert_null(test_run(1, parity_root, &p));
        else
            parity_battery(&p);
        close_pipe(p.fd);
        close(p.tcp);
        bad += parity_mismatches(&p, in_task ? "in a task" : "on a plain thread");
    }
    assert_int_equal(bad, 0);
}

/* ================= a task in I/O never blocks its worker ================= */

/* With io_uring or on the fallback (test_io_contexts_no_io_uring runs
 * this file with URSA_NO_IO_URING=1): a reader waiting on an empty pipe leaves its worker
 * free, so a writer on the same worker can feed it; many such readers wait
 * at once; deadlines and cancellation end their waits; ursa_rt_free ends a
 * read waiting with URSA_NEVER. Regression: on the fallback a task's I/O
 * was a blocking poll(2) + syscall on the worker thread: the reader held
 * its worker for the whole deadline, and ursa_rt_free hung. */
#define N_READERS 40

typedef struct one_worker {
    int fd[N_READERS][2];
    ssize_t read_rc[N_READERS];
    char got[N_READERS][8];
    ssize_t write_rc[N_READERS];
    atomic_int waiting;
    ssize_t timed_rc, cancelled_rc;
    int ticks_during_timed; /* another task ran while the read waited */
    atomic_int ticks;
    atomic_int stop_ticking;
} one_worker_t;

typedef struct reader_arg {
    one_worker_t *o;
    int i;
} reader_arg_t;

static void *pipe_reader(void *arg)
{
    reader_arg_t *a = arg;
    one_worker_t *o = a->o;
    atomic_fetch_add(&o->waiting, 1);
    o->read_rc[a->i] = ursa_read(o->fd[a->i][0], o->got[a->i], sizeof o->got[a->i], -1,
                                 in_ms(20000));
    return NULL;
}

static void *ticker(void *arg)
{
    one_worker_t *o = arg;
    while (!atomic_load(&o->stop_ticking)) {
        atomic_fetch_add(&o->ticks, 1);
        if (ursa_sleep_for(URSA_MSEC(1)) != 0)
            break;
    }
    return NULL;
}

static void *cancelled_reader(void *arg)
{
    one_worker_t *o = arg;
    char buf[4];
    atomic_store(&o->waiting, 1);
    o->cancelled_rc = ursa_read(o->fd[0][0], buf, sizeof buf, -1, URSA_NEVER);
    return NULL;
}

static void *one_worker_root(void *arg)
{
    one_worker_t *o = arg;
    reader_arg_t a[N_READERS];
    ursa_task_t *t[N_READERS];
    for (int i = 0; i < N_READERS; i++) {
        a[i] = (reader_arg_t){o, i};
        if (ursa_spawn(&t[i], pipe_reader, &a[i], NULL))
            return R(-1);
    }
    while (atomic_load(&o->waiting) < N_READERS) /* every reader is in its read */
        (void)ursa_yield();
    for (int i = N_READERS - 1; i >= 0; i--) { /* the writer: this task */
        char msg[8];
        int len = snprintf(msg, sizeof msg, "m%d", i);
        o->write_rc[i] = ursa_write(o->fd[i][1], msg, (size_t)len, -1, in_ms(20000));
    }
    for (int i = 0; i < N_READERS; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            return R(-2);

    /* A deadline ends a read while another task keeps running. */
    ursa_task_t *tick;
    if (ursa_spawn(&tick, ticker, o, NULL))
        return R(-3);
    char buf[4];
    int before = atomic_load(&o->ticks);
    o->timed_rc = ursa_read(o->fd[0][0], buf, sizeof buf, -1, in_ms(30));
    o->ticks_during_timed = atomic_load(&o->ticks) - before;
    atomic_store(&o->stop_ticking, 1);
    if (ursa_task_join(tick, NULL, URSA_NEVER) != 0)
        return R(-4);

    /* Cancel ends a read waiting with URSA_NEVER. */
    atomic_store(&o->waiting, 0);
    ursa_task_t *c;
    if (ursa_spawn(&c, cancelled_reader, o, NULL))
        return R(-5);
    while (!atomic_load(&o->waiting))
        (void)ursa_yield();
    (void)ursa_yield(); /* now it waits in the read */
    if (ursa_task_cancel(c) != 0 || ursa_task_join(c, NULL, URSA_NEVER) != 0)
        return R(-6);
    return NULL;
}

static void test_io_task_waiting_on_io_leaves_its_worker_free(void **state)
{
    (void)state;
    one_worker_t *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < N_READERS; i++)
        make_pipe(o->fd[i]);
    assert_null(test_run(1, one_worker_root, o));
    for (int i = 0; i < N_READERS; i++) {
        char msg[8];
        int len = snprintf(msg, sizeof msg, "m%d", i);
        assert_int_equal(o->write_rc[i], len);
        assert_int_equal(o->read_rc[i], len);
        assert_memory_equal(o->got[i], msg, (size_t)len);
        close_pipe(o->fd[i]);
    }
    assert_int_equal(o->timed_rc, -ETIMEDOUT);
    assert_true(o->ticks_during_timed > 0);
    assert_int_equal(o->cancelled_rc, -ECANCELED);
    free(o);
}

/* ursa_rt_free cancels a read waiting with URSA_NEVER and returns. */
typedef struct left_reader {
    int fd[2];
    reader_t r; /* reads fd[0] with no deadline */
} left_reader_t;

static void *leave_reader_root(void *arg)
{
    left_reader_t *l = arg;
    if (ursa_spawn(NULL, reader_task, &l->r, &(ursa_spawn_opts_t){.detached = true}))
        return R(-1);
    while (!atomic_load(&l->r.started))
        (void)ursa_yield();
    (void)ursa_yield(); /* now it waits in the read */
    return NULL;
}

static void test_io_rt_free_ends_a_read_waiting_forever(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        left_reader_t l;
        memset(&l, 0, sizeof l);
        atomic_init(&l.r.rc, 1);
        make_pipe(l.fd);
        l.r.fd = l.fd[0];
        ursa_rt_t *rt;
        assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = workers}), 0);
        void *res = R(-9);
        assert_int_equal(ursa_rt_block_on(rt, leave_reader_root, &l, &res), 0);
        assert_null(res);
        ursa_rt_free(rt);
        close_pipe(l.fd);
        assert_int_equal(atomic_load(&l.r.rc), -ECANCELED);
    }
}

/* ================= extreme deadlines ================= */

/* Any deadline is valid input: one in the past (however far: INT64_MIN) is
 * expired, one far in the future (URSA_NEVER - 1) waits as long as needed.
 * Regression: the off-task wait computed deadline - now and rounded it up
 * to ms with signed overflow (UBSan; in a plain build the read hung). */
static const ursa_time_t expired_deadlines[] = {INT64_MIN, INT64_MIN + 1, -1, 1};
#define N_EXPIRED (sizeof expired_deadlines / sizeof expired_deadlines[0])

typedef struct extreme_res {
    int fd[2];
    ssize_t read_rc[N_EXPIRED];
    int poll_rc[N_EXPIRED];
    ssize_t far_read_rc, far_write_rc;
    int far_poll_rc;
} extreme_res_t;

static void extreme_io(extreme_res_t *x)
{
    char buf[4];
    for (size_t i = 0; i < N_EXPIRED; i++) {
        x->read_rc[i] = ursa_read(x->fd[0], buf, sizeof buf, -1, expired_deadlines[i]);
        x->poll_rc[i] = ursa_poll(x->fd[0], POLLIN, expired_deadlines[i]);
    }
    x->far_write_rc = ursa_write(x->fd[1], "far", 3, -1, URSA_NEVER - 1);
    x->far_poll_rc = ursa_poll(x->fd[0], POLLIN, URSA_NEVER - 1);
    x->far_read_rc = ursa_read(x->fd[0], buf, sizeof buf, -1, URSA_NEVER - 1);
}

static void *extreme_root(void *arg)
{
    extreme_io(arg);
    return NULL;
}

static void check_extreme(const extreme_res_t *x)
{
    for (size_t i = 0; i < N_EXPIRED; i++) {
        assert_int_equal(x->read_rc[i], -ETIMEDOUT);
        assert_int_equal(x->poll_rc[i], -ETIMEDOUT);
    }
    assert_int_equal(x->far_write_rc, 3);
    assert_true(x->far_poll_rc > 0 && (x->far_poll_rc & POLLIN));
    assert_int_equal(x->far_read_rc, 3);
}

static void test_io_any_deadline_is_valid_from_int64_min_to_never(void **state)
{
    (void)state;
    extreme_res_t x;
    memset(&x, 0, sizeof x);
    make_pipe(x.fd);
    extreme_io(&x); /* off-task */
    check_extreme(&x);
    memset(&x.read_rc, 0, sizeof x - offsetof(extreme_res_t, read_rc));
    assert_null(test_run(1, extreme_root, &x));
    close_pipe(x.fd);
    check_extreme(&x);
}

TEST_MAIN(cmocka_unit_test(test_io_any_deadline_is_valid_from_int64_min_to_never),
          cmocka_unit_test(test_io_calls_give_the_same_results_in_a_task_and_on_a_plain_thread),
          cmocka_unit_test(test_io_task_waiting_on_io_leaves_its_worker_free),
          cmocka_unit_test(test_io_rt_free_ends_a_read_waiting_forever))
