/*
 * http.c — see include/forge/httpc.h.  The glue follows libcurl's
 * multi-uv/ephiperfifo examples: curl tells us which sockets to watch
 * (socket callback -> epoll_ctl) and when to call it back (timer callback
 * -> timerfd); we tell curl what happened (curl_multi_socket_action) and
 * then collect finished transfers (curl_multi_info_read).
 */
#include "forge/httpc.h"
#include "forge/log.h"
#include "forge/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

struct fg_http {
	CURLM *multi;
	int epfd;
	uint64_t due_ns;        /* curl's timeout, 0 if none (no syscall to set it) */
	int running;
	CURL **pool;            /* idle easy handles, reused */
	int npool, cappool;
};

static void collect(fg_http_t *h);

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	fg_http_t *h = userp;
	struct epoll_event ev = { 0 };
	ev.data.u64 = (FG_EV_HTTP_SOCK << 32) | (uint32_t)s;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!socketp) {
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
			epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
		curl_multi_assign(h->multi, s, (void *)1);
	} else {
		epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
	}
	return 0;
}

/* curl calls this very often: keep it to a store; the worker's loop reads
 * the deadline (fg_http_timeout_ms) and calls fg_http_tick when it is due.
 * (A timerfd_settime per call was 13% of a worker's time.) */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	fg_http_t *h = userp;
	h->due_ns = timeout_ms < 0 ? 0 : fg_now_ns() + (uint64_t)timeout_ms * 1000000u;
	return 0;
}

int fg_http_timeout_ms(const fg_http_t *h, int cap_ms)
{
	if (!h->due_ns)
		return cap_ms;
	uint64_t now = fg_now_ns();
	if (h->due_ns <= now)
		return 0;
	uint64_t ms = (h->due_ns - now + 999999) / 1000000;
	return cap_ms >= 0 && ms > (uint64_t)cap_ms ? cap_ms : (int)ms;
}

void fg_http_tick(fg_http_t *h)
{
	if (!h->due_ns || h->due_ns > fg_now_ns())
		return;
	int still;
	h->due_ns = 0;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	collect(h);
}

fg_http_t *fg_http_new(int epfd)
{
	fg_http_t *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->epfd = epfd;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 1024L);
	return h;
}

void fg_http_free(fg_http_t *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	free(h->pool);
	curl_multi_cleanup(h->multi);
	free(h);
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *ud)
{
	fg_req_t *q = ud;
	size_t n = sz * nm;
	if (q->streaming) {
		if (q->status == 0)
			curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &q->status);
		if (q->status == 200) {
			fg_llm_stream_feed(&q->stream, p, n);   /* errors kept in the stream */
			return n;
		}
	}
	if (q->n + n > q->max_reply) {
		q->too_large = 1;
		return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (q->n + n + 1 > q->cap) {
		size_t c = q->cap ? q->cap : 4096;
		while (c < q->n + n + 1)
			c *= 2;
		char *b = realloc(q->body, c);
		if (!b) {
			q->oom = 1;
			return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
		}
		q->body = b;
		q->cap = c;
	}
	memcpy(q->body + q->n, p, n);
	q->n += n;
	q->body[q->n] = '\0';
	return n;
}

/* capture_header's value into q->captured (the last one wins) */
static size_t header_cb(char *p, size_t sz, size_t nm, void *ud)
{
	fg_req_t *q = ud;
	size_t n = sz * nm, k = strlen(q->capture_header);
	if (n > k + 1 && p[k] == ':' && !strncasecmp(p, q->capture_header, k)) {
		const char *v = p + k + 1, *end = p + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		size_t l = (size_t)(end - v);
		if (l < sizeof(q->captured)) {
			memcpy(q->captured, v, l);
			q->captured[l] = '\0';
		}
	}
	return n;
}

/* Back to the pool; with no room for it (out of memory), let it go. */
static void pool_put(fg_http_t *h, CURL *e)
{
	if (h->npool == h->cappool) {
		int c = h->cappool ? h->cappool * 2 : 64;
		CURL **p = realloc(h->pool, sizeof(CURL *) * (size_t)c);
		if (!p) {
			curl_easy_cleanup(e);
			return;
		}
		h->pool = p;
		h->cappool = c;
	}
	h->pool[h->npool++] = e;
}

/* The request's handle back to the pool, its body and headers freed. */
static void give_back(fg_http_t *h, fg_req_t *q)
{
	pool_put(h, q->easy);
	q->easy = NULL;
	curl_slist_free_all(q->hdrs);
	q->hdrs = NULL;
	free(q->reqbody);
	q->reqbody = NULL;
}

/* A request that could not be started: given back, its stream state freed
 * too; q->errbuf says why. */
static void abort_start(fg_http_t *h, fg_req_t *q)
{
	give_back(h, q);
	fg_req_reset(q);
}

/* Hands a prepared transfer to the multi handle. */
static int add_handle(fg_http_t *h, fg_req_t *q, CURL *e)
{
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		snprintf(q->errbuf, sizeof(q->errbuf), "curl_multi_add_handle failed");
		abort_start(h, q);
		return -1;
	}
	h->running++;
	return 0;
}

