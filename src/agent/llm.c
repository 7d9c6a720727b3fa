/* llm.c — see include/forge/llm.h. */
#include "forge/llm.h"
#include "forge/views.h"

#include "forge/config.h"
#include "forge/util.h"

#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1 << 20)

_Static_assert(sizeof(((fg_provider_cfg_t *)0)->script[0]) == sizeof(fg_script_step_t),
	       "script entries and fg_script_step_t share a layout");
_Static_assert(offsetof(fg_script_step_t, calls) ==
	       offsetof(fg_provider_cfg_t, script[0].calls) - offsetof(fg_provider_cfg_t, script[0]),
	       "script entries and fg_script_step_t share a layout");

/* An empty reply.  calls[] (6 KiB) is left as it is: only its first
 * ncalls are ever read, and each is written whole before ncalls counts it
 * (zeroing it all cost a scripted ReAct session a tenth of its CPU). */
static void reply_clear(fg_llm_reply_t *r)
{
	r->ok = 0;
	r->err = 0;
	r->error[0] = 0;
	r->ncalls = 0;
	r->content = NULL;
	r->content_n = 0;
	r->finish[0] = 0;
	r->prompt_tokens = r->completion_tokens = 0;
	r->root = NULL;
}

void fg_llm_reply_free(fg_llm_reply_t *r)
{
	if (r->root)
		json_decref(r->root);
	reply_clear(r);
}

char *fg_llm_request(const char *model, json_t *messages, json_t *tools, json_t *params,
		     int stream, size_t *len)
{
	json_t *j = json_pack("{s:s,s:O}", "model", model, "messages", messages);
	if (j && json_is_object(params))
		json_object_update_missing(j, params);
	if (tools && json_array_size(tools) > 0) {
		json_object_set(j, "tools", tools);
		json_object_set_new(j, "tool_choice", json_string("auto"));
	}
	if (stream) {
		json_object_set_new(j, "stream", json_true());
		json_object_set_new(j, "stream_options", json_pack("{s:b}", "include_usage", 1));
	}
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}

static void fail(fg_llm_reply_t *r, const char *fmt, const char *a)
{
	r->ok = 0;
	r->err = FG_LLM_REFUSED;
	snprintf(r->error, sizeof(r->error), fmt, a ? a : "");
}

static void take_usage(fg_llm_reply_t *r, json_t *usage)
{
	json_t *p = json_object_get(usage, "prompt_tokens");
	json_t *c = json_object_get(usage, "completion_tokens");
	if (json_is_integer(p) && json_integer_value(p) >= 0)
		r->prompt_tokens = (uint32_t)json_integer_value(p);
	if (json_is_integer(c) && json_integer_value(c) >= 0)
		r->completion_tokens = (uint32_t)json_integer_value(c);
}

/* Fills r from an assistant message object (owned by r->root). */
static void take_message(fg_llm_reply_t *r, json_t *msg)
{
	json_t *refusal = json_object_get(msg, "refusal");
	if (json_is_string(refusal)) {
		fail(r, "the model refused: %.200s", json_string_value(refusal));
		return;
	}
	json_t *tc = json_object_get(msg, "tool_calls");
	if (json_is_array(tc) && json_array_size(tc) > 0) {
		if (json_array_size(tc) > FG_MAX_CALLS) {
			r->ok = 0;
			r->err = FG_LLM_REFUSED;
			snprintf(r->error, sizeof(r->error), "reply asks for %zu tool calls, at most %d",
				 json_array_size(tc), FG_MAX_CALLS);
			return;
		}
		size_t i;
		json_t *c;
		json_array_foreach(tc, i, c) {
			json_t *id = json_object_get(c, "id");
			json_t *fn = json_object_get(c, "function");
			json_t *name = json_object_get(fn, "name");
			json_t *args = json_object_get(fn, "arguments");
			if (!json_is_string(id) || !json_string_length(id)) {
				fail(r, "tool call without an id%s", NULL);
				return;
			}
			if (!json_is_string(name) || !json_string_length(name)) {
				fail(r, "tool call %s has no function name", json_string_value(id));
				return;
			}
			if (args && !json_is_string(args)) {
				fail(r, "tool call %s: arguments are not a string", json_string_value(id));
				return;
			}
			if (json_string_length(id) > 255 || json_string_length(name) > 255) {
				fail(r, "tool call id or name longer than 255 bytes%s", NULL);
				return;
			}
			r->calls[i].id = (fg_str_t){ json_string_value(id), (uint32_t)json_string_length(id) };
			r->calls[i].name = (fg_str_t){ json_string_value(name),
						       (uint32_t)json_string_length(name) };
			size_t an = args ? json_string_length(args) : 2;
			if (an > 16384) {
				fail(r, "tool call %s: arguments longer than 16384 bytes", json_string_value(id));
				return;
			}
			r->calls[i].args = (fg_str_t){ args ? json_string_value(args) : "{}", (uint32_t)an };
			/* each call's result names it: two of one id could not
			 * be told apart (nor answered, nor approved, one by one) */
			for (size_t k = 0; k < i; k++)
				if (r->calls[k].id.n == r->calls[i].id.n &&
				    !memcmp(r->calls[k].id.p, r->calls[i].id.p, r->calls[i].id.n)) {
					fail(r, "two tool calls have the id %s", json_string_value(id));
					return;
				}
		}
		r->ncalls = (uint32_t)json_array_size(tc);
		r->ok = 1;
		/* the text a model sends beside its calls (its reasoning) */
		json_t *beside = json_object_get(msg, "content");
		if (json_is_string(beside) && json_string_length(beside)) {
			r->content = json_string_value(beside);
			r->content_n = json_string_length(beside);
		}
		return;
	}
	json_t *content = json_object_get(msg, "content");
	if (json_is_string(content)) {
		r->content = json_string_value(content);
		r->content_n = json_string_length(content);
		r->ok = 1;
		return;
	}
	fail(r, "reply has neither content nor tool_calls%s", NULL);
}

