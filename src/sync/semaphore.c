#include "ursa/semaphore.h"

#include "../core/ctx.h"
#include "../core/sema.h"
#include "barge.h"
#include "hold.h"
#include "../core/wait_steps.h"

static void leaked_release(void *sem, uint64_t n);
static const ursa_oblig_kind_t permit_kind = {"semaphore permit", leaked_release};
static const ursa__wait_ops_t acquire_ops = {URSA_WAIT_SEMAPHORE, ursa__sema_cancel,
                                             ursa__sema_give_back};

int ursa_sem_init(ursa_sem_t *s, uint64_t permits)
{
    return ursa_sem_init_flags(s, permits, 0);
}

int ursa_sem_init_flags(ursa_sem_t *s, uint64_t permits, unsigned flags)
{
    if (!s || permits > URSA_SEM_MAX || (flags & ~URSA_SEM_BARGING))
        return -EINVAL;
    ursa__sema_init(&s->sema, permits);
    if (flags & URSA_SEM_BARGING)
        ursa__sema_set_barging(&s->sema);
    return 0;
}

int ursa_sem_destroy(ursa_sem_t *s)
{
    if (!s)
        return -EINVAL;
    return ursa__destroy_check(ursa__sema_has_waiters(&s->sema),
                               "semaphore destroyed while waited on");
}

/* The permits are ours: fill p, or give them back if they can't be recorded. */
static int take(ursa_sem_t *s, uint64_t n, ursa_sem_permit_t *p, ursa__ctx_t *c,
                const ursa_site_t *site)
{
    if (__builtin_expect(ursa__oblig_take(&c->ledger, &p->ob, &permit_kind, site, s, n), 0)) {
        ursa__sema_release(&s->sema, n);
        return -ENOMEM;
    }
    p->sem = s;
    p->n = n;
    return 0;
}

/* Out of line: the aligned waiter would cost the fast path a realigned
 * frame. */
static __attribute__((noinline)) int acquire_slow(ursa_sem_t *s, uint64_t n,
                                                  ursa_sem_permit_t *p, ursa__ctx_t *c,
                                                  ursa_time_t deadline, const ursa_site_t *site)
{
    if (ursa__sema_closed(&s->sema))
        return -EPIPE;
    if (ursa__sema_barging(&s->sema)) {
        /* Free permits are anyone's, queued waiters or not; but under
         * contention a blocking acquire from another thread than the
         * streak's queues (core/sema.h, streaks). */
        if (ursa__sema_barge_in(&s->sema, n, deadline))
            return take(s, n, p, c, site);
        if (deadline == URSA_NOW)
            return -EAGAIN;
        int rc = ursa__barge_block(c, &s->sema, (uint32_t)n, &acquire_ops, deadline, site,
                                   ursa__ctx_now(c));
        return rc == 0 ? take(s, n, p, c, site) : rc;
    }
    if (deadline == URSA_NOW)
        return -EAGAIN;
    URSA__WAITER_ALIGN ursa__waiter_t w;
    ursa__waiter_init(&w, c->waker, &acquire_ops);
    int rc = ursa__wait_block(c, &w, ursa__sema_start(&s->sema, &w, (uint32_t)n), deadline, site);
    if (rc == 0)
        rc = ursa__wait_grant_rc(&w); /* a close may have decided it */
    return rc == 0 ? take(s, n, p, c, site) : rc;
}

/* Everything the fast path leaves: no context yet, a ledger that must pop
 * its free list or grow, permits not free now. */
static __attribute__((noinline)) int acquire_general(ursa_sem_t *s, uint64_t n,
                                                     ursa_sem_permit_t *p, ursa_time_t deadline,
                                                     const ursa_site_t *site)
{
    ursa__ctx_t *c = ursa__ctx();
    if (ursa__sema_try(&s->sema, n))
        return take(s, n, p, c, site);
    return acquire_slow(s, n, p, c, deadline, site);
}

/* The fast path makes no call but tail calls (as the mutex's). */
int ursa_sem_acquire_at(ursa_sem_t *s, uint64_t n, ursa_sem_permit_t *p, ursa_time_t deadline,
                        const ursa_site_t *site)
{
    if (!s || !p || p->sem || n == 0 || n > URSA_SEM_REQUEST_MAX)
        return -EINVAL;
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(c && ursa__ledger_room(&c->ledger) && ursa__sema_try(&s->sema, n), 1)) {
        ursa__ledger_push(&c->ledger, &p->ob, &permit_kind, site, s, n, NULL);
        p->ob.kind = &permit_kind;
        p->ob.site = site;
        p->sem = s;
        p->n = n;
        return 0;
    }
    return acquire_general(s, n, p, deadline, site);
}

/* Discharges p; its permits go back to the semaphore, or, forgotten,
 * leave it for good. */
static __attribute__((noinline)) int discharge(ursa_sem_permit_t *p, bool forget)
{
    if (!p)
        return -EINVAL;
    ursa_sem_t *s = p->sem;
    uint64_t n = p->n;
    int rc = ursa__hold_discharge(&p->ob, s != NULL,
                                  "semaphore permit released twice (or never acquired)", NULL);
    if (rc)
        return rc;
    p->sem = NULL;
    p->n = 0;
    if (forget)
        ursa__sema_dropped(&s->sema, n);
    else
        ursa__sema_release(&s->sema, n);
    return 0;
}

