/*
 * chat.c — POST /v1/chat/completions, OpenAI-compatible: "model" names a
 * workflow ("forge/react", "forge/plan_execute", "forge/map_reduce";
 * "forge/react@PROVIDER" picks the provider), the last user message is the
 * task and the first system message its system prompt.  forge runs the
 * whole agent session server-side and answers as a chat completion, or as
 * chat.completion.chunk events when "stream" is true.  The session is an
 * ordinary one: it survives crashes and can be followed at /v1/sessions/{id}.
 */
#include "gateway/gw.h"
#include "forge/approval.h"
#include "forge/durable.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/gwreq.h"
#include "forge/inspect.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/views.h"
#include "forge/worker.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- POST /v1/chat/completions --------------------------------------------
 * OpenAI-compatible: "model" names a workflow ("forge/react",
 * "forge/plan_execute", "forge/map_reduce"; "forge/react@PROVIDER" picks the
 * provider), the last user message is the task and the first system message
 * its system prompt.  forge runs the whole agent session server-side and
 * answers as a chat completion, or as chat.completion.chunk events when
 * "stream" is true.  The session is an ordinary one: it survives crashes and
 * can be followed at /v1/sessions/{id}. */
typedef struct chat {
	gw_t *g;
	struct MHD_Connection *c;
	uint32_t idx, gen;
	char id[FG_ID_LEN + 1];
	char model[80];
	int sent_role, done;
	uint64_t deadline_ns;
	/* streaming: the live text sent of the turn that follows checkpoint
	 * live_seq (attempt live_att), live_sent bytes of it */
	uint32_t live_seq, live_att;
	uint64_t live_sent;
	int live_any;
	uint64_t last_write_ns;
	json_t *ask;            /* the calls it waits on a person for (or NULL) */
	char ask_msg[600];
} chat_t;

static void chat_free(void *cls)
{
	chat_t *ch = cls;
	json_decref(ch->ask);
	free(ch);
}

/* A session that waits for a person (an agent's approve: tool, its
 * ask_human): a chat completion cannot wait for that, so it ends saying
 * which call waits and how to answer it.  The calls that wait, or NULL. */
static json_t *asking(chat_t *ch)
{
	uint64_t c;
	fg_handle_t h = FG_HANDLE(ch->idx, ch->gen);
	if (!fg_session_valid(ch->g->r, h, &c) || FG_CTL_STATE(c) != FG_S_WAITING)
		return NULL;
	fg_snap_t sn;
	if (fg_session_snapshot(ch->g->r, h, &sn, 1) < 0)
		return NULL;
	json_t *p = sn.workflow == FG_WF_REACT ? fg_approval_pending(&sn) : NULL;
	fg_snap_free(&sn);
	if (json_array_size(p)) {
		json_t *c0 = json_array_get(p, 0);
		const char *cid = json_string_value(json_object_get(c0, "call_id"));
		snprintf(ch->ask_msg, sizeof(ch->ask_msg), "session %s waits for a person: call %s "
			 "(%s) of tool %s; answer it with POST /v1/sessions/%s/approval "
			 "{\"call_id\": \"%s\", \"decision\": ...}, then GET /v1/sessions/%s "
			 "has the answer", ch->id, cid, json_string_value(json_object_get(c0, "kind")),
			 json_string_value(json_object_get(c0, "tool")), ch->id, cid, ch->id);
		return p;
	}
	json_decref(p);
	return NULL;
}

/* Waits (in this connection's thread) until the session ended, the
 * deadline passed or until_ns came; 1 if it ended, -1 if the client left. */
static int chat_wait(chat_t *ch, int step_ms, uint64_t until_ns)
{
	/* Woken by the session's end through its bell (no polling delay);
	 * every step_ms it also looks whether the client left. */
	fg_region_t *r = ch->g->r;
	int rc;
	fg_bell_enter(r, ch->idx, FG_BELL_STATES);
	for (;;) {
		uint64_t c;
		uint32_t seq = fg_bell_seq(r, ch->idx);
		if (!fg_session_valid(r, FG_HANDLE(ch->idx, ch->gen), &c) ||
		    FG_S_FINISHED(FG_CTL_STATE(c))) {
			rc = 1;   /* ended, or gone (purged) */
			break;
		}
		if (FG_CTL_STATE(c) == FG_S_WAITING && (ch->ask = asking(ch))) {
			rc = 2;   /* waits for a person */
			break;
		}
		uint64_t now = fg_now_ns();
		if (now >= ch->deadline_ns || now >= until_ns || step_ms == 0) {
			rc = 0;
			break;
		}
		uint64_t left = (until_ns < ch->deadline_ns ? until_ns : ch->deadline_ns) - now;
		int ms = left / 1000000u < (uint64_t)step_ms ? (int)(left / 1000000u) + 1 : step_ms;
		fg_bell_wait(r, ch->idx, seq, ms);
		if (gw_client_gone(ch->c)) {
			rc = -1;
			break;
		}
	}
	fg_bell_leave(r, ch->idx, FG_BELL_STATES);
	return rc;
}

