/* ursa — private layout of a lock's bias (src/core/bias.h): the rwlock's
 * reader bias and the mutex's owner bias. Public only so that locks can be
 * embedded: every field is private. Nothing here is callable. */
#ifndef URSA_DETAIL_BIAS_H
#define URSA_DETAIL_BIAS_H

#include <stdint.h>

#include "../base.h"

/* Where a revoke and the fast holders it waits for meet: a spinlock over
 * state's changes, and the state (IDLE / PENDING / ARMED). */
/* Drain states. */
enum { URSA__BIAS_IDLE, URSA__BIAS_PENDING, URSA__BIAS_ARMED };

typedef struct ursa__bias_drain {
    URSA_ATOMIC(uint32_t) lock;
    URSA_ATOMIC(uint32_t) state;
} ursa__bias_drain_t;

typedef struct ursa__bias {
    /* 0: off; else who may take the fast path (the rwlock: 1, any reader;
     * the mutex: its owner's context). */
    URSA_ATOMIC(uintptr_t) on;
    URSA_ATOMIC(uint32_t) lock; /* guards turning it on and off */
    URSA_ATOMIC(uint32_t) skip; /* slow locks before bias is tried again */
    uint32_t next_skip;
    int32_t slot;       /* the rwlock's column in the reader tables; -1: none */
    ursa_time_t since;  /* when bias was last turned on */
} ursa__bias_t;

#endif
