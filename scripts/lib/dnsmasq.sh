# shellcheck shell=bash
# Functions to run a private dnsmasq on a free loopback port, answering only
# from a hosts-style file (lines "ADDRESS NAME [ALIAS...]"). Source this
# file, then:
#
#   port=$(gev_dnsmasq_start hosts.txt "$state_dir" [dnsmasq options...])
#   crawler --dns "127.0.0.1:$port" alpha.test ...
#   gev_dnsmasq_stop "$state_dir"
#
# The state directory (created if missing) holds dnsmasq.pid, dnsmasq.port
# and dnsmasq.log. Names under .test and reverse lookups not in the file
# get NXDOMAIN; nothing is forwarded anywhere unless extra options (e.g.
# --server=/domain/ip#port, --cname=..., --address=/domain/ip) say so.
# Call gev_dnsmasq_stop from an EXIT trap so dnsmasq never outlives you.

GEV_DNSMASQ_BIN=${GEV_DNSMASQ_BIN:-/usr/sbin/dnsmasq}

# True when something accepts TCP connections on 127.0.0.1:$1.
gev__dnsmasq_listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts dnsmasq for hosts file $1 with state in $2; extra args follow.
# Prints the port. Fails (status 1, message on stderr) when dnsmasq cannot
# be started on any of a few random free ports.
gev_dnsmasq_start() {
  local hosts=$1 dir=$2 port pid
  shift 2 || { echo "gev_dnsmasq_start: HOSTS_FILE STATE_DIR [OPTION...]" >&2; return 1; }
  [ -r "$hosts" ] || { echo "gev_dnsmasq_start: cannot read $hosts" >&2; return 1; }
  [ -x "$GEV_DNSMASQ_BIN" ] || { echo "gev_dnsmasq_start: no $GEV_DNSMASQ_BIN" >&2; return 1; }
  mkdir -p "$dir" || return 1
  hosts=$(cd "$(dirname "$hosts")" && pwd)/$(basename "$hosts")
  local as_root=()
  [ "$(id -u)" -eq 0 ] && as_root=(--user=root --group=root)
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    gev__dnsmasq_listening "$port" && continue
    "$GEV_DNSMASQ_BIN" --keep-in-foreground "${as_root[@]}" --pid-file= \
      --port="$port" --listen-address=127.0.0.1 --bind-interfaces \
      --no-resolv --no-hosts --addn-hosts="$hosts" \
      --local=/test/ --local=/in-addr.arpa/ --local=/ip6.arpa/ \
      --log-facility=- "$@" >"$dir/dnsmasq.log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        break # exited: most likely the port was taken; try another
      fi
      if gev__dnsmasq_listening "$port"; then
        echo "$pid" >"$dir/dnsmasq.pid"
        echo "$port" >"$dir/dnsmasq.port"
        echo "$port"
        return 0
      fi
      sleep 0.02
    done
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  echo "gev_dnsmasq_start: dnsmasq did not start (see $dir/dnsmasq.log)" >&2
  return 1
}

# The port of the dnsmasq whose state is in $1.
gev_dnsmasq_port() {
  cat "$1/dnsmasq.port"
}

# Stops the dnsmasq whose state is in $1 (nothing if none is running).
gev_dnsmasq_stop() {
  local dir=$1 pid
  [ -f "$dir/dnsmasq.pid" ] || return 0
  pid=$(cat "$dir/dnsmasq.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  kill -9 "$pid" 2>/dev/null
  rm -f "$dir/dnsmasq.pid" "$dir/dnsmasq.port"
}
