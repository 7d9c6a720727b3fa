/* libFuzzer target: tool arguments as a model may send them: the
 * calculator (no input may overflow its stacks), http_get's URL check and
 * the shell argv check; and what an MCP server may send: a message, a
 * tools/call result (never longer than its cap and note), an event stream. */
#include "forge/mcp.h"
#include "forge/tool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fg_config_t cfg;
	static int init;
	if (!init) {
		fg_config_defaults(&cfg);
		cfg.shell_nallow = 1;
		strcpy(cfg.shell_allow[0], "echo");
		cfg.http_nallow = 1;
		strcpy(cfg.http_allow[0], "127.0.0.1");
		fg_tools_init(&cfg);
		init = 1;
	}
	double v;
	char err[256], out[4096], url[2048];
	fg_calc((const char *)data, size, &v, err, sizeof(err));
	const fg_tool_t *calc = fg_tool_find("calculator", 10);
	calc->run(calc, (const char *)data, size, out, sizeof(out));
	fg_tool_http_url((const char *)data, size, url, sizeof(url), err, sizeof(err));
	const fg_tool_t *sh = fg_tool_find("shell", 5);
	char *argv[FG_TOOL_MAX_ARGS + 1], buf[8192];
	const char *in;
	size_t in_n;
	if (sh->prepare(sh, (const char *)data, size, argv, buf, sizeof(buf), &in, &in_n, err,
			sizeof(err)) == 0 && strcmp(argv[0], "echo") != 0)
		abort();   /* only the allowlisted program may pass */
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	int64_t id;
	fg_mcp_classify(j, &id);
	char *t = fg_mcp_result_text(json_object_get(j, "result"), 64);
	if (t && strlen(t) > 64 + 64)
		abort();   /* the cap, and its note */
	free(t);
	json_decref(j);
	json_decref(fg_mcp_sse_find((const char *)data, size, 1));
	return 0;
}
