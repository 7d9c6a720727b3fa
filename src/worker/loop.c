/*
 * worker.c — the worker event loop.
 *
 * Each loop iteration: beat the heartbeat; take new sessions while there is
 * room (own ring first, then steal from the others); run ready steps; fire
 * due timers; sleep on the region's doorbell when there is nothing at all,
 * or in epoll_wait when sessions wait on timers.
 *
 * A session here is a local struct naming the record (idx), its lease
 * entry and a copy of its last committed state.  The copy is only a cache:
 * the truth is the committed checkpoint, which is what a resumed session
 * starts from after this process dies.
 *
 * Workflows:
 *   synthetic  K steps, each folding its number into a checksum.
 *   react      model turn -> tool calls -> results -> model turn ... until
 *              a final answer.  What to do next is read from the committed
 *              conversation (workflow.c), so a resumed session continues
 *              exactly where the dead one's last commit left it.  A model
 *              turn is an HTTP request in flight (http.c) or, for the
 *              scripted provider, an immediate reply; every reply and every
 *              tool result is committed before anything depends on it.
 *
 * Drain (SIGTERM, or the header's draining flag): no more claims; each
 * in-flight session's current step is abandoned (an LLM request is aborted:
 * LLM calls may rerun) and the session is released back to QUEUED at its
 * last checkpoint; then exit 0.
 */
#include "forge/worker.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/httpc.h"
#include "forge/llm.h"
#include "forge/tool.h"
#include "forge/views.h"
#include "forge/log.h"
#include "forge/rate.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct wsess {
	uint32_t idx;
	uint32_t entry;
	uint64_t due_ns;        /* timer deadline while waiting */
	fg_wstate_t st;         /* last committed state         */
	uint16_t workflow;
	uint32_t steps, delay_us, provider;
	struct wsess *next;     /* run queue / free list        */
	uint32_t heap_pos;
	uint8_t live;           /* holds a session              */
	uint8_t in_rq;          /* on the run queue             */
	uint8_t cancel_pending; /* cancelled: end at its next step */
	int in_http;            /* an LLM request is in flight  */
	uint32_t attempts;      /* failed tries of this request */
	fg_req_t req;
	/* tool calls running for this session: process tools (procs, several at
	 * once) and at most one http_get (req, while no LLM request is) */
	struct proc *procs;     /* FG_MAX_CALLS slots, allocated on first use */
	uint32_t nprocs;        /* running                      */
	struct {
		const fg_tool_t *tool;
		char id[256];
		uint16_t idn;
	} web;                  /* the http_get in flight (in_http set) */
} wsess_t;

typedef struct proc {
	pid_t pid;              /* 0: slot free                 */
	int pidfd, outfd;
	const fg_tool_t *tool;
	char id[256];           /* the call it answers          */
	uint16_t idn;
	char *out;
	size_t n;
	int truncated, timed_out;
	uint64_t due_ns;        /* its timeout                  */
} proc_t;

typedef struct worker {
	fg_region_t *r;
	fg_actor_t a;
	const fg_config_t *cfg;
	uint32_t slot, nworkers, max_inflight, inflight;
	wsess_t *pool, *free;
	wsess_t *rq_head, *rq_tail;
	wsess_t **heap;         /* min-heap on due_ns */
	uint32_t nheap;
	int epfd, sigfd, tfd;
	uint32_t wait_failures; /* consecutive failed epoll waits */
	int stop;
	uint64_t next_sig_check;
	uint32_t steal_from;
	fg_http_t *http;
	json_t *tools;          /* the tools array sent to models */
	char *tools_str;        /* ... serialized once            */
	uint8_t *scratch;       /* records built before a commit  */
	uint32_t scratch_n;
	fg_ring_watch_t *watch; /* per ring: a head cell seen stalled */
	uint64_t parked;        /* parents parked (for the log)   */
} worker_t;

static worker_t *self_w;   /* the one worker of this process (for callbacks) */

/* ---- timer heap --------------------------------------------------- */

static void heap_swap(worker_t *w, uint32_t i, uint32_t j)
{
	wsess_t *t = w->heap[i];
	w->heap[i] = w->heap[j];
	w->heap[j] = t;
	w->heap[i]->heap_pos = i;
	w->heap[j]->heap_pos = j;
}

static void heap_push(worker_t *w, wsess_t *s)
{
	uint32_t i = w->nheap++;
	w->heap[i] = s;
	s->heap_pos = i;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (w->heap[p]->due_ns <= w->heap[i]->due_ns)
			break;
		heap_swap(w, i, p);
		i = p;
	}
}

static void sift_down(worker_t *w, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, rr = l + 1, m = i;
		if (l < w->nheap && w->heap[l]->due_ns < w->heap[m]->due_ns)
			m = l;
		if (rr < w->nheap && w->heap[rr]->due_ns < w->heap[m]->due_ns)
			m = rr;
		if (m == i)
			break;
		heap_swap(w, i, m);
		i = m;
	}
}

static wsess_t *heap_pop(worker_t *w)
{
	wsess_t *top = w->heap[0];
	w->heap[0] = w->heap[--w->nheap];
	w->heap[0]->heap_pos = 0;
	uint32_t i = 0;
	sift_down(w, i);
	return top;
}