static json_t *chat_result(chat_t *ch, const char **err)
{
	json_t *j = fg_inspect_session(ch->g->r, FG_HANDLE(ch->idx, ch->gen), 0, ch->g->cfg);
	/* region.durability: sync: the answer is durable before it is sent */
	int fe = fg_durable_wait(ch->g->r, ch->g->a.slot);
	if (fe < 0) {
		log_errx("region flush failed: %s", strerror(-fe));
		*err = "the answer could not be made durable (flushing the region failed)";
		return j ? j : json_object();
	}
	*err = NULL;
	if (!j) {
		*err = "the session is gone (purged)";
		return json_object();
	}
	const char *state = json_string_value(json_object_get(j, "state"));
	if (!state || strcmp(state, "done") != 0)
		*err = json_string_value(json_object_get(j, "error"));
	if (!state || strcmp(state, "done") != 0) {
		if (!*err)
			*err = state && !strcmp(state, "cancelled") ? "the session was cancelled"
							      : "the session did not finish in time";
	}
	return j;
}

/* The calls of the client's own tools the run ended with (OpenAI's
 * tool_calls array), or NULL when it ended with an answer. */
static json_t *client_calls(chat_t *ch)
{
	fg_snap_t sn;
	if (fg_session_snapshot(ch->g->r, FG_HANDLE(ch->idx, ch->gen), &sn, 1) < 0)
		return NULL;
	fg_react_view_t *v = malloc(sizeof(*v));
	char err[200];
	json_t *arr = NULL;
	if (v && sn.workflow == FG_WF_REACT && FG_CTL_STATE(sn.ctl) == FG_S_DONE &&
	    fg_react_view(sn.log, sn.len, v, err, sizeof(err)) == 0 && v->pending) {
		arr = json_array();
		for (uint32_t i = 0; i < v->ncalls; i++) {
			if (v->answered[i])
				continue;
			fg_call_t *c = &v->calls[i];
			json_array_append_new(arr, json_pack("{s:s%,s:s,s:{s:s%,s:s%}}",
				"id", c->id.p, (size_t)c->id.n, "type", "function", "function",
				"name", c->name.p, (size_t)c->name.n,
				"arguments", c->args.p, (size_t)c->args.n));
		}
	}
	free(v);
	fg_snap_free(&sn);
	return arr;
}

/* ---- the client's tool results continue the run that asked for them ----
 * A run that ends with calls of the client's own tools may have run
 * forge's tools before them: their calls and results are in the session,
 * not in what the client got back.  The client's next request (its
 * history, the calls, their results) therefore continues that session, a
 * thread's next run, found by the first call's id and checked against the
 * session's log: the same user messages, the same calls pending.  Started
 * anew instead, forge's tools would run again. */

/* Whether the USER and SYSTEM records of log a (up to a_end) and of b
 * are the same texts in the same order. */
static int same_users(const uint8_t *a, uint32_t a_end, const uint8_t *b, uint32_t bn)
{
	uint32_t ao = 0, bo = 0;
	fg_rec_t ra, rb;
	for (;;) {
		int ga, gb;
		while ((ga = fg_rec_next(a, a_end, &ao, &ra)) == 1 && ra.type != FG_REC_USER &&
		       ra.type != FG_REC_SYSTEM)
			;
		while ((gb = fg_rec_next(b, bn, &bo, &rb)) == 1 && rb.type != FG_REC_USER &&
		       rb.type != FG_REC_SYSTEM)
			;
		if (ga != 1 || gb != 1)
			return ga == 0 && gb == 0;
		if (ra.type != rb.type || ra.n != rb.n || memcmp(ra.p, rb.p, ra.n))
			return 0;
	}
}

