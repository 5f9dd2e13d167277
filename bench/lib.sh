# Shared by bench/run.sh and bench/memory.sh (sourced, not run): tools, the weir
# binary, the topology's configuration files, starting and stopping processes, and
# reading a process's CPU time and RSS from /proc.
#
# Topology (everything on 127.0.0.1, 2 CPUs):
#
#   CPU 1: the load generator (oha / wrk / h2load / a Python client) and ONE backend
#          nginx (worker_processes 1) answering "v1\n" and "v2\n" on four ports:
#            v1 HTTP/1.1 :18181   v2 HTTP/1.1 :18182   v1 h2c :18183   v2 h2c :18184
#   CPU 0: the proxy under test, one worker each, all doing the same job:
#            Host svc -> `x-canary: 1` to v2, otherwise 90% v1 / 10% v2;
#            any other Host -> a local reply (404; weir: 502 from REGISTRY_ONLY);
#            keep-alive to clients and to the backends.
#            nginx 1.22   HTTP/1.1 :18081  h2c :18091   (worker_processes 1)
#            HAProxy 2.6  HTTP/1.1 :18082  h2c :18092   (nbthread 1)
#            weir         HTTP/1.1 and h2c :15001 (mesh listener, sniffs the h2
#                         preface), admin :15900   (--concurrency 1)
#   (all ports + PORT_OFFSET, chosen so that none is in use already)
#   Upstream protocol of the h2c scenario: nginx HTTP/1.1 (nginx cannot proxy h2),
#   HAProxy h2c (`proto h2`), weir h2c (ServiceEntry svc-h2, port protocol HTTP2).

LOOP=127.0.0.1
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

# The ports above, plus PORT_OFFSET. When one of them is already taken (another weir
# on 15001, say), choose_ports moves the whole set up by 100 until all are free.
choose_ports() {
  local off=${PORT_OFFSET:-0} tries=0 p busy
  while :; do
    BE_V1=$((18181 + off)) BE_V2=$((18182 + off)) BE_V1_H2=$((18183 + off)) BE_V2_H2=$((18184 + off))
    NGINX_H1=$((18081 + off)) NGINX_H2=$((18091 + off))
    HAPROXY_H1=$((18082 + off)) HAPROXY_H2=$((18092 + off))
    WEIR_MESH=$((15001 + off)) WEIR_ADMIN=$((15900 + off))
    busy=""
    for p in $BE_V1 $BE_V2 $BE_V1_H2 $BE_V2_H2 $NGINX_H1 $NGINX_H2 $HAPROXY_H1 $HAPROXY_H2 $WEIR_MESH $WEIR_ADMIN; do
      (exec 3<>"/dev/tcp/$LOOP/$p") 2>/dev/null && busy+=" $p"
    done
    [ -z "$busy" ] && break
    tries=$((tries + 1))
    [ $tries -gt 9 ] && { echo "ports busy:$busy (set PORT_OFFSET)" >&2; exit 1; }
    echo "note: port(s)$busy already in use on $LOOP; trying PORT_OFFSET=$((off + 100))" >&2
    off=$((off + 100))
  done
  PORT_OFFSET=$off
  URL_H1[nginx]=http://$LOOP:$NGINX_H1/ URL_H2[nginx]=http://$LOOP:$NGINX_H2/ HOST_H2[nginx]=svc
  URL_H1[haproxy]=http://$LOOP:$HAPROXY_H1/ URL_H2[haproxy]=http://$LOOP:$HAPROXY_H2/ HOST_H2[haproxy]=svc
  URL_H1[weir]=http://$LOOP:$WEIR_MESH/ URL_H2[weir]=http://$LOOP:$WEIR_MESH/ HOST_H2[weir]=svc-h2
  URL_H1[direct]=http://$LOOP:$BE_V1/ URL_H2[direct]=http://$LOOP:$BE_V1_H2/ HOST_H2[direct]=svc
}
declare -A PID URL_H1 URL_H2 HOST_H2

ALL_PROXIES="nginx haproxy weir"
# ONLY=weir (or ONLY="nginx weir", commas allowed) benchmarks a subset.
PROXIES=$(echo "${ONLY:-$ALL_PROXIES}" | tr ',' ' ')
for p in $PROXIES; do
  case $p in nginx | haproxy | weir) ;; *) echo "ONLY: unknown proxy '$p' (nginx, haproxy, weir)" >&2; exit 2 ;; esac
done

