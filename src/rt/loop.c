/* A worker's loop (ursa__worker_run): runs ready tasks, fires timers,
 * reaps the ring, finds work elsewhere and sleeps (idle.c) when it has
 * none; cancels everything when the runtime stops; reports a deadlock
 * (rt/deadlock.c).
 * The same for a thread that runs several workers (fewer threads than
 * workers: `threads`), each in turn.
 * And the deterministic mode's loop for several workers: one thread runs
 * them all, a turn at a time, the worker of each turn drawn from the seed's
 * stream. */
#include <stdio.h>
#include <stdlib.h>

#include "deadlock.h"
#include "runtime.h"
#include "task.h"
#include "worker.h"

static void cancel_all(ursa__worker_t *w)
{
    for (ursa_task_t *t = w->all; t; t = t->all_next) {
        /* release: ordered before the wake, as in ursa_task_cancel. */
        atomic_store_explicit(&t->cancel, 1, memory_order_release);
        ursa__task_wake(t);
    }
}

static bool root_done(ursa_task_t *root)
{
    /* acquire: the root's result is visible once we see JOIN_DONE. */
    return atomic_load_explicit(&root->joiner, memory_order_acquire) == URSA__JOIN_DONE;
}

/* A stopping runtime is done when no worker has a live task and nothing
 * waits to be adopted. */
static bool rt_empty(ursa_rt_t *rt)
{
    if (ursa__inject_len(&rt->inject))
        return false;
    for (unsigned i = 0; i < rt->nworkers; i++)
        /* acquire: pairs with retire's release, so a task that pushed a
         * fixed spawn into an inbox before it ended is seen with the push
         * (the caller drains its inbox once more). */
        if (atomic_load_explicit(&rt->workers[i].ntasks, memory_order_acquire))
            return false;
    return true;
}

/* w stops running tasks for now (worker 0 leaving block_on): what only w
 * could run waits for it; the migratable task of its LIFO slot joins the
 * queue others may take from. */
static void pause_worker(ursa__worker_t *w)
{
    ursa_task_t *t = w->lifo;
    if (t) {
        w->lifo = NULL;
        ursa__worker_queue(w, t);
    }
    if (ursa__stealq_len(&w->lq))
        w->notify = true;
    ursa__worker_turn_end(w);
}

/* Whether a worker h runs has a task to run. */
static bool hosted_work(ursa__worker_t *h)
{
    URSA__FOR_HOSTED(w, h)
        if (ursa__worker_has_work(w))
            return true;
    return false;
}

/* The end of an idle turn of h and the workers it runs (h alone without
 * hosting): sleeps until woken, a completion or timeout (< 0: none); quiet:
 * nothing pending (no timer, no I/O). Every worker asleep with nothing
 * pending counts as idle; when all of the runtime's are, for
 * deadlock_report_after, the ones whose tasks wait report (a best-effort
 * diagnostic: a task one adopted may run on another worker). False if work
 * came in before the sleep. */
static bool sleep_idle(ursa__worker_t *h, ursa_time_t timeout, bool quiet, bool stopping)
{
    ursa_rt_t *rt = h->rt;
    if (stopping && (timeout < 0 || timeout > URSA_MSEC(1)))
        timeout = URSA_MSEC(1); /* look again whether the others are done */
    ursa_time_t report_after = rt->cfg.deadlock_report_after;
    bool may_report = quiet && report_after > 0 && !h->reported && ursa__hosted_any(h, true);
    if (may_report)
        timeout = report_after;
    if (!ursa__worker_sleep_begin(h))
        return false;
    unsigned n = 0;
    URSA__FOR_HOSTED(w, h)
        n++;
    bool count_idle = quiet && report_after > 0;
    if (count_idle)
        /* release: our tasks' wait records (read by the report of the
         * worker that owns them) happen before. */
        atomic_fetch_add_explicit(&rt->idle_workers, n, memory_order_release);
    ursa_time_t t0 = ursa__mono_now();
    ursa__worker_sleep(h, timeout);
    if (count_idle) {
        /* acquire: pairs with the others' release, above. */
        unsigned idle = atomic_fetch_sub_explicit(&rt->idle_workers, n, memory_order_acquire);
        if (may_report && idle == rt->nworkers && !hosted_work(h) &&
            ursa__mono_now() - t0 >= report_after) {
            URSA__FOR_HOSTED(w, h) {
                /* relaxed: ntasks only this thread writes; the inbox, a
                 * look (a task there is news, not a deadlock). */
                if (atomic_load_explicit(&w->ntasks, memory_order_relaxed) &&
                    !atomic_load_explicit(&w->inbox, memory_order_relaxed)) {
                    ursa__cur_worker = w;
                    ursa__deadlock_report(w);
                }
            }
            ursa__cur_worker = h;
            h->reported = true;
        }
    }
    ursa__worker_sleep_end(h);
    return true;
}

