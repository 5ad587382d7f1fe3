#!/usr/bin/env bash
# Paired A/B load: for each mode, the baseline app (A) and the mode (B) are served side by
# side (both pinned to core 0, wrk to core 1), and loaded in turn, AB BA AB ..., PAIRS
# times SECS seconds each. Each pair gives a ratio B/A of requests/s and of the server's
# CPU-µs per request; the median and the quartiles of those ratios are printed. A and B
# are measured seconds apart, so the VM's slow drift (often ±10 % over minutes on this
# shared machine) cancels out of the ratios, unlike whole passes minutes apart.
#
# Latency: one 3 s run's p99 on this VM swings 4x between identical runs (a stall of the
# VM holds all 32 connections), so per-pair p99 ratios are noise. Printed instead: the
# median p50 and the median p99 of B's runs over those of A's runs.
#
#   benches/load/pairs.sh                       # every goal mode against `none`
#   BASE=same benches/load/pairs.sh             # against `none-as-<mode>` (identical request)
#   MODES="session" PAIRS=12 benches/load/pairs.sh
#   BASE=session MODES=axum-login benches/load/pairs.sh     # a peer against our mode
set -euo pipefail
cd "$(dirname "$0")"
PAIRS=${PAIRS:-10}
SECS=${SECS:-3}
CONNECTIONS=${CONNECTIONS:-32}
BASE=${BASE:-none}
MODES=${MODES:-"identity-layer axum-from-fn floor floor-handler basic hs256 hs256-cached hs256-cached-handler rs256-cached session session-handler"}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q ${LOAD_FEATURES:+--features "$LOAD_FEATURES"}
. ./lib.sh

# load PORT PID HEADER SECONDS: prints "req/s p50-ms p99-ms cpu-us-per-request".
load() {
  local args=() c0 c1 w
  [ -n "$3" ] && args=(-H "$3")
  c0=$(cpu_ticks "$2")
  w=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$4s" --latency "${args[@]}" "http://127.0.0.1:$1/")
  c1=$(cpu_ticks "$2")
  echo "$w" | grep -q 'Non-2xx' && { echo "non-2xx answers on port $1" >&2; exit 1; }
  echo "$w" | awk -v c0="$c0" -v c1="$c1" -v ticks="$TICKS" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /requests in/ { n = $1 }
    END { printf "%s %s %s %.3f\n", rps, p50, p99, (c1 - c0) * 1e6 / ticks / n }'
}

printf '%-22s %-22s %5s | %-20s | %-20s | %-7s %-7s\n' mode baseline pairs 'req/s B/A med [q1-q3]' 'cpu B/A med [q1-q3]' 'p50 B/A' 'p99 B/A'
for mode in $MODES; do
  base=$BASE
  [ "$BASE" = same ] && base="none-as-$mode"
  start_server "$base" 39131; pa=$PID; ha=$HEADER
  start_server "$mode" 39132; pb=$PID; hb=$HEADER
  load 39131 "$pa" "$ha" 1 >/dev/null; load 39132 "$pb" "$hb" 1 >/dev/null   # warm-up
  raw=$(mktemp)
  for i in $(seq "$PAIRS"); do
    if [ $((i % 2)) -eq 1 ]; then
      a=$(load 39131 "$pa" "$ha" "$SECS"); b=$(load 39132 "$pb" "$hb" "$SECS")
    else
      b=$(load 39132 "$pb" "$hb" "$SECS"); a=$(load 39131 "$pa" "$ha" "$SECS")
    fi
    echo "$a $b" >>"$raw"
  done
  kill "$pa" "$pb"; wait "$pa" "$pb" 2>/dev/null || true
  awk -v mode="$mode" -v base="$base" '
    function q(arr, n, f,    i, j, t, k, s) {
      for (i = 1; i <= n; i++) s[i] = arr[i]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
      k = 1 + f * (n - 1); i = int(k); return i >= n ? s[n] : s[i] + (k - i) * (s[i + 1] - s[i])
    }
    { n++; r[n] = $5 / $1; c[n] = $8 / $4; a50[n] = $2; b50[n] = $6; a99[n] = $3; b99[n] = $7 }
    END {
      printf "%-22s %-22s %5d | %.2f [%.2f-%.2f]     | %.2f [%.2f-%.2f]     | %-7.2f %-7.2f\n", mode, base, n,
        q(r, n, 0.5), q(r, n, 0.25), q(r, n, 0.75), q(c, n, 0.5), q(c, n, 0.25), q(c, n, 0.75),
        q(b50, n, 0.5) / q(a50, n, 0.5), q(b99, n, 0.5) / q(a99, n, 0.5)
    }' "$raw"
  rm -f "$raw"
done
