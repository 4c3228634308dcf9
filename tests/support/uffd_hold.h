/* Holds a thread inside a copy: a page registered with userfaultfd, whose
 * first read faults and waits until the test fills it. Lets a test stop a
 * sender between claiming a slot and publishing it, deterministically. */
#ifndef URSA_TEST_UFFD_HOLD_H
#define URSA_TEST_UFFD_HOLD_H

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct uffd_hold {
    int fd;
    long pg;
    unsigned char *page; /* copying from it blocks until uffd_hold_release */
} uffd_hold_t;

/* True, or false when userfaultfd is unavailable (the caller skips). */
static inline bool uffd_hold_open(uffd_hold_t *h)
{
    h->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    struct uffdio_api api = {.api = UFFD_API};
    if (h->fd < 0 || ioctl(h->fd, UFFDIO_API, &api) != 0) {
        print_message("userfaultfd unavailable (%s): test skipped\n", strerror(errno));
        if (h->fd >= 0)
            close(h->fd);
        return false;
    }
    h->pg = sysconf(_SC_PAGESIZE);
    h->page = mmap(NULL, (size_t)h->pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
    assert_true(h->page != MAP_FAILED);
    struct uffdio_register reg = {.range = {(uintptr_t)h->page, (uint64_t)h->pg},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    assert_int_equal(ioctl(h->fd, UFFDIO_REGISTER, &reg), 0);
    return true;
}

/* Returns once a thread is blocked reading the page. */
static inline void uffd_hold_wait_fault(uffd_hold_t *h)
{
    struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, (int)(test_hang_guard() / URSA_MSEC(1))), 1);
    struct uffd_msg msg;
    assert_int_equal(read(h->fd, &msg, sizeof msg), (ssize_t)sizeof msg);
    assert_int_equal(msg.event, UFFD_EVENT_PAGEFAULT);
}

/* Fills the page with `byte`: the blocked thread goes on. */
static inline void uffd_hold_release(uffd_hold_t *h, unsigned char byte)
{
    static unsigned char src[1 << 16];
    memset(src, byte, (size_t)h->pg);
    struct uffdio_copy cp = {.dst = (uintptr_t)h->page, .src = (uintptr_t)src,
                             .len = (uint64_t)h->pg};
    assert_int_equal(ioctl(h->fd, UFFDIO_COPY, &cp), 0);
}

static inline void uffd_hold_close(uffd_hold_t *h)
{
    munmap(h->page, (size_t)h->pg);
    close(h->fd);
}

#endif
