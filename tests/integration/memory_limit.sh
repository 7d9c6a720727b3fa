#!/bin/sh
# Workers at their memory limit (worker.memory_limit_mb, RLIMIT_DATA): mock-llm
# pads every reply to 3 MiB, and 128 sessions in flight per worker would
# need far more memory than the limit leaves.  Allocations fail; the steps
# are retried with backoff (counted in llm.oom_retries); every session ends
# DONE with the right answer; no worker's data ever passes its limit.
# Then a limit too small to start a worker: a clear error naming the
# setting, restarts until the intensity limit, the slot disabled.
. "$(dirname "$0")/../lib.sh"
if ldd "$BIN/forged" | grep -qE 'lib[at]san'; then
	# ASan and TSan map terabytes of shadow memory: a data limit cannot apply.
	echo "memory_limit: SKIPPED on sanitizer builds (their shadow memory needs an unlimited address space)"
	exit 0
fi
MOCK=$ROOT/build/mock-llm
PORT=$((20000 + $$ % 10000))
LIMIT=20
# (a 10 s watchdog: on 2 cores, shared with mock-llm writing 3 MiB replies,
# a worker under memory pressure can miss heartbeats for a second or more)
WORKERS=2 SESSIONS=4096 MAX_INFLIGHT=128 WATCHDOG_MS=10000 write_config
cat >> "$T/forge.yaml" <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
      max_retries: 100
      retry_base_ms: 10
      max_reply_bytes: 4194304
      timeout_ms: 10000
YAML
sed "s/^  max_inflight: 128$/  max_inflight: 128\n  memory_limit_mb: $LIMIT/" "$T/forge.yaml" > "$T/f.yaml" &&
	mv "$T/f.yaml" "$T/forge.yaml"
grep -q "memory_limit_mb: $LIMIT" "$T/forge.yaml" || fail "config edit"
"$MOCK" --port "$PORT" --latency-ms 50 --pad-bytes 3145728 --threads 2 2>>"$T/mock.log" &
MOCK_PID=$!
until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
start_forged

ctl submit --workflow react --prompt "what is 2+2?" --count 1000 > /dev/null
# the workers' peak data size (what RLIMIT_DATA counts), sampled while they work
peak=0
end=$(( $(date +%s) + 180 ))
while ! ctl wait --timeout 0 > /dev/null 2>&1; do
	[ "$(date +%s)" -lt "$end" ] || fail "sessions not done in 180 s: $(ctl stats)"
	for p in $(pgrep -P "$FORGED_PID"); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in forge-worker-*) ;; *) continue ;; esac
		v=$(awk '/^VmData/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		[ "${v:-0}" -gt "$peak" ] && peak=$v
	done
	sleep 0.05
done
expect_all_done 1000
bad=$(ctl sessions --state done --json | jq '[.[] | select(.result != "The answer is 4.")] | length')
[ "$bad" = 0 ] || fail "$bad sessions without the expected answer"
oom=$(ctl_stat .llm.oom_retries)
[ "$oom" -gt 0 ] || fail "no out-of-memory retries: the limit was never reached (peak $peak kB): $(ctl stats --json | jq -c .llm)"
[ "$peak" -gt 0 ] && [ "$peak" -le $((LIMIT * 1024)) ] ||
	fail "worker VmData $peak kB, limit $((LIMIT * 1024)) kB"
grep -q "worker [01]: out of memory .* (worker.memory_limit_mb is $LIMIT); retrying" "$T/forged.log" ||
	fail "no out-of-memory warning naming the limit in the log"
restarts=$(ctl_stat .workers.restarts)
stop_forged
echo "limit $LIMIT MiB: 1000 sessions done, $oom steps retried for memory, worker peak $((peak / 1024)) MiB, $restarts restarts; $(recovery)" > "$T/summary"

# a limit too small to start a worker: clear error, then disabled
sed -i "s/memory_limit_mb: $LIMIT/memory_limit_mb: 2/; s/intensity: 100000/intensity: 3/" "$T/forge.yaml"
"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
FORGED_PID=$!
until_true 20 sh -c "[ \"\$($BIN/forgectl --region $REGION workers --json | jq -r '.[0].state')\" = disabled ]" ||
	fail "worker 0 not disabled with a 2 MiB limit: $(ctl workers)"
grep -q "worker 0: out of memory at start for .*: worker.memory_limit_mb (2) is too small for this configuration" "$T/forged.log" ||
	fail "no clear start error for a too-small limit"
[ "$(ctl status --json | jq -r .supervisor)" = degraded ] || fail "forge not degraded: $(ctl status)"
kill -TERM "$FORGED_PID"; wait "$FORGED_PID" || true; FORGED_PID=
echo "memory_limit: $(cat "$T/summary"); a 2 MiB limit: start error, slot disabled, forge degraded"
