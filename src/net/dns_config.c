/*
 * The resolver's settings: servers, first-try timeout, tries, rotation.
 *
 * They belong to the thread, not to its hub: they are read from the
 * environment the first time a thread needs them, changed by the
 * gev_dns_set_* calls, and outlive the hub, so a hub destroyed and made
 * again, or a child forked with GEV_FORK_DISCARD, resolves the way it was
 * configured. A change closes the hub's c-ares channel (refused with EBUSY
 * while lookups are in flight), and the next lookup opens a channel with
 * the new settings. /etc/resolv.conf supplies what is left unset, through
 * c-ares itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gev/dns.h"
#include "net/dns_internal.h"

/* The thread's settings and the strings they own. */
typedef struct thread_config {
  gev__dns_config pub; /* what gev__dns_config() hands out */
  char *servers;       /* owned copy behind pub.servers */
  int loaded;          /* the environment has been read */
} thread_config;

/* ---- Parsing ----------------------------------------------------------- */

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
  gev__log(GEV_LOG_WARNING, "gev: ignoring invalid %s=\"%s\"", var, value);
}

/* GEV_DNS_SERVERS, or NULL when unset or invalid (reported). */
static const char *env_servers(void) {
  const char *v = getenv("GEV_DNS_SERVERS");
  if (!v || !*v)
    return NULL;
  if (servers_valid(v))
    return v;
  env_warn("GEV_DNS_SERVERS", v);
  return NULL;
}

/* ---- The thread's settings --------------------------------------------- */

/* Frees the thread's settings when it exits. */
static void config_free(void *arg) {
  thread_config *c = arg;
  free(c->servers);
  free(c);
}

/* The thread's settings, kept in its slot of the hub layer's thread block
 * (park.h; libgev has one thread-local variable, the coroutine layer's),
 * allocated on first use; NULL with ENOMEM. */
static thread_config *config_slot(void) {
  void **slot = gev__thread_slot(GEV__SLOT_DNS_CONFIG);
  thread_config *c;
  if (!slot)
    return NULL;
  if ((c = *slot))
    return c;
  if (!(c = calloc(1, sizeof *c)))
    return NULL;
  *slot = c;
  gev__thread_slot_on_exit(GEV__SLOT_DNS_CONFIG, config_free);
  return c;
}

static int config_set_servers(thread_config *c, const char *servers) {
  char *copy = NULL;
  if (servers && !(copy = strdup(servers)))
    return -1;
  free(c->servers);
  c->servers = copy;
  c->pub.servers = copy;
  return 0;
}

/* Loads the defaults from the environment on first use. */
static thread_config *config_load(void) {
  thread_config *c = config_slot();
  const char *v;
  if (!c || c->loaded)
    return c;
  c->pub.rotate = -1;
  if (config_set_servers(c, env_servers()) < 0)
    return NULL;
  if ((v = getenv("GEV_DNS_TIMEOUT")) && *v &&
      parse_seconds_ms(v, &c->pub.timeout_ms) < 0)
    env_warn("GEV_DNS_TIMEOUT", v);
  if ((v = getenv("GEV_DNS_TRIES")) && *v && parse_tries(v, &c->pub.tries) < 0)
    env_warn("GEV_DNS_TRIES", v);
  c->pub.resolver = GEV_DNS_ARES;
  if ((v = getenv("GEV_DNS_RESOLVER")) && *v) {
    if (strcmp(v, "thread") == 0)
      c->pub.resolver = GEV_DNS_THREAD;
    else if (strcmp(v, "ares") != 0)
      env_warn("GEV_DNS_RESOLVER", v);
  }
  c->loaded = 1;
  return c;
}

const gev__dns_config *gev__dns_settings(void) {
  thread_config *c = config_load();
  return c ? &c->pub : NULL;
}

/* The settings to change, after closing the hub's channel; NULL with
 * errno EBUSY (lookups in flight) or ENOMEM. */
static thread_config *config_for_change(void) {
  thread_config *c = config_load();
  if (!c || gev__dns_resolver_reset() < 0)
    return NULL;
  return c;
}

/* ---- Calls ------------------------------------------------------------- */

int gev_dns_set_servers(const char *servers) {
  thread_config *c;
  if (servers && *servers && !servers_valid(servers)) {
    errno = EINVAL;
    return -1;
  }
  if (!(c = config_for_change()))
    return -1;
  /* NULL or "": back to the default, the environment if it names any. */
  return config_set_servers(c, servers && *servers ? servers : env_servers());
}

