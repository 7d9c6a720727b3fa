/*
 * fanout.c — map_reduce and plan_execute: a split (plan) call; one child
 * ReAct session per part (a plan step starts once the steps it depends on
 * ended); the parent parked (WAITING, no slot, no lease) while its
 * children run, woken by the first that ends; then a reduce (synthesis)
 * call.  A child is allocated, recorded in the parent and only then
 * published, so a crash neither loses a part nor orphans one.
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

#define SPLIT_PROMPT "forge:split. Split the user's task into independent parts that " \
	"can each be answered on its own. Reply with only a JSON object: " \
	"{\"parts\": [\"first part\", \"second part\"]}, at most %u parts."

#define REDUCE_PROMPT "forge:reduce. Combine the answers to the parts of the user's task " \
	"into one answer to the whole task."

#define PLAN_PROMPT "forge:plan. Plan the user's task as steps. Reply with only a JSON " \
	"object: {\"steps\": [{\"task\": \"...\", \"depends_on\": []}, {\"task\": \"...\", " \
	"\"depends_on\": [0]}]}, at most %u steps; depends_on lists earlier steps by index."

#define SYNTH_PROMPT "forge:reduce. Using the results of the steps, answer the user's task."

/* The parent's view of its own committed log; a corrupt log fails it. */
/* The view points into the log: in place, or into *tmp (a copy of a log
 * past its inline part), which the caller frees after it is done with v. */
static int mr_view(worker_t *w, wsess_t *s, fg_mr_view_t *v, uint8_t **tmp)
{
	char err[200];
	uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
							memory_order_relaxed));
	const uint8_t *log = fg_session_log(w->r, s->idx, len, tmp);
	if (!log) {
		wk_oom_retry(w, s, "out of memory reading the conversation");
		return -1;
	}
	if (fg_mr_view(log, len, v, err, sizeof(err)) < 0) {
		wk_fail(w, s, "%s", err);
		return -1;
	}
	return 0;
}

static uint32_t mr_provider(const wsess_t *s)
{
	return s->provider & 0xffff;
}

static uint32_t mr_child_provider(const wsess_t *s)
{
	uint32_t c = s->provider >> 16;
	return c ? c - 1 : s->provider & 0xffff;
}

/* The split arrived: parts from its JSON, or the whole task as one part. */
static void mr_commit_split(worker_t *w, wsess_t *s, const fg_mr_view_t *v, fg_llm_reply_t *r)
{
	fg_str_t parts[FG_MAX_PARTS];
	static uint64_t deps[FG_MAX_PARTS][FG_MAX_PARTS / 64];   /* (the loop's one thread) */
	memset(deps, 0, sizeof(deps));
	int plan = s->workflow == FG_WF_PLAN_EXECUTE;
	uint32_t n = 0, max = s->steps < FG_MAX_PARTS ? s->steps : FG_MAX_PARTS;
	json_t *j = r->ncalls ? NULL : json_loadb(r->content, r->content_n, 0, NULL);
	json_t *a = json_object_get(j, plan ? "steps" : "parts");
	size_t i;
	json_t *x;
	if (json_array_size(a) > max) {
		/* over the session's maximum: said, not silently cut or collapsed */
		size_t got = json_array_size(a);
		json_decref(j);
		wk_fail(w, s, "the %s has %zu %s, more than this session's maximum of %u (max_parts "
			"when it was submitted; at most %u)", plan ? "plan" : "split", got,
			plan ? "steps" : "parts", max, FG_MAX_PARTS);
		return;
	}
	json_array_foreach(a, i, x) {
		json_t *task = plan && json_is_object(x) ? json_object_get(x, "task") : x;
		if (!json_is_string(task) || json_string_length(task) == 0)
			break;
		if (json_string_length(task) > 65535) {
			/* the record's format holds a part of up to 64 KB: said */
			size_t got = json_string_length(task);
			json_decref(j);
			wk_fail(w, s, "%s %zu of the %s is %zu bytes, more than the 65535 a %s "
				"may hold", plan ? "step" : "part", i + 1, plan ? "plan" : "split",
				got, plan ? "step" : "part");
			return;
		}
		parts[n] = (fg_str_t){ json_string_value(task), (uint32_t)json_string_length(task) };
		size_t k;
		json_t *d;
		/* only earlier steps: a plan cannot make a cycle */
		json_array_foreach(json_object_get(x, "depends_on"), k, d)
			if (json_is_integer(d) && json_integer_value(d) >= 0 &&
			    json_integer_value(d) < (json_int_t)n)
				deps[n][json_integer_value(d) / 64] |= 1ull << (json_integer_value(d) % 64);
		n++;
	}
	if (n == 0 || n != json_array_size(a)) {
		/* a malformed plan is handled, not fatal: one part, the task itself */
		log_debug("session %u: split reply is not a usable plan; one part", s->idx);
		n = 1;
		parts[0] = v->prompt;
		memset(deps[0], 0, sizeof(deps[0]));
	}
	fg_buf_t b = wk_buf(w);
	fg_wstate_t st = s->st;
	wk_usage(&b, &st, r);
	fg_buf_parts(&b, parts, n);
	if (plan)
		fg_buf_deps(&b, (const uint64_t (*)[FG_MAX_PARTS / 64])deps, n);
	int rc = wk_commit(w, s, &st, &b);
	json_decref(j);
	if (rc == 0)
		wk_rq_push(w, s);
}

