/* Task groups: members bound to the group's token, joined through the
 * group.
 *
 * Each member has a record (malloc'd at spawn) whose waiter sits in the
 * task's joiner slot from before the task is queued: so ursa__task_done
 * decides that waiter when the task ends, and its waker (member_done,
 * outside every task lock, on the worker that retires the task) moves the
 * record onto the group's finished list, oldest first. Nobody can join
 * or detach a member by hand (the slot is taken: -EINVAL).
 *
 * A finished member is like a permit: member_done grants the oldest
 * join_next waiter one (it is "promised"), or counts it unpromised; the
 * granted waiter's finish then takes the oldest finished record. A raw
 * join that is cancelled after its grant hands the promise on. Grants go
 * through ursa__waitq_decide_first, so a select's claim is honoured: a
 * losing case is dropped and the finished member goes to the next joiner.
 *
 * Locks: joinq's lock guards the lists and counts; idleq's (taken inside
 * it) guards the ursa_group_wait waiters, decided when `running` drops
 * to 0. */
#include "ursa/group.h"

#include <stdlib.h>

#include "../core/wait_steps.h"
#include "token.h"
#include "worker.h"

typedef struct ursa__group_member {
    ursa__waiter_t w; /* in the task's joiner slot; decided when it ends */
    ursa_group_t *g;
    ursa_task_t *t;
    struct ursa__group_member *next; /* the finished list */
} member_t;

static bool member_cancel(ursa__waiter_t *w)
{
    (void)w; /* never withdrawn: the group waits for every member */
    return false;
}

static bool join_cancel(ursa__waiter_t *w);
static void join_give_back(ursa__waiter_t *w);
static bool idle_cancel(ursa__waiter_t *w);

/* Kind OTHER: a deadlock report reads a JOIN wait's owner as a task. */
static const ursa__wait_ops_t member_ops = {URSA_WAIT_OTHER, member_cancel, NULL};
static const ursa__wait_ops_t join_ops = {URSA_WAIT_OTHER, join_cancel, join_give_back};
/* Seeing the group idle holds nothing. */
static const ursa__wait_ops_t idle_ops = {URSA_WAIT_OTHER, idle_cancel, NULL};

static void members_add(ursa_group_t *g, int delta)
{
    /* relaxed, a load and a store: written under joinq's lock only; read
     * outside it as a snapshot. */
    uint32_t n = atomic_load_explicit(&g->members, memory_order_relaxed) + (uint32_t)delta;
    atomic_store_explicit(&g->members, n, memory_order_relaxed);
}

int ursa_group_init(ursa_group_t *g, ursa_token_t *parent)
{
    if (!g)
        return -EINVAL;
    int rc = ursa_token_init(&g->token, parent);
    if (rc)
        return rc;
    ursa__waitq_init(&g->joinq);
    ursa__waitq_init(&g->idleq);
    g->done_head = g->done_tail = NULL;
    atomic_init(&g->members, 0);
    g->running = g->done = g->unpromised = 0;
    return 0;
}

/* Under joinq's lock, once running is 0: every join_next waiter still
 * queued is closed (-ECHILD: what finished is promised to others, nothing
 * more will come), every ursa_group_wait waiter granted; all into b. */
static void idle_reached(ursa_group_t *g, ursa__wake_batch_t *b)
{
    (void)ursa__waitq_decide_all(&g->joinq, URSA__W_CLOSED, 0, b);
    uint32_t bits = ursa__waitq_lock(&g->idleq);
    (void)ursa__waitq_decide_all(&g->idleq, URSA__W_GRANTED, 0, b);
    ursa__waitq_unlock(&g->idleq, bits);
}

/* ---- members: spawn and end ---- */

/* The member's waker: its task has ended (ursa__task_done, after the
 * task left its token; the task's join slot still holds m's waiter, so a
 * join or detach by hand is refused). ursa__task_done marks m's waiter
 * done after this returns: whoever frees m settles on that first. */
