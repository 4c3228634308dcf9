/* Zeroed ring storage (zmem.h).
 *
 * Small rings come from the heap and are cleared: cheaper than a mapping,
 * and at most URSA__ZMEM_MAP_MIN bytes. Big ones are anonymous mappings:
 * the kernel gives zero pages on first touch, so nothing is written at
 * creation and resident memory follows the positions messages have used.
 * Not calloc for those: glibc's calloc maps big blocks and skips the
 * clearing, but its mmap threshold rises after a mapped block is freed
 * (up to 32 MiB), and then the next big block comes from the heap and is
 * cleared in full, every page made resident (1.1 ms for 16 MB).
 *
 * A mapping costs two system calls (~1.3 µs each here, more than the rest
 * of a channel's creation together), so a freed big ring is cleaned and
 * kept in a small cache for the next ring of the same size: only the part
 * that was written is cleaned, cleared by hand if small (its pages stay
 * resident, at most CLEAR_MAX per kept ring), else given back to the
 * kernel (MADV_DONTNEED: zero pages again, nothing resident). The cache
 * holds a few rings, each at most KEEP_MAX bytes of address space. */
#include "zmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/spin.h"

/* A mapping at least this big could get transparent huge pages (THP
 * "always"): the first message would make 2 MiB resident at once. */
#define HUGE_MIN ((size_t)2 * 1024 * 1024)
/* Written parts up to this size are cleared by hand when a ring is kept. */
#define CLEAR_MAX ((size_t)128 * 1024)
/* Rings kept, and the largest kept (address space, not resident). */
#define KEEP_SLOTS 4
#define KEEP_MAX ((size_t)1 << 30)

static _Atomic uint32_t keep_lock;
static struct {
    void *p;
    size_t len; /* 0: empty */
} kept[KEEP_SLOTS];

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) & ~(pg - 1);
}

void *ursa__zmem_alloc(size_t n)
{
    if (n < URSA__ZMEM_MAP_MIN) {
        void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
        if (p)
            memset(p, 0, n);
        return p;
    }
    size_t len = page_round(n);
    void *p = NULL;
    ursa__spin_lock(&keep_lock);
    for (int i = 0; i < KEEP_SLOTS; i++)
        if (kept[i].len == len) {
            p = kept[i].p;
            kept[i].len = 0;
            break;
        }
    ursa__spin_unlock(&keep_lock);
    if (p)
        return p;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Resident memory should follow the messages: small pages. Advice
     * only (a kernel without THP says EINVAL): its result does not matter. */
    if (len >= HUGE_MIN)
        (void)madvise(p, len, MADV_NOHUGEPAGE);
    return p;
}

/* Makes the first `used` bytes of a big ring zero again: true, or false
 * (the ring cannot be kept). */
static bool clean(void *p, size_t len, size_t used)
{
    if (used <= CLEAR_MAX) {
        memset(p, 0, used);
        return true;
    }
    used = page_round(used);
    return madvise(p, used < len ? used : len, MADV_DONTNEED) == 0;
}

void ursa__zmem_free(void *p, size_t n, size_t used)
{
    if (!p)
        return;
    if (n < URSA__ZMEM_MAP_MIN) {
        free(p);
        return;
    }
    size_t len = page_round(n);
    if (used > n)
        used = n;
    void *drop = p; /* what is unmapped in the end: ours, or one kept before */
    size_t drop_len = len;
    if (len <= KEEP_MAX && clean(p, len, used)) {
        ursa__spin_lock(&keep_lock);
        int slot = 0;
        for (int i = 0; i < KEEP_SLOTS; i++)
            if (!kept[i].len) {
                slot = i;
                break;
            }
        /* Full: the ring in slot 0 makes room (any will do). */
        drop = kept[slot].len ? kept[slot].p : NULL;
        drop_len = kept[slot].len;
        kept[slot].p = p;
        kept[slot].len = len;
        ursa__spin_unlock(&keep_lock);
    }
    if (drop)
        (void)munmap(drop, drop_len); /* a whole mapping of ours: cannot fail */
}

void ursa__zmem_discard(void *p, size_t used)
{
    if (used && madvise(p, page_round(used), MADV_DONTNEED) != 0)
        memset(p, 0, used); /* cannot happen on a private anonymous mapping of ours */
}
