#!/usr/bin/env bash
# HTTP benchmark: wrk -t1 -c100 -d3s against examples/httpd (gev) and
# bench_ref_httpd (the same server as plain libev callbacks), alternating
# in the same run, in the default stack mode and in shared mode. The server
# is pinned to one CPU and wrk to another, so they do not fight over a core.
#
#   bench/http.sh [BUILD_DIR]        (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them:
#   bench: http.gev <req/s> req/s          bench: http.gev.shared ...
#   bench: http.ref <req/s> req/s          bench: http.ref.shared ...
#   bench: http.ratio <gev/ref> x          bench: http.ratio.shared ...
# Environment: GEV_BENCH_CPU (server CPU; default the last one),
# GEV_HTTP_DURATION (seconds per wrk round, default 3), GEV_HTTP_ROUNDS
# (rounds per server, alternating; the median is kept; default 5),
# GEV_HTTP_CONNECTIONS (100).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_HTTP_DURATION:-3}
connections=${GEV_HTTP_CONNECTIONS:-100}
rounds=${GEV_HTTP_ROUNDS:-5}

httpd=$build/examples/httpd
ref=$build/bench/bench_ref_httpd
for bin in "$httpd" "$ref"; do
  [ -x "$bin" ] || { echo "http.sh: $bin not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "http.sh: wrk not installed" >&2; exit 1; }

bench_name=http.sh
# shellcheck source=bench/servers.sh
source "$root/bench/servers.sh"

# Starts a server binary on a free port in stack mode $1 (see start_server
# in servers.sh).
start_in_mode() {
  local mode=$1
  shift
  if [ "$mode" = default ]; then
    start_server "$@" --port 0
  else
    GEV_STACK_MODE=$mode start_server "$@" --port 0
  fi
}

# The median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
  END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# One side-by-side comparison in stack mode $1 ("default" leaves
# GEV_STACK_MODE unset); $2 suffixes the names. Both servers run at once
# (the idle one costs nothing); wrk alternates between them for $rounds
# rounds. Each server's figure is its median round, and the ratio is the
# median of the rounds' ratios (each round's gev figure over the ref figure
# measured right after it), so that neither a lucky or unlucky round nor
# the machine's load drifting over the run decides it.
run_pair() {
  local mode=$1 suffix=$2 gev_port ref_port r gevs=() refs=() ratios=()
  start_in_mode "$mode" "$httpd" --idle-timeout 60
  gev_port=$port
  start_in_mode "$mode" "$ref"
  ref_port=$port
  wrk_rps "$gev_port" 1 >/dev/null # warm-up: connection setup, caches
  wrk_rps "$ref_port" 1 >/dev/null
  for r in $(seq "$rounds"); do
    gevs+=("$(wrk_rps "$gev_port" "$duration")")
    refs+=("$(wrk_rps "$ref_port" "$duration")")
    ratios+=("$(awk -v g="${gevs[-1]}" -v r="${refs[-1]}" \
      'BEGIN { printf "%d\n", (r > 0 ? 1000000 * g / r : 0) }')")
  done
  stop_servers
  echo "http.sh: $mode rounds: gev ${gevs[*]}; ref ${refs[*]}" >&2
  echo "bench: http.gev$suffix $(median "${gevs[@]}") req/s"
  echo "bench: http.ref$suffix $(median "${refs[@]}") req/s"
  awk -v q="$(median "${ratios[@]}")" \
    'BEGIN { printf "bench: http.ratio'"$suffix"' %.3f x\n", q / 1000000 }'
}

run_pair default ""
run_pair shared ".shared"
