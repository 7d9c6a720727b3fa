#!/bin/sh
# MCP tool servers (tools.mcp), driven through real forge sessions whose
# model (mock-llm, prompt "mcp:SERVER__TOOL {ARGS}") calls one tool and
# then answers with its result:
#   - a misbehaving stdio server (tests/mcp/fake-server.js): paginated
#     tools/list, a name models cannot take left out, text, image, isError
#     and JSON-RPC error results, output cut at max_output, a line over the
#     cap, a call that hangs (timeout, server restarted), a crash mid-call
#     (retryable error, restarted, the next call works), garbage (error), a
#     flood of notifications (the worker keeps beating; timeout),
#     bad arguments, unknown tools, agents limited to SERVER__TOOL and
#     SERVER__*, a reload and notifications/tools/list_changed listing the
#     tools again; and no worker ever died (no zombie left either);
#   - 400 sessions calling a server at once (two workers);
#   - the reference servers from npm, @modelcontextprotocol/server-filesystem
#     and server-everything (stdio, and everything over Streamable HTTP),
#     at the versions tests/mcp/package.json pins, installed into
#     build/mcp-servers by this test (SKIPPED when npm cannot install them);
#   - crash points mcp.call.before_send / after_send: a worker killed there
#     does not call a non-idempotent server again (the model is told the
#     call was interrupted), and calls an idempotent one again;
#   - the latency of a call through forge against the bare server.
. "$(dirname "$0")/../lib.sh"
D=$T/data
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
HPORT=$((PORT + 1))
FAKE=$ROOT/tests/mcp/fake-server.js
NPMDIR=$ROOT/build/mcp-servers
MODS=$NPMDIR/node_modules/@modelcontextprotocol
mkdir -p "$D/sub"
printf 'hello from a file\n' > "$D/a.txt"
printf 'second\n' > "$D/b.txt"
command -v node > /dev/null ||
	{ echo "mcp: skipped: node is not installed (apt-get install nodejs npm)"; exit 0; }

# the reference servers, at the versions tests/mcp/package.json pins (no
# lock file: npm's own registry)
real=1
if ! cmp -s "$ROOT/tests/mcp/package.json" "$NPMDIR/package.json" ||
   [ ! -f "$MODS/server-filesystem/dist/index.js" ] || [ ! -f "$MODS/server-everything/dist/index.js" ]; then
	rm -rf "$NPMDIR"
	mkdir -p "$NPMDIR"
	cp "$ROOT/tests/mcp/package.json" "$NPMDIR/package.json"
	if ! command -v npm > /dev/null ||
	   ! (cd "$NPMDIR" && timeout 300 npm install --no-package-lock --no-audit --no-fund --loglevel=error) > "$T/npm.log" 2>&1; then
		real=0
		rm -f "$NPMDIR/package.json"
		echo "SKIPPED (the reference servers): npm could not install them: $(tail -2 "$T/npm.log" 2>/dev/null | tr '\n' ' ')"
	fi
fi

mock_on "$PORT"
# one worker for the misbehaving server: what each failure leaves (its
# restart backoff) is the next call's, deterministically
WORKERS=1
write_config
llm_yaml "$PORT"
{
	cat <<YAML
tools:
  mcp:
    fake:
      command: [node, $FAKE]
      timeout_ms: 1500
      max_output: 4096
      idempotent: true
    slow:
      command: [node, $FAKE]
      timeout_ms: 3000
    once:
      command: [node, $FAKE]
    broken:
      command: [forge-no-such-program]
    dies:
      command: [node, -e, "process.exit(1)"]
YAML
	[ $real = 1 ] && cat <<YAML
    fs:
      command: [node, $MODS/server-filesystem/dist/index.js, $D]
      idempotent: true
    every:
      command: [node, $MODS/server-everything/dist/index.js, stdio]
      env:
        FORGE_TEST: "1"
    web:
      url: http://127.0.0.1:$HPORT/mcp
YAML
	cat <<YAML
agents:
  onlyecho:
    tools: [fake__echo]
  allfake:
    tools: ["fake__*"]
  gated:
    tools: ["fake__*"]
    approve: [fake__echo]
YAML
} >> "$T/forge.yaml"
if [ $real = 1 ]; then
	# server-everything over Streamable HTTP, for the "web" server
	PORT=$HPORT node "$MODS/server-everything/dist/index.js" streamableHttp > "$T/web.log" 2>&1 &
	WEB_PID=$!
	MOCKS="$MOCKS $WEB_PID"
	until_true 20 sh -c "grep -q 'listening on port' $T/web.log" || fail "server-everything (HTTP) did not start: $(cat "$T/web.log")"
