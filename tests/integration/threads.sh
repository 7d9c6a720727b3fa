#!/bin/sh
# Threads, resume, and chat completions that keep what clients send.
#   1  a finished react session takes its next message (POST
#      /v1/sessions/{id}/messages, forgectl say) and runs again with its
#      whole conversation; refusals name why (running, not react, unknown)
#   2  forgectl say killed at each step of the continue (crash points
#      session.continue.*): the message is there once or not at all, the
#      session ends, check stays clean
#   3  a session failed by a provider outage resumes from its last commit
#      (POST .../resume, forgectl resume) once the provider is back
#   4  chat completions: the whole history (system, developer, user,
#      assistant, content parts) and the sampling parameters reach the
#      model as sent (mock-llm's "echo"); client tools come back as
#      tool_calls (finish_reason "tool_calls", streamed too) and their
#      results continue the session that asked for them, forge's own tool
#      calls of that run not repeated, a retry and a request after a gateway
#      kill joining the same run (a client tool named like one of
#      forge's is the client's); n > 1, images, a history that ends with the
#      assistant, a tool result that answers no call: 400 naming the field; Idempotency-Key: a retry
#      is the same session; a failed run: 502 with x-should-retry: false
#   5  chaos: 100 threads of 4 messages each while workers are killed: every
#      thread's messages in order, none twice
#   6  fork (run before 5): a new session from a past point of another
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))
DEAD=$((PORT + 1))   # a provider that is down until test 3 starts it
write_config
llm_yaml "$PORT"
cat >> "$T/forge.yaml" <<YAML
    down:
      base_url: http://127.0.0.1:$DEAD/v1
      max_retries: 1
      retry_base_ms: 5
      give_up_after_s: 0
    patient:
      base_url: http://127.0.0.1:$DEAD/v1
      max_retries: 1
      retry_base_ms: 100
      give_up_after_s: 60
YAML
mock_on "$PORT" --latency-ms 20 --log-requests "$T/requests"
start_forged
roles() { ctl session --json "$1" | jq -c '[.messages[].role]'; }
state_is() { [ "$(ctl session --json "$1" | jq -r .state)" = "$2" ]; }
post() { curl -s -o "$T/out" -w '%{http_code}' -X POST "$API$1" -H 'Content-Type: application/json' -d "$2"; }

# ---- 1. threads ----------------------------------------------------------------
id=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 state_is "$id" done || fail "1: first run"
code=$(post "/v1/sessions/$id/messages" '{"content":[{"type":"text","text":"and "},{"type":"text","text":"3+3?"}]}')
[ "$code" = 202 ] && case $(jq -r .state "$T/out") in queued|running|done) true ;; *) false ;; esac ||
	fail "1: message: $code $(cat "$T/out")"
until_true 10 state_is "$id" done || fail "1: second run"
[ "$(ctl session --json "$id" | jq -r '.messages[4].content')" = "and 3+3?" ] || fail "1: the message: $(roles "$id")"
[ "$(ctl say "$id" "and 4+4?")" = "$id queued" ] || fail "1: forgectl say"
until_true 10 state_is "$id" done || fail "1: third run"
want='["user","assistant","tool","assistant","user","assistant","user","assistant"]'
[ "$(roles "$id")" = "$want" ] || fail "1: roles $(roles "$id")"
# Idempotency-Key on a message: the retry adds nothing (200, replayed)
code=$(curl -s -o "$T/out" -w '%{http_code}' -X POST "$API/v1/sessions/$id/messages" -H 'Idempotency-Key: msg-1' -d '{"content":"keyed"}')
[ "$code" = 202 ] || fail "1: keyed message: $code $(cat "$T/out")"
until_true 10 state_is "$id" done || fail "1: keyed run"
code=$(curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code}' -X POST "$API/v1/sessions/$id/messages" -H 'Idempotency-Key: msg-1' -d '{"content":"keyed"}')
[ "$code" = 200 ] && grep -qi '^Idempotent-Replayed: true' "$T/hdr" || fail "1: keyed retry: $code $(cat "$T/out")"
[ "$(ctl session --json "$id" | jq '[.messages[] | select(.content == "keyed")] | length')" = 1 ] ||
	fail "1: the keyed message twice: $(roles "$id")"
