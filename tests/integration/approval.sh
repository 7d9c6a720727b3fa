#!/bin/sh
# Human approval: an agent's approve: tools and its ask_human wait for a
# person, holding no worker slot, and the answer is applied exactly once.
#   1  a bad approve: is refused with FILE:LINE:COL (exit 78)
#   2  approve with curl: the session waits (GET ?state=waiting, its
#      waiting_for, forgectl pending, an SSE "approval" event, no worker
#      slot held), POST .../approval runs the tool once; the same answer
#      again is 200 Idempotent-Replayed, another is 409 naming the first
#   3  reject with a reason: the tool never runs, the model sees the reason;
#      edit: the tool runs with the person's arguments; a waiting session
#      cancelled takes no answer
#   4  ask_human: forgectl answer; the model gets the text
#   5  approval_timeout_s: the default answer (reject) is applied by itself
#   6  crash points: the worker killed after it asked, forgectl killed at
#      each step of its answer, the gateway killed there too: the answer
#      is applied once (the tool ran once), never lost; 6b stall points:
#      an answer stopped before and after its CAS, a worker after it asked
#   7  chaos: a third of 300 sessions wait for approval, answered (approve
#      or reject, at random) by a script while workers, the gateway and the
#      supervisor are SIGKILLed: every approved call ran exactly once, no
#      rejected or unanswered call ran, check clean
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
mock_on "$PORT"
CHAOS_PORT=$((PORT + 1))
mock_on "$CHAOS_PORT" --latency-ms 20
RUNS=$T/runs
: > "$RUNS"
# record: a non-idempotent tool that appends its argument to $RUNS
cat > "$T/record.sh" <<EOF
#!/bin/sh
read -r line
echo "\$line" >> "$RUNS"
echo '{"recorded":true}'
EOF
chmod +x "$T/record.sh"
tools_yaml() {
	cat >> "$T/forge.yaml" <<YAML
tools:
  external:
    record:
      command: [$T/record.sh]
      description: records its arguments
      idempotent: false
    slowrec:
      command: [sh, -c, "read -r l; echo \"start \$l\" >> $T/slowruns; sleep 3; echo '{}'"]
      idempotent: true
      timeout_ms: 20000
YAML
}
base_config() {
	write_config
	llm_yaml "$PORT"
	tools_yaml
}
agents_yaml() {   # agents_yaml TIMEOUT_LINE
	cat >> "$T/forge.yaml" <<YAML
agents:
  careful:
    tools: [calculator, record, ask_human]
    approve: [record]
  hurried:
    tools: [record]
    approve: [record]
    approval_timeout_s: 1
  mortal:
    tools: [record]
    approve: [record]
    deadline_s: 2
  idem:
    tools: [slowrec]
    approve: [slowrec]
  planner:
    workflow: plan_execute
    tools: [record]
    approve: [record]
YAML
}

# 1 -----------------------------------------------------------------
base_config
cat >> "$T/forge.yaml" <<YAML
agents:
  bad:
    tools: [calculator]
    approve: [record]
YAML
rc=0; "$BIN/forged" --check-config -c "$T/forge.yaml" > "$T/cc.out" 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "1: bad approve: exit $rc: $(cat "$T/cc.out")"
grep -q "forge.yaml:[0-9]*:[0-9]*: agents.bad.approve: \"record\" is not one of the agent's tools" "$T/cc.out" ||
	fail "1: $(cat "$T/cc.out")"

# 2 -----------------------------------------------------------------
base_config
agents_yaml
start_forged
# post_call AGENT ARGS: a session whose model calls record with ARGS; its id
post_call() {
	curl -s -X POST "$API/v1/sessions" -d "$(jq -nc --arg a "$1" --arg p "call:record $2" \
		'{agent:$a, prompt:$p}')" | jq -r .id
}
state() { curl -s "$API/v1/sessions/$1" | jq -r .state; }
call_of() { curl -s "$API/v1/sessions/$1" | jq -r '.waiting_for[0].call_id'; }
# answer ID JSON: POST .../approval with the call that waits; the status
# in $code, the reply in $T/a.json
answer() {
	code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$1/approval" \
		-d "$(echo "$2" | jq -c --arg c "$(call_of "$1")" '. + {call_id: $c}')")
}
is_state() { [ "$(state "$1")" = "$2" ]; }
id=$(post_call careful '{"n":1}')
until_true 10 is_state "$id" waiting || fail "2: not waiting: $(curl -s "$API/v1/sessions/$id")"
curl -s "$API/v1/sessions/$id" > "$T/s.json"
[ "$(jq -c '.waiting_for | map({kind, tool, arguments})' "$T/s.json")" = \
  '[{"kind":"approval","tool":"record","arguments":"{\"n\":1}"}]' ] ||
	fail "2: waiting_for: $(jq -c .waiting_for "$T/s.json")"
