/*
 * crawler — resolve (or fetch) many names at once, one greenlet each.
 *
 *   crawler [--dns IP[:PORT][,...]] [--timeout SECONDS] [--concurrency N]
 *           [--fetch [--cafile FILE] [--insecure]] [NAME_OR_URL ...]
 *
 * Inputs come from the arguments, or one per line from stdin when there
 * are none; each is trimmed of surrounding whitespace and empty ones are
 * skipped. Each input runs in its own greenlet from a Pool of
 * --concurrency (default 100); the main greenlet waits for them all with
 * the overall --timeout (default 2 seconds) and kills what is left.
 *
 * Without --fetch each input is a host name, resolved with
 * gev_gethostbyname. With --fetch each input is a URL http://host[:port]/path:
 * resolve, connect, send a GET, read the whole response. Inputs are
 * untrusted bytes: a name or URL holding anything but visible ASCII (CR,
 * LF, NUL, other control bytes, spaces, bytes >= 0x80) is refused before
 * it reaches a DNS query or a request line, so it cannot inject headers.
 * An https:// URL is fetched the same way over TLS (gev/tls.h), verifying
 * the server's certificate and name against the system's CA store, or the
 * CAs in --cafile FILE; --insecure skips verification.
 *
 * Output, one line per input in input order, after all are done:
 *   NAME ADDRESS            resolved
 *   URL STATUS BODY_BYTES   fetched (--fetch)
 *   NAME ERROR <reason>     failed (not found, refused, invalid URL,
 *                           certificate verify failed: <why> ...)
 *   NAME TIMEOUT            not finished by the deadline (it was killed)
 * where the input is printed with every byte outside visible ASCII (and
 * the backslash) written as \xHH, so each input takes exactly one line
 * whatever its bytes; and a summary line on stderr. Exit status: 0 when
 * every input succeeded, 1 when any failed or timed out, 2 on a usage
 * error. --help prints the full usage on stdout and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gev/dns.h"
#include "gev/hub.h"
#include "gev/monitor.h"
#include "gev/net.h"
#include "gev/sync.h"
#include "stream_io.h"

#define EXIT_USAGE 2

typedef struct options {
  const char *dns;
  double timeout;
  long concurrency;
  int fetch;
  const char *cafile; /* https: trust these CAs, not the system's */
  int insecure;       /* https: no verification */
} options;

/* One input (trimmed, NUL-terminated; len counts any NUL inside). */
typedef struct input {
  char *text;
  size_t len;
} input;

/* One input and what became of it. Heap: its greenlet writes it. */
typedef struct job {
  const input *in;
  int fetch;
  struct gev_tls_ctx *tls; /* for https URLs (shared by all jobs) */
  int ok;                  /* set by the greenlet when it succeeded */
  int timed_out;           /* not finished by the deadline */
  char line[512];          /* the output after "input " */
} job;

/* ---- Reasons ----------------------------------------------------------- */

static const char *errno_reason(int err) {
  switch (err) {
  case ETIMEDOUT:
    return "timed out";
  case ECONNREFUSED:
    return "connection refused";
  case ECANCELED:
    return "cancelled";
  default:
    return strerror(err);
  }
}

static const char *dns_reason(int eai, int err) {
  switch (eai) {
  case EAI_NONAME:
    return "not found";
  case EAI_NODATA:
    return "no address";
  case EAI_AGAIN:
    return "server failure";
  case EAI_FAIL:
    return "refused";
  case EAI_SYSTEM:
    return errno_reason(err);
  default:
    return gev_dns_strerror(eai);
  }
}

static void fail(job *j, const char *reason) {
  snprintf(j->line, sizeof j->line, "ERROR %s", reason);
}

/* Non-zero when the input is all visible ASCII (0x21 .. 0x7e): no control
 * byte (CR, LF, NUL ...), no space, nothing >= 0x80. */
static int visible_ascii(const input *in) {
  for (size_t i = 0; i < in->len; i++) {
    unsigned char c = (unsigned char)in->text[i];
    if (c <= 0x20 || c >= 0x7f)
      return 0;
  }
  return 1;
}

/* ---- Resolving --------------------------------------------------------- */

