#!/bin/sh
# System-call faults injected with libfiu (fiu-utils, libfiu-dev) into a
# running forge, under load: ReAct sessions over real HTTP to mock-llm.
# forged runs with libfiu's preloads (fiu_run_preload.so, the POSIX one, and
# build/fiu_epoll.so for the epoll waits); each round enables one failure
# point in chosen processes through fiu-ctrl for a window, disables it, and
# then every session must end DONE with the right answer, each
# conversation exactly once (forgectl check), the check clean.  Rounds:
#   malloc/calloc/realloc/strdup failing in the workers, and in the gateway
#   while clients POST; socket() failing; send/recv/connect failing;
#   write/writev failing; epoll waits failing in the workers and in the
#   supervisor; fork failing in the supervisor while a worker is replaced;
#   mmap failing when forged and forgectl start.
# Prints, per round, what forge did: restarts, failed starts, LLM retries,
# and the time from the end of the window to the last session done.
. "$(dirname "$0")/../lib.sh"
FIU=/usr/lib/fiu
if [ ! -f "$FIU/fiu_posix_preload.so" ] || ! command -v fiu-ctrl > /dev/null; then
	echo "syscall_faults: SKIPPED: libfiu is not installed (apt-get install fiu-utils libfiu-dev)"
	exit 0
fi
if ldd "$BIN/forged" | grep -qE 'lib[at]san'; then
	# libfiu's preloads replace malloc and friends, which ASan must own.
	echo "syscall_faults: SKIPPED on sanitizer builds (libfiu's preloads replace the allocator)"
	exit 0
fi
PRELOAD="$FIU/fiu_run_preload.so $FIU/fiu_posix_preload.so $ROOT/build/fiu_epoll.so"
[ -f "$ROOT/build/fiu_epoll.so" ] || fail "build/fiu_epoll.so missing (make integration builds it)"
MOCK=$ROOT/build/mock-llm
PORT=$((20000 + $$ % 10000))
# (no overflow section: the mmap round checksums the whole region file)
WORKERS=2 SESSIONS=32768 MAX_INFLIGHT=64 SESSION_MAX_BYTES=896 write_config
cat >> "$T/forge.yaml" <<YAML
llm:
  default: mock
  providers:
    mock:
      base_url: http://127.0.0.1:$PORT/v1
      max_retries: 100
      retry_base_ms: 5
      timeout_ms: 5000
YAML
start_mock() { # start_mock MOCK-ARGS...
	[ -n "${MOCK_PID:-}" ] && { kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true; }
	"$MOCK" --port "$PORT" --latency-ms 100 "$@" 2>>"$T/mock.log" &
	MOCK_PID=$!
	until_true 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "mock-llm did not start: $(cat "$T/mock.log")"
}
start_mock

start_fiu_forged() {
	LD_PRELOAD="$PRELOAD" FIU_CTRL_FIFO="$T/fiu" FIU_ENABLE="" \
		"$BIN/forged" -c "$T/forge.yaml" >> "$T/forged.log" 2>&1 &
	FORGED_PID=$!
	until_true 10 workers_alive || fail "workers not ready within 10 s"
}

