/* The monotonic clock every deadline is measured on (CLOCK_MONOTONIC, ns).
 * The caller's clock, virtual in deterministic mode, is ursa__ctx_now()
 * (core/ctx.h). */
#ifndef URSA_CORE_CLOCK_H
#define URSA_CORE_CLOCK_H

#include <time.h>

#include "ursa/base.h"

ursa_time_t ursa__mono_now(void);

/* How long until `deadline`, seen at `now` (a clock reading, >= 0): 0 once
 * it has passed. Every deadline is valid input, INT64_MIN included: this
 * is the one place a deadline becomes a duration, and it cannot overflow
 * (deadline > now >= 0). */
static inline ursa_time_t ursa__time_left(ursa_time_t deadline, ursa_time_t now)
{
    return deadline <= now ? 0 : deadline - now;
}

/* A duration (ns, >= 0) as a timespec, for ppoll and the like: exact, no
 * rounding to milliseconds and no int to overflow. */
static inline struct timespec ursa__timespec(ursa_time_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

#endif
