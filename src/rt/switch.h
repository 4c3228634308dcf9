/* The machine context switch (src/rt/switch_*.S): saves the callee-saved
 * registers on one stack and resumes another; and the set-up of a new
 * stack. Not to be confused with the wait context (core/ctx.h: who is
 * calling and how it blocks). */
#ifndef URSA_RT_SWITCH_H
#define URSA_RT_SWITCH_H

#include <stdint.h>
#include <string.h>

/* Switches from the context saved into *save_sp to load_sp. x86_64 has two
 * forms (switch_x86_64.S): ursa__switch for task to task, where the
 * target resumes where we leave (a ret, predicted), ursa__switch_jmp to or
 * from the scheduler or a fresh stack. Elsewhere they are one. */
void ursa__switch(void **save_sp, void *load_sp);
#if defined(__x86_64__)
void ursa__switch_jmp(void **save_sp, void *load_sp);
#else
#define ursa__switch_jmp ursa__switch
#endif
void ursa__switch_entry(void);

/* Prepares a stack whose top is `top` so that switching to the returned sp
 * calls fn(arg) (which must never return). */
static inline void *ursa__switch_make(void *top, void (*fn)(void *), void *arg)
{
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* r15 r14 r13 r12 rbx rbp ret: after popping them rsp must be 16-aligned
     * at the entry stub's call. */
    uintptr_t *sp = (uintptr_t *)(t - 72);
    memset(sp, 0, 72);
    sp[3] = (uintptr_t)arg;             /* r12 */
    sp[4] = (uintptr_t)fn;              /* rbx */
    sp[6] = (uintptr_t)ursa__switch_entry; /* "return address" */
    return sp;
#elif defined(__aarch64__)
    uintptr_t *sp = (uintptr_t *)(t - 176);
    memset(sp, 0, 176);
    sp[0] = (uintptr_t)fn;              /* x19 */
    sp[1] = (uintptr_t)arg;             /* x20 */
    sp[11] = (uintptr_t)ursa__switch_entry; /* x30 */
    return sp;
#else
#error "ursa: no context switch for this architecture"
#endif
}

#endif