/* The first record of type t's JSON in a log, or NULL. */
static json_t *log_json(const uint8_t *log, uint32_t len, uint8_t t)
{
	uint32_t off = 0;
	fg_rec_t r;
	while (fg_rec_next(log, len, &off, &r) == 1)
		if (r.type == t)
			return json_loadb((const char *)r.p, r.n, 0, NULL);
	return NULL;
}

/* Whether session sn was made by this client's conversation, as the
 * request q asks: react, its own, the same provider and parameters. */
static int same_frame(const fg_snap_t *sn, const fg_gwreq_t *q)
{
	if (sn->workflow != FG_WF_REACT || sn->parent || sn->arg != q->sub.arg)
		return 0;
	int same = 1;
	static const uint8_t types[] = { FG_REC_PARAMS, FG_REC_AGENT };   /* (the same agent) */
	for (int i = 0; same && i < 2; i++) {
		json_t *a = log_json(sn->log, sn->len, types[i]);
		json_t *b = log_json(q->recs.p, q->recs.n, types[i]);
		same = (!a && !b) || json_equal(a, b);
		json_decref(a);
		json_decref(b);
	}
	return same;
}

static int same_str(fg_str_t a, fg_str_t b)
{
	return a.n == b.n && !memcmp(a.p, b.p, a.n);
}

/* Whether call c is among calls[0..n) (id, name and arguments). */
static int has_call(const fg_call_t *calls, uint32_t n, const fg_call_t *c)
{
	for (uint32_t i = 0; i < n; i++)
		if (same_str(calls[i].id, c->id) && same_str(calls[i].name, c->name) &&
		    same_str(calls[i].args, c->args))
			return 1;
	return 0;
}

/* The request's end: the calls of its last assistant turn (rc, nrc) and
 * the TOOL records after them ([*t0, *t1) of the request's records). */
typedef struct chat_tail {
	fg_call_t calls[FG_MAX_CALLS];
	uint32_t ncalls, t0, t1;
} chat_tail_t;

static int req_tail(const fg_buf_t *b, chat_tail_t *t)
{
	uint32_t off = 0, at;
	fg_rec_t r;
	t->ncalls = 0;
	t->t0 = t->t1 = 0;
	for (at = off; fg_rec_next(b->p, b->n, &off, &r) == 1; at = off) {
		if (r.type == FG_REC_TOOLCALLS) {
			int k = fg_rec_calls(&r, t->calls, FG_MAX_CALLS);
			if (k <= 0)
				return -1;
			t->ncalls = (uint32_t)k;
			t->t0 = t->t1 = off;
		} else if (r.type == FG_REC_TOOL && t->ncalls && t->t1 == at) {
			t->t1 = off;
		} else if (r.type != FG_REC_RESUME) {
			t->ncalls = 0;
		}
	}
	return t->ncalls && t->t1 > t->t0 ? 0 : -1;
}

/* Whether the log already holds the request's results for its calls after
 * a turn that made them (a retry of a continue that went through). */
static int holds_results(const fg_snap_t *sn, const fg_buf_t *b, const chat_tail_t *t)
{
	uint32_t off = 0, at;
	fg_rec_t r;
	fg_call_t c[FG_MAX_CALLS];
	for (at = off; fg_rec_next(sn->log, sn->len, &off, &r) == 1; at = off) {
		if (r.type != FG_REC_TOOLCALLS)
			continue;
		int k = fg_rec_calls(&r, c, FG_MAX_CALLS);
		uint32_t i;
		for (i = 0; k > 0 && i < t->ncalls && has_call(c, (uint32_t)k, &t->calls[i]); i++)
			;
		if (k <= 0 || i < t->ncalls || !same_users(sn->log, at, b->p, b->n))
			continue;
		/* each of the request's results, the same text, after it */
		uint32_t q = t->t0, found = 0;
		fg_rec_t rq;
		while (fg_rec_next(b->p, t->t1, &q, &rq) == 1) {
			fg_str_t qid, qtx, lid, ltx;
			uint32_t lo = off;
			fg_rec_t rl;
			if (fg_rec_tool(&rq, &qid, &qtx) < 0)
				return 0;
			while (fg_rec_next(sn->log, sn->len, &lo, &rl) == 1)
				if (rl.type == FG_REC_TOOL && fg_rec_tool(&rl, &lid, &ltx) == 0 &&
				    same_str(lid, qid) && same_str(ltx, qtx)) {
					found++;
					break;
				}
		}
		if (found == t->ncalls)
			return 1;
	}
	return 0;
}

