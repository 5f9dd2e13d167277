#!/usr/bin/env bash
# A large mesh: 10,000 and 30,000 services, each a ServiceEntry with 2 endpoints, a
# DestinationRule with 2 subsets and a VirtualService with a header match and a 90/10
# split (bench/scale_mesh.py writes them; every endpoint is on 127.0.0.0/8).
#
#   bench/scale.sh                    # 10,000 and 30,000 services
#   SIZES="1000 10000" bench/scale.sh # other sizes
#   FLIPS=9 bench/scale.sh            # more reload samples (default 5)
#
# For each size it measures:
#   ready      time from spawning `weir run` to its JSON ready line on stdout
#   rss        weir's RSS 2 s after ready (one worker, --concurrency 1)
#   validate   `weir validate` wall time and peak RSS (/usr/bin/time -v)
#   reload     from the rename of an edited file (one service's canary route flipped
#              to its other subset) until a request through the mesh listener
#              reaches the other subset's backend: median and worst of FLIPS changes
# and, once, the ready time with examples/bookinfo.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"10000 30000"}
FLIPS=${FLIPS:-5}
PORT_V1=${PORT_V1:-18101}
PORT_V2=${PORT_V2:-18102}

cargo build --release --quiet -p weir --bin weir --example scale_probe
WEIR=target/release/weir
PROBE=target/release/examples/scale_probe

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `weir validate`: wall seconds and peak RSS (KiB) from GNU time.
validate() {
  /usr/bin/time -v "$WEIR" validate "$1" >/dev/null 2>"$work/time.txt" || {
    echo "weir validate failed on $1:" >&2; tail -5 "$work/time.txt" >&2; exit 1; }
  local wall hwm
  wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$work/time.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  hwm=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  echo "$wall $hwm"
}

json() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])" "$1" "$2"; }

rows=()
for n in $SIZES; do
  dir="$work/mesh-$n"
  python3 bench/scale_mesh.py "$dir" "$n" "$PORT_V1" "$PORT_V2"
  mb=$(du -sb "$dir" | awk '{ printf "%.1f", $1 / 1e6 }')
  echo "== $n services ($((3 * n)) resources, $mb MB of YAML)" >&2
  read -r vwall vhwm < <(validate "$dir")
  out=$("$PROBE" mesh "$WEIR" "$dir" "$PORT_V1" "$PORT_V2" "$FLIPS")
  echo "$out" >&2
  rows+=("$(printf '| %s | %s MB | %s ms | %s MB | %.0f ms | %s MB | %s ms | %s ms |' \
    "$n" "$mb" "$(json "$out" ready_ms)" "$(( $(json "$out" rss_kb) / 1024 ))" \
    "$(echo "$vwall * 1000" | bc)" "$(( vhwm / 1024 ))" \
    "$(json "$out" reload_median_ms)" "$(json "$out" reload_max_ms)")")
done

# bookinfo: the ready time alone (its backends are not running; nothing is sent).
bookinfo=$("$PROBE" ready "$WEIR" examples/bookinfo bookinfo 5)

echo
echo "| services | YAML | ready | RSS | validate | validate peak | reload (median) | reload (max) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "bookinfo: ready in $(json "$bookinfo" ready_ms) ms (median of 5 starts)"
