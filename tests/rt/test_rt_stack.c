/* Task stacks (src/rt/stack.c): guard pages that really guard, with
 * MADV_GUARD_INSTALL markers and with the PROT_NONE fallback (CTest runs
 * this program twice, the second time with URSA_STACK_GUARD=mprotect);
 * stacks carved from shared arenas, reused from the pool, their memory given
 * back beyond the cache and their arenas unmapped with the runtime; the
 * ledger's first records on the stack; what a parked task's stack costs; a
 * million parked guarded tasks. */

#include "support.h"

#include "rt_checks.h"
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "rt/task.h"   /* struct ursa_task: its stack */
#include "rt/worker.h" /* its pool: the stack size, the guard mode */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static bool forced_mprotect(void)
{
    const char *e = getenv("URSA_STACK_GUARD");
    return e && strcmp(e, "mprotect") == 0;
}

/* The calling task's stack: [*lo, *top). */
static void my_stack(char **lo, char **top)
{
    ursa_task_t *t = ursa_task_self();
    *top = t->stack;
    *lo = ursa__stack_lo(&t->worker->stacks, t->stack);
}

/* Resident pages in [lo, top), or -1 if the range is not mapped. */
static long resident_pages(const char *lo, const char *top)
{
    size_t page = page_size();
    size_t n = (size_t)(top - lo) / page;
    unsigned char vec[1024];
    long count = 0;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof vec ? n - done : sizeof vec;
        if (mincore((void *)(lo + done * page), k * page, vec) != 0)
            return -1;
        for (size_t i = 0; i < k; i++)
            count += vec[i] & 1;
        done += k;
    }
    return count;
}

static long mapping_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The pages a task parked on a notify touches: its top page, where the
 * frames from its function down to the switch live (also under the
 * sanitizers, whose frames are bigger). */
#define PARKED_PAGES_MAX 1

/* ================= the guard mode ================= */

static void test_rt_stack_guard_mode_follows_kernel_and_environment(void **state)
{
    (void)state;
    size_t page = page_size();
    void *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    bool kernel_has_markers = madvise(m, page, MADV_GUARD_INSTALL) == 0;
    munmap(m, page);
    ursa__guard_mode_t mode = ursa__stack_guard_mode();
    print_message("guard pages: %s (kernel markers %s)\n",
                  mode == URSA__GUARD_MADVISE ? "MADV_GUARD_INSTALL" : "mprotect",
                  kernel_has_markers ? "available" : "unavailable");
    if (forced_mprotect() || !kernel_has_markers)
        assert_int_equal(mode, URSA__GUARD_MPROTECT);
    else
        assert_int_equal(mode, URSA__GUARD_MADVISE);
}

/* ================= an overflow faults in the guard ================= */

static volatile int deep_limit = INT_MAX;

static __attribute__((noinline)) int deep(int d, volatile char *up)
{
    volatile char buf[512];
    buf[0] = (char)(up ? up[0] + 1 : 0);
    buf[511] = (char)d;
    if (d >= deep_limit)
        return buf[0];
    /* buf is passed down, so every frame stays live: no loop, no tail call. */
    return deep(d + 1, buf) + buf[511];
}

/* Set by the overflowing task before it recurses; read by the handler. */
static char *volatile overflow_lo;

static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    uintptr_t lo = (uintptr_t)overflow_lo, a = (uintptr_t)si->si_addr;
    _exit(lo && a >= lo - page_size() && a < lo ? 42 : 43);
}

/* The stacks of the cold-reuse case: the overflowing task must get one of
 * the first two, not the one the holder took. */
typedef struct cold_reuse {
    char *first[2];
    char *hot_taker;
} cold_reuse_t;

static void *overflow_task(void *arg)
{
    cold_reuse_t *c = arg;
    char *lo, *top;
    my_stack(&lo, &top);
    if (c && (!c->hot_taker || top == c->hot_taker || (top != c->first[0] && top != c->first[1])))
        _exit(46);
    overflow_lo = lo;
    return R(deep(0, NULL));
}

