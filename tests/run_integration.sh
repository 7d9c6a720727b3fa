#!/bin/sh
# Runs every integration test (tests/integration/*.sh), each in its own
# process with a timeout, and prints a closing "N passed, N failed" line.
cd "$(dirname "$0")/.." || exit 1
pass=0; failn=0
for t in tests/integration/*.sh; do
	name=$(basename "$t" .sh)
	start=$(date +%s)
	if timeout 600 sh "$t" > "build/it-$name.log" 2>&1; then
		pass=$((pass + 1))
		echo "ok   $name ($(( $(date +%s) - start )) s): $(tail -1 "build/it-$name.log")"
	else
		failn=$((failn + 1))
		echo "FAIL $name ($(( $(date +%s) - start )) s)"
		sed 's/^/    /' "build/it-$name.log" | tail -40
	fi
done
echo "integration: $pass passed, $failn failed"
[ "$failn" = 0 ]