int gev_dns_set_timeout(double seconds) {
  thread_config *c;
  if (!(seconds > 0) || seconds > 3600) {
    errno = EINVAL;
    return -1;
  }
  if (!(c = config_for_change()))
    return -1;
  c->pub.timeout_ms = (int)(seconds * 1000. + 0.5);
  if (c->pub.timeout_ms < 1)
    c->pub.timeout_ms = 1;
  return 0;
}

int gev_dns_set_tries(int tries) {
  thread_config *c;
  if (tries < 1 || tries > 100) {
    errno = EINVAL;
    return -1;
  }
  if (!(c = config_for_change()))
    return -1;
  c->pub.tries = tries;
  return 0;
}

int gev_dns_set_rotate(int rotate) {
  thread_config *c = config_for_change();
  if (!c)
    return -1;
  c->pub.rotate = rotate != 0;
  return 0;
}

int gev_dns_set_resolver(gev_dns_resolver which) {
  thread_config *c;
  if (which < GEV_DNS_DEFAULT || which > GEV_DNS_THREAD) {
    errno = EINVAL;
    return -1;
  }
  if (!(c = config_load()))
    return -1;
  if (which == GEV_DNS_DEFAULT) { /* back to the environment's choice */
    const char *v = getenv("GEV_DNS_RESOLVER");
    which = v && strcmp(v, "thread") == 0 ? GEV_DNS_THREAD : GEV_DNS_ARES;
  }
  c->pub.resolver = which;
  return 0;
}

gev_dns_resolver gev_dns_get_resolver(void) {
  const gev__dns_config *cfg = gev__dns_settings();
  return cfg ? (gev_dns_resolver)cfg->resolver : GEV_DNS_ARES;
}

int gev__dns_use_thread(int which) {
  if (which == GEV_DNS_DEFAULT)
    which = gev_dns_get_resolver();
  return which == GEV_DNS_THREAD;
}

/* ---- The servers c-ares reports ----------------------------------------- */

/* One csv entry: "ip", "ip:port", "[ip6]", "[ip6]:port", "ip6", each
 * maybe with "%iface" after the address; into "ip:port" or "[ip6]:port". */
static int server_entry(const char *e, size_t n, char *out, size_t len) {
  char ip[INET6_ADDRSTRLEN + 1];
  const char *port = NULL, *end = e + n, *close;
  size_t iplen;
  if (n && e[0] == '[') {
    if (!(close = memchr(e, ']', n)))
      return -1;
    iplen = (size_t)(close - e - 1);
    e++;
    if (close + 1 < end && close[1] == ':')
      port = close + 2;
  } else {
    const char *colon = memchr(e, ':', n);
    if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1)))
      port = colon + 1; /* exactly one colon: IPv4 with a port */
    iplen = (size_t)((port ? port - 1 : end) - e);
  }
  const char *pct = memchr(e, '%', iplen);
  if (pct)
    iplen = (size_t)(pct - e);
  if (iplen == 0 || iplen >= sizeof ip)
    return -1;
  memcpy(ip, e, iplen);
  ip[iplen] = '\0';
  int v6 = strchr(ip, ':') != NULL;
  long p = 53;
  if (port) {
    char *stop;
    p = strtol(port, &stop, 10);
    if (port == stop || p <= 0 || p > 65535)
      return -1;
  }
  return snprintf(out, len, v6 ? "[%s]:%ld" : "%s:%ld", ip, p);
}

int gev__dns_servers_normalize(const char *csv, char *buf, size_t len) {
  size_t used = 0;
  if (!csv || !buf || len == 0) {
    errno = EINVAL;
    return -1;
  }
  buf[0] = '\0';
  while (*csv) {
    size_t n = strcspn(csv, ",");
    if (n > 0) {
      if (used && used + 1 < len)
        buf[used++] = ',';
      int w = server_entry(csv, n, buf + used, len - used);
      if (w < 0) {
        errno = EINVAL;
        return -1;
      }
      if (used + (size_t)w >= len) {
        errno = ERANGE;
        return -1;
      }
      used += (size_t)w;
    }
    csv += n + (csv[n] == ',');
  }
  return 0;
}
