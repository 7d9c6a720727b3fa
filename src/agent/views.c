/* workflow.c — see include/forge/views.h. */
#include "forge/views.h"

#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_call(const fg_react_view_t *v, fg_str_t id)
{
	for (uint32_t i = 0; i < v->ncalls; i++)
		if (v->calls[i].id.n == id.n && memcmp(v->calls[i].id.p, id.p, id.n) == 0)
			return (int)i;
	return -1;
}

int fg_react_view(const uint8_t *log, uint32_t len, fg_react_view_t *v, char *err, size_t errlen)
{
	uint32_t off = 0, at;
	fg_rec_t r;
	int rc, users = 0;
	/* (calls, ask, decision: read only below ncalls, where they are set;
	 * clearing calls was 6 KiB at each step, a tenth of a worker's time) */
	memset(v, 0, offsetof(fg_react_view_t, calls));
	memset(v->answered, 0, offsetof(fg_react_view_t, ask) - offsetof(fg_react_view_t, answered));
	for (;;) {
		at = off;
		rc = fg_rec_next(log, len, &off, &r);
		if (rc <= 0)
			break;
		if ((v->final || v->failed) && r.type != FG_REC_USER && r.type != FG_REC_KEY &&
		    !(v->failed && r.type == FG_REC_RESUME)) {
			snprintf(err, errlen, "record at byte %u follows the end of the conversation", at);
			return -1;
		}
		switch (r.type) {
		case FG_REC_SYSTEM:
		case FG_REC_NOTE:
			break;
		case FG_REC_PARAMS:
			v->params = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_AGENT:
			v->agent = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_USER:
			/* a thread's next message (or the history a client sent):
			 * the conversation goes on, and max_steps counts again */
			if (v->pending) {
				snprintf(err, errlen, "user message at byte %u before %u tool results",
					 at, v->pending);
				return -1;
			}
			users++;
			v->final = v->failed = 0;
			v->turns = 0;
			v->turns_since_user = 0;
			v->ncalls = 0;
			break;
		case FG_REC_USAGE:
		case FG_REC_KEY:
			break;
		case FG_REC_ASSISTANT:
		case FG_REC_TOOLCALLS:
			if (v->pending) {
				snprintf(err, errlen, "model turn at byte %u before %u tool results", at,
					 v->pending);
				return -1;
			}
			v->turns++;
			v->turns_total++;
			v->turns_since_user++;
			if (r.type == FG_REC_ASSISTANT) {
				v->final = 1;
				v->answer = (fg_str_t){ (const char *)r.p, r.n };
				v->ncalls = 0;
				break;
			}
			int k = fg_rec_calls(&r, v->calls, FG_MAX_CALLS);
			if (k < 0) {
				snprintf(err, errlen, "malformed tool-call record at byte %u", at);
				return -1;
			}
			v->ncalls = v->pending = (uint32_t)k;
			memset(v->answered, 0, sizeof(v->answered));
			memset(v->intent, 0, sizeof(v->intent));
			memset(v->asked, 0, sizeof(v->asked));
			memset(v->decided, 0, sizeof(v->decided));
			v->awaiting = 0;
			break;
		case FG_REC_ASK:
		case FG_REC_DECISION: {
			fg_str_t id, text;
			fg_ask_t a;
			int i;
			if ((r.type == FG_REC_ASK ? fg_rec_ask(&r, &id, &a) : fg_rec_tool(&r, &id, &text)) < 0 ||
			    (i = find_call(v, id)) < 0 || v->answered[i]) {
				snprintf(err, errlen, "%s record at byte %u names no pending call",
					 r.type == FG_REC_ASK ? "ask" : "decision", at);
				return -1;
			}
			if (r.type == FG_REC_ASK ? v->asked[i] : (!v->asked[i] || v->decided[i])) {
				snprintf(err, errlen, "%s record for call %.*s at byte %u %s",
					 r.type == FG_REC_ASK ? "ask" : "decision", (int)id.n, id.p, at,
					 r.type == FG_REC_ASK ? "is a second one" : "without its question "
					 "or after its decision");
				return -1;
			}
			if (r.type == FG_REC_ASK) {
				v->asked[i] = 1;
				v->ask[i] = a;
				v->awaiting++;
			} else {
				v->decided[i] = 1;
				v->decision[i] = text;
				v->awaiting--;
			}
			break;
		}
		case FG_REC_TOOL:
		case FG_REC_INTENT: {
			fg_str_t id, text;
			int i;
			if (fg_rec_tool(&r, &id, r.type == FG_REC_TOOL ? &text : NULL) < 0 ||
			    (i = find_call(v, id)) < 0) {
				snprintf(err, errlen, "tool record at byte %u names no pending call", at);
				return -1;
			}
			if (v->answered[i] || (r.type == FG_REC_INTENT && v->intent[i])) {
				snprintf(err, errlen, "duplicated tool record for call %.*s at byte %u",
					 (int)id.n, id.p, at);
				return -1;
			}
			if (r.type == FG_REC_INTENT) {
				v->intent[i] = 1;
			} else {
				v->answered[i] = 1;
				v->pending--;
				if (v->asked[i] && !v->decided[i])
					v->awaiting--;   /* (answered without a decision: never) */
			}
			break;
		}
		case FG_REC_ERROR:
			v->failed = 1;
			v->error = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_RESUME:   /* resumed after a failure (or a client's history
				       * ends here): on from here, max_steps anew */
			v->failed = 0;
			v->error = (fg_str_t){ NULL, 0 };
			v->turns = 0;
			break;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "checkpoint log is corrupt at byte %u of %u", at, len);
		return -1;
	}
	if (users == 0) {
		snprintf(err, errlen, "conversation has no user message");
		return -1;
	}
	return 0;
}

