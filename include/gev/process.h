/*
 * gev/process.h — child processes (gevent.subprocess and gevent.os.waitpid).
 *
 * gev_process_spawn() starts a program (posix_spawn: no copy of the
 * parent's memory, so it stays cheap in a big process) with its standard
 * streams each inherited, connected to a cooperative pipe, /dev/null, an
 * existing descriptor, or (stderr) the child's stdout. The pipes are
 * gev_socket objects (gev/net.h), so greenlets read and write them with
 * gev_socket_recv / gev_socket_sendall, timeouts and all. Waiting for the
 * child parks the calling greenlet only; communicate feeds stdin and
 * drains stdout and stderr at once without deadlock; gev_process_run does
 * it all in one call.
 *
 * ---- Children, SIGCHLD and the hub ----------------------------------
 *
 * A program's children stay its own: gev reaps a child only when asked to
 * wait for it (gev_waitpid, a gev_process, gev_wait_watcher with
 * GEV_WATCH_CHILD), and never changes SIGCHLD's disposition unless asked
 * to watch SIGCHLD. So popen/pclose, system(), waitpid() and libraries
 * that run children work as without gev, in every thread.
 *
 * How gev watches one child: through a pidfd (Linux 5.3 and later), which
 * tells when that child ended without any signal, so it works in every
 * thread's hub and reaps only that child. On older kernels, gev falls back
 * to libev's reaper, which only the main thread's hub has (libev's default
 * loop): there, child waits in other threads fail with ENOTSUP.
 *
 * libev's reaper reaps every child of the process (waitpid(-1)) whenever
 * SIGCHLD arrives. gev keeps it off: creating the main thread's hub
 * installs libev's SIGCHLD handler, and gev puts the program's
 * disposition back at once (gevent does the same). It runs only while one
 * of these is active in the main thread's hub: a gev signal handler or
 * wait for SIGCHLD (libev has one handler per signal, shared by the reaper
 * and SIGCHLD watchers, so SIGCHLD cannot be watched without reaping); a
 * gev_wait_watcher(GEV_WATCH_CHILD) for any child (pid 0) or with the
 * trace flag; child waits on a kernel without pidfd. While it runs, a
 * plain waitpid() may find its child already reaped (ECHILD); gev keeps
 * each status the reaper collects that no gev wait claimed in a
 * process-wide cache (the newest 1024), so gev_waitpid still reports it.
 * SIGCHLD itself belongs to the main thread's hub: watching it in another
 * thread's hub fails with EBUSY.
 *
 * Each process holds what it needs on the heap and in its hub: a pidfd
 * (close-on-exec, as every descriptor gev opens, so none leaks into a
 * child) and a watcher that reaps the child as soon as it ends and keeps
 * its status in the object, so no zombie lingers and no status is lost
 * however late the program waits. While a process runs, its hub's
 * gev_run() does not return (as gevent, whose hub waits for its
 * children).
 *
 * With SIGCHLD set to SIG_IGN (or SA_NOCLDWAIT) the kernel reaps children
 * itself and their statuses are gone: waits then fail with ECHILD.
 *
 * Fork: gev_fork (gev/prefork.h) with KEEP leaves a child's copy of its
 * parent's gev_process objects usable only to be freed (they are not its
 * children: waits fail with ECHILD). The prefork master runs its own
 * poll(2) loop and reaps its workers itself with waitpid().
 *
 * Threads: a process belongs to the hub of the thread that spawned it
 * (calls from another thread fail with EXDEV). posix_spawn is safe to call
 * from any thread, and a threadpool's threads may spawn children through
 * their own hubs.
 */
#ifndef GEV_PROCESS_H
#define GEV_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "gev/hub.h"
#include "gev/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Waiting for a child of the program ------------------------------ */

/* Waits for the child pid (> 0) to end and reaps it, parking the calling
 * greenlet for at most timeout seconds (< 0 forever). flags is 0 or
 * WNOHANG (do not wait, as waitpid). Returns pid with the wait status in
 * *status (may be NULL; use the <sys/wait.h> macros), 0 with WNOHANG when
 * the child still runs, or -1 with errno: EINVAL (pid <= 0, other flags,
 * NaN timeout), ECHILD (not a child of this process, or reaped already:
 * also a child that a gev_process owns, see gev_process_wait), ENOTSUP
 * (a kernel without pidfd, outside the main thread's hub), EMFILE,
 * ENFILE, ENOMEM, and the blocking-call errors (ETIMEDOUT when timeout
 * ran out, ECANCELED, EPERM from the hub without WNOHANG; see gev/hub.h).
 * A child that ended before the call, even long before, is reported.
 * gevent's os.waitpid also takes pid -1 (any child); gev does not, since
 * "any child" would take statuses that belong to other parts of the
 * program (gev_process objects, libraries). */
