#!/usr/bin/env bash
# weir, nginx and HAProxy side by side, one run, one table with ratios.
#
#   bench/run.sh                          # 3 interleaved repetitions of 10 s runs (~7 min)
#   DURATION=3 REPS=1 bench/run.sh        # a quick look
#   ONLY=weir bench/run.sh                # weir alone (ONLY="nginx weir" works too)
#   WEIR=/path/to/other/weir bench/run.sh # another weir binary (default: build target/release/weir)
#   RATE=6000                             # the open-loop rate of the latency/CPU rows
#   KEEP_WORK=1                           # keep the work dir (configs, raw tool output)
#   PORT_OFFSET=N                         # move every port by N (done by itself if one is taken)
#
# Topology (see bench/lib.sh): each proxy pinned to CPU 0 with one worker; one backend
# nginx (one worker) and the load generators pinned to CPU 1; keep-alive on both sides;
# the job: Host `svc`, `x-canary: 1` -> v2, else 90/10 v1/v2, other Hosts 404.
# For each repetition, the backend alone (the reference line), then each proxy in turn,
# runs three scenarios:
#   rate  oha, HTTP/1.1, 16 connections, open loop at RATE req/s (--latency-correction:
#         latency counts from when a request was due, not when it was sent): p50, p99,
#         the proxy's CPU µs per request
#   sat   wrk -t1 -c64, HTTP/1.1, closed loop: req/s, CPU µs per request
#   h2    h2load -c4 -m16, h2c downstream: req/s, CPU µs per request. Upstream: nginx
#         HTTP/1.1 (it cannot proxy h2), HAProxy h2c, weir h2c (HTTP2 ServiceEntry)
# CPU is utime+stime from /proc/PID/stat (nginx: master + worker) before and after each
# run, over the 2xx responses of that run. Every cell is the median over REPS; every
# response must be 2xx, and a warning row counts those that were not.
set -euo pipefail
invoked="$0"
[ -n "${WEIR:-}" ] && WEIR=$(realpath "$WEIR")
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
REPS=${REPS:-3}
RATE=${RATE:-6000}
. bench/lib.sh

cmdline="DURATION=$DURATION REPS=$REPS RATE=$RATE"
[ -n "${ONLY:-}" ] && cmdline+=" ONLY=\"$ONLY\""
[ -n "${WEIR:-}" ] && cmdline+=" WEIR=$WEIR"
cmdline+=" $invoked"

install_tools
install_oha
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
setup_work
choose_ports
resolve_weir
write_configs
mkdir -p "$work/raw"
results=$work/results.tsv
: > "$results"

start_backend
for p in $PROXIES; do
  start_proxy "$p"
  sleep 0.5
  printf '0\t%s\trss_idle\t%s\n' "$p" "$(rss_kb "${PID[$p]}")" >> "$results"
done

checks=()
for p in $PROXIES; do checks+=("$(check_routing "$p" || true)"); done

# One short warm-up per proxy (upstream pools filled, allocator grown), not measured.
for p in $PROXIES; do
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d1s -H 'Host: svc' "${URL_H1[$p]}" >/dev/null 2>&1 || true
  taskset -c "$LOAD_CPU" h2load -c4 -m16 -D 1 -H ":authority: ${HOST_H2[$p]}" "${URL_H2[$p]}" >/dev/null 2>&1 || true
done

