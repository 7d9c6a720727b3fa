/* libFuzzer target: tool arguments as a model may send them: the
 * calculator (no input may overflow its stacks), http_get's URL check and
 * the shell argv check. */
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
	return 0;
}
