/*
 * The hub's resolver: one c-ares channel per hub, driven by the hub's libev
 * loop.
 *
 * c-ares tells us which sockets it wants watched through
 * ARES_OPT_SOCK_STATE_CB: each call names a socket and whether it wants
 * read and/or write readiness; (0, 0) means the socket is being closed. We
 * keep one ev_io per such socket. Retries and timeouts are c-ares' own; we
 * only have to call back into it when the earliest of its deadlines has
 * passed, so one one-shot ev_timer is re-armed from ares_timeout() after
 * every call that can change the deadlines (a query sent, sockets
 * processed, the timer itself fired). There is no polling tick: an idle
 * resolver has no active watcher at all, because c-ares closes its sockets
 * as soon as no query is left (we never set ARES_FLAG_STAYOPEN).
 *
 * Quirks of c-ares 1.18 this file relies on or works around:
 *   - every lookup call invokes its callback exactly once, possibly before
 *     it returns (literals, /etc/hosts, bad arguments);
 *   - there is no way to cancel one query, only all of them (ares_cancel),
 *     so an interrupted lookup is detached instead, and the detached
 *     queries are cancelled together once no live lookup is left;
 *   - servers, timeout and tries cannot change while queries are pending
 *     (the channel is rebuilt between lookups instead);
 *   - callbacks run inside ares_process_fd(), ares_cancel() and
 *     ares_destroy(); they only record results and wake the caller, never
 *     call back into c-ares;
 *   - ARES_OPT_SOCK_STATE_CB cannot refuse a socket, but the socket
 *     creation callback (ares_set_socket_callback) can, by returning -1
 *     (exactly -1: c-ares 1.18 tests for it): the socket is closed and the
 *     query fails over to the next server, or ends with ARES_ECONNREFUSED.
 *     So a socket's watcher is allocated there, and a query that ends
 *     that way after an allocation failed is reported as ENOMEM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gev/dns.h"
#include "hub/hooks.h"
#include "net/dns_internal.h"

/* One watched c-ares socket. */
typedef struct dns_sock {
  ev_io io;              /* private: data points to the resolver */
  struct dns_sock *next; /* private: on gev__resolver.socks */
} dns_sock;

/* Receive buffer of the resolver's sockets. Thousands of lookups in
 * flight get their answers in bursts; the kernel's default (~200 KiB,
 * about 300 small datagrams) drops the rest, which then wait for a retry.
 * The kernel caps it at net.core.rmem_max. */
#define GEV_DNS_RCVBUF (4 << 20)

/* Queries handed to c-ares at once per hub; further lookups wait (FIFO)
 * for one of them to finish. Bursts of thousands of datagrams overflow the
 * servers' receive buffers (dnsmasq's is the kernel default), and every
 * query lost that way costs a whole retry timeout; a bounded window keeps
 * the burst within what a server can absorb, and costs nothing at lower
 * concurrency. */
#define GEV_DNS_MAX_QUERIES 256

struct gev__resolver {
  gev__hub *hub;        /* ro: the hub this resolver belongs to */
  struct ev_loop *loop; /* ro: that hub's loop */
  ares_channel channel; /* private: NULL until the first lookup */
  int first_timeout_ms; /* ro: the channel's first-try timeout */
  ev_timer timer;       /* private: one-shot, from ares_timeout() */
  dns_sock *socks;      /* private: watched sockets */
  size_t live;          /* ro: lookups parked waiting for an answer */
  size_t inflight;      /* ro: requests whose callback has not run */
  gev__waitq slots;     /* private: lookups waiting for a query slot */
  int loop_gone;        /* private: hub died first; don't touch loop */
  int sock_nomem;       /* private: a socket could not be tracked since
                           the resolver was last idle */
  int dying;            /* private: freeing; callers will never resume */
  unsigned forks;       /* ro: fork_count when its sockets were made */
  ev_cleanup cleanup;   /* private: frees the resolver with the loop */
  /* ro: gev__hub_id(hub) (a new hub may reuse the address of one that is
   * gone) */
  unsigned long long hub_id;
};

/* The calling thread's resolver (see resolver_get() for its lifetime)
 * lives in its slot of the hub layer's thread block (park.h): libgev has
 * one thread-local variable, the coroutine layer's. */
