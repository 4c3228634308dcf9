/* For tests whose plain threads race each other: one step of a thread's
 * busy-wait for its partner thread. Uses the library's internal spin
 * policy (src/ on the include path). */
#ifndef URSA_TEST_PARTNER_WAIT_H
#define URSA_TEST_PARTNER_WAIT_H

#include <sched.h>

#include "core/spin.h"

/* Steps of a wait that pause between two yields of the CPU. */
#define PARTNER_WAIT_PAUSES 16u

/* A pause while there is a spare CPU (keeps the race the test wants
 * tight), else the CPU goes to the partner; and every PARTNER_WAIT_PAUSES
 * steps it goes to the partner anyway. A spare CPU in the affinity mask
 * does not mean the partner has one: on a loaded machine both threads may
 * share a CPU, and a pure spin then holds it until the kernel preempts it
 * (~20 ms a round: test_oneshot_race's lifetime test took 20 s for 1000
 * rounds on two loaded CPUs, 0.5 s with this yield, 7 ms under taskset -c
 * 0 where nothing spins). Under taskset -c 0 a bare spin took test_oneshot
 * ~400 s and test_mpsc over 300 s. */
static inline void partner_wait_step(void)
{
    static __thread unsigned steps;
    if (ursa__spin_allowed() && ++steps % PARTNER_WAIT_PAUSES != 0)
        ursa__cpu_relax();
    else
        sched_yield();
}

#endif
