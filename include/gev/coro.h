/*
 * gev/coro.h — coroutines with greenlet's semantics.
 *
 * A coroutine runs a function on its own stack and is entered and left by
 * explicit switches. Each thread has a main coroutine (the thread's own
 * stack), created on first use, that never dies.
 *
 * Semantics (greenlet's, with error codes instead of exceptions):
 *   - A coroutine is created with a function and a parent (default: the
 *     coroutine that creates it). The first switch into it calls fn(value);
 *     later switches into it make the switch call it is suspended in return
 *     that value.
 *   - When fn returns, its result is switched to the parent. Switching to a
 *     dead coroutine switches to its nearest live ancestor instead.
 *   - gev_coro_throw() resumes the target with an error instead of a value:
 *     the call it is suspended in returns -1 with errno set to the error.
 *     Throwing into a coroutine that never started kills it without running
 *     it. GEV_EKILL (ECANCELED, greenlet's GreenletExit) ends a coroutine
 *     "successfully": its parent receives a value (NULL), not an error.
 *     Thrown into a coroutine that is already dead, GEV_EKILL is likewise
 *     a plain return of NULL to its nearest live ancestor (greenlet turns
 *     GreenletExit thrown into a dead greenlet into a return); any other
 *     error thrown into a dead coroutine goes to that ancestor as an
 *     error.
 *   - A coroutine belongs to the thread that created it; switching to it
 *     from another thread fails with EXDEV and switches nothing.
 *
 * Stacks come in two modes, chosen per coroutine (gev_coro_opts.stack_mode)
 * with a per-thread default that the environment variable
 * GEV_STACK_MODE=dedicated|shared sets for the whole process:
 *   - dedicated: an mmap'd, lazily committed stack with a PROT_NONE guard
 *     page below it, taken from a per-thread cache. Overflowing it prints
 *     "gev: stack overflow in coroutine <name>" and aborts.
 *   - shared: greenlet's stack slicing. Shared-mode coroutines of a thread
 *     run on one shared stack region. When another coroutine needs the
 *     region, the live part of the occupant's stack is copied to an
 *     exactly-sized heap buffer, and copied back when it resumes. Switching
 *     to a dedicated-stack coroutine (the main coroutine, the hub) and back
 *     copies nothing. Memory per parked coroutine follows its live depth.
 *
 * Stack overflow reporting and process-wide signal state. The first time
 * a thread uses gev (its first gev_coro_* or hub call), gev gives that
 * thread an alternate signal stack (64 KiB, unless the thread already has
 * one) and, once per process, installs a SIGSEGV and SIGBUS handler
 * (SA_SIGINFO | SA_ONSTACK), remembering the disposition it replaced. The
 * handler reports a fault on a guard page of a gev stack as above. Any
 * other fault it hands back: it restores the remembered disposition and
 * returns, so the faulting instruction faults again under it, with that
 * disposition's own flags, mask and signature (SIG_DFL: the usual core
 * dump). gev never installs its handler again, so a handler the program
 * installs after gev stays in place; if that handler calls gev's (as the
 * previous one) for a fault that is not gev's, gev's returns without
 * touching the disposition. A shared library that wants no such handler
 * must install its own before its first gev call and not chain to it.
 *
 * Out of memory while switching. A switch into a shared-mode coroutine that
 * is not the region's occupant saves the occupant's live bytes to the heap;
 * if that allocation fails, the switch fails with ENOMEM and nothing was
 * switched (the caller of gev_coro_switch/throw sees -1, ENOMEM, and the
 * target is left as it was). When a coroutine's function returns and its
 * parent cannot be switched to for the same reason (or an unstarted parent's
 * stack cannot be mapped), the result is dropped (a message is logged) and
 * ENOMEM is thrown to the parent's nearest ancestor that can be switched to
 * (the main coroutine at the latest, which always can): the call that
 * ancestor is suspended in returns -1 with errno ENOMEM. The parent itself
 * stays suspended as it was.
 *
 * THE SHARED-STACK RULE. While a shared-mode coroutine is suspended, its
 * stack bytes may be moved to the heap and the region reused by another
 * coroutine. Nothing outside that coroutine may therefore hold a pointer into
 * its stack: no other coroutine, no libev watcher, no callback argument, no
 * queue node. Safe patterns: allocate shared state on the heap (malloc, or
 * gev's _new() constructors), or keep it in static/thread storage, or in the
 * coroutine's user data (gev_coro_set_data). The runtime obeys this rule
 * itself: its waiters, watchers and timeout state live in control blocks on
 * the heap. Dedicated-mode coroutines have no such restriction.
 *
 * Debuggers and profilers. Every coroutine's stack ends at a trampoline
 * whose unwind information (DWARF CFI) says "outermost frame" and which
 * clears the frame pointer, and the switch's CFI is exact at every
 * instruction, so an unwinder stopped anywhere in a coroutine walks up to
 * its start and no further:
 *   - gdb: `bt` in the running coroutine; for parked ones the extension
 *     installed beside the library (tools/gdb/gev.py: `gev greenlets`,
 *     `gev bt ID`), live or on a core file;
 *   - in the program: gev_coro_backtrace() below, gev_print_run_info()
 *     and the blocking monitor (gev/monitor.h);
 *   - perf: `perf record --call-graph dwarf` unwinds with the CFI and needs
 *     nothing else; `perf record -g` (frame pointers) needs the program
 *     and libgev built with -fno-omit-frame-pointer (for libgev:
 *     meson setup -Dc_args=-fno-omit-frame-pointer), and then shows each
 *     sample's greenlet stack from the sampled function down to
 *     gev__coro_entry, which is where the chain ends.
 *
 * Errors: calls that can fail return -1 (or NULL) and set errno. Each call
 * lists its errors. Calls from a coroutine of another thread fail with EXDEV.
 */
