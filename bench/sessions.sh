#!/bin/sh
# Synthetic sessions per second with W workers: N sessions of STEPS steps
# are queued while forged is stopped, then forged starts and the rate is
# taken from the region itself (first claim to last finish).
# Usage: sessions.sh W N STEPS RUNS   (prints the median, sessions/s)
set -eu
W=$1 N=$2 STEPS=$3 RUNS=$4
B=$(cd "$(dirname "$0")/.." && pwd)/build
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.2; rm -rf "$T"' EXIT
cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: $W
region:
  path: $T/region
  sessions: $N
  checkpoint_bytes: 0
worker:
  max_inflight: 1024
log:
  level: warn
YAML
rates=""
for r in $(seq "$RUNS"); do
	rm -f "$T/region"
	"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	until [ "$("$B/forgectl" -r "$T/region" status --json 2>/dev/null | jq .workers_alive)" = "$W" ]; do sleep 0.05; done
	kill -TERM $pid; wait $pid
	"$B/forgectl" -r "$T/region" submit --workflow synthetic --steps "$STEPS" --count "$N" > /dev/null
	"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	"$B/forgectl" -r "$T/region" wait --timeout 120
	rate=$("$B/forgectl" -r "$T/region" stats --json | jq '.throughput.done_per_s | floor')
	done_n=$("$B/forgectl" -r "$T/region" stats --json | jq .sessions.done)
	[ "$done_n" = "$N" ] || { echo "sessions.sh: only $done_n of $N done" >&2; exit 1; }
	"$B/forgectl" -r "$T/region" check > /dev/null
	kill -TERM $pid; wait $pid
	rates="$rates $rate"
done
echo $rates | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