fi
start_forged

# ask AGENT-OR-- TOOL ARGS: a session whose model calls TOOL with ARGS; prints
# the tool result the model was given (and checks the model's answer is it)
ask() {
	if [ "$1" = -- ]; then a="--workflow react"; else a="--agent $1"; fi
	id=$(ctl submit $a --prompt "mcp:$2 $3" -c "$T/forge.yaml")
	ctl wait --timeout 60 > /dev/null || fail "$2: not done: $(ctl session "$id" --json)"
	ctl session "$id" --json > "$T/s.json"
	jq -e '.state == "done"' "$T/s.json" > /dev/null || fail "$2: $(jq -c '{state, error}' "$T/s.json")"
	jq -r '[.messages[] | select(.role == "tool")][0].content' "$T/s.json"
}
expect() { # expect TOOL ARGS EXACT-RESULT [AGENT]
	got=$(ask "${4:---}" "$1" "$2")
	[ "$got" = "$3" ] || fail "$1 $2: tool result '$got', want '$3'"
}

expect fake__echo '{"text":"hi"}' "echo: hi"
expect fake__page2 '{}' "page 2"
grep -q 'MCP server fake: tool "bad.name" left out' "$T/forged.log" || fail "bad.name was not left out with a warning"
expect fake__bad.name '{}' 'error: unknown tool "fake__bad.name"'
expect fake__nosuch '{}' 'error: unknown tool "fake__nosuch"'
expect fake__echo '[1]' "error: arguments are not a JSON object"
# servers that cannot start: their calls fail at once, saying why
expect broken__x '{}' "error: MCP server broken is down: it could not be started: cannot run forge-no-such-program: No such file or directory; the call may be retried"
expect dies__x '{}' "error: MCP server dies is down: it exited (status 1); the call may be retried"
expect fake__image '{}' "[image: image/png, 3 bytes]
caption"
expect fake__fail '{}' "error: it failed"
expect fake__rpcerror '{}' "error: MCP server fake: tools/call failed: -32000: nope"
want=$(printf 'y%.0s' $(seq 4096))
expect fake__big '{"n":5000}' "$want
[truncated: 4096 of 5000 bytes shown]"
expect fake__big '{"n":100000}' "error: MCP server fake answered a line longer than 73728 bytes; the call may be retried"
expect fake__echo '{"text":"after a long line"}' "echo: after a long line"

# a call that hangs: its timeout; the server answers the ping that follows
# and is kept
expect fake__hang '{}' "error: MCP server fake did not answer tools/call within 1500 ms"
until_true 10 grep -q "MCP server fake answered a ping after a call timed out: kept" "$T/forged.log" ||
	fail "no ping after the hang: $(grep 'MCP server fake' "$T/forged.log" | tail -3)"
expect fake__echo '{"text":"after a hang"}' "echo: after a hang"
# a server that stops altogether: the call's timeout, then the ping's, and
# it is restarted; the next call works
expect fake__freeze '{}' "error: MCP server fake did not answer tools/call within 1500 ms"
until_true 10 grep -q "MCP server fake was restarted: a call got no answer within 1500 ms, and a ping none within 1000 ms" "$T/forged.log" ||
	fail "a frozen server was not restarted: $(grep 'MCP server fake' "$T/forged.log" | tail -3)"
expect fake__echo '{"text":"after a freeze"}' "echo: after a freeze"
# one session's call that times out costs another session's call on the
# same server nothing: the server answers the ping and is kept, and the
# other call, sent a second later and still in flight, is answered
a=$(ctl submit --workflow react --prompt 'mcp:slow__hang {}')
until_true 10 sh -c "$BIN/forgectl --region $REGION session $a --json | jq -e '.state == \"running\"' > /dev/null" ||
	fail "slow__hang did not start"
sleep 1   # (a gap on purpose: b's deadline a second after a's)
b=$(ctl submit --workflow react --prompt "mcp:slow__waitfile {\"file\":\"$T/go\"}")
until_true 10 sh -c "$BIN/forgectl --region $REGION session $a --json | jq -e '.state == \"done\"' > /dev/null" ||
	fail "slow__hang did not time out"
