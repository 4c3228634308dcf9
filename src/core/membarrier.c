#include "membarrier.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctx.h" /* ursa__report */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool usable; /* written once under probe_once */

static void probe(void)
{
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    usable = q >= 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
             syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

bool ursa__membarrier_usable(void)
{
    pthread_once(&probe_once, probe);
    return usable;
}

void ursa__membarrier(void)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        /* Registered by the probe: cannot fail short of a kernel bug. */
        ursa__report("membarrier failed after registration", NULL, true);
        abort();
    }
}
