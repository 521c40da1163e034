#!/usr/bin/env bash
# The gdb extension (tools/gdb/gev.py) against a live process and a core
# file of it: `gev greenlets` lists the parked greenlets of obs_target
# with what they wait on, and `gev bt ID` shows the function each is
# parked in; of two shared-mode greenlets, the region's occupant is
# unwound and the one copied out is reported as saved. Then the switch's
# CFI: stopped at every instruction of many switches, gdb's backtrace
# still reaches main or the coroutine's trampoline.
#
#   test_gdb.sh OBS_TARGET GEV_PY
set -uo pipefail
target=$1
script=$2
if ! command -v gdb >/dev/null || ! command -v gcore >/dev/null; then
  echo "SKIP: gdb is not installed (scripts/bootstrap test installs it)"
  exit 77
fi
# grep reads all of ldd's output: under pipefail, grep -q may leave ldd to
# die of SIGPIPE and the whole test to run where it cannot.
if ldd "$target" 2>/dev/null | grep 'libasan' >/dev/null; then
  echo "SKIP: built with AddressSanitizer, whose terabytes of shadow mappings make gcore's core file impractical"
  exit 77
fi
. "$(dirname "$0")/obs_lib.sh"
shown=$work/out
obs_start
tpid=$pid
a=${ready[2]} b=${ready[3]} c=${ready[4]} s1=${ready[5]} s2=${ready[6]}

# Runs gdb on the given target arguments with the three commands.
look() {
  timeout 120 gdb -nx -batch "$@" -ex "source $script" -ex 'gev greenlets' \
    -ex "gev bt $a" -ex "gev bt $b" -ex "gev bt $c" -ex "gev bt $s1" \
    -ex "gev bt $s2" -ex "gev bt 999999" >"$work/out" 2>&1
}

# Checks the output: every greenlet listed with its state and wait, and
# each backtrace shows its parking function, under its own header.
check() {
  local what=$1 out=$work/out
  grep -Eq "^ +$a +in-alpha +parked +sleep for " "$out" || fail "$what: in-alpha not listed"
  grep -Eq "^ +$b +in-beta +parked +Event.wait for " "$out" || fail "$what: in-beta not listed"
  grep -Eq "^ +$c +in-gamma +parked +sleep for " "$out" || fail "$what: in-gamma not listed"
  grep -Eq "^ +1 +main +parked +run for " "$out" || fail "$what: main not listed"
  sed -n "/^coroutine $s1 (/,/^coroutine /p" "$out" | grep "^(stack saved (" >/dev/null ||
    fail "$what: the copied-out shared greenlet is not reported as saved"
  grep -q "no coroutine with id 999999" "$out" || fail "$what: unknown id not refused"
  for pair in "$a:alpha" "$b:beta" "$c:gamma" "$s2:gamma"; do
    id=${pair%%:*}
    fn=obs_park_in_${pair#*:}
    # The frames between this coroutine's header and the next one.
    sed -n "/^coroutine $id (/,/^coroutine /p" "$out" | grep " in $fn ()" >/dev/null ||
      fail "$what: gev bt $id does not show $fn"
    sed -n "/^coroutine $id (/,/^coroutine /p" "$out" | grep "gev__ctx_trampoline" >/dev/null ||
      fail "$what: gev bt $id does not reach the coroutine's start"
  done
  if grep -q "Python Exception\|Traceback" "$out"; then
    fail "$what: the extension raised"
  fi
}

look -p "$pid"
check "live process"
echo "live process: ok"

timeout 120 gcore -o "$work/core" "$pid" >/dev/null 2>&1 ||
  { echo "FAIL: gcore could not dump the target"; exit 1; }
kill "$pid"
wait "$pid" 2>/dev/null
pid=""
look "$target" "$work/core.$tpid"
check "core file"
echo "core file: ok"

# Every instruction of the switches of "obs_target switch".
cat >"$work/step.gdb" <<'GDB'
set pagination off
break gev__switch
run switch
delete
set $i = 0
while $i < 300
  stepi
  echo === step\n
  bt
  set $i = $i + 1
end
GDB
timeout 170 gdb -nx -batch -x "$work/step.gdb" "$target" >"$work/out" 2>&1
steps=$(grep -c '^=== step' "$work/out")
[ "$steps" -ge 300 ] || fail "switch stepping: only $steps steps"
if grep -q "Backtrace stopped\|corrupt stack" "$work/out"; then
  fail "switch stepping: an unwind failed"
fi
# Each step's backtrace ends in main or in a coroutine's trampoline.
awk '/^=== step/ { if (n && !root) bad++; n++; root = 0; next }
     /^#[0-9]+ +(0x[0-9a-f]+ in )?(main|gev__ctx_trampoline) \(/ { root = 1 }
     END { if (n && !root) bad++; exit bad ? 1 : 0 }' "$work/out" ||
  fail "switch stepping: a backtrace did not reach main or the trampoline"
grep -q "gev__switch" "$work/out" || fail "switch stepping: never inside the switch"
echo "switch CFI: ok ($steps instructions)"
