#!/usr/bin/env bash
# Reconnect storms, as recorded in BENCHMARKS.md: a baseline Herald (built from a git ref, main by
# default) against this checkout's, alternating in the same run so that both see the same
# machine. For each stream count, without and with a SIGKILL restart of the server while the
# streams are away, RUNS runs of each binary; every run starts a fresh server on a fresh SQLite
# file (herald-bench -serve), opens the streams, closes them all, publishes -rounds broadcasts
# and one notification per user, and has every stream resume at once (-handshakes in flight).
#
#   bench/storm.sh [streams...]        (default: 5000 18000; results and logs in $OUT)
#       RUNS=3  BASE=main  OUT=$(mktemp -d)  ROUNDS=5  HANDSHAKES=200  MODES="no yes"
#       MODES: no (no restart), yes (SIGKILL restart while away), quiet (nothing published while
#       away, no restart: the time to reconnect only, the reference the goal is set against)
#       BENCH_ARGS adds herald-bench flags; PROFILE=1 writes a CPU profile of each server
#   TABLE=dir bench/storm.sh           prints the table of the runs in dir again
#
# Needs Linux, jq, and an open-file limit above the stream count in the server (the generator
# spreads its streams over worker processes of at most 15,000 each).
set -euo pipefail
cd "$(dirname "$0")/.."
# table prints every run of $out/runs.tsv, then the median of each configuration.
table() {
  echo
  echo "| binary | streams | restart | reconnect-all s | all caught up s | ratio | caught-up p50 ms | p99 ms | server CPU s | missing/dup/failed |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$out/runs.tsv"
  echo
  echo "Medians:"
  echo "| binary | streams | restart | runs | reconnect-all s | all caught up s | ratio | caught-up p50 ms | server CPU s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  sort -t$'\t' -k2,2n -k3,3 -k1,1 "$out/runs.tsv" | awk -F'\t' '
    function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }; return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function flush() { if (k) printf "| %s | %s | %s | %d | %.2f | %.2f | %.2f | %.0f | %.2f |\n", key1, key2, key3, k, med(r, k), med(c, k), med(q, k), med(p, k), med(u, k); k = 0 }
    { key = $1 FS $2 FS $3; if (key != last) { flush(); last = key; key1 = $1; key2 = $2; key3 = $3 }
      k++; r[k] = $4; c[k] = $5; q[k] = $6; p[k] = $7; u[k] = $9 }
    END { flush() }'
}

if [ -n "${TABLE:-}" ]; then out=$TABLE; table; exit 0; fi

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(5000 18000)
runs=${RUNS:-3}
base=${BASE:-main}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

# The baseline is built from its commit as it is, not from this work tree.
src=$(mktemp -d)
git archive "$base" | tar -x -C "$src"
(cd "$src" && go build -o "$bin/herald-base" ./cmd/herald)
rm -rf "$src"
go build -o "$bin/herald-new" ./cmd/herald
go build -o "$bin/herald-bench" ./cmd/herald-bench
echo "baseline: $base ($(git rev-parse --short "$base")); new: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"

port=18480
for n in "${counts[@]}"; do
  for restart in ${MODES:-no yes}; do
    flag=""; [ "$restart" = yes ] && flag="-restart"; [ "$restart" = quiet ] && flag="-quiet"
    for run in $(seq "$runs"); do
      for which in base new; do
        name="$which-$n-restart_$restart-$run"
        db="$out/$name.db"
        port=$((port + 2))
        prof=()
        if [ -n "${PROFILE:-}" ]; then
          prof=(-pprof "http://127.0.0.1:$((port + 1))" -profile "$out/$name.prof")
        fi
        "$bin/herald-bench" -name "$which" -target "http://127.0.0.1:$port" -streams "$n" \
          -rounds "${ROUNDS:-5}" -handshakes "${HANDSHAKES:-200}" -settle 2s \
          -serve "$bin/herald-$which -addr 127.0.0.1:$port -pprof-addr 127.0.0.1:$((port + 1)) -store sqlite:$db -max-connections-per-user 0 -log-level warn" \
          -serve-log "$out/$name.log" "${prof[@]}" -json "$out/$name.json" $flag ${BENCH_ARGS:-} storm \
          >"$out/$name.txt" 2>"$out/$name.err" || echo "run $name failed: see $out/$name.err"
        rm -f "$db" "$db-wal" "$db-shm"
        jq -r '"\(.name)\t\(.streams)\t\(if .storm.restarted then "restart" elif .storm.away_events == 0 then "quiet" else "-" end)\t\(.storm.reconnect_all_seconds*100|round/100)\t\(.storm.caught_up_all_seconds*100|round/100)\t\(.storm.caught_up_over_reconnect*100|round/100)\t\(.storm.caught_up.p50_ms|round)\t\(.storm.caught_up.p99_ms|round)\t\(.storm.server_cpu_seconds)\t\(.missing)/\(.duplicate)/\(.storm.resume_failed)"' \
          "$out/$name.json" 2>/dev/null >>"$out/runs.tsv" || true
        tail -1 "$out/runs.tsv"
      done
    done
  done
done

table
echo
echo "results in $out"
