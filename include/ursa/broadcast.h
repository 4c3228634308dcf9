/* ursa — broadcast channel: many senders, many receivers, every receiver
 * sees every value sent after it subscribed (the model is Tokio's
 * broadcast).
 *
 *     ursa_broadcast_tx_t *tx;  ursa_broadcast_rx_t *rx;
 *     ursa_broadcast_new(&tx, &rx, sizeof(struct event), 64, NULL);
 *
 *     struct event e = {...};
 *     ursa_broadcast_send(tx, &e);            // never blocks
 *
 *     uint64_t missed;
 *     int rc = ursa_broadcast_recv(rx, &e, &missed, URSA_NEVER);
 *     // 0: e filled;  -EOVERFLOW: this receiver lagged and lost `missed`
 *     // values, the next recv returns the oldest value still retained;
 *     // -EPIPE: every sender is gone and everything was received.
 *
 * - Elements have a fixed size (elem_size) and are copied in and out.
 * - The ring holds `capacity` values (rounded up to a power of two). A send
 *   never blocks: it overwrites the oldest value, and a receiver that had
 *   not read it yet finds out with -EOVERFLOW on its next recv.
 * - Each receiver handle has its own read position. One handle is used by
 *   one task or thread at a time (like Tokio's &mut Receiver); different
 *   handles may be used concurrently from anywhere.
 * - The destructor (optional) is called exactly once for every value the
 *   channel accepted (send returned >= 1): when its slot is overwritten by
 *   a newer value, or when the channel is freed (the last handle dropped).
 *   A value is "in the ring" until then, whether or not it was read, so a
 *   receiver's copy stays meaningful until the value is overwritten. A send
 *   that fails (-EPIPE, -EINVAL) leaves the value with the caller. It is
 *   called from inside ursa_broadcast_send (the send that overwrites),
 *   while that send holds its claimed slot, so it must not block, suspend
 *   its task, write the element or call into this channel (other senders
 *   and receivers of the slot spin until it returns); it may run while a
 *   lagging receiver's copy of the same bytes is being thrown away.
 * - Slots are written in position order: a sender a whole lap ahead of
 *   another (tiny ring, many senders) waits for that one's copy to finish.
 * - Receivers read without locks or atomic RMWs (a seqlock check on the
 *   slot); a send costs one short lock for the position claim.
 * - Handles are heap objects; the channel's memory goes when the last
 *   handle (sender or receiver) is dropped. A handle must not be used
 *   after its drop.
 *
 * A recv holds nothing afterwards (the value is a copy), so there is no
 * hold object and no phase 2.
 *
 * Tries never fail spuriously (as Tokio's try_recv): a receive at URSA_NOW
 * (try_recv), or with a deadline already passed, reports "empty" only if
 * no send that has returned is waiting for rx; a value behind a send still
 * copying its bytes in is waited for (that copy). */
#ifndef URSA_BROADCAST_H
#define URSA_BROADCAST_H

#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_broadcast_tx ursa_broadcast_tx_t; /* a sender handle */
typedef struct ursa_broadcast_rx ursa_broadcast_rx_t; /* a receiver handle */
/* A weak sender (Tokio's WeakSender): keeps the channel's memory, not the
 * sending side; upgraded to a sender while one is left. */
typedef struct ursa_broadcast_weak ursa_broadcast_weak_t;

/* Not a wait: creates a channel with one sender and one receiver handle,
 * or with the sender alone when rx is NULL (Tokio's Sender::new: sends
 * return -EPIPE until ursa_broadcast_subscribe makes a receiver). capacity
 * is rounded up to a power of two. dtor (may be NULL) receives a pointer
 * to each value the ring lets go of (see above).
 *   0        *tx (and *rx) set
 *   -EINVAL  NULL tx, elem_size 0, capacity 0, or a size that overflows
 *   -ENOMEM  out of memory (nothing allocated) */
URSA_API int ursa_broadcast_new(ursa_broadcast_tx_t **tx, ursa_broadcast_rx_t **rx,
                                size_t elem_size, size_t capacity,
                                void (*dtor)(void *elem)) URSA_NODISCARD;

