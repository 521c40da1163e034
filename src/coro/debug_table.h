/*
 * Internal: the tables that tell debuggers where gev keeps things.
 *
 * gdb (tools/gdb/gev.py) must find hubs, greenlets and saved stack frames
 * in a live process or a core file, also in a release build without debug
 * information. Each layer therefore exports one table of its own layout,
 * as offsetof() figures the compiler keeps exact: an array of entries
 * (key, value, size, str), each four 8-byte words on 64-bit targets, ended
 * by a NULL key. For a field of a struct the value is its offset and size
 * its size; for a constant (an enum value, a frame offset) the size is 0;
 * a text (the frame's register list) is in str, and so is an address
 * (the registry's list head, which a debugger reads as a pointer). Keys are
 * "struct.field"; readers look entries up by key and ignore the ones they do
 * not know, so the tables may grow. The symbols are exported (in .dynsym) so
 * that a stripped library still has them: gev__debug_coro (src/coro/thread.c)
 * and gev__debug_hub (src/hub/registry.c).
 */
#ifndef GEV_SRC_CORO_DEBUG_TABLE_H
#define GEV_SRC_CORO_DEBUG_TABLE_H

#include <stddef.h>

typedef struct gev__debug_entry {
  const char *key;
  unsigned long long value;
  unsigned long long size;
  const char *str;
} gev__debug_entry;

#define GEV__DEBUG_FIELD(key, type, member)                                    \
  { key, offsetof(type, member), sizeof(((type *)0)->member), NULL }
#define GEV__DEBUG_CONST(key, v)                                               \
  { key, (unsigned long long)(v), 0, NULL }
#define GEV__DEBUG_TEXT(key, s)                                                \
  { key, 0, 0, s }
#define GEV__DEBUG_ADDR(key, p)                                                \
  { key, 0, 0, (const char *)(const void *)(p) }
#define GEV__DEBUG_END                                                         \
  { NULL, 0, 0, NULL }

#endif
