/* Leases between processes: two processes contending, a holder paused
 * (SIGSTOP) past its TTL, and contenders whose wall clocks are skewed by
 * hours. The children are this program run again with --child. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "task_checks.h"

#include "pgtest.h"

extern char **environ;

/* ---- children ---- */

static int child_fail(const char *what, int rc)
{
    fprintf(stderr, "child %d: %s: %s\n", (int)getpid(), what, rc ? ursa_strerror(rc) : "");
    return 1;
}

typedef struct contend_args {
    const char *conninfo, *who;
    int rounds;
    ursa_time_t ttl, hold;
    int overhold_every; /* every Nth round holds 1.5 x ttl without renewing */
    int status;
} contend_args_t;

/* Each round: acquire, a guarded write, hold, release; one line per grant:
 * "grant FENCE BEGIN END RELEASE_RC WROTE LATE_RC", times on CLOCK_MONOTONIC (shared by
 * the processes of one machine); END is when it stopped believing it held
 * the lease (the release call, or its local deadline if that came first). */
static void *contend_root(void *arg)
{
    contend_args_t *a = arg;
    a->status = 1;
    ursa_lease_store_t *s;
    char err[256];
    int rc = ursa_lease_store_open_err(
        &s, &(ursa_lease_config_t){.conninfo = a->conninfo, .poll_interval = URSA_MSEC(100)},
        ursa_deadline_in(URSA_SEC(30)), err, sizeof err);
    if (rc) {
        fprintf(stderr, "open: %s\n", err);
        return NULL;
    }
    for (int i = 0; i < a->rounds; i++) {
        ursa_lease_t l = {0};
        rc = ursa_lease_acquire(s, "contended", a->ttl, &l, ursa_deadline_in(URSA_SEC(60)));
        if (rc) {
            child_fail("acquire", rc);
            return NULL;
        }
        ursa_time_t begin = mono_ns();
        ursa_time_t believed_until = begin + ursa_lease_remaining(&l);
        char fence[24];
        snprintf(fence, sizeof fence, "%lld", (long long)ursa_lease_fence(&l));
        /* Refused only if the lease ran out already (a stall longer than
         * the TTL on a loaded machine): then it must not be in the log. */
        int wrote = ursa_lease_guarded_exec(
            &l, "INSERT INTO contend_log (who, fence) VALUES ($1, $2::bigint)", 2,
            (const char *[]){a->who, fence}, NULL, URSA_NEVER);
        if (wrote != 0 && wrote != -ENOLCK) {
            child_fail("guarded", wrote);
            return NULL;
        }
        bool overhold = a->overhold_every && i % a->overhold_every == a->overhold_every - 1;
        (void)ursa_sleep_for(overhold ? a->ttl * 3 / 2 : a->hold);
        int late = 0;
        if (overhold) /* past the TTL: the write must be refused */
            late = ursa_lease_guarded_exec(
                &l, "INSERT INTO contend_log (who, fence) VALUES ($1 || '-late', $2::bigint)", 2,
                (const char *[]){a->who, fence}, NULL, URSA_NEVER);
        ursa_time_t end = mono_ns();
        if (end > believed_until)
            end = believed_until;
        int rel = ursa_lease_release(&l);
        printf("grant %s %lld %lld %d %d %d\n", fence, (long long)begin, (long long)end, rel,
               wrote == 0, late);
        fflush(stdout);
    }
    a->status = ursa_lease_store_close(s) == 0 ? 0 : 1;
    return NULL;
}

static int child_contend(char **argv)
{
    contend_args_t a = {
        argv[0],       argv[1], atoi(argv[2]), URSA_MSEC(atol(argv[3])), URSA_MSEC(atol(argv[4])),
        atoi(argv[5]), 1};
    printf("clock %lld\n", (long long)time(NULL));
    fflush(stdout);
    int rc = ursa_run(NULL, contend_root, &a, NULL);
    return rc ? child_fail("run", rc) : a.status;
}

/* Holds "paused" with auto-renew, says "held FENCE", and after a line on
 * stdin reports what it sees: "seen REMAINING LOST GUARDED RELEASE". */
static void *paused_root(void *arg)
{
    const char *conninfo = arg;
    ursa_lease_store_t *s;
    if (ursa_lease_store_open(&s, &(ursa_lease_config_t){.conninfo = conninfo},
                              ursa_deadline_in(URSA_SEC(30))))
        return (void *)"open";
    ursa_lease_t l = {0};
    ursa_lease_opts_t renew = {.auto_renew = true};
    if (ursa_lease_acquire_opts(s, "paused", URSA_MSEC(500), &renew, &l, URSA_NOW))
        return (void *)"acquire";
    printf("held %lld\n", (long long)ursa_lease_fence(&l));
    fflush(stdout);
    char line[32];
    /* Blocks this worker on purpose: nothing else may run while we wait
     * but the agent, which the parent stops with us anyway. */
    if (!fgets(line, sizeof line, stdin))
        return (void *)"stdin";
    ursa_time_t left = ursa_lease_remaining(&l);
    bool lost = ursa_event_is_set(ursa_lease_lost_event(&l));
    int g = ursa_lease_guarded_exec(&l, "INSERT INTO paused_log VALUES ('ex-holder')", 0, NULL,
                                    NULL, ursa_deadline_in(URSA_SEC(10)));
    int rel = ursa_lease_release(&l);
    printf("seen %lld %d %d %d\n", (long long)left, lost, g, rel);
    fflush(stdout);
    return ursa_lease_store_close(s) == 0 ? NULL : (void *)"close";
}

