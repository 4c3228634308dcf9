#include "stack.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void ursa__stack_pool_init(ursa__stack_pool_t *p, size_t size, unsigned max, bool guard)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p->free = NULL;
    p->count = 0;
    p->max = max;
    p->size = (size + page - 1) & ~(page - 1);
    p->guard = guard;
}

ursa__stack_t *ursa__stack_get(ursa__stack_pool_t *p)
{
    ursa__stack_t *s = p->free;
    if (s) {
        p->free = s->next;
        p->count--;
        return s;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t guard = p->guard ? page : 0;
    size_t len = p->size + guard;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    if (guard && mprotect(map, guard, PROT_NONE) != 0) {
        int e = errno;
        munmap(map, len);
        errno = e;
        return NULL;
    }
    /* The descriptor lives at the very top of its own stack. */
    char *top = (char *)map + len;
    s = (ursa__stack_t *)(top - sizeof(ursa__stack_t));
    s->next = NULL;
    s->map = map;
    s->map_size = len;
    s->lo = (char *)map + guard;
    s->top = (void *)((uintptr_t)s & ~(uintptr_t)63);
    return s;
}

void ursa__stack_put(ursa__stack_pool_t *p, ursa__stack_t *s)
{
    if (p->count >= p->max) {
        munmap(s->map, s->map_size);
        return;
    }
    s->next = p->free;
    p->free = s;
    p->count++;
}

void ursa__stack_pool_drain(ursa__stack_pool_t *p)
{
    while (p->free) {
        ursa__stack_t *s = p->free;
        p->free = s->next;
        munmap(s->map, s->map_size);
    }
    p->count = 0;
}
