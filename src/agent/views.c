/* workflow.c — see include/forge/views.h. */
#include "forge/views.h"

#include <stdio.h>
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
	memset(v, 0, sizeof(*v));
	for (;;) {
		at = off;
		rc = fg_rec_next(log, len, &off, &r);
		if (rc <= 0)
			break;
		if (v->final || v->failed) {
			snprintf(err, errlen, "record at byte %u follows the end of the conversation", at);
			return -1;
		}
		switch (r.type) {
		case FG_REC_SYSTEM:
			break;
		case FG_REC_USER:
			users++;
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
			break;
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
			}
			break;
		}
		case FG_REC_ERROR:
			v->failed = 1;
			v->error = (fg_str_t){ (const char *)r.p, r.n };
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
		if (v->final || v->failed) {
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
		case FG_REC_SYSTEM:
		case FG_REC_USAGE:
		case FG_REC_KEY:
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
