#include "proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAIRS 64

typedef struct chunk {
    struct chunk *next;
    int64_t due_ms;
    size_t len;
    char data[];
} chunk_t;

typedef struct pair {
    int cfd, sfd;         /* client side (TCP), server side (Unix) */
    chunk_t *head, *tail; /* replies held back, oldest first */
} pair_t;

struct proxy {
    char path[108];
    int lfd, port;
    int wake[2];
    pthread_t th;
    pthread_mutex_t lock; /* mode, delay, cuts, stop, cut_all */
    proxy_mode_t mode;
    int delay_ms, cuts;
    bool stop, cut_all;
    pair_t pairs[PAIRS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the peer went away: its read side will notice */
        b += k;
        n -= (size_t)k;
    }
}

static void close_pair(pair_t *q)
{
    close(q->cfd);
    close(q->sfd);
    while (q->head) {
        chunk_t *c = q->head;
        q->head = c->next;
        free(c);
    }
    q->tail = NULL;
    q->cfd = q->sfd = -1;
}

static void accept_one(proxy_t *p)
{
    int c = accept(p->lfd, NULL, NULL);
    if (c < 0)
        return;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", p->path);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        close(c);
        if (s >= 0)
            close(s);
        return;
    }
    for (int i = 0; i < PAIRS; i++) {
        if (p->pairs[i].cfd < 0) {
            p->pairs[i] = (pair_t){c, s, NULL, NULL};
            return;
        }
    }
    close(c);
    close(s);
}

static void queue_chunk(pair_t *q, const char *b, size_t n, int64_t due)
{
    chunk_t *c = malloc(sizeof *c + n);
    if (!c)
        return;
    c->next = NULL;
    c->due_ms = due;
    c->len = n;
    memcpy(c->data, b, n);
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

/* A chunk of reply from the server, treated as the mode says. */
static void on_reply(proxy_t *p, pair_t *q, const char *b, size_t n)
{
    pthread_mutex_lock(&p->lock);
    proxy_mode_t mode = p->mode;
    int delay = p->delay_ms;
    if (mode == PROXY_CUT_ON_REPLY) {
        p->mode = PROXY_PASS;
        p->cuts++;
    }
    pthread_mutex_unlock(&p->lock);
    if (mode == PROXY_CUT_ON_REPLY)
        close_pair(q);
    else if (mode == PROXY_DELAY)
        queue_chunk(q, b, n, now_ms() + delay);
    else if (mode == PROXY_PASS && q->head)
        queue_chunk(q, b, n, now_ms()); /* keep the order behind held chunks */
    else if (mode == PROXY_PASS)
        write_all(q->cfd, b, n);
}

static int flush_due(pair_t *q)
{
    int64_t now = now_ms();
    while (q->head && q->head->due_ms <= now) {
        chunk_t *c = q->head;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        write_all(q->cfd, c->data, c->len);
        free(c);
    }
    return q->head ? (int)(q->head->due_ms - now) : -1;
}

static void *run(void *arg)
{
    proxy_t *p = arg;
    char buf[65536];
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop, cut = p->cut_all;
        p->cut_all = false;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        struct pollfd fds[2 + 2 * PAIRS];
        int idx[2 + 2 * PAIRS];
        int nf = 0, timeout = -1;
        fds[nf++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        for (int i = 0; i < PAIRS; i++) {
            pair_t *q = &p->pairs[i];
            if (q->cfd < 0)
                continue;
            if (cut) {
                close_pair(q);
                continue;
            }
            int t = flush_due(q);
            if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
            idx[nf] = i;
            fds[nf++] = (struct pollfd){.fd = q->cfd, .events = POLLIN};
            idx[nf] = i;
            fds[nf++] = (struct pollfd){.fd = q->sfd, .events = POLLIN};
        }
        if (poll(fds, (nfds_t)nf, timeout) <= 0)
            continue;
        if (fds[1].revents) {
            char c[64];
            (void)!read(p->wake[0], c, sizeof c);
        }
        if (fds[0].revents & POLLIN)
            accept_one(p);
        for (int k = 2; k < nf; k++) {
            pair_t *q = &p->pairs[idx[k]];
            if (!fds[k].revents || q->cfd < 0 || fds[k].fd != (k % 2 ? q->sfd : q->cfd))
                continue; /* closed meanwhile */
            ssize_t n = read(fds[k].fd, buf, sizeof buf);
            if (n <= 0)
                close_pair(q);
            else if (fds[k].fd == q->cfd)
                write_all(q->sfd, buf, (size_t)n);
            else
                on_reply(p, q, buf, (size_t)n);
        }
    }
    for (int i = 0; i < PAIRS; i++)
        if (p->pairs[i].cfd >= 0)
            close_pair(&p->pairs[i]);
    return NULL;
}

proxy_t *proxy_start(const char *path)
{
    proxy_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->path, sizeof p->path, "%s", path);
    for (int i = 0; i < PAIRS; i++)
        p->pairs[i].cfd = p->pairs[i].sfd = -1;
    pthread_mutex_init(&p->lock, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(p->lfd, 64) < 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &alen) < 0 || pipe(p->wake) < 0) {
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    if (pthread_create(&p->th, NULL, run, p)) {
        free(p);
        return NULL;
    }
    return p;
}

int proxy_port(proxy_t *p)
{
    return p->port;
}

static void poke(proxy_t *p)
{
    (void)!write(p->wake[1], "x", 1);
}

void proxy_set(proxy_t *p, proxy_mode_t mode, int delay_ms)
{
    pthread_mutex_lock(&p->lock);
    p->mode = mode;
    p->delay_ms = delay_ms;
    pthread_mutex_unlock(&p->lock);
    poke(p);
}

void proxy_cut_all(proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->cut_all = true;
    pthread_mutex_unlock(&p->lock);
    poke(p);
}

int proxy_cuts(proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->cuts;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void proxy_stop(proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    poke(p);
    pthread_join(p->th, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