static void *yield_once(void *arg)
{
    char *lo, *top;
    my_stack(&lo, &top);
    *(char **)arg = top;
    (void)ursa_yield();
    return NULL;
}

/* Two tasks hold stacks at once and end: with a cache of one, one stack
 * stays hot and the other gives its memory back. Then a task takes the hot
 * one and the overflowing task gets the one that went cold: its guard must
 * still be there. Exits 46 if the stacks were not the ones expected. */
static void *overflow_after_cold_root(void *arg)
{
    (void)arg;
    static cold_reuse_t c;
    ursa_task_t *t[2];
    for (int i = 0; i < 2; i++)
        if (ursa_spawn(&t[i], yield_once, &c.first[i], NULL))
            _exit(47);
    for (int i = 0; i < 2; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER))
            _exit(47);
    ursa_task_t *hold, *over;
    if (ursa_spawn(&hold, yield_once, &c.hot_taker, NULL) ||
        ursa_spawn(&over, overflow_task, &c, NULL))
        _exit(47);
    (void)ursa_yield(); /* hold starts, then over, which never returns */
    _exit(46);
}

static void *overflow_fresh_root(void *arg)
{
    (void)arg;
    return overflow_task(NULL);
}

/* Runs root in a child process with a SIGSEGV handler on an alternate
 * stack; passes if the fault landed in the guard page below the
 * overflowing task's stack. */
static void expect_guard_fault(ursa_task_fn_t root, const ursa_rt_config_t *cfg)
{
    FILE *err = tmpfile();
    assert_non_null(err);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30); /* never hang: SIGALRM ends the child, and the test fails */
        dup2(fileno(err), 2);
        size_t alt_size = 256 * 1024;
        void *alt = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                         0);
        if (alt == MAP_FAILED)
            _exit(50);
        stack_t ss = {.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0)
            _exit(51);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = overflow_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
            _exit(52);
        int rc = ursa_run(cfg, root, NULL, NULL);
        _exit(rc == 0 ? 44 : 45);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char text[4096];
    rewind(err);
    size_t n = fread(text, 1, sizeof text - 1, err);
    text[n] = 0;
    fclose(err);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 42)
        return;
#if defined(URSA__ASAN)
    if (strstr(text, "stack-overflow")) {
        print_message("ASan's own handler caught the overflow first\n");
        return;
    }
#endif
#if defined(URSA__TSAN)
    /* TSan intercepts signals; if ours could not run, say so. */
    print_message("under TSan the child ended with %s %d; skipping\n",
                  WIFEXITED(status) ? "exit" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    skip();
#endif
    fail_msg("child: %s %d; stderr:\n%s", WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text);
}

static void test_rt_stack_overflow_faults_in_the_guard_page(void **state)
{
    (void)state;
    expect_guard_fault(overflow_fresh_root, &(ursa_rt_config_t){.workers = 1});
}

static void test_rt_stack_guard_survives_the_memory_going_back(void **state)
{
    (void)state;
    expect_guard_fault(overflow_after_cold_root,
                       &(ursa_rt_config_t){.workers = 1, .stack_cache = 1});
}

/* ================= the pool ================= */

enum { ROUND = 8 };

typedef struct rounds {
    char *top[2][ROUND];
    char *lo[2][ROUND];
    long resident_after[ROUND]; /* pages of each first-round stack once idle */
    size_t touch;               /* bytes each task writes below its frames */
    int err;
} rounds_t;

typedef struct rounds_arg {
    rounds_t *r;
    int round, i;
} rounds_arg_t;

static __attribute__((noinline)) void touch_stack(size_t bytes)
{
    volatile char *buf = __builtin_alloca(bytes);
    for (size_t i = 0; i < bytes; i += 512)
        buf[i] = 1;
}

