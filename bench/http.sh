#!/usr/bin/env bash
# HTTP benchmark: wrk against examples/httpd (gev) and bench_ref_httpd (the
# same server as plain libev callbacks), one after the other in the same
# run, in both stack modes. The server is pinned to one CPU and wrk to
# another, so they do not fight over a core.
#
#   bench/http.sh [BUILD_DIR]        (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them:
#   bench: http.gev <req/s> req/s          bench: http.gev.shared ...
#   bench: http.ref <req/s> req/s          bench: http.ref.shared ...
#   bench: http.ratio <gev/ref> x          bench: http.ratio.shared ...
# Environment: GEV_BENCH_CPU (server CPU; default the last one),
# GEV_HTTP_DURATION (wrk seconds, default 3), GEV_HTTP_CONNECTIONS (100).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_HTTP_DURATION:-3}
connections=${GEV_HTTP_CONNECTIONS:-100}
ncpu=$(nproc)
server_cpu=${GEV_BENCH_CPU:-$((ncpu - 1))}
client_cpu=$(( (server_cpu + 1) % ncpu ))

httpd=$build/examples/httpd
ref=$build/bench/bench_ref_httpd
for bin in "$httpd" "$ref"; do
  [ -x "$bin" ] || { echo "http.sh: $bin not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "http.sh: wrk not installed" >&2; exit 1; }

pin_server=() pin_client=()
if command -v taskset >/dev/null && taskset -c "$server_cpu" true 2>/dev/null
then
  pin_server=(taskset -c "$server_cpu")
  if [ "$ncpu" -gt 1 ]; then
    pin_client=(taskset -c "$client_cpu")
  fi
fi

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a server binary on a free port in stack mode $1; sets server_pid
# and port.
start_server() {
  local mode=$1 out=$tmp/out
  shift
  : >"$out"
  GEV_STACK_MODE=$mode "${pin_server[@]}" "$@" --port 0 >"$out" 2>"$tmp/err" &
  server_pid=$!
  local i
  for i in $(seq 100); do
    if grep -q '^listening on ' "$out"; then
      port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out" | head -1)
      return 0
    fi
    sleep 0.05
  done
  echo "http.sh: $1 did not start: $(cat "$tmp/err")" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Runs wrk against the running server and prints its requests per second.
measure() {
  local url=http://127.0.0.1:$port/
  # A short warm-up so the first figures are not connection setup.
  "${pin_client[@]}" wrk -t1 -c"$connections" -d1s "$url" >/dev/null 2>&1 || true
  "${pin_client[@]}" wrk -t1 -c"$connections" -d"${duration}s" "$url" \
    >"$tmp/wrk" 2>&1 || { cat "$tmp/wrk" >&2; exit 1; }
  awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }' "$tmp/wrk"
}

# One side-by-side pair in the given stack mode; suffix names the figures.
run_pair() {
  local mode=$1 suffix=$2 gev ref_rps
  start_server "$mode" "$httpd" --idle-timeout 60
  gev=$(measure)
  stop_server
  start_server "$mode" "$ref"
  ref_rps=$(measure)
  stop_server
  echo "bench: http.gev$suffix $gev req/s"
  echo "bench: http.ref$suffix $ref_rps req/s"
  awk -v g="$gev" -v r="$ref_rps" \
    'BEGIN { printf "bench: http.ratio'"$suffix"' %.3f x\n", (r > 0 ? g / r : 0) }'
}

run_pair dedicated ""
run_pair shared ".shared"
