#!/usr/bin/env bash
# HTTPS at the edge: weir (a SIMPLE Gateway server, certificate from --credentials)
# beside nginx (`listen ssl`), the same certificate, each pinned to CPU 0 with one
# worker; the backend nginx and the load generators on CPU 1.
#
#   bench/tls.sh                    # 5 s per run
#   DURATION=10 bench/tls.sh
#   WEIR=/path/to/weir bench/tls.sh
#
# For an ECDSA P-256 and an RSA 2048 certificate it measures:
#   handshakes  two `openssl s_time -new` clients (full handshakes, no resumption, no
#               request): handshakes/s and the proxy's CPU µs per handshake
#   https h1    h2load --h1 -c16 -m1 over keep-alive TLS: req/s and CPU µs per request
#   https h2    h2load -c4 -m16, ALPN h2: req/s and CPU µs per request
# Both proxies go to the backend over plaintext HTTP/1.1 keep-alive.
set -euo pipefail
invoked="$0"
[ -n "${WEIR:-}" ] && WEIR=$(realpath "$WEIR")
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ONLY="nginx weir"
. bench/lib.sh

install_tools openssl:openssl
setup_work
resolve_weir

BE=18281
N_EC=18443 N_RSA=18446 W_EC=18444 W_RSA=18445 W_ADMIN=15901
for p in $BE $N_EC $N_RSA $W_EC $W_RSA $W_ADMIN; do
  if (exec 3<>"/dev/tcp/$LOOP/$p") 2>/dev/null; then echo "port $p is in use" >&2; exit 1; fi
done

# The certificates, and weir's credentials directory holding them.
certs=$work/certs
mkdir -p "$certs" "$work/creds/ec" "$work/creds/rsa"
subj=(-subj /CN=bench.example.com -addext subjectAltName=DNS:bench.example.com -days 2 -nodes)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$certs/ec.key" -out "$certs/ec.crt" "${subj[@]}" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -keyout "$certs/rsa.key" -out "$certs/rsa.crt" "${subj[@]}" 2>/dev/null
for k in ec rsa; do
  cp "$certs/$k.crt" "$work/creds/$k/tls.crt"
  cp "$certs/$k.key" "$work/creds/$k/tls.key"
done

cat > "$work/backend.conf" <<NGINX
worker_processes 1;
pid $work/backend.pid;
events { worker_connections 4096; }
http {
  access_log off;
$(nginx_paths)
  keepalive_requests 1000000000;
  keepalive_timeout 3600s;
  server { listen $LOOP:$BE; location / { return 200 "ok\n"; } }
}
NGINX

tls_server() { # port cert key
  cat <<NGINX
  server {
    listen $LOOP:$1 ssl http2;
    ssl_certificate $2;
    ssl_certificate_key $3;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
NGINX
}
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
$(nginx_paths)
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  upstream be { server $LOOP:$BE; keepalive 64; }
$(tls_server $N_EC "$certs/ec.crt" "$certs/ec.key")
$(tls_server $N_RSA "$certs/rsa.crt" "$certs/rsa.key")
}
NGINX

cat > "$work/weir-config/edge.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: be, namespace: istio-system}
spec:
  hosts: [be.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: $LOOP, ports: {http: $BE}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $W_EC, name: https-ec, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: ec}
    hosts: ["*"]
  - port: {number: $W_RSA, name: https-rsa, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: rsa}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - route: [{destination: {host: be.istio-system.svc.cluster.local}}]
YAML

taskset -c "$LOAD_CPU" nginx -c "$work/backend.conf" -g 'daemon off;' 2>"$work/backend.err" &
pids+=($!)
taskset -c "$PROXY_CPU" nginx -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.err" &
PID[nginx]=$!
pids+=($!)
taskset -c "$PROXY_CPU" "$WEIR_BIN" run -c "$work/weir-config" --credentials "$work/creds" --concurrency 1 \
  --listen-address $LOOP --admin $LOOP:$W_ADMIN --access-log-format off >"$work/weir.out" 2>"$work/weir.err" &
PID[weir]=$!
pids+=($!)