static void *round_task(void *arg)
{
    rounds_arg_t *a = arg;
    my_stack(&a->r->lo[a->round][a->i], &a->r->top[a->round][a->i]);
    if (a->r->touch)
        touch_stack(a->r->touch);
    (void)ursa_yield(); /* every task of the round holds its stack at once */
    return NULL;
}

/* Two rounds of ROUND tasks that all hold their stacks at once; between
 * them, how resident each idle first-round stack is. */
static void *rounds_root(void *arg)
{
    rounds_t *r = arg;
    rounds_arg_t a[ROUND];
    for (int round = 0; round < 2; round++) {
        ursa_task_t *t[ROUND];
        for (int i = 0; i < ROUND; i++) {
            a[i] = (rounds_arg_t){r, round, i};
            if (ursa_spawn(&t[i], round_task, &a[i], NULL))
                r->err = -1;
        }
        for (int i = 0; i < ROUND; i++)
            if (ursa_task_join(t[i], NULL, URSA_NEVER))
                r->err = -2;
        if (round == 0)
            for (int i = 0; i < ROUND; i++)
                r->resident_after[i] = resident_pages(r->lo[0][i], r->top[0][i]);
    }
    return NULL;
}

static bool in_first_round(const rounds_t *r, const char *top)
{
    for (int i = 0; i < ROUND; i++)
        if (r->top[0][i] == top)
            return true;
    return false;
}

/* The second round runs on exactly the first round's stacks: the hot ones
 * and those whose memory went back, never a new slot. */
static void expect_same_stacks(const rounds_t *r)
{
    for (int i = 0; i < ROUND; i++) {
        assert_true(in_first_round(r, r->top[1][i]));
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(r->top[1][i], r->top[1][j]);
    }
}

static void test_rt_stack_reused_from_the_pool(void **state)
{
    (void)state;
    for (unsigned cache = 1; cache <= 2 * ROUND; cache *= 4) { /* 1: mostly cold; 16: all hot */
        rounds_t r = {0};
        assert_int_equal(ursa_run(&(ursa_rt_config_t){.stack_cache = cache}, rounds_root, &r, NULL),
                         0);
        assert_int_equal(r.err, 0);
        expect_same_stacks(&r);
    }
}

/* With a cache of 2, six of the eight stacks give their pages back when
 * their tasks end, however deep the tasks went; the two kept stay
 * resident. */
static void test_rt_stack_idle_beyond_the_cache_gives_memory_back(void **state)
{
    (void)state;
    rounds_t r = {.touch = 32 * 1024};
    assert_int_equal(ursa_run(&(ursa_rt_config_t){.stack_cache = 2}, rounds_root, &r, NULL), 0);
    assert_int_equal(r.err, 0);
    int kept = 0, given_back = 0;
    for (int i = 0; i < ROUND; i++) {
        if (r.resident_after[i] == 0)
            given_back++;
        else if (r.resident_after[i] * (long)page_size() >= (long)r.touch)
            kept++;
    }
    assert_int_equal(kept, 2);
    assert_int_equal(given_back, ROUND - 2);
    expect_same_stacks(&r);
}

static void *note_top(void *arg)
{
    char *lo;
    my_stack(&lo, (char **)arg);
    return NULL;
}

static void test_rt_stack_arenas_unmapped_with_the_runtime(void **state)
{
    (void)state;
    char *top = NULL;
    assert_int_equal(ursa_run(NULL, note_top, &top, NULL), 0);
    assert_non_null(top);
    unsigned char v;
    errno = 0;
    assert_int_equal(mincore(top - page_size(), page_size(), &v), -1);
    assert_int_equal(errno, ENOMEM);
}

/* ================= the ledger's first records, on the stack ================= */

enum { HOLDS = 7 }; /* more than the records at the top of the stack */

typedef struct holds {
    ursa_sem_t s;
    int acquire_bad, release_bad;
    size_t held[2]; /* per task, with every permit held */
} holds_t;

