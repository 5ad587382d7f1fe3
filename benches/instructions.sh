#!/usr/bin/env bash
# Instructions per JWT verification, counted by valgrind (callgrind), which is immune to
# the noise of a shared VM: runs each operation 1 and 1+N times and divides the difference.
# Only the measured loop is counted (set-up and aws-lc's entropy gathering, whose count
# varies from run to run, are left out).
#
#   N=100 benches/instructions.sh                                    # default features
#   FEATURES=metrics N=100 benches/instructions.sh                   # feature `metrics`, no recorder
#   PORTCULLIS_BENCH_PROMETHEUS=1 FEATURES=metrics N=100 benches/instructions.sh
#                                                                     # with the Prometheus recorder
#   MODES="router/none router/session" N=100 benches/instructions.sh # only these rows
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
if [ -n "${FEATURES:-}" ]; then
  cargo bench --bench ops --no-run --features "$FEATURES" 2>/dev/null
else
  cargo bench --bench ops --no-run 2>/dev/null
fi
BIN=$(ls -t target/release/deps/ops-* | grep -v '\.d$' | head -1)
count() {
  valgrind --tool=callgrind --toggle-collect='*ops::measured*' --callgrind-out-file=/dev/null "$BIN" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-24s %14s\n' operation instructions/op
if [ -n "${MODES:-}" ]; then
  for mode in $MODES; do
    a=$(count "$mode" 1); b=$(count "$mode" $((N * 10 + 1)))
    printf '%-24s %14d\n' "$mode" $(( (b - a) / (N * 10) ))
  done
  exit 0
fi
for alg in HS256 RS256 ES256 EdDSA; do
  for what in portcullis jsonwebtoken limit; do
    a=$(count "$what/$alg" 1); b=$(count "$what/$alg" $((N + 1)))
    printf '%-24s %14d\n' "$what/$alg" $(( (b - a) / N ))
  done
done
a=$(count cache_hit/RS256 1); b=$(count cache_hit/RS256 $((N * 10 + 1)))
printf '%-24s %14d\n' "cache_hit" $(( (b - a) / (N * 10) ))
for mode in none none-as-bearer-cached none-as-session identity-layer from-fn floor floor-handler bearer-cached bearer-cached-handler bearer-cached-revocations session session-handler session-limited basic basic-limited; do
  a=$(count "router/$mode" 1); b=$(count "router/$mode" $((N * 10 + 1)))
  printf '%-24s %14d\n' "router/$mode" $(( (b - a) / (N * 10) ))
done
