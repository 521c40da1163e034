/*
 * gev/patch.h — cooperative libc: gevent's monkey patching for C.
 *
 * libgev-patch (pkg-config name gev-patch) defines libc's blocking calls
 * itself. Loaded into a program, it makes unmodified code — the program's
 * own and that of every library it uses (libpq, libcurl, hiredis, ...) —
 * park the calling greenlet instead of blocking the thread, so one thread
 * runs many synchronous clients at once. Two ways to load it:
 *
 *   LD_PRELOAD=libgev-patch.so ./app   a program that links gev as a
 *       shared library (libgev.so). A program linking gev statically has
 *       a copy of its own that the preloaded library cannot see: there the
 *       library finds no hub and changes nothing.
 *   cc app.c $(pkg-config --libs gev-patch gev)   linking it. The program
 *       must call something of this header (gev_patch_enable() will do),
 *       or a linker using --as-needed drops the library.
 *
 * WHERE CALLS ARE COOPERATIVE. Only in a coroutine that may park: a
 * greenlet of a thread with a hub, or the thread's main coroutine once
 * the thread has a hub (as in gevent, blocking there runs the hub and the
 * greenlets). In the main coroutine of a thread without a hub, in the hub
 * itself and its loop callbacks, in threads without a hub, and in a thread
 * that called gev_patch_disable(), every call is the real one, made with
 * the caller's arguments: a program that never makes a hub behaves
 * exactly as without the library.
 *
 * THE CALLS, and what they do cooperatively:
 *   read readv recv recvfrom recvmsg write writev send sendto sendmsg
 *   accept accept4 connect
 *       On a socket or pipe the program sees as blocking: park until the
 *       fd is ready, then complete as the blocking call would (a blocking
 *       send moves every byte; MSG_WAITALL waits for every byte). On a
 *       non-blocking fd (as the program sees it; MSG_DONTWAIT) and on
 *       other fds (regular files, ttys, eventfds): the real call.
 *   poll ppoll select pselect epoll_wait
 *       With a timeout other than 0 and no ready fd: park on all of the
 *       fds at once (epoll_wait parks on the epoll fd itself, which is
 *       readable while any fd in it is ready, so its set may have any
 *       size), then report readiness with the real call. ppoll and
 *       pselect with a signal mask run the real call (the mask cannot
 *       apply to the hub). poll interest other than reading and writing
 *       (POLLPRI alone, events 0) is not watched: such an fd is reported
 *       when the call returns for another reason. select's timeout is
 *       updated with the time left, as Linux does.
 *   nanosleep clock_nanosleep usleep sleep
 *       gev_sleep(): other greenlets run; 0 yields. clock_nanosleep accepts
 *       CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME and CLOCK_TAI
 *       (others run the real call); TIMER_ABSTIME deadlines are rechecked
 *       on their own clock after waking.
 *   getaddrinfo freeaddrinfo gethostbyname gethostbyname_r
 *       gev's resolver (gev/dns.h): /etc/hosts, then DNS over c-ares.
 *       freeaddrinfo frees either kind of list, gev's or libc's.
 *       gethostbyname's result is per thread and valid until the thread's
 *       next gethostbyname.
 *   close dup dup2 dup3 fcntl ioctl(FIONBIO) socket socketpair pipe pipe2
 *   setsockopt
 *       Keep gev's fd table right. close (and dup2/dup3 over an open fd)
 *       first wakes the calling thread's greenlets parked on the fd: their
 *       calls fail with EBADF (poll reports POLLNVAL), as gev's sockets do.
 *
 * THE O_NONBLOCK VIEW. A socket the program thinks is blocking behaves as
 * blocking for it, while gev makes it non-blocking underneath (at its first
 * cooperative use, until it is closed); fcntl(F_GETFL) and ioctl(FIONBIO)
 * show and change the program's view only. O_NONBLOCK belongs to the open
 * file, which a forked child or an exec'd program shares: such a socket
 * handed to another program is non-blocking there. Pipes and FIFOs are
 * never made non-blocking (stdin, stdout and a child's pipes are shared
 * with other processes); gev waits until they are ready, then makes the
 * real call, writing in pieces of at most PIPE_BUF bytes.
 *
 * TIMEOUTS AND ERRORS. SO_RCVTIMEO and SO_SNDTIMEO are honoured, and expire
 * as the kernel's do (EAGAIN; EINPROGRESS for connect). A kill of the
 * greenlet or an expired gev_timeout scope interrupts a parked call, which
 * fails with ECANCELED or ETIMEDOUT (a sleep reports the time left). Not
 * EINTR or EAGAIN: libraries retry those, and since a kill is sticky
 * (every later blocking call fails too), a retry would spin without ever
 * letting the hub run. With the errors above, libpq reports "select()
 * failed: Operation canceled", hiredis a REDIS_ERR_IO, libcurl a failed
 * transfer, and the greenlet unwinds. A call that completes without
 * waiting succeeds even in a killed greenlet.
 *
 * RULES AND LIMITS.
 *   - Threads: close wakes only the calling thread's waits; a greenlet of
 *     another thread parked on the fd waits on until its timeout.
 *   - Use an fd in one thread at a time, as gev's sockets require.
 *   - A signal handler must not make a call that would block.
 *   - Only libc's exported names are replaced. Calls libc makes
 *     internally (stdio's reads and writes, system(), getpwnam's NSS
 *     lookups) are not cooperative, nor are raw syscall(2) calls.
 *   - gev's own libc calls (its sockets, libev, c-ares) reach these
 *     definitions too and pass straight through: gev's fds are
 *     non-blocking in its own view, and the hub's calls are never
 *     cooperative. One visible effect: gev's default log hook writing to
 *     a full stderr pipe from a greenlet parks it until the pipe drains.
 *   - select's exceptional set is reported, not watched: select returns
 *     for it when it returns for another fd or the timeout.
 *   - An fd closed behind gev's back (fclose of an fdopen'd socket,
 *     close_range) leaves a stale table entry; gev notices when it would
 *     park (the inode changed) and starts afresh.
 *   - The shared-stack rule (gev/coro.h) holds: gev's wait state is on the
 *     heap; the caller's buffers are touched only while it runs.
 */
#ifndef GEV_PATCH_H
#define GEV_PATCH_H

#include <stddef.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Makes the calling thread's calls cooperative where the context allows
 * (the default for every thread), or the real calls always. Returns the
 * previous setting (1 enabled, 0 disabled). The fd table is kept up to
 * date either way, so a thread may switch at any time. */
GEV_EXTERN int gev_patch_enable(void);
GEV_EXTERN int gev_patch_disable(void);
/* 1 if the calling thread's calls may be cooperative, 0 if disabled. */
GEV_EXTERN int gev_patch_enabled(void);

typedef struct gev_patch_stats {
  size_t parked;    /* this thread's coroutines parked in patched calls */
  size_t watchers;  /* libev watchers those waits hold (this thread) */
  size_t addrinfos; /* lists from a cooperative getaddrinfo not yet freed
                       (whole process) */
} gev_patch_stats;
/* Counters for leak checks; all zero when nothing is parked or owed. */
GEV_EXTERN void gev_patch_get_stats(gev_patch_stats *out);

#ifdef __cplusplus
}
#endif
#endif
