/* The wait queue (core/waitq.h) and the select claim (core/claim.h): the
 * links, wake-all in batches, and a claim taken by every decider, with a
 * minimal select built from the internal calls (no public select yet). */
#include "support.h"

#include <stdatomic.h>

#include "core/sema.h"
#include "core/waitq.h"
#include "task_checks.h"

#include "waitq_checks.h"

static void test_waitq_push_pop_and_remove_keep_fifo_links(void **state)
{
    (void)state;
    ursa__waitq_t q;
    ursa__waiter_t n[4];
    rec_t r = {0};
    plain_queue(&q, n, 4, &r);
    assert_int_equal(ursa__waitq_queued(&q), 4);
    ursa__waitq_remove(&q, &n[2]); /* middle */
    ursa__waitq_remove(&q, &n[0]); /* head */
    assert_ptr_equal(q.head, &n[1]);
    assert_ptr_equal(q.head->next, &n[3]);
    assert_ptr_equal(q.tail, &n[3]);
    ursa__waitq_remove(&q, &n[3]); /* tail */
    assert_only_queued(&q, &n[1]);
    ursa__waitq_remove(&q, &n[1]);
    assert_queue_empty(&q);
}

/* A pop leaves the new head's prev stale; every other prev stays right, so
 * removing the node after a popped head, or the new head itself, works. */
static void test_waitq_remove_after_a_pop_unlinks_the_new_head_and_its_successor(void **state)
{
    (void)state;
    ursa__waitq_t q;
    ursa__waiter_t n[3];
    rec_t r = {0};
    plain_queue(&q, n, 3, &r);
    assert_ptr_equal(ursa__waitq_pop(&q), &n[0]);
    ursa__waitq_remove(&q, &n[2]); /* its prev is n[1], not the popped n[0] */
    assert_only_queued(&q, &n[1]);
    assert_null(n[1].next);
    ursa__waitq_remove(&q, &n[1]); /* the head, with a stale prev */
    assert_queue_empty(&q);
}

/* ---- wake-all ---- */

#define MANY 100 /* more than three batches */

/* Queues MANY plain waiters n[] (records r[]) on a fresh q; the first
 * waker call runs hook(arg), if any. */
static void push_many(ursa__waitq_t *q, ursa__waiter_t *n, rec_t *r, void (*hook)(void *),
                      void *arg)
{
    ursa__waitq_init(q);
    for (int i = 0; i < MANY; i++) {
        memset(&r[i], 0, sizeof r[i]);
        plain_push(q, &n[i], &r[i]);
    }
    r[0].hook = hook;
    r[0].hook_arg = arg;
}

static void test_wake_all_wakes_every_waiter_once_oldest_first(void **state)
{
    (void)state;
    ursa__waitq_t q;
    static ursa__waiter_t n[MANY];
    static rec_t r[MANY];
    push_many(&q, n, r, NULL, NULL);
    uint32_t bits = ursa__waitq_lock(&q);
    assert_int_equal(ursa__waitq_wake_all(&q, bits, URSA__W_GRANTED, 7), MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(atomic_load(&r[i].calls), 1);
        assert_int_equal(state_of(&n[i]), URSA__W_GRANTED);
        assert_int_equal(n[i].got, 7);
        assert_true(ursa__wait_is_done(&n[i]));
        if (i)
            assert_true(r[i].seq > r[i - 1].seq); /* oldest first */
    }
    assert_null(q.head);
    assert_null(q.waking);
    assert_int_equal(ursa__waitq_queued(&q), 0);
    assert_int_equal(atomic_load(&q.lock), 0); /* unlocked */
}

/* While the first batch is woken (outside the lock), a new waiter queues
 * and one of the second batch withdraws: the new one is not woken (it came
 * after the call), the withdrawn one is not either, the rest are. */
typedef struct midway {
    ursa__waitq_t q;
    ursa__waiter_t n[MANY], late;
    rec_t r[MANY], late_r;
    bool cancelled;
} midway_t;

static void midway_hook(void *arg)
{
    midway_t *m = arg;
    plain_push(&m->q, &m->late, &m->late_r);
    m->cancelled = plain_cancel(&m->n[MANY - 1]);
}