static gev__resolver *resolver_peek(void) {
  return gev__thread_slot_peek(GEV__SLOT_RESOLVER);
}
/* Set only once the thread's hub, so its block, exists. */
static void resolver_set(gev__resolver *r) {
  gev__thread_slot_set(GEV__SLOT_RESOLVER, r);
}
static pthread_once_t resolver_once = PTHREAD_ONCE_INIT;
static unsigned fork_count; /* see count_fork() */

/* ---- Errors ------------------------------------------------------------ */

int gev__dns_eai_from_ares(int status) {
  switch (status) {
  case ARES_SUCCESS:
    return 0;
  case ARES_ENOTFOUND:
  case ARES_EBADNAME:
  case ARES_ENONAME:
    return EAI_NONAME;
  case ARES_ENODATA:
    return EAI_NODATA;
  case ARES_ESERVFAIL:
    return EAI_AGAIN;
  case ARES_EREFUSED:
    return EAI_FAIL;
  case ARES_EBADFAMILY:
    return EAI_FAMILY;
  case ARES_EBADFLAGS:
  case ARES_EBADHINTS:
    return EAI_BADFLAGS;
  case ARES_ESERVICE:
    return EAI_SERVICE;
  case ARES_ENOMEM:
    return EAI_MEMORY;
  default:
    break;
  }
  switch (status) {
  case ARES_ETIMEOUT:
    errno = ETIMEDOUT;
    break;
  case ARES_ECONNREFUSED:
    errno = ECONNREFUSED;
    break;
  case ARES_EBADRESP:
  case ARES_EOF:
    errno = EBADMSG;
    break;
  case ARES_EFORMERR:
  case ARES_ENOTIMP:
    errno = EPROTO;
    break;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    errno = ECANCELED;
    break;
  default:
    errno = EIO; /* LCOV_EXCL_LINE: c-ares status we never see for lookups */
    break;
  }
  return EAI_SYSTEM;
}

const char *gev_dns_strerror(int code) {
  switch (code) {
  case 0:
    return "Success";
  case EAI_NONAME:
    return "Name not found";
  case EAI_NODATA:
    return "No address for this name";
  case EAI_AGAIN:
    return "Server failure (try again later)";
  case EAI_FAIL:
    return "Query refused by the server";
  case EAI_ADDRFAMILY:
    return "Address family for host name not supported";
  case EAI_SYSTEM:
    return strerror(errno);
  default:
    return gai_strerror(code);
  }
}

/* ---- Socket watchers --------------------------------------------------- */

static void timer_rearm(gev__resolver *r);

static void sock_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  gev__resolver *r = w->data;
  ares_socket_t fd = w->fd;
  /* ares_process_fd may close this socket and so free w: use copies. */
  ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  timer_rearm(r);
}

static dns_sock *sock_find(gev__resolver *r, ares_socket_t fd,
                           dns_sock ***link) {
  dns_sock **p = &r->socks;
  while (*p && (*p)->io.fd != fd)
    p = &(*p)->next;
  *link = p;
  return *p;
}

static void sock_forget(gev__resolver *r, dns_sock **link) {
  dns_sock *s = *link;
  if (ev_is_active(&s->io)) {
    if (!r->loop_gone)
      ev_io_stop(r->loop, &s->io);
    gev__watcher_stopped();
  }
  *link = s->next;
  free(s);
}

static void sock_watch(gev__resolver *r, dns_sock *s, int events) {
  if (ev_is_active(&s->io)) {
    if ((s->io.events & (EV_READ | EV_WRITE)) == events)
      return;
    ev_io_stop(r->loop, &s->io);
  } else {
    gev__watcher_started();
  }
  ev_io_set(&s->io, s->io.fd, events);
  ev_io_start(r->loop, &s->io);
}

/* A new, not yet watched entry for fd, or NULL (then r->sock_nomem). */
static dns_sock *sock_track(gev__resolver *r, ares_socket_t fd) {
  dns_sock *s = calloc(1, sizeof *s);
  if (!s) {
    r->sock_nomem = 1;
    return NULL;
  }
  ev_io_init(&s->io, sock_io_cb, fd, 0);
  s->io.data = r;
  s->next = r->socks;
  r->socks = s;
  return s;
}

/* ares_set_socket_callback: c-ares opened fd for a query. Tracking it
 * needs memory, which can still be refused here (see the file comment). */
static int sock_create_cb(ares_socket_t fd, int type, void *data) {
  (void)type;
  return sock_track(data, fd) ? 0 : -1;
}

