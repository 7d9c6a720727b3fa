#!/bin/sh
# The gateway under wrk on loopback: POST /v1/sessions (each creates a
# scripted ReAct session that the workers run at once) and GET
# /v1/sessions/{id}, 32 keep-alive connections, 3 s each.  Prints
# "post_rps post_p99_ms get_rps get_p99_ms".
set -eu
B=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
PORT=$((21000 + $$ % 9000))
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
. "$B/bench/http_forged.sh"
http_forged
wrk -t1 -c32 -d3s --latency -s "$B/bench/post.lua" "http://127.0.0.1:$PORT/v1/sessions" > "$T/post"
id=$(curl -s -d '{"prompt":"what is 2+2?"}' "http://127.0.0.1:$PORT/v1/sessions" | jq -r .id)
wrk -t1 -c32 -d3s --latency "http://127.0.0.1:$PORT/v1/sessions/$id" > "$T/get"
grep -q "Non-2xx" "$T/post" "$T/get" && { echo "gateway.sh: errors under load:" >&2; cat "$T/post" "$T/get" >&2; exit 1; }
echo "$(awk '/Requests\/sec/ {print int($2)}' "$T/post") $(p99 < "$T/post") $(awk '/Requests\/sec/ {print int($2)}' "$T/get") $(p99 < "$T/get")"
