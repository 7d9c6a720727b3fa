/*
 * config.h — forge's YAML configuration.
 *
 * Loading is all-or-nothing: the file is parsed (libyaml events, so that
 * anchors and aliases can be refused outright: no alias bombs), every key
 * is checked against the schema in src/config.c, and the first problem is
 * reported as "FILE:LINE:COL: key.path: what is wrong".  Keys the file does
 * not set keep their defaults.  "${VAR}" in a scalar expands from the
 * environment; an unset VAR is an error; "$${" is a literal "${".
 */
#ifndef FORGE_CONFIG_H
#define FORGE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define FG_EX_CONFIG 78   /* sysexits.h EX_CONFIG */
#define FG_MAX_PROVIDERS 16

#define FG_MAX_SCRIPT 12
#define FG_SCRIPT_ARGS 1024      /* a scripted tool call's arguments, NUL included */
#define FG_SCRIPT_CONTENT 8192   /* a scripted answer, NUL included */

enum fg_provider_type { FG_PROV_OPENAI = 0, FG_PROV_SCRIPTED };

typedef struct fg_provider_cfg {
	char name[64];
	char type_name[16];             /* openai (any OpenAI-compatible server) | scripted */
	uint32_t type;
	char base_url[512];
	char model[128];
	char api_key_env[128];
	uint32_t stream;                /* 1: "stream": true, SSE replies        */
	uint32_t connect_timeout_ms;
	uint32_t timeout_ms;            /* whole request                         */
	uint32_t max_retries;           /* on connection errors, 429 and 5xx     */
	uint32_t retry_base_ms;         /* backoff base; doubles, with jitter    */
	uint32_t give_up_after_s;       /* an outage is waited out this long     */
	uint32_t max_reply_bytes;
	uint32_t rate_rps;              /* requests per second, all workers (0: none) */
	uint32_t rate_tpm;              /* tokens per minute, all workers (0: none)   */
	double price_prompt, price_completion;   /* USD per million tokens (0: unknown) */
	uint32_t nscript;               /* scripted: replies by model turn       */
	struct {
		char tool[64];
		char arguments[FG_SCRIPT_ARGS];
		char content[FG_SCRIPT_CONTENT];
		uint32_t calls;     /* the tool call this many times at once (1) */
	} script[FG_MAX_SCRIPT];
} fg_provider_cfg_t;

#define FG_MAX_EXTERNAL 8
#define FG_MAX_ARGV 8
#define FG_MAX_ALLOW 16

typedef struct fg_external_cfg {
	char name[64];
	uint32_t argc;
	char argv[FG_MAX_ARGV][256];
	char description[256];
	char schema[1024];          /* JSON schema of the arguments object */
	uint32_t timeout_ms;
	uint32_t idempotent;
	uint32_t max_output;
} fg_external_cfg_t;

/*
 * An MCP tool server (tools.mcp.NAME): a command run as a child of each
 * worker (stdio transport) or a URL (Streamable HTTP).  Its tools are
 * offered to models as NAME__TOOL (src/worker/mcp.c).
 */
#define FG_MAX_MCP 8
#define FG_MCP_ARGV 16
#define FG_MCP_ENV 16
typedef struct fg_mcp_cfg {
	char name[48];                  /* [A-Za-z0-9_-], no "__", no "_" at the end */
	uint32_t argc;                  /* stdio: command (0: url)               */
	char argv[FG_MCP_ARGV][512];
	char url[512];                  /* Streamable HTTP: http:// or https://  */
	uint32_t nenv;                  /* stdio: env, "KEY=VALUE" over forge's   */
	char env[FG_MCP_ENV][512];
	uint32_t timeout_ms;            /* a request's answer (30000)             */
	uint32_t max_output;            /* a result given to the model (65536)   */
	uint32_t idempotent;            /* 0: an intent before each call (0)     */
} fg_mcp_cfg_t;

/*
 * A named agent (agents.NAME): what a session that names it runs.  Its
 * definition is copied into the session's log when the session is made
 * (an AGENT record, src/agent/agents.c), so a reload that changes it does
 * not touch the sessions that already run it.
 */
#define FG_MAX_AGENTS 16
#define FG_AGENT_SYSTEM 16384    /* the system prompt, NUL included */
#define FG_AGENT_PROMPT 4096     /* planner, synthesis, splitter, reducer */
#define FG_AGENT_TOOLS 16
#define FG_ASK_HUMAN "ask_human"   /* the built-in tool that asks a person */
typedef struct fg_agent_cfg {
	char name[64];
	uint32_t workflow;              /* 2 react, 3 map_reduce, 4 plan_execute (FG_WF_*) */
	char system[FG_AGENT_SYSTEM];   /* system, or the text of system_file */
	char system_file[512];          /* system_file's name ("" : none)        */
	char provider[64];              /* "" : llm.default                       */
	char params[512];               /* JSON object: temperature, top_p,
					 * max_tokens, seed ("" : none)           */
	uint32_t tools_set;             /* 1: only tools[] (else every tool)      */
	uint32_t ntools;
	char tools[FG_AGENT_TOOLS][64];
	uint32_t max_steps;             /* 0: workflows.max_steps (react turns;
					 * map_reduce/plan_execute: parts)       */
	uint32_t deadline_s;            /* 0: workflows.deadline_s                */
	uint32_t token_budget;          /* prompt + completion tokens, all the
					 * session's model calls (0: none)        */
	double cost_budget;             /* USD at its provider's prices (0: none) */
	uint32_t napprove;              /* tools whose calls wait for a person    */
	char approve[FG_AGENT_TOOLS][64];
	uint32_t approval_timeout_s;    /* 0: wait for an answer for ever         */
	uint32_t approval_default;      /* after the timeout: 0 reject, 1 approve */
	char planner[FG_AGENT_PROMPT], synthesis[FG_AGENT_PROMPT];   /* plan_execute */
	char splitter[FG_AGENT_PROMPT], reducer[FG_AGENT_PROMPT];    /* map_reduce   */
	int line, col;                  /* where the file defines it (errors)     */
	int kline[4], kcol[4];          /* ... its provider, tools, cost_budget,
					 * approve */
} fg_agent_cfg_t;