call=$(jq -r '.waiting_for[0].call_id' "$T/s.json")
[ "$(curl -s "$API/v1/sessions?state=waiting" | jq -r '.data[].id' | grep -c "$id")" = 1 ] ||
	fail "2: not listed: $(curl -s "$API/v1/sessions?state=waiting")"
ctl pending > "$T/pending"
grep -q "^$id $call *record *none *{\"n\":1}$" "$T/pending" || fail "2: pending: $(cat "$T/pending")"
# waiting holds no worker slot: no worker has a session in flight
[ "$(ctl workers --json | jq '[.[].inflight] | add')" = 0 ] ||
	fail "2: a waiting session holds a worker slot: $(ctl workers --json | jq -c '[.[].inflight]')"
[ -s "$RUNS" ] && fail "2: the tool ran before it was approved: $(cat "$RUNS")"
timeout 5 curl -sN "$API/v1/sessions/$id/events" > "$T/ev" 2>/dev/null || true
grep -q "^event: approval" "$T/ev" || fail "2: no approval event: $(cat "$T/ev")"
# unnamed, an answer could be a retry's that answers a later question
code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
	-d '{"decision":"approve"}')
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/a.json")" = call_id ] &&
	[ "$(jq -r .error.message "$T/a.json")" = "call_id is required (a string: the call that waits, as GET /v1/sessions/$id lists it in waiting_for)" ] ||
	fail "2: an answer without call_id: $code $(cat "$T/a.json")"
code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
	-d '{"decision":"approve","call_id":"nosuch"}')
[ "$code" = 404 ] && [ "$(jq -r .error.message "$T/a.json")" = "session $id: it has no call nosuch waiting or answered" ] ||
	fail "2: an unknown call: $code $(cat "$T/a.json")"
answer "$id" '{"decision":"approve"}'
[ "$code" = 202 ] || fail "2: approve: $code $(cat "$T/a.json")"
[ "$(jq -r .decision.call_id "$T/a.json")" = "$call" ] || fail "2: reply's call_id: $(cat "$T/a.json")"
[ "$(jq -r .decision.decision "$T/a.json")/$(jq -r .decision.by "$T/a.json")" = approve/api ] ||
	fail "2: decision: $(cat "$T/a.json")"
until_true 10 is_state "$id" done || fail "2: not done: $(curl -s "$API/v1/sessions/$id")"
[ "$(cat "$RUNS")" = '{"n":1}' ] || fail "2: runs: $(cat "$RUNS")"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r .result)" = 'tool said: {"recorded":true}' ] ||
	fail "2: result: $(curl -s "$API/v1/sessions/$id" | jq .result)"
code=$(curl -s -o "$T/a.json" -D "$T/h" -w '%{http_code}' -X POST \
	"$API/v1/sessions/$id/approval" -d "{\"decision\":\"approve\",\"call_id\":\"$call\"}")
[ "$code" = 200 ] && grep -qi "^Idempotent-Replayed: true" "$T/h" ||
	fail "2: the same answer again: $code $(cat "$T/a.json")"
code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
	-d "{\"decision\":\"reject\",\"call_id\":\"$call\"}")
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/a.json")" = \
	"session $id: call $call was already decided: approve (by api)" ] ||
	fail "2: another answer: $code $(cat "$T/a.json")"
[ "$(wc -l < "$RUNS")" = 1 ] || fail "2: ran again: $(cat "$RUNS")"

# 3 -----------------------------------------------------------------
: > "$RUNS"
id=$(post_call careful '{"n":2}')
until_true 10 is_state "$id" waiting || fail "3: not waiting"
answer "$id" '{"decision":"maybe"}'
[ "$code" = 400 ] && [ "$(jq -r .error.param "$T/a.json")" = decision ] &&
	[ "$(jq -r .error.message "$T/a.json")" = \
	"session $id: decision \"maybe\" is not approve, reject or edit" ] ||
	fail "3: a bad decision: $code $(cat "$T/a.json")"
ctl reject "$id" --reason "not on a Friday" > "$T/r.out" || fail "3: reject: $(cat "$T/r.out")"
until_true 10 is_state "$id" done || fail "3: not done after reject"
[ -s "$RUNS" ] && fail "3: a rejected call ran: $(cat "$RUNS")"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r .result)" = \
  "tool said: rejected by a person: the call of record was not run; not on a Friday" ] ||
	fail "3: result: $(curl -s "$API/v1/sessions/$id" | jq .result)"
id=$(post_call careful '{"n":3}')
until_true 10 is_state "$id" waiting || fail "3: not waiting (edit)"
ctl approve "$id" --args '{"n":33}' > "$T/r.out" || fail "3: edit: $(cat "$T/r.out")"
until_true 10 is_state "$id" done || fail "3: not done after edit"
[ "$(cat "$RUNS")" = '{"n":33}' ] || fail "3: edited runs: $(cat "$RUNS")"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r '.messages[] | select(.role == "tool") | .content')" = \
  '(a person changed the arguments to {"n":33})
{"recorded":true}' ] || fail "3: the model is not told of the edit: $(curl -s "$API/v1/sessions/$id" | jq -c .messages)"

