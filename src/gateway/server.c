/*
 * gateway.c — see include/forge/gateway.h.
 *
 *   POST   /v1/sessions            {workflow?, prompt, system?, model?, max_steps?}
 *                                  -> 201 {"id"}; 400 naming the field; 413; 503
 *   GET    /v1/sessions/{id}       state, steps, messages, result, usage, error
 *   GET    /v1/sessions?state=&limit=&cursor=
 *   GET    /v1/sessions/{id}/events  Server-Sent Events (Last-Event-ID resume)
 *   DELETE /v1/sessions/{id}       cancel
 *   POST   /v1/chat/completions    OpenAI-compatible; model "forge/WORKFLOW[@provider]"
 *   GET    /v1/workers, /metrics (Prometheus text), /healthz, /readyz
 * Bearer-token auth when http.tokens is set (all but /healthz); 404 for
 * unknown paths and sessions, 405 (with Allow) for a wrong method.
 *
 * libmicrohttpd runs a thread per connection (SSE streams wait in theirs);
 * submits
 * go through this process's one registry slot, whose intents and lease
 * table are single-owner, so they are serialized by submit_lock.  The main
 * thread beats the heartbeat and waits for SIGTERM.
 */
#include "forge/gateway.h"
#include "forge/crash.h"
#include "forge/conv.h"
#include "forge/gwreq.h"
#include "forge/inspect.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/worker.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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
} gw_t;

typedef struct body {
	char *p;
	size_t n;
	int too_large;
} body_t;

/* Out of memory for a reply: a 503 from static memory, or, when even that
 * cannot be had, MHD_NO, which closes the connection.  Never a crash. */
static int reply_oom(struct MHD_Connection *c)
{
	static char msg[] = "{\"error\":{\"message\":\"out of memory, try again\","
			    "\"type\":\"server_error\"}}";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(msg) - 1, msg,
								 MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Retry-After", "1");
	int rc = MHD_queue_response(c, 503, r);
	MHD_destroy_response(r);
	return rc;
}

/* Queues TEXT (malloc'd, owned from here on; NULL: allocation failed) with
 * up to two extra headers (a NULL name: none). */
static int reply2(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
		  const char *h1, const char *v1, const char *h2, const char *v2)
{
	if (!text)
		return reply_oom(c);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	if (h1)
		MHD_add_response_header(r, h1, v1);
	if (h2)
		MHD_add_response_header(r, h2, v2);
	int rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static int reply(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
		 const char *hname, const char *hval)
{
	return reply2(c, status, ctype, text, hname, hval, NULL, NULL);
}

static int reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return reply(c, status, "application/json", s, NULL, NULL);
}

/* {"error": {"message", "type", "param"}}: the OpenAI error shape. */
static int reply_error(struct MHD_Connection *c, unsigned status, const char *param,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int reply_error(struct MHD_Connection *c, unsigned status, const char *param,
		       const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:{s:s,s:s,s:s?}}", "error", "message", msg, "type",
			      status == 401 ? "authentication_error" : status >= 500 ?
			      "server_error" : "invalid_request_error", "param", param);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (status == 503)
		return reply(c, status, "application/json", s, "Retry-After", "1");
	if (status == 401)
		return reply(c, status, "application/json", s, "WWW-Authenticate", "Bearer");
	return reply(c, status, "application/json", s, NULL, NULL);
}

static int authorized(gw_t *g, struct MHD_Connection *c)
{
	if (g->cfg->http_ntokens == 0)
		return 1;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (uint32_t i = 0; i < g->cfg->http_ntokens; i++)
		if (!strcmp(h + 7, g->cfg->http_tokens[i]))
			return 1;
	return 0;
}

/* Whether the record at idx is still the session of generation gen (one
 * test for the whole program: fg_session_valid). */
static int still(gw_t *g, uint32_t idx, uint32_t gen)
{
	return fg_session_valid(g->r, FG_HANDLE(idx, gen), NULL);
}

/* ---- Idempotency-Key -------------------------------------------------
 * A client that retries POST /v1/sessions with the same Idempotency-Key
 * gets the session it created before, not a second one, even when the
 * gateway died between creating it and answering. */

static uint64_t key_hash(const char *k, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
	return h ? h : 1;
}

static int key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && !strchr("-_.:", k[i]))
			return 0;
	return 1;
}

/* From a snapshot of session h: whether its first record is a KEY equal
 * to k (with k NULL: any KEY, copied into kbuf/kn); and, with p, whether
 * it was made from the same request (workflow and prompt) into *same.
 * 0 if so, -1 if not or if h is gone. */
