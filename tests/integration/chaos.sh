#!/bin/sh
# Chaos: 2 workers, 5,000 synthetic sessions of 8 steps; a random worker is
# SIGKILLed every ~50 ms until all are done.  Every session must end DONE
# with the right checksum (forgectl check verifies each one), the table and
# rings must be clean, and every kill must show up as exactly one restart.
. "$(dirname "$0")/../lib.sh"
start_forged
ctl submit --workflow synthetic --steps 8 --count 5000 --delay-us 40000 > "$T/ids"
[ "$(wc -l < "$T/ids")" = 5000 ] || fail "submit printed $(wc -l < "$T/ids") ids"
kills=0
kill_until_done 120 0.05 chaos
expect_all_done 5000
until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION stats --json | jq .workers.restarts)\" = $kills ]" ||
	fail "restarts $(ctl_stat .workers.restarts), kills $kills"
[ "$kills" -ge 10 ] || fail "only $kills kills landed; the test did not exercise recovery"
resumed=$(ctl_stat '.totals.claims - 5000')
[ "$resumed" -gt 0 ] || fail "no session was resumed after a kill"
# one session read back in full: 8 steps and the expected checksum
id=$(head -1 "$T/ids")
ctl session "$id" --json | jq -e '.state == "done" and .steps == 8 and .checksum == .checksum_expected' >/dev/null ||
	fail "session $id: $(ctl session "$id" --json)"
stop_forged
echo "chaos: 5000 sessions done, $kills workers killed, $resumed resumptions, check clean; $(recovery)"
