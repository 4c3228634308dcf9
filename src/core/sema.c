#include "sema.h"

_Atomic(uint64_t) ursa__sema_handoffs;

/* Under the lock: the mode bits (URSA__SEMA_BARGE, _HANDOFF). */
static inline uint32_t mode_locked(const ursa__sema_t *s)
{
    return ursa__waitq_bits(&s->q);
}

/* Under the lock: true if a release puts permits in the word and wakes
 * lookers (barging, not in HANDOFF). */
static inline bool barging_locked(const ursa__sema_t *s)
{
    return (mode_locked(s) & (URSA__SEMA_BARGE | URSA__SEMA_HANDOFF)) == URSA__SEMA_BARGE;
}

/* Drops the lock; a HANDOFF whose queue drained is over (barging again). */
static inline __attribute__((always_inline)) void sema_unlock(ursa__sema_t *s)
{
    uint32_t bits = mode_locked(s);
    if (__builtin_expect(bits & URSA__SEMA_HANDOFF, 0) && !s->q.head)
        bits &= ~URSA__SEMA_HANDOFF;
    ursa__waitq_unlock(&s->q, bits);
}

/* What a queued waiter holds (a looker holds nothing). */
static inline uint32_t held(const ursa__waiter_t *w)
{
    return w->got == URSA__SEMA_LOOKING ? 0 : w->got;
}

void ursa__sema_init(ursa__sema_t *s, uint64_t permits)
{
    atomic_init(&s->state, permits << URSA__SEMA_SHIFT);
    atomic_init(&s->streak, 0);
    ursa__waitq_init(&s->q);
    atomic_init(&s->total, permits);
}

/* Under the lock: the head w, not a looker, gets all it still wants out of
 * the n permits (n >= w->want): popped, decided GRANTED, flushed. Returns
 * what is left of n; a select's w whose claim is lost is dropped, and
 * what was assigned to it comes back with the rest. */
static inline __attribute__((always_inline)) uint64_t grant_head_locked(ursa__waitq_t *q,
                                                                        ursa__waiter_t *w,
                                                                        uint64_t n,
                                                                        ursa__wake_batch_t *b)
{
    (void)ursa__waitq_pop(q);
    uint32_t part = w->got, need = w->want;
    w->got = part + need;
    w->want = 0;
    n = ursa__waiter_decide_into(w, URSA__W_GRANTED, b) ? n - need : n + part;
    ursa__waitq_flush(q, b);
    return n;
}

/* Under the lock: hands n permits to the queue in FIFO order; what is left
 * once the queue is empty goes back into the word, clearing WAITERS. A
 * select's waiter whose claim is lost is dropped, and what was assigned to
 * it goes on with the rest. No lookers are queued (FIFO or HANDOFF). */
static inline __attribute__((always_inline)) void fifo_locked(ursa__sema_t *s, uint64_t n,
                                                               ursa__wake_batch_t *b)
{
    ursa__waitq_t *q = &s->q;
    ursa__waiter_t *w;
    while (n && (w = q->head)) {
        if (n < w->want) { /* a part: the head keeps it until the rest comes */
            w->want -= (uint32_t)n;
            w->got += (uint32_t)n;
            n = 0;
            break;
        }
        n = grant_head_locked(q, w, n, b);
    }
    if (q->head)
        return; /* permits all given out; WAITERS stays, word stays at 0 */
    uint64_t back = n << URSA__SEMA_SHIFT;
    /* relaxed load: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* release: our holder's writes happen-before the next fast acquirer. */
    while (!atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  (st & ~URSA__SEMA_WAITERS) + back,
                                                  memory_order_release, memory_order_relaxed)) {
    }
}