# Parses one run's output into "rep name metric value" lines.
PARSE='
import json, re, sys
sc, path, name, rep, dticks, clk, s0, s1 = sys.argv[1:9]
dticks, clk, elapsed = int(dticks), int(clk), float(s1) - float(s0)
text = open(path, errors="replace").read()
out = {}
try:
    if sc == "rate":
        d = json.loads(text)
        codes = {int(k): v for k, v in d["statusCodeDistribution"].items()}
        n = sum(codes.values())
        ok = sum(v for k, v in codes.items() if 200 <= k < 300)
        errs = {k: v for k, v in d["errorDistribution"].items() if "aborted due to deadline" not in k}
        out["rate_p50"] = d["latencyPercentiles"]["p50"] * 1000
        out["rate_p99"] = d["latencyPercentiles"]["p99"] * 1000
        out["rate_achieved"] = n / d["summary"]["total"]
        out["rate_bad"] = n - ok + sum(errs.values())
    elif sc == "sat":
        ok = int(re.search(r"(\d+) requests in", text).group(1))
        non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        bad = (int(non2.group(1)) if non2 else 0) + (sum(map(int, sock.groups())) if sock else 0)
        ok -= int(non2.group(1)) if non2 else 0
        out["sat_rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        out["sat_bad"] = bad
    elif sc == "h2":
        rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text).group(1))
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        ok = int(codes.group(1))
        not2 = sum(int(codes.group(i)) for i in (2, 3, 4))
        out["h2_rps"] = rps
        # (h2load may count one more 2xx than "done": a stream cut at the deadline)
        out["h2_bad"] = max(int(m.group(5)), not2) + int(m.group(6)) + int(m.group(7))
except Exception as e:  # a run that produced no parsable output counts as an error
    print("cannot parse %s run of %s: %s" % (sc, name, e), file=sys.stderr)
    out = {sc + "_bad": 1, sc + "_failed": 1}
    ok = 0
if name != "direct" and ok > 0:
    out[sc + "_cpu"] = dticks / clk * 1e6 / ok
    out[sc + "_busy"] = dticks / clk / elapsed * 100
for k, v in out.items():
    print("%s\t%s\t%s\t%r" % (rep, name, k, v))
'

measure() { # rep name scenario
  local rep=$1 n=$2 sc=$3 pid="" out=$work/raw/$2.$3.$1 t0=0 t1=0 s0 s1
  [ "$n" != direct ] && pid=${PID[$n]}
  [ -n "$pid" ] && t0=$(ticks "$pid")
  s0=$(date +%s.%N)
  case $sc in
    rate) taskset -c "$LOAD_CPU" oha -z "${DURATION}s" -q "$RATE" -c 16 --latency-correction --no-tui \
            --output-format json -H 'Host: svc' "${URL_H1[$n]}" >"$out" 2>"$out.err" || true ;;
    sat) taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" -H 'Host: svc' "${URL_H1[$n]}" >"$out" 2>&1 || true ;;
    h2) taskset -c "$LOAD_CPU" h2load -c4 -m16 -D "$DURATION" -H ":authority: ${HOST_H2[$n]}" \
          "${URL_H2[$n]}" >"$out" 2>&1 || true ;;
  esac
  s1=$(date +%s.%N)
  [ -n "$pid" ] && t1=$(ticks "$pid")
  python3 -c "$PARSE" "$sc" "$out" "$n" "$rep" "$((t1 - t0))" "$CLK_TCK" "$s0" "$s1" >> "$results"
  sleep 0.5
}

start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPS"); do
  echo "repetition $rep/$REPS" >&2
  for n in direct $PROXIES; do
    for sc in rate sat h2; do measure "$rep" "$n" "$sc"; done
  done
done
for p in $PROXIES; do
  printf '0\t%s\trss_after\t%s\n' "$p" "$(rss_kb "${PID[$p]}")" >> "$results"
done
elapsed=$(($(date +%s) - start))

# --- report -------------------------------------------------------------------------
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/||')
haproxy_v=$(haproxy -v 2>&1 | awk 'NR == 1 {sub(/-.*/, "", $3); print $3}')
echo
ports_note=""
[ "$PORT_OFFSET" != 0 ] && ports_note=" (ports +$PORT_OFFSET: the usual ones were in use)"
echo "\`$cmdline\`$ports_note on $(nproc) × $cpu_model, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC');" \
  "median of $REPS interleaved repetition(s) of ${DURATION}s runs; load average at start $load_start; ${elapsed}s of load"
