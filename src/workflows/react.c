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
	fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
	fg_wstate_t st = s->st;
	wk_usage(&b, &st, r);
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

void fg_wf_react_step(worker_t *w, wsess_t *s)
{
	fg_react_view_t v;
	char err[200];
	uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
							memory_order_relaxed));
	const uint8_t *log = fg_sess_log(w->r, s->idx);
	if (fg_react_view(log, len, &v, err, sizeof(err)) < 0) {
		wk_fail(w, s, "%s", err);
		return;
	}
	if (v.final) {            /* resumed after its answer was committed */
		wk_finish(w, s, FG_S_DONE);
		return;
	}
	if (v.failed) {
		wk_finish(w, s, FG_S_FAILED);
		return;
	}
	if (wk_past_deadline(w, s))
		return;
	if (v.pending && wk_run_tools(w, s, &v) != 0)
		return;   /* failed, or waiting for a process tool */
	if (v.turns >= s->steps) {
		wk_fail(w, s, "no final answer after %u model turns (max_steps)", v.turns);
		return;
	}
	if (s->provider >= w->cfg->nproviders) {
		wk_fail(w, s, "provider %u is not configured", s->provider);
		return;
	}
	const fg_provider_cfg_t *p = &w->cfg->providers[s->provider];
	if (p->type == FG_PROV_SCRIPTED) {
		fg_llm_reply_t r;
		char id[FG_MAX_CALLS][32];
		fg_llm_scripted((const fg_script_step_t *)p->script, p->nscript, v.turns, &r, id);
		fg_wf_react_reply(w, s, &r);
		return;
	}
	if (p->rate_rps || p->rate_tpm) {
		uint64_t now = fg_now_ns();
		uint64_t wait = fg_rate_admit(&w->r->hdr->rate[s->provider].req_tat,
					      &w->r->hdr->rate[s->provider].tok_tat,
					      p->rate_rps, p->rate_tpm, now);
		if (wait) {
			s->due_ns = now + wait;
			wk_heap_push(w, s);   /* over the provider's rate: try again then */
			return;
		}
	}
	len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt, memory_order_relaxed));
	size_t n;
	char *body = fg_llm_request_log(p->model, log, len, w->tools_str, (int)p->stream, &n,
					err, sizeof(err));
	if (!body) {
		if (errno == ENOMEM)
			wk_oom_retry(w, s, err);   /* a resource, not the session */
		else
			wk_fail(w, s, "%s", err);
		return;
	}
	wk_post(w, s, p, body, n);
}
