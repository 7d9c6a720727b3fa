/*
 * tools.c — a session's tool calls: inline tools run at once, process
 * tools in children (all of a turn's started together) watched by the
 * loop through pidfds and pipes, an http_get through the curl client.
 * Every result is committed before the session goes on; a non-idempotent
 * tool's intent is committed before it starts.
 */
#include "worker/wk.h"
#include "forge/durable.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/llm.h"
#include "forge/log.h"
#include "forge/rate.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/tool.h"
#include "forge/util.h"
#include "forge/views.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>

/* Commits the result of call i of the view (and marks it answered). */
static int commit_result(worker_t *w, wsess_t *s, fg_str_t id, const char *out)
{
	fg_buf_t b = wk_buf(w);
	fg_wstate_t st = s->st;
	fg_buf_tool(&b, id, out, strlen(out));
	return wk_commit(w, s, &st, &b);
}

/* The session waits in the timer heap until its earliest tool deadline. */
static void proc_rearm(worker_t *w, wsess_t *s)
{
	wk_heap_remove(w, s);
	uint64_t due = UINT64_MAX;
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->procs; i++)
		if (s->procs[i].pid && !s->procs[i].timed_out && s->procs[i].due_ns < due)
			due = s->procs[i].due_ns;
	if (due != UINT64_MAX) {
		s->due_ns = due;
		wk_heap_push(w, s);
	}
}

static void proc_close(worker_t *w, wsess_t *s, proc_t *p)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->outfd, NULL);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
	close(p->outfd);
	close(p->pidfd);
	free(p->out);
	p->out = NULL;
	p->pid = 0;
	s->nprocs--;
}

/* Kills and reaps every process tool of a session (drain). */
void wk_proc_kill_all(worker_t *w, wsess_t *s)
{
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->nprocs; i++) {
		proc_t *p = &s->procs[i];
		if (!p->pid)
			continue;
		kill(-p->pid, SIGKILL);
		siginfo_t si;
		waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
		proc_close(w, s, p);
	}
	wk_heap_remove(w, s);
}

/* Tool deadlines that passed: kill those processes; their exit events
 * commit the "timed out" results. */
void wk_proc_timeouts(worker_t *w, wsess_t *s)
{
	uint64_t now = fg_now_ns();
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->procs; i++) {
		proc_t *p = &s->procs[i];
		if (p->pid && !p->timed_out && p->due_ns <= now) {
			p->timed_out = 1;
			kill(-p->pid, SIGKILL);
		}
	}
	proc_rearm(w, s);
}

void wk_proc_read(proc_t *p)
{
	char buf[4096];
	for (;;) {
		ssize_t r = read(p->outfd, buf, sizeof(buf));
		if (r <= 0)
			return;
		size_t room = p->tool->max_output - p->n;
		size_t k = (size_t)r < room ? (size_t)r : room;
		memcpy(p->out + p->n, buf, k);
		p->n += k;
		if (k < (size_t)r)
			p->truncated = 1;
	}
}

/* The session has nothing running any more: it goes on. */
void wk_tools_settled(worker_t *w, wsess_t *s)
{
	if (s->nprocs == 0 && !s->in_http && s->nmcp == 0 && !s->in_rq)
		wk_rq_push(w, s);   /* further calls, or the next model turn */
}

/* A process tool exited: its result is committed. */
void wk_proc_exited(worker_t *w, wsess_t *s, proc_t *p)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	wk_proc_read(p);
	size_t cap = p->tool->max_output + 1024;
	char *res = malloc(cap);
	fg_tool_result(p->tool, si.si_code == CLD_EXITED, si.si_status, p->timed_out, p->truncated,
		       p->out, p->n, res, cap);
	char id[256];
	uint16_t idn = p->idn;
	memcpy(id, p->id, idn);
	proc_close(w, s, p);
	proc_rearm(w, s);
	int rc = commit_result(w, s, (fg_str_t){ id, idn }, res);
	free(res);
	if (rc < 0) {
		/* the session failed (and was freed): nothing may run on for it */
		return;
	}
	wk_tools_settled(w, s);
}

