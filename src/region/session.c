/*
 * session.c — see include/forge/session.h for the contract.
 *
 * Crash windows and what makes each safe:
 *   submit:  lease entry written, then FREE->ALLOCATING (after_cas), params
 *            written, ALLOCATING->QUEUED (before_queue / after_queue), hint
 *            enqueued, entry cleared.  A death before QUEUED rolls back to
 *            FREE; after it, the entry makes recovery enqueue the hint.
 *   claim:   entry written (after_lease_entry), QUEUED->RUNNING (after_cas).
 *   commit:  st[!ab] and log bytes written (after_write), ckpt published
 *            (after_publish).  A death before the publish leaves the old
 *            checkpoint current; the half-written copy is overwritten by
 *            the next commit, which is how its space is reclaimed.
 *   finish:  RUNNING->final (after_cas), parent woken (before_wake is the
 *            window: recovery wakes it from the entry), entry cleared.
 *   release: RUNNING->QUEUED (after_cas), hint enqueued, entry cleared.
 *   park:    RUNNING->WAITING (after_cas), children looked at again (a
 *            death here: recovery wakes it from the entry), entry cleared.
 *   cancel, purge, wake: one CAS each from a word read before (before_cas
 *            is a stall point there: the word names the session's
 *            generation, so a stalled actor's CAS fails after a reuse).
 */
#include "forge/session.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/durable.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[FG_S_NSTATES] = {
	"free", "allocating", "queued", "running", "done", "failed", "cancelled", "waiting",
	"freeing"
};

const char *fg_state_name(uint32_t st)
{
	return st < FG_S_NSTATES ? state_names[st] : "invalid";
}

int fg_state_parse(const char *s)
{
	for (int i = 0; i < FG_S_NSTATES; i++)
		if (strcasecmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

void fg_handle_format(fg_handle_t h, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)h);
}

void fg_id_format(const fg_region_t *r, fg_handle_t h, char buf[FG_ID_LEN + 1])
{
	/* (by hand: snprintf's "%016llx%016llx" was a seventh of forgectl
	 * submit's time) */
	static const char hex[] = "0123456789abcdef";
	uint64_t v[2] = { r->hdr->epoch, h };
	for (int k = 0; k < 2; k++)
		for (int i = 15; i >= 0; i--, v[k] >>= 4)
			buf[k * 16 + i] = hex[v[k] & 15];
	buf[FG_ID_LEN] = '\0';
}

int fg_id_parse(const fg_region_t *r, const char *s, fg_handle_t *out)
{
	char ep[17];
	fg_handle_t e;
	if (strlen(s) != FG_ID_LEN)
		return -EINVAL;
	memcpy(ep, s, 16);
	ep[16] = '\0';
	if (fg_handle_parse(ep, &e) < 0 || fg_handle_parse(s + 16, out) < 0)
		return -EINVAL;
	return e == r->hdr->epoch ? 0 : -ENOENT;
}

int fg_handle_parse(const char *s, fg_handle_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 16)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return -EINVAL;
	*out = strtoull(s, NULL, 16);
	return 0;
}

void fg_actor_init(fg_actor_t *a, fg_region_t *r, uint32_t slot)
{
	a->r = r;
	a->slot = slot;
	a->self = fg_slot(r, slot);
	a->leases = fg_lease_table(r, slot);
	a->gen = atomic_load_explicit(&a->self->gen, memory_order_acquire);
	a->ring_every = 0;
	a->unrung = 0;
}

/* A record given back before it was ever published (rolled back) is FREE
 * under the next generation, so a CHILD record naming it is told apart
 * from a purged child (FREE under its own): forgectl check uses it. */
static inline uint64_t rolled_back(uint32_t sgen)
{
	return FG_CTL_FREE_OF(FG_S_FREE, sgen + 1 ? sgen + 1 : 1);
}

/* Whether ctl word c is leased to actor a. */
static inline int mine(const fg_actor_t *a, uint64_t c, uint32_t st)
{
	return FG_CTL_STATE(c) == st && FG_CTL_SLOT(c) == a->slot &&
	       FG_CTL_LGEN(c) == (a->gen & 0xffffu);
}

/* Takes a free lease entry and writes idx+1 into it; -ENOSPC if none. */
static int lease_put(fg_actor_t *a, uint32_t idx, uint32_t *entry)
{
	uint32_t n = fg_lease_n(a->r);
	uint32_t h = atomic_load_explicit(&a->self->lease_hint, memory_order_relaxed);
	if (h >= n)
		h = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t e = h + k < n ? h + k : h + k - n;
		if (a->leases[e] == 0) {
			__atomic_store_n(&a->leases[e], idx + 1, __ATOMIC_RELEASE);
			atomic_store_explicit(&a->self->lease_hint, e + 1 < n ? e + 1 : 0,
					      memory_order_relaxed);
			*entry = e;
			return 0;
		}
	}
	return -ENOSPC;
}

static inline void lease_clear(fg_actor_t *a, uint32_t entry)
{
	__atomic_store_n(&a->leases[entry], 0, __ATOMIC_RELEASE);
}

/*
 * A session's log is its first log_bytes (inline, dense) and then its
 * overflow range (sparse: region.h).  Before bytes land in overflow pages
 * not written before, they are reserved (fallocate), so that a full
 * filesystem is -ENOSPC here, never SIGBUS at the store.  New pages start
 * at the page after the one holding byte `from` (that one is reserved).
 */
static int log_reserve(fg_region_t *r, uint32_t idx, uint64_t from, uint64_t to)
{
	uint64_t lb = r->hdr->log_bytes;
	if (to <= lb || r->fd < 0)
		return 0;
	uint64_t first = from > lb ? ((from - lb + 4095) & ~4095ull) : 0;
	uint64_t end = (to - lb + 4095) & ~4095ull;
	if (first >= end)
		return 0;
	off_t at = (off_t)(r->hdr->sections[FG_SEC_OVERFLOW].off + idx * fg_ovf_stride(r) + first);
	while (fallocate(r->fd, 0, at, (off_t)(end - first)) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Copies n bytes into idx's log at byte `at` (inline part, then overflow). */
static int log_write(fg_region_t *r, uint32_t idx, uint64_t at, const void *src, uint64_t n)
{
	uint64_t lb = r->hdr->log_bytes;
	int rc = log_reserve(r, idx, at, at + n);
	if (rc < 0)
		return rc;
	const uint8_t *p = src;
	if (at < lb) {
		uint64_t k = lb - at < n ? lb - at : n;
		memcpy(fg_sess_log(r, idx) + at, p, k);
		p += k;
		at += k;
		n -= k;
	}
	if (n)
		memcpy(fg_sess_ovf(r, idx) + (at - lb), p, n);
	return 0;
}

/* Copies idx's log bytes [from, to) to dst. */
static void log_read(const fg_region_t *r, uint32_t idx, uint64_t from, uint64_t to, uint8_t *dst)
{
	uint64_t lb = r->hdr->log_bytes;
	if (from < lb) {
		uint64_t k = (to < lb ? to : lb) - from;
		memcpy(dst, fg_sess_log(r, idx) + from, k);
		dst += k;
		from += k;
	}
	if (to > from)
		memcpy(dst, fg_sess_ovf(r, idx) + (from - lb), to - from);
}

const uint8_t *fg_session_log(const fg_region_t *r, uint32_t idx, uint32_t len, uint8_t **tmp)
{
	*tmp = NULL;
	if (len <= r->hdr->log_bytes)
		return fg_sess_log(r, idx);
	if (len > fg_log_max(r) || !(*tmp = malloc(len)))
		return NULL;
	log_read(r, idx, 0, len, *tmp);
	return *tmp;
}

/* Gives the overflow pages of a session whose log reached old_len bytes
 * back to the file system (tmpfs or disk): its whole overflow range, pages
 * a commit reserved and died before publishing included.  Only for a record
 * this process holds (leased to it, or all processes gone), or the pages
 * could be a newer session's. */
#define LIVE_HDR 256u   /* the live header: words, provider, failure (below) */

/* Gives back idx's overflow pages, if its log (or the live header past
 * its end: fg_live_begin) may have reached them. */
static void log_punch(fg_region_t *r, uint32_t idx, uint64_t old_len)
{
	if (old_len + LIVE_HDR + 8 <= r->hdr->log_bytes || r->fd < 0 || !r->writable ||
	    !fg_ovf_stride(r))
		return;
	off_t at = (off_t)(r->hdr->sections[FG_SEC_OVERFLOW].off + idx * fg_ovf_stride(r));
	fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, (off_t)fg_ovf_stride(r));
}

/* After a publish: wakes whoever waits on idx's bell for it.  A step (a
 * commit, live text) wakes the waiters counted in waiters' high half; a
 * change of state (an end, a park, a requeue) wakes every waiter. */
#define BELL_STEP  0xffff0000u
#define BELL_STATE 0xffffffffu
static void ring_bell(fg_region_t *r, uint32_t idx, uint32_t kind)
{
	fg_hdr_t *h = r->hdr;
	uint32_t b = idx % FG_BELLS;
	atomic_thread_fence(memory_order_seq_cst);
	if ((atomic_load_explicit(&h->bell[b].waiters, memory_order_relaxed) & kind) == 0)
		return;
	atomic_fetch_add_explicit(&h->bell[b].seq, 1, memory_order_seq_cst);
	fg_futex_wake(&h->bell[b].seq);
}

void fg_doorbell_wake_all(fg_region_t *r, int queued)
{
	fg_hdr_t *h = r->hdr;
	if (queued) {
		/* (disarmed: every sleeper has been woken since it slept) */
		if (!(atomic_load_explicit(&h->doorbell, memory_order_seq_cst) & 1u))
			return;
		uint32_t nw = atomic_load_explicit(&h->cfg_workers, memory_order_relaxed), i;
		if (nw == 0 || nw > h->nrings)
			nw = 1;
		for (i = 0; i < nw && fg_ring_depth(fg_ring_ref(r, i)) == 0; i++)
			;
		if (i == nw)
			return;
	}
	uint32_t cur = atomic_load_explicit(&h->doorbell, memory_order_seq_cst);
	while (!atomic_compare_exchange_weak_explicit(&h->doorbell, &cur, (cur | 1u) + 1u,
			memory_order_seq_cst, memory_order_relaxed))
		;
	fg_futex_wake(&h->doorbell);
}

void fg_idle_bell_ring(fg_region_t *r)
{
	fg_hdr_t *h = r->hdr;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&h->idle_waiters, memory_order_relaxed) == 0)
		return;
	atomic_fetch_add_explicit(&h->idle_seq, 1, memory_order_seq_cst);
	fg_futex_wake(&h->idle_seq);
}