id=$(post_call careful '{"n":4}')
until_true 10 is_state "$id" waiting || fail "3: not waiting (cancel)"
c4=$(call_of "$id")
ctl cancel "$id" > /dev/null || fail "3: cancel of a waiting session"
is_state "$id" cancelled || fail "3: not cancelled: $(state "$id")"
code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
	-d "{\"decision\":\"approve\",\"call_id\":\"$c4\"}")
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/a.json")" = "session $id: it is cancelled" ] ||
	fail "3: approve after cancel: $code $(cat "$T/a.json")"
[ "$(cat "$RUNS")" = '{"n":33}' ] || fail "3: a cancelled call ran: $(cat "$RUNS")"
# a plan_execute session whose step waits: the parent shows the step's
# state and its call in waiting_for, naming the step's session
pid=$(curl -s -X POST "$API/v1/sessions" -d '{"agent":"planner","prompt":"call:record {\"n\":5}"}' | jq -r .id)
parent_waits() { curl -s "$API/v1/sessions/$pid" > "$T/p.json"; [ "$(jq '.waiting_for | length' "$T/p.json")" = 1 ]; }
until_true 10 parent_waits || fail "3: plan_execute parent shows no waiting_for: $(cat "$T/p.json")"
kid=$(jq -r '.parts[0].id' "$T/p.json")
[ "$(jq -c '.waiting_for | map({kind, tool, arguments, part, session})' "$T/p.json")" = \
  "[{\"kind\":\"approval\",\"tool\":\"record\",\"arguments\":\"{\\\"n\\\":5}\",\"part\":0,\"session\":\"$kid\"}]" ] &&
	[ "$(jq -r '.parts[0].state' "$T/p.json")" = waiting ] &&
	[ "$(jq -r '.waiting_for[0].call_id' "$T/p.json")" = "$(call_of "$kid")" ] ||
	fail "3: plan_execute parent: $(jq -c '{waiting_for, parts}' "$T/p.json")"
answer "$pid" '{"decision":"approve"}'   # (to the parent: it points to the step)
[ "$code" = 409 ] && [ "$(jq -r .error.message "$T/a.json")" = "session $pid: it waits for no person itself (a plan or split session): its parts do, and its waiting_for names each call's session to answer" ] ||
	fail "3: an answer to the plan_execute parent: $code $(cat "$T/a.json")"
ctl approve "$kid" > "$T/r.out" || fail "3: approve the step: $(cat "$T/r.out")"
until_true 10 is_state "$pid" done || fail "3: plan_execute parent not done: $(curl -s "$API/v1/sessions/$pid")"
curl -s "$API/v1/sessions/$pid" > "$T/p.json"
[ "$(jq -r '.waiting_for' "$T/p.json")/$(jq -r '.parts[0].state' "$T/p.json")" = null/done ] ||
	fail "3: plan_execute parent after the answer: $(jq -c '{waiting_for, parts}' "$T/p.json")"
[ "$(tail -1 "$RUNS")" = '{"n":5}' ] || fail "3: the step's call did not run: $(cat "$RUNS")"

# 4 -----------------------------------------------------------------
id=$(curl -s -X POST "$API/v1/sessions" -d '{"agent":"careful","prompt":"call:ask_human {\"question\":\"Which account?\"}"}' | jq -r .id)
until_true 10 is_state "$id" waiting || fail "4: not waiting"
[ "$(curl -s "$API/v1/sessions/$id" | jq -c '.waiting_for | map({kind, question})')" = \
  '[{"kind":"question","question":"Which account?"}]' ] || fail "4: $(curl -s "$API/v1/sessions/$id" | jq -c .waiting_for)"
ctl pending | grep -q "^$id .* ask_human .*? Which account?$" || fail "4: pending: $(ctl pending)"
answer "$id" '{"decision":"approve"}'
[ "$code" = 400 ] || fail "4: approve of a question: $code $(cat "$T/a.json")"
# a chat completion of an agent that asks a person ends, saying so (no SDK
# retries a 422), instead of hanging
curl -s -o "$T/chat.json" -w '%{http_code}' -m 10 "$API/v1/chat/completions" \
	-d '{"model":"forge/careful","messages":[{"role":"user","content":"call:record {\"n\":44}"}]}' > "$T/code"
cs=$(jq -r '.error.waiting_for[0].call_id' "$T/chat.json")
[ "$(cat "$T/code")" = 422 ] && [ "$(jq -r .error.type "$T/chat.json")" = approval_required ] &&
	jq -r .error.message "$T/chat.json" | grep -q "waits for a person: call $cs (approval) of tool record; answer it with POST /v1/sessions/" ||
	fail "4: chat completion of an asking agent: $(cat "$T/code") $(cat "$T/chat.json")"
