#!/usr/bin/env bash
# Lost requests while prefork workers come and go: bench_prefork_lost (a
# keep-alive client that counts every request the server dropped after
# promising to keep the connection open) against `httpd --workers 2`, in
# three scenarios of the same length:
#
#   max_requests  --max-requests 500: workers retire all the time
#   hup           ten HUPs, one per second: the workers are replaced ten
#                 times
#   ttin_ttou     TTIN then TTOU, ten times: a worker is added and the
#                 oldest retired, twice a second
#
#   bench/prefork_lost.sh [BUILD_DIR]  (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them, per scenario:
#   bench: prefork.lost.<scenario> <lost> requests      the target is 0
#   bench: prefork.lost.<scenario>.n <sent> requests    how many were sent
# and on stderr what happened meanwhile (retirements, replacements, the
# client's other counters). A scenario fails (exit status 1) when the
# client saw errors of another kind (bad responses, timeouts) or the
# master did not do what the scenario is about.
# Environment: GEV_LOST_DURATION (seconds per scenario, default 10),
# GEV_LOST_CONNECTIONS (default 50).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_LOST_DURATION:-10}
connections=${GEV_LOST_CONNECTIONS:-50}
httpd=$build/examples/httpd
client=$build/bench/bench_prefork_lost
for bin in "$httpd" "$client"; do
  [ -x "$bin" ] || { echo "prefork_lost.sh: $bin not built" >&2; exit 1; }
done

tmp=$(mktemp -d)
# shellcheck source=bench/prefork_lib.sh
source "$root/bench/prefork_lib.sh"
client_pid=""
stop_client() {
  if [ -n "$client_pid" ]; then
    kill -TERM "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
  fi
  prefork_cleanup
}
trap stop_client EXIT

# The value of counter $1 in the client's output.
counter() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/client"; }

# Sends the master signals $2.. every $1 seconds until the client ends.
signal_master() {
  local every=$1 sig
  shift
  for sig in "$@"; do
    sleep "$every"
    kill -0 "$client_pid" 2>/dev/null || return 0
    kill -"$sig" "$server_pid"
  done
}

# Runs one scenario: name, httpd arguments, then "--", then the signal
# interval and the signals.
scenario() {
  local name=$1 args=() every sigs=()
  shift
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  every=$1
  shift
  sigs=("$@")
  start_httpd --workers 2 ${args[@]+"${args[@]}"}
  "$client" --port "$port" --connections "$connections" \
    --duration "$duration" >"$tmp/client" &
  client_pid=$!
  signal_master "$every" ${sigs[@]+"${sigs[@]}"}
  wait "$client_pid" || true
  client_pid=""
  stop_httpd
  local lost sent retired hup ttou
  lost=$(counter lost)
  sent=$(counter requests)
  retired=$(grep -c 'served its max_requests' "$tmp/err" || true)
  hup=$(grep -c 'replaced after HUP' "$tmp/err" || true)
  ttou=$(grep -c 'one worker fewer (TTOU)' "$tmp/err" || true)
  echo "bench: prefork.lost.$name $lost requests"
  echo "bench: prefork.lost.$name.n $sent requests"
  echo "prefork_lost.sh: $name: $(tr '\n' ' ' <"$tmp/client");" \
       "workers retired at max_requests $retired, after HUP $hup," \
       "by TTOU $ttou" >&2
  if [ "$(counter errors)" != 0 ] || [ "$(counter timeouts)" != 0 ] ||
     [ "$(counter failed)" != 0 ]; then
    echo "prefork_lost.sh: $name: the client saw other errors" >&2
    status=1
  fi
  case $name in
    max_requests) [ "$retired" -gt 0 ] || status=1 ;;
    hup) [ "$hup" -gt 0 ] || status=1 ;;
    ttin_ttou) [ "$ttou" -gt 0 ] || status=1 ;;
  esac
}

status=0
pairs=()
for _ in $(seq 10); do pairs+=(TTIN TTOU); done
hups=()
for _ in $(seq 10); do hups+=(HUP); done
period=$(awk -v d="$duration" 'BEGIN { printf "%.3f", d / 11 }')
half=$(awk -v d="$duration" 'BEGIN { printf "%.3f", d / 21 }')

scenario max_requests --max-requests 500 -- 0
scenario hup -- "$period" "${hups[@]}"
scenario ttin_ttou -- "$half" "${pairs[@]}"
exit "$status"