static void heap_remove(worker_t *w, wsess_t *s)
{
	uint32_t i = s->heap_pos;
	if (i >= w->nheap || w->heap[i] != s)
		return;
	w->nheap--;
	if (i == w->nheap)
		return;
	w->heap[i] = w->heap[w->nheap];
	w->heap[i]->heap_pos = i;
	/* restore the heap property both ways */
	while (i > 0 && w->heap[(i - 1) / 2]->due_ns > w->heap[i]->due_ns) {
		heap_swap(w, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	sift_down(w, i);
}

/* ---- run queue ----------------------------------------------------- */

static void rq_push(worker_t *w, wsess_t *s)
{
	s->in_rq = 1;
	s->next = NULL;
	if (w->rq_tail)
		w->rq_tail->next = s;
	else
		w->rq_head = s;
	w->rq_tail = s;
}

static wsess_t *rq_pop(worker_t *w)
{
	wsess_t *s = w->rq_head;
	if (s) {
		s->in_rq = 0;
		w->rq_head = s->next;
		if (!w->rq_head)
			w->rq_tail = NULL;
	}
	return s;
}

static void sess_free(worker_t *w, wsess_t *s)
{
	s->live = 0;
	s->cancel_pending = 0;
	s->next = w->free;
	w->free = s;
	w->inflight--;
}

/* Waits for the session's delay (if any) before its next step. */
static void schedule(worker_t *w, wsess_t *s)
{
	if (s->delay_us == 0) {
		rq_push(w, s);
		return;
	}
	s->due_ns = fg_now_ns() + (uint64_t)s->delay_us * 1000u;
	heap_push(w, s);
}

/* ---- intake --------------------------------------------------------- */

static int take_one(worker_t *w, uint32_t ring)
{
	uint32_t idx;
	fg_ringref_t rr = fg_ring_ref(w->r, ring);
	if (fg_ring_dequeue_mc(rr, &idx, w->a.self) < 0) {
		/* empty, or its head held by a producer that stopped between
		 * claim and publish: past FG_RING_STALL_NS, skip past it */
		fg_ring_unstall_mc(rr, &w->watch[ring], fg_now_ns(), FG_RING_STALL_NS);
		return 0;
	}
	if (idx >= w->r->hdr->capacity) {   /* FG_RING_SKIP, or damage */
		fg_ring_intent_clear(w->a.self);
		return 1;
	}
	wsess_t *s = w->free;
	uint32_t entry;
	if (fg_session_claim(&w->a, idx, &entry) < 0) {
		fg_ring_intent_clear(w->a.self);
		return 1;   /* stale or duplicate hint: skipped (rule 1) */
	}
	fg_ring_intent_clear(w->a.self);
	w->free = s->next;
	w->inflight++;
	fg_session_t *rec = fg_sess(w->r, idx);
	s->idx = idx;
	s->entry = entry;
	s->workflow = rec->workflow;
	s->steps = rec->steps;
	s->delay_us = rec->workflow == FG_WF_SYNTHETIC ? rec->arg : 0;
	s->provider = rec->workflow == FG_WF_SYNTHETIC ? 0 : rec->arg;
	s->in_http = 0;
	s->attempts = 0;
	s->live = 1;
	s->cancel_pending = 0;
	fg_session_read(w->r, idx, &s->st);
	schedule(w, s);
	return 1;
}

/* Takes up to `room` sessions; returns how many hints were looked at. */
static uint32_t intake(worker_t *w, uint32_t room)
{
	uint32_t n = 0, seen = 0;
	uint32_t nw = atomic_load_explicit(&w->r->hdr->cfg_workers, memory_order_relaxed);
	if (nw == 0 || nw > w->r->hdr->nrings)
		nw = 1;
	/* own ring (if this slot still has one), then the others in turn */
	for (uint32_t k = 0; k < nw && n < room; k++) {
		uint32_t ring = k == 0 && w->slot < nw ? w->slot : (w->steal_from++ % nw);
		while (n < room && w->free) {
			uint32_t before = w->inflight;
			if (!take_one(w, ring))
				break;
			seen++;
			n += w->inflight - before;
		}
		if (n > 0)
			break;
	}
	return seen;
}

/* ---- synthetic ---------------------------------------------------------- */

static void proc_kill_all(worker_t *w, wsess_t *s);

/* Ends a session: whatever still runs for it (other tool calls) is stopped
 * first, so that no event can reach its slot once it is reused. */
static void finish(worker_t *w, wsess_t *s, uint32_t state)
{
	if (s->nprocs)
		proc_kill_all(w, s);
	if (s->in_http) {
		fg_http_cancel(w->http, &s->req);
		s->in_http = 0;
	}
	int rc = fg_session_finish(&w->a, s->idx, s->entry, state);
	if (rc < 0 && rc != -ECANCELED)
		log_warnx("session %u: lost its lease before finishing", s->idx);
	sess_free(w, s);
}


static void synthetic_step(worker_t *w, wsess_t *s)
{
	/* Resumed after its last step was committed but before it finished:
	 * finish it, do not step again. */
	if (s->st.step >= s->steps) {
		finish(w, s, FG_S_DONE);
		return;
	}
	fg_wstate_t st = s->st;
	st.step++;
	st.checksum = fg_synthetic_fold(st.checksum, st.step);
	if (fg_session_commit(&w->a, s->idx, &st, NULL, 0) < 0) {
		log_warnx("session %u: checkpoint commit failed", s->idx);
		fg_session_finish(&w->a, s->idx, s->entry, FG_S_FAILED);
		sess_free(w, s);
		return;
	}
	s->st = st;
	if (st.step >= s->steps) {
		finish(w, s, FG_S_DONE);
		return;
	}
	schedule(w, s);
}

/* ---- react ------------------------------------------------------------------ */

/* Commits an ERROR record (if it fits) and finishes the session FAILED. */
static void react_fail(worker_t *w, wsess_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void react_fail(worker_t *w, wsess_t *s, const char *fmt, ...)
{
	char msg[400];
	uint8_t rec[420];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_debug("session %u failed: %s", s->idx, msg);
	fg_buf_t b = { rec, 0, sizeof(rec), 0 };
	fg_buf_rec(&b, FG_REC_ERROR, msg, strlen(msg));
	fg_wstate_t st = s->st;
	st.status = FG_WS_FAILED;
	if (fg_session_commit(&w->a, s->idx, &st, rec, b.n) < 0)
		fg_session_commit(&w->a, s->idx, &st, NULL, 0);   /* log full: state only */
	finish(w, s, FG_S_FAILED);
}

/* Commits what b holds with st; fails the session if the log is full. */
static int react_commit(worker_t *w, wsess_t *s, fg_wstate_t *st, fg_buf_t *b)
{
	if (b->overflow || fg_session_commit(&w->a, s->idx, st, b->p, b->n) < 0) {
		react_fail(w, s, "checkpoint log full (%u bytes per session): raise "
			   "region.checkpoint_bytes", w->r->hdr->log_bytes);
		return -1;
	}
	s->st = *st;
	return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A model turn arrived: commit it (usage + calls or final answer). */
static void on_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
	uint8_t u[8];
	put_u32(u, r->prompt_tokens);
	put_u32(u + 4, r->completion_tokens);
	fg_buf_rec(&b, FG_REC_USAGE, u, 8);
	if (r->ncalls)
		fg_buf_toolcalls(&b, r->calls, r->ncalls);
	else
		fg_buf_rec(&b, FG_REC_ASSISTANT, r->content, r->content_n);
	fg_wstate_t st = s->st;
	st.step++;
	st.aux[0] += r->prompt_tokens;
	st.aux[1] += r->completion_tokens;
	if (react_commit(w, s, &st, &b) < 0)
		return;
	s->attempts = 0;
	if (s->provider < w->cfg->nproviders && w->cfg->providers[s->provider].rate_tpm)
		fg_rate_tokens(&w->r->hdr->rate[s->provider].tok_tat,
			       w->cfg->providers[s->provider].rate_tpm,
			       (uint64_t)r->prompt_tokens + r->completion_tokens, fg_now_ns());
	fg_slot_t *me = w->a.self;
	atomic_fetch_add_explicit(&me->llm_calls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&me->tokens_prompt, r->prompt_tokens, memory_order_relaxed);
	atomic_fetch_add_explicit(&me->tokens_completion, r->completion_tokens, memory_order_relaxed);
	if (r->ncalls == 0)
		finish(w, s, FG_S_DONE);
	else
		rq_push(w, s);   /* the tools run in its next step */
}

/* Waits before trying the same model turn again. */
static void retry_later(worker_t *w, wsess_t *s, long retry_after_s, const char *why)
{
	const fg_provider_cfg_t *p = &w->cfg->providers[s->provider];
	if (++s->attempts > p->max_retries) {
		react_fail(w, s, "LLM request failed after %u attempts: %s", s->attempts, why);
		return;
	}
	atomic_fetch_add_explicit(&w->a.self->llm_retries, 1, memory_order_relaxed);
	uint64_t ms;
	if (retry_after_s > 0) {
		ms = (uint64_t)(retry_after_s > 60 ? 60 : retry_after_s) * 1000u;
	} else {
		ms = (uint64_t)p->retry_base_ms << (s->attempts - 1 < 16 ? s->attempts - 1 : 16);
		if (ms > 30000)
			ms = 30000;
		ms = ms / 2 + (uint64_t)random() % (ms / 2 + 1);   /* jitter: 50-100% */
	}
	log_debug("session %u: %s; retry %u in %llu ms", s->idx, why, s->attempts,
		  (unsigned long long)ms);
	s->due_ns = fg_now_ns() + ms * 1000000u;
	heap_push(w, s);
}

/* A step that could not get memory (a worker at worker.memory_limit_mb, or
 * a host out of it): not the session's fault, so it is retried like a
 * failed request; counted, and logged at most once a second. */
static void oom_retry(worker_t *w, wsess_t *s, const char *why)
{
	static uint64_t last_log_ns;
	uint64_t now = fg_now_ns();
	atomic_fetch_add_explicit(&w->a.self->llm_oom, 1, memory_order_relaxed);
	if (now - last_log_ns > 1000000000ull) {
		last_log_ns = now;
		if (w->cfg->memory_limit_mb)
			log_warnx("worker %u: %s (worker.memory_limit_mb is %u); retrying", w->slot,
				  why, w->cfg->memory_limit_mb);
		else
			log_warnx("worker %u: %s; retrying", w->slot, why);
	}
	retry_later(w, s, -1, why);
}

static void mr_on_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r);

static void start_oom(worker_t *w, const char *what)
{
	if (w->cfg->memory_limit_mb)
		log_errx("worker %u: out of memory at start for %s: worker.memory_limit_mb (%u) "
			 "is too small for this configuration", w->slot, what,
			 w->cfg->memory_limit_mb);
	else
		log_errx("worker %u: out of memory at start for %s", w->slot, what);
}

static void on_http_done(fg_req_t *q)
{
	worker_t *w = self_w;
	wsess_t *s = q->owner;
	char why[400];
	s->in_http = 0;
	if ((q->curl_rc == CURLE_WRITE_ERROR && q->oom) || q->curl_rc == CURLE_OUT_OF_MEMORY) {
		fg_req_reset(q);
		oom_retry(w, s, "out of memory for the reply");
		return;
	}
	if (q->curl_rc == CURLE_WRITE_ERROR && q->too_large) {
		fg_req_reset(q);
		react_fail(w, s, "LLM reply larger than %zu bytes", q->max_reply);
		return;
	}
	if (q->curl_rc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->curl_rc));
		fg_req_reset(q);
		retry_later(w, s, -1, why);
		return;
	}
	if (q->status == 429 || q->status >= 500) {
		snprintf(why, sizeof(why), "HTTP %ld", q->status);
		long ra = q->retry_after_s;
		fg_req_reset(q);
		retry_later(w, s, ra, why);
		return;
	}
	fg_llm_reply_t r;
	if (q->status != 200) {
		fg_llm_parse(q->body ? q->body : "", q->n, &r);
		snprintf(why, sizeof(why), "LLM request refused: HTTP %ld: %s", q->status,
			 r.ok ? "(no error message)" : r.error);
		fg_llm_reply_free(&r);
		fg_req_reset(q);
		react_fail(w, s, "%s", why);
		return;
	}
	if (q->streaming)
		fg_llm_stream_finish(&q->stream, &r);
	else
		fg_llm_parse(q->body ? q->body : "", q->n, &r);
	fg_req_reset(q);
	if (!r.ok) {
		/* A malformed or truncated reply is a failed try; a refusal or an
		 * error object is the model's answer and is not retried. */
		int again = !strncmp(r.error, "reply is not JSON", 17) ||
			    !strncmp(r.error, "stream ended before", 19) ||
			    !strncmp(r.error, "malformed stream chunk", 22) ||
			    !strncmp(r.error, "reply has no choices", 20);
		snprintf(why, sizeof(why), "%s", r.error);
		fg_llm_reply_free(&r);
		if (!strncmp(why, "out of memory", 13))
			oom_retry(w, s, why);
		else if (again)
			retry_later(w, s, -1, why);
		else
			react_fail(w, s, "%s", why);
		return;
	}
	if (s->workflow == FG_WF_MAP_REDUCE || s->workflow == FG_WF_PLAN_EXECUTE)
		mr_on_reply(w, s, &r);
	else
		on_reply(w, s, &r);
	fg_llm_reply_free(&r);
}

