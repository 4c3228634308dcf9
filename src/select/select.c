/* ursa_select: wait for exactly one of N cases (include/ursa/select.h).
 *
 * One round:
 *  1. A try pass: each case's pure try (the single call with URSA_NOW), in
 *     a fresh random order (Fisher-Yates, so the first ready case found is
 *     uniform among the ready ones) or in declared order. The first that
 *     completes wins; nothing was queued anywhere. URSA_NOW stops here.
 *  2. A start pass: each case's raw wait is started with the waker of one
 *     claim (core/claim.h) that all cases share. A primitive takes the
 *     claim under its own lock before it grants (or, at start, before it
 *     takes anything), so at most one case is ever granted. A case that
 *     completes at start wins there, and no later case is started.
 *  3. Block (the task suspends, a plain thread parks, or polls when it has
 *     fd cases) until the claim has a winner, or the deadline (the
 *     earliest sleep-until case's time, if sooner) or a cancel comes; then
 *     the select closes the claim, unless a case won first (kept, as a
 *     single call keeps a grant that raced its deadline).
 *  4. Every other started case is withdrawn (it holds nothing: it never
 *     won the claim), the winner is finished. A winner that finds nothing
 *     when it comes to take it (an mpmc message another receiver took; a
 *     start that took the claim and lost the thing to a lock-free taker)
 *     starts a new round: nothing was taken by any case. */
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/ctx.h"
#include "../rt/io_wait.h"
#include "../rt/worker.h"
#include "select.h"

/* take_winner's "start a new round". */
#define RESTART (-EALREADY)

/* What a select keeps while it runs; the raw form keeps it in its
 * ursa_select_t. */
typedef struct core {
    ursa_case_t *cases;
    uint32_t n;
    uint32_t flags;
    ursa__claim_t claim;
    uint64_t started; /* cases whose wait must still be ended, one bit each */
    uint32_t live;    /* raw form: started and not over */
} core_t;

_Static_assert(sizeof(core_t) <= sizeof(ursa_select_t), "ursa_select_t holds a raw select");
_Static_assert(URSA_SELECT_MAX <= 64, "one bit per case in core_t.started");

static const ursa__case_kind_t *kind_of(const ursa_case_t *c)
{
    return ursa__case_kinds[c->kind];
}

/* ---- random order ---- */

/* xorshift64: the order of cases is not a secret, only a fair draw. One
 * word of initial-exec TLS (see core/ctx.h on TLS models). */
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));

static uint32_t rand_below(uint32_t bound)
{
    uint64_t x;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(c && c->vclock, 0)) {
        /* Deterministic mode (virtual time): the worker's seeded stream,
         * so that a seed replays the select's choices too. */
        x = ursa__worker_draw(ursa__cur_worker);
    } else {
        x = rng;
        if (__builtin_expect(x == 0, 0))
            x = (ursa__thread_uid() * 0x9E3779B97F4A7C15ull) | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng = x;
    }
    /* The high 32 bits scaled to [0, bound): bias below 2^-32 * bound. */
    return (uint32_t)(((x >> 32) * bound) >> 32);
}

/* Step i of a lazy Fisher-Yates over order[0..n): order[i] is the next
 * case to look at. */
