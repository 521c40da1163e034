#include "failalloc.h"

#include <errno.h>
#include <stddef.h>

/* The linker's --wrap=X sends our objects' calls of X here and makes
 * __real_X the original. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static long countdown = -1;
static int fired;

void failalloc_after(long n) {
  countdown = n;
  fired = 0;
}

int failalloc_fired(void) { return fired; }

/* Counts one allocation; 1 if it must fail. */
static int fail_now(void) {
  if (countdown < 0)
    return 0;
  if (countdown-- > 0)
    return 0;
  fired = 1;
  errno = ENOMEM;
  return 1;
}

void *__wrap_malloc(size_t size) {
  return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
  return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size) {
  return fail_now() ? NULL : __real_realloc(p, size);
}
