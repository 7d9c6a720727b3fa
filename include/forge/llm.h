/*
 * llm.h — the OpenAI chat-completions wire format: request bodies, replies
 * (whole and streamed as SSE chunks with tool-call deltas), and the
 * in-process `scripted` provider.  Pure functions: the transport is in
 * src/http.c, the decisions in src/workflow.c.
 *
 * A reply is refused with a message, never trusted: not JSON, an "error"
 * object, a refusal, no choices, a tool call without a name or id, more
 * than FG_MAX_CALLS calls, neither content nor tool calls.
 */
#ifndef FORGE_LLM_H
#define FORGE_LLM_H

#include "forge/config.h"
#include "forge/conv.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Why a reply was refused: what the caller does next depends on it. */
enum fg_llm_err {
	FG_LLM_OK = 0,
	FG_LLM_MALFORMED,   /* not JSON, truncated, no choices: a failed try, retried   */
	FG_LLM_REFUSED,     /* the model's or provider's answer is an error: fails the session */
	FG_LLM_NOMEM        /* out of memory reading it: retried, not the session's fault */
};

typedef struct fg_llm_reply {
	int ok;                       /* 1: content or calls below; 0: error    */
	enum fg_llm_err err;          /* when !ok                               */
	char error[256];
	uint32_t ncalls;
	fg_call_t calls[FG_MAX_CALLS];
	const char *content;          /* final answer when ncalls == 0          */
	size_t content_n;
	char finish[32];
	uint32_t prompt_tokens, completion_tokens;
	json_t *root;                 /* owns the strings above                 */
} fg_llm_reply_t;

void fg_llm_reply_free(fg_llm_reply_t *r);

/* The request body; caller frees.  tools: NULL for none; params (NULL for
 * none): more fields of the request (the client's temperature, ...). */
char *fg_llm_request(const char *model, json_t *messages, json_t *tools, json_t *params,
		     int stream, size_t *len);

/*
 * The same request body built straight from a conversation log, without
 * building a JSON tree (the hot path of every model turn).  tools_json is
 * the serialized tools array or NULL.  Returns NULL with err set and errno
 * EINVAL (the log is corrupt) or ENOMEM.  Caller frees.
 */
char *fg_llm_request_log(const char *model, const uint8_t *log, uint32_t len,
			 const char *tools_json, int stream, size_t *n, char *err, size_t errlen);
/* The same, with at most keep bytes of message text (0: all) besides the
 * system messages: the oldest turns are left out, and a system message
 * says how many (workflows.context_max_bytes). */
char *fg_llm_request_log_trim(const char *model, const uint8_t *log, uint32_t len,
			      const char *tools_json, int stream, uint32_t keep, size_t *n,
			      char *err, size_t errlen);

/* Parses a whole (non-streamed) reply body. */
void fg_llm_parse(const char *body, size_t len, fg_llm_reply_t *r);

/* A streamed reply, fed as bytes arrive. */
typedef struct fg_llm_stream {
	char *line;
	size_t linelen, linecap;
	json_t *content;              /* string pieces, joined at the end */
	struct { json_t *id, *name, *args; } calls[FG_MAX_CALLS];
	uint32_t ncalls;
	int done, failed;
	enum fg_llm_err err;          /* when failed                      */
	char finish[32];
	uint32_t prompt_tokens, completion_tokens;
	char error[256];
	/* each piece of text as it arrives (NULL: none), for live text */
	void (*on_text)(void *arg, const char *p, size_t n);
	void *text_arg;
} fg_llm_stream_t;

void fg_llm_stream_init(fg_llm_stream_t *s);
/* Returns 0, or -1 once the stream is malformed (s->error says why). */
int  fg_llm_stream_feed(fg_llm_stream_t *s, const char *data, size_t n);
/* Ends the stream and fills r; frees what s held. */
void fg_llm_stream_finish(fg_llm_stream_t *s, fg_llm_reply_t *r);

/* One scripted reply: a tool call or a final text.  Same layout as a
 * provider's script entries in fg_config_t (asserted in llm.c). */
typedef struct fg_script_step {
	char tool[64];          /* "" for a final answer */
	char arguments[FG_SCRIPT_ARGS];
	char content[FG_SCRIPT_CONTENT];
	uint32_t calls;         /* the tool call this many times in one turn (0 = 1) */
} fg_script_step_t;

/* The reply of the scripted provider for the conversation's turn-th model turn. */
void fg_llm_scripted(const fg_script_step_t *steps, uint32_t nsteps, uint32_t turn,
		     fg_llm_reply_t *r, char ids[FG_MAX_CALLS][32]);

#endif
