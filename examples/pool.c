/* ursa example: a pool of TCP connections to a local echo server.
 *
 * The server is a task accepting on 127.0.0.1 (an ephemeral port) with a
 * task per connection that echoes lines back. The pool's factory connects
 * (with ursa I/O, so the create runs in the pool's own task and never on a
 * client's path), checks a connection with a "ping" round trip, and closes
 * it. Connections live at most 100 ms (less a random jitter, so they do
 * not all expire together), idle ones are checked every 50 ms, and a
 * connection idle for more than 20 ms is checked again on acquire.
 *
 * Eight clients on two workers send 100 requests each through at most four
 * connections. Every fortieth reply a client finds suspicious, it gives the
 * connection back as broken (the pool destroys it and makes another when
 * needed). At the end the example prints the pool's counters. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ursa.h>

enum { CLIENTS = 8, REQUESTS = 100, CONNECTIONS = 4 };

/* ---- the echo server ---- */

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = ursa_read(fd, buf, sizeof buf, -1, URSA_NEVER)) > 0)
        if (ursa_write(fd, buf, (size_t)n, -1, URSA_NEVER) != n)
            break;
    close(fd);
    return NULL;
}

static void *echo_server(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = ursa_accept(lfd, NULL, NULL, SOCK_CLOEXEC, URSA_NEVER);
        if (fd < 0)
            break; /* cancelled: the example is over */
        if (ursa_spawn(NULL, echo_conn, (void *)(intptr_t)fd,
                       &(ursa_spawn_opts_t){.detached = true}) != 0)
            close(fd);
    }
    close(lfd);
    return NULL;
}

/* A listening socket on 127.0.0.1, its address in *addr. */
static int listen_local(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t len = sizeof *addr;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)addr, &len)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the pool's factory ---- */

typedef struct conn {
    int fd;
} conn_t;

/* One line out, the same line back, within 100 ms: 0 or a negative errno. */
static int round_trip(int fd, const char *line, char *reply, size_t cap)
{
    size_t len = strlen(line);
    ursa_time_t deadline = ursa_deadline_in(URSA_MSEC(100));
    if (ursa_write(fd, line, len, -1, deadline) != (ssize_t)len)
        return -EIO;
    size_t got = 0;
    while (got < len) {
        ssize_t n = ursa_read(fd, reply + got, cap - got, -1, deadline);
        if (n <= 0)
            return n < 0 ? (int)n : -ECONNRESET;
        got += (size_t)n;
    }
    return got == len && memcmp(reply, line, len) == 0 ? 0 : -EPROTO;
}

static int conn_create(void *ctx, void **res)
{
    const struct sockaddr_in *addr = ctx;
    conn_t *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = c->fd < 0 ? -errno
                       : ursa_connect(c->fd, (const struct sockaddr *)addr, sizeof *addr,
                                      ursa_deadline_in(URSA_MSEC(500)));
    if (rc) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return rc;
    }
    *res = c;
    return 0;
}

static void conn_destroy(void *ctx, void *res)
{
    (void)ctx;
    conn_t *c = res;
    close(c->fd);
    free(c);
}

static int conn_check(void *ctx, void *res)
{
    (void)ctx;
    char reply[8];
    return round_trip(((conn_t *)res)->fd, "ping\n", reply, sizeof reply);
}

/* ---- clients ---- */

static atomic_int answered;

