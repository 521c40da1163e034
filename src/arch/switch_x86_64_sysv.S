/*
 * Context switch for x86-64, System V ABI.
 *
 * void *gev__switch(void **save_sp   (rdi),
 *                   void *load_sp    (rsi),
 *                   void *value      (rdx))   -> value of the switcher (rax)
 *
 * Saved frame, from the saved stack pointer upwards (64 bytes):
 *
 *   +--------+----------------------------------------------+
 *   | sp+0   | MXCSR (4 bytes), x87 control word (2 bytes)  |
 *   | sp+8   | r15                                          |
 *   | sp+16  | r14                                          |
 *   | sp+24  | r13                                          |
 *   | sp+32  | r12                                          |
 *   | sp+40  | rbx                                          |
 *   | sp+48  | rbp                                          |
 *   | sp+56  | return address                               |
 *   +--------+----------------------------------------------+
 *
 * These are the registers the ABI makes callee-saved, plus the SSE and x87
 * control state, which the ABI also treats as preserved across calls.
 * Everything else is caller-saved, so the C caller has already spilled it.
 */
	.text
	.globl	gev__switch
	.hidden	gev__switch
	.type	gev__switch, @function
	.p2align 4
gev__switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movl	(%rsp), %r8d
	movzwl	4(%rsp), %r9d
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	/* Loading MXCSR and the x87 control word is slow (serialising on many
	 * cores) and the control bits almost never differ between contexts:
	 * reload only when they do. MXCSR's low six bits are sticky exception
	 * flags that any inexact operation sets and the ABI does not preserve,
	 * so they are left out of the comparison. rax, rcx, r8 and r9 are
	 * caller-saved scratch. */
	movl	(%rsp), %ecx
	xorl	%r8d, %ecx
	testl	$0xffc0, %ecx
	jne	2f
1:	cmpw	4(%rsp), %r9w
	jne	3f
4:	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax
	ret
2:	ldmxcsr	(%rsp)
	jmp	1b
3:	fldcw	4(%rsp)
	jmp	4b
	.cfi_endproc
	.size	gev__switch, .-gev__switch

/*
 * void *gev__ctx_make(void *lo (rdi), void *hi (rsi))
 *
 * Builds the frame above at the 16-byte aligned top of [lo, hi), with zero
 * registers, default MXCSR (0x1f80) and x87 control word (0x037f), and the
 * trampoline as return address. The frame sits 16 bytes below the top so
 * that after its `ret` the stack is 16-byte aligned for the trampoline's
 * call, as the ABI requires at call sites.
 */
	.globl	gev__ctx_make
	.hidden	gev__ctx_make
	.type	gev__ctx_make, @function
	.p2align 4
gev__ctx_make:
	.cfi_startproc
	movq	%rsi, %rax
	andq	$-16, %rax
	subq	$80, %rax
	movl	$0x1f80, (%rax)
	movw	$0x037f, 4(%rax)
	movw	$0, 6(%rax)
	movq	$0, 8(%rax)
	movq	$0, 16(%rax)
	movq	$0, 24(%rax)
	movq	$0, 32(%rax)
	movq	$0, 40(%rax)
	movq	$0, 48(%rax)
	leaq	gev__ctx_trampoline(%rip), %rcx
	movq	%rcx, 56(%rax)
	movq	$0, 64(%rax)
	movq	$0, 72(%rax)
	ret
	.cfi_endproc
	.size	gev__ctx_make, .-gev__ctx_make

/* First code a new context runs: pass the switch value on to C. The return
 * address is undefined so debuggers and unwinders stop here. */
	.type	gev__ctx_trampoline, @function
	.p2align 4
gev__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%rax, %rdi
	xorl	%ebp, %ebp
	call	gev__coro_entry
	ud2
	.cfi_endproc
	.size	gev__ctx_trampoline, .-gev__ctx_trampoline

/*
 * void gev__stack_copy(void *dst (rdi), const void *src (rsi), size_t n (rdx))
 *
 * Copies live stack bytes of a shared-mode coroutine out of the shared
 * region or back into it. Not memcpy: in a program built with
 * AddressSanitizer memcpy is the sanitizer's, which checks both ranges and
 * finds the redzones of the program's stack frames in them, whether or not
 * libgev itself was built with the sanitizer. 64 bytes per step through
 * xmm0-xmm3 (caller-saved, SSE2 is baseline), then 8 at a time, then the
 * tail. Not `rep movsb`: between the shared region and a heap buffer it
 * measured twice as slow as this loop (bench/run switch, shared1k).
 */
	.globl	gev__stack_copy
	.hidden	gev__stack_copy
	.type	gev__stack_copy, @function
	.p2align 4
gev__stack_copy:
	.cfi_startproc
	cmpq	$64, %rdx
	jb	2f
1:	movdqu	(%rsi), %xmm0
	movdqu	16(%rsi), %xmm1
	movdqu	32(%rsi), %xmm2
	movdqu	48(%rsi), %xmm3
	movdqu	%xmm0, (%rdi)
	movdqu	%xmm1, 16(%rdi)
	movdqu	%xmm2, 32(%rdi)
	movdqu	%xmm3, 48(%rdi)
	addq	$64, %rsi
	addq	$64, %rdi
	subq	$64, %rdx
	cmpq	$64, %rdx
	jae	1b
2:	cmpq	$8, %rdx
	jb	4f
3:	movq	(%rsi), %rax
	movq	%rax, (%rdi)
	addq	$8, %rsi
	addq	$8, %rdi
	subq	$8, %rdx
	cmpq	$8, %rdx
	jae	3b
4:	testq	%rdx, %rdx
	jz	6f
5:	movb	(%rsi), %al
	movb	%al, (%rdi)
	incq	%rsi
	incq	%rdi
	decq	%rdx
	jnz	5b
6:	ret
	.cfi_endproc
	.size	gev__stack_copy, .-gev__stack_copy

	.section .note.GNU-stack,"",@progbits