#ifndef GEV_CORO_H
#define GEV_CORO_H

#include <errno.h>
#include <stddef.h>

#include "gev/log.h"
#include "gev/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kill error: greenlet's GreenletExit. A coroutine that ends with it
 * ends successfully. */
#define GEV_EKILL ECANCELED

typedef struct gev_coro gev_coro;

/* A coroutine's function. Its return value goes to the parent. */
typedef void *(*gev_coro_fn)(void *arg);

typedef enum gev_stack_mode {
  GEV_STACK_DEFAULT = 0, /* the thread's default (see above) */
  GEV_STACK_DEDICATED,
  GEV_STACK_SHARED,
} gev_stack_mode;

typedef struct gev_coro_opts {
  size_t stack_size;         /* dedicated stack bytes; 0 = 256 KiB. Range
                                16 KiB .. 1 GiB, rounded up to pages. */
  gev_stack_mode stack_mode; /* GEV_STACK_DEFAULT = thread default */
  const char *name;          /* copied; shown in diagnostics. May be NULL. */
} gev_coro_opts;

/* Library version as "MAJOR.MINOR.PATCH". */
GEV_EXTERN const char *gev_version(void);

/* Creates a suspended coroutine that will run fn. parent NULL means the
 * current coroutine; opts NULL means defaults. The caller owns the handle
 * and releases it with gev_coro_free().
 * Errors: EINVAL (fn NULL, stack size out of range, bad mode), EXDEV (parent
 * of another thread), ENOMEM. */
GEV_EXTERN gev_coro *gev_coro_new(gev_coro_fn fn, gev_coro *parent,
                                  const gev_coro_opts *opts);

/* Switches to target passing value. Returns when something switches back:
 * 0 with *result (if result is not NULL) set to the value sent, or -1 with
 * errno set to the error thrown in. Switching to the running coroutine
 * returns value at once.
 * Errors of the switch itself (nothing switched): EINVAL (target NULL),
 * EXDEV (target of another thread: "cannot switch to a different thread"),
 * ENOMEM (the target's stack could not be mapped, or, for a shared-mode
 * target, the live bytes of the region's occupant could not be saved; see
 * "Out of memory while switching" above). Switching into a coroutine that
 * is parked in the hub (a greenlet, or any coroutine inside a blocking gev
 * call) is an invalid switch: the parked call fails (see gev/hub.h). */
