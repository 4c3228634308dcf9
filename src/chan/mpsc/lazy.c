/* The mpsc channel's lazy permit return (bounded, with membarrier).
 *
 * The receiver does not return a message's permit to the semaphore: it
 * only advances head. The permits of positions returned..head are owed;
 * a sender whose sema_try fails harvests them (a CAS on `returned` that
 * keeps exactly what it needs, or moves them all into the semaphore). A
 * try never misses owed permits: a move counts itself in `harvesting`
 * between its CAS and the semaphore's release, and a try that found nothing
 * waits that out and looks again (regression
 * test_mpsc_try_send_finds_a_freed_slot). A sender about to sleep must not
 * miss permits owed meanwhile: it counts itself in tx_waiting and queues
 * (WAITERS), then runs membarrier(PRIVATE_EXPEDITED) and harvests; the
 * receiver, after each head store, loads tx_waiting and the semaphore word
 * and returns what is owed if a waiter is queued. membarrier is a full
 * barrier on every thread of the process, so either the receiver's loads
 * come after it (and see the waiter) or its head store came before it (and
 * the harvest sees it): the Dekker pair costs the receiver no fence (until
 * fenced mode, below). Without
 * membarrier (old kernel, seccomp) the receiver returns each permit.
 *
 * Fenced mode. A membarrier interrupts every CPU that runs a thread of the
 * process (about 10-20 µs on a VM, where the IPI exits to the host, and
 * callers serialise on a kernel mutex): fine once per thousand messages,
 * ruinous when senders queue every few dozen (a pipeline whose stage
 * outruns its collector: 12,000 membarriers per million items, a third of
 * the run in the kernel). Once senders have queued URSA__MPSC_FENCE_AFTER
 * times, more than one per URSA__MPSC_FENCE_RATIO messages, the channel
 * switches for good to a fence on each side: the receiver fences after
 * each head store (a few ns), a queued sender fences instead of calling
 * membarrier. The switching sender sets SWITCHING, runs one last
 * membarrier, then sets FENCED; senders keep to membarrier until they see
 * FENCED. The receiver fences in either mode but MEMBARRIER, and reads the
 * mode after its head store: a consume whose mode load preceded that
 * membarrier's barrier on its CPU (a full barrier on each running thread,
 * caused after the caller's entry barrier) had its head store drained by
 * that barrier, visible when the membarrier returns: to the switcher's
 * harvest, and to every sender that later acquires FENCED (the release
 * store of FENCED follows the return) and then fences and harvests. A
 * consume whose load came after the barrier sees SWITCHING or FENCED and
 * fences; its fence pairs with later senders' fences. The switch is for
 * the channel's life, judged on its whole history (tail / queued waits):
 * a channel that had 16 queued sends early may fence on every receive
 * from then on, a few ns each. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "../../core/membarrier.h"
#include "mpsc.h"

/* Lazy permit return and the send bias need membarrier. The environment
 * variable URSA_MPSC_NO_MEMBARRIER forces the fallback (tests run both
 * paths); read once. */
static pthread_once_t mb_once = PTHREAD_ONCE_INIT;
static bool mb_ok;

static void mb_probe(void)
{
    mb_ok = !getenv("URSA_MPSC_NO_MEMBARRIER") && ursa__membarrier_usable();
}

bool ursa__mpsc_lazy_usable(void)
{
    pthread_once(&mb_once, mb_probe);
    return mb_ok;
}