/* ARES_OPT_SOCK_STATE_CB: c-ares wants fd watched for the given readiness,
 * or (0, 0) forgotten. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
                          int writable) {
  gev__resolver *r = data;
  dns_sock **link;
  dns_sock *s = sock_find(r, fd, &link);
  if (!readable && !writable) {
    if (s)
      sock_forget(r, link);
    return;
  }
  if (r->loop_gone)
    return; /* LCOV_EXCL_LINE: no new sockets while tearing down */
  /* Tracked by sock_create_cb; defensive for a c-ares that did not call it:
   * an untracked socket leaves its query to time out, reported ENOMEM. */
  if (!s && !(s = sock_track(r, fd)))
    return; /* LCOV_EXCL_LINE: c-ares 1.18 always calls sock_create_cb */
  sock_watch(r, s, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
}

/* ---- The deadline timer ------------------------------------------------ */

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  gev__resolver *r = w->data;
  gev__watcher_stopped(); /* a one-shot timer is inactive once it fired */
  ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  timer_rearm(r);
}

static void timer_stop(gev__resolver *r) {
  if (!ev_is_active(&r->timer))
    return;
  if (!r->loop_gone)
    ev_timer_stop(r->loop, &r->timer);
  gev__watcher_stopped();
}

/* Arms the timer for c-ares' earliest deadline, or stops it when no query
 * is pending. */
static void timer_rearm(gev__resolver *r) {
  struct timeval tv;
  if (!r->channel || !ares_timeout(r->channel, NULL, &tv)) {
    timer_stop(r);
    return;
  }
  double after = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
  if (ev_is_active(&r->timer))
    ev_timer_stop(r->loop, &r->timer);
  else
    gev__watcher_started();
  ev_now_update(r->loop); /* "after" counts from now, not the last poll */
  ev_timer_set(&r->timer, after, 0.);
  ev_timer_start(r->loop, &r->timer);
}

/* After a query was sent: a new query's first deadline is now + the first
 * try timeout, so a timer already due sooner than that stays as it is.
 * This keeps a burst of N queries from costing N walks of c-ares' query
 * list each. */
static void timer_note_new_query(gev__resolver *r) {
  if (ev_is_active(&r->timer) &&
      ev_timer_remaining(r->loop, &r->timer) * 1000. <= r->first_timeout_ms)
    return;
  timer_rearm(r);
}
/* ---- The channel ------------------------------------------------------- */

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;

