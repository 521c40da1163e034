/*
 * Internal: how subsystems take part in fork without the fork code
 * knowing them.
 *
 * Each subsystem that holds per-hub state the kernel shares across fork
 * (the loop's epoll set, the resolver's sockets, signal watchers)
 * registers a set of hooks once, with the layer it belongs to. gev_fork,
 * gev_fork_reinit and gev_fork_discard (src/proc/fork.c) run them in
 * layer order:
 *
 *   prepare  in the parent right before fork(2)      top layer first
 *   parent   in the parent right after fork(2)       bottom layer first
 *   keep     in a child that keeps the hub           bottom layer first
 *   discard  in a child that drops the hub           top layer first
 *
 * so a layer is set up again after the layers it stands on (keep), and
 * dropped while those are still intact (discard: the signal watchers are
 * stopped before the hub's loop is destroyed). Hooks run in the thread
 * that forked, for that thread's hub; any hook may be NULL.
 *
 * The end of a hub (gev_hub_destroy, thread exit, a discarding fork):
 * a subsystem keeps its per-hub state in a gev__hub_state, whose exit hook
 * runs when the hub's loop is destroyed (an ev_cleanup watcher).
 */
#ifndef GEV_SRC_HUB_HOOKS_H
#define GEV_SRC_HUB_HOOKS_H

#include <stddef.h>

#include <ev.h>

typedef enum gev__layer {
  GEV__LAYER_HUB = 1,
  GEV__LAYER_NET = 2,
  GEV__LAYER_PROC = 3,
} gev__layer;

typedef struct gev__fork_hooks {
  gev__layer layer;
  void (*prepare)(void);
  void (*parent)(void);
  void (*keep)(void);
  void (*discard)(void);
} gev__fork_hooks;

/* Registers hooks (static storage). Registering the same hooks again
 * does nothing. Thread-safe; at most 16 sets (a broken invariant aborts
 * beyond). */
void gev__at_fork(const gev__fork_hooks *hooks);

/* Run the registered hooks of one kind, in the order above. They take no
 * lock, so a child can run them whatever other threads held at fork. */
void gev__fork_run_prepare(void);
void gev__fork_run_parent(void);
void gev__fork_run_keep(void);
void gev__fork_run_discard(void);

/* A subsystem's state for one hub: the first member of its own struct,
 * found through the subsystem's slot of the thread block (park.h,
 * gev__thread_hub_state). */
typedef struct gev__hub_state gev__hub_state;
struct gev__hub_state {
  struct ev_loop *loop;             /* ro: the hub's loop */
  ev_cleanup cleanup;               /* private: runs gone */
  gev__hub_state **slot;            /* private: the thread's pointer */
  void (*gone)(gev__hub_state *st); /* private: the exit hook */
};

/* The state in *slot if it belongs to the calling thread's current hub;
 * else a new one of size bytes (zeroed, hub created if needed), stored in
 * *slot. When the hub's loop is destroyed, gone(st) runs (in the hub's
 * thread, with the loop still usable to stop watchers), then st is freed
 * and *slot cleared. NULL with errno (ENOMEM). */
gev__hub_state *gev__hub_state_get(gev__hub_state **slot, size_t size,
                                   void (*gone)(gev__hub_state *st));

/* Frees st now without running its exit hook (a forked child dropping
 * what its parent's hub had). */
void gev__hub_state_drop(gev__hub_state *st);

#endif