/* Takes HOLDS permits, gives back every other one and leaks the rest:
 * the sweep at its end releases them. */
static void *hold_many(void *arg)
{
    holds_t *h = arg;
    ursa_sem_permit_t p[HOLDS] = {0};
    for (int i = 0; i < HOLDS; i++)
        h->acquire_bad += ursa_sem_acquire(&h->s, 1, &p[i], URSA_NEVER) != 0;
    h->held[h->held[0] ? 1 : 0] = ursa_held_count();
    for (int i = 0; i < HOLDS; i += 2)
        h->release_bad += ursa_sem_release(&p[i]) != 0;
    return NULL;
}

static void *hold_many_twice(void *arg)
{
    for (int k = 0; k < 2; k++) { /* the second task reuses the first one's stack */
        ursa_task_t *t;
        if (ursa_spawn(&t, hold_many, arg, NULL) || ursa_task_join(t, NULL, URSA_NEVER))
            return R(-1);
    }
    return NULL;
}

static void test_rt_stack_ledger_grows_past_its_records_and_sweeps(void **state)
{
    (void)state;
    holds_t h = {0};
    assert_int_equal(ursa_sem_init(&h.s, HOLDS), 0);
    test_capture_leaks();
    void *res = NULL;
    assert_int_equal(ursa_run(&(ursa_rt_config_t){.stack_cache = 1}, hold_many_twice, &h, &res), 0);
    ursa_leak_set_hook(NULL, NULL);
    assert_null(res);
    assert_int_equal(h.acquire_bad, 0);
    assert_int_equal(h.release_bad, 0);
    assert_int_equal(h.held[0], HOLDS);
    assert_int_equal(h.held[1], HOLDS);
    assert_int_equal(test_leak_count(), 2 * (HOLDS / 2)); /* the odd ones, twice */
    assert_int_equal(ursa_sem_available(&h.s), HOLDS);
    assert_int_equal(ursa_sem_destroy(&h.s), 0);
}

/* ================= no memory for a stack ================= */

#if !defined(URSA__ASAN) && !defined(URSA__TSAN) /* their shadow memory needs the address space */
static void *never_runs(void *arg)
{
    (void)arg;
    return R(7);
}

/* With 1 GiB stacks (one per arena) and the address space capped just above
 * what the process has, the next stack cannot be mapped: the task ends
 * without running, and its join says -ENOMEM with no result. Exits 0 if
 * so. */
static void *no_stack_root(void *arg)
{
    (void)arg;
    struct rlimit lim;
    long vm = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &vm) != 1)
        _exit(60);
    fclose(f);
    lim.rlim_cur = lim.rlim_max = (rlim_t)vm * page_size() + ((rlim_t)256 << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        _exit(61);
    ursa_task_t *t;
    if (ursa_spawn(&t, never_runs, NULL, NULL) != 0)
        _exit(62);
    void *res = R(1);
    int rc = ursa_task_join(t, &res, URSA_NEVER);
    _exit(rc == -ENOMEM && res == NULL ? 0 : 63);
}

