#!/usr/bin/env bash
# Makes pgo/weir.profdata, the profile optimized builds are compiled with (profile-guided
# optimization; tools/rustc-pgo applies it). An instrumented weir serves the benchmark's
# topology (bench/lib.sh) and a TLS gateway while real clients drive each path a
# deployment runs hot: HTTP/1.1 and h2c on the mesh listener to HTTP/1.1 and HTTP/2
# upstreams, header routing, request bodies, local replies, HTTPS with ALPN h1 and h2,
# the admin endpoints and a reload. Its counters, merged (sparse: only what ran), are
# the profile.
#
#   bench/pgo.sh               # ~8 minutes: an instrumented build, ~1 minute of traffic
#   DURATION=2 bench/pgo.sh    # seconds per workload (default 4)
#
# Afterwards rebuild from scratch (`cargo clean --release`) so every crate sees the new
# profile: cargo does not know the profile is an input. Re-run it when the request path
# changes a lot: functions whose code changed since the profile get no profile data
# (they are optimized as without PGO; nothing breaks).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4}
ONLY=weir
. bench/lib.sh

install_tools openssl:openssl
install_oha
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9][0-9]*\).*/\1/p')
profdata=llvm-profdata-$llvm
if ! command -v "$profdata" >/dev/null; then
  echo "installing llvm-$llvm (llvm-profdata) from Debian" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm") >&2
fi
setup_work
choose_ports

raw=$work/profraw
echo "building an instrumented weir (target/pgo-generate)" >&2
RUSTFLAGS="-Cprofile-generate=$raw" CARGO_TARGET_DIR=target/pgo-generate \
  cargo build --release --quiet -p weir
rm -rf "$raw" # build scripts ran instrumented too: only weir's own counters count
WEIR_BIN=$work/weir
cp target/pgo-generate/release/weir "$WEIR_BIN"
write_configs

# A TLS gateway beside the mesh listener: an HTTPS server (ALPN h2 and http/1.1) to the
# same service.
TLS_PORT=$((18443 + PORT_OFFSET))
mkdir -p "$work/creds/edge"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj /CN=bench.example.com \
  -addext subjectAltName=DNS:bench.example.com -days 2 -nodes \
  -keyout "$work/creds/edge/tls.key" -out "$work/creds/edge/tls.crt" 2>/dev/null
cat > "$work/weir-config/edge.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: bench}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $TLS_PORT, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: edge}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: bench}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: svc, subset: v2}}]
  - route: [{destination: {host: svc, subset: v1}}]
YAML

start_backend
taskset -c "$PROXY_CPU" "$WEIR_BIN" run -c "$work/weir-config" --namespace bench --credentials "$work/creds" \
  --listen-address "$LOOP" --mesh-listener "$LOOP:$WEIR_MESH" --admin "$LOOP:$WEIR_ADMIN" \
  --access-log-format off --concurrency 1 >"$work/weir.out" 2>"$work/weir.err" &
weir=$!
pids+=("$weir")
for _ in $(seq 100); do
  curl -sf "http://$LOOP:$WEIR_ADMIN/ready" >/dev/null && curl -sk -o /dev/null "https://$LOOP:$TLS_PORT/" && break
  kill -0 "$weir" 2>/dev/null || { cat "$work/weir.err" >&2; exit 1; }
  sleep 0.1
done

mesh=http://$LOOP:$WEIR_MESH/
tls=https://$LOOP:$TLS_PORT/
head -c 1024 /dev/urandom > "$work/body"
run() { echo "  $*" >&2; taskset -c "$LOAD_CPU" "$@" >/dev/null 2>&1 || echo "  (failed: $1)" >&2; }
echo "training (${DURATION} s per workload)" >&2
run wrk -t1 -c64 -d"${DURATION}s" -H 'Host: svc' "$mesh"
run wrk -t1 -c16 -d"${DURATION}s" -H 'Host: svc' -H 'x-canary: 1' "$mesh"
run oha -z "${DURATION}s" -q 3000 -c 16 --no-tui -H 'Host: svc' "$mesh"
run oha -z "${DURATION}s" -c 8 --no-tui -m POST -D "$work/body" -H 'Host: svc' "$mesh"
run wrk -t1 -c16 -d"${DURATION}s" -H 'Host: svc-h2' "$mesh"
run h2load -c4 -m16 -D "$DURATION" -H ':authority: svc-h2' "$mesh"
run h2load -c4 -m16 -D "$DURATION" -H ':authority: svc' "$mesh"
run h2load --h1 -c16 -D "$DURATION" "$tls"
run h2load -c4 -m16 -D "$DURATION" "$tls"
run oha -z "${DURATION}s" -c 8 --no-tui -H 'Host: nowhere' "$mesh"
for _ in $(seq 20); do
  for path in ready stats/prometheus config_dump clusters; do
    curl -s -o /dev/null "http://$LOOP:$WEIR_ADMIN/$path" || true
  done
done
touch "$work/weir-config/bench.yaml"
sleep 1
kill -TERM "$weir"
wait "$weir" || true

mkdir -p pgo
"$profdata" merge --sparse -o pgo/weir.profdata "$raw"/*.profraw
echo "$llvm" > pgo/weir.profdata.llvm
echo "wrote pgo/weir.profdata ($(du -h pgo/weir.profdata | cut -f1), LLVM $llvm, from $(git rev-parse --short HEAD));" \
  "rebuild with \`cargo clean --release && cargo build --release\`" >&2
