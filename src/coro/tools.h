/*
 * Internal: hooks for the tools that must understand coroutine stacks.
 * Valgrind (when its headers were found at build time) and AddressSanitizer
 * (when the build uses it); without them every hook compiles to nothing.
 */
#ifndef GEV_SRC_CORO_TOOLS_H
#define GEV_SRC_CORO_TOOLS_H

#ifdef GEV_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#endif

#if defined(__SANITIZE_ADDRESS__)
#define GEV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GEV_ASAN 1
#endif
#endif
#ifdef GEV_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#endif
