/* Task I/O on the worker's io_uring: deadlines, URSA_NOW, cancel, TCP on
 * 127.0.0.1, offsets on regular files, the off-task (plain thread) paths,
 * and bad descriptors.
 *
 * Tasks record what they saw in a struct owned by the test body, which
 * asserts after the runtime has finished (cmocka asserts longjmp). Every
 * socket is bound to 127.0.0.1; every wait has a deadline. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define R(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static ursa_time_t in_ms(long ms)
{
    return ursa_deadline_in(URSA_MSEC(ms));
}

static void make_pipe(int fd[2])
{
    assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
}

static void close_pipe(int fd[2])
{
    close(fd[0]);
    close(fd[1]);
}

/* ================= pipes: deadline, URSA_NOW, data ================= */

typedef struct pipe_res {
    int fd[2];
    ssize_t timeout_rc;
    ursa_time_t timeout_elapsed;
    ssize_t now_empty_rc;
    ssize_t pending_rc;
    char pending_buf[16];
    ssize_t writer_rc;
    ssize_t now_ready_rc;
    char now_ready_buf[16];
    ssize_t write_rc;
    char write_back[16];
    ssize_t write_back_rc;
    atomic_int reader_started;
} pipe_res_t;

static void *pending_reader(void *arg)
{
    pipe_res_t *p = arg;
    atomic_store(&p->reader_started, 1);
    p->pending_rc = ursa_read(p->fd[0], p->pending_buf, sizeof p->pending_buf, -1, in_ms(5000));
    return NULL;
}

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
    if (ursa_spawn(&t, pending_reader, p, NULL))
        return R(-1);
    if (!yield_until(&p->reader_started))
        return R(-2);
    (void)ursa_sleep_for(URSA_MSEC(10)); /* the read is parked in the ring */
    p->writer_rc = ursa_write(p->fd[1], "ping", 4, -1, in_ms(5000));
    if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(10))) != 0)
        return R(-3);

    /* URSA_NOW with data ready: the data. */
    if (write(p->fd[1], "xyz", 3) != 3)
        return R(-4);
    p->now_ready_rc = ursa_read(p->fd[0], p->now_ready_buf, sizeof p->now_ready_buf, -1, URSA_NOW);

    /* ursa_write on a pipe. */
    p->write_rc = ursa_write(p->fd[1], "written", 7, -1, in_ms(5000));
    p->write_back_rc = read(p->fd[0], p->write_back, sizeof p->write_back);
    return NULL;
}

static void test_io_pipe_deadline_now_and_data(void **state)
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
        assert_int_equal(p.pending_rc, 4);
        assert_memory_equal(p.pending_buf, "ping", 4);
        assert_int_equal(p.now_ready_rc, 3);
        assert_memory_equal(p.now_ready_buf, "xyz", 3);
        assert_int_equal(p.write_rc, 7);
        assert_int_equal(p.write_back_rc, 7);
        assert_memory_equal(p.write_back, "written", 7);
    }
}

/* ================= cancel a blocked read ================= */

#define CANCEL_ROUNDS 40

typedef struct cancel_read {
    int fd[2];
    atomic_int started;
    ssize_t rc;
    char buf[32];
    bool cancelled;
} cancel_read_t;

static void *blocked_reader(void *arg)
{
    cancel_read_t *c = arg;
    atomic_store(&c->started, 1);
    c->rc = ursa_read(c->fd[0], c->buf, sizeof c->buf, -1, URSA_NEVER);
    c->cancelled = ursa_task_cancelled();
    return NULL;
}

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
} cancel_res_t;

