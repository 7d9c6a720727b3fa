#!/bin/sh
# mock-llm's ceiling: wrk on loopback, POST /v1/chat/completions with keep-
# alive, 64 connections, THREADS event loops in mock-llm, 3 s per run.
# Prints the median requests/s of RUNS runs.  Usage: mock_llm.sh THREADS RUNS
set -eu
THREADS=$1 RUNS=$2
B=$(cd "$(dirname "$0")/.." && pwd)
PORT=$((21000 + $$ % 9000))
"$B/build/mock-llm" --port "$PORT" --threads "$THREADS" 2>/dev/null & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.05; done
rates=""
for r in $(seq "$RUNS"); do
	rate=$(wrk -t1 -c64 -d3s -s "$B/bench/chat.lua" "http://127.0.0.1:$PORT/v1/chat/completions" |
		awk '/Requests\/sec/ {print int($2)}')
	rates="$rates $rate"
done
echo $rates | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
