/* ursa — multi-producer, single-consumer channel of fixed-size elements.
 *
 *     ursa_mpsc_receiver_t rx; ursa_mpsc_sender_t tx;
 *     ursa_mpsc_new(&rx, &tx, sizeof(uint64_t), 1024, NULL);
 *     uint64_t v = 42, out;
 *     ursa_mpsc_send(&tx, &v, URSA_NEVER);          // reserve + send
 *     ursa_mpsc_recv(&rx, &out, URSA_NEVER);
 *     ursa_mpsc_sender_drop(&tx);                   // receiver: -EPIPE once drained
 *     ursa_mpsc_receiver_drop(&rx);                 // memory freed with the last handle
 *
 * Elements are copied in and out (`elem_size` bytes). A bounded channel
 * (capacity > 0) keeps at most `capacity` messages plus reserved slots;
 * senders wait for a slot in FIFO order (the batch semaphore). capacity 0
 * makes it unbounded (reserve never waits). Storage is lock-free for
 * producers (see docs/mpsc.md).
 *
 * Handles are small structs holding a reference; each handle variable is
 * dropped exactly once, and not while a call on that same variable is in
 * progress (give each task or thread its own clone; to stop a blocked
 * receiver, drop the senders). The channel is freed when the last handle (strong
 * or weak sender, receiver) and the last send permit are gone; undelivered
 * messages then go to the element destructor, each exactly once.
 *
 * Phases: reserve/send/recv are phase 1 (wait, with a deadline: URSA_NEVER,
 * URSA_NOW = try, or absolute). A send permit is a phase-2 hold (obligation
 * kind "mpsc send permit"): discharge it with ursa_mpsc_permit_send (once
 * per reserved slot) or ursa_mpsc_permit_release. A permit leaked at task or
 * thread exit is reported and its slots are returned.
 *
 * Tries never fail spuriously (as Tokio's try_recv): a receive at URSA_NOW
 * (try_recv, recv_many), or with a deadline already passed, reports
 * "empty" only if no send that has returned is queued; a message queued
 * behind a send still copying its element in is waited for (that copy:
 * no lock, no wait). A send or reserve at URSA_NOW reports "full" only if
 * no slot is free or senders are queued ahead, never while a slot freed
 * by a receive that has returned is unused. */
#ifndef URSA_MPSC_H
#define URSA_MPSC_H

#include "detail/chan_typed.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_mpsc ursa_mpsc_t; /* private */

/* Optional destructor for elements that are never received. */
typedef void (*ursa_mpsc_dtor_t)(void *elem);

typedef struct ursa_mpsc_sender {
    ursa_mpsc_t *ch; /* NULL once dropped */
} ursa_mpsc_sender_t;

typedef struct ursa_mpsc_weak_sender {
    ursa_mpsc_t *ch;
} ursa_mpsc_weak_sender_t;

typedef struct ursa_mpsc_receiver {
    ursa_mpsc_t *ch;
} ursa_mpsc_receiver_t;

/* The hold: `n` reserved slots, each to be used by a permit_send or
 * returned by permit_release. Zero-initialise before use. */
typedef struct ursa_mpsc_permit {
    ursa_oblig_t ob;
    ursa_mpsc_t *ch; /* NULL when holding nothing */
    uint64_t n;      /* slots still reserved */
} ursa_mpsc_permit_t;

/* Largest capacity (and reserve_many count). */
#define URSA_MPSC_MAX_CAPACITY ((uint64_t)1 << 40)

/* Not a wait: creates a channel: *rx and *tx get the receiver and the
 * first sender. capacity 0 = unbounded. dtor may be NULL.
 *   0        created
 *   -EINVAL  NULL handle, elem_size 0, or capacity >
 *            URSA_MPSC_MAX_CAPACITY
 *   -ENOMEM  out of memory */
URSA_API int ursa_mpsc_new(ursa_mpsc_receiver_t *rx, ursa_mpsc_sender_t *tx, size_t elem_size,
                           uint64_t capacity, ursa_mpsc_dtor_t dtor) URSA_NODISCARD;

