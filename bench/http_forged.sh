# bench/http_forged.sh — sourced by the benchmarks that drive forged's HTTP
# API with the in-process scripted provider (gateway.sh, chat_history.sh,
# durability.sh).  Needs B (the project root), T (a scratch folder) and PORT.
#
# http_forged [REGION_LINES]: writes $T/forge.yaml (a 400,000-session region
# in $T, CHECKPOINT_BYTES (512) inline log bytes, the scripted provider "s", the API on PORT;
# REGION_LINES go under region:, two spaces in), starts forged on a new
# region and returns once it is ready; its pid in FORGED.
http_forged() {
	rm -f "$T/region"
	cat > "$T/forge.yaml" <<YAML
region:
  path: $T/region
  sessions: 400000
  checkpoint_bytes: ${CHECKPOINT_BYTES:-512}
${1:-}
log:
  level: warn
http:
  listen: 127.0.0.1:$PORT
llm:
  default: s
  providers:
    s:
      type: scripted
YAML
	"$B/build/forged" -c "$T/forge.yaml" 2>>"$T/log" &
	FORGED=$!
	until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do sleep 0.05; done
}

# p99 of a wrk --latency report on stdin, in ms
p99() { awk '/^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) sub(/ms/, "", v); else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }'; }
