/*
 * Backtraces of suspended coroutines, and naming code addresses.
 *
 * Unwinding a parked stack. A suspended coroutine's registers sit in the
 * frame its switch left at its saved stack pointer (arch/switch.h). Rather
 * than interpret that frame and the DWARF tables ourselves, we let the
 * system's unwinder do it, from a place where its ordinary rules lead into
 * the parked stack: gev__call_parked() runs a probe on a spare stack in a
 * frame whose CFI names the saved frame as its caller. backtrace(3) in
 * the probe therefore walks probe -> call_parked -> the parked function ->
 * ... -> the coroutine's trampoline, whose CFI ends the walk. The probe
 * keeps the frames from the parked function on. Nothing of the parked
 * coroutine is written, so it resumes as if nothing happened.
 *
 * A shared-mode coroutine's frames hold addresses in the shared region, so
 * its bytes must be there to be read: one whose bytes are copied out is
 * made the region's occupant first (as a switch into it would), which the
 * caller can allow only when it is not itself running on the region.
 *
 * Naming addresses. dladdr(3) only knows dynamic symbols, which leaves out
 * every static function and everything a library hides (most of gev), so
 * the object's own symbol table (.symtab) is read from its file, mapped
 * once and kept; a stripped object falls back to its dynamic symbols.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/switch.h"
#include "coro/coro_internal.h"
#include "coro/tools.h"

#define PROBE_STACK (64 * 1024)
#define PROBE_FRAMES 128

/* ---- Unwinding a parked stack ------------------------------------------ */

#if GEV__FRAME_KNOWN
typedef struct probe {
  const void *first_pc; /* the parked function's resume address */
  void **frames;
  int max, n;
  const void *back_lo; /* the caller's stack, for AddressSanitizer */
  size_t back_size;
} probe;

/* Runs on the probe stack, "called" by the parked context. */
static void probe_run(void *arg) {
  probe *p = arg;
  void *tmp[PROBE_FRAMES];
  int n, i = 0;
  if (GEV_ASAN_PRESENT)
    __sanitizer_finish_switch_fiber(NULL, &p->back_lo, &p->back_size);
  n = backtrace(tmp, PROBE_FRAMES);
  while (i < n && tmp[i] != p->first_pc)
    i++;
  for (p->n = 0; i < n && p->n < p->max; i++)
    p->frames[p->n++] = tmp[i];
  if (GEV_ASAN_PRESENT)
    __sanitizer_start_switch_fiber(NULL, p->back_lo, p->back_size);
}

static int unwind_parked(gev__cthread *t, gev_coro *c, void **frames, int max) {
  probe p = {.frames = frames, .max = max};
  gev__stack s;
  void *fake = NULL;
  p.first_pc = *(void *const *)((const char *)c->sp + GEV__FRAME_PC);
  if (gev__stack_get(t, PROBE_STACK, &s) < 0) {
    errno = ENOMEM;
    return -1;
  }
  if (GEV_ASAN_PRESENT)
    __sanitizer_start_switch_fiber(&fake, s.lo, (size_t)(s.hi - s.lo));
  gev__call_parked(c->sp, (void *)((uintptr_t)s.hi & ~(uintptr_t)15), probe_run,
                   &p);
  if (GEV_ASAN_PRESENT)
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
  gev__stack_put(t, &s);
  return p.n;
}
#endif

/* The running coroutine: backtrace(3) from the return address `from` on
 * (the frames of gev's own calls go). */
static int unwind_self(const void *from, void **frames, int max) {
  void *tmp[PROBE_FRAMES];
  int n = backtrace(tmp, PROBE_FRAMES), i = 0, k = 0;
  while (i < n && tmp[i] != from)
    i++;
  if (i == n)
    i = 0;
  for (; i < n && k < max; i++)
    frames[k++] = tmp[i];
  return k;
}

GEV_EXTERN int gev_coro_backtrace(gev_coro *c, void **frames, int max) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  if (!c || c->dead || max < 0 || (!frames && max > 0)) {
    errno = EINVAL;
    return -1;
  }
  if (c->thr != t) {
    errno = EXDEV;
    return -1;
  }
  if (c == t->head.current)
    return unwind_self(__builtin_return_address(0), frames, max);
  if (!c->started || max == 0)
    return 0;
#if GEV__FRAME_KNOWN
  if (c->mode == GEV_STACK_SHARED && t->occupant != c) {
    if (t->head.current->mode == GEV_STACK_SHARED) {
      errno = EBUSY; /* we run on the region ourselves */
      return -1;
    }
    if (gev__coro_make_occupant(t, c) < 0)
      return -1;
  }
  return unwind_parked(t, c, frames, max);
#else
  errno = ENOTSUP;
  return -1;
#endif
}

/* ---- Naming addresses -------------------------------------------------- */

/* An object's symbol table, read from its file once. */
typedef struct symtab {
  struct symtab *next;
  char *path;
  void *map;
  size_t map_size;
  const ElfW(Sym) * syms;
  size_t nsyms;
  const char *strs;
  size_t strs_size;
} symtab;

