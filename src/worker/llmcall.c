/*
 * llmcall.c — the LLM-call path: one function posts a request to a
 * provider (wk_post) and one takes its completion (wk_on_http_done):
 * retries with backoff and jitter (honouring Retry-After) for connection
 * errors, 429, 5xx and malformed or truncated replies; a refusal or an
 * error object fails the session; a reply goes to its workflow's on_reply.
 * Also what every workflow uses to commit (wk_commit), fail (wk_fail) and
 * count a reply's usage.
 */
#include "worker/wk.h"
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

void wk_fail(worker_t *w, wsess_t *s, const char *fmt, ...)
{
	char msg[400];
	uint8_t rec[420];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_debug("session %u failed: %s", s->idx, msg);
	fg_buf_t b = { rec, 0, sizeof(rec), 0 };
	fg_buf_rec(&b, FG_REC_ERROR, msg, strlen(msg));
	fg_wstate_t st = s->st;
	st.status = FG_WS_FAILED;
	if (fg_session_commit(&w->a, s->idx, &st, rec, b.n) < 0)
		fg_session_commit(&w->a, s->idx, &st, NULL, 0);   /* log full: state only */
	wk_finish(w, s, FG_S_FAILED);
}

/* Commits what b holds with st; fails the session if the log is full. */
int wk_commit(worker_t *w, wsess_t *s, fg_wstate_t *st, fg_buf_t *b)
{
	wk_buf_done(w, b);
	if (b->oom) {   /* not the session's fault: its step runs again later */
		wk_oom_retry(w, s, "out of memory building a checkpoint");
		return -1;
	}
	int rc = b->overflow ? -E2BIG : fg_session_commit(&w->a, s->idx, st, b->p, b->n);
	if (rc == -ENOSPC || rc == -EIO) {   /* the file system's state, not the session's */
		wk_retry_later(w, s, -1, rc == -ENOSPC ? "no space left on the region's file system"
						      : "the region's file system failed a write");
		return -1;
	}
	if (rc == -E2BIG) {
		wk_fail(w, s, "the conversation would pass %llu bytes (region.session_max_bytes)",
			(unsigned long long)fg_log_max(w->r));
		return -1;
	}
	if (rc < 0) {
		wk_fail(w, s, "cannot write the checkpoint: %s", strerror(-rc));
		return -1;
	}
	s->st = *st;
	return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void wk_usage(fg_buf_t *b, fg_wstate_t *st, const fg_llm_reply_t *r)
{
	uint8_t u[8];
	put_u32(u, r->prompt_tokens);
	put_u32(u + 4, r->completion_tokens);
	fg_buf_rec(b, FG_REC_USAGE, u, 8);
	st->step++;
	st->aux[0] += r->prompt_tokens;
	st->aux[1] += r->completion_tokens;
}

void wk_reply_done(worker_t *w, wsess_t *s, const fg_llm_reply_t *r)
{
	uint32_t prov = s->provider & 0xffff;
	s->attempts = 0;
	if (prov < w->cfg->nproviders && w->cfg->providers[prov].rate_tpm)
		fg_rate_tokens(&w->r->hdr->rate[prov].tok_tat, w->cfg->providers[prov].rate_tpm,
			       (uint64_t)r->prompt_tokens + r->completion_tokens, fg_now_ns());
	fg_slot_t *me = w->a.self;
	atomic_fetch_add_explicit(&me->llm_calls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&me->tokens_prompt, r->prompt_tokens, memory_order_relaxed);
	atomic_fetch_add_explicit(&me->tokens_completion, r->completion_tokens, memory_order_relaxed);
}

/* Waits before trying the same model turn again. */
void wk_retry_later(worker_t *w, wsess_t *s, long retry_after_s, const char *why)
{
	const fg_provider_cfg_t *p = &w->cfg->providers[s->provider];
	uint64_t now = fg_now_ns();
	if (s->attempts == 0)
		s->first_fail_ns = now;
	/* given up only when both are spent: max_retries tries, and
	 * give_up_after_s of an outage (a provider down for minutes is waited
	 * out; the session resumes from its last commit meanwhile after any
	 * crash) */
	if (++s->attempts > p->max_retries &&
	    now - s->first_fail_ns >= (uint64_t)p->give_up_after_s * 1000000000ull) {
		wk_fail(w, s, "LLM request failed after %u attempts over %.1f s "
			"(llm.providers.%s.max_retries, give_up_after_s): %s", s->attempts,
			(now - s->first_fail_ns) / 1e9, p->name, why);
		return;
	}
	if (s->attempts == p->max_retries + 1)
		log_warnx("session %u: provider %s failing for %u attempts (%s): waiting it out "
			  "for up to %u s (give_up_after_s)", s->idx, p->name, p->max_retries, why,
			  p->give_up_after_s);
	atomic_fetch_add_explicit(&w->a.self->llm_retries, 1, memory_order_relaxed);
	uint64_t ms;
	if (retry_after_s > 0) {
		ms = (uint64_t)(retry_after_s > 60 ? 60 : retry_after_s) * 1000u;
	} else {
		ms = (uint64_t)p->retry_base_ms << (s->attempts - 1 < 16 ? s->attempts - 1 : 16);
		if (ms > 30000)
			ms = 30000;
		ms = ms / 2 + (uint64_t)random() % (ms / 2 + 1);   /* jitter: 50-100% */
	}
	log_debug("session %u: %s; retry %u in %llu ms", s->idx, why, s->attempts,
		  (unsigned long long)ms);
	s->due_ns = fg_now_ns() + ms * 1000000u;
	/* shown by forgectl session, GET /v1/sessions/{id} and /metrics */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	fg_outage_t o = { s->attempts, s->provider, p->max_retries, wall - (now - s->first_fail_ns),
			  wall + ms * 1000000u, 0, "", "" };
	o.give_up_ns = o.since_ns + (uint64_t)p->give_up_after_s * 1000000000ull;
	snprintf(o.name, sizeof(o.name), "%s", p->name);
	snprintf(o.error, sizeof(o.error), "%s", why);
	fg_live_outage(w->r, s->idx, &o);
	wk_heap_push(w, s);
}

/* A step that could not get memory (a worker at worker.memory_limit_mb, or
 * a host out of it): not the session's fault, so it is retried like a
 * failed request; counted, and logged at most once a second. */
void wk_oom_retry(worker_t *w, wsess_t *s, const char *why)
{
	static uint64_t last_log_ns;
	uint64_t now = fg_now_ns();
	atomic_fetch_add_explicit(&w->a.self->llm_oom, 1, memory_order_relaxed);
	if (now - last_log_ns > 1000000000ull) {
		last_log_ns = now;
		if (w->cfg->memory_limit_mb)
			log_warnx("worker %u: %s (worker.memory_limit_mb is %u); retrying", w->slot,
				  why, w->cfg->memory_limit_mb);
		else
			log_warnx("worker %u: %s; retrying", w->slot, why);
	}
	wk_retry_later(w, s, -1, why);
}


void wk_start_oom(worker_t *w, const char *what)
{
	if (w->cfg->memory_limit_mb)
		log_errx("worker %u: out of memory at start for %s: worker.memory_limit_mb (%u) "
			 "is too small for this configuration", w->slot, what,
			 w->cfg->memory_limit_mb);
	else
		log_errx("worker %u: out of memory at start for %s", w->slot, what);
}

void wk_on_http_done(fg_req_t *q)
{
	worker_t *w = wk_self;
	wsess_t *s = q->owner;
	char why[400];
	s->in_http = 0;
	if ((q->curl_rc == CURLE_WRITE_ERROR && q->oom) || q->curl_rc == CURLE_OUT_OF_MEMORY) {
		fg_req_reset(q);
		wk_oom_retry(w, s, "out of memory for the reply");
		return;
	}
	if (q->curl_rc == CURLE_WRITE_ERROR && q->too_large) {
		fg_req_reset(q);
		wk_fail(w, s, "LLM reply larger than %zu bytes", q->max_reply);
		return;
	}
	if (q->curl_rc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->curl_rc));
		fg_req_reset(q);
		wk_retry_later(w, s, -1, why);
		return;
	}
	if (q->status == 429 || q->status >= 500) {
		snprintf(why, sizeof(why), "HTTP %ld", q->status);
		long ra = q->retry_after_s;
		fg_req_reset(q);
		wk_retry_later(w, s, ra, why);
		return;
	}
	fg_llm_reply_t r;
	if (q->status != 200) {
		fg_llm_parse(q->body ? q->body : "", q->n, &r);
		snprintf(why, sizeof(why), "LLM request refused: HTTP %ld: %s", q->status,
			 r.ok ? "(no error message)" : r.error);
		fg_llm_reply_free(&r);
		fg_req_reset(q);
		wk_fail(w, s, "%s", why);
		return;
	}
	if (q->streaming)
		fg_llm_stream_finish(&q->stream, &r);
	else
		fg_llm_parse(q->body ? q->body : "", q->n, &r);
	fg_req_reset(q);
	if (!r.ok) {
		/* A malformed or truncated reply is a failed try; a refusal or an
		 * error object is the model's answer and is not retried. */
		enum fg_llm_err kind = r.err;
		snprintf(why, sizeof(why), "%s", r.error);
		fg_llm_reply_free(&r);
		if (kind == FG_LLM_NOMEM)
			wk_oom_retry(w, s, why);
		else if (kind == FG_LLM_MALFORMED)
			wk_retry_later(w, s, -1, why);
		else
			wk_fail(w, s, "%s", why);
		return;
	}
	const fg_wf_t *wf = fg_wf_get(s->workflow);
	if (wf && wf->on_reply)
		wf->on_reply(w, s, &r);
	else
		wk_fail(w, s, "a model reply for a workflow that makes no model calls");
	fg_llm_reply_free(&r);
}

