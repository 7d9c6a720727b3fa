/*
 * mock-llm — an OpenAI-compatible /v1/chat/completions server for tests and
 * benchmarks (no real model can be reached here).  Scripted: a request whose
 * messages hold no "tool" message gets one `calculator` tool call with
 * {"expression":"2+2"}; once a tool result is present, the final answer
 * "The answer is 4.".  forge's map_reduce calls (a system message starting
 * "forge:") are answered at once: "forge:split" with two parts as JSON,
 * "forge:reduce" with "The answer is 4.".  A first user message "long:N ..."
 * gets N 'x' as its answer at once (a plan: two steps of 3000+ characters).
 * A client's own tool in "tools" is called instead of the calculator (a
 * first user message "mixed ..." calls the calculator, then the client's
 * tool, then answers); a last
 * user message "echo" gets the request itself back (roles, contents,
 * parameters, tool names) as its answer.  A first user message
 * "mcp:SERVER__TOOL {ARGS}" calls that tool (one of forge's MCP servers')
 * with ARGS, then answers with the tool's result as it was given.
 * Non-streaming and streaming (SSE chunks with tool-call deltas, chunked
 * transfer encoding), HTTP/1.1 keep-alive.
 *
 * One epoll loop per thread, each with its own SO_REUSEPORT listener.  A
 * reply waits --latency-ms (all replies wait the same, so a FIFO per thread
 * is the timer queue).  --fail-rate R injects, per request with probability
 * R, one of the --fail kinds: 429 (with Retry-After), 500, malformed JSON,
 * truncated body, connection reset, slow reply (10x latency + 2 s).
 *
 * This is a test peer, not forge's HTTP server (forge's gateway uses a
 * maintained HTTP library); it parses only what OpenAI clients send.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ (4 << 20)

enum fail { F_NONE = 0, F_429 = 1, F_500 = 2, F_MALFORMED = 4, F_TRUNCATED = 8,
	    F_RESET = 16, F_SLOW = 32, F_ALL = 63 };

static struct {
	const char *host;
	int port, threads, latency_ms;
	double fail_rate;
	unsigned fails;
	int quiet;
	int close_each;   /* --close: one request per connection */
	size_t pad_bytes; /* --pad-bytes: whitespace added to each whole reply */
	FILE *log;        /* --log-requests: each request body, a line of JSON */
} opt = { "127.0.0.1", 0, 1, 0, 0.0, F_ALL, 0, 0, 0, NULL };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic unsigned long long req_counter;

typedef struct conn {
	int fd;
	char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outoff;
	int close_after;
	int reset;               /* close with RST once out is sent */
	uint64_t due_ns;         /* reply held until then            */
	int waiting;
	struct conn *next;       /* FIFO of waiting replies          */
} conn_t;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void out_append(conn_t *c, const char *s, size_t n)
{
	c->out = realloc(c->out, c->outlen + n + 1);
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void out_printf(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(conn_t *c, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	out_append(c, buf, (size_t)n);
}

static void respond(conn_t *c, int status, const char *reason, const char *ctype,
		    const char *body, const char *extra)
{
	out_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
		   status, reason, ctype, strlen(body), extra ? extra : "",
		   c->close_after ? "Connection: close\r\n" : "");
	out_append(c, body, strlen(body));
}

static void error_json(conn_t *c, int status, const char *reason, const char *type,
		       const char *msg)
{
	json_t *j = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", msg, "type", type,
			      "param", "code");
	char *s = json_dumps(j, JSON_COMPACT);
	respond(c, status, reason, "application/json", s, NULL);
	free(s);
	json_decref(j);
}

static void chunk(conn_t *c, const char *data)
{
	out_printf(c, "%zx\r\n", strlen(data));
	out_append(c, data, strlen(data));
	out_append(c, "\r\n", 2);
}

static void sse(conn_t *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	size_t n = strlen(s) + 9;
	char *line = malloc(n);
	snprintf(line, n, "data: %s\n\n", s);
	chunk(c, line);
	free(line);
	free(s);
	json_decref(j);
}

