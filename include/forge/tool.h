/*
 * tool.h — the tool registry and the built-in tools that run inline in a
 * worker's loop (they never block): `calculator`.  Each tool has a name, a
 * JSON schema for its arguments (sent to the model), a timeout and an
 * idempotent flag; a non-idempotent tool gets an intent record committed
 * before it runs, so that after a crash it is not run a second time.
 */
#ifndef FORGE_TOOL_H
#define FORGE_TOOL_H

#include <jansson.h>
#include <stddef.h>

typedef struct fg_tool {
	const char *name;
	const char *description;
	const char *schema;      /* JSON schema of the arguments object */
	int idempotent;
	/* Runs the tool on its JSON arguments; writes the result (or the error
	 * the model should see) into out.  Returns 0, or -1 for a tool error. */
	int (*run)(const char *args, size_t n, char *out, size_t outlen);
} fg_tool_t;

const fg_tool_t *fg_tool_find(const char *name, size_t n);

/* The "tools" array of a chat-completions request for every registered tool. */
json_t *fg_tools_json(void);

/*
 * Evaluates an arithmetic expression: + - * / % ^, unary minus, parentheses,
 * decimal numbers.  Iterative (explicit stacks, nesting limit 64), so no
 * input can overflow the C stack.  Returns 0 with the value, or -1 with a
 * message in err.
 */
int fg_calc(const char *expr, size_t n, double *out, char *err, size_t errlen);

#endif
