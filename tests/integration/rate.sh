#!/bin/sh
# A provider's rate limit holds across both workers (it lives in the region):
# 100 ReAct sessions = 200 requests at 50 requests/s with a 1 s burst cannot
# finish in less than (200 - 51) / 50 = 2.98 s.  Only the lower bound is
# asserted: a slow machine cannot make this test fail.  Then streaming: the
# same sessions with "stream": true replies.
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
write_config
cat >> "$T/forge.yaml" <<YAML
llm:
  default: limited
  providers:
    limited:
      base_url: http://127.0.0.1:$PORT/v1
      rate_limit_rps: 50
    streamed:
      base_url: http://127.0.0.1:$PORT/v1
      stream: true
YAML
"$ROOT/build/mock-llm" --port "$PORT" 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
start_forged
ctl submit --workflow react --prompt "what is 2+2?" --count 100 > /dev/null
expect_all_done 100
w=$(ctl_stat .throughput.done_window_s)
awk "BEGIN { exit !($w >= 2.95) }" || fail "100 sessions at 50 rps took only $w s"
[ "$(ctl_stat .llm.calls)" = 200 ] || fail "llm calls $(ctl_stat .llm.calls), want 200"
ctl submit --workflow react --prompt "what is 2+2?" --provider streamed --count 100 -c "$T/forge.yaml" > /dev/null
expect_all_done 200
[ "$(ctl sessions --state done --json | jq '[.[] | select(.result == "The answer is 4.")] | length')" = 200 ] ||
	fail "streamed sessions without the answer"
stop_forged
echo "rate: 200 requests at 50 rps took $w s (bound 2.98), 100 streamed sessions answered"