touch "$T/go"
ctl wait --timeout 30 > /dev/null || fail "slow__waitfile: not done"
[ "$(ctl session "$a" --json | jq -r '[.messages[] | select(.role == "tool")][0].content')" = \
  "error: MCP server slow did not answer tools/call within 3000 ms" ] || fail "slow__hang: $(ctl session "$a" --json | jq -c .messages)"
[ "$(ctl session "$b" --json | jq -r '[.messages[] | select(.role == "tool")][0].content')" = waited ] ||
	fail "a timeout failed another session's call: $(ctl session "$b" --json | jq -c .messages)"
# a call made while the ping is out waits for its answer, and is not sent to
# a server that may be frozen: this one is, and the call goes to its restart
a=$(ctl submit --workflow react --prompt 'mcp:slow__freeze {}')
until_true 10 sh -c "$BIN/forgectl --region $REGION session $a --json | jq -e '.state == \"done\"' > /dev/null" ||
	fail "slow__freeze did not time out"
b=$(ctl submit --workflow react --prompt 'mcp:slow__echo {"text":"after a freeze"}')
ctl wait --timeout 30 > /dev/null || fail "slow__echo: not done"
[ "$(ctl session "$b" --json | jq -r '[.messages[] | select(.role == "tool")][0].content')" = "echo: after a freeze" ] ||
	fail "a call made while a frozen server was pinged: $(ctl session "$b" --json | jq -c .messages)"
grep -q "MCP server slow was restarted: a call got no answer within 3000 ms, and a ping none within 1000 ms" "$T/forged.log" ||
	fail "the frozen slow server was not restarted: $(grep 'MCP server slow' "$T/forged.log" | tail -3)"
# a crash mid-call: a retryable error; restarted; the next call works
expect fake__crash '{}' "error: MCP server fake exited (status 3); the call may be retried"
expect fake__echo '{"text":"after a crash"}' "echo: after a crash"
# garbage on stdout: an error, counted and logged once
expect fake__garbage '{}' "error: MCP server fake sent something that is not JSON-RPC 2.0; the call may be retried"
# a NUL in a text cuts it there (not garbage: the server is not restarted);
# a tool whose inputSchema is over 64 KiB is left out, said in the log
expect fake__nul '{}' "before"
# a text cut inside a surrogate pair (a lone \ud83d escape, which jansson
# refuses): the half is U+FFFD, not garbage
expect fake__lone '{}' "$(printf '\360\237\230\200ab\357\277\275')"
grep -q 'MCP server fake: tool "fat" left out (its inputSchema is over 64 KiB)' "$T/forged.log" ||
	fail "the fat tool was not left out: $(grep 'left out' "$T/forged.log" | head -3)"
grep -q "MCP server fake sent something that is not JSON-RPC 2.0: \"this is not json\"" "$T/forged.log" ||
	fail "garbage was not logged"
expect fake__echo '{"text":"after garbage"}' "echo: after garbage"
# a flood of notifications: the worker keeps beating (no watchdog kill),
# the server is restarted past 2000 notifications a second
expect fake__flood '{}' "error: MCP server fake sent more than 2000 unsolicited messages in a second; the call may be retried"
expect fake__echo '{"text":"after a flood"}' "echo: after a flood"
# a flood of requests to forge, each of which forge answers: the same
expect fake__qflood '{}' "error: MCP server fake sent more than 2000 unsolicited messages in a second; the call may be retried"
expect fake__echo '{"text":"after a request flood"}' "echo: after a request flood"

# agents: one tool, or all of a server's
expect fake__crash '{}' "error: tool \"fake__crash\" is not one of agent onlyecho's tools" onlyecho
expect fake__echo '{"text":"agent"}' "echo: agent" onlyecho
expect fake__page2 '{}' "page 2" allfake
id=$(ctl submit --agent allfake --prompt echo -c "$T/forge.yaml")
ctl wait --timeout 30 > /dev/null
ctl session "$id" --json | jq -e '.result | fromjson | .tools == ["fake__echo","fake__hang","fake__freeze","fake__waitfile","fake__crash","fake__garbage","fake__flood","fake__qflood","fake__big","fake__counter","fake__image","fake__fail","fake__rpcerror","fake__relist","fake__nul","fake__lone","fake__page2"]' > /dev/null ||
	fail "allfake: the model was offered $(ctl session "$id" --json | jq -r .result)"

