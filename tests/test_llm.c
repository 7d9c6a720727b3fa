/*
 * test_llm.c — the wire format (recorded OpenAI-format replies, whole and
 * streamed with tool-call deltas, split at every byte), the conversation
 * records, and the calculator tool.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/conv.h"
#include "forge/llm.h"
#include "forge/tool.h"
#include "forge/views.h"
#include "forge/rate.h"

#include <stdlib.h>
#include <string.h>

static const char *TOOLCALL =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
	"\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":"
	"\"calculator\",\"arguments\":\"{\\\"expression\\\":\\\"2+2\\\"}\"}},{\"id\":\"call_b\","
	"\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":"
	"\"{\\\"expression\\\":\\\"3*3\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
	"\"usage\":{\"prompt_tokens\":82,\"completion_tokens\":17,\"total_tokens\":99}}";

static void test_parse_tool_calls(void **state)
{
	(void)state;
	fg_llm_reply_t r;
	fg_llm_parse(TOOLCALL, strlen(TOOLCALL), &r);
	assert_true(r.ok);
	assert_int_equal(r.ncalls, 2);
	assert_memory_equal(r.calls[1].id.p, "call_b", 6);
	assert_memory_equal(r.calls[0].name.p, "calculator", 10);
	assert_int_equal(r.calls[0].args.n, strlen("{\"expression\":\"2+2\"}"));
	assert_string_equal(r.finish, "tool_calls");
	assert_int_equal(r.prompt_tokens, 82);
	assert_int_equal(r.completion_tokens, 17);
	fg_llm_reply_free(&r);
}

static void test_parse_final_and_errors(void **state)
{
	(void)state;
	static const struct { const char *body; const char *err; } cases[] = {
		{ "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"The answer is 4.\"},"
		  "\"finish_reason\":\"stop\"}]}", NULL },
		{ "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}",
		  "provider error: Rate limit reached" },
		{ "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
		  "\"refusal\":\"I can't help with that.\"}}]}",
		  "the model refused: I can't help with that." },
		{ "{\"id\": \"chatcmpl-bad\", \"choices\": [", "reply is not JSON: " },
		{ "{\"choices\":[]}", "reply has no choices[0].message" },
		{ "{\"choices\":[{\"message\":{\"role\":\"assistant\"}}]}",
		  "reply has neither content nor tool_calls" },
		{ "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"x\",\"function\":{}}]}}]}",
		  "tool call x has no function name" },
		{ "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}}]}",
		  "tool call without an id" },
		{ "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"d\",\"function\":{\"name\":\"f\"}},"
		  "{\"id\":\"d\",\"function\":{\"name\":\"g\"}}]}}]}",
		  "two tool calls have the id d" },
		{ "[1,2]", "reply has no choices[0].message" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fg_llm_reply_t r;
		fg_llm_parse(cases[i].body, strlen(cases[i].body), &r);
		if (!cases[i].err) {
			assert_true(r.ok);
			assert_int_equal(r.ncalls, 0);
			assert_memory_equal(r.content, "The answer is 4.", r.content_n);
		} else if (r.ok || strncmp(r.error, cases[i].err, strlen(cases[i].err)) != 0) {
			fail_msg("case %zu: ok=%d error \"%s\", want \"%s\"", i, r.ok, r.error, cases[i].err);
		}
		fg_llm_reply_free(&r);
	}
}

/* Recorded stream: role chunk, tool call header, arguments in pieces, usage. */
static const char *STREAM =
	"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}\n\n"
	": keep-alive\n\n"
	"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_z\",\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
	"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"expr\"}}]},\"finish_reason\":null}]}\r\n\r\n"
	"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ession\\\":\\\"2+2\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
	"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
	"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n"
	"data: [DONE]\n\n";

static void test_stream_every_split(void **state)
{
	(void)state;
	size_t n = strlen(STREAM);
	for (size_t cut = 0; cut <= n; cut += 7) {
		fg_llm_stream_t s;
		fg_llm_reply_t r;
		fg_llm_stream_init(&s);
		assert_int_equal(fg_llm_stream_feed(&s, STREAM, cut), 0);
		assert_int_equal(fg_llm_stream_feed(&s, STREAM + cut, n - cut), 0);
		fg_llm_stream_finish(&s, &r);
		assert_true(r.ok);
		assert_int_equal(r.ncalls, 1);
		assert_memory_equal(r.calls[0].id.p, "call_z", 6);
		assert_int_equal(r.calls[0].args.n, 20);
		assert_memory_equal(r.calls[0].args.p, "{\"expression\":\"2+2\"}", 20);
		assert_string_equal(r.finish, "tool_calls");
		assert_int_equal(r.prompt_tokens, 9);
		assert_int_equal(r.completion_tokens, 5);
		fg_llm_reply_free(&r);
	}
}

