#!/bin/sh
# Soak: chaos under load for DURATION seconds (default 600), then every
# session must be done and `forgectl check` clean; check also runs every
# 10 s during the soak, and the done sessions it saw are then purged
# (`forgectl purge`), so the 100,000-record table serves any duration.
# Faults, at random every 0.2-1 s: SIGKILL or SIGSTOP of a worker, SIGKILL
# of the gateway, now and then of the supervisor (restarted by this
# script, as systemd would); stalls: a forgectl submit stopped for up to a
# second in the middle of its work, and the supervisor stopped for half a
# second.  Load: synthetic, scripted ReAct (some with a 3 KB system prompt,
# past the inline log), and nested map_reduce and plan_execute sessions
# (parents parked while their children run)
# submitted continuously.  At the end, done + purged = submitted.
# Usage: tools/soak.sh [DURATION] [DIR]     Output: a progress line a minute.
set -eu
DUR=${1:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$ROOT/build}   # BIN=DIR: binaries from elsewhere (a copy, while building)
T=${2:-$(mktemp -d /tmp/forge-soak.XXXXXX)}
mkdir -p "$T"
cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: 2
  watchdog_ms: 1000
  heartbeat_ms: 50
  restart:
    backoff_initial_ms: 10
    backoff_max_ms: 200
    intensity: 100000
    period_s: 60
region:
  path: $T/region
  sessions: 100000
  retain_s: 0   # this script purges, after each check, what the check saw
http:
  listen: 127.0.0.1:$((21000 + $$ % 9000))
llm:
  default: s
  providers:
    s:
      type: scripted
log:
  level: warn
YAML
ctl() { "$B/forgectl" -c "$T/forge.yaml" "$@"; }
start() { "$B/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 & PID=$!; }
ready() { # waits up to 20 s for both workers
	i=0
	until [ "$(ctl status --json 2>/dev/null | jq .workers_alive)" = 2 ]; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "soak: forged not ready:" >&2; tail "$T/forged.log" >&2; exit 1; }
		sleep 0.1
	done
}
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
trap 'kill -TERM $PID 2>/dev/null; sleep 1' EXIT
"$B/forged" --check-config -c "$T/forge.yaml" > /dev/null
start
ready
end=$(( $(date +%s) + DUR )); next_check=$(( $(date +%s) + 30 )); next_log=$(( $(date +%s) + 60 ))
submitted=0 faults=0 sup_kills=0 checks=0 stalls=0
BIG=$(head -c 3000 /dev/zero | tr '\0' s)
while [ "$(date +%s)" -lt "$end" ]; do
	if [ "$(ctl stats --json | jq '.sessions.queued + .sessions.running + .sessions.waiting')" -lt 5000 ] &&
	   [ "$(ctl stats --json | jq .sessions.free)" -gt 20000 ]; then
		ctl submit --workflow synthetic --steps 8 --count 500 --delay-us 20000 > /dev/null
		ctl submit --workflow react --prompt "what is 2+2?" --count 500 > /dev/null
		# a parent and one child each (the scripted split is not a plan)
		ctl submit --workflow map_reduce --prompt "what is 2+2, twice?" --count 100 > /dev/null
		ctl submit --workflow plan_execute --prompt "what is 2+2, planned?" --count 100 > /dev/null
		# conversations past their inline log (a 3 KB system prompt): the
		# overflow store, and purges that give its pages back
		ctl submit --workflow react --system "$BIG" --prompt "what is 2+2?" --count 100 > /dev/null
		submitted=$((submitted + 1500))
	fi
	r=$(( $(rnd) % 100 ))
	if [ $r -lt 60 ]; then
		ctl kill-worker $(( $(rnd) % 2 )) > /dev/null 2>&1 && faults=$((faults + 1))
	elif [ $r -lt 75 ]; then
		ctl kill-worker $(( $(rnd) % 2 )) --signal STOP > /dev/null 2>&1 && faults=$((faults + 1))
	elif [ $r -lt 90 ]; then
		pkill -KILL -P $PID forge-gateway && faults=$((faults + 1))
	elif [ $r -lt 93 ]; then
		kill -KILL $PID; wait $PID 2>/dev/null || true
		start; sup_kills=$((sup_kills + 1)); faults=$((faults + 1))
		ready
	elif [ $r -lt 97 ]; then
		# a submitter stopped wherever it is (a ring claim, an allocation)
		ctl submit --workflow synthetic --steps 2 --count 300 > /dev/null &
		cp=$!
		sleep 0.0$(( $(rnd) % 10 ))
		# (a submitter that has just ended is a zombie that STOP finds and
		# the shell may reap during the sleep: CONT then finds nothing)
		if kill -STOP $cp 2>/dev/null; then
			sleep 0.$(( 3 + $(rnd) % 7 )); kill -CONT $cp 2>/dev/null || true
			stalls=$((stalls + 1))
		fi
		wait $cp || { echo "soak: a stopped submitter failed" >&2; exit 1; }
		submitted=$((submitted + 300))
	elif [ $r -lt 99 ]; then
		kill -STOP $PID; sleep 0.5; kill -CONT $PID; stalls=$((stalls + 1))
	fi
	if [ "$(date +%s)" -ge "$next_check" ]; then
		# every finished session is checked (checksum, conversation) before
		# it is purged: only those that ended before this check began go
		t0=$(date +%s)
		ctl check > "$T/check.out" || { cat "$T/check.out"; echo "soak: check failed" >&2; exit 1; }
		checks=$((checks + 1))
		ctl purge --state done --older-than $(( $(date +%s) - t0 + 1 )) > /dev/null
		next_check=$(( $(date +%s) + 10 ))
	fi
	if [ "$(date +%s)" -ge "$next_log" ]; then
		echo "soak: $(( DUR - end + $(date +%s) )) s, $submitted submitted, $faults faults ($sup_kills supervisor kills), $stalls stalls, $(ctl stats --json | jq -c .sessions)"
		next_log=$(( $(date +%s) + 60 ))
	fi
	sleep 0.$(( 2 + $(rnd) % 8 ))
done
ctl wait --timeout 300 || { echo "soak: sessions still pending" >&2; exit 1; }
ctl check > "$T/check.out" || { cat "$T/check.out"; exit 1; }
# none lost: every submitted session is done now or was purged after a check
# saw it done (only done ones are purged, so a failed one would show here)
s=$(ctl stats --json)
done_n=$(echo "$s" | jq '.sessions.done + .sessions.purged')
[ "$(echo "$s" | jq '.sessions.failed + .sessions.cancelled')" = 0 ] ||
	{ echo "soak: sessions failed: $s" >&2; exit 1; }
[ "$done_n" = "$submitted" ] || { echo "soak: $done_n done (or purged) of $submitted submitted: $s" >&2; exit 1; }
echo "soak: $DUR s, $submitted sessions all done, $faults faults ($sup_kills supervisor kills), $stalls stalls (submitters and the supervisor stopped), $checks checks clean"
