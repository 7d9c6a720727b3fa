/*
 * tools.c — a session's tool calls: inline tools run at once, process
 * tools in children (all of a turn's started together) watched by the
 * loop through pidfds and pipes, an http_get through the curl client.
 * Every result is committed before the session goes on; a non-idempotent
 * tool's intent is committed before it starts.
 */
#include "worker/wk.h"
#include "forge/approval.h"
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

/* The result of a call whose arguments a person changed (approval's
 * edit): the model is told first, for the call in its conversation keeps
 * the arguments it gave.  args: those that ran (n 0: read from the call's
 * DECISION in the log). */
int wk_commit_edited(worker_t *w, wsess_t *s, fg_str_t id, fg_str_t args, const char *out)
{
	uint8_t *tmp = NULL;
	json_t *d = NULL;
	if (!args.n) {
		uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
								memory_order_relaxed)), off = 0;
		const uint8_t *log = fg_session_log(w->r, s->idx, len, &tmp);
		fg_rec_t r;
		fg_str_t x, text;
		while (log && fg_rec_next(log, len, &off, &r) > 0)
			if (r.type == FG_REC_DECISION && fg_rec_tool(&r, &x, &text) == 0 &&
			    x.n == id.n && !memcmp(x.p, id.p, id.n)) {
				json_decref(d);
				d = json_loadb(text.p, text.n, 0, NULL);
			}
		const char *a = json_string_value(json_object_get(d, "arguments"));
		if (a)
			args = (fg_str_t){ a, strlen(a) };
	}
	size_t n = strlen(out), an = args.n > 1024 ? 1024 : args.n;
	char *t = args.n ? malloc(n + an + 96) : NULL;
	int rc;
	if (t) {
		int k = snprintf(t, an + 96, "(a person changed the arguments to %.*s%s)\n", (int)an,
				 args.p, args.n > an ? "..." : "");
		memcpy(t + k, out, n + 1);
		rc = commit_result(w, s, id, t);
	} else {
		rc = commit_result(w, s, id, out);   /* (no memory: without the note) */
	}
	free(t);
	json_decref(d);
	free(tmp);
	return rc;
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
	int edited = p->edited;
	memcpy(id, p->id, idn);
	proc_close(w, s, p);
	proc_rearm(w, s);
	int rc = edited ? wk_commit_edited(w, s, (fg_str_t){ id, idn }, (fg_str_t){ NULL, 0 }, res)
			: commit_result(w, s, (fg_str_t){ id, idn }, res);
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
	int rc = s->web.edited ? wk_commit_edited(w, s, id, (fg_str_t){ NULL, 0 }, res)
			       : commit_result(w, s, id, res);
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
/* The default answer once a call's approval_timeout_s has passed, committed
 * (a DECISION by "timeout"); then it is acted on like a person's.  The
 * JSON goes to *dj (the caller's). */
static int decide_default(worker_t *w, wsess_t *s, const fg_call_t *c, const fg_ask_t *a,
			  const fg_agent_rt_t *rt, json_t **dj)
{
	char reason[160];
	snprintf(reason, sizeof(reason), "no answer within %u s (approval_timeout_s)",
		 rt ? rt->approval_timeout_s : 0);
	*dj = json_pack("{s:s,s:s,s:s,s:I}", "decision",
			a->kind == FG_ASK_APPROVE && a->dflt ? "approve" : "reject",
			"reason", reason, "by", "timeout", "at_ms", (json_int_t)fg_wall_ms());
	char *d = *dj ? json_dumps(*dj, JSON_COMPACT) : NULL;
	if (!d)
		return -ENOMEM;
	fg_buf_t b = wk_buf(w);
	fg_wstate_t st = s->st;
	fg_buf_idtext(&b, FG_REC_DECISION, c->id, d, strlen(d));
	free(d);
	return wk_commit(w, s, &st, &b);
}

/* What a person decided, for a call that waited: 0 run it (with *args,
 * maybe edited: *owned is then the caller's to free), 1 the result is in
 * out (rejected, or ask_human's answer). */
