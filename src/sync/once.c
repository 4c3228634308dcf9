/* Once cell: EMPTY -> RUNNING (one initializer) -> SET, or back to EMPTY /
 * on to the next queued initializer when an initializer fails.
 *
 * One wait queue, whose lock also guards the state's changes, holds two
 * kinds of waiters in arrival order: get_or_init callers (init_ops; each
 * may become the initializer) and ursa_once_wait callers (wait_ops; they
 * only ever get the value). Invariant: an init waiter is queued only while
 * the state is RUNNING — whoever leaves RUNNING without a value hands the
 * role to the oldest init waiter first. A granted init wait says in w->got
 * what it was granted: the value (GOT_VALUE) or the initializer role
 * (GOT_ROLE). A role that nobody will use (the grantee was cancelled or
 * timed out in the same instant) is handed on again, so it is never lost.
 * Wakers run outside the lock. */
#include "ursa/once.h"

#include "../core/ctx.h"
#include "../core/wait_steps.h"

/* The cell's states (EMPTY, RUNNING, SET in the comments), and what a
 * granted init wait got. */
enum { URSA__ONCE_EMPTY = 0, URSA__ONCE_RUNNING = 1, URSA__ONCE_SET = 2 };
enum { URSA__ONCE_GOT_VALUE = 0, URSA__ONCE_GOT_ROLE = 1 };

static bool once_cancel(ursa__waiter_t *w);
static void init_give_back(ursa__waiter_t *w);
static const ursa__wait_ops_t wait_ops = {URSA_WAIT_ONCE, once_cancel, NULL};
static const ursa__wait_ops_t init_ops = {URSA_WAIT_ONCE, once_cancel, init_give_back};

int ursa_once_init(ursa_once_cell_t *cell, ursa_once_dtor_t dtor)
{
    if (!cell)
        return -EINVAL;
    atomic_init(&cell->state, URSA__ONCE_EMPTY);
    cell->value = NULL;
    cell->dtor = dtor;
    atomic_init(&cell->runner, NULL);
    ursa__waitq_init(&cell->q);
    return 0;
}

/* Empties the cell for destroy, take and into_inner (which must not race
 * with other calls): 1 and *v if it was set, 0 if empty, or -EBUSY
 * (reported as `misuse`) while an initializer runs or waiters queue. */
static int empty_out(ursa_once_cell_t *cell, void **v, const char *misuse)
{
    uint32_t bits = ursa__waitq_lock(&cell->q);
    /* relaxed: every change of state happens under the lock. */
    uint32_t st = atomic_load_explicit(&cell->state, memory_order_relaxed);
    if (st == URSA__ONCE_RUNNING || cell->q.head || cell->q.waking) {
        ursa__waitq_unlock(&cell->q, bits);
        ursa__report_misuse(misuse, NULL);
        return -EBUSY;
    }
    *v = cell->value;
    cell->value = NULL;
    /* relaxed: no call races with these; the lock orders the rest. */
    atomic_store_explicit(&cell->state, URSA__ONCE_EMPTY, memory_order_relaxed);
    ursa__waitq_unlock(&cell->q, bits);
    return st == URSA__ONCE_SET;
}

int ursa_once_destroy(ursa_once_cell_t *cell)
{
    if (!cell)
        return -EINVAL;
    void *v;
    int rc = empty_out(cell, &v, "once cell destroyed while initialised or waited on");
    if (rc < 0)
        return rc;
    if (rc == 1 && cell->dtor)
        cell->dtor(v);
    return 0;
}

int ursa_once_take(ursa_once_cell_t *cell, void **value)
{
    if (!cell)
        return -EINVAL;
    void *v;
    int rc = empty_out(cell, &v, "once cell taken while initialised or waited on");
    if (rc == 1 && value)
        *value = v;
    return rc;
}

int ursa_once_into_inner(ursa_once_cell_t *cell, void **value)
{
    if (!cell)
        return -EINVAL;
    void *v;
    int rc = empty_out(cell, &v, "once cell destroyed (into_inner) while initialised or waited on");
    if (rc == 1 && value)
        *value = v;
    return rc;
}

static inline bool is_set(const ursa_once_cell_t *cell)
{
    /* acquire: pairs with the release store of SET in publish(); the value
     * and everything the setter wrote before it are visible. */
    return atomic_load_explicit(&cell->state, memory_order_acquire) == URSA__ONCE_SET;
}

/* Sets the value (the caller checked the state under the lock and holds
 * it; bits: the lock word's) and wakes everybody. Unlocks. The waiters
 * read the cell's value after they see the grant. */