/* ---- sender handles ---- */

/* Not a wait: *out becomes another strong sender.
 *   0        *out set
 *   -EINVAL  NULL, or tx dropped */
URSA_API int ursa_mpsc_sender_clone(const ursa_mpsc_sender_t *tx,
                                    ursa_mpsc_sender_t *out) URSA_NODISCARD;
/* Not a wait: drops a sender. The last strong one makes the receiver see
 * -EPIPE once drained and no permit is out.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpsc_sender_drop(ursa_mpsc_sender_t *tx);
/* Not a wait: *out becomes a weak sender: it keeps the memory, not the
 * channel, open.
 *   0        *out set
 *   -EINVAL  NULL, or tx dropped */
URSA_API int ursa_mpsc_sender_downgrade(const ursa_mpsc_sender_t *tx,
                                        ursa_mpsc_weak_sender_t *out) URSA_NODISCARD;
/* Not a wait: *out becomes a strong sender again.
 *   0        *out set
 *   -EPIPE   no strong sender is left: the channel's sending side is over
 *   -EINVAL  NULL, or w dropped */
URSA_API int ursa_mpsc_weak_upgrade(const ursa_mpsc_weak_sender_t *w,
                                    ursa_mpsc_sender_t *out) URSA_NODISCARD;
/* Not a wait: another weak sender.
 *   0        *out set
 *   -EINVAL  NULL, or w dropped */
URSA_API int ursa_mpsc_weak_clone(const ursa_mpsc_weak_sender_t *w,
                                  ursa_mpsc_weak_sender_t *out) URSA_NODISCARD;
/* Not a wait: drops a weak sender.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpsc_weak_drop(ursa_mpsc_weak_sender_t *w);

/* ---- sending ---- */

/* Phase 1 (wait): reserves one slot into p (waits for capacity, FIFO
 * among senders). Cancel-safe: on an error nothing is reserved.
 *   0           p holds the slot
 *   -EAGAIN     deadline is URSA_NOW and the channel is full, or senders
 *               are queued ahead
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EPIPE      the receiver closed or dropped
 *   -ENOMEM     the hold could not be recorded
 *   -EINVAL     NULL, dropped handle, or p already holds */
#define ursa_mpsc_reserve(tx, p, deadline) ursa_mpsc_reserve_many_at(tx, 1, p, deadline, URSA_SITE)
/* Phase 1 (wait): as reserve, for n slots at once (1 <= n <= capacity and
 * n < 2^32, or n <= URSA_MPSC_MAX_CAPACITY when unbounded;
 * otherwise -EINVAL). */
#define ursa_mpsc_reserve_many(tx, n, p, deadline) \
    ursa_mpsc_reserve_many_at(tx, n, p, deadline, URSA_SITE)
URSA_API int ursa_mpsc_reserve_many_at(const ursa_mpsc_sender_t *tx, uint64_t n,
                                       ursa_mpsc_permit_t *p, ursa_time_t deadline,
                                       const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): sends *value (elem_size bytes copied) using one reserved
 * slot; the permit is discharged when its last slot is used. Never waits.
 *   0        sent
 *   -EPIPE   the receiver is gone: the value is not taken and the slot is
 *            given up, like a release of one
 *   -EINVAL  NULL, or p holds nothing (reported)
 *   -EPERM   another task's or thread's permit */
URSA_API int ursa_mpsc_permit_send(ursa_mpsc_permit_t *p, const void *value);

/* Phase 2 (hold): returns every slot still reserved and discharges p.
 *   0        released; p is empty
 *   -EINVAL  NULL, or p holds nothing (a double release: reported)
 *   -EPERM   another task's or thread's permit */
URSA_API int ursa_mpsc_permit_release(ursa_mpsc_permit_t *p);

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(mpsc_permit, p):
 * releases if held, does nothing if empty. */
URSA_API void ursa_mpsc_permit_cleanup(ursa_mpsc_permit_t *p);

