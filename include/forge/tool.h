/*
 * tool.h — the tool registry.  Each tool has a name, a JSON schema for its
 * arguments (sent to the model), a timeout, an output cap and an idempotent
 * flag; a non-idempotent tool gets an intent record committed before it
 * runs, so that after a crash it is not run a second time.
 *
 * Built in: calculator (inline), file_read (inline, confined to a root),
 * shell (a child process: argv without a shell, allowlisted, timeout,
 * output cap, rlimits).  External tools come from the configuration: a
 * command given the arguments as JSON on stdin and answering JSON on stdout.
 * Inline tools never block; process tools run in children that the
 * worker's event loop watches (pidfd + a pipe), so a slow tool holds no
 * other session back.
 */
#ifndef FORGE_TOOL_H
#define FORGE_TOOL_H

#include "forge/config.h"

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

enum fg_tool_kind { FG_TOOL_INLINE, FG_TOOL_PROCESS, FG_TOOL_HTTP,
		    FG_TOOL_MCP };   /* an MCP server's (src/worker/mcp.c) */

#define FG_TOOL_MAX_ARGS 32

typedef struct fg_tool fg_tool_t;
struct fg_tool {
	char name[64];
	const char *description;
	const char *schema;      /* JSON schema of the arguments object */
	int idempotent;
	int kind;
	uint32_t timeout_ms, max_output;
	/* INLINE: writes the result (or the error the model should see). */
	int (*run)(const fg_tool_t *t, const char *args, size_t n, char *out, size_t outlen);
	/* PROCESS: argv (strings in buf) and stdin bytes for a call; -1 with
	 * the error in err (given to the model) if the arguments are refused. */
	int (*prepare)(const fg_tool_t *t, const char *args, size_t n, char **argv, char *buf,
		       size_t buflen, const char **in, size_t *in_n, char *err, size_t errlen);
	const fg_external_cfg_t *ext;
};

/*
 * http_get: checks {"url": ...} (http or https, host on tools.http_get.allow)
 * and writes the URL to fetch into url; -1 with the error for the model.
 */
int fg_tool_http_url(const char *args, size_t n, char *url, size_t urllen, char *err,
		     size_t errlen);

/* Builds the registry from the configuration (once per process). */
void fg_tools_init(const fg_config_t *cfg);
const fg_tool_t *fg_tool_find(const char *name, size_t n);
/* The "tools" array of a chat-completions request. */
json_t *fg_tools_json(void);

/* Limits set on a child before it runs (fg_spawn). */
typedef struct fg_spawn_limits {
	uint64_t cpu_s, as_bytes, fsize_bytes, nofile;
} fg_spawn_limits_t;

/*
 * Starts argv[0] (searched in PATH; envp NULL: this process's environment)
 * as a child in its own process group, SIGKILLed if this process dies:
 * its stdin from *infd, its stdout (and stderr with err_to_out; else this
 * process's) into *outfd, every other descriptor closed, lim applied (NULL:
 * none).  An exec that fails is said ("cannot run PROG: ERROR") and the
 * child reaped.  0 with *pid and *pidfd, or -1 with err.
 */
int fg_spawn(char *const argv[], char *const envp[], const fg_spawn_limits_t *lim, int err_to_out,
	     pid_t *pid, int *pidfd, int *infd, int *outfd, char *err, size_t errlen);

/*
 * Starts a process tool (fg_spawn): a child in its own process group with stdin fed
 * from `in`, stdout and stderr into *outfd (non-blocking), rlimits set,
 * every other descriptor closed, SIGKILL if the worker dies.  Returns 0
 * with *pid and *pidfd, or -1 with err.
 */
int fg_tool_spawn(char *const argv[], const char *in, size_t in_n, uint32_t timeout_ms,
		  pid_t *pid, int *pidfd, int *outfd, char *err, size_t errlen);

/* The result text of a finished process tool. */
void fg_tool_result(const fg_tool_t *t, int exited, int code, int timed_out, int truncated,
		    const char *out, size_t n, char *res, size_t reslen);

/*
 * Evaluates an arithmetic expression: + - * / % ^, unary minus, parentheses,
 * decimal numbers.  Iterative (explicit stacks, nesting limit 64), so no
 * input can overflow the C stack.  Returns 0 with the value, or -1 with a
 * message in err.
 */
int fg_calc(const char *expr, size_t n, double *out, char *err, size_t errlen);

#endif
