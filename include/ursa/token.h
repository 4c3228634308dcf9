/* ursa — cancellation tokens: a flag that goes from "live" to "cancelled"
 * once, that tasks can be bound to and that can be waited for.
 *
 *     ursa_token_t shutdown;
 *     ursa_token_init(&shutdown, NULL);
 *     ursa_token_spawn(&shutdown, &t, serve, conn, NULL); // t is bound
 *     ...
 *     ursa_token_cancel(&shutdown);   // any thread: every bound task's
 *                                     // waits now fail with -ECANCELED
 *
 * - Cancel is idempotent and works from any thread or task, or a foreign
 *   loop's callback (not from a waker, nor a signal handler); it never
 *   waits for anything but short internal locks.
 * - Tokens form a tree: a child (ursa_token_init(&child, &parent)) is
 *   cancelled with its parent, and with its parent's parent, and so on;
 *   cancelling a child leaves its parent alone. A child made under a
 *   cancelled parent is born cancelled.
 * - A task bound to a token (spawned with ursa_token_spawn, or bound at
 *   run time with ursa_token_bind) is cancelled as ursa_task_cancel would
 *   cancel it once the token (or an ancestor) is cancelled: its current
 *   and later waits fail with -ECANCELED, ursa_task_cancelled() is true.
 *   A task that binds to a token already cancelled is cancelled at once
 *   (it fails at its next wait). A task is bound to one token at most,
 *   until it ends.
 * - Waiting for the cancel (ursa_token_wait) works in a task, on a plain
 *   thread and in the raw form, so a token is a select case: a task bound
 *   to the token it waits for gets 0 (the token fired), not -ECANCELED.
 *
 * A token is destroyed after its children, its bound tasks (they unbind
 * when they end) and its waiters are gone: otherwise destroy says -EBUSY
 * and changes nothing. */
#ifndef URSA_TOKEN_H
#define URSA_TOKEN_H

#include "detail/token.h"
#include "rt.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* A token: embed it, ursa_token_init it. Fields private
 * (ursa/detail/token.h). */
typedef struct ursa_token ursa_token_t;

/* Not a wait: initialises an embedded token, live, or cancelled if its
 * parent (NULL: none, a root) is cancelled already. A child is cancelled
 * whenever its parent is; the parent must outlive it.
 *   0        initialised
 *   -EINVAL  tok is NULL, or tok == parent */
URSA_API int ursa_token_init(ursa_token_t *tok, ursa_token_t *parent);

/* Not a wait: ends the token's life (a child leaves its parent).
 *   0        destroyed
 *   -EBUSY   it still has children, bound tasks that have not ended, or
 *            waiters (reported as misuse; nothing changed)
 *   -EINVAL  tok is NULL */
URSA_API int ursa_token_destroy(ursa_token_t *tok);

/* Not a wait: cancels the token and every descendant: their waiters are
 * released, their bound tasks cancelled. When it returns (1 or 0) the
 * whole subtree is cancelled. Any thread or task.
 *   1        this call cancelled it
 *   0        it was cancelled already (nothing changed)
 *   -EINVAL  tok is NULL */
URSA_API int ursa_token_cancel(ursa_token_t *tok);

/* Not a wait: whether the token is cancelled (a snapshot that only goes
 * from false to true; false for NULL). A true also shows the canceller's
 * writes before its cancel. */
URSA_API bool ursa_token_is_cancelled(const ursa_token_t *tok);

/* Not a wait: binds the calling task to tok until the task ends. If tok is
 * cancelled already, the task is cancelled now (its next wait fails).
 *   0        bound (or bound to tok already)
 *   -EBUSY   the task is bound to another token (a group's member is
 *            bound to its group's: give the group a parent token instead)
 *   -EINVAL  tok is NULL, or not called from a task */
URSA_API int ursa_token_bind(ursa_token_t *tok);

/* Not a wait: the token the calling task is bound to, NULL if none or off
 * task. */
URSA_API ursa_token_t *ursa_token_current(void);

/* Not a wait: ursa_spawn, the new task bound to tok before it first runs
 * (born cancelled if tok is). Call from a task. Codes as ursa_spawn;
 * -EINVAL also for a NULL tok. */
URSA_API int ursa_token_spawn(ursa_token_t *tok, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                              const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Not a wait: ursa_token_spawn onto runtime rt, from any thread. Codes as
 * ursa_rt_spawn; -EINVAL also for a NULL tok. */
URSA_API int ursa_token_rt_spawn(ursa_token_t *tok, ursa_rt_t *rt, ursa_task_t **out,
                                 ursa_task_fn_t fn, void *arg,
                                 const ursa_spawn_opts_t *opts) URSA_NODISCARD;

/* Phase 1 (wait; there is no phase 2): waits until tok is cancelled. In a
 * task (suspends) or on a plain thread (parks).
 *   0           the token is cancelled (also for a task bound to it)
 *   -EAGAIN     deadline is URSA_NOW and it is not cancelled
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first (by another token,
 *               or ursa_task_cancel)
 *   -EINVAL     tok is NULL
 * A cancel that lands in the same instant as the deadline is kept: 0. */
#define ursa_token_wait(tok, deadline) ursa_token_wait_at(tok, deadline, URSA_SITE)
URSA_API int ursa_token_wait_at(ursa_token_t *tok, ursa_time_t deadline,
                                const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form (calling context 3, ursa/wait.h), a
 * select case. _start:
 *   0             cancelled already; call _finish now
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from any
 *                 thread, when the token is cancelled
 *   -EINVAL       NULL tok / w / waker.fn
 * _finish, once ursa_wait_ready(w):
 *   0        the token is cancelled; the wait is over
 *   -EAGAIN  not cancelled yet (w stays queued)
 *   -EINVAL  NULL, w not started on tok, or already finished / cancelled
 * Or ursa_wait_cancel(w) (-ECANCELED) instead: the wait holds nothing. */
#define ursa_token_wait_start(tok, w, ...) ursa_token_wait_start_at(tok, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_token_wait_start_at(ursa_token_t *tok, ursa_wait_t *w, ursa_waker_t waker,
                                      const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_token_wait_finish(ursa_token_t *tok, ursa_wait_t *w) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
