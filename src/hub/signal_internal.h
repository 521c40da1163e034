/*
 * Internal: what fork support (src/net/fork.c) needs from the hub layer to
 * drop a forked parent's hub in the child without running any of it.
 */
#ifndef GEV_SRC_HUB_SIGNAL_INTERNAL_H
#define GEV_SRC_HUB_SIGNAL_INTERNAL_H

/* signal.c: stops and frees every gev signal handler and wait of the
 * calling thread, without running anything. */
void gev__signal_forget_all(void);

/* hub.c: forgets the calling thread's hub after fork: releases the stacks
 * and control blocks of its greenlets and of the hub coroutine without
 * running them, destroys its loop, frees the hub. The next gev call makes
 * a new hub. Must be called from the thread's main coroutine. 0, or -1
 * with EPERM (not the main coroutine). 0 when there is no hub. */
int gev__hub_forget_after_fork(void);

#endif