int fg_mr_view(const uint8_t *log, uint32_t len, fg_mr_view_t *v, char *err, size_t errlen)
{
	uint32_t off = 0, at = 0;
	fg_rec_t r;
	int rc;
	memset(v, 0, sizeof(*v));
	for (;;) {
		at = off;
		rc = fg_rec_next(log, len, &off, &r);
		if (rc <= 0)
			break;
		if ((v->final || v->failed) && !(v->failed && r.type == FG_REC_RESUME)) {
			snprintf(err, errlen, "record at byte %u follows the end of the conversation", at);
			return -1;
		}
		switch (r.type) {
		case FG_REC_USER:
			v->prompt = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_PARTS: {
			int k = fg_rec_parts(&r, v->parts, FG_MAX_PARTS);
			if (k < 0 || v->nparts) {
				snprintf(err, errlen, "malformed or second split at byte %u", at);
				return -1;
			}
			v->nparts = (uint32_t)k;
			v->turns++;
			break;
		}
		case FG_REC_DEPS: {
			uint32_t o = 2;
			if (!v->nparts || r.n < 2 || (uint32_t)(r.p[0] | r.p[1] << 8) != v->nparts) {
				snprintf(err, errlen, "dependency record at byte %u does not fit the plan", at);
				return -1;
			}
			for (uint32_t i = 0; i < v->nparts; i++) {
				if (o + 2 > r.n)
					goto bad_deps;
				uint32_t k = (uint32_t)(r.p[o] | r.p[o + 1] << 8);
				o += 2;
				for (uint32_t q = 0; q < k; q++, o += 2) {
					if (o + 2 > r.n)
						goto bad_deps;
					uint32_t d = (uint32_t)(r.p[o] | r.p[o + 1] << 8);
					if (d >= i) {
						snprintf(err, errlen, "step %u depends on a later step", i + 1);
						return -1;
					}
					v->deps[i][d / 64] |= 1ull << (d % 64);
				}
			}
			if (o != r.n) {
bad_deps:
				snprintf(err, errlen, "dependency record at byte %u does not fit the plan", at);
				return -1;
			}
			break;
		}
		case FG_REC_CHILD: {
			uint32_t part;
			uint64_t h;
			if (fg_rec_child(&r, &part, &h) < 0 || part >= v->nparts) {
				snprintf(err, errlen, "child record at byte %u names no part", at);
				return -1;
			}
			v->child[part] = h;
			break;
		}
		case FG_REC_ASSISTANT:
			if (!v->nparts) {
				snprintf(err, errlen, "answer at byte %u before the split", at);
				return -1;
			}
			v->turns++;
			v->final = 1;
			v->answer = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_ERROR:
			v->failed = 1;
			v->error = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_RESUME:
			v->failed = 0;
			v->error = (fg_str_t){ NULL, 0 };
			break;
		case FG_REC_PARAMS:
			v->params = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_AGENT:
			v->agent = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_SYSTEM:
			if (!v->system.n)
				v->system = (fg_str_t){ (const char *)r.p, r.n };
			break;
		case FG_REC_USAGE:
		case FG_REC_KEY:
		case FG_REC_NOTE:
			break;
		default:
			snprintf(err, errlen, "record type %u at byte %u has no place in map_reduce",
				 r.type, at);
			return -1;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "checkpoint log is corrupt at byte %u of %u", at, len);
		return -1;
	}
	if (!v->prompt.p) {
		snprintf(err, errlen, "conversation has no user message");
		return -1;
	}
	return 0;
}

