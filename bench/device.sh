#!/bin/sh
# The scaling figures of bench/README.md, in one go, on a machine with
# many cores and none of forge's packages (the lent 16-core device):
#   sh bench/devkit.sh                       (here: build/devkit)
#   sh bench/device.sh [OLD-DIR]             (there, from the repository)
# Prints lscpu's model and cores, a control (how far a CPU-bound loop
# with nothing shared scales: the ceiling here), then bench/scaling.sh's table
# (workers, sessions/s, ratio to 1 worker, page faults, CPU µs, user µs
# and system µs per session) for 2-step ReAct sessions (scripted
# provider, 2M) and synthetic 2-step sessions (4M) at 1, 2, 4, 8 and 16
# workers, median of 3, the region on tmpfs as config/forge.yaml has it;
# then ReAct at 1 and 16 workers with the region on the disk (/tmp), as
# region.durability batch or sync need.  OLD-DIR, when given, holds
# another build's forged and forgectl (libraries taken from build/devkit),
# measured at 1 and 16 workers in the same run: a before/after on the
# same machine.  Then intake at 16 workers with 1, 4 and 8 submitters.
# About 6 minutes on the device (2026-11-28).
set -eu
cd "$(dirname "$0")/.."
K=$PWD/build/devkit
export LOADER=$K/ld-linux-x86-64.so.2
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\))' || true
echo "kernel $(uname -r)"
df -T /dev/shm /tmp
# The control: the most any program scales here.  A CPU-bound loop with
# no shared memory (awk), 1 copy, then 16 at once: 16 x the one copy's
# time over the 16 copies' wall time.  All-core clocks lower than one
# core's, or cores shared with other guests, show here first.
ctl1() { awk 'BEGIN { for (i = 0; i < 4e7; i++) s += i; print s > "/dev/null" }'; }
now() { date +%s.%N; }
t0=$(now); ctl1; t1=$(now)
for k in $(seq 16); do ctl1 & done; wait; t2=$(now)
echo "control: 1 copy $(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}') s, 16 at once" \
	"$(echo "$t1 $t2" | awk '{printf "%.2f", $2 - $1}') s: 16 copies run" \
	"$(echo "$t0 $t1 $t2" | awk '{printf "%.2f", 16 * ($2 - $1) / ($3 - $2)}')x one"
react() { sh bench/scaling.sh 2000000 3 "$1" --workflow react --prompt "what is 2+2?" --provider scripted; }
synth() { sh bench/scaling.sh 4000000 3 "$1" --workflow synthetic --steps 2; }
echo "== ReAct 2M, region on tmpfs"
BIN=$K react "1 2 4 8 16"
echo "== synthetic 4M, region on tmpfs"
BIN=$K synth "1 2 4 8 16"
echo "== ReAct 2M, region on disk (/tmp)"
BIN=$K REGION_DIR=/tmp react "1 16"
# A candidate for what grows a session's user time with the workers: each
# worker's working set (up to worker.max_inflight sessions in flight,
# 1024 by default, their records, logs and worker state) against the L3
# all workers share.  With 64 in flight it is a sixteenth of that.
echo "== ReAct 2M, tmpfs, worker.max_inflight 64"
BIN=$K MAX_INFLIGHT=64 react "1 16"
# Intake at 16 workers: one forgectl submit queues about 1.4M sessions/s,
# 16 workers take 4.66M/s (2026-11-27); --jobs J submits with J processes.
# Submit-to-done against the queued-before-start figure above.
echo "== ReAct 2M, tmpfs, 16 workers, submitted while they run: forgectl submit --jobs 1, 4, 8"
for j in 1 4 8; do echo "jobs $j: $(BIN=$K INTAKE=$j react 16)"; done
if [ -n "${1:-}" ]; then
	for l in "$K"/*.so*; do [ -e "$1/$(basename "$l")" ] || cp "$l" "$1/"; done
	O=$(cd "$1" && pwd)
	echo "== $1: ReAct 2M, tmpfs"
	BIN=$O react "1 16"
	echo "== $1: synthetic 4M, tmpfs"
	BIN=$O synth "1 16"
fi
