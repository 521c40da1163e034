#!/usr/bin/env bash
# GEV_DUMP_SIGNAL=SIGUSR2 in the environment: the signal makes obs_target's
# hub log its run info, with the parked greenlets' backtraces, to stderr
# (the default log hook); so does SIGUSR1, which obs_target asked for
# with gev_dump_on_signal.
#
#   test_dump_env.sh OBS_TARGET
set -uo pipefail
target=$1
. "$(dirname "$0")/obs_lib.sh"
shown=$work/err
obs_start GEV_DUMP_SIGNAL=SIGUSR2

# Waits up to 10 s for the n-th "run info follows" on stderr.
await_dump() {
  for _ in $(seq 100); do
    [ "$(grep -c 'run info follows' "$work/err")" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "no run info after the signal ($2)"
}

kill -USR2 "$pid"
await_dump 1 SIGUSR2
grep -q "signal $(kill -l USR2 2>/dev/null || echo 12)" "$work/err" ||
  grep -q "User defined signal 2" "$work/err" || fail "the dump does not name SIGUSR2"
for fn in obs_park_in_alpha obs_park_in_beta obs_park_in_gamma; do
  grep -q "$fn+0x" "$work/err" || fail "the dump does not show $fn"
done
grep -q "in-alpha: parked on sleep for" "$work/err" || fail "in-alpha not listed"
kill -USR1 "$pid"
await_dump 2 SIGUSR1
echo "dumps on SIGUSR2 (environment) and SIGUSR1 (gev_dump_on_signal): ok"