GEV_EXTERN int gev_coro_switch(gev_coro *target, void *value, void **result);

/* Resumes target with error err (> 0) instead of a value. Throwing into an
 * unstarted coroutine kills it without running it; the error then goes to
 * its parent (GEV_EKILL as a NULL value). Returns like gev_coro_switch().
 * Errors: those of gev_coro_switch(), EINVAL (err <= 0). */
GEV_EXTERN int gev_coro_throw(gev_coro *target, int err, void **result);

/* Makes the running coroutine end with error err when its function
 * returns: the parent is thrown err instead of receiving the result.
 * err == GEV_EKILL (or 0) clears it. Fails (EINVAL) in the main coroutine. */
GEV_EXTERN int gev_coro_set_exit_error(int err);

/* Releases a coroutine handle. A suspended, started coroutine is first
 * thrown GEV_EKILL (with the caller as its parent) so it can unwind; if it
 * switches away instead of finishing, a warning is printed and its stack is
 * discarded anyway. The control block lives on while children still name it
 * as parent. Freeing NULL does nothing.
 * Errors: EBUSY (it is the running coroutine), EINVAL (a main coroutine, or
 * a handle already freed), EPERM (the hub's own coroutine, gev_hub_coro():
 * only gev_hub_destroy releases it), EXDEV (another thread's). */
GEV_EXTERN int gev_coro_free(gev_coro *c);

/* The running coroutine; the thread's main coroutine when none was entered.
 * NULL only if the thread's coroutine state cannot be allocated. */
GEV_EXTERN gev_coro *gev_coro_current(void);
/* The thread's main coroutine. */
GEV_EXTERN gev_coro *gev_coro_main(void);

GEV_EXTERN gev_coro *gev_coro_parent(const gev_coro *c);
/* Sets c's parent. Errors: EINVAL (NULL, a main coroutine, or a parent
 * chain that would form a cycle), EXDEV (different threads). */
GEV_EXTERN int gev_coro_set_parent(gev_coro *c, gev_coro *parent);

GEV_EXTERN int gev_coro_started(const gev_coro *c); /* fn was entered */
GEV_EXTERN int gev_coro_dead(const gev_coro *c);    /* fn returned/killed */
GEV_EXTERN int gev_coro_is_main(const gev_coro *c);
/* A number that names c and no other coroutine of the process, ever (a
 * control block's address is reused once it is freed; its id is not). 0
 * for NULL. */
GEV_EXTERN unsigned long long gev_coro_id(const gev_coro *c);
GEV_EXTERN gev_stack_mode gev_coro_stack_mode(const gev_coro *c);
GEV_EXTERN const char *gev_coro_name(const gev_coro *c);
/* Error c ended with (0 for success), valid once dead. */
GEV_EXTERN int gev_coro_exit_error(const gev_coro *c);

/* One pointer of user data per coroutine. */
GEV_EXTERN void gev_coro_set_data(gev_coro *c, void *data);
GEV_EXTERN void *gev_coro_data(const gev_coro *c);

/* ---- Tracing (greenlet.settrace) ------------------------------------- */

/* What a trace hook is told. Every switch is exactly one of SWITCH, THROW
 * and FINISH. */
typedef enum gev_trace_event {
  GEV_TRACE_SPAWN,  /* to was created (gev_coro_new, and so every greenlet
                       and hub), by from, the running coroutine */
  GEV_TRACE_SWITCH, /* from switches to to with a value */
  GEV_TRACE_THROW,  /* from switches to to with an error (gev_coro_throw,
                       a kill) */
  GEV_TRACE_FINISH, /* from is done: its function returned and it switches
                       to to, where its result goes; or from was killed
                       before it ever ran (to: its parent, which may be
                       the running coroutine, and then nothing switches) */
} gev_trace_event;

/* A trace hook: called in the coroutine that switches (from), before the
 * switch, for switches (from -> to), and for creation and death as the
 * events above say. to is the coroutine that will actually run (a dead
 * target already forwarded to its live ancestor). It must not switch,
 * block, create or free coroutines; reading names and ids is fine. A
 * switch reported into a shared-mode coroutine can still fail for lack
 * of memory (gev_coro_switch's ENOMEM); it has then been reported all
 * the same. */
