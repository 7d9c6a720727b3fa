#!/bin/sh
# Finished sessions are freed for reuse: by forged after region.retain_s,
# and by `forgectl purge`.  A purged id is unknown (404); the table is
# reused; `forgectl check` stays clean; a region of 256 records runs 1,200
# sessions.
. "$(dirname "$0")/../lib.sh"
SESSIONS=256 write_config
sed -i "s/^  sessions: 256$/  sessions: 256\n  retain_s: 1/" "$T/forge.yaml"
printf 'llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' >> "$T/forge.yaml"
start_forged

# 1. forged frees finished sessions after retain_s (1 s), so 4 x 200
#    sessions fit a 256-record table; an old id then answers 404
id=
for round in 1 2 3 4; do
	until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.free) -ge 200 ]" ||
		fail "round $round: table not freed: $(ctl stats)"
	ctl submit --workflow react --prompt "what is 2+2?" --count 200 > "$T/ids" ||
		fail "round $round: submit failed: $(ctl stats)"
	[ -n "$id" ] || id=$(head -1 "$T/ids")
	ctl wait --timeout 30 > /dev/null || fail "round $round: not done"
	ctl check > "$T/check.out" || fail "round $round: check: $(head -5 "$T/check.out")"
done
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.purged) = 800 ]" ||
	fail "not all 800 purged: $(ctl stats)"
[ "$(ctl_stat .sessions.free)" = 256 ] || fail "table not empty: $(ctl stats)"
code=$(curl -s -o "$T/out" -w '%{http_code}' "$API/v1/sessions/$id")
[ "$code" = 404 ] || fail "purged id $id: HTTP $code $(cat "$T/out")"
set +e; out=$(ctl session "$id" 2>&1); rc=$?; set -e
[ $rc != 0 ] || fail "forgectl session $id of a purged session succeeded: $out"

# 2. retain_s 0 keeps them; forgectl purge frees them, by state and age
sed -i "s/^  retain_s: 1$/  retain_s: 0/" "$T/forge.yaml"
ctl -c "$T/forge.yaml" reload > /dev/null
until_true 10 grep -q "reload complete" "$T/forged.log" || fail "reload"
ctl submit --workflow react --prompt "what is 2+2?" --count 200 > /dev/null
ctl submit --workflow synthetic --steps 1 --count 50 > /dev/null
ctl wait --timeout 30 > /dev/null
id=$(ctl sessions --state done --json | jq -r '.[0].id')
sleep 1.5   # more than one retention period of the old setting: nothing may go
[ "$(ctl_stat .sessions.done)" = 250 ] || fail "retain_s 0 freed sessions: $(ctl stats)"
[ "$(ctl purge --older-than 3600)" = "purged 0 sessions (800 in all)" ] || fail "purge --older-than 3600"
[ "$(ctl purge --state failed)" = "purged 0 sessions (800 in all)" ] || fail "purge --state failed"
set +e; out=$(ctl purge --state running 2>&1); rc=$?; set -e
[ $rc = 2 ] && [ "$(echo "$out" | head -1)" = "forgectl: purge: --state must be done, failed or cancelled (not running)" ] ||
	fail "purge --state running: $rc $out"
[ "$(ctl purge --json | jq -c .)" = '{"purged":250,"purged_total":1050}' ] || fail "purge"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/sessions/$id")
[ "$code" = 404 ] || fail "purged id $id: HTTP $code"
ctl check > /dev/null || fail "check after purge"
stop_forged
echo "retention: 800 sessions through a 256-record table (freed after retain_s 1 s), 404 for a purged id, retain_s 0 kept 250 until forgectl purge, check clean"
