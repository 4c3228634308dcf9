/* calloc that fails the test (cmocka) when it returns NULL, for the
 * stress tests' per-round arrays. Include after support.h. */
#ifndef URSA_TEST_CHECKED_ALLOC_H
#define URSA_TEST_CHECKED_ALLOC_H

#include <stdlib.h>

static __attribute__((unused)) void *checked_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    assert_non_null(p);
    return p;
}

#endif
