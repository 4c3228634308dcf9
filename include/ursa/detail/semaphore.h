/* ursa — private layout of a semaphore (ursa/semaphore.h). Public only so
 * that it can be embedded: every field is private, read and written by
 * src/sync/semaphore.c. Nothing here is callable. */
#ifndef URSA_DETAIL_SEMAPHORE_H
#define URSA_DETAIL_SEMAPHORE_H

#include "sema.h"

struct ursa_sem {
    ursa__sema_t sema;
};

#endif
