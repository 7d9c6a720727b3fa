#!/bin/sh
# Crash points: for every step of every shared operation, a process is
# killed exactly there (SIGKILL at the Nth hit of the point, in the test
# build), and afterwards every session must complete with the right
# checksum, no session may be lost or duplicated, and check must be clean.
#   worker-side points: worker 0's first incarnation dies at the point
#   submitter-side points: forgectl submit dies at the point
. "$(dirname "$0")/../lib.sh"

worker_points="ring.deq.after_claim ring.deq.after_release session.claim.after_lease_entry
session.claim.after_cas ckpt.commit.after_write ckpt.commit.after_publish
session.finish.after_cas session.release.after_cas ring.enq.before_claim
ring.enq.after_claim ring.enq.after_publish"
submit_points="session.alloc.after_cas session.alloc.before_queue session.alloc.after_queue
ring.enq.before_claim ring.enq.after_claim ring.enq.after_publish"
other_points="registry.attach.after_cas recover.after_entry session.purge.after_count
session.purge.after_cas session.purge.after_hold session.purge.after_judge session.cancel.before_cas session.snapshot.after_check
registry.probe.after_owner registry.recover.after_cas ring.unstall.before_cas"
# walked in threads.sh (forgectl say killed at each)
thread_points="session.continue.before_cas session.continue.after_cas session.continue.after_commit"
# walked in approval.sh (a worker that asked, forgectl and the gateway answering)
approval_points="approval.ask.after_commit approval.answer.before_cas approval.answer.after_cas
approval.answer.after_commit"
# walked in mapreduce.sh, where the children and parents they concern exist
mapreduce_points="mapreduce.child.after_alloc mapreduce.child.after_record session.park.after_cas
session.wake.before_cas session.finish.before_clear"

# walked in mcp.sh (a worker killed around a call to an MCP server)
mcp_points="mcp.call.before_send mcp.call.after_send"

# Every crash point compiled in must be exercised here (or in the test named).
for p in $("$BIN/forgectl" --help >/dev/null; strings "$BIN/forged" | grep -E '^(ring|session|ckpt|registry|mapreduce|approval|mcp)\.[a-z]+\.[a-z_]+$|^recover\.[a-z_]+$' | sort -u); do
	echo "$worker_points $submit_points $other_points $mapreduce_points $thread_points $approval_points $mcp_points" | tr ' ' '\n' | grep -qx "$p" ||
		fail "crash point $p is not covered by this test"
done

n=0
reset_region() {
	[ -n "$FORGED_PID" ] && stop_forged
	rm -f "$REGION" "$REGION.lock"
	: > "$T/forged.log"
}

for p in $worker_points; do
	reset_region
	export FORGE_CRASHPOINT="$p:5" FORGE_CRASH_SLOT=0
	start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
	case $p in
	session.release.*|ring.enq.*)
		# reached when worker 0 drains: stop it while it holds sessions
		ctl submit --workflow synthetic --steps 4 --count 400 --delay-us 200000 > "$T/ids"
		until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION workers --json | jq '.[0].inflight') -ge 10 ]" ||
			fail "$p: worker 0 never held sessions"
		ctl kill-worker 0 --signal TERM > /dev/null ;;
	*)
		# 1-step sessions first: the 5th commit is then a session's last
		# step, the window between its final checkpoint and its finish
		ctl submit --workflow synthetic --steps 1 --count 200 --delay-us 1000 > "$T/ids"
		ctl submit --workflow synthetic --steps 4 --count 200 --delay-us 1000 >> "$T/ids" ;;
	esac
	WAIT_S=60 expect_all_done 400
	# worker 1 may take nearly all of a batch (a slow sanitized worker 0
	# wakes late): more batches, polled, until worker 0 hit the point
	total=400 round=0
	until grep -q "crash point reached" "$T/forged.log" || [ $round -ge 5 ]; do
		ctl submit --workflow synthetic --steps 4 --count 200 --delay-us 1000 >> "$T/ids"
		total=$((total + 200)) round=$((round + 1))
		WAIT_S=60 expect_all_done $total
	done
	grep -q "crash point reached" "$T/forged.log" || fail "$p: the crash point was never reached"
	[ "$(ctl workers --json | jq '.[0].last_signal')" = 9 ] || fail "$p: worker 0 did not die by SIGKILL"
	[ "$(ctl_stat .workers.restarts)" = 1 ] || fail "$p: restarts $(ctl_stat .workers.restarts), want 1"
	n=$((n + 1))