static void resolve(job *j) {
  struct in_addr a;
  char ip[INET_ADDRSTRLEN];
  if (!visible_ascii(j->in)) {
    fail(j, "invalid name");
    return;
  }
  int eai = gev_gethostbyname(j->in->text, &a);
  if (eai) {
    fail(j, dns_reason(eai, errno));
    return;
  }
  snprintf(j->line, sizeof j->line, "%s",
           inet_ntop(AF_INET, &a, ip, sizeof ip));
  j->ok = 1;
}

/* ---- Fetching ---------------------------------------------------------- */

typedef struct url {
  int https;
  char host[256];
  int port;
  char path[1024];
} url;

/* Host names in URLs: letters, digits, '-', '.' and '_' (no IPv6
 * literals). */
static int host_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Parses http[s]://host[:port][/path]. Everything must be visible ASCII,
 * so the path goes into the request line as it is: no CR or LF can end
 * the line early and add header fields of the input's choosing. */
static int url_parse(const input *in, url *u) {
  const char *s = in->text, *p, *host_end, *path;
  u->https = strncmp(s, "https://", 8) == 0;
  if (!visible_ascii(in) || (!u->https && strncmp(s, "http://", 7) != 0))
    return -1;
  p = s + (u->https ? 8 : 7);
  path = p + strcspn(p, "/");
  host_end = memchr(p, ':', (size_t)(path - p));
  u->port = u->https ? 443 : 80;
  if (host_end) {
    char *end;
    long port = strtol(host_end + 1, &end, 10);
    if (end != path || host_end[1] < '0' || host_end[1] > '9' || port <= 0 ||
        port > 65535)
      return -1;
    u->port = (int)port;
  } else {
    host_end = path;
  }
  if (host_end == p || (size_t)(host_end - p) >= sizeof u->host ||
      strlen(path) >= sizeof u->path)
    return -1;
  for (const char *h = p; h < host_end; h++)
    if (!host_char((unsigned char)*h))
      return -1;
  memcpy(u->host, p, (size_t)(host_end - p));
  u->host[host_end - p] = '\0';
  snprintf(u->path, sizeof u->path, "%s", *path ? path : "/");
  return 0;
}

/* A connection, plain or over TLS. */
typedef struct conn {
  gev_socket *sock;
  struct gev_tls_stream *tls; /* NULL: plain */
} conn;

/* Why a call on c failed: for TLS failures OpenSSL's reason
 * ("certificate verify failed: hostname mismatch"). */
static const char *conn_reason(conn *c, int err) {
#if GEV_HAVE_TLS
  if (c->tls && err == EPROTO)
    return gev_tls_last_error();
#endif
  return errno_reason(err);
}

/* Starts TLS over c->sock for host. 0, or -1 with the reason in *why. */
static int conn_start_tls(conn *c, job *j, const char *host, const char **why) {
#if GEV_HAVE_TLS
  if (!j->tls) {
    *why = "no TLS context";
    return -1;
  }
  c->tls = gev_tls_wrap(j->tls, c->sock, host);
  if (c->tls && gev_tls_handshake(c->tls) == 0)
    return 0;
  *why =
      errno == EPROTO || !c->tls ? gev_tls_last_error() : errno_reason(errno);
  return -1;
#else
  *why = "built without TLS";
  return -1;
#endif
}

/* Reads the whole response; fills status and body size. 0 or -1/errno
 * (EBADMSG for something that is not HTTP). */
