#!/bin/sh
# forge's OpenAI-compatible endpoint driven by the clients users have: the
# official openai npm client and LangChain's @langchain/openai, at the
# versions pinned in tests/clients/package.json (installed with npm under
# build/clients, no lock file).  tests/clients/clients.mjs holds the checks:
# history and parameters as sent, client tools round trip, streaming, no
# retry of a failed run, Idempotency-Key, bindTools, withStructuredOutput,
# and tokens streamed end to end from a model that streams slowly
# (tests/clients/slowstream.mjs: the first token must arrive long before
# the model's last).
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
PORT=$((20000 + $$ % 10000))
write_config
llm_yaml "$PORT"
cat >> "$T/forge.yaml" <<YAML
    down:
      base_url: http://127.0.0.1:$((PORT + 1))/v1
      max_retries: 1
      retry_base_ms: 5
      give_up_after_s: 0
    slow:
      base_url: http://127.0.0.1:$((PORT + 2))/v1
      stream: true
YAML
node "$ROOT/tests/clients/slowstream.mjs" $((PORT + 2)) 400 2>>"$T/slow.log" &
SLOW_PID=$!
trap 'kill $SLOW_PID 2>/dev/null; cleanup' EXIT
until_true 10 curl -sf "http://127.0.0.1:$((PORT + 2))/healthz" || fail "the slow model did not start"
mock_on "$PORT"
start_forged
SLOW_GAP_MS=400 FORGE_API=$API timeout 120 node "$C/clients.mjs" > "$T/out" 2>&1 || fail "$(cat "$T/out")"
# the same live text on GET /v1/sessions/{id}/events: a delta event (no id)
# before the committed message
sid=$(curl -s -X POST "$API/v1/sessions" -d '{"prompt":"what is 2+2?","model":"slow"}' | jq -r .id)
curl -sN --max-time 10 "$API/v1/sessions/$sid/events" > "$T/ev"
awk '/^event: delta/ { getline; print "delta " $0 } /^event: message/ { getline; print "message " $0 }' "$T/ev" > "$T/evs"
# the user's message, then deltas ("The answer" first; the rest may come as a
# delta or only with the commit), then the assistant's message
[ "$(sed -n 1p "$T/evs")" = 'message data: {"role":"user","content":"what is 2+2?"}' ] &&
	[ "$(sed -n 2p "$T/evs")" = 'delta data: {"text":"The answer","message":2}' ] &&
	[ "$(grep '^message' "$T/evs" | sed -n 2p)" = 'message data: {"role":"assistant","content":"The answer is 4."}' ] &&
	[ "$(sed -n '/^message.*assistant/q;/^delta/p' "$T/evs" | sed 's/^delta data: //' | jq -j .text)" != "" ] &&
	case "The answer is 4." in "$(sed -n '/^message.*assistant/q;/^delta/p' "$T/evs" | sed 's/^delta data: //' | jq -j .text)"*) true ;; *) false ;; esac ||
	fail "SSE live text: $(cat "$T/ev")"
grep -B1 '^event: delta' "$T/ev" | grep -q '^id:' && fail "a delta event carries an id: $(cat "$T/ev")"
ctl check > "$T/check.out" || fail "check: $(cat "$T/check.out")"
stop_forged
v1=$(jq -r .version "$C/node_modules/openai/package.json")
v2=$(jq -r .version "$C/node_modules/@langchain/openai/package.json")
echo "$(cat "$T/out" | sed "s/openai [^ ]* and @langchain\/openai/openai $v1 and @langchain\/openai $v2/")"
