/*
 * worker.c — the worker event loop.
 *
 * Each loop iteration: beat the heartbeat; take new sessions while there is
 * room (own ring first, then steal from the others); run ready steps; fire
 * due timers; sleep on the region's doorbell when there is nothing at all,
 * or in epoll_wait when sessions wait on timers.
 *
 * A session here is a wsess_t (worker/wk.h).  The workflows are rows of
 * a table (src/workflows/table.c): the loop runs a session through its
 * row's step, and a model's reply reaches its row's on_reply
 * (worker/llmcall.c); tool processes are in worker/tools.c.
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
#include "worker/wk.h"
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

worker_t *wk_self;   /* the one worker of this process (for callbacks) */

static void heap_swap(worker_t *w, uint32_t i, uint32_t j)
{
	wsess_t *t = w->heap[i];
	w->heap[i] = w->heap[j];
	w->heap[j] = t;
	w->heap[i]->heap_pos = i;
	w->heap[j]->heap_pos = j;
}

void wk_heap_push(worker_t *w, wsess_t *s)
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

void wk_heap_remove(worker_t *w, wsess_t *s)
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

void wk_rq_push(worker_t *w, wsess_t *s)
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

void wk_sess_free(worker_t *w, wsess_t *s)
{
	s->live = 0;
	s->cancel_pending = 0;
	s->next = w->free;
	w->free = s;
	w->inflight--;
}

/* Waits for the session's delay (if any) before its next step. */
void wk_schedule(worker_t *w, wsess_t *s)
{
	if (s->delay_us == 0) {
		wk_rq_push(w, s);
		return;
	}
	s->due_ns = fg_now_ns() + (uint64_t)s->delay_us * 1000u;
	wk_heap_push(w, s);
}

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
	wk_schedule(w, s);
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



/* Ends a session: whatever still runs for it (other tool calls) is stopped
 * first, so that no event can reach its slot once it is reused. */
void wk_finish(worker_t *w, wsess_t *s, uint32_t state)
{
	if (s->nprocs)
		wk_proc_kill_all(w, s);
	if (s->nmcp)
		wk_mcp_forget(w, s);
	if (s->in_http) {
		fg_http_cancel(w->http, &s->req);
		s->in_http = 0;
	}
	int rc = fg_session_finish(&w->a, s->idx, s->entry, state);
	if (rc < 0 && rc != -ECANCELED)
		log_warnx("session %u: lost its lease before finishing", s->idx);
	wk_sess_free(w, s);
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
		wk_heap_remove(w, s);
		wk_finish(w, s, FG_S_CANCELLED);   /* stops its request and tools */
	}
}