static __attribute__((noinline)) int release_slow(ursa_sem_t *s, uint64_t n)
{
    ursa__sema_release_slow(&s->sema, n);
    return 0;
}

/* Fast when p is the caller's newest hold and nobody waits. */
int ursa_sem_release(ursa_sem_permit_t *p)
{
    ursa__ctx_t *c = ursa__cur_ctx;
    if (__builtin_expect(!p || !p->sem || !c || !ursa__oblig_is_newest(&c->ledger, &p->ob), 0))
        return discharge(p, false);
    ursa_sem_t *s = p->sem;
    uint64_t n = p->n;
    ursa__ledger_pop(&c->ledger, &p->ob);
    p->sem = NULL;
    p->n = 0;
    if (__builtin_expect(ursa__sema_release_fast(&s->sema, n), 1))
        return 0;
    return release_slow(s, n);
}

int ursa_sem_permit_forget(ursa_sem_permit_t *p)
{
    return discharge(p, true);
}

int ursa_sem_permit_split(ursa_sem_permit_t *p, uint64_t n, ursa_sem_permit_t *out)
{
    if (!p || !out || out == p || out->sem || n == 0)
        return -EINVAL;
    int rc = ursa__hold_check(p->sem ? &p->ob : NULL,
                              "semaphore permit split after its release (or never acquired)");
    if (rc)
        return rc;
    if (n > p->n)
        return -EINVAL;
    /* out is a hold of its own, acquired where p was. */
    if (ursa__oblig_take(&ursa__ctx()->ledger, &out->ob, &permit_kind, p->ob.site, p->sem, n))
        return -ENOMEM;
    out->sem = p->sem;
    out->n = n;
    p->n -= n;
    ursa__oblig_set_n(&p->ob, p->n); /* a leak of p now returns only the rest */
    return 0;
}

int ursa_sem_permit_merge(ursa_sem_permit_t *p, ursa_sem_permit_t *from)
{
    if (!p || !from || p == from)
        return -EINVAL;
    const char *misuse = "semaphore permit merged after its release (or never acquired)";
    int rc = ursa__hold_check(p->sem ? &p->ob : NULL, misuse);
    if (rc == 0)
        rc = ursa__hold_check(from->sem ? &from->ob : NULL, misuse);
    if (rc)
        return rc;
    if (p->sem != from->sem)
        return -EINVAL;
    /* Checked above: from is the caller's (or disowned), so this succeeds. */
    rc = ursa__hold_discharge(&from->ob, true, misuse, NULL);
    if (rc)
        return rc;
    p->n += from->n; /* both counted in the semaphore's total: <= URSA_SEM_MAX */
    ursa__oblig_set_n(&p->ob, p->n);
    from->sem = NULL;
    from->n = 0;
    return 0;
}

static void leaked_release(void *sem, uint64_t n)
{
    ursa__sema_release(&((ursa_sem_t *)sem)->sema, n);
}

void ursa_sem_permit_cleanup(ursa_sem_permit_t *p)
{
    if (p && p->sem)
        (void)ursa_sem_release(p);
}

int ursa_sem_add(ursa_sem_t *s, uint64_t n)
{
    return s ? ursa__sema_add(&s->sema, n) : -EINVAL;
}

uint64_t ursa_sem_forget(ursa_sem_t *s, uint64_t n)
{
    return s ? ursa__sema_forget(&s->sema, n) : 0;
}

uint64_t ursa_sem_available(const ursa_sem_t *s)
{
    return s ? ursa__sema_available(&s->sema) : 0;
}

int ursa_sem_close(ursa_sem_t *s)
{
    if (!s)
        return -EINVAL;
    ursa__sema_close(&s->sema);
    return 0;
}

bool ursa_sem_is_closed(const ursa_sem_t *s)
{
    return s && ursa__sema_closed(&s->sema);
}

int ursa_sem_acquire_start_at(ursa_sem_t *s, uint64_t n, ursa_wait_t *w, ursa_waker_t waker,
                              const ursa_site_t *site)
{
    ursa__waiter_t *ws = s && n != 0 && n <= URSA_SEM_REQUEST_MAX
                             ? ursa__wait_raw_init(w, waker, &acquire_ops, site)
                             : NULL;
    return ws ? ursa__sema_start(&s->sema, ws, (uint32_t)n) : -EINVAL;
}

int ursa_sem_acquire_finish(ursa_sem_t *s, ursa_wait_t *w, ursa_sem_permit_t *p)
{
    ursa__waiter_t *ws = s ? ursa__wait_raw_of(w, &s->sema, &acquire_ops) : NULL;
    if (!ws || !p || p->sem)
        return -EINVAL;
    int st = ursa__wait_finish_decided(ws);
    if (st < 0)
        return st;
    return st == URSA__W_CLOSED ? -EPIPE : take(s, ws->got, p, ursa__ctx(), w->site);
}
