/* The mpmc channel's plain send: count a permit out, reserve a slot in
 * the semaphore, push, stop counting. Permits and reserves are the shared
 * sending half (chan/senders.c), which reserves through
 * ursa__mpmc_acquire. */
#include <string.h>

#include "mpmc.h"

void ursa__mpmc_push(ursa_mpmc_t *ch, const void *value)
{
    /* relaxed: the slot's seq orders the data; our permit proves the slot
     * will be free (a receiver may still be copying the old element out). */
    uint64_t pos = atomic_fetch_add_explicit(&ch->tail, 1, memory_order_relaxed);
    _Atomic uint64_t *seq = ursa__mpmc_slot_seq(ch, pos);
    ursa__ring_wait_free(seq, pos);
    memcpy((unsigned char *)seq + URSA__RING_SEQ, value, ch->elem_size);
    ursa__ring_publish(seq, pos);
    /* seq_cst fence: the publication is ordered before the rxq.n load,
     * against a waiter's rxq.n++ followed by its re-check (Dekker). */
    atomic_thread_fence(memory_order_seq_cst);
    ursa__mpmc_wake_one(ch);
}

/* Reserves n slots, counting as a permit out: 0, or an error with nothing
 * reserved and nothing counted. */
int ursa__mpmc_acquire(ursa_mpmc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                       const ursa_site_t *site)
{
    if (!ursa__mpmc_perm_begin(ch))
        return -EPIPE;
    if (ursa__sema_try(&ch->chan.sema, n))
        return 0;
    int rc = ursa__chan_sema_wait(&ch->chan, n, deadline, c, site);
    if (rc == URSA__CHAN_CLOSED_QUEUED)
        return -EPIPE; /* the close ended our count */
    if (rc) /* a cancelled reserve may be what closed receivers wait for */
        ursa__mpmc_permit_end(ch);
    return rc;
}

/* Sends with a slot the caller holds: 0 or -EPIPE (slot given back). */
static int send_slot(ursa_mpmc_t *ch, const void *value)
{
    /* (acquire: paired with the last receiver_drop.) */
    if (ursa__chan_rx_gone(&ch->chan)) {
        ursa__sema_release(&ch->chan.sema, 1);
        return -EPIPE;
    }
    ursa__mpmc_push(ch, value);
    return 0;
}

int ursa_mpmc_send(const ursa_mpmc_sender_t *tx, const void *value, ursa_time_t deadline)
{
    if (!tx || !tx->ch || !value)
        return -EINVAL;
    ursa_mpmc_t *ch = tx->ch;
    int rc = ursa__mpmc_acquire(ch, 1, deadline, ursa__ctx(), NULL);
    if (rc)
        return rc;
    rc = send_slot(ch, value);
    ursa__mpmc_permit_end(ch);
    return rc;
}