/* A wait for n permits granted at start, without queueing: 0. */
static int grant_now(ursa__waiter_t *w, uint32_t n)
{
    w->got = n;
    w->want = 0;
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

/* Under the lock, barging: the waiters at the head that cannot look again
 * (a select's, a raw wait) are handed permits FIFO as fifo_locked does;
 * the rest of n goes into the word, free for anyone; then the lookers at
 * the head that the free permits could serve are woken, given nothing
 * (got 0): each takes them if it still can, or queues again at the front.
 * A head looker that cannot be served and has starved switches s to
 * HANDOFF. */
static __attribute__((noinline)) void barge_locked(ursa__sema_t *s, uint64_t n,
                                                   ursa__wake_batch_t *b);

/* Under the lock: n permits for the queue, as the mode says (the default's
 * FIFO inline, barging out of line). */
static inline __attribute__((always_inline)) void give_locked(ursa__sema_t *s, uint64_t n,
                                                              ursa__wake_batch_t *b)
{
    if (__builtin_expect(barging_locked(s), 0))
        barge_locked(s, n, b);
    else
        fifo_locked(s, n, b);
}

/* Under the lock: s switches to HANDOFF. Every queued looker becomes a
 * plain waiter, and the free permits are handed to the queue FIFO: from
 * here on the FIFO invariant holds until the queue drains (sema_unlock
 * then ends HANDOFF). Lookers already woken find the word empty and queue
 * again, as plain waiters. */
static void refifo_locked(ursa__sema_t *s, ursa__wake_batch_t *b);

static void enter_handoff_locked(ursa__sema_t *s, ursa__wake_batch_t *b)
{
    ursa__waitq_t *q = &s->q;
    /* relaxed: we hold the lock, nobody else changes the word (a flush
     * that drops it in between keeps what we store). */
    atomic_store_explicit(&q->lock, atomic_load_explicit(&q->lock, memory_order_relaxed) |
                                        URSA__SEMA_HANDOFF, memory_order_relaxed);
    /* relaxed: a counter for tests, orders nothing. */
    atomic_fetch_add_explicit(&ursa__sema_handoffs, 1, memory_order_relaxed);
    refifo_locked(s, b);
}

/* Under the lock, FIFO from here on: every part and every free permit is
 * handed out again from the head. */
static void refifo_locked(ursa__sema_t *s, ursa__wake_batch_t *b)
{
    ursa__waitq_t *q = &s->q;
    /* Lookers become plain waiters; any part assigned to a waiter comes
     * back too (only the head may hold one, or its permits could sit with
     * a waiter that waits behind another for them: a deadlock when the
     * total is short), and everything is handed out again from the head. */
    uint64_t back = 0;
    for (ursa__waiter_t *w = q->head; w; w = w->next) {
        if (w->got == URSA__SEMA_LOOKING) {
            w->got = 0;
        } else if (w->got) {
            back += w->got;
            w->want += w->got;
            w->got = 0;
        }
    }
    /* relaxed load: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* acquire: the permits we take out were released by their holders;
     * the waiters we hand them to acquire them through the lock. OUT goes
     * too: from here every release takes the lock and hands out. */
    while (!atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  st & (URSA__SEMA_CLOSED | URSA__SEMA_WAITERS),
                                                  memory_order_acquire, memory_order_relaxed)) {
    }
    fifo_locked(s, back + (st >> URSA__SEMA_SHIFT), b);
}

void ursa__sema_end_handoff(ursa__sema_t *s)
{
    ursa__waitq_t *q = &s->q;
    (void)ursa__waitq_lock(q);
    /* Plain waiters still queued are served first from whatever is free
     * (barge_locked), in order; nothing else to move. */
    ursa__waitq_unlock(q, mode_locked(s) & ~URSA__SEMA_HANDOFF);
}

/* The streak is the caller's thread (sema.h). relaxed: a hint for
 * ursa__sema_barge_in; stored only when it changes, so a streak's own slow
 * paths add no write. */
static inline void streak_mine(ursa__sema_t *s)
{
    uint64_t me = ursa__thread_uid();
    if (atomic_load_explicit(&s->streak, memory_order_relaxed) != me)
        atomic_store_explicit(&s->streak, me, memory_order_relaxed);
}

