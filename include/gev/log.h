/*
 * gev/log.h — one hook for every message gev prints, and gev's clock.
 *
 * Logging. gev reports a few things nobody asked for in a return value: a
 * greenlet that failed with nobody linked to it, a coroutine that ignored
 * the kill error, a stack overflow, an invalid environment variable, the
 * prefork master's worker events. Every such message goes through one
 * process-wide hook. The default hook writes the message and a newline to
 * stderr. Messages are single lines without the newline and start with
 * "gev" ("gev: greenlet Greenlet-3 failed: ...", "gev prefork[123]: ...").
 *
 * The hook is called from whichever thread, coroutine or hub the message
 * arises in, so it must not block (in a greenlet that would stall the hub)
 * and must not call back into gev. A GEV_LOG_FATAL message is followed by
 * abort(); the stack-overflow report is made from a signal handler on an
 * alternate stack, so a hook that wants to see it must be
 * async-signal-safe (the default hook is: it uses write(2)).
 *
 * The clock. Every timeout and deadline in gev (sleep, each call's timeout
 * argument, Timeout scopes, sockets, DNS, joinall/iwait, pools, signal
 * waits, prefork timers) is measured on CLOCK_MONOTONIC, never on the wall
 * clock, and counted from the moment of the call: a wait of T seconds never
 * returns its timeout before T seconds of monotonic time have passed,
 * whatever the program did before the call.
 */
#ifndef GEV_LOG_H
#define GEV_LOG_H

#include "gev/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gev_log_level {
  GEV_LOG_DEBUG = 0,
  GEV_LOG_INFO,    /* lifecycle: prefork worker started, retired, ... */
  GEV_LOG_WARNING, /* something was ignored or worked around */
  GEV_LOG_ERROR,   /* a failure nobody else will report */
  GEV_LOG_FATAL,   /* an invariant broke; the process aborts next */
} gev_log_level;

/* Receives one message: level, the text (no trailing newline; valid only
 * during the call), and the arg given to gev_set_log_fn. */
typedef void (*gev_log_fn)(gev_log_level level, const char *msg, void *arg);

/* Installs fn as the process-wide log hook; fn NULL restores the default
 * (stderr). Takes effect for messages that start after it returns; safe to
 * call from any thread. */
GEV_EXTERN void gev_set_log_fn(gev_log_fn fn, void *arg);

/* The default hook: writes msg and a newline to stderr with write(2). A
 * custom hook may call it to keep the default output. */
GEV_EXTERN void gev_log_stderr(gev_log_level level, const char *msg, void *arg);

/* Seconds on CLOCK_MONOTONIC: the time base of every gev deadline. */
GEV_EXTERN double gev_monotonic(void);

#ifdef __cplusplus
}
#endif
#endif
