/* Stackful context switch for x86_64 (System V).
 *
 * void ursa__switch(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers, stores rsp in *save_sp, loads
 *   load_sp, pops the target's registers and returns on the target's
 *   stack. For a switch from one task to another that was switched out
 *   the same way: both left from the same call site (a wait's
 *   switch_out), so the top of the return-stack buffer is the very address
 *   the target resumes at, and the ret and every return after it are
 *   predicted.
 * void ursa__switch_jmp(void **save_sp, void *load_sp)
 *   The same, ending in pop + jmp: for a switch to or from the scheduler,
 *   or to a task's first frame, where a ret would always mispredict (the
 *   sites differ). Measured on a 2 vCPU EPYC, CPU time of alternated
 *   runs: pop + jmp everywhere left the call's entry on the buffer and
 *   each later return of a task resumed directly mispredicted
 *   (mpsc_pingpong_roundtrip -27%, yield_switch 18 -> 6 ns with ret);
 *   ret everywhere cost spawn_join ~7%.
 *   Either resumes a context saved by either.
 *   MXCSR and the x87 control word are not saved: ursa never changes them
 *   and tasks must not leave them changed across a switch.
 *
 * ursa__switch_entry: the first "return address" of a new context; calls
 *   rbx(r12) on the fresh stack and never returns. */
#if defined(__x86_64__)
    /* Both forms: save our callee-saved registers on our stack and its
     * top in *save_sp (rdi), then take load_sp (rsi) and its registers. */
    .macro URSA_SWAP_STACKS
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    .endm

    .text
    .globl ursa__switch
    .hidden ursa__switch
    .type ursa__switch, @function
    .p2align 4
ursa__switch:
    .cfi_startproc
    URSA_SWAP_STACKS
    retq
    .cfi_endproc
    .size ursa__switch, .-ursa__switch

    .globl ursa__switch_jmp
    .hidden ursa__switch_jmp
    .type ursa__switch_jmp, @function
    .p2align 4
ursa__switch_jmp:
    .cfi_startproc
    URSA_SWAP_STACKS
    popq %rcx
    jmpq *%rcx
    .cfi_endproc
    .size ursa__switch_jmp, .-ursa__switch_jmp

    .globl ursa__switch_entry
    .hidden ursa__switch_entry
    .type ursa__switch_entry, @function
    .p2align 4
ursa__switch_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    xorl %ebp, %ebp
    andq $-16, %rsp
    callq *%rbx
    ud2
    .cfi_endproc
    .size ursa__switch_entry, .-ursa__switch_entry
#endif
    .section .note.GNU-stack,"",@progbits
