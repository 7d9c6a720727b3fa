#!/bin/sh
# region.durability across a power loss.  The test build's recorder copies
# the region file after every completed flush (FORGE_TEST_SYNC_SHADOW): that
# copy is what a power loss is sure to leave.  Every forge process is
# SIGKILLed with sessions in flight, the region is replaced by that copy
# (round 1) or by the copy with half of the pages written since taken
# from the killed region, some of them torn at a sector (round 2: tests/tear.c),
# and forged starts after a "reboot" (another FORGE_TEST_BOOT_ID).  Every
# session acknowledged (201, forgectl submit's ids) must be there and finish
# with its exact answer; torn logs are cut back to their last whole commit;
# check stays clean.  Under durability none, a region that went through a
# reboot without a clean stop is refused with its reason; after a clean stop
# it is kept.  A region used under none is sealed when it moves to sync.
. "$(dirname "$0")/../lib.sh"
TEAR=$ROOT/build/tear
PORT=$((20000 + $$ % 10000))
[ "$(stat -f -c %T "$T")" != tmpfs ] || fail "$T is on tmpfs: this test needs a disk file system"

SESSIONS=2048 SESSION_MAX_BYTES=1048576 write_config
llm_yaml "$PORT"
set_durability() { sed -i "/^  durability: /d; s/^  sessions: 2048$/  sessions: 2048\n  durability: $1/" "$T/forge.yaml"; }
mock_on "$PORT" --latency-ms 20
export FORGE_TEST_SYNC_SHADOW="$T/synced"

# 0. tmpfs is refused for batch and sync, with the reason
sed "s|^  path: .*|  path: /dev/shm/forge-it-$$|; s/^  sessions: 2048$/  sessions: 2048\n  durability: batch/" \
	"$T/forge.yaml" > "$T/shm.yaml"
set +e; out=$("$BIN/forged" --check-config -c "$T/shm.yaml" 2>&1); rc=$?; set -e
[ $rc = 78 ] && [ "$out" = "$T/shm.yaml: region.durability: batch: /dev/shm is on tmpfs, which a reboot empties: set region.path to a file on a disk file system (the systemd unit uses /var/lib/forge/region), or region.durability: none" ] ||
	fail "tmpfs not refused: rc $rc: $out"

# 1. none: sessions made, a clean stop; then sync: they are sealed
set_durability none
FORGE_TEST_BOOT_ID=boot-1 start_forged
ctl submit --workflow react --prompt "what is 2+2?" --count 20 > "$T/acked"
ctl wait --timeout 60 > /dev/null || fail "none: not done"
stop_forged
set_durability sync
FORGE_TEST_BOOT_ID=boot-1 start_forged
grep -q "durability sync: sealed 20 sessions' logs" "$T/forged.log" || fail "not sealed: $(tail -3 "$T/forged.log")"

no_forge_left() { ! pgrep -f "$T/forge.yaml" > /dev/null; }

# power_loss ROUND MODE: sessions in flight, every process killed, the
# region replaced by what the disk is sure to hold (MODE synced) or that
# with later pages, some torn (MODE torn), then a reboot
power_loss() {
	before=$(wc -l < "$T/acked")
	for i in $(seq 30); do
		curl -s -o "$T/post.out" -w '%{http_code}' -X POST "$API/v1/sessions" \
			-d '{"workflow":"react","prompt":"what is 2+2?"}' > "$T/code"
		[ "$(cat "$T/code")" = 201 ] && jq -r .id "$T/post.out" >> "$T/acked"
	done
	ctl submit --workflow react --prompt "long:70000 write a long answer" --count 10 >> "$T/acked"
	ctl submit --workflow react --prompt "what is 2+2?" --count 300 >> "$T/acked"
	until_true 30 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.done) -ge $(( $(wc -l < "$T/acked") - 200 )) ]" ||
		fail "round $1: too few done before the kill: $(ctl stats)"
	kill -STOP "$FORGED_PID"
	pkill -KILL -P "$FORGED_PID" || true
	kill -KILL "$FORGED_PID"; kill -CONT "$FORGED_PID" 2>/dev/null || true
	wait "$FORGED_PID" 2>/dev/null || true
	FORGED_PID=
	until_true 10 no_forge_left || fail "round $1: processes left: $(pgrep -af "$T/forge.yaml")"
	[ -s "$T/synced" ] || fail "round $1: the recorder wrote nothing"
	cp --sparse=always "$REGION" "$T/later"
	if [ "$2" = synced ]; then
		cp --sparse=always "$T/synced" "$REGION"
	else
		"$TEAR" "$T/synced" "$T/later" "$REGION" "$1" > "$T/tear.out" || fail "tear"
		echo "round $1: $(cat "$T/tear.out")"
	fi
	# the copied region names the killed workers, whose pids may linger
	# while the kernel tears them down: start_forged can return before
	# the new supervisor has checked anything, so wait for its line
	checks=$(grep -c "after a reboot (durability sync): [0-9]* sessions checked" "$T/forged.log" || true)
	FORGE_TEST_BOOT_ID=boot-$(( $1 + 1 )) start_forged
	until_true 60 sh -c "[ \$(grep -c 'after a reboot (durability sync): [0-9]* sessions checked' '$T/forged.log') -gt $checks ]" ||
		fail "round $1: no check after the reboot: $(tail -5 "$T/forged.log")"
	grep "after a reboot" "$T/forged.log" | tail -1 | sed 's/.*info: /    /'
	ctl wait --timeout 120 > /dev/null || fail "round $1: not done after the reboot: $(ctl stats)"
	n=0
	while read -r id; do
		ctl session --json "$id" > "$T/s.json" 2>&1 || fail "round $1: acknowledged session $id lost: $(cat "$T/s.json")"
		st=$(jq -r .state "$T/s.json"); res=$(jq -r .result "$T/s.json")
		[ "$st" = done ] || fail "round $1: $id is $st: $(jq -c . "$T/s.json" | head -c 600)"
		case $(jq -r '.messages[0].content' "$T/s.json") in
		long:70000*) [ "${#res}" = 70000 ] || fail "round $1: $id: answer of ${#res} bytes, want 70000" ;;
		*) [ "$res" = "The answer is 4." ] || fail "round $1: $id answered '$res'" ;;
		esac
		n=$((n + 1))
	done <<EOF
