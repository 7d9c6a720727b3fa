#!/bin/sh
# The HTTP API with curl(1): every endpoint, every error status, auth,
# pagination, a full table, and the gateway killed and restarted with no
# session lost.
SESSIONS=64 CHECKPOINT_BYTES=1024 SESSION_MAX_BYTES=1024   # (a batch item over it: 400)
. "$(dirname "$0")/../lib.sh"
write_config
MPORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
"$ROOT/build/mock-llm" --port "$MPORT" --latency-ms 5000 2>>"$T/mock.log" &
MOCK_PID=$!
"$ROOT/build/mock-llm" --port $((MPORT + 1)) --latency-ms 400 2>>"$T/mock.log" &
MOCK2=$!
trap 'kill $MOCK2 2>/dev/null; cleanup' EXIT
cat >> "$T/forge.yaml" <<YAML
  tokens: [s3cret]
  max_body_bytes: 2048
  max_batch: 4
llm:
  default: s
  providers:
    s:
      type: scripted
    slow:
      base_url: http://127.0.0.1:$MPORT/v1
    mid:
      base_url: http://127.0.0.1:$((MPORT + 1))/v1
    self:
      base_url: $API/v1
      model: forge/react@s
      api_key_env: FORGE_GW_TOKEN
    selfstream:
      base_url: $API/v1
      model: forge/react@s
      api_key_env: FORGE_GW_TOKEN
      stream: true
YAML
export FORGE_GW_TOKEN=s3cret
start_forged
until_true 10 curl -sf "$API/healthz" || fail "gateway not up"
H="Authorization: Bearer s3cret"
req() { # req METHOD PATH [BODY]: prints the body, then the status on its own line
	if [ $# -ge 3 ]; then
		curl -s -X "$1" -H "$H" -H "Content-Type: application/json" --data-binary "$3" -w '\n%{http_code}' "$API$2"
	else
		curl -s -X "$1" -H "$H" -w '\n%{http_code}' "$API$2"
	fi
}
expect_status() { # expect_status STATUS JQ-FILTER METHOD PATH [BODY]
	want=$1 filter=$2; shift 2
	out=$(req "$@")
	code=$(echo "$out" | tail -1)
	bodytxt=$(echo "$out" | sed '$d')
	[ "$code" = "$want" ] || fail "$*: HTTP $code, want $want: $bodytxt"
	[ -z "$filter" ] || echo "$bodytxt" | jq -e "$filter" >/dev/null || fail "$*: $bodytxt does not satisfy $filter"
}

[ "$(curl -s "$API/healthz")" = "ok" ] || fail "healthz"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/workers")" = 401 ] || fail "no 401 without a token"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$API/v1/workers")" = 401 ] || fail "wrong token accepted"
expect_status 200 '' GET /readyz
expect_status 200 '.data | length == 2' GET /v1/workers
# the models a chat completion may name: 3 workflows x (default + each provider)
expect_status 200 '.object == "list" and ([.data[].id] | index("forge/react") != null and index("forge/map_reduce@slow") != null) and (.data | all(.object == "model"))' GET /v1/models
expect_status 405 '.error.message == "use GET"' POST /v1/models '{}'
# GETs keep the connection alive, as POSTs do (a GET answered before its
# request was read closed it: an SDK's polling paid a new connection each)
reused=$(curl -sv -o /dev/null -o /dev/null -o /dev/null -H "$H" "$API/healthz" "$API/v1/models" \
	"$API/v1/workers" 2>&1 | grep -c "Re-using existing connection")
[ "$reused" = 2 ] || fail "GETs on one connection: $reused of 2 reused it"
# a GET that says Expect: 100-continue, another pipelined behind it: the
# first is answered (then the connection closed), not left at 100 Continue.
# (The client ignores SIGPIPE: its printf may write the second request
# after the answer and the close, and died of it before reading the answer.)
got=$(bash -c 'trap "" PIPE; exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" >&3; timeout 5 cat <&3' sh "${API##*:}" |
	tr -d '\r' | grep -c "^HTTP/1.1 200 OK" || true)
