/* ursa — private layout of a cancellation token (ursa/token.h). Public
 * only so that it can be embedded: every field is private, read and
 * written by src/rt/token.c. Nothing here is callable. */
#ifndef URSA_DETAIL_TOKEN_H
#define URSA_DETAIL_TOKEN_H

#include "../wait.h"

struct ursa_task;

struct ursa_token {
    /* Waiters for the cancel. Its lock word's owner bit 0 is "cancelled";
     * its lock also guards `tasks`. */
    ursa__waitq_t q;
    /* The root's lock guards the tree links of every token of its tree;
     * a non-root's is unused. */
    URSA_ATOMIC(uint32_t) tree_lock;
    uint32_t reserved_;
    struct ursa_token *root, *parent;
    struct ursa_token *first_child, *prev_sibling, *next_sibling;
    struct ursa_task *tasks; /* bound tasks, linked through the tasks */
};

#endif
