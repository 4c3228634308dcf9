/* Waiters and the locked FIFO they sit on: the one wait queue every
 * primitive uses.
 *
 * A waiter's life: IDLE -> QUEUED -> (GRANTED | CLOSED | CANCELLED), then
 * FINISHED once its caller took the result. `state` changes only under the
 * lock of the queue the waiter is on. Whoever decides a queued waiter
 * (grant, close) takes it off the queue, takes its select claim
 * (core/claim.h), sets the state with a release store, drops the lock
 * (several decided at once wait in a wake batch), calls its waker, and
 * only then sets `done`. The
 * waiter never forgets a waiter node before `done` (or before it withdrew
 * the node itself), so the node and whatever the waker points at are alive
 * during the waker call, and no wake arrives after the wait is over.
 *
 * The queue (ursa__waitq_t, include/ursa/detail/wait.h) is doubly linked
 * so that a cancel unlinks in O(1). The head's `prev` is not kept up to
 * date (a pop then touches only the node it pops; a cancel tells the head
 * by the queue's pointer), every other node's is. A wake-all detaches the
 * whole queue onto `waking` at once and decides it a batch at a time, so
 * the lock is never held for more than a batch and each node is touched in
 * one pass; a cancel unlinks a node from either list. */
#ifndef URSA_CORE_WAITQ_H
#define URSA_CORE_WAITQ_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>

#include "claim.h"
#include "spin.h"
#include "ursa/wait.h"

enum {
    URSA__W_IDLE = 0,
    URSA__W_QUEUED,
    URSA__W_GRANTED,
    URSA__W_CLOSED,
    URSA__W_CANCELLED, /* withdrawn (by its cancel, or dropped: claim lost) */
    URSA__W_FINISHED,  /* result taken by finish/cancel; node reusable */
};

/* What every primitive tells the core about its waits. */
typedef struct ursa__wait_ops {
    uint32_t kind; /* ursa_wait_kind_t, for reports */
    /* Withdraws w: true if it was still queued (whatever was assigned to it
     * went on to other waiters: nothing held), or a decider dropped it (its
     * select claim was lost); false if it was decided (returns once the
     * waker call is done; w->state says how). */
    bool (*cancel)(ursa__waiter_t *w);
    /* Gives back what a granted but never finished wait holds (raw-wait
     * cancel after the grant). NULL if a grant holds nothing. */
    void (*give_back)(ursa__waiter_t *w);
} ursa__wait_ops_t;

/* A waiter a blocking call keeps on its stack: aligned so that what a
 * grant touches is one cache line. */
#define URSA__WAITER_ALIGN _Alignas(64)

/* ---- a waiter ---- */

static inline void ursa__waiter_init(ursa__waiter_t *w, ursa_waker_t waker,
                                     const ursa__wait_ops_t *ops)
{
    w->next = w->prev = NULL;
    w->owner = NULL;
    w->ops = ops;
    w->waker = waker;
    w->want = w->got = 0;
    atomic_store_explicit(&w->state, URSA__W_IDLE, memory_order_relaxed);
    atomic_store_explicit(&w->done, 0, memory_order_relaxed);
}

/* Completed without ever queueing (fast path at start). */
static inline void ursa__wait_complete_now(ursa__waiter_t *w, uint32_t state)
{
    atomic_store_explicit(&w->state, state, memory_order_relaxed);
    /* release: pairs with the acquire in ursa_wait_ready. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

static inline bool ursa__wait_is_done(const ursa__waiter_t *w)
{
    /* acquire: everything the completer wrote before `done` is visible. */
    return atomic_load_explicit(&w->done, memory_order_acquire) != 0;
}

/* The outcome is decided (granted, closed, dropped) once state leaves
 * QUEUED; the completer then calls the waker and sets done. A blocked
 * waiter waits for the decision, then settles (below) before it lets go of
 * the node. */
static inline bool ursa__wait_is_decided(const ursa__waiter_t *w)
{
    /* acquire: pairs with the completer's release store of state. */
    return atomic_load_explicit(&w->state, memory_order_acquire) != URSA__W_QUEUED;
}