/* Takes the owed permits (positions returned..head): how many. */
static uint64_t owed_take(ursa_mpsc_t *ch)
{
    /* relaxed: the CAS validates it. */
    uint64_t r = atomic_load_explicit(&ch->returned, memory_order_relaxed), h;
    do {
        /* acquire: the receiver's slot frees (seq stores) for these positions. */
        h = atomic_load_explicit(&ch->head, memory_order_acquire);
        if (h == r)
            return 0;
        /* acq_rel: whoever moves returned owns those permits. */
    } while (!atomic_compare_exchange_weak_explicit(&ch->returned, &r, h, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return h - r;
}

/* Takes `keep` owed permits for the caller, or moves every owed permit
 * into the semaphore. Keeping takes exactly `keep` in one CAS, so no
 * surplus sits in our hands where a concurrent try cannot see it; it is
 * done only when that many are owed, nobody is queued (no barging: a
 * waiter that queues later harvests after us and finds the rest) and the
 * channel is open. A move holds the permits between its CAS and the
 * semaphore's release; it counts itself in `harvesting` meanwhile, which a
 * try that found nothing waits out (ursa__mpsc_lazy_try). True: `keep`
 * permits are the caller's. */
bool ursa__mpsc_harvest(ursa_mpsc_t *ch, uint64_t keep)
{
    /* acquire: a try that finds another harvester's CAS here sees that
     * harvester counted in `harvesting` (see ursa__mpsc_lazy_try). */
    uint64_t r = atomic_load_explicit(&ch->returned, memory_order_acquire);
    /* acquire: the receiver's slot frees (seq stores) for these positions. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_acquire);
    if (keep && ursa__sema_free(&ch->chan.sema) != UINT64_MAX &&
        !ursa__sema_closed(&ch->chan.sema)) {
        /* acq_rel: whoever moves returned owns those permits; acquire on
         * failure, as the load above. */
        while (h - r >= keep && !atomic_compare_exchange_weak_explicit(
                                    &ch->returned, &r, r + keep, memory_order_acq_rel,
                                    memory_order_acquire))
            /* acquire: as above. */
            h = atomic_load_explicit(&ch->head, memory_order_acquire);
        if (h - r >= keep)
            return true;
    }
    if (h == r)
        return false;
    /* relaxed: the CAS in owed_take (release) publishes it to a try that
     * sees the CAS's effect. */
    atomic_fetch_add_explicit(&ch->harvesting, 1, memory_order_relaxed);
    uint64_t k = owed_take(ch);
    if (k)
        ursa__sema_release(&ch->chan.sema, k);
    /* release: a try that reads our decrement sees the permits released. */
    atomic_fetch_sub_explicit(&ch->harvesting, 1, memory_order_release);
    /* Closed: a receiver that read ursa__mpsc_ended() while these permits
     * were in our hands (counted nowhere) may be asleep. */
    if (k && ursa__sema_closed(&ch->chan.sema))
        ursa__mpsc_end_check(ch);
    return false;
}

bool ursa__mpsc_lazy_try(ursa_mpsc_t *ch, uint64_t n)
{
    for (unsigned i = 0;; i++) {
        if (ursa__mpsc_harvest(ch, n) || ursa__sema_try(&ch->chan.sema, n))
            return true;
        if (ursa__sema_free(&ch->chan.sema) == UINT64_MAX)
            return false; /* senders are queued ahead: wait behind them */
        /* acquire: pairs with a mover's release decrement, so the permits
         * it released are visible to the look below. A mover whose CAS
         * emptied what harvest saw was counted here before that CAS
         * (harvest acquired the CAS). */
        if (!atomic_load_explicit(&ch->harvesting, memory_order_acquire))
            return ursa__sema_try(&ch->chan.sema, n); /* one that finished meanwhile */
        if (i < 128)
            ursa__cpu_relax();
        else
            sched_yield(); /* a mover between its CAS and its release */
    }
}

/* Lazy: a sender enters the wait path (see "lazy permit return"). */
void ursa__mpsc_wait_enter(ursa_mpsc_t *ch)
{
    if (ch->lazy)
        /* relaxed: published to the receiver by the membarrier (or, in
         * fenced mode, the fence) that follows the queueing. */
        atomic_fetch_add_explicit(&ch->tx_waiting, 1, memory_order_relaxed);
}

/* Senders' queued waits before a channel may switch to fenced mode, and
 * the fewest messages per such wait that keep it on membarrier. */
#define URSA__MPSC_FENCE_AFTER 16u
#define URSA__MPSC_FENCE_RATIO 256u

/* A queued sender that saw no fenced mode: membarrier, and the switch to
 * fenced mode if senders queue often. */
static void queued_membarrier(ursa_mpsc_t *ch)
{
    /* relaxed (this count and the look at tail): a heuristic; a stale
     * value only moves the switch a little. */
    uint32_t n = atomic_fetch_add_explicit(&ch->tx_sleeps, 1, memory_order_relaxed) + 1;
    uint32_t mode = URSA__MPSC_LAZY_MEMBARRIER;
    if (n >= URSA__MPSC_FENCE_AFTER &&
        atomic_load_explicit(&ch->tail, memory_order_relaxed) / n < URSA__MPSC_FENCE_RATIO &&
        /* relaxed: the membarrier below orders it for the receiver. */
        atomic_compare_exchange_strong_explicit(&ch->fence_mode, &mode,
                                                URSA__MPSC_LAZY_SWITCHING,
                                                memory_order_relaxed, memory_order_relaxed)) {
        ursa__membarrier();
        /* release: a sender that acquires FENCED runs after the barrier
         * above, so every consume it may race with fences. */
        atomic_store_explicit(&ch->fence_mode, URSA__MPSC_LAZY_FENCED, memory_order_release);
        return;
    }
    ursa__membarrier();
}

/* Lazy: the wait just queued (WAITERS set): make the receiver see it or
 * see what it owes. */
void ursa__mpsc_wait_queued(ursa_mpsc_t *ch)
{
    if (!ch->lazy)
        return;
    /* acquire: see the release store in queued_membarrier. */
    if (atomic_load_explicit(&ch->fence_mode, memory_order_acquire) == URSA__MPSC_LAZY_FENCED)
        /* seq_cst: Dekker with the receiver's fence after its head store
         * (our queueing, then our harvest's look at head). */
        atomic_thread_fence(memory_order_seq_cst);
    else
        queued_membarrier(ch);
    (void)ursa__mpsc_harvest(ch, 0);
}

void ursa__mpsc_wait_leave(ursa_mpsc_t *ch)
{
    if (ch->lazy)
        /* relaxed: a stale non-zero costs the receiver one extra load. */
        atomic_fetch_sub_explicit(&ch->tx_waiting, 1, memory_order_relaxed);
}
