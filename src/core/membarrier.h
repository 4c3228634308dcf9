/* The asymmetric fence: membarrier(PRIVATE_EXPEDITED) makes every running
 * thread of the process execute a full barrier. A fast path that would
 * need a StoreLoad fence on every call (a biased lock's reader, a biased
 * channel's sender) uses a compiler fence instead, and the rare side that
 * revokes the bias pays for the ordering with this call. */
#ifndef URSA_CORE_MEMBARRIER_H
#define URSA_CORE_MEMBARRIER_H

#include <stdbool.h>

/* True if this kernel has private expedited membarrier and the process is
 * registered for it (registration happens at the first call). */
bool ursa__membarrier_usable(void);

/* A full barrier on every thread of the process. Only after
 * ursa__membarrier_usable() returned true. */
void ursa__membarrier(void);

#endif
