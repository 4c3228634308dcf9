/* ursa — task groups: tasks spawned into a group are owned by it, joined
 * in the order they finish, cancelled together, and never outlive it.
 *
 *     ursa_group_t g;
 *     ursa_group_init(&g, NULL);
 *     for (int i = 0; i < n; i++)
 *         ursa_group_spawn(&g, NULL, work, &jobs[i], NULL);
 *     void *res;
 *     while (ursa_group_join_next(&g, &res, NULL, URSA_NEVER) != -ECHILD)
 *         use(res);                  // in the order the tasks finished
 *     ursa_group_destroy(&g);
 *
 * - A group has a cancellation token (ursa/token.h) and every member is
 *   bound to it: ursa_group_cancel (= ursa_token_cancel of that token)
 *   makes every member's current and later waits fail with -ECANCELED,
 *   members spawned later included. Give the group a parent token
 *   (ursa_group_init(&g, &shutdown)) and cancelling the parent cancels
 *   the group.
 * - Errors travel as data: a member's return value is what join_next
 *   hands back. Nothing aborts the group when a member fails; to stop the
 *   others on the first failure, call ursa_group_cancel when join_next
 *   returns one.
 * - ursa_group_destroy cancels what is still running and waits for it:
 *   once it returns no member runs. It blocks (from a task it suspends,
 *   and a cancel of the caller does not cut it short).
 * - A member's handle belongs to the group: it may be passed to
 *   ursa_task_cancel and compared with join_next's `which`, until
 *   join_next returns it; never joined or detached by hand.
 * - A group must be destroyed before the runtime of its members is freed.
 */
#ifndef URSA_GROUP_H
#define URSA_GROUP_H

#include "detail/group.h"
#include "rt.h"
#include "token.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A task group: embed it, ursa_group_init it. Fields private
 * (ursa/detail/group.h). */
typedef struct ursa_group ursa_group_t;

/* Not a wait: initialises an embedded group, empty. Its token is a child
 * of parent (NULL: a root), so the group is cancelled with parent (born
 * cancelled if parent is); parent must outlive the group.
 *   0        initialised
 *   -EINVAL  g is NULL */
URSA_API int ursa_group_init(ursa_group_t *g, ursa_token_t *parent);

/* Not a wait, but it blocks: cancels the group, waits until every member
 * has finished (a cancel of the caller does not cut this short: the
 * caller's cancel is kept for its next wait), drops the results nobody
 * joined, and ends the group. From a task (it suspends) or a plain thread
 * (it parks); never from a waker or a foreign loop's callback.
 *   0        destroyed; no member runs
 *   -EDEADLK called by one of the group's own members, or by a task bound
 *            to a token below the group's (a member of a nested group):
 *            it would wait for itself (nothing changed)
 *   -EBUSY   another caller waits in join_next or wait, or a raw join_next
 *            was granted and not finished or cancelled (nothing changed),
 *            or, after every member finished, the group's token still
 *            has children or tasks bound by hand (the group stays, empty
 *            and cancelled: destroy it again later); reported as misuse
 *   -EINVAL  g is NULL */
URSA_API int ursa_group_destroy(ursa_group_t *g);

/* Not a wait: ursa_spawn into the group: the task is bound to the group's
 * token before it first runs (born cancelled if the group is cancelled)
 * and joined through the group. Call from a task. *out (may be NULL) gets
 * the member's handle (see above).
 *   0        spawned
 *   -EINVAL  NULL g or fn, opts->detached, or ursa_spawn's -EINVAL cases
 *   -ENOMEM  out of memory */
