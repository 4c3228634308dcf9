/* Thread parker on a futex: how a plain thread (no task) waits. */
#ifndef URSA_CORE_PARK_H
#define URSA_CORE_PARK_H

#include <stdatomic.h>

#include "clock.h" /* deadlines are on ursa__mono_now's clock */

typedef struct ursa__parker {
    _Atomic uint32_t word; /* EMPTY, NOTIFIED, or PARKED */
} ursa__parker_t;

/* Sleeps until unparked or the deadline (CLOCK_MONOTONIC) passes; may
 * return spuriously. Consumes a pending unpark. */
void ursa__park(ursa__parker_t *p, ursa_time_t deadline);

/* Wakes the parked thread, or makes its next park return at once. Any
 * thread; a waker function (ctx = the parker). */
void ursa__unpark(void *parker);

#endif
