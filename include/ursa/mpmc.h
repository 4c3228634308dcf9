/* ursa — bounded multi-producer, multi-consumer channel of fixed-size
 * elements: every message goes to exactly one receiver.
 *
 *     ursa_mpmc_receiver_t rx, rx2; ursa_mpmc_sender_t tx;
 *     ursa_mpmc_new(&rx, &tx, sizeof(uint64_t), 1024, NULL);
 *     ursa_mpmc_receiver_clone(&rx, &rx2);          // one per consumer
 *     uint64_t v = 42, out;
 *     ursa_mpmc_send(&tx, &v, URSA_NEVER);          // reserve + send
 *     ursa_mpmc_recv(&rx2, &out, URSA_NEVER);       // one receiver gets it
 *     ursa_mpmc_sender_drop(&tx);                   // receivers: -EPIPE once drained
 *     ursa_mpmc_receiver_drop(&rx);
 *     ursa_mpmc_receiver_drop(&rx2);                // memory freed with the last handle
 *
 * Elements are copied in and out (`elem_size` bytes). The channel keeps at
 * most `capacity` (>= 1) messages plus reserved slots; senders wait for a
 * slot in FIFO order (the batch semaphore), receivers wait for a message in
 * FIFO order. Each send wakes at most one waiting receiver.
 *
 * Handles are small structs holding a reference; each handle variable is
 * dropped exactly once, and not while a call on that same variable is in
 * progress (to stop a blocked consumer, close the channel or drop the
 * senders; give each thread or task its own clone). The channel is freed
 * when the last handle (strong or weak sender, receiver) and the last send
 * permit are gone. When the
 * last receiver is dropped, later sends fail with -EPIPE and undelivered
 * messages go to the element destructor, each exactly once.
 *
 * Phases: reserve/send/recv are phase 1 (wait, with a deadline: URSA_NEVER,
 * URSA_NOW = try, or absolute). A send permit is a phase-2 hold (obligation
 * kind "mpmc send permit"): discharge it with ursa_mpmc_permit_send (once
 * per reserved slot) or ursa_mpmc_permit_release. A permit leaked at task or
 * thread exit is reported and its slots are returned. See docs/mpmc.md.
 *
 * Tries never fail spuriously (as Tokio's try_recv): a receive at URSA_NOW
 * (try_recv, recv_many), or with a deadline already passed, reports
 * "empty" only if no send that has returned is queued (or another
 * receiver took it); a message queued behind a send still copying its
 * element in is waited for (that copy: no lock, no wait). A send or
 * reserve at URSA_NOW reports "full" only if no slot is free or senders
 * are queued ahead. */
#ifndef URSA_MPMC_H
#define URSA_MPMC_H

#include "detail/chan_typed.h"
#include "oblig.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

typedef struct ursa_mpmc ursa_mpmc_t; /* private */

/* Optional destructor for elements that are never received. */
typedef void (*ursa_mpmc_dtor_t)(void *elem);

typedef struct ursa_mpmc_sender {
    ursa_mpmc_t *ch; /* NULL once dropped */
} ursa_mpmc_sender_t;

typedef struct ursa_mpmc_weak_sender {
    ursa_mpmc_t *ch;
} ursa_mpmc_weak_sender_t;

typedef struct ursa_mpmc_receiver {
    ursa_mpmc_t *ch; /* NULL once dropped */
} ursa_mpmc_receiver_t;

/* The hold: `n` reserved slots, each to be used by a permit_send or
 * returned by permit_release. Zero-initialise before use. */
typedef struct ursa_mpmc_permit {
    ursa_oblig_t ob;
    ursa_mpmc_t *ch; /* NULL when holding nothing */
    uint64_t n;      /* slots still reserved */
} ursa_mpmc_permit_t;

/* Largest capacity (and reserve_many count). */
#define URSA_MPMC_MAX_CAPACITY ((uint64_t)1 << 40)

/* Not a wait: creates a channel: *rx and *tx get the first receiver and
 * sender. dtor may be NULL.
 *   0        created
 *   -EINVAL  NULL handle, elem_size 0, capacity 0 (there is no unbounded
 *            mpmc), or capacity > URSA_MPMC_MAX_CAPACITY
 *   -ENOMEM  out of memory */
