#!/bin/sh
# Capacity changes keep every session: region.sessions, checkpoint_bytes,
# session_max_bytes and worker.max_inflight changed between two starts, with
# sessions in the region (70 KB conversations among them): forged carries
# every one to a region of the new size (written aside, then renamed into
# place); each conversation reads back byte for byte the same under the
# same id, and the bigger table holds more.  A change that would drop a
# session is refused, naming the setting and the size that would do.
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))
SESSIONS=64 SESSION_MAX_BYTES=1048576 write_config
llm_yaml "$PORT"
mock_on "$PORT"

start_forged
ctl submit --workflow react --prompt "what is 2+2?" --count 40 > "$T/ids"
ctl submit --workflow react --prompt "long:70000 a long answer" --count 4 >> "$T/ids"
ctl wait --timeout 60 > /dev/null || fail "not done"
while read -r id; do ctl session --json "$id" | jq -c '{state, result, messages}'; done < "$T/ids" > "$T/before"
set +e; ctl submit --workflow react --prompt "what is 2+2?" --count 40 > /dev/null 2>&1; rc=$?; set -e
[ $rc != 0 ] || fail "64 records held 84 sessions?"
ctl wait --timeout 60 > /dev/null || fail "not done"
stop_forged
epoch=$(head -c 16 "$T/ids")

# grown: every session still there, whole, same id
sed -i "s/^  sessions: 64$/  sessions: 256/; s/^  session_max_bytes: 1048576$/  session_max_bytes: 4194304\n  checkpoint_bytes: 2048/; s/^  max_inflight: 256$/  max_inflight: 128/" "$T/forge.yaml"
start_forged
grep -q "resized region $REGION: sessions 64 -> 256, checkpoint_bytes 896 -> 2048, session_max_bytes [0-9]* -> [0-9]*, max_inflight 256 -> 128; [0-9]* sessions kept" "$T/forged.log" ||
	fail "no resize: $(grep -E 'resize|region' "$T/forged.log" | tail -3)"
while read -r id; do ctl session --json "$id" | jq -c '{state, result, messages}'; done < "$T/ids" > "$T/after"
cmp -s "$T/before" "$T/after" || fail "conversations changed: $(diff "$T/before" "$T/after" | head -c 600)"
[ "$(ctl status --json | jq -r .region_epoch)" = "$epoch" ] || fail "epoch changed"
ctl submit --workflow react --prompt "what is 2+2?" --count 150 > "$T/more"
ctl wait --timeout 60 > /dev/null || fail "not done after the resize"
[ "$(ctl sessions --state done --json | jq length)" -ge 194 ] || fail "after resize: $(ctl stats)"
ctl check > "$T/check.out" || fail "check after resize: $(cat "$T/check.out")"
stop_forged

# shrinking below a session in use, or below a conversation: refused
last=$(ctl sessions --json | jq length)
sed -i "s/^  sessions: 256$/  sessions: 8/" "$T/forge.yaml"
set +e; timeout 10 "$BIN/forged" -c "$T/forge.yaml" > "$T/refused.log" 2>&1; rc=$?; set -e
[ $rc = 1 ] && grep -q "cannot resize the region: $REGION: session record [0-9]* is in use (done), and region.sessions: 8 would not hold it: keep region.sessions at [0-9]* or more, or purge finished sessions first (forgectl purge)" "$T/refused.log" ||
	fail "shrunk sessions: rc $rc $(cat "$T/refused.log")"
sed -i "s/^  sessions: 8$/  sessions: 256/; s/^  session_max_bytes: 4194304$/  session_max_bytes: 65536/" "$T/forge.yaml"
set +e; timeout 10 "$BIN/forged" -c "$T/forge.yaml" > "$T/refused.log" 2>&1; rc=$?; set -e
[ $rc = 1 ] && grep -q "cannot resize the region: $REGION: session record [0-9]* holds a [0-9]*-byte conversation, more than region.session_max_bytes: 65536: keep it at [0-9]* or more" "$T/refused.log" ||
	fail "shrunk session_max_bytes: rc $rc $(cat "$T/refused.log")"
sed -i "s/^  session_max_bytes: 65536$/  session_max_bytes: 4194304/" "$T/forge.yaml"
start_forged   # the refusals changed nothing
while read -r id; do ctl session --json "$id" | jq -c '{state, result, messages}'; done < "$T/ids" > "$T/after2"
cmp -s "$T/before" "$T/after2" || fail "conversations changed by a refused resize"
stop_forged
echo "resize: 64 -> 256 sessions (checkpoint_bytes 896 -> 2048, session_max_bytes 1 -> 4 MiB, max_inflight 256 -> 128) kept all $(wc -l < "$T/ids") conversations byte for byte under the same ids ($last sessions after); shrinking below a session or a conversation refused, naming the setting"