/* workflows.deadline_s: a session older than this fails at its next step
 * (the session's creation time is in its record, so the deadline survives
 * crashes and resumptions). */
int wk_past_deadline(worker_t *w, wsess_t *s, const fg_agent_rt_t *rt)
{
	uint64_t d = rt && rt->deadline_s ? rt->deadline_s : w->cfg->deadline_s;
	if (!d || fg_now_ns() - fg_sess(w->r, s->idx)->created_ns <= d * 1000000000ull)
		return 0;
	if (rt && rt->deadline_s)
		wk_fail(w, s, "deadline of %llu s passed (agents.%s.deadline_s)",
			(unsigned long long)d, rt->name);
	else
		wk_fail(w, s, "deadline of %llu s passed (workflows.deadline_s)", (unsigned long long)d);
	return 1;
}

int wk_over_budget(worker_t *w, wsess_t *s, const fg_agent_rt_t *rt)
{
	if (!rt)
		return 0;
	uint64_t pt = s->st.aux[0] + rt->spent_prompt, ct = s->st.aux[1] + rt->spent_completion;
	if (rt->cost_budget > 0 && !rt->price_prompt && !rt->price_completion) {
		wk_fail(w, s, "agents.%s.cost_budget is set but the session's provider has no "
			"prices (llm.providers.NAME.price_prompt_per_mtok, "
			"price_completion_per_mtok)", rt->name);
		return 1;
	}
	double cost = fg_agent_cost(rt, pt, ct);
	if (rt->cost_budget > 0 && cost >= rt->cost_budget) {
		wk_fail(w, s, "cost budget spent: $%.6f of $%.6f (%llu prompt, %llu completion "
			"tokens at the provider's prices; agents.%s.cost_budget)", cost,
			rt->cost_budget, (unsigned long long)pt, (unsigned long long)ct, rt->name);
		return 1;
	}
	uint64_t used = pt + ct;
	if (!rt->token_budget || used < rt->token_budget)
		return 0;
	wk_fail(w, s, "token budget spent: %llu of %llu tokens (%llu prompt, %llu completion; "
		"agents.%s.token_budget)", (unsigned long long)used,
		(unsigned long long)rt->token_budget, (unsigned long long)pt,
		(unsigned long long)ct, rt->name);
	return 1;
}

