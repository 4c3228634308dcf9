/* A small spinlock for wait queues: critical sections are a few pointer
 * updates, so spinning beats sleeping; after a while we yield the CPU in
 * case the holder is a preempted plain thread. */
#ifndef URSA_CORE_SPIN_H
#define URSA_CORE_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

static inline void ursa__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void ursa__spin_lock(_Atomic uint32_t *l)
{
    for (unsigned spins = 0;; spins++) {
        /* acquire: the queue writes of the previous holder are visible. */
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins > 256)
                sched_yield();
            else
                ursa__cpu_relax();
        }
    }
}

static inline void ursa__spin_unlock(_Atomic uint32_t *l)
{
    /* release: publishes our queue writes to the next holder. */
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif
