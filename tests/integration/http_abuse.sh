#!/bin/sh
# HTTP abuse against the gateway (http.idle_timeout_s 2 s here): a slowloris
# that trickles its headers a byte at a time (served, and not holding
# anyone back); clients that stall mid-request (closed after the idle
# timeout, 200 at once too); more connections from one address than
# http.max_connections_per_ip (the excess closed at once); headers over
# http.max_header_bytes (431); a long URL; a chunked body over
# http.max_body_bytes (413).  Other clients are served throughout, and the
# sessions they create all end DONE.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"   # for /dev/tcp and read -t
. "$(dirname "$0")/../lib.sh"
write_config
cat >> "$T/forge.yaml" <<YAML
  idle_timeout_s: 2
  max_connections_per_ip: 300
  max_header_bytes: 8192
  max_body_bytes: 4096
llm:
  default: s
  providers:
    s:
      type: scripted
YAML
start_forged
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
post() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '{"prompt":"what is 2+2?"}' "$API/v1/sessions"; }
established() { ss -tn state established "( sport = :$HTTP_PORT )" | tail -n +2 | wc -l; }
created=0

# 1. slowloris: a request a byte every 0.05 s (3.6 s in all, longer than the
# idle timeout, but never idle that long): served at the end; meanwhile
# other clients are answered at once
req=$'GET /healthz HTTP/1.1\r\nHost: forge\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n'
(
	exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	for ((i = 0; i < ${#req}; i++)); do printf '%s' "${req:i:1}" >&3; sleep 0.05; done
	timeout 5 head -1 <&3 > "$T/slow.out"
) &
SLOW=$!
for i in $(seq 20); do
	t0=$(now_ms)
	[ "$(post)" = 201 ] || fail "POST $i during the slowloris"
	created=$((created + 1))
	[ $(( $(now_ms) - t0 )) -lt 1000 ] || fail "POST $i took $(( $(now_ms) - t0 )) ms during the slowloris"
	sleep 0.1
done
wait $SLOW || fail "slowloris client failed"
grep -q "^HTTP/1.1 200" "$T/slow.out" || fail "slowloris request not served: $(cat "$T/slow.out")"

# 2. a client that stalls mid-header is closed after the idle timeout
exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'GET /healthz HTTP/1.1\r\nHo' >&4
t0=$(now_ms)
timeout 10 cat <&4 > /dev/null || fail "stalled connection not closed in 10 s"
dt=$(( $(now_ms) - t0 ))
exec 4<&-
[ $dt -ge 1500 ] && [ $dt -le 5000 ] || fail "stalled connection closed after $dt ms (idle timeout 2 s)"

# 3. 200 stalled clients at once: all closed after the timeout; others served
stalled=()
for i in $(seq 200); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
	printf 'POST /v1/sessions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"pro' >&$fd
	stalled+=($fd)
done
[ "$(post)" = 201 ] || fail "POST with 200 stalled clients"
created=$((created + 1))
until_true 10 sh -c "[ \$(ss -tn state established '( sport = :$HTTP_PORT )' | tail -n +2 | wc -l) = 0 ]" ||
	fail "stalled clients still connected: $(established)"
for fd in "${stalled[@]}"; do exec {fd}<&-; done

# 4. more connections from one address than max_connections_per_ip (300):
# those over the limit are closed at once
fds=()
for i in $(seq 320); do exec {fd}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"; fds+=($fd); done
# (the server's side of each connection it kept is ESTABLISHED; counted
# well inside the idle timeout that would close them all)
until_true 1 sh -c "[ \$(ss -tn state established '( sport = :$HTTP_PORT )' | tail -n +2 | wc -l) = 300 ]" ||
	fail "$(established) connections kept of 320 from one address, want 300"
sleep 0.2   # none of the 20 over the limit shows up late
kept=$(established)
[ "$kept" = 300 ] || fail "$kept connections kept of 320 from one address, want 300"
closed=$((320 - kept))
for fd in "${fds[@]}"; do exec {fd}<&-; done
until_true 10 sh -c "[ \$(ss -tn state established '( sport = :$HTTP_PORT )' | tail -n +2 | wc -l) = 0 ]" ||
	fail "connections of the per-address test still open"

# 5. headers over max_header_bytes: 431; a long URL; a chunked body over the limit
big=$(head -c 12000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$API/healthz")
[ "$code" = 431 ] || fail "12 KB header: $code, want 431"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/sessions/$big")
[ "$code" = 431 ] || [ "$code" = 414 ] || fail "12 KB URL: $code, want 414 or 431"
head -c 6000 /dev/zero | tr '\0' ' ' > "$T/big.json"
code=$(curl -s -o "$T/out" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" "$API/v1/sessions")
[ "$code" = 413 ] || fail "6 KB chunked body: $code, want 413: $(cat "$T/out")"
[ "$(post)" = 201 ] || fail "POST after the abuse"
created=$((created + 1))
expect_all_done $created
stop_forged
echo "http_abuse: a slowloris served in $((${#req} / 20)) s without delaying 20 POSTs; a stalled client closed after $dt ms; 200 stalled closed by the timeout; $closed of 320 over the per-address limit closed at once; 431 for 12 KB of headers and for a 12 KB URL, 413 for a chunked body over the limit; $created sessions done"