void fg_bell_enter(fg_region_t *r, uint32_t idx, uint32_t what)
{
	atomic_fetch_add_explicit(&r->hdr->bell[idx % FG_BELLS].waiters, what, memory_order_seq_cst);
}

uint32_t fg_bell_seq(fg_region_t *r, uint32_t idx)
{
	return atomic_load_explicit(&r->hdr->bell[idx % FG_BELLS].seq, memory_order_seq_cst);
}

void fg_bell_wait(fg_region_t *r, uint32_t idx, uint32_t seq, int timeout_ms)
{
	fg_futex_wait(&r->hdr->bell[idx % FG_BELLS].seq, seq, timeout_ms);
}

void fg_bell_leave(fg_region_t *r, uint32_t idx, uint32_t what)
{
	atomic_fetch_sub_explicit(&r->hdr->bell[idx % FG_BELLS].waiters, what, memory_order_relaxed);
}

int fg_session_valid(const fg_region_t *r, fg_handle_t h, uint64_t *ctl)
{
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= r->hdr->capacity)
		return 0;
	uint64_t c = atomic_load_explicit(&fg_sess(r, idx)->ctl, memory_order_acquire);
	if (ctl)
		*ctl = c;
	uint32_t st = FG_CTL_STATE(c);
	return !FG_S_NONE(st) && st < FG_S_NSTATES &&
	       FG_CTL_SGEN(c) == FG_HANDLE_GEN(h);
}

fg_handle_t fg_session_handle(const fg_region_t *r, uint32_t idx)
{
	uint64_t c = atomic_load_explicit(&fg_sess(r, idx)->ctl, memory_order_acquire);
	return FG_HANDLE(idx, FG_CTL_SGEN(c));
}

void fg_snap_free(fg_snap_t *s)
{
	free(s->log);
	s->log = NULL;
}

int fg_session_snapshot(const fg_region_t *r, fg_handle_t h, fg_snap_t *out, int want_log)
{
	uint32_t idx = FG_HANDLE_IDX(h), have = 0;
	fg_session_t *s;
	uint64_t c;
	memset(out, 0, sizeof(*out));
	for (;;) {
		if (!fg_session_valid(r, h, &c)) {
			fg_snap_free(out);
			return -ENOENT;
		}
		FG_CRASHPOINT("session.snapshot.after_check");
		s = fg_sess(r, idx);
		uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_acquire);
		uint32_t len = FG_CKPT_LEN(w);
		if (want_log == 2 && len > FG_SNAP_PREFIX)
			len = FG_SNAP_PREFIX;   /* the first records only */
		if (len > fg_log_max(r) || len < have)
			len = have;   /* damaged, or a reuse under way: re-validated below */
		out->st = s->st[FG_CKPT_AB(w)];
		out->workflow = s->workflow;
		out->claims = atomic_load_explicit(&s->claims, memory_order_relaxed);
		out->steps = s->steps;
		out->arg = s->arg;
		out->parent = s->parent;
		out->queued_ns = atomic_load_explicit(&s->queued_ns, memory_order_relaxed);
		out->created_ns = s->created_ns;
		out->started_ns = atomic_load_explicit(&s->started_ns, memory_order_relaxed);
		out->finished_ns = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
		if (want_log && (len > have || !out->log)) {
			/* The log only grows within one generation: a retry copies
			 * just what was appended since (a reuse fails below). */
			uint8_t *p = realloc(out->log, len ? len : 1);
			if (!p) {
				fg_snap_free(out);
				return -ENOMEM;
			}
			out->log = p;
			log_read(r, idx, have, len, out->log + have);
			have = len;
		}
		out->len = len;
		/* seqlock: what was copied is whole if neither word moved */
		atomic_thread_fence(memory_order_acquire);
		uint64_t c2 = atomic_load_explicit(&s->ctl, memory_order_relaxed);
		uint64_t w2 = atomic_load_explicit(&s->ckpt, memory_order_relaxed);
		uint32_t st2 = FG_CTL_STATE(c2);
		if (FG_CTL_SGEN(c2) != FG_HANDLE_GEN(h) || FG_S_NONE(st2)) {
			fg_snap_free(out);
			return -ENOENT;   /* purged or reused while we copied: gone */
		}
		if (w2 != w)
			continue;         /* a commit landed meanwhile: copy again */
		out->h = h;
		out->epoch = r->hdr->epoch;
		out->idx = idx;
		out->ctl = c2;
		out->ckpt = w;
		return 0;
	}
}

int fg_session_enqueue(fg_actor_t *a, uint32_t idx)
{
	fg_hdr_t *h = a->r->hdr;
	uint32_t nw = atomic_load_explicit(&h->cfg_workers, memory_order_relaxed);
	if (nw == 0 || nw > h->nrings)
		nw = 1;
	int rc = -EAGAIN;
	/* home ring first; if it is full, any other */
	uint32_t home = FG_HOME_RING(idx, nw);
	for (uint32_t k = 0; k < nw && rc < 0; k++)
		rc = fg_ring_enqueue_mp(fg_ring_ref(a->r, (home + k) % nw), idx, a->self);
	/* Armed (a worker went to sleep since the last ring): disarm and wake
	 * them all.  (Waking one per session instead cost intake: 445k
	 * against 646k-739k sessions/s, bench/sessions.sh with INTAKE=1.)
	 * A submitter of many rings once every ring_every: workers that
	 * outrun it otherwise sleep and are woken every few sessions, and on
	 * a machine with fewer cores than processes each wake-up preempts it
	 * (up to 30k wake-ups and context switches for 300k sessions). */
	if (a->ring_every > 1 && ++a->unrung < a->ring_every)
		return rc;
	a->unrung = 1;
	fg_session_ring(a);
	return rc;
}

void fg_session_ring(fg_actor_t *a)
{
	if (!a->unrung)
		return;
	a->unrung = 0;
	fg_hdr_t *h = a->r->hdr;
	/* (the enqueues' publishes are release CASes: this orders them before
	 * the look at doorbell, the submitter's half of the Dekker pair) */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t x = atomic_load_explicit(&h->doorbell, memory_order_seq_cst);
	if ((x & 1u) && atomic_compare_exchange_strong_explicit(&h->doorbell, &x, x + 1u,
			memory_order_seq_cst, memory_order_relaxed))
		fg_futex_wake(&h->doorbell);
}

uint64_t fg_submit_bytes(const fg_region_t *r, const fg_submit_t *p)
{
	if (p->workflow == FG_WF_SYNTHETIC)
		return 0;
	int seal = atomic_load_explicit(&r->hdr->durability, memory_order_relaxed) != FG_DUR_NONE;
	/* (exactly what fg_session_alloc writes: KEY, then the records given or
	 * SYSTEM and USER, then COMMIT under batch and sync) */
	return (p->key && p->keylen ? FG_REC_HDR + (uint64_t)p->keylen : 0) +
	       (p->recs ? p->recs_n : (p->system && *p->system ? FG_REC_HDR + strlen(p->system) : 0) +
				      FG_REC_HDR + (p->prompt ? strlen(p->prompt) : 0)) +
	       (seal ? FG_COMMIT_BYTES : 0);
}

