/*
 * inspect.c — sessions as JSON, for forgectl and the gateway: state, steps,
 * checksum or result, error, usage, parts and (full) the conversation.
 * Reads only: a snapshot of each record (fg_session_snapshot), which is
 * re-validated after the copy, so what is shown is all one session.
 */
#include "forge/inspect.h"
#include "forge/approval.h"
#include "forge/conv.h"
#include "forge/session.h"
#include "forge/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A map_reduce or plan_execute session: each part's state, and the calls
 * its parts wait on a person for, gathered in the parent's waiting_for
 * (each with "session" and "part"), so that whoever looks at the parent
 * sees what holds it.  A part's record is read as any other (snapshot,
 * re-validated); one purged or reused meanwhile is left as it is.
 */
static void put_parts_state(const fg_region_t *R, const fg_snap_t *sn, json_t *j)
{
	fg_mr_view_t v;
	char err[200];
	json_t *parts = json_object_get(j, "parts"), *all = NULL;
	if (!parts || fg_mr_view(sn->log, sn->len, &v, err, sizeof(err)) < 0)
		return;
	for (uint32_t k = 0; k < v.nparts && k < json_array_size(parts); k++) {
		fg_snap_t c;
		json_t *part = json_array_get(parts, k);
		char hex[FG_ID_LEN + 1];
		snprintf(hex, sizeof(hex), "%016llx%016llx", (unsigned long long)sn->epoch,
			 (unsigned long long)v.child[k]);
		const char *pid = json_string_value(json_object_get(part, "id"));
		if (!v.child[k] || !pid || strcmp(pid, hex) ||   /* (the part it lists) */
		    fg_session_snapshot(R, v.child[k], &c, 0) < 0)
			continue;
		uint32_t state = FG_CTL_STATE(c.ctl);
		json_object_set_new(part, "state", json_string(fg_state_name(state)));
		int react = c.workflow == FG_WF_REACT;
		fg_snap_free(&c);
		if (state != FG_S_WAITING || !react || fg_session_snapshot(R, v.child[k], &c, 1) < 0)
			continue;
		json_t *p = FG_CTL_STATE(c.ctl) == FG_S_WAITING ? fg_approval_pending(&c) : NULL;
		fg_snap_free(&c);
		if (!p)
			continue;
		json_object_set(part, "waiting_for", p);
		size_t i;
		json_t *call;
		json_array_foreach(p, i, call) {
			json_t *x = json_deep_copy(call);
			json_object_set(x, "session", json_object_get(part, "id"));
			json_object_set_new(x, "part", json_integer(k));
			if (!all)
				all = json_array();
			json_array_append_new(all, x);
		}
		json_decref(p);
	}
	if (all)
		json_object_set_new(j, "waiting_for", all);
}

json_t *fg_inspect_session(const fg_region_t *R, fg_handle_t h, int full, const fg_config_t *cfg)
{
	fg_snap_t sn;
	if (fg_session_snapshot(R, h, &sn, 1) < 0)
		return NULL;
	json_t *j = fg_inspect_snap(&sn, full, cfg);
	/* calls that wait for a person (an approval, ask_human) */
	if (j && FG_CTL_STATE(sn.ctl) == FG_S_WAITING && sn.workflow == FG_WF_REACT)
		json_object_set_new(j, "waiting_for", fg_approval_pending(&sn));
	if (j && full && (sn.workflow == FG_WF_MAP_REDUCE || sn.workflow == FG_WF_PLAN_EXECUTE))
		put_parts_state(R, &sn, j);   /* (one session's view, not each of a list) */
	fg_snap_free(&sn);
	/* a model turn whose requests fail (an outage, a rate limit): how
	 * long, how often, until when forge keeps trying */
	fg_outage_t o;
	if (j && fg_live_outage_read(R, h, &o)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		json_t *x = json_pack("{s:s,s:i,s:f,s:f,s:i,s:I,s:s}", "provider", o.name,
			"failures", (int)o.fails,
			"failing_for_s", now > o.since_ns ? (now - o.since_ns) / 1e9 : 0.0,
			"next_try_in_s", o.next_ns > now ? (o.next_ns - now) / 1e9 : 0.0,
			"max_retries", (int)o.max_retries, "give_up_after_s",
			(json_int_t)((o.give_up_ns - o.since_ns) / 1000000000ull), "error", o.error);
		json_object_set_new(j, "retrying", x);
	}
	return j;
}

/* "messages": the OpenAI messages; "internal": forge's own records, for
 * operators (intents, errors, parts, children), when there are any. */