static void member_done(void *p)
{
    member_t *m = p;
    ursa_group_t *g = m->g;
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    m->next = NULL;
    if (g->done_tail)
        g->done_tail->next = m;
    else
        g->done_head = m;
    g->done_tail = m;
    g->done++;
    g->running--;
    ursa__waiter_t *w = ursa__waitq_decide_first(&g->joinq, URSA__W_GRANTED, 1);
    if (w)
        ursa__wake_batch_add(&b, w); /* promised to w */
    else
        g->unpromised++;
    if (g->running == 0)
        idle_reached(g, &b);
    ursa__waitq_unlock(&g->joinq, bits);
    ursa__wake_batch_run(&b); /* g is not touched again: a woken destroyer may free it */
}

/* Before the member's task is queued: nothing else sees it yet. */
static void member_prep(ursa_task_t *t, void *p)
{
    member_t *m = p;
    m->t = t;
    ursa__token_bind_task(&m->g->token, t);
    /* relaxed: the task's queueing publishes it to ursa__task_done. */
    atomic_store_explicit(&t->joiner, &m->w, memory_order_relaxed);
    t->group_member = true; /* its end decides m->w in place (task.c) */
}

static int group_spawn(ursa_group_t *g, ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn,
                       void *arg, const ursa_spawn_opts_t *opts)
{
    if (out)
        *out = NULL;
    if (!g || !fn || (opts && opts->detached))
        return -EINVAL;
    member_t *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    ursa__waiter_init(&m->w, (ursa_waker_t){member_done, m}, &member_ops);
    /* relaxed: published with the task by member_prep's queueing. */
    atomic_store_explicit(&m->w.state, URSA__W_QUEUED, memory_order_relaxed);
    m->w.owner = g;
    m->g = g;
    m->t = NULL;
    m->next = NULL;
    /* Counted before it can end: its member_done finds it running. */
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    g->running++;
    members_add(g, 1);
    ursa__waitq_unlock(&g->joinq, bits);
    ursa_task_t *t = NULL;
    int rc = ursa__spawn_prep(rt, &t, fn, arg, opts, member_prep, m);
    if (rc) {
        ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
        bits = ursa__waitq_lock(&g->joinq);
        g->running--;
        members_add(g, -1);
        if (g->running == 0) /* a wait that came meanwhile was for it */
            idle_reached(g, &b);
        ursa__waitq_unlock(&g->joinq, bits);
        ursa__wake_batch_run(&b);
        free(m);
        return rc;
    }
    if (out)
        *out = t;
    return 0;
}

int ursa_group_spawn(ursa_group_t *g, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                     const ursa_spawn_opts_t *opts)
{
    if (!ursa__cur_worker) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return group_spawn(g, NULL, out, fn, arg, opts);
}

int ursa_group_rt_spawn(ursa_group_t *g, ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn,
                        void *arg, const ursa_spawn_opts_t *opts)
{
    if (!rt) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return group_spawn(g, rt, out, fn, arg, opts);
}

int ursa_group_cancel(ursa_group_t *g)
{
    return g ? ursa_token_cancel(&g->token) : -EINVAL;
}

ursa_token_t *ursa_group_token(ursa_group_t *g)
{
    return g ? &g->token : NULL;
}

size_t ursa_group_len(const ursa_group_t *g)
{
    /* relaxed: a snapshot (members_add). */
    return g ? atomic_load_explicit(&g->members, memory_order_relaxed) : 0;
}

/* ---- join_next ---- */

/* Takes the oldest finished member (one was promised to the caller). */
static member_t *take_done(ursa_group_t *g)
{
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    member_t *m = g->done_head;
    g->done_head = m->next;
    if (!g->done_head)
        g->done_tail = NULL;
    g->done--;
    members_add(g, -1);
    ursa__waitq_unlock(&g->joinq, bits);
    return m;
}

/* Hands out a taken member and frees it: 0, or -ENOMEM (it never ran). */
static int member_reap(member_t *m, void **result, ursa_task_t **which)
{
    /* member_done may still be returning: m is ours once its waiter is
     * done (an acquire, with the task's result behind it). */
    ursa__wait_settle(&m->w);
    ursa_task_t *t = m->t;
    int rc = t->no_stack ? -ENOMEM : 0;
    if (result)
        *result = rc ? NULL : t->result;
    if (which)
        *which = t;
    ursa__task_free(t);
    free(m);
    return rc;
}

/* Promises a finished member to w, or queues w: 0 promised now,
 * -EINPROGRESS queued (or a select's w dropped: its claim was lost),
 * -ECHILD nothing left to join (w is over, CLOSED), -EAGAIN (try_only)
 * nothing finished yet. */
