/*
 * test_config.c — the configuration loader: defaults, a full valid file,
 * and a table of bad files, each with the exact message it must produce.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/config.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void test_defaults_and_partial(void **state)
{
	(void)state;
	fg_config_t c;
	char err[1024];
	const char *y = "supervisor:\n  workers: 3\nregion:\n  sessions: 1000\n";
	assert_int_equal(fg_config_load_buf(&c, "t.yaml", y, strlen(y), err, sizeof(err)), 0);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.sessions, 1000);
	assert_int_equal(c.watchdog_ms, 2000);
	assert_string_equal(c.region_path, "/dev/shm/forge");
	assert_string_equal(c.providers[0].base_url, "http://127.0.0.1:8089/v1");
	assert_string_equal(c.http_listen, "127.0.0.1:8080");
	assert_int_equal(fg_config_load_buf(&c, "empty.yaml", "", 0, err, sizeof(err)), 0);
	assert_int_equal(c.workers, 2);
}

static void test_env_and_providers(void **state)
{
	(void)state;
	fg_config_t c;
	char err[1024];
	setenv("FORGE_TEST_DIR", "/tmp/x", 1);
	const char *y =
		"region:\n  path: ${FORGE_TEST_DIR}/region\n"
		"llm:\n  default: local\n  providers:\n"
		"    local:\n      base_url: http://127.0.0.1:9/v1\n      model: m1\n"
		"    other:\n      base_url: https://example.invalid/v1\n";
	assert_int_equal(fg_config_load_buf(&c, "t.yaml", y, strlen(y), err, sizeof(err)), 0);
	assert_string_equal(c.region_path, "/tmp/x/region");
	assert_int_equal(c.nproviders, 2);
	assert_string_equal(c.providers[0].model, "m1");
	assert_string_equal(c.providers[1].model, "other");
	assert_string_equal(c.llm_default, "local");
	const char *y2 = "llm:\n  default: s\n  providers:\n    s:\n      type: scripted\n"
			 "    h:\n      base_url: http://x/v1\n      stream: true\n      max_retries: 2\n";
	assert_int_equal(fg_config_load_buf(&c, "t.yaml", y2, strlen(y2), err, sizeof(err)), 0);
	assert_int_equal(c.providers[0].type, FG_PROV_SCRIPTED);
	assert_int_equal(c.providers[0].nscript, 2);
	assert_string_equal(c.providers[0].script[1].content, "The answer is 4.");
	assert_int_equal(c.providers[1].stream, 1);
	assert_int_equal(c.providers[1].max_retries, 2);
	assert_int_equal(c.providers[1].timeout_ms, 120000);
}

static const struct bad {
	const char *yaml;
	const char *msg;
} bad[] = {
	{ "supervisor:\n  wrokers: 2\n", "b.yaml:2:3: supervisor.wrokers: unknown key" },
	{ "supervisor:\n  workers: two\n",
	  "b.yaml:2:12: supervisor.workers: expected a whole number, got \"two\" (or \"auto\")" },
	{ "supervisor:\n  workers: 0\n",
	  "b.yaml:2:12: supervisor.workers: 0 is out of range [1, 64]" },
	{ "supervisor:\n  workers: -1\n",
	  "b.yaml:2:12: supervisor.workers: expected a whole number, got \"-1\" (or \"auto\")" },
	{ "region:\n  sessions: \"10\"\n",
	  "b.yaml:2:13: region.sessions: expected a number, got the string \"10\"" },
	{ "region:\n  sessions: 99999999999\n",
	  "b.yaml:2:13: region.sessions: 99999999999 is out of range [1, 16777216]" },
	{ "region:\n  path: /a\n  path: /b\n",
	  "b.yaml:3:3: region.path: duplicate key (first at line 2)" },
	{ "region: [1, 2]\n", "b.yaml:1:9: region: expected a mapping" },
	{ "region:\n  mode: \"0777\"\n",
	  "b.yaml:2:9: region.mode: \"0777\" is not 0600, 0640 or 0660 (the region file's "
	  "permissions: 0660 lets the file's group use forgectl submit, say and purge; 0640 "
	  "only read)" },
	{ "region:\n  path: [a]\n", "b.yaml:2:9: region.path: expected a string, got a sequence" },
	{ "region:\n  path: ${FORGE_UNSET_VARIABLE_X}\n",
	  "b.yaml:2:9: region.path: environment variable FORGE_UNSET_VARIABLE_X is not set" },
	{ "a: &x [1]\nb: *x\n",
	  "b.yaml:1:4: anchors (&x) are not allowed in forge configuration" },
	{ "region:\n  path: \"unterminated\n",
	  "b.yaml:3:1: YAML syntax error: found unexpected end of stream while scanning a quoted scalar" },
	{ "- 1\n- 2\n", "b.yaml:1:1: the top level must be a mapping of sections" },
	{ "log:\n  level: loud\n",
	  "b.yaml:2:10: log.level: \"loud\" is not a log level (error, warn, info, debug)" },
	{ "llm:\n  default: nope\n",
	  "b.yaml:1:1: llm.default: names provider \"nope\", which is not in llm.providers" },
	{ "llm:\n  providers:\n    x:\n      model: m\n",
	  "b.yaml:4:7: llm.providers.x: missing required key base_url" },
	{ "llm:\n  providers:\n    x:\n      base_url: ftp://h\n",
	  "b.yaml:4:7: llm.providers.x: base_url must start with http:// or https://" },
	{ "llm:\n  providers:\n    x:\n      base_url: http://h\n      key: 1\n",
	  "b.yaml:5:7: llm.providers.x.key: unknown key" },
	{ "region:\n  checkpoint_bytes: 100\n",
	  "b.yaml:1:1: region.checkpoint_bytes: 100 is not a multiple of 8" },
	{ "supervisor:\n  restart:\n    backoff_initial_ms: 500\n    backoff_max_ms: 100\n",
	  "b.yaml:1:1: supervisor.restart.backoff_max_ms: 100 is less than backoff_initial_ms (500)" },
	{ "---\na: 1\n---\nb: 2\n", "b.yaml:3:1: more than one YAML document in the file" },
	{ "llm:\n  providers:\n    s:\n      type: magic\n",
	  "b.yaml:4:7: llm.providers.s: type \"magic\" is not openai or scripted" },
	{ "llm:\n  providers:\n    s:\n      type: scripted\n      script:\n        - tool: calculator\n          content: x\n",
	  "b.yaml:6:11: llm.providers.s.script[0]: needs either tool (with arguments) or content" },
	{ "llm:\n  providers:\n    s:\n      type: scripted\n      script:\n        - tool: calculator\n          arguments: \"[1\"\n",
	  "b.yaml:6:11: llm.providers.s.script[0]: arguments are not a JSON object: ']' expected near end of file" },
	{ "llm:\n  providers:\n    m:\n      base_url: http://h\n      stream: maybe\n",
	  "b.yaml:5:15: llm.providers.m.stream: expected true or false, got \"maybe\"" },
	{ "llm:\n  providers:\n    m:\n      base_url: http://h\n      max_retries: 1000\n",
	  "b.yaml:5:20: llm.providers.m.max_retries: 1000 is out of range [0, 100]" },
	{ "workflows:\n  interrupted: retry\n",
	  "b.yaml:1:1: workflows.interrupted: \"retry\" is not result or fail" },
	{ "tools:\n  mcp:\n    a__b:\n      command: [x]\n",
	  "b.yaml:3:5: tools.mcp.a__b: a server's name is 1 to 47 of [A-Za-z0-9_-], without \"__\" "
	  "and not ending in \"_\" (its tools are NAME__TOOL)" },
	{ "tools:\n  mcp:\n    a:\n      timeout_ms: 5\n",
	  "b.yaml:4:7: tools.mcp.a: needs either command (a stdio server) or url (Streamable HTTP), not both" },
	{ "tools:\n  mcp:\n    a:\n      url: http://h/\n      env:\n        X: y\n",
	  "b.yaml:4:7: tools.mcp.a: env is for a command (stdio server)" },
	{ "tools:\n  mcp:\n    a:\n      command: [x]\n      env:\n        X=1: y\n",
	  "b.yaml:6:9: tools.mcp.a.env.X=1: not a variable name ([A-Za-z0-9_])" },
	{ "tools:\n  mcp:\n    a:\n      command: [x]\n      max_output: 10\n",
	  "b.yaml:5:19: tools.mcp.a.max_output: 10 is out of range [256, 16777216]" },
	{ "tools:\n  mcp:\n    a:\n      command: [x]\nagents:\n  g:\n    tools: [b__x]\n",
	  "b.yaml:7:12: agents.g.tools: \"b__x\" is not a configured tool (calculator; file_read, "
	  "shell and http_get once tools.* enables them; tools.external.NAME; SERVER__TOOL or "
	  "SERVER__* of tools.mcp.SERVER; ask_human)" },
};

static void test_mcp(void **state)
{
	(void)state;
	fg_config_t *c = malloc(sizeof(*c));
	char err[1024];
	const char *y =
		"tools:\n  mcp:\n"
		"    files:\n      command: [node, server.js, /srv]\n      env:\n        A: b\n"
		"    web:\n      url: http://127.0.0.1:3001/mcp\n      timeout_ms: 5000\n"
		"      max_output: 1024\n      idempotent: true\n"
		"agents:\n  x:\n    tools: [files__read, \"web__*\"]\n";
	assert_non_null(c);
	assert_int_equal(fg_config_load_buf(c, "t.yaml", y, strlen(y), err, sizeof(err)), 0);
	assert_int_equal(c->nmcp, 2);
	assert_string_equal(c->mcp[0].name, "files");
	assert_int_equal(c->mcp[0].argc, 3);
	assert_string_equal(c->mcp[0].argv[2], "/srv");
	assert_int_equal(c->mcp[0].nenv, 1);
	assert_string_equal(c->mcp[0].env[0], "A=b");
	assert_int_equal(c->mcp[0].timeout_ms, 30000);
	assert_int_equal(c->mcp[0].max_output, 65536);
	assert_int_equal(c->mcp[0].idempotent, 0);
	assert_string_equal(c->mcp[1].url, "http://127.0.0.1:3001/mcp");
	assert_int_equal(c->mcp[1].timeout_ms, 5000);
	assert_int_equal(c->mcp[1].max_output, 1024);
	assert_int_equal(c->mcp[1].idempotent, 1);
	free(c);
}

static void test_bad_table(void **state)
{
	(void)state;
	fg_config_t c;
	char err[1024];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = fg_config_load_buf(&c, "b.yaml", bad[i].yaml, strlen(bad[i].yaml), err,
					    sizeof(err));
		if (rc != -1 || strcmp(err, bad[i].msg) != 0)
			fail_msg("case %zu:\n  got  (%d) %s\n  want      %s", i, rc, err, bad[i].msg);
	}
}

static void test_alias_bomb(void **state)
{
	(void)state;
	/* The classic billion-laughs shape: refused at the first alias. */
	const char *y = "a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n";
	fg_config_t c;
	char err[1024];
	assert_int_equal(fg_config_load_buf(&c, "bomb.yaml", y, strlen(y), err, sizeof(err)), -1);
	assert_string_equal(err, "bomb.yaml:1:4: anchors (&a) are not allowed in forge configuration");
}

static void test_deep_nesting(void **state)
{
	(void)state;
	char y[4096];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		y[n++] = '[';
	for (int i = 0; i < 100; i++)
		y[n++] = ']';
	y[n] = '\0';
	char doc[4200];
	snprintf(doc, sizeof(doc), "a: %s\n", y);
	fg_config_t c;
	char err[1024];
	assert_int_equal(fg_config_load_buf(&c, "deep.yaml", doc, strlen(doc), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nesting deeper than 32 levels"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_partial),
		cmocka_unit_test(test_env_and_providers),
		cmocka_unit_test(test_mcp),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_deep_nesting),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
