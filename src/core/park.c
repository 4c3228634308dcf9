#include "park.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The parker's word. */
enum { URSA__PARK_EMPTY = 0, URSA__PARK_NOTIFIED = 1, URSA__PARK_PARKED = 2 };

void ursa__park(ursa__parker_t *p, ursa_time_t deadline)
{
    /* acquire: what the unparker wrote before unparking is visible. */
    if (atomic_exchange_explicit(&p->word, URSA__PARK_EMPTY, memory_order_acquire) ==
        URSA__PARK_NOTIFIED)
        return;
    uint32_t expect = URSA__PARK_EMPTY;
    if (!atomic_compare_exchange_strong_explicit(&p->word, &expect, URSA__PARK_PARKED,
                                                 memory_order_acquire, memory_order_acquire)) {
        atomic_store_explicit(&p->word, URSA__PARK_EMPTY, memory_order_relaxed); /* was NOTIFIED */
        return;
    }
    struct timespec ts, *tsp = NULL;
    if (deadline != URSA_NEVER) {
        /* An absolute time; any before 0 is as past as 0 is. */
        ts = ursa__timespec(deadline < 0 ? 0 : deadline);
        tsp = &ts;
    }
    /* Absolute CLOCK_MONOTONIC timeout: FUTEX_WAIT_BITSET. */
    syscall(SYS_futex, &p->word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, URSA__PARK_PARKED, tsp,
            NULL, FUTEX_BITSET_MATCH_ANY);
    /* acquire: pairs with the unparker's release exchange. */
    atomic_exchange_explicit(&p->word, URSA__PARK_EMPTY, memory_order_acquire);
}

void ursa__unpark(void *parker)
{
    ursa__parker_t *p = parker;
    /* release: our writes before the wake are visible to the woken thread. */
    if (atomic_exchange_explicit(&p->word, URSA__PARK_NOTIFIED, memory_order_release) ==
        URSA__PARK_PARKED)
        syscall(SYS_futex, &p->word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}