/* The looker around w (queued with got LOOKING). */
static inline ursa__sema_looker_t *looker_of(ursa__waiter_t *w)
{
    return (ursa__sema_looker_t *)((char *)w - offsetof(ursa__sema_looker_t, w));
}

static __attribute__((noinline)) void barge_locked(ursa__sema_t *s, uint64_t n,
                                                   ursa__wake_batch_t *b)
{
    ursa__waitq_t *q = &s->q;
    ursa__waiter_t *w = q->head;
    if (w && w->got != URSA__SEMA_LOOKING) {
        /* A plain head is served from everything free, the word's permits
         * too (they may have waited there for a looker that has since
         * withdrawn). acquire: released by their holders. relaxed load:
         * the CAS validates it. */
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                      st & ((1u << URSA__SEMA_SHIFT) - 1),
                                                      memory_order_acquire, memory_order_relaxed)) {
        }
        n += st >> URSA__SEMA_SHIFT;
    }
    while (n && (w = q->head) && w->got != URSA__SEMA_LOOKING) {
        if (n < w->want) { /* a part: it keeps it until the rest comes */
            w->want -= (uint32_t)n;
            w->got += (uint32_t)n;
            return;
        }
        n = grant_head_locked(q, w, n, b);
    }
    if (__builtin_expect(!barging_locked(s), 0)) {
        /* A flush dropped the lock and a looker switched s to HANDOFF
         * meanwhile: the rest goes FIFO too. */
        fifo_locked(s, n, b);
        return;
    }
    if (n)
        streak_mine(s); /* our thread gave them */
    /* The rest into the word; WAITERS stays exactly while waiters queue
     * (a start or a look sets it again under this lock). relaxed load:
     * the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed), next;
    do {
        next = ((st & ~URSA__SEMA_WAITERS) + (n << URSA__SEMA_SHIFT)) |
               (q->head ? URSA__SEMA_WAITERS : 0);
        /* release: our holder's writes happen-before whoever takes the
         * permits, a barger or a looker. */
    } while (!atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_release,
                                                    memory_order_relaxed));
    if (next & URSA__SEMA_OUT)
        return; /* the looker out looks, and hands on what it leaves */
    uint64_t free_ = next >> URSA__SEMA_SHIFT, promised = 0, me = ursa__thread_uid();
    bool out = false; /* OUT set by us */
    while ((w = q->head) && w->got == URSA__SEMA_LOOKING) {
        if (promised + w->want > free_) {
            /* Not servable now. The starvation bound must still hold for
             * a head that bargers keep short (a large semaphore request):
             * checked here, where its next chance went by. */
            if (!promised && n &&
                ursa_now() - looker_of(w)->since >= URSA__SEMA_STARVE_NS)
                enter_handoff_locked(s, b);
            break;
        }
        (void)ursa__waitq_pop(q);
        promised += w->want;
        if (!out && looker_of(w)->thread != me) {
            /* OUT before the looker is decided: a full batch's flush below
             * wakes it with the lock dropped, and its clear must come after
             * this set in the word's order, or OUT would stay set with
             * nobody out. Not in HANDOFF: the loop stops (no lookers are
             * left once refifo_locked ran), and that cleared OUT. relaxed:
             * a flag that publishes nothing (the CAS above released the
             * permits). */
            out = true;
            atomic_fetch_or_explicit(&s->state, URSA__SEMA_OUT, memory_order_relaxed);
        }
        w->got = 0; /* a look, not permits */
        /* A looker is never a select's: its claim is always taken. */
        (void)ursa__waiter_decide_into(w, URSA__W_GRANTED, b);
        ursa__waitq_flush(q, b);
    }
    /* relaxed: clearing WAITERS publishes nothing (the CAS above released
     * the permits). */
    if (!q->head)
        atomic_fetch_and_explicit(&s->state, ~URSA__SEMA_WAITERS, memory_order_relaxed);
}

