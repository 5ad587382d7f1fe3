# Input: run.sh raw lines (mode status req/s p99 cpu-us/req non-2xx), several passes.
# Output: per mode the mean req/s, p99 (ms) and CPU-µs per request, ratios to `none`,
# and for uncached JWT modes the CPU ratio to the limit mode of the same algorithm.
function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
{
  if (!($1 in n)) order[++count] = $1
  n[$1]++; rps[$1] += $3; p99[$1] += ms($4); cpu[$1] += $5
}
END {
  printf "%-22s %10s %7s %9s %7s %10s %7s %9s\n", "mode", "req/s", "x none", "p99 ms", "x none", "cpu-us/req", "x none", "x limit"
  nr = rps["none"] / n["none"]; np = p99["none"] / n["none"]; nc = cpu["none"] / n["none"]
  for (i = 1; i <= count; i++) {
    m = order[i]; r = rps[m] / n[m]; p = p99[m] / n[m]; c = cpu[m] / n[m]
    lim = "limit-" m; lr = ""
    if (lim in n) lr = sprintf("%.2f", c / (cpu[lim] / n[lim]))
    printf "%-22s %10.0f %7.2f %9.2f %7.2f %10.1f %7.2f %9s\n", m, r, r / nr, p, p / np, c, c / nc, lr
  }
}