static void test_stream_content_and_faults(void **state)
{
	(void)state;
	const char *ok = "data: {\"choices\":[{\"delta\":{\"content\":\"The answer \"}}]}\n\n"
			 "data: {\"choices\":[{\"delta\":{\"content\":\"is 4.\"},\"finish_reason\":\"stop\"}]}\n\n"
			 "data: [DONE]\n\n";
	fg_llm_stream_t s;
	fg_llm_reply_t r;
	fg_llm_stream_init(&s);
	fg_llm_stream_feed(&s, ok, strlen(ok));
	fg_llm_stream_finish(&s, &r);
	assert_true(r.ok);
	assert_int_equal(r.content_n, 16);
	assert_memory_equal(r.content, "The answer is 4.", 16);
	fg_llm_reply_free(&r);

	static const struct { const char *body; const char *err; } bad[] = {
		{ "data: {\"choices\":[{\"delta\":{\"content\":\"The\"}}]}\n\n",
		  "stream ended before data: [DONE] (truncated)" },
		{ "data: {\"choices\":[{\"delta\":\n\n", "malformed stream chunk: " },
		{ "data: {\"error\":{\"message\":\"overloaded\"}}\n\n", "provider error: overloaded" },
		{ "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":999}]}}]}\n\n",
		  "tool call index out of range" },
		{ "data: [DONE]\n\ndata: {}\n\n", "data after [DONE]" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fg_llm_stream_init(&s);
		fg_llm_stream_feed(&s, bad[i].body, strlen(bad[i].body));
		fg_llm_stream_finish(&s, &r);
		if (r.ok || strncmp(r.error, bad[i].err, strlen(bad[i].err)) != 0)
			fail_msg("case %zu: ok=%d \"%s\", want \"%s\"", i, r.ok, r.error, bad[i].err);
		fg_llm_reply_free(&r);
	}
}