static void mr_commit_answer(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	if (r->ncalls) {
		wk_fail(w, s, "the reduce call answered with tool calls, not an answer");
		return;
	}
	fg_buf_t b = wk_buf(w);
	fg_wstate_t st = s->st;
	wk_usage(&b, &st, r);
	fg_buf_rec(&b, FG_REC_ASSISTANT, r->content, r->content_n);
	if (wk_commit(w, s, &st, &b) == 0)
		wk_finish(w, s, FG_S_DONE);
}

void fg_wf_fanout_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	fg_mr_view_t v;
	uint8_t *tmp = NULL;
	if (mr_view(w, s, &v, &tmp) == 0) {
		wk_reply_done(w, s, r);
		if (v.nparts == 0)
			mr_commit_split(w, s, &v, r);
		else
			mr_commit_answer(w, s, r);
	}
	free(tmp);
}

/* A child's state: 1 terminal (answer or error in *text, whole, a copy in
 * *own that the caller frees; own NULL: the state only), 0 running, -1 gone (rolled back by a crash, or its record reused):
 * make another.  The child is read through a snapshot, so a record reused
 * while it is read is "gone", never another session's answer. */
static int mr_child(worker_t *w, uint64_t h, int *ok, fg_str_t *text, char **own)
{
	fg_snap_t sn;
	uint64_t c;
	if (h == 0 || !fg_session_valid(w->r, h, &c))
		return -1;
	if (!FG_S_FINISHED(FG_CTL_STATE(c)))
		return 0;
	int rc = fg_session_snapshot(w->r, h, &sn, 1);
	if (rc == -ENOENT)
		return -1;   /* freed since: as if never made */
	if (!own) {
		/* only whether it ended */
		if (rc == 0)
			fg_snap_free(&sn);
		return 1;
	}
	*ok = 0;
	*own = NULL;
	*text = (fg_str_t){ "no answer", 9 };
	if (rc < 0) {
		*text = (fg_str_t){ "(out of memory reading the answer)", 34 };
		return 1;
	}
	fg_react_view_t rv;
	char err[200];
	if (fg_react_view(sn.log, sn.len, &rv, err, sizeof(err)) == 0) {
		/* the whole answer (or error), however long: copied, since the
		 * snapshot is freed here */
		fg_str_t t = rv.final ? rv.answer : rv.failed ? rv.error : *text;
		char *cp = malloc(t.n + 1);
		if (cp) {
			memcpy(cp, t.p, t.n);
			*own = cp;
			*ok = rv.final;
			*text = (fg_str_t){ cp, t.n };
		} else {
			*text = (fg_str_t){ "(out of memory reading the answer)", 34 };
		}
	}
	fg_snap_free(&sn);
	return 1;
}

