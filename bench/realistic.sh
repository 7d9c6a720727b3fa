#!/bin/sh
# Sessions of real size against the 2-step figure, in the same run: ten-turn
# ReAct sessions (a 4 KB system prompt; nine file_read calls, each a 20 KB
# tool result; a 2 KB final answer: about 190 KB of conversation each),
# scripted provider in process, 2 workers, N queued then run; and N 2-step
# sessions (the calculator) the same way.  Medians of RUNS rounds,
# interleaved.  Prints "realistic_per_s twostep_per_s realistic_MB_per_s
# log_bytes_per_realistic_session region_bytes_per_realistic_session".
# Usage: realistic.sh N RUNS
set -eu
N=${1:-2000} RUNS=${2:-3}
B=$(cd "$(dirname "$0")/.." && pwd)/build
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.2; rm -rf "$T"' EXIT
mkdir -p "$T/data"
head -c 15000 /dev/urandom | base64 -w 100 | head -c 20000 > "$T/data/doc.txt"
answer=$(head -c 1600 /dev/urandom | base64 -w 0 | head -c 2000)
{
	cat <<YAML
supervisor:
  workers: 2
region:
  path: $T/region
  sessions: $N
worker:
  max_inflight: 256
log:
  level: warn
http:
  enabled: false
workflows:
  max_steps: 12
tools:
  file_read:
    root: $T/data
    max_bytes: 65536
llm:
  default: real
  providers:
    real:
      type: scripted
      script:
YAML
	for i in 1 2 3 4 5 6 7 8 9; do
		printf '        - tool: file_read\n          arguments: %s\n' "'{\"path\":\"doc.txt\"}'"
	done
	printf '        - content: "%s"\n' "$answer"
	printf '    two:\n      type: scripted\n'
} > "$T/forge.yaml"
system=$(head -c 3000 /dev/urandom | base64 -w 0 | head -c 4096)
ctl() { "$B/forgectl" -c "$T/forge.yaml" "$@"; }
run() { # run PROVIDER: sessions/s of N sessions queued before start
	rm -f "$T/region"
	"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	until [ "$(ctl status --json 2>/dev/null | jq .workers_alive)" = 2 ]; do sleep 0.05; done
	kill -TERM $pid; wait $pid
	if [ "$1" = real ]; then
		ctl submit --count "$N" --workflow react --provider real --system "$system" \
			--prompt "Read doc.txt nine times and sum it up." > /dev/null
	else
		ctl submit --count "$N" --workflow react --provider two --prompt "what is 2+2?" > /dev/null
	fi
	"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	ctl wait --timeout 600
	[ "$(ctl stats --json | jq .sessions.done)" = "$N" ] || { echo "realistic.sh: not all done" >&2; ctl stats >&2; cat "$T/log" >&2; exit 1; }
	ctl check > /dev/null
	if [ "$1" = real ]; then
		id=$(ctl sessions --json | jq -r '.[0].id')
		ctl session --json "$id" > "$T/one.json"
		[ "$(jq -r .result "$T/one.json")" = "$answer" ] || { echo "realistic.sh: wrong answer" >&2; exit 1; }
		jq .checkpoint_log_bytes "$T/one.json" > "$T/logbytes"
		du -B1 "$T/region" | cut -f1 > "$T/regionbytes"
	fi
	ctl stats --json | jq '.throughput.done_per_s | floor'
	kill -TERM $pid; wait $pid
}
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rr= tt=
for r in $(seq "$RUNS"); do
	rr="$rr $(run real)"
	tt="$tt $(run two)"
done
real=$(echo $rr | med) two=$(echo $tt | med) logb=$(cat "$T/logbytes")
echo "$real $two $(echo "$real $logb" | awk '{printf "%.0f", $1 * $2 / 1e6}') $logb $(( $(cat "$T/regionbytes") / N ))"
