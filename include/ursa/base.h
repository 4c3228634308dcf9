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

/* The library is built with -fvisibility=hidden: only these are exported. */
#define URSA_API __attribute__((visibility("default")))

/* Results that must be looked at: a lock that failed holds nothing. */
#define URSA_NODISCARD __attribute__((warn_unused_result))

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
 * URSA_SCOPED(mutex_guard, g); URSA_SCOPED(sem_permit, p); */
#define URSA_SCOPED(kind, name) \
    ursa_##kind##_t name __attribute__((cleanup(ursa_##kind##_cleanup))) = {0}

/* What the typed wrappers (URSA_MPSC_TYPED, URSA_ONESHOT_TYPED, ...)
 * define their functions with: static inline, and no warning when a
 * program leaves some of them unused. */
#define URSA__TYPED_FN static inline __attribute__((unused))

#endif
