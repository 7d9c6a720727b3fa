/* gwreq.c — see include/forge/gwreq.h. */
#include "forge/gwreq.h"
#include "forge/agents.h"
#include "forge/conv.h"
#include "forge/views.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread int json_oom;

void *fg_gwreq_json_malloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		json_oom = 1;
	return p;
}

static int bad(fg_gwreq_t *q, unsigned status, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bad(fg_gwreq_t *q, unsigned status, const char *param, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	q->status = status;
	q->param = param;
	return -1;
}

/* Parses the body into q->root, an object; -1 (q filled in) if it is not. */
static int parse(const char *body, size_t n, fg_gwreq_t *q)
{
	json_error_t je;
	memset(q, 0, sizeof(*q));
	json_oom = 0;
	q->root = json_loadb(body ? body : "", n, 0, &je);
	if (!q->root && json_oom)
		return bad(q, 503, NULL, "out of memory, try again");
	if (!q->root)
		return bad(q, 400, NULL, "body is not a JSON object: %s (line %d, column %d)",
			   je.text, je.line, je.column);
	if (!json_is_object(q->root))
		return bad(q, 400, NULL, "body is not a JSON object: not an object (line 1, "
			   "column 1)");
	return 0;
}

/*
 * A field forge does not know is refused, not ignored: a misspelt
 * max_steps, "provider" for "model" or "rol" for "role" would otherwise
 * run what the client did not ask for.  known: NULL-terminated; the error
 * lists them, then hint.
 */
static int only(fg_gwreq_t *q, const char *const *known, const char *hint)
{
	const char *key;
	json_t *x;
	json_object_foreach(q->root, key, x) {
		size_t k = 0;
		while (known[k] && strcmp(key, known[k]))
			k++;
		if (known[k])
			continue;
		char list[160];
		size_t o = 0;
		for (k = 0; known[k] && o < sizeof(list); k++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", known[k]);
		snprintf(q->param_buf, sizeof(q->param_buf), "%.40s", key);
		return bad(q, 400, q->param_buf, "unknown field \"%.40s\" (%s%s)", key,
			   known[0] ? list : "this request takes no body", hint);
	}
	return 0;
}

static uint32_t provider_index(const fg_config_t *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->nproviders; i++)
		if (!strcmp(cfg->providers[i].name, name))
			return i;
	return UINT32_MAX;
}

/* The string value of x when it is one with no NUL inside; else NULL. */
static const char *text(json_t *x)
{
	const char *s = json_string_value(x);
	return s && strlen(s) == json_string_length(x) ? s : NULL;
}

static const char *wf_name(uint32_t wf)
{
	return wf == FG_WF_MAP_REDUCE ? "map_reduce" : wf == FG_WF_PLAN_EXECUTE ? "plan_execute" :
	       "react";
}

/*
 * A session of agent a: its records (AGENT, its system prompt, its model
 * parameters under the request's PARAMS record, if q->recs begins with
 * one), then the request's own: a react chat's history, else its system
 * prompt and task.  The agent's max_steps too.
 */
static int agent_recs(fg_gwreq_t *q, const fg_config_t *cfg, const fg_agent_cfg_t *a)
{
	fg_submit_t *p = &q->sub;
	fg_buf_t *b = &q->recs, nb = { NULL, 0, 0, 0, 0xffffffffu, 1, 0 };
	uint32_t off = 0;
	fg_rec_t r;
	char *rp = NULL;
	if (b->n && b->p[0] == FG_REC_PARAMS && fg_rec_next(b->p, b->n, &off, &r) == 1 &&
	    !(rp = strndup((const char *)r.p, r.n)))
		return bad(q, 503, NULL, "out of memory, try again");
	const fg_provider_cfg_t *prov = p->arg < cfg->nproviders ? &cfg->providers[p->arg] : NULL;
	int e = fg_agent_records(a, prov, rp, &nb);
	free(rp);
	if (e == -2) {
		free(nb.p);
		return bad(q, 400, "model", "agent %s has a cost_budget: provider %s has no prices "
			   "(llm.providers.%s.price_prompt_per_mtok, price_completion_per_mtok); "
			   "leave the provider to the agent", a->name, prov ? prov->name : "?",
			   prov ? prov->name : "?");
	}
	if (p->workflow == FG_WF_REACT && p->recs) {
		if (nb.n + (uint64_t)(b->n - off) > UINT32_MAX)
			nb.overflow = 1;
		else
			for (uint32_t o = off; fg_rec_next(b->p, b->n, &o, &r) == 1;)
				fg_buf_rec(&nb, r.type, r.p, r.n);   /* the history */
	} else {
		if (p->system)
			fg_buf_rec(&nb, FG_REC_SYSTEM, p->system, strlen(p->system));
		fg_buf_rec(&nb, FG_REC_USER, p->prompt, strlen(p->prompt));
	}
	if (e < 0 || nb.oom || nb.overflow) {
		free(nb.p);
		return bad(q, 503, NULL, "out of memory, try again");
	}
	free(b->p);
	*b = nb;
	p->recs = b->p;
	p->recs_n = b->n;
	if (a->max_steps)
		p->steps = a->max_steps;
	return 0;
}

/* One session from the object q->root (POST /v1/sessions, or an item of a
 * batch). */
static int session_obj(const fg_config_t *cfg, fg_gwreq_t *q)
{
	json_t *j = q->root, *x;
	fg_submit_t *p = &q->sub;
	const char *wf = "react", *model = cfg->llm_default;
	const fg_agent_cfg_t *a = NULL;
	static const char *const known[] = { "prompt", "agent", "workflow", "system", "model",
					      "max_steps", NULL };
	if (only(q, known, "; the provider is named by model") < 0)
		return -1;
	if ((x = json_object_get(j, "agent"))) {
		const char *an = json_string_value(x);
		if (!an)
			return bad(q, 400, "agent", "agent must be a string naming one of agents");
		if (!(a = fg_config_agent(cfg, an, strlen(an))))
			return bad(q, 400, "agent", "agent \"%.64s\" is not configured (agents in %s)",
				   an, cfg->file);
		if ((x = json_object_get(j, "workflow")) && (!json_is_string(x) ||
		    strcmp(json_string_value(x), wf_name(a->workflow))))
			return bad(q, 400, "workflow", "agent %s runs workflow %s: leave workflow out",
				   a->name, wf_name(a->workflow));
		wf = wf_name(a->workflow);
		if (a->provider[0])
			model = a->provider;
	} else if ((x = json_object_get(j, "workflow")) && !(wf = json_string_value(x)))
		return bad(q, 400, "workflow", "workflow must be a string");
	if (!strcmp(wf, "react"))
		p->workflow = FG_WF_REACT;
	else if (!strcmp(wf, "plan_execute"))
		p->workflow = FG_WF_PLAN_EXECUTE;
	else if (!strcmp(wf, "map_reduce"))
		p->workflow = FG_WF_MAP_REDUCE;
	else
		return bad(q, 400, "workflow", "workflow \"%.100s\" is not react, plan_execute or "
			   "map_reduce", wf);
	x = json_object_get(j, "prompt");
	if (!json_string_value(x) || !*json_string_value(x))
		return bad(q, 400, "prompt", "prompt must be a non-empty string");
	if (!(p->prompt = text(x)))
		return bad(q, 400, "prompt", "prompt must not contain NUL characters");
	if ((x = json_object_get(j, "system")) && !json_is_string(x))
		return bad(q, 400, "system", "system must be a string");
	if (x && !(p->system = text(x)))
		return bad(q, 400, "system", "system must not contain NUL characters");
	if ((x = json_object_get(j, "model")) && !(model = json_string_value(x)))
		return bad(q, 400, "model", "model must be a string naming a provider");
	if ((p->arg = provider_index(cfg, model)) == UINT32_MAX)
		return bad(q, 400, "model", "model \"%.100s\" is not a configured provider", model);
	p->steps = p->workflow == FG_WF_REACT ? cfg->max_steps : 8;
	if ((x = json_object_get(j, "max_steps"))) {
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 1000)
			return bad(q, 400, "max_steps", "max_steps must be an integer in [1, 1000]");
		p->steps = (uint32_t)json_integer_value(x);
		if (p->workflow != FG_WF_REACT && p->steps > FG_MAX_PARTS)
			return bad(q, 400, "max_steps", "max_steps of a map_reduce or plan_execute "
				   "session (its most parts) must be in [1, %u]", FG_MAX_PARTS);
	}
	if (a) {
		uint32_t steps = p->steps;
		if (agent_recs(q, cfg, a) < 0)
			return -1;
		if (json_object_get(j, "max_steps")) {   /* (within the agent's) */
			if (a->max_steps && steps > a->max_steps)
				return bad(q, 400, "max_steps", "agent %s allows max_steps up to %u",
					   a->name, a->max_steps);
			p->steps = steps;
		}
	}
	return 0;
}