[ "$got" -ge 1 ] || fail "a GET with Expect: 100-continue was not answered"

out=$(curl -s -D "$T/h" -H "$H" -d '{"prompt":"what is 2+2?"}' "$API/v1/sessions")
id=$(echo "$out" | jq -r .id)
grep -qi "^location: /v1/sessions/$id" "$T/h" || fail "no Location: $(cat "$T/h")"
ctl wait --timeout 10 > /dev/null
expect_status 200 '.state == "done" and .result == "The answer is 4." and ([.messages[].role] == ["user","assistant","tool","assistant"]) and .usage.prompt_tokens > 0' GET "/v1/sessions/$id"

expect_status 400 '.error.message | startswith("body is not a JSON object")' POST /v1/sessions '{"prompt":'
expect_status 400 '.error.param == "prompt" and .error.message == "prompt must be a non-empty string"' POST /v1/sessions '{"workflow":"react"}'
expect_status 400 '.error.param == "workflow"' POST /v1/sessions '{"prompt":"x","workflow":"chat"}'
expect_status 400 '.error.param == "max_steps"' POST /v1/sessions '{"prompt":"x","max_steps":0}'
expect_status 400 '.error.message == "model \"gpt-9\" is not a configured provider"' POST /v1/sessions '{"prompt":"x","model":"gpt-9"}'
expect_status 400 '.error.param == "provider" and .error.message == "unknown field \"provider\" (prompt, agent, workflow, system, model, max_steps; the provider is named by model)"' POST /v1/sessions '{"prompt":"x","provider":"mock"}'
# a field name cut inside a character (40 bytes: 39 a's and half an é):
# still a 400, the half character shown as U+FFFD
a39=$(printf '%039d' 0 | tr 0 a)
expect_status 400 ".error.param == \"${a39}\\ufffd\" and .error.message == \"unknown field \\\"${a39}\\ufffd\\\" (prompt, agent, workflow, system, model, max_steps; the provider is named by model)\"" POST /v1/sessions "{\"prompt\":\"x\",\"${a39}é\":1}"
big=$(head -c 3000 /dev/zero | tr '\0' 'a')
expect_status 413 '.error.message == "request body larger than 2048 bytes (http.max_body_bytes)"' POST /v1/sessions "{\"prompt\":\"$big\"}"
expect_status 404 '.error.message == "no session 00000000000000ff"' GET /v1/sessions/00000000000000ff
expect_status 404 '' GET /v2/nothing
expect_status 405 '' PUT /v1/sessions '{}'
expect_status 409 '.error.message | endswith("already ended (done)")' DELETE "/v1/sessions/$id"
expect_status 404 '' DELETE /v1/sessions/00000000000000ff

# pagination: follow next_cursor until it is null; every session exactly once
for i in 1 2 3 4 5; do req POST /v1/sessions '{"prompt":"what is 2+2?"}' > /dev/null; done
ctl wait --timeout 10 > /dev/null
cursor="" seen=0 pages=0
while :; do
	page=$(req GET "/v1/sessions?state=done&limit=2${cursor:+&cursor=$cursor}" | sed '$d')
	seen=$((seen + $(echo "$page" | jq '.data | length')))
	pages=$((pages + 1))
	cursor=$(echo "$page" | jq -r '.next_cursor // empty')
	[ -n "$cursor" ] || break
	[ $pages -lt 50 ] || fail "pagination does not end"
done
[ "$seen" = 6 ] || fail "pagination saw $seen sessions, want 6"
expect_status 400 '.error.param == "state"' GET "/v1/sessions?state=sleeping"

expect_status 200 '' GET /metrics
m=$(req GET /metrics | sed '$d')
echo "$m" | grep -qx 'forge_sessions{state="done"} 6' || fail "metrics: $(echo "$m" | head -20)"
echo "$m" | grep -qx 'forge_session_duration_seconds_count 6' || fail "metrics histogram"

