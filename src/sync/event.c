/* Events: a FIFO of waiters behind a spinlock, and one atomic state word
 * with the signalled bit and a "queue not empty" bit.
 *
 * Invariant: SET and WAITERS are never both set. WAITERS changes only under
 * the lock. A waiter queues with a CAS that requires SET clear, so a set
 * made concurrently is either seen (and taken) or makes the CAS fail; a
 * setter sets SET lock-free only while WAITERS is clear (a CAS checks it),
 * and otherwise takes the lock and releases queued waiters instead. */
#include "ursa/event.h"

#include "../core/ctx.h"
#include "../core/wait_steps.h"

/* The state word's bits (SET, WAITERS in the comments). */
#define URSA__EVENT_SET 1u
#define URSA__EVENT_WAITERS 2u

static bool event_cancel(ursa__waiter_t *w);
static void event_give_back(ursa__waiter_t *w);

static const ursa__wait_ops_t auto_ops = {URSA_WAIT_EVENT, event_cancel, event_give_back};
/* A manual-reset release holds nothing: nothing to give back. */
static const ursa__wait_ops_t manual_ops = {URSA_WAIT_EVENT, event_cancel, NULL};

int ursa_event_init(ursa_event_t *e, ursa_event_mode_t mode, bool initially_set)
{
    if (!e || (mode != URSA_EVENT_AUTO && mode != URSA_EVENT_MANUAL))
        return -EINVAL;
    atomic_init(&e->state, initially_set ? URSA__EVENT_SET : 0);
    e->mode = (uint32_t)mode;
    ursa__waitq_init(&e->q);
    return 0;
}

int ursa_event_destroy(ursa_event_t *e)
{
    return e ? ursa__destroy_check(ursa__waitq_busy(&e->q),
                                   "event destroyed while waited on")
             : -EINVAL;
}

/* Lets the caller through without queueing, if the event is set. */
static bool try_pass(ursa_event_t *e)
{
    if (e->mode == URSA_EVENT_MANUAL)
        /* acquire: the setter's writes (release RMW) are visible. */
        return atomic_load_explicit(&e->state, memory_order_acquire) & URSA__EVENT_SET;
    uint32_t st = URSA__EVENT_SET;
    /* acquire: as above. SET alone: WAITERS is never set with it. */
    return atomic_compare_exchange_strong_explicit(&e->state, &st, 0, memory_order_acquire,
                                                   memory_order_relaxed);
}

