# shellcheck shell=bash
# Shared by bench/prefork.sh and bench/prefork_lost.sh: one httpd at a time,
# started on a free port and stopped gracefully. Source it after setting
# httpd (the binary) and tmp (a scratch directory); it sets an EXIT trap
# that stops a server still running and removes $tmp.

server_pid=""

prefork_cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap prefork_cleanup EXIT

# Starts httpd with the given extra arguments on a free port; sets
# server_pid and port once it prints "listening on". Its stderr (the
# master's log) goes to $tmp/err.
start_httpd() {
  : >"$tmp/out"
  "$httpd" --port 0 "$@" >"$tmp/out" 2>"$tmp/err" &
  server_pid=$!
  for _ in $(seq 200); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/out" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "bench: httpd $* did not start: $(cat "$tmp/err")" >&2
  exit 1
}

# Stops it with TERM (a graceful stop for the prefork master) and checks
# that it exits 0.
stop_httpd() {
  local status=0
  kill -TERM "$server_pid"
  wait "$server_pid" || status=$?
  server_pid=""
  if [ "$status" -ne 0 ]; then
    echo "bench: httpd exited with status $status" >&2
    exit 1
  fi
}
