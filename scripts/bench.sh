#!/usr/bin/env bash
# Compares `edgeward flows` with softflowd on the same capture, in one run:
# packets per second of CPU time (user + system, so "per core"), best of
# RUNS interleaved runs each, their ratio, and peak RSS.
#
#   make bench                       # synthetic capture from `edgeward synth`
#   FLOWS=20000 RUNS=5 make bench    # smaller
#   PCAP=/path/to/file.pcap make bench
#   ARGS=-no-metadata make bench     # extra flags for `edgeward flows`
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${FLOWS:-226000}
DURATION=${DURATION:-300s}
RUNS=${RUNS:-3}
ARGS=${ARGS:-}
DATA=${DATA:-/tmp/edgeward-bench}
mkdir -p "$DATA"

if ! command -v softflowd >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softflowd >/dev/null
  else
    echo "bench: softflowd is not installed (apt-get install softflowd)" >&2
    exit 1
  fi
fi
SOFTFLOWD=$(command -v softflowd)

go build -o "$DATA/edgeward" ./cmd/edgeward
PCAP=${PCAP:-$DATA/synth-$FLOWS.pcap}
if [ ! -f "$PCAP" ]; then
  "$DATA/edgeward" synth -o "$PCAP" -flows "$FLOWS" -duration "$DURATION"
fi
cat "$PCAP" >/dev/null # both tools read from the page cache

cpu() { # command... -> "cpu_seconds max_rss_kb"
  /usr/bin/time -f "%U %S %M" -o "$DATA/time.out" "$@" >/dev/null 2>"$DATA/cmd.err" || {
    cat "$DATA/cmd.err" >&2
    return 1
  }
  awk '{printf "%.3f %d\n", $1 + $2, $3}' "$DATA/time.out"
}

best_sf=999999 best_ew=999999 rss_sf=0 rss_ew=0
for i in $(seq "$RUNS"); do
  read -r c m < <(cpu "$SOFTFLOWD" -r "$PCAP" -n 127.0.0.1:9 -d)
  best_sf=$(awk -v a="$best_sf" -v b="$c" 'BEGIN{print (b < a) ? b : a}')
  rss_sf=$((m > rss_sf ? m : rss_sf))
  # shellcheck disable=SC2086
  read -r c m < <(cpu "$DATA/edgeward" flows $ARGS -r "$PCAP" -o /dev/null)
  best_ew=$(awk -v a="$best_ew" -v b="$c" 'BEGIN{print (b < a) ? b : a}')
  rss_ew=$((m > rss_ew ? m : rss_ew))
done
summary=$(tail -1 "$DATA/cmd.err")
packets=$(sed -E 's/.*: ([0-9]+) packets.*/\1/' <<<"$summary")
flows=$(sed -E 's/.*packets, ([0-9]+) flows.*/\1/' <<<"$summary")

awk -v p="$packets" -v f="$flows" -v sf="$best_sf" -v ew="$best_ew" -v rsf="$rss_sf" -v rew="$rss_ew" -v runs="$RUNS" -v file="$PCAP" -v args="$ARGS" 'BEGIN {
  printf "capture:   %s (%d packets, %d flows)\n", file, p, f
  printf "edgeward:  flows %s\n", args
  printf "%-10s %12s %14s %12s\n", "tool", "cpu s (best)", "packets/s/core", "peak RSS MiB"
  printf "%-10s %12.3f %14.0f %12.1f\n", "softflowd", sf, p / sf, rsf / 1024
  printf "%-10s %12.3f %14.0f %12.1f\n", "edgeward", ew, p / ew, rew / 1024
  printf "ratio edgeward/softflowd: %.2f (best of %d interleaved runs each)\n", sf / ew, runs
}'
