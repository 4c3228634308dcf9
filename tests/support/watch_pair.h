/* The value the watch tests send: a pair whose halves must agree (b is
 * always 3 * a), so that a torn read shows; its typed wrapper (pw_*), and
 * the modify / predicate callbacks they pass. Include after ursa/watch.h. */
#ifndef URSA_TEST_WATCH_PAIR_H
#define URSA_TEST_WATCH_PAIR_H

typedef struct pair {
    long a, b; /* b == 3 * a always: a torn read would break it */
} pair_t;

URSA_WATCH_TYPED(pw, pair_t)

static __attribute__((unused)) pair_t mk(long a)
{
    return (pair_t){a, 3 * a};
}

/* A new watch (tx, rx) whose value is mk(a): pw_new's result. */
static __attribute__((unused)) int pw_new_of(ursa_watch_tx_t **tx, ursa_watch_rx_t **rx, long a)
{
    pair_t p = mk(a);
    return pw_new(tx, rx, &p);
}

/* send_modify: increments an even value (a change), leaves an odd one. */
static __attribute__((unused)) bool inc_if_even(void *value, void *ctx)
{
    pair_t *p = value;
    (void)ctx;
    if (p->a % 2)
        return false;
    p->a++;
    p->b = 3 * p->a;
    return true;
}

/* wait_for: a >= *ctx. */
static __attribute__((unused)) bool ge(const void *value, void *ctx)
{
    return ((const pair_t *)value)->a >= *(long *)ctx;
}

#endif
