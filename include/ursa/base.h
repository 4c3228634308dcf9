/* ursa — basic types shared by every header: time, errors, call sites,
 * and the helpers of the hold and typed-wrapper macros.
 *
 * How every header documents a call: the comment starts with the call's
 * phase in the two-phase contract (docs/contract.md):
 *   Phase 1 (wait):   it may wait, with a deadline (URSA_NEVER, URSA_NOW
 *                     = try, or absolute), or it is a raw _start/_finish
 *   Phase 2 (hold):   it uses or discharges a hold (unlock, release,
 *                     permit send, borrow, cleanup)
 *   Phase 1 + 2:      both in one call (a channel send)
 *   Not a wait:       neither (init, destroy, handles, signals, queries)
 * then what it does, then one line per return code, the code first:
 *   0        what success means
 *   -EAGAIN  when it is returned
 * A call that returns a count or a value says so in the list (n >= 0 ...)
 * or, with no error to report, in the prose. */
#ifndef URSA_BASE_H
#define URSA_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#endif

/* The library is built with -fvisibility=hidden: only these are exported. */
#define URSA_API __attribute__((visibility("default")))

/* Every public header wraps its declarations in these, so that C++ sees C
 * linkage. They go after the header's #includes. */
#ifdef __cplusplus
#define URSA_EXTERN_C_BEGIN extern "C" {
#define URSA_EXTERN_C_END }
#else
#define URSA_EXTERN_C_BEGIN
#define URSA_EXTERN_C_END
#endif

/* The two spellings a public layout may use beyond plain C, so that C and
 * C++ see one layout (tests/cxx/ compares the size and alignment of every
 * public type as each language sees it; docs/abi.md says why):
 *   URSA_ATOMIC(T)   a field the library reads and writes atomically. C
 *                    sees _Atomic(T); C++ (which never touches a private
 *                    field) sees a plain T aligned as gcc and clang align
 *                    _Atomic(T): to its size (T is 1, 2, 4 or 8 bytes).
 *   URSA_ALIGNAS(T)  a field aligned as the type T. */
#ifdef __cplusplus
#define URSA_ATOMIC(T) alignas(sizeof(T)) T
#define URSA_ALIGNAS(T) alignas(T)
#else
#define URSA_ATOMIC(T) _Atomic(T)
#define URSA_ALIGNAS(T) _Alignas(T)
#endif

/* Results that must be looked at: a lock that failed holds nothing. */
#define URSA_NODISCARD __attribute__((warn_unused_result))

URSA_EXTERN_C_BEGIN

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC, or virtual time in
 * deterministic mode). Every waiting call takes an absolute deadline. */
typedef int64_t ursa_time_t;

/* Wait forever. */
#define URSA_NEVER INT64_MAX
/* Do not wait: the call becomes a try and fails with -EAGAIN. */
#define URSA_NOW ((ursa_time_t)0)

#define URSA_USEC(n) ((ursa_time_t)(n) * 1000)
#define URSA_MSEC(n) ((ursa_time_t)(n) * 1000000)
#define URSA_SEC(n) ((ursa_time_t)(n) * 1000000000)

/* Not a wait: the current time of the calling context: the runtime's
 * clock inside a task (virtual in deterministic mode), CLOCK_MONOTONIC
 * elsewhere. */
URSA_API ursa_time_t ursa_now(void);

/* Not a wait: ursa_now() + ns, saturating at URSA_NEVER; ns <= 0 gives
 * "already expired" (not URSA_NOW: an expired deadline yields
 * -ETIMEDOUT). */
URSA_API ursa_time_t ursa_deadline_in(ursa_time_t ns);

/* Not a wait: the name of an ursa error code (negative errno), e.g.
 * "ETIMEDOUT: deadline passed". Never NULL. */
URSA_API const char *ursa_strerror(int err);

/* Where a hold was acquired or a wait started, for leak and deadlock
 * reports. One static instance per call site. */
typedef struct ursa_site {
    const char *file;
    const char *func;
    int line;
} ursa_site_t;

#define URSA_SITE                                                           \
    (__extension__({                                                        \
        static const ursa_site_t ursa_site_ = {__FILE__, __func__, __LINE__}; \
        &ursa_site_;                                                        \
    }))

/* Declares a zeroed hold that is discharged at scope exit by
 * ursa_<kind>_cleanup (every hold type has one), e.g.
 * URSA_SCOPED(mutex_guard, g); URSA_SCOPED(sem_permit, p);
 * The same in C++ (g++ and clang++ honour the attribute, also while an
 * exception unwinds the scope). */
#define URSA_SCOPED(kind, name) \
    ursa_##kind##_t name __attribute__((cleanup(ursa_##kind##_cleanup))) = URSA__ZERO

/* An all-zero initializer: {0} in C, {} in C++ (where {0} draws
 * missing-field and missing-braces warnings). */
#ifdef __cplusplus
#define URSA__ZERO {}
#else
#define URSA__ZERO {0}
#endif

/* What the typed wrappers (URSA_MPSC_TYPED, URSA_ONESHOT_TYPED, ...)
 * define their functions with: static inline, and no warning when a
 * program leaves some of them unused. */
#define URSA__TYPED_FN static inline __attribute__((unused))

URSA_EXTERN_C_END

#endif