int fg_session_alloc(fg_actor_t *a, const fg_submit_t *p, fg_handle_t *out, uint32_t *entry_out)
{
	fg_hdr_t *h = a->r->hdr;
	uint32_t cap = h->capacity, entry, idx = 0, gen = 0;
	uint64_t start = atomic_fetch_add_explicit(&h->alloc_cursor, 1, memory_order_relaxed);
	int found = 0;

	for (uint32_t k = 0; k < cap; k++) {
		idx = (uint32_t)((start + k) % cap);
		fg_session_t *s = fg_sess(a->r, idx);
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_relaxed);
		if (FG_CTL_STATE(c) != FG_S_FREE)
			continue;
		if (lease_put(a, idx, &entry) < 0)
			return -EBUSY;
		gen = FG_CTL_SGEN(c) + 1;
		if (gen == 0)
			gen = 1;
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &c,
				FG_CTL(FG_S_ALLOCATING, a->slot, a->gen, gen),
				memory_order_acq_rel, memory_order_relaxed)) {
			found = 1;
			if (k > 0)
				atomic_store_explicit(&h->alloc_cursor, start + k + 1,
						      memory_order_relaxed);
			break;
		}
		lease_clear(a, entry);
	}
	if (!found)
		return -ENOSPC;
	/* Orders the new generation before every byte written below, so a
	 * reader of the previous session that copies any of them sees the
	 * generation change when it re-validates (fg_session_snapshot). */
	atomic_thread_fence(memory_order_release);
	FG_CRASHPOINT("session.alloc.after_cas");

	fg_session_t *s = fg_sess(a->r, idx);
	s->parent = p->parent;
	s->workflow = p->workflow;
	atomic_store_explicit(&s->claims, 0, memory_order_relaxed);
	s->steps = p->steps;
	s->arg = p->arg;
	uint64_t now = fg_now_ns();
	s->created_ns = now;
	atomic_store_explicit(&s->queued_ns, now, memory_order_relaxed);
	atomic_store_explicit(&s->started_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&s->finished_ns, 0, memory_order_relaxed);
	memset(s->st, 0, sizeof(s->st));
	if (p->workflow == FG_WF_SYNTHETIC)
		s->st[0].checksum = FG_SYNTHETIC_SEED;
	if (p->recs) {
		/* a client's history: its model turns count as the session's */
		uint32_t off = 0;
		fg_rec_t r;
		while (fg_rec_next(p->recs, p->recs_n, &off, &r) == 1)
			if (r.type == FG_REC_ASSISTANT || r.type == FG_REC_TOOLCALLS)
				s->st[0].step++;
	}
	/* the session before in this record left overflow pages behind if its
	 * purge died before it gave them back: we hold the record, so it is
	 * ours to do */
	log_punch(a->r, idx, FG_CKPT_LEN(atomic_load_explicit(&s->ckpt, memory_order_relaxed)));
	uint32_t loglen = 0;
	if (p->workflow != FG_WF_SYNTHETIC) {
		/* the first records: straight into the inline log when they fit
		 * (the common case), else built aside and written across */
		int seal = atomic_load_explicit(&h->durability, memory_order_relaxed) != FG_DUR_NONE;
		uint64_t need = fg_submit_bytes(a->r, p);
		uint8_t *aside = need > h->log_bytes && need <= fg_log_max(a->r) ? malloc(need) : NULL;
		fg_buf_t b = { aside ? aside : fg_sess_log(a->r, idx), 0,
			       aside ? (uint32_t)need : h->log_bytes, 0 };
		if (p->key && p->keylen)
			fg_buf_rec(&b, FG_REC_KEY, p->key, p->keylen);
		if (p->recs) {
			if (b.n + (uint64_t)p->recs_n > b.cap)
				b.overflow = 1;
			else
				memcpy(b.p + b.n, p->recs, p->recs_n), b.n += p->recs_n;
		} else {
			if (p->system && *p->system)
				fg_buf_rec(&b, FG_REC_SYSTEM, p->system, strlen(p->system));
			fg_buf_rec(&b, FG_REC_USER, p->prompt ? p->prompt : "",
				   p->prompt ? strlen(p->prompt) : 0);
		}
		if (seal && !b.overflow) {
			uint8_t rec[FG_COMMIT_BYTES];
			fg_commit_rec(rec, fg_crc32c(fg_crc_seed(gen), b.p, b.n), 0, &s->st[0]);
			fg_buf_rec(&b, FG_REC_COMMIT, rec + FG_REC_HDR, FG_COMMIT_PAYLOAD);
		}
		int rc = b.overflow ? (need > fg_log_max(a->r) ? -E2BIG : -ENOMEM)
				    : aside ? log_write(a->r, idx, 0, aside, b.n) : 0;
		if (rc == -ENOSPC)
			rc = -EDQUOT;   /* the file system is full (-ENOSPC: the table is) */
		free(aside);
		if (rc < 0) {
			/* give the record back: nobody else has seen it */
			uint64_t c = FG_CTL(FG_S_ALLOCATING, a->slot, a->gen, gen);
			atomic_compare_exchange_strong(&s->ctl, &c, rolled_back(gen));
			lease_clear(a, entry);
			return rc;
		}
		loglen = b.n;
	}
	atomic_store_explicit(&s->ckpt, FG_CKPT(0, 0, loglen), memory_order_relaxed);
	*out = FG_HANDLE(idx, gen);
	*entry_out = entry;
	return 0;
}

int fg_session_publish(fg_actor_t *a, uint32_t idx, uint32_t entry)
{
	fg_session_t *s = fg_sess(a->r, idx);
	FG_CRASHPOINT("session.alloc.before_queue");
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_relaxed);
	if (!mine(a, c, FG_S_ALLOCATING) ||
	    !atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL_FREE_OF(FG_S_QUEUED, FG_CTL_SGEN(c)),
			memory_order_acq_rel, memory_order_relaxed)) {
		/* Only a recovery pass could have moved it, and we are alive. */
		lease_clear(a, entry);
		return -EIO;
	}
	FG_CRASHPOINT("session.alloc.after_queue");
	fg_session_enqueue(a, idx);
	fg_ring_intent_clear(a->self);
	lease_clear(a, entry);
	return 0;
}

void fg_session_unalloc(fg_actor_t *a, uint32_t idx, uint32_t entry)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_relaxed);
	if (mine(a, c, FG_S_ALLOCATING))
		atomic_compare_exchange_strong(&s->ctl, &c, rolled_back(FG_CTL_SGEN(c)));
	lease_clear(a, entry);
}

int fg_session_submit(fg_actor_t *a, const fg_submit_t *p, fg_handle_t *out)
{
	uint32_t entry;
	int rc = fg_session_alloc(a, p, out, &entry);
	if (rc < 0)
		return rc;
	return fg_session_publish(a, FG_HANDLE_IDX(*out), entry);
}

int fg_session_claim(fg_actor_t *a, uint32_t idx, uint32_t *entry)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	if (FG_CTL_STATE(c) != FG_S_QUEUED)
		return -EBUSY;
	if (lease_put(a, idx, entry) < 0)
		return -ENOSPC;
	FG_CRASHPOINT("session.claim.after_lease_entry");
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL(FG_S_RUNNING, a->slot, a->gen, FG_CTL_SGEN(c)),
			memory_order_acq_rel, memory_order_relaxed)) {
		lease_clear(a, *entry);
		return -EBUSY;
	}
	FG_CRASHPOINT("session.claim.after_cas");
	atomic_fetch_add_explicit(&s->claims, 1, memory_order_relaxed);
	if (atomic_load_explicit(&s->started_ns, memory_order_relaxed) == 0)
		atomic_store_explicit(&s->started_ns, fg_now_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&a->self->claims, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->self->inflight, 1, memory_order_relaxed);
	return 0;
}

/*
 * The CRC32C of idx's log [0, len) for its next COMMIT record: from the
 * COMMIT that ends it when there is one (the common case: 46 bytes read),
 * else over the whole log (once, for a session from before durability).
 */
static uint32_t log_crc(const fg_region_t *r, uint32_t idx, uint32_t len, uint32_t seq,
			uint32_t sgen)
{
	if (len >= FG_COMMIT_BYTES) {
		uint8_t last[FG_COMMIT_BYTES];
		uint32_t n, crc, lseq;
		log_read(r, idx, len - FG_COMMIT_BYTES, len, last);
		memcpy(&n, last + 2, 4);
		memcpy(&crc, last + FG_REC_HDR, 4);
		memcpy(&lseq, last + FG_REC_HDR + 4, 4);
		if (last[0] == FG_REC_COMMIT && n == FG_COMMIT_PAYLOAD && lseq == seq)
			return fg_crc32c(crc, last, sizeof(last));
	}
	uint8_t *tmp;
	const uint8_t *log = fg_session_log(r, idx, len, &tmp);
	uint32_t crc = log ? fg_crc32c(fg_crc_seed(sgen), log, len) : 0;
	free(tmp);
	return crc;
}

