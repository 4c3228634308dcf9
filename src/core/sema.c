#include "sema.h"

void ursa__sema_init(ursa__sema_t *s, uint64_t permits)
{
    atomic_init(&s->state, permits << URSA__SEMA_SHIFT);
    ursa__waitq_init(&s->q);
    atomic_init(&s->total, permits);
}

/* Under the lock: hands n permits to the queue in FIFO order; what is left
 * once the queue is empty goes back into the word, clearing WAITERS. A
 * select's waiter whose claim is lost is dropped, and what was assigned to
 * it goes on with the rest. */
static void assign_locked(ursa__sema_t *s, uint64_t n, ursa__wake_batch_t *b)
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
        (void)ursa__waitq_pop(q);
        uint32_t part = w->got, need = w->want;
        w->got = part + need;
        w->want = 0;
        if (ursa__waiter_decide_into(w, URSA__W_GRANTED, b))
            n -= need;
        else
            n += part;
        ursa__waitq_flush(q, b);
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

/* A select's w that took its claim at start and then found the permits
 * gone (a lock-free try came between): dropped, the select starts over. */
static int claimed_but_gone(ursa__sema_t *s, ursa__waiter_t *w, uint32_t bits)
{
    ursa__waiter_drop(w);
    ursa__waitq_unlock(&s->q, bits);
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
    uint32_t bits = ursa__waitq_lock(&s->q);
    /* relaxed: the CASes below validate it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & URSA__SEMA_CLOSED) {
            if (!ursa__wait_start_claim(w)) {
                ursa__waitq_unlock(&s->q, bits);
                return -EINPROGRESS;
            }
            ursa__waitq_unlock(&s->q, bits);
            ursa__wait_complete_now(w, URSA__W_CLOSED);
            return -EPIPE;
        }
        uint64_t avail = st >> URSA__SEMA_SHIFT; /* 0 whenever WAITERS is set */
        if (avail >= n && !(st & URSA__SEMA_WAITERS)) {
            if (sel && !claimed) {
                /* Under the queue lock nobody queues or is granted
                 * meanwhile; only a lock-free try can still take them. */
                if (!ursa__wait_start_claim(w)) {
                    ursa__waitq_unlock(&s->q, bits);
                    return -EINPROGRESS;
                }
                claimed = true;
            }
            /* acquire: as in ursa__sema_try. */
            if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                      st - ((uint64_t)n << URSA__SEMA_SHIFT),
                                                      memory_order_acquire, memory_order_relaxed)) {
                ursa__waitq_unlock(&s->q, bits);
                return grant_now(w, n);
            }
            continue;
        }
        if (claimed)
            return claimed_but_gone(s, w, bits);
        /* Take what there is (less than n) and queue for the rest; setting
         * WAITERS in the same CAS stops fast-path acquirers from barging
         * past us. acquire: the permits we take were released by someone. */
        uint64_t next = (st & URSA__SEMA_CLOSED) | URSA__SEMA_WAITERS;
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acquire,
                                                  memory_order_relaxed)) {
            w->got = (uint32_t)avail;
            w->want = n - (uint32_t)avail;
            break;
        }
    }
    ursa__waitq_push(&s->q, w);
    ursa__waitq_unlock(&s->q, bits);
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
    uint64_t back = w->got;
    w->got = 0;
    /* Our partial permits go to the next waiters; if the queue is now empty
     * this also clears WAITERS. */
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    assign_locked(s, back, &b);
    ursa__waitq_unlock(&s->q, bits);
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
    uint32_t bits = ursa__waitq_lock(&s->q);
    /* The lock's release/acquire orders our critical section before the
     * waiter that the permits go to. */
    assign_locked(s, n, &b);
    ursa__waitq_unlock(&s->q, bits);
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
    uint32_t bits = ursa__waitq_lock(&s->q);
    /* relaxed: the lock orders this against queued waiters; fast-path
     * acquirers see it on their next CAS. */
    atomic_fetch_or_explicit(&s->state, URSA__SEMA_CLOSED, memory_order_relaxed);
    uint64_t back = 0;
    ursa__waiter_t *w;
    while ((w = ursa__waitq_pop(&s->q))) {
        back += w->got; /* a closed wait holds nothing */
        w->got = 0;
        /* A waiter whose select claim was lost is dropped, not failed:
         * its owner withdraws it and ends what it counted itself. */
        if (ursa__waiter_decide_into(w, URSA__W_CLOSED, &b))
            failed++;
        ursa__waitq_flush(&s->q, &b); /* a start after CLOSED fails: none join */
    }
    assign_locked(s, back, &b); /* queue empty: clears WAITERS, keeps count */
    ursa__waitq_unlock(&s->q, bits);
    ursa__wake_batch_run(&b);
    return failed;
}
