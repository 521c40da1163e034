/*
 * Socket helpers built on the public socket calls (see gev/net.h):
 * numeric addresses, the listen helper, and create_connection, which
 * resolves names through the DNS layer and tries each address in turn.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "gev/dns.h"
#include "gev/net.h"
#include "net/dns_internal.h"

/* ---- Addresses ---------------------------------------------------------- */

static int parse_ipv6(const char *host, int port, struct sockaddr_storage *out,
                      socklen_t *len) {
  char buf[INET6_ADDRSTRLEN + 2];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
    memcpy(buf, host + 1, n - 2);
    buf[n - 2] = '\0';
    host = buf;
  }
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  a6->sin6_family = AF_INET6;
  a6->sin6_port = htons((uint16_t)port);
  *len = sizeof *a6;
  return 0;
}

int gev_sockaddr_parse(const char *host, int port, struct sockaddr_storage *out,
                       socklen_t *len) {
  if (!out || !len || port < 0 || port > 65535) {
    errno = EINVAL;
    return -1;
  }
  memset(out, 0, sizeof *out);
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  if (!host || !*host || strcmp(host, "*") == 0) {
    a4->sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
    return parse_ipv6(host, port, out, len);
  }
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)port);
  *len = sizeof *a4;
  return 0;
}

static char *format_unix(const struct sockaddr *addr, socklen_t len, char *buf,
                         size_t size) {
  const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
  size_t off = offsetof(struct sockaddr_un, sun_path);
  size_t n = len > off ? strnlen(un->sun_path, len - off) : 0;
  if (n + 1 > size) {
    errno = ENOSPC;
    return NULL;
  }
  memcpy(buf, un->sun_path, n);
  buf[n] = '\0';
  return buf;
}

char *gev_sockaddr_format(const struct sockaddr *addr, socklen_t len, char *buf,
                          size_t size) {
  char ip[INET6_ADDRSTRLEN];
  int n;
  if (!addr || !buf || len < (socklen_t)sizeof(sa_family_t)) {
    errno = EINVAL;
    return NULL;
  }
  if (addr->sa_family == AF_UNIX)
    return format_unix(addr, len, buf, size);
  if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
    n = snprintf(buf, size, "%s:%u", ip, ntohs(a4->sin_port));
  } else if (addr->sa_family == AF_INET6 &&
             len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
    inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
    n = snprintf(buf, size, "[%s]:%u", ip, ntohs(a6->sin6_port));
  } else {
    errno = EAFNOSUPPORT;
    return NULL;
  }
  if (n < 0 || (size_t)n >= size) {
    errno = ENOSPC;
    return NULL;
  }
  return buf;
}

/* ---- Helpers ------------------------------------------------------------ */

/* Closes a socket on an error path, keeping the errno being reported. */
static void discard(gev_socket *s) {
  int saved = errno;
  gev_socket_close(s);
  errno = saved;
}

static int set_int_opt(gev_socket *s, int level, int name, int value) {
  return gev_socket_setsockopt(s, level, name, &value, sizeof value);
}

