/* Zeroed storage for the channels' slot rings (mpsc, mpmc, broadcast),
 * whose all-zero state means "empty": creating a channel writes nothing
 * per slot, so it costs about the same whatever its capacity, and a page
 * of a big ring becomes resident only when a message first reaches it.
 * zmem.c says how. */
#ifndef URSA_CHAN_ZMEM_H
#define URSA_CHAN_ZMEM_H

#include <stddef.h>

/* From this size on a ring is a mapping of its own (zero pages on first
 * touch); below it, heap memory cleared at creation. */
#define URSA__ZMEM_MAP_MIN ((size_t)64 * 1024)

/* n zeroed bytes, 64-byte aligned (a cache line), or NULL. */
void *ursa__zmem_alloc(size_t n);
/* Frees what ursa__zmem_alloc(n) gave; only its first `used` bytes may
 * have been written (a hint that keeps the free from touching the rest;
 * more than n means all). */
void ursa__zmem_free(void *p, size_t n, size_t used);

/* Makes the first `used` bytes of a mapped block from ursa__zmem_alloc (n
 * >= URSA__ZMEM_MAP_MIN) zero again and not resident (MADV_DONTNEED), in
 * place: the block stays the caller's, and a reader racing with this sees
 * the old bytes or zeros. */
void ursa__zmem_discard(void *p, size_t used);

#endif
