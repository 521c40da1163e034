/*
 * gev/dns.h — cooperative name resolution: over c-ares in the hub
 * (gevent's ares resolver), or through libc in the threadpool (gevent's
 * default, thread resolver).
 *
 * Two resolvers. Every lookup below goes to one of them:
 *   ares    (the default) c-ares in the calling thread's hub, as this
 *           section describes: thousands of lookups in flight over a few
 *           sockets, /etc/hosts then DNS, nothing else;
 *   thread  libc's getaddrinfo, getnameinfo, gethostbyname2_r and
 *           gethostbyaddr_r, each run in the default threadpool (gev/
 *           thread.h) while only the caller parks. It answers exactly as
 *           the system does: nsswitch.conf with every source it names
 *           (files, dns, mdns, ldap, sss, myhostname ...), glibc's own
 *           caching and ordering rules. At most as many lookups run at
 *           once as the pool has threads (GEV_THREADPOOL_SIZE, default
 *           10); more wait their turn.
 * Which: the thread's setting (gev_dns_set_resolver), whose default comes
 * from GEV_DNS_RESOLVER=ares|thread; or per call, gev_getaddrinfo_ex and
 * gev_getnameinfo_ex. The settings below (servers, timeout, tries,
 * rotate) are c-ares'; the thread resolver takes its configuration from
 * the system's files. Pick thread when names must resolve as every other
 * program on the host resolves them (mDNS, LDAP, a VPN's resolver); ares
 * for many lookups at once, or for the per-call timeouts and servers.
 * The thread resolver's cancellation: a killed or timed-out caller
 * returns at once, as below; the libc call finishes in its thread and its
 * result is freed there.
 *
 * The ares resolver. Each hub has one: a c-ares channel whose sockets are
 * watched by the hub's libev loop and whose retry timer is a one-shot libev
 * timer armed from ares_timeout(). It is created by the first lookup of the
 * thread and torn down with the hub. A lookup parks only the calling greenlet;
 * any number of lookups (thousands) may be in flight at once, from different
 * greenlets, over the same few sockets. At most 256 queries per hub are
 * on the wire at a time; later lookups wait their turn in FIFO order (a
 * larger burst overflows the servers' receive buffers and turns lost
 * datagrams into retry timeouts).
 *
 * Where answers come from, in order: IP literals are answered without any
 * lookup; then /etc/hosts (always before DNS, whatever nsswitch.conf
 * says, so a name there never costs a query); then the DNS servers (those
 * of /etc/resolv.conf unless configured, see "Configuration" below), with
 * resolv.conf's search domains and ndots.
 *
 * Two error conventions, as in libc:
 *   - The five lookups, gev_gethostbyname, gev_gethostbyname_ex,
 *     gev_gethostbyaddr, gev_getaddrinfo and gev_getnameinfo, follow
 *     getaddrinfo's: they return 0 on success or an EAI_* code (a negative
 *     number from <netdb.h>), never -1; errno means something only when
 *     the code is EAI_SYSTEM. Test `if ((rc = gev_getaddrinfo(...)) != 0)`
 *     and describe rc with gev_dns_strerror(), not strerror(errno).
 *   - Everything else here (gev_dns_set_servers, _set_timeout, _set_tries,
 *     _set_rotate, _get_servers) follows POSIX: 0, or -1 with errno; and
 *     so do the calls of other layers that resolve names on the way
 *     (gev_create_connection ...), which turn a failed lookup into errno
 *     by the table under "As errno" below.
 *   gev_freehostent, gev_freeaddrinfo and gev_dns_strerror cannot fail.
 *
 * Errors of the lookups (EAI_* codes; gev_dns_strerror() describes one):
 *   EAI_NONAME   the name does not exist (NXDOMAIN), or an invalid name,
 *                or a non-numeric host/service where a numeric one was
 *                required;
 *   EAI_NODATA   the name exists but has no address of the family asked;
 *   EAI_AGAIN    the server answered "server failure" (SERVFAIL);
 *   EAI_FAIL     the server refused the query (REFUSED);
 *                (these two with a single server; with several, c-ares
 *                tries the next one instead, see ECONNREFUSED below)
 *   EAI_FAMILY   unsupported address family;
 *   EAI_ADDRFAMILY  an IP literal of the other family than the one asked
 *                (getaddrinfo without AI_V4MAPPED);
 *   EAI_SOCKTYPE, EAI_SERVICE, EAI_BADFLAGS (getaddrinfo/getnameinfo);
 *   EAI_OVERFLOW a caller's buffer is too small;
 *   EAI_MEMORY   out of memory;
 *   EAI_SYSTEM   see errno:
 *       ETIMEDOUT     no answer within the resolver's timeout and tries, or
 *                     the caller's gev_timeout scope expired;
 *       ECANCELED     the calling greenlet was killed;
 *       ECONNREFUSED  no server gave a usable answer: connections
 *                     refused, or (with several servers configured)
 *                     every one answered SERVFAIL/REFUSED;
 *       EBADMSG       the server's answers could not be parsed;
 *       EPROTO        the server rejected the query as malformed or
 *                     unimplemented (FORMERR, NOTIMP);
 *       EINVAL        NULL or malformed arguments;
 *       EIO           c-ares could not be set up (the reason is printed
 *                     on stderr);
 *       EPERM         called from the hub or a loop callback (must not
 *                     block);
 *       EDEADLK, EXDEV  as any blocking call (see gev/hub.h).
 *
 * As errno. Calls of other layers that resolve names on the way (such as
 * gev_create_connection in gev/net.h) report a failed lookup as errno, by
 * one table: ENOENT for a name that does not exist or has no address of
 * the family asked (EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY: "no such
 * name", as a file that does not exist); EAGAIN for EAI_AGAIN; EIO for
 * EAI_FAIL; ENOMEM for EAI_MEMORY; EINVAL for the argument errors
 * (EAI_FAMILY, EAI_SOCKTYPE, EAI_SERVICE, EAI_BADFLAGS); and for
 * EAI_SYSTEM its errno.
 *
 * Cancellation. A lookup whose greenlet is killed, or whose gev_timeout
 * scope expires, returns at once with EAI_SYSTEM/ECANCELED or ETIMEDOUT.
 * Its c-ares query is detached: its answer, if one still arrives, is
 * dropped, and nothing refers to the caller any more. When no lookup of the
 * hub is left waiting, the detached queries are cancelled in c-ares (their
 * sockets closed, their timers stopped), so an idle resolver holds no
 * watcher and no socket.
 *
 * Results are heap copies the caller owns and releases with the matching
 * free call. Lookup calls write their outputs only after the greenlet has
 * resumed, so outputs may live on any stack (also a shared-mode one).
 */