static void completion(conn_t *c, json_t *req)
{
	json_t *msgs = json_object_get(req, "messages");
	const char *model = json_string_value(json_object_get(req, "model"));
	int stream = json_is_true(json_object_get(req, "stream"));
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		error_json(c, 400, "Bad Request", "invalid_request_error",
			   "'messages' must be a non-empty array");
		return;
	}
	int have_tool = 0, split = 0, forge_call = 0;
	size_t i, prompt_chars = 0;
	const char *user = NULL;
	json_t *m;
	json_array_foreach(msgs, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));
		if (!role) {
			error_json(c, 400, "Bad Request", "invalid_request_error",
				   "each message needs a 'role'");
			return;
		}
		if (!strcmp(role, "tool"))
			have_tool++;
		const char *content = json_string_value(json_object_get(m, "content"));
		if (!strcmp(role, "system") && content && !strncmp(content, "forge:", 6)) {
			forge_call = 1;
			split = !strncmp(content, "forge:split", 11) ? 1 :
				!strncmp(content, "forge:plan", 10) ? 2 : 0;
		}
		if (!strcmp(role, "user") && content && !user)
			user = content;
		prompt_chars += content ? strlen(content) : 0;
	}
	unsigned long long n = ++req_counter;
	char id[64], call[64];
	snprintf(id, sizeof(id), "chatcmpl-mock-%llu", n);
	snprintf(call, sizeof(call), "call_mock_%llu", n);
	if (!model)
		model = "mock";
	long long created = (long long)time(NULL);
	/* forge's map_reduce split and reduce calls are answered at once. */
	if (forge_call)
		have_tool = 1;
	const char *answer = split == 1 ? "{\"parts\":[\"what is 2+2?\",\"what is 2+2, again?\"]}" :
			     split == 2 ? "{\"steps\":[{\"task\":\"what is 2+2?\",\"depends_on\":[]},"
					  "{\"task\":\"check that 2+2 is 4\",\"depends_on\":[0]}]}"
					: "The answer is 4.";
	/* "long:N ..." as the first user message: answers of real size.  A
	 * plan: two steps of 3000+ characters, the second depending on the
	 * first (whose task is "long:N ..." again); otherwise a final answer
	 * of N 'x' at once. */
	char *own = NULL;
	long big = user && !strncmp(user, "long:", 5) ? strtol(user + 5, NULL, 10) : 0;
	if (big > 0 && big <= (8l << 20) && (split == 2 || !forge_call)) {
		own = malloc((size_t)big + 16384);
		if (own && split == 2) {
			int k = sprintf(own, "{\"steps\":[{\"task\":\"long:%ld ", big);
			memset(own + k, 'a', 3000);
			k += 3000;
			k += sprintf(own + k, "\"},{\"task\":\"check ");
			memset(own + k, 'b', 3000);
			k += 3000;
			sprintf(own + k, "\",\"depends_on\":[0]}]}");
		} else if (own) {
			memset(own, 'x', (size_t)big);
			own[big] = 0;
		}
		if (own) {
			answer = own;
			have_tool = 1;
		}
	}
	/* A plan for "call:NAME {ARGS}": one step, that message itself (so the
	 * step's session calls NAME: tests of plan_execute's parts). */
	if (!own && split == 2 && user && !strncmp(user, "call:", 5)) {
		json_t *plan = json_pack("{s:[{s:s,s:[]}]}", "steps", "task", user, "depends_on");
		own = plan ? json_dumps(plan, JSON_COMPACT) : NULL;
		json_decref(plan);
		if (own)
			answer = own;
	}
	/* A tool of the client's in "tools" (any name but forge's own) is the
	 * one called, with {"city":"Paris"}; otherwise the calculator. */
	const char *tool = "calculator", *args = "{\"expression\":\"2+2\"}";
	json_t *tools = json_object_get(req, "tools"), *t;
	json_array_foreach(tools, i, t) {
		const char *name = json_string_value(json_object_get(json_object_get(t, "function"),
								     "name"));
		if (name && strcmp(name, "calculator") && strcmp(name, "file_read") &&
		    strcmp(name, "shell") && strcmp(name, "http_get") &&
		    !strstr(name, "__")) {   /* (SERVER__TOOL: forge's MCP tools) */
			tool = name;
			args = "{\"city\":\"Paris\"}";
		}
	}
	/* A first user message "mixed ...": forge's calculator first, then
	 * the client's tool, then the answer (a run that runs forge's tools
	 * before it asks the client for its own). */
	if (user && !strncmp(user, "mixed", 5) && strcmp(tool, "calculator") && !forge_call) {
		if (have_tool == 0)
			tool = "calculator", args = "{\"expression\":\"2+2\"}";
		else if (have_tool == 1)
			have_tool = 0;   /* (the client's tool next) */
	}
	/* A first user message "call:NAME {ARGS}": NAME is called with ARGS
	 * (JSON) on the first turn; then the answer is "tool said: " and the
	 * last tool result (tests of what a tool call came to). */
	char *said = NULL, callname[64], *callargs = NULL;
	if (user && !strncmp(user, "call:", 5) && !forge_call) {
		const char *sp = strchr(user + 5, ' ');
		size_t nn = sp ? (size_t)(sp - user - 5) : strlen(user + 5);
		if (nn >= sizeof(callname))
			nn = sizeof(callname) - 1;
		memcpy(callname, user + 5, nn);
		callname[nn] = 0;
		if (have_tool == 0) {
			callargs = strdup(sp ? sp + 1 : "{}");
			tool = callname;
			args = callargs;
		} else {
			const char *last = "";
			json_array_foreach(msgs, i, m)
				if (!strcmp(json_string_value(json_object_get(m, "role")), "tool") &&
				    json_string_value(json_object_get(m, "content")))
					last = json_string_value(json_object_get(m, "content"));
			size_t ln = strlen(last) + 16;
			if ((said = malloc(ln))) {
				snprintf(said, ln, "tool said: %s", last);
				answer = said;
			}
		}
	}
	/* A first user message "mcp:SERVER__TOOL {ARGS}": that tool is called
	 * with ARGS (a JSON object; {} if none), then the answer is the tool
	 * result, as it was given (for tests of forge's MCP servers). */
	char mcp_tool[128], *mcp_args = NULL;
	const char *last_tool = NULL;
	if (user && !strncmp(user, "mcp:", 4) && !forge_call) {
		const char *p = user + 4, *sp = strchr(p, ' ');
		size_t tl = sp ? (size_t)(sp - p) : strlen(p);
		snprintf(mcp_tool, sizeof(mcp_tool), "%.*s", (int)(tl < 127 ? tl : 127), p);
		mcp_args = strdup(sp && sp[1] ? sp + 1 : "{}");
		json_array_foreach(msgs, i, m)
			if (!strcmp(json_string_value(json_object_get(m, "role")), "tool"))
				last_tool = json_string_value(json_object_get(m, "content"));
		if (have_tool == 0 && mcp_args) {
			tool = mcp_tool;
			args = mcp_args;
		} else {
			answer = last_tool ? last_tool : "";
		}
	}
	/* The last user message "echo": the answer is what the request held
	 * (roles, contents, parameters, tool names), for tests of what forge
	 * sends. */
	const char *last_user = NULL;
	json_array_foreach(msgs, i, m)
		if (!strcmp(json_string_value(json_object_get(m, "role")), "user"))
			last_user = json_string_value(json_object_get(m, "content"));
	char *echo = NULL;
	if (last_user && !strcmp(last_user, "echo") && !forge_call) {
		json_t *e = json_object(), *roles = json_array(), *contents = json_array();
		json_t *names = json_array();
		json_array_foreach(msgs, i, m) {
			json_array_append(roles, json_object_get(m, "role"));
			json_t *ct = json_object_get(m, "content");
			json_array_append_new(contents, ct ? json_incref(ct) : json_null());
		}
		json_array_foreach(tools, i, t)
			json_array_append(names, json_object_get(json_object_get(t, "function"),
								 "name"));
		json_object_set_new(e, "roles", roles);
		json_object_set_new(e, "contents", contents);
		json_object_set_new(e, "tools", names);
		static const char *const keys[] = { "temperature", "top_p", "max_tokens",
			"max_completion_tokens", "stop", "seed", "response_format", "tool_choice" };
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (json_object_get(req, keys[k]))
				json_object_set(e, keys[k], json_object_get(req, keys[k]));
		echo = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(e);
		if (echo) {
			answer = echo;
			have_tool = 1;
		}
	}
	int ptok = (int)(prompt_chars / 4) + 8, ctok = have_tool ? 6 : 12;

	if (!stream) {
		json_t *msg = have_tool
			? json_pack("{s:s,s:s}", "role", "assistant", "content", answer)
			: json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant",
				    "content", "tool_calls", "id", call, "type", "function",
				    "function", "name", tool, "arguments", args);
		json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:{s:i,s:i,s:i}}",
			"id", id, "object", "chat.completion", "created", created, "model", model,
			"choices", "index", 0, "message", msg, "finish_reason",
			have_tool ? "stop" : "tool_calls", "usage", "prompt_tokens", ptok,
			"completion_tokens", ctok, "total_tokens", ptok + ctok);
		char *s = json_dumps(j, JSON_COMPACT);
		if (opt.pad_bytes) {   /* JSON whitespace in front: a bigger reply */
			size_t sn = strlen(s);
			char *p = malloc(opt.pad_bytes + sn + 1);
			memset(p, ' ', opt.pad_bytes);
			memcpy(p + opt.pad_bytes, s, sn + 1);
			free(s);
			s = p;
		}
		respond(c, 200, "OK", "application/json", s, NULL);
		free(s);
		json_decref(j);
		free(own);
		free(echo);
		free(said);
		free(callargs);
		free(mcp_args);
		return;
	}
	out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n%s\r\n",
		   c->close_after ? "Connection: close\r\n" : "");
