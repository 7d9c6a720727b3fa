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

echo "forge benchmarks ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))" >&2
echo "[1/5] ring: 4M items x 5 runs per mode, two processes..." >&2
build/bench/bench_ring 4000000 5 >> "$OUT"

echo "[2/5] recovery: SIGKILL a worker holding 1,000 sessions, 30 times..." >&2
set -- $(sh bench/recovery.sh 30)
emit recovery.p50_ms "$1" ms
emit recovery.p99_ms "$2" ms
emit recovery.ready_p50_ms "$3" ms
emit recovery.ready_p99_ms "$4" ms

echo "[3/5] synthetic sessions (2 steps, 1,000,000 sessions, median of 3) with 1 and 2 workers..." >&2
s1=$(sh bench/sessions.sh 1 1000000 2 3)
s2=$(sh bench/sessions.sh 2 1000000 2 3)
emit sessions.synthetic.per_s "$s1" sessions/s
emit sessions.synthetic.1w.per_s "$s1" sessions/s
emit sessions.synthetic.2w.per_s "$s2" sessions/s

echo "[4/5] mock-llm ceiling: wrk, 64 keep-alive connections, 3 runs of 3 s..." >&2
emit mock_llm.requests_per_s "$(sh bench/mock_llm.sh 1 3)" requests/s

echo "[5/5] memory per session..." >&2
# a record is sizeof(fg_session_t); its checkpoint log is region.checkpoint_bytes
rec=$(grep -o 'sizeof(fg_session_t) == [0-9]*' include/forge/region.h | grep -o '[0-9]*$')
log=$(grep -E '^\s+checkpoint_bytes:' config/forge.yaml | grep -o '[0-9]*' | head -1)
emit session.bytes $((rec + log)) bytes
emit session.record_bytes "$rec" bytes

printf '\n%-32s %14s  %s\n' FIGURE VALUE UNIT
jq -r '"\(.name)\t\(.value)\t\(.unit)"' "$OUT" | while IFS="$(printf '\t')" read -r n v u; do
	printf '%-32s %14s  %s\n' "$n" "$v" "$u"
done
echo
echo "written: $OUT"
