#!/usr/bin/env bash
# End-to-end load: every mode served on core 0, wrk on core 1, loopback only, bounded
# duration. Reports requests/s, p99 latency and server CPU-µs per request; runs the
# whole list twice, the second time in reverse order, so drift on the VM shows up.
#
#   benches/load/run.sh            # DURATION=5 CONNECTIONS=32 PASSES=2 by default
#
# The session-redis and session-postgres modes need PORTCULLIS_TEST_REDIS_URL and
# PORTCULLIS_TEST_POSTGRES_URL (skipped when unset). The limit-* modes do the least work
# any verifier must do (see src/limit.rs); none-as-<mode> is the no-auth app sent the
# request of <mode>; floor and axum-from-fn measure a layer that does no checking at all.
# After the raw passes, a summary gives each mode's mean over the passes and its ratios.
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-39123}
PASSES=${PASSES:-2}
MODES=${MODES:-"none none-as-hs256-cached none-as-rs256-cached none-as-session identity-layer axum-from-fn floor floor-handler basic limit-hs256 hs256 hs256-cached hs256-cached-handler limit-rs256 rs256 rs256-cached limit-es256 es256 es256-cached limit-eddsa eddsa eddsa-cached session session-handler session-redis session-postgres tower-http-bearer jwt-authorizer-rs256 axum-jwt-auth-rs256 axum-login"}
[ -n "${PORTCULLIS_TEST_REDIS_URL:-}" ] || MODES=$(echo "$MODES" | sed 's/session-redis//')
[ -n "${PORTCULLIS_TEST_POSTGRES_URL:-}" ] || MODES=$(echo "$MODES" | sed 's/session-postgres//')
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q ${LOAD_FEATURES:+--features "$LOAD_FEATURES"}
. ./lib.sh

run_mode() {
  local mode=$1 header pid
  start_server "$mode" "$PORT"
  pid=$PID header=$HEADER
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
  local rps p99 reqs bad
  rps=$(echo "$w" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$w" | awk '$1=="99%" {print $2}')
  reqs=$(echo "$w" | awk '/requests in/ {print $1}')
  bad=$(echo "$w" | awk '/Non-2xx/ {print $5}')
  printf '%-22s %6s %12s %10s %12.1f %8s\n' "$mode" "$code" "$rps" "$p99" "$(echo "($c1 - $c0) * 1000000 / $TICKS / $reqs" | bc -l)" "${bad:-0}"
}

RAW=$(mktemp)
printf '%-22s %6s %12s %10s %12s %8s\n' mode status 'req/s' p99 'cpu-us/req' non-2xx
for pass in $(seq "$PASSES"); do
  if [ $((pass % 2)) -eq 1 ]; then order=$MODES; else order=$(echo "$MODES" | tr ' ' '\n' | tac); fi
  [ "$pass" -gt 1 ] && echo "-- pass $pass$([ $((pass % 2)) -eq 0 ] && echo ', reverse order')"
  for mode in $order; do run_mode "$mode" | tee -a "$RAW"; done
done
echo
echo "Summary: mean of $PASSES passes; ratios against none, and against the limit mode of the same algorithm"
awk -f summarize.awk "$RAW"
rm -f "$RAW"