int fg_gwreq_session(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q)
{
	if (parse(body, n, q) < 0)
		return -1;
	return session_obj(cfg, q);
}

int fg_gwreq_item(const fg_config_t *cfg, const fg_gwreq_t *batch, size_t i, fg_gwreq_t *q)
{
	memset(q, 0, sizeof(*q));
	q->root = json_incref(json_array_get(json_object_get(batch->root, "sessions"), i));
	if (!json_is_object(q->root))
		return bad(q, 400, NULL, "not an object");
	return session_obj(cfg, q);
}

int fg_gwreq_batch(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q,
		   size_t *count, fg_gwreq_check_fn check, void *arg)
{
	*count = 0;
	if (parse(body, n, q) < 0)
		return -1;
	static const char *const known[] = { "sessions", NULL };
	if (only(q, known, "; each session's own fields go in its item") < 0)
		return -1;
	json_t *s = json_object_get(q->root, "sessions");
	size_t k = json_array_size(s);
	if (!json_is_array(s) || !k)
		return bad(q, 400, "sessions", "sessions must be a non-empty array of sessions, each "
			   "an object as the body of POST /v1/sessions");
	if (k > cfg->http_max_batch)
		return bad(q, 400, "sessions", "a batch may hold up to %u sessions, this one has %zu "
			   "(http.max_batch)", cfg->http_max_batch, k);
	/* every item is checked before any is queued: a bad one refuses the
	 * whole batch, so that a retry of the mended batch makes each once */
	for (size_t i = 0; i < k; i++) {
		fg_gwreq_t it;
		int e = fg_gwreq_item(cfg, q, i, &it);
		unsigned st = e == 0 && check ? check(arg, i, k, &it, q) : 0;
		if (st) {   /* (q->error and q->param filled in) */
			q->status = st;
			fg_gwreq_free(&it);
			return -1;
		}
		if (e < 0) {
			if (it.param)
				snprintf(q->param_buf, sizeof(q->param_buf), "sessions[%zu].%s", i,
					 it.param);
			else
				snprintf(q->param_buf, sizeof(q->param_buf), "sessions[%zu]", i);
			bad(q, it.status, q->param_buf, "sessions[%zu]: %s", i, it.error);
		}
		fg_gwreq_free(&it);
		if (e < 0)
			return -1;
	}
	*count = k;
	return 0;
}

