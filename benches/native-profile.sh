#!/usr/bin/env bash
# Where one router request's instructions go, per function, counted on this CPU: what
# `native-instructions.sh` counts, traced (benches/native_count.c with TRACE=FILE) and
# mapped to functions with `nm`. Prints, per function, the instructions per request of
# mode B minus those of mode A (each from 11 and 31 runs of the measured loop, the
# difference divided by 20), largest last. `external` is code outside the executable
# (libc, the vDSO). Slow, like native-instructions.sh. Needs GNU awk (gawk).
#
#   benches/native-profile.sh floor-as-session session
#   OPS_BIN=/tmp/ops-before benches/native-profile.sh floor bearer-cached
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 MODE_A MODE_B (router modes of benches/ops.rs)" >&2; exit 2; }
. benches/native-setup.sh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
nm -C --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/' | sort > "$WORK/symbols"
# Per function: instructions in one trace, as "name<TAB>count".
per_function() {
  sort "$1" | uniq -c | gawk -v symbols="$WORK/symbols" '
    BEGIN {
      while ((getline line < symbols) > 0) {
        n++; addr[n] = strtonum("0x" substr(line, 1, 16)); name[n] = substr(line, 20)
        sub(/::h[0-9a-f]{16}$/, "", name[n])
      }
    }
    {
      a = strtonum("0x" $2); f = "external"
      if (a <= addr[n] + 16777216) {
        lo = 1; hi = n
        while (lo < hi) { mid = int((lo + hi + 1) / 2); if (addr[mid] <= a) lo = mid; else hi = mid - 1 }
        if (addr[lo] <= a) f = name[lo]
      }
      count[f] += $1
    }
    END { for (f in count) printf "%s\t%d\n", f, count[f] }'
}
for mode in "$1" "$2"; do
  for runs in 11 31; do
    TRACE="$WORK/trace" "$COUNTER" "$OFFSET" "$BIN" "router/$mode" "$runs" > /dev/null
    per_function "$WORK/trace" > "$WORK/$mode.$runs"
  done
done
gawk -F'\t' -v a11="$WORK/$1.11" -v a31="$WORK/$1.31" -v b11="$WORK/$2.11" -v b31="$WORK/$2.31" '
  FILENAME == a11 { d[$1] += $2 / 20 } FILENAME == a31 { d[$1] -= $2 / 20 }
  FILENAME == b11 { d[$1] -= $2 / 20 } FILENAME == b31 { d[$1] += $2 / 20 }
  END { for (f in d) if (d[f] >= 2 || d[f] <= -2) { printf "%10.1f  %s\n", d[f], f; t += d[f] }
        printf "%10.1f  total (rows of 2 or more)\n", t }
' "$WORK/$1.11" "$WORK/$1.31" "$WORK/$2.11" "$WORK/$2.31" | sort -g