# an MCP tool an agent lists under approve: waits for a person; edited
# arguments run, and the model is told
id=$(ctl submit --agent gated --prompt 'mcp:fake__echo {"text":"first"}' -c "$T/forge.yaml")
until_true 10 sh -c "[ \"\$($BIN/forgectl --region $REGION session --json $id | jq -r .state)\" = waiting ]" ||
	fail "gated: not waiting: $(ctl session --json "$id" | jq -c '{state,error}')"
ctl approve "$id" --args '{"text":"edited"}' > /dev/null || fail "gated: approve"
ctl wait --timeout 30 > /dev/null
[ "$(ctl session --json "$id" | jq -r .result)" = '(a person changed the arguments to {"text":"edited"})
echo: edited' ] || fail "gated: $(ctl session --json "$id" | jq -c '{state,result,error}')"

# a reload (new workers) lists the servers again: a server added is there
# (in place of slow: 8 servers at most)
sed -i "s|^    slow:|    fake2:|" "$T/forge.yaml"
ctl -c "$T/forge.yaml" reload > "$T/reload.out" 2>&1 || fail "reload: $(cat "$T/reload.out")"
until_true 30 grep -q "reload complete" "$T/forged.log" || fail "reload did not complete"
expect fake2__echo '{"text":"after a reload"}' "echo: after a reload"

[ "$(ctl_stat .workers.restarts)" = 0 ] || fail "a worker died: $(ctl stats)"
stop_forged
# the stopped worker ended its session with the HTTP server (DELETE)
if [ $real = 1 ]; then
	until_true 5 grep -q "^Received session termination request for session" "$T/web.log" ||
		fail "the stopped worker left its MCP session over HTTP open: $(tail -5 "$T/web.log")"
fi

# two workers from here: each has its own connection to each server
sed -i 's/^  workers: .*/  workers: 2/' "$T/forge.yaml"
WORKERS=2
start_forged
if [ $real = 1 ]; then
	expect fs__read_text_file "{\"path\":\"$D/a.txt\"}" "hello from a file"
	expect fs__list_directory "{\"path\":\"$D\"}" "[FILE] a.txt
[FILE] b.txt
[DIR] sub"
	got=$(ask -- fs__read_text_file '{"path":"/etc/passwd"}')
	case $got in "error: "*"ccess denied"*) ;; *) fail "fs outside its directory: $got" ;; esac
	expect every__echo '{"message":"hello"}' "Echo: hello"
	expect every__get-sum '{"a":2,"b":3}' "The sum of 2 and 3 is 5."
	expect every__trigger-long-running-operation '{"duration":1,"steps":2}' \
		"Long running operation completed. Duration: 1 seconds, Steps: 2."
	expect web__echo '{"message":"over http"}' "Echo: over http"
	expect web__get-sum '{"a":40,"b":2}' "The sum of 40 and 2 is 42."
	# the HTTP server gone: an error result, the worker alive
	kill "$WEB_PID"
	until_true 10 sh -c "! curl -s -o /dev/null http://127.0.0.1:$HPORT/mcp" || fail "server-everything (HTTP) did not stop"
	got=$(ask -- web__echo '{"message":"gone"}')
	case $got in "error: MCP server web could not be reached: "*"; the call may be retried") ;;
	*) fail "web gone: $got" ;; esac
fi
[ "$(ctl_stat .workers.restarts)" = 0 ] || fail "a worker died: $(ctl stats)"
# every server killed was reaped (no zombie left under a worker)
zombies() { for p in $(ctl workers --json | jq '.[].pid'); do ps -o stat= --ppid "$p"; done | grep -c '^Z'; }
until_true 10 sh -c "[ \$(for p in \$($BIN/forgectl --region $REGION workers --json | jq '.[].pid'); do ps -o stat= --ppid \$p; done | grep -c '^Z') = 0 ]" ||
	fail "zombies under the workers: $(zombies)"
ctl check > "$T/check.out" || fail "check: $(cat "$T/check.out")"
misbehaved="a timeout (pinged and kept: another session's call on it answered), a frozen server (restarted; a call made while it was pinged answered after the restart), crash, garbage, overlong line, floods of notifications and of requests"

