/*
 * approval.c — a person's answer to a call that waits for one (a tool an
 * agent lists under approve:, or its ask_human): what waits, and the one
 * DECISION record a person's answer becomes (include/forge/approval.h).
 *
 * The question is the worker's ASK record; the session is WAITING then,
 * holding no worker slot.  An answer is checked against the conversation
 * as it is and appended by fg_session_answer only if it is still that one,
 * so two people answering, a retry of an answer whose reply was lost, and
 * an answer racing the timeout's default all end with one DECISION: the
 * first; the others are told what it was.
 */
#include "forge/approval.h"
#include "forge/conv.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/views.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *jstrn(fg_str_t s)
{
	json_t *j = json_stringn(s.p, s.n);
	return j ? j : json_string("");   /* (invalid UTF-8: not shown) */
}

json_t *fg_approval_pending(const fg_snap_t *sn)
{
	fg_react_view_t *v = malloc(sizeof(*v));
	char err[200];
	json_t *a = json_array();
	if (!v || !a || sn->workflow != FG_WF_REACT ||
	    fg_react_view(sn->log, sn->len, v, err, sizeof(err)) < 0) {
		free(v);
		return a;
	}
	for (uint32_t i = 0; i < v->ncalls; i++) {
		if (!v->asked[i] || v->decided[i] || v->answered[i])
			continue;
		const fg_call_t *c = &v->calls[i];
		json_t *p = json_pack("{s:o,s:s,s:o}", "call_id", jstrn(c->id), "kind",
				      v->ask[i].kind == FG_ASK_QUESTION ? "question" : "approval",
				      "tool", jstrn(c->name));
		json_t *args = json_loadb(c->args.p, c->args.n, 0, NULL);
		if (v->ask[i].kind == FG_ASK_QUESTION) {
			const char *q = json_string_value(json_object_get(args, "question"));
			json_object_set_new(p, "question", q ? json_string(q) : jstrn(c->args));
		} else {
			json_object_set_new(p, "arguments", jstrn(c->args));
		}
		json_decref(args);
		if (v->ask[i].deadline_ms) {
			json_object_set_new(p, "deadline_ms", json_integer((json_int_t)v->ask[i].deadline_ms));
			json_object_set_new(p, "default", json_string(v->ask[i].dflt &&
				v->ask[i].kind == FG_ASK_APPROVE ? "approve" : "reject"));
		}
		json_array_append_new(a, p);
	}
	free(v);
	return a;
}

/* The fields two answers must share to be the same answer. */
static int same_answer(const json_t *x, const json_t *y)
{
	static const char *const keys[] = { "decision", "reason", "answer", "arguments" };
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const json_t *a = json_object_get(x, keys[k]), *b = json_object_get(y, keys[k]);
		if ((a == NULL) != (b == NULL) || (a && !json_equal(a, b)))
			return 0;
	}
	return 1;
}

/* The DECISION's JSON from a person's answer, checked against what the
 * call asked; NULL with err set if it does not fit. */
static json_t *decision_json(const json_t *in, int kind, const char *by, char *err, size_t errlen)
{
	const char *dec = json_string_value(json_object_get(in, "decision"));
	json_t *reason = json_object_get(in, "reason"), *answer = json_object_get(in, "answer");
	json_t *args = json_object_get(in, "arguments");
	if (!dec) {
		snprintf(err, errlen, "decision must be %s", kind == FG_ASK_QUESTION ?
			 "\"answer\" (with answer) or \"reject\"" :
			 "\"approve\", \"reject\" or \"edit\" (with arguments)");
		return NULL;
	}
	if ((reason && !json_is_string(reason)) || (answer && !json_is_string(answer))) {
		snprintf(err, errlen, "reason and answer are strings");
		return NULL;
	}
	if (reason && strlen(json_string_value(reason)) > FG_APPROVAL_TEXT_MAX) {
		snprintf(err, errlen, "reason is longer than %u bytes", FG_APPROVAL_TEXT_MAX);
		return NULL;
	}
	if (answer && strlen(json_string_value(answer)) > FG_APPROVAL_ANSWER_MAX) {
		snprintf(err, errlen, "answer is longer than %u bytes", FG_APPROVAL_ANSWER_MAX);
		return NULL;
	}
	json_t *d = json_pack("{s:s}", "decision", dec);
	if (kind == FG_ASK_QUESTION) {
		if (!strcmp(dec, "answer") && answer) {
			json_object_set(d, "answer", answer);
		} else if (!strcmp(dec, "reject")) {
			/* (declined: the model is told so) */
		} else {
			snprintf(err, errlen, "this call asks a question (ask_human): decision "
				 "\"answer\" with answer, or \"reject\"");
			json_decref(d);
			return NULL;
		}
	} else if (!strcmp(dec, "edit")) {
		/* the arguments the tool runs with: a JSON object, or the string
		 * of one (as a model sends them) */
		json_t *o = json_is_string(args) ? json_loads(json_string_value(args), 0, NULL)
						 : json_incref(args);
		if (!json_is_object(o)) {
			json_decref(o);
			snprintf(err, errlen, "decision \"edit\" needs arguments: a JSON object (or a "
				 "string holding one)");
			json_decref(d);
			return NULL;
		}
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(o);
		if (!s || strlen(s) > FG_APPROVAL_ANSWER_MAX) {
			snprintf(err, errlen, "arguments are longer than %u bytes", FG_APPROVAL_ANSWER_MAX);
			free(s);
			json_decref(d);
			return NULL;
		}
		json_object_set_new(d, "arguments", json_string(s));
		free(s);
	} else if (strcmp(dec, "approve") && strcmp(dec, "reject")) {
		snprintf(err, errlen, "decision \"%.40s\" is not approve, reject or edit", dec);
		json_decref(d);
		return NULL;
	}
	if (reason && json_string_value(reason)[0])
		json_object_set(d, "reason", reason);
	json_object_set_new(d, "by", json_string(by));
	return d;
}