$(tail -n +$((before + 1)) "$T/acked")
EOF
	[ "$(ctl_stat .sessions.failed)" = 0 ] || fail "round $1: sessions failed: $(ctl stats)"
	ctl check > "$T/check.out" || fail "round $1: check: $(head -5 "$T/check.out")"
	[ "$(ctl_stat .sessions.done)" -ge "$(wc -l < "$T/acked")" ] || fail "round $1: earlier sessions lost: $(ctl stats)"
	echo "round $1 ($2): all $n acknowledged sessions done, whole"
}
power_loss 1 synced
power_loss 2 torn
power_loss 3 torn
[ "$(ctl_stat .durability.mode)" = sync ] || fail "stats: $(ctl stats --json | jq -c .durability)"
[ "$(ctl_stat '.durability.flushes > 0 and .durability.waits >= .durability.flushes')" = true ] ||
	fail "stats: $(ctl stats --json | jq -c .durability)"

# a failing disk: a flush that fails is sticky (Linux forgets the pages it
# could not write), and nothing is acknowledged after it
stop_forged
FORGE_TEST_SYNC_FAIL=1 FORGE_TEST_BOOT_ID=boot-4 start_forged
code=$(curl -s -o "$T/post.out" -w '%{http_code}' -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?"}')
[ "$code" = 503 ] && [ "$(jq -r .error.message "$T/post.out")" = "the session could not be made durable (flushing the region failed: Input/output error)" ] ||
	fail "failing flush: POST answered $code $(cat "$T/post.out")"
set +e; out=$(ctl submit --workflow react --prompt "what is 2+2?" 2>&1); rc=$?; set -e
[ $rc = 1 ] && [ "$out" = "forgectl: submit: flushing the region failed (Input/output error): the last 1 sessions are queued but may not survive a power loss" ] ||
	fail "failing flush: forgectl submit: $rc $out"
[ "$(ctl_stat .durability.flushes)" -ge 1 ] || fail "no flush counted"
stop_forged
unset FORGE_TEST_SYNC_FAIL   # (an assignment before a function call stays, in dash)
echo "a failing flush: POST 503 and forgectl submit exit 1, naming it"

# 4. none: killed, then a reboot: refused, with the reason; a clean stop
#    before the reboot: kept
set_durability none
FORGE_TEST_BOOT_ID=boot-5 start_forged
ctl submit --workflow react --prompt "what is 2+2?" --count 10 > /dev/null
pkill -KILL -P "$FORGED_PID" || true; kill -KILL "$FORGED_PID"; wait "$FORGED_PID" 2>/dev/null || true
FORGED_PID=
set +e
FORGE_TEST_BOOT_ID=boot-6 timeout 10 "$BIN/forged" -c "$T/forge.yaml" > "$T/refused.log" 2>&1; rc=$?
set -e
[ $rc = 1 ] && grep -q "refusing region $REGION was in use when the machine went down (a reboot since forged last started on it, and no clean stop) under region.durability: none, so writes that never reached the disk may have torn its sessions; set region.durability: batch or sync to keep sessions across a reboot; its sessions are kept as they are. Start with --reset to delete it and create a new one" "$T/refused.log" ||
	fail "none after a reboot: rc $rc: $(cat "$T/refused.log")"
FORGE_TEST_BOOT_ID=boot-5 start_forged   # the same boot: a process death, not a reboot
ctl wait --timeout 60 > /dev/null || fail "none: not done"
stop_forged
FORGE_TEST_BOOT_ID=boot-7 start_forged   # a reboot after a clean stop
ctl check > /dev/null || fail "none: check after a clean reboot"
stop_forged
echo "durability: acknowledged sessions survived 3 power losses (synced pages only; then torn later pages), logs cut back to whole commits; tmpfs refused; none refused after an unclean reboot, kept after a clean one; none -> sync sealed 20 logs"