# SSE: one event per committed message, then "end"; Last-Event-ID resumes
ids_of() { grep '^id: ' "$1" | cut -d' ' -f2 | tr '\n' ' '; }
eid=$(req POST /v1/sessions '{"prompt":"what is 2+2?","model":"mid"}' | sed '$d' | jq -r .id)
curl -sN --max-time 20 -H "$H" "$API/v1/sessions/$eid/events" > "$T/ev1"
[ "$(ids_of "$T/ev1")" = "1 2 3 4 " ] || fail "SSE ids: $(cat "$T/ev1")"
[ "$(grep '^event: ' "$T/ev1" | tr '\n' ' ')" = "event: message event: message event: message event: message event: end " ] ||
	fail "SSE events: $(cat "$T/ev1")"
[ "$(grep '^data: ' "$T/ev1" | head -4 | sed 's/^data: //' | jq -r .role | tr '\n' ' ')" = "user assistant tool assistant " ] ||
	fail "SSE roles: $(cat "$T/ev1")"
grep '^data: ' "$T/ev1" | tail -1 | sed 's/^data: //' | jq -e '.state == "done" and .result == "The answer is 4."' >/dev/null ||
	fail "SSE end event: $(tail -3 "$T/ev1")"
curl -sN --max-time 10 -H "$H" -H "Last-Event-ID: 2" "$API/v1/sessions/$eid/events" > "$T/ev2"
[ "$(ids_of "$T/ev2")" = "3 4 " ] || fail "Last-Event-ID resume: $(cat "$T/ev2")"
# Idempotency-Key: a retry gets the same session (200, Idempotent-Replayed),
# also from a gateway restarted since (its index rebuilt from the region);
# the key with another prompt is 409; a malformed key 400
ikey() { curl -s -D "$T/ih" -o "$T/ib" -w '%{http_code}' -H "$H" -H "Idempotency-Key: $1" \
	--data-binary "$2" "$API/v1/sessions"; }