static int apply_decision(const fg_call_t *c, const fg_ask_t *a, json_t *d, fg_str_t *args,
			  char **owned, char *out, size_t outn)
{
	const char *dec = json_string_value(json_object_get(d, "decision"));
	const char *reason = json_string_value(json_object_get(d, "reason"));
	const char *by = json_string_value(json_object_get(d, "by"));
	int timeout = by && !strcmp(by, "timeout");
	if (!dec)
		dec = "reject";
	if (a->kind == FG_ASK_QUESTION) {
		const char *ans = json_string_value(json_object_get(d, "answer"));
		if (!strcmp(dec, "answer") && ans)
			snprintf(out, outn, "%s", ans);
		else
			snprintf(out, outn, "no answer from a person%s%s", reason ? ": " : "",
				 reason ? reason : "");
		return 1;
	}
	if (!strcmp(dec, "reject")) {
		snprintf(out, outn, "%s: the call of %.*s was not run%s%s",
			 timeout ? "not approved" : "rejected by a person", (int)c->name.n, c->name.p,
			 reason && reason[0] ? "; " : "", reason ? reason : "");
		return 1;
	}
	json_t *ea = json_object_get(d, "arguments");
	if (!strcmp(dec, "edit") && json_is_string(ea)) {
		if (!(*owned = strdup(json_string_value(ea))))
			return -1;
		*args = (fg_str_t){ *owned, strlen(*owned) };
	}
	return 0;
}