static void test_rt_stack_task_without_a_stack_joins_with_enomem(void **state)
{
    (void)state;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        int rc = ursa_run(&(ursa_rt_config_t){.stack_size = (size_t)1 << 30}, no_stack_root, NULL,
                          NULL);
        _exit(rc == 0 ? 64 : 65);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

/* ================= sizes ================= */

/* Uses all but a few KiB of its stack. */
static void *use_most_of_the_stack(void *arg)
{
    char *lo, *top;
    my_stack(&lo, &top);
    size_t size = (size_t)(top - lo);
    *(size_t *)arg = size;
    touch_stack(size - 8 * 1024);
    return R(1);
}

static void test_rt_stack_size_is_configurable_and_usable(void **state)
{
    (void)state;
    for (int guard = 0; guard <= 1; guard++) {
        for (size_t size = 16 * 1024; size <= 1024 * 1024; size *= 8) {
            size_t got = 0;
            void *res = NULL;
            ursa_rt_config_t cfg = {.stack_size = size, .no_stack_guard = !guard};
            assert_int_equal(ursa_run(&cfg, use_most_of_the_stack, &got, &res), 0);
            assert_ptr_equal(res, R(1));
            assert_int_equal(got, size);
        }
    }
}

/* ================= parked tasks ================= */

typedef struct parked {
    ursa_notify_t nt;
    long started; /* one worker: a plain counter */
    char **top;   /* each task's stack */
    int woken_rc_bad;
} parked_t;

static void *park_on_notify(void *arg)
{
    parked_t *p = arg;
    char *lo;
    my_stack(&lo, &p->top[p->started++]);
    if (ursa_notify_wait(&p->nt, URSA_NEVER) != 0)
        p->woken_rc_bad++;
    return NULL;
}

typedef struct parked_run {
    long n;
    long started, woken, join_bad;
    long max_resident, over_budget; /* pages of the parked stacks */
    long maps_before, maps_parked;
    size_t common_depth; /* bytes most parked stacks used */
    long deeper;         /* parked stacks that went deeper than that */
} parked_run_t;

/* How deep a fresh stack [lo, top) was used: from top down to the lowest
 * byte written (a fresh stack is zero pages; only resident pages are
 * read, so the scan adds none). Reads what the task's frames left below its
 * saved stack pointer: not instrumented. */
__attribute__((no_sanitize_address)) static size_t stack_depth(const char *lo, const char *top)
{
    size_t page = page_size();
    unsigned char in;
    const char *p = lo;
    while (p < top && (mincore((void *)p, page, &in) != 0 || !(in & 1)))
        p += page;
    for (; p < top; p++)
        if (*(const volatile char *)p)
            return (size_t)(top - p);
    return 0;
}

static int by_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Every parked task ran the same code down to its switch, so none should
 * use more of its stack than most did: a slow path (a new arena, say) run
 * on a parking task's stack would cost it a second resident page. */
static void count_deeper(parked_run_t *r, char **tops, long n, size_t size)
{
    size_t *d = malloc((size_t)n * sizeof *d);
    if (!d) {
        r->deeper = -1;
        return;
    }
    for (long i = 0; i < n; i++)
        d[i] = stack_depth(tops[i] - size, tops[i]);
    size_t *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) {
        free(d);
        r->deeper = -1;
        return;
    }
    memcpy(sorted, d, (size_t)n * sizeof *d);
    qsort(sorted, (size_t)n, sizeof *sorted, by_size);
    r->common_depth = sorted[n / 2];
    for (long i = 0; i < n; i++)
        r->deeper += d[i] > r->common_depth;
    free(sorted);
    free(d);
}

/* n tasks each park on one notify; then every stack is inspected, all are
 * woken and joined. */
static void *parked_root(void *arg)
{
    parked_run_t *r = arg;
    parked_t p = {0};
    ursa_task_t **t = calloc((size_t)r->n, sizeof *t);
    p.top = calloc((size_t)r->n, sizeof *p.top);
    if (!t || !p.top || ursa_notify_init(&p.nt) != 0) {
        free(t);
        free(p.top);
        return R(-1);
    }
    r->maps_before = mapping_count();
    long spawned = 0;
    while (spawned < r->n && ursa_spawn(&t[spawned], park_on_notify, &p, NULL) == 0)
        spawned++;
    /* One worker: a yield lets every new task run to its wait. */
    for (int k = 0; k < 100 && p.started < spawned; k++)
        (void)ursa_yield();
    r->started = p.started;
    r->maps_parked = mapping_count();
    size_t size = ursa_task_self()->worker->stacks.size;
    for (long i = 0; i < p.started; i++) {
        long pages = resident_pages(p.top[i] - size, p.top[i]);
        if (pages > r->max_resident)
            r->max_resident = pages;
        r->over_budget += pages > PARKED_PAGES_MAX;
    }
    count_deeper(r, p.top, p.started, size);
    r->woken = ursa_notify_waiters(&p.nt);
    for (long i = 0; i < spawned; i++)
        if (ursa_task_join(t[i], NULL, URSA_NEVER) != 0)
            r->join_bad++;
    r->join_bad += p.woken_rc_bad;
    free(t);
    free(p.top);
    return NULL;
}

