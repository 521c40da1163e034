/*
 * Internal to src/proc: signal handlers gev installs for itself.
 */
#ifndef GEV_SRC_PROC_SIGNAL_INTERNAL_H
#define GEV_SRC_PROC_SIGNAL_INTERNAL_H

#include "gev/signal.h"

/* Installs fn (with a NULL arg) as a handler of signum in the calling
 * thread's hub, unless gev already installed the same one there. The
 * handle is gev's: it is freed when the hub goes. 0, or -1 with the
 * errors of gev_signal_handler. */
int gev__signal_handler_owned(int signum, gev_signal_fn fn);

#endif
