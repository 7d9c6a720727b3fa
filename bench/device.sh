#!/bin/sh
# The scaling figures of bench/README.md, in one go, on a machine with
# many cores and none of forge's packages (the lent 16-core device):
#   sh bench/devkit.sh                       (here: build/devkit)
#   sh bench/device.sh [OLD-DIR]             (there, from the repository)
# Prints lscpu's model and cores, then bench/scaling.sh's table
# (workers, sessions/s, ratio to 1 worker, page faults, CPU µs, user µs
# and system µs per session) for 2-step ReAct sessions (scripted
# provider, 2M) and synthetic 2-step sessions (4M) at 1, 2, 4, 8 and 16
# workers, median of 3, the region on tmpfs as config/forge.yaml has it;
# then ReAct at 1 and 16 workers with the region on the disk (/tmp), as
# region.durability batch or sync need.  OLD-DIR, when given, holds
# another build's forged and forgectl (libraries taken from build/devkit),
# measured at 1 and 16 workers in the same run: a before/after on the
# same machine.  About 4 minutes on the device (2026-11-28).
set -eu
cd "$(dirname "$0")/.."
K=$PWD/build/devkit
export LOADER=$K/ld-linux-x86-64.so.2
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\))' || true
echo "kernel $(uname -r)"
df -T /dev/shm /tmp
react() { sh bench/scaling.sh 2000000 3 "$1" --workflow react --prompt "what is 2+2?" --provider scripted; }
synth() { sh bench/scaling.sh 4000000 3 "$1" --workflow synthetic --steps 2; }
echo "== ReAct 2M, region on tmpfs"
BIN=$K react "1 2 4 8 16"
echo "== synthetic 4M, region on tmpfs"
BIN=$K synth "1 2 4 8 16"
echo "== ReAct 2M, region on disk (/tmp)"
BIN=$K REGION_DIR=/tmp react "1 16"
if [ -n "${1:-}" ]; then
	for l in "$K"/*.so*; do [ -e "$1/$(basename "$l")" ] || cp "$l" "$1/"; done
	O=$(cd "$1" && pwd)
	echo "== $1: ReAct 2M, tmpfs"
	BIN=$O react "1 16"
	echo "== $1: synthetic 4M, tmpfs"
	BIN=$O synth "1 16"
fi
