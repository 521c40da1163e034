/*
 * getaddrinfo and getnameinfo over the hub's resolver, shaped like glibc's.
 *
 * getaddrinfo works in three steps: the service gives a port and the
 * socket types it exists for; the node gives a list of addresses (the
 * wildcard or loopback for NULL, the literal itself, or c-ares'
 * ares_getaddrinfo for a name, which also reads /etc/hosts); then every
 * address is crossed with every socket type, in glibc's order, into a list
 * of ordinary struct addrinfo. Each entry is one heap block (entry,
 * sockaddr, and the canonical name on the first), released by
 * gev_freeaddrinfo().
 *
 * getnameinfo needs no c-ares call of its own: services come from
 * /etc/services, names from gev_gethostbyaddr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gev/dns.h"
#include "net/dns_internal.h"

/* One address of the node, before it is crossed with socket types. */
typedef struct node_addr {
  int family;
  union {
    struct in_addr v4;
    struct in6_addr v6;
  } a;
  uint32_t scope_id;
} node_addr;

typedef struct node_addrs {
  node_addr *v;
  size_t n, cap;
  char *canon; /* owned; NULL when not asked for */
} node_addrs;

#define SOCKTYPE_STREAM 1
#define SOCKTYPE_DGRAM 2
#define SOCKTYPE_RAW 4

#define GAI_FLAGS                                                              \
  (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | \
   AI_ALL | AI_ADDRCONFIG)

/* ---- Hints ------------------------------------------------------------- */

static int hints_check(const struct addrinfo *h, const char *node) {
  if (h->ai_flags & ~GAI_FLAGS)
    return EAI_BADFLAGS;
  if ((h->ai_flags & AI_CANONNAME) && !node)
    return EAI_BADFLAGS;
  if (h->ai_family != AF_UNSPEC && h->ai_family != AF_INET &&
      h->ai_family != AF_INET6)
    return EAI_FAMILY;
  if (h->ai_socktype != 0 && h->ai_socktype != SOCK_STREAM &&
      h->ai_socktype != SOCK_DGRAM && h->ai_socktype != SOCK_RAW)
    return EAI_SOCKTYPE;
  if ((h->ai_socktype == SOCK_STREAM && h->ai_protocol != 0 &&
       h->ai_protocol != IPPROTO_TCP) ||
      (h->ai_socktype == SOCK_DGRAM && h->ai_protocol != 0 &&
       h->ai_protocol != IPPROTO_UDP))
    return EAI_SOCKTYPE;
  return 0;
}

/* The socket types hints allow, as SOCKTYPE_* bits. */
static int hints_socktypes(const struct addrinfo *h) {
  switch (h->ai_socktype) {
  case SOCK_STREAM:
    return SOCKTYPE_STREAM;
  case SOCK_DGRAM:
    return SOCKTYPE_DGRAM;
  case SOCK_RAW:
    return SOCKTYPE_RAW;
  default:
    break;
  }
  if (h->ai_protocol == IPPROTO_TCP)
    return SOCKTYPE_STREAM;
  if (h->ai_protocol == IPPROTO_UDP)
    return SOCKTYPE_DGRAM;
  return SOCKTYPE_STREAM | SOCKTYPE_DGRAM | SOCKTYPE_RAW;
}

/* ---- AI_ADDRCONFIG --------------------------------------------------------
 */

/* glibc's rule (RFC 3493): a family counts as configured when some
 * interface has an address of it other than the loopback address. */
static int probe_interfaces(int *v4, int *v6) {
  struct ifaddrs *list;
  *v4 = *v6 = 0;
  if (getifaddrs(&list) < 0)
    return -1;
  for (const struct ifaddrs *i = list; i; i = i->ifa_next) {
    const void *a = i->ifa_addr;
    if (!a)
      continue;
    if (i->ifa_addr->sa_family == AF_INET)
      *v4 |= ((const struct sockaddr_in *)a)->sin_addr.s_addr !=
             htonl(INADDR_LOOPBACK);
    else if (i->ifa_addr->sa_family == AF_INET6)
      *v6 |=
          !IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
  }
  freeifaddrs(list);
  return 0;
}

int (*gev__dns_addrconfig_probe)(int *v4, int *v6) = probe_interfaces;

/* Applies AI_ADDRCONFIG to h as glibc does: with AF_UNSPEC, asks only for
 * the one family configured when just one is (a host with none, only
 * loopback, still resolves everything); a family asked for that is not
 * configured finds nothing. 0 or EAI_NONAME. */
