#!/bin/sh
# forged and forgectl at their edges: exact errors and exit statuses for a
# bad config, a damaged region, bad arguments; and the supervisor itself
# killed with SIGKILL under load, then started again: every session done.
. "$(dirname "$0")/../lib.sh"

expect() { # expect STATUS "MESSAGE" CMD...
	want=$1 msg=$2; shift 2
	set +e; out=$("$@" 2>&1); rc=$?; set -e
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want: $out"
	echo "$out" | grep -qF -- "$msg" || fail "'$*' said: $out; want: $msg"
}

printf 'supervisor:\n  workers: 1\n  bogus: 3\n' > "$T/bad.yaml"
expect 78 "$T/bad.yaml:3:3: supervisor.bogus: unknown key" "$BIN/forged" --check-config -c "$T/bad.yaml"
expect 78 "$T/bad.yaml:3:3: supervisor.bogus: unknown key" "$BIN/forged" -c "$T/bad.yaml"
expect 78 "$T/missing.yaml:0:0: cannot open: No such file or directory" "$BIN/forged" -c "$T/missing.yaml"
expect 64 "-c FILE is required" "$BIN/forged"
expect 0 "Usage: forged" "$BIN/forged" --help
expect 0 "Usage: forgectl" "$BIN/forgectl" --help
# a table of bad files: exact message on stderr, exit status 78 (EX_CONFIG)
bad() { # bad YAML MESSAGE
	printf "$1" > "$T/t.yaml"
	expect 78 "$T/t.yaml:$2" "$BIN/forged" --check-config -c "$T/t.yaml"
}
bad 'supervisor:\n  workers: lots\n' '2:12: supervisor.workers: expected a whole number, got "lots" (or "auto")'
bad 'region:\n  sessions: 0\n' '2:13: region.sessions: 0 is out of range [1, 16777216]'
bad 'region:\n  path: /a\n  path: /b\n' '3:3: region.path: duplicate key (first at line 2)'
bad 'a: &x 1\nb: *x\n' '1:4: anchors (&x) are not allowed in forge configuration'
bad 'region: [\n' '2:1: YAML syntax error: did not find expected node content while parsing a flow node'
bad 'region:\n  path: ${FORGE_NO_SUCH_VAR}\n' '2:9: region.path: environment variable FORGE_NO_SUCH_VAR is not set'
bad 'tools:\n  shell:\n    allow: ls\n' '3:12: tools.shell.allow: expected a sequence of strings'
FORGE_TEST_REGION=$T/envregion
export FORGE_TEST_REGION
printf 'region:\n  path: ${FORGE_TEST_REGION}\n' > "$T/t.yaml"
expect 0 "configuration is valid" "$BIN/forged" --check-config -c "$T/t.yaml"

write_config
expect 0 "configuration is valid" "$BIN/forged" --check-config -c "$T/forge.yaml"
expect 3 "cannot open region $REGION: No such file or directory" ctl status
expect 2 "unknown command 'frobnicate'" ctl frobnicate
expect 2 "--steps: 'x' is not a number" ctl submit --workflow synthetic --steps x

start_forged
expect 2 "unknown workflow 'nope'" ctl submit --workflow nope --steps 1
expect 2 "kill-worker: '99' is not a number in [0, 63]" ctl kill-worker 99
expect 1 "worker 5 has no live process" ctl kill-worker 5
expect 2 "'00000000000000ff' is not a session id (32 hex digits, as printed by submit)" ctl session 00000000000000ff
none=$(ctl status --json | jq -r .region_epoch)00000000000000ff
expect 1 "no session $none" ctl session "$none"
expect 2 "is not a session id" ctl session zz
ctl status | grep -q "forge: running" || fail "status: $(ctl status)"

# supervisor SIGKILL under load, then a new supervisor on the same region
ctl submit --workflow synthetic --steps 6 --count 2000 --delay-us 100000 > "$T/ids"
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) -gt 100 ]" ||
	fail "no sessions running"
kill -KILL "$FORGED_PID"
wait "$FORGED_PID" 2>/dev/null || true
FORGED_PID=
"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
WAIT_S=60 expect_all_done 2000
grep -q "re-attached region" "$T/forged.log" || fail "region was not re-attached"
[ "$(ctl status --json | jq .boots)" = 2 ] || fail "boots != 2"
stop_forged
grep -q "stopped" "$T/forged.log" || fail "no clean stop logged"

