/* ursa — reusable barrier: N parties meet, one of them is the leader.
 *
 *     ursa_barrier_t b;  ursa_barrier_init(&b, 4);
 *     bool leader;
 *     if (ursa_barrier_wait(&b, &leader, URSA_NEVER) == 0 && leader)
 *         merge_results();          // exactly one party per generation
 *
 * Each generation trips when its N-th party arrives; that party is the
 * leader and returns at once, the N-1 waiting ones are released. The
 * barrier is then ready for the next generation. A party whose wait times
 * out or is cancelled before the trip withdraws its arrival, so the
 * generation needs another party to trip; once a generation has tripped,
 * all of its parties return 0, even one whose deadline or cancel fires at
 * that moment. A completed wait holds nothing (no phase-2 obligation).
 *
 * N = 1: every wait is a generation of its own and returns 0 at once as
 * its leader. N = 0 behaves the same (there is nothing to wait for).
 *
 * The wait works inside a task, on a plain thread, and in raw form
 * (_start/_finish with a waker of one's own, see ursa/wait.h). */
#ifndef URSA_BARRIER_H
#define URSA_BARRIER_H

#include "detail/barrier.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A barrier: embed it, ursa_barrier_init it. Fields private
 * (ursa/detail/barrier.h). */
typedef struct ursa_barrier ursa_barrier_t;

/* Not a wait: initialises a barrier for `parties` parties (0 and 1: it
 * never blocks).
 *   0        initialised
 *   -EINVAL  b is NULL */
URSA_API int ursa_barrier_init(ursa_barrier_t *b, uint32_t parties);

/* Not a wait: destroys a barrier nobody waits at.
 *   0        destroyed
 *   -EBUSY   parties are waiting (reported as misuse; nothing changed)
 *   -EINVAL  b is NULL */
URSA_API int ursa_barrier_destroy(ursa_barrier_t *b);

/* Phase 1 (wait; no hold follows): arrives at the barrier and waits until
 * `deadline` for the generation to trip. *is_leader (may be NULL) tells
 * whether this party was the generation's leader (the last to arrive;
 * exactly one per generation).
 *   0           the generation tripped
 *   -EAGAIN     deadline is URSA_NOW and this arrival does not trip it
 *               (not counted)
 *   -ETIMEDOUT  the deadline passed first: the arrival was withdrawn (the
 *               generation still needs as many parties as before)
 *   -ECANCELED  the calling task was cancelled first: withdrawn, as above
 *   -EINVAL     b is NULL */
#define ursa_barrier_wait(b, is_leader, deadline) \
    ursa_barrier_wait_at(b, is_leader, deadline, URSA_SITE)
URSA_API int ursa_barrier_wait_at(ursa_barrier_t *b, bool *is_leader, ursa_time_t deadline,
                                  const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form (calling context 3, see
 * ursa/wait.h). _start arrives:
 *   0             this arrival tripped the generation (or N <= 1): call
 *                 _finish now
 *   -EINPROGRESS  waiting; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the generation trips
 *   -EINVAL       NULL b / w / waker.fn
 * _finish, once ursa_wait_ready(w), sets *is_leader (may be NULL):
 *   0        the generation tripped
 *   -EAGAIN  not tripped yet (w stays queued)
 *   -EINVAL  NULL, w not a wait on b, or already finished / cancelled
 * Or ursa_wait_cancel(w) instead of _finish: before the trip it withdraws
 * the arrival; after it, the generation has tripped anyway and the cancel
 * only discards the result. */
#define ursa_barrier_wait_start(b, w, ...) ursa_barrier_wait_start_at(b, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_barrier_wait_start_at(ursa_barrier_t *b, ursa_wait_t *w, ursa_waker_t waker,
                                        const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_barrier_wait_finish(ursa_barrier_t *b, ursa_wait_t *w,
                                      bool *is_leader) URSA_NODISCARD;

/* Not a wait: snapshots. Parties waiting in the current generation, and
 * generations tripped so far (with N <= 1 every wait counts as one); 0
 * for NULL. */
URSA_API uint32_t ursa_barrier_arrived(const ursa_barrier_t *b);
URSA_API uint64_t ursa_barrier_generation(const ursa_barrier_t *b);

URSA_EXTERN_C_END

#endif