static int join_start(ursa_group_t *g, ursa__waiter_t *w, bool try_only)
{
    w->owner = g;
    w->want = 1;
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    int rc;
    if (g->unpromised || !g->running) {
        /* Ready, or over (what finished is promised to others, and
         * nothing will come): a select's w takes its claim before it
         * takes a member. */
        if (!ursa__wait_start_claim(w)) {
            rc = -EINPROGRESS;
        } else if (g->unpromised) {
            g->unpromised--;
            rc = 0;
        } else {
            rc = -ECHILD;
        }
    } else if (try_only) {
        rc = -EAGAIN;
    } else {
        ursa__waitq_push(&g->joinq, w);
        rc = -EINPROGRESS;
    }
    ursa__waitq_unlock(&g->joinq, bits);
    if (rc == 0 || rc == -ECHILD) {
        w->got = rc == 0;
        w->want = 0;
        ursa__wait_complete_now(w, rc == 0 ? URSA__W_GRANTED : URSA__W_CLOSED);
    }
    return rc;
}

static bool join_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(&((ursa_group_t *)w->owner)->joinq, w);
}

/* A raw join granted and then cancelled: its promise goes to the next
 * joiner, or back to the group. */
static void join_give_back(ursa__waiter_t *w)
{
    ursa_group_t *g = w->owner;
    w->got = 0;
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    ursa__waiter_t *next = ursa__waitq_decide_first(&g->joinq, URSA__W_GRANTED, 1);
    if (!next)
        g->unpromised++;
    ursa__waitq_unlock(&g->joinq, bits);
    if (next)
        ursa__wake_node(next);
}

int ursa_group_join_next_at(ursa_group_t *g, void **result, ursa_task_t **which,
                            ursa_time_t deadline, const ursa_site_t *site)
{
    if (result)
        *result = NULL;
    if (which)
        *which = NULL;
    if (!g)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &join_ops);
    int rc = ursa__wait_block(c, &w, join_start(g, &w, deadline == URSA_NOW), deadline, site);
    if (rc)
        return rc;
    /* relaxed: the block (or the cancel's settle) acquired the decision. */
    if (atomic_load_explicit(&w.state, memory_order_relaxed) == URSA__W_CLOSED)
        return -ECHILD;
    return member_reap(take_done(g), result, which);
}

int ursa_group_join_next_start_at(ursa_group_t *g, ursa_wait_t *w, ursa_waker_t waker,
                                  const ursa_site_t *site)
{
    ursa__waiter_t *n = g ? ursa__wait_raw_init(w, waker, &join_ops, site) : NULL;
    return n ? join_start(g, n, false) : -EINVAL;
}

int ursa_group_join_next_finish(ursa_group_t *g, ursa_wait_t *w, void **result,
                                ursa_task_t **which)
{
    if (result)
        *result = NULL;
    if (which)
        *which = NULL;
    ursa__waiter_t *n = ursa__wait_raw_of(w, g, &join_ops);
    if (!n)
        return -EINVAL;
    int rc = ursa__wait_finish_begin(n);
    if (rc)
        return rc;
    /* relaxed: finish_begin acquired the decision. */
    bool closed = atomic_load_explicit(&n->state, memory_order_relaxed) == URSA__W_CLOSED;
    /* relaxed: only the waiter reads its node's state from here on. */
    atomic_store_explicit(&n->state, URSA__W_FINISHED, memory_order_relaxed);
    return closed ? -ECHILD : member_reap(take_done(g), result, which);
}

/* ---- wait for all ---- */

/* 0 no member runs, or -EINPROGRESS with w queued (or a select's w
 * dropped: its claim was lost). */
static int idle_start(ursa_group_t *g, ursa__waiter_t *w)
{
    w->owner = g;
    w->want = 1;
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    bool idle = g->running == 0;
    if (!idle) {
        uint32_t ib = ursa__waitq_lock(&g->idleq);
        ursa__waitq_push(&g->idleq, w);
        ursa__waitq_unlock(&g->idleq, ib);
    }
    ursa__waitq_unlock(&g->joinq, bits);
    /* Idle: a select's waiter takes its claim first (lost: dropped). */
    if (!idle || !ursa__wait_start_claim(w))
        return -EINPROGRESS;
    w->want = 0;
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

static bool idle_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(&((ursa_group_t *)w->owner)->idleq, w);
}