done

for p in $submit_points; do
	reset_region
	start_forged
	set +e
	FORGE_CRASHPOINT="$p:5" ctl submit --workflow synthetic --steps 4 --count 100 --delay-us 1000 > "$T/ids"
	rc=$?
	set -e
	[ $rc = 137 ] || fail "$p: forgectl submit should have died by SIGKILL, exit $rc"
	printed=$(wc -l < "$T/ids")
	[ "$printed" = 4 ] || fail "$p: $printed ids printed before the crash, want 4"
	# the dead client's slot is recovered by the supervisor's sweep
	until_true 10 sh -c "[ \$(grep -c 'client slot .* is gone' $T/forged.log) = 1 ]" ||
		fail "$p: dead submitter never recovered"
	ctl submit --workflow synthetic --steps 4 --count 100 > /dev/null
	case $p in
	session.alloc.after_cas|session.alloc.before_queue) extra=0 ;;   # rolled back to FREE
	*) extra=1 ;;                                                   # QUEUED: it runs
	esac
	expect_all_done $((104 + extra))
	n=$((n + 1))
done
# POST /v1/sessions/batch with an Idempotency-Key: the gateway killed at
# each step of making the batch's 3rd session; the client's retry (its
# answer lost) makes only those not made yet: 4 sessions, each once
for p in session.alloc.after_cas session.alloc.before_queue session.alloc.after_queue \
	 ring.enq.after_publish; do
	reset_region
	write_config
	printf 'llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' >> "$T/forge.yaml"
	export FORGE_CRASHPOINT="$p:3" FORGE_CRASH_SLOT=gateway
	start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
	until_true 10 curl -sf "$API/healthz" || fail "batch $p: gateway not up"
	gw=$(pgrep -P "$FORGED_PID" forge-gateway)
	B='{"sessions":[{"prompt":"b0"},{"prompt":"b1"},{"prompt":"b2"},{"prompt":"b3"}]}'
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Idempotency-Key: nightly-1' -d "$B" "$API/v1/sessions/batch" || true)
	[ "$code" = 000 ] || fail "batch $p: the gateway answered $code"
	until_true 10 sh -c "curl -sf $API/healthz > /dev/null && [ \"\$(pgrep -P $FORGED_PID forge-gateway)\" != $gw ]" ||
		fail "batch $p: no new gateway"
	grep -q "crash point reached" "$T/forged.log" || fail "batch $p: never reached"
	code=$(curl -s -o "$T/b1" -w '%{http_code}' -H 'Idempotency-Key: nightly-1' -d "$B" "$API/v1/sessions/batch")
	[ "$code" = 201 ] && [ "$(jq -r '.data[].id' "$T/b1" | sort -u | wc -l)" = 4 ] ||
		fail "batch $p: the retry: $code $(cat "$T/b1")"
	expect_all_done 4
	[ "$(for b in $(jq -r '.data[].id' "$T/b1"); do curl -s "$API/v1/sessions/$b" | jq -r '.messages[0].content'; done | tr '\n' ' ')" = "b0 b1 b2 b3 " ] ||
		fail "batch $p: the ids are not b0..b3 in order"
	code=$(curl -s -o "$T/b2" -w '%{http_code}' -H 'Idempotency-Key: nightly-1' -d "$B" "$API/v1/sessions/batch")
	[ "$code" = 200 ] && cmp -s "$T/b1" "$T/b2" || fail "batch $p: a second retry: $code $(cat "$T/b2")"
	n=$((n + 1))
done
write_config

# ReAct sessions (scripted provider): a worker killed in each commit window
# of a conversation resumes it with no message lost or repeated (check
# validates every conversation), the last turn's window included.
for p in ckpt.commit.after_write ckpt.commit.after_publish session.finish.after_cas \
	 session.claim.after_cas; do
	for nth in 2 3 4; do   # a model turn, a tool result, the final answer
		reset_region
		WORKERS=1 write_config   # one worker: it must be the one to hit the point
		printf 'llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' >> "$T/forge.yaml"
		export FORGE_CRASHPOINT="$p:$nth" FORGE_CRASH_SLOT=0 WORKERS=1
		start_forged
		unset FORGE_CRASHPOINT FORGE_CRASH_SLOT WORKERS
		ctl submit --workflow react --prompt "what is 2+2?" --count 300 > /dev/null
		expect_all_done 300
		grep -q "crash point reached" "$T/forged.log" || fail "react $p:$nth: never reached"
		[ "$(ctl sessions --state done --json | jq '[.[] | select(.result == "The answer is 4." and .steps == 2)] | length')" = 300 ] ||
			fail "react $p:$nth: not every session answered in exactly 2 turns"
		n=$((n + 1))
	done
