/*
 * conv.h — a session's conversation as records in its checkpoint log.
 * THIS IS PART OF THE REGION ABI (region.h): changing a record type or
 * layout changes the format and must bump FG_REGION_VERSION.
 *
 * The log is append-only while a session lives: each commit appends whole
 * records and publishes the new length atomically (session.c), so a record
 * is either entirely committed or not there at all, and a resumed session
 * sees exactly the messages it had committed — never one twice.
 *
 * Record: u8 type, u8 flags, u32 payload length (little-endian), payload;
 * a payload (a message, a tool result) may be as long as the log holds.
 *   SYSTEM, USER, ASSISTANT, ERROR: UTF-8 text
 *   TOOLCALLS: u8 n, then n x (str id, str name, str arguments)
 *   TOOL:      str id, then the result text (rest of the payload)
 *   INTENT:    str id (a non-idempotent tool is about to run)
 *   USAGE:     u32 prompt tokens, u32 completion tokens (one LLM reply)
 *   PARTS:     u16 n, then n x str (map_reduce: the split of the task)
 *   CHILD:     u16 part, u64 child session handle (map_reduce, plan_execute)
 *   DEPS:      u16 n, then for each step: u16 k and k x u16, the earlier
 *              steps it depends on (plan_execute; follows PARTS in the same
 *              commit)
 *   KEY:       the client's Idempotency-Key (POST /v1/sessions); the first
 *              record when present, skipped by every view
 *   COMMIT:    u32 crc32c of every log byte before this record, u32 the
 *              checkpoint sequence it publishes, the fg_wstate_t it
 *              publishes (32 bytes): ends each commit while
 *              region.durability is not none (src/region/durable.c), so a
 *              log torn by a power loss is cut back to its last whole
 *              commit; fg_rec_next skips it
 *   PARAMS:    a JSON object of what the client asked the model for, sent
 *              with every request of the session: its own "tools" (function
 *              definitions forge does not run: a call of one ends the run
 *              with the calls for the client), temperature, top_p,
 *              max_tokens, max_completion_tokens, stop, seed,
 *              response_format, tool_choice; after the KEY record, if any
 *   RESUME:    (empty) a failed session was resumed (POST .../resume): the
 *              ERROR before it no longer ends the conversation; also where a
 *              chat history that ends with tool results ends.  max_steps
 *              counts from it
 *   NOTE:      the text a model sent beside its tool calls; right before
 *              the TOOLCALLS record it goes with (their message's content)
 *   AGENT:     the named agent (agents.NAME) the session runs, as it was
 *              defined when the session was made: a JSON object {"name",
 *              "tools"?: [names], "token_budget"?, "deadline_s"?,
 *              "planner"?, "synthesis"?, "splitter"?, "reducer"?}; the
 *              first record after KEY.  A reload that changes the agent
 *              does not touch the sessions that already run it
 * A USER record after the end of a ReAct conversation (an answer, or an
 * ERROR) is a thread's next message: the conversation goes on from there.
 * where str = u16 length + bytes.
 */
#ifndef FORGE_CONV_H
#define FORGE_CONV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum fg_rec_type {
	FG_REC_SYSTEM = 1, FG_REC_USER, FG_REC_ASSISTANT, FG_REC_TOOLCALLS,
	FG_REC_TOOL, FG_REC_INTENT, FG_REC_ERROR, FG_REC_USAGE, FG_REC_PARTS, FG_REC_CHILD,
	FG_REC_DEPS,
	FG_REC_KEY,      /* the client's Idempotency-Key; first, if present */
	FG_REC_COMMIT,   /* the end of a commit (durability): skipped by views */
	FG_REC_PARAMS,   /* the client's request parameters (JSON object) */
	FG_REC_RESUME,   /* a failed session resumed: on from its last commit */
	FG_REC_NOTE,     /* the text a model sent beside its tool calls */
	FG_REC_AGENT,    /* the named agent's definition, as the session began */
	FG_REC_ASK,      /* a call waits for a person: id, then fg_ask_t's bytes */
	FG_REC_DECISION  /* what the person (or the timeout) decided: id, JSON */
};

/* An ASK record's payload after the call id: when its wait ends by itself
 * (CLOCK_REALTIME ms, 0: never), what it asks for, the answer then, and
 * when the session's own deadline passes (0: none; it fails then). */
enum { FG_ASK_APPROVE = 1, FG_ASK_QUESTION = 2 };
typedef struct fg_ask {
	uint64_t deadline_ms;
	uint8_t kind;        /* FG_ASK_* */
	uint8_t dflt;        /* after the deadline: 0 reject, 1 approve */
	uint64_t wake_ms;
} fg_ask_t;
#define FG_ASK_BYTES 18
#define FG_COMMIT_PAYLOAD 40
#define FG_COMMIT_BYTES (FG_REC_HDR + FG_COMMIT_PAYLOAD)
#define FG_MAX_PARTS 256   /* parts of a split, steps of a plan */