URSA_API int ursa_mpmc_new(ursa_mpmc_receiver_t *rx, ursa_mpmc_sender_t *tx, size_t elem_size,
                           uint64_t capacity, ursa_mpmc_dtor_t dtor) URSA_NODISCARD;

/* ---- sender handles ---- */

/* Not a wait: *out becomes another strong sender.
 *   0        *out set
 *   -EINVAL  NULL, or tx dropped */
URSA_API int ursa_mpmc_sender_clone(const ursa_mpmc_sender_t *tx,
                                    ursa_mpmc_sender_t *out) URSA_NODISCARD;
/* Not a wait: drops a sender. The last strong one makes receivers see
 * -EPIPE once drained and no permit is out.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpmc_sender_drop(ursa_mpmc_sender_t *tx);
/* Not a wait: *out becomes a weak sender: it keeps the memory, not the
 * channel, open.
 *   0        *out set
 *   -EINVAL  NULL, or tx dropped */
URSA_API int ursa_mpmc_sender_downgrade(const ursa_mpmc_sender_t *tx,
                                        ursa_mpmc_weak_sender_t *out) URSA_NODISCARD;
/* Not a wait: *out becomes a strong sender again.
 *   0        *out set
 *   -EPIPE   no strong sender is left
 *   -EINVAL  NULL, or w dropped */
URSA_API int ursa_mpmc_weak_upgrade(const ursa_mpmc_weak_sender_t *w,
                                    ursa_mpmc_sender_t *out) URSA_NODISCARD;
/* Not a wait: another weak sender.
 *   0        *out set
 *   -EINVAL  NULL, or w dropped */
URSA_API int ursa_mpmc_weak_clone(const ursa_mpmc_weak_sender_t *w,
                                  ursa_mpmc_weak_sender_t *out) URSA_NODISCARD;
/* Not a wait: drops a weak sender.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpmc_weak_drop(ursa_mpmc_weak_sender_t *w);

/* ---- receiver handles ---- */

/* Not a wait: *out becomes another receiver of the same queue (messages
 * are shared out, not copied to each).
 *   0        *out set
 *   -EINVAL  NULL, or rx dropped */
URSA_API int ursa_mpmc_receiver_clone(const ursa_mpmc_receiver_t *rx,
                                      ursa_mpmc_receiver_t *out) URSA_NODISCARD;
/* Not a wait: drops a receiver. The last one closes the channel: waiting
 * and later reserves and sends fail with -EPIPE, queued messages go to the
 * destructor. Must not race with any call (blocking or raw) on the same
 * handle variable.
 *   0        dropped
 *   -EINVAL  NULL, or already dropped */
URSA_API int ursa_mpmc_receiver_drop(ursa_mpmc_receiver_t *rx);

/* ---- sending ---- */

/* Phase 1 (wait): reserves one slot into p (waits for capacity, FIFO
 * among senders). Cancel-safe: on an error nothing is reserved.
 *   0           p holds the slot
 *   -EAGAIN     deadline is URSA_NOW and the channel is full, or senders
 *               are queued ahead
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EPIPE      closed, or every receiver dropped
 *   -ENOMEM     the hold could not be recorded
 *   -EINVAL     NULL, dropped handle, p already holds, n = 0 or n >
 *               capacity */
#define ursa_mpmc_reserve(tx, p, deadline) ursa_mpmc_reserve_many_at(tx, 1, p, deadline, URSA_SITE)
/* Phase 1 (wait): as reserve, for n slots at once (1 <= n <= capacity and
 * n < 2^32). */
#define ursa_mpmc_reserve_many(tx, n, p, deadline) \
    ursa_mpmc_reserve_many_at(tx, n, p, deadline, URSA_SITE)
URSA_API int ursa_mpmc_reserve_many_at(const ursa_mpmc_sender_t *tx, uint64_t n,
                                       ursa_mpmc_permit_t *p, ursa_time_t deadline,
                                       const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold): sends *value (elem_size bytes copied) using one reserved
 * slot; the permit is discharged when its last slot is used. Never waits.
 * Works after close (the message is still delivered).
 *   0        sent
 *   -EPIPE   every receiver is gone: the value is not taken and the slot
 *            is given up, like a release of one
 *   -EINVAL  NULL, or p holds nothing (reported)
 *   -EPERM   another task's or thread's permit */