static void step(worker_t *w, wsess_t *s)
{
	if (s->cancel_pending) {
		wk_finish(w, s, FG_S_CANCELLED);
		return;
	}
	const fg_wf_t *wf = fg_wf_get(s->workflow);
	if (wf) {
		wf->step(w, s);
	} else {
		log_warnx("session %u: unknown workflow %u", s->idx, s->workflow);
		wk_finish(w, s, FG_S_FAILED);
	}
}

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
	if (w->mcp) {   /* an MCP call's deadline, a server's restart */
		uint64_t due = wk_mcp_next_due(w), now = fg_now_ns();
		if (due != UINT64_MAX)
			wait_ns = due <= now ? 0 : due - now < wait_ns ? due - now : wait_ns;
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
				wk_proc_read(p);
			else
				wk_proc_exited(w, s, p);
		} else if (tag == EV_MCP_OUT || tag == EV_MCP_IN || tag == EV_MCP_EXIT ||
			   tag == EV_MCP_REAP) {
			wk_mcp_event(w, ev[i].data.u64, ev[i].events);
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

/* Nothing in flight, and sessions ended since the last time: the idle
 * bell (forgectl wait).  Rung whether the worker sleeps next or still has
 * MCP servers to tend (a ping out, a server being listed). */
static void idle_ring(worker_t *w)
{
	uint64_t done = atomic_load_explicit(&w->a.self->done, memory_order_relaxed);
	if (done != w->done_at_idle) {
		w->done_at_idle = done;
		fg_idle_bell_ring(w->r);
	}
}

/* Nothing in flight: sleep on the doorbell, without losing a wake-up. */
static void idle_wait(worker_t *w)
{
	fg_hdr_t *h = w->r->hdr;
	atomic_store_explicit(&w->a.self->sleeping, 1, memory_order_relaxed);
	/* armed: the next submitter rings (region.h) */
	uint32_t seq = atomic_fetch_or_explicit(&h->doorbell, 1u, memory_order_seq_cst) | 1u;
	atomic_thread_fence(memory_order_seq_cst);   /* (then the rings: Dekker) */
	if (!rings_nonempty(w)) {
		fg_futex_wait(&h->doorbell, seq, (int)w->cfg->heartbeat_ms);
		FG_CRASHPOINT("worker.wake.after");   /* (stall case 12) */
	}
	atomic_store_explicit(&w->a.self->sleeping, 0, memory_order_relaxed);
}

/* Drain, first half: sessions waiting on timers are handed back at once;
 * LLM requests and tools already running get until shutdown_timeout_ms
 * (less a margin, so that the supervisor's SIGKILL never comes first) to
 * wk_finish and have their results committed, so no reply is thrown away. */
static void finish_in_flight(worker_t *w)
{
	wsess_t *s;
	while (w->nheap > 0) {
		s = heap_pop(w);
		if (s->nprocs) {
			wk_heap_push(w, s);   /* a tool deadline: it stays in flight */
			break;
		}
		fg_session_release(&w->a, s->idx, s->entry);
		wk_sess_free(w, s);
	}
	uint64_t t = w->cfg->shutdown_timeout_ms;
	uint64_t deadline = fg_now_ns() + (t > 1000 ? t - 500 : t / 2) * 1000000ull;
	for (;;) {
		int busy = 0;
		for (uint32_t i = 0; i < w->max_inflight; i++)
			busy |= w->pool[i].in_http || w->pool[i].nprocs || w->pool[i].nmcp;
		while ((s = rq_pop(w)) != NULL) {   /* a step completed: hand it back */
			fg_session_release(&w->a, s->idx, s->entry);
			wk_sess_free(w, s);
		}
		if (!busy || fg_now_ns() >= deadline)
			return;
		atomic_store_explicit(&w->a.self->heartbeat_ns, fg_coarse_ns(), memory_order_relaxed);
		wait_events(w, 10);
		wk_mcp_tick(w);
		if (w->nheap > 0 && w->heap[0]->due_ns <= fg_now_ns()) {
			s = heap_pop(w);
			if (s->nprocs)
				wk_proc_timeouts(w, s);
			else
				wk_rq_push(w, s);
		}
	}
}

static void drain(worker_t *w)
{
	wsess_t *s;
	for (uint32_t i = 0; i < w->max_inflight; i++) {
		s = &w->pool[i];
		if (s->nprocs || s->nmcp) {
			/* a non-idempotent tool's intent stays: not run again */
			if (s->nprocs)
				wk_proc_kill_all(w, s);
			if (s->nmcp)
				wk_mcp_forget(w, s);
			if (s->in_http) {
				fg_http_cancel(w->http, &s->req);
				s->in_http = 0;
			}
			fg_session_release(&w->a, s->idx, s->entry);
			wk_sess_free(w, s);
			continue;
		}
		if (s->in_http) {
			fg_http_cancel(w->http, &s->req);
			s->in_http = 0;
			fg_session_release(&w->a, s->idx, s->entry);
			wk_sess_free(w, s);
		}
	}
	while ((s = rq_pop(w)) != NULL) {
		fg_session_release(&w->a, s->idx, s->entry);
		wk_sess_free(w, s);
	}
	while (w->nheap > 0) {
		s = heap_pop(w);
		fg_session_release(&w->a, s->idx, s->entry);
		wk_sess_free(w, s);
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
		wk_start_oom(&w, "its HTTP client and tool list");
		return 1;
	}
	wk_self = &w;
	if (wk_mcp_init(&w) < 0) {
		wk_start_oom(&w, "its MCP servers");
		return 1;
	}
	srandom((unsigned)(fg_now_ns() ^ (uint64_t)getpid()));

	w.watch = calloc(r->hdr->nrings, sizeof(fg_ring_watch_t));
	for (uint32_t i = 0; w.watch && i < r->hdr->nrings; i++)
		w.watch[i].pos = UINT64_MAX;
	w.pool = calloc(w.max_inflight, sizeof(wsess_t));
	w.heap = calloc(w.max_inflight, sizeof(wsess_t *));
	if (!w.pool || !w.heap || !w.watch) {
		wk_start_oom(&w, "its session table (worker.max_inflight)");
		return 1;
	}
	/* A limit below what the worker already holds (inherited heap and
	 * libraries' data) would fail every step that needs memory: refuse to
	 * start, naming the setting, rather than limp. */
	if (cfg->memory_limit_mb) {
		char line[128];
		unsigned long data_kb = 0;
		FILE *f = fopen("/proc/self/status", "re");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "VmData: %lu kB", &data_kb) == 1)
				break;
		if (f)
			fclose(f);
		if (data_kb + 1024 > (unsigned long)cfg->memory_limit_mb * 1024) {
			char what[96];
			snprintf(what, sizeof(what), "what it holds already (%lu KiB of data)",
				 data_kb);
			wk_start_oom(&w, what);
			return 1;
		}
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
		if (w.free && wk_mcp_intake_ok(&w))   /* (its MCP servers listed, or tried) */
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
					wk_proc_timeouts(&w, s);
				} else {
					wk_rq_push(&w, s);
				}
			}
		}
		wk_mcp_tick(&w);
		if (w.rq_head || seen) {
			if (fg_http_active(w.http) || wk_mcp_busy(&w))
				wait_events(&w, 0);   /* keep requests (and MCP calls) moving */
			continue;
		}
		if (w.mcp && w.inflight == 0)
			wait_events(&w, 0);   /* a server that died while idle restarts now */
		if (w.inflight == 0)
			idle_ring(&w);
		if (w.inflight == 0 && !wk_mcp_busy(&w)) {
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
	wk_mcp_free(&w);
	json_decref(w.tools);
	free(w.tools_str);
	fg_http_free(w.http);
	return 0;
}

void wk_park(worker_t *w, wsess_t *s, int (*ended)(void *arg), void *arg)
{
	int rc = fg_session_park(&w->a, s->idx, s->entry, ended, arg);
	if (rc == -ECANCELED) {
		wk_finish(w, s, FG_S_CANCELLED);
		return;
	}
	if (rc < 0)
		log_warnx("session %u: lost its lease before parking", s->idx);
	w->parked++;
	wk_sess_free(w, s);
}
