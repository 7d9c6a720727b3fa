/*
 * mcp.c — a worker's MCP tool servers (tools.mcp.NAME).
 *
 * Each worker process has its own connection to each configured server:
 * a stdio server is a child process (JSON-RPC 2.0, one message a line, on
 * its stdin and stdout; its stderr goes to forge's log), a Streamable HTTP
 * server is a URL that each request is POSTed to through the worker's curl
 * client.  Everything is driven by the worker's one event loop: replies are
 * read when epoll says the pipe is readable, matched to their calls by
 * JSON-RPC id, and nothing here ever blocks on a server.
 *
 * A server's life: start (spawn, or nothing for HTTP) -> initialize ->
 * notifications/initialized -> tools/list (every page) -> READY.  Its tools
 * are offered to models as SERVER__TOOL (names that do not fit the
 * [A-Za-z0-9_-]{1,64} rule of function names are left out, with a warning).
 * A call made before the server is READY (at start, while it restarts, or
 * while it is listed again after notifications/tools/list_changed) waits
 * for it, within the call's timeout.
 *
 * What a misbehaving server costs is its own calls, never the worker:
 *   - a call not answered within timeout_ms gets an error result, and the
 *     server is told (notifications/cancelled); a stdio server is then
 *     pinged, and only if that goes unanswered too (within timeout_ms, 1 s
 *     at most) is it killed and restarted, failing the calls of other
 *     sessions it had: one slow call costs no other session its own
 *     (calls made meanwhile wait for the ping's answer: they are not sent
 *     to a server that may be frozen);
 *   - a stdio server that sends more than NOTE_RATE unsolicited messages
 *     (notifications, requests, answers to nothing of ours) in a second is
 *     killed and restarted (its calls fail: retryable): a flood would
 *     otherwise hold a worker busy reading it while it answers pings;
 *   - a server that exits, closes its stdout, answers a line longer than
 *     its cap or something that is not JSON-RPC is killed: every call it
 *     had been sent gets "error: MCP server NAME ...; the call may be
 *     retried", and it is started again after a backoff (100 ms doubling
 *     to 30 s while it keeps failing; back to 100 ms once it answered a
 *     call or stayed up 10 s);
 *   - requests the server makes of us are answered (ping) or refused with
 *     a JSON-RPC error; its notifications are ignored.
 * Results are committed like every tool's (tools.c): a non-idempotent
 * server's calls have their intent committed before they are sent, so a
 * worker that dies mid-call does not call again after recovery.
 */
#include "worker/wk.h"
#include "forge/crash.h"
#include "forge/log.h"
#include "forge/mcp.h"
#include "forge/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_NS      (10ull * 1000000000u)   /* up this long: backoff reset */
#define MAX_PAGES      64                      /* tools/list pages            */
#define MAX_TOOLS      128                     /* tools a server may offer
						* (OpenAI takes 128 a request) */
#define MAX_SCHEMA     (64u << 10)             /* one tool's inputSchema      */
#define MAX_DESC       4096u                   /* ... its description (cut)   */
#define MAX_LISTING    (1u << 20)              /* all of a server's, in bytes:
						* every model request carries
						* them, and the worker builds
						* the list in one go */
#define MAX_REAP       32                      /* killed servers being reaped */
#define WBUF_MAX       (16u << 20)             /* unread stdin bytes at most  */
#define GATE_NS        (5ull * 1000000000u)    /* see wk_mcp_init             */
#define PING_MAX_MS    1000u                   /* a ping after a timed-out call */
#define NOTE_RATE      2000u                   /* notifications a second at most */

enum { S_BACKOFF, S_INIT, S_LIST, S_READY };
enum { K_CALL, K_INIT, K_LIST, K_NOTE, K_PING };

typedef struct srv srv_t;

typedef struct mcall {
	struct mcall *next;
	srv_t *v;
	int kind;
	int sent;               /* handed to the transport                     */
	int64_t rpc;            /* its JSON-RPC id (-1: a notification)        */
	uint64_t due_ns;
	wsess_t *s;             /* K_CALL: the waiting session (NULL: gone)    */
	char id[256];           /* ... the tool call it answers                */
	uint16_t idn;
	char tool[128];         /* the server's name of the tool               */
	char *args;             /* the arguments (a JSON object), copied       */
	size_t argsn;
	int edited;             /* ... a person's (approval): said with the result */
	fg_req_t req;           /* HTTP: the POST                              */
	int in_http;
} mcall_t;

typedef struct mtool {
	fg_tool_t t;            /* (first: a fg_tool_t * of one is a mtool_t *) */
	uint32_t srv;
	char rname[128];        /* the server's name of it                      */
	char *desc, *schema;
} mtool_t;

struct srv {
	const fg_mcp_cfg_t *cfg;
	uint32_t idx, gen;      /* gen: each start (stale epoll events)         */
	int state;
	int first_done;         /* its first start ended, READY or not          */
	pid_t pid;              /* stdio: 0 when not running                    */
	int pidfd, infd, outfd, want_out;
	char *wbuf;             /* stdin bytes the pipe did not take yet        */
	size_t wn, wcap;
	char *rbuf;             /* stdout bytes of a line not ended yet         */
	size_t rn, rcap, line_cap;
	int64_t next_id;
	mcall_t *calls;         /* sent and waiting to be sent                  */
	json_t *listing;        /* tools/list pages so far                      */
	uint32_t pages;
	mtool_t *tools;         /* the last complete list (kept across restarts) */
	uint32_t ntools;
	int listed;             /* tools holds a list                           */
	uint32_t backoff_ms;
	uint64_t restart_ns, ready_ns;
	uint64_t eof_ns;        /* stdout ended: killed if not gone by then     */
	int answered;           /* answered a tools/call since it started       */
	int start_failed;       /* its last start failed before it was READY   */
	char last_why[256];     /* ... why                                      */
	uint64_t garbage;       /* lines that were not JSON-RPC                  */
	uint64_t note_ns;       /* the second unasked messages are counted in  */
	uint32_t notes;         /* ... how many came in it                      */
	int pinging;            /* a ping is out: new calls wait for its answer */
	char session[256];      /* HTTP: Mcp-Session-Id                         */
	char proto[40];         /* the protocol version it answered             */
};

struct wk_mcp {
	srv_t srv[FG_MAX_MCP];
	uint32_t n;
	uint64_t gate_ns;       /* sessions are taken from then at the latest   */
	mtool_t scratch;        /* a tool of a server not listed yet            */
	int reap[MAX_REAP];     /* pidfds of killed servers not reaped yet (-1) */
};

