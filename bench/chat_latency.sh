#!/bin/sh
# Chat completions latency: N sequential POST /v1/chat/completions (forge
# runs a 2-step ReAct session against mock-llm: two model calls) against the
# same two model calls made straight to mock-llm, in the same run.  Prints
# "chat_p50_ms chat_p99_ms direct_p50_ms direct_p99_ms" (milliseconds,
# curl's time_total, one connection per request for both).
# Usage: bench/chat_latency.sh [N] [BIN]     (default 300, build)
set -eu
N=${1:-300}
B=${2:-build}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/forge-chat.XXXXXX)
MP=$((22000 + $$ % 9000)); HP=$((MP + 1))
cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: 2
region:
  path: ${REGION_DIR:-$T}/region-chat-$$
  sessions: 4096
  retain_s: 1
http:
  listen: 127.0.0.1:$HP
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$MP/v1
log:
  level: warn
YAML
"$B/mock-llm" --port "$MP" 2>/dev/null & mock=$!
"$B/forged" -c "$T/forge.yaml" 2>"$T/forged.log" & fpid=$!
trap 'kill $mock $fpid 2>/dev/null; wait 2>/dev/null; rm -rf "$T" "${REGION_DIR:-$T}/region-chat-$$"*' EXIT
i=0
until curl -sf "http://127.0.0.1:$HP/readyz" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "chat_latency: forged not ready" >&2; exit 1; }
	sleep 0.05
done
pct() { sort -n | awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p + 0.999); if (i < 1) i = 1; printf "%.3f", a[i] * 1000 }'; }
chat='{"model":"forge/react","messages":[{"role":"user","content":"what is 2+2?"}]}'
first='{"model":"mock","messages":[{"role":"user","content":"what is 2+2?"}]}'
second='{"model":"mock","messages":[{"role":"user","content":"what is 2+2?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"calculator","arguments":"{\"expression\":\"2+2\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"4"}]}'
for k in $(seq 20); do   # warm-up
	curl -s -o /dev/null "http://127.0.0.1:$HP/v1/chat/completions" -d "$chat"
done
: > "$T/chat"; : > "$T/direct"
for k in $(seq "$N"); do
	curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$HP/v1/chat/completions" -d "$chat" >> "$T/chat"
	a=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$MP/v1/chat/completions" -d "$first")
	b=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$MP/v1/chat/completions" -d "$second")
	echo "$a $b" | awk '{ print $1 + $2 }' >> "$T/direct"
done
echo "$(pct 0.5 < "$T/chat") $(pct 0.99 < "$T/chat") $(pct 0.5 < "$T/direct") $(pct 0.99 < "$T/direct")"