static void *cancel_root(void *arg)
{
    cancel_res_t *r = arg;
    int rounds = (int)test_scale(CANCEL_ROUNDS);
    if (rounds > CANCEL_ROUNDS)
        rounds = CANCEL_ROUNDS;
    for (int i = 0; i < rounds; i++) {
        cancel_read_t c;
        memset(&c, 0, sizeof c);
        c.fd[0] = r->fd[0];
        ursa_task_t *t = NULL;
        if (ursa_spawn(&t, blocked_reader, &c, &(ursa_spawn_opts_t){.worker = r->reader_worker}))
            return R(-1);
        if (!yield_until(&c.started))
            return R(-2);
        (void)ursa_sleep_for(URSA_MSEC(1)); /* parked in the ring */
        r->cancel_rc[i] = ursa_task_cancel(t);
        if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
            return R(-3);
        r->reader_rc[i] = c.rc;
        r->reader_cancelled[i] = c.cancelled;
        /* The pipe still works, and the cancelled read took nothing. */
        char msg[32], got[32];
        int len = snprintf(msg, sizeof msg, "later-%d", i);
        if (ursa_write(r->fd[1], msg, (size_t)len, -1, in_ms(5000)) != len)
            return R(-4);
        r->after_rc[i] = ursa_read(r->fd[0], got, sizeof got, -1, in_ms(5000));
        r->after_ok[i] = r->after_rc[i] == len && memcmp(got, msg, (size_t)len) == 0;
    }

    /* Write and cancel in the same instant: the byte goes to the reader or
     * stays in the pipe, never both and never neither. */
    for (int i = 0; i < rounds; i++) {
        cancel_read_t c;
        memset(&c, 0, sizeof c);
        c.fd[0] = r->fd[0];
        ursa_task_t *t = NULL;
        if (ursa_spawn(&t, blocked_reader, &c, &(ursa_spawn_opts_t){.worker = r->reader_worker}))
            return R(-5);
        if (!yield_until(&c.started))
            return R(-6);
        if (i % 2)
            (void)ursa_yield();
        char b = (char)('A' + i % 26);
        /* Both orders: write then cancel, and cancel then write (then the
         * byte usually stays in the pipe, above all with the reader on
         * another worker). */
        if (i % 3 == 0) {
            if (write(r->fd[1], &b, 1) != 1)
                return R(-7);
            (void)ursa_task_cancel(t);
        } else {
            (void)ursa_task_cancel(t);
            if (i % 3 == 2)
                (void)ursa_sleep_for(URSA_USEC(200));
            if (write(r->fd[1], &b, 1) != 1)
                return R(-7);
        }
        if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(5))) != 0)
            return R(-8);
        char left[8];
        ssize_t n = ursa_read(r->fd[0], left, sizeof left, -1, URSA_NOW);
        int seen = (c.rc == 1 && c.buf[0] == b) + (n == 1 && left[0] == b);
        if (seen == 0)
            r->race_lost++;
        if (seen > 1 || (c.rc > 0 && c.rc != 1) || n > 1)
            r->race_dup++;
        if (c.rc == 1)
            r->race_by_reader++;
        if (n == 1)
            r->race_left_in_pipe++;
    }
    char tail[8];
    r->tail_rc = ursa_read(r->fd[0], tail, sizeof tail, -1, URSA_NOW);
    return NULL;
}