static inline unsigned next_in_order(uint8_t *order, unsigned i, unsigned n, uint32_t flags)
{
    if (!(flags & URSA_SELECT_ORDERED) && n - i > 1) {
        unsigned j = i + rand_below(n - i);
        uint8_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return order[i];
}

static const uint8_t identity[URSA_SELECT_MAX] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static inline void order_init(uint8_t *order, unsigned n)
{
    memcpy(order, identity, n);
}

/* ---- checks ---- */

/* 0 and the union of the kinds' flags in *has, or -EINVAL. */
static inline __attribute__((always_inline)) int validate(const ursa_case_t *cases, size_t n, unsigned flags, unsigned *has)
{
    if (!cases || n - 1 >= URSA_SELECT_MAX || (flags & ~URSA_SELECT_ORDERED))
        return -EINVAL; /* n - 1: n == 0 wraps */
    unsigned h = 0;
    for (size_t i = 0; i < n; i++) {
        const ursa_case_t *c = &cases[i];
        if ((unsigned)c->kind - 1 >= URSA_CASE__COUNT - 1 || !kind_of(c))
            return -EINVAL; /* NONE (0), negative and unknown wrap too */
        const ursa__case_kind_t *k = kind_of(c);
        if (((k->flags & URSA__KIND_OBJ) && !c->obj) || ((k->flags & URSA__KIND_OUT) && !c->out) ||
            ((k->flags & URSA__KIND_IN) && !c->in) || (k->check && k->check(c)))
            return -EINVAL;
        if (k->flags & URSA__KIND_ONE_SLOT)
            for (size_t j = 0; j < i; j++)
                if (cases[j].kind == c->kind && cases[j].obj == c->obj)
                    return -EINVAL;
        h |= k->flags;
    }
    *has = h;
    return 0;
}

/* ---- the pieces of a round ---- */

/* The sleep-until case that is due (the earliest), or -1. */
static int due_sleep(const ursa_case_t *cases, unsigned n, ursa_time_t now)
{
    int best = -1;
    for (unsigned i = 0; i < n; i++) {
        const ursa_case_t *c = &cases[i];
        if (c->kind == URSA_CASE_SLEEP_UNTIL && c->at <= now &&
            (best < 0 || c->at < cases[best].at))
            best = (int)i;
    }
    return best;
}

/* The try pass: the winning index (its outcome in rc), -EAGAIN (none
 * ready), or -EINVAL (a case refused its input: nothing held). A
 * sleep-until case is looked at only once no other case is ready (as a
 * single call with an expired deadline still takes what is there): a
 * ready case beats a due time, and the common pass reads no clock. */
static int try_pass(ursa_case_t *cases, unsigned n, uint32_t flags, const ursa_site_t *site)
{
    uint8_t order[URSA_SELECT_MAX];
    order_init(order, n);
    bool sleeps = false;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = next_in_order(order, i, n, flags);
        ursa_case_t *c = &cases[k];
        if (c->kind == URSA_CASE_SLEEP_UNTIL) {
            sleeps = true;
            continue;
        }
        int r = kind_of(c)->try_now(c, site);
        if (r == -EAGAIN)
            continue;
        if (r == -EINVAL)
            return -EINVAL;
        c->rc = r;
        return (int)k;
    }
    if (sleeps) {
        int k = due_sleep(cases, n, ursa_now());
        if (k >= 0) {
            cases[k].rc = 0;
            return k;
        }
    }
    return -EAGAIN;
}

static void end_case(ursa_case_t *c)
{
    const ursa__case_kind_t *k = kind_of(c);
    if (k->cancel)
        k->cancel(c);
    else
        (void)ursa_wait_cancel(&c->wait_);
}

/* Withdraws every started case but `keep` (-1: all). A case that lost
 * holds nothing; one that had won (a withdrawn select) gives back. */
static void end_all(core_t *s, int keep)
{
    uint64_t m = s->started;
    if (keep >= 0)
        m &= ~((uint64_t)1 << keep);
    while (m) {
        int k = __builtin_ctzll(m);
        m &= m - 1;
        end_case(&s->cases[k]);
    }
    s->started = keep >= 0 ? s->started & ((uint64_t)1 << keep) : 0;
}

/* The start pass: starts the cases' waits with the claim's waker until one
 * completes at start. The index of the case that won at start (its start's
 * result in *at), -EINPROGRESS (started; a case may have won meanwhile),
 * or -EINVAL (a case refused its input; the claim is left open). */
static int start_pass(core_t *s, const ursa_site_t *site, int *at)
{
    ursa_waker_t waker = ursa__claim_waker(&s->claim);
    /* A fresh fair order, as the try pass's: when the select skipped its
     * try pass (see ursa_select_at) a case ready at start wins here. */
    uint8_t order[URSA_SELECT_MAX];
    order_init(order, s->n);
    for (unsigned i = 0; i < s->n; i++) {
        unsigned k = next_in_order(order, i, s->n, s->flags);
        ursa_case_t *c = &s->cases[k];
        const ursa__case_kind_t *kind = kind_of(c);
        if (kind->flags & URSA__KIND_SLEEP)
            continue;
        /* A started case won meanwhile: start no more. */
        if (ursa__claim_winner(&s->claim))
            break;
        int r = kind->start(c, waker, site);
        s->started |= (uint64_t)1 << k;
        if (r == -EINPROGRESS)
            continue;
        if (r == -EINVAL)
            return -EINVAL;
        /* Completed at start: a primitive took the claim already (a take
         * of its own is true again); a start that did not is checked
         * here, and if another case won first it is withdrawn below. */
        if (ursa__claim_take(&s->claim, &c->wait_.waiter)) {
            *at = r;
            return (int)k;
        }
        break;
    }
    return -EINPROGRESS;
}

