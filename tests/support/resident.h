/* Resident memory, for the tests of channels whose memory must follow
 * their messages rather than their bound (test_chan_bigcap.c,
 * test_mpsc_shrink.c, test_mpmc_shrink.c). */
#ifndef URSA_TEST_RESIDENT_H
#define URSA_TEST_RESIDENT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Resident bytes of the process. */
static __attribute__((unused)) size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    unsigned long size = 0, res = 0;
    assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Resident bytes of [p, p + n) (mincore; p need not be page aligned). */
static __attribute__((unused)) size_t resident_in(const void *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(pg - 1), e = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    size_t pages = (e - a) / pg, res = 0;
    unsigned char *v = malloc(pages);
    assert_non_null(v);
    assert_int_equal(mincore((void *)a, e - a, v), 0);
    for (size_t i = 0; i < pages; i++)
        res += v[i] & 1;
    free(v);
    return res * pg;
}

/* A big channel's test: the process's resident bytes before the channel
 * was made, and the bytes of its ring (the bound). */
typedef struct big_chan {
    size_t r0, bound;
} big_chan_t;

/* In a test (asserts): the resident bytes now, then a new channel `chan`
 * (mpsc or mpmc, its internal header included) of u64 and capacity cap
 * as *rx, *tx. A big_chan_t. */
#define BIG_CHAN_NEW(chan, rx, tx, cap)                                                   \
    ({                                                                                    \
        big_chan_t b_ = {rss_bytes(), 0};                                                 \
        assert_int_equal(ursa_##chan##_new(rx, tx, sizeof(uint64_t), cap, NULL), 0);      \
        b_.bound = (size_t)(cap) * (rx)->ch->stride;                                      \
        b_;                                                                               \
    })

#endif
