/* Bounding the rwlock's writer preference.
 *
 * With a plain FIFO a queued reader waits for every writer queued ahead of
 * it — unbounded if many writers queued first. So: `wstreak` counts
 * writers that entered from the queue while a reader was queued, since
 * readers last entered from it. Every release that finds waiters checks
 * (under the queue lock) whether the head is a writer, a reader is queued
 * and the streak reached URSA_RWLOCK_WRITER_STREAK; if so it moves every
 * queued reader, in order, ahead of the writers (taking back what was
 * partly assigned to the head writer and releasing it with its own
 * permits) and resets the streak. Every writer grant from the queue comes
 * from a release (a cancel only passes on a head's partial permits, never
 * enough for a whole writer), and a counted writer holds every permit
 * until its own release, which then sees the count: so at most
 * URSA_RWLOCK_WRITER_STREAK writers enter in a row ahead of a queued
 * reader. */
#include "rwlock.h"

#include "../../core/spin.h"

/* Under the queue lock: if the streak is used up, moves the queued readers
 * ahead of the queued writers. Returns the permits taken back from the
 * (former) head writer, which the caller must release. */
static uint64_t promote_readers_locked(ursa_rwlock_t *rw)
{
    ursa__waitq_t *q = &rw->sema.q;
    ursa__waiter_t *h = q->head;
    /* relaxed: changed under this lock, or reset by a reader that entered
     * (a stale value only makes readers get in earlier). */
    if (!h || h->ops != &ursa__rwlock_write_ops ||
        atomic_load_explicit(&rw->wstreak, memory_order_relaxed) < URSA_RWLOCK_WRITER_STREAK)
        return 0;
    ursa__waitq_t readers = {0};
    for (ursa__waiter_t *w = h, *next; w; w = next) {
        next = w->next;
        if (w->ops == &ursa__rwlock_read_ops) {
            ursa__waitq_remove(q, w);
            ursa__waitq_push(&readers, w);
        }
    }
    if (!readers.head)
        return 0;
    /* Only the head can hold a partial assignment; it is no longer first,
     * so its permits go back to whoever is. */
    uint64_t back = 0;
    if (h->got != URSA__SEMA_LOOKING) { /* a barging writer holds nothing */
        back = h->got;
        h->want += h->got;
        h->got = 0;
    }
    /* The readers, in order, ahead of what is left. */
    readers.tail->next = q->head;
    if (q->head)
        q->head->prev = readers.tail;
    else
        q->tail = readers.tail;
    q->head = readers.head;
    ursa__waitq_count(q, (int)ursa__waitq_queued(&readers));
    /* relaxed: under the queue lock, as the load above. */
    atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    return back;
}

void ursa__rwlock_release_slow(ursa_rwlock_t *rw, uint64_t n)
{
    ursa__sema_t *s = &rw->sema;
    uint32_t bits = ursa__waitq_lock(&s->q);
    uint64_t back = promote_readers_locked(rw);
    ursa__waitq_unlock(&s->q, bits);
    /* The queue's path even while a barging writer's looker is out (OUT,
     * core/sema.h): the readers just promoted to the head are served from
     * what we release, not left to the writer's look. */
    ursa__sema_release_slow(s, n + back);
}

static bool reader_queued_locked(const ursa__sema_t *s)
{
    for (const ursa__waiter_t *w = s->q.head; w; w = w->next)
        if (w->ops == &ursa__rwlock_read_ops)
            return true;
    return false;
}

void ursa__rwlock_writer_entered(ursa_rwlock_t *rw)
{
    uint32_t bits = ursa__waitq_lock(&rw->sema.q);
    /* relaxed: under the lock (see promote_readers_locked). */
    if (reader_queued_locked(&rw->sema))
        atomic_fetch_add_explicit(&rw->wstreak, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    ursa__waitq_unlock(&rw->sema.q, bits);
}