static void test_wake_all_skips_later_arrivals_and_waiters_withdrawn_midway(void **state)
{
    (void)state;
    static midway_t m;
    memset(&m, 0, sizeof m);
    push_many(&m.q, m.n, m.r, midway_hook, &m);
    uint32_t bits = ursa__waitq_lock(&m.q);
    assert_int_equal(ursa__waitq_wake_all(&m.q, bits, URSA__W_GRANTED, 0), MANY - 1);
    assert_true(m.cancelled);
    assert_int_equal(state_of(&m.n[MANY - 1]), URSA__W_CANCELLED);
    assert_int_equal(atomic_load(&m.r[MANY - 1].calls), 0);
    for (int i = 0; i < MANY - 1; i++)
        assert_int_equal(atomic_load(&m.r[i].calls), 1);
    assert_int_equal(state_of(&m.late), URSA__W_QUEUED);
    assert_int_equal(atomic_load(&m.late_r.calls), 0);
    assert_ptr_equal(m.q.head, &m.late);
    assert_null(m.q.waking);
    assert_int_equal(ursa__waitq_queued(&m.q), 1);
    assert_true(plain_cancel(&m.late));
}

/* A wake-all that finds waiters still being woken by an earlier one (its
 * waking list) takes them on too: everyone is woken once. */
typedef struct twice {
    ursa__waitq_t q;
    ursa__waiter_t n[MANY], second[3];
    rec_t r[MANY], second_r[3];
    unsigned inner;
} twice_t;

static void twice_hook(void *arg)
{
    twice_t *t = arg;
    for (int i = 0; i < 3; i++)
        plain_push(&t->q, &t->second[i], &t->second_r[i]);
    t->inner = ursa__waitq_wake_all(&t->q, ursa__waitq_lock(&t->q), URSA__W_GRANTED, 0);
}

static void test_wake_all_takes_on_waiters_an_earlier_wake_all_is_still_waking(void **state)
{
    (void)state;
    static twice_t t;
    memset(&t, 0, sizeof t);
    push_many(&t.q, t.n, t.r, twice_hook, &t);
    unsigned outer = ursa__waitq_wake_all(&t.q, ursa__waitq_lock(&t.q), URSA__W_GRANTED, 0);
    assert_int_equal(outer + t.inner, MANY + 3);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&t.r[i].calls), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&t.second_r[i].calls), 1);
    assert_int_equal(ursa__waitq_queued(&t.q), 0);
}

/* Two cases on two semaphores, a plain waiter behind each: the first
 * release wins; the second finds the claim lost, drops its case and hands
 * the permit to the plain waiter behind. The select is woken once. */
static void test_claim_first_grant_wins_and_the_next_goes_to_the_waiter_behind(void **state)
{
    (void)state;
    two_cases_t t;
    two_cases_start(&t);
    ursa__waiter_t p1, p2;
    rec_t r1 = {0}, r2 = {0};
    plain_sema(&t.s[0], &p1, &r1, 1);
    plain_sema(&t.s[1], &p2, &r2, 1);

    ursa__sema_release(&t.s[1], 1);
    assert_ptr_equal(ursa__claim_winner(&t.sel.claim), &t.c[1]);
    assert_int_equal(state_of(&t.c[1]), URSA__W_GRANTED);
    assert_int_equal(atomic_load(&t.sel.r.calls), 1);
    assert_int_equal(state_of(&p2), URSA__W_QUEUED);

    ursa__sema_release(&t.s[0], 1);
    assert_int_equal(state_of(&t.c[0]), URSA__W_CANCELLED); /* dropped, never granted */
    assert_true(ursa__wait_is_done(&t.c[0]));
    assert_int_equal(state_of(&p1), URSA__W_GRANTED); /* the permit went on */
    assert_int_equal(atomic_load(&r1.calls), 1);
    assert_int_equal(atomic_load(&t.sel.r.calls), 1); /* no second wake */

    /* The select withdraws its cases: the loser is withdrawn, the winner
     * decided; closing the claim fails (it has a winner). */
    assert_false(ursa__claim_close(&t.sel.claim));
    assert_true(ursa__sema_cancel(&t.c[0]));
    assert_false(ursa__sema_cancel(&t.c[1]));
    assert_int_equal(state_of(&t.c[1]), URSA__W_GRANTED);

    /* Everyone gives back: both semaphores whole, nobody queued. */
    ursa__sema_release(&t.s[1], 1); /* c[1]'s */
    assert_int_equal(state_of(&p2), URSA__W_GRANTED);
    ursa__sema_release(&t.s[0], 1);
    ursa__sema_release(&t.s[1], 1);
    assert_int_equal(ursa__sema_available(&t.s[0]), 1);
    assert_int_equal(ursa__sema_available(&t.s[1]), 1);
    assert_false(ursa__sema_has_waiters(&t.s[0]));
    assert_false(ursa__sema_has_waiters(&t.s[1]));
}

