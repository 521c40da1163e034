#!/usr/bin/env bash
# scripts/lib/dnsmasq.sh as scripts use it: start dnsmasq from a hosts file,
# point the crawler at it, stop it, and check that it is gone.
# Usage: test_crawler_script.sh SOURCE_ROOT CRAWLER_BINARY
set -uo pipefail
top=$1 crawler=$2
# shellcheck source=scripts/lib/dnsmasq.sh
source "$top/scripts/lib/dnsmasq.sh"
state=$(mktemp -d)
trap 'gev_dnsmasq_stop "$state"; rm -rf "$state"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf '127.0.0.5 alpha.test\n10.0.0.3 beta.test\n' >"$state/hosts"
port=$(gev_dnsmasq_start "$state/hosts" "$state/run" --cname=www.test,beta.test) ||
  fail "gev_dnsmasq_start"
[ "$(gev_dnsmasq_port "$state/run")" = "$port" ] || fail "port file"
pid=$(cat "$state/run/dnsmasq.pid")

out=$(printf 'alpha.test\nwww.test\nnope.test\n' |
  "$crawler" --dns "127.0.0.1:$port" 2>/dev/null)
status=$?
expected=$'alpha.test 127.0.0.5\nwww.test 10.0.0.3\nnope.test ERROR not found'
[ "$out" = "$expected" ] || fail "crawler output: $out"
[ "$status" -eq 1 ] || fail "crawler exit status $status"

gev_dnsmasq_stop "$state/run"
kill -0 "$pid" 2>/dev/null && fail "dnsmasq $pid still running"
[ -e "$state/run/dnsmasq.pid" ] && fail "pid file left"
echo "ok"
