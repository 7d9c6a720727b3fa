/*
 * test_mcp.c — MCP's messages (src/agent/mcp.c): what a server sends is
 * classified, a tools/call result becomes the model's text (text joined,
 * other items summarised, isError, the cut at max_output), and a JSON-RPC
 * answer is found in an event stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/mcp.h"

#include <stdlib.h>
#include <string.h>

static int kind_of(const char *s, int64_t *id)
{
	json_t *j = json_loads(s, 0, NULL);
	int k = fg_mcp_classify(j, id);
	json_decref(j);
	return k;
}

static void test_classify(void **state)
{
	(void)state;
	int64_t id;
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", &id), FG_MCP_RESPONSE);
	assert_int_equal(id, 7);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":1}}", &id),
			 FG_MCP_RESPONSE);
	assert_int_equal(id, -1);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}", &id),
			 FG_MCP_NOTIFICATION);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &id),
			 FG_MCP_REQUEST);
	assert_int_equal(kind_of("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", &id), FG_MCP_GARBAGE);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1}", &id), FG_MCP_GARBAGE);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", &id),
			 FG_MCP_GARBAGE);
	assert_int_equal(kind_of("[1,2]", &id), FG_MCP_GARBAGE);
	assert_int_equal(fg_mcp_classify(NULL, &id), FG_MCP_GARBAGE);
}

static char *text_of(const char *result, size_t max)
{
	json_t *j = json_loads(result, 0, NULL);
	char *t = fg_mcp_result_text(j, max);
	json_decref(j);
	return t;
}

static void test_result_text(void **state)
{
	(void)state;
	char *t = text_of("{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image\","
			  "\"data\":\"AAECAw==\",\"mimeType\":\"image/png\"},{\"type\":\"text\","
			  "\"text\":\"b\"},{\"type\":\"resource_link\",\"uri\":\"file:///x\"},"
			  "{\"type\":\"resource\",\"resource\":{\"uri\":\"u\",\"text\":\"inline\"}}]}",
			  1000);
	assert_string_equal(t, "a\n[image: image/png, 4 bytes]\nb\n[resource link: file:///x]\ninline");
	free(t);
	t = text_of("{\"content\":[{\"type\":\"text\",\"text\":\"boom\"}],\"isError\":true}", 1000);
	assert_string_equal(t, "error: boom");
	free(t);
	t = text_of("{\"content\":[],\"structuredContent\":{\"n\":1}}", 1000);
	assert_string_equal(t, "{\"n\":1}");
	free(t);
	t = text_of("{}", 1000);
	assert_string_equal(t, "");
	free(t);
	/* cut at max_output, never inside a UTF-8 sequence */
	t = text_of("{\"content\":[{\"type\":\"text\",\"text\":\"abc\\u00e9def\"}]}", 4);
	assert_string_equal(t, "abc\n[truncated: 3 of 8 bytes shown]");
	free(t);
}

static void test_sse(void **state)
{
	(void)state;
	const char *b = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n"
			"id: 2\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"id\":3,\"result\":{\"ok\":true}}\n\n";
	json_t *j = fg_mcp_sse_find(b, strlen(b), 3);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(json_object_get(j, "result"), "ok")));
	json_decref(j);
	assert_null(fg_mcp_sse_find(b, strlen(b), 4));
	const char *tail = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";   /* no blank line */
	j = fg_mcp_sse_find(tail, strlen(tail), 1);
	assert_non_null(j);
	json_decref(j);
}

static void test_names_and_lines(void **state)
{
	(void)state;
	assert_true(fg_mcp_name_ok("fs__read_file", 13));
	assert_false(fg_mcp_name_ok("fs__bad.name", 12));
	assert_false(fg_mcp_name_ok("", 0));
	char n65[66];
	memset(n65, 'a', 65);
	assert_false(fg_mcp_name_ok(n65, 65));
	size_t n;
	json_t *p = json_pack("{s:s}", "name", "echo");
	char *l = fg_mcp_request(4, "tools/call", p, &n);
	assert_string_equal(l, "{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"id\":4,"
			       "\"params\":{\"name\":\"echo\"}}\n");
	assert_int_equal(n, strlen(l));
	free(l);
	json_decref(p);
	json_t *id = json_string("s1");
	l = fg_mcp_answer(id, NULL, -32601, "no", &n);
	assert_string_equal(l, "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"error\":{\"code\":-32601,"
			       "\"message\":\"no\"}}\n");
	free(l);
	json_decref(id);
}

/* what JSON.stringify writes for a string cut inside a surrogate pair */
static void test_lone_surrogates(void **state)
{
	(void)state;
	const char *lone = "{\"t\":\"ab\\ud83d\",\"u\":\"\\ude00x\"}";
	assert_null(json_loads(lone, 0, NULL));   /* (jansson alone refuses it) */
	json_t *j = fg_mcp_parse(lone, strlen(lone));
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "t")), "ab\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(j, "u")), "\xef\xbf\xbdx");
	json_decref(j);
	/* a whole pair is kept; an escaped backslash before "ud800" is text */
	const char *ok = "{\"t\":\"\\ud83d\\ude00 \\\\ud800 \\ud800\"}";
	j = fg_mcp_parse(ok, strlen(ok));
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "t")),
			    "\xf0\x9f\x98\x80 \\ud800 \xef\xbf\xbd");
	json_decref(j);
	/* not JSON at all: still refused */
	assert_null(fg_mcp_parse("{\"t\":\"\\ud800", 11));
	assert_null(fg_mcp_parse("this is not json", 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_result_text),
		cmocka_unit_test(test_sse),
		cmocka_unit_test(test_names_and_lines),
		cmocka_unit_test(test_lone_surrogates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
