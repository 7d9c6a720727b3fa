/*
 * ring.c — Vyukov's bounded MPMC queue, made crash-repairable.
 *
 * Positions are 64-bit counters that never wrap.  Cell i holds one 64-bit
 * word: high 32 bits = (seq - i), low 32 bits = the session index.  With
 * pos the position a participant works on and cap the ring size:
 *   seq == pos          the cell is free for the producer of pos
 *   seq == pos + 1      the cell holds the item of pos, for its consumer
 *   seq == pos + cap    released; free for the producer of pos + cap
 * A producer claims pos by CAS on tail and publishes by CAS on the cell
 * {pos, *} -> {pos+1, idx}.  A consumer claims pos by CAS on head (only
 * after it saw the cell published) and releases by a store {pos+1, idx}
 * -> {pos+cap, 0}.  The publish is a CAS because others may have written
 * the claimed cell while its producer stalled (the unstall pass skips it:
 * the failed CAS tells the producer to go again); the release is a plain
 * store because no one writes a claimed, published cell but its consumer
 * while that consumer lives (the recovery pass releases it only once the
 * consumer is reaped).  As a CAS it cost 18.5 ns per item against 11.2
 * as a store (bench_ring 1p1c, a bare Vyukov ring 10.2-10.8 ns).
 *
 * Intents (in the caller's own slot, line 2): ring_pos is stored before
 * each claim attempt, ring_intent names the operation and index.  SIGKILL
 * loses no store a process has executed, so the recovery pass, which runs
 * only after the pid is reaped, sees them all.
 */
#include "forge/ring.h"
#include "forge/crash.h"

#include <errno.h>
#include <stdio.h>

#define CELL(seq, i, idx) \
	(((uint64_t)(uint32_t)((uint32_t)(seq) - (uint32_t)(i)) << 32) | (uint32_t)(idx))
#define CELL_SEQ(c, i) ((uint32_t)((uint32_t)((c) >> 32) + (uint32_t)(i)))
#define CELL_IDX(c)    ((uint32_t)(c))

void fg_ring_init_unsafe(fg_ring_t *r, uint32_t cap, uint64_t cells_off)
{
	atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
	atomic_store_explicit(&r->head, 0, memory_order_relaxed);
	r->cap = cap;
	r->mask = cap - 1;
	r->cells_off = cells_off;
	/* cells are zero: CELL(i, i, 0) == 0, a valid empty ring */
}

fg_ringref_t fg_ring_ref(const fg_region_t *reg, uint32_t id)
{
	fg_ringref_t rr;
	rr.r = fg_ring(reg, id);
	rr.cells = (_Atomic uint64_t *)((uint8_t *)reg->base + rr.r->cells_off);
	rr.id = id;
	return rr;
}

int fg_ring_enqueue_mp(fg_ringref_t rr, uint32_t idx, fg_slot_t *self)
{
	fg_ring_t *r = rr.r;
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (self)
		atomic_store_explicit(&self->ring_intent,
				      FG_INTENT(FG_INTENT_RING_ENQ, rr.id, idx),
				      memory_order_relaxed);
	for (;;) {
		uint32_t i = (uint32_t)pos & r->mask;
		_Atomic uint64_t *cell = &rr.cells[i];
		uint64_t c = atomic_load_explicit(cell, memory_order_acquire);
		int32_t dif = (int32_t)(CELL_SEQ(c, i) - (uint32_t)pos);

		if (dif == 0) {
			if (self)
				atomic_store_explicit(&self->ring_pos, pos, memory_order_release);
			FG_CRASHPOINT("ring.enq.before_claim");
			if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
					memory_order_acq_rel, memory_order_relaxed)) {
				FG_CRASHPOINT("ring.enq.after_claim");
				if (!atomic_compare_exchange_strong_explicit(cell, &c,
						CELL(pos + 1, i, idx), memory_order_release,
						memory_order_relaxed)) {
					/* A consumer skipped our claimed cell while we
					 * were stalled (or recovery published it, taking
					 * us for dead): our item is not in; go again. */
					pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
					continue;
				}
				FG_CRASHPOINT("ring.enq.after_publish");
				if (self)
					atomic_store_explicit(&self->ring_intent, 0,
							      memory_order_release);
				return 0;
			}
		} else if (dif < 0) {
			if (self)
				atomic_store_explicit(&self->ring_intent, 0, memory_order_release);
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		}
	}
}

