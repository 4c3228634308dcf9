/* The slot of a position in a bounded channel's ring (chan/ring.h): a mask
 * for a power-of-two capacity, Barrett reduction for the others. Checked
 * against pos % cap for capacities near powers of two, odd and prime ones,
 * 1 and huge ones, at positions around every lap boundary, near 2^64 and
 * drawn at random. */
#include "support.h"

#include <stdint.h>

#include "chan/ring.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_random(void)
{
    rng ^= rng << 13; /* xorshift64 */
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check_cap(uint64_t cap)
{
    ursa__ring_div_t d = ursa__ring_div(cap);
    uint64_t edges[] = {0,
                        1,
                        cap - 1,
                        cap,
                        cap + 1,
                        2 * cap - 1,
                        2 * cap,
                        1000 * cap + 7,
                        UINT64_MAX,
                        UINT64_MAX - 1,
                        UINT64_MAX - cap,
                        UINT64_MAX / cap * cap,
                        UINT64_MAX / cap * cap - 1,
                        (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        assert_int_equal(ursa__ring_index(edges[i], cap, d), edges[i] % cap);
    for (int i = 0; i < 2000; i++) {
        uint64_t pos = next_random() >> (next_random() % 64);
        assert_int_equal(ursa__ring_index(pos, cap, d), pos % cap);
    }
}

static void test_index_is_the_remainder_for_every_kind_of_capacity(void **state)
{
    (void)state;
    uint64_t caps[] = {1,
                       2,
                       3,
                       5,
                       7,
                       63,
                       64,
                       65,
                       255,
                       256,
                       1000,
                       1023,
                       1024,
                       1025,
                       65537,
                       999983,
                       1000000,
                       1048575,
                       1048576,
                       1048577,
                       (uint64_t)1 << 32,
                       ((uint64_t)1 << 32) + 1,
                       ((uint64_t)1 << 40) - 3};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        check_cap(caps[i]);
    for (int i = 0; i < 500; i++)
        check_cap(next_random() % ((uint64_t)1 << 40) + 1);
}

static void test_a_power_of_two_capacity_uses_its_mask(void **state)
{
    (void)state;
    assert_int_equal(ursa__ring_div(1024).mask, 1023);
    assert_int_equal(ursa__ring_div(1).mask, 0);
    assert_int_equal(ursa__ring_div(1000).mask, URSA__RING_NO_MASK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_is_the_remainder_for_every_kind_of_capacity),
        cmocka_unit_test(test_a_power_of_two_capacity_uses_its_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
