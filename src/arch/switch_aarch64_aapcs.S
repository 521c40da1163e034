/*
 * Context switch for AArch64, AAPCS64.
 *
 * void *gev__switch(void **save_sp   (x0),
 *                   void *load_sp    (x1),
 *                   void *value      (x2))   -> value of the switcher (x0)
 *
 * Saved frame, from the saved stack pointer upwards (176 bytes, keeping sp
 * 16-byte aligned as the architecture requires):
 *
 *   +--------+----------------------------------------------+
 *   | sp+0   | x19, x20                                     |
 *   | sp+16  | x21, x22                                     |
 *   | sp+32  | x23, x24                                     |
 *   | sp+48  | x25, x26                                     |
 *   | sp+64  | x27, x28                                     |
 *   | sp+80  | x29 (frame pointer), x30 (link register)     |
 *   | sp+96  | d8, d9                                       |
 *   | sp+112 | d10, d11                                     |
 *   | sp+128 | d12, d13                                     |
 *   | sp+144 | d14, d15                                     |
 *   | sp+160 | FPCR, padding                                |
 *   +--------+----------------------------------------------+
 *
 * x19-x28, the frame pointer, the link register and the low halves of
 * v8-v15 are callee-saved under AAPCS64; FPCR holds rounding and trap
 * modes, which must follow the context.
 */
	.text
	.globl	gev__switch
	.hidden	gev__switch
	.type	gev__switch, %function
	.p2align 4
gev__switch:
	.cfi_startproc
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x10, fpcr
	str	x10, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	/* Writing FPCR can serialise the pipeline: only when it differs. x10
	 * still holds the FPCR of the context we left. */
	ldr	x9, [sp, #160]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x9
1:	add	sp, sp, #176
	mov	x0, x2
	ret
	.cfi_endproc
	.size	gev__switch, .-gev__switch

/*
 * void *gev__ctx_make(void *lo (x0), void *hi (x1))
 *
 * Builds the frame above at the 16-byte aligned top of [lo, hi): zero
 * registers and FPCR, the trampoline in x30, so the first switch "returns"
 * into it with sp back at the top.
 */
	.globl	gev__ctx_make
	.hidden	gev__ctx_make
	.type	gev__ctx_make, %function
	.p2align 4
gev__ctx_make:
	.cfi_startproc
	and	x1, x1, #~15
	sub	x0, x1, #176
	mov	x9, x0
2:	str	xzr, [x9], #8
	cmp	x9, x1
	b.lo	2b
	adr	x10, gev__ctx_trampoline
	str	x10, [x0, #88]
	ret
	.cfi_endproc
	.size	gev__ctx_make, .-gev__ctx_make

/* First code a new context runs: x0 already holds the switch value. The
 * link register is undefined so unwinders stop here. */
	.type	gev__ctx_trampoline, %function
	.p2align 4
gev__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x29, xzr
	bl	gev__coro_entry
	brk	#0
	.cfi_endproc
	.size	gev__ctx_trampoline, .-gev__ctx_trampoline

/*
 * void gev__stack_copy(void *dst (x0), const void *src (x1), size_t n (x2))
 *
 * Copies live stack bytes of a shared-mode coroutine out of the shared
 * region or back into it. Not memcpy: in a program built with
 * AddressSanitizer memcpy is the sanitizer's, which checks both ranges and
 * finds the redzones of the program's stack frames in them, whether or not
 * libgev itself was built with the sanitizer. 32 bytes per step through
 * q0/q1 (caller-saved), then the tail byte by byte; stack lengths are
 * multiples of 16, so the tail is normally empty.
 */
	.globl	gev__stack_copy
	.hidden	gev__stack_copy
	.type	gev__stack_copy, %function
	.p2align 4
gev__stack_copy:
	.cfi_startproc
1:	cmp	x2, #32
	b.lo	2f
	ldp	q0, q1, [x1], #32
	stp	q0, q1, [x0], #32
	sub	x2, x2, #32
	b	1b
2:	cbz	x2, 3f
	ldrb	w9, [x1], #1
	strb	w9, [x0], #1
	sub	x2, x2, #1
	b	2b
3:	ret
	.cfi_endproc
	.size	gev__stack_copy, .-gev__stack_copy

	.section .note.GNU-stack,"",%progbits
