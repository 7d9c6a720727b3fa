#!/bin/sh
# forge's OpenAI-compatible endpoint driven by the clients users have: the
# official openai npm client and LangChain's @langchain/openai, at the
# versions pinned in tests/clients/package.json (installed with npm under
# build/clients, no lock file).  tests/clients/clients.mjs holds the checks:
# history and parameters as sent, client tools round trip, streaming, no
# retry of a failed run, Idempotency-Key, bindTools, withStructuredOutput.
# Skipped, saying so, where node or npm is missing or npm cannot reach its
# registry.
. "$(dirname "$0")/../lib.sh"
command -v node > /dev/null && command -v npm > /dev/null ||
	{ echo "clients: skipped: node and npm are not installed (apt-get install nodejs npm)"; exit 0; }
C=$ROOT/build/clients
mkdir -p "$C"
if ! cmp -s "$ROOT/tests/clients/package.json" "$C/package.json" || [ ! -d "$C/node_modules/openai" ]; then
	cp "$ROOT/tests/clients/package.json" "$C/package.json"
	if ! (cd "$C" && timeout 300 npm install --no-package-lock --no-audit --no-fund --loglevel=error) > "$T/npm.log" 2>&1; then
		rm -f "$C/package.json"
		echo "clients: skipped: npm install failed: $(tail -3 "$T/npm.log" | tr '\n' ' ')"
		exit 0
	fi
fi
cp "$ROOT/tests/clients/clients.mjs" "$C/clients.mjs"
MOCK=$ROOT/build/mock-llm
PORT=$((20000 + $$ % 10000))
write_config
cat >> "$T/forge.yaml" <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
    down:
      base_url: http://127.0.0.1:$((PORT + 1))/v1
      max_retries: 1
      retry_base_ms: 5
YAML
"$MOCK" --port "$PORT" 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start"
start_forged
FORGE_API=$API timeout 120 node "$C/clients.mjs" > "$T/out" 2>&1 || fail "$(cat "$T/out")"
ctl check > "$T/check.out" || fail "check: $(cat "$T/check.out")"
stop_forged
v1=$(jq -r .version "$C/node_modules/openai/package.json")
v2=$(jq -r .version "$C/node_modules/@langchain/openai/package.json")
echo "$(cat "$T/out" | sed "s/openai [^ ]* and @langchain\/openai/openai $v1 and @langchain\/openai $v2/")"