static void *client(void *arg)
{
    ursa_pool_t *pool = arg;
    int errors = 0;
    for (int i = 0; i < REQUESTS; i++) {
        URSA_SCOPED(pool_item, it); /* returned at scope exit if still held */
        int rc = ursa_pool_acquire(pool, &it, ursa_deadline_in(URSA_SEC(2)));
        if (rc) {
            fprintf(stderr, "acquire: %s\n", ursa_strerror(rc));
            return (void *)"acquire failed";
        }
        char line[64], reply[64];
        snprintf(line, sizeof line, "request %d from worker %d\n", i, ursa_worker_index());
        if (round_trip(((conn_t *)it.res)->fd, line, reply, sizeof reply) != 0) {
            (void)ursa_pool_broken(pool, &it); /* destroyed; retry on another */
            if (++errors > 10)
                return (void *)"the server keeps failing";
            i--;
            continue;
        }
        atomic_fetch_add(&answered, 1);
        if (i % 40 == 39)
            (void)ursa_pool_broken(pool, &it); /* pretend it looked wrong */
        (void)ursa_sleep_for(URSA_MSEC(1));   /* think time: lifetimes run out */
    }
    return NULL;
}

static void *root(void *arg)
{
    (void)arg;
    struct sockaddr_in addr;
    int lfd = listen_local(&addr);
    if (lfd < 0)
        return (void *)"cannot listen on 127.0.0.1";
    ursa_task_t *server;
    if (ursa_spawn(&server, echo_server, (void *)(intptr_t)lfd, NULL) != 0)
        return (void *)"cannot spawn the server";

    ursa_pool_config_t cfg = {0};
    cfg.factory = (ursa_pool_factory_t){conn_create, conn_destroy, conn_check, NULL, &addr};
    cfg.max_size = CONNECTIONS;
    cfg.min_idle = 1;
    cfg.max_lifetime = URSA_MSEC(100);
    cfg.check_on_acquire = true;
    cfg.check_idle_after = URSA_MSEC(20);
    cfg.check_interval = URSA_MSEC(50);
    cfg.warmup = URSA_POOL_WARMUP_FAIL_FAST; /* the server must be there */
    ursa_pool_t *pool;
    int rc = ursa_pool_new(&pool, &cfg);
    if (rc) {
        fprintf(stderr, "ursa_pool_new: %s\n", ursa_strerror(rc));
        return (void *)"no pool";
    }

    ursa_task_t *t[CLIENTS];
    const char *failed = NULL;
    for (int i = 0; i < CLIENTS; i++)
        if (ursa_spawn(&t[i], client, pool, &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}) != 0)
            return (void *)"cannot spawn a client";
    for (int i = 0; i < CLIENTS; i++) {
        void *r = NULL;
        if (ursa_task_join(t[i], &r, URSA_NEVER) == 0 && r && !failed)
            failed = r;
    }

    ursa_pool_stats_t s;
    (void)ursa_pool_stats(pool, &s);
    printf("%d requests answered by %llu connections (at most %u at a time)\n",
           atomic_load(&answered), (unsigned long long)s.creates, s.max_size);
    printf("acquires %llu, queued-wait total %.3f ms, max %.3f ms\n",
           (unsigned long long)s.acquires, (double)s.wait_total / 1e6, (double)s.wait_max / 1e6);
    printf("destroyed: broken %llu, max lifetime %llu, failed check %llu\n",
           (unsigned long long)s.destroyed[URSA_POOL_BROKEN],
           (unsigned long long)s.destroyed[URSA_POOL_MAX_LIFETIME],
           (unsigned long long)s.destroyed[URSA_POOL_FAILED_CHECK]);

    (void)ursa_pool_close(pool);
    if (ursa_pool_drain(pool, URSA_NEVER) != 0) /* every connection closed */
        failed = failed ? failed : "drain failed";
    (void)ursa_pool_free(pool);
    (void)ursa_task_cancel(server);
    if (ursa_task_join(server, NULL, URSA_NEVER) != 0)
        failed = failed ? failed : "server join failed";
    return (void *)failed;
}

int main(void)
{
    void *failed = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, root, NULL, &failed);
    if (rc || failed) {
        fprintf(stderr, "pool example: %s\n", rc ? ursa_strerror(rc) : (const char *)failed);
        return 1;
    }
    return atomic_load(&answered) == CLIENTS * REQUESTS ? 0 : 1;
}
