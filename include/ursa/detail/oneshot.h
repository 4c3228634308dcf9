/* ursa — private layout of a oneshot channel (ursa/oneshot.h). Public only
 * so that it can be embedded: every field is private, read and written by
 * src/chan/oneshot.c. Nothing here is callable. */
#ifndef URSA_DETAIL_ONESHOT_H
#define URSA_DETAIL_ONESHOT_H

#include <stddef.h>

#include "../wait.h"

/* URSA_ONESHOT_INLINE (ursa/oneshot.h). */
#define URSA__ONESHOT_INLINE 64

struct ursa_oneshot {
    URSA_ATOMIC(uint32_t) state; /* bits in src/chan/oneshot.c */
    URSA_ATOMIC(uint32_t) rxf;   /* receiver-end flags */
    URSA_ATOMIC(uint32_t) lock;  /* guards the two wait slots */
    ursa__waiter_t *rx_w;   /* a queued recv wait */
    ursa__waiter_t *tx_w;   /* a queued closed() wait */
    size_t elem_size;
    void *ext; /* caller storage, or NULL for inline */
    URSA_ALIGNAS(max_align_t) unsigned char inline_buf[URSA__ONESHOT_INLINE];
};

#endif