/*
 * A message's content as text: a string, or an array of parts of which
 * only {"type": "text", "text": ...} are taken (joined); NULL with q filled
 * in for anything else.  *owned is set when the text was joined (free it).
 */
static const char *content_text(fg_gwreq_t *q, json_t *c, size_t i, char **owned,
				int null_ok)
{
	*owned = NULL;
	if (json_is_null(c) || !c) {
		if (null_ok)
			return "";
		bad(q, 400, "messages", "message %zu: content is missing", i);
		return NULL;
	}
	if (json_is_string(c)) {
		const char *t = text(c);
		if (!t)
			bad(q, 400, "messages", "message %zu: content must not contain NUL characters", i);
		return t;
	}
	if (!json_is_array(c)) {
		bad(q, 400, "messages", "message %zu: content must be a string or an array of "
		    "parts", i);
		return NULL;
	}
	size_t k, total = 0;
	json_t *part;
	json_array_foreach(c, k, part) {
		const char *type = json_string_value(json_object_get(part, "type"));
		if (!type || strcmp(type, "text")) {
			bad(q, 400, "messages", "message %zu: content part %zu is of type \"%.40s\": "
			    "forge takes text parts only (images, audio and files are not "
			    "supported yet)", i, k, type ? type : "(none)");
			return NULL;
		}
		const char *t = text(json_object_get(part, "text"));
		if (!t) {
			bad(q, 400, "messages", "message %zu: content part %zu has no text (or a NUL "
			    "in it)", i, k);
			return NULL;
		}
		total += strlen(t);
	}
	char *out = malloc(total + 1);
	if (!out) {
		bad(q, 503, NULL, "out of memory, try again");
		return NULL;
	}
	size_t o = 0;
	json_array_foreach(c, k, part) {
		const char *t = json_string_value(json_object_get(part, "text"));
		memcpy(out + o, t, strlen(t));
		o += strlen(t);
	}
	out[o] = 0;
	*owned = out;
	return out;
}