/* The client's parameters (a chat completion's PARAMS record) for one of
 * the run's model calls: sampling (temperature, top_p, seed) for every
 * call and every part's child; the answer's shape (max_tokens,
 * max_completion_tokens, stop, response_format) only for the call that
 * writes the answer (a split or a plan must stay whole JSON).  NULL: none. */
static json_t *mr_params(const fg_mr_view_t *v, int answer)
{
	static const char *const shape[] = { "max_tokens", "max_completion_tokens", "stop",
					      "response_format", "tools", "tool_choice" };
	if (!v->params.n)
		return NULL;
	json_t *p = json_loadb(v->params.p, v->params.n, 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		return NULL;
	}
	for (size_t i = 0; !answer && i < sizeof(shape) / sizeof(shape[0]); i++)
		json_object_del(p, shape[i]);
	if (!json_object_size(p)) {
		json_decref(p);
		return NULL;
	}
	return p;
}

static void mr_call(worker_t *w, wsess_t *s, const fg_mr_view_t *v, int reduce,
		    const fg_agent_rt_t *rt)
{
	if (wk_over_budget(w, s, rt))
		return;
	const fg_provider_cfg_t *p = &w->cfg->providers[mr_provider(s)];
	if (p->type == FG_PROV_SCRIPTED) {
		fg_llm_reply_t r;
		char id[FG_MAX_CALLS][32];
		fg_llm_scripted((const fg_script_step_t *)p->script, p->nscript, v->turns, &r, id);
		fg_wf_fanout_reply(w, s, &r);
		return;
	}
	char sys[400];
	json_t *msgs;
	int plan = s->workflow == FG_WF_PLAN_EXECUTE;
	/* an agent's own prompts over forge's */
	const char *mine = !rt ? NULL : plan ? (reduce ? rt->synthesis : rt->planner)
				     : (reduce ? rt->reducer : rt->splitter);
	if (!reduce) {
		snprintf(sys, sizeof(sys), plan ? PLAN_PROMPT : SPLIT_PROMPT,
			 s->steps < FG_MAX_PARTS ? s->steps : FG_MAX_PARTS);
		msgs = json_pack("[{s:s,s:s},{s:s,s:s%}]", "role", "system", "content", mine ? mine : sys,
				 "role", "user", "content", v->prompt.p, (size_t)v->prompt.n);
	} else {
		size_t cap = 4096 + v->prompt.n, n = 0;
		char *u = malloc(cap);
		if (!u) {
			wk_oom_retry(w, s, "out of memory building the request");
			return;
		}
		n += (size_t)snprintf(u, cap, "%.*s\n\n%s:\n", (int)v->prompt.n, v->prompt.p,
				      plan ? "Results of the steps" : "Answers to the parts");
		for (uint32_t i = 0; i < v->nparts; i++) {
			int ok = 0;
			fg_str_t t = { "", 0 };
			char *own = NULL;
			mr_child(w, v->child[i], &ok, &t, &own);
			size_t need = n + v->parts[i].n + t.n + 32;
			if (need > cap) {
				cap = need * 2;
				char *nu = realloc(u, cap);
				if (!nu) {
					free(own);
					free(u);
					wk_oom_retry(w, s, "out of memory building the request");
					return;
				}
				u = nu;
			}
			n += (size_t)snprintf(u + n, cap - n, "- %.*s: %s%.*s\n", (int)v->parts[i].n,
					      v->parts[i].p, ok ? "" : "(failed) ", (int)t.n, t.p);
			free(own);
		}
		msgs = json_pack("[{s:s,s:s},{s:s,s:s%}]", "role", "system", "content",
				 mine ? mine : plan ? SYNTH_PROMPT : REDUCE_PROMPT, "role", "user",
				 "content", u, n);
		free(u);
	}
	/* the session's own system prompt (an agent's, the client's) after
	 * forge's instructions */
	if (msgs && v->system.n)
		json_array_insert_new(msgs, 1, json_pack("{s:s,s:s%}", "role", "system", "content",
							 v->system.p, (size_t)v->system.n));
	if (!msgs) {
		wk_oom_retry(w, s, "out of memory building the request");
		return;
	}
	size_t n;
	json_t *prm = mr_params(v, reduce);
	char *body = fg_llm_request(p->model, msgs, NULL, prm, (int)p->stream, &n);
	json_decref(prm);
	json_decref(msgs);
	wk_post(w, s, p, body, n);
}

