/* ursa — oneshot channel: one value, sent once, received once (the model
 * is Tokio's oneshot).
 *
 *     ursa_oneshot_t os;
 *     ursa_oneshot_init(&os, sizeof(int), NULL);     // inline storage
 *
 *     // sender (any task or thread)              // receiver
 *     int v = 42;                                 int got;
 *     if (ursa_oneshot_send(&os, &v) == -EPIPE)   rc = ursa_oneshot_recv(&os, &got,
 *         ;  // receiver gone, v is still ours                        URSA_NEVER);
 *                                                 // 0: got == 42; -EPIPE: sender
 *                                                 // dropped without sending
 *
 * Storage: the value is copied into the channel. With storage == NULL the
 * channel keeps it in an inline buffer of URSA_ONESHOT_INLINE bytes (so
 * elem_size must not exceed it); otherwise the caller passes `storage` of
 * elem_size bytes that must outlive the channel. Either way nothing is
 * allocated, and an initialised oneshot may not be moved (waits point at it).
 *
 * Lifetime of the embedded form: whoever destroys (or reuses the memory
 * of) an embedded oneshot must know that the other end will not call it
 * again: the sender has sent or dropped, the receiver has dropped. A
 * receiver that gives up (a timed-out recv) cannot know that: a late send
 * would land in whatever lives at that address next. For request/response
 * use the shared form below (ursa_oneshot_new): two handles, each dropped
 * by its own end, the memory freed with the last one; a send after the
 * receiver's drop fails with -EPIPE.
 *
 * The two ends are implicit: whoever calls the sender calls (send,
 * sender_drop, closed) is the sender, whoever calls recv/try_recv/close/
 * receiver_drop is the receiver. Each end may move between tasks and
 * threads, but at most one call per end may be in progress at a time (two
 * sends racing each other on one oneshot are misuse: one gets -EALREADY,
 * but the value received is then undefined).
 *
 * Cost: an uncontended send is one atomic RMW; recv takes a sent value
 * with plain loads; init and destroy are plain stores/loads. The internal
 * lock is taken only when a wait is queued or an end closes/drops.
 *
 * Closing:
 * - ursa_oneshot_sender_drop without a send: the receiver gets -EPIPE.
 * - ursa_oneshot_close (receiver): later sends fail with -EPIPE and the
 *   value stays with the sender; a value sent before the close stays
 *   receivable (try_recv / recv return it). A close racing a send is
 *   decided at one point: either the send returns 0 and the value can
 *   still be received, or the send returns -EPIPE; never both, never
 *   neither.
 * - ursa_oneshot_receiver_drop: close, and the receiver end is gone (an
 *   unreceived value is discarded). ursa_oneshot_closed() wakes on either.
 *
 * Waits (recv, closed) follow the two-phase contract's phase 1; neither
 * yields a hold, so there is no phase 2. Both exist in blocking form (task
 * or plain thread) and raw _start/_finish form (ursa/wait.h). */
#ifndef URSA_ONESHOT_H
#define URSA_ONESHOT_H

#include "detail/oneshot.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* Largest elem_size a oneshot can keep inline (storage == NULL). */
#define URSA_ONESHOT_INLINE URSA__ONESHOT_INLINE

/* A oneshot: embed it, ursa_oneshot_init it. Fields private
 * (ursa/detail/oneshot.h). */
typedef struct ursa_oneshot ursa_oneshot_t;

/* Not a wait: initialises an embedded oneshot: nothing sent, both ends
 * present. storage: elem_size bytes owned by the caller, or NULL to use
 * the inline buffer.
 *   0        initialised
 *   -EINVAL  os NULL, elem_size 0, or storage NULL with elem_size >
 *            URSA_ONESHOT_INLINE */
URSA_API int ursa_oneshot_init(ursa_oneshot_t *os, size_t elem_size, void *storage);

/* Not a wait: ends the oneshot's life (any state of the ends is fine).
 *   0        done
 *   -EBUSY   a recv or closed wait is still in progress (reported as
 *            misuse; nothing changed)
 *   -EINVAL  NULL */
URSA_API int ursa_oneshot_destroy(ursa_oneshot_t *os);

/* Not a wait, sender: copies elem_size bytes from value into the channel
 * and wakes the receiver. Never blocks. The sender end is finished
 * afterwards, whatever the result.
 *   0          sent; the receiver will get it (even if it closes now)
 *   -EPIPE     the receiver closed or dropped first; nothing was stored
 *              and *value is untouched: it stays the sender's
 *   -EALREADY  already sent (nothing changed)
 *   -EINVAL    NULL argument, or the sender end was dropped */
