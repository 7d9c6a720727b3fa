/*
 * mcp.c — see include/forge/mcp.h.  What a server sends is never trusted:
 * every field is checked for its type, and anything that is not JSON-RPC
 * 2.0 is FG_MCP_GARBAGE, which the caller counts and treats as a protocol
 * error of that server.
 */
#include "forge/mcp.h"
#include "forge/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *line_of(json_t *j, size_t *n)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return NULL;
	size_t l = strlen(s);
	char *r = realloc(s, l + 2);
	if (!r) {
		free(s);
		return NULL;
	}
	r[l] = '\n';
	r[l + 1] = '\0';
	*n = l + 1;
	return r;
}

char *fg_mcp_request(int64_t id, const char *method, const json_t *params, size_t *n)
{
	json_t *j = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", method);
	if (j && id >= 0)
		json_object_set_new(j, "id", json_integer(id));
	if (j && params)
		json_object_set_new(j, "params", json_deep_copy(params));
	return line_of(j, n);
}

char *fg_mcp_answer(const json_t *id, const json_t *result, int code, const char *msg,
		    size_t *n)
{
	json_t *j = json_pack("{s:s,s:O}", "jsonrpc", "2.0", "id", id);
	if (j && result)
		json_object_set_new(j, "result", json_deep_copy(result));
	else if (j)
		json_object_set_new(j, "error", json_pack("{s:i,s:s}", "code", code, "message", msg));
	return line_of(j, n);
}

int fg_mcp_classify(const json_t *j, int64_t *id)
{
	*id = -1;
	if (!json_is_object(j))
		return FG_MCP_GARBAGE;
	const char *v = json_string_value(json_object_get(j, "jsonrpc"));
	if (!v || strcmp(v, "2.0"))
		return FG_MCP_GARBAGE;
	json_t *jid = json_object_get(j, "id");
	json_t *m = json_object_get(j, "method");
	if (m) {
		if (!json_is_string(m))
			return FG_MCP_GARBAGE;
		return jid && !json_is_null(jid) ? FG_MCP_REQUEST : FG_MCP_NOTIFICATION;
	}
	json_t *res = json_object_get(j, "result"), *err = json_object_get(j, "error");
	if (!jid || (!res == !err) || (err && !json_is_object(err)))
		return FG_MCP_GARBAGE;
	if (json_is_integer(jid) && json_integer_value(jid) >= 0)
		*id = (int64_t)json_integer_value(jid);
	return FG_MCP_RESPONSE;
}

void fg_mcp_error_text(const json_t *err, char *out, size_t outlen)
{
	const char *msg = json_string_value(json_object_get(err, "message"));
	json_t *code = json_object_get(err, "code");
	snprintf(out, outlen, "%lld: %.400s", json_is_integer(code) ?
		 (long long)json_integer_value(code) : 0ll, msg ? msg : "(no message)");
}

