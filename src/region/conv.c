/* conv.c — see include/forge/conv.h for the record format. */
#include "forge/conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(fg_buf_t *b, const void *p, size_t n)
{
	if (!b->overflow && b->n + n > b->cap && b->grow && b->n + n <= b->max) {
		uint64_t want = (uint64_t)b->cap * 2 > b->n + n ? (uint64_t)b->cap * 2 : b->n + n;
		if (want > b->max)
			want = b->max;
		uint8_t *np = realloc(b->p, want);
		if (!np)
			b->oom = 1;
		else {
			b->p = np;
			b->cap = (uint32_t)want;
		}
	}
	if (b->overflow || b->n + n > b->cap) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->n, p, n);
	b->n += (uint32_t)n;
}

static void put16(fg_buf_t *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	put(b, x, 2);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void hdr(uint8_t h[FG_REC_HDR], uint8_t type, uint32_t n)
{
	h[0] = type;
	h[1] = 0;
	h[2] = (uint8_t)n;
	h[3] = (uint8_t)(n >> 8);
	h[4] = (uint8_t)(n >> 16);
	h[5] = (uint8_t)(n >> 24);
}

void fg_buf_rec(fg_buf_t *b, uint8_t type, const void *payload, size_t n)
{
	if (n > FG_REC_MAX) {
		b->overflow = 1;
		return;
	}
	uint8_t h[FG_REC_HDR];
	hdr(h, type, (uint32_t)n);
	put(b, h, FG_REC_HDR);
	put(b, payload, n);
}

void fg_buf_str(fg_buf_t *b, const char *s, size_t n)
{
	if (n > 65535) {
		b->overflow = 1;
		return;
	}
	put16(b, (uint16_t)n);
	put(b, s, n);
}

/* Builds a record whose payload is written after its header, then patches the length. */
static uint32_t begin(fg_buf_t *b, uint8_t type)
{
	uint32_t at = b->n;
	uint8_t h[FG_REC_HDR];
	hdr(h, type, 0);
	put(b, h, FG_REC_HDR);
	return at;
}

static void end(fg_buf_t *b, uint32_t at)
{
	if (b->overflow)
		return;
	uint32_t n = b->n - at - FG_REC_HDR;
	if (n > FG_REC_MAX) {
		b->overflow = 1;
		return;
	}
	hdr(b->p + at, b->p[at], n);
}

void fg_buf_toolcalls(fg_buf_t *b, const fg_call_t *calls, uint32_t n)
{
	uint32_t at = begin(b, FG_REC_TOOLCALLS);
	uint8_t k = (uint8_t)n;
	put(b, &k, 1);
	for (uint32_t i = 0; i < n; i++) {
		fg_buf_str(b, calls[i].id.p, calls[i].id.n);
		fg_buf_str(b, calls[i].name.p, calls[i].name.n);
		fg_buf_str(b, calls[i].args.p, calls[i].args.n);
	}
	end(b, at);
}

void fg_buf_idtext(fg_buf_t *b, uint8_t type, fg_str_t id, const char *text, size_t n)
{
	uint32_t at = begin(b, type);
	fg_buf_str(b, id.p, id.n);
	put(b, text, n);
	end(b, at);
}

void fg_buf_tool(fg_buf_t *b, fg_str_t id, const char *text, size_t n)
{
	fg_buf_idtext(b, FG_REC_TOOL, id, text, n);
}

void fg_buf_ask(fg_buf_t *b, fg_str_t id, const fg_ask_t *a)
{
	uint8_t x[FG_ASK_BYTES];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(a->deadline_ms >> (8 * i));
	x[8] = a->kind;
	x[9] = a->dflt;
	for (int i = 0; i < 8; i++)
		x[10 + i] = (uint8_t)(a->wake_ms >> (8 * i));
	fg_buf_idtext(b, FG_REC_ASK, id, (const char *)x, sizeof(x));
}

void fg_buf_parts(fg_buf_t *b, const fg_str_t *parts, uint32_t n)
{
	uint32_t at = begin(b, FG_REC_PARTS);
	put16(b, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++)
		fg_buf_str(b, parts[i].p, parts[i].n);
	end(b, at);
}

void fg_buf_child(fg_buf_t *b, uint32_t part, uint64_t handle)
{
	uint8_t p[10];
	p[0] = (uint8_t)part;
	p[1] = (uint8_t)(part >> 8);
	for (int i = 0; i < 8; i++)
		p[2 + i] = (uint8_t)(handle >> (8 * i));
	fg_buf_rec(b, FG_REC_CHILD, p, 10);
}

void fg_buf_deps(fg_buf_t *b, const uint64_t (*dep)[FG_MAX_PARTS / 64], uint32_t n)
{
	uint32_t at = begin(b, FG_REC_DEPS);
	put16(b, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t k = 0;
		for (uint32_t d = 0; d < i; d++)
			k += (uint16_t)(dep[i][d / 64] >> (d % 64) & 1);
		put16(b, k);
		for (uint32_t d = 0; d < i; d++)
			if (dep[i][d / 64] >> (d % 64) & 1)
				put16(b, (uint16_t)d);
	}
	end(b, at);
}

int fg_rec_next_raw(const uint8_t *log, uint32_t len, uint32_t *off, fg_rec_t *r)
{
	if (*off == len)
		return 0;
	if (*off + FG_REC_HDR > len)
		return -1;
	const uint8_t *h = log + *off;
	r->type = h[0];
	r->n = get32(h + 2);
	r->p = h + FG_REC_HDR;
	if (r->type < FG_REC_SYSTEM || r->type > FG_REC_DECISION ||
	    (r->type == FG_REC_COMMIT && r->n != FG_COMMIT_PAYLOAD) ||
	    (uint64_t)*off + FG_REC_HDR + r->n > len)
		return -1;
	*off += FG_REC_HDR + r->n;
	return 1;
}

int fg_rec_next(const uint8_t *log, uint32_t len, uint32_t *off, fg_rec_t *r)
{
	int rc;
	while ((rc = fg_rec_next_raw(log, len, off, r)) == 1 && r->type == FG_REC_COMMIT)
		;
	return rc;
}

static int get_str(const uint8_t *p, uint32_t n, uint32_t *o, fg_str_t *s)
{
	if (*o + 2 > n)
		return -1;
	s->n = get16(p + *o);
	if (*o + 2 + s->n > n)
		return -1;
	s->p = (const char *)p + *o + 2;
	*o += 2u + s->n;
	return 0;
}

int fg_rec_calls(const fg_rec_t *r, fg_call_t *calls, uint32_t max)
{
	if (r->type != FG_REC_TOOLCALLS || r->n < 1)
		return -1;
	uint32_t k = r->p[0], o = 1;
	if (k == 0 || k > max)
		return -1;
	for (uint32_t i = 0; i < k; i++)
		if (get_str(r->p, r->n, &o, &calls[i].id) < 0 ||
		    get_str(r->p, r->n, &o, &calls[i].name) < 0 ||
		    get_str(r->p, r->n, &o, &calls[i].args) < 0)
			return -1;
	return o == r->n ? (int)k : -1;
}

int fg_rec_parts(const fg_rec_t *r, fg_str_t *parts, uint32_t max)
{
	if (r->type != FG_REC_PARTS || r->n < 2)
		return -1;
	uint32_t k = get16(r->p), o = 2;
	if (k == 0 || k > max)
		return -1;
	for (uint32_t i = 0; i < k; i++)
		if (get_str(r->p, r->n, &o, &parts[i]) < 0)
			return -1;
	return o == r->n ? (int)k : -1;
}

int fg_rec_child(const fg_rec_t *r, uint32_t *part, uint64_t *handle)
{
	if (r->type != FG_REC_CHILD || r->n != 10)
		return -1;
	*part = get16(r->p);
	*handle = 0;
	for (int i = 0; i < 8; i++)
		*handle |= (uint64_t)r->p[2 + i] << (8 * i);
	return 0;
}

int fg_rec_ask(const fg_rec_t *r, fg_str_t *id, fg_ask_t *a)
{
	uint32_t o = 0;
	if (r->type != FG_REC_ASK || get_str(r->p, r->n, &o, id) < 0 || r->n - o != FG_ASK_BYTES)
		return -1;
	const uint8_t *x = r->p + o;
	a->deadline_ms = 0;
	for (int i = 0; i < 8; i++)
		a->deadline_ms |= (uint64_t)x[i] << (8 * i);
	a->kind = x[8];
	a->dflt = x[9];
	a->wake_ms = 0;
	for (int i = 0; i < 8; i++)
		a->wake_ms |= (uint64_t)x[10 + i] << (8 * i);
	return a->kind == FG_ASK_APPROVE || a->kind == FG_ASK_QUESTION ? 0 : -1;
}

int fg_rec_tool(const fg_rec_t *r, fg_str_t *id, fg_str_t *text)
{
	uint32_t o = 0;
	if ((r->type != FG_REC_TOOL && r->type != FG_REC_INTENT && r->type != FG_REC_DECISION) ||
	    get_str(r->p, r->n, &o, id) < 0)
		return -1;
	if (text) {
		text->p = (const char *)r->p + o;
		text->n = r->n - o;
	} else if (o != r->n) {
		return -1;
	}
	return 0;
}

json_t *fg_json_text(const void *p, size_t n)
{
	json_t *s = json_stringn((const char *)p, n);
	if (s)
		return s;
	const unsigned char *in = p;
	char *out = malloc(n * 3 + 1);
	size_t o = 0, i = 0;
	if (!out)
		return json_string("");
	while (i < n) {
		/* a whole sequence as jansson takes it: no overlong form, no
		 * surrogate, nothing past U+10FFFF */
		unsigned char c = in[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			     (c & 0xf8) == 0xf0 ? 4 : 0;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
		size_t k = 1;
		while (len && k < len && i + k < n && (in[i + k] & 0xc0) == 0x80)
			cp = cp << 6 | (in[i + k++] & 0x3fu);
		int ok = len && k == len && !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) &&
			 !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
			 !(cp >= 0xd800 && cp <= 0xdfff);
		if (ok) {
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	s = json_stringn(out, o);
	free(out);
	return s ? s : json_string("");
}

static json_t *build(const uint8_t *log, uint32_t len, char *err, size_t errlen, int full,
		     uint32_t *pt, uint32_t *ct)
{
	json_t *msgs = json_array();
	uint32_t off = 0;
	fg_rec_t r, note = { 0 };
	int rc;
	if (pt)
		*pt = *ct = 0;
	while ((rc = fg_rec_next(log, len, &off, &r)) == 1) {
		static const char *const roles[] = { "", "system", "user", "assistant" };
		json_t *m = NULL;
		switch (r.type) {
		case FG_REC_SYSTEM:
		case FG_REC_USER:
		case FG_REC_ASSISTANT:
			m = json_pack("{s:s,s:o}", "role", roles[r.type], "content", fg_json_text(r.p, r.n));
			break;
		case FG_REC_TOOLCALLS: {
			fg_call_t c[FG_MAX_CALLS];
			int k = fg_rec_calls(&r, c, FG_MAX_CALLS);
			if (k < 0)
				goto corrupt;
			json_t *tc = json_array();
			for (int i = 0; i < k; i++)
				json_array_append_new(tc, json_pack("{s:o,s:s,s:{s:o,s:o}}",
					"id", fg_json_text(c[i].id.p, c[i].id.n), "type", "function",
					"function", "name", fg_json_text(c[i].name.p, c[i].name.n),
					"arguments", fg_json_text(c[i].args.p, c[i].args.n)));
			m = note.p ? json_pack("{s:s,s:o,s:o}", "role", "assistant", "content",
					       fg_json_text(note.p, note.n), "tool_calls", tc)
				   : json_pack("{s:s,s:n,s:o}", "role", "assistant", "content", "tool_calls", tc);
			note.p = NULL;
			break;
		}
		case FG_REC_TOOL: {
			fg_str_t id, text;
			if (fg_rec_tool(&r, &id, &text) < 0)
				goto corrupt;
			m = json_pack("{s:s,s:o,s:o}", "role", "tool", "tool_call_id",
				      fg_json_text(id.p, id.n), "content", fg_json_text(text.p, text.n));
			break;
		}
		case FG_REC_INTENT:
			if (full) {
				fg_str_t id;
				if (fg_rec_tool(&r, &id, NULL) < 0)
					goto corrupt;
				m = json_pack("{s:s,s:o}", "role", "forge.intent", "tool_call_id",
					      fg_json_text(id.p, id.n));
			}
			break;
		case FG_REC_ASK:
			if (full) {
				fg_str_t id;
				fg_ask_t a;
				if (fg_rec_ask(&r, &id, &a) < 0)
					goto corrupt;
				m = json_pack("{s:s,s:o,s:s}", "role", "forge.ask", "tool_call_id",
					      fg_json_text(id.p, id.n), "kind",
					      a.kind == FG_ASK_APPROVE ? "approval" : "question");
				if (a.deadline_ms) {
					json_object_set_new(m, "deadline_ms", json_integer((json_int_t)a.deadline_ms));
					json_object_set_new(m, "default", json_string(a.dflt ? "approve" : "reject"));
				}
			}
			break;
		case FG_REC_DECISION:
			if (full) {
				fg_str_t id, text;
				if (fg_rec_tool(&r, &id, &text) < 0)
					goto corrupt;
				json_t *d = json_loadb(text.p, text.n, 0, NULL);
				if (!json_is_object(d)) {
					json_decref(d);
					goto corrupt;
				}
				m = json_pack("{s:s,s:o}", "role", "forge.decision", "tool_call_id",
					      fg_json_text(id.p, id.n));
				json_object_update_missing(m, d);
				json_decref(d);
			}
			break;
		case FG_REC_ERROR:
			if (full)
				m = json_pack("{s:s,s:o}", "role", "forge.error", "content", fg_json_text(r.p, r.n));
			break;
		case FG_REC_PARTS:
			if (full) {
				fg_str_t parts[FG_MAX_PARTS];
				int k = fg_rec_parts(&r, parts, FG_MAX_PARTS);
				if (k < 0)
					goto corrupt;
				json_t *a = json_array();
				for (int i = 0; i < k; i++)
					json_array_append_new(a, fg_json_text(parts[i].p, parts[i].n));
				m = json_pack("{s:s,s:o}", "role", "forge.parts", "parts", a);
			}
			break;
		case FG_REC_CHILD:
			if (full) {
				uint32_t part;
				uint64_t h;
				char hex[17];
				if (fg_rec_child(&r, &part, &h) < 0)
					goto corrupt;
				snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
				m = json_pack("{s:s,s:i,s:s}", "role", "forge.child", "part", (int)part,
					      "id", hex);
			}
			break;
		case FG_REC_NOTE:
			note = r;   /* the content of the calls' message, next */
			break;
		case FG_REC_USAGE:
			if (r.n != 8)
				goto corrupt;
			if (pt) {
				*pt += (uint32_t)r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16 |
				       (uint32_t)r.p[3] << 24;
				*ct += (uint32_t)r.p[4] | (uint32_t)r.p[5] << 8 | (uint32_t)r.p[6] << 16 |
				       (uint32_t)r.p[7] << 24;
			}
			break;
		}
		if (m)
			json_array_append_new(msgs, m);
	}
	if (rc == 0)
		return msgs;
corrupt:
	if (err)
		snprintf(err, errlen, "checkpoint log is corrupt at byte %u of %u", off, len);
	json_decref(msgs);
	return NULL;
}

json_t *fg_conv_messages(const uint8_t *log, uint32_t len, char *err, size_t errlen)
{
	return build(log, len, err, errlen, 0, NULL, NULL);
}

json_t *fg_conv_json(const uint8_t *log, uint32_t len, uint32_t *pt, uint32_t *ct)
{
	return build(log, len, NULL, 0, 1, pt, ct);
}

void fg_conv_split(json_t *all, json_t **visible, json_t **internal)
{
	*visible = json_array();
	*internal = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(all, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));
		if (role && !strncmp(role, "forge.", 6)) {
			json_t *x = json_copy(m);
			json_object_set_new(x, "before", json_integer((json_int_t)json_array_size(*visible)));
			json_array_append_new(*internal, x);
		} else {
			json_array_append(*visible, m);
		}
	}
}