void ursa__sema_looked(ursa__sema_t *s)
{
    streak_mine(s);
    /* relaxed: a flag that publishes nothing (our CAS took the permits). */
    uint64_t st = atomic_fetch_and_explicit(&s->state, ~URSA__SEMA_OUT, memory_order_relaxed);
    if (!(st & URSA__SEMA_WAITERS) || !(st >> URSA__SEMA_SHIFT))
        return;
    /* Permits still free, waiters queued, and the releases that left them
     * took the fast path while we were out: hand them on now. */
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    (void)ursa__waitq_lock(&s->q);
    give_locked(s, 0, &b);
    sema_unlock(s);
    ursa__wake_batch_run(&b);
}

/* A select's w that took its claim at start and then found the permits
 * gone (a lock-free try came between): dropped, the select starts over. */
static int claimed_but_gone(ursa__sema_t *s, ursa__waiter_t *w)
{
    ursa__waiter_drop(w);
    sema_unlock(s);
    return -EINPROGRESS;
}

int ursa__sema_start(ursa__sema_t *s, ursa__waiter_t *w, uint32_t n)
{
    w->owner = s;
    w->got = 0;
    w->want = n;
    /* A select's waiter takes its claim before it takes permits: not on
     * the lock-free path, which would take first and ask after. */
    bool sel = ursa__waiter_is_select(w), claimed = false;
    if (!sel && ursa__sema_try(s, n))
        return grant_now(w, n);
    (void)ursa__waitq_lock(&s->q);
    /* relaxed: the CASes below validate it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & URSA__SEMA_CLOSED) {
            if (!ursa__wait_start_claim(w)) {
                sema_unlock(s);
                return -EINPROGRESS;
            }
            sema_unlock(s);
            ursa__wait_complete_now(w, URSA__W_CLOSED);
            return -EPIPE;
        }
        uint64_t avail = st >> URSA__SEMA_SHIFT; /* 0 while WAITERS, unless barging */
        if (avail >= n && !(st & URSA__SEMA_WAITERS)) {
            if (sel && !claimed) {
                /* Under the queue lock nobody queues or is granted
                 * meanwhile; only a lock-free try can still take them. */
                if (!ursa__wait_start_claim(w)) {
                    sema_unlock(s);
                    return -EINPROGRESS;
                }
                claimed = true;
            }
            /* acquire: as in ursa__sema_try. */
            if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                      st - ((uint64_t)n << URSA__SEMA_SHIFT),
                                                      memory_order_acquire, memory_order_relaxed)) {
                sema_unlock(s);
                return grant_now(w, n);
            }
            continue;
        }
        if (claimed)
            return claimed_but_gone(s, w);
        /* Take what there is (less than n) and queue for the rest; setting
         * WAITERS in the same CAS stops fast-path acquirers from barging
         * past us. A barging s's free permits while waiters queue are the
         * lookers' and bargers': a plain wait (a reader, a select's case,
         * a raw wait) never barges, it queues for permits handed to it
         * (barge_locked serves it from the word too). acquire: the permits
         * we take were released by someone. */
        uint64_t part = (st & URSA__SEMA_WAITERS) ? 0 : avail;
        uint64_t next = (st - (part << URSA__SEMA_SHIFT)) | URSA__SEMA_WAITERS;
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acquire,
                                                  memory_order_relaxed)) {
            w->got = (uint32_t)part;
            w->want = n - (uint32_t)part;
            break;
        }
    }
    ursa__waitq_push(&s->q, w);
    sema_unlock(s);
    return -EINPROGRESS;
}

/* Under the lock: queues w at the front of q (a looker that lost its look
 * keeps its place: it waited longest). */
static void push_front_locked(ursa__waitq_t *q, ursa__waiter_t *w)
{
    /* relaxed: as in ursa__waitq_push. */
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    w->prev = NULL;
    w->next = q->head;
    if (q->head)
        q->head->prev = w;
    else
        q->tail = w;
    q->head = w;
    ursa__waitq_count(q, 1);
}

