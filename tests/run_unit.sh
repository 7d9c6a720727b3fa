#!/bin/sh
# Runs each unit-test binary in its own process with a timeout.
# Usage: run_unit.sh DIR TEST...
# UNIT_RUNNER, when set, prefixes each run (make unit-aarch64: qemu-aarch64).
dir=$1; shift
fail=0
for t in "$@"; do
	if ! timeout 300 ${UNIT_RUNNER:-} "$dir/$t"; then
		echo "unit test $t FAILED" >&2
		fail=1
	fi
done
exit $fail
