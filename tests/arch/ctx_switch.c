/* Standalone check of the assembly context switch (no liburing, no test framework)
 * so it can be cross-built and run under qemu-user for other
 * architectures: .ci/cross-aarch64. Prints "N passed, 0 failed". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/switch.h"

static void *main_sp, *co_sp;
static volatile long shared;
static double fp_probe = 1.5;

static void co_body(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        shared += i;
        /* callee-saved FP registers must survive switches too */
        fp_probe *= 1.0000001;
        ursa__switch(&co_sp, main_sp);
    }
    shared = -1;
    ursa__switch(&co_sp, main_sp);
    abort(); /* never resumed */
}

int main(void)
{
    int passed = 0, failed = 0;
    size_t size = 64 * 1024;
    char *stack = aligned_alloc(64, size);
    if (!stack)
        return 1;
    long n = 100000, expect = 0;
    co_sp = ursa__switch_make(stack + size, co_body, (void *)(intptr_t)n);
    register double keep = 3.25; /* lives in a callee-saved FP reg across calls */
    for (long i = 0; i < n; i++) {
        ursa__switch(&main_sp, co_sp);
        expect += i;
        if (shared != expect) {
            failed++;
            break;
        }
    }
    (shared == expect) ? passed++ : failed++;
    ursa__switch(&main_sp, co_sp);
    (shared == -1) ? passed++ : failed++;
    (keep == 3.25) ? passed++ : failed++;
    (fp_probe > 1.5) ? passed++ : failed++;
    /* stack alignment at entry: the ABI wants 16 bytes */
    printf("%d passed, %d failed\n", passed, failed);
    free(stack);
    return failed ? 1 : 0;
}
