#!/usr/bin/env bash
# Compiles every public header alone, as a program's first include, in each
# language mode gev promises: C11 strict (-std=c11 -pedantic, all warnings
# as errors), GNU C11, and C++17 (the headers' extern "C" blocks). A header
# that needs another to be included first, a feature macro, or a GNU
# extension fails here.
#
#   check_headers.sh <source include dir> <build include dir> <cc> [<c++>]
#
# Prints one line per header and mode; exits 1 if any failed.
set -u
src_inc=$1
build_inc=$2
cc=$3
cxx=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

warn=(-Wall -Wextra -Werror)
failed=0

# gev.h sits in the include dir itself; the rest under gev/ (version.h is
# generated into the build tree).
names=()
for h in "$src_inc"/gev.h "$src_inc"/gev/*.h "$build_inc"/gev/*.h; do
  [ -f "$h" ] || continue
  case "$h" in
    */gev/*.h) names+=("gev/$(basename "$h")") ;;
    *) names+=("$(basename "$h")") ;;
  esac
done

# check <label> <source file> <compiler and flags...>
check() {
  local label=$1 src=$2
  shift 2
  if "$@" -fsyntax-only -I"$src_inc" -I"$build_inc" "$src" 2>"$tmp/err"; then
    echo "ok   $label"
  else
    echo "FAIL $label"
    sed 's/^/     /' "$tmp/err"
    failed=1
  fi
}

for name in "${names[@]}"; do
  # (a declaration after it: a header of macros alone is an empty unit)
  printf '#include <%s>\ntypedef int header_checked;\n' "$name" >"$tmp/t.c"
  printf '#include <%s>\nint main() { return 0; }\n' "$name" >"$tmp/t.cc"
  check "$name -std=c11 -pedantic" "$tmp/t.c" $cc -std=c11 -pedantic "${warn[@]}"
  check "$name -std=gnu11" "$tmp/t.c" $cc -std=gnu11 "${warn[@]}"
  if [ -n "$cxx" ]; then
    check "$name c++17" "$tmp/t.cc" $cxx -std=c++17 "${warn[@]}"
  fi
done

# Calling through a header's types: gev_getaddrinfo takes libc's struct
# addrinfo, which must be the caller's struct addrinfo too, even where
# strict C11 leaves it incomplete.
if [ -f "$src_inc/gev/dns.h" ]; then
  cat >"$tmp/dns.c" <<'C'
#include <gev/dns.h>
int lookup(void);
int lookup(void) {
  struct addrinfo *res = 0;
  int rc = gev_getaddrinfo("localhost", "80", 0, &res);
  if (rc == 0)
    gev_freeaddrinfo(res);
  return rc;
}
C
  check "gev/dns.h addrinfo -std=c11 -pedantic" "$tmp/dns.c" $cc -std=c11 -pedantic "${warn[@]}"
fi

[ -z "$cxx" ] && echo "no C++ compiler: C++ checks skipped"
exit $failed
