#!/bin/sh
# Operations: sd_notify messages in order (READY, STATUS, WATCHDOG only while
# every worker beats, RELOADING/READY, STOPPING) on a NOTIFY_SOCKET of the
# test's own; reload under load (workers 2 -> 3, one at a time, no session
# lost); invalid reloads refused with the running configuration kept; drain.
WATCHDOG_MS=1500
. "$(dirname "$0")/../lib.sh"
NOTE=$T/notify.log
"$ROOT/build/notify-listen" "$T/notify.sock" > "$NOTE" &
LISTEN=$!
trap 'kill $LISTEN 2>/dev/null; cleanup' EXIT
until_true 5 test -S "$T/notify.sock" || fail "no notify socket"
write_config
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000
start_forged
unset NOTIFY_SOCKET WATCHDOG_USEC
count() { grep -c "$1" "$NOTE" || true; }
until_true 10 sh -c "[ \$(grep -c WATCHDOG=1 $NOTE) -ge 3 ]" || fail "no WATCHDOG=1: $(cat "$NOTE")"
first_ready=$(grep -n 'READY=1' "$NOTE" | head -1 | cut -d: -f1)
first_wd=$(grep -n 'WATCHDOG=1' "$NOTE" | head -1 | cut -d: -f1)
[ "$first_ready" -lt "$first_wd" ] || fail "WATCHDOG before READY"
until_true 10 grep -qE 'STATUS=(running: )?2/2 workers ready' "$NOTE" || fail "no STATUS: $(cat "$NOTE")"

# a stopped worker: WATCHDOG=1 pauses until forge's own watchdog replaced it
ctl kill-worker 0 --signal STOP > /dev/null
until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION stats --json | jq .workers.restarts)\" = 1 ]" ||
	fail "stopped worker not replaced"
until_true 10 workers_alive || fail "replacement not ready"
n=$(count WATCHDOG=1)
until_true 5 sh -c "[ \$(grep -c WATCHDOG=1 $NOTE) -gt $n ]" || fail "WATCHDOG=1 did not resume"
gap=$(grep 'WATCHDOG=1' "$NOTE" | awk 'NR > 1 { d = $1 - p; if (d > m) m = d } { p = $1 } END { print m }')
[ "$gap" -ge 1000 ] || fail "WATCHDOG=1 kept coming while a worker was stopped (largest gap $gap ms)"

# reload under load: 2 -> 3 workers, one at a time, nothing lost
ctl submit --workflow synthetic --steps 8 --count 2000 --delay-us 20000 > /dev/null
sed -i 's/^  workers: 2$/  workers: 3/' "$T/forge.yaml"
"$BIN/forgectl" -c "$T/forge.yaml" reload > "$T/reload.out" || fail "reload: $(cat "$T/reload.out")"
until_true 30 sh -c "[ \"\$($BIN/forgectl --region $REGION stats --json | jq '.workers.configured * 10 + .workers.alive')\" = 33 ]" ||
	fail "reload did not reach 3 workers: $(ctl workers)"
expect_all_done 2000
[ "$(ctl_stat .workers.restarts)" = 1 ] || fail "a reload counted as restarts: $(ctl_stat .workers.restarts)"
grep -q "reload complete: 3 workers" "$T/forged.log" || fail "no reload log"
r=$(grep -n 'RELOADING=1' "$NOTE" | head -1 | cut -d: -f1)
[ -n "$r" ] && grep -n 'READY=1' "$NOTE" | cut -d: -f1 | awk -v r="$r" '$1 > r' | grep -q . ||
	fail "no RELOADING=1 then READY=1: $(cat "$NOTE")"

# an invalid file: forgectl refuses it; SIGHUP with it on disk keeps the old one
cp "$T/forge.yaml" "$T/good.yaml"
printf 'supervisor:\n  wrokers: 1\n' >> "$T/forge.yaml"
set +e
out=$("$BIN/forgectl" -c "$T/forge.yaml" reload 2>&1); rc=$?
set -e
[ $rc = 78 ] || fail "forgectl reload of a bad file exited $rc: $out"
echo "$out" | grep -qF "forge.yaml:" || fail "no file:line in: $out"
kill -HUP "$FORGED_PID"
until_true 5 grep -q "reload refused: $T/forge.yaml:[0-9]*:1: supervisor: duplicate key (first at line 1); the running configuration stays" "$T/forged.log" ||
	fail "bad reload not refused"
cp "$T/good.yaml" "$T/forge.yaml"
sed -i 's/^  sessions: .*/  sessions: 4096/' "$T/forge.yaml"
# a file forgectl finds valid but forged refuses: forgectl says so, exit 78
set +e
out=$("$BIN/forgectl" -c "$T/forge.yaml" reload 2>&1); rc=$?
set -e
[ $rc = 78 ] || fail "forgectl reload refused by forged exited $rc: $out"
echo "$out" | grep -qF "refused the reload: region.sessions cannot change while forged runs: it takes effect when forged starts again (every session is kept); the running configuration stays" ||
	fail "forgectl reload output: $out"
until_true 5 grep -q "reload refused: region.sessions cannot change while forged runs" "$T/forged.log" ||
	fail "geometry change not refused"
[ "$(ctl_stat .workers.alive)" = 3 ] || fail "refused reloads changed the workers"

# drain: exit 0, STOPPING=1
cp "$T/good.yaml" "$T/forge.yaml"
ctl drain --timeout 20 > "$T/drain.out" || fail "drain: $(cat "$T/drain.out")"
wait "$FORGED_PID" || fail "forged exited with status $?"
FORGED_PID=
grep -q "forged stopped" "$T/drain.out" || fail "drain output: $(cat "$T/drain.out")"
until_true 5 grep -q 'STOPPING=1' "$NOTE" || fail "no STOPPING=1"
# drain with LLM requests in flight: their replies are committed, not thrown away
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
"$ROOT/build/mock-llm" --port "$PORT" --latency-ms 700 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
printf 'llm:\n  providers:\n    mock:\n      base_url: http://127.0.0.1:%s/v1\n' "$PORT" >> "$T/forge.yaml"
export WORKERS=3   # as the reload left it
start_forged
ctl submit --workflow react --prompt "what is 2+2?" --count 100 > /dev/null
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) = 100 ]" ||
	fail "sessions not running"
ctl drain --timeout 20 > /dev/null || fail "drain with requests in flight"
wait "$FORGED_PID" || fail "forged exited with status $?"
FORGED_PID=
[ "$(ctl sessions --json | jq '[.[] | select(.state == "queued" and .steps == 1)] | length')" = 100 ] ||
	fail "drain threw replies away: $(ctl sessions | head)"
start_forged
expect_all_done 2100
echo "operations: READY/STATUS/WATCHDOG (paused $gap ms while a worker hung)/RELOADING/STOPPING, reload 2->3 under load with 2000 sessions done, bad reloads refused, drain (100 in-flight replies kept)"