#define EV_PROC_OUT  5ull
#define EV_PROC_EXIT 6ull

/* Commits the result of call i of the view (and marks it answered). */
static int commit_result(worker_t *w, wsess_t *s, fg_str_t id, const char *out)
{
	fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
	fg_wstate_t st = s->st;
	fg_buf_tool(&b, id, out, strlen(out));
	return react_commit(w, s, &st, &b);
}

/* The session waits in the timer heap until its earliest tool deadline. */
static void proc_rearm(worker_t *w, wsess_t *s)
{
	heap_remove(w, s);
	uint64_t due = UINT64_MAX;
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->procs; i++)
		if (s->procs[i].pid && !s->procs[i].timed_out && s->procs[i].due_ns < due)
			due = s->procs[i].due_ns;
	if (due != UINT64_MAX) {
		s->due_ns = due;
		heap_push(w, s);
	}
}

static void proc_close(worker_t *w, wsess_t *s, proc_t *p)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->outfd, NULL);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
	close(p->outfd);
	close(p->pidfd);
	free(p->out);
	p->out = NULL;
	p->pid = 0;
	s->nprocs--;
}

/* Kills and reaps every process tool of a session (drain). */
static void proc_kill_all(worker_t *w, wsess_t *s)
{
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->nprocs; i++) {
		proc_t *p = &s->procs[i];
		if (!p->pid)
			continue;
		kill(-p->pid, SIGKILL);
		siginfo_t si;
		waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
		proc_close(w, s, p);
	}
	heap_remove(w, s);
}

/* Tool deadlines that passed: kill those processes; their exit events
 * commit the "timed out" results. */
static void proc_timeouts(worker_t *w, wsess_t *s)
{
	uint64_t now = fg_now_ns();
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->procs; i++) {
		proc_t *p = &s->procs[i];
		if (p->pid && !p->timed_out && p->due_ns <= now) {
			p->timed_out = 1;
			kill(-p->pid, SIGKILL);
		}
	}
	proc_rearm(w, s);
}

static void proc_read(proc_t *p)
{
	char buf[4096];
	for (;;) {
		ssize_t r = read(p->outfd, buf, sizeof(buf));
		if (r <= 0)
			return;
		size_t room = p->tool->max_output - p->n;
		size_t k = (size_t)r < room ? (size_t)r : room;
		memcpy(p->out + p->n, buf, k);
		p->n += k;
		if (k < (size_t)r)
			p->truncated = 1;
	}
}

/* The session has nothing running any more: it goes on. */
static void tools_settled(worker_t *w, wsess_t *s)
{
	if (s->nprocs == 0 && !s->in_http)
		rq_push(w, s);   /* further calls, or the next model turn */
}

/* A process tool exited: its result is committed. */
static void proc_exited(worker_t *w, wsess_t *s, proc_t *p)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	proc_read(p);
	size_t cap = p->tool->max_output + 1024;
	char *res = malloc(cap);
	fg_tool_result(p->tool, si.si_code == CLD_EXITED, si.si_status, p->timed_out, p->truncated,
		       p->out, p->n, res, cap);
	char id[256];
	uint16_t idn = p->idn;
	memcpy(id, p->id, idn);
	proc_close(w, s, p);
	proc_rearm(w, s);
	int rc = commit_result(w, s, (fg_str_t){ id, idn }, res);
	free(res);
	if (rc < 0) {
		/* the session failed (and was freed): nothing may run on for it */
		return;
	}
	tools_settled(w, s);
}

