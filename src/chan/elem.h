/* Copying a channel's fixed-size elements in and out. */
#ifndef URSA_CHAN_ELEM_H
#define URSA_CHAN_ELEM_H

#include <stddef.h>
#include <string.h>

/* Element copy; the common u64 case becomes one move instead of a call. */
static inline void ursa__copy_elem(void *dst, const void *src, size_t n)
{
    if (n == 8)
        memcpy(dst, src, 8);
    else
        memcpy(dst, src, n);
}

#endif
