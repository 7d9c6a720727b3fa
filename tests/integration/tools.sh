#!/bin/sh
# Tools, driven by scripted providers (each calls one tool, then answers):
# file_read stays inside its root (.., absolute paths and symlinks refused
# by the kernel), shell runs only allowlisted argv with a timeout, external
# tools take JSON on stdin and must answer JSON, and a non-idempotent tool
# interrupted by a worker's death is not run again: the model is told.
. "$(dirname "$0")/../lib.sh"
D=$T/data
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
"$ROOT/build/mock-llm" --port "$PORT" 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
mkdir -p "$D"
printf 'hello from a file\n' > "$D/a.txt"
ln -s /etc/passwd "$D/link"
write_config
provider() { # provider NAME TOOL ARGS-JSON
	printf '    %s:\n      type: scripted\n      script:\n        - tool: %s\n          arguments: %s\n        - content: done\n' \
		"$1" "$2" "'$3'"
}
{
	printf 'llm:\n  default: fr\n  providers:\n'
	provider fr file_read '{"path":"a.txt"}'
	provider fresc file_read '{"path":"../../etc/passwd"}'
	provider frabs file_read '{"path":"/etc/passwd"}'
	provider frlink file_read '{"path":"link"}'
	provider sh shell '{"command":["echo","hello","world"]}'
	provider shbad shell '{"command":["rm","-rf","/"]}'
	provider shslow shell '{"command":["sleep","5"]}'
	provider up upper '{"text":"hi"}'
	provider bad notjson '{}'
	provider once once '{}'
	provider nope no_such_tool '{}'
	provider gone gone '{}'
	printf '    par:\n      type: scripted\n      script:\n        - tool: slowjson\n          arguments: %s\n          calls: 3\n        - content: done\n' "'{}'"
	provider web http_get "{\"url\":\"http://127.0.0.1:$PORT/v1/models\"}"
	provider webno http_get '{"url":"http://example.com/"}'
	provider webftp http_get '{"url":"ftp://127.0.0.1/x"}'
	cat <<YAML
tools:
  file_read:
    root: $D
  http_get:
    allow: [127.0.0.1]
  shell:
    allow: [echo, sleep]
    timeout_ms: 300
  external:
    upper:
      command: [tr, a-z, A-Z]
      description: upper-cases a JSON document
    notjson:
      command: [echo, nope]
    gone:
      command: [/nonexistent/forge-tool]
    slowjson:
      command: [sh, -c, "date +%s%N >> $T/starts; sleep 1; date +%s%N >> $T/ends; echo '{\"ok\":true}'"]
    once:
      command: [sh, -c, "echo run >> $T/runs; sleep 3; echo '{}'"]
      idempotent: false
      timeout_ms: 20000
YAML
} >> "$T/forge.yaml"
start_forged

result_of() { # result_of PROVIDER: the tool result the model was given
	id=$(ctl submit --workflow react --prompt go --provider "$1" -c "$T/forge.yaml")
	ctl wait --timeout 30 >/dev/null || fail "$1: not done"
	ctl session "$id" --json -c "$T/forge.yaml" | jq -r '[.messages[] | select(.role == "tool")][0].content'
}
expect_result() { # expect_result PROVIDER EXACT-TEXT
	got=$(result_of "$1")
	[ "$got" = "$2" ] || fail "$1: tool result '$got', want '$2'"
}
expect_result fr "hello from a file"
expect_result fresc "error: cannot open ../../etc/passwd: outside the allowed directory"
expect_result frabs "error: cannot open /etc/passwd: outside the allowed directory"
expect_result frlink "error: cannot open link: outside the allowed directory"
expect_result sh "exit status 0
hello world"
expect_result shbad 'error: "rm" is not an allowed command'
expect_result shslow "error: shell timed out after 300 ms and was killed; output so far: "
expect_result up '{"TEXT":"HI"}'
got=$(result_of bad)
case $got in "error: notjson did not answer JSON on stdout ("*) ;; *) fail "notjson: $got" ;; esac
expect_result nope 'error: unknown tool "no_such_tool"'
# a program that is not there: said so, not "exit status 127"
expect_result gone 'error: cannot run /nonexistent/forge-tool: No such file or directory'
expect_result web 'HTTP 200
{"object":"list","data":[{"id":"mock","object":"model","owned_by":"forge"}]}'
expect_result webno "error: host example.com is not allowed"
expect_result webftp "error: only http and https URLs are fetched"