static int snap_key(gw_t *g, fg_handle_t h, const char *k, size_t n, char *kbuf, size_t *kn,
		    const fg_submit_t *p, int *same)
{
	fg_snap_t sn;
	if (fg_session_snapshot(g->r, h, &sn, 1) < 0)
		return -1;
	uint32_t off = 0;
	fg_rec_t r;
	int rc = -1;
	if (fg_rec_next(sn.log, sn.len, &off, &r) == 1 && r.type == FG_REC_KEY) {
		if (k)
			rc = r.n == n && !memcmp(r.p, k, n) ? 0 : -1;
		else if (r.n <= 128) {
			memcpy(kbuf, r.p, r.n);
			*kn = r.n;
			rc = 0;
		}
	}
	if (rc == 0 && p) {
		*same = 0;
		if (sn.workflow == p->workflow) {
			off = 0;
			while (fg_rec_next(sn.log, sn.len, &off, &r) == 1)
				if (r.type == FG_REC_USER) {
					*same = r.n == strlen(p->prompt) && !memcmp(r.p, p->prompt, r.n);
					break;
				}
		}
	}
	fg_snap_free(&sn);
	return rc;
}

static void idem_insert(gw_t *g, uint64_t hash, uint64_t handle)
{
	for (uint32_t k = 0;; k++) {
		struct idem *e = &g->idem[(hash + k) & (g->idem_cap - 1)];
		if (!e->hash) {
			e->hash = hash;
			e->handle = handle;
			g->idem_n++;
			return;
		}
	}
}

/* From the region: every live session that carries a key. */
static void idem_rebuild(gw_t *g)
{
	memset(g->idem, 0, sizeof(*g->idem) * g->idem_cap);
	g->idem_n = 0;
	for (uint32_t i = 0; i < g->r->hdr->capacity; i++) {
		fg_handle_t h = fg_session_handle(g->r, i);
		char k[128];
		size_t kn;
		if (!fg_session_valid(g->r, h, NULL) || snap_key(g, h, NULL, 0, k, &kn, NULL, NULL) < 0)
			continue;
		idem_insert(g, key_hash(k, kn), h);
	}
}

/* The live session created with key k, or 0. */
static uint64_t idem_find(gw_t *g, const char *k, size_t n)
{
	uint64_t hash = key_hash(k, n);
	for (uint32_t j = 0; g->idem && j < g->idem_cap; j++) {
		struct idem *e = &g->idem[(hash + j) & (g->idem_cap - 1)];
		if (!e->hash)
			return 0;
		if (e->hash != hash)
			continue;
		if (snap_key(g, e->handle, k, n, NULL, NULL, NULL, NULL) == 0)
			return e->handle;   /* (a purged or reused one is skipped) */
	}
	return 0;
}

static void idem_add(gw_t *g, const char *k, size_t n, uint64_t handle)
{
	if (!g->idem)
		return;
	if ((g->idem_n + 1) * 4 > g->idem_cap * 3)
		idem_rebuild(g);   /* drops the purged; the table holds 2x capacity */
	idem_insert(g, key_hash(k, n), handle);
}

/* Whether session h was made from the same request: workflow and prompt. */
static int same_request(gw_t *g, fg_handle_t h, const char *key, const fg_submit_t *p)
{
	int same = 0;
	if (snap_key(g, h, key, strlen(key), NULL, NULL, p, &same) < 0)
		return 0;
	return same;
}

/* A body that fg_gwreq_*() refused: 400 with its message, or 503. */
static int refuse(struct MHD_Connection *c, fg_gwreq_t *q)
{
	fg_gwreq_free(q);
	return q->status == 503 ? reply_oom(c) : reply_error(c, 400, q->param, "%s", q->error);
}

static int post_session(gw_t *g, struct MHD_Connection *c, body_t *b)
{
	fg_gwreq_t q;
	if (fg_gwreq_session(b->p, b->n, g->cfg, &q) < 0)
		return refuse(c, &q);
	int rc;
	fg_submit_t p = q.sub;
	fg_handle_t h;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	if (key && !key_ok(key)) {
		fg_gwreq_free(&q);
		return reply_error(c, 400, "Idempotency-Key", "Idempotency-Key must be 1 to 128 "
				   "letters, digits, '-', '_', '.' or ':'");
	}
	pthread_mutex_lock(&g->submit_lock);
	uint64_t old = key ? idem_find(g, key, strlen(key)) : 0;
	int e = 0;
	if (!old) {
		p.key = key;
		p.keylen = key ? strlen(key) : 0;
		e = fg_session_submit(&g->a, &p, &h);
		if (e == 0 && key)
			idem_add(g, key, strlen(key), h);
	}
	pthread_mutex_unlock(&g->submit_lock);
	if (old) {
		char id[17], loc[64];
		fg_handle_format(old, id);
		if (!same_request(g, old, key, &p)) {
			rc = reply_error(c, 409, "Idempotency-Key", "Idempotency-Key %.128s was used "
					 "for a different request (session %s)", key, id);
		} else {
			snprintf(loc, sizeof(loc), "/v1/sessions/%s", id);
			char *s = json_dumps(json_pack("{s:s}", "id", id), JSON_COMPACT);
			rc = reply2(c, 200, "application/json", s, "Location", loc,
				    "Idempotent-Replayed", "true");
		}
	} else if (e == -ENOSPC || e == -EBUSY) {
		rc = reply_error(c, 503, NULL, "the session table is full (%u sessions)",
				 g->r->hdr->capacity);
	} else if (e == -E2BIG) {
		rc = reply_error(c, 400, "prompt", "prompt and system do not fit a session's "
				 "checkpoint (%u bytes)", g->r->hdr->log_bytes);
	} else if (e < 0) {
		rc = reply_error(c, 500, NULL, "submit failed: %s", strerror(-e));
	} else {
		char id[17], loc[64];
		fg_handle_format(h, id);
		snprintf(loc, sizeof(loc), "/v1/sessions/%s", id);
		char *s = json_dumps(json_pack("{s:s}", "id", id), JSON_COMPACT);
		rc = reply(c, 201, "application/json", s, "Location", loc);
	}
	fg_gwreq_free(&q);
	return rc;
}