#define CHUNK(delta, fin) json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:o}]}", "id", id, \
	"object", "chat.completion.chunk", "created", created, "model", model, "choices", \
	"index", 0, "delta", delta, "finish_reason", fin)
	sse(c, CHUNK(json_pack("{s:s,s:s}", "role", "assistant", "content", ""), json_null()));
	if (have_tool) {
		size_t half = strlen(answer) / 2;
		sse(c, CHUNK(json_pack("{s:s%}", "content", answer, half), json_null()));
		sse(c, CHUNK(json_pack("{s:s}", "content", answer + half), json_null()));
		sse(c, CHUNK(json_object(), json_string("stop")));
	} else {
		sse(c, CHUNK(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0,
				       "id", call, "type", "function", "function", "name",
				       tool, "arguments", ""), json_null()));
		size_t half = strlen(args) / 2;
		sse(c, CHUNK(json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", 0,
				       "function", "arguments", args, half), json_null()));
		sse(c, CHUNK(json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0,
				       "function", "arguments", args + half), json_null()));
		sse(c, CHUNK(json_object(), json_string("tool_calls")));
	}
	chunk(c, "data: [DONE]\n\n");
	out_append(c, "0\r\n\r\n", 5);
	free(own);
	free(echo);
	free(said);
	free(callargs);
	free(mcp_args);
