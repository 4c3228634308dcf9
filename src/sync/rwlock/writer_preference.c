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
    ursa__sema_t *s = &rw->sema;
    ursa_wait_t *h = s->head;
    /* relaxed: changed under this lock, or reset by a reader that entered
     * (a stale value only makes readers get in earlier). */
    if (!h || h->ops != &ursa__rwlock_write_ops ||
        atomic_load_explicit(&rw->wstreak, memory_order_relaxed) < URSA_RWLOCK_WRITER_STREAK)
        return 0;
    ursa_wait_t *rh = NULL, *rt = NULL;
    for (ursa_wait_t *w = h, *next; w; w = next) {
        next = w->next;
        if (w->ops == &ursa__rwlock_read_ops) {
            ursa__waitq_remove(&s->head, &s->tail, w);
            ursa__waitq_push(&rh, &rt, w);
        }
    }
    if (!rh)
        return 0;
    /* Only the head can hold a partial assignment; it is no longer first,
     * so its permits go back to whoever is. */
    uint64_t back = h->got;
    h->want += h->got;
    h->got = 0;
    rt->next = s->head;
    if (s->head)
        s->head->prev = rt;
    else
        s->tail = rt;
    s->head = rh;
    /* relaxed: under the queue lock, as the load above. */
    atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    return back;
}

void ursa__rwlock_release_slow(ursa_rwlock_t *rw, uint64_t n)
{
    ursa__sema_t *s = &rw->sema;
    ursa__spin_lock(&s->lock);
    uint64_t back = promote_readers_locked(rw);
    ursa__spin_unlock(&s->lock);
    ursa__sema_release(s, n + back);
}

static bool reader_queued_locked(const ursa__sema_t *s)
{
    for (const ursa_wait_t *w = s->head; w; w = w->next)
        if (w->ops == &ursa__rwlock_read_ops)
            return true;
    return false;
}

void ursa__rwlock_writer_entered(ursa_rwlock_t *rw)
{
    ursa__spin_lock(&rw->sema.lock);
    /* relaxed: under the lock (see promote_readers_locked). */
    if (reader_queued_locked(&rw->sema))
        atomic_fetch_add_explicit(&rw->wstreak, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
    ursa__spin_unlock(&rw->sema.lock);
}
