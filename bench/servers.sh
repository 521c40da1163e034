# Sourced by the server benchmarks (http.sh, tls.sh), not run: CPU
# pinning, a temporary directory, and the server processes they start,
# stopped at exit. The caller sets bench_name first (for messages).
#
# Provides: ncpu, server_cpu (GEV_BENCH_CPU, default the last CPU),
# client_cpu (the next one), pin_server and pin_client (taskset commands,
# empty where pinning is not possible), tmp, pids, start_server and
# wrk_rps. The caller sets connections (wrk's -c) before calling wrk_rps.

ncpu=$(nproc)
server_cpu=${GEV_BENCH_CPU:-$((ncpu - 1))}
client_cpu=$(( (server_cpu + 1) % ncpu ))

pin_server=() pin_client=()
if command -v taskset >/dev/null && taskset -c "$server_cpu" true 2>/dev/null
then
  pin_server=(taskset -c "$server_cpu")
  if [ "$ncpu" -gt 1 ]; then
    pin_client=(taskset -c "$client_cpu")
  fi
fi

tmp=$(mktemp -d)
pids=()

# Stops the servers started so far.
stop_servers() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_servers; rm -rf "$tmp"' EXIT

# Starts a server command (its arguments after), pinned to the server CPU,
# and waits for its "listening on ADDR:PORT" line; sets $port and adds its
# pid to pids (so call it directly, not in a subshell).
start_server() {
  local out=$tmp/out.$RANDOM
  : >"$out"
  "${pin_server[@]}" "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  local i
  for i in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "$bench_name: $1 did not start: $(cat "$out.err")" >&2
  exit 1
}

# Runs wrk (pinned to the client CPU) for $2 seconds against
# http://127.0.0.1:$1/; prints requests/second; fails on wrk's failure,
# socket errors or non-2xx answers: a run with errors measures nothing.
wrk_rps() {
  "${pin_client[@]}" wrk -t1 -c"$connections" -d"$2s" "http://127.0.0.1:$1/" \
    >"$tmp/wrk" 2>&1 || { cat "$tmp/wrk" >&2; exit 1; }
  if grep -qE 'Socket errors|Non-2xx' "$tmp/wrk"; then
    echo "$bench_name: wrk reported errors:" >&2
    cat "$tmp/wrk" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }' "$tmp/wrk"
}
