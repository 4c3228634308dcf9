/* Stackful context switch for aarch64 (AAPCS64).
 *
 * void ursa__switch(void **save_sp, void *load_sp)
 *   Saves x19-x30 and d8-d15 below sp, stores sp in *save_sp, loads
 *   load_sp, restores the target's registers and branches to its x30.
 *
 * ursa__switch_entry: where a new context starts; calls x19(x20). */
#if defined(__aarch64__)
    .text
    .globl ursa__switch
    .hidden ursa__switch
    .type ursa__switch, %function
    .p2align 4
ursa__switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size ursa__switch, .-ursa__switch

    .globl ursa__switch_entry
    .hidden ursa__switch_entry
    .type ursa__switch_entry, %function
    .p2align 4
ursa__switch_entry:
    mov x0, x20
    mov x29, #0
    mov x30, #0
    blr x19
    brk #0
    .size ursa__switch_entry, .-ursa__switch_entry
#endif
    .section .note.GNU-stack,"",%progbits