/* 1: the request continues (or is a retry of the continue of) session *h;
 * 0: no run of this client waits for these results (a new session then);
 * -errno: the continue failed, err says why.  Under submit_lock, so that a
 * second identical request sees the first one's continue. */
static int chat_continue(gw_t *g, const fg_gwreq_t *q, const char *key, fg_handle_t *h,
			 char *err, size_t errlen)
{
	if (q->sub.workflow != FG_WF_REACT || !q->sub.recs)
		return 0;
	chat_tail_t *t = malloc(sizeof(*t));
	fg_react_view_t *v = malloc(sizeof(*v));
	uint8_t *rec = NULL;
	fg_handle_t cand[64];
	int rc = 0;
	if (!t || !v || req_tail(&q->recs, t) < 0)
		goto out;
	pthread_mutex_lock(&g->submit_lock);   /* (also the actor: one thread at a time) */
	uint32_t nc = gw_calls_find_locked(g, t->calls[0].id.p, t->calls[0].id.n, cand, 64);
	for (uint32_t ci = 0; ci < nc && rc == 0; ci++) {
		fg_snap_t sn;
		char why[200];
		if (fg_session_snapshot(g->r, cand[ci], &sn, 1) < 0)
			continue;
		if (!same_frame(&sn, q)) {
			fg_snap_free(&sn);
			continue;
		}
		uint32_t st = FG_CTL_STATE(sn.ctl);
		int pending = st == FG_S_DONE && fg_react_view(sn.log, sn.len, v, why, sizeof(why)) == 0 &&
			      v->pending == t->ncalls;
		if (pending) {
			fg_react_client_calls(v);
			pending = v->nclient == v->pending;
			for (uint32_t i = 0; pending && i < t->ncalls; i++)
				pending = has_call(v->calls, v->ncalls, &t->calls[i]);
			pending = pending && same_users(sn.log, sn.len, q->recs.p, q->recs.n);
		}
		/* a retry of a continue that went through: join that run (a
		 * failed one is taken up again from its last commit: its tools
		 * are not run again); a cancelled one is left alone */
		int retry = !pending && st != FG_S_CANCELLED && holds_results(&sn, &q->recs, t);
		fg_snap_free(&sn);
		if (!pending && !retry)
			continue;
		if (retry && st != FG_S_FAILED) {
			*h = cand[ci];
			rc = 1;
			break;
		}
		/* the results, then RESUME (max_steps counts from here); or,
		 * for a failed run that holds them, RESUME alone */
		uint32_t n = retry ? 0 : t->t1 - t->t0;
		if (!(rec = malloc(n + FG_REC_HDR))) {
			rc = -ENOMEM;
			break;
		}
		memcpy(rec, q->recs.p + t->t0, n);
		fg_buf_t rb = { rec, n, n + FG_REC_HDR, 0, 0, 0, 0 };
		fg_buf_rec(&rb, FG_REC_RESUME, "", 0);
		int replayed;
		int e = fg_thread_continue(&g->a, cand[ci], rec, rb.n, retry, key, &replayed, err,
					   errlen);
		free(rec);
		rec = NULL;
		if (e == 0) {
			*h = cand[ci];
			rc = 1;
		} else if (e != -EBUSY && e != -ESTALE && e != -ENOENT && e != -EINVAL) {
			rc = e;   /* (else it changed under us: the next candidate) */
		}
	}
	pthread_mutex_unlock(&g->submit_lock);
out:
	free(rec);
	free(t);
	free(v);
	return rc;
}

/* Notes the run's first pending client call, for chat_continue. */
static void note_calls(chat_t *ch, json_t *calls)
{
	const char *id = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
	if (id)
		gw_calls_add(ch->g, id, strlen(id), FG_HANDLE(ch->idx, ch->gen));
}