/* A server killed: reaped when its pidfd says it is gone, so that the
 * loop never waits on a process (one stuck in the kernel included); with
 * no room left to watch it, waited for here. */
static void reap_later(worker_t *w, int pidfd)
{
	for (uint32_t i = 0; i < MAX_REAP; i++)
		if (w->mcp->reap[i] < 0) {
			struct epoll_event ev = { .events = EPOLLIN };
			ev.data.u64 = (EV_MCP_REAP << 32) | i;
			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0)
				break;
			w->mcp->reap[i] = pidfd;
			return;
		}
	siginfo_t si;
	while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	close(pidfd);
}

static void srv_fail(worker_t *w, srv_t *v, const char *why);
static void flush_queue(worker_t *w, srv_t *v);
static int srv_send(worker_t *w, srv_t *v, mcall_t *c, const char *method, const json_t *params);
static void read_out(worker_t *w, srv_t *v);

/* One of forge's own messages to a server (initialize, its notification,
 * tools/list), with its deadline; params is taken (NULL: none; oom: it
 * could not be made).  The message sent, or NULL: the server failed. */
static mcall_t *srv_request(worker_t *w, srv_t *v, int kind, const char *method, json_t *params,
			    int oom, const char *oom_why)
{
	mcall_t *c = oom ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		json_decref(params);
		srv_fail(w, v, oom_why);
		return NULL;
	}
	c->kind = kind;
	c->v = v;
	c->next = v->calls;
	v->calls = c;
	c->due_ns = fg_now_ns() + (uint64_t)v->cfg->timeout_ms * 1000000u;
	int rc = srv_send(w, v, c, method, params);
	json_decref(params);
	if (rc < 0) {
		srv_fail(w, v, "closed its stdin");
		return NULL;
	}
	return c;
}

static int is_http(const srv_t *v)
{
	return v->cfg->url[0] != '\0';
}

/* ---- results ----------------------------------------------------------- */

/* The session's result for call c: committed; the session goes on when
 * nothing else of its runs.  c is unlinked and freed. */
static void unlink_call(srv_t *v, mcall_t *c)
{
	for (mcall_t **pp = &v->calls; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

static void free_call(worker_t *w, mcall_t *c)
{
	if (c->in_http)
		fg_http_cancel(w->http, &c->req);
	else
		fg_req_reset(&c->req);
	free(c->args);
	free(c);
}

static void call_finish(worker_t *w, mcall_t *c, const char *text)
{
	srv_t *v = c->v;
	wsess_t *s = c->s;
	unlink_call(v, c);
	if (c->kind == K_CALL && s) {
		s->nmcp--;
		if (c->edited) {
			char id[256];
			uint16_t idn = c->idn;
			memcpy(id, c->id, idn);
			int rc = wk_commit_edited(w, s, (fg_str_t){ id, idn },
						  (fg_str_t){ c->args, c->argsn }, text);
			free_call(w, c);
			if (rc == 0)
				wk_tools_settled(w, s);
			return;
		}
		fg_buf_t b = wk_buf(w);
		fg_wstate_t st = s->st;
		fg_buf_tool(&b, (fg_str_t){ c->id, c->idn }, text, strlen(text));
		free_call(w, c);
		if (wk_commit(w, s, &st, &b) == 0)
			wk_tools_settled(w, s);
		return;
	}
	free_call(w, c);
}

static void call_finishf(worker_t *w, mcall_t *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void call_finishf(worker_t *w, mcall_t *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_finish(w, c, msg);
}

/* What the model is told of a call sent to a server that then failed: a
 * server that is not idempotent may have run it. */
static const char *after_sent(const srv_t *v)
{
	return v->cfg->idempotent ? "the call may be retried"
				  : "the call may or may not have run (the server is not "
				    "idempotent: see what it did before calling again)";
}

/* ---- the tools a server offers ------------------------------------------ */

static void tools_free(srv_t *v)
{
	for (uint32_t i = 0; i < v->ntools; i++) {
		free(v->tools[i].desc);
		free(v->tools[i].schema);
	}
	free(v->tools);
	v->tools = NULL;
	v->ntools = 0;
}

/* The worker's tools array (sent to models): forge's own, then every
 * listed server's. */
static void tools_rebuild(worker_t *w)
{
	json_t *a = fg_tools_json();
	for (uint32_t i = 0; a && w->mcp && i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		for (uint32_t k = 0; k < v->ntools; k++) {
			json_t *schema = json_loads(v->tools[k].schema, 0, NULL);
			json_array_append_new(a, json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function",
				"function", "name", v->tools[k].t.name, "description",
				v->tools[k].desc, "parameters", schema ? schema : json_object()));
		}
	}
	char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	if (!s) {   /* out of memory: the previous list stays */
		json_decref(a);
		log_warnx("worker %u: out of memory building the tool list", w->slot);
		return;
	}
	json_decref(w->tools);
	free(w->tools_str);
	w->tools = a;
	w->tools_str = s;
}

/* The list is complete: it replaces the server's tools. */
static void list_done(worker_t *w, srv_t *v)
{
	size_t n = json_array_size(v->listing);
	mtool_t *t = calloc(n ? n : 1, sizeof(mtool_t));
	uint32_t k = 0, skipped = 0;
	size_t bytes = 0;
	json_t *it;
	size_t i;
	json_array_foreach(v->listing, i, it) {
		if (!t)
			break;
		const char *name = json_string_value(json_object_get(it, "name"));
		char full[160];
		int fl = snprintf(full, sizeof(full), "%s__%s", v->cfg->name, name ? name : "");
		int dup = 0;
		for (uint32_t q = 0; q < k && name; q++)
			dup |= !strcmp(t[q].t.name, full);
		if (!name || fl < 0 || (size_t)fl >= sizeof(full) || !fg_mcp_name_ok(full, (size_t)fl) ||
		    (size_t)fl >= sizeof(t[k].t.name) ||
		    strlen(name) >= sizeof(t[k].rname) || dup || k == MAX_TOOLS) {
			log_warnx("MCP server %s: tool \"%.80s\" left out (%s)", v->cfg->name,
				  name ? name : "(no name)", dup ? "listed twice" : k == MAX_TOOLS ?
				  "more than 128 tools" : "SERVER__TOOL is not 1 to 63 of [A-Za-z0-9_-]");
			skipped++;
			continue;
		}
		mtool_t *m = &t[k];
		memcpy(m->t.name, full, (size_t)fl + 1);   /* (63 at most: checked) */
		snprintf(m->rname, sizeof(m->rname), "%s", name);
		const char *d = json_string_value(json_object_get(it, "description"));
		m->desc = strndup(d ? d : name, MAX_DESC);
		json_t *sch = json_object_get(it, "inputSchema");
		m->schema = json_is_object(sch) ? json_dumps(sch, JSON_COMPACT)
						: strdup("{\"type\":\"object\"}");
		if (!m->desc || !m->schema) {
			free(m->desc);
			free(m->schema);
			continue;
		}
		size_t tb = strlen(m->desc) + strlen(m->schema) + (size_t)fl + 64;
		if (strlen(m->schema) > MAX_SCHEMA || bytes + tb > MAX_LISTING) {
			log_warnx("MCP server %s: tool \"%.80s\" left out (%s)", v->cfg->name, name,
				  strlen(m->schema) > MAX_SCHEMA ? "its inputSchema is over 64 KiB" :
				  "its tools' descriptions and schemas pass 1 MiB");
			free(m->desc);
			free(m->schema);
			skipped++;
			continue;
		}
		bytes += tb;
		m->t.description = m->desc;
		m->t.schema = m->schema;
		m->t.idempotent = (int)v->cfg->idempotent;
		m->t.kind = FG_TOOL_MCP;
		m->t.timeout_ms = v->cfg->timeout_ms;
		m->t.max_output = v->cfg->max_output;
		m->srv = v->idx;
		k++;
	}
	json_decref(v->listing);
	v->listing = NULL;
	if (!t) {
		srv_fail(w, v, "listed tools that do not fit in memory");
		return;
	}
	tools_free(v);
	v->tools = t;
	v->ntools = k;
	v->listed = 1;
	v->state = S_READY;
	v->ready_ns = fg_now_ns();
	v->first_done = 1;
	log_info("worker %u: MCP server %s ready (protocol %s): %u tools%s", w->slot, v->cfg->name,
		 v->proto, k, skipped ? " (some left out)" : "");
	tools_rebuild(w);
	flush_queue(w, v);
}

/* ---- starting, failing, restarting ---------------------------------------- */

/* The environment of a stdio server: forge's, with its env over it. */
static char **make_env(const fg_mcp_cfg_t *cfg)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **e = calloc(n + cfg->nenv + 1, sizeof(char *));
	if (!e)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int over = 0;
		for (uint32_t j = 0; j < cfg->nenv; j++)
			over |= !strncmp(cfg->env[j], environ[i], kl) && cfg->env[j][kl] == '=';
		if (!over)
			e[k++] = environ[i];
	}
	for (uint32_t j = 0; j < cfg->nenv; j++)
		e[k++] = (char *)cfg->env[j];
	return e;
}