/* http_get finished: its result is committed, the session goes on. */
static void on_tool_http_done(fg_req_t *q)
{
	worker_t *w = self_w;
	wsess_t *s = q->owner;
	size_t cap = s->web.tool->max_output + 256;
	char *res = malloc(cap);
	s->in_http = 0;
	if (q->curl_rc == CURLE_WRITE_ERROR && q->too_large)
		snprintf(res, cap, "error: the response is larger than %u bytes",
			 s->web.tool->max_output);
	else if (q->curl_rc != CURLE_OK)
		snprintf(res, cap, "error: %s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->curl_rc));
	else
		snprintf(res, cap, "HTTP %ld\n%.*s", q->status, (int)q->n, q->body ? q->body : "");
	fg_req_reset(q);
	fg_str_t id = { s->web.id, s->web.idn };
	int rc = commit_result(w, s, id, res);
	free(res);
	if (rc == 0)
		tools_settled(w, s);
}

static int call_running(const wsess_t *s, fg_str_t id)
{
	if (s->in_http && s->web.idn == id.n && !memcmp(s->web.id, id.p, id.n))
		return 1;
	for (uint32_t i = 0; i < FG_MAX_CALLS && s->nprocs; i++)
		if (s->procs[i].pid && s->procs[i].idn == id.n && !memcmp(s->procs[i].id, id.p, id.n))
			return 1;
	return 0;
}

/* Runs the pending tool calls: inline tools at once (a result committed
 * each), process tools all started together, an http_get when the
 * session's HTTP request is free.  A non-idempotent tool gets its intent
 * committed before it starts.  Returns 0 when every call is answered, 1
 * when the session waits for running tools, -1 when it failed. */
static int run_tools(worker_t *w, wsess_t *s, fg_react_view_t *v)
{
	int waiting = 0;
	for (uint32_t i = 0; i < v->ncalls; i++) {
		if (v->answered[i])
			continue;
		fg_call_t *c = &v->calls[i];
		if (call_running(s, c->id)) {
			waiting = 1;
			continue;
		}
		char out[4096];
		const fg_tool_t *t = fg_tool_find(c->name.p, c->name.n);
		if (v->intent[i]) {
			if (!strcmp(w->cfg->interrupted, "fail")) {
				react_fail(w, s, "tool %.*s (call %.*s) was interrupted by a crash and is "
					   "not idempotent: not run again", (int)c->name.n, c->name.p,
					   (int)c->id.n, c->id.p);
				return -1;
			}
			snprintf(out, sizeof(out), "interrupted: the tool may or may not have run; "
				 "it is not idempotent, so it was not run again");
			goto result;
		}
		if (!t) {
			snprintf(out, sizeof(out), "error: unknown tool \"%.*s\"", (int)c->name.n, c->name.p);
			goto result;
		}
		if (t->kind == FG_TOOL_HTTP) {
			char url[2048];
			if (fg_tool_http_url(c->args.p, c->args.n, url, sizeof(url), out, sizeof(out)) < 0)
				goto result;
			if (s->in_http) {
				waiting = 1;   /* one http_get at a time per session */
				continue;
			}
			memcpy(s->web.id, c->id.p, c->id.n);
			s->web.idn = c->id.n;
			s->web.tool = t;
			s->req.owner = s;
			s->req.done = on_tool_http_done;
			s->req.max_reply = t->max_output;
			s->req.streaming = 0;
			if (fg_http_get(w->http, &s->req, url, (long)t->timeout_ms) < 0) {
				snprintf(out, sizeof(out), "error: %s", s->req.errbuf);
				goto result;
			}
			s->in_http = 1;
			waiting = 1;
			continue;
		}
		char *argv[FG_TOOL_MAX_ARGS + 1], abuf[8192];
		const char *in = NULL;
		size_t in_n = 0;
		if (t->kind == FG_TOOL_PROCESS &&
		    t->prepare(t, c->args.p, c->args.n, argv, abuf, sizeof(abuf), &in, &in_n, out,
			       sizeof(out)) < 0)
			goto result;   /* refused arguments: the model sees why */
		proc_t *p = NULL;
		if (t->kind == FG_TOOL_PROCESS) {
			/* Memory first: an intent committed for a tool that then
			 * could not start would read as "interrupted" later. */
			if (!s->procs && !(s->procs = calloc(FG_MAX_CALLS, sizeof(proc_t))))
				goto oom;
			for (uint32_t k = 0; k < FG_MAX_CALLS && !p; k++)
				if (!s->procs[k].pid)
					p = &s->procs[k];
			free(p->out);   /* (sized for this tool: a slot may keep an earlier one's) */
			if (!(p->out = malloc(t->max_output + 1)))
				goto oom;
		}
		if (!t->idempotent) {
			uint8_t id[300];
			fg_buf_t pb = { id, 0, sizeof(id), 0 };
			fg_buf_str(&pb, c->id.p, c->id.n);
			fg_buf_t ib = { w->scratch, 0, w->scratch_n, 0 };
			fg_buf_rec(&ib, FG_REC_INTENT, id, pb.n);
			fg_wstate_t st = s->st;
			if (react_commit(w, s, &st, &ib) < 0)
				return -1;
		}
		if (t->kind == FG_TOOL_INLINE) {
			t->run(t, c->args.p, c->args.n, out, sizeof(out));
			goto result;
		}
		memcpy(p->id, c->id.p, c->id.n);   /* the log may move on */
		p->idn = c->id.n;
		if (fg_tool_spawn(argv, in, in_n, t->timeout_ms, &p->pid, &p->pidfd, &p->outfd, out,
				  sizeof(out)) < 0) {
			free(p->out);
			p->out = NULL;
			goto result;
		}
		p->tool = t;
		p->n = 0;
		p->truncated = p->timed_out = 0;
		p->due_ns = fg_now_ns() + (uint64_t)t->timeout_ms * 1000000u;
		s->nprocs++;
		uint64_t tag = ((uint64_t)(uint32_t)(s - w->pool) << 8) | (uint64_t)(p - s->procs);
		struct epoll_event ev = { .events = EPOLLIN };
		ev.data.u64 = (EV_PROC_OUT << 32) | tag;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->outfd, &ev);
		ev.data.u64 = (EV_PROC_EXIT << 32) | tag;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->pidfd, &ev);
		waiting = 1;
		continue;
result:
		if (commit_result(w, s, c->id, out) < 0)
			return -1;
		v->answered[i] = 1;
		continue;
oom:
		/* Nothing of this call has happened: run it later, when the
		 * running ones end, or after the retry backoff. */
		if (waiting || s->nprocs)
			continue;
		oom_retry(w, s, "out of memory starting a tool");
		return 1;
	}
	if (s->nprocs)
		proc_rearm(w, s);
	return waiting;
}

/* workflows.deadline_s: a session older than this fails at its next step
 * (the session's creation time is in its record, so the deadline survives
 * crashes and resumptions). */
static int past_deadline(worker_t *w, wsess_t *s)
{
	uint64_t d = w->cfg->deadline_s;
	if (!d || fg_now_ns() - fg_sess(w->r, s->idx)->created_ns <= d * 1000000000ull)
		return 0;
	react_fail(w, s, "deadline of %llu s passed", (unsigned long long)d);
	return 1;
}

static void react_step(worker_t *w, wsess_t *s)
{
	fg_react_view_t v;
	char err[200];
	uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
							memory_order_relaxed));
	const uint8_t *log = fg_sess_log(w->r, s->idx);
	if (fg_react_view(log, len, &v, err, sizeof(err)) < 0) {
		react_fail(w, s, "%s", err);
		return;
	}
	if (v.final) {            /* resumed after its answer was committed */
		finish(w, s, FG_S_DONE);
		return;
	}
	if (v.failed) {
		finish(w, s, FG_S_FAILED);
		return;
	}
	if (past_deadline(w, s))
		return;
	if (v.pending && run_tools(w, s, &v) != 0)
		return;   /* failed, or waiting for a process tool */
	if (v.turns >= s->steps) {
		react_fail(w, s, "no final answer after %u model turns (max_steps)", v.turns);
		return;
	}
	if (s->provider >= w->cfg->nproviders) {
		react_fail(w, s, "provider %u is not configured", s->provider);
		return;
	}
	const fg_provider_cfg_t *p = &w->cfg->providers[s->provider];
	if (p->type == FG_PROV_SCRIPTED) {
		fg_llm_reply_t r;
		char id[FG_MAX_CALLS][32];
		fg_llm_scripted((const fg_script_step_t *)p->script, p->nscript, v.turns, &r, id);
		on_reply(w, s, &r);
		return;
	}
	if (p->rate_rps || p->rate_tpm) {
		uint64_t now = fg_now_ns();
		uint64_t wait = fg_rate_admit(&w->r->hdr->rate[s->provider].req_tat,
					      &w->r->hdr->rate[s->provider].tok_tat,
					      p->rate_rps, p->rate_tpm, now);
		if (wait) {
			s->due_ns = now + wait;
			heap_push(w, s);   /* over the provider's rate: try again then */
			return;
		}
	}
	len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt, memory_order_relaxed));
	size_t n;
	char *body = fg_llm_request_log(p->model, log, len, w->tools_str, (int)p->stream, &n,
					err, sizeof(err));
	if (!body) {
		if (!strncmp(err, "out of memory", 13))
			oom_retry(w, s, err);   /* a resource, not the session */
		else
			react_fail(w, s, "%s", err);
		return;
	}
	char url[600];
	snprintf(url, sizeof(url), "%s/chat/completions", p->base_url);
	const char *key = p->api_key_env[0] ? getenv(p->api_key_env) : NULL;
	s->req.owner = s;
	s->req.done = on_http_done;
	s->req.max_reply = p->max_reply_bytes;
	s->req.streaming = (int)p->stream;
	if (fg_http_post(w->http, &s->req, url, body, n, key && *key ? key : NULL,
				  (long)p->connect_timeout_ms, (long)p->timeout_ms) < 0) {
		oom_retry(w, s, s->req.errbuf);   /* out of memory or handles */
		return;
	}
	s->in_http = 1;
}