/*
 * Live text: what a streaming provider has sent of the model turn under
 * way, before it is committed.  It lies past the committed log, at the
 * first 8-aligned offset after it (so it costs nothing: the next commit
 * writes over it):
 *   u64 who      (session generation << 32 | checkpoint sequence): whose
 *                turn this is; anything else there is stale
 *   u64 attempt  the request's number (a retry starts the text again)
 *   u64 n        text bytes published
 *   u64 fails    the turn's failed requests in a row (low 32 bits; 0:
 *                none) | the provider's index << 32 | its max_retries << 48
 *   u64 since    CLOCK_REALTIME ns of the first of them
 *   u64 next     CLOCK_REALTIME ns of the next try
 *   u64 give_up  CLOCK_REALTIME ns from which a failure ends the session
 *                (give_up_after_s; with max_retries spent too)
 *   u64 errlen   bytes of the last failure's text
 *   char provider[32]  the provider's name (NUL-padded)
 *   char error[160]    the last failure's text (errlen bytes); then, at
 *                LIVE_HDR, the turn's text
 * The lease holder writes who last (release) when a request starts or a
 * failure is noted (fg_live_outage), and n (release) after each piece.  A
 * reader takes the checkpoint word, the words and the text, then looks at
 * the checkpoint and who again: unchanged means the text is that turn's (a
 * commit writes over it first and publishes after, and the second look at
 * the checkpoint catches it).
 */
static uint8_t *log_at(const fg_region_t *r, uint32_t idx, uint64_t at)
{
	uint64_t lb = r->hdr->log_bytes;
	return at < lb ? fg_sess_log(r, idx) + at : fg_sess_ovf(r, idx) + (at - lb);
}

static uint64_t live_base(uint32_t len)
{
	return ((uint64_t)len + 7) & ~7ull;
}

/* Word i of the live header at base (each on its own: the three may
 * straddle the inline log's end). */
static _Atomic uint64_t *live_word(const fg_region_t *r, uint32_t idx, uint64_t base, int i)
{
	return (_Atomic uint64_t *)(void *)log_at(r, idx, base + 8u * (uint64_t)i);
}

/* Makes the live header at base this turn's (who), keeping what it says
 * when it is already; 0, or -1 when there is no room. */
static int live_claim(fg_region_t *r, uint32_t idx, uint64_t *basep, uint64_t *whop)
{
	fg_session_t *s = fg_sess(r, idx);
	uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_relaxed);
	uint64_t base = live_base(FG_CKPT_LEN(w));
	if (base + LIVE_HDR > fg_log_max(r) || log_reserve(r, idx, base, base + LIVE_HDR) < 0)
		return -1;
	uint64_t who = (uint64_t)FG_CTL_SGEN(atomic_load_explicit(&s->ctl, memory_order_relaxed)) << 32 |
		       FG_CKPT_SEQ(w);
	if (atomic_load_explicit(live_word(r, idx, base, 0), memory_order_relaxed) != who)
		for (int i = 1; i < 8; i++)   /* (stale: an earlier turn's, or another session's) */
			atomic_store_explicit(live_word(r, idx, base, i), 0, memory_order_relaxed);
	*basep = base;
	*whop = who;
	return 0;
}

void fg_live_begin(fg_region_t *r, uint32_t idx, uint32_t attempt)
{
	uint64_t base, who;
	if (live_claim(r, idx, &base, &who) < 0)
		return;
	atomic_store_explicit(live_word(r, idx, base, 2), 0, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 1), attempt, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 0), who, memory_order_release);
	ring_bell(r, idx, BELL_STEP);
}

void fg_live_outage(fg_region_t *r, uint32_t idx, const fg_outage_t *o)
{
	uint64_t base, who;
	if (live_claim(r, idx, &base, &who) < 0)
		return;
	char name[32] = { 0 };
	memcpy(name, o->name, strnlen(o->name, sizeof(name) - 1));
	size_t en = strnlen(o->error, sizeof(o->error));
	if (en > LIVE_HDR - 96)
		en = LIVE_HDR - 96;
	if (log_write(r, idx, base + 64, name, sizeof(name)) < 0 ||
	    log_write(r, idx, base + 96, o->error, en) < 0)
		return;
	atomic_store_explicit(live_word(r, idx, base, 3), (uint64_t)(o->max_retries & 0xffff) << 48 |
			      (uint64_t)(o->provider & 0xffff) << 32 | o->fails, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 4), o->since_ns, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 5), o->next_ns, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 6), o->give_up_ns, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 7), en, memory_order_relaxed);
	atomic_store_explicit(live_word(r, idx, base, 0), who, memory_order_release);
	ring_bell(r, idx, BELL_STEP);
}

int fg_live_outage_read(const fg_region_t *r, fg_handle_t h, fg_outage_t *o)
{
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= r->hdr->capacity)
		return 0;
	fg_session_t *s = fg_sess(r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_acquire);
	if (FG_CTL_SGEN(c) != FG_HANDLE_GEN(h) || FG_CTL_STATE(c) != FG_S_RUNNING)
		return 0;
	uint64_t base = live_base(FG_CKPT_LEN(w));
	if (base + LIVE_HDR > fg_log_max(r))
		return 0;
	_Atomic uint64_t *w0 = live_word(r, idx, base, 0);
	uint64_t who = (uint64_t)FG_HANDLE_GEN(h) << 32 | FG_CKPT_SEQ(w);
	if (atomic_load_explicit(w0, memory_order_acquire) != who)
		return 0;
	uint64_t f = atomic_load_explicit(live_word(r, idx, base, 3), memory_order_relaxed);
	o->fails = (uint32_t)f;
	o->provider = (uint32_t)(f >> 32) & 0xffff;
	o->max_retries = (uint32_t)(f >> 48);
	o->since_ns = atomic_load_explicit(live_word(r, idx, base, 4), memory_order_relaxed);
	o->next_ns = atomic_load_explicit(live_word(r, idx, base, 5), memory_order_relaxed);
	o->give_up_ns = atomic_load_explicit(live_word(r, idx, base, 6), memory_order_relaxed);
	uint64_t en = atomic_load_explicit(live_word(r, idx, base, 7), memory_order_relaxed);
	if (en >= sizeof(o->error))
		en = sizeof(o->error) - 1;
	log_read(r, idx, base + 64, base + 96, (uint8_t *)o->name);
	o->name[sizeof(o->name) - 1] = '\0';
	log_read(r, idx, base + 96, base + 96 + en, (uint8_t *)o->error);
	o->error[en] = '\0';
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->ckpt, memory_order_relaxed) != w ||
	    atomic_load_explicit(w0, memory_order_relaxed) != who)
		return 0;   /* the turn was committed meanwhile: no failure now */
	return o->fails != 0;
}

void fg_live_append(fg_region_t *r, uint32_t idx, const char *p, size_t k)
{
	fg_session_t *s = fg_sess(r, idx);
	uint64_t base = live_base(FG_CKPT_LEN(atomic_load_explicit(&s->ckpt, memory_order_relaxed)));
	if (base + LIVE_HDR > fg_log_max(r))
		return;
	uint64_t n = atomic_load_explicit(live_word(r, idx, base, 2), memory_order_relaxed);
	if (base + LIVE_HDR + n + k > fg_log_max(r) || log_write(r, idx, base + LIVE_HDR + n, p, k) < 0)
		return;   /* (no room: the rest comes with the commit) */
	if (atomic_load_explicit(live_word(r, idx, base, 3), memory_order_relaxed))
		atomic_store_explicit(live_word(r, idx, base, 3), 0, memory_order_relaxed);   /* it answers */
	atomic_store_explicit(live_word(r, idx, base, 2), n + k, memory_order_release);
	ring_bell(r, idx, BELL_STEP);
}

int64_t fg_live_read(const fg_region_t *r, fg_handle_t h, uint64_t *ckpt, uint32_t *attempt,
		     uint64_t from, char *buf, size_t cap)
{
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= r->hdr->capacity)
		return -1;
	fg_session_t *s = fg_sess(r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_acquire);
	*ckpt = w;
	if (FG_CTL_SGEN(c) != FG_HANDLE_GEN(h) || FG_S_NONE(FG_CTL_STATE(c)))
		return -1;
	uint64_t base = live_base(FG_CKPT_LEN(w));
	if (base + LIVE_HDR > fg_log_max(r))
		return -3;
	_Atomic uint64_t *w0 = live_word(r, idx, base, 0), *w1 = live_word(r, idx, base, 1);
	uint64_t who = (uint64_t)FG_HANDLE_GEN(h) << 32 | FG_CKPT_SEQ(w);
	if (atomic_load_explicit(w0, memory_order_acquire) != who)
		return -3;   /* no live text for this turn */
	uint64_t a = atomic_load_explicit(w1, memory_order_acquire);
	uint64_t n = atomic_load_explicit(live_word(r, idx, base, 2), memory_order_acquire);
	if (n > fg_log_max(r) - base - LIVE_HDR || from > n)
		return from > n && n <= fg_log_max(r) - base - LIVE_HDR ? -2 : 0;
	size_t k = n - from < cap ? (size_t)(n - from) : cap;
	if (k)
		log_read(r, idx, base + LIVE_HDR + from, base + LIVE_HDR + from + k, (uint8_t *)buf);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->ckpt, memory_order_relaxed) != w ||
	    atomic_load_explicit(w0, memory_order_relaxed) != who ||
	    atomic_load_explicit(w1, memory_order_relaxed) != a)
		return 0;   /* a commit or a new attempt came: look again */
	*attempt = (uint32_t)a;
	return (int64_t)k;
}

