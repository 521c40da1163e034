/*
 * Internal: the per-hub resolver and the lookup request every gev DNS call
 * is built from (dns.c), shared with getaddrinfo/getnameinfo
 * (dns_addrinfo.c) and available to the socket layer (gev__dns_resolve).
 *
 * A lookup is a heap gev__dns_req. The caller creates it, hands it to one
 * c-ares call as the callback argument, then gev__dns_req_wait() parks
 * until the c-ares callback has filled it in. If the caller is interrupted
 * (kill, timeout scope), the request is detached: it stays owned by c-ares
 * until its callback runs, which then frees it. So c-ares never calls back
 * into freed memory and nothing points at the caller's stack.
 */
#ifndef GEV_SRC_NET_DNS_INTERNAL_H
#define GEV_SRC_NET_DNS_INTERNAL_H

#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>

#include "hub/park.h"

typedef struct gev__resolver gev__resolver;

/* The calling thread's settings (dns_config.c); 0 or NULL fields mean
 * "c-ares' default" (from /etc/resolv.conf). */
typedef struct gev__dns_config {
  const char *servers; /* "ip[:port],..." or NULL */
  int timeout_ms;      /* first try */
  int tries;
  int rotate;   /* -1 default, 0 off, 1 on */
  int resolver; /* GEV_DNS_ARES or GEV_DNS_THREAD (never DEFAULT) */
} gev__dns_config;

/* Non-zero when a lookup asking for resolver `which` (GEV_DNS_DEFAULT:
 * the thread's setting) goes to the thread resolver. */
int gev__dns_use_thread(int which);

/* The thread resolver (dns_thread.c): libc's calls run in the default
 * threadpool, returning results in gev's formats (gev_freeaddrinfo,
 * gev_freehostent). Arguments are checked by the callers in dns.h's
 * terms. */
int gev__dns_thread_getaddrinfo(const char *node, const char *service,
                                const struct addrinfo *hints,
                                struct addrinfo **res);
int gev__dns_thread_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                                char *host, socklen_t hostlen, char *serv,
                                socklen_t servlen, int flags);
int gev__dns_thread_gethostbyname(const char *name, struct in_addr *addr);
int gev__dns_thread_gethostbyname_ex(const char *name, int family,
                                     struct hostent **out);
int gev__dns_thread_gethostbyaddr(const void *addr, socklen_t len, int family,
                                  struct hostent **out);

/* A copy of h in one heap block (gev_freehostent frees it), or NULL. */
struct hostent *gev__dns_hostent_copy(const struct hostent *h);

/* The settings, read from the environment on first use; NULL with errno
 * ENOMEM. */
const gev__dns_config *gev__dns_settings(void);
/* Closes the hub's channel so the next lookup uses changed settings.
 * -1 with errno EBUSY while lookups are in flight. */
int gev__dns_resolver_reset(void);

/* What the c-ares callback keeps from the answer. */
typedef enum gev__dns_want {
  GEV__DNS_HOSTENT,  /* a one-block copy of the hostent, into host */
  GEV__DNS_ADDRINFO, /* c-ares' addrinfo result itself, into ai */
} gev__dns_want;

typedef struct gev__dns_req {
  gev__resolver *resolver;  /* ro */
  gev__task *task;          /* private: the parked caller, or NULL */
  gev__dns_want want;       /* ro */
  int done;                 /* private: the callback has run */
  int detached;             /* private: the caller left; callback frees */
  int status;               /* ro after done: ARES_SUCCESS or ARES_E* */
  struct hostent *host;     /* result for GEV__DNS_HOSTENT (owned) */
  struct ares_addrinfo *ai; /* result for GEV__DNS_ADDRINFO (owned) */
} gev__dns_req;

/* Starts a lookup from the calling coroutine: checks that it may block,
 * gets the hub's resolver and its channel (created on first use), and
 * returns a new request. NULL with the EAI code in *eai (and errno for
 * EAI_SYSTEM). */
gev__dns_req *gev__dns_req_new(gev__dns_want want, int *eai);
/* The channel to hand the request to. */
ares_channel gev__dns_req_channel(const gev__dns_req *q);
/* Parks until q's callback has run. 0: done, read q->status and the
 * result, then gev__dns_req_free(q). An EAI code (EAI_SYSTEM with errno
 * ECANCELED, ETIMEDOUT, ...): interrupted; q now belongs to c-ares and the
 * caller must not touch it again. */
int gev__dns_req_wait(gev__dns_req *q);
void gev__dns_req_free(gev__dns_req *q);

/* Ends a request from its c-ares callback with status: frees it when its
 * caller has gone, else marks it done and wakes the caller. Returns 1 when
 * the caller still waits for it. */
int gev__dns_req_finish(gev__dns_req *q, int status);

/* c-ares callbacks that fill a request in (arg is the request). */
void gev__dns_host_cb(void *arg, int status, int timeouts, struct hostent *h);
void gev__dns_addrinfo_cb(void *arg, int status, int timeouts,
                          struct ares_addrinfo *ai);

/* The name at the end of the CNAME chain that starts at name in ai. */
const char *gev__dns_canon_name(const struct ares_addrinfo *ai,
                                const char *name);

/* The EAI code for a c-ares status; sets errno when it is EAI_SYSTEM. */
int gev__dns_eai_from_ares(int status);

/* AI_ADDRCONFIG: which families have an address configured on some
 * interface, loopback addresses not counting (glibc's rule). Sets *v4 and
 * *v6 (0 or 1); returns 0, or -1 when the interfaces cannot be read (then
 * nothing is filtered). Tests replace it to stage a host's interfaces. */
extern int (*gev__dns_addrconfig_probe)(int *v4, int *v6);

/* The servers c-ares reports, as "ip:port,..." with IPv6 in brackets and
 * port 53 spelt out (c-ares >= 1.24 gives a csv that may leave the port
 * out and may name an interface): csv rewritten into buf. 0, or -1 with
 * ERANGE (buf too small) or EINVAL (an entry it cannot read). */
int gev__dns_servers_normalize(const char *csv, char *buf, size_t len);

/* For the socket layer (create_connection and friends): resolves host and
 * port for sockets of socktype (0 = any) and family (AF_UNSPEC, AF_INET,
 * AF_INET6) through the hub's resolver. On success returns 0 and *res, a
 * list released with gev_freeaddrinfo(). On failure returns -1 with errno
 * as a socket call would report it (the one table, gev/dns.h "As errno"),
 * and the EAI code in *eai if eai is not NULL:
 *   ENOENT     the name does not exist or has no address (EAI_NONAME,
 *              EAI_NODATA, EAI_ADDRFAMILY);
 *   EAGAIN     temporary server failure (EAI_AGAIN);
 *   EIO        the server refused (EAI_FAIL);
 *   EINVAL     bad arguments (host NULL, port out of range, EAI_FAMILY,
 *              EAI_SOCKTYPE, EAI_SERVICE, EAI_BADFLAGS);
 *   ENOMEM, and for EAI_SYSTEM its errno: ETIMEDOUT, ECANCELED, EPERM,
 *   ECONNREFUSED, EBADMSG, EPROTO, EDEADLK. */
int gev__dns_resolve(const char *host, int port, int family, int socktype,
                     struct addrinfo **res, int *eai);

#endif