static void test_io_cancel_blocked_read(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cancel_res_t *r = calloc(1, sizeof *r);
        assert_non_null(r);
        make_pipe(r->fd);
        r->reader_worker = (int)workers - 1;
        assert_null(test_run(workers, cancel_root, r));
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

/* ================= TCP on 127.0.0.1 ================= */

typedef struct tcp_res {
    int ls;
    int client_worker; /* the last worker: another thread when there are 2 */
    struct sockaddr_in addr;
    ursa_sem_t go;
    int accept_timeout_rc;
    ursa_time_t accept_timeout_elapsed;
    int accept_now_rc;
    int connect_rc;
    ssize_t client_write_rc, client_write2_rc;
    int accepted;
    struct sockaddr_in peer;
    socklen_t peer_len;
    ssize_t read1_rc;
    char read1[32];
    int poll_now_rc, poll_timeout_rc, poll_rc, poll_now_ready_rc;
    ursa_time_t poll_timeout_elapsed;
    ssize_t read2_rc;
    char read2[32];
    int client_go_rc;
} tcp_res_t;

static void *tcp_client(void *arg)
{
    tcp_res_t *r = arg;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return R(-errno);
    r->connect_rc = ursa_connect(s, (struct sockaddr *)&r->addr, sizeof r->addr, in_ms(5000));
    if (r->connect_rc == 0) {
        r->client_write_rc = ursa_write(s, "hello tcp", 9, -1, in_ms(5000));
        /* Wait for the server's go before sending more. */
        ursa_sem_permit_t p = {0};
        r->client_go_rc = ursa_sem_acquire(&r->go, 1, &p, in_ms(5000));
        if (r->client_go_rc == 0)
            (void)ursa_sem_release(&p);
        r->client_write2_rc = ursa_write(s, "more", 4, -1, in_ms(5000));
    }
    close(s);
    return NULL;
}

/* Reads exactly len bytes (a stream may split them), bounded. */
static ssize_t read_full(int fd, char *buf, size_t len, ursa_time_t deadline)
{
    size_t got = 0;
    for (int i = 0; i < 100 && got < len; i++) {
        ssize_t n = ursa_read(fd, buf + got, len - got, -1, deadline);
        if (n <= 0)
            return n < 0 ? n : (ssize_t)got;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void *tcp_root(void *arg)
{
    tcp_res_t *r = arg;
    /* Nobody connects: the accept times out. */
    ursa_time_t t0 = mono_ns();
    r->accept_timeout_rc = ursa_accept(r->ls, NULL, NULL, SOCK_CLOEXEC, in_ms(20));
    r->accept_timeout_elapsed = mono_ns() - t0;
    r->accept_now_rc = ursa_accept(r->ls, NULL, NULL, SOCK_CLOEXEC, URSA_NOW);

    ursa_task_t *t = NULL;
    if (ursa_spawn(&t, tcp_client, r,
                   &(ursa_spawn_opts_t){.name = "client", .worker = r->client_worker}))
        return R(-1);
    r->peer_len = sizeof r->peer;
    int s = ursa_accept(r->ls, (struct sockaddr *)&r->peer, &r->peer_len, SOCK_CLOEXEC,
                        in_ms(5000));
    r->accepted = s;
    if (s >= 0) {
        r->read1_rc = read_full(s, r->read1, 9, in_ms(5000));
        /* Nothing more until we say go. */
        r->poll_now_rc = ursa_poll(s, POLLIN, URSA_NOW);
        t0 = mono_ns();
        r->poll_timeout_rc = ursa_poll(s, POLLIN, in_ms(20));
        r->poll_timeout_elapsed = mono_ns() - t0;
        (void)ursa_sem_add(&r->go, 1);
        r->poll_rc = ursa_poll(s, POLLIN, in_ms(5000));
        r->poll_now_ready_rc = ursa_poll(s, POLLIN, URSA_NOW);
        r->read2_rc = read_full(s, r->read2, 4, in_ms(5000));
        close(s);
    }
    if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(10))) != 0)
        return R(-2);
    return NULL;
}

