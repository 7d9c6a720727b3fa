#!/bin/sh
# mock-llm speaks the OpenAI wire format: the script (tool call, then final
# answer), streaming with tool-call deltas, keep-alive, exact errors, latency
# and every kind of injected failure.
. "$(dirname "$0")/../lib.sh"
MOCK=$ROOT/build/mock-llm
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
start_mock() {
	"$MOCK" --port "$PORT" "$@" 2>>"$T/mock.log" &
	MOCK_PID=$!
	until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
}
stop_mock() { kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; }
URL=http://127.0.0.1:$PORT/v1/chat/completions
ASK='{"model":"mock","messages":[{"role":"user","content":"what is 2+2?"}]}'
TOOL='{"model":"mock","messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"calculator","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"4"}]}'

start_mock
r=$(curl -sf "$URL" -d "$ASK")
echo "$r" | jq -e '.object == "chat.completion" and .choices[0].finish_reason == "tool_calls"
  and .choices[0].message.tool_calls[0].function.name == "calculator"
  and (.choices[0].message.tool_calls[0].function.arguments | fromjson) == {"expression":"2+2"}
  and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens' >/dev/null || fail "tool call: $r"
r=$(curl -sf "$URL" -d "$TOOL")
echo "$r" | jq -e '.choices[0].message.content == "The answer is 4." and .choices[0].finish_reason == "stop"' >/dev/null ||
	fail "final answer: $r"
# streaming: reassemble the tool-call arguments from the deltas
s=$(curl -sfN "$URL" -d '{"stream":true,"messages":[{"role":"user","content":"q"}]}')
[ "$(echo "$s" | tail -1)" = "data: [DONE]" ] || fail "stream does not end with [DONE]: $s"
args=$(echo "$s" | sed -n 's/^data: {/{/p' | jq -rj '.choices[0].delta.tool_calls[0].function.arguments // empty')
[ "$args" = '{"expression":"2+2"}' ] || fail "streamed arguments reassemble to '$args'"
s=$(curl -sfN "$URL" -d "$(echo "$TOOL" | jq -c '.stream = true')")
txt=$(echo "$s" | sed -n 's/^data: {/{/p' | jq -rj '.choices[0].delta.content // empty')
[ "$txt" = "The answer is 4." ] || fail "streamed content '$txt'"
# keep-alive: two requests, one connection
curl -sv "$URL" -d "$ASK" "$URL" -d "$TOOL" 2>&1 | grep -q "Re-using existing connection" || fail "no keep-alive"
# errors in the OpenAI error format
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL" -d '{bad')" = 400 ] || fail "bad JSON not 400"
curl -s "$URL" -d '{"messages":[]}' | jq -e '.error.message == "'"'"'messages'"'"' must be a non-empty array"' >/dev/null ||
	fail "empty messages"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/nope")" = 404 ] || fail "404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 405 ] || fail "GET not 405"
stop_mock

start_mock --latency-ms 200
t=$(curl -s -o /dev/null -w '%{time_total}' "$URL" -d "$ASK")
awk "BEGIN { exit !($t >= 0.2 && $t < 1.5) }" || fail "latency 200 ms took $t s"
stop_mock

for kind in 429 500 malformed truncated reset; do
	start_mock --fail-rate 1 --fail "$kind"
	set +e
	out=$(curl -s -D "$T/h" -w '\n%{http_code}' "$URL" -d "$ASK"); rc=$?
	set -e
	code=$(echo "$out" | tail -1)
	case $kind in
	429) [ "$code" = 429 ] && grep -qi '^retry-after: 1' "$T/h" || fail "429: $code $(cat "$T/h")" ;;
	500) [ "$code" = 500 ] && echo "$out" | head -1 | jq -e '.error.type == "server_error"' >/dev/null || fail "500: $out" ;;
	malformed) [ "$code" = 200 ] && ! echo "$out" | head -1 | jq . >/dev/null 2>&1 || fail "malformed: $out" ;;
	truncated) [ "$rc" = 18 ] || fail "truncated: curl exit $rc, want 18 (partial file)" ;;
	reset) [ "$rc" = 56 ] || [ "$rc" = 52 ] || fail "reset: curl exit $rc, want 56 or 52" ;;
	esac
	stop_mock
done
start_mock --fail-rate 0.5 --fail 500
n500=0
for i in $(seq 40); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL" -d "$ASK")" = 500 ] && n500=$((n500 + 1))
done
[ "$n500" -ge 8 ] && [ "$n500" -le 32 ] || fail "fail-rate 0.5 gave $n500 of 40"
stop_mock
echo "mock_llm: script, streaming deltas, keep-alive, errors, latency and 5 failure kinds as specified"
