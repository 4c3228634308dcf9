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
 * the shutdown, a cancellation token, as one more case. The accept loop
 * selects "listening socket readable", "a connection task ended" (the
 * group's join_next: it reaps them as they go) or shutdown; each
 * connection task selects "socket readable" or shutdown, with the idle
 * timeout as the select's deadline. No registry of sockets or tasks, no
 * shutdown(2) from another thread, nothing lost: a select that returns
 * for the shutdown took no byte off the socket. The connection tasks are
 * a task group, so none outlives the server: at shutdown the accept loop
 * waits for the group, then destroys it.
 *
 * The tasks are not bound to the token: a connection finishes writing the
 * answer it was writing, then sees the shutdown at its next select. (Bound
 * tasks would have every wait fail with -ECANCELED at once, writes too.) */
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
    ursa_token_t shutdown; /* cancelled once, by the signal thread */
    ursa_group_t conns;    /* the connection tasks */
    atomic_long served;
} server_t;

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
    ursa_case_t cases[] = {ursa_case_token(&c.s->shutdown), ursa_case_readable(c.fd)};
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
    return NULL;
}

static void *accept_loop(void *arg)
{
    server_t *s = arg;
    ursa_case_t cases[] = {ursa_case_token(&s->shutdown), ursa_case_readable(s->listen_fd),
                           ursa_case_join_next(&s->conns, NULL)};
    for (;;) {
        /* The join case only while there is a member to join: with none,
         * join_next is ready at once (-ECHILD). */
        unsigned n = ursa_group_len(&s->conns) ? 3 : 2;
        int i = ursa_select(cases, n, URSA_SELECT_ORDERED, URSA_NEVER);
        if (i == 2)
            continue; /* a connection task ended: joined */
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
        ursa_spawn_opts_t opts = {.name = "conn"};
        if (ursa_group_spawn(&s->conns, NULL, connection, c, &opts) != 0) {
            close(fd);
            free(c);
        }
    }
    close(s->listen_fd);
    /* Every connection task sees the shutdown in its select; wait for the
     * last one to close its socket, then join what is left. */
    int rc = ursa_group_wait(&s->conns, URSA_NEVER);
    if (ursa_group_destroy(&s->conns) != 0 || rc != 0)
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
    (void)ursa_token_cancel(&s->shutdown);
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
    atomic_init(&s.served, 0);
    if (ursa_token_init(&s.shutdown, NULL) || ursa_group_init(&s.conns, NULL))
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
    (void)ursa_token_destroy(&s.shutdown);
    return rc ? 1 : 0;
}
