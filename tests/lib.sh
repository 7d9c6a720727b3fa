# tests/lib.sh — helpers for integration tests (sourced).
# Each test gets its own directory, region and forged; everything it
# started is stopped on exit.  Waits poll a condition with a deadline.

set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/build/test}
T=$(mktemp -d /tmp/forge-it.XXXXXX)
REGION=$T/region
HTTP_PORT=$((10000 + $$ % 10000))   # below the ephemeral range (32768+)
API=http://127.0.0.1:$HTTP_PORT
FORGED_PID=
ctl() { "$BIN/forgectl" --region "$REGION" "$@"; }

cleanup() {
	[ -n "${MOCK_PID:-}" ] && kill "$MOCK_PID" 2>/dev/null || true
	for _m in ${MOCKS:-}; do kill "$_m" 2>/dev/null || true; done
	if [ -n "$FORGED_PID" ] && kill -0 "$FORGED_PID" 2>/dev/null; then
		kill -TERM "$FORGED_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$FORGED_PID" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$FORGED_PID" 2>/dev/null || true
	fi
	pkill -KILL -f "forge-it.*$(basename "$T")" 2>/dev/null || true
	if [ -n "${KEEP_LOGS:-}" ]; then   # KEEP_LOGS=1: keep logs of passing tests too
		keep=$ROOT/build/it-logs/$(basename "$0" .sh)
		rm -rf "$keep"; mkdir -p "$keep" && cp "$T"/*.log "$keep/" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# fail MSG: prints MSG and the end of forged's log; every log of the test is
# kept in build/it-logs/TEST/ for a closer look
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/forged.log" ] && tail -20 "$T/forged.log" >&2
	keep=$ROOT/build/it-logs/$(basename "$0" .sh)
	rm -rf "$keep"; mkdir -p "$keep" && cp "$T"/*.log "$keep/" 2>/dev/null &&
		echo "(logs kept in $keep)" >&2
	exit 1
}

# write_config EXTRA_YAML...: a config for this test's region
write_config() {
	cat > "$T/forge.yaml" <<YAML
supervisor:
  workers: ${WORKERS:-2}
  watchdog_ms: ${WATCHDOG_MS:-2000}
  heartbeat_ms: 50
  sweep_after_ms: 500
  shutdown_timeout_ms: 5000
  restart:
    backoff_initial_ms: 10
    backoff_max_ms: 200
    intensity: 100000
    period_s: 60
region:
  path: $REGION
  sessions: ${SESSIONS:-8192}${RETAIN_S:+
  retain_s: $RETAIN_S}${CHECKPOINT_BYTES:+
  checkpoint_bytes: $CHECKPOINT_BYTES}${SESSION_MAX_BYTES:+
  session_max_bytes: $SESSION_MAX_BYTES}
worker:
  max_inflight: ${MAX_INFLIGHT:-256}
http:
  listen: 127.0.0.1:$HTTP_PORT
YAML
}

# until_true SECONDS CMD...: polls CMD every 20 ms until it succeeds
until_true() {
	limit=$1; shift
	end=$(( $(date +%s) + limit ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.02
	done
}

# mock_on PORT [ARGS...]: mock-llm on PORT, answering before it returns;
# its pid in MOCK_ON (the first one's also in MOCK_PID, killed on exit)
mock_on() {
	_port=$1; shift
	"$ROOT/build/mock-llm" --port "$_port" "$@" 2>>"$T/mock.log" &
	MOCK_ON=$!
	MOCKS="${MOCKS:-} $MOCK_ON"   # (all killed at the end)
	[ -n "${MOCK_PID:-}" ] || MOCK_PID=$MOCK_ON
	until_true 10 curl -sf "http://127.0.0.1:$_port/healthz" ||
		fail "mock-llm did not start on port $_port: $(tail -3 "$T/mock.log")"
}

# llm_yaml PORT: an llm section whose default provider, "mock", is mock-llm
# on PORT (retried quickly); more providers may follow it (4 spaces in)
llm_yaml() {
	cat >> "$T/forge.yaml" <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$1/v1
      max_retries: 30
      retry_base_ms: 5
YAML
}

workers_alive() { [ "$(ctl stats --json | jq .workers.alive)" = "${1:-${WORKERS:-2}}" ]; }

start_forged() {
	[ -f "$T/forge.yaml" ] || write_config
	"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
	FORGED_PID=$!
	until_true 10 workers_alive || fail "workers not ready within 10 s"
}

# A sanitizer report in any process's log fails the test (a worker that ASan
# aborts would otherwise just be restarted and recovered).
no_sanitizer_reports() {
	if grep -qE "Sanitizer|runtime error:" "$T"/*.log 2>/dev/null; then
		grep -hE -A5 "Sanitizer|runtime error:" "$T"/*.log | head -40 >&2
		fail "sanitizer report in the logs"
	fi
}

stop_forged() {
	no_sanitizer_reports
	kill -TERM "$FORGED_PID"
	wait "$FORGED_PID" || fail "forged exited with status $?"
	FORGED_PID=
}

ctl_stat() { ctl stats --json | jq -r "$1"; }

# kill_until_done SECONDS PAUSE WHAT: SIGKILLs a random worker (of 2) every
# PAUSE seconds until nothing is queued, running or waiting; fails after
# SECONDS naming WHAT.  Sets kills (the kills that landed), adding to it.
kill_until_done() {
	_end=$(( $(date +%s) + $1 ))
	kills=${kills:-0}
	while ! ctl wait --timeout 0 2>/dev/null; do
		[ "$(date +%s)" -lt "$_end" ] || fail "$3: not done in $1 s: $(ctl stats)"
		ctl kill-worker $(( $(od -An -N1 -tu1 /dev/urandom) % 2 )) >/dev/null 2>&1 &&
			kills=$((kills + 1))
		sleep "$2"
	done
}

# recovery: the supervisor's recovery passes so far (kernel-reported death
# to every session of the dead process requeued) and replacement start-up
# (death to the new process READY), p50/p99, for the summary line
recovery() {
	ctl stats --json | jq -r '.recovery | "recovery p50/p99 \(.p50_us * 10 | floor / 10)/\(.p99_us * 10 | floor / 10) us over \(.count) deaths" +
	  (if .ready_count > 0 then ", replacement READY p50/p99 \(.ready_p50_us / 100 | floor / 10)/\(.ready_p99_us / 100 | floor / 10) ms (restart backoff included)" else "" end)'
}

# expect_all_done N: every one of N sessions done, none elsewhere, check clean
expect_all_done() {
	ctl wait --timeout "${WAIT_S:-120}" || fail "sessions not finished in time: $(ctl stats)"
	[ "$(ctl_stat .sessions.done)" = "$1" ] ||
		fail "done $(ctl_stat .sessions.done), want $1: $(ctl stats --json | jq -c .sessions);" \
		     "not done: $(ctl sessions --json | jq -c '[.[] | select(.state != "done")] | .[:3]')"
	[ "$(ctl_stat ".sessions.failed + .sessions.queued + .sessions.running + .sessions.waiting + .sessions.allocating + .sessions.freeing + .sessions.cancelled")" = 0 ] ||
		fail "sessions left outside done: $(ctl stats)"
	ctl check > "$T/check.out" || { cat "$T/check.out" >&2; fail "forgectl check found violations"; }
	no_sanitizer_reports
}

# stalled FILE: the pid that a stall point (FORGE_STALLPOINT, with
# FORGE_STALL_FILE=FILE) stopped, once it has stopped; release PID lets it go
stalled() {
	until_true 10 test -s "$1" || fail "stall point never reached ($1)"
	p=$(cat "$1")
	until_true 5 sh -c "grep -q '^State:.*T' /proc/$p/status" || fail "pid $p did not stop"
	echo >> "$T/nstalls"
	echo "$p"
}
release() { kill -CONT "$1"; }