static int run_drawn(ursa_rt_t *rt, ursa_task_t *root);
static int run_hosted(ursa__worker_t *h);

int ursa__worker_run(ursa__worker_t *w, ursa_task_t *root)
{
    ursa_rt_t *rt = w->rt;
    if (rt->cfg.deterministic && rt->nworkers > 1)
        return run_drawn(rt, root);
    if (ursa__hosts_several(w))
        return run_hosted(w); /* a thread of the runtime: no root (block_on joins it) */
    bool cancelled = false;
    for (;;) {
        ursa__worker_drain_inbox(w);
        if (root && root_done(root)) {
            pause_worker(w);
            return 0;
        }
        bool stopping = atomic_load_explicit(&rt->stopping, memory_order_acquire);
        if (stopping && !cancelled) {
            cancel_all(w);
            cancelled = true;
        }
        if (ursa__worker_has_work(w)) {
            w->reported = false; /* progress: a later stall is news again */
            if (w->searching)
                ursa__worker_found_work(w);
            ursa__worker_run_batch(w);
            continue;
        }
        if (stopping && rt_empty(rt)) {
            ursa__worker_drain_inbox(w); /* a last spawn from a task now gone */
            if (!ursa__worker_has_work(w))
                return 0;
            continue;
        }
        /* Idle. */
        ursa_time_t timeout = -1;
        if (ursa__timers_any(&w->timers)) {
            ursa_time_t now = ursa__worker_now(w);
            ursa_time_t next = ursa__timers_next(&w->timers);
            if (rt->cfg.deterministic) {
                if (next > w->vclock)
                    w->vclock = next; /* virtual time jumps to the timer */
                ursa__timers_fire(&w->timers, w->vclock);
                continue;
            }
            if (next <= now) {
                ursa__timers_fire(&w->timers, now);
                continue;
            }
            timeout = next - now;
        }
        /* relaxed: only we write it. */
        size_t ntasks = atomic_load_explicit(&w->ntasks, memory_order_relaxed);
        bool quiet = !ursa__timers_any(&w->timers) && !w->ring.inflight;
        if (quiet && rt->cfg.deterministic && ntasks) {
            ursa__deadlock_report(w);
            return -EDEADLK;
        }
        if (!rt->cfg.deterministic && ursa__worker_find_work(w))
            continue;
        if (!sleep_idle(w, timeout, quiet, stopping))
            continue;
        if (ursa__timers_any(&w->timers))
            ursa__timers_fire(&w->timers, ursa__worker_now(w));
    }
}

/* ---- a thread that runs several workers ---- */

/* Fires the due timers of the workers h runs: how long until the next one
 * (-1: none armed). Every turn, so that busy neighbours delay no timer. */
static ursa_time_t hosted_timers(ursa__worker_t *h)
{
    ursa_time_t now = 0, next = -1;
    URSA__FOR_HOSTED(w, h) {
        if (!ursa__timers_any(&w->timers))
            continue;
        if (!now)
            now = ursa__mono_now();
        if (ursa__timers_next(&w->timers) <= now) {
            ursa__cur_worker = w;
            ursa__timers_fire(&w->timers, now);
            ursa__worker_turn_end(w); /* the kicks its wakes deferred */
        }
        if (ursa__timers_any(&w->timers)) {
            ursa_time_t left = ursa__timers_next(&w->timers) - now;
            if (next < 0 || left < next)
                next = left > 0 ? left : 0;
        }
    }
    ursa__cur_worker = h;
    return next;
}

/* One turn of every worker h runs: takes its inbox and runs what is
 * ready. True if some worker had work. What a worker's turn deferred (kicks
 * of the tasks it woke, a notification) goes out at the end of its turn,
 * whether it ran a task or only retired one handed back. */
static bool hosted_turn(ursa__worker_t *h, bool cancel)
{
    bool worked = false;
    URSA__FOR_HOSTED(w, h) {
        ursa__cur_worker = w;
        ursa__worker_drain_inbox(w); /* first: a spawn there is cancelled too */
        if (cancel)
            cancel_all(w);
        if (ursa__worker_has_work(w)) {
            ursa__worker_run_batch(w);
            worked = true;
        }
        ursa__worker_turn_end(w);
    }
    ursa__cur_worker = h;
    /* h searches for all of them: the work it found may be any one's. */
    if (worked && h->searching)
        ursa__worker_found_work(h);
    /* The workers' I/O is on h's ring: reap it even when h had no turn. */
    ursa__ring_poll(&h->ring);
    ursa__worker_turn_end(h);
    return worked;
}

/* ursa__worker_run for a thread of the runtime that runs several workers:
 * the same steps, taken for all of them; the thread sleeps once for all
 * (idle.c). Until the runtime stops and no task is left. */