static void ares_lib_init(void) {
  ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int channel_options(gev__resolver *r, const gev__dns_config *cfg,
                           struct ares_options *o) {
  int mask = ARES_OPT_SOCK_STATE_CB;
  memset(o, 0, sizeof *o);
  o->sock_state_cb = sock_state_cb;
  o->sock_state_cb_data = r;
  if (cfg->timeout_ms > 0) {
    o->timeout = cfg->timeout_ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (cfg->tries > 0) {
    o->tries = cfg->tries;
    mask |= ARES_OPT_TRIES;
  }
  o->socket_receive_buffer_size = GEV_DNS_RCVBUF;
  mask |= ARES_OPT_SOCK_RCVBUF;
  /* The hosts file first, then DNS, whatever nsswitch.conf says: names in
   * /etc/hosts must never cost a query (gev/dns.h promises it). */
  o->lookups = (char *)"fb";
  mask |= ARES_OPT_LOOKUPS;
  if (cfg->rotate == 1)
    mask |= ARES_OPT_ROTATE;
  else if (cfg->rotate == 0)
    mask |= ARES_OPT_NOROTATE;
  return mask;
}

/* The first-try timeout c-ares settled on (from resolv.conf or ours). */
static int channel_first_timeout_ms(ares_channel ch) {
  struct ares_options o;
  int mask, ms = 0;
  if (ares_save_options(ch, &o, &mask) != ARES_SUCCESS)
    return 0; /* LCOV_EXCL_LINE: only fails on ENOMEM; 0 disables a shortcut */
  if (mask & ARES_OPT_TIMEOUTMS)
    ms = o.timeout;
  else if (mask & ARES_OPT_TIMEOUT)
    ms = o.timeout * 1000;
  ares_destroy_options(&o);
  return ms;
}

/* A channel from r's settings, plus c-ares flags. */
static int channel_init(gev__resolver *r, const gev__dns_config *cfg, int flags,
                        ares_channel *ch) {
  struct ares_options o;
  int mask = channel_options(r, cfg, &o), status;
  if (flags) {
    o.flags = flags;
    mask |= ARES_OPT_FLAGS;
  }
  if ((status = ares_init_options(ch, &o, mask)) != ARES_SUCCESS)
    return status;
  if (cfg->servers &&
      (status = ares_set_servers_ports_csv(*ch, cfg->servers)) != ARES_SUCCESS)
    ares_destroy(*ch);
  else
    ares_set_socket_callback(*ch, sock_create_cb, r);
  return status;
}

/*
 * The channel's servers as "ip:port,..." (gev's format, see
 * gev_dns_get_servers), into a heap string; NULL with ENOMEM. c-ares 1.24
 * added ares_get_servers_csv and later ones deprecate the list calls, so
 * the csv is used where it exists (meson checks for it) and the list of
 * ares_get_servers_ports elsewhere (c-ares 1.18 ... 1.23).
 */
#ifdef GEV_HAVE_ARES_GET_SERVERS_CSV
static char *channel_servers(ares_channel ch) {
  char *csv = ares_get_servers_csv(ch), *out = NULL;
  size_t len = csv ? 2 * strlen(csv) + 16 : 0;
  if (csv && (out = malloc(len)) &&
      gev__dns_servers_normalize(csv, out, len) < 0) {
    free(out);
    out = NULL;
  }
  ares_free_string(csv);
  if (!out)
    errno = ENOMEM;
  return out;
}
#else
static int server_format(const struct ares_addr_port_node *s, char *buf,
                         size_t len) {
  char ip[INET6_ADDRSTRLEN];
  int port = s->udp_port ? s->udp_port : 53;
  inet_ntop(s->family, &s->addr, ip, sizeof ip);
  return snprintf(buf, len, s->family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
                  port);
}

static char *channel_servers(ares_channel ch) {
  struct ares_addr_port_node *list = NULL;
  size_t used = 0, len = 1;
  char *out;
  if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
    goto out_nomem; /* LCOV_EXCL_LINE: its only failure */
  for (struct ares_addr_port_node *s = list; s; s = s->next)
    len += INET6_ADDRSTRLEN + 10;
  if (!(out = malloc(len)))
    goto out_free_list;
  out[0] = '\0';
  for (struct ares_addr_port_node *s = list; s; s = s->next) {
    if (used)
      out[used++] = ',';
    used += (size_t)server_format(s, out + used, len - used);
  }
  ares_free_data(list);
  return out;
out_free_list:
  ares_free_data(list);
out_nomem:
  errno = ENOMEM;
  return NULL;
}
#endif

static int channel_server_count(ares_channel ch) {
  char *list = channel_servers(ch);
  int n = 0;
  if (!list)
    return -1; /* LCOV_EXCL_LINE: only on ENOMEM */
  for (const char *p = list; *p; p++)
    n += *p == ',';
  n += list[0] != '\0';
  free(list);
  return n;
}

/*
 * With several servers c-ares answers SERVFAIL, REFUSED and NOTIMP by
 * trying the next server, and reports only ARES_ECONNREFUSED when all of
 * them failed. With a single server there is nobody to fail over to, so
 * ARES_FLAG_NOCHECKRESP lets the server's own answer through: the caller
 * gets "server failure" or "refused" instead of a misleading "connection
 * refused", and no pointless retries of the same server.
 */
static int channel_open(gev__resolver *r) {
  const gev__dns_config *cfg;
  ares_channel ch;
  int status;
  pthread_once(&ares_once, ares_lib_init);
  if ((status = ares_init_status) != ARES_SUCCESS)
    goto out_report; /* LCOV_EXCL_LINE: a no-op on Linux */
  if (!(cfg = gev__dns_settings()))
    return -1;
  if ((status = channel_init(r, cfg, 0, &ch)) != ARES_SUCCESS)
    goto out_report;
  if (channel_server_count(ch) == 1) {
    ares_destroy(ch);
    status = channel_init(r, cfg, ARES_FLAG_NOCHECKRESP, &ch);
    if (status != ARES_SUCCESS)
      goto out_report;
  }
  r->channel = ch;
  r->first_timeout_ms = channel_first_timeout_ms(ch);
  return 0;

out_report:
  if (status == ARES_ENOMEM) {
    errno = ENOMEM;
    return -1;
  }
  gev__log(GEV_LOG_ERROR, "gev: cannot set up the c-ares resolver: %s",
           ares_strerror(status));
  errno = EIO;
  return -1;
}

/* Closes the channel. Callbacks of the requests still pending run with
 * ARES_EDESTRUCTION; they are all detached (a live one would be a parked
 * greenlet, and the hub kills those before it goes). */
static void channel_close(gev__resolver *r) {
  if (!r->channel)
    return;
  ares_destroy(r->channel);
  r->channel = NULL;
  while (r->socks) /* LCOV_EXCL_LINE: c-ares reported every close above */
    sock_forget(r, &r->socks);
  timer_stop(r);
}

/* ---- The resolver's lifetime ------------------------------------------- */

/*
 * The resolver belongs to the hub it was made for and goes with it: an
 * ev_cleanup watcher on the hub's loop frees it when gev_hub_destroy()
 * destroys the loop (cleanup watchers hold no reference on the loop, so it
 * does not keep the hub busy, and it is not one of gev's counted
 * watchers). By then the hub has killed its greenlets, so every query is
 * detached and ares_destroy() only frees them.
 */
static void resolver_free(gev__resolver *r) {
  channel_close(r);
  if (!r->loop_gone)
    ev_cleanup_stop(r->loop, &r->cleanup);
  if (resolver_peek() == r)
    resolver_set(NULL);
  free(r);
}

/* Frees r for good: pending requests are freed by their callbacks without
 * waking anyone, and tasks waiting for a slot are forgotten. Normally none
 * of either is left (the hub killed its greenlets first); after a fork
 * that discards the hub, their greenlets are gone without running again. */
static void resolver_kill(gev__resolver *r) {
  r->dying = 1;
  memset(&r->slots, 0, sizeof r->slots);
  resolver_free(r);
}

static void cleanup_cb(struct ev_loop *loop, ev_cleanup *w, int revents) {
  resolver_kill(w->data);
}

/* Defensive: a resolver whose hub is gone without its cleanup having run
 * is dropped without touching the loop. */
static void resolver_drop_stale(gev__hub *h) {
  gev__resolver *r = resolver_peek();
  if (!r || (r->hub_id == gev__hub_id(h) && r->loop == gev__hub_evloop(h)))
    return;
  r->loop_gone = 1;
  resolver_kill(r);
}

/* In a child that kept its hub (gev_fork(GEV_FORK_KEEP) re-arms the loop):
 * the channel's sockets are shared with the parent, and reading them here
 * would steal the parent's answers. The channel is closed; lookups that
 * were in flight fail with ECANCELED, and the next lookup opens a fresh
 * channel of this process's own. */
static void resolver_after_fork(gev__resolver *r) {
  r->forks = fork_count;
  channel_close(r);
}

/* Counts forks in this process's line (a child sees one more than the
 * parent had), so a resolver notices it is in a child without a syscall
 * per lookup. */
static void count_fork(void) { fork_count++; }

/* In a child that kept its hub (the resolver's fork hook): the shared
 * channel goes at once, not at the next lookup. A child that had no
 * resolver gets none. */
static void resolver_keep_after_fork(void) {
  gev__resolver *r = resolver_peek();
  if (r && r->forks != fork_count)
    resolver_after_fork(r);
}

static const gev__fork_hooks resolver_fork_hooks = {
    .layer = GEV__LAYER_NET, .keep = resolver_keep_after_fork};

static void resolver_global_init(void) {
  pthread_atfork(NULL, NULL, count_fork);
  gev__at_fork(&resolver_fork_hooks);
}

/* The calling thread's resolver (without a channel yet), or NULL with
 * errno ENOMEM. */
static gev__resolver *resolver_get(void) {
  gev__hub *h = gev__hub_get();
  if (!h)
    return NULL;
  resolver_drop_stale(h);
  gev__resolver *r = resolver_peek();
  if (r && r->forks != fork_count)
    resolver_after_fork(r);
  if (r)
    return r;
  r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->hub = h;
  r->hub_id = gev__hub_id(h);
  r->loop = gev__hub_evloop(h);
  pthread_once(&resolver_once, resolver_global_init);
  r->forks = fork_count;
  ev_init(&r->timer, timer_cb);
  r->timer.data = r;
  ev_cleanup_init(&r->cleanup, cleanup_cb);
  r->cleanup.data = r;
  ev_cleanup_start(r->loop, &r->cleanup);
  resolver_set(r);
  return r;
}

/* Cancels the detached queries once no lookup waits any more, so that an
 * idle resolver holds no socket and no watcher. */
static void resolver_reap(gev__resolver *r) {
  if (r->live > 0 || r->inflight == 0 || !r->channel)
    return;
  ares_cancel(r->channel);
  timer_rearm(r);
}

/* ---- Requests ---------------------------------------------------------- */

/* Takes one of the GEV_DNS_MAX_QUERIES slots (counted in inflight),
 * parking FIFO while none is free. A slot freed while lookups wait is
 * handed to the first of them directly (slot_release), so no newcomer can
 * overtake it. */
static int slot_take(gev__resolver *r) {
  if (r->inflight < GEV_DNS_MAX_QUERIES && r->slots.len == 0) {
    r->inflight++;
    return 0;
  }
  return gev__waitq_wait(&r->slots, -1, "dns query slot", NULL);
}

static void slot_release(gev__resolver *r) {
  if (r->dying || !gev__waitq_wake_one(&r->slots, NULL, 0))
    r->inflight--;
  if (r->inflight == 0)
    r->sock_nomem = 0;
}

gev__dns_req *gev__dns_req_new(gev__dns_want want, int *eai) {
  gev__resolver *r;
  gev__dns_req *q;
  if (gev__may_block() < 0)
    goto out_system;
  if (!(r = resolver_get()) || slot_take(r) < 0)
    goto out_system;
  /* The channel may have been closed (fork) while we waited for a slot. */
  if ((!r->channel && channel_open(r) < 0) || !(q = calloc(1, sizeof *q))) {
    int err = errno;
    slot_release(r);
    errno = err;
    goto out_system;
  }
  q->resolver = r;
  q->want = want;
  return q;

out_system:
  *eai = errno == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
  return NULL;
}

ares_channel gev__dns_req_channel(const gev__dns_req *q) {
  return q->resolver->channel;
}

void gev__dns_req_free(gev__dns_req *q) {
  free(q->host);
  if (q->ai)
    ares_freeaddrinfo(q->ai);
  free(q);
}

/* Parks the caller until q is done; returns 0 or the errno of the
 * interruption. */
static int req_park(gev__dns_req *q) {
  gev__resolver *r = q->resolver;
  int err = 0;
  r->live++;
  while (!q->done && !err) {
    q->task = gev__task_current();
    if (gev__park(-1, "dns lookup", NULL) < 0)
      err = errno;
    q->task = NULL;
  }
  r->live--;
  return err;
}

int gev__dns_req_wait(gev__dns_req *q) {
  gev__resolver *r = q->resolver;
  int err = 0;
  if (!q->done) {
    timer_note_new_query(r);
    err = req_park(q);
  }
  if (err && !q->done)
    q->detached = 1; /* the callback frees it */
  else if (err)
    gev__dns_req_free(q);
  resolver_reap(r);
  if (!err)
    return 0;
  errno = err;
  return EAI_SYSTEM;
}

int gev__dns_req_finish(gev__dns_req *q, int status) {
  /* No server reached (or an answer lost) while a socket could not be
   * tracked: memory was the reason, not the servers. */
  if (q->resolver->sock_nomem &&
      (status == ARES_ECONNREFUSED || status == ARES_ETIMEOUT))
    status = ARES_ENOMEM;
  slot_release(q->resolver);
  if (q->detached || q->resolver->dying) {
    gev__dns_req_free(q);
    return 0;
  }
  q->status = status;
  q->done = 1;
  if (q->task)
    gev__wake(q->task, NULL, 0);
  return 1;
}

void gev__dns_addrinfo_cb(void *arg, int status, int timeouts,
                          struct ares_addrinfo *ai) {
  gev__dns_req *q = arg;
  q->ai = ai; /* owned by q now, freed with it */
  gev__dns_req_finish(q, status);
}

/* ---- For the configuration calls --------------------------------------- */

int gev__dns_resolver_reset(void) {
  gev__resolver *r = resolver_peek();
  if (r && r->inflight > 0) {
    errno = EBUSY;
    return -1;
  }
  if (r)
    channel_close(r);
  return 0;
}

int gev_dns_get_servers(char *buf, size_t len) {
  if (!buf || len == 0) {
    errno = EINVAL;
    return -1;
  }
  gev__resolver *r = resolver_get();
  if (!r || (!r->channel && channel_open(r) < 0))
    return -1;
  char *list = channel_servers(r->channel);
  if (!list)
    return -1; /* LCOV_EXCL_LINE: ENOMEM */
  size_t n = strlen(list);
  int rc = 0;
  if (n >= len) {
    errno = ERANGE;
    rc = -1;
  } else {
    memcpy(buf, list, n + 1);
  }
  free(list);
  return rc;
}