# a damaged region is refused, and nothing is wiped without --reset
old_id=$(ctl sessions --json --limit 1 | jq -r '.[0].id')
[ "${#old_id}" = 32 ] || fail "an id of ${#old_id} characters: $old_id"
printf 'XXXXXXXX' | dd of="$REGION" conv=notrunc 2>/dev/null
expect 1 "bad magic 0x5858585858585858: not a forge region" "$BIN/forged" -c "$T/forge.yaml"
head -c 8 "$REGION" | grep -q XXXXXXXX || fail "the damaged region was modified"
"$BIN/forged" -c "$T/forge.yaml" --reset >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
until_true 10 workers_alive || fail "forged --reset did not start"
[ "$(ctl_stat .sessions.done)" = 0 ] || fail "reset region is not empty"
# ids are never reused: the new region's first session has another id, and
# the old id names nothing here (not the new session in the same record)
new_id=$(ctl submit --workflow synthetic --steps 1)
[ "$new_id" != "$old_id" ] || fail "a recreated region reissued id $old_id"
expect 1 "forgectl: no session $old_id (an id of another region)" ctl session "$old_id"

# forgectl wait wakes on the idle bell, not on its look once a second: a
# session of 300 ms waited for three times, the median wait well under 1 s
for i in 1 2 3; do
	ctl submit --workflow synthetic --steps 1 --delay-us 300000 > /dev/null
	t0=$(date +%s%N)
	ctl wait --timeout 10 || fail "wait: $(ctl stats)"
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
done | sort -n > "$T/waits"
[ "$(sed -n 2p "$T/waits")" -lt 800 ] || fail "forgectl wait did not wake on the bell: $(tr '\n' ' ' < "$T/waits") ms"

# forgectl submit --jobs: 4 processes, 1001 sessions: each id printed once,
# whole lines; into a table that fills, every queued id is printed, each
# job that hit the full table says so, and the exit status is 1
ctl purge > /dev/null
ctl submit --workflow synthetic --steps 2 --count 1001 --jobs 4 > "$T/jids" || fail "submit --jobs 4"
[ "$(wc -l < "$T/jids")" = 1001 ] && [ "$(sort -u "$T/jids" | wc -l)" = 1001 ] &&
	! grep -qvE '^[0-9a-f]{32}$' "$T/jids" || fail "submit --jobs 4: ids: $(sort "$T/jids" | uniq -c | sort -rn | head -3)"
expect_all_done 1001
# the same from a caller that leaves SIGCHLD ignored (each job must still
# be waited for)
ctl purge > /dev/null
bash -c "trap '' CHLD; exec \"$BIN/forgectl\" --region \"$REGION\" submit --workflow synthetic --steps 1 --count 1001 --jobs 4" > "$T/jids" ||
	fail "submit --jobs 4 with SIGCHLD ignored: exit $?"
[ "$(sort -u "$T/jids" | wc -l)" = 1001 ] || fail "submit --jobs 4 with SIGCHLD ignored: $(wc -l < "$T/jids") ids"
expect_all_done 1001
ctl purge > /dev/null
cap=$(ctl_stat .sessions.capacity)
set +e
ctl submit --workflow synthetic --steps 1 --count $((cap + 10)) --jobs 3 > "$T/jids" 2> "$T/jerr"
rc=$?
set -e
[ $rc = 1 ] && grep -qE '^forgectl: submit \(job [123] of 3\) [0-9]+ of [0-9]+: the session table is full$' "$T/jerr" ||
	fail "submit --jobs 3 into a full table: exit $rc: $(cat "$T/jerr")"
[ "$(sort -u "$T/jids" | wc -l)" = "$cap" ] || fail "submit --jobs 3: $(wc -l < "$T/jids") ids printed, $cap queued"
expect 2 "--jobs: '9' is not a number in [1, 8]" ctl submit --workflow synthetic --steps 1 --count 2 --jobs 9
expect_all_done "$cap"
stop_forged
echo "cli: errors exact, forgectl wait woken by the idle bell ($(tr '\n' ' ' < "$T/waits")ms for 300 ms sessions), forgectl submit --jobs (every id once, a full table said by each job), supervisor SIGKILL + restart lost nothing, damaged region refused, no id reused by a recreated region"