/* The DECISION record for call id anywhere in the log (its call may be
 * of an earlier turn, the run done since; id NULL: the last of any call):
 * its JSON, or n 0, and the call's id in *which. */
static fg_str_t decision_of(const fg_snap_t *sn, const char *id, fg_str_t *which)
{
	uint32_t off = 0;
	fg_rec_t r;
	fg_str_t x, text, found = { NULL, 0 };
	while (fg_rec_next(sn->log, sn->len, &off, &r) > 0)
		if (r.type == FG_REC_DECISION && fg_rec_tool(&r, &x, &text) == 0 &&
		    (!id || (x.n == strlen(id) && !memcmp(x.p, id, x.n)))) {
			found = text;
			*which = x;
		}
	return found;
}

/* An answer to call id, decided already (rec: its DECISION's JSON): the
 * same answer again is a retry (1, *recorded the first), another is
 * refused naming the first (-EEXIST). */
static int against(const json_t *in, fg_str_t rec, fg_str_t id, const char *by,
		   json_t **recorded, char *err, size_t errlen)
{
	const char *dec = json_string_value(json_object_get(in, "decision"));
	int kind = dec && !strcmp(dec, "answer") ? FG_ASK_QUESTION : FG_ASK_APPROVE;
	json_t *d = json_loadb(rec.p, rec.n, 0, NULL);
	json_t *mine = decision_json(in, kind, by, err, errlen);
	int e = -EEXIST;
	if (mine && d && same_answer(mine, d)) {
		json_object_set_new(d, "call_id", jstrn(id));
		*recorded = json_incref(d);
		e = 1;
	} else {
		const char *dd = json_string_value(json_object_get(d, "decision"));
		const char *db = json_string_value(json_object_get(d, "by"));
		snprintf(err, errlen, "call %.*s was already decided: %s (by %s)", (int)id.n, id.p,
			 dd ? dd : "?", db ? db : "?");
	}
	json_decref(mine);
	json_decref(d);
	return e;
}

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

