/* ursa example: a producer feeds jobs over an mpmc channel to a pool of
 * workers spawned into a task group; a shutdown token stops everything.
 *
 * The group's token is a child of `shutdown`, and the producer is bound
 * to `shutdown` too: one ursa_token_cancel(&shutdown) makes every wait of
 * every one of them fail with -ECANCELED. Results travel as data: each
 * worker returns how many jobs it did, or an error; the supervisor joins
 * them in the order they finish (ursa_group_join_next) and, like Go's
 * errgroup, shuts everything down on the first error. Destroying the group
 * at the end guarantees that no worker outlives it. */
#include <stdio.h>

#include <ursa.h>

enum { WORKERS = 4, FAIL_AT = 500 };

typedef struct pool {
    ursa_token_t shutdown;
    ursa_group_t workers;
    ursa_mpmc_sender_t tx;
    ursa_mpmc_receiver_t rx[WORKERS];
} pool_t;

/* What a worker returns: jobs done (>= 0), or a negative errno. */
typedef struct worker_arg {
    pool_t *p;
    int index;
} worker_arg_t;

static void *worker(void *arg)
{
    worker_arg_t *a = arg;
    ursa_mpmc_receiver_t *rx = &a->p->rx[a->index];
    intptr_t done = 0;
    uint64_t job;
    int rc;
    while ((rc = ursa_mpmc_recv(rx, &job, URSA_NEVER)) == 0) {
        if (job == FAIL_AT) { /* a job that fails: the error is this worker's result */
            done = -EIO;
            break;
        }
        done++;
        if (done % 16 == 0)
            (void)ursa_yield(); /* let the others take a turn */
    }
    /* rc: -EPIPE (the producer is gone, the channel drained) or
     * -ECANCELED (shutdown): either way the worker stops cleanly. */
    (void)ursa_mpmc_receiver_drop(rx);
    return (void *)done;
}

static void *producer(void *arg)
{
    pool_t *p = arg;
    uint64_t sent = 0;
    for (uint64_t job = 1;; job++) {
        if (ursa_mpmc_send(&p->tx, &job, URSA_NEVER) != 0)
            break; /* -ECANCELED (shutdown) or -EPIPE (no worker left) */
        sent++;
    }
    (void)ursa_mpmc_sender_drop(&p->tx);
    return (void *)(uintptr_t)sent;
}

static void *supervisor(void *arg)
{
    (void)arg;
    pool_t p;
    ursa_token_init(&p.shutdown, NULL);
    ursa_group_init(&p.workers, &p.shutdown); /* cancelled with shutdown */
    ursa_mpmc_receiver_t rx;
    if (ursa_mpmc_new(&rx, &p.tx, sizeof(uint64_t), 64, NULL) != 0)
        return (void *)1;
    worker_arg_t args[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        args[i] = (worker_arg_t){&p, i};
        if (ursa_mpmc_receiver_clone(&rx, &p.rx[i]) != 0 ||
            ursa_group_spawn(&p.workers, NULL, worker, &args[i], NULL) != 0)
            return (void *)1;
    }
    (void)ursa_mpmc_receiver_drop(&rx); /* the workers hold the channel open */
    ursa_task_t *prod;
    if (ursa_token_spawn(&p.shutdown, &prod, producer, &p, NULL) != 0)
        return (void *)1;

    /* Results in finishing order; the first error shuts everything down. */
    void *res;
    int rc;
    while ((rc = ursa_group_join_next(&p.workers, &res, NULL, URSA_NEVER)) != -ECHILD) {
        intptr_t r = (intptr_t)res;
        if (rc != 0 || r < 0) {
            printf("  a worker failed (%s): shutting down\n", ursa_strerror(rc ? rc : (int)r));
            ursa_token_cancel(&p.shutdown);
        } else {
            printf("  a worker stopped after %ld jobs\n", (long)r);
        }
    }
    void *sent = NULL;
    if (ursa_task_join(prod, &sent, URSA_NEVER) != 0)
        return (void *)1;
    printf("  producer sent %lu jobs before the shutdown\n", (unsigned long)(uintptr_t)sent);
    ursa_group_destroy(&p.workers); /* empty by now; it would cancel and join what is left */
    ursa_token_destroy(&p.shutdown);
    return NULL;
}

int main(void)
{
    printf("group: %d workers in a group, one producer, a shutdown token\n", WORKERS);
    void *res = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, supervisor, NULL, &res);
    if (rc != 0 || res != NULL) {
        fprintf(stderr, "group: failed (%s)\n", ursa_strerror(rc));
        return 1;
    }
    printf("group: done, no task outlived its group\n");
    return 0;
}
