/*
 * react.c — ReAct: model turn -> tool calls -> results -> model turn ...
 * until a final answer, with max_steps.  What to do next is read from the
 * committed conversation (agent/views.c), so a resumed session continues
 * exactly where the dead one's last commit left it.
 */
#include "worker/wk.h"
#include "workflows/workflows.h"
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

/* A model turn arrived: commit it (usage + calls or final answer). */
void fg_wf_react_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	fg_buf_t b = wk_buf(w);
	fg_wstate_t st = s->st;
	wk_usage(&b, &st, r);
	if (r->ncalls && r->content_n)
		fg_buf_rec(&b, FG_REC_NOTE, r->content, r->content_n);   /* said beside the calls */
	if (r->ncalls)
		fg_buf_toolcalls(&b, r->calls, r->ncalls);
	else
		fg_buf_rec(&b, FG_REC_ASSISTANT, r->content, r->content_n);
	if (wk_commit(w, s, &st, &b) < 0)
		return;
	wk_reply_done(w, s, r);
	if (r->ncalls == 0)
		wk_finish(w, s, FG_S_DONE);
	else
		wk_rq_push(w, s);   /* the tools run in its next step */
}

/* The session's committed log as one run (in place, or a copy in *tmp). */
static const uint8_t *own_log(worker_t *w, wsess_t *s, uint32_t *len, uint8_t **tmp)
{
	*len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt, memory_order_relaxed));
	return fg_session_log(w->r, s->idx, *len, tmp);
}

/* fg_session_park's second look: a person's answer comes only through
 * fg_session_answer, from WAITING, so none can have come while we held
 * the lease (and a timeout is the sweep's to see). */
static int no_answer_yet(void *arg)
{
	(void)arg;
	return 0;
}

void fg_wf_react_step(worker_t *w, wsess_t *s)
{
	fg_react_view_t v;
	char err[200];
	uint32_t len;
	uint8_t *tmp = NULL, *tmp2 = NULL;
	fg_agent_rt_t rt = { 0 };
	char *tools = NULL;
	const uint8_t *log = own_log(w, s, &len, &tmp);
	if (!log) {
		wk_oom_retry(w, s, "out of memory reading the conversation");
		return;
	}
	if (fg_react_view(log, len, &v, err, sizeof(err)) < 0) {
		wk_fail(w, s, "%s", err);
		goto out;
	}
	if (v.final) {            /* resumed after its answer was committed */
		wk_finish(w, s, FG_S_DONE);
		goto out;
	}
	if (v.failed) {
		wk_finish(w, s, FG_S_FAILED);
		goto out;
	}
	/* a named agent's session: its limits and tools, as they were when it
	 * began (its AGENT record) */
	if (fg_agent_parse(v.agent, &rt) < 0) {
		wk_fail(w, s, "the session's agent record is malformed");
		goto out;
	}
	if (wk_past_deadline(w, s, rt.j ? &rt : NULL))
		goto out;
	if (v.pending && v.params.n)
		fg_react_client_calls(&v);
	if (v.pending) {
		int rc = wk_run_tools(w, s, &v, rt.j ? &rt : NULL);
		if (rc == 2)
			wk_park(w, s, no_answer_yet, NULL);   /* a person answers */
		if (rc != 0)
			goto out;   /* failed, waiting for a process tool or a person */
	}
	if (v.nclient) {
		/* the model called tools of the client's (chat completions'
		 * "tools"): this run ends with them, for the client to run */
		wk_finish(w, s, FG_S_DONE);
		goto out;
	}
	if (v.turns >= s->steps) {
		wk_fail(w, s, "no final answer after %u model turns (max_steps)", v.turns);
		goto out;
	}
	if (wk_over_budget(w, s, rt.j ? &rt : NULL))
		goto out;
	if (s->provider >= w->cfg->nproviders) {
		wk_fail(w, s, "provider %u is not configured", s->provider);
		goto out;
	}
	const fg_provider_cfg_t *p = &w->cfg->providers[s->provider];
	if (p->type == FG_PROV_SCRIPTED) {
		fg_llm_reply_t r;
		char id[FG_MAX_CALLS][32];
		fg_llm_scripted((const fg_script_step_t *)p->script, p->nscript, v.turns_since_user,
				&r, id);
		fg_wf_react_reply(w, s, &r);
		goto out;
	}
	if (p->rate_rps || p->rate_tpm) {
		uint64_t now = fg_now_ns();
		uint64_t wait = fg_rate_admit(&w->r->hdr->rate[s->provider].req_tat,
					      &w->r->hdr->rate[s->provider].tok_tat,
					      p->rate_rps, p->rate_tpm, now);
		if (wait) {
			s->due_ns = now + wait;
			wk_heap_push(w, s);   /* over the provider's rate: try again then */
			goto out;
		}
	}
	/* the log again: the tools' results were committed since */
	log = own_log(w, s, &len, &tmp2);
	if (!log) {
		wk_oom_retry(w, s, "out of memory reading the conversation");
		goto out;
	}
	size_t n;
	if (rt.j && rt.tools)
		tools = fg_agent_tools_json(&rt, w->tools);   /* (NULL: none left) */
	char *body = fg_llm_request_log_trim(p->model, log, len, rt.j && rt.tools ? tools :
					     w->tools_str, (int)p->stream,
					     w->cfg->context_max_bytes, &n, err, sizeof(err));
	if (!body) {
		if (errno == ENOMEM)
			wk_oom_retry(w, s, err);   /* a resource, not the session */
		else
			wk_fail(w, s, "%s", err);
		goto out;
	}
	wk_post(w, s, p, body, n);
out:
	fg_agent_free(&rt);
	free(tools);
	free(tmp);
	free(tmp2);
}