/* Which case's waiter w is (the claim holds one of ours). */
static int index_of(const core_t *s, const ursa__waiter_t *w)
{
    return (int)(((const char *)w - (const char *)&s->cases[0].wait_.waiter) /
                 (ptrdiff_t)sizeof(ursa_case_t));
}

/* Case k won (at start: its start returned `at`). Ends the others and
 * finishes k: k, or RESTART. */
static int take_winner(core_t *s, int k, bool at_start, int at)
{
    end_all(s, k);
    ursa_case_t *c = &s->cases[k];
    ursa__waiter_t *w = &c->wait_.waiter;
    s->started = 0;
    if (at_start && at != 0) { /* an outcome at once (closed, ...) */
        end_case(c);
        c->rc = at;
        return k;
    }
    if (!at_start) {
        /* The decider took the claim and sets the state under the same
         * lock hold: a few instructions. */
        ursa__spinner_t sp = URSA__SPINNER(URSA__SPIN_SETTLE);
        while (!ursa__wait_is_decided(w))
            ursa__spin_backoff(&sp);
        ursa__spin_end(&sp);
    }
    /* relaxed: decided; the acquire above (or our own start) orders it. */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_CANCELLED) {
        end_case(c); /* won, then found the thing gone: dropped at start */
        return RESTART;
    }
    int r = kind_of(c)->finish(c);
    if (r == -EAGAIN) {
        end_case(c); /* a finish that found nothing may leave it started */
        return RESTART;
    }
    c->rc = r;
    return k;
}

static ursa_time_t earliest(const core_t *s, ursa_time_t deadline)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->cases[i].kind == URSA_CASE_SLEEP_UNTIL && s->cases[i].at < deadline)
            deadline = s->cases[i].at;
    return deadline;
}

/* ---- blocking: a task or a plain thread ---- */

typedef struct sel {
    core_t core;
    /* What the caller's context blocks on: decided by the claim's waker
     * when a case wins (a task or a parked thread waits for one waiter). */
    URSA__WAITER_ALIGN ursa__waiter_t proxy;
    ursa_waker_t ctx_waker;
    int efd; /* a plain thread with fd cases: the claim's waker writes it */
} sel_t;

/* The claim's waker: called once, for the winner, by its decider. */
static void sel_wake(void *p)
{
    sel_t *s = p;
    ursa_waker_t wk = s->ctx_waker;
    /* release: the blocked select sees the decision (core/waitq.h). */
    atomic_store_explicit(&s->proxy.state, URSA__W_GRANTED, memory_order_release);
    wk.fn(wk.ctx);
    /* release: the select lets go of s once it sees done. */
    atomic_store_explicit(&s->proxy.done, 1, memory_order_release);
}

/* The same, for a plain thread that polls fds too. */
static void sel_wake_fd(void *p)
{
    sel_t *s = p;
    uint64_t one = 1;
    ssize_t r = write(s->efd, &one, sizeof one);
    (void)r; /* a full counter (never here) is as good as a write */
}

/* A plain thread's block when fd cases are in: ppoll on the fds and the
 * eventfd the claim's waker writes. 0 once a case won, or -ETIMEDOUT. */
static int poll_block(sel_t *s, ursa_time_t deadline)
{
    core_t *cs = &s->core;
    struct pollfd pf[URSA_SELECT_MAX + 1];
    uint8_t idx[URSA_SELECT_MAX + 1];
    for (;;) {
        if (ursa__claim_winner(&cs->claim))
            return 0;
        unsigned m = 0;
        pf[m++] = (struct pollfd){.fd = s->efd, .events = POLLIN};
        for (unsigned i = 0; i < cs->n; i++)
            if (kind_of(&cs->cases[i])->flags & URSA__KIND_FD) {
                idx[m] = (uint8_t)i;
                pf[m++] = (struct pollfd){.fd = cs->cases[i].fd,
                                          .events = cs->cases[i].kind == URSA_CASE_FD_READABLE
                                                        ? POLLIN
                                                        : POLLOUT};
            }
        ursa_time_t left = deadline == URSA_NEVER ? -1 : ursa__time_left(deadline, ursa_now());
        struct timespec ts = ursa__timespec(left < 0 ? 0 : left);
        int r = ppoll(pf, m, left < 0 ? NULL : &ts, NULL);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0 && !pf[0].revents)
            for (unsigned j = 1; j < m; j++)
                if (pf[j].revents) {
                    ursa_case_t *c = &cs->cases[idx[j]];
                    if (ursa__claim_take(&cs->claim, &c->wait_.waiter))
                        ursa__fd_case_polled(c, pf[j].revents);
                    return 0; /* ours, or another case won first */
                }
        if (r == 0 && left == 0)
            return -ETIMEDOUT;
    }
}

