/* Task I/O on the worker's io_uring (src/rt/io.c), pipes and files:
 * deadlines, URSA_NOW, cancel (a racing byte kept exactly once), a full
 * pipe, offsets on regular files, 4 GiB lengths, the off-task (plain
 * thread) paths, and bad descriptors. Sockets: test_io_socket.c; the same
 * behaviour in and out of tasks, a worker left free: test_io_contexts.c. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#include "rt_checks.h"
#include "spawn_started.h"

/* ================= pipes: deadline, URSA_NOW, data ================= */

typedef struct pipe_res {
    int fd[2];
    ssize_t timeout_rc;
    ursa_time_t timeout_elapsed;
    ssize_t now_empty_rc;
    reader_t pending;
    ssize_t writer_rc;
    ssize_t now_ready_rc;
    char now_ready_buf[16];
    ssize_t write_rc;
    char write_back[16];
    ssize_t write_back_rc;
} pipe_res_t;

static void *pipe_root(void *arg)
{
    pipe_res_t *p = arg;
    char buf[16];

    /* Empty pipe, 20 ms deadline. */
    ursa_time_t t0 = mono_ns();
    p->timeout_rc = ursa_read(p->fd[0], buf, sizeof buf, -1, in_ms(20));
    p->timeout_elapsed = mono_ns() - t0;

    /* URSA_NOW on an empty pipe. */
    p->now_empty_rc = ursa_read(p->fd[0], buf, sizeof buf, -1, URSA_NOW);

    /* A pending read gets what another task writes. */
    ursa_task_t *t = NULL;
    /* Settled: the read is parked in the ring. */
    p->pending.fd = p->fd[0];
    p->pending.guarded = true;
    int rc = spawn_until_started(&t, reader_task, &p->pending, &p->pending.started, URSA_MSEC(10));
    if (rc)
        return R(rc);
    p->writer_rc = ursa_write(p->fd[1], "ping", 4, -1, test_guard_deadline());
    if (ursa_task_join(t, NULL, test_guard_deadline()) != 0)
        return R(-3);

    /* URSA_NOW with data ready: the data. */
    if (write(p->fd[1], "xyz", 3) != 3)
        return R(-4);
    p->now_ready_rc = ursa_read(p->fd[0], p->now_ready_buf, sizeof p->now_ready_buf, -1, URSA_NOW);

    /* ursa_write on a pipe. */
    p->write_rc = ursa_write(p->fd[1], "written", 7, -1, test_guard_deadline());
    p->write_back_rc = read(p->fd[0], p->write_back, sizeof p->write_back);
    return NULL;
}

static void test_io_pipe_read_times_out_tries_and_gets_data(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        pipe_res_t p;
        memset(&p, 0, sizeof p);
        make_pipe(p.fd);
        assert_null(test_run(workers, pipe_root, &p));
        close_pipe(p.fd);
        assert_int_equal(p.timeout_rc, -ETIMEDOUT);
        assert_true(p.timeout_elapsed >= URSA_MSEC(20));
        assert_int_equal(p.now_empty_rc, -EAGAIN);
        assert_int_equal(p.writer_rc, 4);
        assert_int_equal(atomic_load(&p.pending.rc), 4);
        assert_memory_equal(p.pending.buf, "ping", 4);
        assert_int_equal(p.now_ready_rc, 3);
        assert_memory_equal(p.now_ready_buf, "xyz", 3);
        assert_int_equal(p.write_rc, 7);
        assert_int_equal(p.write_back_rc, 7);
        assert_memory_equal(p.write_back, "written", 7);
    }
}

/* ================= cancel a blocked read ================= */

#define CANCEL_ROUNDS 40

typedef struct cancel_res {
    int fd[2];
    int reader_worker; /* the last worker: another thread when there are 2 */
    int cancel_rc[CANCEL_ROUNDS];
    ssize_t reader_rc[CANCEL_ROUNDS];
    bool reader_cancelled[CANCEL_ROUNDS];
    ssize_t after_rc[CANCEL_ROUNDS];
    bool after_ok[CANCEL_ROUNDS];
    /* The racy variant: a byte written and the reader cancelled at once. */
    int race_lost, race_dup;
    int race_by_reader, race_left_in_pipe;
    ssize_t tail_rc;
    /* Where cancel_root gave up, for the failure message. */
    int fail_round;
    long fail_rc;
} cancel_res_t;