#define SB_LIT(b, s) fg_sb_put(b, s, sizeof(s) - 1)

/* A JSON string literal; bytes that are not valid UTF-8 become U+FFFD. */
static void sb_jstr(fg_sb_t *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	SB_LIT(b, "\"");
	size_t i = 0, run = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = 1;
		int ok = 1;
		if (c >= 0x80) {
			len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
			if (len == 0 || i + len > n)
				ok = 0;
			for (size_t k = 1; ok && k < len; k++)
				if (((unsigned char)s[i + k] & 0xc0) != 0x80)
					ok = 0;
		}
		if (ok && c >= 0x20 && c != '"' && c != '\\') {
			i += len;
			run += len;
			continue;
		}
		fg_sb_put(b, s + i - run, run);
		run = 0;
		if (!ok) {
			SB_LIT(b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		char esc[7] = { '\\', (char)c, 0 };
		if (c == '\n') esc[1] = 'n';
		else if (c == '\r') esc[1] = 'r';
		else if (c == '\t') esc[1] = 't';
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
			fg_sb_put(b, esc, 6);
		} else {
			fg_sb_put(b, esc, 2);
		}
		i++;
	}
	fg_sb_put(b, s + i - run, run);
	SB_LIT(b, "\"");
}

/* A record that becomes a message of the request. */
static int is_message(uint8_t t)
{
	return t == FG_REC_SYSTEM || t == FG_REC_USER || t == FG_REC_ASSISTANT ||
	       t == FG_REC_TOOLCALLS || t == FG_REC_TOOL;
}

/*
 * workflows.context_max_bytes: the offset of the first non-system message
 * to send so that the messages from there on (their text) fit keep bytes,
 * beside the system messages.  It is always a turn's start (a user
 * message, or an assistant one: never a tool result without the call it
 * answers), and never past the last turn's start, whatever its size.
 * *dropped: messages left out.
 */
static uint32_t trim_from(const uint8_t *log, uint32_t len, uint32_t keep, uint32_t *dropped)
{
	uint32_t off = 0, at;
	fg_rec_t r;
	uint64_t total = 0;
	*dropped = 0;
	while ((at = off, fg_rec_next(log, len, &off, &r)) == 1)
		if (is_message(r.type) && r.type != FG_REC_SYSTEM)
			total += r.n;
	if (total <= keep)
		return 0;
	uint64_t before = 0;   /* message bytes before the record at `at` */
	uint32_t best = 0, best_dropped = 0, n = 0, last_turn = 0, last_dropped = 0;
	int found = 0;
	off = 0;
	while ((at = off, fg_rec_next(log, len, &off, &r)) == 1) {
		if (!is_message(r.type) || r.type == FG_REC_SYSTEM)
			continue;
		if (r.type != FG_REC_TOOL) {
			last_turn = at;
			last_dropped = n;
			if (!found && total - before <= keep) {
				best = at;
				best_dropped = n;
				found = 1;
			}
		}
		before += r.n;
		n++;
	}
	*dropped = found ? best_dropped : last_dropped;
	return found ? best : last_turn;
}

