/* gwreq.c — see include/forge/gwreq.h. */
#include "forge/gwreq.h"
#include "forge/conv.h"

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

int fg_gwreq_session(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q)
{
	if (parse(body, n, q) < 0)
		return -1;
	json_t *j = q->root, *x;
	fg_submit_t *p = &q->sub;
	const char *wf = "react", *model = cfg->llm_default;
	if ((x = json_object_get(j, "workflow")) && !(wf = json_string_value(x)))
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
	if (!model || sscanf(model, "forge/%63[a-z_]@%63s", wf, prov) < 1)
		return bad(q, 400, "model", "model must name a workflow: forge/react, "
			   "forge/plan_execute or forge/map_reduce (optionally @provider)");
	p->workflow = !strcmp(wf, "react") ? FG_WF_REACT : !strcmp(wf, "plan_execute") ?
		      FG_WF_PLAN_EXECUTE : !strcmp(wf, "map_reduce") ? FG_WF_MAP_REDUCE : 0;
	if (!p->workflow)
		return bad(q, 400, "model", "model \"%.60s\" names no workflow", model);
	if ((p->arg = provider_index(cfg, prov[0] ? prov : cfg->llm_default)) == UINT32_MAX)
		return bad(q, 400, "model", "provider \"%.60s\" is not configured", prov);
	snprintf(q->model, sizeof(q->model), "%s", model);
	json_t *msgs = json_object_get(j, "messages"), *m;
	if (!json_is_array(msgs))
		return bad(q, 400, "messages", "messages must be an array of {role, content}");
	size_t i;
	json_array_foreach(msgs, i, m) {
		json_t *c = json_object_get(m, "content");
		const char *role = json_string_value(json_object_get(m, "role"));
		if (!role || !json_is_string(c))
			continue;   /* (tool calls, images, ...: not a task's text) */
		if (!text(c))
			return bad(q, 400, "messages", "message %zu: content must not contain NUL "
				   "characters", i);
		if (!strcmp(role, "user"))
			p->prompt = text(c);
		else if (!strcmp(role, "system") && !p->system)
			p->system = text(c);
	}
	if (!p->prompt || !*p->prompt)
		return bad(q, 400, "messages", "messages must hold a user message with text content");
	q->stream = json_is_true(json_object_get(j, "stream"));
	p->steps = p->workflow == FG_WF_REACT ? cfg->max_steps : 8;
	return 0;
}

void fg_gwreq_free(fg_gwreq_t *q)
{
	json_decref(q->root);
	q->root = NULL;
}
