/* Helpers for the wait-queue and claim tests (tests/core/test_waitq*.c):
 * a waker that records the order of its calls, plain waiters on a queue,
 * and a minimal select (one claim, cases on semaphores) built from the
 * internal calls. Include after support.h. */
#ifndef URSA_TEST_WAITQ_CHECKS_H
#define URSA_TEST_WAITQ_CHECKS_H

#include <stdatomic.h>

#include "core/claim.h"
#include "core/sema.h"
#include "core/waitq.h"

/* ---- a waker that records the order of its calls ---- */

static atomic_int wake_seq;

typedef struct rec {
    atomic_int calls;
    int seq; /* wake_seq at the (last) call */
    void (*hook)(void *arg); /* run inside the call, once */
    void *hook_arg;
} rec_t;

static __attribute__((unused)) void rec_wake(void *p)
{
    rec_t *r = p;
    r->seq = atomic_fetch_add(&wake_seq, 1);
    atomic_fetch_add(&r->calls, 1);
    if (r->hook) {
        void (*h)(void *) = r->hook;
        r->hook = NULL;
        h(r->hook_arg);
    }
}

static __attribute__((unused)) ursa_waker_t rec_waker(rec_t *r)
{
    return (ursa_waker_t){rec_wake, r};
}

/* Waiters of a plain queue hold nothing: the generic cancel. */
static __attribute__((unused)) bool plain_cancel(ursa__waiter_t *w)
{
    return ursa__waitq_cancel(w->owner, w);
}
static const ursa__wait_ops_t plain_ops = {URSA_WAIT_OTHER, plain_cancel, NULL};
static const ursa__wait_ops_t sema_ops = {URSA_WAIT_OTHER, ursa__sema_cancel,
                                          ursa__sema_give_back};

static __attribute__((unused)) void plain_push(ursa__waitq_t *q, ursa__waiter_t *w, rec_t *r)
{
    ursa__waiter_init(w, rec_waker(r), &plain_ops);
    w->owner = q;
    ursa__waitq_enqueue(q, w);
}

/* A fresh queue q holding n[0..count) in order, each waking r. */
static __attribute__((unused)) void plain_queue(ursa__waitq_t *q, ursa__waiter_t *n, int count, rec_t *r)
{
    ursa__waitq_init(q);
    for (int i = 0; i < count; i++)
        plain_push(q, &n[i], r);
}

static __attribute__((unused)) uint32_t state_of(const ursa__waiter_t *w)
{
    return atomic_load(&w->state);
}

/* ---- links ---- */

/* q links w alone: head and tail. */
static __attribute__((unused)) void assert_only_queued(const ursa__waitq_t *q, ursa__waiter_t *w)
{
    assert_ptr_equal(q->head, w);
    assert_ptr_equal(q->tail, w);
}

/* q links nothing and counts nothing. */
static __attribute__((unused)) void assert_queue_empty(ursa__waitq_t *q)
{
    assert_null(q->head);
    assert_null(q->tail);
    assert_int_equal(ursa__waitq_queued(q), 0);
}

/* ---- the select claim ---- */

/* A minimal select: one claim, waiters that share it. */
typedef struct sel {
    ursa__claim_t claim;
    rec_t r; /* the select's own waker */
} sel_t;

static __attribute__((unused)) void sel_init(sel_t *s)
{
    memset(s, 0, sizeof *s);
    ursa__claim_init(&s->claim, rec_waker(&s->r));
}

/* Starts a wait for one permit of sema as a case of s (the permit must not
 * be available: a select's start never completes at once). */
static __attribute__((unused)) void sel_case(sel_t *s, ursa__sema_t *sema, ursa__waiter_t *w)
{
    ursa__waiter_init(w, ursa__claim_waker(&s->claim), &sema_ops);
    assert_int_equal(ursa__sema_start(sema, w, 1), -EINPROGRESS);
}

static __attribute__((unused)) void plain_sema(ursa__sema_t *sema, ursa__waiter_t *w, rec_t *r, uint32_t n)
{
    ursa__waiter_init(w, rec_waker(r), &sema_ops);
    assert_int_equal(ursa__sema_start(sema, w, n), -EINPROGRESS);
}

/* Two semaphores without permits and a select with a case on each: case
 * c[i] waits for one permit of s[i]. */
typedef struct two_cases {
    ursa__sema_t s[2];
    sel_t sel;
    ursa__waiter_t c[2];
} two_cases_t;

static __attribute__((unused)) void two_cases_start(two_cases_t *t)
{
    for (int i = 0; i < 2; i++)
        ursa__sema_init(&t->s[i], 0);
    sel_init(&t->sel);
    for (int i = 0; i < 2; i++)
        sel_case(&t->sel, &t->s[i], &t->c[i]);
}

#endif