/* ---- map_reduce ---------------------------------------------------------- */

#define SPLIT_PROMPT "forge:split. Split the user's task into independent parts that " \
	"can each be answered on its own. Reply with only a JSON object: " \
	"{\"parts\": [\"first part\", \"second part\"]}, at most %u parts."
#define REDUCE_PROMPT "forge:reduce. Combine the answers to the parts of the user's task " \
	"into one answer to the whole task."
#define PLAN_PROMPT "forge:plan. Plan the user's task as steps. Reply with only a JSON " \
	"object: {\"steps\": [{\"task\": \"...\", \"depends_on\": []}, {\"task\": \"...\", " \
	"\"depends_on\": [0]}]}, at most %u steps; depends_on lists earlier steps by index."
#define SYNTH_PROMPT "forge:reduce. Using the results of the steps, answer the user's task."

static uint32_t mr_provider(const wsess_t *s)
{
	return s->provider & 0xffff;
}

static uint32_t mr_child_provider(const wsess_t *s)
{
	uint32_t c = s->provider >> 16;
	return c ? c - 1 : s->provider & 0xffff;
}

/* The split arrived: parts from its JSON, or the whole task as one part. */
static void mr_commit_split(worker_t *w, wsess_t *s, const fg_mr_view_t *v, fg_llm_reply_t *r)
{
	fg_str_t parts[FG_MAX_PARTS];
	uint16_t deps[FG_MAX_PARTS] = { 0 };
	int plan = s->workflow == FG_WF_PLAN_EXECUTE;
	uint32_t n = 0, max = s->steps < FG_MAX_PARTS ? s->steps : FG_MAX_PARTS;
	json_t *j = r->ncalls ? NULL : json_loadb(r->content, r->content_n, 0, NULL);
	json_t *a = json_object_get(j, plan ? "steps" : "parts");
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) {
		json_t *task = plan && json_is_object(x) ? json_object_get(x, "task") : x;
		if (n == max || !json_is_string(task) || json_string_length(task) == 0 ||
		    json_string_length(task) > 2000)
			break;
		parts[n] = (fg_str_t){ json_string_value(task), (uint16_t)json_string_length(task) };
		size_t k;
		json_t *d;
		/* only earlier steps: a plan cannot make a cycle */
		json_array_foreach(json_object_get(x, "depends_on"), k, d)
			if (json_is_integer(d) && json_integer_value(d) >= 0 &&
			    json_integer_value(d) < (json_int_t)n)
				deps[n] |= (uint16_t)(1u << json_integer_value(d));
		n++;
	}
	if (n == 0 || n != json_array_size(a)) {
		/* a malformed plan is handled, not fatal: one part, the task itself */
		log_debug("session %u: split reply is not a usable plan; one part", s->idx);
		n = 1;
		parts[0] = v->prompt;
		deps[0] = 0;
	}
	fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
	uint8_t u[8];
	put_u32(u, r->prompt_tokens);
	put_u32(u + 4, r->completion_tokens);
	fg_buf_rec(&b, FG_REC_USAGE, u, 8);
	fg_buf_parts(&b, parts, n);
	if (plan) {
		uint8_t d[1 + 2 * FG_MAX_PARTS];
		d[0] = (uint8_t)n;
		for (uint32_t q = 0; q < n; q++) {
			d[1 + 2 * q] = (uint8_t)deps[q];
			d[2 + 2 * q] = (uint8_t)(deps[q] >> 8);
		}
		fg_buf_rec(&b, FG_REC_DEPS, d, 1 + 2 * n);
	}
	fg_wstate_t st = s->st;
	st.step++;
	st.aux[0] += r->prompt_tokens;
	st.aux[1] += r->completion_tokens;
	int rc = react_commit(w, s, &st, &b);
	json_decref(j);
	if (rc == 0)
		rq_push(w, s);
}

static void mr_commit_answer(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	if (r->ncalls) {
		react_fail(w, s, "the reduce call answered with tool calls, not an answer");
		return;
	}
	fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
	uint8_t u[8];
	put_u32(u, r->prompt_tokens);
	put_u32(u + 4, r->completion_tokens);
	fg_buf_rec(&b, FG_REC_USAGE, u, 8);
	fg_buf_rec(&b, FG_REC_ASSISTANT, r->content, r->content_n);
	fg_wstate_t st = s->st;
	st.step++;
	st.aux[0] += r->prompt_tokens;
	st.aux[1] += r->completion_tokens;
	if (react_commit(w, s, &st, &b) == 0)
		finish(w, s, FG_S_DONE);
}

static void mr_on_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r)
{
	fg_mr_view_t v;
	char err[200];
	uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
							memory_order_relaxed));
	if (fg_mr_view(fg_sess_log(w->r, s->idx), len, &v, err, sizeof(err)) < 0) {
		react_fail(w, s, "%s", err);
		return;
	}
	s->attempts = 0;
	atomic_fetch_add_explicit(&w->a.self->llm_calls, 1, memory_order_relaxed);
	if (v.nparts == 0)
		mr_commit_split(w, s, &v, r);
	else
		mr_commit_answer(w, s, r);
}

/* A child's state: 1 terminal (answer or error in *text, copied into
 * buf), 0 running, -1 gone (rolled back by a crash, or its record reused):
 * make another.  The child is read through a snapshot, so a record reused
 * while it is read is "gone", never another session's answer. */
static int mr_child(worker_t *w, uint64_t h, int *ok, fg_str_t *text, char *buf, size_t bufn)
{
	fg_snap_t sn;
	uint64_t c;
	if (h == 0 || !fg_session_valid(w->r, h, &c))
		return -1;
	if (!FG_S_FINISHED(FG_CTL_STATE(c)))
		return 0;
	*ok = 0;
	*text = (fg_str_t){ "no answer", 9 };
	int rc = fg_session_snapshot(w->r, h, &sn, 1);
	if (rc == -ENOENT)
		return -1;
	if (rc < 0) {
		*text = (fg_str_t){ "(out of memory reading the answer)", 34 };
		return 1;
	}
	fg_react_view_t rv;
	char err[200];
	if (fg_react_view(sn.log, sn.len, &rv, err, sizeof(err)) == 0) {
		fg_str_t t = rv.final ? rv.answer : rv.failed ? rv.error : *text;
		size_t n = t.n < bufn ? t.n : bufn;
		memcpy(buf, t.p, n);
		*ok = rv.final;
		*text = (fg_str_t){ buf, (uint16_t)n };
	}
	fg_snap_free(&sn);
	return 1;
}

