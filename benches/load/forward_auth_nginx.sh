#!/usr/bin/env bash
# What forward-auth adds through a real nginx: one server (mode `forward-auth`: the
# origin at `/` and the endpoint at `/auth/forward`, a cached RS256 bearer token), and one
# nginx with two listeners in front of it: A proxies straight to the origin, B asks the
# endpoint first (`auth_request`) and passes the identity headers on. Loaded in turn,
# A B A B ..., PAIRS times SECS seconds, server and nginx on core 0, wrk on core 1.
# Prints per pair B's added p50 and p99 (B minus A, ms) and B/A requests/s, then the
# median and quartiles of each.
#
#   benches/load/forward_auth_nginx.sh          # PAIRS=10 SECS=3 CONNECTIONS=8
set -euo pipefail
cd "$(dirname "$0")"
PAIRS=${PAIRS:-10}
SECS=${SECS:-3}
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-39131}
NGINX=${NGINX:-/usr/sbin/nginx}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ -x "$NGINX" ] || { echo "nginx is needed: apt-get install nginx-light" >&2; exit 1; }
cargo build --release -q
. ./lib.sh

start_server forward-auth "$PORT"
SERVER=$PID
DIR=$(mktemp -d)
A=$((PORT + 1)); B=$((PORT + 2))
cat >"$DIR/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
user root;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $DIR/body;
  proxy_temp_path $DIR/proxy;
  fastcgi_temp_path $DIR/fastcgi;
  uwsgi_temp_path $DIR/uwsgi;
  scgi_temp_path $DIR/scgi;
  upstream app { server 127.0.0.1:$PORT; keepalive 16; }
  server {
    listen 127.0.0.1:$A;
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
  server {
    listen 127.0.0.1:$B;
    location = /_auth {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app/auth/forward;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Method \$request_method;
    }
    location / {
      auth_request /_auth;
      auth_request_set \$auth_subject \$upstream_http_x_auth_subject;
      proxy_set_header X-Auth-Subject \$auth_subject;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
}
EOF
taskset -c 0 "$NGINX" -c "$DIR/nginx.conf" -p "$DIR"
cleanup() { kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$B/" && break; sleep 0.05; done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$HEADER" "http://127.0.0.1:$B/")" = 200 ] \
  || { echo "B does not admit the token" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$B/")" = 401 ] \
  || { echo "B does not refuse a request without a token" >&2; exit 1; }

# run PORT: prints "req/s p50-ms p99-ms".
run() {
  local w
  w=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECS}s" --latency -H "$HEADER" "http://127.0.0.1:$1/")
  echo "$w" | grep -q 'Non-2xx' && { echo "non-2xx answers on port $1" >&2; exit 1; }
  echo "$w" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    END { printf "%s %s %s\n", rps, p50, p99 }'
}

taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s -H "$HEADER" "http://127.0.0.1:$A/" >/dev/null
taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s -H "$HEADER" "http://127.0.0.1:$B/" >/dev/null
RAW=$(mktemp)
printf '%4s %10s %10s %12s %12s\n' pair 'A req/s' 'B req/s' 'B-A p50 ms' 'B-A p99 ms'
for i in $(seq "$PAIRS"); do
  read -r ra a50 a99 <<<"$(run $A)"
  read -r rb b50 b99 <<<"$(run $B)"
  echo "$rb $ra $b50 $a50 $b99 $a99" >>"$RAW"
  printf '%4d %10s %10s %12.3f %12.3f\n' "$i" "$ra" "$rb" "$(echo "$b50 - $a50" | bc -l)" "$(echo "$b99 - $a99" | bc -l)"
done
awk '
  { r[NR] = $1 / $2; d50[NR] = $3 - $4; d99[NR] = $5 - $6 }
  function q(a, n, p,   i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
    return s[int((n - 1) * p) + 1]
  }
  END {
    n = NR
    printf "median [q1-q3] over %d pairs: B/A req/s %.2f [%.2f-%.2f]; added p50 %.3f [%.3f-%.3f] ms; added p99 %.3f [%.3f-%.3f] ms\n",
      n, q(r, n, .5), q(r, n, .25), q(r, n, .75), q(d50, n, .5), q(d50, n, .25), q(d50, n, .75), q(d99, n, .5), q(d99, n, .25), q(d99, n, .75)
  }' "$RAW"
rm -f "$RAW"
