/* Names for the error codes ursa returns (include/ursa/base.h). */
#include <string.h>

#include "ursa/base.h"

const char *ursa_strerror(int err)
{
    switch (err) {
    case 0: return "OK";
    case -EAGAIN: return "EAGAIN: would block";
    case -ETIMEDOUT: return "ETIMEDOUT: deadline passed";
    case -ECANCELED: return "ECANCELED: cancelled";
    case -EPIPE: return "EPIPE: closed";
    case -EOVERFLOW: return "EOVERFLOW: receiver lagged";
    case -EOWNERDEAD: return "EOWNERDEAD: previous owner died holding it (poisoned)";
    case -EINVAL: return "EINVAL: invalid argument";
    case -ENOMEM: return "ENOMEM: out of memory";
    case -EDEADLK: return "EDEADLK: deadlock";
    case -EBUSY: return "EBUSY: in use";
    case -EPERM: return "EPERM: not the owner";
    case -EINPROGRESS: return "EINPROGRESS: wait queued";
    case -ENOLCK: return "ENOLCK: lease lost (expired or taken over)";
    case -ECONNRESET: return "ECONNRESET: connection to the server lost";
    case -EIO: return "EIO: server error";
    default:
        /* errno values are 1..4095 (the kernel's MAX_ERRNO); anything else,
         * INT_MIN included (its negation overflows), is not one. */
        return err < 0 && err >= -4095 ? strerror(-err) : "not an error code";
    }
}
