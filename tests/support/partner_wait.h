/* For tests whose plain threads race each other: one step of a thread's
 * busy-wait for its partner thread. Uses the library's internal spin
 * policy (src/ on the include path). */
#ifndef URSA_TEST_PARTNER_WAIT_H
#define URSA_TEST_PARTNER_WAIT_H

#include <sched.h>

#include "core/spin.h"

/* A pause while there is a spare CPU (keeps the race the test wants
 * tight), else the CPU goes to the partner. Under taskset -c 0 a bare spin
 * ends only when the kernel preempts it, ~4 ms a round: test_oneshot took
 * ~400 s and test_mpsc over 300 s there. */
static inline void partner_wait_step(void)
{
    if (ursa__spin_allowed())
        ursa__cpu_relax();
    else
        sched_yield();
}

#endif