/* Not a wait: copies *value (elem_size bytes) into the ring and wakes
 * every waiting receiver. Never blocks (overwrites the oldest value when
 * the ring is full). Any thread or task.
 *   n >= 1   the number of receivers subscribed at the moment of the send
 *            (each will see the value unless it lags behind by more than
 *            the capacity first); the channel now owns the value
 *   -EPIPE   no receiver exists: nothing was sent, the value stays with
 *            the caller (the destructor is not called)
 *   -EINVAL  NULL tx or value */
URSA_API int ursa_broadcast_send(ursa_broadcast_tx_t *tx, const void *value);

/* Phase 1 (wait; there is no phase 2): receives the next value for rx,
 * waiting until one is sent. Works in a task (suspends) and on a plain
 * thread (parks). missed may be NULL.
 *   0           *out (elem_size bytes) holds the next value
 *   -EOVERFLOW  rx lagged: *missed = how many values it lost (>= 1); it
 *               now continues from the oldest value still retained, which
 *               the next recv returns. *out untouched.
 *   -EPIPE      every sender was dropped and rx has received everything
 *   -EAGAIN     deadline is URSA_NOW and nothing is ready
 *   -ETIMEDOUT  the deadline passed first (an expired deadline still
 *               tries once)
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     NULL rx or out
 * On -EAGAIN/-ETIMEDOUT/-ECANCELED nothing was consumed. */
#define ursa_broadcast_recv(rx, out, missed, deadline) \
    ursa_broadcast_recv_at(rx, out, missed, deadline, URSA_SITE)
URSA_API int ursa_broadcast_recv_at(ursa_broadcast_rx_t *rx, void *out, uint64_t *missed,
                                    ursa_time_t deadline, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait): ursa_broadcast_recv with URSA_NOW (never waits).
 *   0           *out holds the next value
 *   -EOVERFLOW  rx lagged (as above)
 *   -EPIPE      every sender was dropped and rx has received everything
 *   -EAGAIN     nothing ready
 *   -EINVAL     NULL rx or out */
URSA_API int ursa_broadcast_try_recv(ursa_broadcast_rx_t *rx, void *out,
                                     uint64_t *missed) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start waits until rx has something to report (a value,
 * a lag, or the close):
 *   0             ready now: call _finish
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a value is sent or the last sender drops
 *   -EINVAL       NULL rx / w / waker.fn
 * _finish, once ursa_wait_ready(w); the wait is over unless -EAGAIN:
 *   0           as ursa_broadcast_recv
 *   -EOVERFLOW  as ursa_broadcast_recv
 *   -EPIPE      as ursa_broadcast_recv
 *   -EAGAIN     nothing ready after all (not woken yet; or woken by a
 *               value for a later position while an earlier send is
 *               still being written): w is queued again and its waker
 *               will be called again
 *   -EINVAL     NULL, w not started on rx, or already finished /
 *               cancelled
 * Or ursa_wait_cancel(w) (-ECANCELED) instead: nothing is consumed. The
 * receiver must not be dropped while w is queued. _start (and a _finish
 * that re-queues) may spin for the few instructions a send on another
 * thread needs between claiming rx's next position and publishing it. */