int fg_ring_dequeue_mc(fg_ringref_t rr, uint32_t *idx, fg_slot_t *self)
{
	fg_ring_t *r = rr.r;
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	int intent_set = 0;

	for (;;) {
		uint32_t i = (uint32_t)pos & r->mask;
		_Atomic uint64_t *cell = &rr.cells[i];
		uint64_t c = atomic_load_explicit(cell, memory_order_acquire);
		int32_t dif = (int32_t)(CELL_SEQ(c, i) - (uint32_t)(pos + 1));

		if (dif == 0) {
			if (self) {
				atomic_store_explicit(&self->ring_pos, pos, memory_order_relaxed);
				if (!intent_set) {
					atomic_store_explicit(&self->ring_intent,
						FG_INTENT(FG_INTENT_RING_DEQ, rr.id, 0),
						memory_order_release);
					intent_set = 1;
				}
			}
			if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
					memory_order_acq_rel, memory_order_relaxed)) {
				uint32_t got = CELL_IDX(c);
				FG_CRASHPOINT("ring.deq.after_claim");
				if (self)
					atomic_store_explicit(&self->ring_intent,
						FG_INTENT(FG_INTENT_RING_TAKEN, rr.id, got),
						memory_order_release);
				/* A store, not a CAS: a claimed cell is ours alone
				 * while we live (the recovery pass releases it only
				 * once we are reaped; the unstall pass touches only
				 * unpublished cells), so nothing can have changed it. */
				atomic_store_explicit(cell, CELL(pos + r->cap, i, 0),
						      memory_order_release);
				FG_CRASHPOINT("ring.deq.after_release");
				*idx = got;
				return 0;
			}
		} else if (dif < 0) {
			if (intent_set)
				atomic_store_explicit(&self->ring_intent, 0, memory_order_release);
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&r->head, memory_order_relaxed);
		}
	}
}

void fg_ring_intent_clear(fg_slot_t *self)
{
	atomic_store_explicit(&self->ring_intent, 0, memory_order_release);
}

uint32_t fg_ring_recover_unsafe(const fg_region_t *reg, fg_slot_t *dead)
{
	uint64_t w = atomic_load_explicit(&dead->ring_intent, memory_order_acquire);
	uint64_t pos = atomic_load_explicit(&dead->ring_pos, memory_order_acquire);
	uint32_t op = FG_INTENT_OP(w), ring = FG_INTENT_RING(w);
	uint32_t result = UINT32_MAX;

	if (op == FG_INTENT_NONE || ring >= reg->hdr->nrings)
		goto out;
	fg_ringref_t rr = fg_ring_ref(reg, ring);
	uint32_t i = (uint32_t)pos & rr.r->mask;
	_Atomic uint64_t *cell = &rr.cells[i];
	uint64_t c = atomic_load_explicit(cell, memory_order_acquire);

	switch (op) {
	case FG_INTENT_RING_ENQ:
		result = FG_INTENT_IDX(w);
		/* Claimed (tail moved past pos) but never published. */
		if (atomic_load_explicit(&rr.r->tail, memory_order_acquire) > pos &&
		    CELL_SEQ(c, i) == (uint32_t)pos)
			atomic_compare_exchange_strong_explicit(cell, &c,
				CELL(pos + 1, i, result), memory_order_release,
				memory_order_relaxed);
		break;
	case FG_INTENT_RING_DEQ:
		/* Claimed (head moved past pos) but never released. */
		if (atomic_load_explicit(&rr.r->head, memory_order_acquire) > pos &&
		    CELL_SEQ(c, i) == (uint32_t)(pos + 1)) {
			result = CELL_IDX(c);
			atomic_compare_exchange_strong_explicit(cell, &c,
				CELL(pos + rr.r->cap, i, 0), memory_order_release,
				memory_order_relaxed);
		}
		break;
	case FG_INTENT_RING_TAKEN:
		result = FG_INTENT_IDX(w);
		if (CELL_SEQ(c, i) == (uint32_t)(pos + 1) && CELL_IDX(c) == result)
			atomic_compare_exchange_strong_explicit(cell, &c,
				CELL(pos + rr.r->cap, i, 0), memory_order_release,
				memory_order_relaxed);
		break;
	}
out:
	atomic_store_explicit(&dead->ring_intent, 0, memory_order_release);
	return result;
}