static void put_messages(json_t *j, const uint8_t *log, uint32_t len)
{
	json_t *m = fg_conv_json(log, len, NULL, NULL), *vis, *in;
	if (!m) {
		json_object_set_new(j, "messages", json_null());
		return;
	}
	fg_conv_split(m, &vis, &in);
	json_decref(m);
	json_object_set_new(j, "messages", vis);
	if (json_array_size(in))
		json_object_set_new(j, "internal", in);
	else
		json_decref(in);
}

/* "agent": the name in an AGENT record, if the session runs one */
static void put_agent(json_t *j, fg_str_t rec)
{
	if (!rec.n)
		return;
	json_t *a = json_loadb(rec.p, rec.n, 0, NULL);
	const char *n = json_string_value(json_object_get(a, "name"));
	if (n)
		json_object_set_new(j, "agent", json_string(n));
	json_decref(a);
}

json_t *fg_inspect_snap(const fg_snap_t *s, int full, const fg_config_t *cfg)
{
	fg_wstate_t st = s->st;
	uint64_t c = s->ctl;
	uint64_t w = s->ckpt;
	char id[FG_ID_LEN + 1];
	snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)s->epoch,
		 (unsigned long long)s->h);
	json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:i}", "id", id,
		"state", fg_state_name(FG_CTL_STATE(c)),
		"workflow", s->workflow == FG_WF_SYNTHETIC ? "synthetic" :
			    s->workflow == FG_WF_REACT ? "react" :
			    s->workflow == FG_WF_MAP_REDUCE ? "map_reduce" :
			    s->workflow == FG_WF_PLAN_EXECUTE ? "plan_execute" : "unknown",
		"steps", (int)st.step, "steps_total", (int)s->steps);
	if (s->workflow == FG_WF_MAP_REDUCE || s->workflow == FG_WF_PLAN_EXECUTE) {
		fg_mr_view_t v;
		char err[200];
		const uint8_t *log = s->log;
		uint32_t len = s->len;
		if (fg_mr_view(log, len, &v, err, sizeof(err)) == 0) {
			put_agent(j, v.agent);
			if (v.final)
				json_object_set_new(j, "result", json_stringn(v.answer.p, v.answer.n));
			if (v.failed)
				json_object_set_new(j, "error", json_stringn(v.error.p, v.error.n));
			json_t *kids = json_array();
			for (uint32_t k = 0; k < v.nparts; k++) {
				char hex[FG_ID_LEN + 1];
				snprintf(hex, sizeof(hex), "%016llx%016llx",
					 (unsigned long long)s->epoch, (unsigned long long)v.child[k]);
				json_t *dep = json_array();
				for (uint32_t d = 0; d < k; d++)
					if (fg_mr_dep(&v, k, d))
						json_array_append_new(dep, json_integer(d));
				json_array_append_new(kids, json_pack("{s:s%,s:s,s:o}", "part", v.parts[k].p,
					(size_t)v.parts[k].n, "id", hex, "depends_on", dep));
			}
			json_object_set_new(j, "parts", kids);
		} else {
			json_object_set_new(j, "error", json_string(err));
		}
		json_object_set_new(j, "usage", json_pack("{s:I,s:I}", "prompt_tokens",
			(json_int_t)st.aux[0], "completion_tokens", (json_int_t)st.aux[1]));
		if (full)
			put_messages(j, log, len);
	}
	if (s->workflow == FG_WF_REACT) {
		fg_react_view_t v;
		char err[200];
		const uint8_t *log = s->log;
		uint32_t len = s->len;
		if (fg_react_view(log, len, &v, err, sizeof(err)) == 0) {
			put_agent(j, v.agent);
			if (v.final)
				json_object_set_new(j, "result", json_stringn(v.answer.p, v.answer.n));
			if (v.failed)
				json_object_set_new(j, "error", json_stringn(v.error.p, v.error.n));
		} else {
			json_object_set_new(j, "error", json_string(err));
		}
		json_object_set_new(j, "usage", json_pack("{s:I,s:I}", "prompt_tokens",
			(json_int_t)st.aux[0], "completion_tokens", (json_int_t)st.aux[1]));
		if (full && cfg && s->arg < cfg->nproviders)
			json_object_set_new(j, "provider", json_string(cfg->providers[s->arg].name));
		if (full)
			put_messages(j, log, len);
	}
	if (s->workflow == FG_WF_SYNTHETIC) {
		char sum[32];
		snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)st.checksum);
		json_object_set_new(j, "checksum", json_string(sum));
		if (full) {
			snprintf(sum, sizeof(sum), "%016llx",
				 (unsigned long long)fg_synthetic_expected(s->steps));
			json_object_set_new(j, "checksum_expected", json_string(sum));
		}
	}
	if (full) {
		json_object_set_new(j, "claims", json_integer(s->claims));
		json_object_set_new(j, "checkpoint_seq", json_integer(FG_CKPT_SEQ(w)));
		json_object_set_new(j, "checkpoint_log_bytes", json_integer(FG_CKPT_LEN(w)));
		if (s->workflow == FG_WF_SYNTHETIC)
			json_object_set_new(j, "delay_us", json_integer(s->arg));
		if (FG_S_LEASED(FG_CTL_STATE(c)))
			json_object_set_new(j, "lease", json_pack("{s:i,s:i}", "slot",
				(int)FG_CTL_SLOT(c), "gen", (int)FG_CTL_LGEN(c)));
		if (s->parent)
			json_object_set_new(j, "parent_index", json_integer(s->parent - 1));
		uint64_t fin = s->finished_ns, sta = s->started_ns;
		if (fin && FG_S_FINISHED(FG_CTL_STATE(c)))
			json_object_set_new(j, "duration_ms",
				json_real((fin - s->created_ns) / 1e6));
		if (sta)
			json_object_set_new(j, "wait_ms", json_real((sta - s->created_ns) / 1e6));
	}
	return j;
}