GEV_EXTERN pid_t gev_waitpid(pid_t pid, int *status, int flags, double timeout);

/* ---- Spawning ---------------------------------------------------------- */

typedef struct gev_process gev_process;

/* Where one of the child's standard streams goes. */
typedef enum gev_stdio_mode {
  GEV_STDIO_INHERIT = 0, /* the parent's own fd 0, 1 or 2 */
  GEV_STDIO_PIPE,        /* a pipe to the parent: gev_process_stdin() ... */
  GEV_STDIO_DEVNULL,     /* /dev/null */
  GEV_STDIO_FD,          /* the caller's descriptor fd (not closed) */
  GEV_STDIO_STDOUT,      /* stderr only: wherever the child's stdout goes */
} gev_stdio_mode;

typedef struct gev_stdio {
  gev_stdio_mode mode;
  int fd; /* for GEV_STDIO_FD */
} gev_stdio;

typedef struct gev_process_opts {
  /* The environment, NULL-terminated "NAME=value" strings; NULL: the
   * parent's (environ). The program is looked up in the parent's PATH
   * when its name has no slash (posix_spawnp; Python looks in env's). */
  char *const *envp;
  /* The child's working directory; NULL: the parent's. */
  const char *cwd;
  /* The standard streams; zeroed: all inherited. */
  gev_stdio in, out, err;
  /* Start the child in a new session (setsid): it gets no signals meant
   * for the parent's terminal or process group. */
  int new_session;
  /* Let the child inherit the parent's descriptors that are not
   * close-on-exec (Python's close_fds=False). By default it gets 0, 1 and
   * 2 only. gev's own descriptors are close-on-exec either way. */
  int inherit_fds;
} gev_process_opts;

/* Starts argv[0] with arguments argv (NULL-terminated), options opts (NULL:
 * all defaults). The child starts with every signal unblocked and at its
 * default disposition (Python resets only SIGPIPE and SIGXFSZ: ignoring
 * signals is the parent's business, not its children's), and inherits no
 * descriptor but 0, 1 and 2 unless opts->inherit_fds (as Python's
 * close_fds, the default there too). A
 * program that cannot be run is reported here, not by a child exiting
 * with 127. Callable from any coroutine of the thread and from the hub
 * (it does not block). The caller owns the returned process and frees it
 * with gev_process_free.
 * Errors: EINVAL (argv or argv[0] NULL, a bad gev_stdio: unknown mode, FD
 * with fd < 0, STDOUT for in or out), ENOENT (no such program, or cwd
 * does not exist), EACCES, ENOEXEC, ENOTDIR, E2BIG, and the other errors
 * of posix_spawn and execve(2); EMFILE, ENFILE, ENOMEM, EAGAIN; ENOTSUP
 * (a kernel without pidfd, outside the main thread's hub). Nothing is
 * left open or running on error. */
GEV_EXTERN gev_process *gev_process_spawn(const char *const argv[],
                                          const gev_process_opts *opts);

/* The child's pid (-1 with EINVAL for NULL). It stays the number the
 * child had after it was reaped, when the kernel may reuse it: use
 * gev_process_kill rather than kill(2). */
GEV_EXTERN pid_t gev_process_pid(const gev_process *p);

/* The parent's end of a GEV_STDIO_PIPE stream (stdin: write to it;
 * stdout, stderr: read from it), or NULL (EINVAL: NULL process or a stream
 * that is not a pipe). The process owns it: the caller may use it and
 * close it (gev_socket_close on stdin sends the child end-of-file), but
 * not free it; the pointer stays valid until gev_process_free. Writing to
 * a child that closed its stdin fails with EPIPE (no SIGPIPE). */
GEV_EXTERN gev_socket *gev_process_stdin(gev_process *p);
GEV_EXTERN gev_socket *gev_process_stdout(gev_process *p);
GEV_EXTERN gev_socket *gev_process_stderr(gev_process *p);

/* ---- Waiting and signalling -------------------------------------------- */