/* Live text: each piece a streaming provider sends, for readers of the
 * session (chat completions, SSE) before the turn is committed. */
static fg_region_t *live_region;

static void live_text(void *arg, const char *p, size_t n)
{
	wsess_t *s = arg;
	fg_live_append(live_region, s->idx, p, n);
}

void wk_post(worker_t *w, wsess_t *s, const fg_provider_cfg_t *p, char *body, size_t n)
{
	if (!body) {
		wk_oom_retry(w, s, "out of memory building the request");
		return;
	}
	char url[600];
	snprintf(url, sizeof(url), "%s/chat/completions", p->base_url);
	const char *key = p->api_key_env[0] ? getenv(p->api_key_env) : NULL;
	s->req.owner = s;
	s->req.done = wk_on_http_done;
	s->req.max_reply = p->max_reply_bytes;
	s->req.streaming = (int)p->stream;
	s->req.on_text = NULL;
	if (p->stream) {
		live_region = w->r;
		s->req.on_text = live_text;
		s->req.text_arg = s;
		fg_live_begin(w->r, s->idx, ++s->live_attempt);
	}
	if (fg_http_post(w->http, &s->req, url, body, n, key && *key ? key : NULL,
			 (long)p->connect_timeout_ms, (long)p->timeout_ms) < 0) {
		wk_oom_retry(w, s, s->req.errbuf);   /* out of memory or handles */
		return;
	}
	s->in_http = 1;
}
