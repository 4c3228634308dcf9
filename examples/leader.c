/* Leader election with a fenced lease: run several copies; one leads at a
 * time.
 *
 *     ursa_leader CONNINFO [NAME] [SECONDS] [TERM]
 *
 * Each process tries to lead NAME (default "leader-demo") for SECONDS
 * (default 10). The leader's lease renews itself; every 200 ms it writes a
 * heartbeat under its fence (a guarded write, so a leader that lost its
 * lease cannot write), and after TERM seconds (default 3) it steps down so
 * that another process gets a turn. It stops leading at once if its lease
 * is lost (the lost event). SIGINT/SIGTERM, or the end of SECONDS, cancel
 * the leading task: its lease is released even so (a cancelled task's
 * release is carried out by the store's agent before the store closes).
 *
 * `bash examples/leader.sh` starts a throwaway PostgreSQL and three of
 * these. */
#define _GNU_SOURCE /* signalfd */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <ursa.h>
#include <ursa/lease.h>

#define TTL URSA_SEC(2)

typedef struct leader {
    ursa_lease_store_t *store;
    const char *name;
    ursa_time_t term;
    int terms; /* how many times this process led */
} leader_t;

/* The resource side of the fence: the heartbeat row takes a write only from
 * a fence at least as new as the last it saw. */
static const char *heartbeat_sql =
    "INSERT INTO leader_heartbeat (name, fence, pid, at) VALUES ($1, $2::bigint, $3::int, now()) "
    "ON CONFLICT (name) DO UPDATE SET fence = excluded.fence, pid = excluded.pid, at = excluded.at "
    "WHERE leader_heartbeat.fence <= excluded.fence";

/* One term: heartbeats until the term ends or the lease is lost. */
static void lead(leader_t *ld, ursa_lease_t *l)
{
    char fence[24], pid[16];
    snprintf(fence, sizeof fence, "%lld", (long long)ursa_lease_fence(l));
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    printf("[%s] leading, fence %s\n", pid, fence);
    fflush(stdout);
    ursa_event_t *lost = ursa_lease_lost_event(l);
    ursa_time_t end = ursa_deadline_in(ld->term);
    while (ursa_now() < end) {
        int rc =
            ursa_lease_guarded_exec(l, heartbeat_sql, 3, (const char *[]){ld->name, fence, pid},
                                    NULL, ursa_deadline_in(URSA_SEC(1)));
        if (rc == -ENOLCK)
            break;
        /* Waits 200 ms, or less if the lease is lost meanwhile. */
        rc = ursa_event_wait(lost, ursa_deadline_in(URSA_MSEC(200)));
        if (rc == 0) {
            printf("[%s] lost the lease: stop\n", pid);
            return;
        }
        if (rc == -ECANCELED)
            return;
    }
    printf("[%s] stepping down\n", pid);
    fflush(stdout);
}

static void *leading_task(void *arg)
{
    leader_t *ld = arg;
    ursa_lease_opts_t opts = {.auto_renew = true};
    for (;;) {
        URSA_SCOPED(lease, l); /* released at the end of each turn, even if cancelled */
        int rc = ursa_lease_acquire_opts(ld->store, ld->name, TTL, &opts, &l, URSA_NEVER);
        if (rc == -ECANCELED)
            return NULL;
        if (rc != 0) {
            fprintf(stderr, "acquire: %s\n", ursa_strerror(rc));
            (void)ursa_sleep_for(URSA_SEC(1));
            continue;
        }
        ld->terms++;
        lead(ld, &l);
        if (ursa_task_cancelled())
            return NULL;
        ursa_lease_release(&l);
        /* Give the others a turn before trying again. */
        if (ursa_sleep_for(URSA_MSEC(300)) == -ECANCELED)
            return NULL;
    }
}

typedef struct args {
    const char *conninfo, *name;
    ursa_time_t run, term;
    int sigfd;
} args_t;

static void *root(void *arg)
{
    args_t *a = arg;
    leader_t ld = {NULL, a->name, a->term, 0};
    char err[256];
    int rc = ursa_lease_store_open_err(&ld.store, &(ursa_lease_config_t){.conninfo = a->conninfo},
                                       ursa_deadline_in(URSA_SEC(10)), err, sizeof err);
    if (rc) {
        fprintf(stderr, "open: %s (%s)\n", ursa_strerror(rc), err);
        return (void *)1;
    }
    /* The table the heartbeats go to (several processes may race to make
     * it; the losers' error does not matter). */
    ursa_lease_t setup = {0};
    if (ursa_lease_acquire(ld.store, "leader-demo-setup", URSA_SEC(10), &setup,
                           ursa_deadline_in(URSA_SEC(10))) == 0) {
        rc = ursa_lease_guarded_exec(&setup,
                                     "CREATE TABLE IF NOT EXISTS leader_heartbeat (name text "
                                     "PRIMARY KEY, fence bigint, pid int, at timestamptz)",
                                     0, NULL, NULL, ursa_deadline_in(URSA_SEC(10)));
        if (rc)
            fprintf(stderr, "create table: %s\n", ursa_strerror(rc));
        ursa_lease_release(&setup);
    }
    ursa_task_t *t;
    if (ursa_spawn(&t, leading_task, &ld, NULL))
        return (void *)1;
    /* Until a signal, or the end of the run: then cancel the leader. */
    char buf[sizeof(struct signalfd_siginfo)];
    ssize_t n = ursa_read(a->sigfd, buf, sizeof buf, -1, ursa_deadline_in(a->run));
    if (n > 0)
        printf("[%d] signal: stepping down\n", (int)getpid());
    (void)ursa_task_cancel(t);
    if (ursa_task_join(t, NULL, URSA_NEVER) != 0)
        return (void *)1; /* only if we were cancelled ourselves */
    /* Carries out a release the cancelled task queued, then disconnects. */
    rc = ursa_lease_store_close(ld.store);
    printf("[%d] led %d time(s); store closed: %s\n", (int)getpid(), ld.terms, ursa_strerror(rc));
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONNINFO [NAME] [SECONDS] [TERM]\n", argv[0]);
        return 2;
    }
    args_t a = {argv[1], argc > 2 ? argv[2] : "leader-demo",
                URSA_SEC(argc > 3 ? atoi(argv[3]) : 10), URSA_SEC(argc > 4 ? atoi(argv[4]) : 3),
                -1};
    /* Signals arrive through a signalfd that a task reads on the ring. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    a.sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    void *res = NULL;
    int rc = ursa_run(NULL, root, &a, &res);
    if (rc) {
        fprintf(stderr, "ursa_run: %s\n", ursa_strerror(rc));
        return 1;
    }
    return res ? 1 : 0;
}