/* Whether the request's "tools" define a function named name. */
static int client_tool(json_t *j, const char *name)
{
	size_t k;
	json_t *t;
	json_array_foreach(json_object_get(j, "tools"), k, t) {
		const char *n = json_string_value(json_object_get(json_object_get(t, "function"),
								  "name"));
		if (n && !strcmp(n, name))
			return 1;
	}
	return 0;
}

/* The request parameters passed through to the model (PARAMS record);
 * -1 with q filled in when one is out of range. */
static int chat_params(fg_gwreq_t *q, json_t *j, json_t *params)
{
	json_t *x;
	if ((x = json_object_get(j, "n")) && !(json_is_integer(x) && json_integer_value(x) == 1))
		return bad(q, 400, "n", "n must be 1: forge runs one agent session per request "
			   "(send n requests for n answers)");
	static const char *const num01[] = { "top_p" };
	if ((x = json_object_get(j, "temperature"))) {
		if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 2)
			return bad(q, 400, "temperature", "temperature must be a number in [0, 2]");
		json_object_set(params, "temperature", x);
	}
	for (size_t i = 0; i < sizeof(num01) / sizeof(num01[0]); i++)
		if ((x = json_object_get(j, num01[i]))) {
			if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 1)
				return bad(q, 400, num01[i], "%s must be a number in [0, 1]", num01[i]);
			json_object_set(params, num01[i], x);
		}
	static const char *const ints[] = { "max_tokens", "max_completion_tokens", "seed" };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if ((x = json_object_get(j, ints[i]))) {
			if (!json_is_integer(x) || (i < 2 && json_integer_value(x) < 1))
				return bad(q, 400, ints[i], "%s must be %s", ints[i],
					   i < 2 ? "a positive integer" : "an integer");
			json_object_set(params, ints[i], x);
		}
	if ((x = json_object_get(j, "stop"))) {
		int ok = json_is_string(x) || json_is_null(x);
		if (json_is_array(x) && json_array_size(x) <= 4) {
			size_t k;
			json_t *e;
			ok = 1;
			json_array_foreach(x, k, e) ok &= json_is_string(e);
		}
		if (!ok)
			return bad(q, 400, "stop", "stop must be a string or an array of up to 4 strings");
		if (!json_is_null(x))
			json_object_set(params, "stop", x);
	}
	if ((x = json_object_get(j, "response_format"))) {
		if (!json_is_object(x) || !json_is_string(json_object_get(x, "type")))
			return bad(q, 400, "response_format", "response_format must be an object "
				   "with a type");
		json_object_set(params, "response_format", x);
	}
	if ((x = json_object_get(j, "tool_choice")))
		json_object_set(params, "tool_choice", x);
	if ((x = json_object_get(j, "tools")) && !json_is_null(x)) {
		size_t k;
		json_t *t;
		if (!json_is_array(x))
			return bad(q, 400, "tools", "tools must be an array of {type: function, "
				   "function: {name, description, parameters}}");
		json_array_foreach(x, k, t) {
			const char *type = json_string_value(json_object_get(t, "type"));
			json_t *fn = json_object_get(t, "function");
			const char *name = json_string_value(json_object_get(fn, "name"));
			if (!type || strcmp(type, "function") || !name || !*name)
				return bad(q, 400, "tools", "tools[%zu] is not {type: function, function: "
					   "{name, ...}}", k);
		}
		if (json_array_size(x))
			json_object_set(params, "tools", x);
	}
	return 0;
}

