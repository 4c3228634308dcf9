/* The monotonic clock every deadline is measured on (CLOCK_MONOTONIC, ns).
 * The caller's clock, virtual in deterministic mode, is ursa__ctx_now()
 * (core/ctx.h). */
#ifndef URSA_CORE_CLOCK_H
#define URSA_CORE_CLOCK_H

#include "ursa/base.h"

ursa_time_t ursa__mono_now(void);

#endif
