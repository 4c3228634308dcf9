/* Runs a check in a forked child, so that a crash (a sweep that reads a
 * dead stack frame, say) fails the one test only; the check's message
 * comes back through a pipe. Call it on the test's own stack. Include
 * after support.h. */
#ifndef URSA_TEST_ISOLATE_H
#define URSA_TEST_ISOLATE_H

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* fn returns NULL, or a message naming the failed check. */
static __attribute__((unused)) void run_isolated(void *(*fn)(void), const char *what)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Default signal dispositions: cmocka's handlers would longjmp. */
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(pfd[0]);
        const char *msg = fn();
        if (msg) {
            ssize_t n = write(pfd[1], msg, strlen(msg));
            (void)n;
        }
        _exit(msg ? 1 : 0);
    }
    close(pfd[1]);
    char buf[600];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(pfd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(pfd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("%s: child killed by signal %d (%s)", what, WTERMSIG(st), strsignal(WTERMSIG(st)));
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st))
        fail_msg("%s: %s", what, got ? buf : "child failed");
}

#endif