/* Phase 1 + 2 in one call: reserve one slot, then send *value. On an
 * error the value stays with the caller. Codes as ursa_mpsc_reserve
 * (-EPIPE also when the receiver went away between the two steps). */
URSA_API int ursa_mpsc_send(const ursa_mpsc_sender_t *tx, const void *value,
                            ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase reserve (calling context 3, see
 * ursa/wait.h; bounded channels only). _start:
 *   0             granted now: call _finish
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the slots are granted or the channel closes
 *   -EPIPE        the receiver closed or dropped (nothing started)
 *   -EINVAL       NULL, dropped handle, no waker.fn, n out of range, or an
 *                 unbounded channel (its reserve never waits: use
 *                 ursa_mpsc_reserve)
 * _finish, once ursa_wait_ready(w), fills p:
 *   0        p holds the slots
 *   -EPIPE   the channel closed first
 *   -EAGAIN  not decided yet (w stays queued)
 *   -ENOMEM  the hold could not be recorded (the slots went back)
 *   -EINVAL  NULL, p already holds, w not a reserve on tx's channel,
 *            or already finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: the slots go on to the next
 * sender. */
URSA_API int ursa_mpsc_reserve_start(const ursa_mpsc_sender_t *tx, uint64_t n, ursa_wait_t *w,
                                     ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpsc_reserve_finish(const ursa_mpsc_sender_t *tx, ursa_wait_t *w,
                                      ursa_mpsc_permit_t *p) URSA_NODISCARD;

/* ---- receiving (the receiver's owner only) ---- */

/* Phase 1 (wait; no hold follows: the element is copied out): the next
 * message in *out. Messages of one producer arrive in the order it sent
 * them.
 *   0           *out holds the message
 *   -EPIPE      closed or all strong senders gone, drained, and no permit
 *               or reserve outstanding
 *   -EAGAIN     deadline is URSA_NOW and the channel is empty
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     NULL, or rx dropped */
URSA_API int ursa_mpsc_recv(const ursa_mpsc_receiver_t *rx, void *out,
                            ursa_time_t deadline) URSA_NODISCARD;
/* Phase 1 (wait): ursa_mpsc_recv with URSA_NOW (never waits). */
URSA_API int ursa_mpsc_try_recv(const ursa_mpsc_receiver_t *rx, void *out) URSA_NODISCARD;
/* Phase 1 (wait): waits for at least one message, then copies up to max
 * consecutive messages into buf (max * elem_size bytes).
 *   n >= 1  how many it copied
 *   < 0     the codes of ursa_mpsc_recv (-EINVAL also for max 0) */
URSA_API long ursa_mpsc_recv_many(const ursa_mpsc_receiver_t *rx, void *buf, size_t max,
                                  ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase receive (calling context 3, see
 * ursa/wait.h). _start:
 *   0             something is ready now: call _finish
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a message or the end arrives
 *   -EINVAL       NULL, dropped handle, or no waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        *out holds the next message
 *   -EPIPE   the end (as for ursa_mpsc_recv)
 *   -EAGAIN  not ready yet; or ready, but the message was taken by
 *            another call: start again
 *   -EINVAL  NULL, or w not a receive on rx's channel, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn. */
URSA_API int ursa_mpsc_recv_start(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w,
                                  ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpsc_recv_finish(const ursa_mpsc_receiver_t *rx, ursa_wait_t *w,
                                   void *out) URSA_NODISCARD;

/* Not a wait: closes from the receiving side: later and waiting reserves
 * fail with -EPIPE; permits already out may still send; messages stay
 * receivable.
 *   0        closed
 *   -EINVAL  NULL, or rx dropped */
URSA_API int ursa_mpsc_close(const ursa_mpsc_receiver_t *rx);

/* Not a wait: drops the receiver: closes, destroys pending messages
 * (dtor), and later sends fail with -EPIPE.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpsc_receiver_drop(ursa_mpsc_receiver_t *rx);

/* ---- the senders' wait for the close (Tokio's Sender::closed) ---- */

/* Phase 1 (wait; no hold follows), sender: waits until the channel is
 * closed: the receiver closes or drops. Lets a producer stop making what nobody will receive.
 * Task: suspends; plain thread: parks. Whether it is closed now, without
 * waiting: ursa_mpsc_is_closed(tx.ch).
 *   0           closed
 *   -EAGAIN     deadline is URSA_NOW and the channel is open
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     NULL, or tx dropped */
#define ursa_mpsc_closed(tx, deadline) ursa_mpsc_closed_at(tx, deadline, URSA_SITE)
URSA_API int ursa_mpsc_closed_at(const ursa_mpsc_sender_t *tx, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), sender, raw two-phase closed (calling context 3, see
 * ursa/wait.h). Finish or cancel it before tx is dropped. _start:
 *   0             closed already: call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, at the close
 *   -EINVAL       NULL, dropped tx, or no waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        closed
 *   -EAGAIN  not yet (w stays queued)
 *   -EINVAL  NULL, w not a closed wait on tx's channel, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn. */
URSA_API int ursa_mpsc_closed_start(const ursa_mpsc_sender_t *tx, ursa_wait_t *w,
                                   ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpsc_closed_finish(const ursa_mpsc_sender_t *tx,
                                    ursa_wait_t *w) URSA_NODISCARD;

/* ---- queries (snapshots of any handle's channel) ---- */

/* Not a wait: messages queued (sent, not yet received); 0 for NULL. */
URSA_API uint64_t ursa_mpsc_len(const ursa_mpsc_t *ch);
/* Not a wait: capacity given at creation (0: unbounded; 0 for NULL). */
URSA_API uint64_t ursa_mpsc_capacity(const ursa_mpsc_t *ch);
/* Not a wait: slots free right now (Tokio's Sender::capacity; capacity()
 * above is its max_capacity): a send or reserve takes one, a receive or
 * a released permit gives one back. UINT64_MAX for an unbounded channel,
 * 0 for NULL. A snapshot. Called on another thread than the one that
 * made the channel, it ends the channel's send bias (see docs/mpsc.md). */
URSA_API uint64_t ursa_mpsc_free_slots(const ursa_mpsc_t *ch);
/* Not a wait: live strong / weak sender handles (snapshots; 0 for
 * NULL). */
URSA_API uint64_t ursa_mpsc_sender_count(const ursa_mpsc_t *ch);
URSA_API uint64_t ursa_mpsc_weak_count(const ursa_mpsc_t *ch);
/* Not a wait: bytes allocated for the channel right now (header +
 * storage); 0 for NULL. A bounded ring of 64 KiB or more is address space
 * whose pages become resident only as messages reach them. */
URSA_API size_t ursa_mpsc_memory(const ursa_mpsc_t *ch);
/* Not a wait: true once closed or the receiver is gone (false for NULL). */
URSA_API bool ursa_mpsc_is_closed(const ursa_mpsc_t *ch);

/* ---- typed wrapper ----
 * URSA_MPSC_TYPED(jobq, job_t) defines distinct handle types jobq_tx_t,
 * jobq_rx_t and jobq_permit_t (each wraps the untyped handle as .raw), and
 * static inline jobq_new(&rx, &tx, capacity), _sender_clone(&tx, &tx2),
 * _sender_drop(&tx), _receiver_drop(&rx), _close(&rx),
 * _send(&tx, T v, deadline), _try_send(&tx, T v), _reserve(&tx, &p,
 * deadline), _permit_send(&p, T v), _permit_release(&p),
 * _recv(&rx, T *out, deadline), _try_recv(&rx, T *out) and
 * _recv_many(&rx, T *buf, max, deadline), with the return codes of the
 * calls above (-EINVAL for a NULL handle). The element size is sizeof(T)
 * and a handle of another typed channel does not compile. Weak senders
 * and the raw waits are not wrapped: use .raw. */
#define URSA_MPSC_TYPED(name, T) URSA__CHAN_TYPED(mpsc, name, T)

URSA_EXTERN_C_END

#endif