static uint64_t ev_tag(uint64_t kind, const srv_t *v)
{
	return (kind << 32) | ((uint64_t)(v->gen & 0xffffff) << 8) | v->idx;
}

/* Spawns a stdio server: its stdin and stdout pipes non-blocking in the
 * worker's epoll, its pidfd too.  -1 with why. */
static int spawn(worker_t *w, srv_t *v, char *why, size_t whylen)
{
	const fg_mcp_cfg_t *cfg = v->cfg;
	char *argv[FG_MCP_ARGV + 1];
	char **envp = make_env(cfg);
	for (uint32_t i = 0; i < cfg->argc; i++)
		argv[i] = (char *)cfg->argv[i];
	argv[cfg->argc] = NULL;
	if (!envp) {
		snprintf(why, whylen, "could not be started: out of memory");
		return -1;
	}
	/* (no RLIMIT_AS: node reserves a large address space; RLIMIT_DATA is
	 * the worker's own, worker.memory_limit_mb, inherited; its stderr goes
	 * to forge's log) */
	pid_t p;
	int pfd, in, out;
	char err[300];
	int rc = fg_spawn(argv, envp, NULL, 0, &p, &pfd, &in, &out, err, sizeof(err));
	free(envp);
	if (rc < 0) {
		snprintf(why, whylen, "could not be started: %s", err);
		return -1;
	}
	fcntl(in, F_SETFL, O_NONBLOCK);
	fcntl(out, F_SETFL, O_NONBLOCK);
	fcntl(in, F_SETPIPE_SZ, 1 << 20);   /* (best effort: fewer partial writes) */
	v->gen++;
	v->pid = p;
	v->pidfd = pfd;
	v->infd = in;
	v->outfd = out;
	v->want_out = 0;
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = ev_tag(EV_MCP_OUT, v);
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, v->outfd, &ev);
	ev.data.u64 = ev_tag(EV_MCP_EXIT, v);
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, v->pidfd, &ev);
	return 0;
}

static void srv_start(worker_t *w, srv_t *v)
{
	char why[400];
	v->rn = v->wn = 0;
	v->answered = 0;
	v->ready_ns = 0;
	v->session[0] = '\0';
	v->proto[0] = '\0';
	if (!is_http(v) && spawn(w, v, why, sizeof(why)) < 0) {
		srv_fail(w, v, why);
		return;
	}
	if (is_http(v))
		v->gen++;
	v->state = S_INIT;
	json_t *params = json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", FG_MCP_PROTOCOL,
				   "capabilities", "clientInfo", "name", "forge", "version", "0.1.0");
	srv_request(w, v, K_INIT, "initialize", params, !params,
		    "could not be initialized: out of memory");
}

/* "exited (status N)" or "(killed by signal N)" of a reaped server. */
static void exit_text(const siginfo_t *si, char *out, size_t outlen)
{
	if (si->si_code == CLD_EXITED)
		snprintf(out, outlen, "exited (status %d)", si->si_status);
	else
		snprintf(out, outlen, "exited (killed by signal %d, %s)", si->si_status,
			 strsignal(si->si_status));
}

/*
 * The server is down: killed (a stdio server, with its process group) and
 * reaped, every call it was sent answered "error: MCP server NAME WHY; the
 * call may be retried" (WHY NULL: how it exited), calls not sent yet kept
 * for its next start, which is after the backoff.
 */