int ursa_group_wait_at(ursa_group_t *g, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!g)
        return -EINVAL;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &idle_ops);
    int rc = idle_start(g, &w);
    if (rc == -EINPROGRESS && deadline == URSA_NOW)
        return idle_cancel(&w) ? -EAGAIN : 0; /* a try: withdrawn, or it went idle */
    return ursa__wait_block(c, &w, rc, deadline, site);
}

int ursa_group_wait_start_at(ursa_group_t *g, ursa_wait_t *w, ursa_waker_t waker,
                             const ursa_site_t *site)
{
    ursa__waiter_t *n = g ? ursa__wait_raw_init(w, waker, &idle_ops, site) : NULL;
    return n ? idle_start(g, n) : -EINVAL;
}

int ursa_group_wait_finish(ursa_group_t *g, ursa_wait_t *w)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, g, &idle_ops);
    return n ? ursa__wait_finish(n) : -EINVAL;
}

/* ---- destroy ---- */

/* Waits until no member runs, whatever the caller's cancel: members were
 * cancelled and end soon, and no member may outlive the group. A task's
 * cancel flag is set aside while it waits (a cancel that comes meanwhile
 * wakes it; it notes the flag and waits again) and put back at the end. */
static void wait_idle_shielded(ursa_group_t *g)
{
    ursa__ctx_t *c = ursa__ctx();
    ursa__worker_t *wk = ursa__cur_worker;
    ursa_task_t *t = wk ? wk->current : NULL;
    bool was_cancelled = false;
    for (;;) {
        URSA__WAITER_ALIGN ursa__waiter_t w;
        ursa__waiter_init(&w, c->waker, &idle_ops);
        if (idle_start(g, &w) == 0)
            break;
        if (t)
            /* relaxed: the flag is a hint its owner re-reads after every
             * wake; an RMW, so a cancel stored meanwhile is never lost. */
            was_cancelled |= atomic_exchange_explicit(&t->cancel, 0, memory_order_relaxed) != 0;
        if (ursa__ctx_block(c, &w, URSA_NEVER, NULL) == 0 || !idle_cancel(&w))
            break;
    }
    if (was_cancelled)
        /* relaxed: our own flag, read by us. */
        atomic_store_explicit(&t->cancel, 1, memory_order_relaxed);
}

/* Whether tok is top or a descendant of it. Parent links never change,
 * and the chain is alive: tok is the caller's own (bound) token, and a
 * token with a child is not destroyed. */
static bool under(const ursa_token_t *tok, const ursa_token_t *top)
{
    for (; tok; tok = tok->parent)
        if (tok == top)
            return true;
    return false;
}

int ursa_group_destroy(ursa_group_t *g)
{
    if (!g)
        return -EINVAL;
    ursa__worker_t *wk = ursa__cur_worker;
    ursa_task_t *self = wk ? wk->current : NULL;
    /* A member (or a task bound below the group's token, e.g. a member of
     * a nested group) would wait for itself, or for a task that waits for
     * it; and its live token would keep the group's busy anyway. */
    if (self && under(self->token, &g->token))
        return -EDEADLK;
    /* Joiners queued, or a raw join granted and not finished (its finish
     * would take a member from a dead group). */
    uint32_t bits = ursa__waitq_lock(&g->joinq);
    bool busy = g->joinq.head || g->joinq.waking || g->done != g->unpromised;
    ursa__waitq_unlock(&g->joinq, bits);
    if (busy || ursa__waitq_busy(&g->idleq)) {
        ursa__report_misuse("group destroyed while joined or waited on", NULL);
        return -EBUSY;
    }
    (void)ursa_token_cancel(&g->token);
    wait_idle_shielded(g);
    /* Every member finished: the results nobody joined go. */
    bits = ursa__waitq_lock(&g->joinq);
    member_t *list = g->done_head;
    g->done_head = g->done_tail = NULL;
    g->done = g->unpromised = 0;
    atomic_store_explicit(&g->members, 0, memory_order_relaxed); /* relaxed: under the lock */
    ursa__waitq_unlock(&g->joinq, bits);
    while (list) {
        member_t *m = list;
        list = m->next;
        (void)member_reap(m, NULL, NULL);
    }
    return ursa_token_destroy(&g->token);
}
