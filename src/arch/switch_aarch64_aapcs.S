/*
 * Context switch for AArch64, AAPCS64.
 *
 * void *gev__switch(void **save_sp   (x0),
 *                   void *load_sp    (x1),
 *                   void *value      (x2))   -> value of the switcher (x0)
 *
 * Saved frame, from the saved stack pointer upwards (GEV__FRAME_SIZE, 176
 * bytes, keeping sp 16-byte aligned as the architecture requires; the
 * offsets are the GEV__FRAME_* constants of switch.h, which the gdb
 * extension (tools/gdb/gev.py, through src/coro/thread.c) and the
 * parked-stack unwinder below read too: change the frame there):
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
 *
 * The CFI is exact at every instruction (a profiler's sample or the
 * blocking monitor's signal may land anywhere): it describes the frame
 * being saved until sp is replaced, then the frame being restored, which
 * has the same layout.
 */
#include "arch/switch.h"

	.text
	.globl	gev__switch
	.hidden	gev__switch
	.type	gev__switch, %function
	.p2align 4
gev__switch:
	.cfi_startproc
	sub	sp, sp, #GEV__FRAME_SIZE
	.cfi_adjust_cfa_offset GEV__FRAME_SIZE
	stp	x19, x20, [sp, #0]
	.cfi_rel_offset x19, 0
	.cfi_rel_offset x20, 8
	stp	x21, x22, [sp, #16]
	.cfi_rel_offset x21, 16
	.cfi_rel_offset x22, 24
	stp	x23, x24, [sp, #32]
	.cfi_rel_offset x23, 32
	.cfi_rel_offset x24, 40
	stp	x25, x26, [sp, #48]
	.cfi_rel_offset x25, 48
	.cfi_rel_offset x26, 56
	stp	x27, x28, [sp, #64]
	.cfi_rel_offset x27, 64
	.cfi_rel_offset x28, 72
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	.cfi_rel_offset d8, 96
	.cfi_rel_offset d9, 104
	stp	d10, d11, [sp, #112]
	.cfi_rel_offset d10, 112
	.cfi_rel_offset d11, 120
	stp	d12, d13, [sp, #128]
	.cfi_rel_offset d12, 128
	.cfi_rel_offset d13, 136
	stp	d14, d15, [sp, #144]
	.cfi_rel_offset d14, 144
	.cfi_rel_offset d15, 152
	mrs	x10, fpcr
	str	x10, [sp, #GEV__FRAME_FPCR]
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
	ldr	x9, [sp, #GEV__FRAME_FPCR]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x9
1:	add	sp, sp, #GEV__FRAME_SIZE
	.cfi_adjust_cfa_offset -GEV__FRAME_SIZE
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore x29
	.cfi_restore x30
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15
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
	sub	x0, x1, #GEV__FRAME_SIZE
	mov	x9, x0
2:	str	xzr, [x9], #8
	cmp	x9, x1
	b.lo	2b
	adr	x10, gev__ctx_trampoline_start
	str	x10, [x0, #GEV__FRAME_PC]
	ret
	.cfi_endproc
	.size	gev__ctx_make, .-gev__ctx_make

/* First code a new context runs: x0 already holds the switch value. The
 * link register is undefined so unwinders stop here. A fresh context's
 * frame "returns" to gev__ctx_trampoline_start, after a nop: unwinders
 * look a return address up just before it, which must still be inside
 * this function and its CFI. */
	.type	gev__ctx_trampoline, %function
	.p2align 4
gev__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	nop
gev__ctx_trampoline_start:
	mov	x29, xzr
	bl	gev__coro_entry
	brk	#0
	.cfi_endproc
	.size	gev__ctx_trampoline, .-gev__ctx_trampoline

/*
 * void gev__call_parked(const void *saved_sp (x0), void *stack_top (x1),
 *                       void (*fn)(void *) (x2), void *arg (x3))
 *
 * Calls fn(arg) on the stack at stack_top. While fn runs, the CFI of the
 * call site describes the suspended context at saved_sp (kept in x19,
 * which fn preserves) as fn's caller: its canonical frame address is
 * saved_sp + GEV__FRAME_SIZE, its return address (x30) and callee-saved
 * registers are where the saved frame holds them. Neither the parked
 * stack nor its frame is written.
 */
	.globl	gev__call_parked
	.hidden	gev__call_parked
	.type	gev__call_parked, %function
	.p2align 4
gev__call_parked:
	.cfi_startproc
	stp	x29, x30, [sp, #-32]!
	.cfi_adjust_cfa_offset 32
	.cfi_rel_offset x29, 0
	.cfi_rel_offset x30, 8
	str	x19, [sp, #16]
	.cfi_rel_offset x19, 16
	mov	x29, sp
	.cfi_def_cfa_register x29
	mov	x19, x0
	mov	sp, x1
	.cfi_remember_state
	.cfi_def_cfa x19, GEV__FRAME_SIZE
	.cfi_offset x30, GEV__FRAME_PC-GEV__FRAME_SIZE
	.cfi_offset x29, GEV__FRAME_X29-GEV__FRAME_SIZE
	.cfi_offset x19, 0-GEV__FRAME_SIZE
	.cfi_offset x20, 8-GEV__FRAME_SIZE
	.cfi_offset x21, 16-GEV__FRAME_SIZE
	.cfi_offset x22, 24-GEV__FRAME_SIZE
	.cfi_offset x23, 32-GEV__FRAME_SIZE
	.cfi_offset x24, 40-GEV__FRAME_SIZE
	.cfi_offset x25, 48-GEV__FRAME_SIZE
	.cfi_offset x26, 56-GEV__FRAME_SIZE
	.cfi_offset x27, 64-GEV__FRAME_SIZE
	.cfi_offset x28, 72-GEV__FRAME_SIZE
	mov	x0, x3
	blr	x2
	.cfi_restore_state
	mov	sp, x29
	.cfi_def_cfa_register sp
	ldr	x19, [sp, #16]
	.cfi_restore x19
	ldp	x29, x30, [sp], #32
	.cfi_adjust_cfa_offset -32
	.cfi_restore x29
	.cfi_restore x30
	ret
	.cfi_endproc
	.size	gev__call_parked, .-gev__call_parked

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
