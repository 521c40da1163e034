/*
 * Context switch for x86-64, System V ABI.
 *
 * void *gev__switch(void **save_sp   (rdi),
 *                   void *load_sp    (rsi),
 *                   void *value      (rdx))   -> value of the switcher (rax)
 *
 * Saved frame, from the saved stack pointer upwards (GEV__FRAME_SIZE, 64
 * bytes; the offsets are the GEV__FRAME_* constants of switch.h, which the
 * gdb extension (tools/gdb/gev.py, through src/coro/thread.c) and the
 * parked-stack unwinder below read too: change the frame there):
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
 *
 * The CFI is exact at every instruction: a profiler's sample or the
 * blocking monitor's signal may land anywhere in the switch. Until the
 * stack pointer is replaced it describes the frame being saved; from then
 * on the frame being restored, which has the same layout, so an unwinder
 * stopped there walks the stack of the context being resumed.
 */
#include "arch/switch.h"

	.text
	.globl	gev__switch
	.hidden	gev__switch
	.type	gev__switch, @function
	.p2align 4
gev__switch:
	.cfi_startproc
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
	movq	%rsi, %rsp
	/* Loading MXCSR and the x87 control word is slow (serialising on many
	 * cores) and the control bits almost never differ between contexts:
	 * reload only when they do. MXCSR's low six bits are sticky exception
	 * flags that any inexact operation sets and the ABI does not preserve,
	 * so they are left out of the comparison. rax, rcx, r8 and r9 are
	 * caller-saved scratch. */
	movl	GEV__FRAME_CSR(%rsp), %ecx
	xorl	%r8d, %ecx
	testl	$0xffc0, %ecx
	jne	2f
1:	cmpw	GEV__FRAME_CSR+4(%rsp), %r9w
	jne	3f
4:	addq	$8, %rsp
	.cfi_remember_state
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
	ret
	.cfi_restore_state
2:	ldmxcsr	GEV__FRAME_CSR(%rsp)
	jmp	1b
3:	fldcw	GEV__FRAME_CSR+4(%rsp)
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
