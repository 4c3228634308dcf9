/* ursa — asynchronous I/O for tasks, on the worker's io_uring.
 *
 * Each call suspends the calling task until the operation completes, the
 * deadline passes, or the task is cancelled; a pending operation is then
 * cancelled in the kernel (IORING_OP_ASYNC_CANCEL) and the call waits for
 * the kernel to let go of the buffer. If the operation completed anyway,
 * its result is returned (an accepted socket is never lost). Without
 * io_uring (docs/runtime.md, "Without io_uring") a task's call tries
 * without blocking, then waits for readiness on its worker's watch list
 * (the worker runs other tasks meanwhile) and tries again. Off-task the
 * calls block the thread the same way, waiting with ppoll(2).
 *
 * The same in every context (a task or a plain thread):
 * - Return: the syscall's result (>= 0), or -errno; -EAGAIN (URSA_NOW, not
 *   ready), -ETIMEDOUT, -ECANCELED (the task was cancelled) as for every
 *   wait; -ENOMEM (without io_uring: the worker's watch list could not
 *   grow). A read or write may be short, as with read(2) and write(2).
 * - An expired deadline still tries once: the result if the call can
 *   complete at once, else -ETIMEDOUT.
 * - Checked first, nothing done: fd < 0, a NULL buffer with len > 0, an
 *   offset below -1, a NULL address (connect): -EINVAL.
 * - A descriptor that is not open: -EBADF.
 * - len 0 (the buffer may then be NULL) never waits: the result of a
 *   0-byte read(2)/write(2), which is 0 for pipes, sockets and files.
 * - An offset on a descriptor that cannot seek (pipe, socket) is ignored.
 * - accept on a descriptor that is not a socket: -ENOTSOCK; on a socket
 *   that is not listening: -EINVAL; both at once, without waiting. */
#ifndef URSA_IO_H
#define URSA_IO_H

#include <sys/socket.h>
#include <sys/types.h>

#include "base.h"

/* offset -1 means the file's current position (pipes, sockets). */
URSA_API ssize_t ursa_read(int fd, void *buf, size_t len, int64_t offset, ursa_time_t deadline);
URSA_API ssize_t ursa_write(int fd, const void *buf, size_t len, int64_t offset,
                            ursa_time_t deadline);
/* Returns the new socket (with `flags`, e.g. SOCK_CLOEXEC). */
URSA_API int ursa_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                         ursa_time_t deadline);
URSA_API int ursa_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                          ursa_time_t deadline);
/* Waits until fd has one of `events` (POLLIN, ...); returns the revents. */
URSA_API int ursa_poll(int fd, short events, ursa_time_t deadline);

#endif