# Latency: N sequential echo calls over stdio from a bare node client, and
# N sequential forge sessions (two model turns and the call) against N with
# the in-process calculator instead: the MCP call's share is the difference.
N=${MCP_N:-30}
cat > "$T/bare.js" <<'JS'
const { spawn } = require("child_process");
const n = +process.argv[2], p = spawn("node", [process.argv[3]], { stdio: ["pipe", "pipe", "inherit"] });
let buf = "", waiting = null, id = 0;
p.stdout.on("data", (d) => { buf += d; let i; while ((i = buf.indexOf("\n")) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); const m = JSON.parse(l); if (m.id !== undefined && !m.method && waiting) waiting(m); } });
const rpc = (method, params) => new Promise((r) => { waiting = r; p.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }) + "\n"); });
(async () => {
	await rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bare", version: "1" } });
	p.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
	await rpc("tools/list", {});
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < n; i++) await rpc("tools/call", { name: "echo", arguments: { text: "x" } });
	console.log((Number(process.hrtime.bigint() - t0) / 1e6 / n).toFixed(3));
	p.kill();
})();
JS
bare=$(node "$T/bare.js" "$N" "$FAKE")
per_session() { # per_session PROMPT: the median of N sequential sessions' own durations (ms)
	: > "$T/ids"
	for _ in $(seq "$N"); do
		ctl submit --workflow react --prompt "$1" >> "$T/ids"
		ctl wait --timeout 30 > /dev/null
	done
	for id in $(cat "$T/ids"); do ctl session "$id" --json | jq .duration_ms; done |
		sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'
}
calc=$(per_session "what is 2+2?")
mcp=$(per_session 'mcp:fake__echo {"text":"x"}')
lat="MCP echo call: bare stdio client $bare ms; forge session with it $mcp ms vs $calc ms with the inline calculator instead (medians of $N sequential sessions, two model calls each, created to finished)"
# many calls in flight at once on each worker's connection: each answer
# reaches its own call
t0=$(date +%s%N)
ctl submit --workflow react --prompt 'mcp:fake__echo {"text":"many"}' --count 400 > /dev/null
ctl wait --timeout 60 > /dev/null || fail "400 at once: not done: $(ctl stats)"
many_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(ctl sessions --state done --json | jq '[.[] | select(.result == "echo: many")] | length')" = 400 ] ||
	fail "400 at once: $(ctl sessions --json | jq -c '[.[] | select(.result != "echo: many")] | .[:2]')"
[ "$(ctl_stat .workers.restarts)" = 0 ] || fail "a worker died: $(ctl stats)"
stop_forged

# Crash points: worker 0 (the only one) killed just before or just after a
# tools/call is sent.  A non-idempotent server ("once") is not called again:
# the model is told; an idempotent one ("fake") is called again.
cp_case() { # cp_case POINT SERVER WANT-RESULT-PREFIX MAX-RUNS
	rm -f "$REGION" "$REGION.lock" "$T/runs"
	: > "$T/forged.log"
	export FORGE_CRASHPOINT="$1:1" FORGE_CRASH_SLOT=0
	start_forged
	unset FORGE_CRASHPOINT FORGE_CRASH_SLOT
	id=$(ctl submit --workflow react --prompt "mcp:$2__counter {\"file\":\"$T/runs\"}")
	ctl wait --timeout 60 > /dev/null || fail "$1 $2: not done"
	grep -q "crash point reached" "$T/forged.log" || fail "$1 $2: the crash point was never reached"
	s=$(ctl session "$id" --json)
	echo "$s" | jq -e --arg w "$3" '.state == "done" and ([.messages[] | select(.role == "tool")][0].content | startswith($w))' > /dev/null ||
		fail "$1 $2: $s"
	runs=$(cat "$T/runs" 2>/dev/null | wc -l)
	[ "$runs" -le "$4" ] || fail "$1 $2: the tool ran $runs times"
	[ "$(ctl_stat .workers.restarts)" = 1 ] || fail "$1 $2: restarts $(ctl_stat .workers.restarts), want 1"
	ctl check > /dev/null || fail "$1 $2: check"
	stop_forged
}
sed -i 's/^  workers: .*/  workers: 1/' "$T/forge.yaml"   # worker 0 must be the one
WORKERS=1
if strings "$BIN/forged" | grep -q "crash point reached"; then
	cp_case mcp.call.before_send once "interrupted:" 0
	cp_case mcp.call.after_send once "interrupted:" 1
	cp_case mcp.call.before_send fake "counted" 1
	cp_case mcp.call.after_send fake "counted" 2
	cps="crash points mcp.call.before_send/after_send (not idempotent: not called again; idempotent: called again)"