/* http_get finished: its result is committed, the session goes on. */
static void on_tool_http_done(fg_req_t *q)
{
	worker_t *w = wk_self;
	wsess_t *s = q->owner;
	size_t cap = s->web.tool->max_output + 256;
	char *res = malloc(cap);
	s->in_http = 0;
	if (q->curl_rc == CURLE_WRITE_ERROR && q->too_large)
		snprintf(res, cap, "error: the response is larger than %u bytes",
			 s->web.tool->max_output);
	else if (q->curl_rc != CURLE_OK)
		snprintf(res, cap, "error: %s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->curl_rc));
	else
		snprintf(res, cap, "HTTP %ld\n%.*s", q->status, (int)q->n, q->body ? q->body : "");
	fg_req_reset(q);
	fg_str_t id = { s->web.id, s->web.idn };
	int rc = commit_result(w, s, id, res);
	free(res);
	if (rc == 0)
		wk_tools_settled(w, s);
}

static int call_running(const wsess_t *s, fg_str_t id)
{
	if (s->in_http && s->web.idn == id.n && !memcmp(s->web.id, id.p, id.n))
		return 1;
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->nprocs; i++)
		if (s->procs[i].pid && s->procs[i].idn == id.n && !memcmp(s->procs[i].id, id.p, id.n))
			return 1;
	return wk_mcp_running(wk_self, s, id);
}

/* Runs the pending tool calls: inline tools at once (a result committed
 * each), process tools all started together, an http_get when the
 * session's HTTP request is free.  A non-idempotent tool gets its intent
 * committed before it starts.  Returns 0 when every call is answered, 1
 * when the session waits for running tools, -1 when it failed. */