/* Parses an id; returns its index, or UINT32_MAX if no such session. */
static uint32_t lookup(gw_t *g, const char *id)
{
	fg_handle_t h;
	if (fg_handle_parse(id, &h) < 0)
		return UINT32_MAX;
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= g->r->hdr->capacity || !still(g, idx, FG_HANDLE_GEN(h)))
		return UINT32_MAX;
	return idx;
}

static int list_sessions(gw_t *g, struct MHD_Connection *c)
{
	const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
	const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *cur = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
	int want = -1;
	long limit = 100;
	unsigned long start = 0;
	char *end;
	if (st && (want = fg_state_parse(st)) < 0)
		return reply_error(c, 400, "state", "state \"%.50s\" is not one of queued, running, "
				   "waiting, done, failed, cancelled", st);
	if (lim && ((limit = strtol(lim, &end, 10)) < 1 || limit > 1000 || *end))
		return reply_error(c, 400, "limit", "limit must be an integer in [1, 1000]");
	if (cur && (!*cur || (start = strtoul(cur, &end, 16), *end) || start > g->r->hdr->capacity))
		return reply_error(c, 400, "cursor", "cursor is not one this API returned");
	json_t *arr = json_array();
	uint32_t i;
	for (i = (uint32_t)start; i < g->r->hdr->capacity && json_array_size(arr) < (size_t)limit; i++) {
		uint32_t s = FG_CTL_STATE(atomic_load(&fg_sess(g->r, i)->ctl));
		if (s == FG_S_FREE || s == FG_S_ALLOCATING || (want >= 0 && (int)s != want))
			continue;
		json_t *x = fg_inspect_session(g->r, fg_session_handle(g->r, i), 0, g->cfg);
		if (x)   /* (purged while it was read: left out) */
			json_array_append_new(arr, x);
	}
	json_t *j = json_pack("{s:o}", "data", arr);
	if (i < g->r->hdr->capacity) {
		char next[16];
		snprintf(next, sizeof(next), "%x", i);
		json_object_set_new(j, "next_cursor", json_string(next));
	} else {
		json_object_set_new(j, "next_cursor", json_null());
	}
	return reply_json(c, 200, j);
}

static int workers(gw_t *g, struct MHD_Connection *c)
{
	json_t *arr = json_array();
	uint32_t n = atomic_load(&g->r->hdr->cfg_workers);
	for (uint32_t i = 0; i < n && i < g->r->hdr->nworker_slots; i++) {
		fg_slot_t *s = fg_slot(g->r, i);
		static const char *const st[] = { "free", "starting", "ready", "draining", "dead",
						  "disabled", "recovering" };
		uint32_t k = atomic_load(&s->state);
		json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:i,s:I,s:I,s:i}", "slot", (int)i,
			"pid", (int)atomic_load(&s->pid), "state", k < 7 ? st[k] : "invalid",
			"inflight", (int)atomic_load(&s->inflight),
			"claims", (json_int_t)atomic_load(&s->claims),
			"done", (json_int_t)atomic_load(&s->done),
			"restarts", (int)atomic_load(&s->restarts)));
	}
	return reply_json(c, 200, json_pack("{s:o}", "data", arr));
}

static int workers_alive(gw_t *g)
{
	int n = 0;
	uint32_t w = atomic_load(&g->r->hdr->cfg_workers);
	for (uint32_t i = 0; i < w && i < g->r->hdr->nworker_slots; i++)
		n += atomic_load(&fg_slot(g->r, i)->state) == FG_SLOT_READY;
	return n;
}

