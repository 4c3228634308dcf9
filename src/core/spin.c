/* The spin policy (core/spin.h): CPUs available, the workers that compete
 * for them, and each site's adaptive budget. */
#include "spin.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

/* Caps: about one kernel sleep and wake (a few µs here, measured with
 * bench/floor) for the waits that would otherwise park; the old fixed
 * windows for the idle worker (20 µs) and the receiver poll (50 µs), which
 * now only bound the adaptive budget. */
ursa__spin_site_t ursa__spin_sites[URSA__SPIN_SITES] = {
    [URSA__SPIN_IDLE] = {.name = "idle worker", .cap_ns = 20000, .follows_wake = true},
    [URSA__SPIN_POLL] = {.name = "receiver poll", .cap_ns = 50000, .follows_wake = true},
    [URSA__SPIN_LOCK] = {.name = "queue lock", .cap_ns = 4000},
    [URSA__SPIN_SETTLE] = {.name = "settle", .cap_ns = 4000},
    [URSA__SPIN_REVOKE] = {.name = "bias revoke", .cap_ns = 4000},
};

/* A budget that fell to 0 lets one wait in PROBE_EVERY spin the whole cap
 * (a probe shorter than the partner's usual answer could never succeed),
 * so that it can grow back: on average a failing site spends cap_ns/16 per
 * wait (a cap raised by a slow wake probes as much less often). A budget
 * halved below MIN_PAUSES is 0. */
#define PROBE_EVERY 16u
#define MIN_PAUSES 32u
#define REFRESH_NS 100000000 /* 100 ms */

static _Atomic int workers;      /* of live runtimes */
static _Atomic unsigned cpus = 1; /* available, at the last refresh */
_Atomic uint8_t ursa__spin_state; /* spinning may pay (see spin.h) */
static _Atomic int64_t last_refresh;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static double pause_ns = 1; /* one pause's cost, measured at start */

/* The wake latency (ursa__spin_wake_seen): samples above WAKE_SAMPLE_MAX
 * are not a wake (a preempted sleeper, a stale stamp); a cap that follows
 * the wake stays below WAKE_CAP_MAX. */
#define WAKE_SAMPLE_MAX 1000000 /* 1 ms */
#define WAKE_CAP_MAX 200000     /* 200 µs */
static _Atomic uint32_t wake_avg; /* ns, 0 until the first sample */

/* ---- CPUs available ---- */

static unsigned affinity_cpus(void)
{
    cpu_set_t *set = CPU_ALLOC(4096);
    size_t size = CPU_ALLOC_SIZE(4096);
    unsigned n = 0;
    if (set && sched_getaffinity(0, size, set) == 0)
        n = (unsigned)CPU_COUNT_S(size, set);
    CPU_FREE(set);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    return n;
}

/* ceil(quota / period) of one cgroup v2 directory's cpu.max, or 0 for
 * "max" (no limit) or no file. */
static unsigned cpu_max_at(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char quota[32] = {0};
    unsigned long long period = 0;
    int got = fscanf(f, "%31s %llu", quota, &period);
    fclose(f);
    if (got != 2 || strcmp(quota, "max") == 0 || period == 0)
        return 0;
    unsigned long long q = strtoull(quota, NULL, 10);
    unsigned long long n = (q + period - 1) / period;
    return n == 0 ? 1 : (unsigned)(n > 4096 ? 4096 : n);
}

/* The tightest cpu.max quota on the path from our cgroup v2 to the root,
 * or 0 for none. */
static unsigned cgroup_cpus(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    char line[4096], dir[4096] = {0};
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) == 0) { /* the v2 hierarchy */
            snprintf(dir, sizeof dir, "%s", line + 3);
            dir[strcspn(dir, "\n")] = 0;
            break;
        }
    }
    fclose(f);
    unsigned best = 0;
    while (dir[0] == '/') { /* the root of a namespace ("/") may have a quota too */
        unsigned n = cpu_max_at(dir);
        if (n && (!best || n < best))
            best = n;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            break;
        *slash = 0; /* up one level */
    }
    return best;
}

unsigned ursa__cpus_available(void)
{
    unsigned n = affinity_cpus(), q = cgroup_cpus();
    return q && q < n ? q : n;
}

/* ---- whether spinning may pay ---- */