static void mr_call(worker_t *w, wsess_t *s, const fg_mr_view_t *v, int reduce)
{
	const fg_provider_cfg_t *p = &w->cfg->providers[mr_provider(s)];
	if (p->type == FG_PROV_SCRIPTED) {
		fg_llm_reply_t r;
		char id[FG_MAX_CALLS][32];
		fg_llm_scripted((const fg_script_step_t *)p->script, p->nscript, v->turns, &r, id);
		mr_on_reply(w, s, &r);
		return;
	}
	char sys[400];
	json_t *msgs;
	int plan = s->workflow == FG_WF_PLAN_EXECUTE;
	if (!reduce) {
		snprintf(sys, sizeof(sys), plan ? PLAN_PROMPT : SPLIT_PROMPT,
			 s->steps < FG_MAX_PARTS ? s->steps : FG_MAX_PARTS);
		msgs = json_pack("[{s:s,s:s},{s:s,s:s%}]", "role", "system", "content", sys,
				 "role", "user", "content", v->prompt.p, (size_t)v->prompt.n);
	} else {
		size_t cap = 4096 + v->prompt.n, n = 0;
		char *u = malloc(cap);
		if (!u) {
			oom_retry(w, s, "out of memory building the request");
			return;
		}
		n += (size_t)snprintf(u, cap, "%.*s\n\n%s:\n", (int)v->prompt.n, v->prompt.p,
				      plan ? "Results of the steps" : "Answers to the parts");
		for (uint32_t i = 0; i < v->nparts; i++) {
			int ok = 0;
			fg_str_t t = { "", 0 };
			char tb[65535];
			mr_child(w, v->child[i], &ok, &t, tb, sizeof(tb));
			size_t need = n + v->parts[i].n + t.n + 32;
			if (need > cap) {
				cap = need * 2;
				char *nu = realloc(u, cap);
				if (!nu) {
					free(u);
					oom_retry(w, s, "out of memory building the request");
					return;
				}
				u = nu;
			}
			n += (size_t)snprintf(u + n, cap - n, "- %.*s: %s%.*s\n", (int)v->parts[i].n,
					      v->parts[i].p, ok ? "" : "(failed) ", (int)t.n, t.p);
		}
		msgs = json_pack("[{s:s,s:s},{s:s,s:s%}]", "role", "system", "content",
				 plan ? SYNTH_PROMPT : REDUCE_PROMPT, "role", "user", "content", u, n);
		free(u);
	}
	if (!msgs) {
		oom_retry(w, s, "out of memory building the request");
		return;
	}
	size_t n;
	char *body = fg_llm_request(p->model, msgs, NULL, (int)p->stream, &n);
	json_decref(msgs);
	char url[600];
	snprintf(url, sizeof(url), "%s/chat/completions", p->base_url);
	const char *key = p->api_key_env[0] ? getenv(p->api_key_env) : NULL;
	s->req.owner = s;
	s->req.done = on_http_done;
	s->req.max_reply = p->max_reply_bytes;
	s->req.streaming = (int)p->stream;
	if (!body) {
		oom_retry(w, s, "out of memory building the request");
		return;
	}
	if (fg_http_post(w->http, &s->req, url, body, n, key && *key ? key : NULL,
			 (long)p->connect_timeout_ms, (long)p->timeout_ms) < 0) {
		oom_retry(w, s, s->req.errbuf);   /* out of memory or handles */
		return;
	}
	s->in_http = 1;
}

/* What a parked parent waits for: any of these parts' children ending. */
typedef struct mr_wait {
	worker_t *w;
	uint32_t idx;
	uint8_t pend[FG_MAX_PARTS];   /* 1: its child was running (or new) */
} mr_wait_t;

/* fg_session_park's second look: has any awaited child ended since? */
static int mr_ended(void *arg)
{
	mr_wait_t *m = arg;
	worker_t *w = m->w;
	fg_mr_view_t v;
	char err[200];
	uint64_t ck = atomic_load_explicit(&fg_sess(w->r, m->idx)->ckpt, memory_order_acquire);
	uint32_t len = FG_CKPT_LEN(ck) <= w->r->hdr->log_bytes ? FG_CKPT_LEN(ck) : 0;
	if (fg_mr_view(fg_sess_log(w->r, m->idx), len, &v, err, sizeof(err)) < 0)
		return 1;   /* let the next claim say what is wrong */
	for (uint32_t i = 0; i < v.nparts && i < FG_MAX_PARTS; i++) {
		uint64_t c;
		if (m->pend[i] && (!fg_session_valid(w->r, v.child[i], &c) ||
				   FG_S_FINISHED(FG_CTL_STATE(c))))
			return 1;
	}
	return 0;
}

/* A parent whose children all run: parked, holding no slot and no lease,
 * until the first of them ends (DESIGN.md rule 10). */
static void mr_park(worker_t *w, wsess_t *s, mr_wait_t *m)
{
	int rc = fg_session_park(&w->a, s->idx, s->entry, mr_ended, m);
	if (rc == -ECANCELED) {
		finish(w, s, FG_S_CANCELLED);
		return;
	}
	if (rc < 0)
		log_warnx("session %u: lost its lease before parking", s->idx);
	w->parked++;
	sess_free(w, s);
}

static void mr_step(worker_t *w, wsess_t *s)
{
	fg_mr_view_t v;
	char err[200];
	uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&fg_sess(w->r, s->idx)->ckpt,
							memory_order_relaxed));
	if (fg_mr_view(fg_sess_log(w->r, s->idx), len, &v, err, sizeof(err)) < 0) {
		react_fail(w, s, "%s", err);
		return;
	}
	if (v.final || v.failed) {
		finish(w, s, v.final ? FG_S_DONE : FG_S_FAILED);
		return;
	}
	if (past_deadline(w, s))
		return;
	if (mr_provider(s) >= w->cfg->nproviders || mr_child_provider(s) >= w->cfg->nproviders) {
		react_fail(w, s, "provider %u is not configured", mr_provider(s));
		return;
	}
	if (v.nparts == 0) {
		mr_call(w, s, &v, 0);
		return;
	}
	int waiting = 0, refused = 0;
	mr_wait_t m;
	memset(&m, 0, sizeof(m));
	m.w = w;
	m.idx = s->idx;
	for (uint32_t i = 0; i < v.nparts; i++) {
		int ok;
		fg_str_t t;
		char tb[65535];
		int st = mr_child(w, v.child[i], &ok, &t, tb, sizeof(tb));
		if (st == 0) {
			waiting = 1;
			m.pend[i] = 1;
		}
		if (st >= 0)
			continue;
		/* plan_execute: a step starts once the steps it depends on ended
		 * (a step not ready waits on one that runs, and is in pend) */
		int ready = 1;
		for (uint32_t d = 0; d < i; d++)
			if ((v.deps[i] >> d & 1) && mr_child(w, v.child[d], &ok, &t, tb, sizeof(tb)) != 1)
				ready = 0;
		if (!ready) {
			waiting = 1;
			continue;
		}
		/* A child for part i: allocated under this worker's lease, its
		 * handle committed in the parent, then published.  A death before
		 * the publish rolls the child back to FREE, and the parent, resumed,
		 * makes another (its CHILD record then names a FREE or reused
		 * record: mr_child says -1). */
		char prompt[4096];
		int pn = snprintf(prompt, sizeof(prompt), "%.*s", (int)v.parts[i].n, v.parts[i].p);
		for (uint32_t d = 0; d < i && pn < (int)sizeof(prompt); d++) {
			if (!(v.deps[i] >> d & 1))
				continue;
			mr_child(w, v.child[d], &ok, &t, tb, sizeof(tb));
			pn += snprintf(prompt + pn, sizeof(prompt) - (size_t)pn, "%s- result of \"%.*s\": %.*s",
				       pn == (int)v.parts[i].n ? "\n\nResults it builds on:\n" : "\n",
				       (int)v.parts[d].n, v.parts[d].p, (int)t.n, t.p);
		}
		fg_submit_t cp = { FG_WF_REACT, w->cfg->max_steps, mr_child_provider(s), NULL, prompt };
		cp.parent = s->idx + 1;
		fg_handle_t h;
		uint32_t entry;
		int rc = fg_session_alloc(&w->a, &cp, &h, &entry);
		if (rc == -ENOSPC || rc == -EBUSY) {
			refused = rc;   /* table (or lease table) full: try again later */
			break;
		}
		if (rc < 0) {
			react_fail(w, s, "cannot create the session for part %u: %s", i + 1,
				   rc == -E2BIG ? "the part does not fit a checkpoint log" : strerror(-rc));
			return;
		}
		FG_CRASHPOINT("mapreduce.child.after_alloc");
		fg_buf_t b = { w->scratch, 0, w->scratch_n, 0 };
		fg_buf_child(&b, i, h);
		fg_wstate_t ws = s->st;
		ws.checksum = 0;   /* a record was found: no refusal in a row */
		if (b.overflow || fg_session_commit(&w->a, s->idx, &ws, b.p, b.n) < 0) {
			fg_session_unalloc(&w->a, FG_HANDLE_IDX(h), entry);
			react_fail(w, s, "checkpoint log full (%u bytes per session): raise "
				   "region.checkpoint_bytes", w->r->hdr->log_bytes);
			return;
		}
		s->st = ws;
		FG_CRASHPOINT("mapreduce.child.after_record");
		fg_session_publish(&w->a, FG_HANDLE_IDX(h), entry);
		waiting = 1;
		m.pend[i] = 1;
	}
	if (refused) {
		/* No record (or lease entry) for a child now.  Not a spin, and no
		 * slot held: parked, it is woken by a child that ends or, with
		 * none running, by the supervisor's sweep (sweep_after_ms later).
		 * When the refusals began is committed (the state's checksum,
		 * unused by this workflow), so the limit holds across wake-ups
		 * and crashes. */
		uint64_t now = fg_now_ns(), since = s->st.checksum;
		if (since && now > since &&
		    now - since > (uint64_t)w->cfg->child_alloc_timeout_s * 1000000000ull) {
			react_fail(w, s, "no %s for a child session for %u s "
				   "(workflows.child_alloc_timeout_s): raise %s", refused == -ENOSPC ?
				   "free session record" : "lease entry", w->cfg->child_alloc_timeout_s,
				   refused == -ENOSPC ? "region.sessions, or purge sooner (region.retain_s)"
						      : "worker.max_inflight");
			return;
		}
		if (!since) {
			log_warnx("session %u: no %s for a child session (region.sessions %u); "
				  "waiting for one", s->idx, refused == -ENOSPC ?
				  "free session record" : "lease entry", w->r->hdr->capacity);
			fg_wstate_t ws = s->st;
			ws.checksum = now;
			if (fg_session_commit(&w->a, s->idx, &ws, NULL, 0) == 0)
				s->st = ws;
		}
		mr_park(w, s, &m);
		return;
	}
	if (waiting) {
		mr_park(w, s, &m);
		return;
	}
	mr_call(w, s, &v, 1);
}