static void test_io_tcp_loopback(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        tcp_res_t r;
        memset(&r, 0, sizeof r);
        ursa_sem_init(&r.go, 0);
        r.client_worker = (int)workers - 1;
        r.ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(r.ls >= 0);
        int one = 1;
        assert_int_equal(setsockopt(r.ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
        r.addr.sin_family = AF_INET;
        r.addr.sin_port = 0;
        r.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(r.ls, (struct sockaddr *)&r.addr, sizeof r.addr), 0);
        assert_int_equal(listen(r.ls, 8), 0);
        socklen_t len = sizeof r.addr;
        assert_int_equal(getsockname(r.ls, (struct sockaddr *)&r.addr, &len), 0);
        assert_true(ntohs(r.addr.sin_port) != 0);

        assert_null(test_run(workers, tcp_root, &r));
        close(r.ls);

        assert_int_equal(r.accept_timeout_rc, -ETIMEDOUT);
        assert_true(r.accept_timeout_elapsed >= URSA_MSEC(20));
        assert_int_equal(r.accept_now_rc, -EAGAIN);
        assert_int_equal(r.connect_rc, 0);
        assert_int_equal(r.client_write_rc, 9);
        assert_true(r.accepted >= 0);
        assert_int_equal(r.peer.sin_family, AF_INET);
        assert_int_equal(ntohl(r.peer.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(r.read1_rc, 9);
        assert_memory_equal(r.read1, "hello tcp", 9);
        assert_int_equal(r.poll_now_rc, -EAGAIN);
        assert_int_equal(r.poll_timeout_rc, -ETIMEDOUT);
        assert_true(r.poll_timeout_elapsed >= URSA_MSEC(20));
        assert_int_equal(r.client_go_rc, 0);
        assert_true(r.poll_rc > 0 && (r.poll_rc & POLLIN));
        assert_true(r.poll_now_ready_rc > 0 && (r.poll_now_ready_rc & POLLIN));
        assert_int_equal(r.client_write2_rc, 4);
        assert_int_equal(r.read2_rc, 4);
        assert_memory_equal(r.read2, "more", 4);
    }
}

/* A connection already in the backlog: URSA_NOW returns it; an expired
 * deadline either returns it or leaves it for the next accept (an accepted
 * socket is never lost). */
#define BACKLOG_ROUNDS 20

typedef struct backlog_res {
    int ls;
    struct sockaddr_in addr;
    int now_fd_ok, now_fail;
    int expired_got, expired_left, expired_lost;
    int connect_fail;
} backlog_res_t;

static int connect_plain(const struct sockaddr_in *a)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        return -1;
    if (connect(c, (const struct sockaddr *)a, sizeof *a) != 0) {
        close(c);
        return -1;
    }
    return c;
}

static void *backlog_root(void *arg)
{
    backlog_res_t *b = arg;
    for (int i = 0; i < BACKLOG_ROUNDS; i++) {
        int c = connect_plain(&b->addr); /* loopback: in the backlog at once */
        if (c < 0) {
            b->connect_fail++;
            continue;
        }
        int s = ursa_accept(b->ls, NULL, NULL, SOCK_CLOEXEC, URSA_NOW);
        if (s >= 0) {
            b->now_fd_ok++;
            close(s);
        } else {
            b->now_fail++;
            s = ursa_accept(b->ls, NULL, NULL, SOCK_CLOEXEC, in_ms(1000));
            if (s >= 0)
                close(s);
        }
        close(c);

        c = connect_plain(&b->addr);
        if (c < 0) {
            b->connect_fail++;
            continue;
        }
        s = ursa_accept(b->ls, NULL, NULL, SOCK_CLOEXEC, ursa_deadline_in(0));
        if (s >= 0) {
            b->expired_got++;
            close(s);
        } else {
            s = ursa_accept(b->ls, NULL, NULL, SOCK_CLOEXEC, URSA_NOW);
            if (s >= 0) {
                b->expired_left++;
                close(s);
            } else {
                b->expired_lost++;
            }
        }
        close(c);
    }
    return NULL;
}

static void test_io_accept_backlog_now_and_expired(void **state)
{
    (void)state;
    backlog_res_t b;
    memset(&b, 0, sizeof b);
    b.ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b.ls >= 0);
    b.addr.sin_family = AF_INET;
    b.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b.ls, (struct sockaddr *)&b.addr, sizeof b.addr), 0);
    assert_int_equal(listen(b.ls, 8), 0);
    socklen_t len = sizeof b.addr;
    assert_int_equal(getsockname(b.ls, (struct sockaddr *)&b.addr, &len), 0);
    assert_null(test_run(1, backlog_root, &b));
    close(b.ls);
    assert_int_equal(b.connect_fail, 0);
    assert_int_equal(b.now_fail, 0);
    assert_int_equal(b.now_fd_ok, BACKLOG_ROUNDS);
    assert_int_equal(b.expired_lost, 0);
    assert_int_equal(b.expired_got + b.expired_left, BACKLOG_ROUNDS);
}

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
    f->ok_rc = ursa_write(f->fd[1], "Z", 1, -1, in_ms(1000));
    return NULL;
}

static void test_io_write_full_pipe(void **state)
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
    f->rc_mid = ursa_read(f->fd, f->mid, 4, 10, in_ms(5000));
    f->rc_start = ursa_read(f->fd, f->start, 4, 0, in_ms(5000));
    f->rc_eof = ursa_read(f->fd, f->eof, 4, 1000, in_ms(5000));
    f->rc_write = ursa_write(f->fd, "xy", 2, 3, in_ms(5000));
    f->rc_after = ursa_read(f->fd, f->after, 8, 0, in_ms(5000));
    return NULL;
}

static void test_io_file_offsets(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    file_res_t f;
    memset(&f, 0, sizeof f);
    f.fd = fileno(tmp);
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
    h->read_rc = ursa_read(h->fd[0], h->big, h->len, -1, in_ms(2000));
    h->read_ok = h->read_rc == 5 && memcmp(h->big, "hello", 5) == 0;
    h->write_rc = ursa_write(h->fd[1], h->big, h->len, -1, in_ms(100));
    return NULL;
}

