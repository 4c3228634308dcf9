/* ursa — private layout of a barrier (ursa/barrier.h). Public only so that
 * it can be embedded: every field is private, read and written by
 * src/sync/barrier.c. Nothing here is callable. */
#ifndef URSA_DETAIL_BARRIER_H
#define URSA_DETAIL_BARRIER_H

#include "../wait.h"

struct ursa_barrier {
    ursa__waitq_t q;          /* this generation's waiting parties; its
                                 lock guards everything below */
    uint32_t parties;         /* N */
    uint32_t arrived;         /* parties queued in this generation */
    uint64_t generation;      /* generations tripped so far */
};

#endif
