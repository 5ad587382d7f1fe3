# Shared by run.sh and pairs.sh (sourced): the server binary, its CPU time, and starting
# one mode.

BIN=target/release/portcullis-load
TICKS=$(getconf CLK_TCK)

# cpu_ticks PID: user + system time of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_server MODE PORT: serves MODE on core 0 and waits until it is ready; sets PID and
# HEADER (the credential to send: printed by the server, or a session cookie from
# POST /login for modes that print LOGIN).
start_server() {
  local out
  out=$(mktemp)
  taskset -c 0 "$BIN" "$1" "127.0.0.1:$2" >"$out" 2>/dev/null &
  PID=$!
  for _ in $(seq 200); do grep -q READY "$out" && break; sleep 0.05; done
  grep -q READY "$out" || { echo "mode $1 did not start" >&2; rm -f "$out"; exit 1; }
  HEADER=$(sed -n 's/^HEADER //p' "$out")
  if grep -q '^LOGIN' "$out"; then
    HEADER="Cookie: $(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$2/login" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)"
  fi
  rm -f "$out"
}
