/*
 * The thread resolver (gev/dns.h): libc's lookups run in the default
 * threadpool, so that they answer exactly as the system does (nsswitch,
 * mDNS, LDAP ...), while only the calling greenlet parks.
 *
 * Each lookup is a job whose argument holds copies of the inputs and the
 * outputs: the caller may be killed or time out while libc still runs, so
 * the job never touches the caller's memory (strings, buffers, results),
 * and its cleanup frees whatever the caller did not take. Results are
 * converted in the pool thread into gev's formats (one block per addrinfo
 * entry, one block per hostent), so gev_freeaddrinfo and gev_freehostent
 * release them whichever resolver answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "gev/dns.h"
#include "gev/thread.h"
#include "net/dns_internal.h"

enum { OP_ADDRINFO, OP_NAMEINFO, OP_BYNAME, OP_BYADDR };

typedef struct lookup {
  int op;
  /* Inputs. */
  char *name, *service;
  struct addrinfo hints;
  int has_hints;
  struct sockaddr_storage sa;
  socklen_t salen;
  int flags, family;
  unsigned char addr[16];
  socklen_t addrlen;
  /* Outputs. */
  int eai, err; /* err: errno for EAI_SYSTEM */
  struct addrinfo *ai;
  struct hostent *host;
  char host_buf[NI_MAXHOST], serv_buf[NI_MAXSERV];
} lookup;

/* ---- In the pool thread ----------------------------------------------------
 */

/* libc's list in gev's format: each entry one block with its address and
 * canonical name. NULL when out of memory. */
static struct addrinfo *ai_copy(const struct addrinfo *src) {
  struct addrinfo *head = NULL, **tail = &head;
  for (; src; src = src->ai_next) {
    size_t canon = src->ai_canonname ? strlen(src->ai_canonname) + 1 : 0;
    struct addrinfo *e = calloc(1, sizeof *e + src->ai_addrlen + canon);
    if (!e) {
      gev_freeaddrinfo(head);
      return NULL;
    }
    *e = *src;
    e->ai_next = NULL;
    e->ai_addr = memcpy(e + 1, src->ai_addr, src->ai_addrlen);
    e->ai_canonname = canon ? memcpy((char *)(e + 1) + src->ai_addrlen,
                                     src->ai_canonname, canon)
                            : NULL;
    *tail = e;
    tail = &e->ai_next;
  }
  return head;
}

static void run_addrinfo(lookup *q) {
  struct addrinfo *res = NULL;
  q->eai =
      getaddrinfo(q->name, q->service, q->has_hints ? &q->hints : NULL, &res);
  if (q->eai == EAI_SYSTEM)
    q->err = errno;
  if (q->eai == 0 && !(q->ai = ai_copy(res)))
    q->eai = EAI_MEMORY;
  if (res)
    freeaddrinfo(res);
}

static void run_nameinfo(lookup *q) {
  q->eai = getnameinfo((struct sockaddr *)&q->sa, q->salen, q->host_buf,
                       sizeof q->host_buf, q->serv_buf, sizeof q->serv_buf,
                       q->flags);
  if (q->eai == EAI_SYSTEM)
    q->err = errno;
}

/* The EAI code of a gethostby*_r failure. */
static int eai_from_herrno(int rc, int herr) {
  if (rc == ERANGE)
    return EAI_OVERFLOW;
  if (rc != 0) {
    errno = rc;
    return EAI_SYSTEM;
  }
  switch (herr) {
  case HOST_NOT_FOUND:
    return EAI_NONAME;
  case NO_DATA:
    return EAI_NODATA;
  case TRY_AGAIN:
    return EAI_AGAIN;
  default:
    return EAI_FAIL;
  }
}

/* gethostbyname2_r / gethostbyaddr_r with a buffer grown until it fits. */
static void run_hostent(lookup *q) {
  struct hostent he, *found = NULL;
  size_t len = 1024;
  char *buf = NULL;
  int rc, herr = 0;
  for (;;) {
    char *grown = realloc(buf, len);
    if (!grown) {
      q->eai = EAI_MEMORY;
      goto out;
    }
    buf = grown;
    if (q->op == OP_BYNAME)
      rc = gethostbyname2_r(q->name, q->family, &he, buf, len, &found, &herr);
    else
      rc = gethostbyaddr_r(q->addr, q->addrlen, q->family, &he, buf, len,
                           &found, &herr);
    if (rc != ERANGE || len >= (1u << 20))
      break;
    len *= 2;
  }
  if (rc == 0 && found) {
    q->eai = (q->host = gev__dns_hostent_copy(found)) ? 0 : EAI_MEMORY;
  } else {
    q->eai = eai_from_herrno(rc, herr);
    q->err = q->eai == EAI_SYSTEM ? errno : 0;
  }
out:
  free(buf);
}

static void *lookup_run(void *arg) {
  lookup *q = arg;
  switch (q->op) {
  case OP_ADDRINFO:
    run_addrinfo(q);
    break;
  case OP_NAMEINFO:
    run_nameinfo(q);
    break;
  default:
    run_hostent(q);
  }
  return NULL;
}

