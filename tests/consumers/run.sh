#!/usr/bin/env bash
# Installs gev into a temporary prefix and builds programs against it the
# three ways users consume it, running each:
#   pkg-config   shared, and fully static with --static; the cooperative
#                libc (gev-patch) linked and preloaded
#   CMake        find_package(gev): gev::gev and gev::gev_static
#   meson        a parent project with gev as its subproject (no install)
# Usage: tests/consumers/run.sh [GEV_SOURCE_DIR]. Exits non-zero on the first
# failure, after printing what failed.
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
here=$src/tests/consumers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a command quietly; on failure shows its output and stops.
quiet() {
  local log=$tmp/last.log
  "$@" >"$log" 2>&1 || { echo "failed: $*"; tail -40 "$log"; exit 1; }
}
ok() { echo "  ok: $*"; }

quiet meson setup "$tmp/build" "$src" --prefix "$tmp/prefix" \
  -Dtests=false -Dexamples=false -Dbench=false
quiet ninja -C "$tmp/build" install
pc=$(dirname "$(find "$tmp/prefix" -name gev.pc | head -1)")
libdir=$(dirname "$pc")
export PKG_CONFIG_PATH=$pc

# pkg-config: version, the c-ares floor, a shared and a static program.
version=$(meson introspect --projectinfo "$tmp/build" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$(pkg-config --modversion gev)" = "$version" ] ||
  { echo "gev.pc says $(pkg-config --modversion gev), project $version"; exit 1; }
pkg-config --print-requires-private gev | grep 'libcares >= 1.16' >/dev/null ||
  { echo "gev.pc does not require libcares >= 1.16"; exit 1; }
ok "gev.pc: version $version, requires libcares >= 1.16"
# shellcheck disable=SC2046
quiet cc -o "$tmp/pc_shared" "$here/common/consumer.c" \
  $(pkg-config --cflags --libs gev) -Wl,-rpath,"$libdir"
quiet "$tmp/pc_shared"
ldd "$tmp/pc_shared" | grep "$libdir/libgev.so" >/dev/null ||
  { echo "pc_shared does not use the installed libgev.so"; exit 1; }
ok "pkg-config --cflags --libs gev (shared)"
# The gdb extension, where gdb's auto-load looks for libgev.so's script.
gdbdir=$tmp/prefix/share/gdb/auto-load
[ -f "$gdbdir$libdir/libgev.so.$version-gdb.py" ] ||
  { echo "no gdb script at $gdbdir$libdir/libgev.so.$version-gdb.py"; exit 1; }
if command -v gdb >/dev/null; then
  gdb -nx -batch -iex "set auto-load scripts-directory $gdbdir" \
    -iex "add-auto-load-safe-path $gdbdir" -ex 'break main' -ex run \
    -ex 'help gev' "$tmp/pc_shared" 2>&1 | grep 'gev greenlets' >/dev/null ||
    { echo "gdb did not auto-load the gev commands with libgev.so"; exit 1; }
fi
ok "gdb extension installed and auto-loaded with libgev.so"
# The cooperative libc, linked through its own pkg-config name and preloaded.
# shellcheck disable=SC2046
quiet cc -DPATCH_LINKED -o "$tmp/pc_patch" "$here/common/patch_consumer.c" \
  $(pkg-config --cflags --libs gev-patch) -Wl,-rpath,"$libdir"
quiet "$tmp/pc_patch"
# shellcheck disable=SC2046
quiet cc -o "$tmp/pc_patch_preload" "$here/common/patch_consumer.c" \
  $(pkg-config --cflags --libs gev) -Wl,-rpath,"$libdir"
quiet env LD_PRELOAD="$libdir/libgev-patch.so" "$tmp/pc_patch_preload"
quiet env LD_PRELOAD="$libdir/libgev-patch.so" "$tmp/pc_shared"
ok "pkg-config gev-patch (linked), and LD_PRELOAD=libgev-patch.so"
# shellcheck disable=SC2046
quiet cc -static -o "$tmp/pc_static" "$here/common/consumer.c" \
  $(pkg-config --static --cflags --libs gev)
quiet "$tmp/pc_static"
ok "pkg-config --static (a fully static program)"

# CMake: the package files and both imported targets.
quiet cmake -S "$here/cmake" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix"
quiet cmake --build "$tmp/cmake"
quiet env LD_LIBRARY_PATH="$libdir" "$tmp/cmake/consumer_shared"
quiet "$tmp/cmake/consumer_static"
ok "CMake find_package(gev): gev::gev and gev::gev_static"

# meson: gev as a subproject; its tests, examples and benchmarks stay off.
mkdir -p "$tmp/parent/subprojects"
cp -r "$here/meson" "$here/common" "$tmp/parent/"
ln -s "$src" "$tmp/parent/meson/subprojects/gev" 2>/dev/null ||
  { mkdir -p "$tmp/parent/meson/subprojects" &&
    ln -s "$src" "$tmp/parent/meson/subprojects/gev"; }
quiet meson setup "$tmp/parent/build" "$tmp/parent/meson"
quiet ninja -C "$tmp/parent/build"
quiet "$tmp/parent/build/consumer"
if meson introspect --targets "$tmp/parent/build" |
   python3 -c 'import json,sys; sys.exit(any(t["name"].startswith(("test_","bench_")) for t in json.load(sys.stdin)))'; then
  ok "meson subproject: dependency('gev'), no tests or benchmarks built"
else
  echo "the gev subproject built its tests or benchmarks"; exit 1
fi
