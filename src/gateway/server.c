/*
 * server.c — the gateway process (see include/forge/gateway.h): the HTTP
 * server, the route table, replies, and its main loop.
 *
 *   POST   /v1/sessions            {workflow?, prompt, system?, model?, max_steps?}
 *                                  -> 201 {"id"}; 400 naming the field; 413; 503
 *   GET    /v1/sessions/{id}       state, steps, messages, result, usage, error
 *   GET    /v1/sessions?state=&limit=&cursor=
 *   GET    /v1/sessions/{id}/events  Server-Sent Events (Last-Event-ID resume)
 *   DELETE /v1/sessions/{id}       cancel
 *   POST   /v1/sessions/{id}/messages {content} -> 202: a finished react
 *                                  session (a thread) runs again with it
 *   POST   /v1/sessions/{id}/resume   -> 202: a failed session runs again
 *                                  from its last commit
 *   POST   /v1/sessions/{id}/fork  {at?, content?} -> 201: a new session
 *                                  from the first "at" messages of another
 *   POST   /v1/sessions/{id}/approval {decision, reason?, arguments?,
 *                                  answer?, call_id?} -> 202: a person's
 *                                  answer to a call that waits for one
 *   POST   /v1/chat/completions    OpenAI-compatible; model "forge/WORKFLOW[@provider]"
 *   GET    /v1/workers, /metrics (Prometheus text), /healthz, /readyz,
 *          /openapi.json (docs/openapi.json: every route here, described)
 * Bearer-token auth when http.tokens is set (all but /healthz); 404 for
 * unknown paths and sessions, 405 naming the methods a path takes.
 *
 * libmicrohttpd runs a thread per connection (SSE streams wait in theirs);
 * submits
 * go through this process's one registry slot, whose intents and lease
 * table are single-owner, so they are serialized by submit_lock.  The main
 * thread beats the heartbeat and waits for SIGTERM.
 */
#include "forge/gateway.h"
#include "gateway/gw.h"
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

/* Out of memory for a reply: a 503 from static memory, or, when even that
 * cannot be had, MHD_NO, which closes the connection.  Never a crash. */
int reply_oom(struct MHD_Connection *c)
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
int reply2(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
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

int reply(struct MHD_Connection *c, unsigned status, const char *ctype, char *text,
		 const char *hname, const char *hval)
{
	return reply2(c, status, ctype, text, hname, hval, NULL, NULL);
}

int reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return reply(c, status, "application/json", s, NULL, NULL);
}


