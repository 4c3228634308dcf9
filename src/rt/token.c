/* Cancellation tokens: a tree of "cancelled" flags, each with a wait queue
 * and a list of bound tasks.
 *
 * Locks. A token's wait-queue lock guards its waiters, its bound-task list
 * and its CANCELLED bit (an owner bit of that lock word: read without the
 * lock with an acquire load). The tree's links (parent, children,
 * siblings) are guarded by one spinlock per tree, the root's: a cancel
 * walks the subtree under it, so no token of the subtree is destroyed and
 * no child is added unseen meanwhile. Order: tree lock, then a token's.
 *
 * Invariant: once a token is cancelled, so is every descendant. A cancel
 * sets the bits of a whole subtree under the tree lock, and a child made
 * under the tree lock reads its parent's bit there; so a walk may skip the
 * subtree of a token it finds cancelled.
 *
 * Wakes. Waiters are decided under their token's lock and woken in one
 * batch after the tree lock is dropped. Bound tasks are cancelled
 * (ursa_task_cancel: a flag and a wake, which never blocks) under their
 * token's lock: that lock is what keeps a bound task's descriptor alive,
 * since an ending task unbinds under it before anyone may free it. */
#include "token.h"

#include "../core/spin.h"
#include "../core/wait_steps.h"
#include "worker.h"

/* The CANCELLED bit among the wait-queue lock's owner bits. */
#define TOK_CANCELLED 1u

static bool token_wait_cancel(ursa__waiter_t *w);

/* A token's wait holds nothing: nothing to give back. */
static const ursa__wait_ops_t token_ops = {URSA_WAIT_OTHER, token_wait_cancel, NULL};

static bool cancelled(const ursa_token_t *tok)
{
    /* acquire: pairs with the release unlock that set the bit; the
     * canceller's writes before its cancel are visible. */
    return atomic_load_explicit(&tok->q.lock, memory_order_acquire) & TOK_CANCELLED;
}

static _Atomic uint32_t *tree_lock(ursa_token_t *tok)
{
    return &tok->root->tree_lock; /* root never changes after init */
}

int ursa_token_init(ursa_token_t *tok, ursa_token_t *parent)
{
    if (!tok || tok == parent)
        return -EINVAL;
    ursa__waitq_init(&tok->q);
    atomic_init(&tok->tree_lock, 0);
    tok->reserved_ = 0;
    tok->parent = parent;
    tok->first_child = tok->prev_sibling = tok->next_sibling = NULL;
    tok->tasks = NULL;
    if (!parent) {
        tok->root = tok;
        return 0;
    }
    tok->root = parent->root;
    ursa__spin_lock(tree_lock(tok));
    /* Under the tree lock: a cancel of an ancestor either set the parent's
     * bit before we took it (we see it: the lock orders it) or walks after
     * us and finds tok linked. relaxed: tok is not shared yet; the tree
     * unlock and whatever hands tok to others publish it. */
    if (cancelled(parent))
        atomic_store_explicit(&tok->q.lock, TOK_CANCELLED, memory_order_relaxed);
    tok->next_sibling = parent->first_child;
    if (parent->first_child)
        parent->first_child->prev_sibling = tok;
    parent->first_child = tok;
    ursa__spin_unlock(tree_lock(tok));
    return 0;
}

int ursa_token_destroy(ursa_token_t *tok)
{
    if (!tok)
        return -EINVAL;
    _Atomic uint32_t *tl = tree_lock(tok);
    ursa__spin_lock(tl);
    bool busy = tok->first_child != NULL;
    uint32_t bits = ursa__waitq_lock(&tok->q);
    busy = busy || tok->tasks || tok->q.head || tok->q.waking;
    ursa__waitq_unlock(&tok->q, bits);
    if (!busy && tok->parent) {
        if (tok->prev_sibling)
            tok->prev_sibling->next_sibling = tok->next_sibling;
        else
            tok->parent->first_child = tok->next_sibling;
        if (tok->next_sibling)
            tok->next_sibling->prev_sibling = tok->prev_sibling;
    }
    ursa__spin_unlock(tl); /* a root's own lock: its last touch */
    if (!busy)
        return 0;
    ursa__report_misuse("token destroyed with children, bound tasks or waiters", NULL);
    return -EBUSY;
}

/* Under the tree lock: cancels one token, its waiters decided into b.
 * False if it was cancelled already (and with it its subtree). */
static bool cancel_one(ursa_token_t *tok, ursa__wake_batch_t *b)
{
    uint32_t bits = ursa__waitq_lock(&tok->q);
    if (bits & TOK_CANCELLED) {
        ursa__waitq_unlock(&tok->q, bits);
        return false;
    }
    for (ursa_task_t *t = tok->tasks; t; t = t->tok_next)
        (void)ursa_task_cancel(t); /* alive: it unbinds under this lock */
    (void)ursa__waitq_decide_all(&tok->q, URSA__W_GRANTED, 0, b);
    /* release: a reader of the bit sees our writes before the cancel. */
    ursa__waitq_unlock(&tok->q, bits | TOK_CANCELLED);
    return true;
}