/* The client's parameters (a PARAMS record) into the request: its tools
 * after forge's, the rest as they came. */
static void put_params(fg_sb_t *b, const char *tools_json, const fg_rec_t *params, int first_turn)
{
	json_t *p = params ? json_loadb((const char *)params->p, params->n, 0, NULL) : NULL;
	json_t *ct = json_object_get(p, "tools");
	char *cts = NULL;
	if (ct && tools_json) {
		/* forge's tools, less those the client names as its own (the
		 * client's win: a call of that name goes back to the client),
		 * then the client's */
		json_t *all = json_loads(tools_json, 0, NULL), *t, *u;
		size_t i, k;
		for (i = 0; json_is_array(all) && i < json_array_size(all);) {
			const char *fn = json_string_value(json_object_get(
				json_object_get(json_array_get(all, i), "function"), "name"));
			int mine = 0;
			json_array_foreach(ct, k, u) {
				const char *un = json_string_value(json_object_get(
					json_object_get(u, "function"), "name"));
				mine |= fn && un && !strcmp(fn, un);
			}
			if (mine)
				json_array_remove(all, i);
			else
				i++;
		}
		json_array_foreach(ct, k, t)
			json_array_append(all, t);
		cts = json_is_array(all) ? json_dumps(all, JSON_COMPACT) : NULL;
		json_decref(all);
		tools_json = NULL;
	} else if (ct) {
		cts = json_dumps(ct, JSON_COMPACT);
	}
	if (tools_json || cts) {
		SB_LIT(b, ",\"tools\":");
		if (tools_json) {
			fg_sb_put(b, tools_json, strlen(tools_json));
		} else {
			fg_sb_put(b, cts, strlen(cts));
		}
		/* the client's tool_choice for the run's first model turn only
		 * ("required" on every turn would never let the agent answer) */
		if (!json_object_get(p, "tool_choice") || !first_turn)
			SB_LIT(b, ",\"tool_choice\":\"auto\"");
	}
	free(cts);
	const char *key;
	json_t *val;
	json_object_foreach(p, key, val) {
		if (!strcmp(key, "tools") ||
		    (!strcmp(key, "tool_choice") && ((!tools_json && !ct) || !first_turn)))
			continue;
		char *vs = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!vs) {
			b->oom = 1;
			continue;
		}
		SB_LIT(b, ",");
		sb_jstr(b, key, strlen(key));
		SB_LIT(b, ":");
		fg_sb_put(b, vs, strlen(vs));
		free(vs);
	}
	json_decref(p);
}

char *fg_llm_request_log(const char *model, const uint8_t *log, uint32_t len,
			 const char *tools_json, int stream, size_t *n, char *err, size_t errlen)
{
	return fg_llm_request_log_trim(model, log, len, tools_json, stream, 0, n, err, errlen);
}

