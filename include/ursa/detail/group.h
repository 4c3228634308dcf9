/* ursa — private layout of a task group (ursa/group.h). Public only so
 * that it can be embedded: every field is private, read and written by
 * src/rt/group.c. Nothing here is callable. */
#ifndef URSA_DETAIL_GROUP_H
#define URSA_DETAIL_GROUP_H

#include "token.h"

struct ursa__group_member;

struct ursa_group {
    struct ursa_token token; /* every member is bound to it */
    /* join_next waiters; its lock guards everything below but idleq's
     * waiters (idleq's own lock, taken inside this one). */
    ursa__waitq_t joinq;
    ursa__waitq_t idleq; /* ursa_group_wait waiters */
    struct ursa__group_member *done_head, *done_tail; /* finished, oldest first */
    URSA_ATOMIC(uint32_t) members; /* spawned and not yet joined (a hint outside the lock) */
    uint32_t running;  /* spawned and not finished */
    uint32_t done;     /* finished, not yet taken by a join */
    uint32_t unpromised; /* of those, not promised to a granted join_next */
};

#endif
