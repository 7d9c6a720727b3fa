#!/bin/sh
# Time to first token through forge against the same model asked directly,
# in the same run: a streaming model (tests/clients/slowstream.mjs: the
# first words at once, the rest GAP ms later), N requests each,
# interleaved; chat completions with "stream": true, 2 workers.  Needs node.
# Prints "direct_p50 direct_p99 forge_p50 forge_p99" (ms).
# Usage: ttft.sh N GAP_MS
set -eu
N=${1:-50} GAP=${2:-50}
B=$(cd "$(dirname "$0")/.." && pwd)
command -v node > /dev/null || { echo "ttft.sh: node is not installed" >&2; exit 1; }
T=$(mktemp -d /tmp/forge-bench.XXXXXX)
PORT=$((23000 + $$ % 8000))
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; kill $slow 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
node "$B/tests/clients/slowstream.mjs" $((PORT + 1)) "$GAP" & slow=$!
cat > "$T/forge.yaml" <<YAML
region:
  path: $T/region
  sessions: 4096
log:
  level: warn
http:
  listen: 127.0.0.1:$PORT
llm:
  default: slow
  providers:
    slow:
      base_url: http://127.0.0.1:$((PORT + 1))/v1
      stream: true
YAML
"$B/build/forged" -c "$T/forge.yaml" 2>>"$T/log" &
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$((PORT + 1))/healthz" >/dev/null 2>&1; do sleep 0.05; done
node "$B/bench/ttft.mjs" "http://127.0.0.1:$((PORT + 1))" "http://127.0.0.1:$PORT" "$N"