URSA_API int ursa_oneshot_send(ursa_oneshot_t *os, const void *value);

/* Not a wait, sender: ends the sender without sending. A receiver waiting
 * (or coming later) gets -EPIPE. After a successful send it is a harmless
 * no-op.
 *   0        dropped (or already finished by send)
 *   -EINVAL  NULL, or dropped twice */
URSA_API int ursa_oneshot_sender_drop(ursa_oneshot_t *os);

/* Phase 1 (wait; there is no phase 2), receiver: waits for the value
 * and copies it to out (elem_size bytes). Task: suspends; plain thread:
 * parks.
 *   0           received
 *   -EPIPE      the sender dropped without sending, or the receiver closed
 *               and nothing had been sent
 *   -EAGAIN     deadline is URSA_NOW and nothing sent yet
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EALREADY   the value was already received
 *   -EBUSY      another recv wait on os is in progress (misuse)
 *   -EINVAL     NULL argument, or the receiver was dropped
 * On an error the value (if any) stays in the channel. A value that lands
 * in the same instant as the deadline or cancel is taken: 0. */
#define ursa_oneshot_recv(os, out, deadline) ursa_oneshot_recv_at(os, out, deadline, URSA_SITE)
URSA_API int ursa_oneshot_recv_at(ursa_oneshot_t *os, void *out, ursa_time_t deadline,
                                  const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), receiver: ursa_oneshot_recv with URSA_NOW (never
 * waits). Works after ursa_oneshot_close.
 *   0          received
 *   -EAGAIN    nothing sent yet
 *   -EPIPE     nothing was or will be sent
 *   -EALREADY  the value was already received
 *   -EINVAL    NULL argument, or the receiver was dropped */
URSA_API int ursa_oneshot_try_recv(ursa_oneshot_t *os, void *out) URSA_NODISCARD;

/* Not a wait, receiver: closes early. Later sends fail with -EPIPE; a
 * value already sent stays receivable; a sender waiting in
 * ursa_oneshot_closed wakes; a recv wait in progress with nothing sent
 * completes with -EPIPE. Idempotent.
 *   0        closed
 *   -EINVAL  NULL, or the receiver was dropped */
URSA_API int ursa_oneshot_close(ursa_oneshot_t *os);

/* Not a wait, receiver: ends the receiver (closes it; an unreceived
 * value is discarded).
 *   0        dropped
 *   -EINVAL  NULL, or dropped twice */
URSA_API int ursa_oneshot_receiver_drop(ursa_oneshot_t *os);

/* Not a wait: is the receiver gone? Any thread; never blocks.
 *   1        yes: after close or receiver_drop
 *   0        no
 *   -EINVAL  os is NULL */
URSA_API int ursa_oneshot_is_closed(const ursa_oneshot_t *os);

/* Phase 1 (wait), sender: waits until the receiver closes or drops (lets
 * a producer stop computing a value nobody wants).
 *   0           the receiver is gone
 *   -EAGAIN     deadline is URSA_NOW and the receiver is still there
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EBUSY      another closed wait on os is in progress (misuse)
 *   -EINVAL     NULL */
#define ursa_oneshot_closed(os, deadline) ursa_oneshot_closed_at(os, deadline, URSA_SITE)
URSA_API int ursa_oneshot_closed_at(ursa_oneshot_t *os, ursa_time_t deadline,
                                    const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), receiver, raw two-phase recv (calling context 3, see
 * ursa/wait.h). _start:
 *   0             already decided (a value, or the end): call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a value arrives or the sender drops
 *   -EALREADY     as for ursa_oneshot_recv (not started)
 *   -EBUSY        as for ursa_oneshot_recv (not started)
 *   -EINVAL       NULL os / w / waker.fn, or the receiver was dropped
 * _finish, once ursa_wait_ready(w):
 *   0        received: the value was copied to out
 *   -EPIPE   nothing was or will be sent
 *   -EAGAIN  not decided yet (w stays queued)
 *   -EINVAL  NULL, w not a started recv wait of os, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn; the value, if
 * any, stays in the channel. */
#define ursa_oneshot_recv_start(os, w, ...) ursa_oneshot_recv_start_at(os, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_oneshot_recv_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                                        const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_oneshot_recv_finish(ursa_oneshot_t *os, ursa_wait_t *w,
                                      void *out) URSA_NODISCARD;

/* Phase 1 (wait), sender, raw two-phase closed(). _start:
 *   0             the receiver is gone already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the receiver goes
 *   -EBUSY        another closed wait on os is in progress (misuse)
 *   -EINVAL       NULL os / w / waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        the receiver is gone
 *   -EAGAIN  not yet (w stays queued)
 *   -EINVAL  NULL, w not a started closed wait of os, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn. */
