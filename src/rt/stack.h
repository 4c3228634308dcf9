/* Task stacks: mmap'd, a PROT_NONE guard page below, pooled per worker. */
#ifndef URSA_RT_STACK_H
#define URSA_RT_STACK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ursa__stack {
    struct ursa__stack *next; /* pool link */
    void *map;                /* whole mapping, guard page included */
    size_t map_size;
    void *lo;   /* lowest usable byte (just above the guard page) */
    void *top;  /* one past the highest usable byte */
} ursa__stack_t;

typedef struct ursa__stack_pool {
    ursa__stack_t *free;
    unsigned count, max;
    size_t size; /* usable bytes */
    bool guard;
} ursa__stack_pool_t;

void ursa__stack_pool_init(ursa__stack_pool_t *p, size_t size, unsigned max, bool guard);
/* NULL on failure (errno set). */
ursa__stack_t *ursa__stack_get(ursa__stack_pool_t *p);
void ursa__stack_put(ursa__stack_pool_t *p, ursa__stack_t *s);
void ursa__stack_pool_drain(ursa__stack_pool_t *p);

#endif