gev_socket *gev_socket_listen_tcp(const char *host, int port, int backlog,
                                  int flags) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (flags & ~GEV_LISTEN_REUSEPORT) {
    errno = EINVAL;
    return NULL;
  }
  if (gev_sockaddr_parse(host, port, &ss, &len) < 0)
    return NULL;
  gev_socket *s = gev_socket_new(ss.ss_family, SOCK_STREAM, 0);
  if (!s)
    return NULL;
  if (set_int_opt(s, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
    goto out_close;
  if ((flags & GEV_LISTEN_REUSEPORT) &&
      set_int_opt(s, SOL_SOCKET, SO_REUSEPORT, 1) < 0)
    goto out_close;
  if (ss.ss_family == AF_INET6 &&
      set_int_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
    goto out_close;
  if (gev_socket_bind(s, (struct sockaddr *)&ss, len) < 0 ||
      gev_socket_listen(s, backlog > 0 ? backlog : SOMAXCONN) < 0)
    goto out_close;
  return s;
out_close:
  discard(s);
  return NULL;
}

/* Where to bind a connecting socket: host NULL means "no bind" when port
 * is 0 too; otherwise host NULL/""/"*" is the wildcard of the family. */
typedef struct source_addr {
  const char *host;
  int port;
} source_addr;

static int source_wanted(const source_addr *src) {
  return src && (src->port != 0 ||
                 (src->host && *src->host && strcmp(src->host, "*") != 0));
}

static int source_wildcard(const source_addr *src) {
  return !src->host || !*src->host || strcmp(src->host, "*") == 0;
}

/* Binds s (of family) to src. 0, or -1 with errno (EAFNOSUPPORT: src is
 * of another family). */
static int bind_source(gev_socket *s, int family, const source_addr *src) {
  struct sockaddr_storage ss;
  socklen_t len;
  const char *host = src->host;
  if (source_wildcard(src))
    host = family == AF_INET6 ? "::" : NULL;
  if (gev_sockaddr_parse(host, src->port, &ss, &len) < 0)
    return -1;
  if (ss.ss_family != family) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  return gev_socket_bind(s, (struct sockaddr *)&ss, len);
}

static gev_socket *connect_one(const struct sockaddr *addr, socklen_t len,
                               double timeout, const source_addr *src) {
  gev_socket *s = gev_socket_new(addr->sa_family, SOCK_STREAM, 0);
  if (!s)
    return NULL;
  gev_socket_settimeout(s, timeout);
  if (source_wanted(src) && bind_source(s, addr->sa_family, src) < 0)
    goto out_close;
  if (gev_socket_connect(s, addr, len) < 0)
    goto out_close;
  gev_socket_settimeout(s, -1);
  return s;
out_close:
  discard(s);
  return NULL;
}

/* The addresses host stands for, in resolver order, within timeout; a
 * failed lookup is reported as errno by the DNS layer's one table
 * (gev__dns_resolve: ENOENT for a name that does not exist ...). */
static struct addrinfo *resolve(const char *host, int port, double timeout) {
  struct addrinfo *res = NULL;
  gev_timeout *scope = NULL;
  if (timeout > 0 && !(scope = gev_timeout_start(timeout)))
    return NULL;
  int rc = gev__dns_resolve(host, port, AF_UNSPEC, SOCK_STREAM, &res, NULL);
  int saved = errno;
  gev_timeout_cancel(scope);
  errno = saved;
  return rc < 0 ? NULL : res;
}

static double time_left(double deadline, double timeout) {
  return deadline < 0 ? timeout : deadline - gev_monotonic();
}

/* The family a numeric source host requires, or AF_UNSPEC (none, or the
 * wildcard, which fits either); -1 with EAFNOSUPPORT if not numeric. */
static int source_family(const source_addr *src) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (!source_wanted(src) || source_wildcard(src))
    return AF_UNSPEC;
  if (gev_sockaddr_parse(src->host, 0, &ss, &len) < 0)
    return -1;
  return ss.ss_family;
}

static gev_socket *connect_to(const char *host, int port, double timeout,
                              const source_addr *src) {
  if (!host || isnan(timeout) || port < 0 || port > 65535 ||
      (src && (src->port < 0 || src->port > 65535))) {
    errno = EINVAL;
    return NULL;
  }
  int family = source_family(src);
  if (family < 0)
    return NULL;
  double deadline = timeout > 0 ? gev_monotonic() + timeout : -1;
  struct sockaddr_storage ss;
  socklen_t len;
  if (gev_sockaddr_parse(host, port, &ss, &len) == 0 && *host)
    return connect_one((struct sockaddr *)&ss, len, timeout, src);
  struct addrinfo *list = resolve(host, port, timeout);
  if (!list)
    return NULL;
  gev_socket *s = NULL;
  errno = EAFNOSUPPORT; /* if no address is of the source's family */
  for (struct addrinfo *ai = list; ai && !s; ai = ai->ai_next) {
    double left = time_left(deadline, timeout);
    if (deadline >= 0 && left <= 0) {
      errno = ETIMEDOUT;
      break;
    }
    if (family != AF_UNSPEC && ai->ai_family != family)
      continue;
    s = connect_one(ai->ai_addr, ai->ai_addrlen, left, src);
    if (!s && (errno == ECANCELED || errno == EPERM))
      break; /* killed, or misused from the hub: do not try the next one */
  }
  int saved = errno;
  gev_freeaddrinfo(list);
  errno = saved;
  return s;
}

gev_socket *gev_create_connection(const char *host, int port, double timeout) {
  return connect_to(host, port, timeout, NULL);
}

gev_socket *gev_create_connection_from(const char *host, int port,
                                       double timeout, const char *source_host,
                                       int source_port) {
  source_addr src = {source_host, source_port};
  return connect_to(host, port, timeout, &src);
}