int fg_session_sealed_unsafe(const fg_region_t *r, uint32_t idx)
{
	uint64_t w = atomic_load(&fg_sess(r, idx)->ckpt);
	uint32_t len = FG_CKPT_LEN(w), n, lseq;
	uint8_t last[FG_COMMIT_BYTES];
	if (len < FG_COMMIT_BYTES || len > fg_log_max(r))
		return 0;
	log_read(r, idx, len - FG_COMMIT_BYTES, len, last);
	memcpy(&n, last + 2, 4);
	memcpy(&lseq, last + FG_REC_HDR + 4, 4);
	return last[0] == FG_REC_COMMIT && n == FG_COMMIT_PAYLOAD && lseq == FG_CKPT_SEQ(w);
}

void fg_session_log_zero_unsafe(fg_region_t *r, uint32_t idx, uint64_t from, uint64_t to)
{
	static const uint8_t zero[4096];
	while (from < to) {
		uint64_t k = to - from < sizeof(zero) ? to - from : sizeof(zero);
		if (log_write(r, idx, from, zero, k) < 0)
			return;
		from += k;
	}
}

int fg_session_commit(fg_actor_t *a, uint32_t idx, const fg_wstate_t *st,
		      const void *log, uint32_t n)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_relaxed);
	uint32_t ab = FG_CKPT_AB(w) ^ 1u, len = FG_CKPT_LEN(w);
	/* sealed: the commit ends with a COMMIT record (durable.h) */
	int seal = s->workflow != FG_WF_SYNTHETIC &&
		   atomic_load_explicit(&a->r->hdr->durability, memory_order_relaxed) != FG_DUR_NONE;
	uint32_t extra = seal ? FG_COMMIT_BYTES : 0;

	/* (a commit that adds records leaves room for one more COMMIT, so that
	 * a state-only commit, such as a failure's, always fits) */
	if ((n > 0 || extra) && (uint64_t)len + n + extra + (n ? extra : 0) > fg_log_max(a->r))
		return -E2BIG;
	/* The seqlock's write side: our previous publish (of w) is ordered
	 * before the overwrite of st[ab] below, which a reader of the commit
	 * before w may still be copying; it sees w move and copies again. */
	atomic_thread_fence(memory_order_release);
	if (n > 0) {
		int rc = log_write(a->r, idx, len, log, n);
		if (rc < 0)
			return rc;   /* -ENOSPC: the region's filesystem is full */
	}
	if (seal) {
		uint8_t rec[FG_COMMIT_BYTES];
		uint32_t crc = log_crc(a->r, idx, len, FG_CKPT_SEQ(w),
				       FG_CTL_SGEN(atomic_load_explicit(&s->ctl, memory_order_relaxed)));
		crc = n ? fg_crc32c(crc, log, n) : crc;
		fg_commit_rec(rec, crc, FG_CKPT_SEQ(w) + 1, st);
		int rc = log_write(a->r, idx, len + n, rec, sizeof(rec));
		if (rc < 0)
			return rc;
	}
	s->st[ab] = *st;
	FG_CRASHPOINT("ckpt.commit.after_write");
	atomic_store_explicit(&s->ckpt, FG_CKPT(FG_CKPT_SEQ(w) + 1, ab, len + n + extra),
			      memory_order_release);
	FG_CRASHPOINT("ckpt.commit.after_publish");
	ring_bell(a->r, idx, BELL_STEP);
	atomic_fetch_add_explicit(&a->self->steps, 1, memory_order_relaxed);
	return 0;
}

uint64_t fg_session_read(const fg_region_t *r, uint32_t idx, fg_wstate_t *st)
{
	const fg_session_t *s = fg_sess(r, idx);
	for (;;) {
		uint64_t w = atomic_load_explicit(&((fg_session_t *)s)->ckpt, memory_order_acquire);
		memcpy(st, &s->st[FG_CKPT_AB(w)], sizeof(*st));
		atomic_thread_fence(memory_order_acquire);
		/* Unchanged: no commit overwrote the copy we read (seqlock). */
		if (atomic_load_explicit(&((fg_session_t *)s)->ckpt, memory_order_relaxed) == w)
			return w;
	}
}

int fg_session_wake(fg_actor_t *a, uint32_t idx, uint32_t sgen)
{
	if (idx >= a->r->hdr->capacity)
		return 0;
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_seq_cst);
	if (FG_CTL_STATE(c) != FG_S_WAITING || (sgen && FG_CTL_SGEN(c) != sgen))
		return 0;
	/* (a stale store lands on a later session of the record only as a
	 * later queued time: the sweep looks at it a little later) */
	atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
	FG_CRASHPOINT("session.wake.before_cas");
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL_FREE_OF(FG_S_QUEUED, FG_CTL_SGEN(c)),
			memory_order_seq_cst, memory_order_relaxed))
		return 0;   /* woken by someone else, cancelled, or gone */
	fg_session_enqueue(a, idx);
	fg_ring_intent_clear(a->self);
	return 1;
}

/* A finished child wakes its parent (by index: see fg_session_t.parent). */
static void wake_parent(fg_actor_t *a, fg_session_t *s)
{
	uint32_t p = s->parent;
	if (p)
		fg_session_wake(a, p - 1, 0);
}

int fg_session_finish(fg_actor_t *a, uint32_t idx, uint32_t entry, uint32_t final_state)
{
	fg_session_t *s = fg_sess(a->r, idx);
	int rc = 0;
	atomic_store_explicit(&s->finished_ns, fg_now_ns(), memory_order_relaxed);
	for (;;) {
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		if (!mine(a, c, FG_S_RUNNING))
			return -EIO;
		/* cancelled meanwhile: it ends CANCELLED, whatever it reached */
		uint32_t to = (c & FG_CTL_CANCEL) ? FG_S_CANCELLED : final_state;
		/* seq_cst: the parent's park CAS and this one are a Dekker pair */
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &c,
				FG_CTL_FREE_OF(to, FG_CTL_SGEN(c)),
				memory_order_seq_cst, memory_order_relaxed)) {
			rc = to == final_state ? 0 : -ECANCELED;
			break;
		}
	}
	FG_CRASHPOINT("session.finish.after_cas");
	ring_bell(a->r, idx, BELL_STATE);
	wake_parent(a, s);
	FG_CRASHPOINT("session.finish.before_clear");
	lease_clear(a, entry);
	atomic_fetch_add_explicit(&a->self->done, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
	return rc;
}

/* A thread's next message (from a finished session) or a person's answer
 * (from one WAITING for it): the same steps, named apart for the tests. */
#define REOPEN_POINT(wt, step) \
	FG_CRASHPOINT((wt) ? "approval.answer." step : "session.continue." step)

