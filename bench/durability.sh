#!/bin/sh
# region.durability on a disk file system (the region under build/): the
# same work under none, batch and sync, interleaved round by round, medians
# of RUNS rounds.
#   - POST /v1/sessions through the gateway under wrk (64 keep-alive
#     connections, 3 s): under sync each 201 waits for a flush that covers
#     its session (group commit: one fdatasync serves every request that
#     arrived while the previous one ran);
#   - 2-step scripted ReAct sessions, N queued then run (sessions.sh): every
#     commit carries a COMMIT record (CRC32C) under batch and sync.
# Prints "post_none post_batch post_sync react_none react_batch react_sync
# flushes_per_s_sync".
# Usage: durability.sh RUNS N
set -eu
RUNS=${1:-3} N=${2:-100000}
B=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d "$B/build/forge-bench.XXXXXX")
PORT=$((21000 + $$ % 9000))
trap 'pkill -TERM -f "forged -c $T" 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
. "$B/bench/http_forged.sh"
post() { # post MODE: requests/s; also appends flushes/s (sync) to $T/fps
	http_forged "  durability: $1"
	f0=$("$B/build/forgectl" -c "$T/forge.yaml" stats --json | jq .durability.flushes)
	wrk -t1 -c64 -d3s -s "$B/bench/post.lua" "http://127.0.0.1:$PORT/v1/sessions" > "$T/post"
	f1=$("$B/build/forgectl" -c "$T/forge.yaml" stats --json | jq .durability.flushes)
	grep -q "Non-2xx" "$T/post" && { echo "durability.sh: errors under load:" >&2; cat "$T/post" >&2; exit 1; }
	[ "$1" = sync ] && echo $(( (f1 - f0) / 3 )) >> "$T/fps"
	kill -TERM $FORGED; wait $FORGED
	awk '/Requests\/sec/ {print int($2)}' "$T/post"
}
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pn= pb= ps= rn= rb= rs=
for r in $(seq "$RUNS"); do
	pn="$pn $(post none)"; pb="$pb $(post batch)"; ps="$ps $(post sync)"
	rn="$rn $(DURABILITY=none sh "$B/bench/sessions.sh" 2 "$N" 1 --workflow react --prompt "what is 2+2?" --provider scripted)"
	rb="$rb $(DURABILITY=batch sh "$B/bench/sessions.sh" 2 "$N" 1 --workflow react --prompt "what is 2+2?" --provider scripted)"
	rs="$rs $(DURABILITY=sync sh "$B/bench/sessions.sh" 2 "$N" 1 --workflow react --prompt "what is 2+2?" --provider scripted)"
done
echo "$(echo $pn | med) $(echo $pb | med) $(echo $ps | med) $(echo $rn | med) $(echo $rb | med) $(echo $rs | med) $(cat "$T/fps" | med)"