static void srv_fail(worker_t *w, srv_t *v, const char *why)
{
	char how[300];
	uint64_t now = fg_now_ns();
	if (v->pid) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int gone = waitid((idtype_t)P_PIDFD, (id_t)v->pidfd, &si, WEXITED | WNOHANG) == 0 &&
			   si.si_pid != 0;
		if (!gone) {
			kill(-v->pid, SIGKILL);
			kill(v->pid, SIGKILL);
		} else {
			kill(-v->pid, SIGKILL);   /* what it left behind in its group */
		}
		if (!why && !gone) {
			why = "closed its stdout";
		} else if (!why) {
			exit_text(&si, how, sizeof(how));
			why = how;
		}
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, v->outfd, NULL);
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, v->infd, NULL);
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, v->pidfd, NULL);
		close(v->outfd);
		close(v->infd);
		if (gone)
			close(v->pidfd);
		else
			reap_later(w, v->pidfd);
		v->pid = 0;
		v->outfd = v->infd = v->pidfd = -1;
	}
	if (!why)
		why = "went away";
	/* a start that failed fails the calls that waited for it too: the
	 * next start is a backoff away, and may fail the same way */
	v->start_failed = v->ready_ns == 0;
	size_t wl = strnlen(why, sizeof(v->last_why) - 1);
	memcpy(v->last_why, why, wl);
	v->last_why[wl] = '\0';
	v->gen++;   /* events of the old pipes are stale now */
	v->rn = v->wn = 0;
	v->eof_ns = 0;
	v->notes = 0;
	v->pinging = 0;
	json_decref(v->listing);
	v->listing = NULL;
	/* every call it was sent fails; calls not sent wait for the restart
	 * (unless this was a start that failed) */
	for (;;) {
		mcall_t *c = v->calls;
		while (c && !c->sent && !(v->start_failed && c->kind == K_CALL))
			c = c->next;
		if (!c)
			break;
		if (c->kind == K_CALL && !c->sent)
			call_finishf(w, c, "error: MCP server %s is down: it %s; the call may "
				     "be retried", v->cfg->name, v->last_why);
		else if (c->kind == K_CALL)
			call_finishf(w, c, "error: MCP server %s %s; %s", v->cfg->name, v->last_why,
				     after_sent(v));
		else
			call_finish(w, c, "");
	}
	/* a server that worked (answered a call, or stayed up) starts again
	 * soon; one that keeps failing before it does waits longer each time */
	if (v->answered || (v->ready_ns && now - v->ready_ns >= STABLE_NS))
		v->backoff_ms = BACKOFF_MIN_MS;
	if (!v->backoff_ms)
		v->backoff_ms = BACKOFF_MIN_MS;
	log_warnx("worker %u: MCP server %s %s; starting it again in %u ms (%llu lines not "
		  "JSON-RPC from it so far)", w->slot, v->cfg->name, why, v->backoff_ms,
		  (unsigned long long)v->garbage);
	v->state = S_BACKOFF;
	v->restart_ns = now + (uint64_t)v->backoff_ms * 1000000u;
	v->backoff_ms = v->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : v->backoff_ms * 2;
	v->first_done = 1;
}

/* ---- sending --------------------------------------------------------------- */

static void want_out(worker_t *w, srv_t *v, int on)
{
	if (v->want_out == on)
		return;
	struct epoll_event ev = { .events = EPOLLOUT };
	ev.data.u64 = ev_tag(EV_MCP_IN, v);
	epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, v->infd, &ev);
	v->want_out = on;
}