int fg_ring_unstall_mc(fg_ringref_t rr, fg_ring_watch_t *wt, uint64_t now, uint64_t after_ns)
{
	fg_ring_t *r = rr.r;
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (t <= h) {
		wt->pos = UINT64_MAX;
		return 0;
	}
	uint32_t i = (uint32_t)h & r->mask;
	_Atomic uint64_t *cell = &rr.cells[i];
	uint64_t c = atomic_load_explicit(cell, memory_order_acquire);
	if (CELL_SEQ(c, i) != (uint32_t)h) {
		wt->pos = UINT64_MAX;   /* published (or taken): nothing stalls */
		return 0;
	}
	if (wt->pos != h) {
		wt->pos = h;
		wt->since_ns = now;
		return 0;
	}
	if (now - wt->since_ns < after_ns)
		return 0;
	FG_CRASHPOINT("ring.unstall.before_cas");
	wt->pos = UINT64_MAX;
	/* {h} -> {h+1, SKIP}: consumers take it as an item naming nothing;
	 * the producer's publish CAS ({h} -> {h+1, idx}) fails, and it goes
	 * again at a new position. */
	return atomic_compare_exchange_strong_explicit(cell, &c, CELL(h + 1, i, FG_RING_SKIP),
						       memory_order_release, memory_order_relaxed);
}

uint64_t fg_ring_depth(fg_ringref_t rr)
{
	uint64_t h = atomic_load_explicit(&rr.r->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&rr.r->tail, memory_order_acquire);
	return t > h ? t - h : 0;
}

int fg_ring_check(fg_ringref_t rr, char *err, size_t errlen)
{
	fg_ring_t *r = rr.r;
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (r->cap == 0 || (r->cap & (r->cap - 1)) || r->mask != r->cap - 1) {
		snprintf(err, errlen, "ring %u: capacity %u is not a power of two", rr.id, r->cap);
		return -1;
	}
	if (t < h || t - h > r->cap) {
		snprintf(err, errlen, "ring %u: head %llu, tail %llu out of order", rr.id,
			 (unsigned long long)h, (unsigned long long)t);
		return -1;
	}
	if (t == 0)
		return 0;   /* never used: every cell is still zero */
	/*
	 * Cell i serves position p, the one in [h, h+cap) congruent to i.
	 * p < t (claimed by a producer): published {p+1} or being published {p}.
	 * p >= t (not yet claimed): free {p}, or its previous lap being
	 * released by a consumer {p-cap+1}.
	 */
	for (uint32_t i = 0; i < r->cap; i++) {
		uint64_t p = h + (((uint64_t)i - h) & r->mask);
		uint32_t s = CELL_SEQ(atomic_load_explicit(&rr.cells[i], memory_order_relaxed), i);
		int ok = p < t ? (s == (uint32_t)(p + 1) || s == (uint32_t)p)
			       : (s == (uint32_t)p || s == (uint32_t)(p - r->cap + 1));
		if (!ok) {
			snprintf(err, errlen, "ring %u: cell %u has sequence %u, expected %llu "
				 "(head %llu, tail %llu)", rr.id, i, s, (unsigned long long)
				 (p < t ? p + 1 : p), (unsigned long long)h, (unsigned long long)t);
			return -1;
		}
	}
	return 0;
}