URSA_API int ursa_mpmc_permit_send(ursa_mpmc_permit_t *p, const void *value);

/* Phase 2 (hold): returns every slot still reserved and discharges p.
 *   0        released; p is empty
 *   -EINVAL  NULL, or p holds nothing (a double release: reported)
 *   -EPERM   another task's or thread's permit */
URSA_API int ursa_mpmc_permit_release(ursa_mpmc_permit_t *p);

/* Phase 2 (hold): the scope-exit release for URSA_SCOPED(mpmc_permit, p):
 * releases if held, does nothing if empty. */
URSA_API void ursa_mpmc_permit_cleanup(ursa_mpmc_permit_t *p);

/* Phase 1 + 2 in one call: reserve one slot, then send *value. On an
 * error the value stays with the caller. Codes as ursa_mpmc_reserve
 * (-EPIPE also when the last receiver went away between the two steps). */
URSA_API int ursa_mpmc_send(const ursa_mpmc_sender_t *tx, const void *value,
                            ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase reserve (calling context 3, see
 * ursa/wait.h). _start:
 *   0             granted now: call _finish
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the slots are granted or the channel closes
 *   -EPIPE        closed, or every receiver dropped (nothing started)
 *   -EINVAL       NULL, dropped handle, no waker.fn, or n out of range
 * _finish, once ursa_wait_ready(w), fills p:
 *   0        p holds the slots
 *   -EPIPE   the channel closed first
 *   -EAGAIN  not decided yet (w stays queued)
 *   -ENOMEM  the hold could not be recorded (the slots went back)
 *   -EINVAL  NULL, p already holds, w not a reserve on tx's channel,
 *            or already finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: the slots go on to the next
 * sender. */
URSA_API int ursa_mpmc_reserve_start(const ursa_mpmc_sender_t *tx, uint64_t n, ursa_wait_t *w,
                                     ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpmc_reserve_finish(const ursa_mpmc_sender_t *tx, ursa_wait_t *w,
                                      ursa_mpmc_permit_t *p) URSA_NODISCARD;

/* ---- receiving (any receiver handle, from any thread or task) ---- */

/* Phase 1 (wait; no hold follows: the element is copied out): the next
 * message in *out. Messages of one producer are taken in the order it
 * sent them (with several receivers, each one sees that producer's
 * messages in increasing order).
 *   0           *out holds the message
 *   -EPIPE      closed or all strong senders gone, drained, and no permit
 *               or reserve outstanding
 *   -EAGAIN     deadline is URSA_NOW and the channel is empty
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first (nothing consumed; a
 *               wake that reached this receiver is passed on to the next
 *               waiting one)
 *   -EINVAL     NULL, or rx dropped */
URSA_API int ursa_mpmc_recv(const ursa_mpmc_receiver_t *rx, void *out,
                            ursa_time_t deadline) URSA_NODISCARD;
/* Phase 1 (wait): ursa_mpmc_recv with URSA_NOW (never waits). */
URSA_API int ursa_mpmc_try_recv(const ursa_mpmc_receiver_t *rx, void *out) URSA_NODISCARD;
/* Phase 1 (wait): waits for at least one message, then takes up to max
 * consecutive messages at once into buf (max * elem_size bytes).
 *   n >= 1  how many it took
 *   < 0     the codes of ursa_mpmc_recv (-EINVAL also for max 0) */
URSA_API long ursa_mpmc_recv_many(const ursa_mpmc_receiver_t *rx, void *buf, size_t max,
                                  ursa_time_t deadline) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase receive (calling context 3, see
 * ursa/wait.h). _start:
 *   0             something is ready now: call _finish
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a message or the end arrives
 *   -EINVAL       NULL, dropped handle, or no waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        *out holds the next message
 *   -EPIPE   the end (as for ursa_mpmc_recv)
 *   -EAGAIN  not ready yet; or ready, but another receiver took the
 *            message: start again
 *   -EINVAL  NULL, or w not a receive on rx's channel, or already
 *            finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: withdrawn (a wake that
 * already reached w is passed on). */
URSA_API int ursa_mpmc_recv_start(const ursa_mpmc_receiver_t *rx, ursa_wait_t *w,
                                  ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpmc_recv_finish(const ursa_mpmc_receiver_t *rx, ursa_wait_t *w,
                                   void *out) URSA_NODISCARD;

/* Not a wait: closes from the receiving side (any receiver): later and
 * waiting reserves fail with -EPIPE; permits already out may still send;
 * messages stay receivable.
 *   0        closed
 *   -EINVAL  NULL, or rx dropped */
URSA_API int ursa_mpmc_close(const ursa_mpmc_receiver_t *rx);

/* ---- the senders' wait for the close (Tokio's Sender::closed) ---- */

/* Phase 1 (wait; no hold follows), sender: waits until the channel is
 * closed: a receiver closes, or the last receiver drops. Lets a producer stop making what nobody will receive.
 * Task: suspends; plain thread: parks. Whether it is closed now, without
 * waiting: ursa_mpmc_is_closed(tx.ch).
 *   0           closed
 *   -EAGAIN     deadline is URSA_NOW and the channel is open
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     NULL, or tx dropped */
#define ursa_mpmc_closed(tx, deadline) ursa_mpmc_closed_at(tx, deadline, URSA_SITE)
URSA_API int ursa_mpmc_closed_at(const ursa_mpmc_sender_t *tx, ursa_time_t deadline,
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
URSA_API int ursa_mpmc_closed_start(const ursa_mpmc_sender_t *tx, ursa_wait_t *w,
                                   ursa_waker_t waker) URSA_NODISCARD;
URSA_API int ursa_mpmc_closed_finish(const ursa_mpmc_sender_t *tx,
                                    ursa_wait_t *w) URSA_NODISCARD;

/* ---- queries (snapshots of any handle's channel) ---- */

/* Not a wait: messages queued (sent or being sent, not yet received); 0 for
 * NULL. */
URSA_API uint64_t ursa_mpmc_len(const ursa_mpmc_t *ch);
/* Not a wait: capacity given at creation; 0 for NULL. */
URSA_API uint64_t ursa_mpmc_capacity(const ursa_mpmc_t *ch);
/* Not a wait: slots free right now (Tokio's Sender::capacity; capacity()
 * above is its max_capacity): a send or reserve takes one, a receive or
 * a released permit gives one back. 0 for NULL. A snapshot. */
URSA_API uint64_t ursa_mpmc_free_slots(const ursa_mpmc_t *ch);
/* Not a wait: live strong / weak sender handles (snapshots; 0 for
 * NULL). */
URSA_API uint64_t ursa_mpmc_sender_count(const ursa_mpmc_t *ch);
URSA_API uint64_t ursa_mpmc_weak_count(const ursa_mpmc_t *ch);
/* Not a wait: bytes allocated for the channel (header + ring); 0 for NULL.
 * A ring of 64 KiB or more is address space whose pages become resident
 * only as messages reach them. */
URSA_API size_t ursa_mpmc_memory(const ursa_mpmc_t *ch);
/* Not a wait: true once closed or every receiver is gone (false for NULL). */
URSA_API bool ursa_mpmc_is_closed(const ursa_mpmc_t *ch);

/* ---- typed wrapper ----
 * URSA_MPMC_TYPED(jobq, job_t) defines distinct handle types jobq_tx_t,
 * jobq_rx_t and jobq_permit_t (each wraps the untyped handle as .raw), and
 * static inline jobq_new(&rx, &tx, capacity), _sender_clone(&tx, &tx2),
 * _sender_drop(&tx), _receiver_drop(&rx), _close(&rx),
 * _send(&tx, T v, deadline), _try_send(&tx, T v), _reserve(&tx, &p,
 * deadline), _permit_send(&p, T v), _permit_release(&p),
 * _recv(&rx, T *out, deadline), _try_recv(&rx, T *out) and
 * _recv_many(&rx, T *buf, max, deadline), with the return codes of the
 * calls above (-EINVAL for a NULL handle). The element size is sizeof(T)
 * and a handle of another typed channel does not compile. Weak senders,
 * receiver_clone and the raw waits are not wrapped: use .raw. */
#define URSA_MPMC_TYPED(name, T) URSA__CHAN_TYPED(mpmc, name, T)

URSA_EXTERN_C_END

#endif
