/* The life word and reference count of the mpsc and mpmc channels.
 *
 * `life` = CLOSED | RX_GONE | strong senders (TX_ONE each) | permits out
 * (PERM_ONE each; mpsc counts only unbounded reserves there, mpmc every
 * permit and reserve in progress). `refs` counts what keeps the memory:
 * handles, permits, raw reserves. What a change of `life` may end differs
 * (mpsc: end_check and the unbounded seal; mpmc: terminal() and wake_all),
 * so these helpers only do the RMW and return what the caller decides on.
 * Included by mpsc.c and mpmc.c only: the short names are theirs. */
#ifndef URSA_CHAN_LIFE_H
#define URSA_CHAN_LIFE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CLOSED ((uint64_t)1)
#define RX_GONE ((uint64_t)2)
#define TX_ONE ((uint64_t)4)
#define TX_MASK ((uint64_t)0xfffffffc)
#define PERM_ONE ((uint64_t)1 << 32)

static inline void ursa__chan_ref_get(_Atomic uint64_t *refs)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
}

/* Drops a reference: true if it was the last (the caller destroys). */
static inline bool ursa__chan_ref_put(_Atomic uint64_t *refs)
{
    /* acq_rel: every holder's writes happen-before the destruction. */
    return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

/* Counts a strong sender cloned from one the caller holds. */
static inline void ursa__life_sender_add(_Atomic uint64_t *life)
{
    /* relaxed: we hold a strong sender, so the count is not 0. */
    atomic_fetch_add_explicit(life, TX_ONE, memory_order_relaxed);
}

/* A strong sender goes: the new life word. */
static inline uint64_t ursa__life_sender_drop(_Atomic uint64_t *life)
{
    /* acq_rel: our sends happen-before a receiver that sees the count. */
    return atomic_fetch_sub_explicit(life, TX_ONE, memory_order_acq_rel) - TX_ONE;
}

/* A weak sender becomes strong: false once the sending side has ended (it
 * cannot come back). */
static inline bool ursa__life_sender_upgrade(_Atomic uint64_t *life)
{
    /* relaxed: the CAS validates it. */
    uint64_t l = atomic_load_explicit(life, memory_order_relaxed);
    do {
        if ((l & TX_MASK) == 0)
            return false;
        /* acquire: like holding a cloned sender. */
    } while (!atomic_compare_exchange_weak_explicit(life, &l, l + TX_ONE, memory_order_acquire,
                                                    memory_order_relaxed));
    return true;
}

/* A counted permit (or reserve) ends: the new life word. */
static inline uint64_t ursa__life_permit_end(_Atomic uint64_t *life)
{
    /* acq_rel: our message (if any) was published before; receivers
     * acquire the count before they look at the queue. */
    return atomic_fetch_sub_explicit(life, PERM_ONE, memory_order_acq_rel) - PERM_ONE;
}

/* The last receiver went: senders stop sending. */
static inline void ursa__life_mark_rx_gone(_Atomic uint64_t *life)
{
    /* acq_rel: paired with the senders' acquire load of life. */
    atomic_fetch_or_explicit(life, RX_GONE, memory_order_acq_rel);
}

#endif