static void publish_locked(ursa_once_cell_t *cell, uint32_t bits, void *value)
{
    cell->value = value;
    /* release: the value (and what the setter wrote before) happens-before
     * every acquire load that sees SET. */
    atomic_store_explicit(&cell->state, URSA__ONCE_SET, memory_order_release);
    (void)ursa__waitq_wake_all(&cell->q, bits, URSA__W_GRANTED, URSA__ONCE_GOT_VALUE);
}

/* Under the lock: the oldest init waiter, or NULL. Wait waiters ahead of
 * it are passed over (a role only moves after a failed initializer). */
static ursa__waiter_t *first_init_locked(ursa_once_cell_t *cell)
{
    ursa__waiter_t *w = cell->q.head;
    while (w && w->ops != &init_ops)
        w = w->next;
    return w;
}

/* The initializer role is given up without a value: hand it to the oldest
 * queued get_or_init caller (one only; a select's whose claim is lost is
 * dropped on the way), or leave the cell empty. */
static void release_role(ursa_once_cell_t *cell)
{
    /* relaxed: only the running context compares it with itself. */
    atomic_store_explicit(&cell->runner, NULL, memory_order_relaxed);
    uint32_t bits = ursa__waitq_lock(&cell->q);
    ursa__waiter_t *w;
    while ((w = first_init_locked(cell))) {
        ursa__waitq_remove(&cell->q, w);
        w->got = URSA__ONCE_GOT_ROLE;
        if (ursa__waiter_decide(w, URSA__W_GRANTED))
            break;
    }
    if (!w)
        /* relaxed: EMPTY publishes nothing; the lock orders later starts. */
        atomic_store_explicit(&cell->state, URSA__ONCE_EMPTY, memory_order_relaxed);
    ursa__waitq_unlock(&cell->q, bits);
    if (w)
        ursa__wake_node(w);
}

/* A queued waiter holds nothing: nothing to hand on. */
static bool once_cancel(ursa__waiter_t *w)
{
    ursa_once_cell_t *cell = w->owner;
    return ursa__waitq_cancel(&cell->q, w);
}

/* A granted init wait that will not be used: pass the role on. */
static void init_give_back(ursa__waiter_t *w)
{
    if (w->got == URSA__ONCE_GOT_ROLE) {
        w->got = URSA__ONCE_GOT_VALUE;
        release_role(w->owner);
    }
}

static inline void out(const ursa_once_cell_t *cell, void **value)
{
    if (value)
        *value = cell->value;
}

static __attribute__((noinline)) int get_or_init_slow(ursa_once_cell_t *cell,
                                                      ursa_once_init_fn_t init_fn, void *arg,
                                                      void **value, ursa_time_t deadline,
                                                      const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    uint32_t bits = ursa__waitq_lock(&cell->q);
    /* relaxed: every change of state (publish included) happens under the
     * lock, which orders it and the value for us. */
    uint32_t st = atomic_load_explicit(&cell->state, memory_order_relaxed);
    if (st == URSA__ONCE_EMPTY) {
        atomic_store_explicit(&cell->state, URSA__ONCE_RUNNING, memory_order_relaxed);
        ursa__waitq_unlock(&cell->q, bits);
    } else {
        if (st == URSA__ONCE_SET) {
            ursa__waitq_unlock(&cell->q, bits);
            /* the lock (acquired after publish's unlock) orders the value */
            out(cell, value);
            return 0;
        }
        /* relaxed: only our own earlier store can make it equal to c. */
        bool self = atomic_load_explicit(&cell->runner, memory_order_relaxed) == c;
        if (self || deadline == URSA_NOW) {
            ursa__waitq_unlock(&cell->q, bits);
            return self ? -EDEADLK : -EAGAIN;
        }
        URSA__WAITER_ALIGN ursa__waiter_t w;
        ursa__waiter_init(&w, c->waker, &init_ops);
        w.owner = cell;
        ursa__waitq_push(&cell->q, &w); /* the unlock publishes it */
        ursa__waitq_unlock(&cell->q, bits);
        int rc = ursa__ctx_block(c, &w, deadline, site);
        if (rc != 0 && init_ops.cancel(&w))
            return rc; /* withdrawn while queued: nothing changed */
        if (w.got == URSA__ONCE_GOT_VALUE) {
            out(cell, value); /* the value raced the deadline: keep it */
            return 0;
        }
        if (rc != 0) {
            release_role(cell); /* handed the role as we gave up: pass it on */
            return rc;
        }
    }
    /* We are the initializer. */
    atomic_store_explicit(&cell->runner, c, memory_order_relaxed); /* see release_role */
    void *v = NULL;
    int irc = init_fn(arg, &v);
    if (irc != 0) {
        release_role(cell);
        return irc;
    }
    /* relaxed: as in release_role. */
    atomic_store_explicit(&cell->runner, NULL, memory_order_relaxed);
    publish_locked(cell, ursa__waitq_lock(&cell->q), v); /* RUNNING and ours: nobody else sets */
    if (value)
        *value = v;
    return 0;
}

