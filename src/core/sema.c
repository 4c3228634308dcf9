#include "sema.h"

void ursa__sema_init(ursa__sema_t *s, uint64_t permits)
{
    atomic_init(&s->state, permits << URSA__SEMA_SHIFT);
    atomic_init(&s->lock, 0);
    s->pad_ = 0;
    s->head = s->tail = NULL;
    atomic_init(&s->total, permits);
}

static void flush(ursa__sema_t *s, ursa__wake_batch_t *b)
{
    ursa__spin_unlock(&s->lock);
    ursa__wake_batch_run(b);
    ursa__spin_lock(&s->lock);
}

/* Under the lock: hands n permits to the queue in FIFO order; what is left
 * once the queue is empty goes back into the word, clearing WAITERS. */
static void assign_locked(ursa__sema_t *s, uint64_t n, ursa__wake_batch_t *b)
{
    while (n && s->head) {
        ursa_wait_t *w = s->head;
        uint64_t give = n < w->want ? n : w->want;
        w->want -= give;
        w->got += give;
        n -= give;
        if (w->want)
            break;
        ursa__waitq_remove(&s->head, &s->tail, w);
        /* release: the waiter reads got/want after seeing the decision. */
        atomic_store_explicit(&w->state, URSA__W_GRANTED, memory_order_release);
        if (b->n == URSA__WAKE_BATCH)
            flush(s, b);
        b->w[b->n++] = w;
    }
    if (s->head)
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
static int grant_now(ursa_wait_t *w, uint64_t n)
{
    w->got = n;
    w->want = 0;
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

int ursa__sema_start(ursa__sema_t *s, ursa_wait_t *w, uint64_t n)
{
    w->owner = s;
    w->got = 0;
    w->want = n;
    if (ursa__sema_try(s, n))
        return grant_now(w, n);
    ursa__spin_lock(&s->lock);
    /* relaxed: the CASes below validate it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & URSA__SEMA_CLOSED) {
            ursa__spin_unlock(&s->lock);
            ursa__wait_complete_now(w, URSA__W_CLOSED);
            return -EPIPE;
        }
        uint64_t avail = st >> URSA__SEMA_SHIFT; /* 0 whenever WAITERS is set */
        if (avail >= n && !(st & URSA__SEMA_WAITERS)) {
            /* acquire: as in ursa__sema_try. */
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, st - (n << URSA__SEMA_SHIFT),
                                                      memory_order_acquire, memory_order_relaxed)) {
                ursa__spin_unlock(&s->lock);
                return grant_now(w, n);
            }
            continue;
        }
        /* Take what there is and queue for the rest; setting WAITERS in the
         * same CAS stops fast-path acquirers from barging past us. acquire:
         * the permits we take were released by someone. */
        uint64_t next = (st & URSA__SEMA_CLOSED) | URSA__SEMA_WAITERS;
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acquire,
                                                  memory_order_relaxed)) {
            w->got = avail;
            w->want = n - avail;
            break;
        }
    }
    atomic_store_explicit(&w->state, URSA__W_QUEUED, memory_order_relaxed);
    ursa__waitq_push(&s->head, &s->tail, w);
    ursa__spin_unlock(&s->lock);
    return -EINPROGRESS;
}

bool ursa__sema_cancel(ursa_wait_t *w)
{
    ursa__sema_t *s = w->owner;
    ursa__wake_batch_t b;
    b.n = 0;
    if (!ursa__wait_cancel_begin(&s->lock, w))
        return false;
    ursa__waitq_remove(&s->head, &s->tail, w);
    atomic_store_explicit(&w->state, URSA__W_CANCELLED, memory_order_relaxed);
    uint64_t back = w->got;
    w->got = 0;
    /* Our partial permits go to the next waiters; if the queue is now empty
     * this also clears WAITERS. */
    assign_locked(s, back, &b);
    ursa__spin_unlock(&s->lock);
    ursa__wake_batch_run(&b);
    atomic_store_explicit(&w->done, 1, memory_order_relaxed); /* our own node */
    return true;
}

void ursa__sema_give_back(ursa_wait_t *w)
{
    ursa__sema_release(w->owner, w->got);
    w->got = 0;
}

void ursa__sema_release_slow(ursa__sema_t *s, uint64_t n)
{
    ursa__wake_batch_t b;
    b.n = 0;
    ursa__spin_lock(&s->lock);
    /* The spinlock's release/acquire orders our critical section before the
     * waiter that the permits go to. */
    assign_locked(s, n, &b);
    ursa__spin_unlock(&s->lock);
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

void ursa__sema_close(ursa__sema_t *s)
{
    ursa__wake_batch_t b;
    b.n = 0;
    ursa__spin_lock(&s->lock);
    /* relaxed: the spinlock orders this against queued waiters; fast-path
     * acquirers see it on their next CAS. */
    atomic_fetch_or_explicit(&s->state, URSA__SEMA_CLOSED, memory_order_relaxed);
    uint64_t back = 0;
    while (s->head) {
        ursa_wait_t *w = s->head;
        ursa__waitq_remove(&s->head, &s->tail, w);
        back += w->got;
        w->got = 0;
        atomic_store_explicit(&w->state, URSA__W_CLOSED, memory_order_release);
        if (b.n == URSA__WAKE_BATCH)
            flush(s, &b);
        b.w[b.n++] = w;
    }
    assign_locked(s, back, &b); /* queue empty: clears WAITERS, keeps count */
    ursa__spin_unlock(&s->lock);
    ursa__wake_batch_run(&b);
}

bool ursa__sema_has_waiters(ursa__sema_t *s)
{
    ursa__spin_lock(&s->lock);
    bool any = s->head != NULL;
    ursa__spin_unlock(&s->lock);
    return any;
}