/* What every transfer sets, pooled or not. */
static void easy_common(CURL *e, char *errbuf)
{
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "forge/0.1");
}

/* A pooled easy handle, reset, with what every request sets; NULL (and
 * q->errbuf) if none can be had. */
static CURL *easy_begin(fg_http_t *h, fg_req_t *q)
{
	CURL *e = h->npool ? h->pool[--h->npool] : curl_easy_init();
	if (!e) {
		snprintf(q->errbuf, sizeof(q->errbuf), "curl_easy_init failed");
		return NULL;
	}
	curl_easy_reset(e);
	q->easy = e;
	q->n = 0;
	q->status = 0;
	q->too_large = 0;
	q->oom = 0;
	q->retry_after_s = -1;
	q->errbuf[0] = '\0';
	q->captured[0] = q->ctype[0] = '\0';
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	easy_common(e, q->errbuf);
	return e;
}

int fg_http_post(fg_http_t *h, fg_req_t *q, const char *url, char *body, size_t n,
		 const char *key, long connect_ms, long total_ms)
{
	CURL *e = easy_begin(h, q);
	if (!e) {
		free(body);
		return -1;
	}
	q->reqbody = body;
	if (q->streaming) {
		fg_llm_stream_init(&q->stream);
		q->stream.on_text = q->on_text;
		q->stream.text_arg = q->text_arg;
	}
	char auth[1100];
	const char *want[4] = { "Content-Type: application/json", "Expect:",
				q->streaming ? "Accept: text/event-stream" : NULL, NULL };
	if (key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		want[3] = auth;
	}
	q->hdrs = NULL;
	for (int i = 0; i < 4; i++) {
		if (!want[i])
			continue;
		struct curl_slist *l = curl_slist_append(q->hdrs, want[i]);
		if (!l) {   /* out of memory: never send a request short of a header */
			memset(auth, 0, sizeof(auth));
			snprintf(q->errbuf, sizeof(q->errbuf), "out of memory for the request headers");
			abort_start(h, q);
			return -1;
		}
		q->hdrs = l;
	}
	for (size_t i = 0; q->extra_headers && q->extra_headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(q->hdrs, q->extra_headers[i]);
		if (!l) {
			memset(auth, 0, sizeof(auth));
			snprintf(q->errbuf, sizeof(q->errbuf), "out of memory for the request headers");
			abort_start(h, q);
			return -1;
		}
		q->hdrs = l;
	}
	if (q->capture_header) {
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	}
	memset(auth, 0, sizeof(auth));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);

	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	if (q->fresh) {
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
	return add_handle(h, q, e);
}

int fg_http_get(fg_http_t *h, fg_req_t *q, const char *url, long total_ms)
{
	CURL *e = easy_begin(h, q);
	if (!e)
		return -1;
	q->reqbody = NULL;
	q->hdrs = NULL;
	q->streaming = 0;
	curl_easy_setopt(e, CURLOPT_URL, url);

	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	return add_handle(h, q, e);
}

static size_t discard_cb(char *p, size_t sz, size_t nm, void *ud)
{
	(void)p;
	(void)ud;
	return sz * nm;
}

long fg_http_delete_sync(const char *url, const char *const *headers, long total_ms,
			 char *errbuf, size_t errlen)
{
	char eb[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL;
	long status = -1;
	CURL *e = curl_easy_init();
	if (!e) {
		snprintf(errbuf, errlen, "curl_easy_init failed");
		return -1;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(hl, headers[i]);
		if (!l) {
			snprintf(errbuf, errlen, "out of memory for the request headers");
			goto out;
		}
		hl = l;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
	easy_common(e, eb);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
	CURLcode rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(errbuf, errlen, "%s", eb[0] ? eb : curl_easy_strerror(rc));
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	return status;
}

static void release(fg_http_t *h, fg_req_t *q)
{
	if (!q->easy)
		return;
	curl_multi_remove_handle(h->multi, q->easy);
	give_back(h, q);
}

void fg_req_reset(fg_req_t *q)
{
	free(q->body);
	q->body = NULL;
	q->n = q->cap = 0;
	if (q->streaming && q->stream.content) {
		fg_llm_reply_t r;
		fg_llm_stream_finish(&q->stream, &r);
		fg_llm_reply_free(&r);
	}
}

void fg_http_cancel(fg_http_t *h, fg_req_t *q)
{
	if (q->easy) {
		release(h, q);
		h->running--;
	}
	fg_req_reset(q);
}

static void collect(fg_http_t *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		fg_req_t *q = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		q->curl_rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &q->status);
		curl_off_t ra = -1;
		if (curl_easy_getinfo(m->easy_handle, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			q->retry_after_s = (long)ra;
		char *ct = NULL;
		if (curl_easy_getinfo(m->easy_handle, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(q->ctype, sizeof(q->ctype), "%s", ct);
		release(h, q);
		h->running--;
		q->done(q);
	}
}

void fg_http_event(fg_http_t *h, uint64_t data, uint32_t events)
{
	int still;
	{
		int fd = (int)(uint32_t)data, flags = 0;
		if (events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		curl_multi_socket_action(h->multi, fd, flags, &still);
	}
	collect(h);
}

int fg_http_active(const fg_http_t *h)
{
	return h->running;
}