int ursa_once_get_or_init_at(ursa_once_cell_t *cell, ursa_once_init_fn_t init_fn, void *arg,
                             void **value, ursa_time_t deadline, const ursa_site_t *site)
{
    if (__builtin_expect(!cell || !init_fn, 0))
        return -EINVAL;
    if (__builtin_expect(is_set(cell), 1)) {
        out(cell, value);
        return 0;
    }
    return get_or_init_slow(cell, init_fn, arg, value, deadline, site);
}

int ursa_once_set(ursa_once_cell_t *cell, void *value)
{
    if (!cell)
        return -EINVAL;
    if (is_set(cell))
        return -EEXIST;
    uint32_t bits = ursa__waitq_lock(&cell->q);
    /* relaxed: every change of state happens under the lock. */
    uint32_t st = atomic_load_explicit(&cell->state, memory_order_relaxed);
    if (st != URSA__ONCE_EMPTY) {
        ursa__waitq_unlock(&cell->q, bits);
        return st == URSA__ONCE_SET ? -EEXIST : -EBUSY;
    }
    publish_locked(cell, bits, value);
    return 0;
}

int ursa_once_get(const ursa_once_cell_t *cell, void **value)
{
    if (!cell)
        return -EINVAL;
    if (!is_set(cell))
        return -EAGAIN;
    out(cell, value);
    return 0;
}

bool ursa_once_is_set(const ursa_once_cell_t *cell)
{
    return cell && is_set(cell);
}

/* Queues w on the wait queue unless the cell is set: 0 (done now) or
 * -EINPROGRESS. */
static int wait_start(void *once, ursa__waiter_t *w)
{
    ursa_once_cell_t *cell = once;
    w->owner = cell;
    w->got = URSA__ONCE_GOT_VALUE;
    if (is_set(cell))
        return ursa__wait_start_ready(w);
    uint32_t bits = ursa__waitq_lock(&cell->q);
    /* relaxed: as above; the lock orders the value after publish's unlock. */
    if (atomic_load_explicit(&cell->state, memory_order_relaxed) == URSA__ONCE_SET) {
        ursa__waitq_unlock(&cell->q, bits);
        return ursa__wait_start_ready(w);
    }
    ursa__waitq_push(&cell->q, w); /* the unlock publishes it */
    ursa__waitq_unlock(&cell->q, bits);
    return -EINPROGRESS;
}

int ursa_once_wait_at(ursa_once_cell_t *cell, void **value, ursa_time_t deadline,
                      const ursa_site_t *site)
{
    if (!cell)
        return -EINVAL;
    if (is_set(cell)) {
        out(cell, value);
        return 0;
    }
    /* From the cell's own initializer: -EDEADLK whatever the deadline, as
     * get_or_init says (a wait there can never succeed; URSA_NOW too, so
     * the answer does not depend on it). relaxed: only our own earlier
     * store can make it equal to us. */
    if (atomic_load_explicit(&cell->runner, memory_order_relaxed) == ursa__ctx())
        return -EDEADLK;
    if (deadline == URSA_NOW)
        return -EAGAIN;
    /* granted (possibly racing the deadline): keep it */
    int rc = ursa__wait_blocking(cell, wait_start, &wait_ops, deadline, site);
    if (rc)
        return rc;
    out(cell, value);
    return 0;
}

int ursa_once_wait_start_at(ursa_once_cell_t *cell, ursa_wait_t *w, ursa_waker_t waker,
                            const ursa_site_t *site)
{
    ursa__waiter_t *n = cell ? ursa__wait_raw_init(w, waker, &wait_ops, site) : NULL;
    return n ? wait_start(cell, n) : -EINVAL;
}

int ursa_once_wait_finish(ursa_once_cell_t *cell, ursa_wait_t *w, void **value)
{
    ursa__waiter_t *n = ursa__wait_raw_of(w, cell, &wait_ops);
    if (!n)
        return -EINVAL;
    int rc = ursa__wait_finish_granted(n);
    if (rc)
        return rc;
    out(cell, value);
    return 0;
}