static int read_response(conn *s, int *status, long *body) {
  char buf[16384], head[64];
  size_t head_len = 0;
  long total = 0, header_end = -1;
  const char *crlf2 = "\r\n\r\n";
  int matched = 0;
  ssize_t n;
  while ((n = io_recv(s->sock, s->tls, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n && header_end < 0; i++) {
      matched = buf[i] == crlf2[matched] ? matched + 1 : buf[i] == '\r' ? 1 : 0;
      if (matched == 4)
        header_end = total + i + 1;
    }
    if (head_len < sizeof head - 1) {
      size_t take = sizeof head - 1 - head_len;
      take = take < (size_t)n ? take : (size_t)n;
      memcpy(head + head_len, buf, take);
      head_len += take;
    }
    total += n;
  }
  if (n < 0)
    return -1;
  head[head_len] = '\0';
  if (header_end < 0 || sscanf(head, "HTTP/%*d.%*d %d", status) != 1) {
    errno = EBADMSG;
    return -1;
  }
  *body = total - header_end;
  return 0;
}

static void fetch(job *j) {
  url u;
  char ip[INET6_ADDRSTRLEN], request[1400];
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  int status, eai;
  long body;
  if (url_parse(j->in, &u) < 0) {
    fail(j, "invalid URL");
    return;
  }
  if ((eai = gev_getaddrinfo(u.host, NULL, &hints, &ai)) != 0) {
    fail(j, dns_reason(eai, errno));
    return;
  }
  const void *addr =
      ai->ai_family == AF_INET
          ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
          : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
  inet_ntop(ai->ai_family, addr, ip, sizeof ip);
  gev_freeaddrinfo(ai);
  conn c = {gev_create_connection(ip, u.port, -1), NULL};
  const char *why;
  if (!c.sock) {
    fail(j, errno_reason(errno));
    return;
  }
  if (u.https && conn_start_tls(&c, j, u.host, &why) < 0) {
    fail(j, why);
    io_close(c.sock, c.tls);
    return;
  }
  int n = snprintf(request, sizeof request,
                   "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: gev-crawler\r\n"
                   "Connection: close\r\n\r\n",
                   u.path, u.host);
  if (io_sendall(c.sock, c.tls, request, (size_t)n) < 0 ||
      read_response(&c, &status, &body) < 0) {
    fail(j, errno == EBADMSG ? "bad response" : conn_reason(&c, errno));
  } else {
    snprintf(j->line, sizeof j->line, "%d %ld", status, body);
    j->ok = 1;
  }
  io_close(c.sock, c.tls);
}

static void *run_job(void *arg) {
  job *j = arg;
  if (j->fetch)
    fetch(j);
  else
    resolve(j);
  return NULL;
}

/* ---- Inputs and options ------------------------------------------------ */

static void usage(FILE *out) {
  fprintf(out, "usage: crawler [--dns IP[:PORT][,...]] [--timeout SECONDS]"
               " [--concurrency N]\n"
               "               [--fetch [--cafile FILE] [--insecure]]"
               " [NAME_OR_URL ...]\n");
}

static void help(void) {
  usage(stdout);
  fputs(
      "\n"
      "Resolves host names, or with --fetch fetches http:// and https:// "
      "URLs,\n"
      "all at once: one greenlet per input, the whole run bounded by\n"
      "--timeout.\n"
      "\n"
      "Inputs are the arguments, or one per line on standard input when there\n"
      "are none. Surrounding whitespace is trimmed; empty inputs are skipped.\n"
      "\n"
      "Options:\n"
      "  --dns IP[:PORT][,...]  DNS servers to ask, in order (default: those "
      "of\n"
      "                         /etc/resolv.conf, or GEV_DNS_SERVERS)\n"
      "  --timeout SECONDS      deadline for the whole run (default 2); "
      "inputs\n"
      "                         not finished by then are stopped and reported\n"
      "                         as TIMEOUT\n"
      "  --concurrency N        at most N inputs in flight at once (default\n"
      "                         100); the others wait for a free slot\n"
      "  --fetch                inputs are URLs http[s]://HOST[:PORT][/PATH]:\n"
      "                         resolve HOST, connect, GET PATH, read the\n"
      "                         whole response (https: over TLS, verifying\n"
      "                         the server's certificate and name)\n"
      "  --cafile FILE          https: trust the CAs in FILE (PEM) instead of\n"
      "                         the system's\n"
      "  --insecure             https: do not verify the server\n"
      "  --help                 print this help and exit\n"
      "Options may also be given as --name=VALUE; -- ends the options.\n"
      "\n"
      "Output, one line per input in input order, once all are done:\n"
      "  NAME ADDRESS           NAME resolved to the IPv4 ADDRESS\n"
      "  URL STATUS BYTES       URL answered with HTTP STATUS and BYTES of "
      "body\n"
      "  INPUT ERROR REASON     failed: not found, refused, server failure,\n"
      "                         connection refused, invalid name, invalid URL\n"
      "                         (anything but visible ASCII, or not\n"
      "                         http[s]://HOST[:PORT][/PATH]), certificate\n"
      "                         verify failed: WHY ...\n"
      "  INPUT TIMEOUT          not finished by the deadline\n"
      "Bytes of an input outside visible ASCII, and the backslash, are shown\n"
      "as \\xHH, so every input takes exactly one line. A summary line goes\n"
      "to standard error.\n"
      "\n"
      "Exit status: 0 when every input succeeded, 1 when any failed or timed\n"
      "out, 2 on a usage error.\n",
      stdout);
}

/* The value of option argv[*i] (as --opt VALUE or --opt=VALUE). */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name) {
  size_t len = strlen(name);
  if (strncmp(argv[*i], name, len) != 0)
    return NULL;
  if (argv[*i][len] == '=')
    return argv[*i] + len + 1;
  if (argv[*i][len] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

/* 0, -1 for a usage error, 1 for --help. */
static int parse_options(int argc, char **argv, options *o, int *first) {
  int i;
  *o = (options){.timeout = 2.0, .concurrency = 100};
  for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    const char *v;
    char *end;
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--help") == 0) {
      return 1;
    } else if (strcmp(argv[i], "--fetch") == 0) {
      o->fetch = 1;
    } else if (strcmp(argv[i], "--insecure") == 0) {
      o->insecure = 1;
    } else if ((v = option_value(argc, argv, &i, "--cafile"))) {
      o->cafile = v;
    } else if ((v = option_value(argc, argv, &i, "--dns"))) {
      o->dns = v;
    } else if ((v = option_value(argc, argv, &i, "--timeout"))) {
      o->timeout = strtod(v, &end);
      if (*end || end == v || !(o->timeout > 0))
        return -1;
    } else if ((v = option_value(argc, argv, &i, "--concurrency"))) {
      o->concurrency = strtol(v, &end, 10);
      if (*end || end == v || o->concurrency < 1 || o->concurrency > 1000000)
        return -1;
    } else {
      return -1;
    }
  }
  *first = i;
  return 0;
}

