#!/usr/bin/env bash
# The slow-consumer run, as recorded in BENCHMARKS.md: Herald, started fresh, with N streams of
# which every 10th stops reading while broadcasts go on; then the same load with every stream
# reading (the control), so that memory and delivery can be compared.
#
#   bench/stall.sh [streams] [out-dir]     (default 2000 streams; results in out-dir/*.json)
#   BENCH_ARGS="-rounds 30 -interval 1s -payload 16384" bench/stall.sh 18000
#
# Needs Linux, and an open-file limit above the stream count in each process.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-2000}
out=${2:-$(mktemp -d)}
args=${BENCH_ARGS:--rounds 40 -interval 100ms -payload 16384}
mkdir -p "$out"
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/herald" ./cmd/herald
go build -o "$bin/herald-bench" ./cmd/herald-bench

for run in stalled control; do
  every=10
  [ "$run" = control ] && every=0
  rm -f "$out"/herald.db*
  "$bin/herald" -addr 127.0.0.1:18080 -store "sqlite:$out/herald.db" -max-connections-per-user 0 \
    -log-level warn >"$out/herald-$run.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
  # shellcheck disable=SC2086
  "$bin/herald-bench" -name "herald-$run" -target http://127.0.0.1:18080 -pid "$pid" -streams "$streams" \
    -stall-every "$every" $args -json "$out/$run.json" stall 2>/dev/null || true
  kill "$pid"; wait "$pid" || true
  echo
done
echo "results in $out"