# refusals
slow=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?","model":"down"}' | jq -r .id)
code=$(post "/v1/sessions/00000000000000000000000000000000/messages" '{"content":"x"}')
[ "$code" = 404 ] || fail "1: unknown id: $code"
code=$(post "/v1/sessions/$id/messages" '{"content":""}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/out")" = content ] || fail "1: empty: $code $(cat "$T/out")"
code=$(post "/v1/sessions/$id/messages" '{"content":"x","rol":"user"}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/out")" = rol ] && [ "$(jq -r .error.message "$T/out")" = 'unknown field "rol" (content, role)' ] ||
	fail "1: unknown field: $code $(cat "$T/out")"
mr=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?","workflow":"map_reduce"}' | jq -r .id)
until_true 20 state_is "$mr" done || fail "1: map_reduce"
code=$(post "/v1/sessions/$mr/messages" '{"content":"more"}')
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/out")" = "session $mr: it is a map_reduce session: only react sessions take a next message" ] ||
	fail "1: map_reduce: $code $(cat "$T/out")"
code=$(post "/v1/sessions/$id/resume" '')
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/out")" = "session $id: it is done: only a failed session resumes" ] ||
	fail "1: resume of a done one: $code $(cat "$T/out")"
for try in 1 2 3 4 5; do   # (one that has not ended before the cancel)
	cx=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?"}' | jq -r .id)
	curl -s -o /dev/null -X DELETE "$API/v1/sessions/$cx"
	until_true 10 sh -c "$BIN/forgectl --region $REGION session --json $cx | jq -e '.state == \"cancelled\" or .state == \"done\"'" || fail "1: cancel"
	state_is "$cx" cancelled && break
done
state_is "$cx" cancelled || fail "1: 5 sessions ended before their cancel"
code=$(post "/v1/sessions/$cx/messages" '{"content":"more"}')
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/out")" = "session $cx: it was cancelled: a cancelled session takes no further message" ] ||
	fail "1: message to a cancelled one: $code $(cat "$T/out")"
echo "1: a thread of 3 runs (API and forgectl say), refusals named"

# ---- 2. a continue killed at each step ----------------------------------------
for p in session.continue.before_cas session.continue.after_cas session.continue.after_commit; do
	t=$(ctl submit --workflow react --prompt "what is 2+2?")
	until_true 10 state_is "$t" done || fail "2: $p: first run"
	set +e; FORGE_CRASHPOINT="$p:1" ctl say "$t" "again?" > /dev/null 2>&1; rc=$?; set -e
	[ $rc = 137 ] || [ $rc = 9 ] || [ $rc -ge 128 ] || fail "2: $p: forgectl say was not killed (rc $rc)"
	until_true 20 state_is "$t" done || fail "2: $p: never ended: $(ctl session --json "$t" | jq -c '{state}')"
	case $p in
	*after_commit) want='["user","assistant","tool","assistant","user","assistant"]' ;;
	*) want='["user","assistant","tool","assistant"]' ;;
	esac
	[ "$(roles "$t")" = "$want" ] || fail "2: $p: roles $(roles "$t"), want $want"
	# and it still takes a message afterwards
	ctl say "$t" "once more" > /dev/null || fail "2: $p: say after"
	until_true 10 state_is "$t" done || fail "2: $p: run after"
done
ctl check > "$T/check.out" || fail "2: check: $(cat "$T/check.out")"
echo "2: forgectl say killed before the CAS, after it and after the commit: the message once or not at all"

# ---- 3. resume after an outage ---------------------------------------------------
until_true 20 state_is "$slow" failed || fail "3: the session on the dead provider did not fail"
mock_on "$DEAD"
code=$(post "/v1/sessions/$slow/resume" '')
[ "$code" = 202 ] || fail "3: resume: $code $(cat "$T/out")"
until_true 10 state_is "$slow" done || fail "3: not done after resume: $(ctl session --json "$slow" | jq -c .)"
[ "$(ctl session --json "$slow" | jq -r .result)" = "The answer is 4." ] || fail "3: result"
kill "$MOCK_ON"; wait "$MOCK_ON" 2>/dev/null || true
f2=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?","model":"down"}' | jq -r .id)
until_true 20 state_is "$f2" failed || fail "3: second failure"
mock_on "$DEAD"
[ "$(ctl resume "$f2")" = "$f2 queued" ] || fail "3: forgectl resume"
until_true 10 state_is "$f2" done || fail "3: not done after forgectl resume"
kill "$MOCK_ON"; wait "$MOCK_ON" 2>/dev/null || true
# give_up_after_s: an outage shorter than it is waited out, past max_retries
pa=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?","model":"patient"}' | jq -r .id)
until_true 10 grep -q "provider patient failing for 1 attempts" "$T/forged.log" || fail "3: patient: no retry"
sleep 1   # (the outage goes on: more tries than max_retries)
state_is "$pa" running || state_is "$pa" queued || fail "3: patient: gave up: $(ctl session --json "$pa" | jq -c '{state,error}')"
# the wait is shown: forgectl session (JSON and text), the API, /metrics
ctl session --json "$pa" | jq -e '.retrying | .provider == "patient" and .failures >= 2 and .give_up_after_s == 60 and .max_retries == 1 and (.error | test("Could.?n.t connect")) and .failing_for_s >= 1' > /dev/null ||
	fail "3: patient: the wait in forgectl session: $(ctl session --json "$pa" | jq -c .retrying)"
