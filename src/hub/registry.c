/*
 * The registry: every hub of the process on one list, for the two things
 * that look at hubs from outside their threads. The blocking monitor's
 * thread (monitor.c) walks it under the lock; a debugger (tools/gdb/gev.py)
 * reads it from memory, with the layout table below, in a live process or
 * a core file. A hub is listed from its creation to its teardown (or until
 * its thread exits, if it could not be torn down).
 *
 * After fork the child has only the thread that forked: the hubs of the
 * parent's other threads are taken off the child's list (their memory is
 * the child's to leak, as the rest of those threads' state), and the
 * forking thread's hub gets the child's thread id.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coro/debug_table.h"
#include "hub/hub_internal.h"

static gev__hub *hubs; /* newest first */
static pthread_mutex_t hubs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

void gev__registry_lock(void) { pthread_mutex_lock(&hubs_lock); }
void gev__registry_unlock(void) { pthread_mutex_unlock(&hubs_lock); }
gev__hub *gev__registry_first(void) { return hubs; }

static void unlink_hub(gev__hub *h) {
  if (h->reg_prev)
    h->reg_prev->reg_next = h->reg_next;
  else
    hubs = h->reg_next;
  if (h->reg_next)
    h->reg_next->reg_prev = h->reg_prev;
  h->reg_prev = h->reg_next = NULL;
  h->listed = 0;
}

static int thread_id(void) { return (int)syscall(SYS_gettid); }

/* In the child: only the hub of the calling thread (if any) stays. */
static void atfork_child(void) {
  gev__hub *mine = gev__hub_peek(), *h, *next;
  pthread_mutex_init(&hubs_lock, NULL);
  for (h = hubs; h; h = next) {
    next = h->reg_next;
    if (h != mine)
      unlink_hub(h);
  }
  if (mine)
    mine->tid = thread_id();
}

static void atfork_prepare(void) { pthread_mutex_lock(&hubs_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&hubs_lock); }

static void install_atfork(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void gev__registry_add(gev__hub *h) {
  pthread_once(&atfork_once, install_atfork);
  h->tid = thread_id();
  pthread_mutex_lock(&hubs_lock);
  h->reg_prev = NULL;
  h->reg_next = hubs;
  if (hubs)
    hubs->reg_prev = h;
  hubs = h;
  h->listed = 1;
  pthread_mutex_unlock(&hubs_lock);
}

void gev__registry_remove(gev__hub *h) {
  pthread_mutex_lock(&hubs_lock);
  if (h->listed)
    unlink_hub(h);
  pthread_mutex_unlock(&hubs_lock);
}

ssize_t gev__read_proc(const char *path, char *buf, size_t size) {
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return n;
}

/* The hub layer's table for debuggers (coro/debug_table.h). */
GEV_EXTERN const gev__debug_entry gev__debug_hub[] = {
    GEV__DEBUG_CONST("version", 1),
    GEV__DEBUG_ADDR("hubs", &hubs),
    GEV__DEBUG_FIELD("hub.reg_next", gev__hub, reg_next),
    GEV__DEBUG_FIELD("hub.id", gev__hub, id),
    GEV__DEBUG_FIELD("hub.tid", gev__hub, tid),
    GEV__DEBUG_FIELD("hub.thr", gev__hub, thr),
    GEV__DEBUG_FIELD("hub.coro", gev__hub, coro),
    GEV__DEBUG_FIELD("hub.greenlets", gev__hub, greenlets),
    GEV__DEBUG_FIELD("hub.main_task", gev__hub, main_task),
    GEV__DEBUG_FIELD("hub.plain_tasks", gev__hub, plain_tasks),
    GEV__DEBUG_FIELD("hub.turns", gev__hub, turns),
    GEV__DEBUG_FIELD("hub.turn_time", gev__hub, turn_time),
    GEV__DEBUG_FIELD("hub.in_poll", gev__hub, in_poll),
    GEV__DEBUG_FIELD("greenlet.next", gev_greenlet, next),
    GEV__DEBUG_FIELD("greenlet.task", gev_greenlet, task),
    GEV__DEBUG_FIELD("greenlet.coro", gev_greenlet, coro),
    GEV__DEBUG_FIELD("greenlet.name", gev_greenlet, name),
    GEV__DEBUG_FIELD("greenlet.id", gev_greenlet, id),
    GEV__DEBUG_FIELD("greenlet.started", gev_greenlet, started),
    GEV__DEBUG_FIELD("greenlet.ready", gev_greenlet, ready),
    GEV__DEBUG_FIELD("greenlet.err", gev_greenlet, err),
    GEV__DEBUG_FIELD("task.coro", gev__task, coro),
    GEV__DEBUG_FIELD("task.what", gev__task, what),
    GEV__DEBUG_FIELD("task.parked", gev__task, parked),
    GEV__DEBUG_FIELD("task.killed", gev__task, killed),
    GEV__DEBUG_FIELD("task.parked_at", gev__task, parked_at),
    GEV__DEBUG_FIELD("task.plain_next", gev__task, plain_next),
    GEV__DEBUG_END,
};
