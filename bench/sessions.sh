#!/bin/sh
# Sessions per second with W workers: N sessions are queued while forged is
# stopped, then forged starts and the rate is taken from the region itself
# (first claim to last finish).  Prints the median of RUNS runs.
# With INTAKE=1 the sessions are submitted while forged runs instead
# (submit-to-done, the rate a client that submits as it goes gets).
# With INTAKE=http they are POSTed to /v1/sessions/batch instead, in
# batches of BATCH (10000: http.max_batch), one after another over one
# kept-alive connection (react sessions only: --prompt and --provider are
# taken from SUBMIT-ARGS).
# The ids go to /dev/null, which forgectl does not write to; IDS=FILE sends
# them to FILE (one write(2) per id, as a caller that keeps them pays).
# Usage: sessions.sh W N RUNS SUBMIT-ARGS...
#   e.g. sessions.sh 2 1000000 3 --workflow synthetic --steps 2
#        LLM_PORT=P sessions.sh 2 20000 3 --workflow react --prompt q --provider mock
#   The region goes where config/forge.yaml puts it, on tmpfs (/dev/shm);
#   REGION_DIR=DIR puts it elsewhere, and DURABILITY=batch|sync
#   (region.durability) under build/ (a disk file system).
set -eu
W=$1 N=$2 RUNS=$3
shift 3
BATCH=${BATCH:-10000} HPORT=$((21000 + $$ % 9000))
[ "${INTAKE:-}" != http ] || [ $((N % BATCH)) = 0 ] || { echo "sessions.sh: N must be a multiple of BATCH ($BATCH)" >&2; exit 2; }
B=$(cd "$(dirname "$0")/.." && pwd)/build
T=$(mktemp -d "$([ -n "${DURABILITY:-}" ] && echo "$B" || echo "${REGION_DIR:-/dev/shm}")/forge-bench.XXXXXX")
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.2; rm -rf "$T"' EXIT
LOG=0
case "$*" in *react*) LOG=512 ;; esac
[ -z "${DURABILITY:-}" ] || LOG=$((LOG * 2))   # COMMIT records
cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: $W
region:
  path: $T/region
  sessions: $N
  checkpoint_bytes: $LOG
  session_max_bytes: $LOG
  durability: ${DURABILITY:-none}
worker:
  max_inflight: ${MAX_INFLIGHT:-1024}
log:
  level: warn
http:
  enabled: $([ "${INTAKE:-}" = http ] && echo true || echo false)
  listen: 127.0.0.1:$HPORT
  max_body_bytes: 67108864
  max_batch: $BATCH
llm:
  default: scripted
  providers:
    scripted:
      type: scripted
    mock:
      base_url: http://127.0.0.1:${LLM_PORT:-8089}/v1
YAML
ctl() { "$B/forgectl" -c "$T/forge.yaml" "$@"; }
# INTAKE=http: the batches' bodies, and one curl that POSTs them all
if [ "${INTAKE:-}" = http ]; then
	prompt="what is 2+2?" prov=scripted
	while [ $# -gt 0 ]; do
		case $1 in --prompt) prompt=$2 ;; --provider) prov=$2 ;; esac
		shift
	done
	awk -v n="$BATCH" -v p="$prompt" -v m="$prov" 'BEGIN { printf "{\"sessions\":["
		for (i = 0; i < n; i++) printf "%s{\"prompt\":\"%s\",\"model\":\"%s\"}", i ? "," : "", p, m
		print "]}" }' > "$T/batch.json"
	for i in $(seq $((N / BATCH))); do printf "url = http://127.0.0.1:%s/v1/sessions/batch\noutput = /dev/null\n" $HPORT; done > "$T/urls"
	post_all() {
		curl -s -H 'Expect:' -H 'Content-Type: application/json' --data-binary "@$T/batch.json" \
			-w '%{http_code}\n' -K "$T/urls" | sort | uniq -c > "$T/codes"
		[ "$(cat "$T/codes" | tr -s ' ')" = " $((N / BATCH)) 201" ] ||
			{ echo "sessions.sh: POST /v1/sessions/batch: $(cat "$T/codes")" >&2; exit 1; }
	}
fi
rates=""
for r in $(seq "$RUNS"); do
	rm -f "$T/region"
	"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	until [ "$(ctl status --json 2>/dev/null | jq .workers_alive)" = "$W" ]; do sleep 0.05; done
	if [ -n "${INTAKE:-}" ]; then
		# submitted while the workers run, into a table that has been
		# used once (a running service's: its pages are in memory; a
		# fresh file's first touches would cost the submitter as much
		# again), from the submit to the last finish
		if [ "$INTAKE" = http ]; then
			until curl -sf "http://127.0.0.1:$HPORT/healthz" > /dev/null; do sleep 0.05; done
			post_all
		else
			ctl submit --count "$N" "$@" > /dev/null
		fi
		ctl wait --timeout 300
		ctl purge > /dev/null
		t0=$(date +%s%N)
		if [ "$INTAKE" = http ]; then
			post_all
		else
			ctl submit --count "$N" "$@" > "${IDS:-/dev/null}"
		fi
		ctl wait --timeout 300
		t1=$(date +%s%N)
		ctl check > /dev/null
		kill -TERM $pid; wait $pid
		rates="$rates $(( N * 1000000000 / (t1 - t0) ))"
		continue
	else
		kill -TERM $pid; wait $pid
		ctl submit --count "$N" "$@" > /dev/null
		"$B/forged" -c "$T/forge.yaml" 2>>"$T/log" & pid=$!
	fi
	ctl wait --timeout 300
	rate=$(ctl stats --json | jq '.throughput.done_per_s | floor')
	done_n=$(ctl stats --json | jq .sessions.done)
	[ "$done_n" = "$N" ] || { echo "sessions.sh: only $done_n of $N done" >&2; cat "$T/log" >&2; exit 1; }
	ctl check > /dev/null
	kill -TERM $pid; wait $pid
	rates="$rates $rate"
done
echo $rates | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
