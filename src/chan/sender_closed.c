/* The senders' wait for the receiving side to close (mpsc and mpmc;
 * Tokio's Sender::closed): a producer that stops computing what nobody
 * will receive. The waiters queue on the channel's closedq; every close
 * sets CLOSED in the life word and then wakes the queue. CLOSED is never
 * cleared, so a woken waiter is done: no re-check loop.
 *
 * No lost wake: a waiter queues, then does an RMW on the life word that
 * adds nothing; the close's RMW that sets CLOSED is ordered with it on the
 * same word, so either the close's wake (after its RMW) finds the waiter
 * queued, or the waiter's RMW reads CLOSED and it withdraws itself. */
#include "../core/wait_steps.h"
#include "chan.h"
#include "ursa/mpmc.h"
#include "ursa/mpsc.h"

static bool closed_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(&((ursa__chan_t *)w->owner)->closedq, w);
}

/* A grant holds nothing: nothing to give back. */
static const ursa__wait_ops_t closed_ops = {URSA_WAIT_CHANNEL, closed_cancel, NULL};

void ursa__chan_close_wake(ursa__chan_t *ch)
{
    (void)ursa__waitq_grant_all(&ch->closedq);
}

static bool is_closed(ursa__chan_t *ch)
{
    /* acquire: pairs with the close's RMW; what the receiving side did
     * before closing is visible to a sender that saw it. */
    return atomic_load_explicit(&ch->life, memory_order_acquire) & URSA__CHAN_CLOSED;
}

/* Completes w now (closed already) or queues it: 0 / -EINPROGRESS. */
static int closed_start(void *chan, ursa__waiter_t *w)
{
    ursa__chan_t *ch = chan;
    w->owner = ch;
    if (is_closed(ch))
        return ursa__wait_start_ready(w);
    ursa__waitq_enqueue(&ch->closedq, w);
    /* acq_rel RMW adding nothing: see the file comment. */
    if (!(atomic_fetch_add_explicit(&ch->life, 0, memory_order_acq_rel) & URSA__CHAN_CLOSED))
        return -EINPROGRESS;
    if (!ursa__waitq_cancel(&ch->closedq, w))
        return -EINPROGRESS; /* the close's wake took it: decided, waker called */
    return ursa__wait_start_ready(w);
}

static int closed_wait(ursa__chan_t *ch, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!ch)
        return -EINVAL;
    if (is_closed(ch))
        return 0;
    return ursa__wait_blocking(ch, closed_start, &closed_ops, deadline, site);
}

static int closed_start_raw(ursa__chan_t *ch, ursa_wait_t *w, ursa_waker_t waker)
{
    ursa__waiter_t *n = ch ? ursa__wait_raw_init(w, waker, &closed_ops, NULL) : NULL;
    return n ? closed_start(ch, n) : -EINVAL;
}

int ursa_mpsc_closed_at(const ursa_mpsc_sender_t *tx, ursa_time_t deadline, const ursa_site_t *site)
{
    return closed_wait(tx ? ursa__chan_of(tx->ch) : NULL, deadline, site);
}

int ursa_mpmc_closed_at(const ursa_mpmc_sender_t *tx, ursa_time_t deadline, const ursa_site_t *site)
{
    return closed_wait(tx ? ursa__chan_of(tx->ch) : NULL, deadline, site);
}

int ursa_mpsc_closed_start(const ursa_mpsc_sender_t *tx, ursa_wait_t *w, ursa_waker_t waker)
{
    return closed_start_raw(tx ? ursa__chan_of(tx->ch) : NULL, w, waker);
}

int ursa_mpmc_closed_start(const ursa_mpmc_sender_t *tx, ursa_wait_t *w, ursa_waker_t waker)
{
    return closed_start_raw(tx ? ursa__chan_of(tx->ch) : NULL, w, waker);
}

int ursa_mpsc_closed_finish(const ursa_mpsc_sender_t *tx, ursa_wait_t *w)
{
    return ursa__wait_finish_of(w, tx ? ursa__chan_of(tx->ch) : NULL, &closed_ops);
}

int ursa_mpmc_closed_finish(const ursa_mpmc_sender_t *tx, ursa_wait_t *w)
{
    return ursa__wait_finish_of(w, tx ? ursa__chan_of(tx->ch) : NULL, &closed_ops);
}