int ursa_token_cancel(ursa_token_t *tok)
{
    if (!tok)
        return -EINVAL;
    /* No lock-free "cancelled already" return: a cancel that returns
     * finds the whole subtree cancelled, even when another cancel of it
     * is still walking (it waits on the tree lock). */
    ursa__wake_batch_t b = URSA__WAKE_BATCH_INIT;
    _Atomic uint32_t *tl = tree_lock(tok);
    ursa__spin_lock(tl);
    /* Depth first over tok's subtree, without recursion (a chain may be
     * deep): down to the first child, else on to the next sibling of the
     * nearest ancestor below tok that has one. */
    int rc = 0;
    ursa_token_t *n = tok;
    for (;;) {
        bool fresh = cancel_one(n, &b);
        if (n == tok)
            rc = fresh;
        if (fresh && n->first_child) {
            n = n->first_child;
            continue;
        }
        while (n != tok && !n->next_sibling)
            n = n->parent;
        if (n == tok)
            break;
        n = n->next_sibling;
    }
    ursa__spin_unlock(tl);
    /* The decided waiters' nodes stay theirs until done is set: tokens may
     * be destroyed meanwhile, the nodes not. */
    ursa__wake_batch_run(&b);
    return rc;
}

bool ursa_token_is_cancelled(const ursa_token_t *tok)
{
    return tok && cancelled(tok);
}

/* ---- binding tasks ---- */

void ursa__token_bind_task(ursa_token_t *tok, ursa_task_t *t)
{
    uint32_t bits = ursa__waitq_lock(&tok->q);
    t->token = tok;
    t->tok_prev = NULL;
    t->tok_next = tok->tasks;
    if (tok->tasks)
        tok->tasks->tok_prev = t;
    tok->tasks = t;
    if (bits & TOK_CANCELLED)
        /* release, as in ursa_task_cancel; no wake: t is the caller, or
         * not queued yet (its queueing publishes this). */
        atomic_store_explicit(&t->cancel, 1, memory_order_release);
    ursa__waitq_unlock(&tok->q, bits);
}

void ursa__token_unbind(ursa_task_t *t)
{
    ursa_token_t *tok = t->token;
    uint32_t bits = ursa__waitq_lock(&tok->q);
    if (t->tok_prev)
        t->tok_prev->tok_next = t->tok_next;
    else
        tok->tasks = t->tok_next;
    if (t->tok_next)
        t->tok_next->tok_prev = t->tok_prev;
    ursa__waitq_unlock(&tok->q, bits);
    t->token = NULL;
}

static ursa_task_t *self(void)
{
    ursa__worker_t *w = ursa__cur_worker;
    return w ? w->current : NULL;
}

int ursa_token_bind(ursa_token_t *tok)
{
    ursa_task_t *t = self();
    if (!tok || !t)
        return -EINVAL;
    if (t->token) /* only t itself (and its end) changes it */
        return t->token == tok ? 0 : -EBUSY;
    ursa__token_bind_task(tok, t);
    return 0;
}

ursa_token_t *ursa_token_current(void)
{
    ursa_task_t *t = self();
    return t ? t->token : NULL;
}

static void bind_prep(ursa_task_t *t, void *tok)
{
    ursa__token_bind_task(tok, t);
}

int ursa_token_spawn(ursa_token_t *tok, ursa_task_t **out, ursa_task_fn_t fn, void *arg,
                     const ursa_spawn_opts_t *opts)
{
    if (!tok || !ursa__cur_worker) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return ursa__spawn_prep(NULL, out, fn, arg, opts, bind_prep, tok);
}

int ursa_token_rt_spawn(ursa_token_t *tok, ursa_rt_t *rt, ursa_task_t **out, ursa_task_fn_t fn,
                        void *arg, const ursa_spawn_opts_t *opts)
{
    if (!tok || !rt) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    return ursa__spawn_prep(rt, out, fn, arg, opts, bind_prep, tok);
}

/* ---- waiting for the cancel ---- */

/* Queues w, or completes it at once: 0 cancelled already, -EINPROGRESS. */
static int wait_start(ursa_token_t *tok, ursa__waiter_t *w)
{
    w->owner = tok;
    w->want = 1;
    if (!cancelled(tok)) {
        uint32_t bits = ursa__waitq_lock(&tok->q);
        if (!(bits & TOK_CANCELLED)) {
            ursa__waitq_push(&tok->q, w);
            ursa__waitq_unlock(&tok->q, bits);
            return -EINPROGRESS;
        }
        ursa__waitq_unlock(&tok->q, bits);
    }
    /* Cancelled for good, and a wait for it takes nothing: a select's
     * waiter only takes its claim first (lost: dropped). */
    if (!ursa__wait_start_claim(w))
        return -EINPROGRESS;
    w->want = 0;
    ursa__wait_complete_now(w, URSA__W_GRANTED);
    return 0;
}

static bool token_wait_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(&((ursa_token_t *)w->owner)->q, w);
}

int ursa_token_wait_at(ursa_token_t *tok, ursa_time_t deadline, const ursa_site_t *site)
{
    if (!tok)
        return -EINVAL;
    if (cancelled(tok))
        return 0;
    if (deadline == URSA_NOW)
        return -EAGAIN;
    ursa__ctx_t *c = ursa__ctx();
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &token_ops);
    /* A task bound to tok is cancelled by the same cancel that decides w,
     * under tok's lock: its withdrawal then finds w decided and keeps it. */
    return ursa__wait_block(c, &w, wait_start(tok, &w), deadline, site);
}

int ursa_token_wait_start_at(ursa_token_t *tok, ursa_wait_t *w, ursa_waker_t waker,
                             const ursa_site_t *site)
{
    ursa__waiter_t *n = tok ? ursa__wait_raw_init(w, waker, &token_ops, site) : NULL;
    return n ? wait_start(tok, n) : -EINVAL;
}

int ursa_token_wait_finish(ursa_token_t *tok, ursa_wait_t *w)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, tok, &token_ops);
    return n ? ursa__wait_finish(n) : -EINVAL;
}
