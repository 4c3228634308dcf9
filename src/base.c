/* Time and error names. */
#include <string.h>

#include "core/ctx.h"

ursa_time_t ursa_now(void)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    return c && c->vclock ? *c->vclock : ursa__mono_now();
}

ursa_time_t ursa_deadline_in(ursa_time_t ns)
{
    ursa_time_t now = ursa_now();
    if (ns <= 0)
        return now; /* already expired; never URSA_NOW (clocks start above 0) */
    return ns > URSA_NEVER - now ? URSA_NEVER : now + ns;
}

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
    default: return err < 0 ? strerror(-err) : "not an error code";
    }
}