int fg_gwreq_chat(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q)
{
	if (parse(body, n, q) < 0)
		return -1;
	json_t *j = q->root;
	fg_submit_t *p = &q->sub;
	const char *model = json_string_value(json_object_get(j, "model"));
	char wf[64] = "", prov[64] = "";
	if (!model || sscanf(model, "forge/%63[^@]@%63s", wf, prov) < 1)
		return bad(q, 400, "model", "model must name a workflow or an agent: forge/react, "
			   "forge/plan_execute, forge/map_reduce or forge/AGENT (optionally "
			   "@provider)");
	p->workflow = !strcmp(wf, "react") ? FG_WF_REACT : !strcmp(wf, "plan_execute") ?
		      FG_WF_PLAN_EXECUTE : !strcmp(wf, "map_reduce") ? FG_WF_MAP_REDUCE : 0;
	const fg_agent_cfg_t *agent = p->workflow ? NULL : fg_config_agent(cfg, wf, strlen(wf));
	if (agent)
		p->workflow = agent->workflow;
	if (!p->workflow)
		return bad(q, 400, "model", "model \"%.60s\" names no workflow or agent (GET "
			   "/v1/models lists them)", model);
	const char *pn = prov[0] ? prov : agent && agent->provider[0] ? agent->provider :
			 cfg->llm_default;
	if ((p->arg = provider_index(cfg, pn)) == UINT32_MAX)
		return bad(q, 400, "model", "provider \"%.60s\" is not configured", pn);
	snprintf(q->model, sizeof(q->model), "%s", model);
	json_t *params = json_object();
	if (!params)
		return bad(q, 503, NULL, "out of memory, try again");
	if (chat_params(q, j, params) < 0) {
		json_decref(params);
		return -1;
	}
	json_t *msgs = json_object_get(j, "messages"), *m;
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		json_decref(params);
		return bad(q, 400, "messages", "messages must be a non-empty array of {role, content}");
	}
	/* the whole history, as records (react); the other workflows take the
	 * system prompt and the last user message as their task */
	fg_buf_t *b = &q->recs;
	*b = (fg_buf_t){ NULL, 0, 0, 0, 0xffffffffu, 1, 0 };
	if (p->workflow != FG_WF_REACT && (json_object_get(params, "tools") ||
					   json_object_get(params, "tool_choice"))) {
		json_decref(params);
		return bad(q, 400, json_object_get(params, "tools") ? "tools" : "tool_choice",
			   "the client's own tools work with forge/react only");
	}
	if (json_object_size(params)) {
		char *pj = json_dumps(params, JSON_COMPACT);
		if (pj)
			fg_buf_rec(b, FG_REC_PARAMS, pj, strlen(pj));
		else
			b->oom = 1;
		free(pj);
	}
	json_decref(params);
	size_t i;
	const char *last_role = NULL;
	json_array_foreach(msgs, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));
		char *owned = NULL;
		if (!role)
			return bad(q, 400, "messages", "message %zu has no role", i);
		last_role = role;
		if (!strcmp(role, "system") || !strcmp(role, "developer") || !strcmp(role, "user")) {
			const char *t = content_text(q, json_object_get(m, "content"), i, &owned, 0);
			if (!t)
				return -1;
			int user = !strcmp(role, "user");
			fg_buf_rec(b, user ? FG_REC_USER : FG_REC_SYSTEM, t, strlen(t));
			if (user)
				p->prompt = t;   /* (the last one: the task of the others) */
			else if (!p->system)
				p->system = t;
			if (owned) {   /* the text must live as long as q: keep it in root */
				int was_system = p->system == t;
				json_object_set_new(m, "content", json_string(owned));
				const char *kept = json_string_value(json_object_get(m, "content"));
				free(owned);
				if (!kept)
					return bad(q, 503, NULL, "out of memory, try again");
				if (user)
					p->prompt = kept;
				else if (was_system)
					p->system = kept;
			}
		} else if (!strcmp(role, "assistant")) {
			json_t *tcs = json_object_get(m, "tool_calls");
			if (json_is_array(tcs) && json_array_size(tcs) > 0) {
				fg_call_t c[FG_MAX_CALLS];
				size_t k;
				json_t *tc;
				if (json_array_size(tcs) > FG_MAX_CALLS)
					return bad(q, 400, "messages", "message %zu: more than %d tool calls",
						   i, FG_MAX_CALLS);
				json_array_foreach(tcs, k, tc) {
					json_t *fn = json_object_get(tc, "function");
					const char *id = text(json_object_get(tc, "id"));
					const char *name = text(json_object_get(fn, "name"));
					const char *args = text(json_object_get(fn, "arguments"));
					if (!id || !name || !args || strlen(id) > 255 || strlen(name) > 255)
						return bad(q, 400, "messages", "message %zu: tool_calls[%zu] needs "
							   "id, function.name and function.arguments (strings)",
							   i, k);
					/* only the client's own tools: forge runs no call its
					 * model did not make (a history naming forge's shell
					 * would run it with the client's arguments) */
					if (!client_tool(j, name))
						return bad(q, 400, "messages", "message %zu: tool_calls[%zu] "
							   "calls \"%.60s\", which is not one of the request's "
							   "tools: a history's tool calls are the client's own",
							   i, k, name);
					c[k] = (fg_call_t){ { id, (uint32_t)strlen(id) },
							    { name, (uint32_t)strlen(name) },
							    { args, (uint32_t)strlen(args) } };
				}
				/* the text said beside the calls, if any */
				const char *t = content_text(q, json_object_get(m, "content"), i, &owned, 1);
				if (!t)
					return -1;
				if (*t)
					fg_buf_rec(b, FG_REC_NOTE, t, strlen(t));
				free(owned);
				owned = NULL;
				fg_buf_toolcalls(b, c, (uint32_t)k);
			} else {
				const char *t = content_text(q, json_object_get(m, "content"), i, &owned, 0);
				if (!t)
					return -1;
				fg_buf_rec(b, FG_REC_ASSISTANT, t, strlen(t));
				free(owned);
			}
		} else if (!strcmp(role, "tool")) {
			const char *id = text(json_object_get(m, "tool_call_id"));
			if (!id || strlen(id) > 255)
				return bad(q, 400, "messages", "message %zu: a tool message needs its "
					   "tool_call_id", i);
			const char *t = content_text(q, json_object_get(m, "content"), i, &owned, 0);
			if (!t)
				return -1;
			fg_buf_tool(b, (fg_str_t){ id, (uint32_t)strlen(id) }, t, strlen(t));
			free(owned);
		} else {
			return bad(q, 400, "messages", "message %zu: role \"%.40s\" is not system, "
				   "developer, user, assistant or tool", i, role);
		}
	}
	if (b->oom)
		return bad(q, 503, NULL, "out of memory, try again");
	if (b->overflow)
		return bad(q, 400, "messages", "a tool call's id, name or arguments pass 65,535 "
			   "bytes (the most a conversation record holds)");
	if (!p->prompt || !*p->prompt)
		return bad(q, 400, "messages", "messages must hold a user message with text content");
	if (p->workflow == FG_WF_REACT) {
		if (strcmp(last_role, "user") && strcmp(last_role, "tool"))
			return bad(q, 400, "messages", "the last message is from the %s: a conversation "
				   "ends with a user message or tool results for the agent to answer",
				   last_role);
		fg_react_view_t *v = malloc(sizeof(*v));
		char err[200];
		if (!v)
			return bad(q, 503, NULL, "out of memory, try again");
		int vr = fg_react_view(b->p, b->n, v, err, sizeof(err));
		free(v);
		if (vr < 0)
			return bad(q, 400, "messages", "the history does not hold together: %s", err);
		/* the history's end: max_steps counts the session's own model
		 * turns from here, not the client's tool rounds before it */
		if (strcmp(last_role, "user"))
			fg_buf_rec(b, FG_REC_RESUME, "", 0);
		if (b->oom)
			return bad(q, 503, NULL, "out of memory, try again");
		p->recs = b->p;
		p->recs_n = b->n;
	} else if (b->n && b->p[0] == FG_REC_PARAMS) {
		/* plan_execute, map_reduce: the parameters (the first record),
		 * then the system prompt and the task */
		uint32_t off = 0;
		fg_rec_t r;
		fg_rec_next(b->p, b->n, &off, &r);
		b->n = off;
		if (p->system)
			fg_buf_rec(b, FG_REC_SYSTEM, p->system, strlen(p->system));
		fg_buf_rec(b, FG_REC_USER, p->prompt, strlen(p->prompt));
		if (b->oom || b->overflow)
			return bad(q, 503, NULL, "out of memory, try again");
		p->recs = b->p;
		p->recs_n = b->n;
	}
	q->stream = json_is_true(json_object_get(j, "stream"));
	p->steps = p->workflow == FG_WF_REACT ? cfg->max_steps : 8;
	if (agent)
		return agent_recs(q, cfg, agent);
	return 0;
}

/* "content" (a string or text parts) as q->recs' one USER record; what
 * an empty one may do instead goes in the error (hint). */
static int user_record(fg_gwreq_t *q, const char *hint)
{
	char *owned;
	const char *t = content_text(q, json_object_get(q->root, "content"), 0, &owned, 0);
	if (!t) {
		if (q->param)
			q->param = "content";
		return -1;
	}
	if (!*t) {
		free(owned);
		return bad(q, 400, "content", "content must not be empty%s", hint);
	}
	q->recs = (fg_buf_t){ NULL, 0, 0, 0, 0xffffffffu, 1, 0 };
	fg_buf_rec(&q->recs, FG_REC_USER, t, strlen(t));
	free(owned);
	if (q->recs.oom)
		return bad(q, 503, NULL, "out of memory, try again");
	return 0;
}

int fg_gwreq_message(const char *body, size_t n, fg_gwreq_t *q)
{
	static const char *const known[] = { "content", "role", NULL };
	if (parse(body, n, q) < 0 || only(q, known, "") < 0)
		return -1;
	json_t *role = json_object_get(q->root, "role");
	if (role && (!json_is_string(role) || strcmp(json_string_value(role), "user")))
		return bad(q, 400, "role", "role must be \"user\" (or left out)");
	return user_record(q, "");
}

int fg_gwreq_fork(const char *body, size_t n, fg_gwreq_t *q)
{
	static const char *const known[] = { "at", "content", NULL };
	if (parse(body, n, q) < 0 || only(q, known, "") < 0)
		return -1;
	json_t *at = json_object_get(q->root, "at");
	q->at = UINT32_MAX;
	if (at) {
		if (!json_is_integer(at) || json_integer_value(at) < 0 ||
		    json_integer_value(at) > 0x7fffffff)
			return bad(q, 400, "at", "at must be a message count: an integer from 0 "
				   "(as many of the session's messages as to keep)");
		q->at = (uint32_t)json_integer_value(at);
	}
	if (!json_object_get(q->root, "content"))
		return 0;
	return user_record(q, " (leave it out to fork without a new message)");
}

void fg_gwreq_free(fg_gwreq_t *q)
{
	json_decref(q->root);
	q->root = NULL;
	free(q->recs.p);
	q->recs.p = NULL;
}