ctl session "$pa" | grep -q "^retrying  *provider patient failing for [0-9.]* s, [0-9]* failed requests in a row; next try in [0-9.]* s; gives up after 1 failures and 60 s (max_retries, give_up_after_s): " ||
	fail "3: patient: forgectl session text: $(ctl session "$pa" | grep retrying)"
[ "$(curl -s "$API/v1/sessions/$pa" | jq -r .retrying.provider)" = patient ] || fail "3: patient: the wait in the API"
curl -s "$API/metrics" | grep -qx 'forge_llm_failing_sessions{provider="patient"} 1' &&
	curl -s "$API/metrics" | grep -q '^forge_llm_failing_seconds{provider="patient"} [1-9]' ||
	fail "3: patient: /metrics: $(curl -s "$API/metrics" | grep failing)"
mock_on "$DEAD"
until_true 20 state_is "$pa" done || fail "3: patient: not done after the outage: $(ctl session --json "$pa" | jq -c '{state,error}')"
[ "$(ctl session --json "$pa" | jq -c .retrying)" = null ] && curl -s "$API/metrics" | grep -qx 'forge_llm_failing_sessions{provider="patient"} 0' ||
	fail "3: patient: still shown as failing once done"
kill "$MOCK_ON"; wait "$MOCK_ON" 2>/dev/null || true
echo "3: failed by an outage, resumed from the last commit (API and forgectl), done; a 1 s outage waited out (give_up_after_s), the wait shown in forgectl session, the API and /metrics"

# ---- 4. chat completions ---------------------------------------------------------
chat() { curl -s -o "$T/chat" -w '%{http_code}' -D "$T/hdr" "$API/v1/chat/completions" -H 'Content-Type: application/json' "$@"; }
code=$(chat -d '{"model":"forge/react","messages":[{"role":"system","content":"be brief"},{"role":"developer","content":"dev note"},{"role":"user","content":"My name is Ada"},{"role":"assistant","content":"Hello Ada"},{"role":"user","content":[{"type":"text","text":"ec"},{"type":"text","text":"ho"}]}],"temperature":0.2,"top_p":0.9,"max_tokens":50,"stop":["\n\n"],"seed":7,"response_format":{"type":"json_object"}}')
[ "$code" = 200 ] || fail "4: history: $code $(cat "$T/chat")"
jq -r '.choices[0].message.content' "$T/chat" > "$T/echo"
[ "$(jq -c '[.roles, .contents]' "$T/echo")" = '[["system","system","user","assistant","user"],["be brief","dev note","My name is Ada","Hello Ada","echo"]]' ] ||
	fail "4: history sent: $(cat "$T/echo")"
[ "$(jq -c '[.temperature, .top_p, .max_tokens, .stop, .seed, .response_format]' "$T/echo")" = '[0.2,0.9,50,["\n\n"],7,{"type":"json_object"}]' ] ||
	fail "4: parameters sent: $(cat "$T/echo")"