static void test_request_body(void **state)
{
	(void)state;
	json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
	json_t *tools = fg_tools_json();
	size_t n;
	char *body = fg_llm_request("gpt-4o", msgs, tools, NULL, 1, &n);
	json_t *j = json_loads(body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o");
	assert_true(json_is_true(json_object_get(j, "stream")));
	assert_string_equal(json_string_value(json_object_get(j, "tool_choice")), "auto");
	json_t *f = json_object_get(json_array_get(json_object_get(j, "tools"), 0), "function");
	assert_string_equal(json_string_value(json_object_get(f, "name")), "calculator");
	assert_true(json_is_object(json_object_get(f, "parameters")));
	free(body);
	json_decref(j);
	json_decref(msgs);
	json_decref(tools);
}

static void test_conv_roundtrip(void **state)
{
	(void)state;
	uint8_t mem[512];
	fg_buf_t b = { mem, 0, sizeof(mem), 0 };
	fg_buf_rec(&b, FG_REC_USER, "what is 2+2?", 12);
	fg_call_t c = { { "call_1", 6 }, { "calculator", 10 }, { "{\"expression\":\"2+2\"}", 20 } };
	fg_buf_toolcalls(&b, &c, 1);
	uint8_t usage[8] = { 10, 0, 0, 0, 5, 0, 0, 0 };
	fg_buf_rec(&b, FG_REC_USAGE, usage, 8);
	fg_buf_tool(&b, c.id, "4", 1);
	fg_buf_rec(&b, FG_REC_ASSISTANT, "The answer is 4.", 16);
	assert_false(b.overflow);
	char err[128];
	json_t *m = fg_conv_messages(mem, b.n, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(json_array_size(m), 4);
	char *s = json_dumps(m, JSON_COMPACT);
	assert_string_equal(s,
		"[{\"role\":\"user\",\"content\":\"what is 2+2?\"},{\"role\":\"assistant\",\"content\":null,"
		"\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
		"\"calculator\",\"arguments\":\"{\\\"expression\\\":\\\"2+2\\\"}\"}}]},{\"role\":\"tool\","
		"\"tool_call_id\":\"call_1\",\"content\":\"4\"},{\"role\":\"assistant\",\"content\":"
		"\"The answer is 4.\"}]");
	free(s);
	json_decref(m);
	uint32_t pt, ct;
	json_decref(fg_conv_json(mem, b.n, &pt, &ct));
	assert_int_equal(pt, 10);
	assert_int_equal(ct, 5);
	/* a truncated or corrupt log is refused with its position */
	assert_null(fg_conv_messages(mem, b.n - 1, err, sizeof(err)));
	assert_non_null(strstr(err, "checkpoint log is corrupt at byte"));
	/* overflow is reported, not written past the buffer */
	fg_buf_t small = { mem, 0, 8, 0 };
	fg_buf_rec(&small, FG_REC_USER, "what is 2+2?", 12);
	assert_true(small.overflow);
}

static void test_request_from_log(void **state)
{
	(void)state;
	uint8_t mem[512];
	fg_buf_t b = { mem, 0, sizeof(mem), 0 };
	const char *odd = "tab\t \"quote\" back\\ nl\n \x01 caf\xc3\xa9 bad\xff end";
	fg_buf_rec(&b, FG_REC_SYSTEM, "be brief", 8);
	fg_buf_rec(&b, FG_REC_USER, odd, strlen(odd));
	fg_call_t c = { { "call_1", 6 }, { "calculator", 10 }, { "{\"expression\":\"2+2\"}", 20 } };
	uint8_t usage[8] = { 0 };
	fg_buf_rec(&b, FG_REC_USAGE, usage, 8);
	fg_buf_toolcalls(&b, &c, 1);
	fg_buf_tool(&b, c.id, "4", 1);
	char err[128];
	json_t *tools = fg_tools_json();
	char *ts = json_dumps(tools, JSON_COMPACT);
	for (int stream = 0; stream < 2; stream++) {
		size_t n1, n2;
		char *direct = fg_llm_request_log("m", mem, b.n, ts, stream, &n1, err, sizeof(err));
		json_t *msgs = fg_conv_messages(mem, b.n, err, sizeof(err));
		char *tree = fg_llm_request("m", msgs, tools, NULL, stream, &n2);
		json_t *a = json_loadb(direct, n1, 0, NULL), *t = json_loadb(tree, n2, 0, NULL);
		assert_non_null(a);
		if (!json_equal(a, t))
			fail_msg("direct:\n%s\ntree:\n%s", direct, tree);
		json_decref(a);
		json_decref(t);
		json_decref(msgs);
		free(direct);
		free(tree);
	}
	size_t n;
	assert_null(fg_llm_request_log("m", mem, b.n - 1, ts, 0, &n, err, sizeof(err)));
	free(ts);
	json_decref(tools);
}

/* An Idempotency-Key record leads the log: views and requests skip it. */
/* Text that is not all whole UTF-8 becomes a JSON string with U+FFFD for
 * each bad byte; an encoded surrogate or an overlong form is bad too (the
 * replacement once gave "" for them: jansson refused the mended text). */
static void test_json_text(void **state)
{
	(void)state;
	static const struct { const char *in; size_t n; const char *want; } cases[] = {
		{ "caf\xc3\xa9", 5, "caf\xc3\xa9" },
		{ "ab\xc3", 3, "ab\xef\xbf\xbd" },                          /* cut inside é */
		{ "a\xed\xa0\x80" "b", 5, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b" },
		{ "\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },     /* overlong '/' */
		{ "\xf4\x90\x80\x80", 4,
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },                  /* past U+10FFFF */
		{ "\xf0\x9f\x99\x82!", 5, "\xf0\x9f\x99\x82!" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *s = fg_json_text(cases[i].in, cases[i].n);
		assert_non_null(s);
		assert_string_equal(json_string_value(s), cases[i].want);
		json_decref(s);
	}
}

static void test_key_record(void **state)
{
	(void)state;
	uint8_t mem[512];
	fg_buf_t b = { mem, 0, sizeof(mem), 0 };
	fg_buf_rec(&b, FG_REC_KEY, "order-17", 8);
	fg_buf_rec(&b, FG_REC_USER, "hi", 2);
	fg_buf_rec(&b, FG_REC_ASSISTANT, "hello", 5);
	assert_false(b.overflow);
	fg_react_view_t v;
	char err[200];
	assert_int_equal(fg_react_view(mem, b.n, &v, err, sizeof(err)), 0);
	assert_true(v.final);
	assert_int_equal(v.turns, 1);
	size_t n;
	char *body = fg_llm_request_log("m", mem, b.n, NULL, 0, &n, err, sizeof(err));
	assert_non_null(body);
	assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
			    "{\"role\":\"assistant\",\"content\":\"hello\"}]}");
	free(body);
	fg_mr_view_t mv;
	b.n = 0;
	fg_buf_rec(&b, FG_REC_KEY, "k", 1);
	fg_buf_rec(&b, FG_REC_USER, "split this", 10);
	assert_int_equal(fg_mr_view(mem, b.n, &mv, err, sizeof(err)), 0);
}

/* workflows.context_max_bytes: the oldest turns are left out, whole (a tool
 * result never without its call), the system prompt and the last turn
 * always stay, and a system message says how many went; COMMIT records
 * (durability) are skipped. */
static void test_context_trim(void **state)
{
	(void)state;
	uint8_t mem[2048];
	fg_buf_t b = { mem, 0, sizeof(mem), 0 };
	fg_buf_rec(&b, FG_REC_SYSTEM, "sys", 3);
	fg_buf_rec(&b, FG_REC_USER, "u1u1u1u1u1", 10);
	fg_call_t c = { { "c1", 2 }, { "calculator", 10 }, { "{}", 2 } };
	fg_buf_toolcalls(&b, &c, 1);
	fg_buf_tool(&b, c.id, "0123456789012345678901234567890123456789", 40);
	uint8_t commit[FG_COMMIT_BYTES] = { FG_REC_COMMIT, 0, FG_COMMIT_PAYLOAD };
	fg_buf_rec(&b, FG_REC_COMMIT, commit + FG_REC_HDR, FG_COMMIT_PAYLOAD);
	fg_buf_rec(&b, FG_REC_ASSISTANT, "a1", 2);
	fg_buf_rec(&b, FG_REC_USER, "u2", 2);
	assert_false(b.overflow);
	char err[200];
	size_t n;
	/* everything fits: nothing left out */
	char *body = fg_llm_request_log_trim("m", mem, b.n, NULL, 0, 1000, &n, err, sizeof(err));
	assert_non_null(body);
	assert_null(strstr(body, "left out"));
	assert_non_null(strstr(body, "u1u1"));
	free(body);
	/* 10 bytes: "a1" + "u2" fit, the tool result alone would be cut from
	 * its call: the user turn and the call and result go, whole */
	body = fg_llm_request_log_trim("m", mem, b.n, NULL, 0, 10, &n, err, sizeof(err));
	assert_non_null(body);
	assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},"
			    "{\"role\":\"system\",\"content\":\"[3 earlier messages of this conversation "
			    "are left out to fit the context]\"},{\"role\":\"assistant\",\"content\":\"a1\"},"
			    "{\"role\":\"user\",\"content\":\"u2\"}]}");
	free(body);
	/* 1 byte: not even the last turn fits; it is sent all the same */
	body = fg_llm_request_log_trim("m", mem, b.n, NULL, 0, 1, &n, err, sizeof(err));
	assert_non_null(body);
	assert_non_null(strstr(body, "[4 earlier messages"));
	assert_null(strstr(body, "\"a1\""));
	assert_non_null(strstr(body, "\"u2\""));
	free(body);
}

/* The text a model sends beside its tool calls is kept (a NOTE record) and
 * sent back as that message's content. */
static void test_note_beside_calls(void **state)
{
	(void)state;
	const char *reply = "{\"choices\":[{\"message\":{\"role\":\"assistant\","
		"\"content\":\"Let me compute.\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
		"\"function\":{\"name\":\"calculator\",\"arguments\":\"{}\"}}]},"
		"\"finish_reason\":\"tool_calls\"}]}";
	fg_llm_reply_t r;
	fg_llm_parse(reply, strlen(reply), &r);
	assert_true(r.ok);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.content_n, 15);
	assert_memory_equal(r.content, "Let me compute.", 15);
	uint8_t mem[1024];
	fg_buf_t b = { mem, 0, sizeof(mem), 0 };
	fg_buf_rec(&b, FG_REC_USER, "2+2?", 4);
	fg_buf_rec(&b, FG_REC_NOTE, r.content, r.content_n);
	fg_buf_toolcalls(&b, r.calls, r.ncalls);
	fg_buf_tool(&b, r.calls[0].id, "4", 1);
	assert_false(b.overflow);
	fg_llm_reply_free(&r);   /* (the records hold copies) */
	char err[200];
	size_t n;
	char *body = fg_llm_request_log("m", mem, b.n, NULL, 0, &n, err, sizeof(err));
	assert_non_null(body);
	assert_string_equal(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},"
		"{\"role\":\"assistant\",\"content\":\"Let me compute.\",\"tool_calls\":[{\"id\":\"c1\","
		"\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":\"{}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"4\"}]}");
	free(body);
	json_t *msgs = fg_conv_messages(mem, b.n, err, sizeof(err));
	assert_non_null(msgs);
	assert_int_equal(json_array_size(msgs), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
			    "Let me compute.");
	json_decref(msgs);
	fg_react_view_t v;
	assert_int_equal(fg_react_view(mem, b.n, &v, err, sizeof(err)), 0);
	assert_int_equal(v.turns, 1);
	assert_int_equal(v.pending, 0);
}