static int child_paused(char **argv)
{
    void *res = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, paused_root, argv[0], &res);
    if (rc || res)
        return child_fail(res ? res : "run", rc);
    return 0;
}

/* ---- the parent's side ---- */

typedef struct child {
    pid_t pid;
    FILE *out; /* its stdout */
    FILE *in;  /* its stdin */
} child_t;

/* Runs this program with --child and args; extra_env entries are added. */
static child_t spawn_child(const char *const *args, const char *const *extra_env)
{
    child_t c = {-1, NULL, NULL};
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    const char *argv[16] = {self, "--child"};
    int k = 2;
    for (; *args && k < 15; args++)
        argv[k++] = *args;
    argv[k] = NULL;
    /* environ, with extra_env's variables replaced or added. */
    const char *envp[256];
    int e = 0;
    for (char **p = environ; *p && e < 240; p++) {
        bool replaced = false;
        for (const char *const *x = extra_env; x && *x && !replaced; x++) {
            size_t len = strcspn(*x, "=");
            replaced = strncmp(*p, *x, len + 1) == 0;
        }
        if (!replaced)
            envp[e++] = *p;
    }
    for (; extra_env && *extra_env && e < 255; extra_env++)
        envp[e++] = *extra_env;
    envp[e] = NULL;
    int out[2], in[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    assert_int_equal(posix_spawn(&c.pid, self, &fa, NULL, (char *const *)argv, (char *const *)envp),
                     0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(in[0]);
    c.out = fdopen(out[0], "r");
    c.in = fdopen(in[1], "w");
    return c;
}

static int child_exit(child_t *c)
{
    int st = 0;
    fclose(c->out);
    fclose(c->in);
    assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct grant {
    long long fence, begin, end;
    int release, wrote, late, who;
} grant_t;

static int by_fence(const void *a, const void *b)
{
    const grant_t *x = a, *y = b;
    return x->fence < y->fence ? -1 : x->fence > y->fence;
}

/* Runs `n` contending children (environments env[i]) and checks: every
 * grant has a fence of its own; sorted by fence, each holder stopped
 * believing it held the lease before the next began; the guarded log, in
 * commit order, has fences that never go back, each written by its
 * grant's holder only; every late write was refused. */
static void contend(int n, const char *const *const *env, const long *skew, int rounds, long ttl_ms,
                    long hold_ms, int overhold_every)
{
    assert_true(pgt_exec("DROP TABLE IF EXISTS contend_log; CREATE TABLE contend_log "
                         "(id bigserial PRIMARY KEY, who text, fence bigint)"));
    char whos[4][8], r[16], t[16], h[16], o[16];
    snprintf(r, sizeof r, "%d", rounds);
    snprintf(t, sizeof t, "%ld", ttl_ms);
    snprintf(h, sizeof h, "%ld", hold_ms);
    snprintf(o, sizeof o, "%d", overhold_every);
    child_t cs[4];
    for (int i = 0; i < n; i++) {
        snprintf(whos[i], sizeof whos[i], "p%d", i);
        const char *args[] = {"contend", pgt_conninfo(), whos[i], r, t, h, o, NULL};
        cs[i] = spawn_child(args, env ? env[i] : NULL);
    }
    grant_t gs[4 * 256];
    int ng = 0;
    for (int i = 0; i < n; i++) {
        char line[256];
        long long clock = 0;
        assert_non_null(fgets(line, sizeof line, cs[i].out));
        assert_int_equal(sscanf(line, "clock %lld", &clock), 1);
        /* The child's wall clock is off by its skew (within a minute). */
        long long off = clock - (long long)time(NULL) - (skew ? skew[i] : 0);
        assert_true(off > -60 && off < 60);
        while (fgets(line, sizeof line, cs[i].out)) {
            grant_t g = {.who = i};
            assert_int_equal(sscanf(line, "grant %lld %lld %lld %d %d %d", &g.fence, &g.begin,
                                    &g.end, &g.release, &g.wrote, &g.late),
                             6);
            assert_true(ng < (int)(sizeof gs / sizeof *gs));
            gs[ng++] = g;
        }
        assert_int_equal(child_exit(&cs[i]), 0);
    }
    assert_int_equal(ng, n * rounds);
    qsort(gs, (size_t)ng, sizeof *gs, by_fence);
    int late_checked = 0, wrote = 0;
    for (int i = 0; i < ng; i++) {
        wrote += gs[i].wrote;
        if (i > 0) {
            assert_true(gs[i].fence > gs[i - 1].fence);
            assert_true(gs[i - 1].end <= gs[i].begin); /* never two believers at once */
        }
        if (gs[i].late) {
            assert_int_equal(gs[i].late, -ENOLCK);
            late_checked++;
        }
        assert_true(gs[i].release == 0 || gs[i].release == -ENOLCK);
        assert_int_equal(
            pgt_value("SELECT count(*) FROM contend_log WHERE fence = %lld AND who = 'p%d'",
                      gs[i].fence, gs[i].who),
            gs[i].wrote);
    }
    if (overhold_every)
        assert_int_equal(late_checked, n * (rounds / overhold_every));
    assert_true(wrote > 0);
    assert_int_equal(pgt_value("SELECT count(*) FROM contend_log"), wrote);
    assert_int_equal(pgt_value("SELECT count(*) FROM contend_log WHERE who LIKE '%%-late'"), 0);
    assert_int_equal(pgt_value("SELECT count(*) FROM (SELECT fence < lag(fence) OVER (ORDER BY id) "
                               "AS back FROM contend_log) x WHERE back"),
                     0);
}

/* Two processes, one lease: exactly one holds at a time; the fence grows
 * strictly across grants. */
static void test_two_processes(void **state)
{
    (void)state;
    contend(2, NULL, NULL, (int)test_scale(20), 2000, 5, 0);
}

/* Wall clocks an hour ahead and an hour behind the server's, with leases
 * that run out while held: the server's clock alone decides, so mutual
 * exclusion and the fence order hold as before. */
static void test_skewed_client_clocks(void **state)
{
    (void)state;
    static char preload[600], asan[600];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", URSA_SKEW_CLOCK_LIB);
    /* ASan wants to be first in the preload list; ours only wraps libc. */
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
             getenv("ASAN_OPTIONS") ? ":" : "");
    const char *ahead[] = {preload, asan, "URSA_SKEW_SECONDS=3600", NULL};
    const char *behind[] = {preload, asan, "URSA_SKEW_SECONDS=-3600", NULL};
    const char *const *env[] = {ahead, behind};
    long skew[] = {3600, -3600};
    contend(2, env, skew, 6, PGT_TTL(500) / URSA_MSEC(1), 5, 3);
}

/* The holder is paused (SIGSTOP) past its TTL: the other side takes over
 * with a larger fence; resumed, the ex-holder sees remaining 0, its lost
 * event set, and its guarded write and release refused. */
static void test_holder_paused_past_ttl(void **state)
{
    (void)state;
    assert_true(pgt_exec("CREATE TABLE paused_log (who text)"));
    const char *args[] = {"paused", pgt_conninfo(), NULL};
    child_t c = spawn_child(args, NULL);
    char line[128];
    long long f = 0;
    assert_non_null(fgets(line, sizeof line, c.out));
    assert_int_equal(sscanf(line, "held %lld", &f), 1);
    assert_int_equal(kill(c.pid, SIGSTOP), 0);
    ursa_lease_store_t *s = pgt_store(NULL);
    assert_non_null(s);
    ursa_lease_t l = {0};
    assert_int_equal(
        ursa_lease_acquire(s, "paused", URSA_SEC(60), &l, ursa_deadline_in(URSA_SEC(30))), 0);
    assert_int_equal(ursa_lease_fence(&l), f + 1);
    assert_int_equal(ursa_lease_guarded_exec(&l, "INSERT INTO paused_log VALUES ('taker')", 0, NULL,
                                             NULL, URSA_NOW),
                     0);
    assert_int_equal(kill(c.pid, SIGCONT), 0);
    fputs("check\n", c.in);
    fflush(c.in);
    long long left = -1;
    int lost = -1, g = 1, rel = 1;
    assert_non_null(fgets(line, sizeof line, c.out));
    assert_int_equal(sscanf(line, "seen %lld %d %d %d", &left, &lost, &g, &rel), 4);
    assert_int_equal(child_exit(&c), 0);
    assert_int_equal(left, 0);
    assert_int_equal(lost, 1);
    assert_int_equal(g, -ENOLCK);
    assert_int_equal(rel, -ENOLCK);
    assert_int_equal(pgt_value("SELECT count(*) FROM paused_log WHERE who = 'ex-holder'"), 0);
    /* The taker still holds it. */
    assert_int_equal(ursa_lease_guarded_exec(&l, "SELECT 1", 0, NULL, NULL, URSA_NOW), 0);
    assert_int_equal(ursa_lease_release(&l), 0);
    assert_int_equal(ursa_lease_store_close(s), 0);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        if (strcmp(argv[2], "contend") == 0 && argc == 9)
            return child_contend(argv + 3);
        if (strcmp(argv[2], "paused") == 0 && argc == 4)
            return child_paused(argv + 3);
        return child_fail("bad arguments", 0);
    }
    pgt_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_holder_paused_past_ttl),
        cmocka_unit_test(test_skewed_client_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