# plan_execute and map_reduce: the sampling parameters reach every call
# (split or plan, each part's child, the answer), the answer's shape only
# the call that writes the answer; tools are refused
for wf in map_reduce plan_execute; do
	: > "$T/requests"
	code=$(chat -d "{\"model\":\"forge/$wf\",\"messages\":[{\"role\":\"user\",\"content\":\"what is 2+2?\"}],\"temperature\":0.3,\"seed\":5,\"max_tokens\":77,\"stop\":\"END\"}")
	[ "$code" = 200 ] && [ "$(jq -r '.choices[0].message.content' "$T/chat")" = "The answer is 4." ] || fail "4: $wf: $code $(cat "$T/chat")"
	got=$(jq -c '[(.messages[0].content | if startswith("forge:split") or startswith("forge:plan") then "split" elif startswith("forge:reduce") then "answer" else "part" end), .temperature, .seed, .max_tokens, .stop]' "$T/requests" | sort | uniq -c | sed 's/^ *//' | paste -sd'|')
	[ "$got" = '1 ["answer",0.3,5,77,"END"]|4 ["part",0.3,5,null,null]|1 ["split",0.3,5,null,null]' ] ||
		fail "4: $wf: the calls' parameters: $got"
done
code=$(chat -d '{"model":"forge/plan_execute","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/chat")" = tool_choice ] || fail "4: tool_choice on plan_execute: $code $(cat "$T/chat")"
# client tools: the call comes back, its result goes on
tools='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]'
code=$(chat -d "{\"model\":\"forge/react\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris?\"}],\"tools\":$tools}")
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].finish_reason' "$T/chat")" = tool_calls ] &&
	[ "$(jq -c '.choices[0].message.tool_calls[0].function' "$T/chat")" = '{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}' ] ||
	fail "4: client tool: $code $(cat "$T/chat")"
cid=$(jq -r '.choices[0].message.tool_calls[0].id' "$T/chat")
code=$(chat -d "{\"model\":\"forge/react\",\"tools\":$tools,\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"$cid\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"$cid\",\"content\":\"sunny\"}]}")
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].finish_reason' "$T/chat")" = stop ] &&
	[ "$(jq -r '.choices[0].message.content' "$T/chat")" = "The answer is 4." ] || fail "4: tool result: $code $(cat "$T/chat")"
curl -sN "$API/v1/chat/completions" -d "{\"model\":\"forge/react\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],\"tools\":$tools}" > "$T/stream"
grep '^data: {' "$T/stream" | sed 's/^data: //' | jq -r '.choices[0].finish_reason // empty' | grep -qx tool_calls &&
	grep '^data: {' "$T/stream" | sed 's/^data: //' | jq -r '.choices[0].delta.tool_calls[0].function.name // empty' | grep -qx get_weather ||
	fail "4: streamed tool call: $(cat "$T/stream")"
# a run that ran forge's calculator, then asked for the client's tool: the
# client's results continue that session (forge's tool is not run again),
# a retry of that request (no key) attaches to the same run, and so does
# one after the gateway was killed (the index is rebuilt from the region)
mixed() {
	chat -d "{\"model\":\"${3:-forge/react}\",\"tools\":$tools,$1\"messages\":[{\"role\":\"user\",\"content\":\"mixed: math, then weather\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"$2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"$2\",\"content\":\"sunny\"}]}"
}
sid() { tr -d '\r' < "$T/hdr" | sed -n 's/^[Xx]-[Ff]orge-[Ss]ession: //p'; }
kill_gateway() {   # SIGKILL the gateway; back when a new one answers
	_gw=$(pgrep -P "$FORGED_PID" forge-gateway)
	kill -KILL "$_gw"
	until_true 10 sh -c "curl -sf $API/healthz > /dev/null && [ \"\$(pgrep -P $FORGED_PID forge-gateway)\" != $_gw ]" ||
		fail "4: the gateway did not come back after a kill"
}
calc_runs() { ctl session --json "$1" | jq '[.messages[] | select(.role == "tool" and .content != "sunny")] | length'; }
for round in plain stream; do
	s=; [ $round = stream ] && s='"stream":true,'
	code=$(chat -d "{\"model\":\"forge/react\",\"tools\":$tools,$s\"messages\":[{\"role\":\"user\",\"content\":\"mixed: math, then weather\"}]}")
	m1=$(sid)
	if [ $round = plain ]; then
		cid=$(jq -r '.choices[0].message.tool_calls[0].id' "$T/chat")
	else
		cid=$(grep '^data: {' "$T/chat" | sed 's/^data: //' | jq -r '.choices[0].delta.tool_calls[0].id // empty')
	fi
	[ "$code" = 200 ] && [ -n "$cid" ] && [ "$(calc_runs "$m1")" = 1 ] || fail "4: mixed ($round): $code $(cat "$T/chat")"
	code=$(mixed "$s" "$cid")
	if [ $round = plain ]; then
		ans=$(jq -r '.choices[0].message.content' "$T/chat")
	else
		ans=$(grep '^data: {' "$T/chat" | sed 's/^data: //' | jq -j '.choices[0].delta.content // empty')
	fi
	[ "$code" = 200 ] && [ "$(sid)" = "$m1" ] && [ "$ans" = "The answer is 4." ] ||
		fail "4: mixed ($round): results went to $(sid), not $m1: $code $(cat "$T/chat")"
	want='["user","assistant","tool","assistant","tool","assistant"]'
	[ "$(roles "$m1")" = "$want" ] && [ "$(calc_runs "$m1")" = 1 ] || fail "4: mixed ($round): $(roles "$m1")"
