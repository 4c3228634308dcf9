#include "lockinfo.h"

#include <stdio.h>

int ursa__lock_order_check(ursa__ctx_t *c, const ursa__lockinfo_t *li, const char *what,
                           const ursa_site_t *site)
{
    const ursa__ledger_t *l = &c->ledger;
    for (uint32_t i = 0; i < l->top; i++) {
        const ursa__ledger_rec_t *r = &l->recs[i];
        const ursa__lockinfo_t *held = r->lock;
        if (!r->hold || !held || !held->rank || held->rank < li->rank)
            continue;
        char msg[512];
        snprintf(msg, sizeof msg,
                 "lock order violation: acquiring %s '%s' (rank %u) while holding %s '%s' "
                 "(rank %u) taken at %s:%d",
                 what, li->name ? li->name : "?", li->rank, r->kind->name,
                 held->name ? held->name : "?", held->rank, r->site ? r->site->file : "?",
                 r->site ? r->site->line : 0);
        ursa__report(msg, site, false);
        return -EDEADLK;
    }
    return 0;
}

#if URSA_LOCK_METRICS
/* Log-linear buckets: 0..15 exact, then 8 per power of two. */
static unsigned bucket(uint64_t v)
{
    if (v < 16)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (msb - 3)) & 7u;
    return 16 + (msb - 4) * 8 + sub;
}

static uint64_t bucket_low(unsigned b)
{
    if (b < 16)
        return b;
    unsigned msb = 4 + (b - 16) / 8, sub = (b - 16) % 8;
    return ((uint64_t)1 << msb) | ((uint64_t)sub << (msb - 3));
}

/* relaxed everywhere: statistics, read as a snapshot, order nothing. */
static void sample(_Atomic uint64_t *total, _Atomic uint64_t *max, _Atomic uint32_t *hist,
                   uint64_t v)
{
    atomic_fetch_add_explicit(total, v, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(max, memory_order_relaxed);
    while (v > m && !atomic_compare_exchange_weak_explicit(max, &m, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
    atomic_fetch_add_explicit(&hist[bucket(v)], 1, memory_order_relaxed);
}

void ursa__lockinfo_acquired(ursa__lockinfo_t *li, ursa_time_t wait_start, ursa_time_t now)
{
    atomic_fetch_add_explicit(&li->acquisitions, 1, memory_order_relaxed);
    uint64_t waited = 0;
    if (wait_start) {
        atomic_fetch_add_explicit(&li->contentions, 1, memory_order_relaxed);
        waited = now > wait_start ? (uint64_t)(now - wait_start) : 0;
    }
    sample(&li->wait_total, &li->wait_max, li->wait_hist, waited);
}

void ursa__lockinfo_released(ursa__lockinfo_t *li, ursa_time_t since, ursa_time_t now)
{
    sample(&li->hold_total, &li->hold_max, li->hold_hist,
           now > since ? (uint64_t)(now - since) : 0);
}

static uint64_t percentile(const _Atomic uint32_t *hist, uint64_t count, unsigned pct)
{
    if (!count)
        return 0;
    uint64_t want = (count * pct + 99) / 100, seen = 0; /* rank ceil(count*pct/100) */
    for (unsigned b = 0; b < URSA__HIST_BUCKETS; b++) {
        seen += atomic_load_explicit(&hist[b], memory_order_relaxed);
        if (seen >= want)
            return bucket_low(b);
    }
    return bucket_low(URSA__HIST_BUCKETS - 1);
}
#endif

int ursa__lockinfo_stats(const ursa__lockinfo_t *li, ursa_lock_stats_t *out)
{
#if URSA_LOCK_METRICS
    memset(out, 0, sizeof *out);
    out->name = li->name;
    out->acquisitions = atomic_load_explicit(&li->acquisitions, memory_order_relaxed);
    out->contentions = atomic_load_explicit(&li->contentions, memory_order_relaxed);
    out->wait_total_ns = atomic_load_explicit(&li->wait_total, memory_order_relaxed);
    out->wait_max_ns = atomic_load_explicit(&li->wait_max, memory_order_relaxed);
    out->hold_total_ns = atomic_load_explicit(&li->hold_total, memory_order_relaxed);
    out->hold_max_ns = atomic_load_explicit(&li->hold_max, memory_order_relaxed);
    uint64_t holds = 0;
    for (unsigned b = 0; b < URSA__HIST_BUCKETS; b++)
        holds += atomic_load_explicit(&li->hold_hist[b], memory_order_relaxed);
    out->wait_p50_ns = percentile(li->wait_hist, out->acquisitions, 50);
    out->wait_p99_ns = percentile(li->wait_hist, out->acquisitions, 99);
    out->hold_p50_ns = percentile(li->hold_hist, holds, 50);
    out->hold_p99_ns = percentile(li->hold_hist, holds, 99);
    return 0;
#else
    (void)li;
    (void)out;
    return -ENOTSUP;
#endif
}
