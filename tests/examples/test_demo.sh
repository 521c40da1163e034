#!/usr/bin/env bash
# scripts/demo leaves no process behind: after a normal run, after Ctrl-C
# (SIGINT to its whole process group, as a terminal sends it) and after a
# SIGINT or SIGTERM to the demo's shell alone, each taken while dnsmasq,
# both servers and the crawler run.
# Usage: test_demo.sh SOURCE_ROOT EXAMPLES_BUILD_DIR
# Every process the demo starts inherits a marker in its environment; a
# process still alive with the marker after the demo has exited is a leak.
# The marker names this run ($$), so demos of parallel runs stay apart.
set -uo pipefail
top=$1 bin=$2
pid=""
fail() { echo "FAIL: $*" >&2; exit 1; }
state=$(mktemp -d)
# A failing check must not leave the demo it was watching running.
trap '[ -n "$pid" ] && kill -TERM -- -"$pid" 2>/dev/null; rm -rf "$state"' EXIT

# Pids of live (not zombie) processes whose environment holds marker $1.
marked() {
  local env pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}
    pid=${pid%/environ}
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -x "GEV_DEMO_MARK=$1.$$" >/dev/null ||
      continue
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && continue
    echo "$pid"
  done
}

# Fails (and kills them) if processes with marker $1 are alive.
expect_none_left() {
  local left
  left=$(marked "$1")
  if [ -n "$left" ]; then
    ps -o pid,ppid,stat,cmd -p "$(echo $left | tr ' ' ,)" >&2
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null
    fail "$2: processes left running: $left"
  fi
}

# Starts the demo in a session of its own, as a terminal runs a foreground
# job; sets pid (= its process group). A command started with & from a
# script begins with SIGINT and SIGQUIT ignored, and a shell cannot trap
# what it was started ignoring: env puts their default action back.
start_demo() {
  GEV_DEMO_MARK=$1.$$ GEV_DEMO_BIN=$bin env --default-signal=INT,QUIT \
    setsid "$top/scripts/demo" >"$state/$1.out" 2>&1 </dev/null &
  pid=$!
}

# Waits up to $3 seconds for the demo's output ($1) to contain $2.
wait_output() {
  for _ in $(seq $(($3 * 20))); do
    grep -q -- "$2" "$state/$1.out" && return 0
    sleep 0.05
  done
  cat "$state/$1.out" >&2
  fail "$1: no \"$2\" in the demo's output"
}

# 1. A whole run.
start_demo run
wait "$pid"
status=$?
pid=""
[ "$status" -eq 0 ] || { cat "$state/run.out" >&2; fail "demo exit status $status"; }
grep -q "1001 inputs: 1000 ok, 0 failed, 1 timed out" "$state/run.out" ||
  { cat "$state/run.out" >&2; fail "no crawler summary"; }
grep -q "finished; nothing left running" "$state/run.out" || fail "not finished"
expect_none_left run "normal run"

# 2. Interrupted during the 1,001-name crawl, when everything runs.
interrupt() {
  local mark=$1 how=$2 target
  start_demo "$mark"
  wait_output "$mark" "names at once, one greenlet each" 60
  [ -n "$(marked "$mark")" ] || fail "$mark: found no process of the demo"
  case $how in
    ctrl-c) target=-$pid sig=INT ;;  # the whole process group
    shell-int) target=$pid sig=INT ;;
    shell-term) target=$pid sig=TERM ;;
  esac
  kill -"$sig" -- "$target"
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && fail "$mark: demo still running 30 s after SIG$sig"
  wait "$pid"
  status=$?
  pid=""
  [ "$status" -ne 0 ] || fail "$mark: interrupted demo exited 0"
  expect_none_left "$mark" "$how"
}
interrupt ctrl-c ctrl-c
interrupt shell-int shell-int
interrupt shell-term shell-term
echo "ok"