done
write_config

# forgectl killed right after taking a client slot: the slot comes back
reset_region
start_forged
set +e
FORGE_CRASHPOINT="registry.attach.after_cas:1" ctl submit --workflow synthetic --steps 4 --count 10 > "$T/ids"
rc=$?
set -e
[ $rc = 137 ] && [ ! -s "$T/ids" ] || fail "attach: exit $rc, $(wc -l < "$T/ids") ids"
until_true 10 sh -c "[ \$(grep -c 'client slot .* is gone' $T/forged.log) = 1 ]" ||
	fail "attach: dead client slot never recovered"
for i in $(seq 17); do   # more submitters than client slots: none leaked
	ctl submit --workflow synthetic --steps 4 --count 2 > /dev/null || fail "attach: submit $i refused"
done
expect_all_done 34
n=$((n + 1))

# forgectl purge killed at its 10th record: after counting it, before
# freeing it (the counter is then one over: never under, so check holds),
# and after freeing it; a second purge frees the rest; the table is reused
for p in session.purge.after_count session.purge.after_cas; do
	reset_region
	start_forged
	ctl submit --workflow synthetic --steps 1 --count 100 > /dev/null
	WAIT_S=30 expect_all_done 100
	set +e; FORGE_CRASHPOINT="$p:10" ctl purge > /dev/null 2>&1; rc=$?; set -e
	[ $rc = 137 ] || fail "$p: forgectl purge should have died by SIGKILL, exit $rc"
	case $p in *after_count) freed=9 ;; *) freed=10 ;; esac
	[ "$(ctl_stat .sessions.done)" = $((100 - freed)) ] && [ "$(ctl_stat .sessions.purged)" = 10 ] ||
		fail "$p: after the crash: $(ctl stats --json | jq -c .sessions)"
	ctl check > "$T/check.out" || fail "$p: check: $(cat "$T/check.out")"
	[ "$(ctl purge)" = "purged $((100 - freed)) sessions ($((110 - freed)) in all)" ] || fail "$p: second purge"
	[ "$(ctl_stat .sessions.free)" = 8192 ] || fail "$p: table not empty: $(ctl stats --json | jq -c .sessions)"
	ctl submit --workflow synthetic --steps 4 --count 100 > /dev/null
	expect_all_done 100
	n=$((n + 1))
done

# forgectl purge killed while it holds a record (under its client lease)
# whose overflow pages it gives back: held but not yet re-checked, the
# supervisor puts the record back as it was (done, uncounted); judged old,
# it rolls it on to FREE; a second purge frees the rest, the table is reused
for p in after_hold after_judge; do
	reset_region
	WORKERS=1 write_config
	printf 'llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' >> "$T/forge.yaml"
	WORKERS=1 start_forged
	big=$(head -c 3000 /dev/zero | tr '\0' x)   # past the 896 inline log bytes
	ctl submit --workflow react --prompt "$big" --count 20 > /dev/null
	WORKERS=1 expect_all_done 20
	set +e; FORGE_CRASHPOINT="session.purge.$p:5" ctl purge > /dev/null 2>&1; rc=$?; set -e
	[ $rc = 137 ] || fail "$p: forgectl purge should have died by SIGKILL, exit $rc"
	until_true 10 sh -c "grep -q 'client slot .* is gone' $T/forged.log" || fail "$p: the dead purger was not recovered"
	ctl check > "$T/check.out" || fail "$p: check: $(cat "$T/check.out")"
	left=$([ $p = after_hold ] && echo 16 || echo 15)
	[ "$(ctl purge)" = "purged $left sessions (20 in all)" ] || fail "$p: second purge: $(ctl stats --json | jq -c .sessions)"
	[ "$(ctl_stat .sessions.free)" = 8192 ] || fail "$p: table not empty: $(ctl stats --json | jq -c .sessions)"
	ctl submit --workflow react --prompt "$big" --count 20 > /dev/null
	WORKERS=1 expect_all_done 20
	stop_forged
	n=$((n + 1))
done
write_config

