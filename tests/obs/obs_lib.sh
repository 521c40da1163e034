# Sourced by the obs suite's scripts: a scratch directory, obs_target
# started in the background with its "ready" line read, and failure
# reports that show a file the script names.
#
#   obs_start ENV...   starts $target with those VAR=value settings,
#                      stderr to $work/err; sets pid and `ready` (the
#                      words of its ready line)
#   fail MESSAGE       prints MESSAGE and $shown (a file), exits 1
work=$(mktemp -d)
pid=""
shown=/dev/null
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- $shown:"
  cat "$shown"
  exit 1
}

obs_start() {
  mkfifo "$work/ready"
  env "$@" "$target" >"$work/ready" 2>"$work/err" &
  pid=$!
  read -r -a ready <"$work/ready" || fail "target did not start"
  [ "${ready[0]}" = ready ] && [ "${ready[1]}" = "$pid" ] ||
    fail "target said '${ready[*]}'"
}
