/* The mpsc channel's plain send: reserve a slot (the semaphore when
 * bounded, a permit-out count when unbounded), then push. The owner of the
 * send bias takes neither path: send_bias.h. Permits and reserves are the
 * shared sending half (chan/senders.c), which reserves through
 * ursa__mpsc_acquire. */
#include "../../core/wait_steps.h"
#include "mpsc.h"
#include "send_bias.h"

/* Bounded, slow half of acquire: what the receiver owes first, then the
 * semaphore's FIFO with the lazy return's steps around it. */
static int acquire_wait(ursa_mpsc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                        const ursa_site_t *site)
{
    if (ch->lazy && ursa__mpsc_lazy_try(ch, n))
        return 0;
    int rc = ursa__chan_sema_wait(&ch->chan, n, deadline, c, site);
    return rc == URSA__CHAN_CLOSED_QUEUED ? -EPIPE : rc;
}

/* Reserves n slots: bounded, n semaphore permits; unbounded, one "permit
 * out" in life. 0, or an error with nothing reserved and nothing counted.
 * A caller that sends at once holds a strong sender, so it needs no
 * reference; a permit takes one (chan/senders.c). */
int ursa__mpsc_acquire(ursa_mpsc_t *ch, uint64_t n, ursa_time_t deadline, ursa__ctx_t *c,
                       const ursa_site_t *site)
{
    if (!ch->cap) {
        if (ursa__chan_life_permit_begin(&ch->chan) & URSA__CHAN_CLOSED) {
            ursa__mpsc_unb_done(ch);
            return -EPIPE;
        }
        return 0;
    }
    if (__builtin_expect(ursa__sema_try(&ch->chan.sema, n), 1))
        return 0;
    return acquire_wait(ch, n, deadline, c, site);
}

/* ursa_mpsc_send on a bounded channel: the owner's biased send, else a
 * slot from the semaphore. Out of line: the unbounded send stays small. */
static __attribute__((noinline)) int send_bounded(ursa_mpsc_t *ch, const void *value,
                                                  ursa_time_t deadline)
{
    if (ursa__mpsc_sbias_revoke_unless_mine(ch) && ursa__mpsc_send_owned(ch, value))
        return 0;
    /* (not the owner, or its credit ran out or the receiver is gone: the
     * shared path waits or fails like any send; its claim is an RMW) */
    int rc = ursa__mpsc_acquire(ch, 1, deadline, NULL, NULL);
    if (rc)
        return rc;
    /* The wait may have moved us to another thread (worker 0 between
     * block_on calls): a non-owner must not claim beside the owner's plain
     * claims. */
    (void)ursa__mpsc_sbias_revoke_unless_mine(ch);
    /* (acquire: paired with receiver_drop.) */
    if (__builtin_expect(ursa__chan_rx_gone(&ch->chan), 0)) {
        ursa__mpsc_give_up(ch, 1);
        rc = -EPIPE;
    } else {
        ursa__mpsc_push(ch, value);
    }
    return rc;
}

int ursa_mpsc_send(const ursa_mpsc_sender_t *tx, const void *value, ursa_time_t deadline)
{
    if (!tx || !tx->ch || !value)
        return -EINVAL;
    ursa_mpsc_t *ch = tx->ch;
    /* Our strong sender keeps the channel alive: no reference is taken. */
    if (ch->cap)
        return send_bounded(ch, value, deadline);
    /* Unbounded: not counted as a permit. acquire: paired with close and
     * receiver_drop. A close after this load either seals after our claim
     * (we are delivered: the send took effect first) or before it (push
     * fails). */
    if (atomic_load_explicit(&ch->chan.life, memory_order_acquire) &
        (URSA__CHAN_CLOSED | URSA__CHAN_RX_GONE))
        return -EPIPE;
    return ursa__mpsc_push(ch, value) ? 0 : -EPIPE;
}
