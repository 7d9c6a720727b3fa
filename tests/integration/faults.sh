#!/bin/sh
# Faults beyond single deaths: every forge process SIGKILLed at once under
# load; a region that does not fit its filesystem; a region truncated while
# forge is stopped; HTTP abuse (a thousand idle connections, deeply nested
# and invalid-UTF-8 JSON bodies).
. "$(dirname "$0")/../lib.sh"
write_config
printf 'llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' >> "$T/forge.yaml"
start_forged

# 1. everything killed at once, under load, twice; then everything done
ctl submit --workflow synthetic --steps 6 --count 3000 --delay-us 50000 > /dev/null
ctl submit --workflow react --prompt "what is 2+2?" --count 1000 > /dev/null
for round in 1 2; do
	until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) -gt 100 ]" ||
		fail "round $round: nothing running"
	kids=$(pgrep -P "$FORGED_PID" | tr '\n' ' ')
	t0=$(( $(date +%s%N) / 1000000 ))
	kill -KILL "$FORGED_PID" $kids
	wait "$FORGED_PID" 2>/dev/null || true
	"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
	FORGED_PID=$!
	until_true 10 workers_alive || fail "round $round: no restart"
	ready_ms="${ready_ms:-}$(( $(date +%s%N) / 1000000 - t0 )) ms "
done
WAIT_S=120 expect_all_done 4000
[ "$(ctl status --json | jq .boots)" = 3 ] || fail "boots != 3"
rec="start-up recovery of the new forged: $(grep -o 'start-up recovery: [0-9]* sessions returned to the queue in [0-9.]* ms' "$T/forged.log" |
	sed 's/start-up recovery: //; s/ returned to the queue//' | tr '\n' ';')"

# 2. HTTP abuse: 1,000 idle connections; nested and invalid bodies
bash -c "ulimit -n 4096; for i in \$(seq 1000); do exec {fd}<>/dev/tcp/127.0.0.1/$HTTP_PORT || exit 1; done; sleep 8" &
IDLE=$!
until_true 10 sh -c "[ \$(ss -tn state established '( sport = :$HTTP_PORT )' | tail -n +2 | wc -l) -ge 1000 ]" ||
	fail "1000 idle connections not open"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API/healthz")" = 200 ] || fail "healthz with 1000 idle connections"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"prompt":"what is 2+2?"}' "$API/v1/sessions")
[ "$code" = 201 ] || fail "POST with 1000 idle connections: $code"
kill $IDLE 2>/dev/null; wait $IDLE 2>/dev/null || true
deep=$(printf '%.0s[' $(seq 20000))
code=$(curl -s -o "$T/out" -w '%{http_code}' --data-binary "{\"prompt\":$deep" "$API/v1/sessions")
[ "$code" = 400 ] && jq -e '.error.message | startswith("body is not a JSON object")' "$T/out" >/dev/null ||
	fail "deep JSON: $code $(cat "$T/out")"
printf '{"prompt":"bad \377\376 utf-8"}' > "$T/bad.json"
code=$(curl -s -o "$T/out" -w '%{http_code}' --data-binary @"$T/bad.json" "$API/v1/sessions")
[ "$code" = 400 ] || fail "invalid UTF-8: $code $(cat "$T/out")"
ctl wait --timeout 20 > /dev/null
stop_forged

# 3. the region truncated while forge is stopped: refused, file kept
size=$(wc -c < "$REGION")
truncate -s $((size / 2)) "$REGION"
set +e; out=$("$BIN/forged" -c "$T/forge.yaml" 2>&1); rc=$?; set -e
[ $rc = 1 ] && echo "$out" | grep -q "but the file has $((size / 2)) (truncated?)" ||
	fail "truncated region: exit $rc: $out"
[ "$(wc -c < "$REGION")" = $((size / 2)) ] || fail "the truncated region was modified"

# 4. a region that does not fit its filesystem: a clear error, nothing half-made
if mkdir -p "$T/small" && mount -t tmpfs -o size=1m tmpfs "$T/small" 2>/dev/null; then
	sed "s|path: $REGION|path: $T/small/region|" "$T/forge.yaml" > "$T/small.yaml"
	set +e; out=$("$BIN/forged" -c "$T/small.yaml" 2>&1); rc=$?; set -e
	umount "$T/small"
	[ $rc = 1 ] && echo "$out" | grep -q "cannot allocate .* bytes for $T/small/region.tmp.[0-9]*: No space left on device" ||
		fail "full filesystem: exit $rc: $out"
	full="full filesystem refused"
else
	full="full filesystem: skipped (cannot mount a tmpfs here)"
fi
echo "faults: all processes SIGKILLed twice under load (4000 sessions done; kill to a new forged's workers READY, polled every 20 ms: $ready_ms), 1000 idle HTTP connections, deep/invalid JSON, truncated region refused, $full; $rec"