URSA_API int ursa_group_spawn(ursa_group_t *g, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                              const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Not a wait: ursa_group_spawn onto runtime rt, from any thread. Codes as
 * ursa_group_spawn; -EINVAL also for a NULL rt. */
URSA_API int ursa_group_rt_spawn(ursa_group_t *g, ursa_rt_t *rt, ursa_task_t **out,
                                 ursa_task_fn_t fn, void *arg,
                                 const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Not a wait: cancels every member, running or spawned later (cancels the
 * group's token). Idempotent; any thread.
 *   1        this call cancelled the group
 *   0        it was cancelled already
 *   -EINVAL  g is NULL */
URSA_API int ursa_group_cancel(ursa_group_t *g);

/* Not a wait: the group's token (NULL for NULL): to wait for the group's
 * cancel, select on it, or give it children. */
URSA_API ursa_token_t *ursa_group_token(ursa_group_t *g);

/* Not a wait: the members not yet joined, running or finished (a
 * snapshot; 0 for NULL). */
URSA_API size_t ursa_group_len(const ursa_group_t *g);

/* Phase 1 (wait; no hold follows): waits until a member has finished,
 * takes the one that finished first and frees its handle. *result (may be
 * NULL) gets its return value, *which (may be NULL) the handle it had
 * (freed now: only to compare).
 *   0           a member was joined
 *   -ENOMEM     a member was joined that never ran (no memory for its
 *               stack); *result is NULL
 *   -ECHILD     the group has no member left to join (none runs, and
 *               what finished is taken or promised to other joiners),
 *               now or while the caller waited
 *   -EAGAIN     deadline is URSA_NOW and no member has finished
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     g is NULL
 * On -EAGAIN, -ETIMEDOUT, -ECANCELED nothing was joined. A member that
 * finished in the same instant as the deadline or the cancel is joined
 * (0). Several joiners at once each get a different member. */
#define ursa_group_join_next(g, result, which, deadline)                                  \
    ursa_group_join_next_at(g, result, which, deadline, URSA_SITE)
URSA_API int ursa_group_join_next_at(ursa_group_t *g, void **result, ursa_task_t **which,
                                     ursa_time_t deadline, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form of join_next (calling context 3,
 * ursa/wait.h), a select case. _start:
 *   0             a finished member is set aside for w; call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when a member finishes for w (or the last one
 *                 finished for another joiner: _finish says -ECHILD)
 *   -ECHILD       no member left to join (the wait is over: _finish says
 *                 -ECHILD again; or ursa_wait_cancel it)
 *   -EINVAL       NULL g / w / waker.fn
 * _finish, once ursa_wait_ready(w): joins the member set aside for w
 * (which need not be the one whose end woke w: the oldest finished):
 *   0 / -ENOMEM   as ursa_group_join_next (*result, *which may be NULL)
 *   -ECHILD       the last running member ended and none was left for w
 *   -EAGAIN       no member set aside yet (w stays queued)
 *   -EINVAL       NULL, w not started on g, or already finished / cancelled
 * Or ursa_wait_cancel(w) (-ECANCELED): a member set aside for w goes to
 * the next joiner, or stays in the group. */
#define ursa_group_join_next_start(g, w, ...)                                             \
    ursa_group_join_next_start_at(g, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_group_join_next_start_at(ursa_group_t *g, ursa_wait_t *w, ursa_waker_t waker,
                                           const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_group_join_next_finish(ursa_group_t *g, ursa_wait_t *w, void **result,
                                         ursa_task_t **which) URSA_NODISCARD;

/* Phase 1 (wait; no hold follows): waits until no member runs (every
 * member spawned so far has finished; their results stay for join_next).
 *   0           no member runs (also for an empty group)
 *   -EAGAIN     deadline is URSA_NOW and a member runs
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EINVAL     g is NULL
 * A member of g that waits for g waits for itself: it ends only by its
 * deadline or its cancel. */
#define ursa_group_wait(g, deadline) ursa_group_wait_at(g, deadline, URSA_SITE)
URSA_API int ursa_group_wait_at(ursa_group_t *g, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw form of ursa_group_wait. _start: 0 (no member
 * runs: call _finish now), -EINPROGRESS (queued; the waker is called once
 * when the last running member finishes), -EINVAL. _finish: 0, -EAGAIN,
 * -EINVAL as ursa_token_wait_finish. Or ursa_wait_cancel(w). */
#define ursa_group_wait_start(g, w, ...) ursa_group_wait_start_at(g, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_group_wait_start_at(ursa_group_t *g, ursa_wait_t *w, ursa_waker_t waker,
                                      const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_group_wait_finish(ursa_group_t *g, ursa_wait_t *w) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