static void mput(char **b, size_t *n, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void mput(char **b, size_t *n, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	while (*b) {
		va_start(ap, fmt);
		int k = vsnprintf(*b + *n, *cap - *n, fmt, ap);
		va_end(ap);
		if (k >= 0 && (size_t)k < *cap - *n) {
			*n += (size_t)k;
			return;
		}
		char *nb = realloc(*b, *cap * 2);
		if (!nb) {   /* out of memory: the caller sees *b == NULL */
			free(*b);
			*b = NULL;
			return;
		}
		*b = nb;
		*cap *= 2;
	}
}

/* Prometheus text exposition, from one pass over the region. */
static int metrics(gw_t *g, struct MHD_Connection *c)
{
	fg_region_t *r = g->r;
	uint64_t by[FG_S_NSTATES] = { 0 };
	static const double bounds[] = { 0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120 };
	uint64_t hist[9] = { 0 }, hn = 0;
	double hsum = 0;
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint32_t st = FG_CTL_STATE(atomic_load_explicit(&s->ctl, memory_order_relaxed));
		if (st < FG_S_NSTATES)
			by[st]++;
		if (FG_S_FINISHED(st)) {
			uint64_t f = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
			if (f > s->created_ns) {
				double d = (f - s->created_ns) / 1e9;
				hn++;
				hsum += d;
				for (int k = 0; k < 8; k++)
					if (d <= bounds[k])
						hist[k]++;
			}
		}
	}
	uint64_t steps = 0, calls = 0, retries = 0, tp = 0, tc = 0, restarts = 0;
	for (uint32_t i = 0; i < r->hdr->nslots; i++) {
		fg_slot_t *s = fg_slot(r, i);
		steps += atomic_load(&s->steps);
		calls += atomic_load(&s->llm_calls);
		retries += atomic_load(&s->llm_retries);
		tp += atomic_load(&s->tokens_prompt);
		tc += atomic_load(&s->tokens_completion);
		restarts += atomic_load(&s->restarts);
	}
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	if (b)
		b[0] = '\0';
	mput(&b, &n, &cap, "# HELP forge_sessions Sessions in the table by state.\n"
	     "# TYPE forge_sessions gauge\n");
	for (int k = 0; k < FG_S_NSTATES; k++)
		mput(&b, &n, &cap, "forge_sessions{state=\"%s\"} %llu\n", fg_state_name((uint32_t)k),
		     (unsigned long long)by[k]);
	mput(&b, &n, &cap, "# HELP forge_steps_total Checkpoints committed.\n# TYPE forge_steps_total counter\n"
	     "forge_steps_total %llu\n", (unsigned long long)steps);
	mput(&b, &n, &cap, "# HELP forge_llm_calls_total LLM replies received.\n# TYPE forge_llm_calls_total counter\n"
	     "forge_llm_calls_total %llu\n", (unsigned long long)calls);
	mput(&b, &n, &cap, "# HELP forge_llm_retries_total LLM requests retried.\n# TYPE forge_llm_retries_total counter\n"
	     "forge_llm_retries_total %llu\n", (unsigned long long)retries);
	mput(&b, &n, &cap, "# HELP forge_tokens_total Tokens reported by providers.\n# TYPE forge_tokens_total counter\n"
	     "forge_tokens_total{kind=\"prompt\"} %llu\nforge_tokens_total{kind=\"completion\"} %llu\n",
	     (unsigned long long)tp, (unsigned long long)tc);
	mput(&b, &n, &cap, "# HELP forge_worker_restarts_total Children restarted after a death.\n"
	     "# TYPE forge_worker_restarts_total counter\nforge_worker_restarts_total %llu\n",
	     (unsigned long long)restarts);
	mput(&b, &n, &cap, "# HELP forge_workers_ready Workers running their loop.\n"
	     "# TYPE forge_workers_ready gauge\nforge_workers_ready %d\n", workers_alive(g));
	mput(&b, &n, &cap, "# HELP forge_ring_depth Hints waiting in each worker's ring.\n"
	     "# TYPE forge_ring_depth gauge\n");
	for (uint32_t i = 0; i < atomic_load(&r->hdr->cfg_workers) && i < r->hdr->nrings; i++)
		mput(&b, &n, &cap, "forge_ring_depth{ring=\"%u\"} %llu\n", i,
		     (unsigned long long)fg_ring_depth(fg_ring_ref(r, i)));
	mput(&b, &n, &cap, "# HELP forge_session_duration_seconds Submission to end, finished sessions.\n"
	     "# TYPE forge_session_duration_seconds histogram\n");
	for (int k = 0; k < 8; k++)
		mput(&b, &n, &cap, "forge_session_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[k],
		     (unsigned long long)hist[k]);
	mput(&b, &n, &cap, "forge_session_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	     "forge_session_duration_seconds_sum %.6f\nforge_session_duration_seconds_count %llu\n",
	     (unsigned long long)hn, hsum, (unsigned long long)hn);
	return reply(c, 200, "text/plain; version=0.0.4", b, NULL, NULL);
}

static int events(gw_t *g, struct MHD_Connection *c, const char *id);
static void sse_free(void *cls);

