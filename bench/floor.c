/* floor: what the kernel charges for a wake between two threads here, so
 * that a cross-worker row of ursa_bench can be read against it.
 *
 *   floor [N]    (N round trips per measurement, default 20000)
 *
 * Two threads ping-pong N times; each hand-off blocks the waiting thread
 * in the kernel and wakes it from the other, by
 *   futex    FUTEX_WAIT / FUTEX_WAKE on a shared word,
 *   eventfd  a blocking read(2) on one eventfd per direction, write(2),
 *   msgring  io_uring_enter waiting on its own ring; the other thread
 *            posts into it with IORING_OP_MSG_RING from its ring (the
 *            rings set up as a worker's: SINGLE_ISSUER | DEFER_TASKRUN
 *            where the kernel has them),
 *   spin     no kernel: each thread spins on the shared word (pause),
 * first with the process free to use every CPU it may, then confined to
 * one CPU (sched_setaffinity), as the oversub_ rows are. Prints
 * `floor_<how>[_one_cpu] ns_per_round_trip`; spin is skipped on one CPU
 * (it would only measure the scheduler's time slice). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long n_rounds = 20000;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define DIE(...)                                                                             \
    do {                                                                                     \
        fprintf(stderr, "floor: " __VA_ARGS__);                                              \
        exit(1);                                                                             \
    } while (0)

/* ---- futex ---- */

static _Atomic uint32_t word; /* whose turn: 1 pong's, 0 ping's */

/* Sleeps while the word is `busy`. */
static void futex_wait(uint32_t busy)
{
    while (atomic_load(&word) == busy)
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, busy, NULL, NULL, 0);
}

/* Gives the turn away and wakes the other thread. */
static void futex_pass(uint32_t turn)
{
    atomic_store(&word, turn);
    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *futex_pong(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_rounds; i++) {
        futex_wait(0);
        futex_pass(0);
    }
    return NULL;
}

static int64_t run_futex(void)
{
    atomic_store(&word, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, futex_pong, NULL))
        DIE("pthread_create\n");
    int64_t t0 = now_ns();
    for (long i = 0; i < n_rounds; i++) {
        futex_pass(1);
        futex_wait(1);
    }
    int64_t d = now_ns() - t0;
    pthread_join(th, NULL);
    return d;
}

/* ---- eventfd ---- */

static int efd[2];

static void ev_wait(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) != sizeof v)
        if (errno != EINTR)
            DIE("eventfd read: %s\n", strerror(errno));
}

static void ev_pass(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one)
        DIE("eventfd write: %s\n", strerror(errno));
}

static void *ev_pong(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_rounds; i++) {
        ev_wait(efd[1]);
        ev_pass(efd[0]);
    }
    return NULL;
}

static int64_t run_eventfd(void)
{
    efd[0] = eventfd(0, EFD_CLOEXEC);
    efd[1] = eventfd(0, EFD_CLOEXEC);
    if (efd[0] < 0 || efd[1] < 0)
        DIE("eventfd: %s\n", strerror(errno));
    pthread_t th;
    if (pthread_create(&th, NULL, ev_pong, NULL))
        DIE("pthread_create\n");
    int64_t t0 = now_ns();
    for (long i = 0; i < n_rounds; i++) {
        ev_pass(efd[1]);
        ev_wait(efd[0]);
    }
    int64_t d = now_ns() - t0;
    pthread_join(th, NULL);
    close(efd[0]);
    close(efd[1]);
    return d;
}

/* ---- io_uring MSG_RING ---- */

static struct io_uring rings[2];
static _Atomic int rings_ready;

static void ring_setup(struct io_uring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(8, r, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(8, r, &p);
    }
    if (rc)
        DIE("io_uring_queue_init: %s\n", strerror(-rc));
}

/* Posts a CQE into ring `to` from ring `from` (no CQE on `from`). */
static void msg_pass(struct io_uring *from, struct io_uring *to)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(from);
    io_uring_prep_msg_ring(sqe, to->ring_fd, 0, 1, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    if (io_uring_submit(from) != 1)
        DIE("msg_ring submit\n");
}

static void msg_wait(struct io_uring *r)
{
    struct io_uring_cqe *cqe;
    int rc;
    while ((rc = io_uring_wait_cqe(r, &cqe)) == -EINTR) {
    }
    if (rc)
        DIE("io_uring_wait_cqe: %s\n", strerror(-rc));
    if (cqe->res < 0)
        DIE("msg_ring: %s\n", strerror(-cqe->res));
    io_uring_cqe_seen(r, cqe);
}

static void *msg_pong(void *arg)
{
    (void)arg;
    ring_setup(&rings[1]); /* SINGLE_ISSUER: made by the thread that uses it */
    atomic_store(&rings_ready, 1);
    for (long i = 0; i < n_rounds; i++) {
        msg_wait(&rings[1]);
        msg_pass(&rings[1], &rings[0]);
    }
    return NULL;
}

static int64_t run_msgring(void)
{
    ring_setup(&rings[0]);
    atomic_store(&rings_ready, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, msg_pong, NULL))
        DIE("pthread_create\n");
    while (!atomic_load(&rings_ready))
        sched_yield();
    int64_t t0 = now_ns();
    for (long i = 0; i < n_rounds; i++) {
        msg_pass(&rings[0], &rings[1]);
        msg_wait(&rings[0]);
    }
    int64_t d = now_ns() - t0;
    pthread_join(th, NULL);
    io_uring_queue_exit(&rings[0]);
    io_uring_queue_exit(&rings[1]);
    return d;
}

/* ---- spinning ---- */

static void *spin_pong(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_rounds; i++) {
        while (atomic_load_explicit(&word, memory_order_acquire) != 1)
            __builtin_ia32_pause();
        atomic_store_explicit(&word, 0, memory_order_release);
    }
    return NULL;
}

static int64_t run_spin(void)
{
    atomic_store(&word, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, spin_pong, NULL))
        DIE("pthread_create\n");
    int64_t t0 = now_ns();
    for (long i = 0; i < n_rounds; i++) {
        atomic_store_explicit(&word, 1, memory_order_release);
        while (atomic_load_explicit(&word, memory_order_acquire) != 0)
            __builtin_ia32_pause();
    }
    int64_t d = now_ns() - t0;
    pthread_join(th, NULL);
    return d;
}

static void report(const char *how, const char *suffix, int64_t ns)
{
    printf("floor_%s%s %.1f\n", how, suffix, (double)ns / (double)n_rounds);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        n_rounds = atol(argv[1]) > 0 ? atol(argv[1]) : n_rounds;
    for (int one = 0; one < 2; one++) {
        const char *sfx = one ? "_one_cpu" : "";
        if (one) {
            cpu_set_t all, set;
            if (sched_getaffinity(0, sizeof all, &all))
                DIE("sched_getaffinity\n");
            CPU_ZERO(&set);
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &all)) {
                    CPU_SET(c, &set);
                    break;
                }
            if (sched_setaffinity(0, sizeof set, &set)) /* threads made later inherit it */
                DIE("sched_setaffinity\n");
        }
        report("futex", sfx, run_futex());
        report("eventfd", sfx, run_eventfd());
        report("msgring", sfx, run_msgring());
        if (!one)
            report("spin", sfx, run_spin());
    }
    return 0;
}
