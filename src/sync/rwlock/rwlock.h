/* What the rwlock's files share: the lock itself (lock.c), its bounded
 * writer preference (writer_preference.c) and its reader bias (bias.c,
 * over the per-thread tables of reader_tables.h).
 *
 * Built on the batch semaphore: max_readers permits, a reader takes one, a
 * writer all of them. FIFO with partial assignment gives writer preference
 * (a reader queues behind a waiting writer) and keeps writers from
 * starving; writer_preference.c bounds the preference, bias.c takes the
 * read side off the semaphore while a lock is read-mostly. */
#ifndef URSA_SYNC_RWLOCK_RWLOCK_H
#define URSA_SYNC_RWLOCK_RWLOCK_H

#include "ursa/rwlock.h"

#include "../../core/bias.h"
#include "../../core/ctx.h"
#include "../../core/sema.h"
#include "reader_tables.h"

/* The two kinds of waits on the semaphore (lock.c); writer_preference.c
 * tells queued readers from writers by them. */
extern const ursa__wait_ops_t ursa__rwlock_read_ops;
extern const ursa__wait_ops_t ursa__rwlock_write_ops;

/* ---- bounded writer preference (writer_preference.c) ---- */

/* Slow half of ursa__rwlock_release: waiters are queued. */
void ursa__rwlock_release_slow(ursa_rwlock_t *rw, uint64_t n);

/* Every release of permits goes through here (unlocks, downgrade, leaks,
 * give-backs), so that each one that may hand the lock to a writer first
 * checks the streak. */
static inline void ursa__rwlock_release(ursa_rwlock_t *rw, uint64_t n)
{
    ursa__sema_t *s = &rw->sema;
    /* relaxed: the CAS validates it. */
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    while (!(st & URSA__SEMA_WAITERS)) {
        /* release: our critical section happens-before the next acquirer. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  st + (n << URSA__SEMA_SHIFT),
                                                  memory_order_release, memory_order_relaxed))
            return;
    }
    ursa__rwlock_release_slow(rw, n);
}

/* A writer entered from the queue (or through the raw form): count it if
 * readers are waiting, else there is no streak. */
void ursa__rwlock_writer_entered(ursa_rwlock_t *rw);

/* A reader entered from the queue: the writers' streak is over. No writer
 * can hold (and count) while we hold our permit. */
static inline void ursa__rwlock_reader_entered(ursa_rwlock_t *rw)
{
    /* relaxed: a counter for fairness; orders nothing. */
    if (atomic_load_explicit(&rw->wstreak, memory_order_relaxed))
        atomic_store_explicit(&rw->wstreak, 0, memory_order_relaxed);
}

/* ---- reader bias (bias.c) ---- */

/* Turns bias off; the token comes back now, or from the last fast reader.
 * A writer calls it before it queues and again right after: a reader may
 * have turned the bias on after the first look (regression
 * test_rwlock_bias_rebias_race). The second call must not skip the lock
 * on a lock-free look at the flag: a reader may hold bias.lock with the
 * token taken (before we queued) and the flag not yet on; under the lock
 * we see its flag, or it sees us queued and takes no token. */
void ursa__rwlock_bias_revoke(ursa_rwlock_t *rw, ursa__ctx_t *c);

/* The locked half of ursa__rwlock_bias_maybe_on. */
void ursa__rwlock_bias_try_on(ursa_rwlock_t *rw, ursa__ctx_t *c);

/* Called by a reader that holds a permit (so no writer holds the lock):
 * turns bias on once `skip` such read locks went by. */
static inline void ursa__rwlock_bias_maybe_on(ursa_rwlock_t *rw, ursa__ctx_t *c)
{
    if (__builtin_expect(ursa__bias_countdown(&rw->bias), 0))
        ursa__rwlock_bias_try_on(rw, c);
}

/* ursa__rwlock_bias_drain_check, ursa__rwlock_read_fast_exit and
 * ursa__rwlock_read_count, a fast reader's steps, are in
 * ursa/detail/rwlock.h (the inline read lock of ursa/rwlock.h). */

/* Counts a fast reader in t: true, or false (bias was revoked: not counted). */
static inline bool ursa__rwlock_read_fast(ursa_rwlock_t *rw, ursa__rtab_t *t)
{
    if (ursa__rwlock_read_count(rw, t))
        return true;
    ursa__rwlock_read_fast_exit(rw->bias.slot, t);
    return false;
}

#endif