int fg_thread_check(const fg_region_t *r, const fg_snap_t *sn, const uint8_t *rec, uint32_t n,
		    int resume, char *err, size_t errlen)
{
	uint32_t st = FG_CTL_STATE(sn->ctl);
	static const char *const wf[] = { "?", "synthetic", "react", "map_reduce", "plan_execute" };
	if (sn->parent) {
		snprintf(err, errlen, "it is a child of another session: its parent runs it");
		return -EPERM;
	}
	if (!resume && sn->workflow != FG_WF_REACT) {
		snprintf(err, errlen, "it is a %s session: only react sessions take a next message",
			 wf[sn->workflow < 5 ? sn->workflow : 0]);
		return -EPERM;
	}
	if (!FG_S_FINISHED(st)) {
		snprintf(err, errlen, "it is %s: send its next %s once it has ended",
			 fg_state_name(st), resume ? "resume" : "message");
		return -EBUSY;
	}
	if (st == FG_S_CANCELLED) {
		snprintf(err, errlen, "it was cancelled: a cancelled session takes no further %s",
			 resume ? "resume" : "message");
		return -EPERM;
	}
	if (resume && st != FG_S_FAILED) {
		snprintf(err, errlen, "it is %s: only a failed session resumes", fg_state_name(st));
		return -EPERM;
	}
	if (sn->workflow != FG_WF_REACT) {
		/* a parent: its children must all be there (purged ones would be
		 * made and run again, tools and all) */
		fg_mr_view_t *v = malloc(sizeof(*v));
		char why[200];
		int rc = 0;
		if (!v) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		if (sn->workflow == FG_WF_MAP_REDUCE || sn->workflow == FG_WF_PLAN_EXECUTE) {
			if (fg_mr_view(sn->log, sn->len, v, why, sizeof(why)) < 0) {
				snprintf(err, errlen, "its conversation does not hold together: %s", why);
				rc = -EINVAL;
			}
			for (uint32_t i = 0; rc == 0 && i < v->nparts; i++)
				if (v->child[i] && !fg_session_valid(r, (fg_handle_t)v->child[i], NULL)) {
					snprintf(err, errlen, "its part %u's child session was purged "
						 "(region.retain_s): resuming would run it again", i + 1);
					rc = -EPERM;
				}
		}
		free(v);
		return rc;
	}
	/* the conversation with the new records after it must hold together */
	uint8_t *all = malloc((size_t)sn->len + n);
	fg_react_view_t *v = malloc(sizeof(*v));
	int rc = -ENOMEM;
	if (all && v) {
		memcpy(all, sn->log, sn->len);
		memcpy(all + sn->len, rec, n);
		char why[200];
		rc = fg_react_view(all, sn->len + n, v, why, sizeof(why)) == 0 ? 0 : -EINVAL;
		if (rc < 0)
			snprintf(err, errlen, "the conversation would not hold together: %s", why);
	} else {
		snprintf(err, errlen, "out of memory");
	}
	free(all);
	free(v);
	return rc;
}