/* Sessions cancelled by someone else (the cancel flag in their record):
 * what runs for them is stopped at once and they end CANCELLED. */
static void cancel_scan(worker_t *w)
{
	for (uint32_t i = 0; i < w->max_inflight; i++) {
		wsess_t *s = &w->pool[i];
		if (!s->live || s->cancel_pending)
			continue;
		uint64_t c = atomic_load_explicit(&fg_sess(w->r, s->idx)->ctl, memory_order_relaxed);
		if (!(c & FG_CTL_CANCEL))
			continue;
		s->cancel_pending = 1;
		log_debug("session %u cancelled", s->idx);
		if (s->in_rq)
			continue;   /* step() ends it */
		heap_remove(w, s);
		finish(w, s, FG_S_CANCELLED);   /* stops its request and tools */
	}
}

static void step(worker_t *w, wsess_t *s)
{
	if (s->cancel_pending) {
		finish(w, s, FG_S_CANCELLED);
		return;
	}
	if (s->workflow == FG_WF_SYNTHETIC)
		synthetic_step(w, s);
	else if (s->workflow == FG_WF_REACT)
		react_step(w, s);
	else if (s->workflow == FG_WF_MAP_REDUCE || s->workflow == FG_WF_PLAN_EXECUTE)
		mr_step(w, s);
	else {
		log_warnx("session %u: unknown workflow %u", s->idx, s->workflow);
		finish(w, s, FG_S_FAILED);
	}
}

/* ---- signals and waiting ---------------------------------------------- */

static void check_signals(worker_t *w)
{
	struct signalfd_siginfo si;
	while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			if (!w->stop)
				log_info("worker %u: signal %s, draining %u sessions", w->slot,
					 fg_signal_name((int)si.ssi_signo), w->inflight);
			w->stop = 1;
		}
	}
	if (atomic_load_explicit(&w->r->hdr->draining, memory_order_relaxed))
		w->stop = 1;
}

#define EV_SIGNAL 1ull
#define EV_TIMER  2ull

static void wait_events(worker_t *w, int timeout_ms)
{
	struct epoll_event ev[64];
	/* Sleep until the first of: the next session timer (ns resolution,
	 * through epoll_pwait2, so no timerfd_settime per wait), curl's next
	 * timeout, the caller's cap. */
	uint64_t wait_ns = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000u;
	if (w->nheap > 0) {
		uint64_t now = fg_now_ns(), due = w->heap[0]->due_ns;
		if (due <= now)
			return;
		if (due - now < wait_ns)
			wait_ns = due - now;
	}
	if (fg_http_active(w->http)) {
		uint64_t c = (uint64_t)fg_http_timeout_ms(w->http, -1);
		if (c != (uint64_t)-1 && c * 1000000u < wait_ns)
			wait_ns = c * 1000000u;
	}
	struct timespec ts = { (time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u) };
	int n = epoll_pwait2(w->epfd, ev, 64, wait_ns == UINT64_MAX ? NULL : &ts, NULL);
	if (n < 0 && errno != EINTR) {
		/* Go on (the timers and curl are driven below either way);
		 * a wait that keeps failing ends the worker, whose sessions
		 * the supervisor recovers. */
		if (++w->wait_failures >= 100)
			fatal("worker %u: epoll_pwait2 failed %u times in a row", w->slot,
			      w->wait_failures);
		if (w->wait_failures == 1)
			log_warn("worker %u: epoll_pwait2", w->slot);
		struct timespec pause = { 0, 1000000 };
		nanosleep(&pause, NULL);
	} else if (n >= 0) {
		w->wait_failures = 0;   /* (EINTR neither counts nor clears) */
	}
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64 >> 32;
		if (tag == EV_TIMER) {
			uint64_t x;
			ssize_t rd = read(w->tfd, &x, sizeof(x));
			(void)rd;
		} else if (tag == FG_EV_HTTP_SOCK) {
			fg_http_event(w->http, ev[i].data.u64, ev[i].events);
		} else if (tag == EV_PROC_OUT || tag == EV_PROC_EXIT) {
			uint32_t low = (uint32_t)ev[i].data.u64;
			wsess_t *s = &w->pool[low >> 8];
			if (!s->procs || (low & 0xff) >= FG_MAX_CALLS || !s->procs[low & 0xff].pid)
				continue;
			proc_t *p = &s->procs[low & 0xff];
			if (tag == EV_PROC_OUT)
				proc_read(p);
			else
				proc_exited(w, s, p);
		}
	}
	fg_http_tick(w->http);
}

static int rings_nonempty(worker_t *w)
{
	uint32_t nw = atomic_load_explicit(&w->r->hdr->cfg_workers, memory_order_relaxed);
	if (nw == 0 || nw > w->r->hdr->nrings)
		nw = 1;
	for (uint32_t i = 0; i < nw; i++)
		if (fg_ring_depth(fg_ring_ref(w->r, i)) > 0)
			return 1;
	return 0;
}

/* Nothing in flight: sleep on the doorbell, without losing a wake-up. */
static void idle_wait(worker_t *w)
{
	fg_hdr_t *h = w->r->hdr;
	atomic_fetch_add_explicit(&h->sleepers, 1, memory_order_seq_cst);
	atomic_store_explicit(&w->a.self->sleeping, 1, memory_order_relaxed);
	uint32_t seq = atomic_load_explicit(&h->doorbell, memory_order_seq_cst);
	if (!rings_nonempty(w))
		fg_futex_wait(&h->doorbell, seq, (int)w->cfg->heartbeat_ms);
	atomic_store_explicit(&w->a.self->sleeping, 0, memory_order_relaxed);
	atomic_fetch_sub_explicit(&h->sleepers, 1, memory_order_seq_cst);
}

