#!/bin/sh
# Stalls, not deaths (DESIGN.md rules 9 and 10).  A stall point stops a
# process (SIGSTOP) at a named step of a shared operation while the others
# go on and records are reused; then it is let go (SIGCONT).  Each case is
# a hole an independent review proved on an earlier forge, and fails if its
# fix is taken out:
#   1  parents that wait for children hold no slot: no max_inflight, worker
#      count or mix of workflows deadlocks (deadline_s: 0, so nothing ends
#      a wedged session for us)
#   2  a purger stalled after reading a record cannot free a later session
#      that reused it
#   3  a canceller stalled after reading a record cannot cancel a later one
#   4  a supervisor stalled while probing a client slot cannot recover the
#      live newcomer that took the slot meanwhile
#   5  a client stopped between a ring claim and its publish does not hold
#      the other sessions of that ring up
#   6  readers (forgectl session, the SSE stream) stalled after checking a
#      handle never show the session that reused the record under the old id
#   7  a worker stopped when its supervisor is killed does not keep a new
#      supervisor from starting
#   8  a purge stopped while it holds a record (to give its overflow pages
#      back) holds only that record
#   9  under durability: sync, a process stopped while it leads the group
#      flush holds nobody's acknowledgement up for long, and once it is
#      killed the recovery pass takes its leadership away
#  10  a forgectl say stopped while it holds a thread RUNNING is a hang:
#      killed after the watchdog, and the thread goes on
#  11  a purge stopped after judging a session old does not free the
#      thread's next run, which ended with the same ctl word
#  12  a worker stopped between the doorbell's wake and its intake does not
#      hold the session up until the other sleepers' heartbeat_ms timeout
#      (the doorbell wakes them all; when it woke one, for a day, it did:
#      the supervisor's sweep wakes them too); no wake-up is lost to the
#      armed doorbell (region.h); a drain wakes sleeping workers, which
#      otherwise slept past shutdown_timeout_ms
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))
WATCHDOG_MS=60000   # a stopped worker must not be killed as hung here
# ONLY=N runs case N alone (each case fails on a forge without its fix:
# that is how the fixes were checked, one reverted at a time)
on() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

# stalled FILE: waits until the process that wrote FILE is stopped; prints its pid