#ifndef GEV_DNS_H
#define GEV_DNS_H

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* <netdb.h> declares struct addrinfo only with POSIX or GNU features
 * enabled (not under plain -std=c11). Declared here at file scope, it is the
 * same type as libc's either way, so gev_getaddrinfo takes the caller's
 * struct addrinfo whatever the caller's feature macros. */
struct addrinfo;

#include "gev/hub.h"

/* glibc hides these two codes without _GNU_SOURCE; gev returns them. */
#ifndef EAI_NODATA
#define EAI_NODATA -5
#endif
#ifndef EAI_ADDRFAMILY
#define EAI_ADDRFAMILY -9
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The resolver a lookup goes to (see above). */
typedef enum gev_dns_resolver {
  GEV_DNS_DEFAULT = 0, /* the calling thread's setting */
  GEV_DNS_ARES,        /* c-ares in the hub */
  GEV_DNS_THREAD,      /* libc in the default threadpool */
} gev_dns_resolver;

/* ---- Lookups (block the calling greenlet only) ------------------------ */

/* gevent's gethostbyname: the first IPv4 address of name into *addr.
 * name may be a dotted IPv4 literal. Returns 0 or an EAI_* code (above):
 * EAI_NODATA when the name has only IPv6 addresses. *addr is written only
 * on success. */
