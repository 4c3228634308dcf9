/* Notify: a wait queue whose lock word also holds the stored permit and a
 * "queue not empty" bit.
 *
 * The state lives in the lock word so that queueing (or notifying a
 * waiter) is one CAS that takes the lock, and one plain store that sets
 * the new bits and drops it: while LOCKED, only the holder changes the
 * word (every lock-free CAS expects LOCKED clear), so nothing it stores
 * over can be lost. Two RMWs less per wait/notify pair than a separate
 * spinlock plus an RMW on the state.
 *
 * Invariant: PERMIT and WAITERS are never both set. WAITERS is set and
 * cleared only under the lock; PERMIT is set lock-free by notifiers only
 * while WAITERS and LOCKED are clear (a CAS checks it), or under the lock,
 * and cleared by whoever consumes it.
 *
 * A notified node leaves the queue; w->got records how it was notified, so
 * that a cancel after the fact can pass the notification on. */
#include "ursa/notify.h"

#include "../core/ctx.h"
#include "../core/wait_steps.h"

/* The state bits in the queue's lock word (PERMIT, WAITERS, LOCKED in
 * the comments; LOCKED is the queue's own, URSA__WAITQ_LOCKED). */
#define URSA__NOTIFY_PERMIT 1u
#define URSA__NOTIFY_WAITERS 2u
#define URSA__NOTIFY_LOCKED URSA__WAITQ_LOCKED

/* How a node was notified (w->got; BY_ONE ... in the comments). */
enum { URSA__NOTIFY_BY_NONE = 0, URSA__NOTIFY_BY_ONE, URSA__NOTIFY_BY_LAST, URSA__NOTIFY_BY_ALL };

static bool notify_cancel(ursa__waiter_t *w);
static void notify_give_back(ursa__waiter_t *w);

/* Raw waits and blocking waits. */
static const ursa__wait_ops_t wait_ops = {URSA_WAIT_NOTIFY, notify_cancel, notify_give_back};
/* Enabled waits (same behaviour; a distinct identity so that
 * ursa_notify_wait_enabled can refuse a raw wait with a foreign waker). */
static const ursa__wait_ops_t enabled_ops = {URSA_WAIT_NOTIFY, notify_cancel, notify_give_back};

int ursa_notify_init(ursa_notify_t *n)
{
    if (!n)
        return -EINVAL;
    ursa__waitq_init(&n->q);
    return 0;
}

int ursa_notify_destroy(ursa_notify_t *n)
{
    if (!n)
        return -EINVAL;
    return ursa__destroy_check(ursa__waitq_busy(&n->q), "notify destroyed while waited on");
}