# pids of the workers / the gateway / the supervisor, now
role_pids() {
	case $1 in
	supervisor) echo "$FORGED_PID" ;;
	*) for p in $(pgrep -P "$FORGED_PID"); do
		c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
		case "$1:$c" in workers:forge-worker-*|gateway:forge-gateway) echo "$p" ;; esac
	   done ;;
	esac
}
# fiuctl COMMAND PID...: a process that died meanwhile is skipped
fiuctl() {
	cmd=$1; shift
	for p; do timeout 2 fiu-ctrl -f "$T/fiu" -c "$cmd" "$p" > /dev/null 2>&1 || true; done
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

N=2000
total=0
# round NAME POINT PROBABILITY ROLES WINDOW_S: faults in ROLES for WINDOW_S
round() {
	name=$1 point=$2 prob=$3 roles=$4 window=$5
	r0=$(ctl_stat .workers.restarts) f0=$(ctl_stat .workers.spawn_failures) l0=$(ctl_stat .llm.retries)
	ctl submit --workflow react --prompt "what is 2+2?" --count $N > /dev/null
	total=$((total + N))
	until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .sessions.running) -gt 50 ]" ||
		fail "$name: nothing running"
	pids=
	for r in $roles; do pids="$pids $(role_pids "$r")"; done
	if [ "$prob" = 1 ]; then fiuctl "enable name=$point" $pids
	else fiuctl "enable_random name=$point,probability=$prob" $pids; fi
	if [ "${KILL:-}" ]; then   # a worker dies during the window
		ctl kill-worker 0 > /dev/null || fail "$name: kill-worker failed"
	fi
	sleep "$window"   # the fault window: a duration, not a wait for an event
	# disable in the supervisor first, then in every child (also those
	# forked during the window, which inherited the supervisor's points)
	fiuctl "disable name=$point" $pids
	fiuctl "disable name=$point" "$FORGED_PID" $(pgrep -P "$FORGED_PID")
	t0=$(now_ms)
	WAIT_S=120 expect_all_done $total
	dt=$(( $(now_ms) - t0 ))
	bad=$(ctl sessions --state done --json | jq '[.[] | select(.result != "The answer is 4.")] | length')
	[ "$bad" = 0 ] || fail "$name: $bad sessions without the expected answer"
	until_true 20 workers_alive || fail "$name: workers not back: $(ctl stats)"
	r=$(( $(ctl_stat .workers.restarts) - r0 )) f=$(( $(ctl_stat .workers.spawn_failures) - f0 ))
	l=$(( $(ctl_stat .llm.retries) - l0 ))
	printf '%-28s %-26s p=%-5s %-10s %ss: %d restarts, %d failed starts, %d LLM retries, last session done %d ms after\n' \
		"$name" "$point" "$prob" "$roles" "$window" $r $f $l $dt | tee -a "$T/summary"
	eval "R_$(echo "$name" | tr -c 'a-z0-9\n' _)=\$r F_$(echo "$name" | tr -c 'a-z0-9\n' _)=\$f L_$(echo "$name" | tr -c 'a-z0-9\n' _)=\$l"
}

start_fiu_forged
round malloc-workers   'libc/mm/*'            0.002 workers 2
[ $((R_malloc_workers + L_malloc_workers)) -gt 0 ] || fail "malloc-workers: no effect seen"
start_mock --close   # a connection per request: socket() and connect() each time
round socket           posix/io/net/socket    0.3   workers 2
[ "$L_socket" -gt 0 ] || fail "socket: no LLM request was retried"
round net-io           'posix/io/net/*'       0.05  workers 2
[ "$L_net_io" -gt 0 ] || fail "net-io: no LLM request was retried"
start_mock
KILL=1 round write     'posix/io/rw/*'        0.5   'supervisor workers gateway' 2
[ "$R_write" -ge 1 ] || fail "write: the killed worker was not restarted"
round epoll-workers    linux/io/epoll_wait    0.5   workers 2
grep -q "forge-worker-[01].*warning: worker [01]: epoll_pwait2: " "$T/forged.log" ||
	fail "epoll-workers: no epoll_pwait2 failure logged"
round epoll-always     linux/io/epoll_wait    1     workers 1
[ "$R_epoll_always" -ge 1 ] || fail "epoll-always: a worker whose waits always fail was not replaced"
grep -q "epoll_pwait2 failed 100 times in a row" "$T/forged.log" ||
	fail "epoll-always: no 'failed 100 times in a row' in the log"
round epoll-supervisor linux/io/epoll_wait    0.5   supervisor 2
grep -q "forged\[[0-9]*\]: warning: epoll_wait: " "$T/forged.log" ||
	fail "epoll-supervisor: no epoll_wait failure logged"

# fork failing in the supervisor while a worker is replaced: the slot is
# retried with backoff (not given up), and comes back once fork works
f0=$(ctl_stat .workers.spawn_failures)
ctl submit --workflow react --prompt "what is 2+2?" --count $N > /dev/null
total=$((total + N))
fiuctl "enable name=posix/proc/fork" "$FORGED_PID"
ctl kill-worker 0 > /dev/null
until_true 10 sh -c "[ \$($BIN/forgectl --region $REGION stats --json | jq .workers.spawn_failures) -ge $((f0 + 3)) ]" ||
	fail "fork: no failed starts counted: $(ctl stats)"
workers_alive 1 || fail "fork: want 1 worker alive while fork fails: $(ctl stats)"
fiuctl "disable name=posix/proc/fork" "$FORGED_PID"
until_true 10 workers_alive || fail "fork: worker 0 not back after fork works again"
grep -qE "worker 0: fork failed: (Cannot allocate memory|Resource temporarily unavailable) \(attempt 3\); trying again in 40 ms" "$T/forged.log" ||
	fail "fork: no 'fork failed (attempt 3)' in the log"