GEV_EXTERN int gev_gethostbyname(const char *name, struct in_addr *addr);

/* gevent's gethostbyname_ex: the canonical name, the aliases met on the
 * way (CNAMEs, /etc/hosts aliases) and every address of family (AF_INET or
 * AF_INET6) into *out, a libc struct hostent in one heap block that the
 * caller frees with gev_freehostent(). Returns 0 or an EAI_* code; *out is
 * NULL on failure. */
GEV_EXTERN int gev_gethostbyname_ex(const char *name, int family,
                                    struct hostent **out);

/* gevent's gethostbyaddr: the host name of address addr (a struct in_addr
 * with len 4 and AF_INET, or a struct in6_addr with len 16 and AF_INET6),
 * looked up in /etc/hosts then by a PTR query. *out as for
 * gev_gethostbyname_ex (h_addr_list holds addr). Returns 0 or an EAI_*
 * code (EAI_NONAME: no name for that address). */
GEV_EXTERN int gev_gethostbyaddr(const void *addr, socklen_t len, int family,
                                 struct hostent **out);

/* Releases a hostent from gev_gethostbyname_ex/gev_gethostbyaddr. NULL
 * does nothing. */
GEV_EXTERN void gev_freehostent(struct hostent *h);

/* libc's getaddrinfo, cooperatively. node: a name, an IP literal, or NULL
 * (then the wildcard address with AI_PASSIVE, else loopback). service: a
 * port number, a name from /etc/services, or NULL (port 0). hints may be
 * NULL; ai_family AF_UNSPEC (IPv4 and IPv6), AF_INET or AF_INET6;
 * ai_socktype 0 (one entry per SOCK_STREAM, SOCK_DGRAM and SOCK_RAW, as
 * glibc) or one of them; ai_flags AI_PASSIVE, AI_CANONNAME,
 * AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED, AI_ALL, AI_ADDRCONFIG.
 * AI_ADDRCONFIG works as glibc's: a family counts as configured when an
 * interface has an address of it other than the loopback address
 * (127.0.0.1, ::1); with AF_UNSPEC and exactly one family configured only
 * that family is returned; a family asked for that is not configured
 * gives EAI_NONAME; with AF_UNSPEC, a host with no family configured
 * (loopback only) resolves as without the flag, so "localhost" still
 * works there. It
 * applies to literals and node NULL too. The interfaces are read at each
 * call (getifaddrs).
 * On success *res is a libc-compatible list (ai_canonname on the first
 * entry with AI_CANONNAME) that the caller releases with
 * gev_freeaddrinfo() — not with libc's freeaddrinfo().
 * Returns 0 or an EAI_* code: additionally EAI_NONAME when both node and
 * service are NULL, EAI_SERVICE for an unknown service or one that does not
 * exist for the socket type, EAI_BADFLAGS, EAI_SOCKTYPE, EAI_FAMILY. */
GEV_EXTERN int gev_getaddrinfo(const char *node, const char *service,
                               const struct addrinfo *hints,
                               struct addrinfo **res);

/* As gev_getaddrinfo, through resolver `which` (GEV_DNS_DEFAULT: the
 * thread's setting). Through the thread resolver, libc's getaddrinfo
 * answers, with libc's own flags and errors; its list is copied into the
 * format gev_freeaddrinfo releases. Additionally EAI_SYSTEM/EINVAL for an
 * unknown `which`. */
GEV_EXTERN int gev_getaddrinfo_ex(gev_dns_resolver which, const char *node,
                                  const char *service,
                                  const struct addrinfo *hints,
                                  struct addrinfo **res);

/* Releases a list from gev_getaddrinfo. NULL does nothing. */
GEV_EXTERN void gev_freeaddrinfo(struct addrinfo *res);