static void test_calculator(void **state)
{
	(void)state;
	/* the text the model sees: %.15g's, integers printed by hand */
	static const struct { const char *args, *out; } txt[] = {
		{ "{\"expression\":\"2+2\"}", "4" }, { "{\"expression\":\"-7*3\"}", "-21" },
		{ "{\"expression\":\"0.1+0.2\"}", "0.3" }, { "{\"expression\":\"-0\"}", "-0" },
		{ "{\"expression\":\"999999999999999\"}", "999999999999999" },
		{ "{\"expression\":\"1000000000000000\"}", "1e+15" },
		{ "{\"expression\":\"12345678901234567\"}", "1.23456789012346e+16" },
		{ "{\"expression\":\"0.5*4\"}", "2" }, { "{\"expression\":\"1/3\"}", "0.333333333333333" },
	};
	const fg_tool_t *calc = fg_tool_find("calculator", 10);
	assert_non_null(calc);
	for (size_t i = 0; i < sizeof(txt) / sizeof(txt[0]); i++) {
		char out[128];
		assert_int_equal(calc->run(calc, txt[i].args, strlen(txt[i].args), out, sizeof(out)), 0);
		if (strcmp(out, txt[i].out) != 0)
			fail_msg("%s: got %s, want %s", txt[i].args, out, txt[i].out);
	}
	static const struct { const char *e; double v; } ok[] = {
		{ "2+2", 4 }, { "2+3*4", 14 }, { "(2+3)*4", 20 }, { "2^3^2", 512 }, { "-2^2", -4 },
		{ "10 % 4", 2 }, { "1.5e2 / 3", 50 }, { "--3", 3 }, { "((((1))))", 1 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		double v;
		char err[128];
		if (fg_calc(ok[i].e, strlen(ok[i].e), &v, err, sizeof(err)) < 0 || v != ok[i].v)
			fail_msg("%s: got %g (%s), want %g", ok[i].e, v, err, ok[i].v);
	}
	static const struct { const char *e; const char *err; } bad[] = {
		{ "1/0", "division by zero" }, { "2+", "expression ends with an operator" },
		{ "(1", "unbalanced '('" }, { "1)", "unbalanced ')' at offset 1" },
		{ "", "empty expression" }, { "2 x 3", "unexpected 'x' at offset 2" },
		{ "9^999", "result is not a finite number" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v;
		char err[128] = "";
		if (fg_calc(bad[i].e, strlen(bad[i].e), &v, err, sizeof(err)) == 0 ||
		    strcmp(err, bad[i].err) != 0)
			fail_msg("%s: \"%s\", want \"%s\"", bad[i].e, err, bad[i].err);
	}
	/* 100,000 nested parentheses: an error, not a crash */
	size_t n = 200001;
	char *deep = malloc(n + 1);
	memset(deep, '(', 100000);
	deep[100000] = '1';
	memset(deep + 100001, ')', 100000);
	deep[n] = '\0';
	double v;
	char err[128];
	assert_int_equal(fg_calc(deep, n, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "expression nested deeper than 64 parentheses");
	free(deep);
	/* through the tool interface */
	const fg_tool_t *t = fg_tool_find("calculator", 10);
	char out[128];
	assert_int_equal(t->run(t, "{\"expression\":\"6*7\"}", 20, out, sizeof(out)), 0);
	assert_string_equal(out, "42");
	assert_int_equal(t->run(t, "{\"expr\":1}", 10, out, sizeof(out)), -1);
	assert_string_equal(out, "error: \"expression\" (a string) is required");
	assert_int_equal(t->run(t, "nope", 4, out, sizeof(out)), -1);
	assert_null(fg_tool_find("rm", 2));
}

static void test_rate_limit(void **state)
{
	(void)state;
	_Atomic uint64_t req = 0, tok = 0;
	uint64_t now = 1000000000000ull, sec = 1000000000ull;
	/* 10 rps: a 1 s burst (11 at once), then one per 100 ms */
	int admitted = 0;
	while (fg_rate_admit(&req, &tok, 10, 0, now) == 0)
		admitted++;
	assert_int_equal(admitted, 11);
	uint64_t wait = fg_rate_admit(&req, &tok, 10, 0, now);
	assert_int_equal(wait, sec / 10);
	assert_int_equal(fg_rate_admit(&req, &tok, 10, 0, now + wait), 0);
	/* the next 10 s: exactly 10 per second (the one just admitted counts) */
	admitted = 1;
	for (uint64_t t = now + wait; t < now + wait + 10 * sec; t += sec / 1000)
		admitted += fg_rate_admit(&req, &tok, 10, 0, t) == 0;
	assert_int_equal(admitted, 100);
	/* tokens: 600 per minute; a 60 s burst allowed, then wait */
	_Atomic uint64_t r2 = 0, t2 = 0;
	assert_int_equal(fg_rate_admit(&r2, &t2, 0, 600, now), 0);
	fg_rate_tokens(&t2, 600, 1200, now);   /* two minutes' worth in one reply */
	assert_int_equal(fg_rate_admit(&r2, &t2, 0, 600, now), 60 * sec);
	assert_int_equal(fg_rate_admit(&r2, &t2, 0, 600, now + 60 * sec), 0);
	/* unlimited */
	assert_int_equal(fg_rate_admit(&r2, &t2, 0, 0, now), 0);
}

static void test_scripted(void **state)
{
	(void)state;
	fg_script_step_t sc[2] = { { "calculator", "{\"expression\":\"2+2\"}", "", 0 },
				   { "", "", "The answer is 4.", 0 } };
	fg_llm_reply_t r;
	char id[FG_MAX_CALLS][32];
	fg_llm_scripted(sc, 2, 0, &r, id);
	assert_int_equal(r.ncalls, 1);
	assert_memory_equal(r.calls[0].id.p, "call_1", 6);
	fg_llm_scripted(sc, 2, 1, &r, id);
	assert_int_equal(r.ncalls, 0);
	assert_memory_equal(r.content, "The answer is 4.", 16);
	fg_llm_scripted(sc, 2, 7, &r, id);   /* past the end: the last step again */
	assert_int_equal(r.ncalls, 0);
	sc[0].calls = 3;                     /* three calls in one turn */
	fg_llm_scripted(sc, 2, 0, &r, id);
	assert_int_equal(r.ncalls, 3);
	assert_memory_equal(r.calls[2].id.p, "call_1_3", 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tool_calls),
		cmocka_unit_test(test_parse_final_and_errors),
		cmocka_unit_test(test_stream_every_split),
		cmocka_unit_test(test_stream_content_and_faults),
		cmocka_unit_test(test_request_body),
		cmocka_unit_test(test_conv_roundtrip),
		cmocka_unit_test(test_request_from_log),
		cmocka_unit_test(test_key_record),
		cmocka_unit_test(test_json_text),
		cmocka_unit_test(test_context_trim),
		cmocka_unit_test(test_note_beside_calls),
		cmocka_unit_test(test_calculator),
		cmocka_unit_test(test_scripted),
		cmocka_unit_test(test_rate_limit),
	};
	return cmocka_run_group_tests_name("llm", tests, NULL, NULL);
}