int wk_run_tools(worker_t *w, wsess_t *s, fg_react_view_t *v, const fg_agent_rt_t *rt)
{
	int waiting = 0;
	for (uint32_t i = 0; i < v->ncalls; i++) {
		if (v->answered[i] || v->client[i])
			continue;   /* (the client runs its own tools) */
		fg_call_t *c = &v->calls[i];
		if (call_running(s, c->id)) {
			waiting = 1;
			continue;
		}
		char out[4096];
		const fg_tool_t *t = fg_tool_find(c->name.p, c->name.n);
		if (!t)
			t = wk_mcp_tool(w, c->name.p, c->name.n);   /* SERVER__TOOL */
		if (v->intent[i]) {
			if (!strcmp(w->cfg->interrupted, "fail")) {
				wk_fail(w, s, "tool %.*s (call %.*s) was interrupted by a crash and is "
					   "not idempotent: not run again", (int)c->name.n, c->name.p,
					   (int)c->id.n, c->id.p);
				return -1;
			}
			snprintf(out, sizeof(out), "interrupted: the tool may or may not have run; "
				 "it is not idempotent, so it was not run again");
			goto result;
		}
		if (rt && !fg_agent_allows(rt, c->name.p, c->name.n)) {
			snprintf(out, sizeof(out), "error: tool \"%.*s\" is not one of agent %s's tools",
				 (int)c->name.n, c->name.p, rt->name);
			goto result;
		}
		if (!t) {
			snprintf(out, sizeof(out), "error: unknown tool \"%.*s\"", (int)c->name.n, c->name.p);
			goto result;
		}
		if (t->kind == FG_TOOL_HTTP) {
			char url[2048];
			if (fg_tool_http_url(c->args.p, c->args.n, url, sizeof(url), out, sizeof(out)) < 0)
				goto result;
			if (s->in_http) {
				waiting = 1;   /* one http_get at a time per session */
				continue;
			}
			memcpy(s->web.id, c->id.p, c->id.n);
			s->web.idn = c->id.n;
			s->web.tool = t;
			s->req.owner = s;
			s->req.done = on_tool_http_done;
			s->req.max_reply = t->max_output;
			s->req.streaming = 0;
			if (fg_http_get(w->http, &s->req, url, (long)t->timeout_ms) < 0) {
				snprintf(out, sizeof(out), "error: %s", s->req.errbuf);
				goto result;
			}
			s->in_http = 1;
			waiting = 1;
			continue;
		}
		char *argv[FG_TOOL_MAX_ARGS + 1], abuf[8192];
		const char *in = NULL;
		size_t in_n = 0;
		if (t->kind == FG_TOOL_PROCESS &&
		    t->prepare(t, c->args.p, c->args.n, argv, abuf, sizeof(abuf), &in, &in_n, out,
			       sizeof(out)) < 0)
			goto result;   /* refused arguments: the model sees why */
		proc_t *p = NULL;
		if (t->kind == FG_TOOL_PROCESS) {
			/* Memory first: an intent committed for a tool that then
			 * could not start would read as "interrupted" later. */
			if (!s->procs && !(s->procs = calloc(FG_MAX_CALLS, sizeof(proc_t))))
				goto oom;
			for (uint32_t k = 0; k < FG_MAX_CALLS && !p; k++)
				if (!s->procs[k].pid)
					p = &s->procs[k];
			free(p->out);   /* (sized for this tool: a slot may keep an earlier one's) */
			if (!(p->out = malloc(t->max_output + 1)))
				goto oom;
		}
		if (!t->idempotent) {
			uint8_t id[300];
			fg_buf_t pb = { id, 0, sizeof(id), 0 };
			fg_buf_str(&pb, c->id.p, c->id.n);
			fg_buf_t ib = wk_buf(w);
			fg_buf_rec(&ib, FG_REC_INTENT, id, pb.n);
			fg_wstate_t st = s->st;
			if (wk_commit(w, s, &st, &ib) < 0)
				return -1;
			/* region.durability: sync: the intent is on disk before the
			 * tool runs.  A flush that fails may have dropped pages
			 * (Linux forgets them after reporting EIO): like PostgreSQL,
			 * give up the process; the session resumes elsewhere from
			 * what is on disk, and the tool is not run twice. */
			int fe = fg_durable_wait(w->r, w->a.slot);
			if (fe < 0)
				fatal("region flush failed before running %.*s: %s",
				      (int)c->name.n, c->name.p, strerror(-fe));
		}
		if (t->kind == FG_TOOL_INLINE) {
			/* as much as the tool may return (file_read: its max_bytes),
			 * not what a stack buffer holds */
			size_t cap = (size_t)t->max_output + 1024;
			char *big = cap > sizeof(out) ? malloc(cap) : NULL;
			if (cap > sizeof(out) && !big)
				goto oom;   /* (an idempotent tool: nothing ran) */
			t->run(t, c->args.p, c->args.n, big ? big : out, big ? cap : sizeof(out));
			int rc = commit_result(w, s, c->id, big ? big : out);
			free(big);
			if (rc < 0)
				return -1;
			v->answered[i] = 1;
			continue;
		}
		if (t->kind == FG_TOOL_MCP) {   /* answered later, by worker/mcp.c */
			if (wk_mcp_call(w, s, t, c->id, c->args, out, sizeof(out)) < 0)
				goto result;
			waiting = 1;
			continue;
		}
		memcpy(p->id, c->id.p, c->id.n);   /* the log may move on */
		p->idn = c->id.n;
		if (fg_tool_spawn(argv, in, in_n, t->timeout_ms, &p->pid, &p->pidfd, &p->outfd, out,
				  sizeof(out)) < 0) {
			free(p->out);
			p->out = NULL;
			goto result;
		}
		p->tool = t;
		p->n = 0;
		p->truncated = p->timed_out = 0;
		p->due_ns = fg_now_ns() + (uint64_t)t->timeout_ms * 1000000u;
		s->nprocs++;
		uint64_t tag = ((uint64_t)(uint32_t)(s - w->pool) << 8) | (uint64_t)(p - s->procs);
		struct epoll_event ev = { .events = EPOLLIN };
		ev.data.u64 = (EV_PROC_OUT << 32) | tag;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->outfd, &ev);
		ev.data.u64 = (EV_PROC_EXIT << 32) | tag;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->pidfd, &ev);
		waiting = 1;
		continue;
result:
		if (commit_result(w, s, c->id, out) < 0)
			return -1;
		v->answered[i] = 1;
		continue;
oom:
		/* Nothing of this call has happened: run it later, when the
		 * running ones end, or after the retry backoff. */
		if (waiting || s->nprocs)
			continue;
		wk_oom_retry(w, s, "out of memory starting a tool");
		return 1;
	}
	if (s->nprocs)
		proc_rearm(w, s);
	return waiting;
}
