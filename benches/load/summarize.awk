# Input: run.sh raw lines (mode status req/s p99 cpu-us/req non-2xx), several passes.
# Output per mode: mean req/s and server CPU-µs per request over the passes, and the
# median p99 (ms; one hiccup of the VM in one pass does not move it);
# ratios to `none`; to `none-as-<mode>` (the no-auth app sent the identical request, so
# the credential's bytes cancel out); and, for uncached JWT modes, the CPU ratio to the
# `limit-<alg>` mode (the least work any verifier must do, in the same server loop).
function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "" }
function median(m,    i, j, k, t, a) {
  k = n[m]
  for (i = 1; i <= k; i++) a[i] = lat[m, i]
  for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{
  if (!($1 in n)) order[++count] = $1
  n[$1]++; rps[$1] += $3; lat[$1, n[$1]] = ms($4); cpu[$1] += $5
}
END {
  for (m in n) { rps[m] /= n[m]; p99[m] = median(m); cpu[m] /= n[m] }
  printf "%-24s %9s %7s %8s %7s %7s | %9s %9s %9s | %9s\n", "mode", "req/s", "x none", "p99 ms", "x none", "cpu-us", "same-req:", "req/s x", "p99 x", "cpu x lim"
  for (i = 1; i <= count; i++) {
    m = order[i]; same = "none-as-" m; lim = "limit-" m
    sr = ""; sp = ""; lr = ""
    if (same in n) { sr = ratio(rps[m], rps[same]); sp = ratio(p99[m], p99[same]) }
    if (lim in n) lr = ratio(cpu[m], cpu[lim])
    printf "%-24s %9.0f %7.2f %8.2f %7.2f %7.1f | %9s %9s %9s | %9s\n", m, rps[m], rps[m] / rps["none"], p99[m], p99[m] / p99["none"], cpu[m], "", sr, sp, lr
  }
}
