/* Select's kinds of case: one table entry per kind (kinds.c).
 *
 * Adding a kind (a cancellation token, a group's join_next) is one entry
 * here and a builder in include/ursa/select.h; select.c never changes.
 * What an entry must do, in terms of its primitive's raw wait
 * (include/ursa/wait.h, src/core/waitq.h):
 *
 *   flags    what the select does for the kind itself (below), and the
 *            fields every case of it needs (URSA__KIND_OBJ ...).
 *   check    0 if the case's other fields are well formed, else -EINVAL
 *            (NULL: nothing more to check). Must not touch the primitive.
 *   try_now  a pure try (the single call with URSA_NOW): the case's
 *            outcome (0, or the single call's error such as -EPIPE,
 *            with the hold established as the call establishes it), or
 *            -EAGAIN when it is not ready. Queues nothing.
 *   start    the raw start of c->wait_ with `waker` (the select's claim
 *            waker, core/claim.h): 0 ready now, -EINPROGRESS started, or
 *            an outcome at once (an error: nothing started). The
 *            primitive's start must take the claim before it takes
 *            anything when it completes at once (ursa__wait_start_claim),
 *            and every decider must decide through waitq.h's calls: then
 *            a case that loses is never granted. (A start that completes
 *            without the claim is still safe: the select then takes the
 *            claim itself, and a case that loses it is cancelled, which
 *            hands back what it got.)
 *   finish   the raw finish of a case whose wait won: its outcome (the
 *            single call's code; the hold established), or -EAGAIN if it
 *            won but found nothing when it came to take it (another
 *            receiver was faster): the select starts over.
 *   cancel   withdraws a started case that did not win, or that won but
 *            will not be finished (it then gives back what it holds).
 *            NULL: ursa_wait_cancel(&c->wait_).
 *
 * Flags mark the two kinds the select drives itself: fd readiness on a
 * plain thread (polled by the select's own loop) and sleep-until (its
 * time joins the select's deadline). */
#ifndef URSA_SELECT_SELECT_H
#define URSA_SELECT_SELECT_H

#include "ursa/select.h"

#define URSA__KIND_FD 1u    /* fd readiness: ring poll in a task, ppoll on a thread */
#define URSA__KIND_SLEEP 2u /* a time: no wait is started */
/* The input every case of the kind needs (checked before `check`). */
#define URSA__KIND_OBJ 4u  /* obj not NULL */
#define URSA__KIND_OUT 8u  /* out not NULL */
#define URSA__KIND_IN 16u  /* in not NULL */
/* The kind's wait sits in a single slot of its object: two cases on one
 * object would overwrite each other's wait (refused). */
#define URSA__KIND_ONE_SLOT 32u

typedef struct ursa__case_kind {
    unsigned flags;
    int (*check)(const ursa_case_t *c);
    int (*try_now)(ursa_case_t *c, const ursa_site_t *site);
    int (*start)(ursa_case_t *c, ursa_waker_t waker, const ursa_site_t *site);
    int (*finish)(ursa_case_t *c);
    void (*cancel)(ursa_case_t *c);
} ursa__case_kind_t;

/* Indexed by ursa_case_kind_t; NULL for URSA_CASE_NONE. */
extern const ursa__case_kind_t *const ursa__case_kinds[URSA_CASE__COUNT];

/* An fd case on a plain thread: the select's loop polled it ready and won
 * with it; revents is its outcome. */
void ursa__fd_case_polled(ursa_case_t *c, int revents);

#endif