curl -sN -m 10 "$API/v1/chat/completions" \
	-d '{"model":"forge/careful","stream":true,"messages":[{"role":"user","content":"call:record {\"n\":45}"}]}' > "$T/chat.sse"
grep '^data: {"error"' "$T/chat.sse" | sed 's/^data: //' | jq -e '.error.type == "approval_required"' > /dev/null &&
	[ "$(tail -2 "$T/chat.sse" | head -1)" = "data: [DONE]" ] || fail "4: streamed: $(cat "$T/chat.sse")"
for x in $(curl -s "$API/v1/sessions?state=waiting" | jq -r '.data[].id'); do
	[ "$x" = "$id" ] || ctl cancel "$x" > /dev/null
done
ctl answer "$id" "the one ending in 42" > "$T/r.out" || fail "4: answer: $(cat "$T/r.out")"
until_true 10 is_state "$id" done || fail "4: not done after the answer"
# an answer of 64 KiB: whole in the session and in its events
id2=$(curl -s -X POST "$API/v1/sessions" -d '{"agent":"careful","prompt":"call:ask_human {\"question\":\"Everything?\"}"}' | jq -r .id)
until_true 10 is_state "$id2" waiting || fail "4: not waiting (big)"
big=$(head -c 49152 /dev/zero | base64 -w0)
ctl answer "$id2" "$big" > /dev/null || fail "4: a 64 KiB answer"
until_true 10 is_state "$id2" done || fail "4: not done (big)"
timeout 10 curl -sN "$API/v1/sessions/$id2/events" > "$T/ev2" || true
[ "$(grep -c '^event: message' "$T/ev2")" = 4 ] && grep -q '^event: end' "$T/ev2" &&
	[ "$(grep '^data: {"role":"tool"' "$T/ev2" | sed 's/^data: //' | jq -r .content)" = "$big" ] ||
	fail "4: the events of a session with a 64 KiB message: $(grep -c '^event:' "$T/ev2") events, $(wc -c < "$T/ev2") bytes"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r .result)" = "tool said: the one ending in 42" ] ||
	fail "4: result: $(curl -s "$API/v1/sessions/$id" | jq .result)"

# 5 -----------------------------------------------------------------
: > "$RUNS"
id=$(post_call hurried '{"n":5}')
until_true 10 is_state "$id" waiting || fail "5: not waiting"
until_true 15 is_state "$id" done || fail "5: the timeout did not end the wait: $(curl -s "$API/v1/sessions/$id")"
[ -s "$RUNS" ] && fail "5: ran without approval: $(cat "$RUNS")"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r .result)" = \
  "tool said: not approved: the call of record was not run; no answer within 1 s (approval_timeout_s)" ] ||
	fail "5: result: $(curl -s "$API/v1/sessions/$id" | jq .result)"
# the agent's own deadline_s ends a wait too (the session fails)
id=$(post_call mortal '{"n":6}')
until_true 10 is_state "$id" waiting || fail "5: not waiting (deadline)"
until_true 15 is_state "$id" failed || fail "5: past its deadline_s, still $(state "$id")"
[ "$(curl -s "$API/v1/sessions/$id" | jq -r .error)" = "deadline of 2 s passed (agents.mortal.deadline_s)" ] ||
	fail "5: deadline error: $(curl -s "$API/v1/sessions/$id" | jq .error)"
# an approved call runs once even of an idempotent tool: killed while it
# runs, it is not run again
: > "$T/slowruns"
id=$(curl -s -X POST "$API/v1/sessions" -d '{"agent":"idem","prompt":"call:slowrec {\"s\":1}"}' | jq -r .id)
until_true 10 is_state "$id" waiting || fail "5: not waiting (idem)"
answer "$id" '{"decision":"approve"}'
until_true 10 test -s "$T/slowruns" || fail "5: slowrec did not start"
ctl kill-worker 0 > /dev/null 2>&1 || true
ctl kill-worker 1 > /dev/null 2>&1 || true
until_true 20 is_state "$id" done || fail "5: idem: $(state "$id")"
[ "$(wc -l < "$T/slowruns")" = 1 ] || fail "5: an approved call ran $(wc -l < "$T/slowruns") times"
curl -s "$API/v1/sessions/$id" | jq -r .result | grep -q "^tool said: interrupted: the tool may or may not have run; it is not idempotent (or was approved to run once)" ||
	fail "5: idem result: $(curl -s "$API/v1/sessions/$id" | jq .result)"
until_true 10 workers_alive || fail "5: workers not back"
ctl check > "$T/check" || fail "5: check: $(cat "$T/check")"
echo "1-5: refused config, approve/reject/edit/answer/timeout/deadline round trips, chat completions told"

