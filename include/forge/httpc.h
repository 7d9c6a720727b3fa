/*
 * http.h — HTTP client requests inside a worker's event loop: libcurl's
 * multi socket API driven by the worker's epoll (sockets) and the loop's
 * own wait timeout (curl's timeouts: fg_http_timeout_ms / fg_http_tick).  Connections are kept alive and reused by the multi
 * handle's connection cache; hundreds of requests run at once per worker.
 *
 * Ownership: the caller allocates an fg_req_t and keeps it until its done
 * callback ran or it was cancelled; the module owns the curl handles.
 */
#ifndef FORGE_HTTP_H
#define FORGE_HTTP_H

#include "forge/llm.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#define FG_EV_HTTP_SOCK  4ull   /* epoll data: (FG_EV_HTTP_SOCK << 32) | fd */

typedef struct fg_req fg_req_t;
typedef void (*fg_req_done_fn)(fg_req_t *q);

struct fg_req {
	/* in */
	void *owner;
	fg_req_done_fn done;
	size_t max_reply;
	int streaming;
	void (*on_text)(void *arg, const char *p, size_t n);   /* streaming: each text piece */
	void *text_arg;
	const char *const *extra_headers;   /* more header lines (NULL-ended), or NULL */
	const char *capture_header;  /* a reply header to keep in captured, or NULL */
	int fresh;                /* a new connection, closed after: libcurl sends
				   * a POST again when the reused connection it
				   * went out on dies before any answer, which a
				   * call that must run once cannot take */
	/* out, valid in done() */
	CURLcode curl_rc;
	long status;
	long retry_after_s;       /* Retry-After header, -1 if none          */
	char errbuf[CURL_ERROR_SIZE];
	char *body;               /* whole reply (not streaming)             */
	size_t n;
	int too_large;
	int oom;                 /* the reply could not be buffered: out of memory */
	fg_llm_stream_t stream;   /* streaming: the parsed chunks so far     */
	char captured[256];       /* capture_header's value ("": none)        */
	char ctype[128];          /* the reply's Content-Type ("": none)       */
	/* private */
	CURL *easy;
	struct curl_slist *hdrs;
	char *reqbody;
	size_t cap;
};

typedef struct fg_http fg_http_t;

/* epfd: the worker's epoll; the module registers its timerfd and sockets. */
fg_http_t *fg_http_new(int epfd);
void fg_http_free(fg_http_t *h);

/*
 * Starts POST url with a JSON body (taken: freed by the module), the
 * Authorization header if key is non-NULL, and the given timeouts.
 * Returns 0 or -1 (q->errbuf says why).
 */
int fg_http_post(fg_http_t *h, fg_req_t *q, const char *url, char *body, size_t n,
		 const char *key, long connect_ms, long total_ms);

/* Starts GET url (no redirects, http and https only). */
int fg_http_get(fg_http_t *h, fg_req_t *q, const char *url, long total_ms);

/*
 * DELETE url with the given headers (NULL-terminated), waited for at most
 * total_ms: outside the event loop (a worker giving up an MCP session as
 * it stops).  Returns the HTTP status, or -1 with errbuf saying why.
 */
long fg_http_delete_sync(const char *url, const char *const *headers, long total_ms,
			 char *errbuf, size_t errlen);

/* Aborts a request; its done callback is not called. */
void fg_http_cancel(fg_http_t *h, fg_req_t *q);

/* Frees a finished request's buffers (after done()). */
void fg_req_reset(fg_req_t *q);

/* Handles one epoll event whose data.u64 carries an FG_EV_HTTP_* tag. */
void fg_http_event(fg_http_t *h, uint64_t data, uint32_t events);

int fg_http_active(const fg_http_t *h);

/* Milliseconds until curl wants to be called back (at most cap_ms; cap_ms
 * if it does not); and the call itself, which does nothing if not due. */
int  fg_http_timeout_ms(const fg_http_t *h, int cap_ms);
void fg_http_tick(fg_http_t *h);

#endif
