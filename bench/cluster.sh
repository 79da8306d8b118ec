#!/usr/bin/env bash
# The scale-out run of BENCHMARKS.md: NODES Herald nodes on this machine sharing PostgreSQL and a
# bus, STREAMS_PER_NODE streams on each (the open-file limit is per process), broadcasts to all
# of them published on the first node, measured by herald-bench. Then the same with as many
# bench/floor servers (a bare write(2) per stream; the first forwards each publish to the others
# over HTTP): the same-run reference of what the machine allows.
#
#   bench/cluster.sh [nodes] [streams-per-node] [bus-url] [out-dir]
#       defaults: 6 nodes, 18000 streams each, redis://127.0.0.1:6379; BENCH_ARGS adds
#       herald-bench flags (e.g. BENCH_ARGS="-interval 3s")
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth (a database herald_bench is made afresh)
# and the bus; Linux (the generator reads /proc for the nodes' memory and CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-6}
per=${2:-18000}
bus=${3:-redis://127.0.0.1:6379}
out=${4:-$(mktemp -d)}
mkdir -p "$out"
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/herald" ./cmd/herald
go build -o "$bin/herald-bench" ./cmd/herald-bench
go build -o "$bin/floor" ./bench/floor

psql -q -h 127.0.0.1 -d test -c 'DROP DATABASE IF EXISTS herald_bench' -c 'CREATE DATABASE herald_bench'
store="postgres://127.0.0.1:5432/herald_bench?sslmode=disable"
channel="herald-bench-$$"

targets=() pids=()
for i in $(seq "$nodes"); do
  port=$((18100 + i))
  "$bin/herald" -addr "127.0.0.1:$port" -store "$store" -bus "$bus" -bus-channel "$channel" \
    -max-connections-per-user 0 -log-level warn >"$out/node$i.log" 2>&1 &
  pids+=($!)
  targets+=("http://127.0.0.1:$port")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "node $i did not start"; cat "$out/node$i.log"; exit 1; }
done

join() { local IFS=,; echo "$*"; }
"$bin/herald-bench" -name "herald ${nodes}×${per}" -target "$(join "${targets[@]}")" -pid "$(join "${pids[@]}")" \
  -streams $((nodes * per)) -settle 5s -json "$out/herald-cluster.json" ${BENCH_ARGS:-} broadcast
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true

floors=() pids=()
for i in $(seq "$nodes"); do floors+=("http://127.0.0.1:$((18200 + i))"); done
for i in $(seq "$nodes"); do
  port=$((18200 + i))
  peers=(); [ "$i" = 1 ] && peers=("${floors[@]:1}")
  "$bin/floor" -addr "127.0.0.1:$port" -peers "$(join "${peers[@]}")" >"$out/floor$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
"$bin/herald-bench" -name "floor ${nodes}×${per}" -target "$(join "${floors[@]}")" -pid "$(join "${pids[@]}")" \
  -streams $((nodes * per)) -settle 5s -json "$out/floor-cluster.json" ${BENCH_ARGS:-} broadcast
"$bin/herald-bench" compare "$out/herald-cluster.json" "$out/floor-cluster.json"
echo "results in $out"
