/* Busy-waiting, and when it may happen: the spin policy in one place.
 *
 * Every busy-wait of the library (an idle worker watching for work, a
 * receiver polling for a producer, a queue lock, a settle or revoke wait for
 * a party a few instructions from done) goes through a spinner of one of the
 * sites below. A spinner pauses only while spinning can pay:
 *
 * - never when the process has no spare CPU: one CPU available, or more
 *   workers (of every live runtime) than CPUs available (the affinity mask,
 *   and the cgroup v2 quota `cpu.max` of the process's cgroup and its
 *   ancestors). The party waited for then needs the very CPU a spin would
 *   burn; the waiter yields it (sched_yield) or parks instead;
 * - only while the party waited for runs, where the caller can tell (an idle
 *   worker spins only while another worker is awake to hand it work);
 * - within an adaptive budget per site: it doubles (up to the site's cap,
 *   about the cost of a kernel sleep and wake, measured as it goes: see
 *   ursa__spin_wake_seen) when a wait ends while
 *   spinning, halves when the budget runs out first, and at zero an
 *   occasional wait probes with a small budget so that it can grow back.
 *
 * Budgets count pauses (ursa__cpu_relax), not time: the caps are converted
 * from nanoseconds once, with the pause's cost measured at start. The sites
 * keep counts (spins, longest wait, waits refused) that tests read. */
#ifndef URSA_CORE_SPIN_H
#define URSA_CORE_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

static inline void ursa__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The places that busy-wait. */
enum {
    URSA__SPIN_IDLE,   /* an idle worker watching its inbox and the others' queues */
    URSA__SPIN_POLL,   /* a receiver polling for a producer on another thread */
    URSA__SPIN_LOCK,   /* a queue spinlock, a notify or watch lock word */
    URSA__SPIN_SETTLE, /* a waker call or a slot write a few instructions from done */
    URSA__SPIN_REVOKE, /* a bias owner leaving its fast path */
    URSA__SPIN_SITES
};

typedef struct ursa__spin_site {
    const char *name;
    uint32_t cap_ns;         /* the most one wait may spin, in time */
    bool follows_wake;       /* cap_ns rises to twice the measured wake */
    _Atomic uint32_t cap;    /* the cap in pauses (set at start, then as the wake moves) */
    _Atomic uint32_t cap_high; /* the highest cap so far (tests) */
    _Atomic uint32_t cap_own;  /* cap_ns in pauses (set at start) */
    _Atomic uint32_t budget; /* pauses the next wait may spin (adaptive) */
    _Atomic uint32_t probe;  /* waits seen at budget 0, for the probe */
    /* Counts, for tests and curious users (relaxed: statistics). */
    _Atomic uint64_t waits;   /* waits that spun */
    _Atomic uint64_t pauses;  /* pauses spun, all waits */
    _Atomic uint32_t longest; /* the most pauses one wait spun */
    _Atomic uint64_t refused; /* waits that found spinning not allowed */
} ursa__spin_site_t;

extern ursa__spin_site_t ursa__spin_sites[URSA__SPIN_SITES];

/* One busy-wait in progress: ursa__spin_pause() until it returns false,
 * then ursa__spin_end(). Zero-initialise with the site. */
typedef struct ursa__spinner {
    uint32_t left; /* pauses left in this wait */
    uint32_t used; /* pauses spun */
    uint8_t site;
    bool started; /* the budget was read */
    bool spent;   /* the budget ran out before the wait ended */
} ursa__spinner_t;

#define URSA__SPINNER(site_) ((ursa__spinner_t){0, 0, (site_), false, false})

/* Reads the site's budget for a new wait (0 when spinning is not allowed
 * now, or the caller says the party waited for is not running). */
void ursa__spin_begin(ursa__spinner_t *s, bool partner_running);
/* Records how the wait went and adapts the budget. */
void ursa__spin_finish(ursa__spinner_t *s);

/* A sleeping worker ran ns after the kick that woke it (rt/idle.c): the
 * kernel's wake latency, averaged, which the sites that wait for another
 * thread's wake chain follow (spin.c). */
void ursa__spin_wake_seen(int64_t ns);
/* The average wake latency measured so far, in ns (0: none yet). */
uint32_t ursa__spin_wake_ns(void);

/* Whether spinning may pay at all now (more than one CPU available and
 * no more workers than CPUs): URSA__SPIN_YES / URSA__SPIN_NO, or 0 until
 * first computed. */
enum { URSA__SPIN_YES = 1, URSA__SPIN_NO = 2 };
extern _Atomic uint8_t ursa__spin_state;
bool ursa__spin_allowed_slow(void);

static inline bool ursa__spin_allowed(void)
{
    /* relaxed: a hint; a stale value costs at most one wait's budget. */
    uint8_t s = atomic_load_explicit(&ursa__spin_state, memory_order_relaxed);
    if (__builtin_expect(s == URSA__SPIN_YES, 1))
        return true;
    return s == 0 && ursa__spin_allowed_slow();
}

/* n pauses of the wait's budget: true if spun, false once the budget is
 * spent (the caller then yields the CPU or parks). The first call reads
 * the budget, assuming the party waited for runs. */
static inline bool ursa__spin_pause_n(ursa__spinner_t *s, uint32_t n)
{
    if (__builtin_expect(!s->started, 0))
        ursa__spin_begin(s, true);
    if (s->left < n) {
        s->left = 0;
        s->spent = true;
        return false;
    }
    s->left -= n;
    s->used += n;
    while (n--)
        ursa__cpu_relax();
    return true;
}

static inline bool ursa__spin_pause(ursa__spinner_t *s)
{
    return ursa__spin_pause_n(s, 1);
}

/* One step of waiting out a party that holds something for a few
 * instructions: a pause while the budget lasts, then the CPU is yielded
 * (the party may be a preempted thread). */
static inline void ursa__spin_backoff(ursa__spinner_t *s)
{
    if (!ursa__spin_pause(s))
        sched_yield();
}

/* The wait is over. */
static inline void ursa__spin_end(ursa__spinner_t *s)
{
    if (s->started)
        ursa__spin_finish(s);
}

/* Worker threads of live runtimes (one per worker, or fewer when threads
 * host several: `threads`): a runtime adds its count when made, takes it
 * back when freed. */
void ursa__spin_workers_add(int n);
/* Re-reads the CPUs available (affinity, cgroup quota) if the last look is
 * older than 100 ms; now is ursa__mono_now(). Any thread. */
void ursa__spin_refresh(int64_t now);
/* CPUs available to the calling thread now (at least 1). */
unsigned ursa__cpus_available(void);

/* ---- the queue spinlock: critical sections of a few pointer updates ---- */

void ursa__spin_lock_slow(_Atomic uint32_t *l);

static inline void ursa__spin_lock(_Atomic uint32_t *l)
{
    /* acquire: the queue writes of the previous holder are visible. */
    if (__builtin_expect(!atomic_exchange_explicit(l, 1, memory_order_acquire), 1))
        return;
    ursa__spin_lock_slow(l);
}

static inline void ursa__spin_unlock(_Atomic uint32_t *l)
{
    /* release: publishes our queue writes to the next holder. */
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif
