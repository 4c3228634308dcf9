/* Helpers shared by the runtime tests (tests/rt/). Include after
 * support.h.
 *
 * Tasks in these tests never call cmocka asserts (they longjmp, and tasks
 * may run on other worker threads): they record what they saw in a struct
 * owned by the test body, which asserts after the runtime has finished. */
#ifndef URSA_TEST_RT_CHECKS_H
#define URSA_TEST_RT_CHECKS_H

#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>

#define R(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

/* Runs fn in deterministic mode under `seed`; returns ursa_run's code. */
static __attribute__((unused)) int run_det(uint64_t seed, ursa_task_fn_t fn, void *arg, void **res)
{
    return ursa_run(&(ursa_rt_config_t){.deterministic = true, .seed = seed}, fn, arg, res);
}

static __attribute__((unused)) void *ret_arg(void *arg)
{
    return arg;
}

static __attribute__((unused)) void *mark_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

/* A task that waits on a gate semaphore (0 permits) and returns 99. */
typedef struct gate {
    ursa_sem_t sem;
    atomic_int started;
} gate_t;

static __attribute__((unused)) void gate_init(gate_t *g)
{
    ursa_sem_init(&g->sem, 0);
    atomic_init(&g->started, 0);
}

static __attribute__((unused)) void *gated(void *arg)
{
    gate_t *g = arg;
    atomic_store(&g->started, 1);
    URSA_SCOPED(sem_permit, p);
    int rc = ursa_sem_acquire(&g->sem, 1, &p, URSA_NEVER);
    return R(rc == 0 ? 99 : rc);
}

/* What gated_member returns once let through. */
#define GATED_MEMBER_RES 42

/* A task (a group's member) that waits for a permit of the gate semaphore
 * (arg, 0 permits) and keeps it: one permit lets one member end.
 * GATED_MEMBER_RES, or the acquire's error. */
static __attribute__((unused)) void *gated_member(void *arg)
{
    ursa_sem_t *gate = arg;
    URSA_SCOPED(sem_permit, p);
    int rc = ursa_sem_acquire(gate, 1, &p, URSA_NEVER);
    if (rc == 0)
        (void)ursa_sem_permit_forget(&p);
    return R(rc == 0 ? GATED_MEMBER_RES : rc);
}

/* ---- task I/O (tests/rt/test_io_*.c) ---- */

static __attribute__((unused)) ursa_time_t in_ms(long ms)
{
    return ursa_deadline_in(URSA_MSEC(ms));
}

static __attribute__((unused)) void make_pipe(int fd[2])
{
    assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
}

static __attribute__((unused)) void close_pipe(int fd[2])
{
    close(fd[0]);
    close(fd[1]);
}

/* A task that marks itself started, then reads fd once (up to 32
 * bytes; no deadline, or the hang guard when guarded): what the read
 * returned, the bytes, and whether the task saw itself cancelled. rc is
 * atomic: a runtime freed under the task ends it on its worker. */
typedef struct reader {
    int fd;
    bool guarded;
    atomic_int started;
    atomic_long rc;
    char buf[32];
    bool cancelled;
} reader_t;

static __attribute__((unused)) void *reader_task(void *arg)
{
    reader_t *c = arg;
    atomic_store(&c->started, 1);
    atomic_store(&c->rc, ursa_read(c->fd, c->buf, sizeof c->buf, -1,
                                   c->guarded ? test_guard_deadline() : URSA_NEVER));
    c->cancelled = ursa_task_cancelled();
    return NULL;
}

/* A descriptor number that is not open. A high one: the runtime opens its
 * eventfd and ring at the lowest free numbers. */
static __attribute__((unused)) int closed_fd(void)
{
    for (int fd = 900; fd < 1000; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
            return fd;
    fail_msg("no free descriptor number in 900..999");
    return -1;
}

#endif
