#!/usr/bin/env bash
# The performance race, as recorded in BENCHMARKS.md: Herald, the naive reference server
# (bench/naive) and the floor (bench/floor: nothing but one write(2) per stream), each started
# fresh and measured by the same load generator in the same run.
#
#   bench/race.sh [streams] [out-dir]      (default 18000 streams; results in out-dir/*.json)
#
# Reconnect storms (every stream resuming with Last-Event-ID at once) are in bench/storm.sh, against
# a baseline Herald: neither the naive server nor the floor keeps history or gives a stream a
# position to resume from, so neither can express a catch-up.
#
# Needs Linux (the generator reads /proc for the servers' memory and CPU), and an open-file limit
# above the stream count in each process (the generator spreads streams over worker processes).
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-18000}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/herald" ./cmd/herald
go build -o "$bin/naive" ./bench/naive
go build -o "$bin/floor" ./bench/floor
go build -o "$bin/herald-bench" ./cmd/herald-bench

# start NAME CMD...: starts a server, waits for /healthz, sets pid and url.
start() {
  local name=$1 port=$2; shift 2
  "$@" >"$out/$name.log" 2>&1 &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "$name did not start"; cat "$out/$name.log"; exit 1
}

for scenario in broadcast unicast; do
  start herald 18080 "$bin/herald" -addr 127.0.0.1:18080 -store "sqlite:$out/herald.db" \
    -max-connections-per-user 0 -log-level warn
  "$bin/herald-bench" -name herald -target "$url" -pid "$pid" -streams "$streams" -json "$out/herald-$scenario.json" "$scenario"
  kill "$pid"; wait "$pid" || true; rm -f "$out"/herald.db*

  start naive 18090 "$bin/naive" -addr 127.0.0.1:18090
  "$bin/herald-bench" -name naive -target "$url" -pid "$pid" -streams "$streams" -json "$out/naive-$scenario.json" "$scenario"
  kill "$pid"; wait "$pid" || true

  start floor 18091 "$bin/floor" -addr 127.0.0.1:18091
  "$bin/herald-bench" -name floor -target "$url" -pid "$pid" -streams "$streams" -json "$out/floor-$scenario.json" "$scenario"
  kill "$pid"; wait "$pid" || true

  "$bin/herald-bench" compare "$out/herald-$scenario.json" "$out/naive-$scenario.json"
  echo
  "$bin/herald-bench" compare "$out/herald-$scenario.json" "$out/floor-$scenario.json"
  echo
done
echo "results in $out"