int wk_run_tools(worker_t *w, wsess_t *s, fg_react_view_t *v, const fg_agent_rt_t *rt)
{
	int waiting = 0, person = 0;
	uint32_t nask = 0;
	uint8_t ask[FG_MAX_CALLS];
	char *edited = NULL;   /* (a call's arguments as a person edited them) */
	int rc = 0;
	for (uint32_t i = 0; i < v->ncalls; i++) {
		free(edited);
		edited = NULL;
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
		fg_str_t args = c->args;
		int ap = v->intent[i] || (rt && !fg_agent_allows(rt, c->name.p, c->name.n)) ? 0 :
			 fg_agent_approval(rt, c->name.p, c->name.n);
		if (ap != FG_APPROVAL_NONE) {
			/* Approval (or ask_human): the question is committed once
			 * nothing else of the turn runs, then the session parks
			 * until a person's DECISION is committed (or the timeout's:
			 * here, by the worker that the sweep woke). */
			json_t *dj = NULL;
			if (!v->asked[i]) {
				ask[nask++] = (uint8_t)i;
				continue;
			}
			if (v->decided[i]) {
				dj = json_loadb(v->decision[i].p, v->decision[i].n, 0, NULL);
			} else if (v->ask[i].deadline_ms && fg_wall_ms() >= v->ask[i].deadline_ms) {
				int dr = decide_default(w, s, c, &v->ask[i], rt, &dj);
				if (dr == -ENOMEM) {
					json_decref(dj);
					goto oom;
				}
				if (dr < 0) {
					json_decref(dj);
					rc = -1;
					goto out;
				}
				v->decided[i] = 1;
			} else {
				person = 1;
				continue;
			}
			size_t cap = sizeof(out);
			char *big = NULL;
			if (ap == FG_APPROVAL_ASK && (big = malloc(cap = 65536 + 256)) == NULL) {
				json_decref(dj);
				goto oom;
			}
			int k = dj ? apply_decision(c, &v->ask[i], dj, &args, &edited, big ? big : out, cap)
				   : (snprintf(out, sizeof(out), "error: the decision for this call is "
					       "unreadable: not run"), 1);
			json_decref(dj);
			if (k < 0) {
				free(big);
				goto oom;
			}
			if (k == 1) {
				int cr = commit_result(w, s, c->id, big ? big : out);
				free(big);
				if (cr < 0) {
					rc = -1;
					goto out;
				}
				v->answered[i] = 1;
				continue;
			}
			free(big);
		}
		if (v->intent[i]) {
			if (!strcmp(w->cfg->interrupted, "fail")) {
				wk_fail(w, s, "tool %.*s (call %.*s) was interrupted by a crash and is "
					   "not idempotent (or was approved to run once): not run again",
					   (int)c->name.n, c->name.p,
					   (int)c->id.n, c->id.p);
				goto fail;
			}
			snprintf(out, sizeof(out), "interrupted: the tool may or may not have run; "
				 "it is not idempotent (or was approved to run once), so it was not "
				 "run again");
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
			if (fg_tool_http_url(args.p, args.n, url, sizeof(url), out, sizeof(out)) < 0)
				goto result;
			if (s->in_http) {
				waiting = 1;   /* one http_get at a time per session */
				continue;
			}
			memcpy(s->web.id, c->id.p, c->id.n);
			s->web.idn = c->id.n;
			s->web.tool = t;
			s->web.edited = edited != NULL;
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
		    t->prepare(t, args.p, args.n, argv, abuf, sizeof(abuf), &in, &in_n, out,
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
		if (!t->idempotent || ap != FG_APPROVAL_NONE) {
			/* (an approved call runs once, whatever the tool: a
			 * person said yes to one run) */
			uint8_t id[300];
			fg_buf_t pb = { id, 0, sizeof(id), 0 };
			fg_buf_str(&pb, c->id.p, c->id.n);
			fg_buf_t ib = wk_buf(w);
			fg_buf_rec(&ib, FG_REC_INTENT, id, pb.n);
			fg_wstate_t st = s->st;
			if (wk_commit(w, s, &st, &ib) < 0)
				goto fail;
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
			t->run(t, args.p, args.n, big ? big : out, big ? cap : sizeof(out));
			int cr = edited ? wk_commit_edited(w, s, c->id, args, big ? big : out)
					: commit_result(w, s, c->id, big ? big : out);
			free(big);
			if (cr < 0)
				goto fail;
			v->answered[i] = 1;
			continue;
		}
		if (t->kind == FG_TOOL_MCP) {   /* answered later, by worker/mcp.c */
			if (wk_mcp_call(w, s, t, c->id, args, edited != NULL, out, sizeof(out)) < 0)
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
		p->edited = edited != NULL;
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
		if ((edited ? wk_commit_edited(w, s, c->id, args, out) : commit_result(w, s, c->id, out)) < 0)
			goto fail;
		v->answered[i] = 1;
		continue;
oom:
		/* Nothing of this call has happened: run it later, when the
		 * running ones end, or after the retry backoff. */
		if (waiting || s->nprocs)
			continue;
		wk_oom_retry(w, s, "out of memory starting a tool");
		rc = 1;
		goto out;
	}
	if (s->nprocs)
		proc_rearm(w, s);
	if (waiting) {
		rc = 1;   /* (questions wait until the turn's other calls end) */
	} else if (nask) {
		fg_buf_t b = wk_buf(w);
		uint64_t now = fg_wall_ms(), wake = 0;
		/* the run's deadline, on the wall clock: the sweep wakes it
		 * then, to fail (wk_past_deadline), not to wait on */
		uint64_t d = rt->deadline_s ? rt->deadline_s : w->cfg->deadline_s;
		if (d) {
			uint64_t end = fg_sess(w->r, s->idx)->created_ns + d * 1000000000ull, mono = fg_now_ns();
			wake = now + (end > mono ? (end - mono) / 1000000u : 0) + 1;
		}
		for (uint32_t k = 0; k < nask; k++) {
			const fg_call_t *c = &v->calls[ask[k]];
			fg_ask_t a = { 0, FG_ASK_APPROVE, (uint8_t)rt->approval_default, wake };
			if (fg_agent_approval(rt, c->name.p, c->name.n) == FG_APPROVAL_ASK)
				a.kind = FG_ASK_QUESTION;
			if (rt->approval_timeout_s)
				a.deadline_ms = now + (uint64_t)rt->approval_timeout_s * 1000u;
			fg_buf_ask(&b, c->id, &a);
		}
		/* room for the answers: a rejection with its reason always fits
		 * after the questions, or the session could wait with no
		 * answer it can take */
		uint64_t have = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
								 memory_order_relaxed));
		uint64_t need = have + b.n + (uint64_t)nask * (FG_APPROVAL_TEXT_MAX + 512);
		if (need > fg_log_max(w->r)) {
			wk_buf_done(w, &b);
			wk_fail(w, s, "no room left for a person's answer: the conversation holds %llu "
				"bytes, the questions and their answers need %llu "
				"(region.session_max_bytes: %llu)", (unsigned long long)have,
				(unsigned long long)(need - have), (unsigned long long)fg_log_max(w->r));
			goto fail;
		}
		fg_wstate_t st = s->st;
		if (wk_commit(w, s, &st, &b) < 0)
			goto fail;
		FG_CRASHPOINT("approval.ask.after_commit");
		rc = 2;
	} else {
		rc = person ? 2 : 0;
	}
out:
	free(edited);
	return rc;
fail:
	rc = -1;
	goto out;
}
