/*
 * Out-of-memory on demand, for tests of gev's ENOMEM paths.
 *
 * A test program built with failalloc (meson: add failalloc_src to its
 * sources and failalloc_link_args to its link_args) has every call of
 * malloc, calloc, realloc and mmap made by its own code and by the static
 * libgev linked into it routed through here (the linker's --wrap), while
 * shared libraries (libc's internals, c-ares, libev) are untouched. Nothing
 * fails until a test arms a failure:
 *
 *     gev_test_fail_alloc(GEV_TEST_ALLOC_MMAP, 1, 1); // the next mmap fails
 *     rc = gev_sleep(1.0);                            // -1, ENOMEM
 *     gev_test_fail_alloc(0, 0, 0);                   // back to normal
 *
 * A failed call returns NULL / MAP_FAILED with errno ENOMEM, as the real
 * one does when memory or the mapping limit runs out. Counters are
 * process-wide; arm and disarm from the test's own thread. Check itself
 * may be linked statically and allocate in its assertions: disarm before
 * asserting.
 */
#ifndef GEV_TEST_FAILALLOC_H
#define GEV_TEST_FAILALLOC_H

enum {
  GEV_TEST_ALLOC_MALLOC = 1,
  GEV_TEST_ALLOC_CALLOC = 2,
  GEV_TEST_ALLOC_REALLOC = 4,
  GEV_TEST_ALLOC_MMAP = 8,
  GEV_TEST_ALLOC_HEAP = 7, /* malloc, calloc, realloc */
  GEV_TEST_ALLOC_ANY = 15,
};

/* From now on, among calls of the given kinds (a mask; 0 disarms), the
 * nth one (1 = the next) fails, and so do the count - 1 after it (count 0:
 * every one from the nth on, until disarmed). Resets the counters. */
void gev_test_fail_alloc(unsigned kinds, unsigned long nth,
                         unsigned long count);

/* Calls of the armed kinds seen since gev_test_fail_alloc, and how many of
 * them were made to fail. */
unsigned long gev_test_alloc_calls(void);
unsigned long gev_test_alloc_failed(void);

/* The sweep form, for trying every heap allocation of a call in turn:
 * makes the heap allocation after the next n ones fail once (n = 0: the
 * very next one); n < 0 disarms. failalloc_fired() is non-zero once that
 * failure happened. */
void failalloc_after(long n);
int failalloc_fired(void);

#endif