/* cancel_root's early exit: records the round and the call's code. */
static void *cancel_fail(cancel_res_t *r, int step, int round, long rc)
{
    r->fail_round = round;
    r->fail_rc = rc;
    return R(step);
}

/* Spawns a reader_task (no deadline) on the reader's worker and waits until it runs:
 * 0, the spawn's code, or -ETIMEDOUT when it never ran within the hang
 * guard. */
static int start_reader(const cancel_res_t *r, reader_t *c, ursa_task_t **t)
{
    memset(c, 0, sizeof *c);
    c->fd = r->fd[0];
    int rc = ursa_spawn(t, reader_task, c, &(ursa_spawn_opts_t){URSA_ON_WORKER(r->reader_worker)});
    if (rc)
        return rc;
    return yield_until(&c->started) ? 0 : -ETIMEDOUT;
}

static void *cancel_root(void *arg)
{
    cancel_res_t *r = arg;
    int rounds = (int)test_scale(CANCEL_ROUNDS);
    if (rounds > CANCEL_ROUNDS)
        rounds = CANCEL_ROUNDS;
    for (int i = 0; i < rounds; i++) {
        reader_t c;
        ursa_task_t *t = NULL;
        int rc = start_reader(r, &c, &t);
        if (rc)
            return cancel_fail(r, -1, i, rc);
        (void)ursa_sleep_for(URSA_MSEC(1)); /* parked in the ring */
        r->cancel_rc[i] = ursa_task_cancel(t);
        rc = ursa_task_join(t, NULL, test_guard_deadline());
        if (rc)
            return cancel_fail(r, -2, i, rc);
        r->reader_rc[i] = atomic_load(&c.rc);
        r->reader_cancelled[i] = c.cancelled;
        /* The pipe still works, and the cancelled read took nothing. */
        char msg[32], got[32];
        int len = snprintf(msg, sizeof msg, "later-%d", i);
        ssize_t wrc = ursa_write(r->fd[1], msg, (size_t)len, -1, test_guard_deadline());
        if (wrc != len)
            return cancel_fail(r, -3, i, wrc);
        r->after_rc[i] = ursa_read(r->fd[0], got, sizeof got, -1, test_guard_deadline());
        r->after_ok[i] = r->after_rc[i] == len && memcmp(got, msg, (size_t)len) == 0;
    }

    /* Write and cancel in the same instant: the byte goes to the reader or
     * stays in the pipe, never both and never neither. */
    for (int i = 0; i < rounds; i++) {
        reader_t c;
        ursa_task_t *t = NULL;
        int rc = start_reader(r, &c, &t);
        if (rc)
            return cancel_fail(r, -4, i, rc);
        if (i % 2)
            (void)ursa_yield();
        char b = (char)('A' + i % 26);
        /* Both orders: write then cancel, and cancel then write (then the
         * byte usually stays in the pipe, above all with the reader on
         * another worker). */
        if (i % 3 == 0) {
            if (write(r->fd[1], &b, 1) != 1)
                return cancel_fail(r, -5, i, -errno);
            (void)ursa_task_cancel(t);
        } else {
            (void)ursa_task_cancel(t);
            if (i % 3 == 2)
                (void)ursa_sleep_for(URSA_USEC(200));
            if (write(r->fd[1], &b, 1) != 1)
                return cancel_fail(r, -5, i, -errno);
        }
        rc = ursa_task_join(t, NULL, test_guard_deadline());
        if (rc)
            return cancel_fail(r, -6, i, rc);
        char left[8];
        ssize_t n = ursa_read(r->fd[0], left, sizeof left, -1, URSA_NOW);
        long got = atomic_load(&c.rc); /* the reader's read */
        int seen = (got == 1 && c.buf[0] == b) + (n == 1 && left[0] == b);
        if (seen == 0)
            r->race_lost++;
        if (seen > 1 || (got > 0 && got != 1) || n > 1)
            r->race_dup++;
        if (got == 1)
            r->race_by_reader++;
        if (n == 1)
            r->race_left_in_pipe++;
    }
    char tail[8];
    r->tail_rc = ursa_read(r->fd[0], tail, sizeof tail, -1, URSA_NOW);
    return NULL;
}