#define ursa_oneshot_closed_start(os, w, ...) \
    ursa_oneshot_closed_start_at(os, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_oneshot_closed_start_at(ursa_oneshot_t *os, ursa_wait_t *w, ursa_waker_t waker,
                                          const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_oneshot_closed_finish(ursa_oneshot_t *os, ursa_wait_t *w) URSA_NODISCARD;

/* Not a wait, receiver: can a receive still return a value?
 *   1        no: the value was received, or nothing was sent and nothing
 *            will be (sender dropped, or closed with nothing sent)
 *   0        yes (a value is there, or may still come)
 *   -EINVAL  os NULL, or the receiver was dropped */
URSA_API int ursa_oneshot_is_terminated(const ursa_oneshot_t *os);

/* Not a wait, receiver: is there no value to receive right now?
 *   1        empty: nothing sent yet, already received, or ended
 *   0        a value is waiting (try_recv would return 0)
 *   -EINVAL  os NULL, or the receiver was dropped */
URSA_API int ursa_oneshot_is_empty(const ursa_oneshot_t *os);

/* ---- The shared form: two handles, dropped independently ----
 *
 *     ursa_oneshot_tx_t tx;  ursa_oneshot_rx_t rx;
 *     ursa_oneshot_new(&tx, &rx, sizeof(int));   // allocates
 *     // hand tx to the responder (e.g. inside a request message)
 *     int v;                                     // requester:
 *     if (ursa_oneshot_rx_recv(&rx, &v, dl) == -ETIMEDOUT)
 *         ;                                      // give up:
 *     ursa_oneshot_rx_drop(&rx);                 // the late send gets -EPIPE
 *     // responder: ursa_oneshot_tx_send(&tx, &v); ursa_oneshot_tx_drop(&tx);
 *
 * Each end's calls behave as the embedded oneshot's above (same return
 * codes); a dropped handle (NULL inside) gives -EINVAL. Each handle is
 * dropped exactly once, by its own end, whatever happened before (a sent
 * value does not drop the sender handle); the channel is freed with the
 * last drop. A handle may be copied to move it (into a message), but only
 * one copy is used and dropped. */

struct ursa_oneshot_shared; /* private */

typedef struct ursa_oneshot_tx {
    struct ursa_oneshot_shared *sh; /* NULL once dropped */
} ursa_oneshot_tx_t;

typedef struct ursa_oneshot_rx {
    struct ursa_oneshot_shared *sh; /* NULL once dropped */
} ursa_oneshot_rx_t;

/* Not a wait: a shared oneshot of elem_size bytes (the value is copied
 * into the allocation), nothing sent, both handles live.
 *   0        *tx and *rx set
 *   -EINVAL  tx or rx NULL, elem_size 0 or > 2^30
 *   -ENOMEM  no memory (nothing allocated) */
URSA_API int ursa_oneshot_new(ursa_oneshot_tx_t *tx, ursa_oneshot_rx_t *rx, size_t elem_size);

/* Not a wait, sender: ursa_oneshot_send through the handle. 0 sent;
 * -EPIPE the receiver closed or dropped (the value stays yours);
 * -EALREADY sent before; -EINVAL NULL or dropped handle. */
URSA_API int ursa_oneshot_tx_send(const ursa_oneshot_tx_t *tx, const void *value);

/* Not a wait, sender: drops the sender handle (without a send, the
 * receiver gets -EPIPE); the last handle frees the channel. 0 dropped;
 * -EINVAL NULL or already dropped. */
URSA_API int ursa_oneshot_tx_drop(ursa_oneshot_tx_t *tx);

/* Not a wait, sender: is the receiver gone (closed or dropped)? 1 yes,
 * 0 no, -EINVAL NULL or dropped handle. */
URSA_API int ursa_oneshot_tx_is_closed(const ursa_oneshot_tx_t *tx);

/* Phase 1 (wait), sender: ursa_oneshot_closed through the handle (waits
 * until the receiver closes or drops its handle); its return codes. */
#define ursa_oneshot_tx_closed(tx, deadline) ursa_oneshot_tx_closed_at(tx, deadline, URSA_SITE)
URSA_API int ursa_oneshot_tx_closed_at(const ursa_oneshot_tx_t *tx, ursa_time_t deadline,
                                       const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), receiver: ursa_oneshot_recv / _try_recv through the
 * handle; their return codes (-EINVAL also for a dropped handle). */
#define ursa_oneshot_rx_recv(rx, out, deadline) \
    ursa_oneshot_rx_recv_at(rx, out, deadline, URSA_SITE)
URSA_API int ursa_oneshot_rx_recv_at(const ursa_oneshot_rx_t *rx, void *out,
                                     ursa_time_t deadline,
                                     const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_oneshot_rx_try_recv(const ursa_oneshot_rx_t *rx, void *out) URSA_NODISCARD;

/* Phase 1 (wait), receiver, raw: ursa_oneshot_recv_start / _finish
 * through the handle; their return codes. A started wait is finished or
 * cancelled before the handle is dropped. */
#define ursa_oneshot_rx_recv_start(rx, w, waker) \
    ursa_oneshot_rx_recv_start_at(rx, w, waker, URSA_SITE)
URSA_API int ursa_oneshot_rx_recv_start_at(const ursa_oneshot_rx_t *rx, ursa_wait_t *w,
                                           ursa_waker_t waker,
                                           const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_oneshot_rx_recv_finish(const ursa_oneshot_rx_t *rx, ursa_wait_t *w,
                                         void *out) URSA_NODISCARD;

/* Not a wait, receiver: ursa_oneshot_close through the handle (later
 * sends fail with -EPIPE; a value sent before stays receivable). 0 closed;
 * -EINVAL NULL or dropped handle. */
URSA_API int ursa_oneshot_rx_close(const ursa_oneshot_rx_t *rx);

/* Not a wait, receiver: ursa_oneshot_is_terminated / _is_empty through
 * the handle; their results (-EINVAL also for a dropped handle). */
URSA_API int ursa_oneshot_rx_is_terminated(const ursa_oneshot_rx_t *rx);
URSA_API int ursa_oneshot_rx_is_empty(const ursa_oneshot_rx_t *rx);

/* Not a wait, receiver: drops the receiver handle (closes; an unreceived
 * value is discarded; a later send fails with -EPIPE); the last handle
 * frees the channel. 0 dropped; -EINVAL NULL or already dropped. */
URSA_API int ursa_oneshot_rx_drop(ursa_oneshot_rx_t *rx);

/* Typed wrappers: URSA_ONESHOT_TYPED(int_os, int) defines the struct
 * int_os_t (a oneshot with a T slot as its storage, any size of T) and
 * static inline int_os_init / _destroy / _send(o, T v) / _sender_drop /
 * _recv(o, T *out, deadline) / _try_recv / _close / _receiver_drop /
 * _closed(o, deadline), with the return codes of the functions above. */

#define URSA_ONESHOT_TYPED(name, T)                                                               \
    typedef struct name {                                                                         \
        ursa_oneshot_t os;                                                                        \
        T slot;                                                                                   \
    } name##_t;                                                                                   \
    URSA__TYPED_FN int name##_init(name##_t *o)                                                   \
    {                                                                                             \
        return o ? ursa_oneshot_init(&o->os, sizeof(T), &o->slot) : -EINVAL;                      \
    }                                                                                             \
    URSA__TYPED_FN int name##_destroy(name##_t *o)                                                \
    {                                                                                             \
        return o ? ursa_oneshot_destroy(&o->os) : -EINVAL;                                        \
    }                                                                                             \
    URSA__TYPED_FN int name##_send(name##_t *o, T v)                                              \
    {                                                                                             \
        return o ? ursa_oneshot_send(&o->os, &v) : -EINVAL;                                       \
    }                                                                                             \
    URSA__TYPED_FN int name##_sender_drop(name##_t *o)                                            \
    {                                                                                             \
        return o ? ursa_oneshot_sender_drop(&o->os) : -EINVAL;                                    \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_recv(name##_t *o, T *out, ursa_time_t dl)            \
    {                                                                                             \
        return o ? ursa_oneshot_recv(&o->os, out, dl) : -EINVAL;                                  \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_try_recv(name##_t *o, T *out)                        \
    {                                                                                             \
        return o ? ursa_oneshot_try_recv(&o->os, out) : -EINVAL;                                  \
    }                                                                                             \
    URSA__TYPED_FN int name##_close(name##_t *o)                                                  \
    {                                                                                             \
        return o ? ursa_oneshot_close(&o->os) : -EINVAL;                                          \
    }                                                                                             \
    URSA__TYPED_FN int name##_receiver_drop(name##_t *o)                                          \
    {                                                                                             \
        return o ? ursa_oneshot_receiver_drop(&o->os) : -EINVAL;                                  \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_closed(name##_t *o, ursa_time_t dl)                  \
    {                                                                                             \
        return o ? ursa_oneshot_closed(&o->os, dl) : -EINVAL;                                     \
    }

URSA_EXTERN_C_END

#endif
