#!/usr/bin/env bash
# Direct vs through weir, on this machine: HTTP/1.1 keep-alive and HTTP/2 (h2c).
#
#   bench/run.sh                 # 10 s per scenario
#   DURATION=30 bench/run.sh     # longer runs
#   COMPARE=1 bench/run.sh       # also nginx and HAProxy doing the same job (h1)
#
# Measures, for each protocol: maximum throughput (closed loop), p50/p99 latency at a
# fixed rate (open loop, oha), weir's CPU time per 10k requests (from /proc) and its
# RSS. With two cores, the proxy is pinned to CPU 0 and the backend and load generator
# to CPU 1, so the proxy's cost is not hidden by contention with its own load.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATE=${RATE:-2000}
BACKEND=127.0.0.1:18080
WEIR_H1=127.0.0.1:15001
ADMIN=127.0.0.1:15900
NGINX=127.0.0.1:18081
HAPROXY=127.0.0.1:18082

# --- tools --------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if [ "${COMPARE:-0}" = 1 ]; then
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v haproxy >/dev/null || missing+=(haproxy)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  (apt-get update -qq && apt-get install -y -qq "${missing[@]}") >&2
fi
if ! command -v oha >/dev/null; then
  echo "installing oha from crates.io (a few minutes, once)" >&2
  cargo install oha --locked --quiet >&2
fi

cargo build --release --quiet -p weir
cargo build --release --quiet -p weir-testkit --example bench_backend

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 1 target/release/examples/bench_backend "$BACKEND" 1 & pids+=($!)

cat > "$work/bench.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: bench}
spec:
  hosts: [svc.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${BACKEND##*:}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-h2, namespace: bench}
spec:
  hosts: [svc-h2.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http2, protocol: HTTP2}]
  endpoints: [{address: 127.0.0.1, ports: {http2: ${BACKEND##*:}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc, namespace: bench}
spec:
  hosts: [svc, svc-h2]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: svc}}]
  - match: [{authority: {prefix: svc-h2}}]
    route: [{destination: {host: svc-h2}}]
  - route: [{destination: {host: svc}}]
YAML

taskset -c 0 target/release/weir run -c "$work" --namespace bench --mesh-listener "$WEIR_H1" \
  --admin "$ADMIN" --access-log-format off >/dev/null 2>"$work/weir.log" & WEIR_PID=$!; pids+=($WEIR_PID)
for _ in $(seq 100); do curl -sf "http://$ADMIN/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://$ADMIN/ready" >/dev/null || { cat "$work/weir.log"; exit 1; }

if [ "${COMPARE:-0}" = 1 ]; then
  cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server $BACKEND; keepalive 128; }
  server {
    listen $NGINX;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
  taskset -c 0 nginx -c "$work/nginx.conf" -g 'daemon off;' & NGINX_PID=$!; pids+=($NGINX_PID)
  cat > "$work/haproxy.cfg" <<HAP
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind $HAPROXY
  default_backend be
backend be
  http-reuse always
  server s1 $BACKEND
HAP
  taskset -c 0 haproxy -f "$work/haproxy.cfg" & HAPROXY_PID=$!; pids+=($HAPROXY_PID)
  sleep 0.5
fi

# CPU ticks of a process and its children (nginx serves from worker processes).
ticks() { local t=0 p; for p in "$1" $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
CLK=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk: requests/sec and total requests.
wrk_run() { # url host
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" -H "Host: $2" "$1" 2>&1
}
h2_run() { # url authority
  taskset -c 1 h2load -c16 -m32 -D "$DURATION" -H ":authority: $2" "$1" 2>&1
}
oha_run() { # url host extra-args
  taskset -c 1 oha -z "${DURATION}s" -q "$RATE" --no-tui --output-format json -H "Host: $2" $3 "$1" 2>/dev/null
}

parse_wrk='import re,sys; t=sys.stdin.read(); print(re.search(r"Requests/sec:\s+([\d.]+)",t).group(1), re.search(r"(\d+) requests in",t).group(1))'
parse_h2='import re,sys; t=sys.stdin.read(); print(re.search(r"finished in [\d.]+s, ([\d.]+) req/s",t).group(1), re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded",t).group(1))'
parse_oha='import json,sys; d=json.load(sys.stdin); p=d["latencyPercentiles"]; n=sum(d["statusCodeDistribution"].values()); print("%.3f %.3f %d" % (p["p50"]*1000, p["p99"]*1000, n))'

row() { printf '| %-34s | %12s | %10s | %10s | %12s |\n' "$@"; }
# Maximum throughput (closed loop), then a fixed-rate run (open loop) for latency and
# CPU: at a fixed rate every proxy does the same work, so CPU per request compares.
measure() { # name pid tool url host
  local name=$1 pid=$2 tool=$3 url=$4 host=$5 out lat before after cpu
  case $tool in
    wrk) out=$(wrk_run "$url" "$host" | python3 -c "$parse_wrk") ;;
    h2) out=$(h2_run "$url" "$host" | python3 -c "$parse_h2") ;;
  esac
  before=$( [ -n "$pid" ] && ticks "$pid" || echo 0 )
  case $tool in
    wrk) lat=$(oha_run "$url" "$host" "" | python3 -c "$parse_oha") ;;
    h2) lat=$(oha_run "$url" "$host" "--http2" | python3 -c "$parse_oha") ;;
  esac
  after=$( [ -n "$pid" ] && ticks "$pid" || echo 0 )
  local n=${lat##* }
  if [ -n "$pid" ] && [ "$n" -gt 0 ]; then
    cpu=$(python3 -c "print('%.0f' % (($after-$before)*1000/$CLK/$n*10000))")
  else cpu='-'; fi
  row "$name" "$(printf '%.0f' "${out% *}")" "$(echo "$lat" | cut -d' ' -f1)" "$(echo "$lat" | cut -d' ' -f2)" "$cpu"
}

echo
echo "weir $(target/release/weir --version | cut -d' ' -f2) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); ${DURATION}s per run, latency at ${RATE} req/s"
echo
row "scenario" "max req/s" "p50 ms" "p99 ms" "CPU ms/10k"
# (p50/p99 and CPU at the fixed rate; CPU in ms per 10,000 requests, proxy process only)
row "----------------------------------" "------------" "----------" "----------" "------------"
measure "HTTP/1.1 direct" "" wrk "http://$BACKEND/" "svc"
measure "HTTP/1.1 through weir" "$WEIR_PID" wrk "http://$WEIR_H1/" "svc"
if [ "${COMPARE:-0}" = 1 ]; then
  measure "HTTP/1.1 through nginx" "$NGINX_PID" wrk "http://$NGINX/" "svc"
  measure "HTTP/1.1 through HAProxy" "$HAPROXY_PID" wrk "http://$HAPROXY/" "svc"
fi
measure "HTTP/2 direct" "" h2 "http://$BACKEND/" "svc"
measure "HTTP/2 through weir (h2 upstream)" "$WEIR_PID" h2 "http://$WEIR_H1/" "svc-h2"
echo
echo "weir RSS after the runs: $(rss_kb "$WEIR_PID") kB (peak $(awk '/^VmHWM/ {print $2}' "/proc/$WEIR_PID/status") kB)"
