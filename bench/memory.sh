#!/usr/bin/env bash
# Memory of weir, nginx and HAProxy on the topology of bench/run.sh (one worker each,
# pinned to CPU 0; one backend nginx and the clients on CPU 1):
#
#   1. RSS idle, right after start
#   2. CONNS (10,000) idle keep-alive HTTP/1.1 client connections: each sends one
#      `GET /` with Host svc, reads the response and stays open. Reported: RSS with
#      them open, (that − RSS before) / CONNS in KB per connection, and how many were
#      still open and answering a second request afterwards
#   3. RSS once they are closed, then after a short load (wrk -t1 -c64, LOAD_DURATION
#      10 s), and the peak (VmHWM)
#
#   bench/memory.sh                      # all three, ~1.5 min
#   ONLY=weir bench/memory.sh            # weir alone
#   WEIR=/path/to/weir CONNS=5000 LOAD_DURATION=5 bench/memory.sh
#
# RSS is VmRSS from /proc (nginx: master + worker, so the shared binary pages count
# twice; the per-connection figure is all in the worker).
set -euo pipefail
invoked="$0"
[ -n "${WEIR:-}" ] && WEIR=$(realpath "$WEIR")
cd "$(dirname "$0")/.."

CONNS=${CONNS:-10000}
LOAD_DURATION=${LOAD_DURATION:-10}
. bench/lib.sh
cmdline="CONNS=$CONNS LOAD_DURATION=$LOAD_DURATION"
[ -n "${ONLY:-}" ] && cmdline+=" ONLY=\"$ONLY\""
[ -n "${WEIR:-}" ] && cmdline+=" WEIR=$WEIR"
cmdline+=" $invoked"

install_tools
# Every process started from here inherits this: the client holds CONNS sockets, each
# proxy CONNS client sockets plus its upstream ones. (Unprivileged, the soft limit can
# only go up to the hard one.)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt $((CONNS + 500)) ]; then
  echo "WARNING: the fd limit is $fd_limit, below CONNS=$CONNS plus upstream sockets; expect refused connections" >&2
fi
setup_work
choose_ports
resolve_weir
# HAProxy sizes itself from maxconn (it wants about 2 fds per connection, for the
# server side; here the server side is a few shared connections).
HAPROXY_MAXCONN=$((CONNS + 200)) write_configs

cat > "$work/hold.py" <<'PY'
# Opens N keep-alive HTTP/1.1 connections, one GET each, keeps them open; prints one
# JSON line, then on "check" sends a second GET on each still-open connection and
# prints another; "close" (or end of input) closes them all.
import asyncio, collections, json, sys, time

host, port, n, authority = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
REQ = ("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench-memory\r\n\r\n" % authority).encode()