static void recompute(void)
{
    unsigned c = atomic_load_explicit(&cpus, memory_order_relaxed);
    int w = atomic_load_explicit(&workers, memory_order_relaxed);
    /* relaxed: a hint read by every spinner; a stale value costs at most
     * one wait's budget. */
    atomic_store_explicit(&ursa__spin_state, c > 1 && w <= (int)c ? URSA__SPIN_YES : URSA__SPIN_NO,
                          memory_order_relaxed);
}

static void refresh_now(int64_t now)
{
    atomic_store_explicit(&last_refresh, now, memory_order_relaxed); /* relaxed: a hint */
    atomic_store_explicit(&cpus, ursa__cpus_available(), memory_order_relaxed); /* as above */
    recompute();
}

static uint32_t to_pauses(uint32_t ns)
{
    double c = ns / pause_ns;
    return c < 64 ? 64 : c > (1u << 22) ? (1u << 22) : (uint32_t)c;
}

/* ns per pause, measured once: the caps are converted to pauses with it. */
static void calibrate(void)
{
    enum { N = 512 };
    int64_t best = INT64_MAX;
    for (int round = 0; round < 3; round++) {
        int64_t t0 = ursa__mono_now();
        for (int i = 0; i < N; i++)
            ursa__cpu_relax();
        int64_t d = ursa__mono_now() - t0;
        if (d < best)
            best = d;
    }
    double ns = (double)best / N;
    pause_ns = ns < 0.5 ? 0.5 : ns;
    for (int i = 0; i < URSA__SPIN_SITES; i++) {
        ursa__spin_site_t *s = &ursa__spin_sites[i];
        uint32_t cap = to_pauses(s->cap_ns);
        /* relaxed: read by spinners as a bound; set before the first. */
        atomic_store_explicit(&s->cap_own, cap, memory_order_relaxed);
        atomic_store_explicit(&s->cap, cap, memory_order_relaxed);
        atomic_store_explicit(&s->cap_high, cap, memory_order_relaxed);
        atomic_store_explicit(&s->budget, cap, memory_order_relaxed);
    }
}

static void init(void)
{
    calibrate();
    refresh_now(ursa__mono_now());
}

bool ursa__spin_allowed_slow(void)
{
    pthread_once(&init_once, init);
    /* relaxed: see recompute. */
    return atomic_load_explicit(&ursa__spin_state, memory_order_relaxed) == URSA__SPIN_YES;
}

void ursa__spin_workers_add(int n)
{
    pthread_once(&init_once, init);
    atomic_fetch_add_explicit(&workers, n, memory_order_relaxed); /* relaxed: a count */
    refresh_now(ursa__mono_now());
}

