/* Sanitizers and stackful tasks: which sanitizer this build has
 * (URSA__ASAN, URSA__TSAN), and the fiber hooks the worker calls around
 * each context switch so that ASan knows which stack is live and TSan which
 * fiber runs. */
#ifndef URSA_RT_SANITIZER_H
#define URSA_RT_SANITIZER_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define URSA__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URSA__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define URSA__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URSA__TSAN 1
#endif
#endif

#if defined(URSA__ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#if defined(URSA__TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

#endif
