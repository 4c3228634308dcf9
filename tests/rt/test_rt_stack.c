/* Task stacks (src/rt/stack.c): an overflow hits the guard page below the
 * stack (in a forked child, which the test body checks from outside). */

#include "support.h"

#include "rt_checks.h"
#include <limits.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "rt/task.h"   /* struct ursa_task, for the stack bounds */
#include "rt/worker.h" /* its pool's stack size */

/* ================= stack guard page ================= */

static volatile int guard_limit = INT_MAX;
static volatile size_t guard_page;

static __attribute__((noinline)) int deep(int d, volatile char *up)
{
    volatile char buf[512];
    buf[0] = (char)(up ? up[0] + 1 : 0);
    buf[511] = (char)d;
    if (d >= guard_limit)
        return buf[0];
    /* buf is passed down, so every frame stays live: no loop, no tail call. */
    return deep(d + 1, buf) + buf[511];
}

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    ursa_task_t *t = ursa_task_self();
    if (!t || !t->stack)
        _exit(43);
    uintptr_t lo = (uintptr_t)ursa__stack_lo(&t->worker->stacks, t->stack);
    uintptr_t a = (uintptr_t)si->si_addr;
    _exit(a >= lo - guard_page && a < lo ? 42 : 43);
}

static void *guard_task(void *arg)
{
    (void)arg;
    return R(deep(0, NULL));
}

#if defined(URSA__ASAN)
#define GUARD_ASAN 1
#else
#define GUARD_ASAN 0
#endif
#if defined(URSA__TSAN)
#define GUARD_TSAN 1
#else
#define GUARD_TSAN 0
#endif

static void test_rt_stack_overflow_hits_the_guard_page(void **state)
{
    (void)state;
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
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
        sa.sa_sigaction = guard_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
            _exit(52);
        int rc = ursa_run(&(ursa_rt_config_t){.workers = 1}, guard_task, NULL, NULL);
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
    if (GUARD_ASAN && strstr(text, "stack-overflow")) {
        print_message("ASan's own handler caught the overflow first\n");
        return;
    }
    if (GUARD_TSAN) {
        /* TSan intercepts signals; if ours could not run, say so. */
        print_message("under TSan the child ended with %s %d; skipping\n",
                      WIFEXITED(status) ? "exit" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        skip();
    }
    fail_msg("child: %s %d; stderr:\n%s", WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text);
}

TEST_MAIN(cmocka_unit_test(test_rt_stack_overflow_hits_the_guard_page))
