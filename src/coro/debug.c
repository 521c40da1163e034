/*
 * The coroutine layer's table for debuggers (see debug_table.h): where a
 * control block keeps its id, name, state and saved stack pointer, where
 * the thread state keeps the running coroutine and the shared region's
 * occupant, and the saved frame of the switch (arch/switch.h).
 */
#include "arch/switch.h"
#include "coro/coro_internal.h"
#include "coro/debug_table.h"

#if defined(GEV_SWITCH_UCONTEXT)
#define ARCH "ucontext"
#elif defined(__x86_64__)
#define ARCH "x86_64"
#elif defined(__aarch64__)
#define ARCH "aarch64"
#else
#define ARCH "unknown"
#endif

GEV_EXTERN const gev__debug_entry gev__debug_coro[] = {
    GEV__DEBUG_CONST("version", 1),
    GEV__DEBUG_TEXT("arch", ARCH),
    GEV__DEBUG_CONST("frame.known", GEV__FRAME_KNOWN),
#if GEV__FRAME_KNOWN
    GEV__DEBUG_CONST("frame.size", GEV__FRAME_SIZE),
    GEV__DEBUG_CONST("frame.pc", GEV__FRAME_PC),
#endif
    GEV__DEBUG_TEXT("frame.regs", GEV__FRAME_REGS),
    GEV__DEBUG_CONST("mode.shared", GEV_STACK_SHARED),
    GEV__DEBUG_FIELD("coro.upper", gev_coro, head.upper),
    GEV__DEBUG_FIELD("coro.id", gev_coro, head.id),
    GEV__DEBUG_FIELD("coro.sp", gev_coro, sp),
    GEV__DEBUG_FIELD("coro.thr", gev_coro, thr),
    GEV__DEBUG_FIELD("coro.name", gev_coro, name),
    GEV__DEBUG_FIELD("coro.mode", gev_coro, mode),
    GEV__DEBUG_FIELD("coro.started", gev_coro, started),
    GEV__DEBUG_FIELD("coro.dead", gev_coro, dead),
    GEV__DEBUG_FIELD("coro.is_main", gev_coro, is_main),
    GEV__DEBUG_FIELD("coro.saved_len", gev_coro, saved_len),
    GEV__DEBUG_FIELD("thread.current", gev__cthread, head.current),
    GEV__DEBUG_FIELD("thread.main", gev__cthread, head.main),
    GEV__DEBUG_FIELD("thread.occupant", gev__cthread, occupant),
    GEV__DEBUG_END,
};
