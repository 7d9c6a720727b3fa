#!/bin/sh
# ReAct sessions through real HTTP to mock-llm while workers are SIGKILLed
# at random: every one of 1,000 sessions must end DONE with "The answer is
# 4.", its conversation exactly user / tool call / tool result / answer (no
# message twice: forgectl check validates every conversation), and the
# check clean.  Then the same with mock-llm injecting 429s, 500s, malformed
# and truncated replies and connection resets into a fifth of its replies.
. "$(dirname "$0")/../lib.sh"
MOCK=$ROOT/build/mock-llm
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
write_config
cat >> "$T/forge.yaml" <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
      max_retries: 30
      retry_base_ms: 5
      timeout_ms: 5000
    tight:
      base_url: http://127.0.0.1:$PORT/v1
      max_retries: 30
      retry_base_ms: 5
      timeout_ms: 500
    scripted:
      type: scripted
YAML

run_round() { # run_round NAME MOCK-ARGS...
	name=$1; shift
	"$MOCK" --port "$PORT" "$@" 2>>"$T/mock.log" &
	MOCK_PID=$!
	until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
	before=$(ctl_stat .sessions.done)
	ctl submit --workflow react --prompt "what is 2+2?" --count 1000 > "$T/ids.$name"
	kills=0
	kill_until_done 120 0.1 "$name"
	expect_all_done $((before + 1000))
	bad=$(ctl sessions --state done --json | jq '[.[] | select(.workflow == "react" and .result != "The answer is 4.")] | length')
	[ "$bad" = 0 ] || fail "$name: $bad sessions without the expected answer"
	id=$(head -1 "$T/ids.$name")
	ctl session "$id" --json | jq -e '[.messages[].role] == ["user","assistant","tool","assistant"]
	  and .messages[1].tool_calls[0].function.name == "calculator" and .messages[2].content == "4"
	  and .steps == 2' >/dev/null || fail "$name: conversation of $id: $(ctl session "$id" --json)"
	kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; MOCK_PID=
	[ "$kills" -ge 3 ] || fail "$name: only $kills kills landed"
	echo "$name: 1000 done, $kills kills" >> "$T/summary"
}

start_forged
run_round plain --latency-ms 300
run_round faults --latency-ms 100 --fail-rate 0.2 --fail 429,500,malformed,truncated,reset
retries=$(ctl_stat .llm.retries)
[ "$retries" -gt 50 ] || fail "only $retries retries with a fifth of replies failing"
# replies slower than the provider's timeout (500 ms): a third of them take
# 2.5 s; each such request is abandoned at 500 ms and retried
"$MOCK" --port "$PORT" --latency-ms 50 --fail-rate 0.3 --fail slow 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start"
ctl submit --workflow react --prompt "what is 2+2?" --provider tight --count 200 -c "$T/forge.yaml" > /dev/null
expect_all_done 2200
slow_retries=$(( $(ctl_stat .llm.retries) - retries ))
[ "$slow_retries" -ge 20 ] || fail "only $slow_retries retries with a third of replies past the timeout"
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; MOCK_PID=
bad=$(ctl sessions --state done --json | jq '[.[] | select(.workflow == "react" and .result != "The answer is 4.")] | length')
[ "$bad" = 0 ] || fail "slow: $bad sessions without the expected answer"
echo "slow: 200 done past a 500 ms timeout, $slow_retries retries" >> "$T/summary"
retries=$(ctl_stat .llm.retries)
# a 429 storm: every reply is 429 (Retry-After: 1) for 3 s, then the
# provider recovers; every session waits it out and finishes
"$MOCK" --port "$PORT" --fail-rate 1 --fail 429 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start"
ctl submit --workflow react --prompt "what is 2+2?" --count 200 -c "$T/forge.yaml" > /dev/null
sleep 3   # the storm's length: a duration, not a wait for an event
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true
storm=$(( $(ctl_stat .llm.retries) - retries ))
[ "$storm" -ge 200 ] || fail "429 storm: only $storm retries"
t0=$(( $(date +%s%N) / 1000000 ))
"$MOCK" --port "$PORT" 2>>"$T/mock.log" &
MOCK_PID=$!
expect_all_done 2400
echo "429 storm: 200 sessions through 3 s of 429s ($storm retries), all done $(( $(date +%s%N) / 1000000 - t0 )) ms after it ended" >> "$T/summary"
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; MOCK_PID=
retries=$(ctl_stat .llm.retries)
# scripted provider: no network, same conversation shape, under kills too
ctl submit --workflow react --prompt "what is 2+2?" --provider scripted --count 2000 -c "$T/forge.yaml" > /dev/null
ctl kill-worker 0 > /dev/null || true
expect_all_done 4400
stop_forged
echo "react_chaos: $(tr '\n' ';' < "$T/summary") $retries LLM retries, 2000 scripted; every answer right, check clean; $(recovery)"