static int addrconfig(struct addrinfo *h) {
  int v4, v6;
  if (!(h->ai_flags & AI_ADDRCONFIG) || gev__dns_addrconfig_probe(&v4, &v6) < 0)
    return 0;
  if (h->ai_family == AF_UNSPEC) {
    if (v4 != v6)
      h->ai_family = v4 ? AF_INET : AF_INET6;
    return 0;
  }
  if ((h->ai_family == AF_INET && !v4) || (h->ai_family == AF_INET6 && !v6))
    return EAI_NONAME;
  return 0;
}

/* ---- Service ----------------------------------------------------------- */

static int service_port_by_name(const char *name, const char *proto,
                                int *port) {
  struct servent se, *found = NULL;
  char buf[1024];
  if (getservbyname_r(name, proto, &se, buf, sizeof buf, &found) != 0 || !found)
    return 0;
  *port = ntohs((uint16_t)found->s_port);
  return 1;
}

/* The port of service and the socket types (SOCKTYPE_* bits, narrowed
 * from *types) it exists for. */
static int service_resolve(const char *service, int flags, int *types,
                           int *port) {
  char *end;
  *port = 0;
  if (!service)
    return 0;
  long v = strtol(service, &end, 10);
  if (*service && !*end) {
    if (v < 0 || v > 65535)
      return EAI_SERVICE;
    *port = (int)v;
    return 0;
  }
  if (flags & AI_NUMERICSERV)
    return EAI_NONAME;
  int found = 0, tcp_port = 0, udp_port = 0;
  if ((*types & SOCKTYPE_STREAM) &&
      service_port_by_name(service, "tcp", &tcp_port))
    found |= SOCKTYPE_STREAM;
  if ((*types & SOCKTYPE_DGRAM) &&
      service_port_by_name(service, "udp", &udp_port))
    found |= SOCKTYPE_DGRAM;
  if (!found)
    return EAI_SERVICE;
  *types = found;
  *port = (found & SOCKTYPE_STREAM) ? tcp_port : udp_port;
  return 0;
}

/* ---- Node addresses ---------------------------------------------------- */

static int addrs_push(node_addrs *l, int family, const void *addr,
                      uint32_t scope_id) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 4;
    node_addr *v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return EAI_MEMORY;
    l->v = v;
    l->cap = cap;
  }
  node_addr *a = &l->v[l->n++];
  memset(a, 0, sizeof *a);
  a->family = family;
  a->scope_id = scope_id;
  memcpy(&a->a, addr, family == AF_INET ? sizeof a->a.v4 : sizeof a->a.v6);
  return 0;
}

static void addrs_free(node_addrs *l) {
  free(l->v);
  free(l->canon);
  memset(l, 0, sizeof *l);
}

static void v4_mapped(const struct in_addr *v4, struct in6_addr *v6) {
  memset(v6, 0, sizeof *v6);
  v6->s6_addr[10] = v6->s6_addr[11] = 0xff;
  memcpy(&v6->s6_addr[12], v4, 4);
}

/* node == NULL: the wildcard (AI_PASSIVE) or loopback, in glibc's order. */
static int addrs_default(node_addrs *l, int family, int passive) {
  struct in_addr v4 = {htonl(passive ? INADDR_ANY : INADDR_LOOPBACK)};
  const struct in6_addr *v6 = passive ? &in6addr_any : &in6addr_loopback;
  int eai = 0;
  if (!passive && family != AF_INET)
    eai = addrs_push(l, AF_INET6, v6, 0);
  if (!eai && family != AF_INET6)
    eai = addrs_push(l, AF_INET, &v4, 0);
  if (!eai && passive && family != AF_INET)
    eai = addrs_push(l, AF_INET6, v6, 0);
  return eai;
}

/* An IPv6 literal, with an optional %scope (interface name or number). */
static int parse_v6(const char *node, struct in6_addr *v6, uint32_t *scope) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  const char *pct = strchr(node, '%');
  *scope = 0;
  if (!pct)
    return inet_pton(AF_INET6, node, v6) == 1;
  if ((size_t)(pct - node) >= sizeof buf)
    return 0;
  memcpy(buf, node, (size_t)(pct - node));
  buf[pct - node] = '\0';
  if (inet_pton(AF_INET6, buf, v6) != 1)
    return 0;
  char *end;
  unsigned long n = strtoul(pct + 1, &end, 10);
  *scope = (pct[1] && !*end) ? (uint32_t)n : if_nametoindex(pct + 1);
  return *scope != 0;
}