typedef void (*gev_trace_fn)(gev_trace_event event, gev_coro *from,
                             gev_coro *to, void *arg);

/* Installs fn(event, from, to, arg) as the calling thread's trace hook
 * (per thread, as greenlet.settrace); NULL removes it. With no hook set,
 * a switch costs one predicted branch more than without tracing support;
 * with one, every switch takes the general path and calls it. Returns 0,
 * or -1 with ENOMEM (the thread's coroutine state could not be made). */
GEV_EXTERN int gev_set_trace(gev_trace_fn fn, void *arg);
/* The calling thread's trace hook (NULL if none), its arg in *arg unless
 * arg is NULL: to chain hooks, read the old one before installing. */
GEV_EXTERN gev_trace_fn gev_get_trace(void **arg);

/* ---- Backtraces of suspended coroutines ------------------------------ */

/* Fills frames[0 .. max) with the return addresses of c's stack, innermost
 * first, as backtrace(3) does for the running code, and returns how many
 * (0 for a coroutine that has not started). For a suspended coroutine the
 * unwinder starts from the registers its switch saved (the first frame is
 * the function that switched away, or rather the instruction after its
 * call) and follows the code's unwind tables (DWARF CFI, as for C++
 * exceptions: frame pointers are not needed) up to the start of the
 * coroutine; c's stack is only read. For the running coroutine it is
 * backtrace(3) from the caller. A shared-mode coroutine whose bytes are
 * copied out to the heap is brought back into the shared region first
 * (as a switch to it would, without running it), which needs the region
 * idle: the caller must not itself run on it.
 * Errors: EINVAL (c NULL or dead, frames NULL with max > 0, max < 0),
 * EXDEV (another thread's coroutine), EBUSY (c's stack is copied out and
 * the caller runs on the shared region), ENOMEM, ENOTSUP (built with the
 * ucontext switch, whose saved frame the unwinder cannot read). */
GEV_EXTERN int gev_coro_backtrace(gev_coro *c, void **frames, int max);

/* Describes the code address pc in buf (at most size bytes, always
 * NUL-terminated): "function+0xoff (object+0xoff)", with the function's
 * name from the object's symbol table, or its dynamic symbols if the
 * object is stripped ("??" when neither names it). For the return
 * addresses of gev_coro_backtrace and backtrace(3) pass exact 0; for an
 * address where execution stopped (a signal's pc) pass 1. Not
 * async-signal-safe (it may read the object's file). Returns buf. */
GEV_EXTERN char *gev_describe_address(const void *pc, int exact, char *buf,
                                      size_t size);

/* Per-thread configuration. The default stack mode applies to coroutines
 * created afterwards. The shared region size (default 1 MiB, 64 KiB .. 1
 * GiB) can be changed only while no shared-mode coroutine of the thread
 * has started and is not yet dead (their frames hold addresses in the
 * region). Errors: EINVAL (bad value), EBUSY (such a coroutine is alive). */
GEV_EXTERN int gev_coro_set_default_stack_mode(gev_stack_mode mode);
GEV_EXTERN gev_stack_mode gev_coro_default_stack_mode(void);
GEV_EXTERN int gev_coro_set_shared_stack_size(size_t bytes);

/* Counters of the calling thread, for leak checks and benchmarks. */
typedef struct gev_coro_stats {
  size_t live; /* coroutines created and not yet freed */
  size_t
      stacks_mapped; /* dedicated stacks currently mapped (in use + cached) */
  size_t stacks_cached; /* of which idle in the cache */
  size_t shared_saved;  /* bytes of shared-mode stacks saved on the heap */
  size_t shared_copies; /* stack copies (saves + restores) so far */
} gev_coro_stats;
GEV_EXTERN void gev_coro_get_stats(gev_coro_stats *out);

/* Releases the calling thread's idle resources: cached stacks, the shared
 * region and scratch stack. Threads do this on exit by themselves. Fails
 * with EBUSY while coroutines of this thread are alive (live != 0). */
GEV_EXTERN int gev_coro_thread_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif
