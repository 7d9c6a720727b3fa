/*
 * agents.c — named agents (agents.NAME in the configuration): the records
 * a session of one begins with, and what a worker reads back from them.
 *
 * The definition is copied into the session's log when it is made (the
 * AGENT record, then the agent's system prompt and model parameters), so a
 * session keeps the agent it started with across reloads, crashes and
 * restarts: a worker never looks the agent up in its own configuration.
 */
#include "forge/agents.h"
#include "forge/conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fg_agent_records(const fg_agent_cfg_t *a, const fg_provider_cfg_t *prov,
		     const char *req_params, fg_buf_t *b)
{
	/* (the name, then the prices, first: fg_inspect_agents reads them from
	 * the log's first bytes) */
	json_t *j = json_pack("{s:s}", "name", a->name);
	if (!j)
		return -1;
	if (a->cost_budget > 0 && !(prov && (prov->price_prompt > 0 || prov->price_completion > 0))) {
		json_decref(j);
		return -2;   /* (a cost budget needs the provider's prices) */
	}
	if (prov && (prov->price_prompt > 0 || prov->price_completion > 0))
		json_object_set_new(j, "prices", json_pack("[f,f]", prov->price_prompt,
							  prov->price_completion));
	if (a->tools_set) {
		json_t *t = json_array();
		for (uint32_t i = 0; i < a->ntools; i++)
			json_array_append_new(t, json_string(a->tools[i]));
		json_object_set_new(j, "tools", t);
	}
	if (a->token_budget)
		json_object_set_new(j, "token_budget", json_integer(a->token_budget));
	if (a->deadline_s)
		json_object_set_new(j, "deadline_s", json_integer(a->deadline_s));
	if (a->cost_budget > 0)
		json_object_set_new(j, "cost_budget", json_real(a->cost_budget));
	if (a->napprove) {
		json_t *t = json_array();
		for (uint32_t i = 0; i < a->napprove; i++)
			json_array_append_new(t, json_string(a->approve[i]));
		json_object_set_new(j, "approve", t);
	}
	if (a->approval_timeout_s) {
		json_object_set_new(j, "approval_timeout_s", json_integer(a->approval_timeout_s));
		json_object_set_new(j, "approval_default",
				    json_string(a->approval_default ? "approve" : "reject"));
	}
	static const char *const keys[] = { "planner", "synthesis", "splitter", "reducer" };
	const char *vals[] = { a->planner, a->synthesis, a->splitter, a->reducer };
	for (size_t i = 0; i < 4; i++)
		if (vals[i][0])
			json_object_set_new(j, keys[i], json_string(vals[i]));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -1;
	fg_buf_rec(b, FG_REC_AGENT, s, strlen(s));
	free(s);
	if (a->system[0])
		fg_buf_rec(b, FG_REC_SYSTEM, a->system, strlen(a->system));
	/* the agent's model parameters, under the request's own */
	json_t *p = a->params[0] ? json_loads(a->params, 0, NULL) : json_object();
	json_t *rp = req_params ? json_loads(req_params, 0, NULL) : NULL;
	if (!p)
		p = json_object();
	if (json_is_object(rp))
		json_object_update(p, rp);
	json_decref(rp);
	if (json_object_size(p)) {
		char *ps = json_dumps(p, JSON_COMPACT);
		if (ps)
			fg_buf_rec(b, FG_REC_PARAMS, ps, strlen(ps));
		else
			b->oom = 1;
		free(ps);
	}
	json_decref(p);
	return b->oom || b->overflow ? -1 : 0;
}

int fg_agent_parse(fg_str_t rec, fg_agent_rt_t *rt)
{
	memset(rt, 0, sizeof(*rt));
	if (!rec.n)
		return 0;
	rt->j = json_loadb(rec.p, rec.n, 0, NULL);
	if (!json_is_object(rt->j)) {
		json_decref(rt->j);
		rt->j = NULL;
		return -1;
	}
	rt->name = json_string_value(json_object_get(rt->j, "name"));
	rt->tools = json_object_get(rt->j, "tools");
	if (rt->tools && !json_is_array(rt->tools)) {   /* (fails closed) */
		json_decref(rt->j);
		rt->j = NULL;
		return -1;
	}
	json_t *sp = json_object_get(rt->j, "spent");
	rt->spent_prompt = (uint64_t)json_integer_value(json_array_get(sp, 0));
	rt->spent_completion = (uint64_t)json_integer_value(json_array_get(sp, 1));
	json_int_t tb = json_integer_value(json_object_get(rt->j, "token_budget"));
	json_int_t dl = json_integer_value(json_object_get(rt->j, "deadline_s"));
	rt->token_budget = tb > 0 && tb <= 0xffffffffll ? (uint64_t)tb : 0;
	rt->deadline_s = dl > 0 && dl <= 0xffffffffll ? (uint32_t)dl : 0;
	rt->cost_budget = json_number_value(json_object_get(rt->j, "cost_budget"));
	json_t *pr = json_object_get(rt->j, "prices");
	rt->price_prompt = json_number_value(json_array_get(pr, 0));
	rt->price_completion = json_number_value(json_array_get(pr, 1));
	rt->approve = json_object_get(rt->j, "approve");
	json_int_t at = json_integer_value(json_object_get(rt->j, "approval_timeout_s"));
	rt->approval_timeout_s = at > 0 && at <= 0xffffffffll ? (uint32_t)at : 0;
	const char *ad = json_string_value(json_object_get(rt->j, "approval_default"));
	rt->approval_default = ad && !strcmp(ad, "approve");
	rt->planner = json_string_value(json_object_get(rt->j, "planner"));
	rt->synthesis = json_string_value(json_object_get(rt->j, "synthesis"));
	rt->splitter = json_string_value(json_object_get(rt->j, "splitter"));
	rt->reducer = json_string_value(json_object_get(rt->j, "reducer"));
	if (!rt->name || (rt->approve && !json_is_array(rt->approve))) {
		json_decref(rt->j);
		rt->j = NULL;
		return -1;
	}
	return 1;
}

void fg_agent_free(fg_agent_rt_t *rt)
{
	json_decref(rt->j);
	rt->j = NULL;
}

/* (an agent has ask_human only when its tools name it) */
static int names(const json_t *list, const char *name, size_t n)
{
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t) {
		const char *s = json_string_value(t);
		if (s && strlen(s) == n && !memcmp(s, name, n))
			return 1;
		/* SERVER__*: every tool of an MCP server */
		size_t l = s ? strlen(s) : 0;
		if (l >= 3 && !strcmp(s + l - 3, "__*") && n > l - 1 && !memcmp(s, name, l - 1))
			return 1;
	}
	return 0;
}

int fg_agent_allows(const fg_agent_rt_t *rt, const char *name, size_t n)
{
	return !rt->j || !rt->tools || names(rt->tools, name, n);
}

int fg_agent_approval(const fg_agent_rt_t *rt, const char *name, size_t n)
{
	if (!rt || !rt->j)
		return FG_APPROVAL_NONE;
	if (n == sizeof(FG_ASK_HUMAN) - 1 && !memcmp(name, FG_ASK_HUMAN, n))
		return rt->tools && names(rt->tools, name, n) ? FG_APPROVAL_ASK : FG_APPROVAL_NONE;
	return rt->approve && names(rt->approve, name, n) ? FG_APPROVAL_TOOL : FG_APPROVAL_NONE;
}

char *fg_agent_tools_json(const fg_agent_rt_t *rt, const json_t *all)
{
	json_t *a = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(all, i, t) {
		const char *n = json_string_value(json_object_get(json_object_get(t, "function"),
								  "name"));
		if (n && fg_agent_allows(rt, n, strlen(n)))
			json_array_append(a, t);
	}
	if (fg_agent_approval(rt, FG_ASK_HUMAN, sizeof(FG_ASK_HUMAN) - 1) == FG_APPROVAL_ASK)
		json_array_append_new(a, json_pack("{s:s,s:{s:s,s:s,s:{s:s,s:{s:{s:s,s:s}},s:[s]}}}",
			"type", "function", "function", "name", FG_ASK_HUMAN, "description",
			"Ask a person a question and wait for the answer (minutes or hours: "
			"use it when only a person can decide).", "parameters", "type", "object",
			"properties", "question", "type", "string", "description",
			"The question, complete enough to answer without the conversation",
			"required", "question"));
	char *s = json_array_size(a) ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

double fg_agent_cost(const fg_agent_rt_t *rt, uint64_t prompt, uint64_t completion)
{
	return ((double)prompt * rt->price_prompt + (double)completion * rt->price_completion) / 1e6;
}
