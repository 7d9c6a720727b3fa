#!/bin/sh
# Chaos with SIGSTOP: a stopped worker stops beating; the watchdog must
# kill it and its sessions must resume elsewhere.  Every stop must become
# exactly one watchdog kill and one restart.
WATCHDOG_MS=300
. "$(dirname "$0")/../lib.sh"
start_forged
ctl submit --workflow synthetic --steps 8 --count 1000 --delay-us 50000 > /dev/null
stops=0
for i in 1 2 3 4; do
	slot=$((i % 2))
	ctl kill-worker $slot --signal STOP >/dev/null || fail "could not stop worker $slot"
	stops=$((stops + 1))
	until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION stats --json | jq .workers.restarts)\" = $stops ]" ||
		fail "watchdog did not replace stopped worker $slot (restarts $(ctl_stat .workers.restarts))"
	until_true 10 workers_alive || fail "replacement not ready"
done
expect_all_done 1000
[ "$(grep -c 'heartbeat stale' "$T/forged.log")" = "$stops" ] || fail "watchdog log lines != $stops"
[ "$(ctl workers --json | jq '[.[] | select(.last_signal == 9)] | length')" = 2 ] ||
	fail "both slots should show a SIGKILL as last exit"
stop_forged
echo "chaos_stop: 1000 sessions done, $stops stopped workers killed by the watchdog; $(recovery)"
