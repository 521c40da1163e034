/*
 * Internal to src/proc: the gev_process object shared by process.c
 * (spawn, wait, kill, free) and communicate.c (communicate, run).
 *
 * A process is a heap object owned by its creator and by the hub:
 *   - its child watch (hub/child.h) runs from spawn until the child is
 *     reaped, keeps the hub's loop running meanwhile, and on completion
 *     wakes every greenlet parked in gev_process_wait;
 *   - calls that park hold a reference (refs), so a gev_process_free
 *     meanwhile only marks it freed; the object goes when it is freed, no
 *     call is in progress, and the watch is over (child reaped, or the hub
 *     gone);
 *   - the hub's process list (one per thread, with an ev_cleanup watcher
 *     on the loop) lets gev_hub_destroy stop every watch: processes then
 *     report what they know, and ECHILD for what they cannot learn any
 *     more.
 * Pipes are gev_sockets; the process holds a reference to each, so its
 * pointers stay valid after the caller closed one.
 */
#ifndef GEV_SRC_PROC_PROCESS_INTERNAL_H
#define GEV_SRC_PROC_PROCESS_INTERNAL_H

#include "gev/process.h"
#include "hub/child.h"
#include "hub/park.h"

typedef struct proc_state proc_state;

struct gev_process {
  gev__child_watch watch;   /* private: first, on_done finds the process */
  proc_state *state;        /* ro: its hub's list; NULL once the hub is gone */
  gev__hub *hub;            /* ro */
  pid_t pid;                /* ro */
  gev_socket *stdio[3];     /* ro: parent ends of the pipes, or NULL */
  unsigned refs;            /* private: calls in progress */
  unsigned char freed;      /* private: the owner let go */
  gev__waitq waiters;       /* private: greenlets in gev_process_wait */
  gev_process *prev, *next; /* private: on the hub's list */
  /* ro: gev__hub_id(hub), for identity checks (a new hub may reuse the
   * address of one that is gone) */
  unsigned long long hub_id;
};

/* process.c: checks p for a call from this thread; 0 or -1 (EINVAL,
 * EXDEV). */
int gev__process_check(const gev_process *p);

/* process.c: takes and drops a call's reference (see above). */
void gev__process_enter(gev_process *p);
void gev__process_leave(gev_process *p);

/* process.c: the child is to go: SIGKILL if it still runs; the hub reaps
 * it (its watch keeps running). */
void gev__process_kill_now(gev_process *p);

#endif