void ursa__spin_refresh(int64_t now)
{
    /* relaxed: whoever wins the exchange refreshes; a hint. */
    int64_t last = atomic_load_explicit(&last_refresh, memory_order_relaxed);
    if (now - last < REFRESH_NS ||
        !atomic_compare_exchange_strong_explicit(&last_refresh, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    refresh_now(now);
}

/* ---- the wake latency ---- */

/* A site that waits for another thread's wake chain (an idle worker for a
 * hand-off, a receiver for a send) spins up to twice the wake latency, and
 * at least its own cap_ns. The partner it waits for may have been asleep
 * itself, and answers no sooner than its own wake: with a cap below that,
 * no spin could ever pay, the budget would stay at zero and every hop of
 * a request and its reply would cost two kernel wakes (40 µs each on a VM
 * whose idle vCPU halts, measured by bench/floor; a few µs on bare metal,
 * where the cap stays at cap_ns). Spinning up to a wake's cost before
 * parking loses at most about twice what the better choice would have
 * cost, and the adaptive budget still shrinks where spins do not pay. */
void ursa__spin_wake_seen(int64_t ns)
{
    if (ns <= 0 || ns > WAKE_SAMPLE_MAX)
        return;
    pthread_once(&init_once, init);
    /* relaxed: a hint; racing updates lose a sample, which is harmless. */
    uint32_t avg = atomic_load_explicit(&wake_avg, memory_order_relaxed);
    uint32_t next = avg ? (uint32_t)(avg + ((int64_t)ns - avg) / 8) : (uint32_t)ns;
    atomic_store_explicit(&wake_avg, next, memory_order_relaxed);
    uint32_t want_ns = 2 * next > WAKE_CAP_MAX ? WAKE_CAP_MAX : 2 * next;
    for (int i = 0; i < URSA__SPIN_SITES; i++) {
        ursa__spin_site_t *s = &ursa__spin_sites[i];
        if (!s->follows_wake)
            continue;
        bool own = want_ns <= s->cap_ns;
        uint32_t cap = to_pauses(own ? s->cap_ns : want_ns);
        /* relaxed: bounds read by spinners. Written only when the cap
         * moves by an eighth (or back to the site's own): spinners read
         * this line, and a store on every wake would move it between CPUs
         * for nothing. */
        uint32_t old = atomic_load_explicit(&s->cap, memory_order_relaxed);
        if (cap == old || (!own && (cap > old ? cap - old : old - cap) <= old / 8))
            continue;
        atomic_store_explicit(&s->cap, cap, memory_order_relaxed);
        if (cap > atomic_load_explicit(&s->cap_high, memory_order_relaxed))
            atomic_store_explicit(&s->cap_high, cap, memory_order_relaxed);
        if (atomic_load_explicit(&s->budget, memory_order_relaxed) > cap)
            atomic_store_explicit(&s->budget, cap, memory_order_relaxed);
    }
}

uint32_t ursa__spin_wake_ns(void)
{
    return atomic_load_explicit(&wake_avg, memory_order_relaxed); /* relaxed: a hint */
}

/* ---- one wait's budget ---- */

void ursa__spin_begin(ursa__spinner_t *s, bool partner_running)
{
    ursa__spin_site_t *site = &ursa__spin_sites[s->site];
    s->started = true;
    s->left = 0;
    if (!partner_running)
        return;
    if (!ursa__spin_allowed()) {
        atomic_fetch_add_explicit(&site->refused, 1, memory_order_relaxed); /* relaxed: a count */
        return;
    }
    /* relaxed: budgets are hints; any value read is a valid budget. */
    uint32_t b = atomic_load_explicit(&site->budget, memory_order_relaxed);
    if (b == 0) {
        /* A cap raised by a slow wake probes less often, so that a
         * failing site spends no more time per wait than with its own cap
         * (a loaded host makes wakes slow and spins fail: the cap's rise
         * must not make it burn more). relaxed: hints and a counter. */
        uint32_t cap = atomic_load_explicit(&site->cap, memory_order_relaxed);
        uint32_t own = atomic_load_explicit(&site->cap_own, memory_order_relaxed);
        uint32_t every = PROBE_EVERY * (own && cap > own ? cap / own : 1);
        if (atomic_fetch_add_explicit(&site->probe, 1, memory_order_relaxed) % every == 0)
            b = cap;
    }
    s->left = b;
}

void ursa__spin_finish(ursa__spinner_t *s)
{
    ursa__spin_site_t *site = &ursa__spin_sites[s->site];
    if (s->used == 0)
        return; /* no pause (none needed, or none allowed): nothing learnt */
    /* relaxed throughout: statistics and hints. */
    atomic_fetch_add_explicit(&site->waits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&site->pauses, s->used, memory_order_relaxed);
    uint32_t longest = atomic_load_explicit(&site->longest, memory_order_relaxed);
    while (s->used > longest &&
           !atomic_compare_exchange_weak_explicit(&site->longest, &longest, s->used,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    uint32_t cap = atomic_load_explicit(&site->cap, memory_order_relaxed);
    uint32_t b = atomic_load_explicit(&site->budget, memory_order_relaxed);
    uint32_t nb;
    if (s->spent) {
        nb = b / 2; /* spinning did not pay: park sooner next time */
        if (nb < MIN_PAUSES)
            nb = 0;
        ursa__spin_refresh(ursa__mono_now()); /* maybe the CPUs changed */
    } else {
        /* It paid: room for twice what this wait needed, and more. */
        nb = 2 * (s->used > b ? s->used : b);
        if (nb < 2 * MIN_PAUSES)
            nb = 2 * MIN_PAUSES;
        if (nb > cap)
            nb = cap;
    }
    if (nb != b)
        atomic_store_explicit(&site->budget, nb, memory_order_relaxed);
}

/* ---- the queue spinlock ---- */

void ursa__spin_lock_slow(_Atomic uint32_t *l)
{
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_LOCK);
    for (;;) {
        /* relaxed: the exchange below does the acquire. */
        while (atomic_load_explicit(l, memory_order_relaxed))
            ursa__spin_backoff(&s);
        /* acquire: the queue writes of the previous holder are visible. */
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            break;
    }
    ursa__spin_end(&s);
}
