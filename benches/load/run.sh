#!/usr/bin/env bash
# End-to-end load: every mode served on core 0, wrk on core 1, loopback only, bounded
# duration. Reports requests/s, p99 latency and server CPU-µs per request; runs the
# whole list twice, the second time in reverse order, so drift on the VM shows up.
#
#   benches/load/run.sh            # DURATION=5 CONNECTIONS=32 by default
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-39123}
MODES=${MODES:-"none basic hs256 hs256-cached rs256 rs256-cached es256 es256-cached eddsa eddsa-cached session tower-http-bearer jwt-authorizer-rs256 axum-jwt-auth-rs256 axum-login"}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q
BIN=target/release/portcullis-load
TICKS=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_mode() {
  local mode=$1 out header pid
  out=$(mktemp)
  taskset -c 0 "$BIN" "$mode" "127.0.0.1:$PORT" >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
  header=$(sed -n 's/^HEADER //p' "$out")
  if grep -q '^LOGIN' "$out"; then
    header="Cookie: $(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$PORT/login" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)"
  fi
  local args=()
  [ -n "$header" ] && args=(-H "$header")
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "${args[@]}" "http://127.0.0.1:$PORT/")
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s "${args[@]}" "http://127.0.0.1:$PORT/" >/dev/null   # warm-up
  local c0 c1 w
  c0=$(cpu_ticks $pid)
  w=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${args[@]}" "http://127.0.0.1:$PORT/")
  c1=$(cpu_ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  rm -f "$out"
  local rps p99 reqs bad
  rps=$(echo "$w" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$w" | awk '$1=="99%" {print $2}')
  reqs=$(echo "$w" | awk '/requests in/ {print $1}')
  bad=$(echo "$w" | awk '/Non-2xx/ {print $5}')
  printf '%-22s %6s %12s %10s %12.1f %8s\n' "$mode" "$code" "$rps" "$p99" "$(echo "($c1 - $c0) * 1000000 / $TICKS / $reqs" | bc -l)" "${bad:-0}"
}

printf '%-22s %6s %12s %10s %12s %8s\n' mode status 'req/s' p99 'cpu-us/req' non-2xx
for mode in $MODES; do run_mode "$mode"; done
echo "-- reverse order"
for mode in $(echo "$MODES" | tr ' ' '\n' | tac); do run_mode "$mode"; done