/* What a parked parent waits for: any of these parts' children ending. */
typedef struct mr_wait {
	worker_t *w;
	uint32_t idx;
	uint8_t pend[FG_MAX_PARTS];   /* 1: its child was running (or new) */
} mr_wait_t;

/* fg_session_park's second look: has any awaited child ended since? */
static int mr_ended(void *arg)
{
	mr_wait_t *m = arg;
	worker_t *w = m->w;
	fg_mr_view_t v;
	char err[200];
	uint64_t ck = atomic_load_explicit(&fg_sess(w->r, m->idx)->ckpt, memory_order_acquire);
	uint32_t len = FG_CKPT_LEN(ck) <= fg_log_max(w->r) ? FG_CKPT_LEN(ck) : 0;
	uint8_t *tmp = NULL;
	const uint8_t *log = fg_session_log(w->r, m->idx, len, &tmp);
	int ended = 0;
	/* unreadable (no memory, or a record reused meanwhile): wake it, and
	 * let the next claim say what is wrong (a reused one refuses the wake) */
	if (!log || fg_mr_view(log, len, &v, err, sizeof(err)) < 0)
		ended = 1;
	for (uint32_t i = 0; !ended && i < v.nparts && i < FG_MAX_PARTS; i++) {
		uint64_t c;
		if (m->pend[i] && (!fg_session_valid(w->r, v.child[i], &c) ||
				   FG_S_FINISHED(FG_CTL_STATE(c))))
			ended = 1;
	}
	free(tmp);
	return ended;
}

/* A parent whose children all run: parked, holding no slot and no lease,
 * until the first of them ends (waiting holds nothing). */
static void mr_park(worker_t *w, wsess_t *s, mr_wait_t *m)
{
	wk_park(w, s, mr_ended, m);
}

static void fanout_step(worker_t *w, wsess_t *s, fg_mr_view_t *pv, const fg_agent_rt_t *rt);

void fg_wf_fanout_step(worker_t *w, wsess_t *s)
{
	fg_mr_view_t v;
	uint8_t *tmp = NULL;
	fg_agent_rt_t rt;
	if (mr_view(w, s, &v, &tmp) == 0) {
		int a = fg_agent_parse(v.agent, &rt);
		if (a < 0)
			wk_fail(w, s, "the session's agent record is malformed");
		else
			fanout_step(w, s, &v, a ? &rt : NULL);
		if (a > 0)
			fg_agent_free(&rt);
	}
	free(tmp);
}

