/* ursa — private layout of an event (ursa/event.h). Public only so that it
 * can be embedded: every field is private, read and written by
 * src/sync/event.c. Nothing here is callable. */
#ifndef URSA_DETAIL_EVENT_H
#define URSA_DETAIL_EVENT_H

#include "../wait.h"

struct ursa_event {
    /* SET (bit 0), WAITERS (bit 1: the queue is not empty); never both. */
    URSA_ATOMIC(uint32_t) state;
    uint32_t mode;    /* ursa_event_mode_t */
    ursa__waitq_t q;  /* waiters, oldest first */
};

#endif