static symtab *symtabs;
static pthread_mutex_t symtabs_lock = PTHREAD_MUTEX_INITIALIZER;

/* The section of type `type` (its linked string table in *strs), or NULL. */
static const ElfW(Shdr) * find_section(const char *base, size_t size,
                                       unsigned type,
                                       const ElfW(Shdr) * *strs) {
  const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)(const void *)base;
  const ElfW(Shdr) * sh;
  if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_shentsize != sizeof *sh ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof *sh > size)
    return NULL;
  sh = (const ElfW(Shdr) *)(const void *)(base + eh->e_shoff);
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum)
      continue;
    *strs = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size ||
        (*strs)->sh_offset + (*strs)->sh_size > size)
      return NULL;
    return &sh[i];
  }
  return NULL;
}

static symtab *symtab_load(const char *path) {
  symtab *st = calloc(1, sizeof *st);
  const ElfW(Shdr) * sec, *strs = NULL;
  struct stat sb;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (!st || fd < 0 || fstat(fd, &sb) < 0 || sb.st_size <= 0)
    goto out_fail;
  st->map_size = (size_t)sb.st_size;
  st->map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (st->map == MAP_FAILED) {
    st->map = NULL;
    goto out_fail;
  }
  sec = find_section(st->map, st->map_size, SHT_SYMTAB, &strs);
  if (!sec)
    sec = find_section(st->map, st->map_size, SHT_DYNSYM, &strs);
  if (sec) {
    st->syms =
        (const ElfW(Sym) *)(const void *)((char *)st->map + sec->sh_offset);
    st->nsyms = sec->sh_size / sizeof(ElfW(Sym));
    st->strs = (char *)st->map + strs->sh_offset;
    st->strs_size = strs->sh_size;
  }
  close(fd);
  st->path = strdup(path);
  return st;
out_fail:
  if (fd >= 0)
    close(fd);
  free(st);
  return NULL;
}

/* The table of the object at path, loaded on first use (NULL if it
 * cannot be read). Tables stay for the life of the process. */
static symtab *symtab_get(const char *path) {
  symtab *st;
  pthread_mutex_lock(&symtabs_lock);
  for (st = symtabs; st; st = st->next)
    if (st->path && strcmp(st->path, path) == 0)
      break;
  if (!st && (st = symtab_load(path))) {
    st->next = symtabs;
    symtabs = st;
  }
  pthread_mutex_unlock(&symtabs_lock);
  return st;
}

/* The function symbol of st containing the link-time address a. */
static const char *symtab_find(const symtab *st, uintptr_t a,
                               uintptr_t *start) {
  const ElfW(Sym) *best = NULL;
  for (size_t i = 0; st && i < st->nsyms; i++) {
    const ElfW(Sym) *s = &st->syms[i];
    if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF ||
        s->st_value > a || s->st_name >= st->strs_size)
      continue;
    if (a < s->st_value + s->st_size ||
        (s->st_size == 0 && (!best || s->st_value > best->st_value)))
      best = s;
    if (a < s->st_value + s->st_size)
      break;
  }
  if (!best)
    return NULL;
  *start = best->st_value;
  return st->strs + best->st_name;
}

typedef struct object {
  uintptr_t pc, bias;
  const char *name;
  int found;
} object;

static int find_object(struct dl_phdr_info *info, size_t size, void *arg) {
  object *o = arg;
  (void)size;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && o->pc >= lo && o->pc < lo + ph->p_memsz) {
      o->bias = info->dlpi_addr;
      o->name = info->dlpi_name;
      o->found = 1;
      return 1;
    }
  }
  return 0;
}

GEV_EXTERN char *gev_describe_address(const void *pc, int exact, char *buf,
                                      size_t size) {
  object o = {.pc = (uintptr_t)pc - (exact ? 0 : 1)};
  const char *path, *base, *fn = NULL;
  uintptr_t start = 0;
  if (!buf || size == 0)
    return buf;
  dl_iterate_phdr(find_object, &o);
  if (!o.found) {
    snprintf(buf, size, "?? (%p)", pc);
    return buf;
  }
  path = o.name && o.name[0] ? o.name : "/proc/self/exe";
  fn = symtab_find(symtab_get(path), o.pc - o.bias, &start);
  base = strrchr(o.name && o.name[0] ? o.name : "", '/');
  base = base ? base + 1
              : (o.name && o.name[0] ? o.name : program_invocation_short_name);
  if (fn)
    snprintf(buf, size, "%s+0x%lx (%s+0x%lx)", fn,
             (unsigned long)(o.pc - o.bias - start + (exact ? 0 : 1)), base,
             (unsigned long)((uintptr_t)pc - o.bias));
  else
    snprintf(buf, size, "?? (%s+0x%lx)", base,
             (unsigned long)((uintptr_t)pc - o.bias));
  return buf;
}

size_t gev__coro_saved_bytes(const gev_coro *c) { return c->saved_len; }
