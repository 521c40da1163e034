/* Test helper: makes one allocation fail on purpose.
 *
 * A test executable built from failalloc_src with failalloc_link_args
 * (tests/meson.build: the linker's --wrap for malloc, calloc and realloc)
 * routes every allocation of the code linked into it (libgev.a, the test)
 * through a counter; shared libraries (libc's own strdup, c-ares,
 * libev) keep allocating normally. A test arms the counter, runs the code
 * under test and disarms it; sweeping n from 0 upwards fails each
 * allocation of that code in turn. */
#ifndef GEV_TESTS_FAILALLOC_H
#define GEV_TESTS_FAILALLOC_H

/* Makes the allocation after the next n ones fail once with ENOMEM
 * (n = 0: the very next one). n < 0 disarms. */
void failalloc_after(long n);
/* Non-zero once the armed failure happened (reset by failalloc_after). */
int failalloc_fired(void);

#endif