static void lookup_free(void *arg, void *value) {
  lookup *q = arg;
  (void)value;
  gev_freeaddrinfo(q->ai);
  gev_freehostent(q->host);
  free(q->name);
  free(q->service);
  free(q);
}

/* ---- In the caller ----------------------------------------------------- */

/* Runs q (heap, its inputs set) in the default pool and waits. 0 with q's
 * outputs to take (then lookup_done(r)); else an EAI code: the wait failed
 * (EAI_SYSTEM with errno) and q is gone. */
static int lookup_start(lookup *q, gev_thread_result **r) {
  if (gev__may_block() < 0) {
    lookup_free(q, NULL);
    return EAI_SYSTEM;
  }
  if (!(*r = gev_threadpool_spawn_ex(NULL, lookup_run, q, lookup_free))) {
    int err = errno;
    lookup_free(q, NULL);
    errno = err;
    return err == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
  }
  if (gev_thread_result_wait(*r, -1) < 0) {
    int err = errno;
    gev_thread_result_unref(*r); /* the job finishes and frees q */
    errno = err;
    return EAI_SYSTEM;
  }
  return 0;
}

/* The job's own outcome; then the result (and what is left in q) goes. */
static int lookup_done(gev_thread_result *r, const lookup *q) {
  int eai = q->eai, err = q->err;
  gev_thread_result_unref(r);
  if (eai == EAI_SYSTEM)
    errno = err;
  return eai;
}

static lookup *lookup_new(int op, const char *name) {
  lookup *q = calloc(1, sizeof *q);
  if (q && name && !(q->name = strdup(name))) {
    free(q);
    q = NULL;
  }
  if (q)
    q->op = op;
  return q;
}

int gev__dns_thread_getaddrinfo(const char *node, const char *service,
                                const struct addrinfo *hints,
                                struct addrinfo **res) {
  gev_thread_result *r;
  lookup *q = lookup_new(OP_ADDRINFO, node);
  int eai;
  if (!q)
    return EAI_MEMORY;
  if (service && !(q->service = strdup(service))) {
    lookup_free(q, NULL);
    return EAI_MEMORY;
  }
  if (hints) {
    q->hints = *hints;
    q->hints.ai_addr = NULL; /* the caller's pointers stay the caller's */
    q->hints.ai_canonname = NULL;
    q->hints.ai_next = NULL;
    q->has_hints = 1;
  }
  if ((eai = lookup_start(q, &r)) != 0)
    return eai;
  *res = q->ai;
  q->ai = NULL;
  return lookup_done(r, q);
}

int gev__dns_thread_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                                char *host, socklen_t hostlen, char *serv,
                                socklen_t servlen, int flags) {
  gev_thread_result *r;
  lookup *q = lookup_new(OP_NAMEINFO, NULL);
  int eai;
  if (!q)
    return EAI_MEMORY;
  memcpy(&q->sa, sa, salen < sizeof q->sa ? salen : sizeof q->sa);
  q->salen = salen;
  q->flags = flags;
  if ((eai = lookup_start(q, &r)) != 0)
    return eai;
  if (q->eai == 0 && host && hostlen > 0 &&
      strlen(q->host_buf) + 1 > (size_t)hostlen)
    q->eai = EAI_OVERFLOW;
  if (q->eai == 0 && serv && servlen > 0 &&
      strlen(q->serv_buf) + 1 > (size_t)servlen)
    q->eai = EAI_OVERFLOW;
  if (q->eai == 0 && host && hostlen > 0)
    strcpy(host, q->host_buf);
  if (q->eai == 0 && serv && servlen > 0)
    strcpy(serv, q->serv_buf);
  return lookup_done(r, q);
}

int gev__dns_thread_gethostbyname(const char *name, struct in_addr *addr) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                  *res = NULL;
  int eai = gev__dns_thread_getaddrinfo(name, NULL, &hints, &res);
  if (eai == 0)
    *addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
  gev_freeaddrinfo(res);
  return eai;
}

/* A hostent lookup prepared in q; its result into *out. */
static int hostent_lookup(lookup *q, struct hostent **out) {
  gev_thread_result *r;
  int eai = lookup_start(q, &r);
  if (eai != 0)
    return eai;
  *out = q->host;
  q->host = NULL;
  return lookup_done(r, q);
}

int gev__dns_thread_gethostbyname_ex(const char *name, int family,
                                     struct hostent **out) {
  lookup *q = lookup_new(OP_BYNAME, name);
  if (!q)
    return EAI_MEMORY;
  q->family = family;
  return hostent_lookup(q, out);
}

int gev__dns_thread_gethostbyaddr(const void *addr, socklen_t len, int family,
                                  struct hostent **out) {
  lookup *q = lookup_new(OP_BYADDR, NULL);
  if (!q)
    return EAI_MEMORY;
  memcpy(q->addr, addr, len);
  q->addrlen = len;
  q->family = family;
  return hostent_lookup(q, out);
}