echo
python3 - "$results" "$RATE" "$nginx_v" "$haproxy_v" "$WEIR_LABEL" "$PROXIES" "$REPS" <<'PY'
import collections, statistics, sys
path, rate, nginx_v, haproxy_v, weir_label, proxies, reps = sys.argv[1:]
proxies = proxies.split()
vals = collections.defaultdict(list)
for line in open(path):
    rep, name, metric, value = line.rstrip("\n").split("\t")
    vals[(name, metric)].append(float(value))

def med(name, metric):
    v = vals.get((name, metric))
    return statistics.median(v) if v else None

def total(name, metric):
    return sum(vals.get((name, metric), [])) if (name, metric) in vals else None

def fmt(v, kind):
    if v is None:
        return "–"
    if kind == "us":
        return "%.1f" % v if v < 100 else "%.0f" % v
    if kind == "ms":
        return "%.2f" % v if v < 10 else "%.1f" % v
    if kind == "rps":
        return "{:,.0f}".format(v)
    if kind == "mb":
        return "%.1f" % (v / 1024)
    if kind == "pct":
        return "%.0f%%" % v
    return "%g" % v

def ratio(metric, lower_better):
    w = med("weir", metric)
    others = [(med(p, metric), p) for p in ("nginx", "haproxy") if p in proxies and med(p, metric) is not None]
    if w is None or not others or "weir" not in proxies:
        return None, None
    best = min(others) if lower_better else max(others)
    if best[0] == 0:
        return None, None
    return w / best[0], {"nginx": "nginx", "haproxy": "HAProxy"}[best[1]]

def rstr(r):
    return "–" if r[0] is None else "%.2f (vs %s)" % r

cols = ["nginx", "haproxy", "weir"]
head = ["figure", "nginx " + nginx_v, "HAProxy " + haproxy_v, weir_label, "weir ÷ best"]
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] + ["--:"] * 4) + "|")

def row(title, metric, kind, lower_better):
    cells = [fmt(med(p, metric), kind) if p in proxies else "–" for p in cols]
    print("| %s | %s | %s |" % (title, " | ".join(cells), rstr(ratio(metric, lower_better))))

row("HTTP/1.1 CPU µs/request at %s req/s, open loop, 16 connections" % "{:,}".format(int(rate)), "rate_cpu", "us", True)
cells = []
for p in cols:
    cells.append("%s (%s)" % (fmt(med(p, "rate_p99"), "ms"), fmt(med(p, "rate_p50"), "ms")) if p in proxies else "–")
r99, r50 = ratio("rate_p99", True), ratio("rate_p50", True)
rcell = "–" if r99[0] is None else "%.2f (%.2f) (vs %s, %s)" % (r99[0], r50[0], r99[1], r50[1])
if r99[0] is not None and r99[1] == r50[1]:
    rcell = "%.2f (%.2f) (vs %s)" % (r99[0], r50[0], r99[1])
print("| HTTP/1.1 p99 (p50) latency ms at %s req/s | %s | %s |" % ("{:,}".format(int(rate)), " | ".join(cells), rcell))
row("HTTP/1.1 saturation req/s, 64 connections", "sat_rps", "rps", False)
row("HTTP/1.1 CPU µs/request at saturation", "sat_cpu", "us", True)
row("HTTP/2 h2c req/s, 4 connections × 16 streams", "h2_rps", "rps", False)
row("HTTP/2 CPU µs/request", "h2_cpu", "us", True)
cells = []
for p in cols:
    cells.append("%s / %s" % (fmt(med(p, "rss_idle"), "mb"), fmt(med(p, "rss_after"), "mb")) if p in proxies else "–")