int ursa__sema_look(ursa__sema_t *s, ursa__sema_looker_t *l, uint32_t n, bool again,
                    bool starved)
{
    ursa__waiter_t *w = &l->w;
    w->owner = s;
    w->got = 0;
    w->want = n;
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    (void)ursa__waitq_lock(&s->q);
    bool handoff = !barging_locked(s);
    /* relaxed: the CASes below validate it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & URSA__SEMA_CLOSED) {
            sema_unlock(s);
            ursa__wake_batch_run(&b);
            ursa__wait_complete_now(w, URSA__W_CLOSED);
            return -EPIPE;
        }
        uint64_t avail = st >> URSA__SEMA_SHIFT;
        /* A first look from another thread than the streak's, while a
         * woken looker is out, queues behind it (sema.h, streaks); the
         * looker hands on what it leaves. With nobody out, free permits
         * are taken: nobody else would hand them on. */
        bool behind = !again && (st & URSA__SEMA_OUT) &&
                      /* relaxed: a hint, as in ursa__sema_barge_in */
                      atomic_load_explicit(&s->streak, memory_order_relaxed) !=
                          ursa__thread_uid();
        /* In HANDOFF the word is 0 while waiters queue: a free permit
         * means nobody queues, so taking it passes nobody. A looker that
         * looks again is out no more (OUT clears). */
        if (avail >= n && !behind) {
            /* acquire: as in ursa__sema_try. */
            if (atomic_compare_exchange_weak_explicit(
                    &s->state, &st,
                    (st - ((uint64_t)n << URSA__SEMA_SHIFT)) & ~(again ? URSA__SEMA_OUT : 0),
                    memory_order_acquire, memory_order_relaxed)) {
                streak_mine(s);
                if (handoff && s->q.head && (st >> URSA__SEMA_SHIFT) > n)
                    /* In HANDOFF the word stays 0 while waiters queue:
                     * the rest of a part we took back goes to them. */
                    refifo_locked(s, &b);
                else if (again && !handoff && s->q.head && (st >> URSA__SEMA_SHIFT) > n)
                    /* Out no more, and more is free: as ursa__sema_looked. */
                    barge_locked(s, 0, &b);
                sema_unlock(s);
                ursa__wake_batch_run(&b);
                return grant_now(w, n);
            }
            continue;
        }
        if (starved && !handoff) {
            /* We would queue again past the bound: hand-off from now on
             * (what is free goes to the queue, the word stays 0). */
            enter_handoff_locked(s, &b);
            handoff = true;
            /* relaxed: as above. */
            st = atomic_load_explicit(&s->state, memory_order_relaxed);
            continue;
        }
        ursa__waiter_t *h = s->q.head;
        if (again && h && h->got != URSA__SEMA_LOOKING && h->got) {
            /* We go ahead of the head: the part assigned to it comes back
             * to the word, and we look again with it (only the head may
             * hold a part: permits parked with a waiter behind us could be
             * the very ones we wait for, a deadlock when the total is
             * short). Checked here, right before we queue, as a switch to
             * HANDOFF above hands parts out again. Into the word, not
             * handed out: the new head is us, and a waiter never decides
             * itself. release: they were released to h through the lock;
             * whoever takes them acquires. */
            uint64_t back = h->got;
            h->want += h->got;
            h->got = 0;
            st = atomic_fetch_add_explicit(&s->state, back << URSA__SEMA_SHIFT,
                                           memory_order_release) +
                 (back << URSA__SEMA_SHIFT);
            continue;
        }
        /* Queue. In HANDOFF as a plain waiter, taking what there is (the
         * FIFO start); barging, as a looker, leaving the free permits to
         * whoever comes first. WAITERS makes the next release take the
         * lock and see us: a release before this CAS left its permits
         * where the load above (or the CAS's failure) finds them. acquire:
         * the permits we may take were released by someone. */
        uint64_t next = handoff ? (st & URSA__SEMA_CLOSED) | URSA__SEMA_WAITERS
                                : (st | URSA__SEMA_WAITERS) & ~(again ? URSA__SEMA_OUT : 0);
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acquire,
                                                  memory_order_relaxed)) {
            if (handoff) {
                w->got = (uint32_t)avail;
                w->want = n - (uint32_t)avail;
            } else {
                w->got = URSA__SEMA_LOOKING;
            }
            break;
        }
    }
    if (again)
        push_front_locked(&s->q, w);
    else
        ursa__waitq_push(&s->q, w);
    sema_unlock(s);
    ursa__wake_batch_run(&b);
    return -EINPROGRESS;
}