static void test_io_cancelled_read_takes_nothing_and_a_racing_byte_is_kept_once(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_res_t *r = calloc(1, sizeof *r);
        assert_non_null(r);
        make_pipe(r->fd);
        r->reader_worker = (int)workers - 1;
        void *res = test_run(workers, cancel_root, r);
        if (res)
            fail_msg("cancel_root, %u workers: step %d failed in round %d (code %ld)", workers,
                     (int)I(res), r->fail_round, r->fail_rc);
        close_pipe(r->fd);
        int rounds = (int)test_scale(CANCEL_ROUNDS);
        if (rounds > CANCEL_ROUNDS)
            rounds = CANCEL_ROUNDS;
        for (int i = 0; i < rounds; i++) {
            assert_int_equal(r->cancel_rc[i], 0);
            assert_int_equal(r->reader_rc[i], -ECANCELED);
            assert_true(r->reader_cancelled[i]);
            assert_true(r->after_ok[i]);
        }
        print_message("write+cancel race: %d read by the task, %d left in the pipe\n",
                      r->race_by_reader, r->race_left_in_pipe);
        assert_int_equal(r->race_lost, 0);
        assert_int_equal(r->race_dup, 0);
        assert_int_equal(r->race_by_reader + r->race_left_in_pipe, rounds);
        assert_int_equal(r->tail_rc, -EAGAIN); /* nothing extra left over */
        free(r);
    }
}

/* ================= a full pipe ================= */

/* Writes to a full pipe: the deadline and URSA_NOW fail with nothing
 * written; once there is room the write goes through. */
typedef struct full_res {
    int fd[2];
    size_t filled;
    ssize_t timeout_rc, now_rc, drained, ok_rc;
    ursa_time_t timeout_elapsed;
    bool content_ok;
} full_res_t;

static void *full_root(void *arg)
{
    full_res_t *f = arg;
    ursa_time_t t0 = mono_ns();
    f->timeout_rc = ursa_write(f->fd[1], "Z", 1, -1, in_ms(20));
    f->timeout_elapsed = mono_ns() - t0;
    f->now_rc = ursa_write(f->fd[1], "Z", 1, -1, URSA_NOW);
    /* Make room: read everything that was filled, check it is all 'f'. */
    static char buf[1 << 16];
    size_t got = 0;
    f->content_ok = true;
    while (got < f->filled) {
        ssize_t n = ursa_read(f->fd[0], buf, sizeof buf, -1, URSA_NOW);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            f->content_ok &= buf[i] == 'f';
        got += (size_t)n;
    }
    f->drained = (ssize_t)got;
    f->ok_rc = ursa_write(f->fd[1], "Z", 1, -1, test_guard_deadline());
    return NULL;
}

static void test_io_write_to_a_full_pipe_times_out_writing_nothing(void **state)
{
    (void)state;
    full_res_t f;
    memset(&f, 0, sizeof f);
    make_pipe(f.fd);
    int fl = fcntl(f.fd[1], F_GETFL);
    assert_int_equal(fcntl(f.fd[1], F_SETFL, fl | O_NONBLOCK), 0);
    char chunk[4096];
    memset(chunk, 'f', sizeof chunk);
    for (int i = 0; i < 10000; i++) {
        ssize_t n = write(f.fd[1], chunk, sizeof chunk);
        if (n <= 0)
            break;
        f.filled += (size_t)n;
    }
    while (write(f.fd[1], chunk, 1) == 1) /* the last bytes of room */
        f.filled++;
    assert_int_equal(fcntl(f.fd[1], F_SETFL, fl), 0);
    assert_null(test_run(1, full_root, &f));
    char last;
    ssize_t n = read(f.fd[0], &last, 1);
    close_pipe(f.fd);
    assert_int_equal(f.timeout_rc, -ETIMEDOUT);
    assert_true(f.timeout_elapsed >= URSA_MSEC(20));
    assert_int_equal(f.now_rc, -EAGAIN);
    assert_int_equal(f.drained, (ssize_t)f.filled); /* no 'Z' slipped in */
    assert_true(f.content_ok);
    assert_int_equal(f.ok_rc, 1);
    assert_int_equal(n, 1);
    assert_int_equal(last, 'Z');
}

/* ================= regular files and offsets ================= */

typedef struct file_res {
    int fd;
    ssize_t rc_mid, rc_start, rc_eof, rc_write, rc_after;
    char mid[8], start[8], eof[8], after[16];
} file_res_t;