char *fg_llm_request_log_trim(const char *model, const uint8_t *log, uint32_t len,
			      const char *tools_json, int stream, uint32_t keep, size_t *n,
			      char *err, size_t errlen)
{
	static const char *const roles[] = { "", "system", "user", "assistant" };
	fg_sb_t b = { 0 };
	uint32_t off = 0, at, dropped = 0;
	fg_rec_t r;
	int rc, first = 1, noted = 0;
	uint32_t from = keep ? trim_from(log, len, keep, &dropped) : 0;
	SB_LIT(&b, "{\"model\":");
	sb_jstr(&b, model, strlen(model));
	SB_LIT(&b, ",\"messages\":[");
	fg_rec_t params, note = { 0 };
	int have_params = 0, last_type = 0;
	while ((at = off, rc = fg_rec_next(log, len, &off, &r)) == 1) {
		if (r.type == FG_REC_PARAMS) {
			params = r;
			have_params = 1;
		}
		if (r.type == FG_REC_NOTE && at >= from)
			note = r;   /* (goes with the calls that follow it) */
		if (!is_message(r.type))
			continue;
		last_type = r.type;
		if (r.type != FG_REC_SYSTEM && at < from)
			continue;   /* left out: workflows.context_max_bytes */
		if (!first)
			SB_LIT(&b, ",");
		first = 0;
		if (r.type != FG_REC_SYSTEM && dropped && !noted) {
			char left[200];
			int k = snprintf(left, sizeof(left), "{\"role\":\"system\",\"content\":\"[%u earlier "
					 "messages of this conversation are left out to fit the "
					 "context]\"},", dropped);
			fg_sb_put(&b, left, (size_t)k);
			noted = 1;
		}
		if (r.type <= FG_REC_ASSISTANT) {
			SB_LIT(&b, "{\"role\":\"");
			fg_sb_put(&b, roles[r.type], strlen(roles[r.type]));
			SB_LIT(&b, "\",\"content\":");
			sb_jstr(&b, (const char *)r.p, r.n);
			SB_LIT(&b, "}");
		} else if (r.type == FG_REC_TOOLCALLS) {
			fg_call_t c[FG_MAX_CALLS];
			int k = fg_rec_calls(&r, c, FG_MAX_CALLS);
			if (k < 0)
				goto corrupt;
			SB_LIT(&b, "{\"role\":\"assistant\",\"content\":");
			if (note.p)
				sb_jstr(&b, (const char *)note.p, note.n);
			else
				SB_LIT(&b, "null");
			note.p = NULL;
			SB_LIT(&b, ",\"tool_calls\":[");
			for (int i = 0; i < k; i++) {
				if (i)
					SB_LIT(&b, ",");
				SB_LIT(&b, "{\"id\":");
				sb_jstr(&b, c[i].id.p, c[i].id.n);
				SB_LIT(&b, ",\"type\":\"function\",\"function\":{\"name\":");
				sb_jstr(&b, c[i].name.p, c[i].name.n);
				SB_LIT(&b, ",\"arguments\":");
				sb_jstr(&b, c[i].args.p, c[i].args.n);
				SB_LIT(&b, "}}");
			}
			SB_LIT(&b, "]}");
		} else {   /* FG_REC_TOOL */
			fg_str_t id, text;
			if (fg_rec_tool(&r, &id, &text) < 0)
				goto corrupt;
			SB_LIT(&b, "{\"role\":\"tool\",\"tool_call_id\":");
			sb_jstr(&b, id.p, id.n);
			SB_LIT(&b, ",\"content\":");
			sb_jstr(&b, text.p, text.n);
			SB_LIT(&b, "}");
		}
	}
	if (rc < 0)
		goto corrupt;
	SB_LIT(&b, "]");
	put_params(&b, tools_json, have_params ? &params : NULL, last_type == FG_REC_USER);
	if (stream)
		SB_LIT(&b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
	SB_LIT(&b, "}");
	if (b.oom) {
		free(b.p);
		snprintf(err, errlen, "out of memory building the request");
		errno = ENOMEM;
		return NULL;
	}
	*n = b.n;
	return b.p;
corrupt:
	free(b.p);
	snprintf(err, errlen, "checkpoint log is corrupt at byte %u of %u", off, len);
	errno = EINVAL;
	return NULL;
}

void fg_llm_parse(const char *body, size_t len, fg_llm_reply_t *r)
{
	json_error_t je;
	reply_clear(r);
	r->root = json_loadb(body, len, 0, &je);
	if (!r->root) {
		r->ok = 0;
		r->err = FG_LLM_MALFORMED;
		snprintf(r->error, sizeof(r->error), "reply is not JSON: %s (byte %d of %zu)", je.text,
			 je.position, len);
		return;
	}
	json_t *err = json_object_get(r->root, "error");
	if (err) {
		const char *m = json_string_value(json_object_get(err, "message"));
		fail(r, "provider error: %.200s", m ? m : json_string_value(err));
		return;
	}
	json_t *ch = json_object_get(r->root, "choices");
	json_t *c0 = json_array_get(ch, 0);
	json_t *msg = json_object_get(c0, "message");
	if (!json_is_object(msg)) {
		fail(r, "reply has no choices[0].message%s", NULL);
		r->err = FG_LLM_MALFORMED;
		return;
	}
	const char *fin = json_string_value(json_object_get(c0, "finish_reason"));
	if (fin)
		snprintf(r->finish, sizeof(r->finish), "%s", fin);
	take_usage(r, json_object_get(r->root, "usage"));
	take_message(r, msg);
}

void fg_llm_stream_init(fg_llm_stream_t *s)
{
	memset(s, 0, sizeof(*s));
	s->content = json_array();
}

static int stream_fail(fg_llm_stream_t *s, enum fg_llm_err kind, const char *msg,
		       const char *detail)
{
	s->failed = 1;
	s->err = kind;
	snprintf(s->error, sizeof(s->error), "%s%s", msg, detail ? detail : "");
	return -1;
}

static json_t *append(json_t *old, const char *piece)
{
	if (!old)
		return json_string(piece);
	size_t a = json_string_length(old), b = strlen(piece);
	char *buf = malloc(a + b + 1);
	memcpy(buf, json_string_value(old), a);
	memcpy(buf + a, piece, b + 1);
	json_t *n = json_stringn(buf, a + b);
	free(buf);
	json_decref(old);
	return n;
}

static int stream_line(fg_llm_stream_t *s, const char *line, size_t n)
{
	if (n == 0 || line[0] == ':')
		return 0;                       /* event separator, comment */
	if (n < 5 || strncmp(line, "data:", 5) != 0)
		return 0;                       /* event:, id:, retry: */
	line += 5;
	n -= 5;
	while (n && *line == ' ') {
		line++;
		n--;
	}
	if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
		s->done = 1;
		return 0;
	}
	if (s->done)
		return stream_fail(s, FG_LLM_REFUSED, "data after [DONE]", NULL);
	json_error_t je;
	json_t *j = json_loadb(line, n, 0, &je);
	if (!j)
		return stream_fail(s, FG_LLM_MALFORMED, "malformed stream chunk: ", je.text);
	json_t *err = json_object_get(j, "error");
	if (err) {
		const char *m = json_string_value(json_object_get(err, "message"));
		int rc = stream_fail(s, FG_LLM_REFUSED, "provider error: ", m ? m : "(no message)");
		json_decref(j);
		return rc;
	}
	json_t *usage = json_object_get(j, "usage");
	if (json_is_object(usage)) {
		json_t *p = json_object_get(usage, "prompt_tokens");
		json_t *c = json_object_get(usage, "completion_tokens");
		if (json_is_integer(p))
			s->prompt_tokens = (uint32_t)json_integer_value(p);
		if (json_is_integer(c))
			s->completion_tokens = (uint32_t)json_integer_value(c);
	}
	json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
	json_t *delta = json_object_get(c0, "delta");
	const char *fin = json_string_value(json_object_get(c0, "finish_reason"));
	if (fin)
		snprintf(s->finish, sizeof(s->finish), "%s", fin);
	const char *content = json_string_value(json_object_get(delta, "content"));
	if (content && *content) {
		json_array_append_new(s->content, json_string(content));
		if (s->on_text)
			s->on_text(s->text_arg, content, strlen(content));
	}
	json_t *refusal = json_object_get(delta, "refusal");
	if (json_is_string(refusal)) {
		int rc = stream_fail(s, FG_LLM_REFUSED, "the model refused: ", json_string_value(refusal));
		json_decref(j);
		return rc;
	}
	json_t *tcs = json_object_get(delta, "tool_calls");
	size_t i;
	json_t *tc;
	json_array_foreach(tcs, i, tc) {
		json_t *ix = json_object_get(tc, "index");
		json_int_t k = json_is_integer(ix) ? json_integer_value(ix) : (json_int_t)i;
		if (k < 0 || k >= FG_MAX_CALLS) {
			json_decref(j);
			return stream_fail(s, FG_LLM_REFUSED, "tool call index out of range", NULL);
		}
		if ((uint32_t)k >= s->ncalls)
			s->ncalls = (uint32_t)k + 1;
		json_t *id = json_object_get(tc, "id");
		json_t *fn = json_object_get(tc, "function");
		const char *name = json_string_value(json_object_get(fn, "name"));
		const char *args = json_string_value(json_object_get(fn, "arguments"));
		if (json_is_string(id)) {
			json_decref(s->calls[k].id);
			s->calls[k].id = json_copy(id);
		}
		if (name)
			s->calls[k].name = append(s->calls[k].name, name);
		if (args)
			s->calls[k].args = append(s->calls[k].args, args);
	}
	json_decref(j);
	return 0;
}

