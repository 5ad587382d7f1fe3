#!/usr/bin/env bash
# Instructions per request through the router, counted on this CPU: `benches/ops.rs`
# single-stepped with ptrace (benches/native_count.c, built with the machine's C
# compiler). Unlike callgrind, this runs the CPU's own instruction set, so aws-lc hashes
# with SHA-NI where the CPU has it. Each row runs the measured loop 11 and 31 times and
# divides the difference by 20, so first-call costs stay out. Slow: about 100 000
# instructions per second.
#
#   benches/native-instructions.sh
#   MODES="router/none router/session" benches/native-instructions.sh
#   OPS_BIN=/tmp/ops-before MODES=router/floor benches/native-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODES=${MODES:-"router/none router/none-as-session router/floor router/bearer-cached router/session"}
. benches/native-setup.sh
printf '%-24s %14s\n' operation instructions/op
for mode in $MODES; do
  a=$("$COUNTER" "$OFFSET" "$BIN" "$mode" 11)
  b=$("$COUNTER" "$OFFSET" "$BIN" "$mode" 31)
  printf '%-24s %14d\n' "$mode" $(( (b - a) / 20 ))
done
