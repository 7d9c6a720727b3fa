#!/bin/sh
# Runs each fuzz target for SECONDS on a copy of its seed corpus.
# Usage: run.sh SECONDS TARGET...   A crash, leak or sanitizer report fails.
secs=$1; shift
cd "$(dirname "$0")/.." || exit 1
fail=0
for t in "$@"; do
	name=${t#fuzz_}
	work=build/fuzz/corpus-$name
	mkdir -p "$work"
	cp fuzz/corpus/"$name"/* "$work"/ 2>/dev/null
	if build/fuzz/"$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build/fuzz/"$t"- "$work" > build/fuzz/"$t".log 2>&1; then
		echo "fuzz $t: $(grep -o 'Done [0-9]* runs' build/fuzz/"$t".log | grep -o '[0-9]*') runs in $secs s, no finding"
	else
		echo "fuzz $t: FINDING (see build/fuzz/$t.log)" >&2
		grep -E "ERROR|SUMMARY|abort" build/fuzz/"$t".log | head -5 >&2
		fail=1
	fi
done
exit $fail
