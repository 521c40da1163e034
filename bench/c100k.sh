#!/usr/bin/env bash
# C100K: 100,000 concurrent idle connections to an echo server on loopback,
# then one echoed message on every connection, against examples/echo_server
# in the default stack mode and in shared mode, and against a Go echo
# server with a goroutine per connection (bench/c100k_echo.go, built here
# into the build directory with Debian's golang-go), one after the other in
# the same run. bench_c100k_client (bench/c100k_client.c) drives each.
#
#   bench/c100k.sh [BUILD_DIR]       (default: $GEV_BENCH_BUILD or build-bench)
#
# Prints, as bench/run collects them:
#   bench: c100k.<server>.connect <s> s           (gev, gev.shared, go)
#   bench: c100k.<server>.rss_per_conn <bytes> bytes
#   bench: c100k.ratio <gev/go> x                 bytes per connection
#   bench: c100k.ratio.shared <gev.shared/go> x
#   bench: c100k.n <connections> connections
# Raises the open-file limit of its own processes (ulimit -n) to what the
# connections need. Where the hard limit cannot be raised (no
# CAP_SYS_RESOURCE, as in some containers) it opens as many connections as
# the hard limit allows, and c100k.n says how many. The servers and the
# client run pinned to different CPUs. Environment: GEV_C100K_N
# (connections, default 100000). It needs about 2 GiB of memory and a
# minute: run it when you must, not in a loop.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-${GEV_BENCH_BUILD:-$root/build-bench}}" && pwd)
n=${GEV_C100K_N:-100000}

echo_server=$build/examples/echo_server
client=$build/bench/bench_c100k_client
go_server=$build/bench/c100k_echo_go
for bin in "$echo_server" "$client"; do
  [ -x "$bin" ] || { echo "c100k.sh: $bin not built" >&2; exit 1; }
done
command -v go >/dev/null ||
  { echo "c100k.sh: go not installed (Debian: apt-get install golang-go)" >&2
    exit 1; }

# Two descriptors per connection would do for the client; the servers need
# one each. Raising the hard limit needs root.
spare_fds=500
want_fds=$((n + spare_fds))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want_fds" ]; then
  if ! ulimit -Hn "$want_fds" 2>/dev/null; then
    n=$(($(ulimit -Hn) - spare_fds))
    want_fds=$((n + spare_fds))
    echo "c100k.sh: the open-file hard limit is $(ulimit -Hn) and cannot be" \
         "raised here: $n connections" >&2
  fi
fi
ulimit -Sn "$want_fds"

# The Go server, built from source into the build directory (no module,
# no network: the standard library only).
mkdir -p "$build/go-cache"
GOCACHE=$build/go-cache GO111MODULE=off GOFLAGS= \
  go build -o "$go_server" "$root/bench/c100k_echo.go"

bench_name=c100k.sh
# shellcheck source=bench/servers.sh
source "$root/bench/servers.sh"

# Runs the client against the server just started ($port, last pid).
drive() {
  "${pin_client[@]}" "$client" --port "$port" --pid "${pids[-1]}" \
    --name "$1" --n "$n"
}

rss() { sed -n "s/^bench: c100k\.$1\.rss_per_conn \([0-9.]*\) .*/\1/p" "$tmp/out"; }

: >"$tmp/out"
# The Go server listens with a backlog of net.core.somaxconn, as Go does.
backlog=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)
start_server "$echo_server" --port 0 --backlog "$backlog"
drive gev | tee -a "$tmp/out"
stop_servers
GEV_STACK_MODE=shared start_server "$echo_server" --port 0 --backlog "$backlog"
drive gev.shared | tee -a "$tmp/out"
stop_servers
start_server "$go_server" -port 0
drive go | tee -a "$tmp/out"
stop_servers

awk -v g="$(rss gev)" -v s="$(rss gev.shared)" -v o="$(rss go)" 'BEGIN {
  printf "bench: c100k.ratio %.3f x\n", g / o
  printf "bench: c100k.ratio.shared %.3f x\n", s / o
}'
echo "bench: c100k.n $n connections"
