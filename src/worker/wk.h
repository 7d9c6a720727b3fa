/*
 * wk.h — the worker's insides, shared by src/worker/ (the event loop, the
 * LLM-call path, tool processes) and src/workflows/ (what each workflow
 * does at a step and with a model's reply).  Private to those two folders.
 *
 * A session here is a local struct naming the record (idx), its lease
 * entry and a copy of its last committed state.  The copy is only a cache:
 * the truth is the committed checkpoint, which is what a resumed session
 * starts from after this process dies.  Everything runs on the worker's
 * one thread; a workflow's step ends by handing the session on: to the run
 * queue, a timer, an HTTP request, tool processes, a park, or its finish.
 */
#ifndef FORGE_WK_H
#define FORGE_WK_H

#include "forge/agents.h"
#include "forge/config.h"
#include "forge/conv.h"
#include "forge/httpc.h"
#include "forge/ring.h"
#include "forge/llm.h"
#include "forge/session.h"
#include "forge/tool.h"
#include "forge/views.h"

#include <jansson.h>
#include <stdint.h>

typedef struct proc proc_t;

typedef struct wsess {
	uint32_t idx;
	uint32_t entry;
	uint64_t due_ns;        /* timer deadline while waiting */
	fg_wstate_t st;         /* last committed state         */
	uint16_t workflow;
	uint32_t steps, delay_us, provider;
	struct wsess *next;     /* run queue / free list        */
	uint32_t heap_pos;
	uint8_t live;           /* holds a session              */
	uint8_t in_rq;          /* on the run queue             */
	uint8_t cancel_pending; /* cancelled: end at its next step */
	int in_http;            /* an LLM request is in flight  */
	uint32_t attempts;      /* failed tries of this request */
	uint64_t first_fail_ns; /* when the first of them failed */
	uint32_t live_attempt;  /* requests started (live text)   */
	fg_req_t req;
	/* tool calls running for this session: process tools (procs, several at
	 * once) and at most one http_get (req, while no LLM request is) */
	struct proc *procs;     /* FG_MAX_CALLS slots, allocated on first use */
	uint32_t nprocs;        /* running                      */
	uint32_t nmcp;          /* MCP calls waiting for answers (worker/mcp.c) */
	struct {
		const fg_tool_t *tool;
		char id[256];
		uint16_t idn;
		uint8_t edited;     /* its arguments, a person's (approval) */
	} web;                  /* the http_get in flight (in_http set) */
} wsess_t;

struct proc {
	pid_t pid;              /* 0: slot free                 */
	int pidfd, outfd;
	const fg_tool_t *tool;
	char id[256];           /* the call it answers          */
	uint16_t idn;
	char *out;
	size_t n;
	int truncated, timed_out;
	uint64_t due_ns;        /* its timeout                  */
	uint8_t edited;         /* its arguments, a person's (approval) */
};

typedef struct worker {
	fg_region_t *r;
	fg_actor_t a;
	const fg_config_t *cfg;
	uint32_t slot, nworkers, max_inflight, inflight;
	wsess_t *pool, *free;
	wsess_t *rq_head, *rq_tail;
	wsess_t **heap;         /* min-heap on due_ns */
	uint32_t nheap;
	int epfd, sigfd, tfd;
	uint32_t wait_failures; /* consecutive failed epoll waits */
	int stop;
	uint64_t next_sig_check;
	uint32_t steal_from;
	uint64_t done_at_idle;   /* self->done when it last rang the idle bell */
	fg_http_t *http;
	json_t *tools;          /* the tools array sent to models */
	char *tools_str;        /* ... serialized once            */
	uint8_t *scratch;       /* records built before a commit  */
	uint32_t scratch_n;
	fg_ring_watch_t *watch; /* per ring: a head cell seen stalled */
	uint64_t parked;        /* parents parked (for the log)   */
	struct wk_mcp *mcp;     /* MCP servers (NULL: none configured) */
} worker_t;

extern worker_t *wk_self;   /* the one worker of this process (for callbacks) */

/* Event tags in epoll data (high 32 bits). */
#define EV_SIGNAL    1ull
#define EV_TIMER     2ull
#define EV_PROC_OUT  5ull
#define EV_PROC_EXIT 6ull
#define EV_MCP_OUT   7ull   /* an MCP server's stdout (low: gen << 8 | server) */
#define EV_MCP_IN    8ull   /* ... its stdin takes more                     */
#define EV_MCP_EXIT  9ull   /* ... its pidfd                                */
#define EV_MCP_REAP  10ull  /* a killed one's pidfd (low: its reap slot)     */

/*
 * A workflow: one row of the table in src/workflows/table.c, indexed by
 * fg_session_t.workflow.  step runs the session's next step; on_reply
 * takes a model's reply to the request the step posted (NULL for a
 * workflow that calls no model).  Adding a workflow is adding a file and
 * a row.
 */
typedef struct fg_wf {
	const char *name;
	void (*step)(worker_t *w, wsess_t *s);
	void (*on_reply)(worker_t *w, wsess_t *s, fg_llm_reply_t *r);
} fg_wf_t;

/* The row of workflow id, or NULL. */
const fg_wf_t *fg_wf_get(uint32_t id);

