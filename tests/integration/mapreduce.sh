#!/bin/sh
# map_reduce and plan_execute: a split (plan) call, one child ReAct session per part spread over
# the workers through the rings, a reduce call.  Killing workers at random,
# or exactly between a child's allocation and its publication, loses no part
# and leaves no orphan: the table holds exactly parents + parts sessions.
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
llm_yaml() {
	cat <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
      max_retries: 30
      retry_base_ms: 5
    split:
      type: scripted
      script:
        - content: '{"parts":["what is 2+2?","what is 3+3?","what is 4+4?"]}'
        - content: all parts combined
    fifty:
      type: scripted
      script:
        - content: '{"parts":[$(seq -s, -f '"%g"' 50)]}'
        - content: fifty parts combined
    badplan:
      type: scripted
      script:
        - content: 'here is my plan: first, ...'
        - content: combined anyway
    planner:
      type: scripted
      script:
        - content: '{"steps":[{"task":"a","depends_on":[5]},{"task":"b","depends_on":[0]},{"task":"c","depends_on":[0,1]}]}'
        - content: synthesized
    s:
      type: scripted
YAML
}
write_config
llm_yaml >> "$T/forge.yaml"
"$ROOT/build/mock-llm" --port "$PORT" --latency-ms 100 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
start_forged

# 1. over HTTP with random SIGKILLs: 200 parents x 2 parts
ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 200 > "$T/ids"
kills=0
kill_until_done 120 0.1 map_reduce
expect_all_done 600
[ "$(ctl_stat .sessions.free)" = $((8192 - 600)) ] || fail "orphaned children: $(ctl stats)"
[ "$kills" -ge 3 ] || fail "only $kills kills landed"
bad=$(ctl sessions --state done --json | jq '[.[] | select(.workflow == "map_reduce" and (.result != "The answer is 4." or (.parts | length) != 2))] | length')
[ "$bad" = 0 ] || fail "$bad map_reduce sessions without 2 parts and the answer"

# 1b. plan_execute over HTTP with kills: step 2 depends on step 1, so it
#     starts only after step 1 ended, and its prompt carries step 1's result
ctl submit --workflow plan_execute --prompt "what is 2+2, checked?" --count 100 > "$T/pids"
kill_until_done 120 0.1 plan_execute
expect_all_done 900
[ "$(ctl_stat .sessions.free)" = $((8192 - 900)) ] || fail "plan_execute: orphaned steps: $(ctl stats)"
pid=$(head -1 "$T/pids")
s2=$(ctl session "$pid" --json | jq -r '.parts[1].id')
ctl session "$pid" --json | jq -e '.state == "done" and .result == "The answer is 4."
  and .parts[1].depends_on == [0]' >/dev/null || fail "plan: $(ctl session "$pid" --json)"
ctl session "$s2" --json | jq -e '.messages[0].content == "check that 2+2 is 4\n\nResults it builds on:\n- result of \"what is 2+2?\": The answer is 4."' >/dev/null ||
	fail "step 2 prompt: $(ctl session "$s2" --json | jq .messages[0])"
# dependencies on later (or missing) steps are dropped: no cycle possible
id=$(ctl submit --workflow plan_execute --prompt go --provider planner --child-provider s -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null
ctl session "$id" --json | jq -e '.result == "synthesized" and [.parts[].depends_on] == [[],[0],[0,1]]' >/dev/null ||
	fail "planner: $(ctl session "$id" --json)"

# 2. a malformed plan is handled: one part, the task itself
id=$(ctl submit --workflow map_reduce --prompt "do it" --provider badplan --child-provider s -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null
ctl session "$id" --json | jq -e '.state == "done" and .result == "combined anyway"
  and (.parts | length) == 1 and .parts[0].part == "do it"' >/dev/null || fail "bad plan: $(ctl session "$id" --json)"
# 2a. a split of 50 parts, on the default configuration: 50 children
id=$(ctl submit --workflow map_reduce --prompt "do it fifty ways" --provider fifty --child-provider s --max-parts 50 -c "$T/forge.yaml")
ctl wait --timeout 60 > /dev/null
ctl session "$id" --json | jq -e '.state == "done" and .result == "fifty parts combined"
  and (.parts | length) == 50 and .parts[49].part == "50"' >/dev/null ||
	fail "fifty parts: $(ctl session "$id" --json | jq -c '{state, error, n: (.parts | length)}')"
# 2b. a split over the session's maximum is not cut or collapsed in silence
id=$(ctl submit --workflow map_reduce --prompt "do it" --provider split --child-provider s --max-parts 2 -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null
ctl session "$id" --json | jq -e '.state == "failed" and .error == "the split has 3 parts, more than this session'"'"'s maximum of 2 (max_parts when it was submitted; at most 256)"' >/dev/null ||
	fail "split over max_parts: $(ctl session "$id" --json)"
# 2c. steps and results of real size, whole: steps of 3000+ characters, a
#     step result of 70 KB carried into the next step's prompt (no cut at
#     2000, 4096 or 65535 bytes)
id=$(ctl submit --workflow plan_execute --prompt "long:70000 plan it")
ctl wait --timeout 30 > /dev/null
s1=$(ctl session "$id" --json | jq -r '.parts[1].id')
ctl session "$id" --json | jq -e '.state == "done" and (.parts | length) == 2
  and (.parts[0].part | length) == 3011' >/dev/null || fail "long steps: $(ctl session "$id" --json | jq -c '{state, error, n: (.parts | length)}')"
ctl session "$s1" --json | jq -e '.messages[0].content == "check " + ("b" * 3000) +
  "\n\nResults it builds on:\n- result of \"long:70000 " + ("a" * 3000) + "\": " + ("x" * 70000)' >/dev/null ||
	fail "long step result: $(ctl session "$s1" --json | jq -c '.messages[0].content | length')"
stop_forged

# 3. a worker killed between a child's allocation and its record, and
#    between its record and its publication; a parent's worker killed just
#    after parking it (before its second look at the children); a child's
#    worker killed after its final CAS, before it woke the parent or
#    cleared its lease entry (recovery wakes the parent from the entry)
for p in mapreduce.child.after_alloc mapreduce.child.after_record session.park.after_cas \
	 session.wake.before_cas session.finish.before_clear; do
	rm -f "$REGION" "$REGION.lock"
	: > "$T/forged.log"
	WORKERS=1 write_config
	llm_yaml >> "$T/forge.yaml"
	export FORGE_CRASHPOINT="$p:2" FORGE_CRASH_SLOT=0 WORKERS=1
	start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT WORKERS
	ctl submit --workflow map_reduce --prompt go --provider split --child-provider s --count 50 -c "$T/forge.yaml" > /dev/null
	expect_all_done 200
	grep -q "crash point reached" "$T/forged.log" || fail "$p: never reached"
	[ "$(ctl_stat .sessions.free)" = $((8192 - 200)) ] || fail "$p: orphaned children: $(ctl stats)"
	[ "$(ctl sessions --state done --json | jq '[.[] | select(.workflow == "map_reduce" and .result == "all parts combined" and (.parts | length) == 3)] | length')" = 50 ] ||
		fail "$p: parents without 3 parts and the combined answer"
	stop_forged
done
echo "mapreduce: 200 map_reduce and 100 plan_execute over HTTP with $kills kills (900 sessions, no orphan), step order and dependency results (a 70 KB result whole), a bad plan handled, the child-creation, park and wake crash windows recovered; $(recovery)"
