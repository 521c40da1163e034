#!/usr/bin/env bash
# One process with a hub per thread against prefork workers: wrk against
# examples/httpd --threads 2 and examples/httpd --workers 2, one after the
# other in the same run, with the same settings (-t1 -c100 -d3s by
# default), each the best of GEV_HTTP_ROUNDS rounds.
#
#   bench/threadpool_http.sh [BUILD_DIR]  (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them:
#   bench: http.threads2 <req/s> req/s     one process, two server threads
#   bench: http.workers2 <req/s> req/s     master + 2 worker processes
#   bench: http.threads2.ratio <threads2/workers2> x
# Nothing is pinned: each server needs two CPUs. On a 2-core machine wrk
# competes with the server for a core, so both figures are floors; their
# ratio, measured under the same competition, is what to read.
# Environment: GEV_HTTP_DURATION (seconds, default 3), GEV_HTTP_ROUNDS
# (default 3), GEV_HTTP_CONNECTIONS (default 100).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_HTTP_DURATION:-3}
connections=${GEV_HTTP_CONNECTIONS:-100}
rounds=${GEV_HTTP_ROUNDS:-3}
httpd=$build/examples/httpd

[ -x "$httpd" ] || { echo "threadpool_http.sh: $httpd not built" >&2; exit 1; }
command -v wrk >/dev/null ||
  { echo "threadpool_http.sh: wrk not installed" >&2; exit 1; }

bench_name=threadpool_http.sh
# shellcheck source=bench/servers.sh
source "$root/bench/servers.sh"
# Two threads or two workers: no single CPU for them, nor for wrk.
pin_server=() pin_client=()

max() { echo $(( $1 > $2 ? $1 : $2 )); }

# The best of $rounds rounds against httpd started with the arguments.
best_rps() {
  local best=0 r
  start_server "$httpd" --port 0 --idle-timeout 60 "$@"
  wrk_rps "$port" 1 >/dev/null # warm-up
  for r in $(seq "$rounds"); do
    best=$(max "$best" "$(wrk_rps "$port" "$duration")")
  done
  stop_servers
  echo "$best"
}

threads=$(best_rps --threads 2)
workers=$(best_rps --workers 2)
echo "bench: http.threads2 $threads req/s"
echo "bench: http.workers2 $workers req/s"
awk -v t="$threads" -v w="$workers" \
  'BEGIN { if (w > 0) printf "bench: http.threads2.ratio %.2f x\n", t / w }'
if [ "$(nproc)" -le 2 ]; then
  echo "threadpool_http.sh: $(nproc) CPUs: wrk shares them with the" \
       "server; the figures are floors" >&2
fi
