/* libFuzzer target: the gateway's request bodies (POST /v1/sessions,
 * /v1/sessions/batch, /v1/chat/completions, /v1/sessions/{id}/messages and
 * /fork) on arbitrary bytes: accepted with a submission that holds what the
 * gateway promises, or refused with a 400 and a message; never a crash, a
 * leak or a NUL-truncated prompt. */
#include "forge/conv.h"
#include "forge/gwreq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static fg_config_t cfg;

static void check(int rc, const fg_gwreq_t *q)
{
	if (rc < 0) {
		if ((q->status != 400 && q->status != 503) || !q->error[0])
			abort();
		return;
	}
	const fg_submit_t *p = &q->sub;
	if (p->workflow != FG_WF_REACT && p->workflow != FG_WF_PLAN_EXECUTE &&
	    p->workflow != FG_WF_MAP_REDUCE)
		abort();
	if (!p->prompt || !*p->prompt || p->arg >= cfg.nproviders)
		abort();
	if (p->steps < 1 || p->steps > 1000)
		abort();
	if (p->workflow != FG_WF_REACT && p->steps > FG_MAX_PARTS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cfg.nproviders) {
		static const char yaml[] =
			"llm:\n  default: mock\n  providers:\n"
			"    mock:\n      base_url: http://127.0.0.1:1/v1\n"
			"    other:\n      type: scripted\n";
		char err[512];
		fg_config_defaults(&cfg);
		if (fg_config_load_buf(&cfg, "fuzz.yaml", yaml, sizeof(yaml) - 1, err,
				       sizeof(err)) < 0 || cfg.nproviders != 2)
			abort();
		json_set_alloc_funcs(fg_gwreq_json_malloc, free);
	}
	fg_gwreq_t q;
	check(fg_gwreq_session((const char *)data, size, &cfg, &q), &q);
	fg_gwreq_free(&q);
	check(fg_gwreq_chat((const char *)data, size, &cfg, &q), &q);
	fg_gwreq_free(&q);
	/* POST /v1/sessions/{id}/messages: one USER record, or a 400 */
	if (fg_gwreq_message((const char *)data, size, &q) == 0) {
		uint32_t off = 0;
		fg_rec_t r;
		if (fg_rec_next(q.recs.p, q.recs.n, &off, &r) != 1 || r.type != FG_REC_USER ||
		    r.n == 0 || off != q.recs.n)
			abort();
	} else if ((q.status != 400 && q.status != 503) || !q.error[0]) {
		abort();
	}
	fg_gwreq_free(&q);
	/* POST /v1/sessions/{id}/fork: at and no record, or one USER record */
	if (fg_gwreq_fork((const char *)data, size, &q) == 0) {
		uint32_t off = 0;
		fg_rec_t r;
		if (q.recs.n && (fg_rec_next(q.recs.p, q.recs.n, &off, &r) != 1 ||
				 r.type != FG_REC_USER || r.n == 0 || off != q.recs.n))
			abort();
	} else if ((q.status != 400 && q.status != 503) || !q.error[0]) {
		abort();
	}
	fg_gwreq_free(&q);
	/* POST /v1/sessions/batch: every item a session as above, or a 400 */
	size_t n;
	cfg.http_max_batch = 64;
	if (fg_gwreq_batch((const char *)data, size, &cfg, &q, &n, NULL, NULL) == 0) {
		if (n < 1 || n > cfg.http_max_batch)
			abort();
		for (size_t i = 0; i < n; i++) {
			fg_gwreq_t it;
			int rc = fg_gwreq_item(&cfg, &q, i, &it);
			if (rc < 0 && it.status != 503)
				abort();   /* (checked whole: only out of memory) */
			check(rc, &it);
			fg_gwreq_free(&it);
		}
	} else if ((q.status != 400 && q.status != 503) || !q.error[0]) {
		abort();
	}
	fg_gwreq_free(&q);
	return 0;
}
