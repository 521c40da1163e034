#!/usr/bin/env bash
# The cooperative libc's benchmarks (see bench/patch.c and bench/patch_pg.c):
#   bench_patch      a patched read/write pair on a ready socket against the
#                    raw system calls, pinned to one CPU like the others;
#   bench_patch_pg   libpq queries/s with 100 greenlets against 100 OS
#                    threads, against a throw-away PostgreSQL server this
#                    script starts (initdb into a temporary directory,
#                    pg_ctl on a Unix socket there, as the "postgres" user
#                    when run as root) and removes afterwards. Unpinned:
#                    the server needs a CPU of its own.
#
#   bench/patch.sh [BUILD_DIR]     (default: $GEV_BENCH_BUILD or build-bench)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
cpu=${GEV_BENCH_CPU:-$(($(nproc) - 1))}

[ -x "$build/bench/bench_patch" ] ||
  { echo "patch.sh: $build/bench/bench_patch not built" >&2; exit 1; }
pin=()
if command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
  pin=(taskset -c "$cpu")
fi
${pin[@]+"${pin[@]}"} "$build/bench/bench_patch"

pg_bench=$build/bench/bench_patch_pg
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$pg_bench" ] || [ ! -x "$bindir/initdb" ]; then
  echo "patch.sh: libpq or the PostgreSQL server missing: libpq figures" \
       "skipped (scripts/bootstrap installs them)" >&2
  exit 0
fi

dir=$(mktemp -d /tmp/gev-bench-pg-XXXXXX)
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
    >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" --auth=trust -U postgres \
  --no-sync >"$dir/setup.log" 2>&1
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-k $dir -c listen_addresses='' -c max_connections=150 -c fsync=off" \
  start >>"$dir/setup.log" 2>&1
"$pg_bench" "host=$dir dbname=postgres user=postgres"