#define ursa_broadcast_recv_start(rx, w, ...) \
    ursa_broadcast_recv_start_at(rx, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_broadcast_recv_start_at(ursa_broadcast_rx_t *rx, ursa_wait_t *w,
                                          ursa_waker_t waker,
                                          const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_broadcast_recv_finish(ursa_broadcast_rx_t *rx, ursa_wait_t *w, void *out,
                                        uint64_t *missed) URSA_NODISCARD;

/* Not a wait: a new receiver that sees every value sent after this call.
 *   0        *rx set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_broadcast_subscribe(ursa_broadcast_tx_t *tx,
                                      ursa_broadcast_rx_t **rx) URSA_NODISCARD;

/* Not a wait: a new receiver on rx's channel starting at the tail, like
 * subscribe (it does not copy rx's position; Tokio's resubscribe). Works
 * after the senders are gone (the new receiver then gets -EPIPE).
 *   0        *rx2 set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_broadcast_resubscribe(ursa_broadcast_rx_t *rx,
                                        ursa_broadcast_rx_t **rx2) URSA_NODISCARD;

/* Not a wait: how many receivers exist now.
 *   n >= 0   the count
 *   -EINVAL  tx is NULL */
URSA_API int ursa_broadcast_receiver_count(ursa_broadcast_tx_t *tx);

/* Not a wait: a new sender handle on tx's channel.
 *   0        *tx2 set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_broadcast_sender_clone(ursa_broadcast_tx_t *tx,
                                         ursa_broadcast_tx_t **tx2) URSA_NODISCARD;

/* Not a wait: drops a sender handle. The last sender's drop closes the
 * channel: receivers drain what is left, then get -EPIPE; waiting
 * receivers are woken. Frees the channel if it was the last handle.
 *   0        dropped
 *   -EINVAL  tx is NULL */
URSA_API int ursa_broadcast_sender_drop(ursa_broadcast_tx_t *tx);

/* Not a wait: drops a receiver handle; the values it had not read are no
 * longer counted for it (sends see one receiver fewer). Frees the channel
 * if it was the last handle.
 *   0        dropped
 *   -EBUSY   a raw wait of rx is still queued (finish or cancel it first;
 *            reported as misuse, nothing changed)
 *   -EINVAL  rx is NULL */
URSA_API int ursa_broadcast_receiver_drop(ursa_broadcast_rx_t *rx);

/* Not a wait: a weak sender on tx's channel. It does not keep the channel
 * open (the last strong sender's drop still closes it), only its memory.
 *   0        *out set
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_broadcast_sender_downgrade(ursa_broadcast_tx_t *tx,
                                             ursa_broadcast_weak_t **out) URSA_NODISCARD;

/* Not a wait: a strong sender from a weak one.
 *   0        *out set (drop it with ursa_broadcast_sender_drop)
 *   -EPIPE   no strong sender is left: the channel is closed for good
 *   -EINVAL  NULL argument
 *   -ENOMEM  out of memory */
URSA_API int ursa_broadcast_weak_upgrade(ursa_broadcast_weak_t *w,
                                         ursa_broadcast_tx_t **out) URSA_NODISCARD;

/* Not a wait: drops a weak sender; frees the channel if it was the last
 * handle. 0 dropped; -EINVAL NULL. */
URSA_API int ursa_broadcast_weak_drop(ursa_broadcast_weak_t *w);

/* Not a wait: live strong / weak sender handles (snapshots).
 *   n >= 0   the count
 *   -EINVAL  tx is NULL */
URSA_API long ursa_broadcast_sender_count(ursa_broadcast_tx_t *tx);
URSA_API long ursa_broadcast_weak_count(ursa_broadcast_tx_t *tx);

/* Phase 1 (wait; no hold follows), sender: waits until no receiver is
 * left (Tokio's Sender::closed), so a producer can stop. A receiver that
 * subscribes again before the waiter runs makes it wait on. Task:
 * suspends; plain thread: parks.
 *   0           no receiver
 *   -EAGAIN     deadline is URSA_NOW and a receiver exists
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     tx is NULL */
#define ursa_broadcast_closed(tx, deadline) ursa_broadcast_closed_at(tx, deadline, URSA_SITE)
URSA_API int ursa_broadcast_closed_at(ursa_broadcast_tx_t *tx, ursa_time_t deadline,
                                      const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), sender, raw two-phase closed (calling context 3, see
 * ursa/wait.h); finish or cancel it before tx is dropped. _start:
 *   0             no receiver already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the last receiver drops
 *   -EINVAL       NULL tx / w / waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        no receiver
 *   -EAGAIN  not woken yet (w stays queued); or woken, but a receiver
 *            subscribed again: the wait is over, start again
 *   -EINVAL  NULL, w not a closed wait of tx's channel, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn. */
URSA_API int ursa_broadcast_closed_start(ursa_broadcast_tx_t *tx, ursa_wait_t *w,
                                         ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_broadcast_closed_finish(ursa_broadcast_tx_t *tx,
                                          ursa_wait_t *w) URSA_NODISCARD;

/* Not a wait, sender: is no receiver left (sends would return -EPIPE)?
 *   1        no receiver
 *   0        at least one
 *   -EINVAL  tx is NULL */
URSA_API int ursa_broadcast_is_closed(ursa_broadcast_tx_t *tx);

/* Not a wait: the ring's capacity (the rounded power of two), or 0 for
 * NULL. */
URSA_API size_t ursa_broadcast_capacity(const ursa_broadcast_tx_t *tx);

/* Not a wait: how many values rx has not read yet and could still read
 * without lagging (a snapshot).
 *   n >= 0   the count (at most the capacity)
 *   -EINVAL  rx is NULL */
URSA_API long ursa_broadcast_rx_len(const ursa_broadcast_rx_t *rx);

/* Not a wait: how many values are still queued for some receiver (Tokio's
 * Sender::len): sent, not yet read by at least one receiver that existed
 * at the send, and not yet overwritten (a snapshot; O(receivers), under
 * the channel lock). 0 with no receiver.
 *   n >= 0   the count (at most the capacity)
 *   -EINVAL  tx is NULL */
URSA_API long ursa_broadcast_len(ursa_broadcast_tx_t *tx);

/* Typed wrappers: URSA_BROADCAST_TYPED(ev_bc, struct event) defines
 * ev_bc_tx_t / ev_bc_rx_t (distinct handle types) and ev_bc_new, _send,
 * _recv, _try_recv, _subscribe, _resubscribe, _receiver_count, _len,
 * _sender_clone, _sender_drop, _receiver_drop taking T pointers. The
 * element size is sizeof(T). */
#define URSA_BROADCAST_TYPED(name, T)                                                             \
    typedef struct name##_tx_s name##_tx_t;                                                       \
    typedef struct name##_rx_s name##_rx_t;                                                       \
    URSA__TYPED_FN URSA_NODISCARD int name##_new(                                                 \
        name##_tx_t **tx, name##_rx_t **rx, size_t capacity, void (*dtor)(void *))                \
    {                                                                                             \
        return ursa_broadcast_new((ursa_broadcast_tx_t **)(void *)tx,                             \
                                  (ursa_broadcast_rx_t **)(void *)rx, sizeof(T), capacity,        \
                                  dtor);                                                          \
    }                                                                                             \
    URSA__TYPED_FN int name##_send(name##_tx_t *tx, const T *value)                               \
    {                                                                                             \
        return ursa_broadcast_send((ursa_broadcast_tx_t *)(void *)tx, value);                     \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_recv(                                                \
        name##_rx_t *rx, T *out, uint64_t *missed, ursa_time_t deadline)                          \
    {                                                                                             \
        return ursa_broadcast_recv((ursa_broadcast_rx_t *)(void *)rx, out, missed, deadline);     \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_try_recv(                                            \
        name##_rx_t *rx, T *out, uint64_t *missed)                                                \
    {                                                                                             \
        return ursa_broadcast_try_recv((ursa_broadcast_rx_t *)(void *)rx, out, missed);           \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_subscribe(                                           \
        name##_tx_t *tx, name##_rx_t **rx)                                                        \
    {                                                                                             \
        return ursa_broadcast_subscribe((ursa_broadcast_tx_t *)(void *)tx,                        \
                                        (ursa_broadcast_rx_t **)(void *)rx);                      \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_resubscribe(                                         \
        name##_rx_t *rx, name##_rx_t **rx2)                                                       \
    {                                                                                             \
        return ursa_broadcast_resubscribe((ursa_broadcast_rx_t *)(void *)rx,                      \
                                          (ursa_broadcast_rx_t **)(void *)rx2);                   \
    }                                                                                             \
    URSA__TYPED_FN int name##_receiver_count(name##_tx_t *tx)                                     \
    {                                                                                             \
        return ursa_broadcast_receiver_count((ursa_broadcast_tx_t *)(void *)tx);                  \
    }                                                                                             \
    URSA__TYPED_FN long name##_len(name##_tx_t *tx)                                               \
    {                                                                                             \
        return ursa_broadcast_len((ursa_broadcast_tx_t *)(void *)tx);                             \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_sender_clone(                                        \
        name##_tx_t *tx, name##_tx_t **tx2)                                                       \
    {                                                                                             \
        return ursa_broadcast_sender_clone((ursa_broadcast_tx_t *)(void *)tx,                     \
                                           (ursa_broadcast_tx_t **)(void *)tx2);                  \
    }                                                                                             \
    URSA__TYPED_FN int name##_sender_drop(name##_tx_t *tx)                                        \
    {                                                                                             \
        return ursa_broadcast_sender_drop((ursa_broadcast_tx_t *)(void *)tx);                     \
    }                                                                                             \
    URSA__TYPED_FN int name##_receiver_drop(name##_rx_t *rx)                                      \
    {                                                                                             \
        return ursa_broadcast_receiver_drop((ursa_broadcast_rx_t *)(void *)rx);                   \
    }

URSA_EXTERN_C_END

#endif
