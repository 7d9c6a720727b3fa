#!/bin/sh
# make bench: every benchmark, a table for people, and
# build/bench/results.jsonl with one {"name","value","unit"} per figure.
# Figures are medians over several runs; the ring is compared with a
# mutex queue measured in the same invocation.
set -eu
cd "$(dirname "$0")/.."
OUT=build/bench/results.jsonl
mkdir -p build/bench
: > "$OUT"
emit() { printf '{"name": "%s", "value": %s, "unit": "%s"}\n' "$1" "$2" "$3" >> "$OUT"; }

MACHINE="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
echo "forge benchmarks on $MACHINE, $(date -u +%Y-%m-%dT%H:%MZ)" >&2
echo "$MACHINE" > build/bench/machine.txt
echo "[1/13] ring: 4M items x 5 runs per mode, two processes..." >&2
build/bench/bench_ring 4000000 5 >> "$OUT"

echo "[2/13] recovery: SIGKILL a worker holding 1,000 sessions, 30 times..." >&2
set -- $(sh bench/recovery.sh 30)
emit recovery.p50_ms "$1" ms
emit recovery.p99_ms "$2" ms
emit recovery.ready_p50_ms "$3" ms
emit recovery.ready_p99_ms "$4" ms

echo "[3/13] synthetic sessions (2 steps, 1,000,000 sessions, median of 3) with 1 and 2 workers..." >&2
s1=$(sh bench/sessions.sh 1 1000000 3 --workflow synthetic --steps 2)
s2=$(sh bench/sessions.sh 2 1000000 3 --workflow synthetic --steps 2)
emit sessions.synthetic.per_s "$s1" sessions/s
emit sessions.synthetic.1w.per_s "$s1" sessions/s
emit sessions.synthetic.2w.per_s "$s2" sessions/s

echo "[4/13] 2-step ReAct, scripted provider (in process), 300,000 sessions, median of 3..." >&2
r1=$(sh bench/sessions.sh 1 300000 3 --workflow react --prompt "what is 2+2?" --provider scripted)
r2=$(sh bench/sessions.sh 2 300000 3 --workflow react --prompt "what is 2+2?" --provider scripted)
emit sessions.scripted.per_s "$r2" sessions/s
emit sessions.scripted.1w.per_s "$r1" sessions/s
emit sessions.scripted.2w.per_s "$r2" sessions/s
# the workers' page faults and CPU per session, 1 and 8 workers: figures
# of locality and contention that carry to a machine with more cores (on
# any machine neither should grow with the workers)
sc=$(sh bench/scaling.sh 300000 3 "1 8" --workflow react --prompt "what is 2+2?" --provider scripted)
set -- $(echo "$sc" | awk '$1 == 1 {print $4, $5}') $(echo "$sc" | awk '$1 == 8 {print $4, $5}')
emit sessions.scripted.1w.faults_per_session "$1" faults
emit sessions.scripted.8w.faults_per_session "$3" faults
emit sessions.scripted.1w.cpu_us_per_session "$2" us
emit sessions.scripted.8w.cpu_us_per_session "$4" us
emit sessions.scripted.cpu_8w_vs_1w "$(echo "$2 $4" | awk '{printf "%.2f", $2 / $1}')" ratio

echo "[4b/13] intake: the same 300,000 submitted while the workers run (a used table; forgectl submit, then POST /v1/sessions/batch), against queued before start..." >&2
q1=$(sh bench/sessions.sh 2 300000 3 --workflow react --prompt "what is 2+2?" --provider scripted)
i1=$(INTAKE=1 sh bench/sessions.sh 2 300000 3 --workflow react --prompt "what is 2+2?" --provider scripted)
h1=$(INTAKE=http sh bench/sessions.sh 2 300000 3 --workflow react --prompt "what is 2+2?" --provider scripted)
emit sessions.intake.queued_per_s "$q1" sessions/s
emit sessions.intake.per_s "$i1" sessions/s
emit sessions.intake.vs_queued "$(echo "$q1 $i1" | awk '{printf "%.2f", $1 / $2}')" ratio
emit sessions.intake.http_batch.per_s "$h1" sessions/s
emit sessions.intake.http_batch.vs_queued "$(echo "$q1 $h1" | awk '{printf "%.2f", $1 / $2}')" ratio

echo "[5/13] 2-step ReAct over HTTP to mock-llm on loopback (2 workers, median of 3)..." >&2
PORT=$((21000 + $$ % 9000))
build/mock-llm --port $PORT 2>/dev/null & mock=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
for c in 64 256 1024; do
	v=$(MAX_INFLIGHT=$c LLM_PORT=$PORT sh bench/sessions.sh 2 40000 3 --workflow react --prompt "what is 2+2?" --provider mock)
	emit sessions.http.c$c.per_s "$v" sessions/s
	[ $c = 256 ] && emit sessions.http.per_s "$v" sessions/s
done
kill $mock; wait $mock 2>/dev/null || true
build/mock-llm --port $PORT --latency-ms 50 2>/dev/null & mock=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
v=$(MAX_INFLIGHT=256 LLM_PORT=$PORT sh bench/sessions.sh 2 20000 3 --workflow react --prompt "what is 2+2?" --provider mock)
emit sessions.http.latency50.c256.per_s "$v" sessions/s
emit sessions.http.latency50.c256.bound_per_s 5120 sessions/s
kill $mock; wait $mock 2>/dev/null || true

