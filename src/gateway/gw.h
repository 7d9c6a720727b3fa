/*
 * gw.h — the gateway's insides, shared by the files of src/gateway/:
 * server.c (libmicrohttpd, the route table, replies), sessions.c (the
 * /v1/sessions API and Idempotency-Key), chat.c (/v1/chat/completions),
 * sse.c (session events), metrics.c (/metrics, /v1/workers); body.c
 * parses request bodies (include/forge/gwreq.h, a fuzz target).
 */
#ifndef FORGE_GW_H
#define FORGE_GW_H

#include "forge/config.h"
#include "forge/gwreq.h"
#include "forge/region.h"
#include "forge/session.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

typedef struct gw {
	fg_region_t *r;
	const fg_config_t *cfg;
	fg_actor_t a;
	pthread_mutex_t submit_lock;
	/* Idempotency-Key index (under submit_lock): key hash -> handle.  The
	 * keys themselves live in the sessions' logs (an FG_REC_KEY record,
	 * written before the session is published), so the index is rebuilt
	 * from the region when the gateway starts, or fills up. */
	struct idem { uint64_t hash, handle; } *idem;
	uint32_t idem_cap, idem_n;
	/* client tool-call turns (under submit_lock): call id hash -> handle
	 * (sessions.c, for chat.c) */
	struct idem *calls;
	uint32_t calls_cap, calls_n;
} gw_t;

/* An Idempotency-Key (128 at most) and a batch item's "#N" after it */
#define GW_KEY_MAX 140

typedef struct body {
	char *p;
	size_t n, cap;   /* (p holds cap bytes; one more than n at least) */
	int too_large;
} body_t;

/* A route's handler: id is the {id} path segment, or NULL. */
typedef int (*gw_handler_fn)(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);

/* replies (server.c); text is taken */
int reply_oom(struct MHD_Connection *c);
int reply(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
	  const char *hname, const char *hval);
int reply_json(struct MHD_Connection *c, unsigned status, json_t *j);
/* with up to two extra headers (NULL names are skipped) */
int reply2(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
	   const char *h1, const char *v1, const char *h2, const char *v2);
/* {"error": {"message", "type", "param"}}: the OpenAI error shape. */
int reply_error(struct MHD_Connection *c, unsigned status, const char *param,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int refuse(struct MHD_Connection *c, fg_gwreq_t *q);
unsigned gw_submit_error(gw_t *g, int e, const char *what, const char *field,
			 const char **param, char *msg, size_t n);
uint64_t keepalive_ns(const gw_t *g);
/* Whether the client of connection c has closed it (what MHD itself takes
 * a read of nothing for): a wait for a session on its behalf ends. */
int gw_client_gone(struct MHD_Connection *c);
void sse_free(void *cls);

/* sessions.c */
int still(gw_t *g, uint32_t idx, uint32_t gen);
uint32_t lookup(gw_t *g, const char *id);
void idem_rebuild(gw_t *g);
int gw_post_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_post_batch(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
/* Submits p, or finds the live session made with Idempotency-Key key
 * (*old: its handle, nothing submitted); key NULL: none.  0 or -errno of
 * the submit. */
int gw_idem_submit(gw_t *g, fg_submit_t *p, const char *key, fg_handle_t *h, uint64_t *old);
/* Whether the request's Idempotency-Key (NULL: none) is refused, *rc the
 * reply that says why: 400 malformed, or 409 when a single request
 * (single: POST /v1/sessions, chat, fork) names a batch's key. */
int gw_key_refused(gw_t *g, struct MHD_Connection *c, const char *key, int single, int *rc);
/* Whether session h (made with Idempotency-Key key) was made from the same
 * request as p. */
int gw_same_submit(gw_t *g, fg_handle_t h, const char *key, const fg_submit_t *p);
/* The tool_call_id index: a chat run that ended with calls of the client's
 * own tools is found again by its first call's id (gw_calls_find: up to
 * max candidates, to be checked against the session's log). */
void gw_calls_add(gw_t *g, const char *id, size_t n, fg_handle_t h);
uint32_t gw_calls_find_locked(gw_t *g, const char *id, size_t n, fg_handle_t *out, uint32_t max);
/* The live session created with Idempotency-Key key, or 0. */
uint64_t gw_idem_lookup(gw_t *g, const char *key);
int gw_post_message(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_openapi(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_resume(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_fork(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_approval(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_list_sessions(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_get_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_delete_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
/* chat.c */
int gw_chat(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_models(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
/* sse.c */
int gw_events(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
/* metrics.c */
int workers_alive(gw_t *g);
int gw_metrics(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);
int gw_workers(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id);

#endif
