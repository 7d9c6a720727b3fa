/*
 * workflow.h — what an LLM session must do next, read from its committed
 * conversation alone (so a resumed session and the one that crashed agree).
 *
 * ReAct: USER -> model turn (tool calls | final answer) -> one TOOL result
 * per call -> model turn -> ...  A non-idempotent tool's INTENT record
 * precedes its run; an INTENT with no TOOL result after it means the run
 * was interrupted by a crash and must not be repeated.
 */
#ifndef FORGE_WORKFLOW_H
#define FORGE_WORKFLOW_H

#include "forge/conv.h"
#include "forge/session.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fg_react_view {
	uint32_t turns;                  /* model turns since the last user
					  * message (what max_steps counts)       */
	uint32_t turns_total;            /* model turns in the whole log          */
	uint32_t turns_since_user;       /* since the last user message (the
					  * scripted provider's reply index)      */
	int final;                       /* a final answer is committed          */
	fg_str_t answer;                 /* ... and its text                      */
	uint32_t ncalls;                 /* calls of the last tool-call turn      */
	fg_call_t calls[FG_MAX_CALLS];   /* (set below ncalls only)               */
	uint8_t answered[FG_MAX_CALLS];  /* TOOL results seen for each call       */
	uint8_t intent[FG_MAX_CALLS];    /* INTENT records seen for each call     */
	uint32_t pending;                /* calls without a result                */
	int failed;                      /* an ERROR record is committed          */
	fg_str_t error;
	fg_str_t params;                 /* the PARAMS record's JSON (n 0: none)  */
	fg_str_t agent;                  /* the AGENT record's JSON (n 0: none)   */
	uint8_t client[FG_MAX_CALLS];    /* calls of the client's own tools (set
					  * by the worker from params)            */
	uint32_t nclient;
	uint8_t asked[FG_MAX_CALLS];     /* ASK records: the call waits for a person */
	uint8_t decided[FG_MAX_CALLS];   /* DECISION records (their JSON below)  */
	uint32_t awaiting;               /* asked, neither decided nor answered  */
	/* (not zeroed by fg_react_view: read only where asked / decided) */
	fg_ask_t ask[FG_MAX_CALLS];
	fg_str_t decision[FG_MAX_CALLS];
} fg_react_view_t;

/* map_reduce: split call -> PARTS -> one child ReAct session per part
 * (CHILD records; a later CHILD record for a part replaces an earlier one
 * whose child was rolled back by a crash) -> reduce call -> final answer. */
typedef struct fg_mr_view {
	fg_str_t prompt;
	fg_str_t system;                 /* the first SYSTEM record (n 0: none) */
	uint32_t turns;
	uint32_t nparts;                 /* 0 until the split is committed */
	fg_str_t parts[FG_MAX_PARTS];
	uint64_t child[FG_MAX_PARTS];    /* 0: none yet                    */
	uint64_t deps[FG_MAX_PARTS][FG_MAX_PARTS / 64];  /* plan_execute: bit d of
							 * deps[i]: step i needs d */
	int final, failed;
	fg_str_t answer, error;
	fg_str_t params;                 /* the PARAMS record's JSON (n 0: none) */
	fg_str_t agent;                  /* the AGENT record's JSON (n 0: none)  */
} fg_mr_view_t;

int fg_mr_view(const uint8_t *log, uint32_t len, fg_mr_view_t *v, char *err, size_t errlen);

/* Whether step i of a plan needs step d (d < i). */
static inline int fg_mr_dep(const fg_mr_view_t *v, uint32_t i, uint32_t d)
{
	return (int)(v->deps[i][d / 64] >> (d % 64) & 1);
}

/*
 * Reads the conversation.  Returns 0, or -1 with err set if the log is
 * corrupt or out of order (a result for an unknown call, two results for
 * one call, a turn before the previous turn's calls were all answered, a
 * record after the final answer): such a log is never run further.
 */
int fg_react_view(const uint8_t *log, uint32_t len, fg_react_view_t *v, char *err, size_t errlen);

/*
 * Whether the session copied in sn (with its log) may take rec[0..n) as
 * its next run: a thread's next message (resume 0) or RESUME (resume 1).
 * 0; -EPERM (a child, not react, or not failed for a resume), -EBUSY (it
 * has not ended), -EINVAL (the conversation would not hold together),
 * -ENOMEM; err says why.
 */
/* Marks v's pending calls that name the client's own tools (the PARAMS
 * record's "tools": chat completions), which forge does not run:
 * v->client[i], v->nclient. */
void fg_react_client_calls(fg_react_view_t *v);

int fg_thread_check(const fg_region_t *r, const fg_snap_t *sn, const uint8_t *rec, uint32_t n,
		    int resume, char *err, size_t errlen);

/*
 * A thread's next run, whole (POST .../messages and .../resume, forgectl
 * say and resume): rec is checked against the session's conversation
 * (fg_thread_check) and appended by a (fg_session_continue) only if the
 * conversation is still the one checked; when another run ended in between
 * it looks again (5 times at most: -ESTALE).  With key (an Idempotency-Key)
 * the records go beside a KEY record: a log that holds it already is a
 * retry, answered 0 with *replayed set and nothing added.  0, or -ENOENT,
 * -EBUSY, -EPERM, -EINVAL, -ESTALE, -E2BIG, -ENOMEM or a commit's error,
 * err saying why.  a is used by one thread at a time.
 */
int fg_thread_continue(fg_actor_t *a, fg_handle_t h, const uint8_t *rec, uint32_t n, int resume,
		       const char *key, int *replayed, char *err, size_t errlen);

/*
 * Fork (LangGraph's time travel): the records of a new react session made
 * from snapshot sn's first `at` messages (as GET /v1/sessions/{id} numbers
 * its "messages"; UINT32_MAX: all), then a user message of text (NULL:
 * none), into b (a growing buffer).  Forge's own records (usage, intents,
 * errors, keys) stay behind; the client's parameters and the session's
 * agent (its tools and limits) come along.  The new
 * conversation must hold together (no tool-call turn cut from its results)
 * and end with something to answer (a user message or tool results).  0,
 * or -EPERM (not react), -ERANGE (at is past its messages), -EINVAL (the
 * cut), -E2BIG, -ENOMEM; err says why.
 */
int fg_fork_records(const fg_snap_t *sn, uint32_t at, const char *text, size_t tn, fg_buf_t *b,
		    char *err, size_t errlen);

/* A fork of session h whole, ready for fg_session_submit: *p (its records
 * in b, which the caller frees; the same provider and max_steps as h).  0,
 * -ENOENT (h is gone) or fg_fork_records' errors, err saying why. */
int fg_fork_prepare(const fg_region_t *r, fg_handle_t h, uint32_t at, const char *text, size_t tn,
		    fg_buf_t *b, fg_submit_t *p, char *err, size_t errlen);

#endif