done
code=$(mixed "" "$cid")
[ "$code" = 200 ] && [ "$(sid)" = "$m1" ] && [ "$(roles "$m1")" = "$want" ] ||
	fail "4: mixed: a retry went to $(sid), not $m1: $code $(cat "$T/chat") $(roles "$m1")"
code=$(chat -d "{\"model\":\"forge/react\",\"tools\":$tools,\"messages\":[{\"role\":\"user\",\"content\":\"mixed: math, then weather\"}]}")
m2=$(sid)
cid=$(jq -r '.choices[0].message.tool_calls[0].id' "$T/chat")
kill_gateway
code=$(mixed "" "$cid")
[ "$code" = 200 ] && [ "$(sid)" = "$m2" ] && [ "$(roles "$m2")" = "$want" ] ||
	fail "4: mixed after a gateway kill: results went to $(sid), not $m2: $code $(cat "$T/chat")"
# and its retry after another gateway kill, the continue done: the same run
kill_gateway
code=$(mixed "" "$cid")
[ "$code" = 200 ] && [ "$(sid)" = "$m2" ] && [ "$(roles "$m2")" = "$want" ] ||
	fail "4: mixed: a retry after the continue and a gateway kill went to $(sid), not $m2: $code $(roles "$m2")"
# other parameters are another request: a new session, not the old answer
code=$(mixed '"temperature":0.5,' "$cid")
[ "$code" = 200 ] && [ "$(sid)" != "$m2" ] || fail "4: mixed: a request with other parameters joined $m2"
# a continue whose run failed (its provider down) is taken up again by the
# same request once the provider is back: the same session, its calculator
# call not run again
mock_on "$DEAD"
code=$(chat -d "{\"model\":\"forge/react@down\",\"tools\":$tools,\"messages\":[{\"role\":\"user\",\"content\":\"mixed: math, then weather\"}]}")
m3=$(sid)
cid=$(jq -r '.choices[0].message.tool_calls[0].id' "$T/chat")
[ "$code" = 200 ] && [ -n "$cid" ] || fail "4: mixed on down: $code $(cat "$T/chat")"
kill "$MOCK_ON"; wait "$MOCK_ON" 2>/dev/null || true
code=$(mixed "" "$cid" forge/react@down)
[ "$code" = 502 ] && [ "$(sid)" = "$m3" ] || fail "4: mixed on down: the continue should fail: $code $(cat "$T/chat")"
mock_on "$DEAD"
code=$(mixed "" "$cid" forge/react@down)
[ "$code" = 200 ] && [ "$(sid)" = "$m3" ] && [ "$(jq -r '.choices[0].message.content' "$T/chat")" = "The answer is 4." ] &&
	[ "$(calc_runs "$m3")" = 1 ] || fail "4: mixed on down: the retry: $code $(sid) $(cat "$T/chat") $(roles "$m3")"
kill "$MOCK_ON"; wait "$MOCK_ON" 2>/dev/null || true
# a client's own tool loop longer than max_steps (10): the session's budget
# counts from the history's end, not from the last user message
h='{"role":"user","content":"weather, 12 times?"}'
for k in $(seq 12); do
	h="$h,{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"r$k\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"r$k\",\"content\":\"sunny\"}"
done
code=$(chat -d "{\"model\":\"forge/react\",\"tools\":$tools,\"messages\":[$h]}")
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].message.content' "$T/chat")" = "The answer is 4." ] ||
	fail "4: 12 client rounds in the history: $code $(cat "$T/chat")"
# what an assistant said beside its tool calls is kept and sent back
code=$(chat -d "{\"model\":\"forge/react\",\"tools\":$tools,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":\"Let me look.\",\"tool_calls\":[{\"id\":\"w1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"w1\",\"content\":\"sunny\"},{\"role\":\"user\",\"content\":\"echo\"}]}")
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].message.content' "$T/chat" | jq -c .contents)" = '["weather?","Let me look.","sunny","echo"]' ] ||
	fail "4: text beside tool calls: $code $(cat "$T/chat")"