# 6 -----------------------------------------------------------------
# runs_of N: how many times record ran with {"n":N}
runs_of() { grep -c "^{\"n\":$1}\$" "$RUNS" || true; }
n=600
for p in approval.answer.before_cas approval.answer.after_cas approval.answer.after_commit; do
	n=$((n + 1))
	id=$(post_call careful "{\"n\":$n}")
	until_true 10 is_state "$id" waiting || fail "6: $p: not waiting"
	set +e; FORGE_CRASHPOINT="$p:1" ctl approve "$id" > /dev/null 2>&1; rc=$?; set -e
	[ $rc -ge 128 ] || fail "6: $p: forgectl approve was not killed (rc $rc)"
	case $p in
	*after_commit) until_true 20 is_state "$id" done || fail "6: $p: not done" ;;
	*) until_true 20 is_state "$id" waiting || fail "6: $p: not waiting again: $(state "$id")"
	   [ "$(runs_of $n)" = 0 ] || fail "6: $p: ran without a committed approval" ;;
	esac
	ctl approve "$id" > "$T/r.out" || fail "6: $p: approve again: $(cat "$T/r.out")"
	case $p in
	*after_commit) grep -q "(recorded before)" "$T/r.out" || fail "6: $p: $(cat "$T/r.out")" ;;
	esac
	until_true 20 is_state "$id" done || fail "6: $p: not done after"
	[ "$(runs_of $n)" = 1 ] || fail "6: $p: ran $(runs_of $n) times"
done
stop_forged
# the worker killed once it asked; the gateway killed in its answer (each
# on a new region: a crash point arms the first process of its slot)
fresh() { rm -f "$REGION" "$REGION.lock"; }
export FORGE_CRASHPOINT=approval.ask.after_commit:1 FORGE_CRASH_SLOT=0 WORKERS=1
base_config; agents_yaml; fresh
start_forged
unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
n=$((n + 1))
id=$(post_call careful "{\"n\":$n}")
until_true 20 is_state "$id" waiting || fail "6: ask.after_commit: not waiting: $(state "$id")"
[ "$(ctl stats --json | jq .workers.restarts)" = 1 ] || fail "6: the worker did not die at ask.after_commit"
[ "$(curl -s "$API/v1/sessions/$id" | jq '[.internal[] | select(.role == "forge.ask")] | length')" = 1 ] ||
	fail "6: asked twice: $(curl -s "$API/v1/sessions/$id" | jq -c .internal)"
ctl approve "$id" > /dev/null || fail "6: approve after the worker's death"
until_true 20 is_state "$id" done || fail "6: ask.after_commit: not done"
[ "$(runs_of $n)" = 1 ] || fail "6: ask.after_commit: ran $(runs_of $n) times"
stop_forged
export WORKERS=2
base_config; agents_yaml
for p in approval.answer.before_cas approval.answer.after_cas approval.answer.after_commit; do
	export FORGE_CRASHPOINT=$p:1 FORGE_CRASH_SLOT=gateway
	fresh; start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
	n=$((n + 1))
	id=$(post_call careful "{\"n\":$n}")
	until_true 10 is_state "$id" waiting || fail "6: gateway $p: not waiting"
	gw=$(pgrep -P "$FORGED_PID" forge-gateway)
	cg=$(call_of "$id")
	code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
		-d "{\"decision\":\"approve\",\"call_id\":\"$cg\"}" || true)
	[ "$code" = 000 ] || fail "6: gateway $p: answered $code"
	until_true 10 sh -c "curl -sf $API/healthz > /dev/null && [ \"\$(pgrep -P $FORGED_PID forge-gateway)\" != $gw ]" ||
		fail "6: gateway $p: no new gateway"
	# the client retries (its reply was lost): once waiting or done again
	until_true 20 sh -c "s=\$(curl -s $API/v1/sessions/$id | jq -r .state); [ \$s = waiting ] || [ \$s = done ]" ||
		fail "6: gateway $p: $(state "$id")"
	code=$(curl -s -o "$T/a.json" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
		-d "{\"decision\":\"approve\",\"call_id\":\"$cg\"}")
	case $p in
	*after_commit) [ "$code" = 200 ] || fail "6: gateway $p: the retry: $code $(cat "$T/a.json")" ;;
	*) [ "$code" = 202 ] || fail "6: gateway $p: the retry: $code $(cat "$T/a.json")" ;;
	esac
	until_true 20 is_state "$id" done || fail "6: gateway $p: not done"
	[ "$(runs_of $n)" = 1 ] || fail "6: gateway $p: ran $(runs_of $n) times"
	stop_forged
done
echo "6: forgectl, a worker and the gateway killed at each step of an approval: applied once"