static void expect_parked(parked_run_t *r, const ursa_rt_config_t *cfg)
{
    void *res = NULL;
    assert_int_equal(ursa_run(cfg, parked_root, r, &res), 0);
    assert_null(res);
    assert_int_equal(r->started, r->n);
    assert_int_equal(r->woken, r->n);
    assert_int_equal(r->join_bad, 0);
    print_message("%ld parked tasks: at most %ld resident stack page(s) each, %ld new mappings, "
                  "%zu bytes deep, %ld deeper\n",
                  r->n, r->max_resident, r->maps_parked - r->maps_before, r->common_depth, r->deeper);
    assert_int_equal(r->deeper, 0);
    assert_int_equal(r->over_budget, 0);
    assert_true(r->max_resident >= 1);
}

static void test_rt_stack_parked_task_costs_one_page(void **state)
{
    (void)state;
    for (int guard = 0; guard <= 1; guard++) {
        parked_run_t r = {.n = 256};
        expect_parked(&r, &(ursa_rt_config_t){.no_stack_guard = !guard});
    }
}

/* A million parked tasks, each on a guarded stack (20k in the default run,
 * the million when URSA_TEST_SCALE >= 1000, as in CI's stress step). With
 * guard markers the stacks need a few mappings per arena, not two each;
 * the PROT_NONE fallback needs two per stack, so it stays at 20k, under
 * vm.max_map_count. */
static void test_rt_stack_million_parked_guarded_tasks(void **state)
{
    (void)state;
    long n = test_scale(20000);
    if (n >= 200000)
        n = 1000000;
    bool markers = ursa__stack_guard_mode() == URSA__GUARD_MADVISE;
    if (!markers && n > 20000)
        n = 20000;
#if defined(URSA__TSAN)
    /* TSan maps a few regions of its own for each fiber. */
    bool count_maps = false;
    if (n > 2000)
        n = 2000;
#else
    bool count_maps = markers;
#endif
    parked_run_t r = {.n = n};
    expect_parked(&r, &(ursa_rt_config_t){.workers = 1});
    if (count_maps)
        assert_true(r.maps_parked - r.maps_before < n / 16);
}

#if !defined(URSA__ASAN) && !defined(URSA__TSAN)
#define TEST_NO_STACK cmocka_unit_test(test_rt_stack_task_without_a_stack_joins_with_enomem),
#else
#define TEST_NO_STACK
#endif

TEST_MAIN(cmocka_unit_test(test_rt_stack_guard_mode_follows_kernel_and_environment),
          cmocka_unit_test(test_rt_stack_overflow_faults_in_the_guard_page),
          cmocka_unit_test(test_rt_stack_guard_survives_the_memory_going_back),
          cmocka_unit_test(test_rt_stack_reused_from_the_pool),
          cmocka_unit_test(test_rt_stack_idle_beyond_the_cache_gives_memory_back),
          cmocka_unit_test(test_rt_stack_arenas_unmapped_with_the_runtime),
          cmocka_unit_test(test_rt_stack_ledger_grows_past_its_records_and_sweeps),
          TEST_NO_STACK
          cmocka_unit_test(test_rt_stack_size_is_configurable_and_usable),
          cmocka_unit_test(test_rt_stack_parked_task_costs_one_page),
          cmocka_unit_test(test_rt_stack_million_parked_guarded_tasks))
