/* Helpers shared by the mpsc and mpmc channel tests: an element destructor
 * that counts per id, a mixing function for stress checksums, and the hook
 * (close_hook.h runs code inside a close). Include after the channel's
 * header. */
#ifndef URSA_TEST_CHAN_CHECKS_H
#define URSA_TEST_CHAN_CHECKS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* An element destructor: elements are uint64_t ids; counts calls per id
 * (mod 256). */
static atomic_int dtor_count[256];
static __attribute__((unused)) void id_dtor(void *e)
{
    uint64_t id;
    memcpy(&id, e, sizeof id);
    atomic_fetch_add(&dtor_count[id % 256], 1);
}

/* A 64-bit finaliser: stress checksums sum mix(id << 40 | i), so a lost,
 * doubled or torn element shows. */
static __attribute__((unused)) uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* The checksum of every message of a stress run: producers 0..n-1 each
 * sent id << 40 | i for i < per. */
static __attribute__((unused)) uint64_t stress_want(uint64_t n, uint64_t per)
{
    uint64_t want = 0;
    for (uint64_t id = 0; id < n; id++)
        for (uint64_t i = 0; i < per; i++)
            want += mix(id << 40 | i);
    return want;
}

#endif
