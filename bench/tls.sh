#!/usr/bin/env bash
# HTTPS benchmark: examples/httpd --tls-cert against nginx serving the same
# answer with the same certificate (ECDSA P-256, made here), TLS 1.3 and
# cipher, each server one process pinned to the same CPU, wrk on another,
# alternating in the same run.
#
# Two figures per test. The rate wrk saw (req/s): on a two-core machine the
# one wrk thread does as much TLS work as the server, so it may be wrk that
# sets the pace, and both servers then show about the same rate. And the
# rate per second of the server's own CPU time (from /proc/PID/stat while
# wrk runs): what one core of that server can do, whoever sets the pace.
# The targets apply to the second ("percpu").
#
#   bench/tls.sh [BUILD_DIR]         (default: $GEV_BENCH_BUILD or build-bench)
#
# Figures, as bench/run collects them ("ref" is nginx):
#   bench: tls.keepalive.gev <req/s> req/s   wrk -c100 over 100 keep-alive
#   bench: tls.keepalive.ref <req/s> req/s   TLS connections
#   bench: tls.keepalive.ratio <gev/ref> x
#   bench: tls.keepalive.gev.percpu <req per server CPU second> req/cpu-s
#   bench: tls.keepalive.ref.percpu ...      (and .ratio.percpu; likewise
#                                            for handshake and resume)
#   bench: tls.handshake.gev <conn/s> conn/s wrk -c100 with "Connection:
#   bench: tls.handshake.ref <conn/s> conn/s close": one request per
#   bench: tls.handshake.ratio <gev/ref> x   connection, each a full
#                                            handshake (servers that
#                                            resume no sessions)
#   bench: tls.resume.gev ... tls.resume.ratio  the same with session
#                                            tickets, which wrk uses: each
#                                            connection a resumption
# Requirements: wrk, openssl, and nginx (Debian: apt-get install
# nginx-light). nginx is started here with a temporary configuration on
# loopback, never as a system service. Environment: GEV_BENCH_CPU (server
# CPU; default the last one), GEV_TLS_DURATION (seconds per wrk round,
# default 3), GEV_TLS_ROUNDS (rounds per server, best kept; default 3),
# GEV_TLS_CONNECTIONS (100).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${GEV_BENCH_BUILD:-$root/build-bench}}
duration=${GEV_TLS_DURATION:-3}
connections=${GEV_TLS_CONNECTIONS:-100}
rounds=${GEV_TLS_ROUNDS:-3}

httpd=$build/examples/httpd
[ -x "$httpd" ] || { echo "tls.sh: $httpd not built" >&2; exit 1; }
for tool in wrk openssl nginx; do
  command -v "$tool" >/dev/null ||
    { echo "tls.sh: $tool not installed (nginx: apt-get install" \
           "nginx-light)" >&2; exit 1; }
done

bench_name=tls.sh
# shellcheck source=bench/servers.sh
source "$root/bench/servers.sh"

# ---- The certificate ------------------------------------------------------

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1

# ---- The servers ----------------------------------------------------------

# Starts httpd over TLS on a free port, extra arguments after; sets $port.
start_httpd() {
  start_server "$httpd" --port 0 --idle-timeout 60 \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" "$@"
}

# A port no socket uses (nginx cannot take port 0), below the usual
# ephemeral range so that no outgoing connection takes it meanwhile.
free_port() {
  local p
  while :; do
    p=$((15000 + RANDOM % 15000))
    [ "$p" != "${port:-}" ] || continue
    ss -Htan "sport = :$p" 2>/dev/null | grep . >/dev/null || { echo "$p"; return; }
  done
}

# One nginx server block on port $1; $2 "on": resumption with session
# tickets, nginx's default ("none" cache: tickets only); "off": none.
nginx_server() {
  local cache=none
  [ "$2" = on ] || cache=off
  cat <<EOF
  server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_cache $cache;
    ssl_session_tickets $2;
    location / {
      default_type text/plain;
      return 200 "Hello, World!\n";
    }
  }
EOF
}

# Starts nginx: one process (no master: the worker's loop itself),
# keep-alive unlimited as httpd's, the same answer, on two ports: $port
# with session tickets (nginx's default), $port_full without.
start_nginx() {
  port=$(free_port)
  port_full=$(free_port)
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 60s;
$(nginx_server "$port" on)
$(nginx_server "$port_full" off)
}
EOF
  "${pin_server[@]}" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
    2>"$tmp/nginx/stderr" &
  pids+=($!)
  local i
  for i in $(seq 100); do
    ss -Htln "sport = :$port_full" 2>/dev/null | grep . >/dev/null && return 0
    sleep 0.05
  done
  echo "tls.sh: nginx did not start: $(cat "$tmp/nginx/stderr" \
    "$tmp/nginx/error.log" 2>/dev/null)" >&2
  exit 1
}

