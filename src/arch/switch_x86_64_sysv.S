/*
 * Context switch for x86-64, System V ABI.
 *
 * void *gev__switch(void **save_sp   (rdi),
 *                   void *load_sp    (rsi),
 *                   void *value      (rdx))   -> value of the switcher (rax)
 *
 * int gev__switch_direct(void **save_sp (rdi), void *load_sp (rsi),
 *                        void *value (rdx), void **result (rcx))
 *
 * Saved frame, from the saved stack pointer upwards (GEV__FRAME_SIZE, 64
 * bytes), the same for every suspended context; the offsets are the
 * GEV__FRAME_* constants of switch.h, which the gdb extension
 * (tools/gdb/gev.py, through src/coro/thread.c) and the parked-stack
 * unwinder below read too: change the frame there:
 *
 *   +--------+----------------------------------------------+
 *   | sp+0   | MXCSR (4 bytes), x87 control word (2 bytes)  |
 *   | sp+8   | r15                                          |
 *   | sp+16  | r14                                          |
 *   | sp+24  | r13                                          |
 *   | sp+32  | r12                                          |
 *   | sp+40  | rbx                                          |
 *   | sp+48  | rbp                                          |
 *   | sp+56  | resume address (GEV__FRAME_PC)               |
 *   +--------+----------------------------------------------+
 *
 * These are the registers the ABI makes callee-saved, plus the SSE and x87
 * control state, which the ABI also treats as preserved across calls.
 * Everything else is caller-saved, so the C caller has already spilled it.
 *
 * The resume address is where the context goes on: for gev__switch, its
 * return address into the C code that called it. gev__switch_direct is
 * tail-called from C (the direct switch of coro.c), so the address above
 * its frame is the return address of whoever called the C function; it
 * keeps two more words there and resumes through .Lresume_direct:
 *
 *   | sp+56  | .Lresume_direct                              |
 *   | sp+64  | result (where the value received is stored)  |
 *   | sp+72  | return address into the caller's caller      |
 *
 * .Lresume_direct stores the value received in *result and returns 0 to
 * that caller, or, when the switcher left work behind (gev__switch sets
 * r11: a dead coroutine's stack to release, an error thrown in), hands
 * both to gev__switch_resumed in C. Its CFI describes those two words, so
 * a suspended context unwinds the same way whichever entry suspended it:
 * resume address, then the frame at sp+64.
 *
 * The CFI is exact at every instruction: a profiler's sample or the
 * blocking monitor's signal may land anywhere in the switch. Until the
 * stack pointer is replaced it describes the frame being saved; from then
 * on the frame being restored, which has the same layout, so an unwinder
 * stopped there walks the stack of the context being resumed.
 *
 * Return prediction. The CPU predicts `ret` from its stack of return
 * addresses, which after a switch holds the other context's calls: a `ret`
 * into a context that suspended at another place is mispredicted (tens of
 * cycles, most of a switch). So the restore compares the address it goes
 * to with the switcher's own return address (r10, the top of that stack):
 * when they are equal (both sides switched from the same place) it returns
 * with `ret`, which is then predicted and keeps the stack in step; when
 * they differ it jumps, and the indirect-branch predictor, which learns
 * from the path taken, predicts it. The jump leaves one stale entry on the
 * return stack; the contexts' later returns would have found the other
 * context's entries there anyway. (These jumps and the stack swap itself
 * are incompatible with CET shadow stacks; the files are not marked for
 * them, so the loader never enables them for a process with libgev.)
 */

#include "arch/switch.h"

/* Saves the running context's frame, switches stacks, restores the other
 * context's frame and goes to its resume address. On entry: rdi save_sp,
 * rsi load_sp, rdx value, r10 the switcher's return address, r11 whether
 * the switcher leaves work behind; the CFA is rsp+8 with the return address
 * at CFA-8. On leaving: rax value, r10 and r11 unchanged. */
	.macro	SWITCH_STACKS
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	GEV__FRAME_CSR(%rsp)
	fnstcw	GEV__FRAME_CSR+4(%rsp)
	movl	GEV__FRAME_CSR(%rsp), %r8d
	movzwl	GEV__FRAME_CSR+4(%rsp), %r9d
	movq	%rsp, (%rdi)
	/* From here on rsp points to the other context's frame, which has the
	 * same layout: the CFI above describes it as well. */
	movq	%rsi, %rsp
	.cfi_remember_state
	/* Loading MXCSR and the x87 control word is slow (serialising on many
	 * cores) and the control bits almost never differ between contexts:
	 * reload only when they do. MXCSR's low six bits are sticky exception
	 * flags that any inexact operation sets and the ABI does not preserve,
	 * so they are left out of the comparison. rax, rcx, r8 and r9 are
	 * caller-saved scratch. */
	movl	GEV__FRAME_CSR(%rsp), %ecx
	xorl	%r8d, %ecx
	testl	$0xffc0, %ecx
	jne	7f
6:	cmpw	GEV__FRAME_CSR+4(%rsp), %r9w
	jne	8f
9:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbp
	movq	%rdx, %rax
	RESUME
	/* Out of line: reload what differs, then go on restoring, with the
	 * CFI state of the jumps here. */
	.cfi_restore_state
7:	ldmxcsr	GEV__FRAME_CSR(%rsp)
	jmp	6b
8:	fldcw	GEV__FRAME_CSR+4(%rsp)
	jmp	9b
	.endm

/* Goes to the address on top of the stack (CFA rsp+8): with `ret` when it
 * is the switcher's own return address (r10), else with a jump. */
	.macro	RESUME
	cmpq	(%rsp), %r10
	jne	5f
	ret
