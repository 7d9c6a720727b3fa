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
 * Drain (SIGTERM, or the header's draining flag): no more claims; each
 * in-flight session finishes the step it is in (steps are atomic here) and
 * is released back to QUEUED at its last checkpoint; then exit 0.
 */
#include "forge/worker.h"
#include "forge/crash.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

typedef struct wsess {
	uint32_t idx;
	uint32_t entry;
	uint64_t due_ns;        /* timer deadline while waiting */
	fg_wstate_t st;         /* last committed state         */
	uint32_t steps, delay_us;
	struct wsess *next;     /* run queue / free list        */
	uint32_t heap_pos;
} wsess_t;

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
	int stop;
	uint64_t next_sig_check;
	uint32_t steal_from;
} worker_t;

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

static wsess_t *heap_pop(worker_t *w)
{
	wsess_t *top = w->heap[0];
	w->heap[0] = w->heap[--w->nheap];
	w->heap[0]->heap_pos = 0;
	uint32_t i = 0;
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
	return top;
}

/* ---- run queue ----------------------------------------------------- */

static void rq_push(worker_t *w, wsess_t *s)
{
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
		w->rq_head = s->next;
		if (!w->rq_head)
			w->rq_tail = NULL;
	}
	return s;
}

static void sess_free(worker_t *w, wsess_t *s)
{
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
	if (fg_ring_dequeue_mc(fg_ring_ref(w->r, ring), &idx, w->a.self) < 0)
		return 0;
	if (idx >= w->r->hdr->capacity) {
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
	s->steps = rec->steps;
	s->delay_us = rec->delay_us;
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

/* ---- steps ------------------------------------------------------------ */

static void step(worker_t *w, wsess_t *s)
{
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
		if (fg_session_finish(&w->a, s->idx, s->entry, FG_S_DONE) < 0)
			log_warnx("session %u: lost its lease before finishing", s->idx);
		sess_free(w, s);
		return;
	}
	schedule(w, s);
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

static void wait_events(worker_t *w, int timeout_ms)
{
	struct epoll_event ev[8];
	if (w->nheap > 0) {
		uint64_t now = fg_now_ns(), due = w->heap[0]->due_ns;
		struct itimerspec its = { { 0, 0 }, { 0, 0 } };
		if (due <= now)
			return;
		uint64_t d = due - now;
		its.it_value.tv_sec = (time_t)(d / 1000000000u);
		its.it_value.tv_nsec = (long)(d % 1000000000u);
		timerfd_settime(w->tfd, 0, &its, NULL);
	}
	int n = epoll_wait(w->epfd, ev, 8, timeout_ms);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == w->tfd) {
			uint64_t x;
			ssize_t rd = read(w->tfd, &x, sizeof(x));
			(void)rd;
		}
	}
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

static void drain(worker_t *w)
{
	wsess_t *s;
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
	ev.data.fd = w.sigfd;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.sigfd, &ev);
	ev.data.fd = w.tfd;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.tfd, &ev);

	w.pool = calloc(w.max_inflight, sizeof(wsess_t));
	w.heap = calloc(w.max_inflight, sizeof(wsess_t *));
	if (!w.pool || !w.heap) {
		log_warnx("worker %u: out of memory for %u sessions", slot, w.max_inflight);
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
			while (w.nheap > 0 && w.heap[0]->due_ns <= t)
				rq_push(&w, heap_pop(&w));
		}
		if (w.rq_head || seen)
			continue;
		if (w.inflight == 0) {
			idle_wait(&w);
		} else {
			/* Sessions wait on timers: sleep until the next one, but look
			 * at the rings again within 1 ms while there is room. */
			wait_events(&w, w.free ? 1 : (int)cfg->heartbeat_ms);
		}
	}
	uint32_t n = w.inflight;
	atomic_store(&me->state, FG_SLOT_DRAINING);
	drain(&w);
	log_info("worker %u: drained, %u sessions handed back at their last checkpoint", slot, n);
	free(w.pool);
	free(w.heap);
	return 0;
}