has_proxy() { case " $PROXIES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
label() { case $1 in nginx) echo nginx ;; haproxy) echo HAProxy ;; weir) echo weir ;; direct) echo direct ;; esac; }

# --- tools --------------------------------------------------------------------------
install_tools() { # extra commands this script needs, as "command:debian-package"
  local missing=() want
  has_proxy haproxy && set -- haproxy:haproxy "$@"
  for want in nginx:nginx wrk:wrk h2load:nghttp2-client curl:curl \
    python3:python3 taskset:util-linux pgrep:procps "$@"; do
    command -v "${want%%:*}" >/dev/null || missing+=("${want##*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
  fi
}
install_oha() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v oha >/dev/null; then
    echo "installing oha from crates.io (a few minutes, once)" >&2
    cargo install oha --locked --quiet >&2
  fi
}

# --- the weir binary ----------------------------------------------------------------
# WEIR=path benchmarks that binary; otherwise build target/release/weir. The binary is
# copied into the work directory so a rebuild during the run does not change it.
resolve_weir() { # sets WEIR_BIN and WEIR_LABEL; call after the work dir exists
  local src
  if [ -n "${WEIR:-}" ]; then
    src=$WEIR
    [ -x "$src" ] || { echo "WEIR=$src is not an executable" >&2; exit 2; }
    WEIR_LABEL="weir ($(basename "$src"))"
  else
    local rev built=1
    rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
    git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || rev="$rev+uncommitted"
    if ! cargo build --release --quiet -p weir >"$work/build.log" 2>&1; then
      [ -x target/release/weir ] || { cat "$work/build.log" >&2; echo "cargo build failed and there is no target/release/weir" >&2; exit 1; }
      echo "WARNING: cargo build -p weir failed (work in progress?); using the existing target/release/weir" \
        "built $(date -r target/release/weir '+%Y-%m-%d %H:%M'); the build's first errors:" >&2
      grep -E '^(error|warning: unused)' "$work/build.log" | head -3 >&2 || true
      built=0
    fi
    src=target/release/weir
    if [ $built = 1 ]; then WEIR_LABEL="weir now ($rev)"
    else WEIR_LABEL="weir ($(date -r "$src" '+%H:%M') binary; build failed)"; fi
  fi
  cp "$src" "$work/weir"
  WEIR_BIN=$work/weir
}

# --- processes ----------------------------------------------------------------------
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for p in "${pids[@]}"; do
      case $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) in "" | Z*) ;; *) alive=1 ;; esac  # gone or a zombie
    done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${work:-}" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$work"
  return 0
}
setup_work() {
  work=$(mktemp -d /tmp/weir-bench.XXXXXX)
  chmod 755 "$work"
  mkdir -p "$work/tmp" "$work/weir-config"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# CPU ticks (utime + stime, /proc/PID/stat fields 14 and 15) of a process and its
# children: nginx's master forks the worker that does the work.
ticks() {
  local t=0 p s
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $s
    t=$((t + ${12} + ${13}))
  done
  echo $t
}
CLK_TCK=$(getconf CLK_TCK)
# VmRSS in kB of a process plus its children (nginx: master + worker; shared pages
# such as the binary's text are then counted twice, as `ps` would).
rss_kb() {
  local t=0 p r
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    t=$((t + ${r:-0}))
  done
  echo $t
}

wait_port() { # port pid name: answers HTTP on the port, and the process is still ours
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "$3 exited at start" >&2; return 1; }
    curl -s -o /dev/null "http://$LOOP:$1/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$3 did not answer on port $1" >&2
  return 1
}

# --- configuration ------------------------------------------------------------------
nginx_paths() { # temp paths inside the work dir (the packaged ones may be missing)
  local d
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $work/tmp/$d;"; done
}