json_t *fg_inspect_agents(const fg_region_t *r)
{
	json_t *out = json_object();
	for (uint32_t i = 0; out && i < r->hdr->capacity; i++) {
		uint64_t c = atomic_load_explicit(&fg_sess(r, i)->ctl, memory_order_relaxed);
		uint32_t st = FG_CTL_STATE(c);
		if (FG_S_NONE(st))
			continue;
		fg_snap_t sn;
		if (fg_session_snapshot(r, FG_HANDLE(i, FG_CTL_SGEN(c)), &sn, 2) < 0)
			continue;
		/* the first record after KEY, whose payload may run past the
		 * prefix copied: its header, and what of it is here */
		uint32_t off = 0;
		fg_rec_t rec;
		if (sn.len > FG_REC_HDR && sn.log[0] == FG_REC_KEY && fg_rec_next(sn.log, sn.len, &off,
										  &rec) != 1)
			off = sn.len;
		const uint8_t *p = sn.log + off;
		uint32_t have = sn.len - off > FG_REC_HDR ? sn.len - off - FG_REC_HDR : 0;
		uint32_t plen = have ? (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 |
				       (uint32_t)p[5] << 24 : 0;
		const char *pay = (const char *)p + FG_REC_HDR;
		if (have > plen)
			have = plen;
		/* {"name":"NAME","prices":[P,C],...: the name and the prices
		 * first (agents.c), the name of [A-Za-z0-9._-] */
		static const char pre[] = "{\"name\":\"";
		const char *n0 = pay + sizeof(pre) - 1, *q;
		if (have > sizeof(pre) && p[0] == FG_REC_AGENT && !memcmp(pay, pre, sizeof(pre) - 1) &&
		    (q = memchr(n0, '"', have - (sizeof(pre) - 1))) && q - n0 < 64) {
			char name[64];
			memcpy(name, n0, (size_t)(q - n0));
			name[q - n0] = '\0';
			json_t *a = json_object_get(out, name);
			if (!a) {
				a = json_pack("{s:I,s:I,s:I,s:I,s:f}", "sessions", (json_int_t)0,
					      "running", (json_int_t)0, "prompt_tokens", (json_int_t)0,
					      "completion_tokens", (json_int_t)0, "cost_usd", 0.0);
				json_object_set_new(out, name, a);
			}
			static const char *const k[] = { "sessions", "running", "prompt_tokens",
							 "completion_tokens" };
			uint64_t add[] = { 1, FG_S_LIVE(FG_CTL_STATE(sn.ctl)) ? 1u : 0u,
					   sn.st.aux[0], sn.st.aux[1] };
			for (int f = 0; f < 4; f++)
				json_object_set_new(a, k[f], json_integer(json_integer_value(
					json_object_get(a, k[f])) + (json_int_t)add[f]));
			/* its cost, at the prices it was made with */
			static const char pr[] = "\",\"prices\":[";
			size_t rest = have - (size_t)(q - pay);
			if (rest > sizeof(pr) && !memcmp(q, pr, sizeof(pr) - 1)) {
				char num[80];
				size_t m = rest - (sizeof(pr) - 1) < sizeof(num) - 1 ?
					   rest - (sizeof(pr) - 1) : sizeof(num) - 1;
				memcpy(num, q + sizeof(pr) - 1, m);
				num[m] = '\0';
				char *e1, *e2;
				double pp = strtod(num, &e1), pc = *e1 == ',' ? strtod(e1 + 1, &e2) : 0;
				if (*e1 == ',' && *e2 == ']') {
					double cost = ((double)sn.st.aux[0] * pp +
						       (double)sn.st.aux[1] * pc) / 1e6;
					json_object_set_new(a, "cost_usd", json_real(json_real_value(
						json_object_get(a, "cost_usd")) + cost));
				}
			}
		}
		fg_snap_free(&sn);
	}
	return out;
}
