/* The shared oneshot: the channel on the heap with a sender handle and a
 * receiver handle that are dropped independently (Tokio's oneshot). Each
 * end's calls are the embedded oneshot's (chan/oneshot.c); what this adds
 * is the lifetime: the memory goes with the last handle, so an end that
 * gives up early (a timed-out receiver) can drop its handle and the other
 * end's late call lands in the same channel and fails cleanly (-EPIPE)
 * instead of writing into memory that was reused. */
#include <stdatomic.h>
#include <stdlib.h>

#include "ursa/oneshot.h"

/* The allocation: the oneshot, its reference count and, past the struct
 * (aligned: struct ursa_oneshot holds a max_align_t member), the value when
 * it does not fit the inline buffer. */
struct ursa_oneshot_shared {
    ursa_oneshot_t os;
    _Atomic uint32_t refs; /* handles not dropped yet: 2, 1, then freed */
};

/* Largest element of a shared oneshot (as mpmc's). */
#define SHARED_ELEM_MAX ((size_t)1 << 30)

int ursa_oneshot_new(ursa_oneshot_tx_t *tx, ursa_oneshot_rx_t *rx, size_t elem_size)
{
    if (!tx || !rx || elem_size == 0 || elem_size > SHARED_ELEM_MAX)
        return -EINVAL;
    bool inline_value = elem_size <= URSA_ONESHOT_INLINE;
    struct ursa_oneshot_shared *sh = malloc(sizeof *sh + (inline_value ? 0 : elem_size));
    if (!sh)
        return -ENOMEM;
    (void)ursa_oneshot_init(&sh->os, elem_size, inline_value ? NULL : sh + 1);
    atomic_init(&sh->refs, 2);
    tx->sh = sh;
    rx->sh = sh;
    return 0;
}

/* A handle is gone: the last one frees the channel. */
static void put(struct ursa_oneshot_shared *sh)
{
    /* acq_rel: every call of both ends happens-before the free. */
    if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* A wait still queued (misuse, reported by destroy): leaked rather
     * than freed under it. */
    if (ursa_oneshot_destroy(&sh->os) == 0)
        free(sh);
}

/* Drops the handle whose pointer is *slot (cleared): its end's drop on
 * the oneshot, then its reference. -EINVAL: dropped before; from the end's
 * drop, a copy of this handle was dropped before (reported) and gave the
 * reference back. */
static int handle_drop(struct ursa_oneshot_shared **slot, int (*end_drop)(ursa_oneshot_t *))
{
    struct ursa_oneshot_shared *sh = *slot;
    if (!sh)
        return -EINVAL;
    *slot = NULL;
    int rc = end_drop(&sh->os);
    if (rc == 0)
        put(sh);
    return rc;
}

static ursa_oneshot_t *tx_os(const ursa_oneshot_tx_t *tx)
{
    return tx && tx->sh ? &tx->sh->os : NULL;
}

static ursa_oneshot_t *rx_os(const ursa_oneshot_rx_t *rx)
{
    return rx && rx->sh ? &rx->sh->os : NULL;
}

int ursa_oneshot_tx_send(const ursa_oneshot_tx_t *tx, const void *value)
{
    return ursa_oneshot_send(tx_os(tx), value);
}

int ursa_oneshot_tx_drop(ursa_oneshot_tx_t *tx)
{
    return tx ? handle_drop(&tx->sh, ursa_oneshot_sender_drop) : -EINVAL;
}

int ursa_oneshot_tx_is_closed(const ursa_oneshot_tx_t *tx)
{
    return ursa_oneshot_is_closed(tx_os(tx));
}

int ursa_oneshot_tx_closed_at(const ursa_oneshot_tx_t *tx, ursa_time_t deadline,
                              const ursa_site_t *site)
{
    return ursa_oneshot_closed_at(tx_os(tx), deadline, site);
}

int ursa_oneshot_rx_recv_at(const ursa_oneshot_rx_t *rx, void *out, ursa_time_t deadline,
                            const ursa_site_t *site)
{
    return ursa_oneshot_recv_at(rx_os(rx), out, deadline, site);
}

int ursa_oneshot_rx_try_recv(const ursa_oneshot_rx_t *rx, void *out)
{
    return ursa_oneshot_try_recv(rx_os(rx), out);
}

int ursa_oneshot_rx_recv_start_at(const ursa_oneshot_rx_t *rx, ursa_wait_t *w, ursa_waker_t waker,
                                  const ursa_site_t *site)
{
    return ursa_oneshot_recv_start_at(rx_os(rx), w, waker, site);
}

int ursa_oneshot_rx_recv_finish(const ursa_oneshot_rx_t *rx, ursa_wait_t *w, void *out)
{
    return ursa_oneshot_recv_finish(rx_os(rx), w, out);
}

int ursa_oneshot_rx_close(const ursa_oneshot_rx_t *rx)
{
    return ursa_oneshot_close(rx_os(rx));
}

int ursa_oneshot_rx_is_terminated(const ursa_oneshot_rx_t *rx)
{
    return ursa_oneshot_is_terminated(rx_os(rx));
}

int ursa_oneshot_rx_is_empty(const ursa_oneshot_rx_t *rx)
{
    return ursa_oneshot_is_empty(rx_os(rx));
}

int ursa_oneshot_rx_drop(ursa_oneshot_rx_t *rx)
{
    return rx ? handle_drop(&rx->sh, ursa_oneshot_receiver_drop) : -EINVAL;
}