echo "[6/13] the gateway under wrk: POST /v1/sessions and GET /v1/sessions/{id}..." >&2
set -- $(sh bench/gateway.sh)
emit gateway.post_sessions.requests_per_s "$1" requests/s
emit gateway.post_sessions.p99_ms "$2" ms
emit gateway.get_session.requests_per_s "$3" requests/s
emit gateway.get_session.p99_ms "$4" ms

echo "[7/13] mock-llm ceiling and memory per session..." >&2
emit mock_llm.requests_per_s "$(sh bench/mock_llm.sh 1 3)" requests/s
# a record is sizeof(fg_session_t); its checkpoint log is region.checkpoint_bytes
rec=$(grep -o 'sizeof(fg_session_t) == [0-9]*' include/forge/region.h | grep -o '[0-9]*$')
log=$(grep -E '^\s+checkpoint_bytes:' config/forge.yaml | grep -o '[0-9]*' | head -1)
emit session.bytes $((rec + log)) bytes
emit session.record_bytes "$rec" bytes
# bytes a completed 2-step ReAct conversation occupies in its log
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
printf 'http:\n  enabled: false\nregion:\n  path: %s/region\n  sessions: 65536\nlog:\n  level: warn\nllm:\n  default: s\n  providers:\n    s:\n      type: scripted\n' "$T" > "$T/f.yaml"
build/forged -c "$T/f.yaml" 2>/dev/null & f=$!
until [ "$(build/forgectl -c "$T/f.yaml" status --json 2>/dev/null | jq .workers_alive)" = 2 ]; do sleep 0.05; done
id=$(build/forgectl -c "$T/f.yaml" submit --workflow react --prompt "what is 2+2?")
build/forgectl -c "$T/f.yaml" wait --timeout 10
used=$(build/forgectl -c "$T/f.yaml" session "$id" --json | jq .checkpoint_log_bytes)
rss=0
for p in $(pgrep -P $f); do rss=$((rss + $(awk '/VmRSS/ {print $2}' /proc/$p/status))); done
kill $f; wait $f 2>/dev/null || true; rm -rf "$T"
emit worker.rss_kb $((rss / 2)) KiB
emit session.react2.log_bytes "$used" bytes
emit session.react2.used_bytes $((rec + used)) bytes

echo "[8/13] chat completions vs the same two model calls made directly (300 each)..." >&2
set -- $(sh bench/chat_latency.sh 300)
emit chat.completions.p50_ms "$1" ms
emit chat.completions.p99_ms "$2" ms
emit chat.direct_two_calls.p50_ms "$3" ms
emit chat.direct_two_calls.p99_ms "$4" ms
emit chat.completions.keepalive.p50_ms "$5" ms
emit chat.completions.keepalive.p99_ms "$6" ms
emit chat.direct_two_calls.keepalive.p50_ms "$7" ms
emit chat.direct_two_calls.keepalive.p99_ms "$8" ms

echo "[9/13] region.durability none / batch / sync on a disk file system (interleaved, median of 3)..." >&2
set -- $(sh bench/durability.sh 3 100000)
emit commit.durable.none.post_per_s "$1" sessions/s
emit commit.durable.batch.post_per_s "$2" sessions/s
emit commit.durable.sync.post_per_s "$3" sessions/s
emit commit.durable.sync_vs_none.post_ratio "$(echo "$3 $1" | awk '{printf "%.2f", $1 / $2}')" x
emit commit.durable.none.react_per_s "$4" sessions/s
emit commit.durable.batch.react_per_s "$5" sessions/s
emit commit.durable.sync.react_per_s "$6" sessions/s
emit commit.durable.sync.flushes_per_s "$7" flushes/s

echo "[10/13] sessions of real size (10 turns, 4 KB system prompt, 9 x 20 KB tool results) against 2-step, 2,000 each, median of 3..." >&2
set -- $(sh bench/realistic.sh 2000 3)
emit sessions.realistic.per_s "$1" sessions/s
emit sessions.realistic.vs_2step.per_s "$2" sessions/s
emit sessions.realistic.conversation_mb_per_s "$3" MB/s
emit session.realistic.log_bytes "$4" bytes
emit session.realistic.region_bytes "$5" bytes
emit session.realistic.overhead_bytes "$(( $5 - $4 ))" bytes

echo "[11/13] time to first token: a streaming model directly and through forge (100 each, interleaved)..." >&2
if command -v node > /dev/null; then
	set -- $(sh bench/ttft.sh 100 50)
	emit ttft.direct.p50_ms "$1" ms
	emit ttft.direct.p99_ms "$2" ms
	emit ttft.forge.p50_ms "$3" ms
	emit ttft.forge.p99_ms "$4" ms
else
	echo "  skipped: node is not installed (apt-get install nodejs)" >&2
fi

echo "[12/13] chat completions with 10 messages of history (wrk -c32, median of 3)..." >&2
set -- $(sh bench/chat_history.sh 3)
emit chat.history10.requests_per_s "$1" requests/s
emit chat.history10.p99_ms "$2" ms

printf '\n%-32s %14s  %s\n' FIGURE VALUE UNIT
jq -r '"\(.name)\t\(.value)\t\(.unit)"' "$OUT" | while IFS="$(printf '\t')" read -r n v u; do
	printf '%-32s %14s  %s\n' "$n" "$v" "$u"
done
echo
echo "machine: $MACHINE (build/bench/machine.txt); ratios are against a baseline measured in the same run"
echo "written: $OUT"