/* node is an IP literal: 1 and the address pushed (or *eai set), else 0. */
static int addrs_literal(node_addrs *l, const char *node,
                         const struct addrinfo *h, int *eai) {
  struct in_addr v4;
  struct in6_addr v6;
  uint32_t scope;
  *eai = 0;
  if (inet_pton(AF_INET, node, &v4) == 1) {
    if (h->ai_family == AF_INET6 && !(h->ai_flags & AI_V4MAPPED))
      *eai = EAI_ADDRFAMILY;
    else if (h->ai_family == AF_INET6) {
      v4_mapped(&v4, &v6);
      *eai = addrs_push(l, AF_INET6, &v6, 0);
    } else
      *eai = addrs_push(l, AF_INET, &v4, 0);
    return 1;
  }
  if (parse_v6(node, &v6, &scope)) {
    *eai = h->ai_family == AF_INET ? EAI_ADDRFAMILY
                                   : addrs_push(l, AF_INET6, &v6, scope);
    return 1;
  }
  return 0;
}

/* Copies c-ares' answer: for AF_INET6 with AI_V4MAPPED the IPv6 addresses
 * and, when there are none or AI_ALL asks, the IPv4 ones mapped. */
static int addrs_from_ares(node_addrs *l, const struct ares_addrinfo *ai,
                           const struct addrinfo *h) {
  int mapped = h->ai_family == AF_INET6 && (h->ai_flags & AI_V4MAPPED);
  int have_v6 = 0, eai = 0;
  const struct ares_addrinfo_node *n;
  for (n = ai->nodes; n && !eai; n = n->ai_next) {
    if (n->ai_family == AF_INET6) {
      const struct sockaddr_in6 *s = (const void *)n->ai_addr;
      eai = addrs_push(l, AF_INET6, &s->sin6_addr, s->sin6_scope_id);
      have_v6 = 1;
    } else if (n->ai_family == AF_INET && !mapped) {
      eai = addrs_push(
          l, AF_INET,
          &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr, 0);
    }
  }
  if (mapped && (!have_v6 || (h->ai_flags & AI_ALL))) {
    for (n = ai->nodes; n && !eai; n = n->ai_next) {
      if (n->ai_family != AF_INET)
        continue;
      struct in6_addr v6;
      v4_mapped(
          &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr,
          &v6);
      eai = addrs_push(l, AF_INET6, &v6, 0);
    }
  }
  if (!eai && l->n == 0)
    eai = EAI_NODATA;
  return eai;
}

/* node is a name: ask c-ares (which reads /etc/hosts first). */
static int addrs_lookup(node_addrs *l, const char *node,
                        const struct addrinfo *h) {
  struct ares_addrinfo_hints ah = {.ai_family = h->ai_family};
  int eai;
  if (h->ai_family == AF_INET6 && (h->ai_flags & AI_V4MAPPED))
    ah.ai_family = AF_UNSPEC;
  if (h->ai_flags & AI_CANONNAME)
    ah.ai_flags |= ARES_AI_CANONNAME;
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_ADDRINFO, &eai);
  if (!q)
    return eai;
  ares_getaddrinfo(gev__dns_req_channel(q), node, NULL, &ah,
                   gev__dns_addrinfo_cb, q);
  if ((eai = gev__dns_req_wait(q)) != 0)
    return eai;
  eai = gev__dns_eai_from_ares(q->status);
  if (!eai && !q->ai)
    eai = EAI_NODATA; /* LCOV_EXCL_LINE: c-ares passes a result */
  if (!eai)
    eai = addrs_from_ares(l, q->ai, h);
  if (!eai && (h->ai_flags & AI_CANONNAME) &&
      !(l->canon = strdup(gev__dns_canon_name(q->ai, node))))
    eai = EAI_MEMORY;
  gev__dns_req_free(q);
  return eai;
}

static int addrs_resolve(node_addrs *l, const char *node,
                         const struct addrinfo *h) {
  int eai;
  if (!node)
    return addrs_default(l, h->ai_family, h->ai_flags & AI_PASSIVE);
  if (addrs_literal(l, node, h, &eai)) {
    if (!eai && (h->ai_flags & AI_CANONNAME) && !(l->canon = strdup(node)))
      eai = EAI_MEMORY;
    return eai;
  }
  if (h->ai_flags & AI_NUMERICHOST)
    return EAI_NONAME;
  return addrs_lookup(l, node, h);
}

