/* ursa example: an HTTP/1.1 keep-alive server with graceful shutdown.
 *
 *     ursa_http_server [PORT [WORKERS]]     (PORT 0: any free port)
 *
 * It prints "listening on PORT" once it accepts, answers every request
 * with a small fixed page, keeps each connection open for more requests
 * until the client closes it or it sits idle for IDLE_TIMEOUT, and on
 * SIGINT or SIGTERM shuts down: it stops accepting, closes every
 * connection, idle ones included, as soon as it has answered what it was
 * answering, waits for the connection tasks to end, and exits 0.
 *
 * The pattern: every wait that should end at shutdown is a select with
 * the shutdown as one more case. The accept loop selects "listening socket
 * readable" or shutdown; each connection task selects "socket readable"
 * or shutdown, with the idle timeout as the select's deadline. No registry
 * of sockets, no shutdown(2) from another thread, nothing lost: a select
 * that returns for the shutdown took no byte off the socket.
 *
 * The shutdown is a manual-reset ursa_event_t, set once by the signal
 * thread; every select builds its case with shutdown_case(), so that
 * turning it into a cancellation token (a select case too) is a change to
 * that one line. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ursa.h>

#define IDLE_TIMEOUT URSA_SEC(30)
#define IO_TIMEOUT URSA_SEC(10)

typedef struct server {
    int listen_fd;
    ursa_event_t shutdown;   /* manual-reset: set once, seen by every select */
    atomic_int live;         /* connection tasks still running */
    ursa_event_t all_closed; /* set by the last connection task at shutdown */
    atomic_long served;
} server_t;

/* The one line to change for a cancellation token. */
static ursa_case_t shutdown_case(server_t *s)
{
    return ursa_case_event(&s->shutdown);
}

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n"
                               "Hello, world\n";

typedef struct conn {
    server_t *s;
    int fd;
} conn_t;

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = ursa_write(fd, p, n, -1, ursa_deadline_in(IO_TIMEOUT));
        if (w <= 0)
            return w < 0 ? (int)w : -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answers every complete request in buf[0..*len) and keeps the rest. */
static int serve_requests(conn_t *c, char *buf, size_t *len)
{
    char *end;
    while ((end = memmem(buf, *len, "\r\n\r\n", 4))) {
        size_t used = (size_t)(end + 4 - buf);
        int rc = write_all(c->fd, RESPONSE, sizeof RESPONSE - 1);
        if (rc)
            return rc;
        atomic_fetch_add(&c->s->served, 1);
        memmove(buf, buf + used, *len - used);
        *len -= used;
    }
    return *len == 4096 ? -E2BIG : 0; /* a header this long: give up */
}

static void *connection(void *arg)
{
    conn_t c = *(conn_t *)arg;
    free(arg);
    char buf[4096];
    size_t len = 0;
    /* Declared order, shutdown first: a client that keeps sending cannot
     * hold the shutdown off. Built once: the array remembers that its
     * select usually waits (docs/select.md). */
    ursa_case_t cases[] = {shutdown_case(c.s), ursa_case_readable(c.fd)};
    for (;;) {
        int i = ursa_select(cases, 2, URSA_SELECT_ORDERED, ursa_deadline_in(IDLE_TIMEOUT));
        if (i != 1)
            break; /* shutdown (0), idle (-ETIMEDOUT) or cancelled */
        ssize_t n = ursa_read(c.fd, buf + len, sizeof buf - len, -1, URSA_NOW);
        if (n == -EAGAIN)
            continue; /* readiness without data (it happens): wait again */
        if (n <= 0)
            break; /* the client closed, or an error */
        len += (size_t)n;
        if (serve_requests(&c, buf, &len))
            break;
    }
    close(c.fd);
    if (atomic_fetch_sub(&c.s->live, 1) == 1 && ursa_event_is_set(&c.s->shutdown))
        (void)ursa_event_set(&c.s->all_closed);
    return NULL;
}

static void *accept_loop(void *arg)
{
    server_t *s = arg;
    ursa_case_t cases[] = {shutdown_case(s), ursa_case_readable(s->listen_fd)};
    for (;;) {
        int i = ursa_select(cases, 2, URSA_SELECT_ORDERED, URSA_NEVER);
        if (i != 1)
            break;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue; /* another worker's accept took it, or a transient error */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        *c = (conn_t){s, fd};
        atomic_fetch_add(&s->live, 1);
        ursa_spawn_opts_t opts = {.name = "conn", .detached = true};
        if (ursa_spawn(NULL, connection, c, &opts) != 0) {
            atomic_fetch_sub(&s->live, 1);
            close(fd);
            free(c);
        }
    }
    close(s->listen_fd);
    /* Every connection task sees the shutdown in its select; wait for the
     * last one to close its socket. */
    if (atomic_load(&s->live) > 0 && ursa_event_wait(&s->all_closed, URSA_NEVER) != 0)
        return (void *)"interrupted";
    return NULL;
}

/* A plain thread that turns SIGINT / SIGTERM into the shutdown. */
static void *signal_thread(void *arg)
{
    server_t *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    while (sigwait(&set, &sig) != 0) {
    }
    fprintf(stderr, "http_server: signal %d: shutting down\n", sig);
    (void)ursa_event_set(&s->shutdown);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    /* Signals go to the signal thread only (every thread inherits this). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static server_t s;
    atomic_init(&s.live, 0);
    atomic_init(&s.served, 0);
    if (ursa_event_init(&s.shutdown, URSA_EVENT_MANUAL, false) ||
        ursa_event_init(&s.all_closed, URSA_EVENT_MANUAL, false))
        return 1;
    s.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s.listen_fd < 0 || bind(s.listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(s.listen_fd, 1024) || getsockname(s.listen_fd, (struct sockaddr *)&a, &alen)) {
        perror("http_server: listen");
        return 1;
    }
    pthread_t sig;
    if (pthread_create(&sig, NULL, signal_thread, &s))
        return 1;
    printf("listening on %d\n", ntohs(a.sin_port));
    fflush(stdout);

    int rc = ursa_run(&(ursa_rt_config_t){.workers = workers}, accept_loop, &s, NULL);
    fprintf(stderr, "http_server: served %ld requests; every connection closed\n",
            atomic_load(&s.served));
    pthread_cancel(sig); /* still in sigwait if the root ended otherwise */
    pthread_join(sig, NULL);
    (void)ursa_event_destroy(&s.shutdown);
    (void)ursa_event_destroy(&s.all_closed);
    return rc ? 1 : 0;
}