wait_tls() { # port
  for _ in $(seq 100); do
    curl -sk -o /dev/null "https://$LOOP:$1/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers HTTPS on $1" >&2
  cat "$work/weir.err" "$work/nginx.err" >&2
  exit 1
}
for p in $N_EC $N_RSA $W_EC $W_RSA; do wait_tls $p; done
for p in $N_EC $W_EC; do
  [ "$(curl -sk "https://$LOOP:$p/")" = ok ] || { echo "port $p does not reach the backend" >&2; exit 1; }
done

declare -A CELL
measure() { # key pid command...: runs the command on the load CPU, records CPU ticks
  local key=$1 pid=$2
  shift 2
  local t0 t1
  t0=$(ticks "$pid")
  taskset -c "$LOAD_CPU" "$@" >"$work/$key.out" 2>&1 || true
  t1=$(ticks "$pid")
  CELL[$key.ticks]=$((t1 - t0))
}

handshakes() { # key pid port
  local key=$1 pid=$2 port=$3 t0 t1
  t0=$(ticks "$pid")
  local clients=()
  for i in 1 2; do
    taskset -c "$LOAD_CPU" openssl s_time -connect "$LOOP:$port" -new -time "$DURATION" >"$work/$key.$i.out" 2>&1 &
    clients+=($!)
  done
  wait "${clients[@]}" 2>/dev/null || true
  t1=$(ticks "$pid")
  local n=0 c
  for i in 1 2; do
    c=$(sed -n 's/^\([0-9]*\) connections in [0-9.]*s.*/\1/p' "$work/$key.$i.out" | head -1)
    n=$((n + ${c:-0}))
  done
  CELL[$key.n]=$n
  CELL[$key.ticks]=$((t1 - t0))
}

h2load_reqs() { # file: succeeded requests
  sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$1" | head -1
}

for kind in ec rsa; do
  for p in nginx weir; do
    if [ $p = nginx ]; then port=$([ $kind = ec ] && echo $N_EC || echo $N_RSA); else port=$([ $kind = ec ] && echo $W_EC || echo $W_RSA); fi
    handshakes "$p.$kind.hs" "${PID[$p]}" "$port"
    if [ $kind = ec ]; then
      measure "$p.h1" "${PID[$p]}" h2load --h1 -c16 -m1 -D "$DURATION" "https://$LOOP:$port/"
      measure "$p.h2" "${PID[$p]}" h2load -c4 -m16 -D "$DURATION" "https://$LOOP:$port/"
    fi
  done
done

python3 - "$work" "$DURATION" "$CLK_TCK" "${CELL[nginx.ec.hs.n]}" "${CELL[nginx.ec.hs.ticks]}" \
  "${CELL[weir.ec.hs.n]}" "${CELL[weir.ec.hs.ticks]}" "${CELL[nginx.rsa.hs.n]}" "${CELL[nginx.rsa.hs.ticks]}" \
  "${CELL[weir.rsa.hs.n]}" "${CELL[weir.rsa.hs.ticks]}" "$(h2load_reqs "$work/nginx.h1.out")" "${CELL[nginx.h1.ticks]}" \
  "$(h2load_reqs "$work/weir.h1.out")" "${CELL[weir.h1.ticks]}" "$(h2load_reqs "$work/nginx.h2.out")" \
  "${CELL[nginx.h2.ticks]}" "$(h2load_reqs "$work/weir.h2.out")" "${CELL[weir.h2.ticks]}" "$WEIR_LABEL" "$invoked" <<'PY'
import sys
a = sys.argv[1:]
work, dur, clk = a[0], float(a[1]), int(a[2])
v = [int(x or 0) for x in a[3:19]]
label, cmd = a[19], a[20]
def rate(n): return n / dur
def us(ticks, n): return ticks / clk * 1e6 / n if n else float("nan")
rows = []
def row(name, nn, nt, wn, wt, unit):
    rows.append((f"{name} {unit}/s", rate(nn), rate(wn), rate(wn) / rate(nn) if nn else float("nan")))
    rows.append((f"{name} CPU µs/{unit}", us(nt, nn), us(wt, wn), us(wt, wn) / us(nt, nn) if nn and wn else float("nan")))
row("ECDSA P-256 full handshakes:", v[0], v[1], v[2], v[3], "handshake")
row("RSA 2048 full handshakes:", v[4], v[5], v[6], v[7], "handshake")
row("HTTPS keep-alive h1 (c16):", v[8], v[9], v[10], v[11], "request")
row("HTTPS h2 (c4 x m16):", v[12], v[13], v[14], v[15], "request")
print(f"HTTPS, one core each ({label}; `{cmd}`, {dur:.0f} s per run; CPU from /proc)")
print()
print("| figure | nginx | weir | weir ÷ nginx |")
print("|---|---|---|---|")
for name, n, w, r in rows:
    fmt = (lambda x: f"{x:,.0f}") if "/s" in name else (lambda x: f"{x:.1f}")
    print(f"| {name} | {fmt(n)} | {fmt(w)} | {r:.2f}× |")
print()
print("(throughput: higher is better; CPU per unit: lower is better. The handshake rows are")
print("bounded by the two openssl clients on the other core; CPU per handshake is the figure.)")
PY
