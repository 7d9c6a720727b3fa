#!/bin/sh
# Named agents (agents.NAME in the YAML) and their budgets.
#   1  a bad agent is refused at --check-config with FILE:LINE:COL, the key
#      and why (exit 78): an unknown provider or tool, a workflow's name,
#      system and system_file both, a bad temperature, a missing file
#   2  a session of an agent (POST /v1/sessions {"agent"}, forgectl submit
#      --agent, chat completions model forge/AGENT): its system prompt
#      (from a file), model parameters and tools reach the model as
#      configured (mock-llm --log-requests), GET shows the agent, GET
#      /v1/models lists it, forgectl stats and /metrics count its sessions
#      and tokens
#   3  an agent without the calculator: the model's call of it is refused
#      to the model, not run
#   4  a token budget and a cost budget (at the provider's prices): the
#      session ends failed, naming what it spent and the setting; the cost
#      in forgectl stats and /metrics
#   5  reload: a running session keeps the definition it began with; the
#      next one gets the new one
#   6  a plan_execute agent: its planner and synthesis prompts, its system
#      prompt to every step
. "$(dirname "$0")/../lib.sh"
PORT=$((20000 + $$ % 10000))   # below the ephemeral range (32768+)
printf 'You are the support agent of Example Corp.\nBe brief.\n' > "$T/support.md"
echo "A prompt that goes away." > "$T/gone.md"
agents_yaml() {   # agents_yaml SYSTEM-OF-SLOW
	cat >> "$T/forge.yaml" <<YAML
agents:
  support:
    workflow: react
    system_file: $T/support.md
    model:
      temperature: 0.2
      max_tokens: 300
    tools: [calculator]
    max_steps: 4
  notools:
    system: "You have no tools."
    tools: []
  filed:
    system_file: $T/gone.md
  tight:
    system: "Short answers."
    token_budget: 20
  pricey:
    provider: priced
    cost_budget: 0.00001
  slow:
    provider: slowmock
    system: "$1"
  planner:
    workflow: plan_execute
    system: "Plan carefully."
    planner: "forge:plan (the planner agent's own planner prompt)"
    synthesis: "forge:reduce (the planner agent's own synthesis prompt)"
YAML
}
full_config() {   # full_config SYSTEM-OF-SLOW: the test's whole configuration
	write_config
	llm_yaml "$PORT"
	cat >> "$T/forge.yaml" <<YAML
    slowmock:
      base_url: http://127.0.0.1:$((PORT + 1))/v1
    priced:
      base_url: http://127.0.0.1:$PORT/v1
      price_prompt_per_mtok: 1000
      price_completion_per_mtok: 2000
YAML
	agents_yaml "$1"
}
full_config "first definition"
mock_on "$PORT" --log-requests "$T/requests"
mock_on "$((PORT + 1))" --latency-ms 1500

