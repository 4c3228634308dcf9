/* The C++ checks of cxx_use.cpp, called by test_cxx_layout.c: each
 * returns NULL, or what went wrong. */
#ifndef URSA_TEST_CXX_USE_H
#define URSA_TEST_CXX_USE_H

#ifdef __cplusplus
#define CXX_NOEXCEPT noexcept
extern "C" {
#else
#define CXX_NOEXCEPT
#endif

const char *cxx_scoped_releases(void) CXX_NOEXCEPT;
const char *cxx_scoped_unwinds(void) CXX_NOEXCEPT;
const char *cxx_raw_start_braced(void) CXX_NOEXCEPT;
const char *cxx_typed_wrappers(void) CXX_NOEXCEPT;
const char *cxx_once_cell_init(void) CXX_NOEXCEPT;
const char *cxx_tasks(void) CXX_NOEXCEPT;
/* ursa_version(), called from C++. */
unsigned cxx_version(void) CXX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