# forgectl cancel killed after reading the record, before its CAS; forgectl
# session killed after checking the handle, before copying: nothing changed
reset_region
start_forged
id=$(ctl submit --workflow synthetic --steps 3 --delay-us 100000)
for p in session.cancel.before_cas session.snapshot.after_check; do
	set +e
	case $p in
	session.cancel*) FORGE_CRASHPOINT="$p:1" ctl cancel "$id" > /dev/null 2>&1 ;;
	*) FORGE_CRASHPOINT="$p:1" ctl session "$id" > /dev/null 2>&1 ;;
	esac
	rc=$?; set -e
	[ $rc = 137 ] || fail "$p: forgectl should have died by SIGKILL, exit $rc"
	n=$((n + 1))
done
expect_all_done 1

# a worker killed as it skips a ring cell held by a stopped client (stall
# point in the client, crash point in the worker); the next worker skips it
reset_region
WORKERS=1 write_config
export FORGE_CRASHPOINT="ring.unstall.before_cas:1" FORGE_CRASH_SLOT=0
WORKERS=1 start_forged
unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
FORGE_STALLPOINT=ring.enq.after_claim:1 FORGE_STALL_FILE=$T/r.stall \
	ctl submit --workflow synthetic --steps 1 > /dev/null &
sp=$!
until_true 10 test -s "$T/r.stall" || fail "unstall: the client never stopped"
ctl submit --workflow synthetic --steps 1 --count 20 > /dev/null
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.done) = 20 ]" ||
	fail "unstall: the 20 sessions behind the stopped client did not finish"
grep -q "crash point reached" "$T/forged.log" || fail "unstall: crash point never reached"
kill -CONT "$(cat "$T/r.stall")"
wait "$sp" || fail "unstall: the stopped client failed"
WORKERS=1 expect_all_done 21
n=$((n + 1))
write_config

# the supervisor killed while it probes a client slot (the client is alive,
# stopped), and right after it claimed a dead client's slot for recovery:
# a new forged finishes the job, and the slot serves again
for p in registry.probe.after_owner registry.recover.after_cas; do
	reset_region
	export FORGE_CRASHPOINT="$p:1" FORGE_CRASH_SLOT=supervisor
	start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
	rm -f "$T/a.stall"
	FORGE_STALLPOINT=session.alloc.after_cas:1 FORGE_STALL_FILE=$T/a.stall \
		ctl submit --workflow synthetic --steps 1 > "$T/a.ids" &
	ap=$!
	until_true 10 test -s "$T/a.stall" || fail "$p: the client never stopped"
	[ $p = registry.recover.after_cas ] && kill -KILL "$(cat "$T/a.stall")"
	pid=$FORGED_PID
	set +e; wait "$pid"; rc=$?; set -e
	[ $rc = 137 ] || fail "$p: supervisor should have died by SIGKILL, exit $rc"
	"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
	FORGED_PID=$!
	until_true 10 workers_alive || fail "$p: no workers after the restart"
	if [ $p = registry.probe.after_owner ]; then
		kill -CONT "$(cat "$T/a.stall")"
		wait "$ap" || fail "$p: the stopped client failed after the restart"
		want=1
	else
		wait "$ap" 2>/dev/null || true
		want=0   # its record was rolled back
	fi
	for i in $(seq 17); do   # every client slot serves again
		ctl submit --workflow synthetic --steps 1 > /dev/null || fail "$p: submit $i refused"
	done
	expect_all_done $((17 + want))
	n=$((n + 1))
done

# the supervisor killed in the middle of a recovery pass, then started again
reset_region
export FORGE_CRASHPOINT="recover.after_entry:2" FORGE_CRASH_SLOT=supervisor
start_forged
unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
ctl submit --workflow synthetic --steps 4 --count 400 --delay-us 200000 > /dev/null
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION workers --json | jq '.[0].inflight') -ge 10 ]" ||
	fail "recover: worker 0 never held sessions"
pid=$FORGED_PID
ctl kill-worker 0 > /dev/null
set +e; wait "$pid"; rc=$?; set -e
[ $rc = 137 ] || fail "recover: supervisor should have died by SIGKILL, exit $rc"
FORGED_PID=
grep -q "crash point reached" "$T/forged.log" || fail "recover: crash point never reached"
"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
WAIT_S=60 expect_all_done 400
[ "$(ctl status --json | jq .boots)" = 2 ] || fail "recover: boots != 2"
n=$((n + 1))

stop_forged
echo "crashpoints: $n crash windows, every session done with the right checksum; $(recovery)"
