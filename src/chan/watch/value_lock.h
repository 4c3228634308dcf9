/* The watch's value lock: reader-preferring, in the `state` word (see
 * watch.h). A borrow is a reader; a send is the writer, held only for a
 * copy or the modify callback; a writer that finds borrows waits on the
 * `unlocked` notify. Inline: it is the borrow and send paths. */
#ifndef URSA_CHAN_WATCH_VALUE_LOCK_H
#define URSA_CHAN_WATCH_VALUE_LOCK_H

#include <sched.h>

#include "watch.h"

/* 0 with a reader counted, or -ENOMEM (2^28 - 1 borrows already in). */
static inline int ursa__watch_read_lock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_LOCK);
    for (;;) {
        if (!(s & URSA__WATCH_WRITER)) {
            if ((s & URSA__WATCH_RMASK) == URSA__WATCH_RMASK) {
                ursa__spin_end(&sp);
                return -ENOMEM;
            }
            /* acquire: the last writer's copy and version (released by its
             * unlock RMW) happen before our reads. */
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, s + URSA__WATCH_READER,
                                                      memory_order_acquire,
                                                      memory_order_relaxed)) {
                ursa__spin_end(&sp);
                return 0;
            }
            continue;
        }
        ursa__spin_backoff(&sp); /* the writer may be a preempted thread */
        s = atomic_load_explicit(&w->state, memory_order_relaxed); /* relaxed: as above */
    }
}

static inline void ursa__watch_read_unlock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (;;) {
        bool wake = (s & URSA__WATCH_RMASK) == URSA__WATCH_READER && (s & URSA__WATCH_WWAIT);
        /* The last reader out with a writer waiting clears WWAIT and turns
         * its reader count into a handle reference, so the watch stays
         * alive while it wakes the writer (who may give up and drop). */
        uint64_t n = wake ? s - URSA__WATCH_READER - URSA__WATCH_WWAIT + URSA__WATCH_HANDLE
                          : s - URSA__WATCH_READER;
        /* acq_rel: release orders our reads before the next writer's copy;
         * acquire pairs with the writer's WWAIT RMW (its queued node is
         * visible to the notify) and with the other holders for the free. */
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (wake) {
                (void)ursa_notify_waiters(&w->unlocked);
                ursa__watch_handle_unref(w);
            } else if (!(n & (URSA__WATCH_HMASK | URSA__WATCH_RMASK))) {
                ursa__watch_destroy(w); /* the handles went while we borrowed */
            }
            return;
        }
    }
}

/* 0 with WRITER held, or -ECANCELED (the task was cancelled meanwhile). */
static inline int ursa__watch_write_lock(ursa_watch_t *w)
{
    /* relaxed: validated by the CAS. */
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    while (!(s & (URSA__WATCH_WRITER | URSA__WATCH_RMASK))) {
        /* acquire: the readers' reads and the last writer's copy happen
         * before ours. */
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | URSA__WATCH_WRITER,
                                                  memory_order_acquire, memory_order_relaxed))
            return 0;
    }
    ursa_wait_t node;
    for (;;) {
        (void)ursa_notify_enable(&w->unlocked, &node);
        /* relaxed: validated by the CAS. */
        s = atomic_load_explicit(&w->state, memory_order_relaxed);
        for (;;) {
            if (!(s & (URSA__WATCH_WRITER | URSA__WATCH_RMASK))) {
                /* acquire: as above. WWAIT stays: other writers may wait. */
                if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | URSA__WATCH_WRITER,
                                                          memory_order_acquire,
                                                          memory_order_relaxed)) {
                    (void)ursa_notify_disable(&w->unlocked, &node);
                    return 0;
                }
                continue;
            }
            /* acq_rel, and an RMW even when WWAIT is already set: the
             * unlocker's RMW that clears it then synchronises with this
             * one, so its notify sees our enabled node. */
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, s | URSA__WATCH_WWAIT,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed))
                break;
        }
        int rc = ursa_notify_wait_enabled(&w->unlocked, &node, URSA_NEVER);
        if (rc == -ECANCELED)
            return rc; /* -ETIMEDOUT: a slice ended, try again */
    }
}

/* Drops WRITER; `bumped`: the version advanced, wake the receivers. */
static inline void ursa__watch_write_unlock(ursa_watch_t *w, bool bumped)
{
    uint64_t clear = URSA__WATCH_WRITER | URSA__WATCH_WWAIT | (bumped ? URSA__WATCH_RXWAIT : 0);
    /* acq_rel: release publishes our copy and version to the next reader
     * or writer; acquire pairs with the RMW that set WWAIT / RXWAIT, so
     * the waiters it announces are visible to the wakes below. */
    uint64_t old = atomic_fetch_and_explicit(&w->state, ~clear, memory_order_acq_rel);
    if (old & URSA__WATCH_WWAIT)
        (void)ursa_notify_waiters(&w->unlocked); /* other writers wait */
    if (bumped && (old & URSA__WATCH_RXWAIT))
        (void)ursa__waitq_grant_all(&w->rxq);
}

/* Under WRITER. */
static inline void ursa__watch_bump_version(ursa_watch_t *w)
{
    /* relaxed load: only the WRITER holder writes version. */
    uint64_t v = atomic_load_explicit(&w->version, memory_order_relaxed);
    /* release: a receiver that sees the new version (acquire) and then
     * borrows finds WRITER still set or this value (its CAS on `state`
     * comes after our WRITER CAS in that word's order). */
    atomic_store_explicit(&w->version, v + 1, memory_order_release);
}

#endif