/* ---- The result list --------------------------------------------------- */

static struct addrinfo *entry_new(const node_addr *a, int socktype,
                                  int protocol, int port, const char *canon) {
  socklen_t salen = a->family == AF_INET ? sizeof(struct sockaddr_in)
                                         : sizeof(struct sockaddr_in6);
  size_t canon_len = canon ? strlen(canon) + 1 : 0;
  struct addrinfo *e = calloc(1, sizeof *e + salen + canon_len);
  if (!e)
    return NULL;
  e->ai_family = a->family;
  e->ai_socktype = socktype;
  e->ai_protocol = protocol;
  e->ai_addrlen = salen;
  e->ai_addr = (struct sockaddr *)(e + 1);
  if (a->family == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)(e + 1);
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    s->sin_addr = a->a.v4;
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)(e + 1);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    s->sin6_addr = a->a.v6;
    s->sin6_scope_id = a->scope_id;
  }
  if (canon)
    e->ai_canonname = memcpy((char *)(e + 1) + salen, canon, canon_len);
  return e;
}

static int socktype_protocol(int socktype, int hint_protocol) {
  if (hint_protocol)
    return hint_protocol;
  return socktype == SOCK_STREAM  ? IPPROTO_TCP
         : socktype == SOCK_DGRAM ? IPPROTO_UDP
                                  : 0;
}

static int list_build(const node_addrs *l, int types, int port,
                      const struct addrinfo *h, struct addrinfo **res) {
  static const int order[3][2] = {{SOCKTYPE_STREAM, SOCK_STREAM},
                                  {SOCKTYPE_DGRAM, SOCK_DGRAM},
                                  {SOCKTYPE_RAW, SOCK_RAW}};
  struct addrinfo **tail = res;
  const char *canon = l->canon;
  for (size_t i = 0; i < l->n; i++) {
    for (int t = 0; t < 3; t++) {
      if (!(types & order[t][0]))
        continue;
      int st = order[t][1];
      *tail = entry_new(&l->v[i], st, socktype_protocol(st, h->ai_protocol),
                        port, canon);
      if (!*tail)
        goto out_free_list;
      canon = NULL;
      tail = &(*tail)->ai_next;
    }
  }
  return 0;

out_free_list:
  gev_freeaddrinfo(*res);
  *res = NULL;
  return EAI_MEMORY;
}

int gev_getaddrinfo(const char *node, const char *service,
                    const struct addrinfo *hints, struct addrinfo **res) {
  return gev_getaddrinfo_ex(GEV_DNS_DEFAULT, node, service, hints, res);
}

int gev_getaddrinfo_ex(gev_dns_resolver which, const char *node,
                       const char *service, const struct addrinfo *hints,
                       struct addrinfo **res) {
  struct addrinfo h = {.ai_family = AF_UNSPEC};
  node_addrs addrs = {0};
  int eai, types, port;
  if (!res || which < GEV_DNS_DEFAULT || which > GEV_DNS_THREAD) {
    errno = EINVAL;
    return EAI_SYSTEM;
  }
  *res = NULL;
  if (gev__dns_use_thread(which))
    return gev__dns_thread_getaddrinfo(node, service, hints, res);
  if (hints)
    h = *hints;
  if ((eai = hints_check(&h, node)) != 0)
    return eai;
  if (!node && !service)
    return EAI_NONAME;
  if ((eai = addrconfig(&h)) != 0)
    return eai;
  types = hints_socktypes(&h);
  if ((eai = service_resolve(service, h.ai_flags, &types, &port)) != 0)
    return eai;
  if ((eai = addrs_resolve(&addrs, node, &h)) == 0)
    eai = list_build(&addrs, types, port, &h, res);
  addrs_free(&addrs);
  return eai;
}

void gev_freeaddrinfo(struct addrinfo *res) {
  while (res) {
    struct addrinfo *next = res->ai_next;
    free(res); /* the sockaddr and canonical name share its block */
    res = next;
  }
}

/* ---- getnameinfo ------------------------------------------------------- */

#define GNI_FLAGS                                                              \
  (NI_NUMERICHOST | NI_NUMERICSERV | NI_NAMEREQD | NI_NOFQDN | NI_DGRAM)

static int copy_out(char *dst, socklen_t len, const char *src, size_t n) {
  if (n + 1 > (size_t)len)
    return EAI_OVERFLOW;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return 0;
}