void fg_react_client_calls(fg_react_view_t *v)
{
	json_t *p = json_loadb(v->params.p, v->params.n, 0, NULL);
	json_t *tools = json_object_get(p, "tools"), *t;
	size_t k;
	v->nclient = 0;
	memset(v->client, 0, sizeof(v->client));
	json_array_foreach(tools, k, t) {
		const char *name = json_string_value(json_object_get(json_object_get(t, "function"),
								     "name"));
		for (uint32_t i = 0; name && i < v->ncalls; i++)
			if (!v->answered[i] && !v->client[i] && v->calls[i].name.n == strlen(name) &&
			    !memcmp(v->calls[i].name.p, name, v->calls[i].name.n)) {
				v->client[i] = 1;
				v->nclient++;
			}
	}
	json_decref(p);
}


/* Whether the log holds a KEY record equal to key (anywhere). */
static int log_has_key(const fg_snap_t *sn, const char *key)
{
	uint32_t off = 0;
	fg_rec_t r;
	size_t kn = strlen(key);
	while (fg_rec_next(sn->log, sn->len, &off, &r) == 1)
		if (r.type == FG_REC_KEY && r.n == kn && !memcmp(r.p, key, kn))
			return 1;
	return 0;
}

int fg_thread_continue(fg_actor_t *a, fg_handle_t h, const uint8_t *rec0, uint32_t n0, int resume,
		       const char *key, int *replayed, char *err, size_t errlen)
{
	const char *what = resume ? "resume" : "message";
	uint8_t *rec = (uint8_t *)rec0;
	uint32_t n = n0, st;
	int e = -ESTALE;
	*replayed = 0;
	if (key) {   /* kept beside the records: a retry finds it in the log */
		size_t kn = strlen(key);
		if (!(rec = malloc(FG_REC_HDR + kn + n0))) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fg_buf_t kb = { rec, 0, (uint32_t)(FG_REC_HDR + kn + n0), 0 };
		fg_buf_rec(&kb, FG_REC_KEY, key, kn);
		memcpy(rec + kb.n, rec0, n0);
		n = kb.n + n0;
	}
	/* checked against the conversation as it is, appended only if it is
	 * still that one (another run may end in between: look again) */
	for (int tries = 0; e == -ESTALE && tries < 5; tries++) {
		fg_snap_t sn;
		if (fg_session_snapshot(a->r, h, &sn, 1) < 0) {
			e = -ENOENT;
			break;
		}
		if (key && log_has_key(&sn, key)) {
			fg_snap_free(&sn);
			e = 0;
			*replayed = 1;
			break;
		}
		e = fg_thread_check(a->r, &sn, rec, n, resume, err, errlen);
		uint64_t seen = sn.ckpt;
		fg_snap_free(&sn);
		if (e < 0)
			break;
		e = fg_session_continue(a, h, seen, rec, n, &st);
		if (e == -EBUSY && key)
			e = -ESTALE;   /* (a retry with the key may be running it: look again) */
	}
	if (rec != rec0)
		free(rec);
	if (e == -ENOENT)
		snprintf(err, errlen, "no such session");
	else if (e == -EBUSY)
		snprintf(err, errlen, "it is %s: send its next %s once it has ended",
			 fg_state_name(st), what);
	else if (e == -EPERM && !*err)
		snprintf(err, errlen, "it was cancelled: a cancelled session takes no further %s",
			 what);
	else if (e == -ESTALE)
		snprintf(err, errlen, "it keeps changing: try again");
	else if (e == -E2BIG)
		snprintf(err, errlen, "its conversation would pass region.session_max_bytes "
			 "(%llu bytes)", (unsigned long long)fg_log_max(a->r));
	else if (e < 0 && e != -EINVAL && e != -EPERM && e != -ENOMEM)
		snprintf(err, errlen, "%s", strerror(-e));
	return e;
}