static int reopen(fg_actor_t *a, fg_handle_t h, uint64_t ckpt_seen, const void *recs,
		  uint32_t n, uint32_t *state, int wt)
{
	uint32_t idx = FG_HANDLE_IDX(h), entry;
	uint64_t ro = wt ? 0 : 1;   /* (an answer finishes nothing: check.c's count) */
	fg_hdr_t *hd = a->r->hdr;
	if (idx >= hd->capacity)
		return -ENOENT;
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	uint32_t st = FG_CTL_STATE(c);
	*state = st;
	if (FG_CTL_SGEN(c) != FG_HANDLE_GEN(h) || FG_S_NONE(st))
		return -ENOENT;
	if (wt ? st != FG_S_WAITING : !FG_S_FINISHED(st))
		return -EBUSY;
	if (st == FG_S_CANCELLED)
		return -EPERM;   /* (queued again as it was, it would run on: never) */
	if (lease_put(a, idx, &entry) < 0)
		return -EAGAIN;
	atomic_fetch_add_explicit(&hd->reopened, ro, memory_order_relaxed);
	REOPEN_POINT(wt, "before_cas");
	uint64_t was = c;
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL(FG_S_RUNNING, a->slot, a->gen, FG_CTL_SGEN(c)),
			memory_order_acq_rel, memory_order_acquire)) {
		atomic_fetch_sub_explicit(&hd->reopened, ro, memory_order_relaxed);
		lease_clear(a, entry);
		*state = FG_CTL_STATE(c);
		return FG_CTL_SGEN(c) != FG_HANDLE_GEN(h) || FG_S_NONE(FG_CTL_STATE(c)) ? -ENOENT
										      : -EBUSY;
	}
	/* Leased to us: a death from here on is a death while RUNNING (the
	 * recovery pass queues it at its last commit, the message in it or
	 * not: a worker then answers it, or finds it ended and ends it again). */
	REOPEN_POINT(wt, "after_cas");
	uint64_t fin = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
	int rc;
	if (atomic_load_explicit(&s->ckpt, memory_order_acquire) != ckpt_seen) {
		/* another run came and ended since the caller looked at the
		 * conversation: what it checked no longer holds */
		rc = -ESTALE;
	} else {
		fg_wstate_t ws;
		fg_session_read(a->r, idx, &ws);
		ws.status = FG_WS_OK;
		atomic_store_explicit(&s->finished_ns, 0, memory_order_relaxed);
		/* (a new run's deadline counts from now: workflows.deadline_s;
		 * an answer goes on with the run that asked) */
		if (!wt)
			s->created_ns = fg_now_ns();
		rc = fg_session_commit(a, idx, &ws, recs, n);
	}
	REOPEN_POINT(wt, "after_commit");
	if (rc < 0) {
		/* nothing committed: it ends as it was, not queued again */
		uint64_t mine_w = FG_CTL(FG_S_RUNNING, a->slot, a->gen, FG_CTL_SGEN(was));
		atomic_store_explicit(&s->finished_ns, fin, memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &mine_w, was,
				memory_order_acq_rel, memory_order_relaxed))
			atomic_fetch_sub_explicit(&hd->reopened, ro, memory_order_relaxed);
		else if (mine(a, mine_w, FG_S_RUNNING) && (mine_w & FG_CTL_CANCEL))
			atomic_compare_exchange_strong(&s->ctl, &mine_w,
				FG_CTL_FREE_OF(FG_S_CANCELLED, FG_CTL_SGEN(was)));
		ring_bell(a->r, idx, BELL_STATE);
		fg_idle_bell_ring(a->r);   /* it ended again */
		lease_clear(a, entry);
		return rc;
	}
	/* committed or not, it goes back to the queue: a worker finds what
	 * was committed (an uncommitted message ends it as it was) */
	c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
	if (mine(a, c, FG_S_RUNNING) &&
	    atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL_FREE_OF((c & FG_CTL_CANCEL) ? FG_S_CANCELLED : FG_S_QUEUED,
				       FG_CTL_SGEN(c)),
			memory_order_acq_rel, memory_order_relaxed) &&
	    !(c & FG_CTL_CANCEL)) {
		fg_session_enqueue(a, idx);
		fg_ring_intent_clear(a->self);
	} else {
		fg_idle_bell_ring(a->r);   /* cancelled meanwhile: it ended */
	}
	ring_bell(a->r, idx, BELL_STATE);
	lease_clear(a, entry);
	return rc;
}

int fg_session_continue(fg_actor_t *a, fg_handle_t h, uint64_t ckpt_seen, const void *recs,
			uint32_t n, uint32_t *state)
{
	return reopen(a, h, ckpt_seen, recs, n, state, 0);
}

int fg_session_answer(fg_actor_t *a, fg_handle_t h, uint64_t ckpt_seen, const void *recs,
		      uint32_t n, uint32_t *state)
{
	return reopen(a, h, ckpt_seen, recs, n, state, 1);
}

int fg_session_park(fg_actor_t *a, uint32_t idx, uint32_t entry,
		    int (*ended)(void *arg), void *arg)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	if (!mine(a, c, FG_S_RUNNING))
		return -EIO;
	if (c & FG_CTL_CANCEL)
		return -ECANCELED;
	uint32_t sgen = FG_CTL_SGEN(c);
	atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL_FREE_OF(FG_S_WAITING, sgen),
			memory_order_seq_cst, memory_order_relaxed)) {
		if ((c & FG_CTL_CANCEL) && mine(a, c, FG_S_RUNNING))
			return -ECANCELED;
		lease_clear(a, entry);   /* not ours any more (never, for a live holder) */
		atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
		return -EIO;
	}
	FG_CRASHPOINT("session.park.after_cas");
	ring_bell(a->r, idx, BELL_STATE);   /* (an answer that waited for it to wait) */
	/* A child that ended before our CAS may have seen us RUNNING and not
	 * woken us: look once more (the other half of the Dekker pair).  The
	 * fence makes it hold in C11 whatever order ended() loads with (an
	 * acquire load after a seq_cst RMW is not in the total order). */
	atomic_thread_fence(memory_order_seq_cst);
	if (ended(arg))
		fg_session_wake(a, idx, sgen);
	lease_clear(a, entry);
	atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
	return 0;
}

int fg_session_cancel(fg_region_t *r, fg_actor_t *a, fg_handle_t h, uint32_t *state)
{
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= r->hdr->capacity)
		return -ENOENT;
	fg_session_t *s = fg_sess(r, idx);
	for (;;) {
		uint64_t c;
		if (!fg_session_valid(r, h, &c))
			return -ENOENT;
		uint32_t st = FG_CTL_STATE(c);
		*state = st;
		if (FG_S_FINISHED(st))
			return -EALREADY;
		FG_CRASHPOINT("session.cancel.before_cas");
		if (st == FG_S_QUEUED || st == FG_S_WAITING) {
			/* before the CAS: written after it, a stall could land it
			 * on a later session; written before, a stale one can only
			 * make a later session's finish look later (kept longer) */
			atomic_store(&s->finished_ns, fg_now_ns());
			if (atomic_compare_exchange_strong(&s->ctl, &c,
					FG_CTL_FREE_OF(FG_S_CANCELLED, FG_CTL_SGEN(c)))) {
				*state = FG_S_CANCELLED;
				ring_bell(r, idx, BELL_STATE);
				fg_idle_bell_ring(r);   /* ended without a worker */
				if (a)   /* (without an actor, the sweep wakes the parent) */
					wake_parent(a, s);
				return 0;
			}
			continue;
		}
		/* RUNNING: flag it; its worker ends it at once */
		if (c & FG_CTL_CANCEL)
			return 0;
		if (atomic_compare_exchange_strong(&s->ctl, &c, c | FG_CTL_CANCEL))
			return 0;
	}
}

int fg_session_release(fg_actor_t *a, uint32_t idx, uint32_t entry)
{
	fg_session_t *s = fg_sess(a->r, idx);
	atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
	for (;;) {
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		if (!mine(a, c, FG_S_RUNNING))
			return -EIO;
		if (c & FG_CTL_CANCEL) {
			/* cancelled meanwhile: not handed on, ended */
			atomic_store(&s->finished_ns, fg_now_ns());
			if (!atomic_compare_exchange_strong(&s->ctl, &c,
					FG_CTL_FREE_OF(FG_S_CANCELLED, FG_CTL_SGEN(c))))
				continue;
			ring_bell(a->r, idx, BELL_STATE);
			fg_idle_bell_ring(a->r);   /* ended by no worker's finish */
			wake_parent(a, s);
			lease_clear(a, entry);
			atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
			return -ECANCELED;
		}
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &c,
				FG_CTL_FREE_OF(FG_S_QUEUED, FG_CTL_SGEN(c)),
				memory_order_acq_rel, memory_order_relaxed))
			break;
	}
	FG_CRASHPOINT("session.release.after_cas");
	fg_session_enqueue(a, idx);
	fg_ring_intent_clear(a->self);
	lease_clear(a, entry);
	atomic_fetch_add_explicit(&a->self->released, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
	return 0;
}