#undef CHUNK
}

static int pick_failure(void)
{
	if (opt.fail_rate <= 0 || (double)random() / RAND_MAX >= opt.fail_rate)
		return F_NONE;
	int kinds[6], n = 0;
	for (int b = 0; b < 6; b++)
		if (opt.fails & (1u << b))
			kinds[n++] = 1 << b;
	return n ? kinds[random() % n] : F_NONE;
}

/* Handles one complete request of hlen header bytes and blen body bytes. */
static void handle(conn_t *c, const char *req, size_t hlen, const char *body, size_t blen)
{
	char method[16] = "", path[256] = "";
	sscanf(req, "%15s %255s", method, path);
	const char *conn_hdr = strcasestr(req, "\r\nconnection:");
	if ((conn_hdr && conn_hdr < req + hlen && strncasecmp(conn_hdr + 13, " close", 6) == 0) ||
	    strstr(req, "HTTP/1.0") || opt.close_each)
		c->close_after = 1;
	if (!strcmp(path, "/v1/models") && !strcmp(method, "GET")) {
		respond(c, 200, "OK", "application/json",
			"{\"object\":\"list\",\"data\":[{\"id\":\"mock\",\"object\":\"model\","
			"\"owned_by\":\"forge\"}]}", NULL);
		return;
	}
	if (!strcmp(path, "/healthz")) {
		respond(c, 200, "OK", "text/plain", "ok\n", NULL);
		return;
	}
	if (strcmp(path, "/v1/chat/completions") != 0) {
		error_json(c, 404, "Not Found", "invalid_request_error", "unknown path");
		return;
	}
	if (strcmp(method, "POST") != 0) {
		error_json(c, 405, "Method Not Allowed", "invalid_request_error",
			   "use POST for /v1/chat/completions");
		return;
	}
	switch (pick_failure()) {
	case F_429:
		respond(c, 429, "Too Many Requests", "application/json",
			"{\"error\":{\"message\":\"rate limited (injected)\",\"type\":"
			"\"rate_limit_exceeded\",\"param\":null,\"code\":null}}",
			"Retry-After: 1\r\n");
		return;
	case F_500:
		error_json(c, 500, "Internal Server Error", "server_error", "injected failure");
		return;
	case F_MALFORMED:
		respond(c, 200, "OK", "application/json", "{\"id\": \"chatcmpl-bad\", \"choices\": [",
			NULL);
		return;
	case F_TRUNCATED:
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			   "Content-Length: 400\r\n\r\n{\"id\":\"chatcmpl-trunc\",\"object\":");
		c->close_after = 1;
		return;
	case F_RESET:
		c->reset = 1;
		return;
	case F_SLOW:
		c->due_ns += (uint64_t)(opt.latency_ms * 9 + 2000) * 1000000ull;
		break;
	}
	json_error_t je;
	json_t *j = json_loadb(body, blen, 0, &je);
	if (!j || !json_is_object(j)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "request body is not a JSON object: %s (line %d, column %d)",
			 j ? "not an object" : je.text, je.line, je.column);
		error_json(c, 400, "Bad Request", "invalid_request_error", msg);
		json_decref(j);
		return;
	}
	if (opt.log) {   /* (compact, one line each: tests read it with jq) */
		char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		pthread_mutex_lock(&log_lock);
		if (s)
			fprintf(opt.log, "%s\n", s);
		fflush(opt.log);
		pthread_mutex_unlock(&log_lock);
		free(s);
	}
	completion(c, j);
	json_decref(j);
}

