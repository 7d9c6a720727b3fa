#!/bin/sh
# Restart policy: the first restart is immediate, later ones back off, and a
# slot killed more than `intensity` times within `period_s` is not restarted
# again: it is DISABLED, forge reports itself degraded, the other worker
# carries on, and every session still completes.
. "$(dirname "$0")/../lib.sh"
write_config
sed -i 's/intensity: 100000/intensity: 3/; s/backoff_initial_ms: 10/backoff_initial_ms: 50/' "$T/forge.yaml"
start_forged
slot0_pid() { ctl workers --json | jq '.[0].pid'; }
for i in 1 2 3 4; do
	until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION workers --json | jq -r '.[0].state')\" = ready ]" ||
		fail "worker 0 not ready before kill $i"
	ctl kill-worker 0 > /dev/null || fail "kill $i"
	until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION workers --json | jq '.[0].restarts')\" = $i ]" ||
		fail "restart $i not counted"
done
until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION workers --json | jq -r '.[0].state')\" = disabled ]" ||
	fail "slot 0 not disabled after 4 deaths: $(ctl workers)"
[ "$(ctl status --json | jq -r .supervisor)" = degraded ] || fail "status: $(ctl status)"
grep -q "worker 0: 4 restarts within 60 s exceed the limit of 3: not restarting it; forge is degraded" "$T/forged.log" ||
	fail "no intensity log line"
grep -q "worker 0: restarting in 50 ms (restart 2 within 60 s)" "$T/forged.log" || fail "no backoff on restart 2"
grep -q "worker 0: restarting in 100 ms (restart 3 within 60 s)" "$T/forged.log" || fail "backoff did not double"
ctl submit --workflow synthetic --steps 3 --count 500 > /dev/null
expect_all_done 500
[ "$(ctl workers --json | jq '.[1].done')" = 500 ] || fail "worker 1 should have run all 500"
stop_forged
echo "intensity: backoff 50 -> 100 ms, slot disabled after 4 deaths in 60 s, 500 sessions done on the other worker"