static int service_name(int port, int flags, char *serv, socklen_t len) {
  char buf[1024];
  struct servent se, *found = NULL;
  if (!(flags & NI_NUMERICSERV) &&
      getservbyport_r(htons((uint16_t)port), (flags & NI_DGRAM) ? "udp" : "tcp",
                      &se, buf, sizeof buf, &found) == 0 &&
      found)
    return copy_out(serv, len, found->s_name, strlen(found->s_name));
  int n = snprintf(buf, sizeof buf, "%d", port);
  return copy_out(serv, len, buf, (size_t)n);
}

/* The address bytes of sa (AF_INET or AF_INET6) and their length. */
static const void *sa_addr(const struct sockaddr *sa, socklen_t *len) {
  const void *p = sa;
  if (sa->sa_family == AF_INET) {
    *len = sizeof(struct in_addr);
    return &((const struct sockaddr_in *)p)->sin_addr;
  }
  *len = sizeof(struct in6_addr);
  return &((const struct sockaddr_in6 *)p)->sin6_addr;
}

static int sa_port(const struct sockaddr *sa) {
  const void *p = sa;
  return ntohs(sa->sa_family == AF_INET
                   ? ((const struct sockaddr_in *)p)->sin_port
                   : ((const struct sockaddr_in6 *)p)->sin6_port);
}

static int host_numeric(const struct sockaddr *sa, char *host, socklen_t len) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  socklen_t alen;
  inet_ntop(sa->sa_family, sa_addr(sa, &alen), buf, INET6_ADDRSTRLEN);
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const void *)sa;
    if (s6->sin6_scope_id)
      snprintf(buf + strlen(buf), IF_NAMESIZE + 2, "%%%u",
               (unsigned)s6->sin6_scope_id);
  }
  return copy_out(host, len, buf, strlen(buf));
}

static int host_name(const struct sockaddr *sa, int flags, char *host,
                     socklen_t len) {
  struct hostent *he;
  socklen_t alen;
  const void *addr = sa_addr(sa, &alen);
  int eai = gev_gethostbyaddr(addr, alen, sa->sa_family, &he);
  if (eai == EAI_NONAME || eai == EAI_NODATA)
    return (flags & NI_NAMEREQD) ? EAI_NONAME : host_numeric(sa, host, len);
  if (eai)
    return eai;
  size_t n = strlen(he->h_name);
  if (flags & NI_NOFQDN) {
    const char *dot = strchr(he->h_name, '.');
    if (dot)
      n = (size_t)(dot - he->h_name);
  }
  eai = copy_out(host, len, he->h_name, n);
  gev_freehostent(he);
  return eai;
}

int gev_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                    socklen_t hostlen, char *serv, socklen_t servlen,
                    int flags) {
  return gev_getnameinfo_ex(GEV_DNS_DEFAULT, sa, salen, host, hostlen, serv,
                            servlen, flags);
}

int gev_getnameinfo_ex(gev_dns_resolver which, const struct sockaddr *sa,
                       socklen_t salen, char *host, socklen_t hostlen,
                       char *serv, socklen_t servlen, int flags) {
  int want_host = host && hostlen > 0, want_serv = serv && servlen > 0;
  int eai = 0;
  if (which < GEV_DNS_DEFAULT || which > GEV_DNS_THREAD) {
    errno = EINVAL;
    return EAI_SYSTEM;
  }
  if (!sa)
    return EAI_FAMILY;
  if (!((sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6))))
    return EAI_FAMILY;
  if (flags & ~GNI_FLAGS)
    return EAI_BADFLAGS;
  if (!want_host && !want_serv)
    return EAI_NONAME;
  if (gev__dns_use_thread(which))
    return gev__dns_thread_getnameinfo(sa, salen, host, hostlen, serv, servlen,
                                       flags);
  if (want_serv)
    eai = service_name(sa_port(sa), flags, serv, servlen);
  if (!eai && want_host)
    eai = (flags & NI_NUMERICHOST) ? host_numeric(sa, host, hostlen)
                                   : host_name(sa, flags, host, hostlen);
  return eai;
}

/* ---- For the socket layer ---------------------------------------------- */

/* The one EAI-to-errno table of gev (gev/dns.h, "As errno"): every call
 * outside the DNS layer that resolves a name reports through it. */
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
  struct addrinfo hints = {
      .ai_family = family, .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
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
