/* Task I/O on sockets (src/rt/io.c): TCP accept / connect / read / poll
 * on 127.0.0.1 with deadlines and URSA_NOW, and an accept that never loses
 * a connection already in the backlog. Every socket is bound to 127.0.0.1;
 * every wait has a deadline. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#include "rt_checks.h"

/* ================= TCP on 127.0.0.1 ================= */

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel; *addr
 * gets its address. */
static int listen_loopback(struct sockaddr_in *addr)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    int one = 1;
    assert_int_equal(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = 0};
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t len = sizeof *addr;
    assert_int_equal(getsockname(ls, (struct sockaddr *)addr, &len), 0);
    assert_true(ntohs(addr->sin_port) != 0);
    return ls;
}

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
    r->connect_rc =
        ursa_connect(s, (struct sockaddr *)&r->addr, sizeof r->addr, test_guard_deadline());
    if (r->connect_rc == 0) {
        r->client_write_rc = ursa_write(s, "hello tcp", 9, -1, test_guard_deadline());
        /* Wait for the server's go before sending more. */
        ursa_sem_permit_t p = {0};
        r->client_go_rc = ursa_sem_acquire(&r->go, 1, &p, test_guard_deadline());
        if (r->client_go_rc == 0)
            (void)ursa_sem_release(&p);
        r->client_write2_rc = ursa_write(s, "more", 4, -1, test_guard_deadline());
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
                   &(ursa_spawn_opts_t){.name = "client", URSA_ON_WORKER(r->client_worker)}))
        return R(-1);
    r->peer_len = sizeof r->peer;
    int s = ursa_accept(r->ls, (struct sockaddr *)&r->peer, &r->peer_len, SOCK_CLOEXEC,
                        test_guard_deadline());
    r->accepted = s;
    if (s >= 0) {
        r->read1_rc = read_full(s, r->read1, 9, test_guard_deadline());
        /* Nothing more until we say go. */
        r->poll_now_rc = ursa_poll(s, POLLIN, URSA_NOW);
        t0 = mono_ns();
        r->poll_timeout_rc = ursa_poll(s, POLLIN, in_ms(20));
        r->poll_timeout_elapsed = mono_ns() - t0;
        (void)ursa_sem_add(&r->go, 1);
        r->poll_rc = ursa_poll(s, POLLIN, test_guard_deadline());
        r->poll_now_ready_rc = ursa_poll(s, POLLIN, URSA_NOW);
        r->read2_rc = read_full(s, r->read2, 4, test_guard_deadline());
        close(s);
    }
    if (ursa_task_join(t, NULL, ursa_deadline_in(URSA_SEC(10))) != 0)
        return R(-2);
    return NULL;
}

static void test_io_tcp_accept_connect_read_and_poll_on_loopback(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        tcp_res_t r;
        memset(&r, 0, sizeof r);
        ursa_sem_init(&r.go, 0);
        r.client_worker = (int)workers - 1;
        r.ls = listen_loopback(&r.addr);

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

static void test_io_accept_never_loses_a_backlogged_connection(void **state)
{
    (void)state;
    backlog_res_t b = {0};
    b.ls = listen_loopback(&b.addr);
    assert_null(test_run(1, backlog_root, &b));
    close(b.ls);
    assert_int_equal(b.connect_fail, 0);
    assert_int_equal(b.now_fail, 0);
    assert_int_equal(b.now_fd_ok, BACKLOG_ROUNDS);
    assert_int_equal(b.expired_lost, 0);
    assert_int_equal(b.expired_got + b.expired_left, BACKLOG_ROUNDS);
}

TEST_MAIN(cmocka_unit_test(test_io_tcp_accept_connect_read_and_poll_on_loopback),
          cmocka_unit_test(test_io_accept_never_loses_a_backlogged_connection))
