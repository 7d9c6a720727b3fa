#!/bin/sh
# Sessions per second against the number of workers (1, 2, 4, 8, 16 by
# default): N sessions queued while forged is stopped, then forged starts
# and the rate is the region's own (first claim to last finish), median of
# RUNS.  For a machine with more cores than this one (the lent 16-core
# device); no jq needed.  Prints "workers sessions/s ratio-to-1-worker
# faults-per-session cpu-us-per-session user-us sys-us": the workers'
# minor page faults and CPU time (user + system, then each apart, from
# /proc, all workers; medians of the runs) over N.  Neither should grow with the workers, on any machine:
# each worker faults in only the pages of the sessions it runs, and a
# session costs the same CPU whoever runs it.  On a machine with fewer
# cores than workers these two still show what the rate cannot.
# Usage: bench/scaling.sh N RUNS "WORKERS..." SUBMIT-ARGS...
#   BIN=dir (forged, forgectl), LOADER=path/ld-linux... (a bundled loader
#   with its libraries beside it in BIN, for a machine without them),
#   MAX_INFLIGHT=n (worker.max_inflight, 1024 unless given),
#   INTAKE=J (submitted while the workers run, into a table used once,
#   by forgectl submit --jobs J; the faults and CPU columns then count
#   both rounds, over N),
#   REGION_DIR=dir (where the region file goes: /dev/shm, as in
#   config/forge.yaml; a disk directory shows what region.durability
#   batch or sync pay)
set -eu
N=$1 RUNS=$2 WS=$3
shift 3
B=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build}
run() { if [ -n "${LOADER:-}" ]; then "$LOADER" --library-path "$B" "$@"; else "$@"; fi; }
# forged in the background, its own pid in $pid (not a subshell's)
bg_forged() {
	if [ -n "${LOADER:-}" ]; then
		"$LOADER" --library-path "$B" "$B/forged" -c "$T/forge.yaml" 2>>"$T/log" &
	else
		"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" &
	fi
	pid=$!
}
RD=${REGION_DIR:-/dev/shm}
[ -d "$RD" ] && [ -w "$RD" ] || RD=/tmp
T=$(mktemp -d "$RD/forge-scale.XXXXXX")
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
LOG=0
case "$*" in *react*) LOG=512 ;; esac
base=""
for W in $WS; do
	cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: $W
region:
  path: $T/region
  sessions: $N
  checkpoint_bytes: $LOG
  session_max_bytes: $LOG
worker:
  max_inflight: ${MAX_INFLIGHT:-1024}
log:
  level: warn
http:
  enabled: false
llm:
  default: scripted
  providers:
    scripted:
      type: scripted
YAML
	rates="" faults="" cpus="" users="" syss=""
	for r in $(seq "$RUNS"); do
		rm -f "$T/region" "$T/region.lock"
		bg_forged
		until run "$B/forgectl" -c "$T/forge.yaml" status --json 2>/dev/null |
			grep -q "\"workers_alive\": $W,"; do sleep 0.05; done
		if [ -n "${INTAKE:-}" ]; then
			# submitted while the workers run, into a table used once
			# (a running service's); the rate is still first claim to
			# last finish, of the second round only (the first purged)
			run "$B/forgectl" -c "$T/forge.yaml" submit --count "$N" "$@" > /dev/null
			run "$B/forgectl" -c "$T/forge.yaml" wait --timeout 600
			run "$B/forgectl" -c "$T/forge.yaml" purge > /dev/null
			run "$B/forgectl" -c "$T/forge.yaml" submit --count "$N" --jobs "$INTAKE" "$@" > /dev/null
		else
			kill -TERM $pid; wait $pid
			run "$B/forgectl" -c "$T/forge.yaml" submit --count "$N" "$@" > /dev/null
			bg_forged
		fi
		run "$B/forgectl" -c "$T/forge.yaml" wait --timeout 600
		s=$(run "$B/forgectl" -c "$T/forge.yaml" stats --json)
		rate=$(echo "$s" | tr -d ' \n' | sed 's/.*"done_per_s":\([0-9.]*\).*/\1/' | cut -d. -f1)
		done_n=$(echo "$s" | tr -d ' \n' | sed 's/.*"sessions":{[^}]*"done":\([0-9]*\).*/\1/')
		[ "$done_n" = "$N" ] || { echo "scaling: only $done_n of $N done" >&2; tail "$T/log" >&2; exit 1; }
		flt=0 ticks=0 ut=0 st=0
		for c in $(pgrep -P $pid forge-worker); do
			read -r cf cu cs <<-EOF
			$(awk '{print $10, $14, $15}' /proc/$c/stat 2>/dev/null || echo 0 0 0)
			EOF
			flt=$((flt + cf)) ut=$((ut + cu)) st=$((st + cs))
		done
		ticks=$((ut + st))
		kill -TERM $pid; wait $pid
		rates="$rates $rate"
		faults="$faults $flt"
		cpus="$cpus $ticks"
		users="$users $ut"
		syss="$syss $st"
	done
	med=$(echo $rates | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	fmed=$(echo $faults | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	cmed=$(echo $cpus | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	umed=$(echo $users | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	smed=$(echo $syss | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	[ -n "$base" ] || base=$med
	echo "$W $med $(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v f="$fmed" -v n="$N" 'BEGIN { printf "%.3f", f / n }')" \
		"$(awk -v t="$cmed" -v n="$N" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')" \
		"$(awk -v t="$umed" -v n="$N" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')" \
		"$(awk -v t="$smed" -v n="$N" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
done
