# Sourced by native-instructions.sh and native-profile.sh (from the repository root):
# sets BIN (the `ops` bench binary, or OPS_BIN for a build kept aside), COUNTER (the
# single-stepping counter, built from native_count.c) and OFFSET (`ops::measured` in BIN).
if [ -n "${OPS_BIN:-}" ]; then
  BIN=$OPS_BIN   # a build kept aside, to compare two builds side by side
else
  cargo bench --bench ops --no-run 2>/dev/null
  BIN=$(ls -t target/release/deps/ops-* | grep -v '\.d$' | head -1)
fi
COUNTER=target/release/native_count
cc -O2 -Wall -o "$COUNTER" benches/native_count.c
OFFSET=$(nm "$BIN" | sed -n 's/^\([0-9a-f]*\) t _ZN3ops8measured.*/\1/p' | head -1)
[ -n "$OFFSET" ] || { echo "ops::measured not found in $BIN" >&2; exit 1; }