# 6b: stalls.  forgectl stopped before its CAS while a person answers by the
# API: let go, it is told the first answer, and nothing runs twice; stopped
# after its CAS (the session held): the API's answer is refused as busy,
# and forgectl's goes through once let go; a worker stopped after it asked
# is killed by the watchdog and the session waits again
fresh; start_forged
n=$((n + 1))
id=$(post_call careful "{\"n\":$n}")
until_true 10 is_state "$id" waiting || fail "6b: not waiting"
FORGE_STALLPOINT=approval.answer.before_cas:1 FORGE_STALL_FILE=$T/a.stall \
	ctl approve "$id" > "$T/held.out" 2>&1 &
hp=$!
p=$(stalled "$T/a.stall")
answer "$id" '{"decision":"reject","reason":"no"}'
[ "$code" = 202 ] || fail "6b: the API's answer beside a stalled one: $code $(cat "$T/a.json")"
until_true 10 is_state "$id" done || fail "6b: not done"
release "$p"
until_true 10 sh -c "! kill -0 $p 2>/dev/null" || fail "6b: the released approve did not end"
wait "$hp" 2>/dev/null || true
grep -q "^forgectl: approve: session $id: it waits for no person (it is done)$" "$T/held.out" ||
	fail "6b: the stalled approve: $(cat "$T/held.out")"
[ "$(runs_of $n)" = 0 ] || fail "6b: a rejected call ran"
n=$((n + 1))
id=$(post_call careful "{\"n\":$n}")
until_true 10 is_state "$id" waiting || fail "6b: not waiting (2)"
cb=$(call_of "$id")
FORGE_STALLPOINT=approval.answer.after_cas:1 FORGE_STALL_FILE=$T/b.stall \
	ctl approve "$id" > "$T/held.out" 2>&1 &
hp=$!
p=$(stalled "$T/b.stall")
# the API's answer meanwhile waits for the session (held by the stalled
# answer), and once that one goes in, finds the same answer recorded
curl -s -o "$T/a.json" -D "$T/h" -w '%{http_code}' -X POST "$API/v1/sessions/$id/approval" \
	-d "{\"decision\":\"approve\",\"call_id\":\"$cb\"}" > "$T/a.code" &
cp=$!
sleep 1
kill -0 $cp 2>/dev/null || fail "6b: the API's answer did not wait: $(cat "$T/a.code") $(cat "$T/a.json")"
release "$p"
until_true 10 sh -c "! kill -0 $p 2>/dev/null" || fail "6b: the released approve did not end"
wait "$hp" 2>/dev/null || true
grep -q "^$id $cb approve: queued to go on$" "$T/held.out" || fail "6b: the released approve: $(cat "$T/held.out")"
wait $cp
[ "$(cat "$T/a.code")" = 200 ] && grep -qi "^Idempotent-Replayed: true" "$T/h" &&
	[ "$(jq -r '.decision.decision' "$T/a.json")" = approve ] ||
	fail "6b: the API's answer after the held one: $(cat "$T/a.code") $(cat "$T/a.json")"
until_true 10 is_state "$id" done || fail "6b: not done (2)"
[ "$(runs_of $n)" = 1 ] || fail "6b: ran $(runs_of $n) times"
stop_forged
# held W: a fresh forged whose worker 0 stops after committing a call's
# ASK (before it parks); sessions posted into $T/W.ids until one is held
# (worker 0 may not be the one that takes the first: worker 1, idle, takes
# from its ring too; up to 50, 0.2 s apart), the stopped pid in $p
held() {
	fresh
	export FORGE_STALLPOINT=approval.ask.after_commit:1 FORGE_CRASH_SLOT=0 FORGE_STALL_FILE=$T/$1.stall
	start_forged
	unset FORGE_STALLPOINT FORGE_CRASH_SLOT FORGE_STALL_FILE
	n=$((n + 1))
	: > "$T/$1.ids"
	for k in $(seq 50); do
		post_call careful "{\"n\":$n}" >> "$T/$1.ids"
		[ -s "$T/$1.stall" ] && break
		sleep 0.2
	done
	p=$(stalled "$T/$1.stall")
}
held w
# forgectl approve of each, at once: the held session runs (it has asked,
# not parked), and its approve waits for it to wait, past the worker's death
bgs=""
for id in $(cat "$T/w.ids"); do
	ctl approve "$id" > "$T/bg.$id" 2>&1 &
	bgs="$bgs $!"
done
until_true 15 grep -q "(pid $p): heartbeat stale" "$T/forged.log" ||
	fail "6b: the stopped worker was not killed"
for b in $bgs; do wait "$b" || fail "6b: an approve failed: $(cat "$T"/bg.*)"; done
held=0
for id in $(cat "$T/w.ids"); do
	grep -q "^$id [^ ]* approve: queued to go on$" "$T/bg.$id" || fail "6b: approve of $id: $(cat "$T/bg.$id")"
	grep -q "^forgectl: approve: session $id is running (a tool of its turn, or it has just asked): the answer goes in once it waits (for 60 s at most: --timeout)$" "$T/bg.$id" &&
		held=$((held + 1))
	until_true 20 is_state "$id" done || fail "6b: $id not done"
