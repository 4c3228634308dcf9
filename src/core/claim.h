/* A select's claim: one word that lets exactly one of several waiters be
 * decided.
 *
 * A select starts one waiter per case, on as many primitives, all sharing
 * one claim. Each of those waiters has the waker {ursa__claim_wake, claim}:
 * that is how a primitive tells a select's waiter from a plain one without
 * a flag in the node, and how it reaches the claim. Before a primitive
 * decides a waiter (grant or close) it takes the waiter's claim, under the
 * lock that guards the waiter (or, for a lock-free slot, right after the
 * exchange that made the waiter its own): the first waiter to take it wins;
 * for any other the claim is lost, and the primitive drops that waiter as
 * if it had been withdrawn (ursa__waiter_drop) and hands what it was about
 * to give to the next one. A loser is never granted: nothing moves through
 * it. The select itself closes the claim when it gives up (deadline,
 * cancel): from then on no waiter of it can be decided; if a waiter won
 * first, the select takes that case's outcome instead. */
#ifndef URSA_CORE_CLAIM_H
#define URSA_CORE_CLAIM_H

#include <stdatomic.h>
#include <stdbool.h>

#include "ursa/wait.h"

typedef struct ursa__claim {
    /* NULL while open; the waiter that won; or URSA__CLAIM_CLOSED. */
    _Atomic(ursa__waiter_t *) winner;
    ursa_waker_t waker; /* the select's own: called once, for the winner */
} ursa__claim_t;

#define URSA__CLAIM_CLOSED ((ursa__waiter_t *)1)

/* The waker of every waiter of a select (ctx: its claim): calls the
 * select's own waker. Only a winner is ever woken. */
void ursa__claim_wake(void *claim);

static inline void ursa__claim_init(ursa__claim_t *c, ursa_waker_t waker)
{
    atomic_init(&c->winner, NULL);
    c->waker = waker;
}

/* The waker a select gives each of its waiters. */
static inline ursa_waker_t ursa__claim_waker(ursa__claim_t *c)
{
    return (ursa_waker_t){ursa__claim_wake, c};
}

/* Takes c for w: true if w won it now or had won it before, false if
 * another waiter won it or the select closed it. */
static inline bool ursa__claim_take(ursa__claim_t *c, ursa__waiter_t *w)
{
    ursa__waiter_t *cur = NULL;
    /* acq_rel: every take and the close are RMWs on this one word, so they
     * have one order and exactly one of them wins; acquire so that a
     * decider sees the select's set-up, release so that the select that
     * reads the winner sees the decider's writes before it. */
    return atomic_compare_exchange_strong_explicit(&c->winner, &cur, w, memory_order_acq_rel,
                                                   memory_order_acquire) ||
           cur == w;
}

/* Takes w's claim if w is a select's: true if w may be decided (it is
 * not a select's, or it holds the claim), false if its claim is lost. */
static inline bool ursa__waiter_claim(ursa__waiter_t *w)
{
    if (__builtin_expect(w->waker.fn != ursa__claim_wake, 1))
        return true;
    return ursa__claim_take((ursa__claim_t *)w->waker.ctx, w);
}

/* The select gives up: true if it closed c (no waiter of it can be
 * decided any more: each one is withdrawn or dropped), false if a waiter
 * won first (ursa__claim_winner; the select takes its outcome). */
static inline bool ursa__claim_close(ursa__claim_t *c)
{
    ursa__waiter_t *cur = NULL;
    /* acq_rel: as in ursa__claim_take. */
    return atomic_compare_exchange_strong_explicit(&c->winner, &cur, URSA__CLAIM_CLOSED,
                                                   memory_order_acq_rel, memory_order_acquire);
}

/* The waiter that won c, NULL while open, or URSA__CLAIM_CLOSED. */
static inline ursa__waiter_t *ursa__claim_winner(ursa__claim_t *c)
{
    /* acquire: pairs with the winning take (see there). */
    return atomic_load_explicit(&c->winner, memory_order_acquire);
}

#endif
