/* ursa — private layout of a notify (ursa/notify.h). Public only so that
 * it can be embedded: every field is private, read and written by
 * src/sync/notify.c. Nothing here is callable. */
#ifndef URSA_DETAIL_NOTIFY_H
#define URSA_DETAIL_NOTIFY_H

#include "../wait.h"

struct ursa_notify {
    /* PERMIT (bit 0): one notification stored. WAITERS (bit 1): the queue
     * is not empty. Both never set at once. LOCKED (bit 2): guards the
     * queue. */
    URSA_ATOMIC(uint32_t) state;
    ursa_wait_t *head, *tail;  /* waiters not yet notified, oldest first */
};

#endif