int ursa_event_set(ursa_event_t *e)
{
    if (!e)
        return -EINVAL;
    /* relaxed: the CAS validates it. */
    uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
    while (!(st & URSA__EVENT_WAITERS)) {
        /* acq_rel RMW even when already set: a waiter that passes then
         * synchronises with every setter it absorbed (release sequence). */
        if (atomic_compare_exchange_weak_explicit(&e->state, &st, st | URSA__EVENT_SET,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return (st & URSA__EVENT_SET) ? 0 : 1;
    }
    /* Waiters queued, so the event is unset: this call signals it. */
    uint32_t bits = ursa__waitq_lock(&e->q);
    if (e->mode == URSA_EVENT_AUTO) {
        /* The oldest waiter takes the signal (a select's whose claim is
         * lost is dropped on the way); none left: the event is set. */
        ursa__waiter_t *w = ursa__waitq_decide_first(&e->q, URSA__W_GRANTED, 1);
        uint32_t old;
        if (!e->q.head) {
            /* WAITERS off, and SET on if nobody took the signal. acq_rel:
             * as the lock-free set above. */
            uint32_t s2 = atomic_load_explicit(&e->state, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(
                &e->state, &s2, (s2 & ~URSA__EVENT_WAITERS) | (w ? 0 : URSA__EVENT_SET),
                memory_order_acq_rel, memory_order_relaxed)) {
            }
            old = s2;
        } else {
            old = 0;
        }
        ursa__waitq_unlock(&e->q, bits);
        if (w)
            ursa__wake_node(w);
        return (old & URSA__EVENT_SET) ? 0 : 1;
    }
    if (!e->q.head) {
        /* The queue emptied meanwhile: just set (WAITERS is clear now).
         * acq_rel: as the lock-free set above. */
        uint32_t old = atomic_fetch_or_explicit(&e->state, URSA__EVENT_SET, memory_order_acq_rel);
        ursa__waitq_unlock(&e->q, bits);
        return (old & URSA__EVENT_SET) ? 0 : 1;
    }
    /* Manual: one RMW, WAITERS off and SET on (acq_rel: later passers
     * synchronise with us), then every queued waiter is released; got 0:
     * a manual release holds nothing. */
    uint32_t s2 = atomic_load_explicit(&e->state, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&e->state, &s2,
                                                  (s2 & ~URSA__EVENT_WAITERS) | URSA__EVENT_SET,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
    }
    (void)ursa__waitq_wake_all(&e->q, bits, URSA__W_GRANTED, 0);
    return 1;
}

int ursa_event_reset(ursa_event_t *e)
{
    if (!e)
        return -EINVAL;
    /* relaxed: resetting publishes nothing; WAITERS is left as it is. */
    uint32_t old = atomic_fetch_and_explicit(&e->state, ~URSA__EVENT_SET, memory_order_relaxed);
    return (old & URSA__EVENT_SET) ? 1 : 0;
}

bool ursa_event_is_set(const ursa_event_t *e)
{
    /* acquire: a caller that sees the event set also sees the setter's
     * writes, as a passing waiter would. */
    return e && (atomic_load_explicit(&e->state, memory_order_acquire) & URSA__EVENT_SET);
}

/* Queues w, or lets it through: 0 released now, -EINPROGRESS queued. */
static int start(void *event, ursa__waiter_t *w)
{
    ursa_event_t *e = event;
    w->owner = e;
    w->got = 0;
    w->want = 1;
    /* A select's waiter takes its claim before it passes (an auto-reset
     * pass consumes the set): not on the lock-free path. */
    bool sel = ursa__waiter_is_select(w), claimed = false;
    if (!sel && try_pass(e))
        goto passed;
    uint32_t bits = ursa__waitq_lock(&e->q);
    /* relaxed: validated by the CAS. */
    uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
    for (;;) {
        if (st & URSA__EVENT_SET) {
            if (sel && !claimed) {
                if (!ursa__wait_start_claim(w)) {
                    ursa__waitq_unlock(&e->q, bits); /* the event stays set */
                    return -EINPROGRESS;
                }
                claimed = true;
            }
            if (e->mode == URSA_EVENT_MANUAL) {
                /* acquire: the setter's writes are visible. */
                atomic_thread_fence(memory_order_acquire);
                ursa__waitq_unlock(&e->q, bits);
                goto passed;
            }
            /* acquire: as in try_pass. WAITERS is clear here. */
            if (atomic_compare_exchange_weak_explicit(&e->state, &st, st & ~URSA__EVENT_SET,
                                                      memory_order_acquire, memory_order_relaxed)) {
                ursa__waitq_unlock(&e->q, bits);
                goto passed;
            }
            continue;
        }
        if (claimed) {
            /* Claimed, but a lock-free pass took the set first: dropped,
             * the select starts over (core/waitq.h). */
            ursa__waiter_drop(w);
            ursa__waitq_unlock(&e->q, bits);
            return -EINPROGRESS;
        }
        /* acq_rel: fails (and we re-check) if a set landed meanwhile. */
        if (atomic_compare_exchange_weak_explicit(&e->state, &st, st | URSA__EVENT_WAITERS,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    ursa__waitq_push(&e->q, w);
    ursa__waitq_unlock(&e->q, bits);
    return -EINPROGRESS;
passed:
    return ursa__wait_start_granted(w, 1);
}

static bool event_cancel(ursa__waiter_t *w)
{
    ursa_event_t *e = w->owner;
    uint32_t bits;
    if (!ursa__waitq_cancel_begin(&e->q, w, &bits))
        return ursa__waiter_dropped(w);
    ursa__waitq_remove(&e->q, w);
    if (!e->q.head) /* relaxed: under the lock. */
        atomic_fetch_and_explicit(&e->state, ~URSA__EVENT_WAITERS, memory_order_relaxed);
    ursa__waitq_cancel_end(&e->q, w, bits);
    return true;
}

/* An auto-reset set that released w, which will never take it: on to the
 * next waiter, or the event is set again. */
static void event_give_back(ursa__waiter_t *w)
{
    w->got = 0;
    (void)ursa_event_set(w->owner);
}

static const ursa__wait_ops_t *ops_for(const ursa_event_t *e)
{
    return e->mode == URSA_EVENT_MANUAL ? &manual_ops : &auto_ops;
}

int ursa_event_wait_at(ursa_event_t *e, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!e)
        return -EINVAL;
    if (try_pass(e))
        return 0;
    /* Withdrawn: the event is as it was. Otherwise a set raced the
     * deadline or cancel and released us first: keep it. */
    return ursa__wait_blocking(e, start, ops_for(e), deadline, site);
}

int ursa_event_wait_start_at(ursa_event_t *e, ursa_wait_t *w, ursa_waker_t waker,
                             const ursa_site_t *site)
{
    ursa__waiter_t *n = e ? ursa__wait_raw_init(w, waker, ops_for(e), site) : NULL;
    return n ? start(e, n) : -EINVAL;
}

int ursa_event_wait_finish(ursa_event_t *e, ursa_wait_t *w)
{
    int rc = ursa__wait_finish_of(w, e, e ? ops_for(e) : NULL);
    if (rc == 0)
        w->waiter.got = 0;
    return rc;
}
