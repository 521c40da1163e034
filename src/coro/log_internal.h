/*
 * Internal: gev's own messages go through these, never straight to stderr,
 * so that the hook of gev/log.h sees all of them.
 */
#ifndef GEV_SRC_CORO_LOG_INTERNAL_H
#define GEV_SRC_CORO_LOG_INTERNAL_H

#include "gev/log.h"

/* Formats one message (truncated to 1 KiB) and hands it to the hook. */
void gev__log(gev_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Joins up to three strings (NULLs skipped) without formatting or
 * allocating and hands them to the hook: usable from signal handlers. */
void gev__log_parts(gev_log_level level, const char *a, const char *b,
                    const char *c);

#endif