static ssize_t chat_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	chat_t *ch = cls;
	long long created = (long long)time(NULL);
	if (ch->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (!ch->sent_role) {
		ch->sent_role = 1;
		json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:n}]}", "id", ch->id,
			"object", "chat.completion.chunk", "created", (json_int_t)created, "model",
			ch->model, "choices", "index", 0, "delta", "role", "assistant", "content", "",
			"finish_reason");
		char *d = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!d)
			return MHD_CONTENT_READER_END_WITH_ERROR;   /* out of memory */
		int n = snprintf(buf, max, "data: %s\n\n", d);
		free(d);
		return n;
	}
	/* Live text as it comes (a streaming provider's pieces, before the
	 * turn is committed), then the end.  Woken by the session's bell. */
	fg_region_t *r = ch->g->r;
	fg_handle_t h = FG_HANDLE(ch->idx, ch->gen);
	fg_bell_enter(r, ch->idx, FG_BELL_STEPS);
	for (;;) {
		uint32_t bseq = fg_bell_seq(r, ch->idx);
		char text[4096];
		size_t cap = max > 1024 ? (max - 1024) / 6 : 0;   /* (JSON escapes: 6x at worst) */
		if (cap > sizeof(text))
			cap = sizeof(text);
		uint64_t w;
		uint32_t att;
		int64_t k = fg_live_read(r, h, &w, &att, ch->live_sent, text, cap);
		if (k >= 0 && (FG_CKPT_SEQ(w) != ch->live_seq || !ch->live_any)) {
			/* another turn: its text from the start */
			ch->live_seq = FG_CKPT_SEQ(w);
			ch->live_att = att;
			ch->live_sent = 0;
			ch->live_any = 1;
			k = fg_live_read(r, h, &w, &att, 0, text, cap);
			if (k >= 0 && FG_CKPT_SEQ(w) != ch->live_seq)
				continue;
		}
		if (k > 0) {
			/* whole UTF-8 characters only (a piece cut by cap is sent
			 * with the rest of it next time) */
			size_t e = (size_t)k;
			if (e == cap && ((uint8_t)text[e - 1] & 0x80)) {
				while (e > 0 && ((uint8_t)text[e - 1] & 0xc0) == 0x80)
					e--;
				if (e > 0)
					e--;   /* the lead byte: the character goes next time */
			}
			if (e == 0)
				goto idle;
			json_t *c1 = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s%},s:n}]}", "id", ch->id,
				"object", "chat.completion.chunk", "created", (json_int_t)created, "model",
				ch->model, "choices", "index", 0, "delta", "content", text, e,
				"finish_reason");
			char *d = c1 ? json_dumps(c1, JSON_COMPACT) : NULL;
			json_decref(c1);
			if (!d) {   /* (not UTF-8, or out of memory: the commit will carry it) */
				ch->live_sent += (uint64_t)k;
				continue;
			}
			int n = snprintf(buf, max, "data: %s\n\n", d);
			free(d);
			ch->live_sent += e;
			ch->live_att = att;
			ch->last_write_ns = fg_now_ns();
			fg_bell_leave(r, ch->idx, FG_BELL_STEPS);
			return n < (int)max ? n : (ssize_t)max;
		}