/* Trims text[0..len) of surrounding whitespace into a new input; 0, or
 * 1 when nothing is left (the input is skipped), -1 without memory. */
static int input_make(const char *text, size_t len, input *out) {
  while (len > 0 && text[0] && strchr(" \t\r\n\v\f", text[0]))
    text++, len--;
  while (len > 0 && text[len - 1] && strchr(" \t\r\n\v\f", text[len - 1]))
    len--;
  if (len == 0)
    return 1;
  if (!(out->text = malloc(len + 1)))
    return -1;
  memcpy(out->text, text, len);
  out->text[len] = '\0';
  out->len = len;
  return 0;
}

/* Appends an input to the growing array *v (of *n, room for *cap). */
static int input_add(input **v, size_t *n, size_t *cap, const char *text,
                     size_t len) {
  if (*n == *cap) {
    size_t ncap = *cap ? 2 * *cap : 64;
    input *nv = realloc(*v, ncap * sizeof *nv);
    if (!nv)
      return -1;
    *v = nv;
    *cap = ncap;
  }
  int rc = input_make(text, len, &(*v)[*n]);
  if (rc == 0)
    (*n)++;
  return rc < 0 ? -1 : 0;
}

/* The inputs: the arguments, or the lines of stdin when there are none.
 * NULL with errno on failure. */
static input *read_inputs(int argc, char **argv, size_t *n) {
  input *v = NULL;
  size_t cap = 0;
  *n = 0;
  if (argc > 0) {
    for (int i = 0; i < argc; i++)
      if (input_add(&v, n, &cap, argv[i], strlen(argv[i])) < 0)
        goto out_nomem;
    return v ? v : calloc(1, sizeof *v);
  }
  char *line = NULL;
  size_t len = 0;
  ssize_t got;
  while ((got = getline(&line, &len, stdin)) >= 0)
    if (input_add(&v, n, &cap, line, (size_t)got) < 0)
      goto out_nomem;
  free(line);
  return v ? v : calloc(1, sizeof *v);
out_nomem:
  while (*n > 0)
    free(v[--*n].text);
  free(v);
  return NULL;
}

/* Prints the input with every byte outside visible ASCII, and the
 * backslash, written as \xHH. */
static void print_input(const input *in) {
  for (size_t i = 0; i < in->len; i++) {
    unsigned char c = (unsigned char)in->text[i];
    if (c > 0x20 && c < 0x7f && c != '\\')
      putchar(c);
    else
      printf("\\x%02x", c);
  }
}

/* ---- Main -------------------------------------------------------------- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spawns every job through the pool, then waits for all of them, both
 * within the deadline. Returns how many were spawned. */