# refusals
code=$(chat -d '{"model":"forge/react","n":2,"messages":[{"role":"user","content":"x"}]}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/chat")" = n ] || fail "4: n: $code $(cat "$T/chat")"
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/chat")" = 'message 0: content part 0 is of type "image_url": forge takes text parts only (images, audio and files are not supported yet)' ] ||
	fail "4: image: $code $(cat "$T/chat")"
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/chat")" = "the last message is from the assistant: a conversation ends with a user message or tool results for the agent to answer" ] ||
	fail "4: ends with assistant: $code $(cat "$T/chat")"
# a client tool named like one of forge's is the client's: forge's is not offered
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":"echo"}],"tools":[{"type":"function","function":{"name":"calculator"}}]}')
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].message.content' "$T/chat" | jq -c .tools)" = '["calculator"]' ] ||
	fail "4: a client calculator: $code $(cat "$T/chat")"
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":"2+2?"}],"tools":[{"type":"function","function":{"name":"calculator"}}]}')
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].finish_reason' "$T/chat")" = tool_calls ] || fail "4: client calculator call: $code $(cat "$T/chat")"
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"r"}]}')
[ "$code" = 400 ] && jq -r .error.message "$T/chat" | grep -q "^the history does not hold together: tool record at byte [0-9]* names no pending call$" ||
	fail "4: stray tool result: $code $(cat "$T/chat")"