/* Takes the stored permit if there is one. */
static bool try_take_permit(ursa_notify_t *n)
{
    /* relaxed peek: a CAS that fails costs as much as one that succeeds,
     * and in a ping-pong there is usually no permit to take. */
    if (!(atomic_load_explicit(&n->q.lock, memory_order_relaxed) & URSA__NOTIFY_PERMIT))
        return false;
    uint32_t st = URSA__NOTIFY_PERMIT;
    /* acquire: the notifier's writes before it stored the permit (a release
     * RMW) are visible to us. PERMIT alone: WAITERS is never set with it;
     * while LOCKED the holder decides (the caller then takes the lock). */
    return atomic_compare_exchange_strong_explicit(&n->q.lock, &st, 0, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Wakes one (oldest or newest) or stores the permit: 1; or finds the
 * permit already stored: 0 (absorbed). */
/* Inlined whole into each caller: a call into a split-off locked half
 * costs a notify ping-pong 5% more instructions (callgrind). */
static inline __attribute__((always_inline)) int notify_one_or_last(ursa_notify_t *n, int by)
{
    /* relaxed: the CAS below validates it. */
    uint32_t st = atomic_load_explicit(&n->q.lock, memory_order_relaxed);
    while (!(st & (URSA__NOTIFY_WAITERS | URSA__NOTIFY_LOCKED))) {
        /* acq_rel RMW, even when PERMIT is already set: the waiter that
         * consumes the permit then synchronises with every notifier whose
         * notification it absorbs (each RMW heads a release sequence). */
        if (atomic_compare_exchange_weak_explicit(&n->q.lock, &st, st | URSA__NOTIFY_PERMIT,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return (st & URSA__NOTIFY_PERMIT) ? 0 : 1;
    }
    st = ursa__waitq_lock(&n->q);
    /* The waiter reads got and our earlier writes after it sees the
     * decision. A select's waiter whose claim is lost is dropped, and the
     * notification goes to the next. */
    ursa__waiter_t *w = by == URSA__NOTIFY_BY_LAST
                            ? ursa__waitq_decide_last(&n->q, URSA__W_GRANTED, (uint32_t)by)
                            : ursa__waitq_decide_first(&n->q, URSA__W_GRANTED, (uint32_t)by);
    if (!n->q.head)
        st &= ~URSA__NOTIFY_WAITERS;
    if (!w) {
        /* No waiter (the word was only locked, or the queue emptied):
         * store the permit. The unlock's release store publishes our
         * writes to its consumer, whose CAS reads it. */
        ursa__waitq_unlock(&n->q, st | URSA__NOTIFY_PERMIT);
        return (st & URSA__NOTIFY_PERMIT) ? 0 : 1;
    }
    ursa__waitq_unlock(&n->q, st);
    ursa__wake_node(w);
    return 1;
}

int ursa_notify_one(ursa_notify_t *n)
{
    return n ? notify_one_or_last(n, URSA__NOTIFY_BY_ONE) : -EINVAL;
}

int ursa_notify_last(ursa_notify_t *n)
{
    return n ? notify_one_or_last(n, URSA__NOTIFY_BY_LAST) : -EINVAL;
}

int ursa_notify_waiters(ursa_notify_t *n)
{
    if (!n)
        return -EINVAL;
    /* acquire: pairs with the waiter's CAS that set WAITERS, so a waiter
     * that queued before our call (happens-before it) is seen here. A
     * waiter racing with the call is either taken below or missed; both
     * are allowed. A stored permit implies an empty queue: nothing to do. */
    uint32_t st = atomic_load_explicit(&n->q.lock, memory_order_acquire);
    if (!(st & URSA__NOTIFY_WAITERS))
        return 0; /* nobody registered; later waiters are not ours to wake */
    st = ursa__waitq_lock(&n->q);
    /* Detach the whole queue under the lock: exactly the waiters
     * registered before this point are woken, however many, and later
     * ones queue on an empty queue. */
    unsigned count = ursa__waitq_wake_all(&n->q, st & ~URSA__NOTIFY_WAITERS, URSA__W_GRANTED,
                                          URSA__NOTIFY_BY_ALL);
    return count > INT32_MAX ? INT32_MAX : (int)count;
}

/* Queues w, or takes the permit: 0 notified now, -EINPROGRESS queued. */
static int start(void *notify, ursa__waiter_t *w)
{
    ursa_notify_t *n = notify;
    w->owner = n;
    w->got = URSA__NOTIFY_BY_NONE;
    w->want = 1;
    /* A select's waiter takes its claim before the permit: under the lock,
     * where the permit bit cannot change (the lock-free take expects the
     * lock clear). */
    if (!ursa__waiter_is_select(w) && try_take_permit(n)) {
        /* a permit is a notify_one: pass it on if unused */
        return ursa__wait_start_granted(w, URSA__NOTIFY_BY_ONE);
    }
    /* The lock's acquire CAS also acquires a permit's notifier. */
    uint32_t st = ursa__waitq_lock(&n->q);
    if (st & URSA__NOTIFY_PERMIT) { /* WAITERS is clear with it */
        if (!ursa__wait_start_claim(w)) {
            ursa__waitq_unlock(&n->q, st); /* the permit stays stored */
            return -EINPROGRESS;
        }
        ursa__waitq_unlock(&n->q, st & ~URSA__NOTIFY_PERMIT);
        return ursa__wait_start_granted(w, URSA__NOTIFY_BY_ONE);
    }
    ursa__waitq_push(&n->q, w); /* published to notifiers by the unlock */
    ursa__waitq_unlock(&n->q, st | URSA__NOTIFY_WAITERS);
    return -EINPROGRESS;
}

static bool notify_cancel(ursa__waiter_t *w)
{
    ursa_notify_t *n = w->owner;
    uint32_t st;
    if (!ursa__waitq_cancel_begin(&n->q, w, &st))
        return ursa__waiter_dropped(w);
    ursa__waitq_remove(&n->q, w);
    if (!n->q.head)
        st &= ~URSA__NOTIFY_WAITERS;
    ursa__waitq_cancel_end(&n->q, w, st);
    return true;
}

/* A notification that reached w but will never be taken: pass it on in
 * the same order it came (notify_waiters stores nothing: drop it). */
static void notify_give_back(ursa__waiter_t *w)
{
    int by = (int)w->got;
    w->got = URSA__NOTIFY_BY_NONE;
    if (by == URSA__NOTIFY_BY_ONE || by == URSA__NOTIFY_BY_LAST)
        (void)notify_one_or_last(w->owner, by);
}

int ursa_notify_wait_at(ursa_notify_t *n, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!n)
        return -EINVAL;
    if (try_take_permit(n))
        return 0;
    /* Withdrawn: nothing consumed. Otherwise a notification raced the
     * deadline or cancel and landed first: keep it. */
    return ursa__wait_blocking(n, start, &wait_ops, deadline, site);
}

/* w is a notify wait (enabled or raw, on any notify) that has not ended:
 * queued, or notified and not finished. Starting it again would link it
 * twice or drop its notification. Only a notify wait's ops match, so a
 * never-used node (uninitialised memory) never does. */
static bool in_flight(const ursa_wait_t *w)
{
    if (w->waiter.ops != &enabled_ops && w->waiter.ops != &wait_ops)
        return false;
    /* relaxed: the node is the caller's; a notifier may only move it from
     * QUEUED to GRANTED, both "in flight". */
    uint32_t st = atomic_load_explicit(&w->waiter.state, memory_order_relaxed);
    return st == URSA__W_QUEUED || st == URSA__W_GRANTED;
}

int ursa_notify_enable_at(ursa_notify_t *n, ursa_wait_t *w, const ursa_site_t *site)
{
    if (!n || !w || in_flight(w))
        return -EINVAL;
    (void)start(n, ursa__wait_raw_init(w, ursa__ctx()->waker, &enabled_ops, site));
    return 0;
}

/* w is an enabled, unfinished wait of n. */
static bool is_enabled(ursa_notify_t *n, ursa__waiter_t *w)
{
    if (w->ops != &enabled_ops || w->owner != n)
        return false;
    /* acquire: a notifier's decision, with what it wrote before it. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    return st == URSA__W_QUEUED || st == URSA__W_GRANTED;
}

int ursa_notify_wait_enabled(ursa_notify_t *n, ursa_wait_t *rw, ursa_time_t deadline)
{
    if (!n || !rw || !is_enabled(n, &rw->waiter))
        return -EINVAL;
    ursa__waiter_t *w = &rw->waiter;
    ursa__ctx_t *c = ursa__ctx();
    int rc = 0;
    if (!ursa__wait_is_decided(w)) {
        rc = deadline == URSA_NOW ? -EAGAIN : ursa__ctx_block(c, w, deadline, rw->site);
        if (rc != 0 && notify_cancel(w)) {
            /* relaxed: our own node, withdrawn. */
            atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
            return rc; /* withdrawn; the node is finished */
        }
    }
    ursa__wait_settle(w);
    /* relaxed: our own node, settled. */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    w->got = URSA__NOTIFY_BY_NONE;
    return 0;
}

int ursa_notify_disable(ursa_notify_t *n, ursa_wait_t *rw)
{
    if (!n || !rw || !is_enabled(n, &rw->waiter))
        return -EINVAL;
    ursa__waiter_t *w = &rw->waiter;
    if (notify_cancel(w))
        return 0;
    notify_give_back(w); /* notified meanwhile: hand it on */
    /* relaxed: our own node, settled by the cancel. */
    atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return 1;
}

int ursa_notify_wait_start_at(ursa_notify_t *n, ursa_wait_t *w, ursa_waker_t waker,
                              const ursa_site_t *site)
{
    if (!n || !w || in_flight(w))
        return -EINVAL;
    ursa__waiter_t *wn = ursa__wait_raw_init(w, waker, &wait_ops, site);
    return wn ? start(n, wn) : -EINVAL;
}

int ursa_notify_wait_finish(ursa_notify_t *n, ursa_wait_t *w)
{
    ursa__waiter_t *wn = ursa__wait_raw_of(w, n, &wait_ops);
    if (!wn)
        wn = ursa__wait_raw_of(w, n, &enabled_ops);
    if (!wn)
        return -EINVAL;
    int rc = ursa__wait_finish(wn);
    if (rc == 0)
        wn->got = URSA__NOTIFY_BY_NONE;
    return rc;
}
