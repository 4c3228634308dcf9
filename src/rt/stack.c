#include "stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sanitizer.h"

/* Linux 6.13's guard markers: a page that faults on access, kept in the
 * page tables instead of a VMA of its own (Debian 12's headers predate
 * it; the value is the kernel's, include/uapi/asm-generic/mman-common.h). */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Arenas start small (a runtime with a few tasks reserves little address
 * space) and double up to a cap, so a million stacks take ~1000 mmaps
 * (fewer: neighbouring arenas merge into one mapping). Untouched arena
 * pages cost address space only (MAP_NORESERVE). */
#define ARENA_MIN_BYTES ((size_t)1 << 20)
#define ARENA_MAX_BYTES ((size_t)64 << 20)

struct ursa__stack_arena {
    ursa__stack_arena_t *next;
    void *base;
    size_t len;
};

/* ---- guard pages ---- */

static _Atomic int guard_mode = -1; /* ursa__guard_mode_t, or -1 before the probe */

static ursa__guard_mode_t probe_guard_mode(void)
{
    const char *env = getenv("URSA_STACK_GUARD");
    if (env && strcmp(env, "mprotect") == 0)
        return URSA__GUARD_MPROTECT;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return URSA__GUARD_MPROTECT;
    int rc = madvise(m, page, MADV_GUARD_INSTALL);
    munmap(m, page);
    return rc == 0 ? URSA__GUARD_MADVISE : URSA__GUARD_MPROTECT;
}

ursa__guard_mode_t ursa__stack_guard_mode(void)
{
    /* relaxed: every thread that probes finds the same answer. */
    int m = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    if (m < 0) {
        m = (int)probe_guard_mode();
        atomic_store_explicit(&guard_mode, m, memory_order_relaxed);
    }
    return (ursa__guard_mode_t)m;
}

/* A marker where the kernel has them; a PROT_NONE page otherwise, and
 * also where the marker is refused (an mlock'ed mapping). 0 or -1. */
static int guard_install(void *page, size_t len)
{
    if (ursa__stack_guard_mode() == URSA__GUARD_MADVISE && madvise(page, len, MADV_GUARD_INSTALL) == 0)
        return 0;
    return mprotect(page, len, PROT_NONE);
}

/* ---- the pool ---- */

void ursa__stack_pool_init(ursa__stack_pool_t *p, size_t size, unsigned hot_max, bool guard)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    memset(p, 0, sizeof *p);
    p->hot_max = hot_max;
    p->size = (size + page - 1) & ~(page - 1);
    p->slot = p->size + (guard ? page : 0);
    p->guard = guard;
    p->arena_bytes = ARENA_MIN_BYTES;
}

/* Maps the next arena and makes its slots the fresh ones: 0 or -1. */
static int arena_new(ursa__stack_pool_t *p)
{
    size_t n = p->arena_bytes / p->slot;
    size_t len = (n ? n : 1) * p->slot;
    ursa__stack_arena_t *a = malloc(sizeof *a);
    if (!a)
        return -1;
    /* MAP_STACK also means no transparent huge pages (Linux >= 6.7), which
     * would make the one page a parked task touches 2 MiB. (An explicit
     * MADV_NOHUGEPAGE took milliseconds under load: it write-locks the
     * address space.) */
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        free(a);
        return -1;
    }
    a->base = base;
    a->len = len;
    a->next = p->arenas;
    p->arenas = a;
    p->fresh = base;
    p->fresh_end = (char *)base + len;
    if (p->arena_bytes < ARENA_MAX_BYTES)
        p->arena_bytes *= 2;
    return 0;
}

/* While idle, a hot stack's top word links it to the next one. */
static void **hot_link(void *top)
{
    return (void **)top - 1;
}

void *ursa__stack_get(ursa__stack_pool_t *p)
{
    void *top = p->hot;
    if (top) {
        p->hot = *hot_link(top);
        p->hot_count--;
        return top;
    }
    if (p->cold_len)
        return p->cold[--p->cold_len];
    if (p->fresh == p->fresh_end && arena_new(p) != 0)
        return NULL;
    char *slot = p->fresh;
    if (p->guard && guard_install(slot, p->slot - p->size) != 0)
        return NULL; /* errno set; the slot stays fresh for a later try */
    p->fresh += p->slot;
    return slot + p->slot;
}

void ursa__stack_put(ursa__stack_pool_t *p, void *top)
{
    if (p->hot_count < p->hot_max) {
        *hot_link(top) = p->hot;
        p->hot = top;
        p->hot_count++;
        return;
    }
    /* Beyond the cache: its pages go back to the kernel (the guard
     * marker or PROT_NONE page below stays). The next use faults in
     * zeroed pages, only as deep as it goes. */
    (void)madvise(ursa__stack_lo(p, top), p->size, MADV_DONTNEED);
    if (p->cold_len == p->cold_cap) {
        size_t cap = p->cold_cap ? p->cold_cap * 2 : 64;
        void **c = realloc(p->cold, cap * sizeof *c);
        if (!c)
            return; /* forgotten: its address space comes back with the arena */
        p->cold = c;
        p->cold_cap = cap;
    }
    p->cold[p->cold_len++] = top;
}

void ursa__stack_pool_fini(ursa__stack_pool_t *p)
{
    while (p->arenas) {
        ursa__stack_arena_t *a = p->arenas;
        p->arenas = a->next;
#if defined(URSA__ASAN)
        /* A task that ended left the redzones of its first frame poisoned
         * (that frame never returns); memory mapped later at this address
         * (a ring, another arena) would inherit them. */
        __asan_unpoison_memory_region(a->base, a->len);
#endif
        munmap(a->base, a->len);
        free(a);
    }
    free(p->cold);
    p->cold = NULL;
    p->hot = NULL;
    p->hot_count = 0;
    p->cold_len = p->cold_cap = 0;
    p->fresh = p->fresh_end = NULL;
}