write_configs() {
  # The backends: one nginx, one worker, small fixed bodies, keep-alive for ever.
  cat > "$work/backend.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/backend.pid;
events { worker_connections 16384; }
http {
  access_log off;
$(nginx_paths)
  default_type text/plain;
  keepalive_requests 1000000000;
  keepalive_timeout 3600s;
  http2_max_concurrent_streams 1024;
  server {
    listen $LOOP:$BE_V1;
    listen $LOOP:$BE_V1_H2 http2;   # prior-knowledge h2c
    location / { return 200 "v1\n"; }
  }
  server {
    listen $LOOP:$BE_V2;
    listen $LOOP:$BE_V2_H2 http2;
    location / { return 200 "v2\n"; }
  }
}
NGINX

  # nginx as the proxy. HTTP/2 downstream on its own port; upstream is always HTTP/1.1
  # keep-alive (nginx cannot proxy HTTP/2).
  cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
$(nginx_paths)
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  upstream v1 { server $LOOP:$BE_V1; keepalive 64; keepalive_requests 1000000000; keepalive_timeout 300s; }
  upstream v2 { server $LOOP:$BE_V2; keepalive 64; keepalive_requests 1000000000; keepalive_timeout 300s; }
  split_clients "\${request_id}" \$split { 90% v1; * v2; }
  map \$http_x_canary \$dest { "1" v2; default \$split; }
  server {
    listen $LOOP:$NGINX_H1 default_server;
    listen $LOOP:$NGINX_H2 http2 default_server;
    return 404;
  }
  server {
    listen $LOOP:$NGINX_H1;
    listen $LOOP:$NGINX_H2 http2;
    server_name svc;
    location / {
      proxy_pass http://\$dest;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX

  # HAProxy. The 90/10 split is roundrobin with weights 90/10 (`balance random` would
  # be power-of-two-choices by default, which does not keep the weights). HTTP/2
  # downstream on its own frontend with h2c (`proto h2`) to the backends' h2c ports.
  cat > "$work/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn ${HAPROXY_MAXCONN:-4096}
  # HAProxy wants ~2 fds per connection (client + server side) and refuses to start
  # when it cannot raise the limit that far; here the server side is a few reused
  # connections, so a warning is enough (bench/memory.sh: 10,000 clients, 20,000 fds).
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  http-reuse always
frontend h1
  bind $LOOP:$HAPROXY_H1
  acl svc hdr(host) -m str svc
  acl canary req.hdr(x-canary) -m str 1
  http-request return status 404 content-type text/plain string "no route\n" if !svc
  use_backend v2 if canary
  default_backend split
frontend h2
  bind $LOOP:$HAPROXY_H2 proto h2
  acl svc hdr(host) -m str svc
  acl canary req.hdr(x-canary) -m str 1
  http-request return status 404 content-type text/plain string "no route\n" if !svc
  use_backend v2_h2 if canary
  default_backend split_h2
backend split
  balance roundrobin
  server v1 $LOOP:$BE_V1 weight 90
  server v2 $LOOP:$BE_V2 weight 10
backend v2
  server v2 $LOOP:$BE_V2
backend split_h2
  balance roundrobin
  server v1 $LOOP:$BE_V1_H2 proto h2 weight 90
  server v2 $LOOP:$BE_V2_H2 proto h2 weight 10
backend v2_h2
  server v2 $LOOP:$BE_V2_H2 proto h2
HAP

  # weir: svc (HTTP/1.1 upstream) and svc-h2 (HTTP2 upstream to the h2c ports), the
  # same rules for each.
  local name port proto v1 v2 f=$work/weir-config/bench.yaml
  : > "$f"
  for name in svc svc-h2; do
    if [ $name = svc ]; then port=http proto=HTTP v1=$BE_V1 v2=$BE_V2
    else port=http2 proto=HTTP2 v1=$BE_V1_H2 v2=$BE_V2_H2; fi
    cat >> "$f" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: $name, namespace: bench}
spec:
  hosts: [$name.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: $port, protocol: $proto}]
  endpoints:
  - {address: $LOOP, ports: {$port: $v1}, labels: {version: v1}}
  - {address: $LOOP, ports: {$port: $v2}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: $name, namespace: bench}
spec:
  host: $name
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: $name, namespace: bench}
spec:
  hosts: [$name]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: $name, subset: v2}}]
  - route:
    - {destination: {host: $name, subset: v1}, weight: 90}
    - {destination: {host: $name, subset: v2}, weight: 10}
---
YAML
  done
  # Any other Host gets a local reply, as nginx and HAProxy answer it with 404: Istio
  # has no wildcard mesh VirtualService, so this is REGISTRY_ONLY's 502 (without it,
  # the default ALLOW_ANY would pass the request through to the name it gives).
  cat >> "$f" <<YAML
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bench}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
YAML
  "$WEIR_BIN" validate "$work/weir-config" >"$work/validate.out" 2>&1 || {
    cat "$work/validate.out" >&2; echo "weir validate rejected the benchmark configuration" >&2; exit 1
  }
}