/* ---- POST /v1/chat/completions --------------------------------------------
 * OpenAI-compatible: "model" names a workflow ("forge/react",
 * "forge/plan_execute", "forge/map_reduce"; "forge/react@PROVIDER" picks the
 * provider), the last user message is the task and the first system message
 * its system prompt.  forge runs the whole agent session server-side and
 * answers as a chat completion, or as chat.completion.chunk events when
 * "stream" is true.  The session is an ordinary one: it survives crashes and
 * can be followed at /v1/sessions/{id}. */
typedef struct chat {
	gw_t *g;
	struct MHD_Connection *c;
	uint32_t idx, gen;
	char id[17];
	char model[80];
	int sent_role, done;
	uint64_t deadline_ns;
} chat_t;

/* SSE keep-alive comments: often enough that http.idle_timeout_s never
 * closes a quiet stream. */
static uint64_t keepalive_ns(const gw_t *g)
{
	uint64_t half = (uint64_t)g->cfg->http_idle_timeout_s * 500000000ull;
	return half < 15000000000ull ? half : 15000000000ull;
}

/* Waits (in this connection's thread) until the session ended, the
 * deadline passed or until_ns came; 1 if it ended, -1 if the client left. */
static int chat_wait(chat_t *ch, int step_ms, uint64_t until_ns)
{
	for (;;) {
		uint64_t c;
		if (!fg_session_valid(ch->g->r, FG_HANDLE(ch->idx, ch->gen), &c) ||
		    FG_S_FINISHED(FG_CTL_STATE(c)))
			return 1;   /* ended, or gone (purged) */
		uint64_t now = fg_now_ns();
		if (now >= ch->deadline_ns || now >= until_ns)
			return 0;
		if (step_ms == 0)
			return 0;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(ch->c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci) {
			struct pollfd p = { ci->connect_fd, POLLRDHUP, 0 };
			if (poll(&p, 1, step_ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
				return -1;   /* the client left */
		} else {
			usleep((useconds_t)step_ms * 1000);
		}
	}
}

static json_t *chat_result(chat_t *ch, const char **err)
{
	json_t *j = fg_inspect_session(ch->g->r, FG_HANDLE(ch->idx, ch->gen), 0, ch->g->cfg);
	*err = NULL;
	if (!j) {
		*err = "the session is gone (purged)";
		return json_object();
	}
	const char *state = json_string_value(json_object_get(j, "state"));
	if (!state || strcmp(state, "done") != 0)
		*err = json_string_value(json_object_get(j, "error"));
	if (!state || strcmp(state, "done") != 0) {
		if (!*err)
			*err = state && !strcmp(state, "cancelled") ? "the session was cancelled"
							      : "the session did not finish in time";
	}
	return j;
}

static ssize_t chat_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	chat_t *ch = cls;
	long long created = (long long)time(NULL);
	if (ch->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (!ch->sent_role) {
		ch->sent_role = 1;
		json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:n}]}", "id", ch->id,
			"object", "chat.completion.chunk", "created", (json_int_t)created, "model",
			ch->model, "choices", "index", 0, "delta", "role", "assistant", "content", "",
			"finish_reason");
		char *d = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!d)
			return MHD_CONTENT_READER_END_WITH_ERROR;   /* out of memory */
		int n = snprintf(buf, max, "data: %s\n\n", d);
		free(d);
		return n;
	}
	int w = chat_wait(ch, 20, fg_now_ns() + keepalive_ns(ch->g));
	if (w < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (w == 0 && fg_now_ns() < ch->deadline_ns)
		return snprintf(buf, max, ": keep-alive\n\n");
	const char *err;
	json_t *res = chat_result(ch, &err);
	json_t *delta = err ? json_pack("{s:s}", "content", "") :
		json_pack("{s:O}", "content", json_object_get(res, "result"));
	json_t *usage = json_object_get(res, "usage");
	json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
	json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
	json_t *c1 = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n}]}", "id", ch->id, "object",
		"chat.completion.chunk", "created", (json_int_t)created, "model", ch->model, "choices",
		"index", 0, "delta", delta, "finish_reason");
	json_t *c2 = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{},s:s}],s:{s:I,s:I,s:I}}", "id", ch->id,
		"object", "chat.completion.chunk", "created", (json_int_t)created, "model", ch->model,
		"choices", "index", 0, "delta", "finish_reason", err ? "error" : "stop",
		"usage", "prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct);
	json_t *e1 = err ? json_pack("{s:{s:s,s:s}}", "error", "message", err, "type",
				     "server_error") : NULL;
	char *d1 = json_dumps(err ? e1 : c1, JSON_COMPACT);
	char *d2 = json_dumps(c2, JSON_COMPACT);
	int n = d1 && d2 ? snprintf(buf, max, "data: %s\n\ndata: %s\n\ndata: [DONE]\n\n", d1, d2)
			 : -1;
	free(d1);
	free(d2);
	json_decref(e1);
	json_decref(c1);
	json_decref(c2);
	json_decref(res);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;   /* out of memory */
	ch->done = 1;
	return n < (int)max ? n : (ssize_t)max;
}