typedef struct fg_config {
	char     file[4096];

	uint32_t workers;               /* supervisor.workers (0 in file = auto) */
	uint32_t watchdog_ms;           /* supervisor.watchdog_ms                */
	uint32_t heartbeat_ms;          /* supervisor.heartbeat_ms               */
	uint32_t backoff_initial_ms;    /* supervisor.restart.backoff_initial_ms */
	uint32_t backoff_max_ms;        /* supervisor.restart.backoff_max_ms     */
	uint32_t restart_intensity;     /* supervisor.restart.intensity          */
	uint32_t restart_period_s;      /* supervisor.restart.period_s           */
	uint32_t shutdown_timeout_ms;   /* supervisor.shutdown_timeout_ms        */
	uint32_t sweep_after_ms;        /* supervisor.sweep_after_ms             */

	char     region_path[4096];     /* region.path                           */
	uint32_t sessions;              /* region.sessions                       */
	uint32_t checkpoint_bytes;      /* region.checkpoint_bytes (inline log)  */
	uint32_t session_max_bytes;     /* region.session_max_bytes              */
	uint32_t retain_s;              /* region.retain_s (0: keep forever)     */
	uint32_t durability;            /* region.durability: enum fg_durability */
	uint32_t sync_interval_ms;      /* region.sync_interval_ms (batch)       */
	uint32_t region_mode;           /* region.mode: the file's permissions   */

	uint32_t max_inflight;          /* worker.max_inflight                   */
	uint32_t memory_limit_mb;       /* worker.memory_limit_mb (RLIMIT_AS)    */

	char     log_level[16];         /* log.level                             */

	char     llm_default[64];       /* llm.default                           */
	uint32_t nproviders;
	fg_provider_cfg_t providers[FG_MAX_PROVIDERS];

	char     http_listen[128];      /* http.listen                           */
	uint32_t http_enabled;          /* http.enabled                          */
	uint32_t http_ntokens;          /* http.tokens (0: no auth)              */
	char     http_tokens[8][128];
	uint32_t http_max_body;         /* http.max_body_bytes                   */
	uint32_t http_idle_timeout_s;   /* http.idle_timeout_s                   */
	uint32_t http_max_conns;        /* http.max_connections                  */
	uint32_t http_max_conns_ip;     /* http.max_connections_per_ip (0: any)  */
	uint32_t http_max_header;       /* http.max_header_bytes                 */
	uint32_t http_max_batch;        /* http.max_batch                        */

	uint32_t max_steps;             /* workflows.max_steps (LLM calls)       */
	uint32_t context_max_bytes;     /* workflows.context_max_bytes (0: all)  */

	char     file_read_root[4096];  /* tools.file_read.root ("" = disabled)  */
	uint32_t file_read_max;         /* tools.file_read.max_bytes             */
	uint32_t shell_nallow;          /* tools.shell.allow (0 = disabled)      */
	char     shell_allow[FG_MAX_ALLOW][64];
	uint32_t shell_timeout_ms;      /* tools.shell.timeout_ms                */
	uint32_t shell_max_output;      /* tools.shell.max_output                */
	uint32_t http_nallow;           /* tools.http_get.allow: hosts (0 = off)  */
	char     http_allow[FG_MAX_ALLOW][256];
	uint32_t http_timeout_ms;       /* tools.http_get.timeout_ms             */
	uint32_t http_max_bytes;        /* tools.http_get.max_bytes              */
	uint32_t nexternal;             /* tools.external.NAME                   */
	fg_external_cfg_t external[FG_MAX_EXTERNAL];
	uint32_t nmcp;                  /* tools.mcp.NAME                        */
	fg_mcp_cfg_t mcp[FG_MAX_MCP];
	char     interrupted[16];       /* workflows.interrupted: result | fail  */
	uint32_t deadline_s;            /* workflows.deadline_s (0: none)        */
	uint32_t child_alloc_timeout_s; /* workflows.child_alloc_timeout_s       */
	uint32_t nagents;               /* agents.NAME                           */
	fg_agent_cfg_t agents[FG_MAX_AGENTS];
} fg_config_t;

/* Set (forgectl) before a load: agents' system_file is not read then (its
 * name is kept), so that a user who may not read it still loads the file;
 * fg_config_agent_system reads it when the agent is used.  0, or -1 with
 * err naming the agent and why. */
extern int fg_config_defer_files;
int fg_config_agent_system(fg_agent_cfg_t *a, char *err, size_t errlen);

/* The agent named name (n bytes), or NULL. */
const fg_agent_cfg_t *fg_config_agent(const fg_config_t *c, const char *name, size_t n);

void fg_config_defaults(fg_config_t *c);

/*
 * Loads FILE over the defaults.  On error fills err with
 * "FILE:LINE:COL: key.path: message" and returns -1; c is then unspecified.
 */
int fg_config_load(fg_config_t *c, const char *file, char *err, size_t errlen);

/* Loads from a buffer (tests, fuzzing); name stands for the file in messages. */
int fg_config_load_buf(fg_config_t *c, const char *name, const char *buf, size_t len,
		       char *err, size_t errlen);

#endif