static size_t run_all(job *jobs, gev_greenlet **gs, size_t n, long concurrency,
                      double deadline) {
  gev_pool *pool = gev_pool_new((size_t)concurrency);
  size_t spawned = 0;
  if (!pool)
    return 0;
  for (; spawned < n; spawned++) {
    double left = deadline - now();
    if (left <= 0 ||
        !(gs[spawned] = gev_pool_spawn(pool, run_job, &jobs[spawned], left)))
      break;
  }
  double left = deadline - now();
  gev_joinall(gs, spawned, left > 0 ? left : 0, 0, 0);
  for (size_t i = 0; i < n; i++)
    jobs[i].timed_out = i >= spawned || !gev_greenlet_ready(gs[i]);
  gev_killall(gs, spawned, 1, 1.0); /* they unwind with ECANCELED */
  gev_pool_free(pool);
  return spawned;
}

static int report(const job *jobs, size_t n, double elapsed) {
  size_t ok = 0, failed = 0, timed_out = 0;
  for (size_t i = 0; i < n; i++) {
    print_input(jobs[i].in);
    if (jobs[i].timed_out) {
      printf(" TIMEOUT\n");
      timed_out++;
    } else {
      printf(" %s\n", jobs[i].line);
      jobs[i].ok ? ok++ : failed++;
    }
  }
  fflush(stdout);
  fprintf(stderr,
          "crawler: %zu inputs: %zu ok, %zu failed, %zu timed out "
          "in %.1f s\n",
          n, ok, failed, timed_out, elapsed);
  return ok == n ? 0 : 1;
}

/* ---- TLS ----------------------------------------------------------------- */

/* The client context for https URLs: the system's CAs, or --cafile's, or
 * no verification with --insecure. NULL after printing why. */
static struct gev_tls_ctx *tls_context(const options *o) {
#if GEV_HAVE_TLS
  gev_tls_ctx *ctx = gev_tls_ctx_new(GEV_TLS_CLIENT);
  if (ctx && (o->insecure ? gev_tls_ctx_set_verify(ctx, GEV_TLS_VERIFY_NONE)
              : o->cafile ? gev_tls_ctx_load_verify(ctx, o->cafile, NULL)
                          : 0) == 0)
    return ctx;
  fprintf(stderr, "crawler: TLS: %s\n", gev_tls_last_error());
  gev_tls_ctx_free(ctx);
  return NULL;
#else
  if (o->cafile || o->insecure)
    fprintf(stderr, "crawler: built without TLS\n");
  return NULL;
#endif
}

static void tls_context_free(struct gev_tls_ctx *ctx) {
#if GEV_HAVE_TLS
  gev_tls_ctx_free(ctx);
#endif
}

int main(int argc, char **argv) {
  options o;
  int first, status;
  size_t n;
  int parsed = parse_options(argc, argv, &o, &first);
  if (parsed != 0) {
    if (parsed > 0)
      help();
    else
      usage(stderr);
    return parsed > 0 ? 0 : EXIT_USAGE;
  }
  if (o.dns && gev_dns_set_servers(o.dns) < 0) {
    fprintf(stderr, "crawler: bad --dns \"%s\": %s\n", o.dns, strerror(errno));
    usage(stderr);
    return EXIT_USAGE;
  }
  struct gev_tls_ctx *tls = o.fetch ? tls_context(&o) : NULL;
  if (o.fetch && !tls && (GEV_HAVE_TLS || o.cafile || o.insecure))
    return EXIT_USAGE;
  input *inputs = read_inputs(argc - first, argv + first, &n);
  job *jobs = calloc(n ? n : 1, sizeof *jobs);
  gev_greenlet **gs = calloc(n ? n : 1, sizeof *gs);
  if (!inputs || !jobs || !gs) {
    fprintf(stderr, "crawler: %s\n", strerror(ENOMEM));
    return 1;
  }
  for (size_t i = 0; i < n; i++)
    jobs[i] = (job){.in = &inputs[i], .fetch = o.fetch, .tls = tls};
  /* kill -USR2 <pid> logs every fetch in flight with its backtrace. */
  gev_dump_on_signal(SIGUSR2);
  double start = now();
  run_all(jobs, gs, n, o.concurrency, start + o.timeout);
  status = report(jobs, n, now() - start);
  for (size_t i = 0; i < n; i++) {
    if (gs[i])
      gev_greenlet_unref(gs[i]);
    free(inputs[i].text);
  }
  free(inputs);
  free(jobs);
  free(gs);
  gev_hub_destroy();
  tls_context_free(tls);
  return status;
}