[ "$(ikey order-17:a "{\"prompt\":\"what is 2+2?\"}")" = 201 ] || fail "key: first POST: $(cat "$T/ib")"
kid=$(jq -r .id "$T/ib")
[ "$(ikey order-17:a "{\"prompt\":\"what is 2+2?\"}")" = 200 ] && [ "$(jq -r .id "$T/ib")" = "$kid" ] &&
	grep -qi '^Idempotent-Replayed: true' "$T/ih" || fail "key: replay: $(cat "$T/ih" "$T/ib")"
[ "$(ikey order-17:a "{\"prompt\":\"what is 3+3?\"}")" = 409 ] &&
	jq -e --arg id "$kid" '.error.message == "Idempotency-Key order-17:a was used for a different request (session \($id))"' "$T/ib" > /dev/null ||
	fail "key: other request: $(cat "$T/ib")"
[ "$(ikey 'bad key' "{\"prompt\":\"x\"}")" = 400 ] && jq -e '.error.param == "Idempotency-Key"' "$T/ib" > /dev/null ||
	fail "key: malformed: $(cat "$T/ib")"
# the gateway killed mid-stream: the client reconnects and misses nothing
eid=$(req POST /v1/sessions '{"prompt":"what is 2+2?","model":"mid"}' | sed '$d' | jq -r .id)
curl -sN --max-time 20 -H "$H" "$API/v1/sessions/$eid/events" > "$T/ev3" 2>/dev/null &
C3=$!
until_true 10 grep -q '^id: 2$' "$T/ev3" || fail "no second event"
kill -KILL "$(pgrep -P "$FORGED_PID" forge-gateway)"
wait $C3 2>/dev/null || true
last=$(grep '^id: ' "$T/ev3" | tail -1 | cut -d' ' -f2)
until_true 10 curl -sf "$API/healthz" || fail "gateway not back"
curl -sN --max-time 20 -H "$H" -H "Last-Event-ID: $last" "$API/v1/sessions/$eid/events" > "$T/ev4"
[ "$(ids_of "$T/ev3")$(ids_of "$T/ev4")" = "1 2 3 4 " ] ||
	fail "events across a gateway kill: '$(ids_of "$T/ev3")' + '$(ids_of "$T/ev4")'"
[ "$(ikey order-17:a "{\"prompt\":\"what is 2+2?\"}")" = 200 ] && [ "$(jq -r .id "$T/ib")" = "$kid" ] ||
	fail "key: replay after a gateway restart: $(cat "$T/ib")"
expect_status 404 '' GET /v1/sessions/00000000000000ff/events

# /openapi.json (no token needed): every route of the gateway described, and
# real replies hold what it says they hold
curl -sf "$API/openapi.json" > "$T/oa" || fail "/openapi.json"
jq -e '.openapi == "3.0.3"' "$T/oa" > /dev/null || fail "/openapi.json is not OpenAPI 3"
grep -o '^	{ "[A-Z]*", *"/[^"]*"' "$ROOT/src/gateway/server.c" | sed 's/^	{ "\([A-Z]*\)", *"\([^"]*\)"/\1 \2/' > "$T/routes"
[ "$(wc -l < "$T/routes")" -ge 14 ] || fail "routes not found in server.c"
while read -r m p; do
	jq -e --arg p "$p" --arg m "$(echo "$m" | tr A-Z a-z)" '.paths[$p][$m]' "$T/oa" > /dev/null ||
		fail "/openapi.json does not describe $m $p"
done < "$T/routes"
[ "$(jq '[.paths[] | keys[] | select(. != "parameters")] | length' "$T/oa")" = "$(wc -l < "$T/routes")" ] ||
	fail "/openapi.json describes a route the gateway does not have"
oid=$(req POST /v1/sessions '{"prompt":"what is 2+2?","model":"s"}' | sed '$d' | jq -r .id)
until_true 10 sh -c "curl -s -H '$H' $API/v1/sessions/$oid | jq -e '.state == \"done\"'" || fail "openapi session"
curl -s -H "$H" "$API/v1/sessions/$oid" | jq -e --slurpfile oa "$T/oa" \
	'(($oa[0].components.schemas.Session.required - keys) == []) and
	 ((keys - ($oa[0].components.schemas.Session.properties | keys)) - ["claims","checkpoint_seq","checkpoint_log_bytes","duration_ms","wait_ms","provider","created","parts","children","runs"] == [])' > /dev/null ||
	fail "GET /v1/sessions/{id} does not match the Session schema: $(curl -s -H "$H" "$API/v1/sessions/$oid" | jq -c keys)"
# chat completions, the OpenAI wire format, whole and streamed
expect_status 200 '.object == "chat.completion" and .choices[0].message.role == "assistant"
  and .choices[0].message.content == "The answer is 4." and .choices[0].finish_reason == "stop"
  and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens and .usage.total_tokens > 0
  and (.id | test("^[0-9a-f]{32}$"))' POST /v1/chat/completions \
	'{"model":"forge/react@s","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"what is 2+2?"}]}'
curl -sN --max-time 20 -H "$H" -d '{"model":"forge/react@s","stream":true,"messages":[{"role":"user","content":"what is 2+2?"}]}' \
	"$API/v1/chat/completions" > "$T/chat"
[ "$(tail -2 "$T/chat" | head -1)" = "data: [DONE]" ] || fail "chat stream end: $(cat "$T/chat")"
sed -n 's/^data: {/{/p' "$T/chat" | jq -s -e '.[0].choices[0].delta.role == "assistant"
  and ([.[].choices[0].delta.content // ""] | add) == "The answer is 4."
  and .[-1].choices[0].finish_reason == "stop" and (.[] | .object == "chat.completion.chunk")' >/dev/null ||
	fail "chat stream: $(cat "$T/chat")"
expect_status 400 '.error.param == "model"' POST /v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'
expect_status 400 '.error.param == "messages"' POST /v1/chat/completions '{"model":"forge/react","messages":[]}'
expect_status 400 '.error.message | test("^body is not a JSON object: .*is not allowed without JSON_ALLOW_NUL")' POST /v1/chat/completions '{"model":"forge/react","messages":[{"role":"user","content":"a\u0000b"}]}'
expect_status 400 '.error.message == "messages must be a non-empty array of {role, content}"' POST /v1/chat/completions '{"model":"forge/react","messages":"hi"}'
expect_status 400 '.error.message | test("^body is not a JSON object: .*is not allowed without JSON_ALLOW_NUL")' POST /v1/sessions '{"prompt":"p","system":"a\u0000b"}'
# forge's own OpenAI client against forge's endpoint, whole and streamed
for prov in self selfstream; do
	sid=$(ctl submit --workflow react --prompt "what is 2+2?" --provider $prov -c "$T/forge.yaml")
	ctl wait --timeout 30 > /dev/null
	ctl session "$sid" --json | jq -e '.state == "done" and .result == "The answer is 4."' >/dev/null ||
		fail "$prov: $(ctl session "$sid" --json)"
done

# 200 SSE subscribers on a session that takes 5 s do not hold other requests back
slowid=$(req POST /v1/sessions '{"prompt":"what is 2+2?","model":"slow"}' | sed '$d' | jq -r .id)
i=0
while [ $i -lt 200 ]; do
	curl -sN --max-time 30 -H "$H" "$API/v1/sessions/$slowid/events" > /dev/null 2>&1 &
	i=$((i + 1))
done
until_true 10 sh -c "[ \$(ss -tn state established '( sport = :$HTTP_PORT )' | tail -n +2 | wc -l) -ge 200 ]" ||
	fail "200 streams not open"
expect_status 200 '.state' GET "/v1/sessions/$id"
expect_status 201 '.id' POST /v1/sessions '{"prompt":"what is 2+2?"}'
expect_status 200 '' GET /readyz
req DELETE "/v1/sessions/$slowid" > /dev/null   # ends the streams ("end" event)
ctl wait --timeout 20 > /dev/null

# forgectl watch follows a session live; top draws frames
wid=$(ctl submit --workflow react --prompt "what is 2+2?" --provider mid -c "$T/forge.yaml")
ctl watch "$wid" --timeout 20 > "$T/watch" || fail "watch: $(cat "$T/watch")"
[ "$(grep -v '^\[' "$T/watch")" = 'user       what is 2+2?
assistant  -> calculator({"expression":"2+2"})
tool       4
assistant  The answer is 4.' ] || fail "watch output: $(cat "$T/watch")"
[ "$(tail -1 "$T/watch")" = "[done]" ] || fail "watch did not end on [done]"
ctl top --count 2 > "$T/top"
[ "$(grep -c '^forge top' "$T/top")" = 2 ] && grep -q '^sessions  queued' "$T/top" || fail "top: $(cat "$T/top")"

# cancel: a session waiting on a 5 s LLM reply stops at once, request aborted
cid=$(req POST /v1/sessions '{"prompt":"what is 2+2?","model":"slow"}' | sed '$d' | jq -r .id)
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) = 1 ]" ||
	fail "slow session not running"
expect_status 200 '.state == "cancelled"' DELETE "/v1/sessions/$cid"
expect_status 409 '' DELETE "/v1/sessions/$cid"
# and with forgectl, a synthetic session between two steps
sid=$(ctl submit --workflow synthetic --steps 5 --delay-us 10000000)
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) = 1 ]" ||
	fail "synthetic session not running"
ctl cancel "$sid" > /dev/null || fail "forgectl cancel"
until_true 2 sh -c "$BIN/forgectl --region $REGION session $sid --json | jq -e '.state == \"cancelled\"'" ||
	fail "cancelled session still $(ctl session "$sid" --json | jq -r .state)"
ctl check > /dev/null || fail "check after cancel"

# POST /v1/sessions/batch: several sessions in one request, in order; the
# batch is checked whole before any is queued; with an Idempotency-Key a
# retry gets the same sessions, another batch with the key 409
batch() { curl -s -D "$T/bh" -o "$T/bb" -w '%{http_code}' -H "$H" ${2:+-H "Idempotency-Key: $2"} \
	--data-binary "$1" "$API/v1/sessions/batch"; }
nsess() { ctl sessions --json | jq length; }
n0=$(nsess)
[ "$(batch '{"sessions":[{"prompt":"what is 2+2?"},{"prompt":"batch b","workflow":"react"},{"prompt":"batch c","max_steps":3}]}')" = 201 ] ||
	fail "batch: $(cat "$T/bb")"
[ "$(jq -r '.data[].id' "$T/bb" | sort -u | wc -l)" = 3 ] || fail "batch: ids: $(cat "$T/bb")"
ctl wait --timeout 10 > /dev/null
[ "$(for b in $(jq -r '.data[].id' "$T/bb"); do curl -s -H "$H" "$API/v1/sessions/$b" | jq -r '.messages[0].content + "/" + .state'; done | tr '\n' ' ')" = \
	"what is 2+2?/done batch b/done batch c/done " ] || fail "batch: sessions out of order or not done"
expect_status 400 '.error.param == "sessions[1].prompt" and .error.message == "sessions[1]: prompt must be a non-empty string"' \
	POST /v1/sessions/batch '{"sessions":[{"prompt":"x"},{"prompt":""}]}'
expect_status 400 '.error.param == "sessions[0].modle"' POST /v1/sessions/batch '{"sessions":[{"prompt":"x","modle":"s"}]}'
expect_status 400 '.error.message == "a batch may hold up to 4 sessions, this one has 5 (http.max_batch)"' \
	POST /v1/sessions/batch '{"sessions":[{"prompt":"a"},{"prompt":"b"},{"prompt":"c"},{"prompt":"d"},{"prompt":"e"}]}'
expect_status 400 '.error.param == "sessions"' POST /v1/sessions/batch '{"sessions":[]}'
[ "$(nsess)" = $((n0 + 3)) ] || fail "batch: a refused batch queued sessions: $(nsess), want $((n0 + 3))"
B2='{"sessions":[{"prompt":"keyed a"},{"prompt":"keyed b"}]}'
[ "$(batch "$B2" nightly-7)" = 201 ] || fail "batch key: first: $(cat "$T/bb")"
cp "$T/bb" "$T/bb1"
[ "$(batch "$B2" nightly-7)" = 200 ] && cmp -s "$T/bb" "$T/bb1" && grep -qi '^Idempotent-Replayed: true' "$T/bh" ||
	fail "batch key: replay: $(cat "$T/bh" "$T/bb")"
[ "$(batch '{"sessions":[{"prompt":"keyed a"},{"prompt":"keyed X"}]}' nightly-7)" = 409 ] &&
	jq -e '.error.message == "Idempotency-Key nightly-7 was used for a different batch (its sessions[1] differs)"' "$T/bb" > /dev/null ||
	fail "batch key: another batch: $(cat "$T/bb")"
[ "$(batch '{"sessions":[{"prompt":"keyed a"}]}' nightly-7)" = 409 ] &&
	jq -e '.error.message == "Idempotency-Key nightly-7 was used for a longer batch"' "$T/bb" > /dev/null ||
	fail "batch key: a shorter batch: $(cat "$T/bb")"
# an item too big for a session (region.session_max_bytes) is refused
# before any is queued; a batch sent again with its key, longer or
# shorter, is 409, and so is a single request with a batch's key
big=$(head -c 1100 /dev/zero | tr '\0' a)
expect_status 400 '.error.param == "sessions[1].prompt" and (.error.message | startswith("sessions[1]: prompt and system are longer than a session may hold")) and (.data == null)' \
	POST /v1/sessions/batch "{\"sessions\":[{\"prompt\":\"x\"},{\"prompt\":\"$big\"}]}"
[ "$(batch '{"sessions":[{"prompt":"keyed a"},{"prompt":"keyed b"},{"prompt":"keyed c"}]}' nightly-7)" = 409 ] &&
	jq -e '.error.message == "Idempotency-Key nightly-7 was used for a shorter batch (of 2 sessions)"' "$T/bb" > /dev/null ||
	fail "batch key: a longer batch: $(cat "$T/bb")"
[ "$(batch '{"sessions":[{"prompt":"keyed a","system":"another"},{"prompt":"keyed b"}]}' nightly-7)" = 409 ] ||
	fail "batch key: another system prompt: $(cat "$T/bb")"
[ "$(ikey nightly-7 '{"prompt":"keyed a"}')" = 409 ] &&
	jq -e '.error.message == "Idempotency-Key nightly-7 was used for a batch (POST /v1/sessions/batch)"' "$T/ib" > /dev/null ||
	fail "a single request with a batch's key: $(cat "$T/ib")"
[ "$(batch '{"sessions":[{"prompt":"what is 2+2?"}]}' order-17:a)" = 409 ] &&
	jq -e '.error.message == "Idempotency-Key order-17:a was used for a single session, not a batch"' "$T/bb" > /dev/null ||
	fail "a batch with a single request's key: $(cat "$T/bb")"
[ "$(nsess)" = $((n0 + 5)) ] || fail "batch key: $(nsess) sessions, want $((n0 + 5))"
ctl wait --timeout 10 > /dev/null

# the table full: a batch stopped part-way says which were queued (data);
# then 503 with Retry-After
while [ "$(nsess)" -lt 62 ]; do
	[ "$(req POST /v1/sessions '{"prompt":"what is 2+2?"}' | tail -1)" = 201 ] || fail "fill: $(nsess)"
done
[ "$(batch '{"sessions":[{"prompt":"f1"},{"prompt":"f2"},{"prompt":"f3"},{"prompt":"f4"}]}')" = 503 ] &&
	jq -e '(.data | length) == 2 and .error.message == "sessions[2]: the session table is full (64 sessions: region.sessions); queued before it: 2 (their ids are in data); not queued: it and the 1 after it"' "$T/bb" > /dev/null &&
	grep -qi '^retry-after: 1' "$T/bh" || fail "batch into a full table: $(cat "$T/bh" "$T/bb")"
[ "$(for b in $(jq -r '.data[].id' "$T/bb"); do curl -s -H "$H" "$API/v1/sessions/$b" | jq -r '.messages[0].content'; done | tr '\n' ' ')" = "f1 f2 " ] ||
	fail "batch into a full table: data are not f1 and f2"
while :; do
	code=$(req POST /v1/sessions '{"prompt":"what is 2+2?"}' | tail -1)
	[ "$code" = 201 ] || break
done
[ "$code" = 503 ] || fail "a full table answered $code"
curl -s -D "$T/h" -o /dev/null -H "$H" -d '{"prompt":"x"}' "$API/v1/sessions"
grep -qi '^retry-after: 1' "$T/h" || fail "no Retry-After on 503"

# the gateway killed: it comes back, and so does every session
gw=$(pgrep -P "$FORGED_PID" forge-gateway)
kill -KILL "$gw"
until_true 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$H' $API/v1/sessions/$id)\" = 200 ]" ||
	fail "gateway not back after SIGKILL"
grep -q "gateway (pid $gw) killed by signal 9" "$T/forged.log" || fail "gateway death not logged"
expect_status 200 '.result == "The answer is 4."' GET "/v1/sessions/$id"
ctl wait --timeout 10 > /dev/null
[ "$(ctl_stat '.sessions.done + .sessions.cancelled')" = 64 ] || fail "sessions lost: $(ctl stats)"
[ "$(ctl_stat .sessions.cancelled)" = 3 ] || fail "cancelled: $(ctl_stat .sessions.cancelled)"
grep -c "killed by signal 9" "$T/forged.log" | grep -qx 2 || fail "gateway deaths not both logged"
stop_forged
echo "gateway: endpoints (each described in /openapi.json), 400/401/404/405/409/413/503, pagination, SSE with Last-Event-ID across a gateway kill, chat completions (whole, streamed, and driven by forge's own client), cancel (HTTP and forgectl), watch, top, 200 SSE subscribers not holding requests back, metrics, gateway SIGKILL lost nothing; $(recovery)"
