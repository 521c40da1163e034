/*
 * Internal: hooks for the tools that must understand coroutine stacks.
 * Valgrind (when its headers were found at build time), AddressSanitizer
 * and ThreadSanitizer; without them every hook compiles or folds to
 * nothing.
 *
 * AddressSanitizer has to hear about every stack switch and about stack
 * memory gev reuses (the shared region, cached stacks), or it reports the
 * program's own frames. That holds whether libgev itself is built with it
 * (GEV_ASAN) or only the program is: a program built with ASan may link a
 * libgev built without it, and the sanitizer's runtime is then in the
 * process all the same. So a plain build reaches the runtime's interface
 * through weak references, which are NULL when no runtime is there;
 * GEV_ASAN_PRESENT says which.
 */
#ifndef GEV_SRC_CORO_TOOLS_H
#define GEV_SRC_CORO_TOOLS_H

#include <stddef.h>

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
#define GEV_ASAN_PRESENT 1
#else
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size) __attribute__((weak));
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old)
    __attribute__((weak));
void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
    __attribute__((weak));
/* One symbol stands for the runtime: the others come with it. */
#define GEV_ASAN_PRESENT                                                       \
  __builtin_expect(__sanitizer_start_switch_fiber != NULL, 0)
#endif

/* Marks [p, p+n) addressable for ASan: stack memory whose frames are gone
 * without having returned (or that another coroutine's frames used). */
static inline void gev__asan_unpoison(const void *p, size_t n) {
  if (GEV_ASAN_PRESENT)
    __asan_unpoison_memory_region(p, n);
}

/*
 * ThreadSanitizer follows a thread's stack as one sequence of calls and
 * returns; a coroutine switch would look like a return into frames that
 * were never entered. Each context (coroutine, main, the shared-stack
 * scratch context) therefore runs on a TSan fiber of its own, and every
 * switch first names the fiber it goes to. Switching with
 * synchronisation (flags 0) orders what one context did before what the
 * next does, as it happens on one thread. Only a libgev built with TSan
 * (-Db_sanitize=thread) annotates: TSan needs the whole program built with
 * it anyway.
 */
#if defined(__SANITIZE_THREAD__)
#define GEV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GEV_TSAN 1
#endif
#endif

#ifdef GEV_TSAN
#include <sanitizer/tsan_interface.h>
/* Before a switch: the fiber of the context switched to, made on first
 * use. */
static inline void gev__tsan_switch(void **fiber) {
  if (!*fiber)
    *fiber = __tsan_create_fiber(0);
  __tsan_switch_to_fiber(*fiber, 0);
}
/* The calling thread's own fiber (its main coroutine's). */
static inline void *gev__tsan_current(void) {
  return __tsan_get_current_fiber();
}
/* A context that will not run again gives its fiber back. */
static inline void gev__tsan_drop(void **fiber) {
  if (*fiber)
    __tsan_destroy_fiber(*fiber);
  *fiber = NULL;
}
#else
#define GEV_TSAN 0
static inline void gev__tsan_switch(void **fiber) { (void)fiber; }
static inline void *gev__tsan_current(void) { return NULL; }
static inline void gev__tsan_drop(void **fiber) { (void)fiber; }
#endif

#endif
