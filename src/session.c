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
 *   finish:  RUNNING->final (after_cas), entry cleared.
 *   release: RUNNING->QUEUED (after_cas), hint enqueued, entry cleared.
 */
#include "forge/session.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/ring.h"
#include "forge/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[FG_S_NSTATES] = {
	"free", "allocating", "queued", "running", "done", "failed", "cancelled"
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
}

/* Takes a free lease entry and writes idx+1 into it; -ENOSPC if none. */
static int lease_put(fg_actor_t *a, uint32_t idx, uint32_t *entry)
{
	uint32_t n = a->r->hdr->max_inflight;
	uint32_t h = atomic_load_explicit(&a->self->lease_hint, memory_order_relaxed);
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

int fg_session_enqueue(fg_actor_t *a, uint32_t idx)
{
	fg_hdr_t *h = a->r->hdr;
	uint32_t nw = atomic_load_explicit(&h->cfg_workers, memory_order_relaxed);
	if (nw == 0 || nw > h->nrings)
		nw = 1;
	int rc = -EAGAIN;
	/* Home ring first; if it is full, any other. */
	for (uint32_t k = 0; k < nw && rc < 0; k++)
		rc = fg_ring_enqueue_mp(fg_ring_ref(a->r, (idx + k) % nw), idx, a->self);
	if (atomic_load_explicit(&h->sleepers, memory_order_seq_cst) > 0) {
		atomic_fetch_add_explicit(&h->doorbell, 1, memory_order_seq_cst);
		fg_futex_wake(&h->doorbell);
	}
	return rc;
}

int fg_session_alloc(fg_actor_t *a, const fg_submit_t *p, fg_handle_t *out, uint32_t *entry_out)
{
	fg_hdr_t *h = a->r->hdr;
	uint32_t cap = h->capacity, entry, idx = 0;
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
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &c,
				FG_CTL(FG_S_ALLOCATING, a->slot, a->gen),
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
	FG_CRASHPOINT("session.alloc.after_cas");

	fg_session_t *s = fg_sess(a->r, idx);
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
	if (gen == 0)
		gen = 1;
	atomic_store_explicit(&s->gen, gen, memory_order_relaxed);
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
	uint32_t loglen = 0;
	if (p->workflow != FG_WF_SYNTHETIC) {
		fg_buf_t b = { fg_sess_log(a->r, idx), 0, h->log_bytes, 0 };
		if (p->key && p->keylen)
			fg_buf_rec(&b, FG_REC_KEY, p->key, p->keylen);
		if (p->system && *p->system)
			fg_buf_rec(&b, FG_REC_SYSTEM, p->system, strlen(p->system));
		fg_buf_rec(&b, FG_REC_USER, p->prompt ? p->prompt : "", p->prompt ? strlen(p->prompt) : 0);
		if (b.overflow) {
			/* give the record back: nobody else has seen it */
			uint64_t c = FG_CTL(FG_S_ALLOCATING, a->slot, a->gen);
			atomic_compare_exchange_strong(&s->ctl, &c, FG_CTL(FG_S_FREE, FG_SLOT_NONE, 0));
			lease_clear(a, entry);
			return -E2BIG;
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
	uint64_t c = FG_CTL(FG_S_ALLOCATING, a->slot, a->gen);
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL(FG_S_QUEUED, FG_SLOT_NONE, 0),
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
	uint64_t c = FG_CTL(FG_S_ALLOCATING, a->slot, a->gen);
	atomic_compare_exchange_strong(&fg_sess(a->r, idx)->ctl, &c,
				       FG_CTL(FG_S_FREE, FG_SLOT_NONE, 0));
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
			FG_CTL(FG_S_RUNNING, a->slot, a->gen),
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

int fg_session_commit(fg_actor_t *a, uint32_t idx, const fg_wstate_t *st,
		      const void *log, uint32_t n)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t w = atomic_load_explicit(&s->ckpt, memory_order_relaxed);
	uint32_t ab = FG_CKPT_AB(w) ^ 1u, len = FG_CKPT_LEN(w);

	if (n > 0) {
		if ((uint64_t)len + n > a->r->hdr->log_bytes)
			return -ENOSPC;
		memcpy(fg_sess_log(a->r, idx) + len, log, n);
	}
	s->st[ab] = *st;
	FG_CRASHPOINT("ckpt.commit.after_write");
	atomic_store_explicit(&s->ckpt, FG_CKPT(FG_CKPT_SEQ(w) + 1, ab, len + n),
			      memory_order_release);
	FG_CRASHPOINT("ckpt.commit.after_publish");
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

int fg_session_finish(fg_actor_t *a, uint32_t idx, uint32_t entry, uint32_t final_state)
{
	fg_session_t *s = fg_sess(a->r, idx);
	uint64_t c = FG_CTL(FG_S_RUNNING, a->slot, a->gen);
	uint64_t mine = c;
	int rc = 0;
	atomic_store_explicit(&s->finished_ns, fg_now_ns(), memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL(final_state, FG_SLOT_NONE, 0),
			memory_order_acq_rel, memory_order_relaxed)) {
		/* cancelled meanwhile: it ends CANCELLED, whatever it reached */
		if (c != (mine | FG_CTL_CANCEL) ||
		    !atomic_compare_exchange_strong(&s->ctl, &c, FG_CTL(FG_S_CANCELLED, FG_SLOT_NONE, 0)))
			return -EIO;
		rc = -ECANCELED;
	}
	FG_CRASHPOINT("session.finish.after_cas");
	lease_clear(a, entry);
	atomic_fetch_add_explicit(&a->self->done, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
	return rc;
}

int fg_session_cancel(fg_region_t *r, fg_handle_t h, uint32_t *state)
{
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= r->hdr->capacity)
		return -ENOENT;
	fg_session_t *s = fg_sess(r, idx);
	for (;;) {
		uint64_t c = atomic_load(&s->ctl);
		uint32_t st = FG_CTL_STATE(c);
		if (atomic_load(&s->gen) != FG_HANDLE_GEN(h) || st == FG_S_FREE || st == FG_S_ALLOCATING)
			return -ENOENT;
		*state = st;
		if (st >= FG_S_DONE)
			return -EALREADY;
		if (st == FG_S_QUEUED) {
			if (atomic_compare_exchange_strong(&s->ctl, &c,
					FG_CTL(FG_S_CANCELLED, FG_SLOT_NONE, 0))) {
				atomic_store(&s->finished_ns, fg_now_ns());
				*state = FG_S_CANCELLED;
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
	uint64_t c = FG_CTL(FG_S_RUNNING, a->slot, a->gen);
	uint64_t mine = c;
	atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c,
			FG_CTL(FG_S_QUEUED, FG_SLOT_NONE, 0),
			memory_order_acq_rel, memory_order_relaxed)) {
		/* cancelled meanwhile: not handed on, ended */
		if (c == (mine | FG_CTL_CANCEL) &&
		    atomic_compare_exchange_strong(&s->ctl, &c, FG_CTL(FG_S_CANCELLED, FG_SLOT_NONE, 0))) {
			atomic_store(&s->finished_ns, fg_now_ns());
			lease_clear(a, entry);
			atomic_fetch_sub_explicit(&a->self->inflight, 1, memory_order_relaxed);
			return -ECANCELED;
		}
		return -EIO;
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

	if ((st == FG_S_RUNNING || st == FG_S_ALLOCATING) && FG_CTL_SLOT(c) == slot &&
	    (any_gen || FG_CTL_GEN(c) == gen)) {
		uint64_t to = st == FG_S_RUNNING ? FG_CTL(FG_S_QUEUED, FG_SLOT_NONE, 0)
						 : FG_CTL(FG_S_FREE, FG_SLOT_NONE, 0);
		if (c & FG_CTL_CANCEL) {
			atomic_store_explicit(&s->finished_ns, fg_now_ns(), memory_order_relaxed);
			atomic_compare_exchange_strong(&s->ctl, &c, FG_CTL(FG_S_CANCELLED, FG_SLOT_NONE, 0));
			return 0;
		}
		if (st == FG_S_RUNNING)
			atomic_store_explicit(&s->queued_ns, fg_now_ns(), memory_order_relaxed);
		if (!atomic_compare_exchange_strong_explicit(&s->ctl, &c, to,
				memory_order_acq_rel, memory_order_relaxed))
			return 0;
		if (st == FG_S_ALLOCATING)
			return 0;
		fg_session_enqueue(a, idx);
		fg_ring_intent_clear(a->self);
		return 1;
	}
	if (st == FG_S_QUEUED) {
		fg_session_enqueue(a, idx);
		fg_ring_intent_clear(a->self);
	}
	return 0;
}

uint32_t fg_session_recover_slot(fg_actor_t *a, uint32_t slot, uint32_t gen)
{
	fg_region_t *r = a->r;
	fg_slot_t *dead = fg_slot(r, slot);
	uint32_t *tab = fg_lease_table(r, slot);
	uint32_t n = 0;

	for (uint32_t e = 0; e < r->hdr->max_inflight; e++) {
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
	/* Intents and lease tables first, so half-done ring steps are repaired. */
	for (uint32_t sl = 0; sl < r->hdr->nslots; sl++) {
		if (sl == a->slot)
			continue;
		fg_slot_t *s = fg_slot(r, sl);
		if (s->kind == FG_KIND_CLIENT &&
		    atomic_load(&s->state) != FG_SLOT_FREE &&
		    fg_proc_alive(atomic_load(&s->pid), atomic_load(&s->starttime)))
			continue;   /* a live forgectl: not ours to recover */
		n += fg_session_recover_slot(a, sl, atomic_load(&s->gen));
	}
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		uint32_t st = FG_CTL_STATE(c);
		if (st == FG_S_QUEUED) {
			fg_session_enqueue(a, i);
			fg_ring_intent_clear(a->self);
		} else if (st == FG_S_RUNNING || st == FG_S_ALLOCATING) {
			uint32_t sl = FG_CTL_SLOT(c);
			fg_slot_t *o = sl < r->hdr->nslots ? fg_slot(r, sl) : NULL;
			if (o && o->kind == FG_KIND_CLIENT &&
			    fg_proc_alive(atomic_load(&o->pid), atomic_load(&o->starttime)))
				continue;
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

/*
 * Purge: finished sessions back to FREE, so that the table can be reused.
 * One CAS per record (finished -> FREE), so a purger killed anywhere leaves
 * each record either finished or FREE.  A finished child of a parent that
 * is still running is kept (the parent reads its result): the parents'
 * logs are read first, and a child created after that read finished after
 * the purge began, so after the cutoff.
 */
uint32_t fg_session_purge(fg_region_t *r, uint64_t finished_before_ns, uint32_t state_mask)
{
	uint32_t cap = r->hdr->capacity, n = 0;
	uint64_t now = fg_now_ns();
	if (finished_before_ns > now)
		finished_before_ns = now;
	uint8_t *keep = calloc((cap + 7) / 8, 1);
	if (!keep)
		return 0;   /* out of memory: purge nothing rather than guess */
	for (uint32_t i = 0; i < cap; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint32_t st = FG_CTL_STATE(atomic_load_explicit(&s->ctl, memory_order_acquire));
		if (st < FG_S_QUEUED || st > FG_S_RUNNING ||
		    (s->workflow != FG_WF_MAP_REDUCE && s->workflow != FG_WF_PLAN_EXECUTE))
			continue;
		uint32_t len = FG_CKPT_LEN(atomic_load_explicit(&s->ckpt, memory_order_acquire));
		if (len > r->hdr->log_bytes)
			continue;
		const uint8_t *log = fg_sess_log(r, i);
		uint32_t off = 0, part;
		uint64_t h;
		fg_rec_t rec;
		while (fg_rec_next(log, len, &off, &rec) > 0)
			if (fg_rec_child(&rec, &part, &h) == 0 && FG_HANDLE_IDX(h) < cap)
				keep[FG_HANDLE_IDX(h) / 8] |= (uint8_t)(1u << (FG_HANDLE_IDX(h) % 8));
	}
	for (uint32_t i = 0; i < cap; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load_explicit(&s->ctl, memory_order_acquire);
		uint32_t st = FG_CTL_STATE(c);
		if (st < FG_S_DONE || st >= FG_S_NSTATES || !(state_mask & (1u << st)) ||
		    (keep[i / 8] & (1u << (i % 8))))
			continue;
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
		if (atomic_compare_exchange_strong_explicit(&s->ctl, &c,
				FG_CTL(FG_S_FREE, FG_SLOT_NONE, 0),
				memory_order_acq_rel, memory_order_relaxed)) {
			FG_CRASHPOINT("session.purge.after_cas");
			n++;
		} else
			atomic_fetch_sub_explicit(&r->hdr->purged, 1, memory_order_relaxed);
	}
	free(keep);
	return n;
}