/* Parks until the child has ended, for at most timeout seconds (< 0
 * forever, 0 just checks). The status is kept: every later call returns it
 * again. Returns the wait status (>= 0: WIFEXITED, WEXITSTATUS, WIFSIGNALED,
 * WTERMSIG ...), or -1 with errno: EINVAL (NULL, NaN), EXDEV, ECHILD (the
 * status was lost: SIGCHLD ignored, or another part of the program reaped
 * the child first), and the blocking-call errors (ETIMEDOUT when the
 * child still runs, ECANCELED ...). A wait that times out or is killed
 * leaves the child running, and the process object as it was. */
GEV_EXTERN int gev_process_wait(gev_process *p, double timeout);

/* The wait status if the child has ended, else -1 with EAGAIN. Never
 * parks (also from the hub). Other errors as gev_process_wait. */
GEV_EXTERN int gev_process_poll(gev_process *p);

/* Sends signal sig to the child (through its pidfd: never to another
 * process that reused its pid). Returns 0, or -1: EINVAL (NULL, bad
 * signal), EXDEV, ESRCH (the child has ended already), EPERM. */
GEV_EXTERN int gev_process_kill(gev_process *p, int sig);

/* Stops the child: SIGTERM, then SIGKILL once grace seconds (>= 0) have
 * passed without it ending; waits for it and returns its wait status. If
 * the caller is killed or its Timeout expires meanwhile the child is sent
 * SIGKILL at once, still reaped by the hub, and the call fails with that
 * error. Errors: those of gev_process_wait, EINVAL for a negative or NaN
 * grace. */
GEV_EXTERN int gev_process_terminate(gev_process *p, double grace);

/* ---- Talking to it ------------------------------------------------------ */

/* A byte buffer gev fills (malloc'd; the caller frees data). data is
 * NUL-terminated for convenience (the NUL is not counted in len). */
typedef struct gev_bytes {
  char *data;
  size_t len;
} gev_bytes;

/* Writes input (len bytes; may be NULL with 0) to the child's stdin pipe
 * and closes it, while reading its stdout and stderr pipes to their end
 * into *out and *err, all at once (no deadlock however much each side
 * writes), then waits for the child; gevent's communicate. out and err
 * may be NULL (a stream that is a pipe is then read and dropped), and
 * streams that are not pipes are skipped (input then must be empty).
 * timeout (< 0 none) bounds the whole call. Returns the wait status, or
 * -1 with errno: EINVAL (NULL process, input for a stdin that is not a
 * pipe), EXDEV, ENOMEM, the errors of gev_process_wait (ETIMEDOUT when
 * timeout ran out, ECANCELED ...) and of reading the pipes. On error *out
 * and *err hold what was read so far (free them too), and the child is
 * left running: gev_process_terminate or _kill it. A child that closes
 * its stdin early is not an error: the rest of input is dropped. */
GEV_EXTERN int gev_process_communicate(gev_process *p, const void *input,
                                       size_t len, gev_bytes *out,
                                       gev_bytes *err, double timeout);

/* Frees p, closing its pipes. A child still running is not stopped; the
 * hub keeps watching it and reaps it once it ends (no zombie), and until
 * then the hub's gev_run() does not return. NULL does nothing.
 * From another thread than the process's it does nothing. */
GEV_EXTERN void gev_process_free(gev_process *p);

/* ---- All in one (subprocess.run) ---------------------------------------- */

/* Runs argv to its end: stdin gets input (NULL: /dev/null), stdout and
 * stderr are captured into *out and *err (NULL: inherited), within timeout
 * seconds (< 0 none). Returns the wait status, or -1 with errno: the
 * errors of gev_process_spawn (ENOENT ...) and gev_process_communicate.
 * When the timeout runs out, or the caller is killed, the child is killed
 * (SIGKILL) and reaped by the hub, the call fails (ETIMEDOUT, ECANCELED),
 * and *out and *err hold what it wrote until then (free them). Nothing is left
 * behind: no zombie, no descriptor. */
GEV_EXTERN int gev_process_run(const char *const argv[], const gev_bytes *input,
                               gev_bytes *out, gev_bytes *err, double timeout);

/* As gev_process_run with options: opts->in, out and err are ignored
 * (they are set as described there), the rest apply. */
GEV_EXTERN int gev_process_run_opts(const char *const argv[],
                                    const gev_process_opts *opts,
                                    const gev_bytes *input, gev_bytes *out,
                                    gev_bytes *err, double timeout);

#ifdef __cplusplus
}
#endif
#endif