static void *file_root(void *arg)
{
    file_res_t *f = arg;
    f->rc_mid = ursa_read(f->fd, f->mid, 4, 10, test_guard_deadline());
    f->rc_start = ursa_read(f->fd, f->start, 4, 0, test_guard_deadline());
    f->rc_eof = ursa_read(f->fd, f->eof, 4, 1000, test_guard_deadline());
    f->rc_write = ursa_write(f->fd, "xy", 2, 3, test_guard_deadline());
    f->rc_after = ursa_read(f->fd, f->after, 8, 0, test_guard_deadline());
    return NULL;
}

static void test_io_file_reads_and_writes_at_offsets(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    file_res_t f = {.fd = fileno(tmp)};
    assert_int_equal(pwrite(f.fd, "0123456789ABCDEF", 16, 0), 16);
    assert_null(test_run(1, file_root, &f));
    assert_int_equal(f.rc_mid, 4);
    assert_memory_equal(f.mid, "ABCD", 4);
    assert_int_equal(f.rc_start, 4);
    assert_memory_equal(f.start, "0123", 4);
    assert_int_equal(f.rc_eof, 0);
    assert_int_equal(f.rc_write, 2);
    assert_int_equal(f.rc_after, 8);
    assert_memory_equal(f.after, "012xy567", 8);
    /* Off-task too: pread. */
    char buf[8];
    assert_int_equal(ursa_read(f.fd, buf, 3, 13, URSA_NEVER), 3);
    assert_memory_equal(buf, "DEF", 3);
    fclose(tmp);
}

/* Lengths of 4 GiB and more: the ring's length field is 32 bits, so the
 * length must be clamped (a short read/write is fine), never truncated: a
 * 4 GiB read of a pipe holding data must not look like EOF (0), and a
 * 4 GiB write must not report 0 bytes written. */
typedef struct huge_res {
    int fd[2];
    char *big;
    size_t len;
    ssize_t read_rc, write_rc;
    bool read_ok;
} huge_res_t;

static void *huge_root(void *arg)
{
    huge_res_t *h = arg;
    if (write(h->fd[1], "hello", 5) != 5)
        return R(-1);
    h->read_rc = ursa_read(h->fd[0], h->big, h->len, -1, test_guard_deadline());
    h->read_ok = h->read_rc == 5 && memcmp(h->big, "hello", 5) == 0;
    h->write_rc = ursa_write(h->fd[1], h->big, h->len, -1, in_ms(100));
    return NULL;
}

