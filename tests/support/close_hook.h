/* Runs test code inside a channel's close, between marking the channel
 * closed and closing its semaphore. A program that includes this header is
 * linked with -Wl,--wrap=ursa__sema_close (tests/CMakeLists.txt). */
#ifndef URSA_TEST_CLOSE_HOOK_H
#define URSA_TEST_CLOSE_HOOK_H

#include "core/sema.h"

/* The wrap runs close_hook as close closes the channel's semaphore, then,
 * if the first hook set it again, once more right after the semaphore
 * closed. Each hook runs once. */
uint64_t __real_ursa__sema_close(ursa__sema_t *s);
uint64_t __wrap_ursa__sema_close(ursa__sema_t *s);
static void (*close_hook)(void *);
static void *close_hook_arg;

uint64_t __wrap_ursa__sema_close(ursa__sema_t *s)
{
    void (*h)(void *) = close_hook;
    close_hook = NULL;
    if (h)
        h(close_hook_arg);
    uint64_t failed = __real_ursa__sema_close(s);
    h = close_hook; /* a second hook: right after the semaphore closed */
    close_hook = NULL;
    if (h)
        h(close_hook_arg);
    return failed;
}

#endif
