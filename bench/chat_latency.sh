#!/bin/sh
# Chat completions latency: N sequential POST /v1/chat/completions (forge
# runs a 2-step ReAct session against mock-llm: two model calls) against the
# same two model calls made straight to mock-llm, in the same run.  Prints
# "chat_p50_ms chat_p99_ms direct_p50_ms direct_p99_ms" (milliseconds,
# curl's time_total, one connection per request for both), then the same
# four over one kept-alive connection (as SDK clients send them).
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
# The same over one kept-alive connection each, as SDK clients (openai,
# LangChain) send them: one curl for all N chat completions, one for all
# N pairs of model calls (a curl config file, "next" between requests).
printf '%s' "$chat" > "$T/chat.json"
printf '%s' "$first" > "$T/first.json"
printf '%s' "$second" > "$T/second.json"
: > "$T/ka-chat.cfg"; : > "$T/ka-direct.cfg"
for k in $(seq "$N"); do
	[ "$k" = 1 ] || echo next | tee -a "$T/ka-direct.cfg" >> "$T/ka-chat.cfg"
	printf 'url = "http://127.0.0.1:%s/v1/chat/completions"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{time_total}\\n"\n' \
		"$HP" "$T/chat.json" >> "$T/ka-chat.cfg"
	for b in first second; do
		[ "$b" = first ] || echo next >> "$T/ka-direct.cfg"
		printf 'url = "http://127.0.0.1:%s/v1/chat/completions"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{time_total}\\n"\n' \
			"$MP" "$T/$b.json" >> "$T/ka-direct.cfg"
	done
done
curl -s -K "$T/ka-chat.cfg" > "$T/ka-chat"
curl -s -K "$T/ka-direct.cfg" | awk 'NR % 2 == 1 { a = $1 } NR % 2 == 0 { print a + $1 }' > "$T/ka-direct"
[ "$(wc -l < "$T/ka-chat")" = "$N" ] && [ "$(wc -l < "$T/ka-direct")" = "$N" ] ||
	{ echo "chat_latency: the kept-alive runs did not answer $N times" >&2; exit 1; }
echo "$(pct 0.5 < "$T/chat") $(pct 0.99 < "$T/chat") $(pct 0.5 < "$T/direct") $(pct 0.99 < "$T/direct")" \
	"$(pct 0.5 < "$T/ka-chat") $(pct 0.99 < "$T/ka-chat") $(pct 0.5 < "$T/ka-direct") $(pct 0.99 < "$T/ka-direct")"