idle:;
		uint64_t c;
		if (!fg_session_valid(r, h, &c) || FG_S_FINISHED(FG_CTL_STATE(c)))
			break;
		if (FG_CTL_STATE(c) == FG_S_WAITING && (ch->ask = asking(ch)))
			break;
		uint64_t now = fg_now_ns();
		if (now - ch->last_write_ns >= keepalive_ns(ch->g)) {
			ch->last_write_ns = now;
			fg_bell_leave(r, ch->idx, FG_BELL_STEPS);
			return snprintf(buf, max, ": keep-alive\n\n");
		}
		fg_bell_wait(r, ch->idx, bseq, 100);
		if (gw_client_gone(ch->c)) {
			fg_bell_leave(r, ch->idx, FG_BELL_STEPS);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	fg_bell_leave(r, ch->idx, FG_BELL_STEPS);
	const char *err;
	json_t *res = chat_result(ch, &err);
	if (ch->ask)
		err = ch->ask_msg;
	/* the final answer: what the live text of its turn did not carry
	 * (its turn followed checkpoint live_seq when the answer's commit is
	 * the next one) */
	uint64_t skip = 0;
	if (!err && ch->live_any && ch->live_sent) {
		uint64_t cw = atomic_load(&fg_sess(r, ch->idx)->ckpt);
		const char *ans = json_string_value(json_object_get(res, "result"));
		if (FG_CKPT_SEQ(cw) == ch->live_seq + 1 && ans && strlen(ans) >= ch->live_sent)
			skip = ch->live_sent;
	}
	json_t *calls = err ? NULL : client_calls(ch);
	if (calls) {   /* each call's index, as OpenAI's chunks carry it */
		size_t k;
		json_t *c;
		note_calls(ch, calls);
		json_array_foreach(calls, k, c)
			json_object_set_new(c, "index", json_integer((json_int_t)k));
	}
	const char *ans = json_string_value(json_object_get(res, "result"));
	json_t *delta = err ? json_pack("{s:s}", "content", "") :
		calls ? json_pack("{s:o}", "tool_calls", calls) :
		ans ? json_pack("{s:s}", "content", ans + skip) :
		json_pack("{s:O}", "content", json_object_get(res, "result"));
	json_t *usage = json_object_get(res, "usage");
	json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
	json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
	json_t *c1 = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n}]}", "id", ch->id, "object",
		"chat.completion.chunk", "created", (json_int_t)created, "model", ch->model, "choices",
		"index", 0, "delta", delta, "finish_reason");
	json_t *c2 = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{},s:s}],s:{s:I,s:I,s:I}}", "id", ch->id,
		"object", "chat.completion.chunk", "created", (json_int_t)created, "model", ch->model,
		"choices", "index", 0, "delta", "finish_reason", err ? "error" : calls ? "tool_calls" :
		"stop",
		"usage", "prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct);
	json_t *e1 = err ? json_pack("{s:{s:s,s:s}}", "error", "message", err, "type",
				     ch->ask ? "approval_required" : "server_error") : NULL;
	if (ch->ask)
		json_object_set(json_object_get(e1, "error"), "waiting_for", ch->ask);
	char *d1 = json_dumps(err ? e1 : c1, JSON_COMPACT);
	char *d2 = json_dumps(c2, JSON_COMPACT);
	int n = d1 && d2 ? snprintf(buf, max, "data: %s\n\ndata: %s\n\ndata: [DONE]\n\n", d1, d2)
			 : -1;
	free(d1);
	free(d2);
	json_decref(e1);
	json_decref(c1);
	json_decref(c2);
	json_decref(res);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;   /* out of memory */
	ch->done = 1;
	return n < (int)max ? n : (ssize_t)max;
}

/* GET /v1/models: what "model" may name in a chat completion (OpenAI's
 * list shape): each workflow, and each workflow with each provider. */
int gw_models(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	(void)id;
	static const char *const wf[] = { "react", "plan_execute", "map_reduce" };
	json_t *arr = json_array();
	long long created = (long long)g->r->hdr->created_ns / 1000000000ll;
	for (size_t i = 0; i < sizeof(wf) / sizeof(wf[0]); i++) {
		char name[160];
		snprintf(name, sizeof(name), "forge/%s", wf[i]);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:s}", "id", name, "object",
			"model", "created", (json_int_t)created, "owned_by", "forge"));
		for (uint32_t k = 0; k < g->cfg->nproviders; k++) {
			snprintf(name, sizeof(name), "forge/%s@%s", wf[i], g->cfg->providers[k].name);
			json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:s}", "id", name,
				"object", "model", "created", (json_int_t)created, "owned_by", "forge"));
		}
	}
	for (uint32_t k = 0; k < g->cfg->nagents; k++) {   /* the named agents */
		char name[160];
		snprintf(name, sizeof(name), "forge/%s", g->cfg->agents[k].name);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:s}", "id", name, "object",
			"model", "created", (json_int_t)created, "owned_by", "forge"));
	}
	return reply_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", arr));
}

int gw_chat(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)id;
	fg_gwreq_t q;
	if (fg_gwreq_chat(b->p, b->n, g->cfg, &q) < 0)
		return refuse(c, &q);
	int rc;
	fg_submit_t p = q.sub;
	const char *model = q.model;
	fg_handle_t h;
	uint64_t old = 0;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	if (gw_key_refused(g, c, key, 1, &rc))
		goto out;
	/* the client's tool results for a run that asked for them: that run
	 * goes on (its thread); a key that made a session first names it */
	char cerr[300] = "";
	int e = key && gw_idem_lookup(g, key) ? 0 : chat_continue(g, &q, key, &h, cerr, sizeof(cerr));
	if (e == -ENOMEM) {
		rc = reply_oom(c);
		goto out;
	}
	if (e < 0) {
		rc = reply_error(c, e == -E2BIG ? 413 : e == -EINVAL ? 400 : 503, "messages",
				 "the tool results could not go on in the session that asked for "
				 "them: %s", cerr);
		goto out;
	}
	if (e == 1) {
		old = h;   /* (a continue: nothing submitted) */
		goto have;
	}
	/* a retry with the same key waits for the session the first made */
	e = gw_idem_submit(g, &p, key, &h, &old);
	if (old && !gw_same_submit(g, old, key, &p)) {
		char oid[FG_ID_LEN + 1];
		fg_id_format(g->r, old, oid);
		rc = reply_error(c, 409, "Idempotency-Key", "Idempotency-Key %.128s was used for a "
				 "different request (session %s)", key, oid);
		goto out;
	}
	if (old)
		h = old;