# --- starting -----------------------------------------------------------------------
start_backend() {
  taskset -c "$LOAD_CPU" nginx -p "$work" -e "$work/backend.err" -c "$work/backend.conf" -g 'daemon off;' &
  PID[direct]=$!; pids+=($!)
  wait_port $BE_V1 "${PID[direct]}" "backend nginx" || { cat "$work/backend.err" >&2; exit 1; }
}

start_proxy() { # name
  case $1 in
    nginx)
      taskset -c "$PROXY_CPU" nginx -p "$work" -e "$work/nginx.err" -c "$work/nginx.conf" -g 'daemon off;' &
      PID[nginx]=$!; pids+=($!)
      wait_port $NGINX_H1 "${PID[nginx]}" nginx || { cat "$work/nginx.err" >&2; exit 1; } ;;
    haproxy)
      taskset -c "$PROXY_CPU" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 &
      PID[haproxy]=$!; pids+=($!)
      wait_port $HAPROXY_H1 "${PID[haproxy]}" haproxy || { cat "$work/haproxy.out" >&2; exit 1; } ;;
    weir)
      taskset -c "$PROXY_CPU" "$WEIR_BIN" run -c "$work/weir-config" --namespace bench \
        --mesh-listener "$LOOP:$WEIR_MESH" --admin "$LOOP:$WEIR_ADMIN" \
        --access-log-format off --concurrency 1 >"$work/weir.out" 2>"$work/weir.err" &
      PID[weir]=$!; pids+=($!)
      local ok=0
      for _ in $(seq 100); do
        kill -0 "${PID[weir]}" 2>/dev/null || break
        grep -q '"ready":true' "$work/weir.out" && curl -sf "http://$LOOP:$WEIR_ADMIN/ready" >/dev/null && { ok=1; break; }
        sleep 0.1
      done
      [ $ok = 1 ] || { cat "$work/weir.err" >&2; echo "weir did not become ready" >&2; exit 1; } ;;
  esac
}

# The same job, checked: Host svc splits about 90/10, x-canary: 1 always reaches v2,
# another Host gets 404, over HTTP/1.1 and h2c. Prints one line; returns 1 on a failure.
check_routing() { # name
  local n=$1 url=${URL_H1[$1]} url2=${URL_H2[$1]} h2host=${HOST_H2[$1]} urls=() i out fail=0 msg
  for i in $(seq 200); do urls+=("$url"); done
  out=$(curl -s -H 'Host: svc' "${urls[@]}" || true)
  local h1v1 h1v2 h1c h2v1 h2v2 h2c nf nf2
  h1v1=$(grep -cx v1 <<<"$out" || true) h1v2=$(grep -cx v2 <<<"$out" || true)
  h1c=$(curl -s -H 'Host: svc' -H 'x-canary: 1' "${urls[@]:0:20}" | grep -cx v2 || true)
  nf=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other' "$url" || true)
  # One curl per h2c request: curl 7.88 does not send a second request on a reused
  # prior-knowledge connection.
  out=$(for i in $(seq 200); do curl -s --http2-prior-knowledge -H "Host: $h2host" "$url2" || true; done)
  h2v1=$(grep -cx v1 <<<"$out" || true) h2v2=$(grep -cx v2 <<<"$out" || true)
  h2c=$(for i in $(seq 20); do curl -s --http2-prior-knowledge -H "Host: $h2host" -H 'x-canary: 1' "$url2" || true; done | grep -cx v2 || true)
  nf2=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' -H 'Host: other' "$url2" || true)
  [ $((h1v1 + h1v2)) = 200 ] && [ "$h1v2" -ge 5 ] && [ "$h1v2" -le 40 ] || fail=1
  [ $((h2v1 + h2v2)) = 200 ] && [ "$h2v2" -ge 5 ] && [ "$h2v2" -le 40 ] || fail=1
  # The local reply for another Host: 404 (nginx, HAProxy), 502 block_all (weir).
  local other=404
  [ "$n" = weir ] && other=502
  [ "$h1c" = 20 ] && [ "$h2c" = 20 ] && [ "$nf" = $other ] && [ "$nf2" = $other ] || fail=1
  msg="HTTP/1.1 v1/v2 $h1v1/$h1v2 of 200, x-canary→v2 $h1c/20, other Host $nf; h2c v1/v2 $h2v1/$h2v2, x-canary→v2 $h2c/20, other Host $nf2"
  if [ $fail = 0 ]; then echo "routing check $(label "$n"): ok ($msg)"
  else echo "routing check $(label "$n"): FAILED ($msg)"; return 1; fi
}