done
[ "$held" = 1 ] || fail "6b: $held approves waited for a running session, not 1"
[ "$(runs_of $n)" = "$(wc -l < "$T/w.ids")" ] || fail "6b: ran $(runs_of $n) times for $(wc -l < "$T/w.ids") sessions"
stop_forged
# the same answered over HTTP: the held session's answer waits for it
# (past its worker's death) and goes in, 202, not a 503 to retry
held w2
bgs=""
for id in $(cat "$T/w2.ids"); do
	# (the call's id from the conversation: waiting_for lists it only once
	# the session waits)
	until_true 10 sh -c "curl -s '$API/v1/sessions/$id' | jq -e '[.messages[] | select(.tool_calls)] | length > 0' > /dev/null" ||
		fail "6b: $id never called"
	c=$(curl -s "$API/v1/sessions/$id" | jq -r '[.messages[] | select(.tool_calls)][-1].tool_calls[0].id')
	curl -s -o "$T/h2.$id" -w '%{http_code} %{time_total}' -X POST "$API/v1/sessions/$id/approval" \
		-d "{\"decision\":\"approve\",\"call_id\":\"$c\"}" > "$T/h2c.$id" &
	bgs="$bgs $!"
done
until_true 15 grep -q "(pid $p): heartbeat stale" "$T/forged.log" ||
	fail "6b: the stopped worker was not killed (2)"
for b in $bgs; do wait "$b"; done
slow=0
for id in $(cat "$T/w2.ids"); do
	set -- $(cat "$T/h2c.$id")
	[ "$1" = 202 ] || fail "6b: the API's answer to $id: $1 $(cat "$T/h2.$id")"
	awk -v t="$2" 'BEGIN { exit !(t > 0.5) }' && slow=$((slow + 1))
	until_true 20 is_state "$id" done || fail "6b: $id not done (2)"
done
[ "$slow" = 1 ] || fail "6b: $slow API answers waited for a running session, not 1"
[ "$(runs_of $n)" = "$(wc -l < "$T/w2.ids")" ] || fail "6b: ran $(runs_of $n) times for $(wc -l < "$T/w2.ids") sessions (2)"
stop_forged
echo "6b: an answer stalled before and after its CAS, a worker stalled after asking (forgectl approve and the API's answer wait for it): each answer once"

# an answer over HTTP whose client leaves while it waits for the session
# (held by the stalled worker) is not given: the gateway notices within a
# second and says so; the session, back from its worker's death, waits on
held w3
hid=""
for id in $(cat "$T/w3.ids"); do   # (running, its ASK committed: the held one)
	curl -s "$API/v1/sessions/$id" | jq -e '.state == "running" and ([.internal[]? | select(.role == "forge.ask")] | length) > 0' > /dev/null && hid=$id
done
[ -n "$hid" ] || fail "6c: no session held by the stopped worker"
c=$(curl -s "$API/v1/sessions/$hid" | jq -r '[.messages[] | select(.tool_calls)][-1].tool_calls[0].id')
set +e
curl -s -o /dev/null --max-time 0.5 -X POST "$API/v1/sessions/$hid/approval" \
	-d "{\"decision\":\"approve\",\"call_id\":\"$c\"}"
rc=$?
set -e
[ $rc = 28 ] || fail "6c: the answer did not wait (curl exit $rc)"
until_true 5 grep -q "an answer to session $hid was not given: the client left while it waited" "$T/forged.log" ||
	fail "6c: the gateway did not notice its client left"
until_true 15 grep -q "(pid $p): heartbeat stale" "$T/forged.log" ||
	fail "6c: the stopped worker was not killed"
until_true 20 is_state "$hid" waiting || fail "6c: $hid: $(state "$hid")"
[ "$(call_of "$hid")" = "$c" ] || fail "6c: the answer of a client that left was given"
stop_forged
echo "6c: an answer whose client left while it waited was not given"


# 7 -----------------------------------------------------------------
# 100 sessions ask to record {"k":K} (approved when K is even, rejected
# when odd, by forgectl or, when K % 3 == 0, by curl retried until it is
# answered), beside 200 that ask nobody; workers, the gateway and the
# supervisor are killed meanwhile
: > "$RUNS"
fresh
write_config
llm_yaml "$CHAOS_PORT"
tools_yaml
cat >> "$T/forge.yaml" <<YAML
agents:
  careful:
    tools: [calculator, record]
    approve: [record]
  plain:
    tools: [calculator]
YAML
start_forged
for k in $(seq 1 100); do
	ctl -c "$T/forge.yaml" submit --agent careful --prompt "call:record {\"k\":$k}" >> "$T/asking"