int fg_mcp_name_ok(const char *s, size_t n)
{
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A growing string (NULL p after a failed allocation). */

/* Bytes that base64 text of length n decodes to. */
static size_t b64_bytes(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
	return n / 4 * 3 - (n % 4 == 0 ? pad : 0);
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

char *fg_mcp_result_text(const json_t *result, size_t max_output)
{
	fg_sb_t b = { 0 };
	if (json_is_true(json_object_get(result, "isError")))
		fg_sb_put(&b, "error: ", 7);
	json_t *content = json_object_get(result, "content"), *it;
	size_t i, items = 0;
	json_array_foreach(content, i, it) {
		const char *type = str_or(it, "type", "?");
		if (items++)
			fg_sb_put(&b, "\n", 1);
		if (!strcmp(type, "text")) {
			const char *t = str_or(it, "text", "");
			fg_sb_put(&b, t, strlen(t));
		} else if (!strcmp(type, "image") || !strcmp(type, "audio")) {
			fg_sb_fmt(&b, "[%s: %.100s, %zu bytes]", type, str_or(it, "mimeType", "?"),
			       b64_bytes(json_string_value(json_object_get(it, "data"))));
		} else if (!strcmp(type, "resource")) {
			json_t *r = json_object_get(it, "resource");
			const char *t = json_string_value(json_object_get(r, "text"));
			if (t)
				fg_sb_put(&b, t, strlen(t));
			else
				fg_sb_fmt(&b, "[resource: %.300s, %.100s, %zu bytes]", str_or(r, "uri", "?"),
				       str_or(r, "mimeType", "?"),
				       b64_bytes(json_string_value(json_object_get(r, "blob"))));
		} else if (!strcmp(type, "resource_link")) {
			fg_sb_fmt(&b, "[resource link: %.300s]", str_or(it, "uri", "?"));
		} else {
			fg_sb_fmt(&b, "[%.40s content]", type);
		}
	}
	json_t *sc = json_object_get(result, "structuredContent");
	if (!items && sc) {
		char *s = json_dumps(sc, JSON_COMPACT);
		if (s)
			fg_sb_put(&b, s, strlen(s));
		else
			b.oom = 1;
		free(s);
	}
	if (!b.p && !b.oom)
		fg_sb_put(&b, "", 0);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (b.n > max_output) {
		size_t cut = max_output;
		while (cut > 0 && ((unsigned char)b.p[cut] & 0xc0) == 0x80)
			cut--;   /* (not inside a UTF-8 sequence) */
		size_t total = b.n;
		b.n = cut;
		fg_sb_fmt(&b, "\n[truncated: %zu of %zu bytes shown]", cut, total);
		if (b.oom) {
			free(b.p);
			return NULL;
		}
	}
	return b.p;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		char ch = p[k];
		unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') :
			     ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) :
			     ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 16u;
		if (d > 15)
			return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

json_t *fg_mcp_parse(const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, NULL);
	if (j || n < 6 || !memmem(p, n, "\\u", 2))
		return j;
	char *c = malloc(n);
	if (!c)
		return NULL;
	memcpy(c, p, n);
	int fixed = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (c[i] != '\\')
			continue;
		if (c[i + 1] != 'u' || i + 6 > n) {
			i++;   /* another escape (\\ included): its character skipped */
			continue;
		}
		unsigned v, w;
		if (!hex4(c + i + 2, &v)) {
			i++;
			continue;
		}
		if (v >= 0xd800 && v <= 0xdbff && i + 12 <= n && c[i + 6] == '\\' &&
		    c[i + 7] == 'u' && hex4(c + i + 8, &w) && w >= 0xdc00 && w <= 0xdfff) {
			i += 11;   /* a whole pair */
			continue;
		}
		if (v >= 0xd800 && v <= 0xdfff) {
			memcpy(c + i + 2, "fffd", 4);   /* a lone half */
			fixed = 1;
		}
		i += 5;
	}
	if (fixed)
		j = json_loadb(c, n, JSON_ALLOW_NUL, NULL);
	free(c);
	return j;
}

/* An event's data, if it is the JSON-RPC answer to id (else NULL). */
static json_t *answer_to(const fg_sb_t *data, int64_t id)
{
	json_t *j = fg_mcp_parse(data->p, data->n);
	int64_t got;
	if (fg_mcp_classify(j, &got) == FG_MCP_RESPONSE && got == id)
		return j;
	json_decref(j);
	return NULL;
}

json_t *fg_mcp_sse_find(const char *body, size_t n, int64_t id)
{
	fg_sb_t data = { 0 };
	const char *p = body, *end = body + n;
	json_t *found = NULL;
	while (p <= end && !found) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t l = (size_t)(le - p);
		if (l && p[l - 1] == '\r')
			l--;
		if (l == 0) {   /* an event ends: its data is one message */
			if (data.n)
				found = answer_to(&data, id);
			data.n = 0;
		} else if (l >= 5 && !memcmp(p, "data:", 5)) {
			const char *v = p + 5;
			size_t vl = l - 5;
			if (vl && *v == ' ')
				v++, vl--;
			if (data.n)
				fg_sb_put(&data, "\n", 1);
			fg_sb_put(&data, v, vl);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	if (!found && data.n)   /* a last event without its blank line */
		found = answer_to(&data, id);
	free(data.p);
	return found;
}