async def get(r, w):
    w.write(REQ)
    await w.drain()
    head = (await r.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    hdrs = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip().lower()
    if "content-length" in hdrs:
        await r.readexactly(int(hdrs["content-length"]))
    elif "chunked" in hdrs.get("transfer-encoding", ""):
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            await r.readexactly(size + 2)
            if size == 0:
                break
    if hdrs.get("connection") == "close":
        raise ConnectionError("server sent connection: close")
    return status


async def main():
    sem = asyncio.Semaphore(200)
    conns = [None] * n
    errors = collections.Counter()

    async def one(i, first):
        async with sem:
            try:
                if first:
                    conns[i] = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
                st = await asyncio.wait_for(get(*conns[i]), 10)
                if not 200 <= st < 300:
                    raise ValueError("status %d" % st)
                return True
            except Exception as e:
                errors["%s: %s" % (type(e).__name__, str(e)[:60])] += 1
                if conns[i] is not None:
                    conns[i][1].close()
                    conns[i] = None
                return False

    t = time.time()
    ok = sum(await asyncio.gather(*(one(i, True) for i in range(n))))
    print(json.dumps({"held": ok, "seconds": round(time.time() - t, 1), "errors": dict(errors.most_common(3))}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "check":
            errors.clear()
            alive = sum(await asyncio.gather(*(one(i, False) for i in range(n) if conns[i] is not None)))
            print(json.dumps({"alive": alive, "errors": dict(errors.most_common(3))}), flush=True)
        else:
            break
    for c in conns:
        if c is not None:
            c[1].close()


asyncio.run(main())
PY

results=$work/results.tsv
: > "$results"
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$results"; }
fds() { # open fds of a process and its children
  local t=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do t=$((t + $(ls "/proc/$p/fd" 2>/dev/null | wc -l))); done
  echo $t
}
hwm_kb() {
  local t=0 p r
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    r=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    t=$((t + ${r:-0}))
  done
  echo $t
}

start_backend
for p in $PROXIES; do
  start_proxy "$p"
  sleep 1
  put "$p" rss_idle "$(rss_kb "${PID[$p]}")"
  put "$p" idle_fds "$(fds "${PID[$p]}")"
done

declare -A PORT_H1=([nginx]=$NGINX_H1 [haproxy]=$HAPROXY_H1 [weir]=$WEIR_MESH)
start=$(date +%s)
for p in $PROXIES; do
  pid=${PID[$p]}
  echo "$(label "$p"): opening $CONNS connections" >&2
  before=$(rss_kb "$pid")
  coproc HOLD { taskset -c "$LOAD_CPU" python3 "$work/hold.py" "$LOOP" "${PORT_H1[$p]}" "$CONNS" svc 2>"$work/hold.$p.err"; }
  hold_pid=$HOLD_PID; pids+=("$hold_pid")
  exec {hold_out}<&"${HOLD[0]}" {hold_in}>&"${HOLD[1]}"
  line=""
  read -r -t 300 line <&"$hold_out" || true
  sleep 2
  with=$(rss_kb "$pid")
  put "$p" conn_fds "$(fds "$pid")"
  kill -0 "$pid" 2>/dev/null || echo "WARNING: $(label "$p") exited while the connections were opened" >&2
  echo check >&"$hold_in"
  check=""
  read -r -t 300 check <&"$hold_out" || true
  echo close >&"$hold_in"
  exec {hold_in}>&- {hold_out}<&-
  wait "$hold_pid" 2>/dev/null || true
  python3 - "$line" "$check" "$CONNS" "$before" "$with" "$p" >> "$results" <<'PY'
import json, sys
line, check, conns, before, with_, p = sys.argv[1:]
try:
    d = json.loads(line)
except ValueError:
    d = {"held": 0, "errors": {"client output": line[:80]}}
try:
    c = json.loads(check)
except ValueError:
    c = {"alive": 0, "errors": {"client output": check[:80]}}
print("%s\tconn_rss\t%s" % (p, with_))
print("%s\theld\t%d" % (p, d["held"]))
print("%s\talive\t%d" % (p, c["alive"]))
print("%s\topen_seconds\t%s" % (p, d.get("seconds", "")))
if d["held"]:
    print("%s\tkb_per_conn\t%.2f" % (p, (int(with_) - int(before)) / d["held"]))
errs = "; ".join("%s ×%d" % kv for kv in list(d["errors"].items()) + list(c["errors"].items()))
if errs:
    print("%s\terrors\t%s" % (p, errs))
PY
  sleep 2
  put "$p" closed_rss "$(rss_kb "$pid")"
  put "$p" closed_fds "$(fds "$pid")"
  echo "$(label "$p"): load, wrk -t1 -c64 -d${LOAD_DURATION}s" >&2
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${LOAD_DURATION}s" -H 'Host: svc' "${URL_H1[$p]}" 2>&1 || true)
  put "$p" load_rps "$(sed -n 's/^Requests\/sec: *//p' <<<"$out")"
  bad=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' <<<"$out")
  sock=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' <<<"$out")
  [ -n "$bad$sock" ] && put "$p" load_errors "${bad:+$bad non-2xx}${sock:+ socket errors $sock}"
  sleep 1
  put "$p" after_rss "$(rss_kb "$pid")"
  put "$p" hwm "$(hwm_kb "$pid")"
done
elapsed=$(($(date +%s) - start))

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/||')
haproxy_v=$(haproxy -v 2>&1 | awk 'NR == 1 {sub(/-.*/, "", $3); print $3}')
echo
ports_note=""
[ "$PORT_OFFSET" != 0 ] && ports_note=" (ports +$PORT_OFFSET: the usual ones were in use)"
echo "\`$cmdline\`$ports_note on $(nproc) × $cpu_model, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); fd limit $fd_limit; ${elapsed}s"
echo
python3 - "$results" "$CONNS" "$LOAD_DURATION" "$nginx_v" "$haproxy_v" "$WEIR_LABEL" "$PROXIES" <<'PY'
import sys
path, conns, load_s, nginx_v, haproxy_v, weir_label, proxies = sys.argv[1:]
proxies = proxies.split()
v = {}
for line in open(path):
    p, k, val = line.rstrip("\n").split("\t", 2)
    v[(p, k)] = val
cols = ["nginx", "haproxy", "weir"]
names = {"nginx": "nginx", "haproxy": "HAProxy"}

def num(p, k):
    try:
        return float(v[(p, k)])
    except (KeyError, ValueError):
        return None

def mb(x):
    return "–" if x is None else "%.1f" % (x / 1024)

def row(title, key, show, lower_better=True):
    cells = [show(num(p, key)) if p in proxies else "–" for p in cols]
    w = num("weir", key) if "weir" in proxies else None
    others = [(num(p, key), p) for p in ("nginx", "haproxy") if p in proxies and num(p, key) is not None]
    r = "–"
    if w is not None and others:
        best = min(others) if lower_better else max(others)
        if best[0] > 0:
            r = "%.2f (vs %s)" % (w / best[0], names[best[1]])
    print("| %s | %s | %s |" % (title, " | ".join(cells), r))

c = "{:,}".format(int(conns))
print("| figure | nginx %s | HAProxy %s | %s | weir ÷ best |" % (nginx_v, haproxy_v, weir_label))
print("|---|--:|--:|--:|--:|")
row("RSS idle, MB", "rss_idle", mb)
row("RSS with %s idle keep-alive HTTP/1.1 connections, MB" % c, "conn_rss", mb)
row("KB per idle connection", "kb_per_conn", lambda x: "–" if x is None else "%.1f" % x)
cells = []
for p in cols:
    cells.append("%d / %d" % (num(p, "held"), num(p, "alive")) if p in proxies and num(p, "held") is not None else "–")
print("| connections answered / still answering a second GET (of %s) | %s | |" % (c, " | ".join(cells)))
row("RSS 2 s after closing them, MB", "closed_rss", mb)
cells = []
for p in cols:
    cells.append(" / ".join("%d" % num(p, k) if num(p, k) is not None else "?" for k in ("idle_fds", "conn_fds", "closed_fds")) if p in proxies else "–")
print("| open fds: idle / with the connections / after closing them | %s | |" % " | ".join(cells))
row("RSS after load (wrk 64 connections, %s s), MB" % load_s, "after_rss", mb)
row("peak RSS (VmHWM), MB", "hwm", mb)
print()
print("Load run: " + "; ".join("%s %s req/s" % (names.get(p, p), "{:,.0f}".format(num(p, "load_rps") or 0)) for p in proxies)
      + ". Seconds to open and answer the %s connections: " % c
      + "; ".join("%s %s" % (names.get(p, p), v.get((p, "open_seconds"), "?")) for p in proxies) + ".")
for p in proxies:
    for k in ("errors", "load_errors"):
        if (p, k) in v:
            print("**WARNING** %s %s: %s" % (names.get(p, p), "connections" if k == "errors" else "load run", v[(p, k)]))
PY