# "protocol cipher" negotiated with 127.0.0.1:$1, as wrk's OpenSSL would.
negotiated() {
  openssl s_client -connect "127.0.0.1:$1" -servername localhost \
    </dev/null 2>/dev/null |
    awk '/^New, / { print $2, $NF; exit }'
}

# ---- Measuring ------------------------------------------------------------

# CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# wrk for $3 seconds against port $1 (server process $2), extra wrk
# arguments after; prints requests/second (= connections/second with
# "Connection: close") and requests per second of the server's CPU time.
wrk_rps() {
  local port=$1 pid=$2 secs=$3 before after
  shift 3
  before=$(cpu_ticks "$pid")
  "${pin_client[@]}" wrk -t1 -c"$connections" -d"${secs}s" "$@" \
    "https://127.0.0.1:$port/" >"$tmp/wrk" 2>&1 ||
    { cat "$tmp/wrk" >&2; exit 1; }
  after=$(cpu_ticks "$pid")
  if grep -q 'Non-2xx\|Socket errors: connect [1-9]' "$tmp/wrk"; then
    echo "tls.sh: wrk saw errors:" >&2
    cat "$tmp/wrk" >&2
  fi
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /^[ ]*[0-9]+ requests in / { n = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%.0f %.0f\n", rps, (ticks > 0 ? n / (ticks / hz) : 0) }
  ' "$tmp/wrk"
}

max() { echo $(( $1 > $2 ? $1 : $2 )); }

# Prints the bench lines of one figure pair.
report() {
  local name=$1 suffix=$2 gev=$3 ref=$4 unit=$5
  echo "bench: tls.$name.gev$suffix $gev $unit"
  echo "bench: tls.$name.ref$suffix $ref $unit"
  awk -v g="$gev" -v r="$ref" 'BEGIN {
    printf "bench: tls.'"$name.ratio$suffix"' %.3f x\n", (r > 0 ? g / r : 0) }'
}

# One comparison: $1 names it, $2/$3 and $4/$5 are the gev and nginx ports
# and pids, the rest extra wrk arguments. Each server keeps its best round
# of each figure: on a shared machine a slow round measures the neighbours.
compare() {
  local name=$1 gev_port=$2 gev_pid=$3 ref_port=$4 ref_pid=$5 r g n
  local gev=0 ref=0 gev_cpu=0 ref_cpu=0
  shift 5
  wrk_rps "$gev_port" "$gev_pid" 1 "$@" >/dev/null # warm-up
  wrk_rps "$ref_port" "$ref_pid" 1 "$@" >/dev/null
  for r in $(seq "$rounds"); do
    read -r g n < <(wrk_rps "$gev_port" "$gev_pid" "$duration" "$@")
    gev=$(max "$gev" "$g")
    gev_cpu=$(max "$gev_cpu" "$n")
    read -r g n < <(wrk_rps "$ref_port" "$ref_pid" "$duration" "$@")
    ref=$(max "$ref" "$g")
    ref_cpu=$(max "$ref_cpu" "$n")
  done
  local unit=req/s
  [ "$name" != keepalive ] && unit=conn/s
  report "$name" "" "$gev" "$ref" "$unit"
  report "$name" .percpu "$gev_cpu" "$ref_cpu" "${unit%/s}/cpu-s"
}

start_httpd
gev_port=$port gev_pid=${pids[-1]}
start_httpd --tls-session-cache 0
gev_port_full=$port gev_pid_full=${pids[-1]}
start_nginx
ref_port=$port ref_port_full=$port_full ref_pid=${pids[-1]}
gev_tls=$(negotiated "$gev_port")
ref_tls=$(negotiated "$ref_port")
echo "tls.sh: httpd negotiates $gev_tls, nginx $ref_tls" >&2
if [ "$gev_tls" != "$ref_tls" ] || [ -z "$gev_tls" ]; then
  echo "tls.sh: the servers negotiate different parameters; not comparable" >&2
  exit 1
fi
compare keepalive "$gev_port" "$gev_pid" "$ref_port" "$ref_pid"
compare handshake "$gev_port_full" "$gev_pid_full" "$ref_port_full" \
  "$ref_pid" -H "Connection: close"
compare resume "$gev_port" "$gev_pid" "$ref_port" "$ref_pid" \
  -H "Connection: close"
