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
 *     call back into c-ares.
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

/* Settings; 0 (or NULL) means "the default". */
typedef struct dns_config {
  char *servers;  /* "ip[:port],..." or NULL */
  int timeout_ms; /* first try */
  int tries;
  int rotate; /* -1 default, 0 off, 1 on */
} dns_config;

struct gev__resolver {
  gev__hub *hub;          /* ro: the hub this resolver belongs to */
  struct ev_loop *loop;   /* ro: that hub's loop */
  ares_channel channel;   /* private: NULL until the first lookup */
  int first_timeout_ms;   /* ro: the channel's first-try timeout */
  ev_timer timer;         /* private: one-shot, from ares_timeout() */
  dns_sock *socks;        /* private: watched sockets */
  size_t live;            /* ro: lookups parked waiting for an answer */
  size_t inflight;        /* ro: requests whose callback has not run */
  gev__waitq slots;       /* private: lookups waiting for a query slot */
  int loop_gone;          /* private: hub died first; don't touch loop */
  ev_cleanup cleanup;     /* private: frees the resolver with the loop */
  dns_config cfg;         /* rw: via gev_dns_set_* */
};

/* The calling thread's resolver. See resolver_get() for its lifetime. */
static __thread gev__resolver *tls_resolver;

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

/* ---- Socket watchers ---------------------------------------------------- */

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
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) /* LCOV_EXCL_START: c-ares offers no way to refuse a socket */
      gev__die("gev: out of memory watching a c-ares socket");
    /* LCOV_EXCL_STOP */
    ev_io_init(&s->io, sock_io_cb, fd, 0);
    s->io.data = r;
    s->next = r->socks;
    r->socks = s;
  }
  sock_watch(r, s, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
}

/* ---- The deadline timer ------------------------------------------------- */

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

/* ---- Configuration ------------------------------------------------------ */

static void config_clear(dns_config *c) {
  free(c->servers);
  *c = (dns_config){.rotate = -1};
}

/* Checks "ip[:port],..." (IPv6 as [ip]:port or bare ip without port). */
static int servers_valid(const char *s) {
  char *copy = strdup(s), *save = NULL, *item;
  int ok = copy != NULL, items = 0;
  for (item = ok ? strtok_r(copy, ",", &save) : NULL; item && ok;
       item = strtok_r(NULL, ",", &save), items++) {
    char *host = item, *port = NULL;
    unsigned char buf[sizeof(struct in6_addr)];
    if (*item == '[') {
      char *end = strchr(item, ']');
      ok = end && (end[1] == '\0' || end[1] == ':');
      if (!ok)
        break;
      *end = '\0';
      host = item + 1;
      port = end[1] == ':' ? end + 2 : NULL;
    } else if (strchr(item, ':') == strrchr(item, ':') && strchr(item, ':')) {
      port = strchr(item, ':');
      *port++ = '\0';
    }
    ok = inet_pton(AF_INET, host, buf) == 1 ||
         inet_pton(AF_INET6, host, buf) == 1;
    if (ok && port) {
      char *end;
      long p = strtol(port, &end, 10);
      ok = *port && !*end && p > 0 && p <= 65535;
    }
  }
  free(copy);
  return ok && items > 0;
}

static int parse_seconds_ms(const char *s, int *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v > 0) || v > 3600)
    return -1;
  *ms = (int)(v * 1000. + 0.5);
  if (*ms < 1)
    *ms = 1;
  return 0;
}

static int parse_tries(const char *s, int *tries) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > 100)
    return -1;
  *tries = (int)v;
  return 0;
}

static void env_warn(const char *var, const char *value) {
  fprintf(stderr, "gev: ignoring invalid %s=\"%s\"\n", var, value);
}

/* Defaults from the environment (resolv.conf is c-ares' own default). */
static void config_from_env(dns_config *c) {
  const char *v;
  if ((v = getenv("GEV_DNS_SERVERS")) && *v) {
    if (servers_valid(v))
      c->servers = strdup(v);
    else
      env_warn("GEV_DNS_SERVERS", v);
  }
  if ((v = getenv("GEV_DNS_TIMEOUT")) && *v &&
      parse_seconds_ms(v, &c->timeout_ms) < 0)
    env_warn("GEV_DNS_TIMEOUT", v);
  if ((v = getenv("GEV_DNS_TRIES")) && *v && parse_tries(v, &c->tries) < 0)
    env_warn("GEV_DNS_TRIES", v);
}

