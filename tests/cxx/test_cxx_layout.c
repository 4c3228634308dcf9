/* ursa from C++: every public type has the same size and alignment (and
 * every field a program touches the same offset) in a C and a C++
 * translation unit of one program (layout_c.c, layout_cxx.cpp), and the
 * constructs a C++ program writes work (cxx_use.cpp). */
#include "support.h"

#include "cxx_use.h"
#include "layout_types.h"

static void test_cxx_layouts_match_between_c_and_cxx(void **state)
{
    (void)state;
    size_t nc, ncxx;
    const layout_row_t *c = layout_as_c(&nc), *cxx = layout_as_cxx(&ncxx);
    assert_int_equal(nc, ncxx);
    int differ = 0;
    for (size_t i = 0; i < nc; i++) {
        assert_string_equal(c[i].name, cxx[i].name);
        if (c[i].size != cxx[i].size || c[i].align != cxx[i].align) {
            print_message("%s: C %zu/%zu, C++ %zu/%zu (%s)\n", c[i].name, c[i].size,
                          c[i].align, cxx[i].size, cxx[i].align,
                          c[i].align ? "size/align" : "offset");
            differ++;
        }
    }
    assert_int_equal(differ, 0);
}

#define CXX_CHECK(name)                                                                            \
    static void test_##name(void **state)                                                          \
    {                                                                                              \
        (void)state;                                                                               \
        const char *msg = name();                                                                  \
        if (msg)                                                                                   \
            fail_msg("%s", msg);                                                                   \
    }
CXX_CHECK(cxx_scoped_releases)
CXX_CHECK(cxx_scoped_unwinds)
CXX_CHECK(cxx_raw_start_braced)
CXX_CHECK(cxx_typed_wrappers)
CXX_CHECK(cxx_once_cell_init)
CXX_CHECK(cxx_tasks)

static void test_cxx_version_agrees_between_c_and_cxx(void **state)
{
    (void)state;
    assert_int_equal(ursa_version(), URSA_VERSION);
    assert_int_equal(cxx_version(), URSA_VERSION);
    assert_int_equal(URSA_VERSION / 1000000u, URSA_VERSION_MAJOR);
    assert_int_equal(URSA_VERSION / 1000u % 1000u, URSA_VERSION_MINOR);
    assert_int_equal(URSA_VERSION % 1000u, URSA_VERSION_PATCH);
}

TEST_MAIN(cmocka_unit_test(test_cxx_layouts_match_between_c_and_cxx),
          cmocka_unit_test(test_cxx_scoped_releases), cmocka_unit_test(test_cxx_scoped_unwinds),
          cmocka_unit_test(test_cxx_raw_start_braced), cmocka_unit_test(test_cxx_typed_wrappers),
          cmocka_unit_test(test_cxx_once_cell_init), cmocka_unit_test(test_cxx_tasks),
          cmocka_unit_test(test_cxx_version_agrees_between_c_and_cxx))