/* One round of a blocking select (the try pass found nothing): an index,
 * RESTART, -ETIMEDOUT, -ECANCELED, -EINVAL, or -errno (eventfd, ppoll). */
static int block_round(sel_t *s, ursa_time_t deadline, unsigned has, const ursa_site_t *site)
{
    core_t *cs = &s->core;
    ursa__ctx_t *c = ursa__ctx();
    bool in_task = (has & URSA__KIND_FD) && ursa__io_wait_in_task();
    bool polls = (has & URSA__KIND_FD) && !in_task;
    if (polls) {
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->efd < 0)
            return -errno;
        ursa__claim_init(&cs->claim, (ursa_waker_t){sel_wake_fd, s});
    } else {
        ursa__waiter_init(&s->proxy, c->waker, NULL);
        /* relaxed: our own node; the claim's waker publishes its change. */
        atomic_store_explicit(&s->proxy.state, URSA__W_QUEUED, memory_order_relaxed);
        s->ctx_waker = c->waker;
        ursa__claim_init(&cs->claim, (ursa_waker_t){sel_wake, s});
    }
    cs->started = 0;
    int at = 0, k = start_pass(cs, site, &at);
    /* Remember whether this array's select had to wait (ursa_select_at). */
    cs->cases[0].hint_ = k < 0;
    int rc;
    if (k == -EINVAL) {
        (void)ursa__claim_close(&cs->claim);
        end_all(cs, -1); /* a case that won meanwhile gives back */
        rc = -EINVAL;
    } else if (k >= 0) {
        rc = take_winner(cs, k, true, at);
    } else if (ursa__claim_winner(&cs->claim)) {
        /* A case won during the start pass: through a decider (its waker
         * call may still be on its way: harmless, our context ignores a
         * wake it does not wait for), or at a start that took the claim
         * and then found the thing gone (dropped: no waker call will ever
         * come, so we must not block on one). */
        rc = take_winner(cs, index_of(cs, ursa__claim_winner(&cs->claim)), false, 0);
    } else {
        ursa_time_t until = (has & URSA__KIND_SLEEP) ? earliest(cs, deadline) : deadline;
        int brc = polls ? poll_block(s, until) : ursa__ctx_block(c, &s->proxy, until, site);
        if (brc != 0 && ursa__claim_close(&cs->claim)) {
            end_all(cs, -1);
            k = brc == -ETIMEDOUT ? due_sleep(cs->cases, cs->n, ursa_now()) : -1;
            if (k >= 0)
                cs->cases[k].rc = 0;
            rc = k >= 0 ? k : brc;
        } else {
            /* A case won (perhaps racing the deadline or cancel: kept). */
            rc = take_winner(cs, index_of(cs, ursa__claim_winner(&cs->claim)), false, 0);
        }
    }
    if (in_task)
        ursa__io_wait_release(); /* every fd poll of ours is over */
    if (polls)
        close(s->efd); /* no waker call in flight: the winner was settled */
    return rc;
}

/* What the try pass left: rounds of starting, blocking and trying again.
 * Out of line: its frame (an aligned waiter) stays off the ready path. */
static __attribute__((noinline)) int select_wait(ursa_case_t *cases, unsigned n, unsigned flags,
                                                 unsigned has, ursa_time_t deadline,
                                                 const ursa_site_t *site)
{
    sel_t s;
    s.core = (core_t){.cases = cases, .n = n, .flags = flags};
    for (;;) {
        int rc = block_round(&s, deadline, has, site);
        if (rc != RESTART)
            return rc;
        rc = try_pass(cases, n, flags, site);
        if (rc != -EAGAIN)
            return rc;
    }
}