# Several calls in one model turn run at once: all three started before any ended.
id=$(ctl submit --workflow react --prompt go --provider par -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null || fail "par: not done"
ctl session "$id" --json -c "$T/forge.yaml" | jq -e '[.messages[] | select(.role == "tool") | .content] == ["{\"ok\":true}\n","{\"ok\":true}\n","{\"ok\":true}\n"]' >/dev/null ||
	fail "par: $(ctl session "$id" --json)"
[ "$(sort -n "$T/starts" | tail -1)" -lt "$(sort -n "$T/ends" | head -1)" ] || fail "par: the calls ran one after another"

# A non-idempotent tool running when its worker dies: never run twice.
id=$(ctl submit --workflow react --prompt go --provider once -c "$T/forge.yaml")
until_true 10 test -s "$T/runs" || fail "once: the tool never started"
slot=$(ctl session "$id" --json | jq '.lease.slot')
ctl kill-worker "$slot" > /dev/null
ctl wait --timeout 30 > /dev/null || fail "once: not done"
s=$(ctl session "$id" --json -c "$T/forge.yaml")
echo "$s" | jq -e '.state == "done" and (.messages[2].content | startswith("interrupted:"))
  and ([.messages[].role] == ["user","assistant","tool","assistant"])
  and ([.internal[] | [.role, .before]] == [["forge.intent", 2]])' >/dev/null ||
	fail "once: $s"
sleep 3.5   # the killed tool would have finished by now had it survived
[ "$(wc -l < "$T/runs")" = 1 ] || fail "once: the tool ran $(wc -l < "$T/runs") times"
ctl check > /dev/null || fail "check"
stop_forged

# workflows.deadline_s: a session still working when its deadline passes fails
sed -i 's/^  deadline_s: .*//' "$T/forge.yaml"
printf 'workflows:\n  deadline_s: 1\n' >> "$T/forge.yaml"
sed -i 's/timeout_ms: 300/timeout_ms: 2000/' "$T/forge.yaml"
start_forged
id=$(ctl submit --workflow react --prompt go --provider shslow -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null
ctl session "$id" --json | jq -e '.state == "failed" and .error == "deadline of 1 s passed (workflows.deadline_s)"' >/dev/null ||
	fail "deadline: $(ctl session "$id" --json)"
stop_forged
# On the default configuration (896 log bytes inline, the rest in the
# sparse overflow, up to 16 MiB a session): a file of 100 KB read whole
# (past the 4 KB the worker once held, past a u16 record length), and a
# conversation of 15 tool results of 70 KB (about 1 MB), byte for byte.
head -c 75000 /dev/urandom | base64 -w 100 > "$D/big.txt"
head -c 52000 /dev/urandom | base64 -w 100 > "$D/b70.txt"
rm -f "$REGION" "$REGION.lock"
write_config
{
	printf 'llm:\n  default: big\n  providers:\n'
	provider big file_read '{"path":"big.txt"}'
	printf '    conv:\n      type: scripted\n      script:\n        - tool: file_read\n          arguments: %s\n          calls: 15\n        - content: done\n' "'{\"path\":\"b70.txt\"}'"
	printf 'tools:\n  file_read:\n    root: %s\n    max_bytes: 200000\n' "$D"
} >> "$T/forge.yaml"
start_forged
result_of big > "$T/big.got"

# (jq -r adds a newline after the text)
[ "$(wc -c < "$T/big.got")" = $(( $(wc -c < "$D/big.txt") + 1 )) ] &&
	head -c "$(wc -c < "$D/big.txt")" "$T/big.got" | cmp -s - "$D/big.txt" ||
	fail "file_read of $(wc -c < "$D/big.txt") bytes: got $(wc -c < "$T/big.got")"
id=$(ctl submit --workflow react --prompt go --provider conv -c "$T/forge.yaml")
ctl wait --timeout 60 >/dev/null || fail "conv: not done"
ctl session "$id" --json -c "$T/forge.yaml" > "$T/conv.json"
want=$(jq -Rs . < "$D/b70.txt")
jq -e --argjson f "$want" '.state == "done" and .result == "done" and
  ([.messages[] | select(.role == "tool") | .content] | length == 15 and all(. == $f))' \
	"$T/conv.json" > /dev/null || fail "conv: $(jq -c '{state, error, n: (.messages | length)}' "$T/conv.json")"
logb=$(jq .checkpoint_log_bytes "$T/conv.json")
[ "$logb" -gt 1000000 ] || fail "conv: the log holds $logb bytes"
ctl check > "$T/check.out" || fail "conv: check: $(cat "$T/check.out")"
stop_forged
echo "tools: file_read confined and whole (100 KB; and a conversation of $logb bytes, 15 results of 70 KB, on the default configuration), shell allowlist and timeout, http_get allowlist, external JSON tools, 3 calls in parallel, a non-idempotent tool interrupted by a crash ran once"