static int chat_completions(gw_t *g, struct MHD_Connection *c, body_t *b)
{
	fg_gwreq_t q;
	if (fg_gwreq_chat(b->p, b->n, g->cfg, &q) < 0)
		return refuse(c, &q);
	int rc;
	fg_submit_t p = q.sub;
	const char *model = q.model;
	fg_handle_t h;
	pthread_mutex_lock(&g->submit_lock);
	int e = fg_session_submit(&g->a, &p, &h);
	pthread_mutex_unlock(&g->submit_lock);
	if (e == -ENOSPC || e == -EBUSY) {
		rc = reply_error(c, 503, NULL, "the session table is full");
		goto out;
	}
	if (e < 0) {
		rc = reply_error(c, 400, "messages", "the conversation does not fit a session");
		goto out;
	}
	chat_t *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		/* The session is submitted and runs; its id is lost to this
		 * client, which gets a 503 (the session shows in GET /v1/sessions). */
		rc = reply_oom(c);
		goto out;
	}
	ch->g = g;
	ch->c = c;
	ch->idx = FG_HANDLE_IDX(h);
	ch->gen = FG_HANDLE_GEN(h);
	fg_handle_format(h, ch->id);
	snprintf(ch->model, sizeof(ch->model), "%s", model);
	ch->deadline_ns = fg_now_ns() + 300ull * 1000000000ull;
	if (q.stream) {
		struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
			chat_stream, ch, sse_free);
		if (!r) {
			sse_free(ch);
			rc = reply_oom(c);
			goto out;
		}
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		MHD_add_response_header(r, "X-Forge-Session", ch->id);
		rc = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		goto out;
	}
	int w = chat_wait(ch, 20, UINT64_MAX);
	const char *err;
	json_t *res = chat_result(ch, &err);
	if (w <= 0 || err) {
		rc = reply_error(c, w < 0 ? 499 : 502, NULL, "session %s: %s", ch->id, err);
	} else {
		json_t *usage = json_object_get(res, "usage");
		json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
		rc = reply_json(c, 200, json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:O},s:s}],s:{s:I,s:I,s:I}}",
			"id", ch->id, "object", "chat.completion", "created", (json_int_t)time(NULL),
			"model", model, "choices", "index", 0, "message", "role", "assistant", "content",
			json_object_get(res, "result"), "finish_reason", "stop", "usage",
			"prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct));
	}
	json_decref(res);
	free(ch);