/* A select over an array whose last select had to wait (a loop that
 * mostly waits, e.g. on requests) skips the try pass: its start pass
 * still finds a case that is ready and takes it (in the same fair
 * order), and the tries that would fail again are saved. Once a select
 * finds a case ready at start, the next one tries first again. A pure
 * try (URSA_NOW) always only tries. */
int ursa_select_at(ursa_case_t *cases, size_t n, unsigned flags, ursa_time_t deadline,
                   const ursa_site_t *site)
{
    unsigned has;
    int rc = validate(cases, n, flags, &has);
    if (rc)
        return rc;
    if (deadline == URSA_NOW || !cases[0].hint_) {
        rc = try_pass(cases, (unsigned)n, flags, site);
        if (rc != -EAGAIN || deadline == URSA_NOW)
            return rc;
    }
    return select_wait(cases, (unsigned)n, flags, has, deadline, site);
}

/* ---- the raw form (a foreign loop) ---- */

/* The claim's winner w was dropped by its own start (it took the claim,
 * then found the thing gone): only our own thread does that, so the
 * state is ours to read; a case decided by another thread is never
 * dropped once it holds the claim. */
static bool won_and_dropped(const ursa__waiter_t *w)
{
    /* relaxed: set by this thread (the start), or not at all. */
    return atomic_load_explicit(&w->state, memory_order_relaxed) == URSA__W_CANCELLED;
}

static core_t *raw_core(ursa_select_t *s)
{
    return (core_t *)(void *)s->priv_;
}

/* A raw round: an index, -EINPROGRESS or -EINVAL. */
static int raw_round(core_t *s)
{
    for (;;) {
        int k = try_pass(s->cases, s->n, s->flags, NULL);
        if (k != -EAGAIN)
            return k;
        ursa__claim_init(&s->claim, s->claim.waker);
        s->started = 0;
        int at = 0;
        k = start_pass(s, NULL, &at);
        if (k == -EINVAL) {
            (void)ursa__claim_close(&s->claim);
            end_all(s, -1);
            return -EINVAL;
        }
        ursa__waiter_t *w = ursa__claim_winner(&s->claim);
        if (k == -EINPROGRESS && !(w && won_and_dropped(w))) {
            s->live = 1; /* the waker is called (or was, for a case won meanwhile) */
            return k;
        }
        /* Won at start; or taken at a start that then found the thing gone
         * (no waker call will come for it): settled here. */
        k = k >= 0 ? take_winner(s, k, true, at) : take_winner(s, index_of(s, w), false, 0);
        if (k != RESTART)
            return k;
    }
}

int ursa_select_start(ursa_select_t *rs, ursa_case_t *cases, size_t n, unsigned flags,
                      ursa_waker_t waker)
{
    unsigned has;
    if (!rs || !waker.fn)
        return -EINVAL;
    int rc = validate(cases, n, flags, &has);
    if (rc)
        return rc;
    if (has & (URSA__KIND_FD | URSA__KIND_SLEEP))
        return -EINVAL; /* the loop polls its own fds and keeps its own timers */
    core_t *s = raw_core(rs);
    *s = (core_t){.cases = cases, .n = (uint32_t)n, .flags = flags};
    s->claim.waker = waker;
    return raw_round(s);
}

int ursa_select_finish(ursa_select_t *rs)
{
    core_t *s = rs ? raw_core(rs) : NULL;
    if (!s || !s->live)
        return -EINVAL;
    ursa__waiter_t *w = ursa__claim_winner(&s->claim);
    if (!w)
        return -EAGAIN;
    s->live = 0;
    int k = take_winner(s, index_of(s, w), false, 0);
    if (k != RESTART)
        return k;
    k = raw_round(s);
    return k == -EINPROGRESS ? -EAGAIN : k;
}

int ursa_select_cancel(ursa_select_t *rs)
{
    core_t *s = rs ? raw_core(rs) : NULL;
    if (!s || !s->live)
        return -EINVAL;
    /* Closed, or a case won first: either way every case is withdrawn (a
     * winner not finished gives back what it was granted). */
    (void)ursa__claim_close(&s->claim);
    end_all(s, -1);
    s->live = 0;
    return -ECANCELED;
}