int reply_error(struct MHD_Connection *c, unsigned status, const char *param,
		       const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* (a request's text cut to a length, "%.40s", may end inside a
	 * character: mended, else the 400 would go out as a 503) */
	json_t *j = json_pack("{s:{s:o,s:s,s:o?}}", "error", "message",
			      fg_json_text(msg, strlen(msg)), "type",
			      status == 401 ? "authentication_error" : status >= 500 ?
			      "server_error" : "invalid_request_error", "param",
			      param ? fg_json_text(param, strlen(param)) : NULL);
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

/* A body that fg_gwreq_*() refused: 400 with its message, or 503. */
int refuse(struct MHD_Connection *c, fg_gwreq_t *q)
{
	fg_gwreq_free(q);
	return q->status == 503 ? reply_oom(c) : reply_error(c, 400, q->param, "%s", q->error);
}

/* SSE keep-alive comments: often enough that http.idle_timeout_s never
 * closes a quiet stream. */
uint64_t keepalive_ns(const gw_t *g)
{
	uint64_t half = (uint64_t)g->cfg->http_idle_timeout_s * 500000000ull;
	return half < 15000000000ull ? half : 15000000000ull;
}

int gw_client_gone(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
		MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd p = { ci ? ci->connect_fd : -1, POLLRDHUP, 0 };
	return ci && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int healthz(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)g;
	(void)b;
	(void)id;
	return reply(c, 200, "text/plain", strdup("ok\n"), NULL, NULL);
}

static int readyz(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	(void)id;
	uint32_t st = atomic_load(&g->r->hdr->sup_state);
	int ok = (st == FG_SUP_RUNNING || st == FG_SUP_DEGRADED) && workers_alive(g) > 0;
	return ok ? reply(c, 200, "text/plain", strdup("ready\n"), NULL, NULL)
		  : reply_error(c, 503, NULL, "not ready: workers are starting or stopping");
}

/* The API: one row a route.  A path may hold one {id} segment; auth 0 is
 * answered without a token.  A known path with another method is 405
 * naming the methods it takes (in this order), an unknown one 404. */
static const struct route {
	const char *method, *path;
	gw_handler_fn fn;
	int auth;
} routes[] = {
	{ "GET",    "/healthz",                 healthz,           0 },
	{ "GET",    "/openapi.json",            gw_openapi,        0 },
	{ "GET",    "/readyz",                  readyz,            1 },
	{ "GET",    "/metrics",                 gw_metrics,        1 },
	{ "GET",    "/v1/workers",              gw_workers,        1 },
	{ "POST",   "/v1/chat/completions",     gw_chat,           1 },
	{ "GET",    "/v1/models",               gw_models,         1 },
	{ "GET",    "/v1/sessions",             gw_list_sessions,  1 },
	{ "POST",   "/v1/sessions",             gw_post_session,   1 },
	{ "POST",   "/v1/sessions/batch",       gw_post_batch,     1 },
	{ "GET",    "/v1/sessions/{id}/events", gw_events,         1 },
	{ "POST",   "/v1/sessions/{id}/messages", gw_post_message, 1 },
	{ "POST",   "/v1/sessions/{id}/resume", gw_resume,         1 },
	{ "POST",   "/v1/sessions/{id}/fork",   gw_fork,           1 },
	{ "POST",   "/v1/sessions/{id}/approval", gw_approval,     1 },
	{ "GET",    "/v1/sessions/{id}",        gw_get_session,    1 },
	{ "DELETE", "/v1/sessions/{id}",        gw_delete_session, 1 },
};

/* Whether url matches pattern; the {id} segment (if any) into id. */
static int route_match(const char *pat, const char *url, char *id, size_t idn)
{
	const char *brace = strchr(pat, '{');
	if (!brace)
		return !strcmp(pat, url);
	size_t pre = (size_t)(brace - pat);
	const char *post = strchr(brace, '}') + 1;
	if (strncmp(pat, url, pre))
		return 0;
	const char *seg = url + pre, *end = strchr(seg, '/');
	size_t n = end ? (size_t)(end - seg) : strlen(seg);
	if (n == 0 || strcmp(end ? end : "", post))
		return 0;
	snprintf(id, idn, "%.*s", (int)n, seg);
	return 1;
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
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (post) {
			if (cl && strtoull(cl, NULL, 10) > g->cfg->http_max_body)
				b->too_large = 1;
			return MHD_YES;
		}
		/* Another method answers at the next call, once the request is
		 * read: a response queued at this one is an "early response",
		 * after which MHD closes the connection (every GET cost its
		 * client a new connection).  One that sends a body (no route
		 * takes one), or says Expect (MHD would answer 100 Continue and
		 * then refuse the response at the next call), is answered now,
		 * and the connection closed. */
		if ((!cl || strtoull(cl, NULL, 10) == 0) &&
		    !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding") &&
		    !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect"))
			return MHD_YES;
	}
	if (post && *upload_n) {
		if (!b->too_large && b->n + *upload_n <= g->cfg->http_max_body) {
			/* doubling: a large body is copied a few times, not once a chunk */
			if (b->n + *upload_n + 1 > b->cap) {
				size_t cap = b->cap ? b->cap : 4096;
				while (cap < b->n + *upload_n + 1)
					cap *= 2;
				char *np = realloc(b->p, cap);
				if (!np)
					return MHD_NO;   /* out of memory: closed; b freed by MHD's callback */
				b->p = np;
				b->cap = cap;
			}
			memcpy(b->p + b->n, upload, *upload_n);
			b->n += *upload_n;
			b->p[b->n] = '\0';
		} else {
			b->too_large = 1;
		}
		*upload_n = 0;
		return MHD_YES;
	}
	/* the route: its path (with one {id} segment at most), then its method */
	char id[64];
	const struct route *rt = NULL;
	int path_known = 0;
	char allowed[64] = "";
	for (size_t k = 0; k < sizeof(routes) / sizeof(routes[0]) && !rt; k++) {
		if (!route_match(routes[k].path, url, id, sizeof(id)))
			continue;
		path_known = 1;
		if (!strcmp(method, routes[k].method)) {
			rt = &routes[k];
			break;
		}
		size_t n = strlen(allowed);
		snprintf(allowed + n, sizeof(allowed) - n, "%s%s", n ? " or " : "", routes[k].method);
	}
	if (rt && !rt->auth)
		return rt->fn(g, c, b, NULL);
	if (!authorized(g, c))
		return reply_error(c, 401, NULL, "a valid bearer token is required");
	if (b->too_large)
		return reply_error(c, 413, NULL, "request body larger than %u bytes "
				   "(http.max_body_bytes)",
				   g->cfg->http_max_body);
	if (!rt && path_known)
		return reply_error(c, 405, NULL, "use %s", allowed);
	if (!rt)
		return reply_error(c, 404, NULL, "no such endpoint: %.100s", url);
	return rt->fn(g, c, b, strchr(rt->path, '{') ? id : NULL);
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
	g.calls_cap = g.idem_cap;
	g.calls = calloc(g.calls_cap, sizeof(*g.calls));
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