static int run_hosted(ursa__worker_t *h)
{
    ursa_rt_t *rt = h->rt;
    bool cancelled = false;
    for (;;) {
        /* acquire: the state before stop_workers' release. */
        bool stopping = atomic_load_explicit(&rt->stopping, memory_order_acquire);
        ursa_time_t timeout = hosted_timers(h);
        bool worked = hosted_turn(h, stopping && !cancelled);
        cancelled |= stopping;
        if (worked || hosted_work(h)) {
            h->reported = false; /* progress: a later stall is news again */
            continue;
        }
        if (stopping && rt_empty(rt)) {
            URSA__FOR_HOSTED(w, h) { /* a last spawn from a task now gone */
                ursa__cur_worker = w;
                ursa__worker_drain_inbox(w);
            }
            ursa__cur_worker = h;
            if (!hosted_work(h))
                return 0;
            continue;
        }
        bool quiet = timeout < 0 && !h->ring.inflight;
        if (ursa__worker_find_work(h))
            continue;
        sleep_idle(h, timeout, quiet, stopping);
    }
}

/* ---- deterministic mode with several workers ---- */

/* The turn of worker w: the next task it would run, or, idle, the work it
 * would take from the inject queue or a peer. False if it had nothing. */
static bool drawn_turn(ursa__worker_t *w)
{
    ursa__cur_worker = w;
    ursa__worker_drain_inbox(w);
    if (!ursa__worker_run_one(w) && !ursa__worker_try_steal(w))
        return false;
    ursa__worker_turn_end(w);
    return true;
}

/* The workers that can act now: with work, or idle with work to take. */
static unsigned drawn_candidates(ursa_rt_t *rt, ursa__worker_t **out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        ursa__worker_t *w = &rt->workers[i];
        /* relaxed: one thread runs every worker here. */
        if (ursa__worker_has_work(w) || atomic_load_explicit(&w->inbox, memory_order_relaxed) ||
            ursa__worker_can_steal(w))
            out[n++] = w;
    }
    return n;
}

/* Fires every due timer at the virtual time of the earliest one: false if
 * none is armed anywhere. */
static bool drawn_timers(ursa_rt_t *rt)
{
    ursa_time_t next = URSA_NEVER;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        ursa_time_t t = ursa__timers_next(&rt->workers[i].timers);
        if (t < next)
            next = t;
    }
    if (next == URSA_NEVER)
        return false;
    ursa__worker_t *w0 = &rt->workers[0];
    if (next > w0->vclock)
        w0->vclock = next; /* the one clock of the runtime */
    for (unsigned i = 0; i < rt->nworkers; i++) {
        ursa__cur_worker = &rt->workers[i];
        ursa__timers_fire(&rt->workers[i].timers, w0->vclock);
    }
    return true;
}

/* Runs every worker of a deterministic runtime on the calling thread (which
 * runs worker 0): each turn, one worker drawn from the seed's stream among
 * those that can act runs one task (tasks never hand over to each other
 * directly here: every switch goes through this loop) or takes work from a
 * peer. Until root finishes (or, root NULL and stopping, until no task is
 * left); -EDEADLK when every task waits and nothing can wake them. */
static int run_drawn(ursa_rt_t *rt, ursa_task_t *root)
{
    ursa__worker_t *w0 = &rt->workers[0], *cand[64];
    ursa__worker_t **c = rt->nworkers <= 64 ? cand : malloc(rt->nworkers * sizeof *c);
    if (!c)
        return -ENOMEM;
    for (unsigned i = 1; i < rt->nworkers; i++) {
        rt->workers[i].thread_ctx = w0->thread_ctx;
#if defined(URSA__TSAN)
        rt->workers[i].tsan_fiber = w0->tsan_fiber;
#endif
    }
    bool cancelled = false;
    int rc = 0;
    for (;;) {
        if (root && root_done(root))
            break;
        if (atomic_load_explicit(&rt->stopping, memory_order_acquire) && !cancelled) {
            for (unsigned i = 0; i < rt->nworkers; i++) {
                ursa__cur_worker = &rt->workers[i];
                cancel_all(&rt->workers[i]);
            }
            cancelled = true;
        }
        unsigned n = drawn_candidates(rt, c);
        if (n) {
            drawn_turn(c[ursa__worker_draw(w0) % n]);
            ursa__cur_worker = w0;
            ursa__ring_poll(&w0->ring);
            continue;
        }
        if (drawn_timers(rt))
            continue;
        if (!root && cancelled && rt_empty(rt))
            break;
        if (w0->ring.inflight) { /* only worker 0 has a ring here */
            ursa__cur_worker = w0;
            ursa__ring_wait(&w0->ring, -1);
            continue;
        }
        for (unsigned i = 0; i < rt->nworkers; i++)
            if (atomic_load_explicit(&rt->workers[i].ntasks, memory_order_relaxed))
                ursa__deadlock_report(&rt->workers[i]);
        rc = -EDEADLK;
        break;
    }
    ursa__cur_worker = w0;
    if (c != cand)
        free(c);
    return rc;
}
