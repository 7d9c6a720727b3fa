/*
 * mcp.h — the Model Context Protocol's messages (src/agent/mcp.c): JSON-RPC
 * 2.0 requests, the classes of what a server sends, the text a tools/call
 * result gives the model, and a JSON-RPC message out of a Streamable HTTP
 * text/event-stream reply.  No I/O here: a worker's connections to its MCP
 * servers are src/worker/mcp.c.
 */
#ifndef FORGE_MCP_H
#define FORGE_MCP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FG_MCP_PROTOCOL "2025-06-18"   /* asked for; a server's own answer is taken */

/* One JSON-RPC line ('\n' ended), malloc'd: a request with id, or a
 * notification for id < 0; params borrowed (NULL: none).  NULL: out of memory. */
char *fg_mcp_request(int64_t id, const char *method, const json_t *params, size_t *n);

/* A JSON-RPC answer to a request of the server's: result (borrowed) or, when
 * NULL, the error code and message. */
char *fg_mcp_answer(const json_t *id, const json_t *result, int code, const char *msg,
		    size_t *n);

enum fg_mcp_kind {
	FG_MCP_GARBAGE = 0,     /* not JSON, or not JSON-RPC 2.0 */
	FG_MCP_RESPONSE,        /* an answer to one of ours: *id set (-1: an id we never use) */
	FG_MCP_NOTIFICATION,    /* method, no id */
	FG_MCP_REQUEST,         /* method and id: the server asks us */
};
int fg_mcp_classify(const json_t *j, int64_t *id);

/*
 * The text given to the model for a tools/call result: its text items
 * joined by newlines, other items summarised ("[image: image/png, 95
 * bytes]"), structuredContent when there is no content; "error: " first
 * when isError; cut at max_output bytes with a note.  malloc'd, or NULL.
 */
char *fg_mcp_result_text(const json_t *result, size_t max_output);

/* "CODE: message" of a JSON-RPC error object into out. */
void fg_mcp_error_text(const json_t *err, char *out, size_t outlen);

/* Whether s is a function name models take: [A-Za-z0-9_-]{1,64}. */
int fg_mcp_name_ok(const char *s, size_t n);

/* A message from a server, parsed (NULL: not JSON).  JSON that is refused
 * only for a lone UTF-16 surrogate escape (\ud800-\udfff without its
 * other half: what JavaScript's JSON.stringify writes for a string cut
 * inside a surrogate pair) is parsed with each such escape as \ufffd. */
json_t *fg_mcp_parse(const char *p, size_t n);

/* The JSON-RPC response with id in a text/event-stream body (the data:
 * lines of each event joined); NULL if none. */
json_t *fg_mcp_sse_find(const char *body, size_t n, int64_t id);

#endif
