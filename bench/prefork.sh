#!/usr/bin/env bash
# Prefork benchmark: wrk against examples/httpd as one process and as
# `httpd --workers 2` (a prefork master and two worker processes sharing
# one listening socket), one after the other in the same run, with the
# same wrk settings (-t1 -c100 -d3s by default); then the lost-request
# scenarios of bench/prefork_lost.sh (workers retiring at max_requests,
# HUP, TTIN/TTOU under a keep-alive load; see there).
#
#   bench/prefork.sh [BUILD_DIR]     (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them:
#   bench: http.gev <req/s> req/s          single process, unpinned
#   bench: http.prefork2 <req/s> req/s     master + 2 workers, unpinned
#   bench: http.prefork2.ratio <prefork2/gev> x
#   bench: prefork.lost.<scenario> <lost> requests   (prefork_lost.sh)
# Nothing is pinned here: two workers need two CPUs. On a 2-core machine
# wrk competes with the workers for a core, so the prefork figure is a
# floor, not the server's capacity; the note on stderr says so.
# Environment: GEV_HTTP_DURATION (wrk seconds, default 3),
# GEV_HTTP_CONNECTIONS (default 100).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_HTTP_DURATION:-3}
connections=${GEV_HTTP_CONNECTIONS:-100}
httpd=$build/examples/httpd

[ -x "$httpd" ] || { echo "prefork.sh: $httpd not built" >&2; exit 1; }
command -v wrk >/dev/null || { echo "prefork.sh: wrk not installed" >&2; exit 1; }

tmp=$(mktemp -d)
# shellcheck source=bench/prefork_lib.sh
source "$root/bench/prefork_lib.sh"

# Prints wrk's requests per second for the running server; fails on
# socket errors or non-2xx answers.
measure() {
  local out
  out=$(wrk -t1 -c"$connections" -d"${duration}s" "http://127.0.0.1:$port/")
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
    echo "prefork.sh: wrk reported errors:" >&2
    echo "$out" >&2
  fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

start_httpd
single=$(measure)
stop_httpd
echo "bench: http.gev $single req/s"

start_httpd --workers 2
prefork=$(measure)
stop_httpd
echo "bench: http.prefork2 $prefork req/s"

awk -v p="$prefork" -v s="$single" \
  'BEGIN { if (s > 0) printf "bench: http.prefork2.ratio %.2f x\n", p / s }'
if [ "$(nproc)" -le 2 ]; then
  echo "prefork.sh: note: $(nproc) CPUs; wrk competes with the two workers" \
       "for a core, so http.prefork2 understates the server" >&2
fi

# Requests lost while workers come and go (target: none).
bash "$root/bench/prefork_lost.sh" "$build"