5:	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_register rip, rcx
	jmp	*%rcx
	.endm

	.text
	.globl	gev__switch
	.hidden	gev__switch
	.type	gev__switch, @function
	.p2align 4
gev__switch:
	.cfi_startproc
	movq	(%rsp), %r10
	movl	$1, %r11d
	SWITCH_STACKS
	.cfi_endproc
	.size	gev__switch, .-gev__switch

	.globl	gev__switch_direct
	.hidden	gev__switch_direct
	.type	gev__switch_direct, @function
	.p2align 4
gev__switch_direct:
	.cfi_startproc
	movq	(%rsp), %r10
	pushq	%rcx
	.cfi_adjust_cfa_offset 8
	leaq	.Lresume_direct(%rip), %rax
	pushq	%rax
	/* From here the frame's resume address is .Lresume_direct, whose own
	 * CFI describes the two words above it. */
	.cfi_def_cfa_offset 8
	xorl	%r11d, %r11d
	SWITCH_STACKS
	.cfi_endproc
	.size	gev__switch_direct, .-gev__switch_direct

/* Where a context suspended by gev__switch_direct resumes: rax holds the
 * value, the stack the result pointer and the return address. The nop
 * keeps the label inside this CFI region for unwinders that look up the
 * address before a return address. */
	.type	gev__switch_resume_direct, @function
	.p2align 4
gev__switch_resume_direct:
	.cfi_startproc
	.cfi_def_cfa_offset 16
	nop
.Lresume_direct:
	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_remember_state
	testl	%r11d, %r11d
	jne	1f
	testq	%rcx, %rcx
	je	2f
	movq	%rax, (%rcx)
2:	xorl	%eax, %eax
	RESUME
	.cfi_restore_state
1:	movq	%rax, %rdi
	movq	%rcx, %rsi
	jmp	gev__switch_resumed
	.cfi_endproc
	.size	gev__switch_resume_direct, .-gev__switch_resume_direct

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
	subq	$GEV__FRAME_SIZE+16, %rax
	movl	$0x1f80, GEV__FRAME_CSR(%rax)
	movw	$0x037f, GEV__FRAME_CSR+4(%rax)
	movw	$0, GEV__FRAME_CSR+6(%rax)
	movq	$0, GEV__FRAME_R15(%rax)
	movq	$0, GEV__FRAME_R14(%rax)
	movq	$0, GEV__FRAME_R13(%rax)
	movq	$0, GEV__FRAME_R12(%rax)
	movq	$0, GEV__FRAME_RBX(%rax)
	movq	$0, GEV__FRAME_RBP(%rax)
	leaq	gev__ctx_trampoline_start(%rip), %rcx
	movq	%rcx, GEV__FRAME_PC(%rax)
	movq	$0, GEV__FRAME_SIZE(%rax)
	movq	$0, GEV__FRAME_SIZE+8(%rax)
	ret
	.cfi_endproc
	.size	gev__ctx_make, .-gev__ctx_make

/* First code a new context runs: pass the switch value on to C. The return
 * address is undefined so debuggers and unwinders stop here. A fresh
 * context's frame "returns" to gev__ctx_trampoline_start, after a nop:
 * unwinders look a return address up one byte before it (where the call
 * was), which must still be inside this function and its CFI. */
	.type	gev__ctx_trampoline, @function
	.p2align 4
gev__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	nop
gev__ctx_trampoline_start:
	movq	%rax, %rdi
	xorl	%ebp, %ebp
	call	gev__coro_entry
	ud2
	.cfi_endproc
	.size	gev__ctx_trampoline, .-gev__ctx_trampoline

/*
 * void gev__call_parked(const void *saved_sp (rdi), void *stack_top (rsi),
 *                       void (*fn)(void *) (rdx), void *arg (rcx))
 *
 * Calls fn(arg) on the stack at stack_top. While fn runs, the CFI of the
 * call site describes the suspended context at saved_sp (kept in r12,
 * which fn preserves) as fn's caller: its canonical frame address is
 * saved_sp + GEV__FRAME_SIZE, its return address and callee-saved
 * registers are where the saved frame holds them. An unwinder in fn thus
 * steps from fn into the parked context's own frames, and on up to the
 * trampoline that started it. Neither the parked stack nor its frame is
 * written. Back from fn, the CFI describes this function's real frame
 * again.
 */
	.globl	gev__call_parked
	.hidden	gev__call_parked
	.type	gev__call_parked, @function
	.p2align 4
gev__call_parked:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	movq	%rsp, %rbp
	.cfi_def_cfa_register rbp
	movq	%rdi, %r12
	movq	%rsi, %rsp
	.cfi_remember_state
	.cfi_def_cfa r12, GEV__FRAME_SIZE
	.cfi_offset rip, GEV__FRAME_PC-GEV__FRAME_SIZE
	.cfi_offset rbp, GEV__FRAME_RBP-GEV__FRAME_SIZE
	.cfi_offset rbx, GEV__FRAME_RBX-GEV__FRAME_SIZE
	.cfi_offset r12, GEV__FRAME_R12-GEV__FRAME_SIZE
	.cfi_offset r13, GEV__FRAME_R13-GEV__FRAME_SIZE
	.cfi_offset r14, GEV__FRAME_R14-GEV__FRAME_SIZE
	.cfi_offset r15, GEV__FRAME_R15-GEV__FRAME_SIZE
	movq	%rcx, %rdi
	call	*%rdx
	.cfi_restore_state
	movq	%rbp, %rsp
	popq	%r12
	.cfi_restore r12
	popq	%rbp
	.cfi_restore rbp
	.cfi_def_cfa rsp, 8
	ret
	.cfi_endproc
	.size	gev__call_parked, .-gev__call_parked

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
