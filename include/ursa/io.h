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
 * Every call here is phase 1 (a wait; no hold follows), the same in every
 * context (a task or a plain thread), and returns:
 *   n >= 0      the syscall's result (a read or write may be short, as
 *               with read(2) and write(2))
 *   -EAGAIN     deadline is URSA_NOW and the operation is not ready
 *   -ETIMEDOUT  the deadline passed first (an expired deadline still tries
 *               once: the result if the call can complete at once)
 *   -ECANCELED  the calling task was cancelled first
 *   -ENOMEM     without io_uring: the worker's watch list could not grow
 *   -EINVAL     checked first, nothing done: fd < 0, a NULL buffer with
 *               len > 0, an offset below -1, a NULL address (connect);
 *               accept on a socket that is not listening (without waiting)
 *   -EBADF      a descriptor that is not open
 *   -ENOTSOCK   accept on a descriptor that is not a socket (without
 *               waiting)
 *   -errno      the syscall's error
 * len 0 (the buffer may then be NULL) never waits: the result of a 0-byte
 * read(2)/write(2), which is 0 for pipes, sockets and files. An offset on
 * a descriptor that cannot seek (pipe, socket) is ignored. */
#ifndef URSA_IO_H
#define URSA_IO_H

#include <sys/socket.h>
#include <sys/types.h>

#include "base.h"

URSA_EXTERN_C_BEGIN

/* Phase 1 (wait): read / write len bytes at offset (-1: the file's
 * current position, for pipes and sockets). */
URSA_API ssize_t ursa_read(int fd, void *buf, size_t len, int64_t offset, ursa_time_t deadline);
URSA_API ssize_t ursa_write(int fd, const void *buf, size_t len, int64_t offset,
                            ursa_time_t deadline);
/* Phase 1 (wait): accepts a connection: the new socket (with `flags`,
 * e.g. SOCK_CLOEXEC). */
URSA_API int ursa_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                         ursa_time_t deadline);
/* Phase 1 (wait): connects fd: 0 once connected. */
URSA_API int ursa_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                          ursa_time_t deadline);
/* Phase 1 (wait): waits until fd has one of `events` (POLLIN, ...): the
 * revents. */
URSA_API int ursa_poll(int fd, short events, ursa_time_t deadline);

URSA_EXTERN_C_END

#endif