int fg_fork_records(const fg_snap_t *sn, uint32_t at, const char *text, size_t tn, fg_buf_t *b,
		    char *err, size_t errlen)
{
	uint32_t off = 0, nmsg = 0, last = 0;
	fg_rec_t r, note = { 0 };
	if (sn->workflow != FG_WF_REACT) {
		snprintf(err, errlen, "only react sessions fork");
		return -EPERM;
	}
	int rc;
	while ((rc = fg_rec_next(sn->log, sn->len, &off, &r)) == 1) {
		int msg = r.type == FG_REC_SYSTEM || r.type == FG_REC_USER ||
			  r.type == FG_REC_ASSISTANT || r.type == FG_REC_TOOLCALLS ||
			  r.type == FG_REC_TOOL;
		if (msg && nmsg == at)
			break;
		if (r.type == FG_REC_NOTE) {
			note = r;   /* (goes with the calls that follow it) */
			continue;
		}
		if (r.type == FG_REC_TOOLCALLS && note.p)
			fg_buf_rec(b, FG_REC_NOTE, note.p, note.n);
		note.p = NULL;
		if (r.type == FG_REC_AGENT) {
			/* the agent's limits and tools too, and what the source
			 * spent: a fork does not start its budget afresh */
			json_t *a = json_loadb((const char *)r.p, r.n, 0, NULL);
			json_t *sp = json_object_get(a, "spent");
			json_int_t p0 = json_integer_value(json_array_get(sp, 0)) + sn->st.aux[0];
			json_int_t c0 = json_integer_value(json_array_get(sp, 1)) + sn->st.aux[1];
			char *s = a ? (json_object_set_new(a, "spent", json_pack("[I,I]", p0, c0)),
				       json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER)) : NULL;
			json_decref(a);
			if (!s) {
				snprintf(err, errlen, "the session's agent record is malformed");
				return -EINVAL;
			}
			fg_buf_rec(b, FG_REC_AGENT, s, strlen(s));
			free(s);
			continue;
		}
		if (msg || r.type == FG_REC_PARAMS)
			fg_buf_rec(b, r.type, r.p, r.n);
		if (msg) {
			nmsg++;
			last = r.type;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "its conversation is corrupt at byte %u", off);
		return -EINVAL;
	}
	if (at != UINT32_MAX && at > nmsg) {
		snprintf(err, errlen, "it has %u messages: at must be 0 to %u", nmsg, nmsg);
		return -ERANGE;
	}
	if (text)
		fg_buf_rec(b, FG_REC_USER, text, tn);
	else if (last == FG_REC_TOOL)
		fg_buf_rec(b, FG_REC_RESUME, "", 0);   /* (max_steps counts from here) */
	if (b->oom) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (b->overflow) {
		snprintf(err, errlen, "the conversation would pass region.session_max_bytes");
		return -E2BIG;
	}
	fg_react_view_t *v = malloc(sizeof(*v));
	char why[200];
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int e = 0;
	if (fg_react_view(b->p, b->n, v, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "the conversation would not hold together: %s", why);
		e = -EINVAL;
	} else if (v->pending) {
		snprintf(err, errlen, "message %u is a tool-call turn whose %u results follow it: "
			 "fork before the tool calls or after all their results", nmsg - 1 -
			 (v->ncalls - v->pending), v->pending);
		e = -EINVAL;
	} else if (!text && last != FG_REC_USER && last != FG_REC_TOOL) {
		snprintf(err, errlen, "the conversation would end with %s: give the next user "
			 "message to fork with", last == FG_REC_ASSISTANT ? "the assistant's answer" :
			 last == FG_REC_SYSTEM ? "a system message" : "nothing");
		e = -EINVAL;
	}
	free(v);
	return e;
}

int fg_fork_prepare(const fg_region_t *r, fg_handle_t h, uint32_t at, const char *text, size_t tn,
		    fg_buf_t *b, fg_submit_t *p, char *err, size_t errlen)
{
	fg_snap_t sn;
	*b = (fg_buf_t){ NULL, 0, 0, 0, fg_log_max(r), 1, 0 };
	if (fg_session_snapshot(r, h, &sn, 1) < 0) {
		snprintf(err, errlen, "no such session");
		return -ENOENT;
	}
	int e = fg_fork_records(&sn, at, text, tn, b, err, errlen);
	memset(p, 0, sizeof(*p));
	p->workflow = FG_WF_REACT;
	p->steps = sn.steps;
	p->arg = sn.arg;
	p->recs = b->p;
	p->recs_n = b->n;
	p->prompt = "";
	fg_snap_free(&sn);
	return e;
}