/* loop.c: where a session goes next */
void wk_rq_push(worker_t *w, wsess_t *s);            /* run its next step soon     */
void wk_heap_push(worker_t *w, wsess_t *s);          /* at s->due_ns               */
void wk_heap_remove(worker_t *w, wsess_t *s);
void wk_schedule(worker_t *w, wsess_t *s);           /* after its per-step delay   */
void wk_sess_free(worker_t *w, wsess_t *s);          /* no longer this worker's    */
void wk_finish(worker_t *w, wsess_t *s, uint32_t state);   /* ends it              */
/* WAITING, holding no slot and no lease, until woken; ended() is looked at
 * once more after the park (see fg_session_park) */
void wk_park(worker_t *w, wsess_t *s, int (*ended)(void *arg), void *arg);

/* The worker's scratch buffer for the records of one commit: it grows (up
 * to a whole log) and is handed back by wk_commit, or by wk_buf_done. */
static inline fg_buf_t wk_buf(worker_t *w)
{
	uint64_t max = fg_log_max(w->r) + 4096;
	return (fg_buf_t){ w->scratch, 0, w->scratch_n, 0,
			   max > UINT32_MAX ? UINT32_MAX : (uint32_t)max, 1, 0 };
}

static inline void wk_buf_done(worker_t *w, fg_buf_t *b)
{
	w->scratch = b->p;
	w->scratch_n = b->cap;
}

/* llmcall.c: committing, failing, retrying, and the model call itself */
void wk_fail(worker_t *w, wsess_t *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int  wk_commit(worker_t *w, wsess_t *s, fg_wstate_t *st, fg_buf_t *b);
/* A reply's usage: a USAGE record into b, the step and token totals into
 * st; after its commit, wk_reply_done counts it (slot totals, tokens/min). */
void wk_usage(fg_buf_t *b, fg_wstate_t *st, const fg_llm_reply_t *r);
void wk_reply_done(worker_t *w, wsess_t *s, const fg_llm_reply_t *r);
void wk_retry_later(worker_t *w, wsess_t *s, long retry_after_s, const char *why);
void wk_oom_retry(worker_t *w, wsess_t *s, const char *why);
/* workflows.deadline_s, or the agent's (rt NULL: none): 1 and failed when past */
int  wk_past_deadline(worker_t *w, wsess_t *s, const fg_agent_rt_t *rt);
/* The agent's token_budget spent: 1 and failed */
int  wk_over_budget(worker_t *w, wsess_t *s, const fg_agent_rt_t *rt);
/* Posts body (taken; NULL: out of memory) to provider p for session s; the
 * reply reaches the workflow's on_reply. */
void wk_post(worker_t *w, wsess_t *s, const fg_provider_cfg_t *p, char *body, size_t n);
void wk_on_http_done(fg_req_t *q);
void wk_start_oom(worker_t *w, const char *what);

/* tools.c: tool calls, process tools in children watched by the loop */
/* A call's result whose arguments a person edited (approval): the model
 * is told first; args (n 0: read from its DECISION) as they ran. */
int  wk_commit_edited(worker_t *w, wsess_t *s, fg_str_t id, fg_str_t args, const char *out);
/* 0: every call answered; 1: tools run; 2: a call waits for a person; -1 */
int  wk_run_tools(worker_t *w, wsess_t *s, fg_react_view_t *v, const fg_agent_rt_t *rt);
void wk_proc_kill_all(worker_t *w, wsess_t *s);
void wk_proc_timeouts(worker_t *w, wsess_t *s);
void wk_proc_read(proc_t *p);
void wk_proc_exited(worker_t *w, wsess_t *s, proc_t *p);
/* The session goes on if nothing of its runs any more (once: a session
 * already on the run queue stays there once). */
void wk_tools_settled(worker_t *w, wsess_t *s);

/* mcp.c: MCP tool servers, one connection each per worker */
int  wk_mcp_init(worker_t *w);                 /* starts them; -1: out of memory */
void wk_mcp_free(worker_t *w);                 /* kills them                     */
void wk_mcp_tools_json(worker_t *w);           /* w->tools(_str) with theirs      */
int  wk_mcp_intake_ok(const worker_t *w);      /* each tried once: take sessions */
int  wk_mcp_busy(const worker_t *w);           /* calls or starts under way      */
/* The tool NAME__TOOL of a configured server (one not listed yet: any
 * TOOL, checked when the list comes), or NULL. */
const fg_tool_t *wk_mcp_tool(worker_t *w, const char *name, size_t n);
/* Sends (or queues, while the server starts) a tools/call for session s;
 * its result is committed when it comes (edited: the arguments are a
 * person's, and the result says so).  -1 with the result in out. */
int  wk_mcp_call(worker_t *w, wsess_t *s, const fg_tool_t *t, fg_str_t id, fg_str_t args,
		 int edited, char *out, size_t outlen);
int  wk_mcp_running(const worker_t *w, const wsess_t *s, fg_str_t id);
/* The session ends or is handed back: its calls' answers are dropped. */
void wk_mcp_forget(worker_t *w, wsess_t *s);
uint64_t wk_mcp_next_due(const worker_t *w);   /* a call's deadline or a restart */
void wk_mcp_tick(worker_t *w);                 /* deadlines and restarts due     */
void wk_mcp_event(worker_t *w, uint64_t data, uint32_t events);

#endif