/* A select that gave up (claim closed) is never granted: a release drops
 * its case, and the permit assigned to it in part goes on with the rest. */
static void test_claim_closed_select_is_never_granted_and_its_part_moves_on(void **state)
{
    (void)state;
    ursa__sema_t s;
    ursa__sema_init(&s, 0);
    sel_t sel;
    sel_init(&sel);
    ursa__waiter_t c, p;
    rec_t r = {0};
    ursa__waiter_init(&c, ursa__claim_waker(&sel.claim), &sema_ops);
    assert_int_equal(ursa__sema_start(&s, &c, 2), -EINPROGRESS);
    plain_sema(&s, &p, &r, 1);
    ursa__sema_release(&s, 1); /* a part: the head keeps it */
    assert_int_equal(c.got, 1);
    assert_true(ursa__claim_close(&sel.claim));
    ursa__sema_release(&s, 1); /* c complete, but its claim is closed */
    assert_int_equal(state_of(&c), URSA__W_CANCELLED);
    assert_int_equal(atomic_load(&sel.r.calls), 0);
    assert_int_equal(state_of(&p), URSA__W_GRANTED);
    assert_int_equal(ursa__sema_available(&s), 1); /* 2 in: 1 to p, 1 back */
    assert_true(ursa__sema_cancel(&c));
    ursa__sema_release(&s, 1);
    assert_int_equal(ursa__sema_available(&s), 2);
}

/* A close decides through the claim too: a select that won elsewhere is
 * dropped, not closed. */
static void test_claim_close_drops_a_select_that_won_elsewhere(void **state)
{
    (void)state;
    two_cases_t t;
    two_cases_start(&t);
    ursa__sema_release(&t.s[0], 1);
    ursa__sema_close(&t.s[1]);
    assert_int_equal(state_of(&t.c[0]), URSA__W_GRANTED);
    assert_int_equal(state_of(&t.c[1]), URSA__W_CANCELLED);
    assert_int_equal(atomic_load(&t.sel.r.calls), 1);
}

/* notify_one skips a case whose claim is lost and notifies the next
 * waiter; with none left it stores the permit. */