WAIT_S=120 expect_all_done $total
echo "fork-supervisor: $(( $(ctl_stat .workers.spawn_failures) - f0 )) failed starts retried with backoff, worker back, $N sessions done" |
	tee -a "$T/summary"

# malloc failing in the gateway while clients POST, each with its own
# Idempotency-Key: each request gets 201, or 503, or its connection closed
# (a crashed gateway is restarted); once the faults stop, the clients retry
# the ones that failed with the same keys.  Exactly 300 sessions exist then:
# none lost, none created twice, whatever the gateway went through.
before=$(ctl_stat .sessions.done)
g0=$(ctl_stat .workers.restarts)
post_key() { # post_key N: the status of POST /v1/sessions with key k-N
	curl -s -o "$T/post.out" -w '%{http_code}' --max-time 5 -H "Idempotency-Key: k-$1" \
		-d '{"prompt":"what is 2+2?"}' "$API/v1/sessions" || true
}
fiuctl "enable_random name=libc/mm/*,probability=0.01" $(role_pids gateway)
failed= created=0 other=0
for i in $(seq 300); do
	code=$(post_key "$i")
	case $code in
	201) created=$((created + 1)) ;;
	503|000) other=$((other + 1)); failed="$failed $i" ;;
	*) fail "gateway malloc: POST answered $code: $(cat "$T/post.out")" ;;
	esac
done
fiuctl "disable name=libc/mm/*" $(role_pids gateway)
[ "$created" -gt 0 ] || fail "gateway malloc: no POST succeeded"
until_true 10 curl -sf "$API/healthz" || fail "gateway malloc: gateway not back"
replayed=0
for i in $failed; do
	code=$(post_key "$i")
	case $code in
	201) ;;
	200) replayed=$((replayed + 1)) ;;   # created before, its answer lost
	*) fail "gateway malloc: retry of k-$i answered $code: $(cat "$T/post.out")" ;;
	esac
done
ctl wait --timeout 60 > /dev/null || fail "gateway malloc: sessions not done: $(ctl stats)"
made=$(( $(ctl_stat .sessions.done) - before ))
[ "$made" = 300 ] || fail "gateway malloc: $made sessions for 300 keys"
total=$((total + made))
expect_all_done $total
echo "malloc-gateway: 300 POSTs with keys, $created answered 201, $other failed (503 or connection lost) and were retried ($replayed of them had been created: replayed, not duplicated), gateway restarts $(( $(ctl_stat .workers.restarts) - g0 )), exactly 300 sessions" |
	tee -a "$T/summary"
# libfiu's remote-control thread in this forged was started before main()
# blocked its signals, so a SIGTERM can land on that thread and kill the
# process: stop it with SIGKILL instead (the next start recovers the region).
no_sanitizer_reports
kids=$(pgrep -P "$FORGED_PID" | tr '\n' ' ')
kill -KILL "$FORGED_PID" $kids
wait "$FORGED_PID" 2>/dev/null || true
FORGED_PID=
until_true 10 sh -c "! kill -0 $kids 2>/dev/null" || fail "children of the killed forged still alive"

# mmap failing at start: a clear error, the region untouched
sum=$(cksum < "$REGION")
set +e
out=$(LD_PRELOAD="$PRELOAD" FIU_ENABLE="enable name=posix/mm/mmap" "$BIN/forged" -c "$T/forge.yaml" 2>&1); rc=$?
set -e
[ $rc = 1 ] && echo "$out" | grep -q "$REGION: cannot map: " || fail "mmap at start: exit $rc: $out"
set +e
out=$(LD_PRELOAD="$PRELOAD" FIU_ENABLE="enable name=posix/mm/mmap" "$BIN/forgectl" --region "$REGION" stats 2>&1); rc=$?
set -e
[ $rc != 0 ] && echo "$out" | grep -q "$REGION: cannot map: " || fail "forgectl, mmap failing: exit $rc: $out"
[ "$(cksum < "$REGION")" = "$sum" ] || fail "mmap at start: the region was modified"
start_forged
expect_all_done $total
stop_forged
echo "mmap-start: forged and forgectl refused ($(echo "$out" | head -1)), region untouched" >> "$T/summary"
echo "syscall_faults: $(sed 's/  */ /g' "$T/summary" | tr '\n' ';') $total sessions, none lost or duplicated; $(recovery)"