static void test_io_huge_len_not_truncated(void **state)
{
    (void)state;
    huge_res_t h;
    memset(&h, 0, sizeof h);
    h.len = (size_t)1 << 32;
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
    p->write_rc = ursa_write(p->fd[1], "plain", 5, -1, in_ms(1000));
    p->data_rc = ursa_read(p->fd[0], p->data, sizeof p->data, -1, in_ms(1000));
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

static void test_io_off_task(void **state)
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

/* A descriptor number that is not open. A high one: the runtime opens its
 * eventfd and ring at the lowest free numbers. */
static int closed_fd(void)
{
    for (int fd = 900; fd < 1000; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
            return fd;
    fail_msg("no free descriptor number in 900..999");
    return -1;
}

static void test_io_bad_fds(void **state)
{
    (void)state;
    badfd_res_t b;
    memset(&b, 0, sizeof b);
    b.closed_fd = closed_fd();
    assert_null(test_run(1, bad_fds_root, &b));
    check_bad(&b);
    /* Off-task too. */
    memset(&b, 0, sizeof b);
    b.closed_fd = closed_fd();
    bad_fds(&b);
    check_bad(&b);
}

/* ================= one behaviour inside and outside tasks ================= */

/* Each I/O call gives the same result in a task and on a plain thread (and
 * with or without io_uring: test_io_no_io_uring), for the cases include/
 * ursa/io.h documents. Regression: off-task, a 0-byte read of an empty
 * pipe waited for data (-ETIMEDOUT) while the ring returned 0; an offset
 * of -5 meant "current position" off-task and -EINVAL in a task; an offset
 * on a pipe was ESPIPE off-task and ignored by the ring; accept on a pipe
 * waited off-task and was -ENOTSOCK in a task; an expired deadline never
 * tried off-task. */
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

static int closed_fd(void);

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

static void test_io_same_in_and_out_of_tasks(void **state)
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

/* With io_uring or on the fallback (test_io_no_io_uring runs this file with
 * URSA_NO_IO_URING=1): a reader waiting on an empty pipe leaves its worker
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

static void test_io_task_io_leaves_worker_free(void **state)
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
    atomic_int waiting;
    atomic_long rc;
} left_reader_t;

static void *never_reader(void *arg)
{
    left_reader_t *l = arg;
    char buf[4];
    atomic_store(&l->waiting, 1);
    atomic_store(&l->rc, ursa_read(l->fd[0], buf, sizeof buf, -1, URSA_NEVER));
    return NULL;
}

static void *leave_reader_root(void *arg)
{
    left_reader_t *l = arg;
    if (ursa_spawn(NULL, never_reader, l, &(ursa_spawn_opts_t){.detached = true}))
        return R(-1);
    while (!atomic_load(&l->waiting))
        (void)ursa_yield();
    (void)ursa_yield(); /* now it waits in the read */
    return NULL;
}

static void test_io_rt_free_ends_blocked_read(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        left_reader_t l;
        memset(&l, 0, sizeof l);
        atomic_init(&l.rc, 1);
        make_pipe(l.fd);
        ursa_rt_t *rt;
        assert_int_equal(ursa_rt_new(&rt, &(ursa_rt_config_t){.workers = workers}), 0);
        void *res = R(-9);
        assert_int_equal(ursa_rt_block_on(rt, leave_reader_root, &l, &res), 0);
        assert_null(res);
        ursa_rt_free(rt);
        close_pipe(l.fd);
        assert_int_equal(atomic_load(&l.rc), -ECANCELED);
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

static void test_io_extreme_deadlines(void **state)
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

/* An argument runs only the tests whose names match it (a glob). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_pipe_deadline_now_and_data),
        cmocka_unit_test(test_io_cancel_blocked_read),
        cmocka_unit_test(test_io_tcp_loopback),
        cmocka_unit_test(test_io_accept_backlog_now_and_expired),
        cmocka_unit_test(test_io_write_full_pipe),
        cmocka_unit_test(test_io_file_offsets),
        cmocka_unit_test(test_io_huge_len_not_truncated),
        cmocka_unit_test(test_io_off_task),
        cmocka_unit_test(test_io_bad_fds),
        cmocka_unit_test(test_io_extreme_deadlines),
        cmocka_unit_test(test_io_same_in_and_out_of_tasks),
        cmocka_unit_test(test_io_task_io_leaves_worker_free),
        cmocka_unit_test(test_io_rt_free_ends_blocked_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
