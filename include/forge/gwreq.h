/*
 * gwreq.h — the gateway's request bodies, read and checked without HTTP
 * (so that they can be fuzzed: fuzz/fuzz_gateway.c).
 *
 * POST /v1/sessions:
 *   {"prompt": STR, "workflow"?: "react"|"plan_execute"|"map_reduce",
 *    "system"?: STR, "model"?: PROVIDER, "max_steps"?: 1..1000}
 * POST /v1/chat/completions (OpenAI's shape):
 *   {"model": "forge/WORKFLOW[@PROVIDER]", "messages": [{role, content}...],
 *    "stream"?: BOOL, "tools"?, "tool_choice"?, "temperature"?, "top_p"?,
 *    "max_tokens"?, "max_completion_tokens"?, "stop"?, "seed"?,
 *    "response_format"?, "n"?: 1}.  react: the whole history becomes the
 *    session's first records (system and developer messages SYSTEM, user
 *    USER, assistant ASSISTANT or TOOLCALLS, tool TOOL; content as a string
 *    or text parts), the parameters a PARAMS record; it must end with a
 *    user message or tool results.  plan_execute, map_reduce: the last user
 *    message is the task, the first system message the system prompt.
 *
 * On success the fg_submit_t is ready for fg_session_submit(); its strings
 * point into q->root, which the caller frees with fg_gwreq_free().  On
 * failure q->status is 400 (q->param names the field at fault, or NULL) or
 * 503 (out of memory: not the client's fault), and q->error says what.
 */
#ifndef FORGE_GWREQ_H
#define FORGE_GWREQ_H

#include "forge/config.h"
#include "forge/conv.h"
#include "forge/session.h"

#include <jansson.h>
#include <stddef.h>

typedef struct fg_gwreq {
	json_t *root;
	fg_submit_t sub;
	int stream;             /* chat: "stream": true                    */
	char model[80];         /* chat: the model string, for the replies */
	fg_buf_t recs;          /* chat: the history as records (sub.recs)  */
	uint32_t at;            /* fork: messages kept (UINT32_MAX: all)   */
	unsigned status;        /* on failure: 400 or 503                  */
	const char *param;      /* on failure: the field at fault, or NULL */
	char param_buf[64];     /* (param, when it is a field of the body)  */
	char error[400];
} fg_gwreq_t;

int  fg_gwreq_session(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q);
int  fg_gwreq_chat(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q);
/* POST /v1/sessions/batch: {"sessions": [SESSION, ...]}, 1 to cfg->http_max_batch
 * items, each an object as the body of POST /v1/sessions.  Every item is
 * checked; on failure q->param names the item and its field
 * ("sessions[3].prompt").  On success *count is the number of items and
 * q->root holds them: fg_gwreq_item() makes item i ready to submit, into
 * its own fg_gwreq_t (free it; q must outlive it).  check (or NULL) is
 * called with each item that is well formed, in order, before the next is
 * read: a status it returns (having set q->error and q->param) refuses the
 * batch. */
typedef unsigned (*fg_gwreq_check_fn)(void *arg, size_t i, size_t count, fg_gwreq_t *item,
				      fg_gwreq_t *q);
int  fg_gwreq_batch(const char *body, size_t n, const fg_config_t *cfg, fg_gwreq_t *q,
		    size_t *count, fg_gwreq_check_fn check, void *arg);
int  fg_gwreq_item(const fg_config_t *cfg, const fg_gwreq_t *batch, size_t i, fg_gwreq_t *q);
/* POST /v1/sessions/{id}/messages: {"content": STR | text parts,
 * "role"?: "user"}: q->recs holds the USER record. */
int  fg_gwreq_message(const char *body, size_t n, fg_gwreq_t *q);
/* POST /v1/sessions/{id}/fork: {"at"?: N (messages kept; default all),
 * "content"?: STR | text parts (a user message after them)}: q->at, and
 * q->recs holds the USER record when content is given. */
int  fg_gwreq_fork(const char *body, size_t n, fg_gwreq_t *q);
void fg_gwreq_free(fg_gwreq_t *q);

/* The allocator to give jansson (json_set_alloc_funcs) in a process that
 * reads bodies: it notes a failed allocation, which jansson's lexer would
 * otherwise report as a syntax error. */
void *fg_gwreq_json_malloc(size_t n);

#endif