/* libc's getnameinfo, cooperatively: the host and/or service of sa
 * (AF_INET or AF_INET6) into host/serv (either may be NULL with length 0,
 * not both). flags: NI_NUMERICHOST, NI_NUMERICSERV, NI_NAMEREQD,
 * NI_NOFQDN, NI_DGRAM. Without NI_NAMEREQD an address without a name is
 * given in numeric form. Returns 0 or an EAI_* code (EAI_NONAME with
 * NI_NAMEREQD and no name, EAI_OVERFLOW when a buffer is too small,
 * EAI_FAMILY, EAI_BADFLAGS). */
GEV_EXTERN int gev_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                               char *host, socklen_t hostlen, char *serv,
                               socklen_t servlen, int flags);
/* As gev_getnameinfo, through resolver `which`. */
GEV_EXTERN int gev_getnameinfo_ex(gev_dns_resolver which,
                                  const struct sockaddr *sa, socklen_t salen,
                                  char *host, socklen_t hostlen, char *serv,
                                  socklen_t servlen, int flags);

/* A sentence for an EAI_* code returned by a gev lookup (also 0:
 * "Success"). For EAI_SYSTEM it
 * describes errno as it is now, so call it before anything changes errno.
 * Never NULL; the string is static. */
GEV_EXTERN const char *gev_dns_strerror(int code);

/* ---- Configuration --------------------------------------------------- */

/*
 * The calling thread's resolver settings. They belong to the thread, not
 * to its hub: they outlive gev_hub_destroy() and a fork (either mode of
 * gev_fork). Defaults come from /etc/resolv.conf, then the environment,
 * read when the thread first needs a setting:
 *   GEV_DNS_SERVERS  "ip[:port],..." (IPv6 as [ip]:port)
 *   GEV_DNS_TIMEOUT  seconds for the first try of a query (c-ares doubles
 *                    it on each later round through the servers)
 *   GEV_DNS_TRIES    tries per server
 *   GEV_DNS_RESOLVER ares (default) or thread: the resolver (see above)
 * and the calls below override both. An invalid environment value is
 * reported once on stderr and ignored.
 *
 * The calls do not block and may be made before any hub exists. They fail
 * with EBUSY while lookups of the thread are in flight (the settings apply
 * to every lookup of the hub); otherwise the next lookup uses the new
 * settings. Other errors: EINVAL (bad value), ENOMEM. Returns 0 or -1 with
 * errno.
 *
 * Fork: a child that keeps its hub (GEV_FORK_KEEP) must not read the
 * parent's sockets, so its first DNS call closes the inherited channel:
 * lookups that were in flight across the fork fail in the child with
 * EAI_SYSTEM/ECANCELED (the parent's get their answers), and new lookups
 * open sockets of the child's own.
 */

/* The resolver of the calling thread's lookups (GEV_DNS_ARES or
 * GEV_DNS_THREAD; GEV_DNS_DEFAULT goes back to GEV_DNS_RESOLVER's choice).
 * Takes effect at the next lookup, also while lookups are in flight.
 * 0, or -1: EINVAL, ENOMEM. */
GEV_EXTERN int gev_dns_set_resolver(gev_dns_resolver which);
/* The calling thread's resolver: GEV_DNS_ARES or GEV_DNS_THREAD. */
GEV_EXTERN gev_dns_resolver gev_dns_get_resolver(void);

/* Servers as "ip[:port],..." (e.g. "127.0.0.1:5353,[::1]:53"); NULL or ""
 * goes back to the default (environment, then /etc/resolv.conf). */
GEV_EXTERN int gev_dns_set_servers(const char *servers);
/* Seconds for the first try (> 0, at most 3600). */
GEV_EXTERN int gev_dns_set_timeout(double seconds);
/* Tries per server (1 .. 100). */
GEV_EXTERN int gev_dns_set_tries(int tries);
/* Non-zero: spread queries over the servers round-robin instead of always
 * starting with the first. */
GEV_EXTERN int gev_dns_set_rotate(int rotate);

/* The servers in use as "ip:port,..." into buf (creating the resolver if
 * needed). Returns 0, or -1: EINVAL (buf NULL), ERANGE (too small),
 * ENOMEM, EIO (c-ares could not be set up: see stderr). */
GEV_EXTERN int gev_dns_get_servers(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
