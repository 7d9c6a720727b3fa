#!/bin/sh
# Recovery: one worker holding 1,000 running sessions is SIGKILLed K times.
# The supervisor times each recovery pass from "the kernel reported the
# death" (pidfd readable) to "all 1,000 sessions QUEUED and enqueued", and
# the replacement's READY from the same instant.  Prints
# "p50_ms p99_ms ready_p50_ms ready_p99_ms" from forgectl stats.
# Usage: recovery.sh K
set -eu
K=$1
B=$(cd "$(dirname "$0")/.." && pwd)/build
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.2; rm -rf "$T"' EXIT
cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: 1
  restart:
    intensity: 100000
    backoff_initial_ms: 0
    backoff_max_ms: 0
region:
  path: $T/region
  sessions: 4096
worker:
  max_inflight: 1024
log:
  level: warn
http:
  enabled: false
YAML
"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
ctl() { "$B/forgectl" -r "$T/region" "$@"; }
until [ "$(ctl status --json 2>/dev/null | jq .workers_alive)" = 1 ]; do sleep 0.05; done
ctl submit --workflow synthetic --steps 1 --count 1000 --delay-us 600000000 > /dev/null
for i in $(seq "$K"); do
	until [ "$(ctl workers --json | jq '.[0].inflight')" = 1000 ] &&
	      [ "$(ctl workers --json | jq -r '.[0].state')" = ready ]; do sleep 0.01; done
	ctl kill-worker 0 > /dev/null
	until [ "$(ctl stats --json | jq .recovery.count)" = "$i" ]; do sleep 0.01; done
	[ "$(ctl workers --json | jq '.[0].last_signal')" = 9 ]
done
until [ "$(ctl workers --json | jq '.[0].inflight')" = 1000 ]; do sleep 0.01; done
ctl stats --json | jq -r '[.recovery.p50_us, .recovery.p99_us, .recovery.ready_p50_us, .recovery.ready_p99_us] | map(round / 1000) | @tsv'