# ---- 1. refused with where and why ------------------------------------------------
bad() {   # bad YAML EXPECTED: --check-config says EXPECTED ("@N:" is the
	  # Nth line of YAML), exits 78
	write_config
	llm_yaml "$PORT"
	base=$(wc -l < "$T/forge.yaml")
	printf '%s\n' "$1" >> "$T/forge.yaml"
	n=${2#@}
	n=${n%%:*}
	want="$T/forge.yaml:$((base + n)):${2#@*:}"
	set +e; out=$("$BIN/forged" --check-config -c "$T/forge.yaml" 2>&1); rc=$?; set -e
	[ $rc = 78 ] && [ "$out" = "$want" ] || fail "1: expected exit 78 and <$want>, got $rc: <$out>"
}
bad "agents:
  a:
    provider: nope" "@3:15: agents.a.provider: names provider \"nope\", which is not in llm.providers"
bad "agents:
  a:
    tools: [calculator, shell]" "@3:12: agents.a.tools: \"shell\" is not a configured tool (calculator; file_read, shell and http_get once tools.* enables them; tools.external.NAME; SERVER__TOOL or SERVER__* of tools.mcp.SERVER; ask_human)"
bad "agents:
  react:
    system: x" "@2:3: agents.react: \"react\" names a workflow (chat completions' model forge/react): give the agent another name"
bad "agents:
  a:
    system: x
    system_file: /etc/hostname" "@4:5: agents.a.system_file: give system or system_file, not both"
bad "agents:
  a:
    model:
      temperature: 3" "@4:20: agents.a.model.temperature: \"3\" is not a number in [0, 2]"
bad "agents:
  a:
    system_file: $T/none.md" "@3:18: agents.a.system_file: cannot read $T/none.md: No such file or directory"
bad "agents:
  a:
    cost_budget: 0.5" "@3:18: agents.a.cost_budget: provider mock has no prices (llm.providers.mock.price_prompt_per_mtok, price_completion_per_mtok)"
bad "agents:
  a:
    workflow: react
    planner: x" "@3:5: agents.a: planner and synthesis are prompts of workflow: plan_execute"
echo "1: bad agents refused with FILE:LINE:COL, the key and why (exit 78)"

full_config "first definition"
start_forged
state_is() { [ "$(ctl session --json "$1" | jq -r .state)" = "$2" ]; }
ended() { s=$(ctl session --json "$1" | jq -r .state); [ "$s" = done ] || [ "$s" = failed ]; }

# ---- 2. what reaches the model ----------------------------------------------------
: > "$T/requests"
id=$(curl -s "$API/v1/sessions" -d '{"agent":"support","prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 state_is "$id" done || fail "2: support session: $(ctl session --json "$id" | jq -c '{state,error}')"
[ "$(ctl session --json "$id" | jq -r .agent)" = support ] || fail "2: GET does not name the agent"
[ "$(ctl session --json "$id" | jq -r '.messages[0] | "\(.role): \(.content)"')" = "system: $(cat "$T/support.md")" ] ||
	fail "2: the system prompt: $(ctl session --json "$id" | jq -c '.messages[0]')"
got=$(jq -c '[.temperature, .max_tokens, [.tools[].function.name]]' "$T/requests" | sort -u)
[ "$got" = '[0.2,300,["calculator"]]' ] || fail "2: what the model got: $got"
head -1 "$T/requests" | jq -j '.messages[0].content' | cmp -s - "$T/support.md" ||
	fail "2: the system prompt sent: $(head -1 "$T/requests" | jq -c '.messages[0]')"
sid=$(ctl -c "$T/forge.yaml" submit --agent support --prompt "what is 3+3?") || fail "2: forgectl submit --agent"
until_true 10 state_is "$sid" done || fail "2: forgectl's session"
[ "$(ctl session --json "$sid" | jq -r .agent)" = support ] || fail "2: forgectl's session has no agent"
code=$(curl -s -o "$T/chat" -w '%{http_code}' "$API/v1/chat/completions" -d '{"model":"forge/support","messages":[{"role":"user","content":"what is 2+2?"}],"temperature":0.7}')
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].message.content' "$T/chat")" = "The answer is 4." ] || fail "2: chat: $code $(cat "$T/chat")"
[ "$(tail -1 "$T/requests" | jq -c '[.temperature, .max_tokens]')" = "[0.7,300]" ] ||
	fail "2: the request's temperature over the agent's: $(tail -1 "$T/requests" | jq -c '[.temperature, .max_tokens]')"
curl -s "$API/v1/models" | jq -e '[.data[].id] | index("forge/support") and index("forge/planner")' > /dev/null ||
	fail "2: /v1/models: $(curl -s "$API/v1/models" | jq -c '[.data[].id]')"
code=$(curl -s -o "$T/out" -w '%{http_code}' "$API/v1/sessions" -d '{"agent":"nobody","prompt":"x"}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/out")" = "agent \"nobody\" is not configured (agents in $T/forge.yaml)" ] ||
	fail "2: unknown agent: $code $(cat "$T/out")"
# forgectl reads an agent's system_file only to submit a session of it: a
# file it cannot read breaks that command, not every other one
rm "$T/gone.md"
ctl -c "$T/forge.yaml" stats > /dev/null || fail "2: forgectl stats with an unreadable system_file"
set +e; out=$(ctl -c "$T/forge.yaml" submit --agent filed --prompt x 2>&1); rc=$?; set -e
[ $rc = 1 ] && [ "$out" = "forgectl: submit: agents.filed.system_file: cannot read $T/gone.md: No such file or directory" ] ||
	fail "2: submit --agent filed: $rc $out"
echo "A prompt that came back." > "$T/gone.md"   # (the reload in 5 reads it)
# tokens per agent: forgectl stats and /metrics
ctl stats --json | jq -e '.agents.support | .sessions == 3 and .running == 0 and .prompt_tokens > 0 and .completion_tokens > 0' > /dev/null ||
	fail "2: forgectl stats: $(ctl stats --json | jq -c .agents)"
pt=$(ctl stats --json | jq .agents.support.prompt_tokens)
curl -s "$API/metrics" | grep -qx "forge_agent_tokens{agent=\"support\",kind=\"prompt\"} $pt" &&
	curl -s "$API/metrics" | grep -qx 'forge_agent_sessions{agent="support",state="all"} 3' ||
	fail "2: /metrics: $(curl -s "$API/metrics" | grep forge_agent)"
ctl stats | grep -q "^agent      support: 3 sessions (0 running), tokens $pt prompt + [0-9]* completion$" ||
	fail "2: forgectl stats text: $(ctl stats | grep agent)"
echo "2: an agent's system prompt (from its file), model parameters and tools reach the model (API, forgectl --agent, chat model forge/support); its sessions and tokens in forgectl stats and /metrics"

# ---- 3. a tool the agent does not have ----------------------------------------------
: > "$T/requests"
id=$(curl -s "$API/v1/sessions" -d '{"agent":"notools","prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 state_is "$id" done || fail "3: notools: $(ctl session --json "$id" | jq -c '{state,error}')"
[ "$(head -1 "$T/requests" | jq -c '.tools')" = null ] || fail "3: tools offered: $(head -1 "$T/requests" | jq -c .tools)"
[ "$(ctl session --json "$id" | jq -r '[.messages[] | select(.role == "tool")][0].content')" = 'error: tool "calculator" is not one of agent notools'"'"'s tools' ] ||
	fail "3: the refused call: $(ctl session --json "$id" | jq -c .messages)"
# a fork of it is still the agent's: the same refusal
f=$(ctl fork "$id" --at 2) || fail "3: fork"
until_true 10 state_is "$f" done || fail "3: the fork: $(ctl session --json "$f" | jq -c '{state,error}')"
[ "$(ctl session --json "$f" | jq -r .agent)" = notools ] &&
	[ "$(ctl session --json "$f" | jq -r '[.messages[] | select(.role == "tool")][0].content')" = 'error: tool "calculator" is not one of agent notools'"'"'s tools' ] ||
	fail "3: the fork lost the agent: $(ctl session --json "$f" | jq -c '{agent, messages}')"
echo "3: a call of a tool the agent does not have is refused to the model, not run (a fork of its session too)"

# ---- 4. token budget ------------------------------------------------------------------
id=$(curl -s "$API/v1/sessions" -d '{"agent":"tight","prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 ended "$id" || fail "4: tight did not end"
err=$(ctl session --json "$id" | jq -r .error)
state_is "$id" failed && echo "$err" | grep -qx 'token budget spent: [0-9]* of 20 tokens ([0-9]* prompt, [0-9]* completion; agents.tight.token_budget)' ||
	fail "4: tight: $(ctl session --json "$id" | jq -c '{state,error,usage}')"
# a fork of it does not start the budget afresh: it fails before any call
f=$(ctl fork "$id" "and again?") || fail "4: fork of tight"
until_true 10 ended "$f" || fail "4: the fork did not end"
state_is "$f" failed && [ "$(ctl session --json "$f" | jq -r .usage.prompt_tokens)" = 0 ] &&
	ctl session --json "$f" | jq -r .error | grep -qx 'token budget spent: [0-9]* of 20 tokens .*' ||
	fail "4: the fork of tight: $(ctl session --json "$f" | jq -c '{state,error,usage}')"
# a cost budget cannot be dodged by naming a provider without prices
code=$(curl -s -o "$T/out" -w '%{http_code}' "$API/v1/sessions" -d '{"agent":"pricey","model":"mock","prompt":"x"}')
[ "$code" = 400 ] && [ "$(jq -r .error.message "$T/out")" = "agent pricey has a cost_budget: provider mock has no prices (llm.providers.mock.price_prompt_per_mtok, price_completion_per_mtok); leave the provider to the agent" ] ||
	fail "4: pricey on mock: $code $(cat "$T/out")"
id=$(curl -s "$API/v1/sessions" -d '{"agent":"pricey","prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 ended "$id" || fail "4: pricey did not end"
err2=$(ctl session --json "$id" | jq -r .error)
state_is "$id" failed && echo "$err2" | grep -qx 'cost budget spent: \$0\.0[0-9]* of \$0\.000010 ([0-9]* prompt, [0-9]* completion tokens at the provider'"'"'s prices; agents.pricey.cost_budget)' ||
	fail "4: pricey: $(ctl session --json "$id" | jq -c '{state,error,usage}')"
ctl stats --json | jq -e '.agents.pricey.cost_usd > 0 and .agents.tight.cost_usd == 0' > /dev/null ||
	fail "4: cost in stats: $(ctl stats --json | jq -c .agents)"
curl -s "$API/metrics" | grep -q '^forge_agent_cost_usd{agent="pricey"} 0\.0[0-9]*[1-9]' ||
	fail "4: cost in /metrics: $(curl -s "$API/metrics" | grep cost)"
echo "4: a token budget ends the session failed: $err; a cost budget too: $err2 (cost in forgectl stats and /metrics)"

# ---- 5. reload keeps a running session's definition ---------------------------------------
r1=$(curl -s "$API/v1/sessions" -d '{"agent":"slow","prompt":"what is 2+2?"}' | jq -r .id)
until_true 10 state_is "$r1" running || fail "5: slow not running"
full_config "second definition"
gw=$(pgrep -P "$FORGED_PID" forge-gateway)
ctl -c "$T/forge.yaml" reload > "$T/reload.out" 2>&1 || fail "5: reload: $(cat "$T/reload.out")"
# (the gateway restarts last, with the new agents: wait for it)
gw_new() { g=$(pgrep -P "$FORGED_PID" forge-gateway) && [ "$g" != "$gw" ] && curl -sf "$API/healthz" > /dev/null; }
until_true 20 gw_new || fail "5: the gateway did not restart for the reload"
r2=$(curl -s "$API/v1/sessions" -d '{"agent":"slow","prompt":"what is 2+2?"}' | jq -r .id)
until_true 20 state_is "$r1" done || fail "5: r1: $(ctl session --json "$r1" | jq -c '{state,error}')"
until_true 20 state_is "$r2" done || fail "5: r2: $(ctl session --json "$r2" | jq -c '{state,error}')"
[ "$(ctl session --json "$r1" | jq -r '.messages[0].content')" = "first definition" ] &&
	[ "$(ctl session --json "$r2" | jq -r '.messages[0].content')" = "second definition" ] ||
	fail "5: r1 $(ctl session --json "$r1" | jq -r '.messages[0].content'), r2 $(ctl session --json "$r2" | jq -r '.messages[0].content')"
echo "5: a reload changed agent slow: the session running kept its definition, the next one got the new"

# ---- 6. a plan_execute agent ----------------------------------------------------------------
: > "$T/requests"
id=$(curl -s "$API/v1/sessions" -d '{"agent":"planner","prompt":"what is 2+2?"}' | jq -r .id)
until_true 20 state_is "$id" done || fail "6: planner: $(ctl session --json "$id" | jq -c '{state,error}')"
[ "$(jq -r 'select(.messages[0].content | startswith("forge:plan")) | .messages[0].content' "$T/requests")" = "forge:plan (the planner agent's own planner prompt)" ] &&
	[ "$(jq -r 'select(.messages[0].content | startswith("forge:reduce")) | .messages[0].content' "$T/requests")" = "forge:reduce (the planner agent's own synthesis prompt)" ] ||
	fail "6: the planner's prompts: $(jq -c '[.messages[].content]' "$T/requests")"
[ "$(jq -c '[.messages[] | select(.role == "system") | .content] | index("Plan carefully.") != null' "$T/requests" | sort -u)" = true ] ||
	fail "6: the system prompt not in every call: $(jq -c '[.messages[] | select(.role == "system") | .content]' "$T/requests")"
echo "6: a plan_execute agent: its planner and synthesis prompts, its system prompt in every call (plan, steps, synthesis)"
ctl check > "$T/check.out" || fail "check: $(cat "$T/check.out")"
stop_forged
echo "agents: named agents from YAML (prompts, model parameters, tools, limits), refused with where and why, kept across a reload, budgets end sessions clearly"
