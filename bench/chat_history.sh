#!/bin/sh
# POST /v1/chat/completions with 10 messages of history (system, 4 user and
# assistant pairs, the question: bench/chat10.lua), each a whole ReAct
# session on the in-process scripted provider, under wrk -t1 -c32 for 3 s,
# median of RUNS.  Prints "requests_per_s p99_ms".
# Usage: chat_history.sh RUNS
set -eu
RUNS=${1:-3}
B=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
PORT=$((21000 + $$ % 9000))
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
. "$B/bench/http_forged.sh"
CHECKPOINT_BYTES=896 http_forged   # (a 10-message history fits inline, as by default)
rr= pp=
for r in $(seq "$RUNS"); do
	wrk -t1 -c32 -d3s --latency -s "$B/bench/chat10.lua" "http://127.0.0.1:$PORT/v1/chat/completions" > "$T/out"
	grep -q "Non-2xx" "$T/out" && { echo "chat_history.sh: errors:" >&2; cat "$T/out" >&2; exit 1; }
	rr="$rr $(awk '/Requests\/sec/ {print int($2)}' "$T/out")"
	pp="$pp $(p99 < "$T/out")"
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "$(echo $rr | med) $(echo $pp | med)"