else
	cps="crash points not compiled into $BIN (SKIPPED)"
fi
# notifications/tools/list_changed: listed again (one worker, one server)
rm -f "$REGION" "$REGION.lock"
start_forged
expect fake__relist '{}' "relisted"
expect fake__page3 '{}' "page 3"
expect fake__page2 '{}' 'error: unknown tool "fake__page2"'
stop_forged
# a server started by a launcher (sh -c) that lives on when its stdin ends
# (as servers with timers do): a worker killed with SIGKILL takes the
# launcher with it (PR_SET_PDEATHSIG), and forged, the child subreaper,
# kills and reaps what the launcher started
sed -i "s|command: \[forge-no-such-program\]|command: [sh, -c, 'FAKE_STAY=1 node $FAKE \|\| exit 1']|" "$T/forge.yaml"
# (forged started the way a container's entrypoint may start it, with a
# sidecar it had before its exec: that child is left alone)
rm -f "$REGION" "$REGION.lock"
sh -c "sleep 300 & echo \$! > $T/sidecar; exec $BIN/forged -c $T/forge.yaml" >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
until_true 10 workers_alive || fail "workers not ready within 10 s"
expect broken__echo '{"text":"launched"}' "echo: launched"
launcher=$(pgrep -f "^sh -c FAKE_STAY=1 node $FAKE" | head -1)
server=$(pgrep -P "${launcher:-0}" node || true)
[ -n "$server" ] || fail "no server under the launcher: $(ps -eo pid,ppid,args | grep -F "$FAKE")"
ctl kill-worker 0 > /dev/null
until_true 10 sh -c "! kill -0 $server 2>/dev/null" ||
	fail "the launched server $server outlived its worker: $(ps -o pid,ppid,stat,args -p "$server")"
grep -q "pid $server (node), left running by a child of forged that died: killed" "$T/forged.log" ||
	fail "the stray was not named in the log"
expect broken__echo '{"text":"again"}' "echo: again"
kill -0 "$(cat "$T/sidecar")" || fail "forged killed a child it had before its exec"
kill "$(cat "$T/sidecar")"
stop_forged
WORKERS=2

# Configuration errors name the file, line and column (exit 78)
bad() { # bad YAML-TAIL EXPECTED-MESSAGE-PART
	write_config
	printf '%b' "$1" >> "$T/forge.yaml"
	set +e
	out=$("$BIN/forged" --check-config -c "$T/forge.yaml" 2>&1)
	rc=$?
	set -e
	[ $rc = 78 ] || fail "config '$1': exit $rc, want 78 ($out)"
	case $out in *"$2"*) ;; *) fail "config '$1': '$out', want '$2'" ;; esac
}
bad 'tools:\n  mcp:\n    a__b:\n      command: [x]\n' 'tools.mcp.a__b: a server'"'"'s name is'
bad 'tools:\n  mcp:\n    a:\n      command: [x]\n      url: http://h/\n' 'tools.mcp.a: needs either command'
bad 'tools:\n  mcp:\n    a:\n      url: ftp://h/\n' 'tools.mcp.a: url must start with'
bad 'tools:\n  mcp:\n    a:\n      command: [x]\n      timeout: 5\n' 'tools.mcp.a.timeout: unknown key'
bad 'tools:\n  mcp:\n    a:\n      command: [x]\nagents:\n  b:\n    tools: [z__echo]\n' 'agents.b.tools: "z__echo" is not a configured tool'
write_config
printf 'tools:\n  mcp:\n    a:\n      command: [x]\nagents:\n  b:\n    tools: [a__echo, "a__*"]\n' >> "$T/forge.yaml"
"$BIN/forged" --check-config -c "$T/forge.yaml" > /dev/null 2>&1 || fail "a valid MCP configuration was refused"

[ $real = 1 ] && refs="server-filesystem and server-everything (stdio, and Streamable HTTP up and gone)" || refs="reference servers SKIPPED (npm)"
echo "mcp: $refs; misbehaving server ($misbehaved) never took a worker down; a launcher's server killed and reaped with its worker, forged's own sidecar left alone; 400 sessions calling at once done in $many_ms ms; $cps; $lat"