out:
	fg_gwreq_free(&q);
	return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_n, void **ptr)
{
	(void)version;
	gw_t *g = cls;
	body_t *b = *ptr;
	int post = !strcmp(method, "POST");
	if (!b) {   /* first call: headers only */
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;   /* out of memory: the connection is closed */
		*ptr = b;
		if (post) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
			if (cl && strtoull(cl, NULL, 10) > g->cfg->http_max_body)
				b->too_large = 1;
			return MHD_YES;
		}
	}
	if (post && *upload_n) {
		if (!b->too_large && b->n + *upload_n <= g->cfg->http_max_body) {
			char *np = realloc(b->p, b->n + *upload_n + 1);
			if (!np)
				return MHD_NO;   /* out of memory: closed; b freed by MHD's callback */
			b->p = np;
			memcpy(b->p + b->n, upload, *upload_n);
			b->n += *upload_n;
			b->p[b->n] = '\0';
		} else {
			b->too_large = 1;
		}
		*upload_n = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/healthz"))
		return reply(c, 200, "text/plain", strdup("ok\n"), NULL, NULL);
	if (!authorized(g, c))
		return reply_error(c, 401, NULL, "a valid bearer token is required");
	if (b->too_large)
		return reply_error(c, 413, NULL, "request body larger than %u bytes",
				   g->cfg->http_max_body);
	int get = !strcmp(method, "GET");
	if (!strcmp(url, "/readyz")) {
		uint32_t st = atomic_load(&g->r->hdr->sup_state);
		int ok = (st == FG_SUP_RUNNING || st == FG_SUP_DEGRADED) && workers_alive(g) > 0;
		return ok ? reply(c, 200, "text/plain", strdup("ready\n"), NULL, NULL)
			  : reply_error(c, 503, NULL, "not ready: workers are starting or stopping");
	}
	if (!strcmp(url, "/metrics"))
		return get ? metrics(g, c) : reply_error(c, 405, NULL, "use GET");
	if (!strcmp(url, "/v1/workers"))
		return get ? workers(g, c) : reply_error(c, 405, NULL, "use GET");
	if (!strcmp(url, "/v1/chat/completions"))
		return post ? chat_completions(g, c, b) : reply_error(c, 405, NULL, "use POST");
	if (!strcmp(url, "/v1/sessions")) {
		if (post)
			return post_session(g, c, b);
		if (get)
			return list_sessions(g, c);
		return reply_error(c, 405, NULL, "use GET or POST");
	}
	if (!strncmp(url, "/v1/sessions/", 13) && strchr(url + 13, '/') &&
	    !strcmp(strchr(url + 13, '/'), "/events")) {
		if (!get)
			return reply_error(c, 405, NULL, "use GET");
		char id[64];
		snprintf(id, sizeof(id), "%.*s", (int)(strchr(url + 13, '/') - (url + 13)), url + 13);
		return events(g, c, id);
	}
	if (!strncmp(url, "/v1/sessions/", 13) && !strchr(url + 13, '/')) {
		if (!strcmp(method, "DELETE")) {
			fg_handle_t h;
			uint32_t st;
			int e = -ENOENT;
			if (fg_handle_parse(url + 13, &h) == 0) {
				/* the actor is this process's one slot: one thread at a time */
				pthread_mutex_lock(&g->submit_lock);
				e = fg_session_cancel(g->r, &g->a, h, &st);
				pthread_mutex_unlock(&g->submit_lock);
			}
			if (e == -ENOENT)
				return reply_error(c, 404, "id", "no session %.40s", url + 13);
			if (e == -EALREADY)
				return reply_error(c, 409, NULL, "session %.40s already ended (%s)", url + 13,
						   fg_state_name(st));
			/* a running one ends within milliseconds: wait for it briefly */
			uint64_t cw;
			for (int i = 0; i < 200 && fg_session_valid(g->r, h, &cw) &&
					FG_CTL_STATE(cw) == FG_S_RUNNING; i++)
				usleep(1000);
			json_t *j = fg_inspect_session(g->r, h, 0, g->cfg);
			if (!j)
				return reply_error(c, 404, "id", "no session %.40s", url + 13);
			return reply_json(c, 200, j);
		}
		if (!get)
			return reply_error(c, 405, NULL, "use GET or DELETE");
		fg_handle_t h;
		json_t *j = fg_handle_parse(url + 13, &h) < 0 ? NULL
			    : fg_inspect_session(g->r, h, 1, g->cfg);
		if (!j)   /* no such session, or purged while it was read */
			return reply_error(c, 404, "id", "no session %.40s", url + 13);
		return reply_json(c, 200, j);
	}
	return reply_error(c, 404, NULL, "no such endpoint: %.100s", url);
}

/* ---- Server-Sent Events -------------------------------------------------
 * GET /v1/sessions/{id}/events: one event per committed conversation record
 * (id: its ordinal, from 1), then "event: end" with the final state.  The
 * events come from the session's checkpoint in the region, so a client that
 * reconnects with Last-Event-ID — to this gateway or to a restarted one —
 * gets exactly the events after that id.  Each stream has its own thread
 * (libmicrohttpd's thread-per-connection mode), so a thousand subscribers
 * do not hold other requests back; a client that went away is noticed
 * within 20 ms (POLLRDHUP on its socket). */
typedef struct sse {
	gw_t *g;
	struct MHD_Connection *c;
	uint32_t idx, gen;
	uint32_t next;          /* ordinal of the next event to send (from 1) */
	uint32_t synth_step;
	int ended;
	uint64_t last_write_ns;
} sse_t;

