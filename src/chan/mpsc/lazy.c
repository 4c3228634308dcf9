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
 * the harvest sees it): the Dekker pair costs the receiver no fence. Without
 * membarrier (old kernel, seccomp) the receiver returns each permit. */
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
        /* relaxed: published to the receiver by the membarrier that
         * follows the queueing. */
        atomic_fetch_add_explicit(&ch->tx_waiting, 1, memory_order_relaxed);
}

/* Lazy: the wait just queued (WAITERS set): make the receiver see it or
 * see what it owes. */
void ursa__mpsc_wait_queued(ursa_mpsc_t *ch)
{
    if (ch->lazy) {
        ursa__membarrier();
        (void)ursa__mpsc_harvest(ch, 0);
    }
}

void ursa__mpsc_wait_leave(ursa_mpsc_t *ch)
{
    if (ch->lazy)
        /* relaxed: a stale non-zero costs the receiver one extra load. */
        atomic_fetch_sub_explicit(&ch->tx_waiting, 1, memory_order_relaxed);
}
