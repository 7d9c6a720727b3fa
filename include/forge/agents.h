/*
 * agents.h — named agents (agents.NAME): the records a session of one
 * begins with (src/agent/agents.c), and the definition a worker reads back
 * from its AGENT record (conv.h).
 */
#ifndef FORGE_AGENTS_H
#define FORGE_AGENTS_H

#include "forge/config.h"
#include "forge/conv.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Appends the agent's first records to b: AGENT (its definition, with the
 * prices of prov, the session's provider, when it has them), SYSTEM
 * (its system prompt, if any), PARAMS (its model parameters, with
 * req_params, a JSON object or NULL, over them).  0, -1 (out of memory,
 * or b full), or -2: the agent has a cost_budget and prov no prices.
 */
int fg_agent_records(const fg_agent_cfg_t *a, const fg_provider_cfg_t *prov,
		     const char *req_params, fg_buf_t *b);

/* A session's agent, from its AGENT record (strings point into j). */
typedef struct fg_agent_rt {
	json_t *j;
	const char *name;
	json_t *tools;                  /* NULL: every configured tool */
	uint64_t token_budget;          /* 0: none */
	uint32_t deadline_s;            /* 0: workflows.deadline_s */
	double cost_budget;             /* USD (0: none) */
	uint64_t spent_prompt, spent_completion;   /* tokens spent before it was
						    * forked from another */
	double price_prompt, price_completion;   /* USD per million tokens */
	const char *planner, *synthesis, *splitter, *reducer;   /* NULL: forge's */
	json_t *approve;                /* tools whose calls wait for a person */
	uint32_t approval_timeout_s;    /* 0: none */
	int approval_default;           /* after it: 0 reject, 1 approve */
} fg_agent_rt_t;

/* What a call of the tool NAME waits for before it runs. */
enum { FG_APPROVAL_NONE, FG_APPROVAL_TOOL /* approve: a person's yes */,
       FG_APPROVAL_ASK /* ask_human: a person's answer */ };
int fg_agent_approval(const fg_agent_rt_t *rt, const char *name, size_t n);

/* 1 and *rt from an AGENT record; 0 for none (rec.n 0); -1 if malformed.
 * fg_agent_free after 1. */
int fg_agent_parse(fg_str_t rec, fg_agent_rt_t *rt);
void fg_agent_free(fg_agent_rt_t *rt);

/* What prompt + completion tokens cost at the session's prices (USD). */
double fg_agent_cost(const fg_agent_rt_t *rt, uint64_t prompt, uint64_t completion);

/* Whether the agent may call tool name (n bytes): always without one; an
 * entry SERVER__* allows every tool of MCP server SERVER. */
int fg_agent_allows(const fg_agent_rt_t *rt, const char *name, size_t n);

/* The tool definitions of all (a JSON array) the agent may use, as a
 * string to send; NULL when none is left (or out of memory). */
char *fg_agent_tools_json(const fg_agent_rt_t *rt, const json_t *all);

#endif
