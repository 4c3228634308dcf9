/* ursa — private layout of a notify (ursa/notify.h). Public only so that
 * it can be embedded: every field is private, read and written by
 * src/sync/notify.c. Nothing here is callable. */
#ifndef URSA_DETAIL_NOTIFY_H
#define URSA_DETAIL_NOTIFY_H

#include "../wait.h"

struct ursa_notify {
    /* Waiters not yet notified, oldest first. The queue's lock word holds
     * the state beside the lock: PERMIT (bit 0, one notification stored)
     * and WAITERS (bit 1, the queue is not empty), never both set. */
    ursa__waitq_t q;
};

#endif