/* Drain, first half: sessions waiting on timers are handed back at once;
 * LLM requests and tools already running get until shutdown_timeout_ms
 * (less a margin, so that the supervisor's SIGKILL never comes first) to
 * finish and have their results committed, so no reply is thrown away. */
static void finish_in_flight(worker_t *w)
{
	wsess_t *s;
	while (w->nheap > 0) {
		s = heap_pop(w);
		if (s->nprocs) {
			heap_push(w, s);   /* a tool deadline: it stays in flight */
			break;
		}
		fg_session_release(&w->a, s->idx, s->entry);
		sess_free(w, s);
	}
	uint64_t t = w->cfg->shutdown_timeout_ms;
	uint64_t deadline = fg_now_ns() + (t > 1000 ? t - 500 : t / 2) * 1000000ull;
	for (;;) {
		int busy = 0;
		for (uint32_t i = 0; i < w->max_inflight; i++)
			busy |= w->pool[i].in_http || w->pool[i].nprocs;
		while ((s = rq_pop(w)) != NULL) {   /* a step completed: hand it back */
			fg_session_release(&w->a, s->idx, s->entry);
			sess_free(w, s);
		}
		if (!busy || fg_now_ns() >= deadline)
			return;
		atomic_store_explicit(&w->a.self->heartbeat_ns, fg_coarse_ns(), memory_order_relaxed);
		wait_events(w, 10);
		if (w->nheap > 0 && w->heap[0]->due_ns <= fg_now_ns()) {
			s = heap_pop(w);
			if (s->nprocs)
				proc_timeouts(w, s);
			else
				rq_push(w, s);
		}
	}
}

static void drain(worker_t *w)
{
	wsess_t *s;
	for (uint32_t i = 0; i < w->max_inflight; i++) {
		s = &w->pool[i];
		if (s->nprocs) {
			/* a non-idempotent tool's intent stays: not run again */
			proc_kill_all(w, s);
			if (s->in_http) {
				fg_http_cancel(w->http, &s->req);
				s->in_http = 0;
			}
			fg_session_release(&w->a, s->idx, s->entry);
			sess_free(w, s);
			continue;
		}
		if (s->in_http) {
			fg_http_cancel(w->http, &s->req);
			s->in_http = 0;
			fg_session_release(&w->a, s->idx, s->entry);
			sess_free(w, s);
		}
	}
	while ((s = rq_pop(w)) != NULL) {
		fg_session_release(&w->a, s->idx, s->entry);
		sess_free(w, s);
	}
	while (w->nheap > 0) {
		s = heap_pop(w);
		fg_session_release(&w->a, s->idx, s->entry);
		sess_free(w, s);
	}
}

int fg_worker_main(fg_region_t *r, uint32_t slot, const fg_config_t *cfg)
{
	worker_t w;
	sigset_t mask;

	memset(&w, 0, sizeof(w));
	w.r = r;
	w.cfg = cfg;
	w.slot = slot;
	w.max_inflight = r->hdr->max_inflight;
	fg_actor_init(&w.a, r, slot);
	w.steal_from = slot + 1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	w.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	w.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.sigfd < 0 || w.tfd < 0 || w.epfd < 0) {
		log_warn("worker %u: cannot set up its event loop", slot);
		return 1;
	}
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = EV_SIGNAL << 32;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.sigfd, &ev);
	ev.data.u64 = EV_TIMER << 32;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.tfd, &ev);
	w.http = fg_http_new(w.epfd);
	fg_tools_init(cfg);
	w.tools = fg_tools_json();
	w.tools_str = json_dumps(w.tools, JSON_COMPACT);
	w.scratch_n = r->hdr->log_bytes + 4096;
	w.scratch = malloc(w.scratch_n);
	if (!w.http || !w.scratch || !w.tools_str) {
		start_oom(&w, "its HTTP client and tool list");
		return 1;
	}
	self_w = &w;
	srandom((unsigned)(fg_now_ns() ^ (uint64_t)getpid()));

	w.watch = calloc(r->hdr->nrings, sizeof(fg_ring_watch_t));
	for (uint32_t i = 0; w.watch && i < r->hdr->nrings; i++)
		w.watch[i].pos = UINT64_MAX;
	w.pool = calloc(w.max_inflight, sizeof(wsess_t));
	w.heap = calloc(w.max_inflight, sizeof(wsess_t *));
	if (!w.pool || !w.heap || !w.watch) {
		start_oom(&w, "its session table (worker.max_inflight)");
		return 1;
	}
	for (uint32_t i = w.max_inflight; i-- > 0;) {
		w.pool[i].next = w.free;
		w.free = &w.pool[i];
	}

	fg_slot_t *me = w.a.self;
	atomic_store(&me->starttime, fg_proc_starttime(getpid()));
	atomic_store(&me->heartbeat_ns, fg_coarse_ns());
	uint32_t expect = FG_SLOT_STARTING;
	atomic_compare_exchange_strong(&me->state, &expect, FG_SLOT_READY);
	/* Time from the previous process's death in this slot to READY. */
	uint64_t died = atomic_load(&me->last_exit_ns);
	if (died) {
		uint64_t n = atomic_fetch_add(&r->hdr->ready_count, 1);
		uint64_t d = fg_now_ns() - died;
		r->hdr->ready_ns[n % FG_RECOVERY_HIST] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
	char who[16];
	snprintf(who, sizeof(who), "%u", slot);
	fg_crash_arm_if(who, w.a.gen);
	log_debug("worker %u ready (gen %u)", slot, w.a.gen);

	uint64_t last_beat = 0;
	while (!w.stop) {
		/* The coarse clock moves every few ms: one store per tick, to a
		 * line only this process writes. */
		uint64_t now = fg_coarse_ns();
		if (now != last_beat) {
			atomic_store_explicit(&me->heartbeat_ns, now, memory_order_relaxed);
			last_beat = now;
		}
		if (now >= w.next_sig_check) {
			check_signals(&w);
			w.next_sig_check = now + 1000000;
			if (w.stop)
				break;
			if (w.inflight)
				cancel_scan(&w);   /* every ms or so: cancellation is prompt */
		}
		uint32_t seen = 0;
		if (w.free)
			seen = intake(&w, w.max_inflight - w.inflight < 64 ?
					  w.max_inflight - w.inflight : 64);
		/* run a batch of ready steps */
		for (int k = 0; k < 256; k++) {
			wsess_t *s = rq_pop(&w);
			if (!s)
				break;
			step(&w, s);
		}
		/* due timers */
		if (w.nheap > 0) {
			uint64_t t = fg_now_ns();
			while (w.nheap > 0 && w.heap[0]->due_ns <= t) {
				wsess_t *s = heap_pop(&w);
				if (s->nprocs) {
					/* a process tool's deadline */
					proc_timeouts(&w, s);
				} else {
					rq_push(&w, s);
				}
			}
		}
		if (w.rq_head || seen) {
			if (fg_http_active(w.http))
				wait_events(&w, 0);   /* keep requests moving */
			continue;
		}
		if (w.inflight == 0) {
			idle_wait(&w);
		} else {
			/* Sessions wait on timers or replies: sleep until the next
			 * event, but look at the rings again within 1 ms while there
			 * is room. */
			wait_events(&w, w.free ? 1 : (int)cfg->heartbeat_ms);
		}
	}
	uint32_t n = w.inflight;
	atomic_store(&me->state, FG_SLOT_DRAINING);
	finish_in_flight(&w);
	drain(&w);
	log_info("worker %u: drained, %u sessions handed back at their last checkpoint", slot, n);
	free(w.pool);
	free(w.heap);
	free(w.watch);
	free(w.scratch);
	json_decref(w.tools);
	free(w.tools_str);
	fg_http_free(w.http);
	return 0;
}
