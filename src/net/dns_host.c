/*
 * gethostbyname, gethostbyname_ex and gethostbyaddr over the hub's
 * resolver (dns.c), and the hostent copies they return: one heap block per
 * result, so that gev_freehostent() is a single free().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gev/dns.h"
#include "net/dns_internal.h"

/* ---- Results ----------------------------------------------------------- */

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

struct hostent *gev__dns_hostent_copy(const struct hostent *h) {
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
  if (status == ARES_SUCCESS && !q->detached &&
      !(q->host = gev__dns_hostent_copy(h))) {
    status = ARES_ENOMEM;
  }
  gev__dns_req_finish(q, status);
}

/* ---- Lookups ----------------------------------------------------------- */

static int bad_argument(void) {
  errno = EINVAL;
  return EAI_SYSTEM;
}

/* The first IPv4 address of ai, or NULL. */
static const struct in_addr *first_v4(const struct ares_addrinfo *ai) {
  for (const struct ares_addrinfo_node *n = ai ? ai->nodes : NULL; n;
       n = n->ai_next)
    if (n->ai_family == AF_INET)
      return &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr;
  return NULL;
}

/* Through ares_getaddrinfo, not ares_gethostbyname, which current c-ares
 * deprecates (and which answers from the same hosts file and servers). */
int gev_gethostbyname(const char *name, struct in_addr *addr) {
  struct ares_addrinfo_hints hints = {.ai_family = AF_INET};
  const struct in_addr *found;
  int eai;
  if (!name || !addr)
    return bad_argument();
  if (inet_pton(AF_INET, name, addr) == 1)
    return 0;
  if (gev__dns_use_thread(GEV_DNS_DEFAULT))
    return gev__dns_thread_gethostbyname(name, addr);
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_ADDRINFO, &eai);
  if (!q)
    return eai;
  ares_getaddrinfo(gev__dns_req_channel(q), name, NULL, &hints,
                   gev__dns_addrinfo_cb, q);
  if ((eai = gev__dns_req_wait(q)) != 0)
    return eai;
  if ((eai = gev__dns_eai_from_ares(q->status)) == 0) {
    if ((found = first_v4(q->ai)))
      *addr = *found;
    else
      eai = EAI_NODATA; /* LCOV_EXCL_LINE: c-ares reports ENODATA first */
  }
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
                      .h_aliases = aliases,
                      .h_addrtype = family,
                      .h_length = family == AF_INET ? 4 : 16,
                      .h_addr_list = addrs},
                 *copy = NULL;
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
    copy = gev__dns_hostent_copy(&h);
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
  if (gev__dns_use_thread(GEV_DNS_DEFAULT))
    return gev__dns_thread_gethostbyname_ex(name, family, out);
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_ADDRINFO, &eai);
  if (!q)
    return eai;
  ares_getaddrinfo(gev__dns_req_channel(q), name, NULL, &hints,
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
  if (len !=
      (family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr)))
    return bad_argument();
  if (gev__dns_use_thread(GEV_DNS_DEFAULT))
    return gev__dns_thread_gethostbyaddr(addr, len, family, out);
  gev__dns_req *q = gev__dns_req_new(GEV__DNS_HOSTENT, &eai);
  if (!q)
    return eai;
  ares_gethostbyaddr(gev__dns_req_channel(q), addr, (int)len, family,
                     gev__dns_host_cb, q);
  return host_result(q, out);
}

void gev_freehostent(struct hostent *h) { free(h); }