static void test_io_lengths_of_4_gib_are_clamped_not_truncated(void **state)
{
    (void)state;
    huge_res_t h = {.len = (size_t)1 << 32};
    /* A real 4 GiB buffer, committed only where touched. */
    h.big = mmap(NULL, h.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
    if (h.big == MAP_FAILED)
        skip();
    make_pipe(h.fd);
    assert_null(test_run(1, huge_root, &h));
    int fl = fcntl(h.fd[0], F_GETFL);
    assert_int_equal(fcntl(h.fd[0], F_SETFL, fl | O_NONBLOCK), 0);
    char sink[4096];
    while (read(h.fd[0], sink, sizeof sink) > 0) { /* drain what the write put in */
    }
    close_pipe(h.fd);
    munmap(h.big, h.len);
    assert_int_equal(h.read_rc, 5);
    assert_true(h.read_ok);
    assert_true(h.write_rc != 0);
}

/* ================= off-task: a plain thread ================= */

typedef struct plain_res {
    int fd[2];
    ssize_t now_rc, timeout_rc, data_rc, write_rc;
    ursa_time_t timeout_elapsed;
    char data[16];
} plain_res_t;

static void plain_io(plain_res_t *p)
{
    char buf[16];
    p->now_rc = ursa_read(p->fd[0], buf, sizeof buf, -1, URSA_NOW);
    ursa_time_t t0 = mono_ns();
    p->timeout_rc = ursa_read(p->fd[0], buf, sizeof buf, -1, in_ms(10));
    p->timeout_elapsed = mono_ns() - t0;
    p->write_rc = ursa_write(p->fd[1], "plain", 5, -1, test_guard_deadline());
    p->data_rc = ursa_read(p->fd[0], p->data, sizeof p->data, -1, test_guard_deadline());
}

static void *plain_thread(void *arg)
{
    plain_io(arg);
    return NULL;
}

static void check_plain(const plain_res_t *p)
{
    assert_int_equal(p->now_rc, -EAGAIN);
    assert_int_equal(p->timeout_rc, -ETIMEDOUT);
    assert_true(p->timeout_elapsed >= URSA_MSEC(10));
    assert_int_equal(p->write_rc, 5);
    assert_int_equal(p->data_rc, 5);
    assert_memory_equal(p->data, "plain", 5);
}

/* A plain thread started from a task, while the runtime runs. */
static void *plain_from_task_root(void *arg)
{
    pthread_t th;
    if (pthread_create(&th, NULL, plain_thread, arg) != 0)
        return R(-1);
    pthread_join(th, NULL); /* blocks the worker briefly: fine here */
    return NULL;
}

static void test_io_plain_threads_use_the_blocking_calls(void **state)
{
    (void)state;
    /* The test's own thread, no runtime at all. */
    plain_res_t p;
    memset(&p, 0, sizeof p);
    make_pipe(p.fd);
    plain_io(&p);
    close_pipe(p.fd);
    check_plain(&p);
    /* A separate plain thread while a runtime runs. */
    memset(&p, 0, sizeof p);
    make_pipe(p.fd);
    assert_null(test_run(2, plain_from_task_root, &p));
    close_pipe(p.fd);
    check_plain(&p);
}

/* ================= bad descriptors ================= */

typedef struct badfd_res {
    int closed_fd;
    ssize_t neg_read, neg_write;
    int neg_accept, neg_connect, neg_poll;
    ssize_t closed_read, closed_write;
    int closed_accept;
    ssize_t null_buf;
} badfd_res_t;

static void bad_fds(badfd_res_t *b)
{
    char buf[4];
    struct sockaddr_in a = {.sin_family = AF_INET};
    b->neg_read = ursa_read(-1, buf, sizeof buf, -1, in_ms(100));
    b->neg_write = ursa_write(-1, buf, sizeof buf, -1, in_ms(100));
    b->neg_accept = ursa_accept(-1, NULL, NULL, 0, in_ms(100));
    b->neg_connect = ursa_connect(-1, (struct sockaddr *)&a, sizeof a, in_ms(100));
    b->neg_poll = ursa_poll(-1, POLLIN, in_ms(100));
    b->closed_read = ursa_read(b->closed_fd, buf, sizeof buf, -1, in_ms(100));
    b->closed_write = ursa_write(b->closed_fd, buf, sizeof buf, -1, in_ms(100));
    b->closed_accept = ursa_accept(b->closed_fd, NULL, NULL, 0, in_ms(100));
    b->null_buf = ursa_read(0, NULL, 4, -1, in_ms(100));
}

static void *bad_fds_root(void *arg)
{
    bad_fds(arg);
    return NULL;
}

static void check_bad(const badfd_res_t *b)
{
    assert_int_equal(b->neg_read, -EINVAL);
    assert_int_equal(b->neg_write, -EINVAL);
    assert_int_equal(b->neg_accept, -EINVAL);
    assert_int_equal(b->neg_connect, -EINVAL);
    assert_int_equal(b->neg_poll, -EINVAL);
    assert_int_equal(b->closed_read, -EBADF);
    assert_int_equal(b->closed_write, -EBADF);
    assert_int_equal(b->closed_accept, -EBADF);
    assert_int_equal(b->null_buf, -EINVAL);
}

static void test_io_bad_descriptors_fail_cleanly(void **state)
{
    (void)state;
    badfd_res_t b = {.closed_fd = closed_fd()};
    assert_null(test_run(1, bad_fds_root, &b));
    check_bad(&b);
    /* Off-task too. */
    memset(&b, 0, sizeof b);
    b.closed_fd = closed_fd();
    bad_fds(&b);
    check_bad(&b);
}

TEST_MAIN(cmocka_unit_test(test_io_pipe_read_times_out_tries_and_gets_data),
          cmocka_unit_test(test_io_cancelled_read_takes_nothing_and_a_racing_byte_is_kept_once),
          cmocka_unit_test(test_io_write_to_a_full_pipe_times_out_writing_nothing),
          cmocka_unit_test(test_io_file_reads_and_writes_at_offsets),
          cmocka_unit_test(test_io_lengths_of_4_gib_are_clamped_not_truncated),
          cmocka_unit_test(test_io_plain_threads_use_the_blocking_calls),
          cmocka_unit_test(test_io_bad_descriptors_fail_cleanly))