/* Returns 1 if idx went back to QUEUED (and was enqueued). */
static int recover_one(fg_actor_t *a, uint32_t idx, uint32_t slot, uint32_t gen, int any_gen)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
	uint32_t st = FG_CTL_STATE(c);

	if (FG_S_LEASED(st) && FG_CTL_SLOT(c) == slot &&
	    (any_gen || FG_CTL_LGEN(c) == (gen & 0xffffu))) {
		uint32_t sgen = FG_CTL_SGEN(c);
		/* a dead purger's record is FREE as purged once it judged it
		 * old (the next allocator punches what it did not); before,
		 * it goes back to the state it was held from, uncounted */
		uint32_t prev = FG_CTL_PREV_STATE(c);
		int unheld = st == FG_S_FREEING && prev && !(c & FG_CTL_JUDGED);
		uint64_t to = st == FG_S_RUNNING ? FG_CTL_FREE_OF(FG_S_QUEUED, sgen) :
			      unheld ? FG_CTL_FREE_OF(prev, sgen) :
			      st == FG_S_FREEING ? FG_CTL_FREE_OF(FG_S_FREE, sgen) : rolled_back(sgen);
		if (c & FG_CTL_CANCEL) {
			atomic_store_explicit(&s->finished_ns, fg_now_ns(), memory_order_relaxed);
			if (atomic_compare_exchange_strong(&s->ctl, &c,
					FG_CTL_FREE_OF(FG_S_CANCELLED, sgen))) {
				ring_bell(a->r, idx, BELL_STATE);
				fg_idle_bell_ring(a->r);
				wake_parent(a, s);
			}
			return 0;
		}
		if (st == FG_S_RUNNING)
			atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
		if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c, to,
				memory_order_acq_rel, memory_order_relaxed))
			return 0;
		if (unheld)   /* (its purger counted it before the hold) */
			atomic_fetch_sub_explicit(&a->r->hdr->purged, 1, memory_order_relaxed);
		if (st != FG_S_RUNNING)
			return 0;
		fg_session_enqueue(a, idx);
		fg_ring_intent_clear(a->self);
		return 1;
	}
	if (st == FG_S_QUEUED) {
		fg_session_enqueue(a, idx);
		fg_ring_intent_clear(a->self);
	} else if (st == FG_S_WAITING) {
		fg_session_wake(a, idx, FG_CTL_SGEN(c));
	} else if (FG_S_FINISHED(st)) {
		/* died between the final CAS and the wake-up, or between the
		 * wake-up's CAS and its enqueue: the parent is WAITING (woken
		 * now) or QUEUED without a hint (enqueued now; a duplicate hint
		 * costs one failed claim) */
		uint32_t p = s->parent;
		if (p && p - 1 < a->r->hdr->capacity && !fg_session_wake(a, p - 1, 0) &&
		    FG_CTL_STATE(atomic_load(&fg_sess(a->r, p - 1)->ctl)) == FG_S_QUEUED) {
			fg_session_enqueue(a, p - 1);
			fg_ring_intent_clear(a->self);
		}
	}
	return 0;
}

int fg_session_copy_unsafe(fg_region_t *dst, const fg_region_t *src, uint32_t idx)
{
	const fg_session_t *a = fg_sess(src, idx);
	fg_session_t *b = fg_sess(dst, idx);
	uint64_t c = atomic_load((_Atomic uint64_t *)&a->ctl);
	uint32_t len = FG_CKPT_LEN(atomic_load((_Atomic uint64_t *)&a->ckpt));
	if (FG_CTL_STATE(c) != FG_S_FREE && len) {
		if ((uint64_t)len > fg_log_max(dst))
			return -E2BIG;
		uint8_t *tmp;
		const uint8_t *log = fg_session_log(src, idx, len, &tmp);
		if (!log)
			return -ENOMEM;
		int rc = log_write(dst, idx, 0, log, len);
		free(tmp);
		if (rc < 0)
			return rc;
	}
	memcpy((void *)b, (const void *)a, sizeof(*b));
	if (FG_CTL_STATE(c) == FG_S_FREE)   /* (no log: nothing to punch later) */
		atomic_store(&b->ckpt, FG_CKPT(0, 0, 0));
	return 0;
}

uint32_t fg_session_recover_slot(fg_actor_t *a, uint32_t slot, uint32_t gen)
{
	fg_region_t *r = a->r;
	fg_slot_t *dead = fg_slot(r, slot);
	fg_durable_recover(r, slot);   /* it may have died leading a flush */
	uint32_t *tab = fg_lease_table(r, slot);
	uint32_t n = 0;

	for (uint32_t e = 0; e < fg_lease_n(r); e++) {
		uint32_t v = __atomic_load_n(&tab[e], __ATOMIC_ACQUIRE);
		if (v == 0)
			continue;
		if (v - 1 < r->hdr->capacity)
			n += (uint32_t)recover_one(a, v - 1, slot, gen, 0);
		FG_CRASHPOINT("recover.after_entry");
		__atomic_store_n(&tab[e], 0, __ATOMIC_RELEASE);
	}
	uint32_t idx = fg_ring_recover_unsafe(r, dead);
	if (idx < r->hdr->capacity) {
		fg_session_t *s = fg_sess(r, idx);
		if (FG_CTL_STATE(atomic_load(&s->ctl)) == FG_S_QUEUED) {
			fg_session_enqueue(a, idx);
			fg_ring_intent_clear(a->self);
		}
	}
	atomic_store_explicit(&dead->op_intent, 0, memory_order_release);
	atomic_store_explicit(&dead->inflight, 0, memory_order_relaxed);
	return n;
}

uint32_t fg_session_recover_all_unsafe(fg_actor_t *a)
{
	fg_region_t *r = a->r;
	uint32_t n = 0;
	/* (Overflow pages a dead purger did not give back are punched by the
	 * next allocator of the record, under its own hold: not here, where a
	 * live client may be allocating the very record.) */
	/* Intents and lease tables first, so half-done ring steps are repaired.
	 * Workers and the gateway are all dead now; clients may live on (a
	 * forgectl submit running across a supervisor restart). */
	for (uint32_t sl = 0; sl < r->hdr->nslots; sl++) {
		if (sl == a->slot)
			continue;
		fg_slot_t *s = fg_slot(r, sl);
		if (s->kind == FG_KIND_CLIENT) {
			uint64_t w = atomic_load(&s->owner);
			if (w & FG_OWNER_RECOVERING) {
				/* a supervisor died recovering it: finish the job */
				atomic_store(&s->owner, w & ~FG_OWNER_RECOVERING);
				w &= ~FG_OWNER_RECOVERING;
			} else if (w == 0 || fg_client_probe(s, &w) != FG_PROBE_DEAD) {
				continue;   /* free, or a live forgectl: not ours */
			}
			int k = fg_client_recover(a, sl, w);
			n += k > 0 ? (uint32_t)k : 0;
			continue;
		}
		n += fg_session_recover_slot(a, sl, atomic_load(&s->gen));
	}
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		uint32_t st = FG_CTL_STATE(c);
		if (st == FG_S_QUEUED) {
			fg_session_enqueue(a, i);
			fg_ring_intent_clear(a->self);
		} else if (st == FG_S_WAITING) {
			/* a wake-up may have died with its waker: look again */
			fg_session_wake(a, i, FG_CTL_SGEN(c));
		} else if (FG_S_LEASED(st)) {
			uint32_t sl = FG_CTL_SLOT(c);
			fg_slot_t *o = sl < r->hdr->nslots ? fg_slot(r, sl) : NULL;
			if (o && o->kind == FG_KIND_CLIENT) {
				/* an orphan only if the slot has no holder; the exact
				 * lease gen, so a client attaching meanwhile is spared */
				if (atomic_load(&o->owner) == 0)
					n += (uint32_t)recover_one(a, i, sl, FG_CTL_LGEN(c), 0);
				continue;
			}
			n += (uint32_t)recover_one(a, i, sl, 0, 1);
		}
	}
	return n;
}

uint64_t fg_session_sweep(fg_actor_t *a, uint64_t now, uint64_t after_ns, uint64_t *missing)
{
	fg_region_t *r = a->r;
	uint64_t queued = 0, stale = 0, depth = 0, n = 0;
	uint32_t nw = atomic_load(&r->hdr->cfg_workers);
	for (uint32_t i = 0; i < nw && i < r->hdr->nrings; i++)
		depth += fg_ring_depth(fg_ring_ref(r, i));
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *x = fg_sess(r, i);
		if (FG_CTL_STATE(atomic_load_explicit(&x->ctl, memory_order_relaxed)) != FG_S_QUEUED)
			continue;
		queued++;
		/* queued_ns may be later than now: enqueued while we scan */
		uint64_t q = atomic_load_explicit(&x->queued_ns, memory_order_relaxed);
		if (q < now && now - q > after_ns)
			stale++;
	}
	*missing = queued > depth ? queued - depth : 0;
	if (stale == 0 || depth >= queued)
		return 0;
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *x = fg_sess(r, i);
		uint64_t q = atomic_load_explicit(&x->queued_ns, memory_order_relaxed);
		if (FG_CTL_STATE(atomic_load_explicit(&x->ctl, memory_order_acquire)) != FG_S_QUEUED ||
		    q >= now || now - q <= after_ns)
			continue;
		atomic_store_explicit(&x->queued_ns, now, memory_order_relaxed);
		fg_session_enqueue(a, i);
		fg_ring_intent_clear(a->self);
		n++;
	}
	atomic_fetch_add(&r->hdr->sweeps_requeued, n);
	return n;
}

/* Whether every child named by the CHILD records of this log has ended
 * (finished, or its record gone); 0 if some child is still live. */
static int children_ended(const fg_region_t *r, const uint8_t *log, uint32_t len)
{
	uint32_t off = 0, part;
	uint64_t h, c;
	fg_rec_t rec;
	while (fg_rec_next(log, len, &off, &rec) > 0) {
		if (fg_rec_child(&rec, &part, &h) < 0)
			continue;
		if (fg_session_valid(r, h, &c) && !FG_S_FINISHED(FG_CTL_STATE(c)))
			return 0;
	}
	return 1;
}