/* The waiter lost a race with a completer: wait the few instructions until
 * the completer's waker call has returned. */
static inline void ursa__wait_settle(const ursa__waiter_t *w)
{
    if (__builtin_expect(ursa__wait_is_done(w), 1))
        return;
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_SETTLE);
    while (!ursa__wait_is_done(w))
        ursa__spin_backoff(&s);
    ursa__spin_end(&s);
}

/* After a cancel found w no longer queued (and settled): true if a decider
 * dropped it (its select claim was lost: withdrawn, nothing held), false
 * if it was decided. */
static inline bool ursa__waiter_dropped(const ursa__waiter_t *w)
{
    /* relaxed: the settle acquired done, stored after the state. */
    return atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_CANCELLED;
}

/* How a raw wait's finish starts: 0 once w is decided and its waker call
 * has returned (the caller takes the outcome, then marks w FINISHED),
 * -EINVAL (never started, finished already, or cancelled), -EAGAIN (not
 * decided yet). */
static inline int ursa__wait_finish_begin(ursa__waiter_t *w)
{
    /* acquire: pairs with the waker's release of the decision. */
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == URSA__W_IDLE || st == URSA__W_FINISHED || st == URSA__W_CANCELLED)
        return -EINVAL;
    if (!ursa__wait_is_decided(w))
        return -EAGAIN;
    ursa__wait_settle(w); /* the waker call may still be returning */
    return 0;
}

/* A raw wait's finish when the grant holds nothing (a notification, "a
 * message may be ready"): 0 (decided; now FINISHED), -EINVAL, -EAGAIN as
 * ursa__wait_finish_begin. */
static inline int ursa__wait_finish(ursa__waiter_t *w)
{
    int rc = ursa__wait_finish_begin(w);
    if (rc == 0)
        /* relaxed: only the waiter reads its node's state from here on. */
        atomic_store_explicit(&w->state, URSA__W_FINISHED, memory_order_relaxed);
    return rc;
}

/* Calls the waker of a decided waiter taken off its queue (outside the
 * queue lock), then marks it done: from then on its waiter may reuse it. */
