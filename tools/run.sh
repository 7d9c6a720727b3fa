#!/bin/sh
# make run: the bundled mock LLM on 127.0.0.1:8089 (unless something already
# answers there) and forged in the foreground on config/forge.yaml.
# Ctrl-C drains forged (sessions resume at the next start) and stops the mock.
cd "$(dirname "$0")/.." || exit 1
mock=
if ! curl -sf http://127.0.0.1:8089/healthz >/dev/null 2>&1; then
	build/mock-llm --port 8089 &
	mock=$!
fi
trap '[ -n "$mock" ] && kill $mock 2>/dev/null' EXIT INT TERM
echo "forge: running forged -c config/forge.yaml; in another shell try:" >&2
echo "  build/forgectl -c config/forge.yaml submit --workflow react --prompt 'what is 2+2?'" >&2
build/forged -c config/forge.yaml