static void fanout_step(worker_t *w, wsess_t *s, fg_mr_view_t *pv, const fg_agent_rt_t *rt)
{
	fg_mr_view_t v = *pv;
	if (v.final || v.failed) {
		wk_finish(w, s, v.final ? FG_S_DONE : FG_S_FAILED);
		return;
	}
	if (wk_past_deadline(w, s, rt))
		return;
	if (mr_provider(s) >= w->cfg->nproviders || mr_child_provider(s) >= w->cfg->nproviders) {
		wk_fail(w, s, "provider %u is not configured", mr_provider(s));
		return;
	}
	if (v.nparts == 0) {
		mr_call(w, s, &v, 0, rt);
		return;
	}
	if (wk_over_budget(w, s, rt))
		return;   /* (no more parts once the plan spent it) */
	int waiting = 0, refused = 0;
	mr_wait_t m;
	memset(&m, 0, sizeof(m));
	m.w = w;
	m.idx = s->idx;
	for (uint32_t i = 0; i < v.nparts; i++) {
		int st = mr_child(w, v.child[i], NULL, NULL, NULL);
		if (st == 0) {
			waiting = 1;
			m.pend[i] = 1;
		}
		if (st >= 0)
			continue;
		/* plan_execute: a step starts once the steps it depends on ended
		 * (a step not ready waits on one that runs, and is in pend) */
		int ready = 1;
		for (uint32_t d = 0; d < i; d++)
			if (fg_mr_dep(&v, i, d) && mr_child(w, v.child[d], NULL, NULL, NULL) != 1)
				ready = 0;
		if (!ready) {
			waiting = 1;
			continue;
		}
		/* A child for part i: allocated under this worker's lease, its
		 * handle committed in the parent, then published.  A death before
		 * the publish rolls the child back to FREE, and the parent, resumed,
		 * makes another (its CHILD record then names a FREE or reused
		 * record: mr_child says -1). */
		/* the part, then the whole result of each step it depends on:
		 * no cap here; a prompt past region.session_max_bytes is refused
		 * by the allocation (E2BIG), with that setting named */
		size_t pcap = (size_t)v.parts[i].n + 64, pn = 0;
		for (uint32_t d = 0; d < i; d++)
			if (fg_mr_dep(&v, i, d))
				pcap += (size_t)v.parts[d].n + 64;
		char *prompt = malloc(pcap);
		if (!prompt) {
			wk_oom_retry(w, s, "out of memory building a step's prompt");
			return;
		}
		pn += (size_t)snprintf(prompt, pcap, "%.*s", (int)v.parts[i].n, v.parts[i].p);
		for (uint32_t d = 0; d < i; d++) {
			if (!fg_mr_dep(&v, i, d))
				continue;
			int ok = 0;
			fg_str_t t = { "", 0 };
			char *own = NULL;
			mr_child(w, v.child[d], &ok, &t, &own);
			size_t need = pn + (size_t)v.parts[d].n + t.n + 64;
			if (need > pcap) {
				char *np = realloc(prompt, need);
				if (!np) {
					free(own);
					free(prompt);
					wk_oom_retry(w, s, "out of memory building a step's prompt");
					return;
				}
				prompt = np;
				pcap = need;
			}
			pn += (size_t)snprintf(prompt + pn, pcap - pn, "%s- result of \"%.*s\": %.*s",
					       pn == v.parts[i].n ? "\n\nResults it builds on:\n" : "\n",
					       (int)v.parts[d].n, v.parts[d].p, (int)t.n, t.p);
			free(own);
		}
		fg_submit_t cp = { FG_WF_REACT, w->cfg->max_steps, mr_child_provider(s), NULL, prompt };
		cp.parent = s->idx + 1;
		/* the client's sampling parameters go to the child's calls too */
		json_t *prm = mr_params(&v, 0);
		char *pj = prm ? json_dumps(prm, JSON_COMPACT) : NULL;
		fg_buf_t cr = { NULL, 0, 0, 0, fg_log_max(w->r), 1, 0 };
		json_decref(prm);
		if (pj || v.agent.n || v.system.n) {
			/* an agent's session: each part runs under its tools and
			 * limits too (its AGENT record), and the system prompt */
			if (v.agent.n)
				fg_buf_rec(&cr, FG_REC_AGENT, v.agent.p, v.agent.n);
			if (v.system.n)
				fg_buf_rec(&cr, FG_REC_SYSTEM, v.system.p, v.system.n);
			if (pj)
				fg_buf_rec(&cr, FG_REC_PARAMS, pj, strlen(pj));
			fg_buf_rec(&cr, FG_REC_USER, prompt, strlen(prompt));
			free(pj);
			if (cr.oom) {
				free(cr.p);
				free(prompt);
				wk_oom_retry(w, s, "out of memory building a part's session");
				return;
			}
			if (cr.overflow) {
				free(cr.p);
				free(prompt);
				wk_fail(w, s, "cannot create the session for part %u: the part is "
					"longer than a session may hold (region.session_max_bytes)", i + 1);
				return;
			}
			cp.recs = cr.p;
			cp.recs_n = cr.n;
		}
		fg_handle_t h;
		uint32_t entry;
		int rc = fg_session_alloc(&w->a, &cp, &h, &entry);
		free(cr.p);
		free(prompt);
		if (rc == -ENOSPC || rc == -EBUSY) {
			refused = rc;   /* table (or lease table) full: try again later */
			break;
		}
		if (rc < 0) {
			wk_fail(w, s, "cannot create the session for part %u: %s", i + 1,
				   rc == -E2BIG ? "the part is longer than a session may hold "
				   "(region.session_max_bytes)" : strerror(-rc));
			return;
		}
		FG_CRASHPOINT("mapreduce.child.after_alloc");
		fg_buf_t b = wk_buf(w);
		fg_buf_child(&b, i, h);
		fg_wstate_t ws = s->st;
		ws.checksum = 0;   /* a record was found: no refusal in a row */
		/* (wk_commit: on failure the session fails or retries; the child,
		 * never published, is given back first) */
		if (b.overflow || b.oom) {
			fg_session_unalloc(&w->a, FG_HANDLE_IDX(h), entry);
			wk_commit(w, s, &ws, &b);   /* reports it */
			return;
		}
		int crc = fg_session_commit(&w->a, s->idx, &ws, b.p, b.n);
		wk_buf_done(w, &b);
		if (crc < 0) {
			fg_session_unalloc(&w->a, FG_HANDLE_IDX(h), entry);
			if (crc == -ENOSPC || crc == -EIO)
				wk_retry_later(w, s, -1, "no space left on the region's file system");
			else if (crc == -E2BIG)
				wk_fail(w, s, "the conversation would pass %llu bytes "
					"(region.session_max_bytes)", (unsigned long long)fg_log_max(w->r));
			else
				wk_fail(w, s, "cannot write the checkpoint: %s", strerror(-crc));
			return;
		}
		s->st = ws;
		FG_CRASHPOINT("mapreduce.child.after_record");
		fg_session_publish(&w->a, FG_HANDLE_IDX(h), entry);
		waiting = 1;
		m.pend[i] = 1;
	}
	if (refused) {
		/* No record (or lease entry) for a child now.  Not a spin, and no
		 * slot held: parked, it is woken by a child that ends or, with
		 * none running, by the supervisor's sweep (sweep_after_ms later).
		 * When the refusals began is committed (the state's checksum,
		 * unused by this workflow), so the limit holds across wake-ups
		 * and crashes. */
		uint64_t now = fg_now_ns(), since = s->st.checksum;
		if (since && now > since &&
		    now - since > (uint64_t)w->cfg->child_alloc_timeout_s * 1000000000ull) {
			wk_fail(w, s, "no %s for a child session for %u s "
				   "(workflows.child_alloc_timeout_s): raise %s", refused == -ENOSPC ?
				   "free session record" : "lease entry", w->cfg->child_alloc_timeout_s,
				   refused == -ENOSPC ? "region.sessions, or purge sooner (region.retain_s)"
						      : "worker.max_inflight");
			return;
		}
		if (!since) {
			log_warnx("session %u: no %s for a child session (region.sessions %u); "
				  "waiting for one", s->idx, refused == -ENOSPC ?
				  "free session record" : "lease entry", w->r->hdr->capacity);
			fg_wstate_t ws = s->st;
			ws.checksum = now;
			if (fg_session_commit(&w->a, s->idx, &ws, NULL, 0) == 0)
				s->st = ws;
		}
		mr_park(w, s, &m);
		return;
	}
	if (waiting) {
		mr_park(w, s, &m);
		return;
	}
	mr_call(w, s, &v, 1, rt);
}
