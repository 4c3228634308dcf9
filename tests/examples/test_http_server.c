/* The HTTP example (examples/http_server.c) shuts down cleanly with idle
 * keep-alive connections open: it is started as a child, serves requests
 * on some connections, leaves others idle, gets SIGTERM, and must exit 0
 * having closed every connection (each client reads EOF). The shutdown
 * time is printed, not asserted: only a generous hang guard is. */
#include "support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS 32

static pid_t start_server(int *port)
{
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        execl(HTTP_SERVER_BIN, HTTP_SERVER_BIN, "0", "2", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[64] = {0};
    size_t n = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        assert_true(poll(&p, 1, (int)(test_hang_guard() / 1000000)) == 1);
        ssize_t r = read(out[0], line + n, sizeof line - 1 - n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    close(out[0]);
    assert_int_equal(sscanf(line, "listening on %d", port), 1);
    return pid;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* One request on fd, its whole response read. */
static void request(int fd)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[512];
    size_t n = 0;
    while (!memmem(buf, n, "Hello, world\n", 13)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, (int)(test_hang_guard() / 1000000)) == 1);
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        assert_true(r > 0);
        n += (size_t)r;
    }
}

static void shutdown_with_idle_connections(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    int port;
    pid_t pid = start_server(&port);
    int fd[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fd[i] = connect_to(port);
        if (i % 2 == 0) /* half have served requests and sit idle between them */
            for (int k = 0; k < 3; k++)
                request(fd[i]);
    }
    request(fd[0]); /* every connection accepted and idle by now */
    ursa_time_t t0 = mono_ns();
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    ursa_time_t give_up = t0 + test_hang_guard();
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && mono_ns() < give_up)
    {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    ursa_time_t t1 = mono_ns();
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the server did not shut down within the hang guard");
    }
    printf("http_server: shutdown with %d idle connections took %.1f ms\n", CONNS,
           (double)(t1 - t0) / 1e6);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* every connection was closed by the server: EOF (or a reset) */
    for (int i = 0; i < CONNS; i++) {
        char b;
        ssize_t r = read(fd[i], &b, 1);
        assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
        close(fd[i]);
    }
}

TEST_MAIN(cmocka_unit_test(shutdown_with_idle_connections))