int fg_llm_stream_feed(fg_llm_stream_t *s, const char *data, size_t n)
{
	if (s->failed)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = data[i];
		if (c == '\n') {
			size_t l = s->linelen;
			if (l && s->line[l - 1] == '\r')
				l--;
			if (stream_line(s, s->line, l) < 0)
				return -1;
			s->linelen = 0;
			continue;
		}
		if (s->linelen + 1 >= s->linecap) {
			if (s->linecap >= MAX_LINE)
				return stream_fail(s, FG_LLM_REFUSED, "stream line longer than 1 MiB", NULL);
			size_t cap = s->linecap ? s->linecap * 2 : 4096;
			char *nl = realloc(s->line, cap);
			if (!nl)
				return stream_fail(s, FG_LLM_NOMEM, "out of memory reading the stream", NULL);
			s->line = nl;
			s->linecap = cap;
		}
		s->line[s->linelen++] = c;
	}
	return 0;
}

void fg_llm_stream_finish(fg_llm_stream_t *s, fg_llm_reply_t *r)
{
	reply_clear(r);
	if (!s->failed && !s->done)
		stream_fail(s, FG_LLM_MALFORMED, "stream ended before data: [DONE] (truncated)", NULL);
	if (s->failed) {
		r->ok = 0;
		r->err = s->err;
		snprintf(r->error, sizeof(r->error), "%s", s->error);
	} else {
		/* Rebuild a whole message and read it like a non-streamed reply. */
		json_t *msg = json_object();
		if (s->ncalls) {
			json_t *tc = json_array();
			for (uint32_t k = 0; k < s->ncalls; k++)
				json_array_append_new(tc, json_pack("{s:O*,s:s,s:{s:O*,s:O*}}",
					"id", s->calls[k].id, "type", "function", "function",
					"name", s->calls[k].name, "arguments", s->calls[k].args));
			json_object_set_new(msg, "tool_calls", tc);
		}
		{   /* the text: the answer, or what was said beside the calls */
			size_t i, total = 0;
			json_t *p;
			json_array_foreach(s->content, i, p)
				total += json_string_length(p);
			char *buf = malloc(total + 1), *o = buf;
			if (!buf) {
				json_decref(msg);
				r->ok = 0;
				r->err = FG_LLM_NOMEM;
				snprintf(r->error, sizeof(r->error), "out of memory reading the stream");
				goto out;
			}
			json_array_foreach(s->content, i, p) {
				memcpy(o, json_string_value(p), json_string_length(p));
				o += json_string_length(p);
			}
			if (total || !s->ncalls)
				json_object_set_new(msg, "content", json_stringn(buf, total));
			free(buf);
		}
		r->root = json_pack("{s:o}", "message", msg);
		if (!r->root) {
			r->ok = 0;
			r->err = FG_LLM_NOMEM;
			snprintf(r->error, sizeof(r->error), "out of memory reading the stream");
			goto out;
		}
		snprintf(r->finish, sizeof(r->finish), "%s", s->finish);
		r->prompt_tokens = s->prompt_tokens;
		r->completion_tokens = s->completion_tokens;
		take_message(r, msg);
	}
out:
	free(s->line);
	json_decref(s->content);
	for (uint32_t k = 0; k < FG_MAX_CALLS; k++) {
		json_decref(s->calls[k].id);
		json_decref(s->calls[k].name);
		json_decref(s->calls[k].args);
	}
	memset(s, 0, sizeof(*s));
}