# Idempotency-Key: the retry is the same session
chat -H 'Idempotency-Key: chat-1' -d '{"model":"forge/react","messages":[{"role":"user","content":"what is 2+2?"}]}' > /dev/null
a=$(jq -r .id "$T/chat")
chat -H 'Idempotency-Key: chat-1' -d '{"model":"forge/react","messages":[{"role":"user","content":"what is 2+2?"}]}' > /dev/null
[ "$(jq -r .id "$T/chat")" = "$a" ] || fail "4: retry with the key made $(jq -r .id "$T/chat"), first $a"
# the same key with another request: 409, not the first one's answer
code=$(chat -H 'Idempotency-Key: chat-1' -d '{"model":"forge/react","messages":[{"role":"user","content":"what is 3+3?"}]}')
[ "$code" = 409 ] && [ "$(jq -r .error.param "$T/chat")" = Idempotency-Key ] || fail "4: key reused: $code $(cat "$T/chat")"
# a history's tool calls are the client's own: forge runs no call its model did not make
code=$(chat -d '{"model":"forge/react","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"shell","arguments":"{\"argv\":[\"date\"]}"}}]},{"role":"tool","tool_call_id":"c0","content":"r"}]}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/chat")" = 'message 1: tool_calls[0] calls "shell", which is not one of the request'"'"'s tools: a history'"'"'s tool calls are the client'"'"'s own' ] ||
	fail "4: a history calling forge's shell: $code $(cat "$T/chat")"
# a failed run: 502, not to be retried
code=$(chat -d '{"model":"forge/react@down","messages":[{"role":"user","content":"what is 2+2?"}]}')
[ "$code" = 502 ] && grep -qi '^x-should-retry: false' "$T/hdr" && [ "$(jq -r .error.code "$T/chat")" = session_failed ] ||
	fail "4: failed run: $code $(cat "$T/hdr" "$T/chat")"
echo "4: chat completions keep history and parameters, client tools round trip (streamed too) continuing the run that asked, refusals named, a key's retry is one session, a failure says not to retry"

# ---- 6. fork: a new session from a past point of another ------------------------
src=$(ctl submit --workflow react --prompt "what is 2+2?")
until_true 10 state_is "$src" done || fail "6: source"
want_src=$(ctl session --json "$src" | jq -c .messages)
f1=$(ctl fork "$src" "and 5+5?") || fail "6: forgectl fork"
until_true 10 state_is "$f1" done || fail "6: fork 1 not done"
[ "$(roles "$f1")" = '["user","assistant","tool","assistant","user","assistant"]' ] &&
	[ "$(ctl session --json "$f1" | jq -r '.messages[4].content')" = "and 5+5?" ] || fail "6: fork 1: $(roles "$f1")"
# from the tool result: the model's answer is asked again, the tool not run again
f2=$(ctl fork "$src" --at 3) || fail "6: fork --at 3"
until_true 10 state_is "$f2" done || fail "6: fork 2 not done"
[ "$(roles "$f2")" = '["user","assistant","tool","assistant"]' ] && [ "$(ctl session --json "$f2" | jq -r .result)" = "The answer is 4." ] ||
	fail "6: fork 2: $(roles "$f2")"
[ "$(ctl session --json "$src" | jq -c .messages)" = "$want_src" ] || fail "6: the source changed"
# refusals name why
err=$(ctl fork "$src" --at 2 2>&1) && fail "6: a cut between calls and results was taken"
[ "$err" = "forgectl: fork: session $src: message 1 is a tool-call turn whose 1 results follow it: fork before the tool calls or after all their results" ] || fail "6: cut: $err"
err=$(ctl fork "$src" 2>&1) && fail "6: a fork that ends with the answer was taken"
[ "$err" = "forgectl: fork: session $src: the conversation would end with the assistant's answer: give the next user message to fork with" ] || fail "6: end: $err"
code=$(post "/v1/sessions/$src/fork" '{"at":9}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/out")" = at ] && [ "$(jq -r .error.message "$T/out")" = "session $src cannot fork there: it has 4 messages: at must be 0 to 4" ] ||
	fail "6: at 9: $code $(cat "$T/out")"
code=$(post "/v1/sessions/$src/fork" '{"at":1,"prompt":"x"}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/out")" = 'unknown field "prompt" (at, content)' ] ||
	fail "6: unknown field: $code $(cat "$T/out")"
mr=$(ctl submit --workflow map_reduce --prompt "what is 2+2?")
code=$(post "/v1/sessions/$mr/fork" '{"content":"x"}')
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/out")" = "session $mr cannot fork there: only react sessions fork" ] || fail "6: map_reduce: $code $(cat "$T/out")"
# the API, with Idempotency-Key: a retry is the same fork
code=$(curl -s -o "$T/out" -w '%{http_code}' -X POST "$API/v1/sessions/$src/fork" -H 'Idempotency-Key: fork-1' -d '{"at":1,"content":[{"type":"text","text":"what is 3+3?"}]}')
f3=$(jq -r .id "$T/out")
[ "$code" = 201 ] && [ "$(jq -r .forked_from "$T/out")" = "$src" ] || fail "6: API fork: $code $(cat "$T/out")"
code=$(curl -s -o "$T/out" -w '%{http_code}' -X POST "$API/v1/sessions/$src/fork" -H 'Idempotency-Key: fork-1' -d '{"at":1,"content":[{"type":"text","text":"what is 3+3?"}]}')
[ "$code" = 200 ] && [ "$(jq -r .id "$T/out")" = "$f3" ] || fail "6: API fork retry: $code $(cat "$T/out")"
until_true 10 state_is "$f3" done || fail "6: fork 3 not done"
[ "$(ctl session --json "$f3" | jq -c '[.messages[] | select(.role == "user") | .content]')" = '["what is 2+2?","what is 3+3?"]' ] ||
	fail "6: fork 3: $(ctl session --json "$f3" | jq -c .messages)"
echo "6: fork from a past point (forgectl and the API): the conversation up to it, the source untouched, cuts refused naming why, a keyed retry the same fork"

# ---- 5. chaos: threads under worker kills ----------------------------------------
ctl submit --workflow react --prompt "what is 2+2?" --count 100 > "$T/threads"
for round in 1 2 3; do
	ctl wait --timeout 60 > /dev/null || fail "5: round $round: not done"
	while read -r t; do ctl say "$t" "round $round" > /dev/null || fail "5: say $t"; done < "$T/threads"
	kill_until_done 60 0.05 "5: round $round"
done
while read -r t; do
	got=$(ctl session --json "$t" | jq -c '[.messages[] | select(.role == "user") | .content]')
	[ "$got" = '["what is 2+2?","round 1","round 2","round 3"]' ] || fail "5: thread $t: $got"
	[ "$(ctl session --json "$t" | jq -r .state)" = done ] || fail "5: thread $t not done"
done < "$T/threads"
ctl check > "$T/check.out" || fail "5: check: $(cat "$T/check.out")"
echo "5: 100 threads x 3 messages with workers killed ($kills kills): every thread's messages in order, none twice"
stop_forged
echo "threads: runs of a thread in order, say/resume across kills and crash points, chat completions as clients send them"
