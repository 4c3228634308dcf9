#include "lockinfo.h"

#include <stdio.h>
#include <stdlib.h>

#if URSA_LOCK_ORDER /* the ledger records locks only in these builds */
int ursa__lock_order_check(ursa__ctx_t *c, const ursa__lockinfo_t *li, const char *what,
                           const ursa_site_t *site)
{
    const ursa__ledger_t *l = &c->ledger;
    for (uint32_t i = 0; i < l->top; i++) {
        const ursa__ledger_rec_t *r = &l->recs[i];
        const ursa__lockinfo_t *held = r->lock;
        if (!ursa__ledger_rec_used(r) || !held || !held->rank || held->rank < li->rank)
            continue;
        char msg[512];
        snprintf(msg, sizeof msg,
                 "lock order violation: acquiring %s '%s' (rank %u) while holding %s '%s' "
                 "(rank %u) taken at %s:%d",
                 what, li->name ? li->name : "?", li->rank, ursa__ledger_rec_kind(r)->name,
                 held->name ? held->name : "?", held->rank, r->site ? r->site->file : "?",
                 r->site ? r->site->line : 0);
        ursa__report(msg, site, false);
        return -EDEADLK;
    }
    return 0;
}
#endif

#if URSA_LOCK_METRICS
#define HIST_BUCKETS 496

/* One lock's counters, out of line so that the lock's layout is the same
 * in every build (docs/abi.md). */
struct ursa__lock_metrics {
    _Atomic uint64_t acquisitions, contentions;
    _Atomic uint64_t wait_total, wait_max, hold_total, hold_max;
    _Atomic uint32_t wait_hist[HIST_BUCKETS], hold_hist[HIST_BUCKETS];
};

/* The lock's metrics, allocated at its first sample; NULL if that
 * allocation failed (the sample is dropped: metrics never fail a lock). */
static struct ursa__lock_metrics *metrics_of(ursa__lockinfo_t *li)
{
    /* acquire: pairs with the release of the CAS below, so the zeroed
     * block is seen zeroed. */
    struct ursa__lock_metrics *m = atomic_load_explicit(&li->metrics, memory_order_acquire);
    if (m)
        return m;
    struct ursa__lock_metrics *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return NULL;
    /* acq_rel: release publishes the zeroed block; on failure, acquire
     * sees the winner's. */
    if (atomic_compare_exchange_strong_explicit(&li->metrics, &m, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);
    return m;
}

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
    struct ursa__lock_metrics *m = metrics_of(li);
    if (!m)
        return;
    /* relaxed: statistics (see sample). */
    atomic_fetch_add_explicit(&m->acquisitions, 1, memory_order_relaxed);
    uint64_t waited = 0;
    if (wait_start) {
        /* relaxed: statistics (see sample). */
        atomic_fetch_add_explicit(&m->contentions, 1, memory_order_relaxed);
        waited = now > wait_start ? (uint64_t)(now - wait_start) : 0;
    }
    sample(&m->wait_total, &m->wait_max, m->wait_hist, waited);
}

void ursa__lockinfo_released(ursa__lockinfo_t *li, ursa_time_t since, ursa_time_t now)
{
    struct ursa__lock_metrics *m = metrics_of(li);
    if (m)
        sample(&m->hold_total, &m->hold_max, m->hold_hist,
               now > since ? (uint64_t)(now - since) : 0);
}

static uint64_t percentile(const _Atomic uint32_t *hist, uint64_t count, unsigned pct)
{
    if (!count)
        return 0;
    uint64_t want = (count * pct + 99) / 100, seen = 0; /* rank ceil(count*pct/100) */
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += atomic_load_explicit(&hist[b], memory_order_relaxed);
        if (seen >= want)
            return bucket_low(b);
    }
    return bucket_low(HIST_BUCKETS - 1);
}
#endif

void ursa__lockinfo_destroy(ursa__lockinfo_t *li)
{
    /* relaxed: destroy races with no user of the lock. */
    free(atomic_exchange_explicit(&li->metrics, NULL, memory_order_relaxed));
}

int ursa__lockinfo_stats(const ursa__lockinfo_t *li, ursa_lock_stats_t *out)
{
#if URSA_LOCK_METRICS
    memset(out, 0, sizeof *out);
    out->name = li->name;
    /* acquire: see metrics_of. A lock never sampled has all zeros. */
    const struct ursa__lock_metrics *m = atomic_load_explicit(&li->metrics, memory_order_acquire);
    if (!m)
        return 0;
    /* relaxed, every load below: a snapshot of statistics. */
    out->acquisitions = atomic_load_explicit(&m->acquisitions, memory_order_relaxed);
    out->contentions = atomic_load_explicit(&m->contentions, memory_order_relaxed);
    out->wait_total_ns = atomic_load_explicit(&m->wait_total, memory_order_relaxed);
    out->wait_max_ns = atomic_load_explicit(&m->wait_max, memory_order_relaxed);
    out->hold_total_ns = atomic_load_explicit(&m->hold_total, memory_order_relaxed);
    out->hold_max_ns = atomic_load_explicit(&m->hold_max, memory_order_relaxed);
    uint64_t holds = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        holds += atomic_load_explicit(&m->hold_hist[b], memory_order_relaxed);
    out->wait_p50_ns = percentile(m->wait_hist, out->acquisitions, 50);
    out->wait_p99_ns = percentile(m->wait_hist, out->acquisitions, 99);
    out->hold_p50_ns = percentile(m->hold_hist, holds, 50);
    out->hold_p99_ns = percentile(m->hold_hist, holds, 99);
    return 0;
#else
    (void)li;
    (void)out;
    return -ENOTSUP;
#endif
}
