/*
 * inspect.c — sessions as JSON, for forgectl and the gateway: state, steps,
 * checksum or result, error, usage, parts and (full) the conversation.
 * Reads only: a snapshot of each record (fg_session_snapshot), which is
 * re-validated after the copy, so what is shown is all one session.
 */
#include "forge/inspect.h"
#include "forge/conv.h"
#include "forge/session.h"
#include "forge/views.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

json_t *fg_inspect_session(const fg_region_t *R, fg_handle_t h, int full, const fg_config_t *cfg)
{
	fg_snap_t sn;
	if (fg_session_snapshot(R, h, &sn, 1) < 0)
		return NULL;
	json_t *j = fg_inspect_snap(&sn, full, cfg);
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
