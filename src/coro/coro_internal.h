/*
 * Internal to src/coro: the coroutine control block, the per-thread
 * coroutine state and the stack allocator. Other layers see only
 * gev/coro.h and coro_ext.h.
 */
#ifndef GEV_SRC_CORO_INTERNAL_H
#define GEV_SRC_CORO_INTERNAL_H

#include <stddef.h>

#include "coro/coro_ext.h"
#include "gev/coro.h"

/* A mapped stack: [lo, hi) usable, a PROT_NONE guard page just below lo. */
typedef struct gev__stack {
  char *map;       /* start of the mapping (the guard page), NULL if none */
  size_t map_size; /* guard + usable bytes */
  char *lo, *hi;   /* usable range */
  unsigned vg_id;  /* Valgrind stack id */
} gev__stack;

typedef struct gev__cthread gev__cthread;

struct gev_coro {
  gev__coro_head head; /* first: the layer above's slot and the id */
  void *sp;            /* private: saved stack pointer while suspended */
  gev__cthread *thr;   /* ro: owning thread */
  gev_coro *parent;    /* rw through gev_coro_set_parent; holds a ref */
  gev_coro_fn fn;      /* ro */
  void *data;          /* rw: user data */
  char *name;          /* ro: owned copy, or NULL */
  unsigned refs;       /* private: handle + one per child naming it parent */
  unsigned char mode;  /* ro: GEV_STACK_DEDICATED or GEV_STACK_SHARED;
                          GEV_STACK_AUTO until its first switch decides */
  unsigned char started, dead, is_main, handle_freed;
  unsigned char owned; /* ro: the layer above's (coro_ext.h) */
  int exit_error;    /* rw: set by gev_coro_set_exit_error; result once dead */
  size_t stack_size; /* ro: requested dedicated stack size */
  gev__stack stack;  /* private: dedicated stack, mapped at first switch */
  char *saved;       /* private: shared mode, live bytes while evicted */
  size_t saved_len, saved_cap;
  unsigned offset;  /* private: varying start offset of the stack top */
  void *asan_fake;  /* private: AddressSanitizer fake stack handle */
  void *tsan_fiber; /* private: ThreadSanitizer fiber (tools.h), or NULL */
};

/* Per-thread stack cache and allocation. */
int gev__stack_get(gev__cthread *t, size_t size, gev__stack *out);
/* As gev__stack_get for GEV_STACK_AUTO: a cached stack, or a new one while
 * the process holds fewer than gev__stack_auto_limit() stacks; -1 (errno
 * untouched) when there is neither. */
int gev__stack_get_auto(gev__cthread *t, size_t size, gev__stack *out);
size_t gev__stack_auto_limit(void);
void gev__stack_put(gev__cthread *t, gev__stack *s);
int gev__stack_map(size_t size, gev__stack *out);
void gev__stack_unmap(gev__stack *s);
void gev__stack_cache_clear(gev__cthread *t);
size_t gev__stack_cached(const gev__cthread *t);
size_t gev__page_size(void);

/* Guard-page overflow reporting (sigaltstack + SIGSEGV handler). */
void gev__overflow_thread_init(gev__cthread *t);
void gev__overflow_thread_fini(gev__cthread *t);

#define GEV__STACK_CACHE_MAX 64
#define GEV__FREE_BLOCKS_MAX 1024

struct gev__cthread {
  gev__thread_head head; /* first: what the layer above sees; head.current
                            is the running coroutine */
  /* What every switch touches, in the head's cache line. */
  void *xfer_value; /* value in flight through the scratch context */
  int xfer_err;
  int switch_failed;  /* the scratch context could not make room */
  gev_coro *dying;    /* finished coroutine whose stack the next
                         runner releases */
  gev_coro *occupant; /* whose live stack is in the shared region */
  gev_trace_fn trace; /* gev_set_trace's hook, or NULL: read by
                         every switch (see trace.c) */
  void *trace_arg;
  gev_coro main;                /* the thread's own stack; never dies */
  const gev__coro_hooks *hooks; /* the layer above's, or NULL */
  gev_stack_mode default_mode;
  /* Shared-mode region and the scratch context that copies stacks. */
  gev__stack region;
  size_t region_size;
  size_t shared_live; /* started shared-mode coroutines not yet dead */
  gev__stack scratch;
  void *scratch_sp;
  void *scratch_fake;
  void *scratch_tsan; /* ThreadSanitizer fiber of the scratch context */
  int scratch_started;
  gev_coro *pend_to;   /* shared coroutine the scratch runs next */
  gev_coro *pend_from; /* the context that switched to the scratch */
  /* Dedicated stack cache, LIFO. */
  gev__stack cache[GEV__STACK_CACHE_MAX];
  size_t ncache;
  gev_coro *free_blocks; /* recycled control blocks, via ->parent */
  size_t nfree_blocks;
  /* Coroutine ids: a range taken from the process-wide counter. */
  unsigned long long next_id, id_end;
  /* Counters. */
  size_t live;       /* the user's coroutines (gev_coro_stats.live) */
  size_t owned_live; /* coroutines of the layer above (coro_ext.h) */
  size_t stacks_mapped, shared_saved, shared_copies;
  unsigned serial;
  void *altstack; /* alternate signal stack we installed */
  size_t altstack_size;
};

#define GEV__MAX_STACK ((size_t)1 << 30)

/* thread.c: creates the calling thread's state; NULL with ENOMEM. */
gev__cthread *gev__cthread_new(void);

/* A new coroutine id (see gev_coro_id): the next of the thread's range,
 * or the first of a new range (thread.c). */
unsigned long long gev__coro_new_id_range(gev__cthread *t);
static inline unsigned long long gev__coro_new_id(gev__cthread *t) {
  if (__builtin_expect(t->next_id != t->id_end, 1))
    return t->next_id++;
  return gev__coro_new_id_range(t);
}

/* trace.c: calls the thread's trace hook (t->trace is set). */
void gev__trace(gev__cthread *t, gev_trace_event event, gev_coro *from,
                gev_coro *to);

/* coro.c: makes the suspended shared-mode coroutine c the occupant of the
 * shared region, saving the occupant's bytes and bringing c's back,
 * without switching. The caller must not run on the region. 0, or -1 with
 * ENOMEM (nothing moved). */
int gev__coro_make_occupant(gev__cthread *t, gev_coro *c);

/* coro.c: frees the thread's recycled control blocks. */
void gev__coro_free_blocks(gev__cthread *t);

/* The calling thread's state if it exists. */
static inline gev__cthread *gev__cthread_peek(void) {
  return (gev__cthread *)(void *)gev__thread_root;
}

/* The calling thread's state, created if needed; NULL with ENOMEM. */
static inline gev__cthread *gev__cthread_get(void) {
  gev__cthread *t = gev__cthread_peek();
  return __builtin_expect(t != NULL, 1) ? t : gev__cthread_new();
}

#endif
