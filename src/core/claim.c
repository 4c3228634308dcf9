/* A select's claim (claim.h): the waker every waiter of a select has. */
#include "claim.h"

void ursa__claim_wake(void *claim)
{
    ursa__claim_t *c = claim;
    c->waker.fn(c->waker.ctx);
}