done
: > "$T/plain"
: > "$T/decided"
answerer() {
	while [ ! -e "$T/stop" ]; do
		ctl pending --json 2>/dev/null | jq -r '.[:3][] | "\(.session) \(.call_id) \(.arguments | fromjson | .k)"' |
		while read -r sid cid k; do
			dec=approve; [ $((k % 2)) = 1 ] && dec=reject
			if [ $((k % 3)) = 0 ]; then
				# as a client does: the same request again until
				# it is answered (the gateway may die after the
				# commit and before its reply; the retry is then
				# told 200, the answer recorded)
				tries=0
				while [ $tries -lt 50 ]; do
					code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST \
						"$API/v1/sessions/$sid/approval" \
						-d "{\"decision\":\"$dec\",\"call_id\":\"$cid\"}" || true)
					case $code in
					200|202) echo "$k $dec" >> "$T/decided"; break ;;
					000|5??) tries=$((tries + 1)); sleep 0.1 ;;
					*) break ;;
					esac
				done
			elif ctl "$dec" "$sid" --call "$cid" > /dev/null 2>&1; then
				echo "$k $dec" >> "$T/decided"
			fi
		done
		sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) % 4 + 1 ))
	done
}
answerer &
ANSWERER=$!
kills=0 gw_kills=0 sup_kills=0
end=$(( $(date +%s) + 120 ))
round=0
while ! ctl wait --timeout 0 2>/dev/null; do
	[ "$(date +%s)" -lt "$end" ] || { touch "$T/stop"; fail "7: not done in 120 s: $(ctl stats)"; }
	round=$((round + 1))
	[ $round -gt 20 ] || ctl -c "$T/forge.yaml" submit --agent plain --prompt "what is 2+2?" \
		--count 10 >> "$T/plain" || fail "7: submit"
	case $((round % 5)) in
	0)	gw=$(pgrep -P "$FORGED_PID" forge-gateway || true)
		[ -n "$gw" ] && kill -KILL "$gw" && gw_kills=$((gw_kills + 1)) ;;
	3)	if [ $sup_kills -lt 3 ]; then
			kill -KILL "$FORGED_PID"; wait "$FORGED_PID" 2>/dev/null || true
			sup_kills=$((sup_kills + 1))
			"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
			FORGED_PID=$!
			until_true 20 workers_alive || fail "7: no workers after a supervisor kill"
		fi ;;
	*)	ctl kill-worker $(( $(od -An -N1 -tu1 /dev/urandom) % 2 )) > /dev/null 2>&1 &&
			kills=$((kills + 1)) ;;
	esac
	sleep 0.3
done
touch "$T/stop"
wait "$ANSWERER" 2>/dev/null || true
# every session done; every asking one decided exactly once, as decided
for id in $(cat "$T/asking") $(cat "$T/plain"); do
	[ "$(ctl session --json "$id" | jq -r .state)" = done ] || fail "7: $id: $(ctl session --json "$id" | jq -c '{state,error}')"
done
applied=0 ran=0 interrupted=0
for id in $(cat "$T/asking"); do
	ctl session --json "$id" > "$T/s.json"
	k=$(jq -r '.messages[0].content | ltrimstr("call:record ") | fromjson | .k' "$T/s.json")
	[ "$(jq '[.internal[] | select(.role == "forge.decision")] | length' "$T/s.json")" = 1 ] ||
		fail "7: k=$k: decisions $(jq -c '[.internal[] | select(.role == "forge.decision")]' "$T/s.json")"
	want=approve; [ $((k % 2)) = 1 ] && want=reject
	[ "$(jq -r '.internal[] | select(.role == "forge.decision") | .decision' "$T/s.json")" = $want ] ||
		fail "7: k=$k: decided $(jq -c '.internal[] | select(.role == "forge.decision")' "$T/s.json"), want $want"
	grep -q "^$k $want\$" "$T/decided" || fail "7: k=$k: decided, but no answerer saw it succeed"
	r=$(grep -c "^{\"k\":$k}\$" "$RUNS" || true)
	res=$(jq -r '[.messages[] | select(.role == "tool")][0].content' "$T/s.json")
	if [ $want = reject ]; then
		[ "$r" = 0 ] || fail "7: k=$k: rejected, ran $r times"
	elif [ "$res" = '{"recorded":true}' ]; then
		[ "$r" = 1 ] || fail "7: k=$k: approved, ran $r times"
		ran=$((ran + 1))
	else
		# interrupted by a kill while it ran: at most once, and said so
		[ "$r" -le 1 ] && echo "$res" | grep -q "^interrupted" || fail "7: k=$k: ran $r times, result $res"
		interrupted=$((interrupted + 1))
	fi
	applied=$((applied + 1))
done
ctl check > "$T/check" || fail "7: check: $(cat "$T/check")"
no_sanitizer_reports
echo "approval: round trips, every crash point; chaos: $applied approvals applied once ($ran tools ran once, $interrupted interrupted by a kill and not run again, $((applied - ran - interrupted)) rejected and never run) among 300 sessions, $kills worker, $gw_kills gateway and $sup_kills supervisor kills"