static inline void ursa__wake_node(ursa__waiter_t *w)
{
    w->waker.fn(w->waker.ctx);
    /* release: the waiter may reuse the node once it sees done. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

/* A waiter off its queue whose select claim was lost: withdrawn as its own
 * cancel would (CANCELLED), and let go at once (done; no waker call: the
 * select's winner wakes the select). Under the queue lock, or by whoever
 * made a lock-free slot's waiter its own. */
static inline void ursa__waiter_drop(ursa__waiter_t *w)
{
    /* relaxed: ordered before done's release, which the select acquires. */
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    /* release: the select may reuse the node once it sees done. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

/* ---- wake batches: decided waiters, woken after the lock is dropped ---- */

/* At most this many waiters are decided per lock hold by the loops that
 * may decide many (wake-all, a large release): the lock is dropped and the
 * batch woken in between. */
#define URSA__WAKE_BATCH 32

/* Linked through the waiters' `next`: a decided waiter is off its queue,
 * and a cancel leaves it alone (it only settles), so its links are ours. */
typedef struct ursa__wake_batch {
    ursa__waiter_t *head, *tail;
    unsigned n;
} ursa__wake_batch_t;

#define URSA__WAKE_BATCH_INIT {NULL, NULL, 0}

static inline void ursa__wake_batch_add(ursa__wake_batch_t *b, ursa__waiter_t *w)
{
    w->next = NULL;
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    b->n++;
}

/* Wakes every waiter of b, oldest first (b is spent: reset it to use it
 * again). `next` is read before done lets a node go. */
static inline void ursa__wake_batch_run(const ursa__wake_batch_t *b)
{
    for (ursa__waiter_t *w = b->head, *next; w; w = next) {
        next = w->next;
        ursa__wake_node(w);
    }
}

/* ---- deciding a waiter: the select claim in every grant path ----
 *
 * A select (core/claim.h) queues one waiter per case, all sharing one
 * claim; exactly one of them may ever be decided. The rules for a
 * primitive's grant or close path, which make that hold without the
 * primitive knowing about selects:
 *
 *  1. Decide only through the calls below (ursa__waiter_decide, _into,
 *     _now, or ursa__waitq_decide_first/_last/_all and wake_all, which use
 *     them), never by storing `state` yourself. They take the waiter's
 *     claim first, under the lock that guards the waiter (for a lock-free
 *     slot: right after the exchange that made the waiter the caller's).
 *  2. Count a give only when the call returned true. `got` may be written
 *     before the call (decide_first does: a dropped waiter's `got` is
 *     never read as a grant), but the primitive's own books (permits, a
 *     stored notification, a role) treat a false as nothing given, and a
 *     part assigned to the waiter earlier (the semaphore's FIFO
 *     reservation) goes back to the rest. The loser holds nothing.
 *  3. On false the waiter was dropped (CANCELLED, done, never woken): it
 *     is off your queue and you owe it nothing. Hand what you meant for it
 *     to the next waiter, exactly as if it had withdrawn before you came
 *     (the decide_first/_last loops do this by going on to the next). A
 *     wake-all does not count it.
 *  4. The waiter's own cancel then finds it no longer queued and reports
 *     it withdrawn (ursa__waiter_dropped), so the select's cleanup treats
 *     a dropped case like one it withdrew itself.
 *
 * So a loser is never granted: the winning take (or the select's close)
 * is the one RMW on the claim word that succeeds, and every other decider
 * sees it fail before it has given anything. A plain waiter's claim is
 * always taken (one compare of its waker function). A start that finds
 * its wait ready at once takes the claim the same way before it takes
 * anything (ursa__wait_start_claim); a select's waiter skips the
 * lock-free fast paths that would take first and ask after. */

/* Whether w is a select's waiter (its waker is the claim's). */
static inline bool ursa__waiter_is_select(const ursa__waiter_t *w)
{
    return w->waker.fn == ursa__claim_wake;
}

/* A start found what w waits for and is about to take it (or to report
 * the end): under the lock that guards it, before taking anything, it
 * takes w's select claim. True: w may complete now (a plain waiter, or
 * the claim is w's). False: the claim is lost; w is dropped (withdrawn,
 * nothing taken) and the start returns -EINPROGRESS. A start that took
 * the claim and then found the thing gone (a lock-free taker came
 * between) drops w the same way: the select sees its claim won by a
 * dropped waiter and starts over (nothing was taken by any case). */
static inline bool ursa__wait_start_claim(ursa__waiter_t *w)
{
    if (__builtin_expect(ursa__waiter_claim(w), 1))
        return true;
    ursa__waiter_drop(w);
    return false;
}

/* Under the lock: decides w, which the caller took off its queue, as
 * `state` (GRANTED or CLOSED); the caller wakes it with ursa__wake_node
 * once the lock is dropped. False: w is a select's whose claim was lost;
 * it was dropped instead (the caller hands what it meant for w to the next
 * waiter). */
static inline bool ursa__waiter_decide(ursa__waiter_t *w, uint32_t state)
{
    if (__builtin_expect(!ursa__waiter_claim(w), 0)) {
        ursa__waiter_drop(w);
        return false;
    }
    /* release: the waiter reads got, and what the decider wrote before,
     * after it sees the decision. */
    atomic_store_explicit(&w->state, state, memory_order_release);
    return true;
}

/* ursa__waiter_decide for one of several: a decided w joins b. */
static inline bool ursa__waiter_decide_into(ursa__waiter_t *w, uint32_t state,
                                            ursa__wake_batch_t *b)
{
    if (!ursa__waiter_decide(w, state))
        return false;
    ursa__wake_batch_add(b, w);
    return true;
}

/* A waiter of a lock-free slot (a task's joiner, mpsc's receiver), made
 * the caller's by the exchange that emptied the slot: takes its claim and
 * decides it as `state` and wakes it (true), or drops it, its select claim
 * lost (false: what it waited for stays where it is). */
static inline bool ursa__waiter_decide_now(ursa__waiter_t *w, uint32_t state)
{
    if (!ursa__waiter_decide(w, state))
        return false;
    ursa__wake_node(w);
    return true;
}

/* ---- the queue's lock ---- */

#define URSA__WAITQ_LOCKED (1u << 31)

uint32_t ursa__waitq_lock_slow(ursa__waitq_t *q);

/* Takes q's lock; returns the owner's bits of the lock word (LOCKED
 * clear). While the lock is held nobody else changes the word: an owner
 * that changes its bits without the lock does so with a CAS that expects
 * LOCKED clear. */
static inline uint32_t ursa__waitq_lock(ursa__waitq_t *q)
{
    /* relaxed: the CAS validates it. */
    uint32_t st = atomic_load_explicit(&q->lock, memory_order_relaxed);
    /* acquire: the previous holder's queue writes are visible. */
    if (__builtin_expect(!(st & URSA__WAITQ_LOCKED), 1) &&
        atomic_compare_exchange_weak_explicit(&q->lock, &st, st | URSA__WAITQ_LOCKED,
                                              memory_order_acquire, memory_order_relaxed))
        return st;
    return ursa__waitq_lock_slow(q);
}

/* Drops q's lock, leaving the owner's bits `bits` in the word. */
static inline void ursa__waitq_unlock(ursa__waitq_t *q, uint32_t bits)
{
    /* release: publishes our queue writes and decisions to the next holder
     * (and to an owner's acquire load of its bits). A store: nobody else
     * changes the word while it is locked. */
    atomic_store_explicit(&q->lock, bits & ~URSA__WAITQ_LOCKED, memory_order_release);
}

/* The owner's bits as they are now (q locked by the caller). */
static inline uint32_t ursa__waitq_bits(const ursa__waitq_t *q)
{
    /* relaxed: only the lock holder changes the word. */
    return atomic_load_explicit(&q->lock, memory_order_relaxed) & ~URSA__WAITQ_LOCKED;
}

/* ---- the queue, under its lock ---- */

static inline void ursa__waitq_init(ursa__waitq_t *q)
{
    atomic_init(&q->lock, 0);
    atomic_init(&q->n, 0);
    q->head = q->tail = q->waking = NULL;
}

/* Adds delta to q's count: the new count. */
static inline uint32_t ursa__waitq_count(ursa__waitq_t *q, int delta)
{
    /* relaxed, and a load and a store: only the lock holder writes n;
     * readers outside the lock take it as a hint. */
    uint32_t n = atomic_load_explicit(&q->n, memory_order_relaxed) + (uint32_t)delta;
    atomic_store_explicit(&q->n, n, memory_order_relaxed);
    return n;
}

/* Waiters queued (not yet decided), without the lock: a hint. */
static inline uint32_t ursa__waitq_queued(const ursa__waitq_t *q)
{
    /* relaxed: a snapshot; a caller that must not miss a waiter orders its
     * own load (see mpmc). */
    return atomic_load_explicit(&q->n, memory_order_relaxed);
}

/* Under the lock: queues w at the tail. */
static inline void ursa__waitq_push(ursa__waitq_t *q, ursa__waiter_t *w)
{
    /* relaxed: state changes only under the queue lock, whose unlock
     * publishes the node. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    ursa__waitq_count(q, 1);
}

/* Under the lock: unlinks the queued w, from the queue or from the list a
 * wake-all is deciding. */
static inline void ursa__waitq_remove(ursa__waitq_t *q, ursa__waiter_t *w)
{
    ursa__waiter_t *next = w->next;
    if (q->head == w) {
        q->head = next; /* the new head's prev is not kept */
        if (!next)
            q->tail = NULL;
    } else if (q->waking == w) {
        q->waking = next;
    } else {
        w->prev->next = next;
        if (next)
            next->prev = w->prev;
        else if (q->tail == w)
            q->tail = w->prev;
    }
    ursa__waitq_count(q, -1);
}

/* Below this many queued waiters their nodes and tasks are still in the
 * cache: no prefetching. */
#define URSA__WAITQ_DEEP 64
/* A blocked waiter's node sits in a frame of its stack: the frames its
 * task returns through when it runs again span about this much below the
 * node (down to the saved registers) and above it. */
#define URSA__WAITER_STACK_BELOW 256
#define URSA__WAITER_STACK_ABOVE 384
/* What a waker touches of its context (a task descriptor), from its start. */
#define URSA__WAKER_CTX_BYTES 320

/* Readies a deep queue's next pop while this one is served (left: the
 * waiters still queued): the node after `next`; `next`'s waker context,
 * which the pop's wake will touch; and the stack around `next`, where its
 * task resumes. Cold lines, each a miss in turn otherwise; issued a whole
 * hand-off ahead. `next` itself was readied by the pop before, so reading
 * it costs no miss in a steady stream of pops. */
static inline void ursa__waitq_prefetch(uint32_t left, const ursa__waiter_t *next)
{
    if (__builtin_expect(left < URSA__WAITQ_DEEP, 1) || !next)
        return;
    __builtin_prefetch(next->next, 1);
    const char *ctx = next->waker.ctx;
    for (int off = 0; off < URSA__WAKER_CTX_BYTES; off += 64)
        __builtin_prefetch(ctx + off, 1);
    const char *at = (const char *)next;
    for (int off = -URSA__WAITER_STACK_BELOW; off < URSA__WAITER_STACK_ABOVE; off += 64)
        __builtin_prefetch(at + off, 1);
}

/* Under the lock: takes the oldest waiter off q (NULL if none). */
static inline ursa__waiter_t *ursa__waitq_pop(ursa__waitq_t *q)
{
    ursa__waiter_t *w = q->head;
    if (w) {
        q->head = w->next;
        if (!q->head)
            q->tail = NULL;
        ursa__waitq_prefetch(ursa__waitq_count(q, -1), q->head);
    }
    return w;
}

/* Under the lock: takes the oldest waiter that can be decided off q and
 * decides it (state, got): it (the caller wakes it with ursa__wake_node
 * once the lock is dropped), or NULL once q is empty. Select waiters whose
 * claim was lost are dropped on the way. */
static inline ursa__waiter_t *ursa__waitq_decide_first(ursa__waitq_t *q, uint32_t state,
                                                       uint32_t got)
{
    ursa__waiter_t *w;
    while ((w = ursa__waitq_pop(q))) {
        w->got = got;
        if (ursa__waiter_decide(w, state))
            return w;
    }
    return NULL;
}

/* ursa__waitq_decide_first for the newest waiter. */
ursa__waiter_t *ursa__waitq_decide_last(ursa__waitq_t *q, uint32_t state, uint32_t got);

/* Under the lock: decides every queued waiter (state, got) into b at once,
 * however many (a barrier's trip: a cancel must find each of them decided
 * as soon as the lock is dropped). Returns how many. */
unsigned ursa__waitq_decide_all(ursa__waitq_t *q, uint32_t state, uint32_t got,
                                ursa__wake_batch_t *b);

unsigned ursa__waitq_wake_all_slow(ursa__waitq_t *q, uint32_t bits, uint32_t state,
                                   uint32_t got);

/* Decides every waiter queued on q now (state, got) and wakes them; q is
 * locked by the caller, and unlocked on return with `bits` left in the
 * word. The waiters are detached at once: later ones queue on an empty q
 * and are not woken. They are decided and woken URSA__WAKE_BATCH at a
 * time, the lock retaken per batch and the wakers run outside it; one
 * still undecided when its cancel comes is withdrawn. Returns how many
 * this call decided. A lone waiter (a ping-pong's) is served inline. */
static inline unsigned ursa__waitq_wake_all(ursa__waitq_t *q, uint32_t bits, uint32_t state,
                                            uint32_t got)
{
    ursa__waiter_t *w = q->head;
    if (!w || w != q->tail || q->waking)
        return ursa__waitq_wake_all_slow(q, bits, state, got);
    q->head = q->tail = NULL;
    /* relaxed: as in ursa__waitq_count. */
    atomic_store_explicit(&q->n, 0, memory_order_relaxed);
    w->got = got;
    bool decided = ursa__waiter_decide(w, state);
    ursa__waitq_unlock(q, bits);
    if (decided)
        ursa__wake_node(w);
    return decided;
}

void ursa__waitq_flush_slow(ursa__waitq_t *q, ursa__wake_batch_t *b);

/* Under the lock, in a loop that decides waiters one by one: once b holds
 * URSA__WAKE_BATCH of them, drops the lock (leaving the owner's bits as
 * they are), wakes them, and takes the lock again. */
static inline void ursa__waitq_flush(ursa__waitq_t *q, ursa__wake_batch_t *b)
{
    if (__builtin_expect(b->n >= URSA__WAKE_BATCH, 0))
        ursa__waitq_flush_slow(q, b);
}

/* ---- whole steps, for a queue whose waiters only need "look again" ---- */

/* Queues w on q (takes and drops the lock). */
static inline void ursa__waitq_enqueue(ursa__waitq_t *q, ursa__waiter_t *w)
{
    uint32_t bits = ursa__waitq_lock(q);
    ursa__waitq_push(q, w);
    ursa__waitq_unlock(q, bits);
}

/* Grants the oldest waiter of q (got 0), if any: true if one was. */
static inline bool ursa__waitq_grant_one(ursa__waitq_t *q)
{
    uint32_t bits = ursa__waitq_lock(q);
    ursa__waiter_t *w = ursa__waitq_decide_first(q, URSA__W_GRANTED, 0);
    ursa__waitq_unlock(q, bits);
    if (w)
        ursa__wake_node(w);
    return w != NULL;
}

/* Grants every waiter queued on q now (got 0): how many. */
static inline unsigned ursa__waitq_grant_all(ursa__waitq_t *q)
{
    return ursa__waitq_wake_all(q, ursa__waitq_lock(q), URSA__W_GRANTED, 0);
}

/* ---- withdrawing a waiter ---- */

/* How every cancel starts: takes q's lock. True: w is still queued and the
 * lock is held, *bits the owner's bits (the caller unlinks w with
 * ursa__waitq_remove, hands on whatever was assigned to it, and ends with
 * ursa__waitq_cancel_end). False: w is no longer queued; the lock is
 * released, the decider's waker call has returned, and
 * ursa__waiter_dropped(w) tells a dropped waiter from a decided one. */
static inline bool ursa__waitq_cancel_begin(ursa__waitq_t *q, ursa__waiter_t *w, uint32_t *bits)
{
    *bits = ursa__waitq_lock(q);
    /* relaxed: state changes only under this lock. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_QUEUED)
        return true;
    ursa__waitq_unlock(q, *bits);
    ursa__wait_settle(w);
    return false;
}

/* How a cancel that found w queued ends, w unlinked: marks it CANCELLED,
 * unlocks with `bits`, and lets the caller forget w (no waker call is in
 * flight for it). */
static inline void ursa__waitq_cancel_end(ursa__waitq_t *q, ursa__waiter_t *w, uint32_t bits)
{
    /* relaxed: state changes only under the lock, and w is the caller's. */
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    ursa__waitq_unlock(q, bits);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
}

/* The whole cancel of a waiter that holds nothing while queued: true if w
 * was withdrawn (now, or dropped by a decider), false if it was decided. */
static inline bool ursa__waitq_cancel(ursa__waitq_t *q, ursa__waiter_t *w)
{
    uint32_t bits;
    if (!ursa__waitq_cancel_begin(q, w, &bits))
        return ursa__waiter_dropped(w);
    ursa__waitq_remove(q, w);
    ursa__waitq_cancel_end(q, w, bits);
    return true;
}

/* Whether q has a waiter, queued or still being woken (a snapshot under
 * the lock, for destroy's "still waited on"). */
static inline bool ursa__waitq_busy(ursa__waitq_t *q)
{
    uint32_t bits = ursa__waitq_lock(q);
    bool busy = q->head || q->waking;
    ursa__waitq_unlock(q, bits);
    return busy;
}

#endif