/* ---- The channel -------------------------------------------------------- */

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;

static void ares_lib_init(void) {
  ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int channel_options(gev__resolver *r, struct ares_options *o) {
  int mask = ARES_OPT_SOCK_STATE_CB;
  memset(o, 0, sizeof *o);
  o->sock_state_cb = sock_state_cb;
  o->sock_state_cb_data = r;
  if (r->cfg.timeout_ms > 0) {
    o->timeout = r->cfg.timeout_ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (r->cfg.tries > 0) {
    o->tries = r->cfg.tries;
    mask |= ARES_OPT_TRIES;
  }
  o->socket_receive_buffer_size = GEV_DNS_RCVBUF;
  mask |= ARES_OPT_SOCK_RCVBUF;
  if (r->cfg.rotate == 1)
    mask |= ARES_OPT_ROTATE;
  else if (r->cfg.rotate == 0)
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
static int channel_init(gev__resolver *r, int flags, ares_channel *ch) {
  struct ares_options o;
  int mask = channel_options(r, &o), status;
  if (flags) {
    o.flags = flags;
    mask |= ARES_OPT_FLAGS;
  }
  if ((status = ares_init_options(ch, &o, mask)) != ARES_SUCCESS)
    return status;
  if (r->cfg.servers &&
      (status = ares_set_servers_ports_csv(*ch, r->cfg.servers)) !=
          ARES_SUCCESS)
    ares_destroy(*ch);
  return status;
}

static int channel_server_count(ares_channel ch) {
  struct ares_addr_port_node *list = NULL;
  int n = 0;
  if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
    return -1; /* LCOV_EXCL_LINE: only on ENOMEM */
  for (struct ares_addr_port_node *s = list; s; s = s->next)
    n++;
  ares_free_data(list);
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
  ares_channel ch;
  int status;
  pthread_once(&ares_once, ares_lib_init);
  if ((status = ares_init_status) != ARES_SUCCESS)
    goto out_report; /* LCOV_EXCL_LINE: a no-op on Linux */
  if ((status = channel_init(r, 0, &ch)) != ARES_SUCCESS)
    goto out_report;
  if (channel_server_count(ch) == 1) {
    ares_destroy(ch);
    status = channel_init(r, ARES_FLAG_NOCHECKRESP, &ch);
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
  fprintf(stderr, "gev: cannot set up the c-ares resolver: %s\n",
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
  config_clear(&r->cfg);
  if (tls_resolver == r)
    tls_resolver = NULL;
  free(r);
}

static void cleanup_cb(struct ev_loop *loop, ev_cleanup *w, int revents) {
  resolver_free(w->data);
}

/* Defensive: a resolver whose hub is gone without its cleanup having run
 * (it holds no active watcher then) is dropped without touching the loop. */
static void resolver_drop_stale(gev__hub *h) {
  gev__resolver *r = tls_resolver;
  if (!r || (r->hub == h && r->loop == gev__hub_evloop(h)))
    return;
  r->loop_gone = 1;
  resolver_free(r);
}

/* The calling thread's resolver (without a channel yet), or NULL with
 * errno ENOMEM. */
static gev__resolver *resolver_get(void) {
  gev__hub *h = gev__hub_get();
  if (!h)
    return NULL;
  resolver_drop_stale(h);
  if (tls_resolver)
    return tls_resolver;
  gev__resolver *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->hub = h;
  r->loop = gev__hub_evloop(h);
  r->cfg.rotate = -1;
  config_from_env(&r->cfg);
  ev_init(&r->timer, timer_cb);
  r->timer.data = r;
  ev_cleanup_init(&r->cleanup, cleanup_cb);
  r->cleanup.data = r;
  ev_cleanup_start(r->loop, &r->cleanup);
  tls_resolver = r;
  return r;
}

/* Cancels the detached queries once no lookup waits any more, so that an
 * idle resolver holds no socket and no watcher. */
static void resolver_reap(gev__resolver *r) {
  if (r->live == 0 && r->inflight > 0 && r->channel)
    ares_cancel(r->channel);
  timer_rearm(r);
}

/* ---- Requests ----------------------------------------------------------- */

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
  if (!gev__waitq_wake_one(&r->slots, NULL, 0))
    r->inflight--;
}

gev__dns_req *gev__dns_req_new(gev__dns_want want, int *eai) {
  gev__resolver *r;
  gev__dns_req *q;
  if (gev__may_block() < 0)
    goto out_system;
  if (!(r = resolver_get()) || (!r->channel && channel_open(r) < 0))
    goto out_system;
  if (slot_take(r) < 0)
    goto out_system;
  if (!(q = calloc(1, sizeof *q))) {
    slot_release(r);
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

/* Common end of every c-ares callback. Returns 1 when the caller still
 * wants the result. */
static int req_finish(gev__dns_req *q, int status) {
  slot_release(q->resolver);
  if (q->detached) {
    gev__dns_req_free(q);
    return 0;
  }
  q->status = status;
  q->done = 1;
  if (q->task)
    gev__wake(q->task, NULL, 0);
  return 1;
}

/* One heap block holding h: the struct, both pointer arrays, the address
 * bytes, then the strings, so that one free() releases it. */
static size_t hostent_size(const struct hostent *h, size_t *naliases,
                           size_t *naddrs) {
  size_t n = sizeof(struct hostent) + strlen(h->h_name) + 1;
  *naliases = *naddrs = 0;
  for (char **a = h->h_aliases; a && *a; a++, (*naliases)++)
    n += strlen(*a) + 1;
  for (char **a = h->h_addr_list; a && *a; a++, (*naddrs)++)
    n += (size_t)h->h_length;
  return n + (*naliases + *naddrs + 2) * sizeof(char *);
}

static struct hostent *hostent_copy(const struct hostent *h) {
  size_t naliases, naddrs;
  struct hostent *c = malloc(hostent_size(h, &naliases, &naddrs));
  if (!c)
    return NULL;
  char **ptrs = (char **)(c + 1);
  char *bytes = (char *)(ptrs + naliases + naddrs + 2);
  c->h_addrtype = h->h_addrtype;
  c->h_length = h->h_length;
  c->h_addr_list = ptrs + naliases + 1;
  for (size_t i = 0; i < naddrs; i++, bytes += h->h_length)
    c->h_addr_list[i] = memcpy(bytes, h->h_addr_list[i], (size_t)h->h_length);
  c->h_addr_list[naddrs] = NULL;
  c->h_aliases = ptrs;
  for (size_t i = 0; i < naliases; i++)
    bytes = stpcpy(c->h_aliases[i] = bytes, h->h_aliases[i]) + 1;
  c->h_aliases[naliases] = NULL;
  c->h_name = strcpy(bytes, h->h_name);
  return c;
}

void gev__dns_host_cb(void *arg, int status, int timeouts, struct hostent *h) {
  gev__dns_req *q = arg;
  if (status == ARES_SUCCESS && !h)
    status = ARES_ENODATA; /* LCOV_EXCL_LINE: c-ares always passes one */
  if (status == ARES_SUCCESS && q->want == GEV__DNS_FIRST_V4) {
    if (h->h_addrtype == AF_INET && h->h_addr_list[0])
      memcpy(&q->first_v4, h->h_addr_list[0], sizeof q->first_v4);
    else
      status = ARES_ENODATA;
  } else if (status == ARES_SUCCESS && !q->detached &&
             !(q->host = hostent_copy(h))) {
    status = ARES_ENOMEM;
  }
  req_finish(q, status);
}

void gev__dns_addrinfo_cb(void *arg, int status, int timeouts,
                          struct ares_addrinfo *ai) {
  gev__dns_req *q = arg;
  q->ai = ai; /* owned by q now, freed with it */
  req_finish(q, status);
}

/* ---- Lookups ------------------------------------------------------------ */

static int bad_argument(void) {
  errno = EINVAL;
  return EAI_SYSTEM;
}

int gev_gethostbyname(const char *name, struct in_addr *addr) {
  int eai;
  if (!name || !addr)
    return bad_argument();
  if (inet_pton(AF_INET, name, addr) == 1)
    return 0;
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_FIRST_V4, &eai);
  if (!q)
    return eai;
  ares_gethostbyname(q->resolver->channel, name, AF_INET, gev__dns_host_cb, q);
  if ((eai = gev__dns_req_wait(q)) != 0)
    return eai;
  if ((eai = gev__dns_eai_from_ares(q->status)) == 0)
    *addr = q->first_v4;
  gev__dns_req_free(q);
  return eai;
}

/* Waits for a GEV__DNS_HOSTENT request and hands its result to *out. */
static int host_result(gev__dns_req *q, struct hostent **out) {
  int eai = gev__dns_req_wait(q);
  if (eai)
    return eai;
  if ((eai = gev__dns_eai_from_ares(q->status)) == 0) {
    *out = q->host;
    q->host = NULL;
  }
  gev__dns_req_free(q);
  return eai;
}

const char *gev__dns_canon_name(const struct ares_addrinfo *ai,
                                const char *name) {
  const char *cur = name;
  for (int hops = 0; hops < 32; hops++) {
    const struct ares_addrinfo_cname *c = ai->cnames;
    while (c && (!c->alias || strcasecmp(c->alias, cur) != 0))
      c = c->next;
    if (!c || !c->name)
      break;
    cur = c->name;
  }
  return cur;
}

/* A hostent for the addresses of family in ai: the canonical name at the
 * end of the CNAME chain from name, every alias met, the addresses. (c-ares
 * 1.18's own conversion names the first CNAME target instead.) */
static struct hostent *hostent_from_ai(const struct ares_addrinfo *ai,
                                       const char *name, int family,
                                       int *status) {
  size_t naliases = 0, naddrs = 0;
  const struct ares_addrinfo_cname *c;
  const struct ares_addrinfo_node *n;
  for (c = ai->cnames; c; c = c->next)
    naliases += c->alias != NULL;
  for (n = ai->nodes; n; n = n->ai_next)
    naddrs += n->ai_family == family;
  *status = naddrs ? ARES_SUCCESS : ARES_ENODATA;
  if (!naddrs)
    return NULL;
  char **aliases = calloc(naliases + 1, sizeof *aliases);
  char **addrs = calloc(naddrs + 1, sizeof *addrs);
  struct hostent h = {.h_name = (char *)gev__dns_canon_name(ai, name),
                      .h_aliases = aliases, .h_addrtype = family,
                      .h_length = family == AF_INET ? 4 : 16,
                      .h_addr_list = addrs}, *copy = NULL;
  if (aliases && addrs) {
    naliases = naddrs = 0;
    for (c = ai->cnames; c; c = c->next)
      if (c->alias)
        aliases[naliases++] = c->alias;
    for (n = ai->nodes; n; n = n->ai_next) {
      if (n->ai_family != family)
        continue;
      void *sa = n->ai_addr;
      addrs[naddrs++] = family == AF_INET
                            ? (char *)&((struct sockaddr_in *)sa)->sin_addr
                            : (char *)&((struct sockaddr_in6 *)sa)->sin6_addr;
    }
    copy = hostent_copy(&h);
  }
  free(aliases);
  free(addrs);
  if (!copy)
    *status = ARES_ENOMEM;
  return copy;
}

int gev_gethostbyname_ex(const char *name, int family, struct hostent **out) {
  struct ares_addrinfo_hints hints = {.ai_family = family,
                                      .ai_flags = ARES_AI_CANONNAME};
  int eai, status;
  if (out)
    *out = NULL;
  if (!name || !out)
    return bad_argument();
  if (family != AF_INET && family != AF_INET6)
    return EAI_FAMILY;
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_ADDRINFO, &eai);
  if (!q)
    return eai;
  ares_getaddrinfo(q->resolver->channel, name, NULL, &hints,
                   gev__dns_addrinfo_cb, q);
  if ((eai = gev__dns_req_wait(q)) != 0)
    return eai;
  status = q->status;
  if (status == ARES_SUCCESS)
    *out = hostent_from_ai(q->ai, name, family, &status);
  gev__dns_req_free(q);
  return gev__dns_eai_from_ares(status);
}

int gev_gethostbyaddr(const void *addr, socklen_t len, int family,
                      struct hostent **out) {
  int eai;
  if (out)
    *out = NULL;
  if (!addr || !out)
    return bad_argument();
  if (family != AF_INET && family != AF_INET6)
    return EAI_FAMILY;
  if (len != (family == AF_INET ? sizeof(struct in_addr)
                                : sizeof(struct in6_addr)))
    return bad_argument();
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_HOSTENT, &eai);
  if (!q)
    return eai;
  ares_gethostbyaddr(q->resolver->channel, addr, (int)len, family,
                     gev__dns_host_cb, q);
  return host_result(q, out);
}

void gev_freehostent(struct hostent *h) {
  free(h);
}

/* ---- Configuration calls ------------------------------------------------ */

/* The resolver to configure, its channel closed so the next lookup builds
 * one from the new settings; NULL with errno EBUSY or ENOMEM. */
static gev__resolver *resolver_for_config(void) {
  gev__resolver *r = resolver_get();
  if (!r)
    return NULL;
  if (r->inflight > 0) {
    errno = EBUSY;
    return NULL;
  }
  channel_close(r);
  return r;
}

int gev_dns_set_servers(const char *servers) {
  char *copy = NULL;
  if (servers && *servers) {
    if (!servers_valid(servers)) {
      errno = EINVAL;
      return -1;
    }
    if (!(copy = strdup(servers)))
      return -1;
  }
  gev__resolver *r = resolver_for_config();
  if (!r) {
    free(copy);
    return -1;
  }
  free(r->cfg.servers);
  r->cfg.servers = copy;
  if (!copy) { /* back to the default: the environment, if it names any */
    dns_config env = {.rotate = -1};
    config_from_env(&env);
    r->cfg.servers = env.servers;
  }
  return 0;
}

int gev_dns_set_timeout(double seconds) {
  if (!(seconds > 0) || seconds > 3600) {
    errno = EINVAL;
    return -1;
  }
  gev__resolver *r = resolver_for_config();
  if (!r)
    return -1;
  r->cfg.timeout_ms = (int)(seconds * 1000. + 0.5);
  if (r->cfg.timeout_ms < 1)
    r->cfg.timeout_ms = 1;
  return 0;
}

int gev_dns_set_tries(int tries) {
  if (tries < 1 || tries > 100) {
    errno = EINVAL;
    return -1;
  }
  gev__resolver *r = resolver_for_config();
  if (!r)
    return -1;
  r->cfg.tries = tries;
  return 0;
}

int gev_dns_set_rotate(int rotate) {
  gev__resolver *r = resolver_for_config();
  if (!r)
    return -1;
  r->cfg.rotate = rotate != 0;
  return 0;
}

static int server_format(const struct ares_addr_port_node *s, char *buf,
                         size_t len) {
  char ip[INET6_ADDRSTRLEN];
  int port = s->udp_port ? s->udp_port : 53;
  inet_ntop(s->family, &s->addr, ip, sizeof ip);
  return snprintf(buf, len, s->family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
                  port);
}

int gev_dns_get_servers(char *buf, size_t len) {
  struct ares_addr_port_node *list = NULL;
  size_t used = 0;
  if (!buf || len == 0) {
    errno = EINVAL;
    return -1;
  }
  gev__resolver *r = resolver_get();
  if (!r || (!r->channel && channel_open(r) < 0))
    return -1;
  if (ares_get_servers_ports(r->channel, &list) != ARES_SUCCESS) {
    errno = ENOMEM; /* LCOV_EXCL_LINE: its only failure */
    return -1;      /* LCOV_EXCL_LINE */
  }
  buf[0] = '\0';
  for (struct ares_addr_port_node *s = list; s; s = s->next) {
    if (used && used + 1 < len)
      buf[used++] = ',';
    int n = server_format(s, buf + used, len - used);
    if (n < 0 || used + (size_t)n >= len) {
      ares_free_data(list);
      errno = ERANGE;
      return -1;
    }
    used += (size_t)n;
  }
  ares_free_data(list);
  return 0;
}

/* ---- For the socket layer ------------------------------------------------ */

static int errno_from_eai(int eai) {
  switch (eai) {
  case EAI_NONAME:
  case EAI_NODATA:
  case EAI_ADDRFAMILY:
    return ENOENT;
  case EAI_AGAIN:
    return EAGAIN;
  case EAI_FAIL:
    return EIO;
  case EAI_MEMORY:
    return ENOMEM;
  case EAI_SYSTEM:
    return errno;
  default:
    return EINVAL;
  }
}

int gev__dns_resolve(const char *host, int port, int family, int socktype,
                     struct addrinfo **res, int *eai) {
  char service[8];
  struct addrinfo hints = {.ai_family = family,
                           .ai_socktype = socktype,
                           .ai_flags = AI_NUMERICSERV};
  int code = EAI_SERVICE;
  if (res)
    *res = NULL;
  if (!host) {
    errno = EINVAL;
    code = EAI_SYSTEM;
  } else if (port >= 0 && port <= 65535) {
    snprintf(service, sizeof service, "%d", port);
    code = gev_getaddrinfo(host, service, &hints, res);
  }
  if (eai)
    *eai = code;
  if (code == 0)
    return 0;
  errno = errno_from_eai(code);
  return -1;
}
