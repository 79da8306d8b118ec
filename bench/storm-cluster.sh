#!/usr/bin/env bash
# A reconnect storm against a cluster, as recorded in BENCHMARKS.md: NODES Herald nodes sharing
# PostgreSQL and a bus, STREAMS streams spread over them; every stream goes away, -rounds
# broadcasts and one notification per user are published on the first node, and every stream
# resumes at once on the node it left (herald-bench storm, without restart: the generator does
# not own the nodes). The baseline (a git ref, main by default) and this checkout's Herald
# alternate, RUNS runs each, each run on a fresh database.
#
#   bench/storm-cluster.sh [nodes] [streams] [bus-url]
#       defaults: 3 nodes, 9000 streams (3,000 a node), redis://127.0.0.1:6379
#       RUNS=3  BASE=main  OUT=$(mktemp -d)  ROUNDS=5  HANDSHAKES=200; BENCH_ARGS adds flags
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth (a database herald_storm is made afresh for
# each run), the bus, jq, and Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-3}
streams=${2:-9000}
bus=${3:-redis://127.0.0.1:6379}
runs=${RUNS:-3}
base=${BASE:-main}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
bin=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$bin"' EXIT

src=$(mktemp -d)
git archive "$base" | tar -x -C "$src"
(cd "$src" && go build -o "$bin/herald-base" ./cmd/herald)
rm -rf "$src"
go build -o "$bin/herald-new" ./cmd/herald
go build -o "$bin/herald-bench" ./cmd/herald-bench
echo "baseline: $base ($(git rev-parse --short "$base")); new: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
store="postgres://127.0.0.1:5432/herald_storm?sslmode=disable"
join() { local IFS=,; echo "$*"; }

for run in $(seq "$runs"); do
  for which in base new; do
    name="$which-cluster$nodes-$streams-$run"
    psql -q -h 127.0.0.1 -d test -c 'DROP DATABASE IF EXISTS herald_storm' -c 'CREATE DATABASE herald_storm'
    targets=() pids=()
    for i in $(seq "$nodes"); do
      port=$((18600 + i))
      "$bin/herald-$which" -addr "127.0.0.1:$port" -store "$store" -bus "$bus" -bus-channel "herald-storm-$$-$run-$which" \
        -max-connections-per-user 0 -log-level warn >"$out/$name-node$i.log" 2>&1 &
      pids+=($!)
      targets+=("http://127.0.0.1:$port")
      for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    done
    "$bin/herald-bench" -name "$which" -target "$(join "${targets[@]}")" -pid "$(join "${pids[@]}")" \
      -streams "$streams" -rounds "${ROUNDS:-5}" -handshakes "${HANDSHAKES:-200}" -settle 3s \
      -json "$out/$name.json" ${BENCH_ARGS:-} storm >"$out/$name.txt" 2>"$out/$name.err" || echo "run $name failed: see $out/$name.err"
    kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()
    jq -r '"\(.name)\t\(.streams)\tcluster\t\(.storm.reconnect_all_seconds*100|round/100)\t\(.storm.caught_up_all_seconds*100|round/100)\t\(.storm.caught_up_over_reconnect*100|round/100)\t\(.storm.caught_up.p50_ms|round)\t\(.storm.caught_up.p99_ms|round)\t\(.storm.server_cpu_seconds)\t\(.missing)/\(.duplicate)/\(.storm.resume_failed)"' \
      "$out/$name.json" 2>/dev/null >>"$out/runs.tsv" || true
    tail -1 "$out/runs.tsv"
  done
done
echo
echo "| binary | streams | nodes | reconnect-all s | all caught up s | ratio | caught-up p50 ms | p99 ms | servers' CPU s | missing/dup/failed |"
echo "|---|---|---|---|---|---|---|---|---|---|"
sed "s/\tcluster\t/\t$nodes\t/; s/\t/ | /g; s/^/| /; s/\$/ |/" "$out/runs.tsv"
echo "results in $out"