/* How many calls of the last tool-call turn wait for a person (an ASK
 * with neither DECISION nor result), the earliest of their deadlines
 * (CLOCK_REALTIME ms; 0: none of them ends by itself), and when the
 * session's own deadline passes (0: none). */
static uint32_t asks_open(const uint8_t *log, uint32_t len, uint64_t *deadline_ms,
			  uint64_t *wake_ms)
{
	uint32_t off = 0, n = 0;
	fg_str_t id[FG_MAX_CALLS];
	uint64_t dl[FG_MAX_CALLS], wk[FG_MAX_CALLS];
	fg_rec_t rec;
	while (fg_rec_next(log, len, &off, &rec) > 0) {
		fg_str_t x, text;
		fg_ask_t a;
		if (rec.type == FG_REC_TOOLCALLS || rec.type == FG_REC_USER) {
			n = 0;
		} else if (rec.type == FG_REC_ASK && fg_rec_ask(&rec, &x, &a) == 0 &&
			   n < FG_MAX_CALLS) {
			id[n] = x;
			wk[n] = a.wake_ms;
			dl[n++] = a.deadline_ms;
		} else if ((rec.type == FG_REC_DECISION || rec.type == FG_REC_TOOL) &&
			   fg_rec_tool(&rec, &x, &text) == 0) {
			for (uint32_t i = 0; i < n; i++)
				if (id[i].n == x.n && !memcmp(id[i].p, x.p, x.n)) {
					id[i] = id[--n];
					dl[i] = dl[n];
					wk[i] = wk[n];
					break;
				}
		}
	}
	*deadline_ms = *wake_ms = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (dl[i] && (!*deadline_ms || dl[i] < *deadline_ms))
			*deadline_ms = dl[i];
		if (wk[i] && (!*wake_ms || wk[i] < *wake_ms))
			*wake_ms = wk[i];
	}
	return n;
}

uint64_t fg_session_sweep_waiting(fg_actor_t *a, uint64_t now, uint64_t after_ns,
				  uint64_t deadline_ns, fg_sweep_memo_t *memo, uint32_t nmemo)
{
	fg_region_t *r = a->r;
	uint64_t n = 0;
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *x = fg_sess(r, i);
		uint64_t c = atomic_load_explicit(&x->ctl, memory_order_acquire);
		if (FG_CTL_STATE(c) != FG_S_WAITING)
			continue;
		/* the cheap test first: only a candidate's log is copied */
		uint64_t cr = x->created_ns, q = atomic_load_explicit(&x->queued_ns, memory_order_relaxed);
		int late = deadline_ns && now > cr && now - cr > deadline_ns;
		if (!late && !(now > q && now - q > after_ns))
			continue;
		fg_sweep_memo_t *m = memo && i < nmemo ? &memo[i] : NULL;
		if (m && m->ckpt && m->sgen == FG_CTL_SGEN(c) &&
		    m->ckpt == atomic_load_explicit(&x->ckpt, memory_order_acquire) &&
		    fg_wall_ms() < m->next_ms)
			continue;   /* (waits for a person; nothing due before next_ms) */
		fg_snap_t sn;
		if (fg_session_snapshot(r, FG_HANDLE(i, FG_CTL_SGEN(c)), &sn, 1) < 0)
			continue;
		int wake = deadline_ns && now > sn.created_ns && now - sn.created_ns > deadline_ns;
		uint64_t dl, wk;
		if (asks_open(sn.log, sn.len, &dl, &wk)) {
			/* waiting for a person: its approval timeout wakes it (the
			 * worker then applies the default answer), and its own
			 * deadline (an agent's deadline_s, or workflows.deadline_s
			 * as it was when it asked: the worker then fails it) */
			uint64_t wall = fg_wall_ms();
			wake = (dl && wall >= dl) || (wk && wall >= wk);
			if (m && !wake) {
				m->ckpt = sn.ckpt;
				m->sgen = FG_CTL_SGEN(c);
				m->next_ms = dl && (!wk || dl < wk) ? dl : wk ? wk : UINT64_MAX;
			}
		} else if (!wake && now > sn.queued_ns && now - sn.queued_ns > after_ns) {
			wake = children_ended(r, sn.log, sn.len);
		}
		fg_snap_free(&sn);
		if (wake)
			n += (uint64_t)fg_session_wake(a, i, FG_CTL_SGEN(c));
	}
	atomic_fetch_add(&r->hdr->sweeps_requeued, n);
	return n;
}

/*
 * Purge: finished sessions back to FREE, so that the table can be reused.
 * One CAS per record from the exact word read (finished, of its session
 * generation) to FREE, so a purger killed anywhere leaves each record
 * either finished or FREE, and a purger that stalls after reading a record
 * cannot free a later session that reused it (its word names another
 * generation).  A finished child whose parent is still live is kept (the
 * parent reads its result); the parent is found by the child's parent
 * index, and a live unrelated session in that record only keeps the child
 * a little longer.
 */
uint32_t fg_session_purge(fg_actor_t *a, uint64_t finished_before_ns, uint32_t state_mask)
{
	fg_region_t *r = a->r;
	uint32_t cap = r->hdr->capacity, n = 0;
	uint64_t now = fg_now_ns();
	if (finished_before_ns > now)
		finished_before_ns = now;
	for (uint32_t i = 0; i < cap; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		uint32_t st = FG_CTL_STATE(c);
		if (!FG_S_FINISHED(st) || !(state_mask & (1u << st)) ||
		    c != FG_CTL_FREE_OF(st, FG_CTL_SGEN(c)))
			continue;
		uint32_t p = s->parent;
		if (p && p - 1 < cap &&
		    FG_S_LIVE(FG_CTL_STATE(atomic_load_explicit(&fg_sess(r, p - 1)->ctl,
								memory_order_acquire))))
			continue;
		uint64_t w0 = atomic_load_explicit(&s->ckpt, memory_order_acquire);
		uint64_t f = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
		if (!f)
			f = s->created_ns;   /* (cancelled before it ran) */
		if (f >= finished_before_ns)
			continue;
		/* Counted before the CAS (and taken back if it fails): a purger
		 * killed in between over-counts by one, which no check trips on;
		 * the other order would under-count for good. */
		atomic_fetch_add_explicit(&r->hdr->purged, 1, memory_order_relaxed);
		FG_CRASHPOINT("session.purge.after_count");
		uint32_t e;
		if (lease_put(a, i, &e) < 0) {
			atomic_fetch_sub_explicit(&r->hdr->purged, 1, memory_order_relaxed);
			continue;   /* (no lease entry free: next time) */
		}
		/* The record is held under our lease (FREEING) first.  What was
		 * read above may belong to an earlier run of the session: a
		 * thread's next run ends with the very same word.  Held, it
		 * cannot change: the checkpoint and the finish time tell whether
		 * it is still what was judged old enough; if not, it goes back
		 * as it was.  The held word keeps the state it was held from: a
		 * death before the re-check puts it back there by the recovery
		 * pass; once judged (FG_CTL_JUDGED), a death leaves it FREE (the
		 * next allocator punches its pages). */
		uint64_t held = FG_CTL(FG_S_FREEING, a->slot, a->gen, FG_CTL_SGEN(c)) | FG_CTL_PREV(st);
		if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c, held,
				memory_order_acq_rel, memory_order_relaxed)) {
			lease_clear(a, e);
			atomic_fetch_sub_explicit(&r->hdr->purged, 1, memory_order_relaxed);
			continue;
		}
		FG_CRASHPOINT("session.purge.after_hold");
		uint64_t f2 = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
		if (atomic_load_explicit(&s->ckpt, memory_order_acquire) != w0 ||
		    (f2 ? f2 : s->created_ns) >= finished_before_ns) {
			atomic_compare_exchange_strong(&s->ctl, &held, c);   /* not old: back */
			lease_clear(a, e);
			atomic_fetch_sub_explicit(&r->hdr->purged, 1, memory_order_relaxed);
			continue;
		}
		/* judged: from here a death frees it */
		uint64_t judged = held | FG_CTL_JUDGED;
		if (!atomic_compare_exchange_strong_explicit(&s->ctl, &held, judged,
				memory_order_acq_rel, memory_order_relaxed)) {
			lease_clear(a, e);   /* (no one else moves a held record) */
			atomic_fetch_sub_explicit(&r->hdr->purged, 1, memory_order_relaxed);
			continue;
		}
		FG_CRASHPOINT("session.purge.after_judge");
		held = judged;
		log_punch(r, i, FG_CKPT_LEN(w0));
		atomic_compare_exchange_strong_explicit(&s->ctl, &held,
			FG_CTL_FREE_OF(FG_S_FREE, FG_CTL_SGEN(c)),
			memory_order_acq_rel, memory_order_relaxed);
		FG_CRASHPOINT("session.purge.after_cas");
		lease_clear(a, e);
		n++;
	}
	return n;
}
