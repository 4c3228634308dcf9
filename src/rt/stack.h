/* Task stacks, carved from shared arenas (many stacks per mmap, so a
 * million of them stay far below vm.max_map_count), each with a guard page
 * below it, pooled per worker.
 *
 * A stack is named by its top (one past its highest usable byte; its
 * lowest is top - pool->size). The guard is a MADV_GUARD_INSTALL marker
 * (Linux >= 6.13: no mapping of its own) or, where the kernel lacks it, a
 * PROT_NONE page (two mappings per stack). Idle stacks beyond the cache
 * give their memory back (MADV_DONTNEED; the guard stays) and are reused
 * before new ones are carved; arenas are unmapped with the runtime. */
#ifndef URSA_RT_STACK_H
#define URSA_RT_STACK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ursa__stack_arena ursa__stack_arena_t;

typedef struct ursa__stack_pool {
    void *hot; /* idle stacks whose memory is kept, linked through their top word */
    unsigned hot_count, hot_max;
    void **cold; /* idle stacks whose memory went back */
    size_t cold_len, cold_cap;
    char *fresh, *fresh_end;     /* the newest arena's slots never handed out */
    ursa__stack_arena_t *arenas; /* this pool's mappings */
    size_t arena_bytes;          /* size of the next arena */
    size_t size;                 /* usable bytes per stack (whole pages) */
    size_t slot;                 /* size, plus the guard page below it */
    bool guard;
} ursa__stack_pool_t;

/* How guard pages are made in this process (probed once; the environment
 * variable URSA_STACK_GUARD=mprotect forces the fallback). */
typedef enum { URSA__GUARD_MADVISE, URSA__GUARD_MPROTECT } ursa__guard_mode_t;
ursa__guard_mode_t ursa__stack_guard_mode(void);

void ursa__stack_pool_init(ursa__stack_pool_t *p, size_t size, unsigned hot_max, bool guard);
/* A stack's top, or NULL (errno set: no address space, or no mapping left
 * for a PROT_NONE guard). */
void *ursa__stack_get(ursa__stack_pool_t *p);
/* Whether ursa__stack_get has a stack without mapping a new arena (a
 * slow path: malloc, mmap, as deep as the libc makes them). */
static inline bool ursa__stack_at_hand(const ursa__stack_pool_t *p)
{
    return p->hot || p->cold_len || p->fresh != p->fresh_end;
}
/* Gives back a stack of any pool of the same runtime (same size). */
void ursa__stack_put(ursa__stack_pool_t *p, void *top);
/* Unmaps the pool's arenas: every stack carved from them must be idle
 * (the runtime is going away), whichever pool holds it now. */
void ursa__stack_pool_fini(ursa__stack_pool_t *p);

static inline void *ursa__stack_lo(const ursa__stack_pool_t *p, void *top)
{
    return (char *)top - p->size;
}

#endif