void fg_llm_scripted(const fg_script_step_t *steps, uint32_t nsteps, uint32_t turn,
		     fg_llm_reply_t *r, char ids[FG_MAX_CALLS][32])
{
	reply_clear(r);
	const fg_script_step_t *st = &steps[turn < nsteps ? turn : nsteps - 1];
	r->ok = 1;
	r->prompt_tokens = 16 + 8 * turn;
	r->completion_tokens = 8;
	if (st->tool[0]) {
		uint32_t k = st->calls ? st->calls : 1;
		if (k > FG_MAX_CALLS)
			k = FG_MAX_CALLS;
		r->ncalls = k;
		for (uint32_t i = 0; i < k; i++) {
			int n = k == 1 ? snprintf(ids[i], 32, "call_%u", turn + 1)
				       : snprintf(ids[i], 32, "call_%u_%u", turn + 1, i + 1);
			r->calls[i].id = (fg_str_t){ ids[i], (uint32_t)n };
			r->calls[i].name = (fg_str_t){ st->tool, (uint32_t)strlen(st->tool) };
			r->calls[i].args = (fg_str_t){ st->arguments, (uint32_t)strlen(st->arguments) };
		}
		snprintf(r->finish, sizeof(r->finish), "tool_calls");
	} else {
		r->content = st->content;
		r->content_n = strlen(st->content);
		snprintf(r->finish, sizeof(r->finish), "stop");
	}
}