typedef struct loop {
	int ep, lfd;
	conn_t *qhead, *qtail;
} loop_t;

static void conn_close(loop_t *l, conn_t *c)
{
	(void)l;
	if (c->reset) {
		struct linger lg = { 1, 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Writes what is pending; returns -1 if the connection is done with. */
static int flush_out(loop_t *l, conn_t *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
			epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
			return 0;
		}
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	if (c->close_after || c->reset)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

/* Parses complete requests out of c->in; returns -1 to close. */
static int process(loop_t *l, conn_t *c)
{
	while (!c->waiting) {
		char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		if (!end)
			return c->inlen > 65536 ? -1 : 0;
		size_t hlen = (size_t)(end - c->in) + 4, clen = 0;
		c->in[hlen - 1] = '\0';
		char *cl = strcasestr(c->in, "\r\ncontent-length:");
		if (cl)
			clen = strtoull(cl + 17, NULL, 10);
		c->in[hlen - 1] = '\n';
		if (clen > MAX_REQ) {
			c->close_after = 1;
			error_json(c, 413, "Payload Too Large", "invalid_request_error",
				   "request body too large");
			return flush_out(l, c) < 0 ? -1 : -1;
		}
		if (c->inlen < hlen + clen)
			return 0;
		char save = c->in[hlen - 1];
		c->in[hlen - 1] = '\0';
		c->due_ns = now_ns() + (uint64_t)opt.latency_ms * 1000000ull;
		handle(c, c->in, hlen, c->in + hlen, clen);
		c->in[hlen - 1] = save;
		memmove(c->in, c->in + hlen + clen, c->inlen - hlen - clen);
		c->inlen -= hlen + clen;
		if (c->due_ns > now_ns()) {
			/* ordered by due time: a slow reply must not hold back the
			 * quick ones queued after it */
			c->waiting = 1;
			conn_t **pp = &l->qhead, *prev = NULL;
			while (*pp && (*pp)->due_ns <= c->due_ns) {
				prev = *pp;
				pp = &(*pp)->next;
			}
			c->next = *pp;
			*pp = c;
			if (!c->next)
				l->qtail = c;
			(void)prev;
			return 0;
		}
		if (flush_out(l, c) < 0)
			return -1;
	}
	return 0;
}

static void *run_loop(void *arg)
{
	loop_t *l = arg;
	struct epoll_event evs[256];
	for (;;) {
		int timeout = -1;
		if (l->qhead) {
			uint64_t now = now_ns();
			timeout = l->qhead->due_ns > now ? (int)((l->qhead->due_ns - now) / 1000000) + 1 : 0;
		}
		int n = epoll_wait(l->ep, evs, 256, timeout);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				int fd;
				while ((fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					conn_t *c = calloc(1, sizeof(*c));
					c->fd = fd;
					struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			conn_t *c = evs[i].data.ptr;
			if (evs[i].events & EPOLLOUT && !c->waiting && flush_out(l, c) < 0) {
				conn_close(l, c);
				continue;
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->waiting)
				continue;
			int dead = 0;
			for (;;) {
				if (c->incap - c->inlen < 16384) {
					c->incap = c->incap ? c->incap * 2 : 32768;
					c->in = realloc(c->in, c->incap);
				}
				ssize_t r = read(c->fd, c->in + c->inlen, c->incap - c->inlen - 1);
				if (r > 0) {
					c->inlen += (size_t)r;
					if (c->inlen > MAX_REQ + 65536) {
						dead = 1;
						break;
					}
					continue;
				}
				if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
					dead = 1;
				break;
			}
			if (process(l, c) < 0 || (dead && !c->waiting))
				conn_close(l, c);
		}
		uint64_t now = now_ns();
		while (l->qhead && l->qhead->due_ns <= now) {
			conn_t *c = l->qhead;
			l->qhead = c->next;
			if (!l->qhead)
				l->qtail = NULL;
			c->waiting = 0;
			if (flush_out(l, c) < 0 || process(l, c) < 0)
				conn_close(l, c);
		}
	}
	return NULL;
}

static unsigned parse_fails(const char *s)
{
	static const struct { const char *n; unsigned v; } k[] = {
		{ "429", F_429 }, { "500", F_500 }, { "malformed", F_MALFORMED },
		{ "truncated", F_TRUNCATED }, { "reset", F_RESET }, { "slow", F_SLOW },
		{ "all", F_ALL } };
	unsigned v = 0;
	char *dup = strdup(s), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned f = 0;
		for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
			if (!strcmp(t, k[i].n))
				f = k[i].v;
		if (!f) {
			fprintf(stderr, "mock-llm: --fail: unknown kind '%s' "
				"(429, 500, malformed, truncated, reset, slow, all)\n", t);
			exit(2);
		}
		v |= f;
	}
	free(dup);
	return v;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: mock-llm --port P [--host ADDR] [--latency-ms N] [--fail-rate R]\n"
"                [--fail KINDS] [--threads T] [--close] [--pad-bytes N]\n"
"\n"
"An OpenAI-compatible POST /v1/chat/completions server (and GET /v1/models),\n"
"scripted for tests and benchmarks: with no \"tool\" message in the request it\n"
"answers one calculator tool call {\"expression\":\"2+2\"}; once a tool result is\n"
"present, the final answer \"The answer is 4.\" (a \"forge:split\" system message\n"
"gets {\"parts\": [...]}, \"forge:reduce\" the answer at once).  \"stream\": true: SSE.\n"
"A first user message \"long:N ...\" gets a final answer of N 'x' at once (a\n"
"\"forge:plan\" call: two steps of 3000+ characters, the first \"long:N ...\").\n"
"When \"tools\" offers a function other than forge's own (calculator, file_read,\n"
"shell, http_get), that one is called instead, with {\"city\":\"Paris\"} (after\n"
"a calculator call when the first user message starts \"mixed\").  A last\n"
"user message \"echo\" is answered at once with what the request held: its\n"
"roles, contents, tool names and sampling parameters, as JSON.  A first\n"
"user message \"call:NAME {ARGS}\" calls tool NAME with ARGS, then answers\n"
"\"tool said: \" and the last tool result (a \"forge:plan\" call: one step, that\n"
"message).\n"
"\n"
"  --port P        TCP port (required)\n"
"  --host ADDR     address to listen on (default 127.0.0.1)\n"
"  --latency-ms N  hold every reply N ms (default 0)\n"
"  --fail-rate R   inject a failure into a fraction R (0..1) of requests\n"
"  --fail KINDS    comma list of 429,500,malformed,truncated,reset,slow (default all)\n"
"  --threads T     event loops, each with its own SO_REUSEPORT listener (default 1)\n"
"  --close         close each connection after its reply (Connection: close), so\n"
"                  that every request of a client opens a new one\n"
"  --pad-bytes N   put N bytes of JSON whitespace in front of each (non-streamed)\n"
"                  reply, to load clients' memory (default 0)\n"
"  --log-requests FILE\n"
"                  append each chat completion request's body to FILE, one line\n"
"                  of JSON each (for tests of what a client sent)\n"
"  -h, --help      this text\n");
}

static double num(const char *o, const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "mock-llm: %s: '%s' is not a number in [%g, %g]\n", o, s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' }, { "host", required_argument, NULL, 'H' },
		{ "latency-ms", required_argument, NULL, 'l' },
		{ "fail-rate", required_argument, NULL, 'f' }, { "fail", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ "close", no_argument, NULL, 'c' }, { "pad-bytes", required_argument, NULL, 'P' },
		{ "log-requests", required_argument, NULL, 'L' }, { NULL, 0, NULL, 0 } };
	int ch;
	while ((ch = getopt_long(argc, argv, "p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': opt.port = (int)num("--port", optarg, 1, 65535); break;
		case 'H': opt.host = optarg; break;
		case 'l': opt.latency_ms = (int)num("--latency-ms", optarg, 0, 600000); break;
		case 'f': opt.fail_rate = num("--fail-rate", optarg, 0, 1); break;
		case 'k': opt.fails = parse_fails(optarg); break;
		case 't': opt.threads = (int)num("--threads", optarg, 1, 64); break;
		case 'c': opt.close_each = 1; break;
		case 'P': opt.pad_bytes = (size_t)num("--pad-bytes", optarg, 0, 256 << 20); break;
		case 'L':
			if (!(opt.log = fopen(optarg, "a"))) {
				fprintf(stderr, "mock-llm: --log-requests: cannot open %s: %s\n", optarg,
					strerror(errno));
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!opt.port) {
		fprintf(stderr, "mock-llm: --port is required\n");
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)now_ns());
	pthread_t th[64];
	for (int i = 0; i < opt.threads; i++) {
		loop_t *l = calloc(1, sizeof(*l));
		l->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(l->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
		if (inet_pton(AF_INET, opt.host, &a.sin_addr) != 1) {
			fprintf(stderr, "mock-llm: --host: '%s' is not an IPv4 address\n", opt.host);
			return 2;
		}
		if (bind(l->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l->lfd, 4096) < 0) {
			fprintf(stderr, "mock-llm: cannot listen on %s:%d: %s\n", opt.host, opt.port,
				strerror(errno));
			return 1;
		}
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
		epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &ev);
		pthread_create(&th[i], NULL, run_loop, l);
	}
	fprintf(stderr, "mock-llm: listening on %s:%d (%d threads, latency %d ms, fail-rate %g)\n",
		opt.host, opt.port, opt.threads, opt.latency_ms, opt.fail_rate);
	pthread_join(th[0], NULL);
	return 0;
}