static size_t ev_put(char *buf, size_t max, size_t n, uint32_t id, const char *event, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	if (!d)
		return n;   /* out of memory: next call */
	int k = snprintf(buf + n, max - n, "id: %u\nevent: %s\ndata: %s\n\n", id, event, d);
	free(d);
	if (k < 0 || (size_t)k >= max - n)
		return n;   /* does not fit: next call */
	return n + (size_t)k;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	sse_t *e = cls;
	gw_t *g = e->g;
	for (;;) {
		if (e->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* one snapshot, re-validated after the copy: a record purged and
		 * reused meanwhile ends the stream, never shows another session */
		fg_snap_t sn;
		if (fg_session_snapshot(g->r, FG_HANDLE(e->idx, e->gen), &sn, 1) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;   /* purged or reused */
		uint32_t st = FG_CTL_STATE(sn.ctl);
		size_t n = 0;
		if (sn.workflow == FG_WF_SYNTHETIC) {
			while (e->synth_step < sn.st.step && e->next <= sn.st.step) {
				uint32_t k = e->next;
				size_t m = ev_put(buf, max, n, k, "step", json_pack("{s:i}", "step", (int)k));
				if (m == n)
					break;
				n = m;
				e->next++;
				e->synth_step = k;
			}
		} else {
			json_t *msgs = fg_conv_json(sn.log, sn.len, NULL, NULL);
			size_t total = json_array_size(msgs);
			while (e->next <= total) {
				size_t m = ev_put(buf, max, n, e->next, "message",
						  json_incref(json_array_get(msgs, e->next - 1)));
				if (m == n)
					break;
				n = m;
				e->next++;
			}
			json_decref(msgs);
		}
		if (n == 0 && FG_S_FINISHED(st)) {
			json_t *fin = fg_inspect_snap(&sn, 0, g->cfg);
			if (fin) {
				n = ev_put(buf, max, 0, e->next, "end", fin);
				e->ended = 1;
			}
		}
		fg_snap_free(&sn);
		uint64_t now = fg_now_ns();
		if (n == 0 && now - e->last_write_ns > keepalive_ns(g)) {
			n = (size_t)snprintf(buf, max, ": keep-alive\n\n");
		}
		if (n > 0) {
			e->last_write_ns = now;
			return (ssize_t)n;
		}
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(e->c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci) {
			struct pollfd p = { ci->connect_fd, POLLRDHUP | POLLIN, 0 };
			if (poll(&p, 1, 20) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
				return MHD_CONTENT_READER_END_WITH_ERROR;   /* the client left */
		} else {
			usleep(20000);
		}
	}
}

static void sse_free(void *cls)
{
	free(cls);
}


static int events(gw_t *g, struct MHD_Connection *c, const char *id)
{
	uint32_t idx = lookup(g, id);
	if (idx == UINT32_MAX)
		return reply_error(c, 404, "id", "no session %.40s", id);
	sse_t *e = calloc(1, sizeof(*e));
	if (!e)
		return reply_oom(c);
	e->g = g;
	e->c = c;
	e->idx = idx;
	fg_handle_t h;
	fg_handle_parse(id, &h);
	e->gen = FG_HANDLE_GEN(h);
	e->next = 1;
	e->last_write_ns = fg_now_ns();
	const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	if (last) {
		char *end;
		unsigned long v = strtoul(last, &end, 10);
		if (*last && !*end && v < UINT32_MAX)
			e->next = (uint32_t)v + 1;
	}
	e->synth_step = e->next - 1;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read,
								   e, sse_free);
	if (!r) {
		sse_free(e);
		return reply_oom(c);
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	int rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	body_t *b = *ptr;
	if (b) {
		free(b->p);
		free(b);
	}
	*ptr = NULL;
}

int fg_gateway_main(fg_region_t *r, uint32_t slot, const fg_config_t *cfg)
{
	gw_t g = { .r = r, .cfg = cfg };
	json_set_alloc_funcs(fg_gwreq_json_malloc, free);
	pthread_mutex_init(&g.submit_lock, NULL);
	g.idem_cap = 64;
	while (g.idem_cap < 2 * r->hdr->capacity)
		g.idem_cap *= 2;
	g.idem = calloc(g.idem_cap, sizeof(*g.idem));
	if (!g.idem)
		log_warnx("gateway: out of memory for the Idempotency-Key index: keys are ignored");
	else
		idem_rebuild(&g);
	fg_actor_init(&g.a, r, slot);
	fg_slot_t *me = g.a.self;
	atomic_store(&me->starttime, fg_proc_starttime(getpid()));

	char host[128];
	snprintf(host, sizeof(host), "%s", cfg->http_listen);
	char *colon = strrchr(host, ':');
	*colon = '\0';
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	int e = getaddrinfo(host[0] == '[' ? host + 1 : host, colon + 1, &hints, &ai);
	if (e != 0) {
		log_errx("gateway: http.listen %s: %s", cfg->http_listen, gai_strerror(e));
		return FG_EXIT_FATAL;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);   /* MHD's threads inherit it */
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			MHD_USE_POLL | MHD_USE_ERROR_LOG |
			(ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, handler, &g,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_idle_timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_conns_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->http_max_header,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d) {
		log_errx("gateway: cannot listen on %s (in use, or not an address of this "
			 "host): not restarting it", cfg->http_listen);
		return FG_EXIT_FATAL;
	}
	uint32_t expect = FG_SLOT_STARTING;
	atomic_store(&me->heartbeat_ns, fg_coarse_ns());
	atomic_compare_exchange_strong(&me->state, &expect, FG_SLOT_READY);
	fg_crash_arm_if("gateway", g.a.gen);
	log_info("gateway listening on %s", cfg->http_listen);
	for (;;) {
		struct timespec ts = { 0, (long)cfg->heartbeat_ms * 1000000L / 2 };
		int sig = sigtimedwait(&mask, NULL, &ts);
		atomic_store_explicit(&me->heartbeat_ns, fg_coarse_ns(), memory_order_relaxed);
		if (sig == SIGTERM || sig == SIGINT || atomic_load(&r->hdr->draining))
			break;
	}
	atomic_store(&me->state, FG_SLOT_DRAINING);
	MHD_stop_daemon(d);
	log_info("gateway stopped");
	return 0;
}