#define FG_REC_HDR 6
#define FG_REC_MAX 0x7fffffffu   /* a payload's length: below the log's 31-bit length */
#define FG_MAX_CALLS 128   /* tool calls in one model turn (TOOLCALLS: u8 n) */

typedef struct fg_rec {
	uint8_t type;
	uint32_t n;
	const uint8_t *p;
} fg_rec_t;

/* A string within a record: ids, names and arguments are u16-long in the
 * log (str above); texts (TOOL results, messages) are whole payloads. */
typedef struct fg_str {
	const char *p;
	uint32_t n;
} fg_str_t;

typedef struct fg_call {
	fg_str_t id, name, args;
} fg_call_t;

/*
 * A byte buffer that records are built into before one commit.  With grow
 * set, p is a malloc'd buffer that grows (realloc) up to max; otherwise
 * cap is all there is.  overflow: something did not fit (oom: because
 * memory ran out).
 */
typedef struct fg_buf {
	uint8_t *p;
	uint32_t n, cap;
	int overflow;
	uint32_t max;
	int grow, oom;
} fg_buf_t;

void fg_buf_rec(fg_buf_t *b, uint8_t type, const void *payload, size_t n);
void fg_buf_str(fg_buf_t *b, const char *s, size_t n);
/* Appends a TOOLCALLS record. */
void fg_buf_toolcalls(fg_buf_t *b, const fg_call_t *calls, uint32_t n);
/* Appends a TOOL record: id and result text. */
void fg_buf_tool(fg_buf_t *b, fg_str_t id, const char *text, size_t n);
/* ... a record of that shape of another type (DECISION: id and JSON). */
void fg_buf_idtext(fg_buf_t *b, uint8_t type, fg_str_t id, const char *text, size_t n);
void fg_buf_ask(fg_buf_t *b, fg_str_t id, const fg_ask_t *a);
int  fg_rec_ask(const fg_rec_t *r, fg_str_t *id, fg_ask_t *a);

void fg_buf_parts(fg_buf_t *b, const fg_str_t *parts, uint32_t n);
/* A DEPS record from a bitmap per step: bit d of dep[i] = step i needs d. */
void fg_buf_deps(fg_buf_t *b, const uint64_t (*dep)[FG_MAX_PARTS / 64], uint32_t n);
void fg_buf_child(fg_buf_t *b, uint32_t part, uint64_t handle);
int  fg_rec_parts(const fg_rec_t *r, fg_str_t *parts, uint32_t max);
int  fg_rec_child(const fg_rec_t *r, uint32_t *part, uint64_t *handle);

/* Reads the record at *off; 1 and advances, 0 at the end, -1 if corrupt.
 * COMMIT records are skipped; fg_rec_next_raw returns them too. */
int fg_rec_next(const uint8_t *log, uint32_t len, uint32_t *off, fg_rec_t *r);
int fg_rec_next_raw(const uint8_t *log, uint32_t len, uint32_t *off, fg_rec_t *r);

/* Decodes a TOOLCALLS payload; returns the number of calls or -1. */
int fg_rec_calls(const fg_rec_t *r, fg_call_t *calls, uint32_t max);

/* Decodes a TOOL, INTENT or DECISION payload's id (and the text, but for
 * INTENT). */
int fg_rec_tool(const fg_rec_t *r, fg_str_t *id, fg_str_t *text);

/*
 * The OpenAI "messages" array for a log; NULL with err set if the log is
 * corrupt.  Caller owns the result.
 */
json_t *fg_conv_messages(const uint8_t *log, uint32_t len, char *err, size_t errlen);

/* The OpenAI messages of a conversation (fg_conv_json's) and, apart, forge's
 * own records (forge.intent, forge.error, forge.parts, forge.child), each
 * with "before": the index of the message it came before.  Both new. */
void fg_conv_split(json_t *all, json_t **visible, json_t **internal);

/* Text as a JSON string: bytes that are not whole UTF-8 sequences (a
 * model's or a tool's output, a name cut to a length inside a character)
 * become U+FFFD each, rather than failing the string. */
json_t *fg_json_text(const void *p, size_t n);

/* The whole conversation as JSON for forgectl and the API (messages + usage). */
json_t *fg_conv_json(const uint8_t *log, uint32_t len, uint32_t *prompt_tok,
		     uint32_t *completion_tok);

#endif
