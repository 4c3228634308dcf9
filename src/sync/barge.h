/* The blocking wait of a barging lock (mutex, rwlock writer, semaphore
 * set to barge): queue as a looker, and on each wake take the permits if
 * they are still free, else queue again at the front. Its first try is
 * ursa__sema_barge_in (the streak's rule, core/sema.h). The semaphore core
 * (core/sema.h) keeps the starvation bound: this loop tells it when the
 * looker has waited URSA__SEMA_STARVE_NS. */
#ifndef URSA_SYNC_BARGE_H
#define URSA_SYNC_BARGE_H

#include "../core/sema.h"
#include "../core/wait_steps.h"

/* Waits for n permits of the barging s as a looker of ops' kind: 0 (the
 * caller holds n permits), -ETIMEDOUT / -ECANCELED (withdrawn: nothing
 * held, and no look is lost: a woken looker that gave up has queued
 * again first, see below), -EPIPE (closed). wait_start: when the caller
 * began to wait (the starvation bound counts from there). */
static inline int ursa__barge_block(ursa__ctx_t *c, ursa__sema_t *s, uint32_t n,
                                    const ursa__wait_ops_t *ops, ursa_time_t deadline,
                                    const ursa_site_t *site, ursa_time_t wait_start)
{
    ursa__sema_looker_t l;
    l.since = wait_start;
    l.thread = ursa__thread_uid();
    bool again = false, starved = false;
    for (;;) {
        ursa__waiter_init(&l.w, c->waker, ops);
        /* A woken looker that lost always queues again before it may give
         * up (the block below returns at once past the deadline, and its
         * cancel withdraws it): so the look it was given is never lost. A
         * release that came first left its permits in the word, where the
         * look finds them under the queue lock. */
        int rc = ursa__wait_block(c, &l.w, ursa__sema_look(s, &l, n, again, starved), deadline,
                                  site);
        if (rc)
            return rc;
        if ((rc = ursa__wait_grant_rc(&l.w)))
            return rc; /* closed */
        if (l.w.got) {
            /* Handed over (in HANDOFF), or free at the look. A hand-off to
             * a waiter that did not starve ends HANDOFF (Go's rule). The
             * clock only on this path: relaxed, a stale mode bit only
             * delays or repeats the end. */
            if (__builtin_expect(ursa__sema_handoff(s), 0) &&
                ursa__ctx_now(c) - l.since < URSA__SEMA_STARVE_NS)
                ursa__sema_end_handoff(s);
            return 0;
        }
        if (ursa__sema_try_barge(s, n)) {
            ursa__sema_looked(s);
            return 0;
        }
        /* Lost the look to a barger. The clock only here, where waiting
         * goes on. */
        again = true;
        starved = ursa__ctx_now(c) - l.since >= URSA__SEMA_STARVE_NS;
    }
}

#endif