bool ursa__sema_cancel(ursa__waiter_t *w)
{
    ursa__sema_t *s = w->owner;
    uint32_t bits;
    if (!ursa__waitq_cancel_begin(&s->q, w, &bits))
        return ursa__waiter_dropped(w);
    ursa__waitq_remove(&s->q, w);
    /* relaxed: our own node, unlinked under the lock. */
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    uint64_t back = held(w);
    w->got = 0;
    /* Our partial permits go to the next waiters; if the queue is now empty
     * this also clears WAITERS. A looker held nothing and was owed no
     * look (a woken one is not queued). */
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    give_locked(s, back, &b);
    sema_unlock(s);
    ursa__wake_batch_run(&b);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
    return true;
}

void ursa__sema_give_back(ursa__waiter_t *w)
{
    ursa__sema_release(w->owner, w->got);
    w->got = 0;
}

void ursa__sema_release_slow(ursa__sema_t *s, uint64_t n)
{
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    (void)ursa__waitq_lock(&s->q);
    /* The lock's release/acquire orders our critical section before the
     * waiter that the permits go to. */
    give_locked(s, n, &b);
    sema_unlock(s);
    ursa__wake_batch_run(&b);
}

int ursa__sema_add(ursa__sema_t *s, uint64_t n)
{
    if (n == 0 || n > URSA_SEM_MAX)
        return -EINVAL;
    /* relaxed: total is a bound, not a synchronisation point. */
    uint64_t t = atomic_load_explicit(&s->total, memory_order_relaxed);
    do {
        if (t + n > URSA_SEM_MAX)
            return -EINVAL;
    } while (!atomic_compare_exchange_weak_explicit(&s->total, &t, t + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    ursa__sema_release(s, n);
    return 0;
}

uint64_t ursa__sema_forget(ursa__sema_t *s, uint64_t n)
{
    /* relaxed: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        uint64_t avail = st >> URSA__SEMA_SHIFT;
        uint64_t take = avail < n ? avail : n;
        if (!take)
            return 0;
        /* relaxed: forgetting publishes nothing. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st - (take << URSA__SEMA_SHIFT),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            ursa__sema_dropped(s, take);
            return take;
        }
    }
}

uint64_t ursa__sema_close(ursa__sema_t *s)
{
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    uint64_t failed = 0;
    (void)ursa__waitq_lock(&s->q);
    /* relaxed: the lock orders this against queued waiters; fast-path
     * acquirers see it on their next CAS. */
    atomic_fetch_or_explicit(&s->state, URSA__SEMA_CLOSED, memory_order_relaxed);
    /* relaxed: as above. A looker still out finds CLOSED; releases now
     * only put permits back (fifo_locked below clears WAITERS). */
    atomic_fetch_and_explicit(&s->state, ~URSA__SEMA_OUT, memory_order_relaxed);
    uint64_t back = 0;
    ursa__waiter_t *w;
    while ((w = ursa__waitq_pop(&s->q))) {
        back += held(w); /* a closed wait holds nothing */
        w->got = 0;
        /* A waiter whose select claim was lost is dropped, not failed:
         * its owner withdraws it and ends what it counted itself. */
        if (ursa__waiter_decide_into(w, URSA__W_CLOSED, &b))
            failed++;
        ursa__waitq_flush(&s->q, &b); /* a start after CLOSED fails: none join */
    }
    fifo_locked(s, back, &b); /* queue empty: clears WAITERS, keeps count */
    sema_unlock(s);
    ursa__wake_batch_run(&b);
    return failed;
}