fresh() {   # fresh [YAML...]: a new region and forged with this test's config
	[ -n "$FORGED_PID" ] && stop_forged
	rm -f "$REGION" "$REGION.lock" "$T"/*.stall
	: > "$T/forged.log"
	write_config
	for y in "$@"; do printf '%s\n' "$y" >> "$T/forge.yaml"; done
	start_forged
}

state_of() { ctl session "$1" --json 2>/dev/null | jq -r .state; }

MOCK_YAML="llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
    s:
      type: scripted"
SCRIPTED_YAML="llm:
  default: s
  providers:
    s:
      type: scripted"
"$ROOT/build/mock-llm" --port "$PORT" --latency-ms 200 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"

# ---- 1. no deadlock while parents wait --------------------------------------
if on 1; then
# one worker, 4 in flight, 6 map_reduce parents (each a split call into two
# parts, two children of two model calls, a reduce call, 200 ms each)
WORKERS=1 MAX_INFLIGHT=4 fresh "$MOCK_YAML"
ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 6 > /dev/null
WAIT_S=30 expect_all_done 18
[ "$(ctl sessions --state done --json | jq '[.[] | select(.workflow == "map_reduce" and .result == "The answer is 4.")] | length')" = 6 ] ||
	fail "1: map_reduce parents without their answer"
# two workers at the default max_inflight, 2,000 parents at once
WORKERS=2 fresh "$MOCK_YAML"
ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 2000 > /dev/null
WAIT_S=120 expect_all_done 6000
mixed=0
# a mixed load at several max_inflight: react, map_reduce, plan_execute
for mi in 1 2 8; do
	WORKERS=2 MAX_INFLIGHT=$mi fresh "$MOCK_YAML"
	ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 20 > /dev/null
	ctl submit --workflow plan_execute --prompt "what is 2+2, checked?" --count 20 > /dev/null
	ctl submit --workflow react --prompt "what is 2+2?" --count 20 > /dev/null
	WAIT_S=120 expect_all_done 140   # 20 x 3 + 20 x 3 + 20
	mixed=$((mixed + 140))
done
# parents that find no free record for a child hold no slot either: they
# park until one is freed (here by retention, after 1 s) ...
SESSIONS=5 RETAIN_S=1 WORKERS=1 fresh "$MOCK_YAML" "workflows:
  child_alloc_timeout_s: 30"
ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 2 > "$T/ids"
ctl wait --timeout 30 || fail "1: parents waiting for a record never finished"
for id in $(cat "$T/ids"); do
	ctl session "$id" --json 2>/dev/null | jq -e '.state == "done"' > /dev/null ||
		[ "$(ctl_stat .sessions.purged)" -ge 3 ] || fail "1: parent $id: $(ctl session "$id" --json)"
done
[ "$(ctl_stat '.sessions.failed')" = 0 ] || fail "1: sessions failed waiting for a record: $(ctl stats)"
[ "$(ctl_stat '.sessions.done + .sessions.purged')" = 6 ] || fail "1: $(ctl stats --json | jq -c .sessions)"
grep -q "no free session record for a child session (region.sessions 5); waiting for one" "$T/forged.log" ||
	fail "1: no parent ever had to wait for a record"
ctl check > "$T/check.out" || fail "1: check: $(cat "$T/check.out")"
# ... and fail, naming the setting, when none is freed in time
SESSIONS=4 WORKERS=1 fresh "$MOCK_YAML" "workflows:
  child_alloc_timeout_s: 1"
ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 4 > /dev/null
ctl wait --timeout 30 || fail "1: parents without a record for a child never ended"
[ "$(ctl_stat .sessions.failed)" = 4 ] || fail "1: $(ctl stats --json | jq -c .sessions)"
[ "$(ctl sessions --state failed --json | jq -r '.[0].error')" = "no free session record for a child session for 1 s (workflows.child_alloc_timeout_s): raise region.sessions, or purge sooner (region.retain_s)" ] ||
	fail "1: error: $(ctl sessions --state failed --json | jq -r '.[0].error')"
ctl check > "$T/check.out" || fail "1: check: $(cat "$T/check.out")"
echo "1: 18 + 6000 + $mixed sessions done, none wedged; parents waited, parked, for a free record, or failed naming region.sessions"
fi

# ---- 2. purge ABA ------------------------------------------------------------
if on 2; then
SESSIONS=1 WORKERS=1 fresh
s1=$(ctl submit --workflow synthetic --steps 1)
ctl wait --timeout 10 || fail "2: s1 not done"
sleep 1.2   # s1 must be older than the stalled purger's cutoff (1 s): time, not an event
FORGE_STALLPOINT=session.purge.after_count:1 FORGE_STALL_FILE=$T/p.stall \
	ctl purge --older-than 1 > "$T/purge.out" 2>>"$T/purge.err" &
pp=$!
p=$(stalled "$T/p.stall")
[ "$(ctl purge)" = "purged 1 sessions (2 in all)" ] || fail "2: the second purge did not free s1"
s2=$(ctl submit --workflow synthetic --steps 1)
[ "$(echo "$s2" | cut -c25-32)" = "$(echo "$s1" | cut -c25-32)" ] || fail "2: s2 ($s2) did not reuse s1's record ($s1)"
ctl wait --timeout 10 || fail "2: s2 not done"
release "$p"
wait "$pp" || fail "2: the stalled purge failed: $(cat "$T/purge.err")"
[ "$(state_of "$s2")" = done ] || fail "2: s2, finished just now, was purged by a purger stalled on s1"
ctl session "$s1" > /dev/null 2>&1 && fail "2: s1 still answers"
ctl check > "$T/check.out" || fail "2: check: $(cat "$T/check.out")"
echo "2: a purger stalled on $s1 left $s2 (same record) alone"
fi

# ---- 3. stale cancel ------------------------------------------------------------
if on 3; then
SESSIONS=1 WORKERS=1 fresh
s1=$(ctl submit --workflow synthetic --steps 2 --delay-us 300000)
until_true 5 sh -c "[ \"\$($BIN/forgectl --region $REGION session $s1 --json | jq -r .state)\" = running ]" ||
	fail "3: s1 never ran"
FORGE_STALLPOINT=session.cancel.before_cas:1 FORGE_STALL_FILE=$T/c.stall \
	ctl cancel "$s1" > "$T/cancel.out" 2>&1 &
cp=$!
p=$(stalled "$T/c.stall")
ctl wait --timeout 10 || fail "3: s1 not done"
[ "$(state_of "$s1")" = done ] || fail "3: s1 $(state_of "$s1")"
ctl purge > /dev/null
s2=$(ctl submit --workflow synthetic --steps 2 --delay-us 300000)
until_true 5 sh -c "[ \"\$($BIN/forgectl --region $REGION session $s2 --json | jq -r .state)\" = running ]" ||
	fail "3: s2 never ran"
release "$p"
set +e; wait "$cp"; rc=$?; set -e
[ $rc != 0 ] || fail "3: the stale cancel of $s1 said it cancelled something: $(cat "$T/cancel.out")"
ctl wait --timeout 10 || fail "3: s2 not done"
[ "$(state_of "$s2")" = done ] || fail "3: s2 (same record, same worker lease) ended $(state_of "$s2"): a stale cancel reached it"
echo "3: a cancel of $s1 stalled across its end and reuse left $s2 running to done"
fi

# ---- 4. the supervisor probing a client slot --------------------------------------
if on 4; then
rm -f "$T/sup.stall"
export FORGE_CRASH_SLOT=supervisor FORGE_STALLPOINT=registry.probe.after_owner:1 FORGE_STALL_FILE=$T/sup.stall
WORKERS=1 fresh
unset FORGE_CRASH_SLOT FORGE_STALLPOINT FORGE_STALL_FILE
FORGE_STALLPOINT=session.alloc.after_cas:1 FORGE_STALL_FILE=$T/a.stall \
	ctl submit --workflow synthetic --steps 1 > "$T/a.ids" &
ap=$!
a=$(stalled "$T/a.stall")
sup=$(stalled "$T/sup.stall")   # it read A's owner word, and stopped
release "$a"
wait "$ap" || fail "4: A failed"
FORGE_STALLPOINT=session.alloc.after_cas:1 FORGE_STALL_FILE=$T/b.stall \
	ctl submit --workflow synthetic --steps 1 > "$T/b.ids" &
bp=$!
b=$(stalled "$T/b.stall")      # B took the same client slot and fills a record
release "$sup"                  # the supervisor goes on with A's word: A is gone
# the supervisor runs its client sweep every loop: give it time to act
# (wrongly) while B still holds its record, the window of the hole
sleep 0.3
release "$b"
wait "$bp" || fail "4: B failed"
ctl wait --timeout 10 || fail "4: not done"
! grep -q "client slot .* is gone" "$T/forged.log" ||
	fail "4: the supervisor recovered a client slot: $(grep 'client slot' "$T/forged.log")"
expect_all_done 2
[ "$(state_of "$(cat "$T/b.ids")")" = done ] || fail "4: B's session is not done"
echo "4: a supervisor stalled on A's client slot did not recover B, which took it"
fi

# ---- 5. a client stopped between ring claim and publish ----------------------------
if on 5; then
WORKERS=1 fresh
FORGE_STALLPOINT=ring.enq.after_claim:1 FORGE_STALL_FILE=$T/r.stall \
	ctl submit --workflow synthetic --steps 1 > "$T/r.ids" &
rp=$!
r=$(stalled "$T/r.stall")
t0=$(date +%s%N)
ctl submit --workflow synthetic --steps 1 --count 20 > "$T/ids"
until_true 5 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.done) = 20 ]" ||
	fail "5: 20 sessions queued behind a stopped client: $(ctl stats --json | jq -c .sessions)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "^State:.*T" /proc/$r/status || fail "5: the client was let go early"
release "$r"
wait "$rp" || fail "5: the stopped client failed"
expect_all_done 21
echo "5: 20 sessions done in $ms ms while a client held a ring position"
fi

# ---- 6. readers re-validate after copying -------------------------------------------
if on 6; then
# run PROMPT: a scripted ReAct session to its end (in the table's one record)
run() {
	x=$(ctl submit --workflow react --prompt "$1")
	ctl wait --timeout 10 || fail "6: \"$1\" not done"
	echo "$x"
}
SESSIONS=1 WORKERS=1 fresh "$SCRIPTED_YAML"
s1=$(run "alice's question")
FORGE_STALLPOINT=session.snapshot.after_check:1 FORGE_STALL_FILE=$T/f.stall \
	ctl session "$s1" --json > "$T/f.out" 2>"$T/f.err" &
fp=$!
p=$(stalled "$T/f.stall")
ctl purge > /dev/null
run "bob's secret question" > /dev/null
release "$p"
set +e; wait "$fp"; rc=$?; set -e
grep -q "bob" "$T/f.out" && fail "6: forgectl session $s1 printed bob's conversation: $(cat "$T/f.out")"
[ $rc = 1 ] && grep -q "no session $s1" "$T/f.err" || fail "6: forgectl session: exit $rc: $(cat "$T/f.err")"
# the SSE stream, in the gateway: stopped in its first read of s3
export FORGE_CRASH_SLOT=gateway FORGE_STALLPOINT=session.snapshot.after_check:1 FORGE_STALL_FILE=$T/g.stall
SESSIONS=1 WORKERS=1 fresh "$SCRIPTED_YAML"
unset FORGE_CRASH_SLOT FORGE_STALLPOINT FORGE_STALL_FILE
until_true 10 curl -sf "$API/healthz" || fail "6: gateway not up"
s3=$(run "carol's question")
curl -sN --max-time 20 "$API/v1/sessions/$s3/events" > "$T/sse.out" 2>/dev/null &
up=$!
g=$(stalled "$T/g.stall")
ctl purge > /dev/null
run "dave's secret question" > /dev/null
release "$g"
wait "$up" || true
grep -q "dave" "$T/sse.out" && fail "6: the SSE stream of $s3 showed dave's conversation: $(cat "$T/sse.out")"
grep -q "carol" "$T/sse.out" && fail "6: the stream read s3 after it was purged"
curl -s "$API/v1/sessions/$s3" | grep -q '"no session' || fail "6: $s3 still answers"
echo "6: forgectl session and the SSE stream, stalled across a purge and reuse, showed nothing of it"
fi

# ---- 7. a worker stopped when its supervisor dies ----------------------------------
# It cannot act on the SIGTERM its death sends, and holds the region lock:
# a new forged waits out the drain's grace (shutdown_timeout_ms +
# watchdog_ms), then kills it, recovers its sessions and starts.
if on 7; then
WATCHDOG_MS=500 WORKERS=1 fresh
ctl submit --workflow synthetic --steps 4 --delay-us 100000 --count 50 > /dev/null
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION workers --json | jq '.[0].inflight') -ge 10 ]" ||
	fail "7: worker 0 never held sessions"
ctl kill-worker 0 --signal STOP > /dev/null
kill -KILL "$FORGED_PID"; wait "$FORGED_PID" 2>/dev/null || true
"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
until_true 30 sh -c "[ \$($BIN/forgectl --region $REGION status --json | jq .boots) = 2 ]" ||
	fail "7: the new forged never started: $(tail -3 "$T/forged.log")"
grep -q "still holds the region after 5500 ms: killing it" "$T/forged.log" ||
	fail "7: no orphan was killed"
WORKERS=1 expect_all_done 50
echo "7: a stopped orphan worker was killed after 5.5 s; its sessions resumed"
fi

# ---- 8. a purge stopped while it holds a record to give its pages back ---------
# The record is held under the purger's client lease (ALLOCATING): nobody
# can reuse it, its id is already gone, and every other session goes on; a
# second purge runs meanwhile; let go, the first one finishes its record.
if on 8; then
SESSIONS=64 WORKERS=1 fresh "$SCRIPTED_YAML"
big=$(head -c 3000 /dev/zero | tr '\0' x)   # past the 896 inline log bytes
ctl submit --workflow react --prompt "$big" --count 10 > "$T/ids"
ctl wait --timeout 20 || fail "8: not done"
FORGE_STALLPOINT=session.purge.after_hold:1 FORGE_STALL_FILE=$T/h.stall ctl purge > "$T/p1.out" 2>"$T/p1.err" &
pp=$!
p=$(stalled "$T/h.stall")
held=$(ctl_stat .sessions.freeing)
[ "$held" = 1 ] || fail "8: $held records held by the stopped purger"
[ "$(ctl purge)" = "purged 9 sessions (10 in all)" ] || fail "8: the second purge: $(ctl stats --json | jq -c .sessions)"
ctl submit --workflow react --prompt "$big" --count 50 > /dev/null
ctl wait --timeout 20 || fail "8: sessions waited for the stopped purger"
[ "$(ctl_stat .sessions.done)" = 50 ] && [ "$(ctl_stat .sessions.freeing)" = 1 ] ||
	fail "8: $(ctl stats --json | jq -c .sessions)"
release "$p"
wait "$pp" || fail "8: the stopped purge failed: $(cat "$T/p1.err")"
[ "$(cat "$T/p1.out")" = "purged 1 sessions (10 in all)" ] || fail "8: first purge said: $(cat "$T/p1.out")"
[ "$(ctl_stat .sessions.freeing)" = 0 ] && [ "$(ctl_stat .sessions.free)" = 14 ] ||
	fail "8: after: $(ctl stats --json | jq -c .sessions)"
ctl check > "$T/check.out" || fail "8: check: $(cat "$T/check.out")"
echo "8: a purge stopped holding a record left the other 59 sessions alone"
fi

# ---- 9. a flush leader stopped before its fdatasync --------------------------
# A forgectl submit under durability: sync wins the flush and is stopped
# before it flushes; POST /v1/sessions still answers 201 (each waiter
# flushes by itself after FG_SYNC_PATIENCE_MS, 50 ms); killed, the stopped
# client's leadership is cleared by the supervisor's recovery.
if on 9; then
[ -n "$FORGED_PID" ] && stop_forged
rm -f "$REGION" "$REGION.lock" "$T"/*.stall
: > "$T/forged.log"
write_config
printf '%s\n' "$SCRIPTED_YAML" >> "$T/forge.yaml"
sed -i "s/^  sessions: \(.*\)$/  sessions: \1\n  durability: sync/" "$T/forge.yaml"
start_forged
FORGE_STALLPOINT=durable.flush.before_sync:1 FORGE_STALL_FILE=$T/f.stall \
	ctl submit --workflow react --prompt "what is 2+2?" > "$T/f.out" 2>&1 &
fp=$!
p=$(stalled "$T/f.stall")
leader=$(ctl_stat .durability.leader_slot)
[ "$leader" -ge 65 ] || fail "9: leader slot $leader, want the client's"
start=$(date +%s%N)
for i in $(seq 20); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?"}')
	[ "$code" = 201 ] || fail "9: POST $i answered $code behind the stopped flush leader"
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $ms -lt 10000 ] || fail "9: 20 POSTs took $ms ms behind the stopped flush leader"
ctl wait --timeout 20 || fail "9: not done"
kill -KILL "$p"; wait "$fp" 2>/dev/null || true
no_leader() { [ "$(ctl_stat .durability.leader_slot)" = -1 ]; }
until_true 10 no_leader ||
	fail "9: the dead leader's slot was never cleared: $(ctl stats --json | jq -c .durability)"
ctl check > "$T/check.out" || fail "9: check: $(cat "$T/check.out")"
echo "9: a flush leader stopped before fdatasync: 20 POSTs answered 201 in $ms ms; killed, its leadership cleared"
fi

# ---- 10. forgectl say stopped while it holds a thread RUNNING -----------------
# A client appending a thread's next message holds a session others can see:
# stopped past the watchdog it is a hang, killed and recovered; the session
# goes on (with the message, committed before the stop) and takes the next.
if on 10; then
[ -n "$FORGED_PID" ] && stop_forged
rm -f "$REGION" "$REGION.lock" "$T"/*.stall
: > "$T/forged.log"
WATCHDOG_MS=1000 write_config
printf '%s\n' "$SCRIPTED_YAML" >> "$T/forge.yaml"
start_forged
t=$(ctl submit --workflow react --prompt "what is 2+2?")
ctl wait --timeout 10 > /dev/null || fail "10: first run"
FORGE_STALLPOINT=session.continue.after_commit:1 FORGE_STALL_FILE=$T/t.stall \
	ctl say "$t" "again?" > /dev/null 2>&1 &
tp=$!
p=$(stalled "$T/t.stall")
[ "$(state_of "$t")" = running ] || fail "10: not held running: $(state_of "$t")"
until_true 10 grep -q "client slot [0-9]*: pid $p has held a running session for more than 1000 ms" "$T/forged.log" ||
	fail "10: the stopped client was not killed"
wait "$tp" 2>/dev/null || true
until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION session --json $t | jq -r .state)\" = done ]" ||
	fail "10: the thread never ended: $(state_of "$t")"
[ "$(ctl session --json "$t" | jq -c '[.messages[].role]')" = '["user","assistant","tool","assistant","user","assistant","tool","assistant"]' ] ||
	fail "10: roles $(ctl session --json "$t" | jq -c '[.messages[].role]')"
[ "$(ctl say "$t" "and now?")" = "$t queued" ] || fail "10: next message"
ctl wait --timeout 10 > /dev/null || fail "10: last run"
ctl check > "$T/check.out" || fail "10: check: $(cat "$T/check.out")"
echo "10: forgectl say stopped holding a thread was killed after the watchdog; the thread went on"
fi

# ---- 11. a purge stopped across a thread's next run ---------------------------
# The purger judged the session old, then stopped; meanwhile the thread took
# a message, ran, and ended with the very same ctl word.  Let go, the purge
# holds the record, sees the checkpoint moved on, and puts it back.
if on 11; then
SESSIONS=64 WORKERS=1 fresh "$SCRIPTED_YAML"
t=$(ctl submit --workflow react --prompt "what is 2+2?")
ctl wait --timeout 10 > /dev/null || fail "11: first run"
FORGE_STALLPOINT=session.purge.after_count:1 FORGE_STALL_FILE=$T/pg.stall ctl purge > "$T/pg.out" 2> "$T/pg.err" &
pp=$!
p=$(stalled "$T/pg.stall")
[ "$(ctl say "$t" "again?")" = "$t queued" ] || fail "11: say"
ctl wait --timeout 10 > /dev/null || fail "11: second run"
release "$p"
wait "$pp" || fail "11: the purge failed: $(cat "$T/pg.err")"
[ "$(cat "$T/pg.out")" = "purged 0 sessions (0 in all)" ] || fail "11: purge said: $(cat "$T/pg.out")"
[ "$(state_of "$t")" = done ] && [ "$(ctl session --json "$t" | jq '.messages | length')" = 8 ] ||
	fail "11: the thread: $(ctl session --json "$t" | jq -c '{state, n: (.messages | length)}')"
ctl check > "$T/check.out" || fail "11: check: $(cat "$T/check.out")"
# the same, the purge dying once it holds the record, before its re-check:
# the recovery puts it back as it was (not FREE: it may be the newer run)
FORGE_STALLPOINT=session.purge.after_count:1 FORGE_CRASHPOINT=session.purge.after_hold:1 \
	FORGE_STALL_FILE=$T/pg2.stall ctl purge > "$T/pg.out" 2> "$T/pg.err" &
pp=$!
p=$(stalled "$T/pg2.stall")
[ "$(ctl say "$t" "and again?")" = "$t queued" ] || fail "11: say (2)"
ctl wait --timeout 10 > /dev/null || fail "11: third run"
release "$p"
set +e; wait "$pp"; rc=$?; set -e
[ $rc = 137 ] || fail "11: the purge should have died at after_hold: exit $rc, $(cat "$T/pg.err")"
is_done() { [ "$(state_of "$1")" = done ]; }
until_true 10 is_done "$t" ||
	fail "11: the thread after its purger died holding it: $(ctl stats --json | jq -c .sessions)"
[ "$(ctl session --json "$t" | jq '.messages | length')" = 12 ] && [ "$(ctl_stat .sessions.purged)" = 0 ] ||
	fail "11: the thread: $(ctl session --json "$t" | jq -c '{state, n: (.messages | length)}'), purged $(ctl_stat .sessions.purged)"
ctl check > "$T/check.out" || fail "11: check (2): $(cat "$T/check.out")"
echo "11: a purge stopped across a thread's next run put the session back; dying while it held it, the recovery did"
fi

if on 12; then
[ -n "$FORGED_PID" ] && stop_forged
rm -f "$REGION" "$REGION.lock" "$T"/*.stall
: > "$T/forged.log"
write_config
sed -i 's/^  heartbeat_ms: .*/  heartbeat_ms: 8000/; s/^  sweep_after_ms: .*/  sweep_after_ms: 30000/' "$T/forge.yaml"
export FORGE_STALLPOINT=worker.wake.after:1 FORGE_CRASH_SLOT=0 FORGE_STALL_FILE=$T/wk.stall
start_forged
unset FORGE_STALLPOINT FORGE_CRASH_SLOT FORGE_STALL_FILE
done_now() { [ "$(state_of "$1")" = done ]; }
asleep() { for w in $(ctl workers --json | jq '.[].pid'); do grep -q futex "/proc/$w/wchan" || return 1; done; }
held_or_done() { [ -s "$T/wk.stall" ] || [ "$(state_of "$1")" = done ]; }
held=""
for k in 1 2 3 4 5 6 7 8; do   # (until worker 0 is the sleeper woken)
	until_true 10 asleep || fail "12: the workers do not sleep"
	id=$(ctl submit --workflow synthetic --steps 1)
	until_true 10 held_or_done "$id" || fail "12: $id neither done nor held"
	if [ -s "$T/wk.stall" ]; then held=$id; break; fi
done
[ -n "$held" ] || fail "12: worker 0 was never the one woken"
p=$(stalled "$T/wk.stall")
t0=$(date +%s%N)
until_true 4 done_now "$held" ||
	fail "12: a session whose wake a stalled worker holds waited past the sweep: $(state_of "$held")"
echo "12: a worker stopped after its wake: the session ran in $(( ($(date +%s%N) - t0) / 1000000 )) ms (heartbeat_ms 8000)"
release "$p"
ctl wait --timeout 10 > /dev/null || fail "12: not all done"
# no wake-up lost (the armed doorbell, region.h): 20 sessions, each
# submitted while both workers sleep, each done at once (a lost one would
# wait for a heartbeat_ms of 8 s; the sweep is 15 s away)
for k in $(seq 20); do
	until_true 10 asleep || fail "12: the workers do not sleep (k=$k)"
	id=$(ctl submit --workflow synthetic --steps 1)
	until_true 2 done_now "$id" || fail "12: session $k was not woken for: $(state_of "$id")"
done
# forgectl submit --count rings once every 256 sessions and at its end:
# one stopped part-way (its reader gone, or a ^C) rings before it goes,
# and what it queued runs at once, not at the workers' 8 s timeout
until_true 10 asleep || fail "12: the workers do not sleep (pipe)"
set +e
ctl submit --workflow synthetic --steps 1 --count 300 | head -1 > "$T/first"
set -e
all_ran() { [ "$(ctl_stat .sessions.queued)" = 0 ] && [ "$(ctl_stat .sessions.running)" = 0 ]; }
until_true 2 all_ran || fail "12: a submit whose reader left: $(ctl stats --json | jq -c .sessions)"
until_true 10 asleep || fail "12: the workers do not sleep (INT)"
# (held at its 6th session, 5 queued and not rung; the SIGINT is taken as
# it goes on)
FORGE_STALLPOINT=session.alloc.before_queue:6 FORGE_STALL_FILE=$T/sub.stall \
	ctl submit --workflow synthetic --steps 1 --count 300 > /dev/null 2>&1 &
sp=$!
p=$(stalled "$T/sub.stall")
[ "$(ctl_stat .sessions.queued)" = 5 ] || fail "12: the held submit: $(ctl stats --json | jq -c .sessions)"
kill -INT "$p"
release "$p"
set +e; wait $sp; rc=$?; set -e
[ $rc = 130 ] || fail "12: a submit stopped by SIGINT: exit $rc"
until_true 2 all_ran || fail "12: a submit stopped by SIGINT left: $(ctl stats --json | jq -c .sessions)"
echo "12: a submit stopped part-way (a closed pipe, SIGINT): what it queued ran at once"
# a drain wakes the sleepers too: they stop now, not at their 8 s timeout
# (past shutdown_timeout_ms 5000: killed)
until_true 10 asleep || fail "12: the workers do not sleep (2)"
t0=$(date +%s%N)
stop_forged
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 3000 ] && ! grep -q "shutdown timeout" "$T/forged.log" ||
	fail "12: a drain with sleeping workers took $ms ms: $(grep 'shutdown timeout' "$T/forged.log")"
echo "12: a drain with both workers asleep: $ms ms"
fi

[ -n "$FORGED_PID" ] && stop_forged
echo "stalls: $(cat "$T/nstalls" 2>/dev/null | wc -l) stall points held, holes 1-12 closed (lost 0, duplicated 0)"