ri, ra = ratio("rss_idle", True), ratio("rss_after", True)
rcell = "–" if ri[0] is None else "%.2f / %.2f (vs %s%s)" % (ri[0], ra[0], ri[1], "" if ri[1] == ra[1] else ", " + ra[1])
print("| RSS idle / after load, MB | %s | %s |" % (" | ".join(cells), rcell))

bad = {p: sum(total(p, m) or 0 for m in ("rate_bad", "sat_bad", "h2_bad")) for p in cols + ["direct"] if p in proxies or p == "direct"}
if any(v > 0 for v in bad.values()):
    cells = ["%d" % bad[p] if p in proxies else "–" for p in cols]
    print("| **WARNING: non-2xx responses or errors, all runs** | %s | |" % " | ".join(cells))

print()
print("Reference, no proxy (load generator → backend nginx, both on CPU 1): HTTP/1.1 %s req/s at 64 connections; "
      "h2c %s req/s at 4 × 16; p99 (p50) %s (%s) ms at %s req/s%s." % (
          fmt(med("direct", "sat_rps"), "rps"), fmt(med("direct", "h2_rps"), "rps"),
          fmt(med("direct", "rate_p99"), "ms"), fmt(med("direct", "rate_p50"), "ms"), "{:,}".format(int(rate)),
          "" if not bad.get("direct") else "; %d non-2xx or errors" % bad["direct"]))
print("HTTP/2 upstream: nginx HTTP/1.1 keep-alive (it cannot proxy h2), HAProxy h2c, weir h2c. "
      "RSS: nginx is master + worker; weir and HAProxy one process.")
print()
print("| check (medians) | nginx | HAProxy | weir |")
print("|---|--:|--:|--:|")
def drow(title, metric, kind):
    print("| %s | %s |" % (title, " | ".join(fmt(med(p, metric), kind) if p in proxies else "–" for p in cols)))
drow("achieved rate of the open-loop run, req/s", "rate_achieved", "rps")
drow("proxy CPU busy in the open-loop run, % of its core", "rate_busy", "pct")
drow("proxy CPU busy at HTTP/1.1 saturation", "sat_busy", "pct")
drow("proxy CPU busy in the h2c run", "h2_busy", "pct")
print("| non-2xx responses or errors, all runs | %s |" % " | ".join("%d" % bad[p] if p in proxies else "–" for p in cols))
short = [(p, x) for p in cols for x in vals.get((p, "rate_achieved"), []) if x < 0.95 * float(rate)]
if short:
    print()
    print("**WARNING**: the open-loop run fell short of %s req/s (%s): that proxy could not keep up, or the "
          "load generator was starved; its latency and CPU rows are not at the nominal rate." % (
              rate, ", ".join("%s %.0f" % (p, x) for p, x in short)))
low = [(p, m, x) for p in cols for m in ("sat_busy", "h2_busy") for x in vals.get((p, m), []) if x < 85]
if low:
    runs = sum(len(vals.get((p, m), [])) for p in cols for m in ("sat_busy", "h2_busy"))
    print()
    print("Note: in %d of %d closed-loop runs the proxy's core was under 85%% busy (%s), so something else "
          "limited them (CPU 1, where the load generator and backend run, or other work on the machine); "
          "their req/s understate that proxy." % (len(low), runs, ", ".join("%s %s %.0f%%" % (p, m[:-5], x) for p, m, x in low)))
if int(reps) > 1:
    print()
    print("Per repetition (%s reps):" % reps)
    for metric, kind in (("rate_cpu", "us"), ("rate_p99", "ms"), ("sat_rps", "rps"), ("sat_cpu", "us"), ("h2_rps", "rps"), ("h2_cpu", "us")):
        parts = []
        for p in ["direct"] + cols:
            if (p, metric) in vals:
                parts.append("%s %s" % (p, " ".join(fmt(v, kind) for v in vals[(p, metric)])))
        print("- %s: %s" % (metric, "; ".join(parts)))
PY
echo
for c in "${checks[@]}"; do echo "$c"; done
