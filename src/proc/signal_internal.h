/*
 * Internal: what fork support (src/proc/fork.c) needs from signal.c to
 * drop a forked parent's signal state in the child without running any of
 * it.
 */
#ifndef GEV_SRC_PROC_SIGNAL_INTERNAL_H
#define GEV_SRC_PROC_SIGNAL_INTERNAL_H

/* Stops and frees every gev signal handler and wait of the calling
 * thread, without running anything. */
void gev__signal_forget_all(void);

#endif