int fg_approval_decide(fg_actor_t *a, pthread_mutex_t *lock, fg_handle_t h, const char *call_id,
		       const json_t *in, const char *by, long wait_ms, int (*gone)(void *),
		       void *gone_arg, json_t **recorded, char *err, size_t errlen)
{
	fg_react_view_t *v = malloc(sizeof(*v));
	int e = -ESTALE;
	*recorded = NULL;
	err[0] = 0;
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* A session that runs (it has just asked and is about to park, runs
	 * another tool of its turn, or the sweep woke it for its timeout) is
	 * looked at again at each of its steps and changes of state (its bell:
	 * a timed-out call's default answer is a commit), until wait_ms. */
	uint32_t idx = FG_HANDLE_IDX(h), seq = 0;
	int bells = a->r->writable;
	uint64_t give_up = fg_now_ns() + (uint64_t)(wait_ms > 500 ? wait_ms : 500) * 1000000ull;
	if (bells)
		fg_bell_enter(a->r, idx, FG_BELL_STEPS);
	for (int tries = 0; e == -ESTALE; tries++) {
		if (tries) {
			uint64_t now = fg_now_ns();
			if (now >= give_up || atomic_load(&a->r->hdr->draining))
				break;   /* (a drain: the wait would hold the stop up) */
			if (bells)
				fg_bell_wait(a->r, idx, seq, give_up - now < 1000000000ull ?
					     (int)((give_up - now) / 1000000u) + 1 : 1000);
			else
				nap_ms(5);
			if (gone && gone(gone_arg)) {
				snprintf(err, errlen, "the client left while it waited");
				e = -ECANCELED;
				break;
			}
		}
		if (bells)
			seq = fg_bell_seq(a->r, idx);
		fg_snap_t sn;
		if (fg_session_snapshot(a->r, h, &sn, 1) < 0) {
			e = -ENOENT;
			snprintf(err, errlen, "no such session");
			break;
		}
		uint32_t st = FG_CTL_STATE(sn.ctl);
		if (sn.workflow != FG_WF_REACT ||
		    fg_react_view(sn.log, sn.len, v, err, errlen) < 0) {
			if (sn.workflow == FG_WF_SYNTHETIC)
				snprintf(err, errlen, "it waits for no person (a synthetic session)");
			else if (sn.workflow != FG_WF_REACT)
				snprintf(err, errlen, "it waits for no person itself (a plan or split "
					 "session): its parts do, and its waiting_for names each "
					 "call's session to answer");
			else if (!err[0])
				snprintf(err, errlen, "its conversation cannot be read");
			fg_snap_free(&sn);
			e = -ENOMSG;
			break;
		}
		/* which call: the one named, or the only one waiting */
		int at = -1;
		uint32_t waiting = 0;
		for (uint32_t i = 0; i < v->ncalls; i++) {
			int open = v->asked[i] && !v->decided[i] && !v->answered[i];
			waiting += (uint32_t)open;
			if (call_id ? (v->calls[i].id.n == strlen(call_id) &&
				       !memcmp(v->calls[i].id.p, call_id, v->calls[i].id.n))
				    : (open && at < 0))
				at = (int)i;
		}
		/* decided in an earlier turn (named), or nothing waits now and
		 * this may be a retry of the last answer (unnamed) */
		fg_str_t past = { NULL, 0 }, pid;
		if ((call_id && at < 0) || (!call_id && waiting == 0))
			past = decision_of(&sn, call_id, &pid);
		if (past.n && (call_id || st != FG_S_WAITING)) {
			e = against(in, past, pid, by, recorded, err, errlen);
			if (!call_id && e == -EEXIST) {
				snprintf(err, errlen, "it waits for no person (it is %s)", fg_state_name(st));
				e = -ENOMSG;
			}
		} else if (!call_id && waiting > 1) {
			snprintf(err, errlen, "%u calls wait for a person: name one (call_id)", waiting);
			e = -EINVAL;
		} else if (at >= 0 && v->decided[at]) {
			e = against(in, v->decision[at], v->calls[at].id, by, recorded, err, errlen);
		} else if (at < 0 || !v->asked[at] || v->answered[at]) {
			if (call_id && at < 0)
				snprintf(err, errlen, "it has no call %s waiting or answered", call_id);
			else if (call_id)
				snprintf(err, errlen, "call %s does not wait for a person", call_id);
			else
				snprintf(err, errlen, "it waits for no person (it is %s)", fg_state_name(st));
			e = at >= 0 && v->answered[at] ? -EEXIST : call_id && at < 0 ? -ESRCH : -ENOMSG;
		} else if (st != FG_S_WAITING) {
			e = -ESTALE;   /* (asked, not parked yet; or woken by its timeout) */
			if (st == FG_S_CANCELLED || !FG_S_LIVE(st)) {
				snprintf(err, errlen, "it is %s", fg_state_name(st));
				e = -EPERM;
			}
		} else {
			json_t *d = decision_json(in, v->ask[at].kind, by, err, errlen);
			if (!d) {
				e = -EINVAL;
			} else {
				json_object_set_new(d, "at_ms", json_integer((json_int_t)fg_wall_ms()));
				char *s = json_dumps(d, JSON_COMPACT);
				uint8_t *rec = s ? malloc(strlen(s) + v->calls[at].id.n + 16) : NULL;
				if (!rec) {
					e = -ENOMEM;
					snprintf(err, errlen, "out of memory");
				} else {
					fg_buf_t b = { rec, 0, (uint32_t)(strlen(s) + v->calls[at].id.n + 16), 0 };
					fg_buf_idtext(&b, FG_REC_DECISION, v->calls[at].id, s, strlen(s));
					uint32_t st2;
					if (lock)
						pthread_mutex_lock(lock);
					e = fg_session_answer(a, h, sn.ckpt, rec, b.n, &st2);
					if (lock)
						pthread_mutex_unlock(lock);
					if (e == 0) {
						json_object_set_new(d, "call_id", jstrn(v->calls[at].id));
						*recorded = json_incref(d);
					}
					else if (e == -EBUSY)
						e = -ESTALE;
					else if (e == -E2BIG)
						snprintf(err, errlen, "its conversation would pass "
							 "region.session_max_bytes (%llu bytes)",
							 (unsigned long long)fg_log_max(a->r));
					else if (e == -ENOENT)
						snprintf(err, errlen, "no such session");
					else if (e == -EPERM)
						snprintf(err, errlen, "it was cancelled");
					else if (e == -EAGAIN)
						e = -ESTALE;   /* (no lease entry free: again) */
					else if (e < 0 && e != -ESTALE)
						snprintf(err, errlen, "%s", strerror(-e));
				}
				free(rec);
				free(s);
				json_decref(d);
			}
		}
		fg_snap_free(&sn);
	}
	free(v);
	if (bells)
		fg_bell_leave(a->r, idx, FG_BELL_STEPS);
	if (e == -ESTALE) {
		snprintf(err, errlen, "it is running, not waiting: try again");
		e = -EBUSY;
	}
	return e;
}