/* Writes what is pending on the server's stdin; -1 if it is closed. */
static int flush_out(worker_t *w, srv_t *v)
{
	size_t off = 0;
	while (off < v->wn) {
		ssize_t k = write(v->infd, v->wbuf + off, v->wn - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	memmove(v->wbuf, v->wbuf + off, v->wn - off);
	v->wn -= off;
	want_out(w, v, v->wn > 0);
	return 0;
}

static int stdio_write(worker_t *w, srv_t *v, const char *line, size_t n)
{
	if (!v->pid)
		return -1;
	if (v->wn + n > WBUF_MAX)
		return -1;   /* it does not read its stdin: failed as closed */
	if (v->wn + n > v->wcap) {
		size_t c = v->wcap ? v->wcap : 65536;
		while (c < v->wn + n)
			c *= 2;
		char *b = realloc(v->wbuf, c);
		if (!b)
			return -1;
		v->wbuf = b;
		v->wcap = c;
	}
	memcpy(v->wbuf + v->wn, line, n);
	v->wn += n;
	return flush_out(w, v);
}

static void on_http_done(fg_req_t *q);

/* Sends a request (c->rpc a fresh id) or, for K_NOTE, a notification.
 * -1: the transport is gone (the caller fails the server). */
static int srv_send(worker_t *w, srv_t *v, mcall_t *c, const char *method, const json_t *params)
{
	size_t n;
	c->rpc = c->kind == K_NOTE ? -1 : v->next_id++;
	char *line = fg_mcp_request(c->rpc, method, params, &n);
	if (!line)
		return -1;
	c->sent = 1;
	if (!is_http(v)) {
		int rc = stdio_write(w, v, line, n);
		free(line);
		return rc;
	}
	/* Streamable HTTP: one POST per message; the answer is JSON or an
	 * event stream holding it */
	const char *h[4] = { "Accept: application/json, text/event-stream", NULL, NULL, NULL };
	char sid[300], proto[80];
	int k = 1;
	if (v->session[0]) {
		snprintf(sid, sizeof(sid), "Mcp-Session-Id: %s", v->session);
		h[k++] = sid;
	}
	if (v->proto[0]) {
		snprintf(proto, sizeof(proto), "MCP-Protocol-Version: %s", v->proto);
		h[k++] = proto;
	}
	memset(&c->req, 0, sizeof(c->req));
	c->req.owner = c;
	c->req.done = on_http_done;
	c->req.max_reply = v->line_cap;
	c->req.extra_headers = h;
	c->req.capture_header = "Mcp-Session-Id";
	c->req.fresh = c->kind == K_CALL && !v->cfg->idempotent;   /* (sent once) */
	line[n - 1] = '\0';   /* (no newline in a POST body) */
	long t = (long)v->cfg->timeout_ms + 1000;   /* (the call's own deadline first) */
	if (fg_http_post(w->http, &c->req, v->cfg->url, line, n - 1, NULL, t, t) < 0) {
		log_warnx("worker %u: MCP server %s: %s", w->slot, v->cfg->name, c->req.errbuf);
		return -1;
	}
	c->in_http = 1;
	return 0;
}

/* tools/call of c, now that its server is READY. */
static void send_call(worker_t *w, srv_t *v, mcall_t *c)
{
	int known = 0;
	for (uint32_t i = 0; i < v->ntools && !known; i++)
		known = !strcmp(v->tools[i].rname, c->tool);
	if (!known) {
		call_finishf(w, c, "error: unknown tool \"%s__%s\"", v->cfg->name, c->tool);
		return;
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (!is_http(v) && waitid((idtype_t)P_PIDFD, (id_t)v->pidfd, &si,
				  WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0) {
		/* it died and the loop has not seen it yet: the call waits for
		 * its restart rather than fail on a closed pipe */
		uint32_t gen = v->gen;
		read_out(w, v);
		if (v->gen == gen)
			srv_fail(w, v, NULL);
		return;
	}
	json_t *args = json_loadb(c->args, c->argsn, 0, NULL);
	json_t *params = json_pack("{s:s,s:o}", "name", c->tool, "arguments",
				   args ? args : json_object());
	if (!params) {
		call_finishf(w, c, "error: out of memory calling MCP server %s", v->cfg->name);
		return;
	}
	c->due_ns = c->due_ns ? c->due_ns : fg_now_ns() + (uint64_t)v->cfg->timeout_ms * 1000000u;
	FG_CRASHPOINT("mcp.call.before_send");
	int rc = srv_send(w, v, c, "tools/call", params);
	json_decref(params);
	FG_CRASHPOINT("mcp.call.after_send");
	if (rc < 0) {
		if (is_http(v))
			call_finishf(w, c, "error: MCP server %s could not be reached; the call may "
				     "be retried", v->cfg->name);
		else
			srv_fail(w, v, "closed its stdin");
	}
}

/* The calls that waited for the server: sent now. */
static void flush_queue(worker_t *w, srv_t *v)
{
	uint32_t gen = v->gen;
	for (;;) {
		mcall_t *c = v->calls;
		while (c && (c->sent || c->kind != K_CALL))
			c = c->next;
		if (!c || v->state != S_READY || v->pinging || v->gen != gen)
			return;
		send_call(w, v, c);
	}
}

/* ---- what the server says --------------------------------------------------- */

static mcall_t *find_call(srv_t *v, int64_t id)
{
	for (mcall_t *c = v->calls; c; c = c->next)
		if (c->sent && c->rpc == id && c->kind != K_NOTE)
			return c;
	return NULL;
}

static void list_page(worker_t *w, srv_t *v, const char *cursor)
{
	json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;
	srv_request(w, v, K_LIST, "tools/list", params, cursor && !params,
		    "could not be listed: out of memory");
}

/* Its tools listed from the first page (calls made meanwhile wait). */
static void list_all(worker_t *w, srv_t *v)
{
	v->state = S_LIST;
	v->pages = 0;
	json_decref(v->listing);
	v->listing = json_array();
	list_page(w, v, NULL);
}

/* A response to call c (j borrowed). */
static void on_response(worker_t *w, srv_t *v, mcall_t *c, const json_t *j)
{
	json_t *res = json_object_get(j, "result"), *err = json_object_get(j, "error");
	char etext[512];
	if (err)
		fg_mcp_error_text(err, etext, sizeof(etext));
	if (c->kind == K_CALL) {
		if (err) {
			call_finishf(w, c, "error: MCP server %s: tools/call failed: %s", v->cfg->name,
				     etext);
			return;
		}
		v->answered = 1;
		char *text = fg_mcp_result_text(res, v->cfg->max_output);
		if (!text) {
			call_finishf(w, c, "error: out of memory reading the answer of MCP server %s",
				     v->cfg->name);
			return;
		}
		call_finish(w, c, text);
		free(text);
		return;
	}
	int kind = c->kind;
	call_finish(w, c, "");   /* (a control request: done with it) */
	if (kind == K_PING) {
		log_info("worker %u: MCP server %s answered a ping after a call timed out: kept",
			 w->slot, v->cfg->name);
		v->pinging = 0;
		flush_queue(w, v);   /* the calls made meanwhile */
		return;
	}
	char why[600];
	if (kind == K_INIT) {
		if (err || !json_is_object(res)) {
			snprintf(why, sizeof(why), "refused initialize: %s", err ? etext : "no result");
			srv_fail(w, v, why);
			return;
		}
		const char *pv = json_string_value(json_object_get(res, "protocolVersion"));
		snprintf(v->proto, sizeof(v->proto), "%s", pv && strlen(pv) < sizeof(v->proto) &&
			 !strpbrk(pv, "\r\n") ? pv : FG_MCP_PROTOCOL);
		uint32_t gen = v->gen;
		mcall_t *nc = srv_request(w, v, K_NOTE, "notifications/initialized", NULL, 0,
					  "could not be initialized: out of memory");
		if (!nc)
			return;
		if (!is_http(v))
			call_finish(w, nc, "");   /* (nothing comes back for it) */
		if (v->gen == gen)
			list_all(w, v);
		return;
	}
	/* K_LIST */
	json_t *tools = json_object_get(res, "tools");
	if (err || !json_is_array(tools)) {
		snprintf(why, sizeof(why), "refused tools/list: %s", err ? etext : "no tools array");
		srv_fail(w, v, why);
		return;
	}
	if (!v->listing)
		v->listing = json_array();
	json_array_extend(v->listing, tools);
	const char *next = json_string_value(json_object_get(res, "nextCursor"));
	if (next && *next && ++v->pages < MAX_PAGES) {
		list_page(w, v, next);
		return;
	}
	list_done(w, v);
}

/* Counts and reports (once per server) something that is not JSON-RPC. */
static void garbage(worker_t *w, srv_t *v, const char *p, size_t n)
{
	if (v->garbage++ == 0)
		log_warnx("worker %u: MCP server %s sent something that is not JSON-RPC 2.0: "
			  "\"%.*s\"%s (logged once; each time the server is restarted)", w->slot,
			  v->cfg->name, (int)(n < 120 ? n : 120), p, n > 120 ? "..." : "");
}

/* An unsolicited message (a notification, a request, an answer to nothing
 * of ours): counted; past NOTE_RATE in a second the server is failed (1). */
static int flooded(worker_t *w, srv_t *v)
{
	uint64_t now = fg_now_ns();
	if (now - v->note_ns >= 1000000000u) {
		v->note_ns = now;
		v->notes = 0;
	}
	if (++v->notes <= NOTE_RATE)
		return 0;
	char why[120];
	snprintf(why, sizeof(why), "sent more than %u unsolicited messages in a second", NOTE_RATE);
	srv_fail(w, v, why);
	return 1;
}

/* One message (parsed: j) from the server. */
static void on_message(worker_t *w, srv_t *v, json_t *j, const char *raw, size_t rawn)
{
	int64_t id;
	switch (fg_mcp_classify(j, &id)) {
	case FG_MCP_RESPONSE: {
		mcall_t *c = find_call(v, id);
		if (c)
			on_response(w, v, c, j);
		else if (!flooded(w, v))
			log_debug("MCP server %s: an answer to no call of ours (id %lld)",
				  v->cfg->name, (long long)id);
		return;
	}
	case FG_MCP_NOTIFICATION: {
		if (flooded(w, v))
			return;
		/* its tools changed: listed again (calls wait for the list) */
		if (!strcmp(json_string_value(json_object_get(j, "method")),
			    "notifications/tools/list_changed") && v->state == S_READY)
			list_all(w, v);
		return;
	}
	case FG_MCP_REQUEST: {
		if (flooded(w, v))
			return;
		/* the server asks us: ping is answered, the rest refused */
		const char *m = json_string_value(json_object_get(j, "method"));
		json_t *empty = json_object();
		size_t n;
		char *line = !strcmp(m, "ping")
			? fg_mcp_answer(json_object_get(j, "id"), empty, 0, NULL, &n)
			: fg_mcp_answer(json_object_get(j, "id"), NULL, -32601,
					"forge does not support this request", &n);
		json_decref(empty);
		if (line && !is_http(v) && stdio_write(w, v, line, n) < 0) {
			free(line);
			srv_fail(w, v, "closed its stdin");
			return;
		}
		free(line);
		return;
	}
	default:
		garbage(w, v, raw, rawn);
		srv_fail(w, v, "sent something that is not JSON-RPC 2.0");
	}
}

static void on_line(worker_t *w, srv_t *v, const char *p, size_t n)
{
	while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return;
	/* (a NUL in a text is cut there, not taken for garbage) */
	json_t *j = fg_mcp_parse(p, n);
	on_message(w, v, j, p, n);
	json_decref(j);
}

/* The server's stdout is readable: every whole line is handled. */
static void read_out(worker_t *w, srv_t *v)
{
	uint32_t gen = v->gen;
	char tmp[65536];
	/* 16 reads (1 MiB) at most, then back to the loop (epoll says it
	 * again): a server that never stops writing holds no other work up */
	for (int reads = 0; reads < 16; reads++) {
		ssize_t r = read(v->outfd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;   /* EAGAIN: all read */
		if (r == 0) {
			/* it closed stdout: it exits, most likely; its pidfd
			 * says how (or, if it lingers, it is killed) */
			if (!v->eof_ns) {
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, v->outfd, NULL);
				v->eof_ns = fg_now_ns() + 1000000000u;
			}
			return;
		}
		const char *p = tmp, *end = tmp + r;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (v->rn + k > v->line_cap) {
				char why[120];
				snprintf(why, sizeof(why), "answered a line longer than %zu bytes",
					 v->line_cap);
				srv_fail(w, v, why);
				return;
			}
			if (nl && v->rn == 0) {
				on_line(w, v, p, k);   /* (whole in this read: no copy) */
			} else {
				if (v->rn + k > v->rcap) {
					size_t c = v->rcap ? v->rcap : 65536;
					while (c < v->rn + k)
						c *= 2;
					char *b = realloc(v->rbuf, c);
					if (!b) {
						srv_fail(w, v, "answered a line that does not fit in memory");
						return;
					}
					v->rbuf = b;
					v->rcap = c;
				}
				memcpy(v->rbuf + v->rn, p, k);
				v->rn += k;
				if (nl) {
					size_t ln = v->rn;
					v->rn = 0;
					on_line(w, v, v->rbuf, ln);
				}
			}
			if (v->gen != gen)
				return;   /* (the server failed on that line) */
			p += k + (nl ? 1 : 0);
		}
	}
}

/* ---- Streamable HTTP ------------------------------------------------------------ */

static void on_http_done(fg_req_t *q)
{
	worker_t *w = wk_self;
	mcall_t *c = q->owner;
	srv_t *v = c->v;
	c->in_http = 0;
	if (c->kind == K_INIT && q->captured[0])
		snprintf(v->session, sizeof(v->session), "%s", q->captured);
	char why[400];
	json_t *j = NULL;
	/* (a connection never made: the call was not delivered) */
	int unsent = q->curl_rc == CURLE_COULDNT_CONNECT || q->curl_rc == CURLE_COULDNT_RESOLVE_HOST;
	if (q->curl_rc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s: %s", q->too_large ? "answered" : "could not be reached",
			 q->too_large ? "an answer over its size cap" : q->errbuf[0] ? q->errbuf :
			 curl_easy_strerror(q->curl_rc));
	} else if (c->kind == K_NOTE) {
		fg_req_reset(q);
		call_finish(w, c, "");
		return;
	} else if (q->status == 404 && v->session[0]) {
		snprintf(why, sizeof(why), "forgot its session (HTTP 404)");
	} else if (q->status < 200 || q->status > 299) {
		snprintf(why, sizeof(why), "answered HTTP %ld", q->status);
	} else {
		if (!strncasecmp(q->ctype, "text/event-stream", 17))
			j = fg_mcp_sse_find(q->body ? q->body : "", q->n, c->rpc);
		else
			j = fg_mcp_parse(q->body ? q->body : "", q->n);
		int64_t id;
		if (fg_mcp_classify(j, &id) != FG_MCP_RESPONSE || id != c->rpc) {
			garbage(w, v, q->body ? q->body : "", q->n);
			snprintf(why, sizeof(why), "answered something that is not a JSON-RPC answer");
			json_decref(j);
			j = NULL;
		}
	}
	fg_req_reset(q);
	if (j) {
		on_response(w, v, c, j);
		json_decref(j);
		return;
	}
	if (c->kind == K_CALL) {
		int again = q->status == 404;
		call_finishf(w, c, "error: MCP server %s %s; %s", v->cfg->name, why,
			     c->sent && !unsent ? after_sent(v) : "the call may be retried");
		if (again)
			srv_fail(w, v, why);   /* a new session */
		return;
	}
	call_finish(w, c, "");
	srv_fail(w, v, why);
}

/* ---- the worker's side -------------------------------------------------------------- */

int wk_mcp_init(worker_t *w)
{
	if (!w->cfg->nmcp)
		return 0;
	w->mcp = calloc(1, sizeof(*w->mcp));
	if (!w->mcp)
		return -1;
	/* a server that closed its stdin must not kill the worker: EPIPE */
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe, NULL);
	w->mcp->n = w->cfg->nmcp;
	/* The worker takes sessions once each server is listed (or failed),
	 * so that models see its tools from the first turn; a server slow to
	 * start holds it back GATE_NS at most. */
	w->mcp->gate_ns = fg_now_ns() + GATE_NS;
	for (uint32_t i = 0; i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		v->cfg = &w->cfg->mcp[i];
		v->idx = i;
		v->pidfd = v->infd = v->outfd = -1;
		v->next_id = 1;
		v->line_cap = (size_t)v->cfg->max_output * 2 + 65536;   /* (JSON escapes, envelope) */
		v->backoff_ms = BACKOFF_MIN_MS;
	}
	for (uint32_t i = 0; i < MAX_REAP; i++)
		w->mcp->reap[i] = -1;
	for (uint32_t i = 0; i < w->mcp->n; i++)
		srv_start(w, &w->mcp->srv[i]);
	return 0;
}

/*
 * A Streamable HTTP server's session ends with this worker: it is told so
 * (DELETE with Mcp-Session-Id, as the specification asks of a client that
 * no longer needs one), so that a server does not keep the session of
 * every worker that ever stopped.  Waited for 500 ms at most (timeout_ms
 * if less): the worker has handed its sessions back already.
 */
static void end_http_session(worker_t *w, srv_t *v)
{
	char sid[300], proto[80], eb[256];
	const char *h[3] = { sid, NULL, NULL };
	snprintf(sid, sizeof(sid), "Mcp-Session-Id: %s", v->session);
	if (v->proto[0]) {
		snprintf(proto, sizeof(proto), "MCP-Protocol-Version: %s", v->proto);
		h[1] = proto;
	}
	long t = v->cfg->timeout_ms < 500 ? (long)v->cfg->timeout_ms : 500;
	long st = fg_http_delete_sync(v->cfg->url, h, t, eb, sizeof(eb));
	if (st < 0)
		log_info("worker %u: MCP server %s: ending its session: %s", w->slot, v->cfg->name, eb);
	else if (st >= 300 && st != 404 && st != 405)   /* (405: the server keeps sessions) */
		log_info("worker %u: MCP server %s: ending its session: HTTP %ld", w->slot,
			 v->cfg->name, st);
	else
		log_debug("worker %u: MCP server %s: session ended (HTTP %ld)", w->slot,
			  v->cfg->name, st);
	v->session[0] = '\0';
}

void wk_mcp_free(worker_t *w)
{
	if (!w->mcp)
		return;
	for (uint32_t i = 0; i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		while (v->calls) {
			mcall_t *c = v->calls;
			v->calls = c->next;
			if (c->s)
				c->s->nmcp--;
			free_call(w, c);
		}
		if (is_http(v) && v->session[0])
			end_http_session(w, v);
		if (v->pid) {
			kill(-v->pid, SIGKILL);
			kill(v->pid, SIGKILL);
			siginfo_t si;
			waitid((idtype_t)P_PIDFD, (id_t)v->pidfd, &si, WEXITED);
			close(v->outfd);
			close(v->infd);
			close(v->pidfd);
			v->pid = 0;
		}
		free(v->wbuf);
		free(v->rbuf);
		json_decref(v->listing);
		tools_free(v);
	}
	for (uint32_t i = 0; i < MAX_REAP; i++)
		if (w->mcp->reap[i] >= 0) {
			siginfo_t si;
			waitid((idtype_t)P_PIDFD, (id_t)w->mcp->reap[i], &si, WEXITED);
			close(w->mcp->reap[i]);
		}
	free(w->mcp);
	w->mcp = NULL;
}

void wk_mcp_tools_json(worker_t *w)
{
	tools_rebuild(w);
}

int wk_mcp_intake_ok(const worker_t *w)
{
	if (w->mcp && fg_now_ns() >= w->mcp->gate_ns)
		return 1;
	for (uint32_t i = 0; w->mcp && i < w->mcp->n; i++)
		if (!w->mcp->srv[i].first_done)
			return 0;
	return 1;
}

int wk_mcp_busy(const worker_t *w)
{
	for (uint32_t i = 0; w->mcp && i < w->mcp->n; i++)
		if (w->mcp->srv[i].calls || w->mcp->srv[i].eof_ns || w->mcp->srv[i].state == S_INIT ||
		    w->mcp->srv[i].state == S_LIST)
			return 1;
	return 0;
}

const fg_tool_t *wk_mcp_tool(worker_t *w, const char *name, size_t n)
{
	const char *sep = w->mcp ? memmem(name, n, "__", 2) : NULL;
	if (!sep || sep + 2 == name + n)
		return NULL;
	size_t sl = (size_t)(sep - name), tl = n - sl - 2;
	for (uint32_t i = 0; i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		if (strlen(v->cfg->name) != sl || memcmp(v->cfg->name, name, sl))
			continue;
		for (uint32_t k = 0; k < v->ntools; k++)
			if (strlen(v->tools[k].t.name) == n && !memcmp(v->tools[k].t.name, name, n))
				return &v->tools[k].t;
		if (v->state == S_READY || tl >= sizeof(w->mcp->scratch.rname) ||
		    n >= sizeof(w->mcp->scratch.t.name))
			return NULL;
		/* not in its list, and it is being listed (it starts, restarts
		 * or said its tools changed): the call waits for the list */
		mtool_t *m = &w->mcp->scratch;
		memset(m, 0, sizeof(*m));
		memcpy(m->t.name, name, n);
		memcpy(m->rname, sep + 2, tl);
		m->t.description = m->t.schema = "";
		m->t.idempotent = (int)v->cfg->idempotent;
		m->t.kind = FG_TOOL_MCP;
		m->t.timeout_ms = v->cfg->timeout_ms;
		m->t.max_output = v->cfg->max_output;
		m->srv = i;
		return &m->t;
	}
	return NULL;
}

int wk_mcp_call(worker_t *w, wsess_t *s, const fg_tool_t *t, fg_str_t id, fg_str_t args,
		int edited, char *out, size_t outlen)
{
	const mtool_t *m = (const mtool_t *)t;
	srv_t *v = &w->mcp->srv[m->srv];
	json_t *j = json_loadb(args.p, args.n, 0, NULL);
	int ok = json_is_object(j);
	json_decref(j);
	if (!ok) {
		snprintf(out, outlen, "error: arguments are not a JSON object");
		return -1;
	}
	if (v->state == S_BACKOFF && v->start_failed) {
		snprintf(out, outlen, "error: MCP server %s is down: it %s; the call may be "
			 "retried", v->cfg->name, v->last_why);
		return -1;
	}
	mcall_t *c = calloc(1, sizeof(*c));
	char *a = malloc(args.n + 1);
	if (!c || !a || id.n > sizeof(c->id)) {
		free(c);
		free(a);
		snprintf(out, outlen, "error: out of memory calling MCP server %s", v->cfg->name);
		return -1;
	}
	memcpy(a, args.p, args.n);
	a[args.n] = '\0';
	c->kind = K_CALL;
	c->v = v;
	c->s = s;
	memcpy(c->id, id.p, id.n);
	c->idn = (uint16_t)id.n;
	snprintf(c->tool, sizeof(c->tool), "%s", m->rname);
	c->args = a;
	c->argsn = args.n;
	c->edited = edited;
	c->due_ns = fg_now_ns() + (uint64_t)v->cfg->timeout_ms * 1000000u;
	/* at the end of the list: calls are sent in the order they were made */
	mcall_t **pp = &v->calls;
	while (*pp)
		pp = &(*pp)->next;
	*pp = c;
	s->nmcp++;
	if (v->state == S_READY && !v->pinging)
		send_call(w, v, c);
	return 0;
}

int wk_mcp_running(const worker_t *w, const wsess_t *s, fg_str_t id)
{
	for (uint32_t i = 0; w->mcp && s->nmcp && i < w->mcp->n; i++)
		for (const mcall_t *c = w->mcp->srv[i].calls; c; c = c->next)
			if (c->kind == K_CALL && c->s == s && c->idn == id.n &&
			    !memcmp(c->id, id.p, id.n))
				return 1;
	return 0;
}

void wk_mcp_forget(worker_t *w, wsess_t *s)
{
	for (uint32_t i = 0; w->mcp && s->nmcp && i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		for (mcall_t **pp = &v->calls; *pp;) {
			mcall_t *c = *pp;
			if (c->kind != K_CALL || c->s != s) {
				pp = &c->next;
				continue;
			}
			s->nmcp--;
			c->s = NULL;
			*pp = c->next;
			if (c->sent && !is_http(v) && v->pid) {
				/* the server is told; an answer that comes anyway
				 * is to no call of ours, and dropped */
				json_t *p = json_pack("{s:I,s:s}", "requestId", (json_int_t)c->rpc,
						      "reason", "the session no longer waits for it");
				size_t n;
				char *line = p ? fg_mcp_request(-1, "notifications/cancelled", p, &n) : NULL;
				if (line)
					stdio_write(w, v, line, n);   /* (a closed pipe: seen later) */
				free(line);
				json_decref(p);
			}
			free_call(w, c);
		}
	}
	s->nmcp = 0;
}

static uint64_t ping_ms(const srv_t *v)
{
	return v->cfg->timeout_ms < PING_MAX_MS ? v->cfg->timeout_ms : PING_MAX_MS;
}

/* A call to a stdio server went unanswered: the server is told to stop it,
 * and pinged (unless a ping is out already).  Alive if it answers the
 * ping (even with an error); killed and restarted if not (wk_mcp_tick). */
static void after_timeout(worker_t *w, srv_t *v, int64_t rpc)
{
	json_t *p = json_pack("{s:I,s:s}", "requestId", (json_int_t)rpc,
			      "reason", "no answer within the timeout (tools.mcp.NAME.timeout_ms)");
	size_t n;
	char *line = p ? fg_mcp_request(-1, "notifications/cancelled", p, &n) : NULL;
	json_decref(p);
	if (line)
		stdio_write(w, v, line, n);   /* (a closed pipe: seen later) */
	free(line);
	if (!v->pid || v->pinging)
		return;
	mcall_t *c = srv_request(w, v, K_PING, "ping", NULL, 0,
				 "was restarted: a call got no answer, and it could not be "
				 "pinged: out of memory");
	if (c) {
		c->due_ns = fg_now_ns() + ping_ms(v) * 1000000u;
		v->pinging = 1;
	}
}

uint64_t wk_mcp_next_due(const worker_t *w)
{
	uint64_t due = UINT64_MAX;
	for (uint32_t i = 0; w->mcp && i < w->mcp->n; i++) {
		const srv_t *v = &w->mcp->srv[i];
		if (v->state == S_BACKOFF && v->restart_ns < due)
			due = v->restart_ns;
		if (v->eof_ns && v->eof_ns < due)
			due = v->eof_ns;
		for (const mcall_t *c = v->calls; c; c = c->next)
			if (c->due_ns < due)
				due = c->due_ns;
	}
	return due;
}

void wk_mcp_tick(worker_t *w)
{
	if (!w->mcp)
		return;
	uint64_t now = fg_now_ns();
	for (uint32_t i = 0; i < w->mcp->n; i++) {
		srv_t *v = &w->mcp->srv[i];
		for (;;) {
			mcall_t *c = v->calls;
			while (c && c->due_ns > now)
				c = c->next;
			if (!c)
				break;
			char why[200];
			if (c->kind == K_CALL && !c->sent) {
				call_finishf(w, c, "error: MCP server %s was not ready within %u ms; "
					     "the call may be retried", v->cfg->name, v->cfg->timeout_ms);
			} else if (c->kind == K_CALL) {
				int64_t rpc = c->rpc;
				call_finishf(w, c, "error: MCP server %s did not answer tools/call "
					     "within %u ms", v->cfg->name, v->cfg->timeout_ms);
				if (!is_http(v))
					after_timeout(w, v, rpc);
			} else if (c->kind == K_PING) {
				snprintf(why, sizeof(why), "was restarted: a call got no answer within "
					 "%u ms, and a ping none within %llu ms", v->cfg->timeout_ms,
					 (unsigned long long)ping_ms(v));
				call_finish(w, c, "");
				srv_fail(w, v, why);
			} else if (c->kind == K_NOTE) {
				call_finish(w, c, "");
			} else {
				snprintf(why, sizeof(why), "did not answer %s within %u ms",
					 c->kind == K_INIT ? "initialize" : "tools/list",
					 v->cfg->timeout_ms);
				call_finish(w, c, "");
				srv_fail(w, v, why);
			}
		}
		if (v->eof_ns && v->eof_ns <= now)
			srv_fail(w, v, "closed its stdout");
		if (v->state == S_BACKOFF && v->restart_ns <= now)
			srv_start(w, v);
	}
}

void wk_mcp_event(worker_t *w, uint64_t data, uint32_t events)
{
	uint64_t tag = data >> 32;
	uint32_t low = (uint32_t)data, idx = low & 0xff;
	if (w->mcp && tag == EV_MCP_REAP && low < MAX_REAP && w->mcp->reap[low] >= 0) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)w->mcp->reap[low], &si, WEXITED | WNOHANG) == 0 &&
		    si.si_pid != 0) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->mcp->reap[low], NULL);
			close(w->mcp->reap[low]);
			w->mcp->reap[low] = -1;
		}
		return;
	}
	if (!w->mcp || idx >= w->mcp->n)
		return;
	srv_t *v = &w->mcp->srv[idx];
	if (!v->pid || (low >> 8) != (v->gen & 0xffffff))
		return;   /* a stale event of a server since restarted */
	if (tag == EV_MCP_OUT) {
		read_out(w, v);
	} else if (tag == EV_MCP_IN) {
		if (flush_out(w, v) < 0)
			srv_fail(w, v, "closed its stdin");
	} else if (tag == EV_MCP_EXIT) {
		read_out(w, v);   /* what it wrote before it exited */
		if (v->pid && (low >> 8) == (v->gen & 0xffffff))
			srv_fail(w, v, NULL);
	}
	(void)events;
}