have:
	if (e < 0) {
		char msg[300];
		const char *param;
		unsigned st = gw_submit_error(g, e, "the conversation is", "messages", &param, msg,
					      sizeof(msg));
		rc = reply_error(c, st, param, "%s", msg);
		goto out;
	}
	/* region.durability: sync: the id goes out (a header, the first
	 * chunk) only once the session is durable */
	int fe = fg_durable_wait(g->r, g->a.slot);
	if (fe < 0) {
		rc = reply_error(c, 503, NULL, "the session could not be made durable (flushing "
				 "the region failed: %s)", strerror(-fe));
		goto out;
	}
	chat_t *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		/* The session is submitted and runs; its id is lost to this
		 * client, which gets a 503 (the session shows in GET /v1/sessions,
		 * and a retry with the same Idempotency-Key finds it). */
		rc = reply_oom(c);
		goto out;
	}
	ch->g = g;
	ch->c = c;
	ch->idx = FG_HANDLE_IDX(h);
	ch->gen = FG_HANDLE_GEN(h);
	fg_id_format(g->r, h, ch->id);
	snprintf(ch->model, sizeof(ch->model), "%s", model);
	/* no cap of our own: a long run keeps the connection (keep-alives on a
	 * stream), the client's timeout decides */
	ch->deadline_ns = UINT64_MAX;
	if (q.stream) {
		struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
			chat_stream, ch, chat_free);
		if (!r) {
			chat_free(ch);
			rc = reply_oom(c);
			goto out;
		}
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		MHD_add_response_header(r, "X-Forge-Session", ch->id);
		rc = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		goto out;
	}
	int w = chat_wait(ch, 100, UINT64_MAX);
	const char *err;
	json_t *res = chat_result(ch, &err);
	if (w < 0) {
		rc = reply_error(c, 499, NULL, "session %s: the client left", ch->id);
	} else if (w == 2) {
		/* 422: no SDK retries it (a retry would wait again) */
		json_t *j = json_pack("{s:{s:s,s:s,s:s,s:O}}", "error", "message", ch->ask_msg, "type",
				      "approval_required", "code", "approval_required", "waiting_for",
				      ch->ask);
		rc = reply2(c, 422, "application/json", json_dumps(j, JSON_COMPACT),
			    "x-should-retry", "false", "X-Forge-Session", ch->id);
		json_decref(j);
	} else if (err) {
		/* The agent run failed (after the provider retries): a 502 that
		 * says not to retry (OpenAI's SDKs honour x-should-retry), for a
		 * blind retry would run the agent again; the session can be
		 * resumed (POST /v1/sessions/{id}/resume). */
		char msg[600];
		snprintf(msg, sizeof(msg), "session %s: %s", ch->id, err);
		json_t *j = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg, "type",
				      "agent_error", "code", "session_failed");
		rc = reply2(c, 502, "application/json", json_dumps(j, JSON_COMPACT),
			    "x-should-retry", "false", "X-Forge-Session", ch->id);
		json_decref(j);
	} else {
		json_t *usage = json_object_get(res, "usage");
		json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
		json_t *calls = client_calls(ch);
		if (calls)
			note_calls(ch, calls);
		json_t *msg = calls ? json_pack("{s:s,s:n,s:o}", "role", "assistant", "content",
						"tool_calls", calls)
				    : json_pack("{s:s,s:O}", "role", "assistant", "content",
						json_object_get(res, "result"));
		json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:{s:I,s:I,s:I}}",
			"id", ch->id, "object", "chat.completion", "created", (json_int_t)time(NULL),
			"model", model, "choices", "index", 0, "message", msg,
			"finish_reason", calls ? "tool_calls" : "stop", "usage",
			"prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct);
		rc = reply2(c, 200, "application/json", json_dumps(j, JSON_COMPACT),
			    "X-Forge-Session", ch->id, NULL, NULL);
		json_decref(j);
	}
	json_decref(res);
	chat_free(ch);
out:
	fg_gwreq_free(&q);
	return rc;
}