static void test_claim_notify_one_skips_a_lost_case_or_stores_the_permit(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    sel_t sel;
    sel_init(&sel);
    ursa_wait_t c, p;
    rec_t r = {0};
    assert_int_equal(ursa_notify_wait_start(&n, &c, ursa__claim_waker(&sel.claim)), -EINPROGRESS);
    assert_int_equal(ursa_notify_wait_start(&n, &p, rec_waker(&r)), -EINPROGRESS);
    ursa__waiter_t other;
    assert_true(ursa__claim_take(&sel.claim, &other)); /* another case won */
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(state_of(&c.waiter), URSA__W_CANCELLED);
    assert_int_equal(atomic_load(&r.calls), 1);
    assert_int_equal(ursa_notify_wait_finish(&n, &p), 0);
    assert_int_equal(atomic_load(&sel.r.calls), 0);
    /* The dropped case is withdrawn; raw cancel of it ends it. */
    assert_int_equal(ursa_wait_cancel(&c), -ECANCELED);

    /* Only a lost case queued: the notification is stored. */
    sel_init(&sel);
    assert_int_equal(ursa_notify_wait_start(&n, &c, ursa__claim_waker(&sel.claim)), -EINPROGRESS);
    assert_true(ursa__claim_close(&sel.claim));
    assert_int_equal(ursa_notify_one(&n), 1);
    assert_int_equal(ursa_notify_wait(&n, URSA_NOW), 0); /* the stored permit */
    assert_int_equal(ursa_wait_cancel(&c), -ECANCELED);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

/* notify_waiters wakes every waiter but a lost case, and counts only them. */
static void test_claim_notify_waiters_counts_only_the_cases_it_won(void **state)
{
    (void)state;
    ursa_notify_t n;
    assert_int_equal(ursa_notify_init(&n), 0);
    sel_t sel;
    sel_init(&sel);
    ursa_wait_t a, c, b;
    rec_t ra = {0}, rb = {0};
    assert_int_equal(ursa_notify_wait_start(&n, &a, rec_waker(&ra)), -EINPROGRESS);
    assert_int_equal(ursa_notify_wait_start(&n, &c, ursa__claim_waker(&sel.claim)), -EINPROGRESS);
    assert_int_equal(ursa_notify_wait_start(&n, &b, rec_waker(&rb)), -EINPROGRESS);
    assert_true(ursa__claim_close(&sel.claim));
    assert_int_equal(ursa_notify_waiters(&n), 2);
    assert_int_equal(atomic_load(&ra.calls) + atomic_load(&rb.calls), 2);
    assert_int_equal(state_of(&c.waiter), URSA__W_CANCELLED);
    assert_int_equal(ursa_notify_wait_finish(&n, &a), 0);
    assert_int_equal(ursa_notify_wait_finish(&n, &b), 0);
    assert_int_equal(ursa_wait_cancel(&c), -ECANCELED);
    assert_int_equal(ursa_notify_destroy(&n), 0);
}

/* An auto-reset event's set goes past a lost case to the next waiter, or
 * stays set when there is none. */
static void test_claim_auto_event_passes_a_lost_case_or_stays_set(void **state)
{
    (void)state;
    ursa_event_t e;
    assert_int_equal(ursa_event_init(&e, URSA_EVENT_AUTO, false), 0);
    sel_t sel;
    sel_init(&sel);
    ursa_wait_t c, p;
    rec_t r = {0};
    assert_int_equal(ursa_event_wait_start(&e, &c, ursa__claim_waker(&sel.claim)), -EINPROGRESS);
    assert_int_equal(ursa_event_wait_start(&e, &p, rec_waker(&r)), -EINPROGRESS);
    assert_true(ursa__claim_close(&sel.claim));
    assert_int_equal(ursa_event_set(&e), 1);
    assert_int_equal(atomic_load(&r.calls), 1);
    assert_false(ursa_event_is_set(&e)); /* p took it */
    assert_int_equal(ursa_event_wait_finish(&e, &p), 0);
    assert_int_equal(ursa_wait_cancel(&c), -ECANCELED);

    sel_init(&sel);
    assert_int_equal(ursa_event_wait_start(&e, &c, ursa__claim_waker(&sel.claim)), -EINPROGRESS);
    assert_true(ursa__claim_close(&sel.claim));
    assert_int_equal(ursa_event_set(&e), 1);
    assert_true(ursa_event_is_set(&e)); /* nobody took it */
    assert_int_equal(ursa_wait_cancel(&c), -ECANCELED);
    assert_int_equal(ursa_event_destroy(&e), 0);
}

/* ---- races: two releases and the select's own give-up, on threads ---- */

typedef struct race {
    ursa__sema_t s[2];
    sel_t sel;
    ursa__waiter_t c[2], p[2];
    rec_t pr[2];
    atomic_int go;
    bool close; /* a third thread closes the claim */
    bool closed;
} race_t;

typedef struct racer {
    race_t *r;
    int id; /* 0, 1: release s[id]; 2: close the claim */
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *a = arg;
    while (!atomic_load(&a->r->go))
        ;
    if (a->id < 2)
        ursa__sema_release(&a->r->s[a->id], 1);
    else
        a->r->closed = ursa__claim_close(&a->r->sel.claim);
    return NULL;
}

/* One round; returns NULL or what went wrong. */
static const char *race_round(race_t *r)
{
    for (int i = 0; i < 2; i++) {
        ursa__sema_init(&r->s[i], 0);
        memset(&r->pr[i], 0, sizeof r->pr[i]);
    }
    sel_init(&r->sel);
    for (int i = 0; i < 2; i++) {
        ursa__waiter_init(&r->c[i], ursa__claim_waker(&r->sel.claim), &sema_ops);
        if (ursa__sema_start(&r->s[i], &r->c[i], 1) != -EINPROGRESS)
            return "a case did not queue";
        ursa__waiter_init(&r->p[i], rec_waker(&r->pr[i]), &sema_ops);
        if (ursa__sema_start(&r->s[i], &r->p[i], 1) != -EINPROGRESS)
            return "a plain waiter did not queue";
    }
    atomic_store(&r->go, 0);
    r->closed = false;
    int nthreads = r->close ? 3 : 2;
    pthread_t th[3];
    racer_t a[3];
    for (int i = 0; i < nthreads; i++) {
        a[i] = (racer_t){r, i};
        if (pthread_create(&th[i], NULL, racer_main, &a[i]))
            return "pthread_create";
    }
    atomic_store(&r->go, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    /* The select withdraws both cases, as it would. */
    ursa__waiter_t *win = ursa__claim_winner(&r->sel.claim);
    int granted = 0;
    for (int i = 0; i < 2; i++) {
        bool withdrawn = ursa__sema_cancel(&r->c[i]);
        if (!withdrawn) {
            if (state_of(&r->c[i]) != URSA__W_GRANTED || win != &r->c[i])
                return "a case was decided without winning the claim";
            granted++;
            ursa__sema_release(&r->s[i], 1); /* the winner's lock, given back */
        }
    }
    if (granted > 1)
        return "both cases were granted";
    if (granted == 0 && !(r->close && r->closed))
        return "no case won, though the claim was never closed";
    if (r->closed && granted)
        return "the claim closed and a case won";
    if (atomic_load(&r->sel.r.calls) != granted)
        return "the select was woken for a case that did not win";
    /* Every plain waiter got its permit: none was lost to a dropped case. */
    for (int i = 0; i < 2; i++) {
        if (state_of(&r->p[i]) != URSA__W_GRANTED || atomic_load(&r->pr[i].calls) != 1)
            return "a plain waiter behind a case was not granted";
        ursa__sema_release(&r->s[i], 1);
        if (ursa__sema_available(&r->s[i]) != 1 || ursa__sema_has_waiters(&r->s[i]))
            return "a semaphore is not whole again";
    }
    return NULL;
}

static void test_claim_racing_releases_and_give_up_grant_exactly_one_on_threads(void **state)
{
    (void)state;
    static race_t r;
    long rounds = test_scale(3000);
    for (long i = 0; i < rounds; i++) {
        r.close = i % 2;
        const char *m = race_round(&r);
        if (m)
            fail_msg("round %ld (%s): %s", i, r.close ? "with a close" : "two releases", m);
    }
}

/* ---- the claim in deterministic mode: tasks, mutexes, a give-up ---- */

typedef struct scen {
    ursa_mutex_t m[2];
    int holders[2]; /* tasks inside each mutex, checked by each */
    int plain_done;
    bool select_queued;
} scen_t;

typedef struct role {
    scen_t *s;
    int id;
    ursa_mutex_guard_t g;
} role_t;

/* Unlocks the guard the root locked and handed over, after a few yields. */
static void *releaser_task(void *arg)
{
    role_t *r = arg;
    URSA_SIM_CHECK(ursa_oblig_adopt(&r->g.ob) == 0);
    for (int i = 0; i < 1 + r->id; i++)
        ursa_yield();
    r->s->holders[r->id]--;
    ursa_mutex_unlock(&r->g);
    return NULL;
}

static void *plain_task(void *arg)
{
    role_t *r = arg;
    ursa_mutex_guard_t g = {0};
    URSA_SIM_CHECK(ursa_mutex_lock(&r->s->m[r->id], &g, URSA_NEVER) == 0);
    URSA_SIM_CHECK(++r->s->holders[r->id] == 1);
    ursa_yield();
    r->s->holders[r->id]--;
    ursa_mutex_unlock(&g);
    r->s->plain_done++;
    return NULL;
}

/* The select: a case on each (held) mutex; waits a few yields for a
 * winner, then gives up; withdraws both cases and checks that exactly what
 * the claim says happened. */
static void *select_task(void *arg)
{
    scen_t *s = arg;
    sel_t sel;
    sel_init(&sel);
    URSA__WAITER_ALIGN ursa__waiter_t c[2];
    for (int i = 0; i < 2; i++) {
        ursa__waiter_init(&c[i], ursa__claim_waker(&sel.claim), &sema_ops);
        URSA_SIM_CHECK(ursa__sema_start(&s->m[i].sema, &c[i], 1) == -EINPROGRESS);
    }
    s->select_queued = true;
    for (int i = 0; i < 4 && !ursa__claim_winner(&sel.claim); i++)
        ursa_yield();
    bool closed = ursa__claim_close(&sel.claim);
    ursa__waiter_t *win = ursa__claim_winner(&sel.claim);
    URSA_SIM_CHECK(closed == (win == URSA__CLAIM_CLOSED));
    int granted = -1;
    for (int i = 0; i < 2; i++) {
        if (!ursa__sema_cancel(&c[i])) {
            URSA_SIM_CHECK(granted < 0 && win == &c[i]);
            URSA_SIM_CHECK(state_of(&c[i]) == URSA__W_GRANTED);
            granted = i;
        }
    }
    URSA_SIM_CHECK(closed == (granted < 0));
    if (granted >= 0) {
        URSA_SIM_CHECK(++s->holders[granted] == 1); /* we hold the mutex */
        ursa_yield();
        s->holders[granted]--;
        ursa__sema_release(&s->m[granted].sema, 1);
    }
    return NULL;
}

static void *claim_scenario(void *arg)
{
    (void)arg;
    scen_t s = {0};
    role_t rel[2], pl[2];
    ursa_task_t *t[5];
    for (int i = 0; i < 2; i++) {
        URSA_SIM_CHECK(ursa_mutex_init(&s.m[i]) == 0);
        rel[i] = (role_t){.s = &s, .id = i};
        pl[i] = (role_t){.s = &s, .id = i};
        URSA_SIM_CHECK(ursa_mutex_lock(&s.m[i], &rel[i].g, URSA_NOW) == 0);
        s.holders[i] = 1;
    }
    /* The guards go to the releasers (they adopt them). */
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(ursa_oblig_disown(&rel[i].g.ob) == 0);
    URSA_SIM_CHECK(ursa_spawn(&t[0], select_task, &s, NULL) == 0);
    while (!s.select_queued) /* its cases queue first, the plain waiters behind */
        URSA_SIM_CHECK(ursa_yield() == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(ursa_spawn(&t[1 + i], plain_task, &pl[i], NULL) == 0);
    for (int i = 0; i < 2; i++)
        URSA_SIM_CHECK(ursa_spawn(&t[3 + i], releaser_task, &rel[i], NULL) == 0);
    for (int i = 0; i < 5; i++) {
        void *r = NULL;
        URSA_SIM_CHECK(ursa_task_join(t[i], &r, URSA_NEVER) == 0);
        if (r)
            return r;
    }
    URSA_SIM_CHECK(s.plain_done == 2); /* no wake lost to a dropped case */
    for (int i = 0; i < 2; i++) {
        URSA_SIM_CHECK(s.holders[i] == 0);
        URSA_SIM_CHECK(!ursa_mutex_is_locked(&s.m[i]));
        URSA_SIM_CHECK(ursa_mutex_destroy(&s.m[i]) == 0);
    }
    return NULL;
}

static void test_claim_mutex_cases_grant_exactly_one_over_seeds(void **state)
{
    (void)state;
    test_explore(claim_scenario, NULL);
}

TEST_MAIN(cmocka_unit_test(test_waitq_push_pop_and_remove_keep_fifo_links),
          cmocka_unit_test(test_waitq_remove_after_a_pop_unlinks_the_new_head_and_its_successor),
          cmocka_unit_test(test_wake_all_wakes_every_waiter_once_oldest_first),
          cmocka_unit_test(test_wake_all_skips_later_arrivals_and_waiters_withdrawn_midway),
          cmocka_unit_test(test_wake_all_takes_on_waiters_an_earlier_wake_all_is_still_waking),
          cmocka_unit_test(test_claim_first_grant_wins_and_the_next_goes_to_the_waiter_behind),
          cmocka_unit_test(test_claim_closed_select_is_never_granted_and_its_part_moves_on),
          cmocka_unit_test(test_claim_close_drops_a_select_that_won_elsewhere),
          cmocka_unit_test(test_claim_notify_one_skips_a_lost_case_or_stores_the_permit),
          cmocka_unit_test(test_claim_notify_waiters_counts_only_the_cases_it_won),
          cmocka_unit_test(test_claim_auto_event_passes_a_lost_case_or_stays_set),
          cmocka_unit_test(test_claim_racing_releases_and_give_up_grant_exactly_one_on_threads),
          cmocka_unit_test(test_claim_mutex_cases_grant_exactly_one_over_seeds))
