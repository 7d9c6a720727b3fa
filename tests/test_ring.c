/*
 * test_ring.c — the ring alone: FIFO order, full and empty, exactly-once
 * delivery under threads (also run under TSan by `make tsan`), and the
 * recovery of every death window by simulating a participant that stopped
 * between two of its atomic steps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CAP 64

/* A fake region holding one ring, enough for fg_ring_recover_unsafe. */
typedef struct fake {
	fg_region_t reg;
	fg_hdr_t hdr;
	uint8_t *mem;
	fg_slot_t slots[4];
} fake_t;

static fake_t *fake_new(uint32_t cap)
{
	fake_t *f = calloc(1, sizeof(*f));
	f->mem = aligned_alloc(64, fg_ring_stride(cap));
	memset(f->mem, 0, fg_ring_stride(cap));
	f->hdr.ring_cap = cap;
	f->hdr.nrings = 1;
	f->reg.hdr = &f->hdr;
	f->reg.base = f->mem;
	f->reg.rings = f->mem;
	fg_ring_init_unsafe((fg_ring_t *)f->mem, cap, sizeof(fg_ring_t));
	return f;
}

static void fake_free(fake_t *f)
{
	free(f->mem);
	free(f);
}

static void test_fifo_full_empty(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	uint32_t v;
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), -EAGAIN);
	for (int lap = 0; lap < 3; lap++) {
		for (uint32_t i = 0; i < CAP; i++)
			assert_int_equal(fg_ring_enqueue_mp(rr, 1000 + i, &f->slots[0]), 0);
		assert_int_equal(fg_ring_enqueue_mp(rr, 1, &f->slots[0]), -EAGAIN);
		assert_int_equal(fg_ring_depth(rr), CAP);
		char err[256];
		assert_int_equal(fg_ring_check(rr, err, sizeof(err)), 0);
		for (uint32_t i = 0; i < CAP; i++) {
			assert_int_equal(fg_ring_dequeue_mc(rr, &v, &f->slots[1]), 0);
			assert_int_equal(v, 1000 + i);
			fg_ring_intent_clear(&f->slots[1]);
		}
		assert_int_equal(fg_ring_dequeue_mc(rr, &v, &f->slots[1]), -EAGAIN);
	}
	assert_int_equal(atomic_load(&f->slots[0].ring_intent), 0);
	fake_free(f);
}

#define NTHREADS 4
#define PER_THREAD 200000

static fake_t *tf;
static _Atomic uint32_t seen[NTHREADS * PER_THREAD];
static _Atomic uint64_t consumed;

static void *producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	fg_ringref_t rr = fg_ring_ref(&tf->reg, 0);
	for (uint32_t i = 0; i < PER_THREAD; i++)
		while (fg_ring_enqueue_mp(rr, id * PER_THREAD + i, NULL) < 0)
			;
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	fg_ringref_t rr = fg_ring_ref(&tf->reg, 0);
	while (atomic_load(&consumed) < NTHREADS * PER_THREAD) {
		uint32_t v;
		if (fg_ring_dequeue_mc(rr, &v, NULL) == 0) {
			atomic_fetch_add(&seen[v], 1);
			atomic_fetch_add(&consumed, 1);
		}
	}
	return NULL;
}

static void test_threads_exactly_once(void **state)
{
	(void)state;
	pthread_t p[NTHREADS], c[NTHREADS];
	tf = fake_new(1024);
	for (uintptr_t i = 0; i < NTHREADS; i++) {
		pthread_create(&p[i], NULL, producer, (void *)i);
		pthread_create(&c[i], NULL, consumer, NULL);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(p[i], NULL);
		pthread_join(c[i], NULL);
	}
	for (uint32_t i = 0; i < NTHREADS * PER_THREAD; i++)
		if (atomic_load(&seen[i]) != 1)
			fail_msg("item %u delivered %u times", i, atomic_load(&seen[i]));
	fake_free(tf);
}

/* Producer died after claiming tail, before publishing: consumers would
 * stop at its cell forever.  Recovery publishes it. */
static void test_recover_enqueue_after_claim(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	fg_slot_t *dead = &f->slots[2];
	uint32_t v;
	assert_int_equal(fg_ring_enqueue_mp(rr, 7, NULL), 0);
	/* the dead producer's steps: intent, claim, (no publish) */
	uint64_t pos = atomic_load(&rr.r->tail);
	atomic_store(&dead->ring_intent, FG_INTENT(FG_INTENT_RING_ENQ, 0, 42));
	atomic_store(&dead->ring_pos, pos);
	atomic_fetch_add(&rr.r->tail, 1);
	/* a live producer goes on after it */
	assert_int_equal(fg_ring_enqueue_mp(rr, 8, NULL), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 7);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), -EAGAIN); /* wedged at the hole */
	assert_int_equal(fg_ring_recover_unsafe(&f->reg, dead), 42);
	assert_int_equal(atomic_load(&dead->ring_intent), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 42);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 8);
	/* idempotent */
	atomic_store(&dead->ring_intent, FG_INTENT(FG_INTENT_RING_ENQ, 0, 42));
	fg_ring_recover_unsafe(&f->reg, dead);
	assert_int_equal(fg_ring_depth(rr), 0);
	char err[256];
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), 0);
	fake_free(f);
}

/* Producer died before its claim: nothing to repair, idx is reported so
 * the caller can re-enqueue it. */
static void test_recover_enqueue_before_claim(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	fg_slot_t *dead = &f->slots[2];
	atomic_store(&dead->ring_intent, FG_INTENT(FG_INTENT_RING_ENQ, 0, 9));
	atomic_store(&dead->ring_pos, 0);
	assert_int_equal(fg_ring_recover_unsafe(&f->reg, dead), 9);
	assert_int_equal(fg_ring_depth(rr), 0);
	assert_int_equal(fg_ring_enqueue_mp(rr, 1, NULL), 0);
	uint32_t v;
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 1);
	fake_free(f);
}

/* Consumer died after claiming head, before releasing: producers would
 * stop a lap later.  Recovery releases the cell and reports idx. */
static void test_recover_dequeue_after_claim(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	fg_slot_t *dead = &f->slots[3];
	for (uint32_t i = 0; i < CAP; i++)
		assert_int_equal(fg_ring_enqueue_mp(rr, i, NULL), 0);
	atomic_store(&dead->ring_pos, 0);
	atomic_store(&dead->ring_intent, FG_INTENT(FG_INTENT_RING_DEQ, 0, 0));
	atomic_fetch_add(&rr.r->head, 1);   /* claimed, never released */
	uint32_t v;
	for (uint32_t i = 1; i < CAP; i++) {
		assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
		assert_int_equal(v, i);
	}
	/* cell 0 still holds lap 0: a producer cannot pass */
	assert_int_equal(fg_ring_enqueue_mp(rr, 99, NULL), -EAGAIN);
	assert_int_equal(fg_ring_recover_unsafe(&f->reg, dead), 0);
	assert_int_equal(fg_ring_enqueue_mp(rr, 99, NULL), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 99);
	char err[256];
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), 0);
	fake_free(f);
}

/* Consumer died after a complete dequeue, before claiming the session:
 * recovery reports the TAKEN idx so it can be re-enqueued. */
static void test_recover_taken(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	fg_slot_t *dead = &f->slots[3];
	uint32_t v;
	assert_int_equal(fg_ring_enqueue_mp(rr, 5, NULL), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, dead), 0);
	assert_int_equal(FG_INTENT_OP(atomic_load(&dead->ring_intent)), FG_INTENT_RING_TAKEN);
	assert_int_equal(fg_ring_recover_unsafe(&f->reg, dead), 5);
	assert_int_equal(fg_ring_depth(rr), 0);
	fake_free(f);
}

/* A live producer whose claimed cell recovery published for a dead one
 * (both had tried the same position) retries and loses nothing. */
static void test_live_producer_retries(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	fg_slot_t *dead = &f->slots[2];
	/* the dead one recorded pos 0 but lost the race for it */
	atomic_store(&dead->ring_intent, FG_INTENT(FG_INTENT_RING_ENQ, 0, 77));
	atomic_store(&dead->ring_pos, 0);
	/* the live one claimed pos 0 and is about to publish: simulate by
	 * claiming tail, then running recovery before its publish */
	atomic_fetch_add(&rr.r->tail, 1);
	fg_ring_recover_unsafe(&f->reg, dead);
	/* cell 0 now holds 77; the live producer's CAS would fail and it would
	 * retry at pos 1: do what it does */
	assert_int_equal(fg_ring_enqueue_mp(rr, 78, NULL), 0);
	uint32_t v;
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 77);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 78);
	fake_free(f);
}

/* A producer stopped between claim and publish: consumers skip its cell
 * after FG_RING_STALL_NS; its own publish then fails (it goes again). */
static void test_stalled_producer_skipped(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	char err[256];
	uint64_t empty0 = atomic_load(&rr.cells[0]);
	atomic_fetch_add(&rr.r->tail, 1);          /* claims pos 0, then stops */
	assert_int_equal(fg_ring_enqueue_mp(rr, 78, NULL), 0);   /* pos 1 */
	uint32_t v;
	fg_ring_watch_t wt = { UINT64_MAX, 0 };
	uint64_t t0 = 1000000000ull;
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), -EAGAIN);   /* held */
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0, FG_RING_STALL_NS), 0);
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0 + FG_RING_STALL_NS / 2, FG_RING_STALL_NS), 0);
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), 0);
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0 + FG_RING_STALL_NS, FG_RING_STALL_NS), 1);
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, FG_RING_SKIP);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 78);
	/* the producer resumes: its publish CAS expects the empty cell */
	uint64_t x = empty0;
	assert_false(atomic_compare_exchange_strong(&rr.cells[0], &x, 0x0000000100000005ull));
	/* a published head cell, or an empty ring, is never skipped */
	assert_int_equal(fg_ring_enqueue_mp(rr, 79, NULL), 0);
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0, FG_RING_STALL_NS), 0);
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0 + 9 * FG_RING_STALL_NS, FG_RING_STALL_NS), 0);
	assert_int_equal(fg_ring_dequeue_mc(rr, &v, NULL), 0);
	assert_int_equal(v, 79);
	assert_int_equal(fg_ring_unstall_mc(rr, &wt, t0 + 99 * FG_RING_STALL_NS, FG_RING_STALL_NS), 0);
	fake_free(f);
}

static void test_check_detects_corruption(void **state)
{
	(void)state;
	fake_t *f = fake_new(CAP);
	fg_ringref_t rr = fg_ring_ref(&f->reg, 0);
	char err[256];
	assert_int_equal(fg_ring_enqueue_mp(rr, 1, NULL), 0);
	atomic_store(&rr.cells[5], 0x1234567800000000ull);
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ring 0: cell 5 has sequence"));
	atomic_store(&rr.r->head, 10);
	assert_int_equal(fg_ring_check(rr, err, sizeof(err)), -1);
	assert_string_equal(err, "ring 0: head 10, tail 1 out of order");
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_full_empty),
		cmocka_unit_test(test_threads_exactly_once),
		cmocka_unit_test(test_recover_enqueue_after_claim),
		cmocka_unit_test(test_recover_enqueue_before_claim),
		cmocka_unit_test(test_recover_dequeue_after_claim),
		cmocka_unit_test(test_recover_taken),
		cmocka_unit_test(test_live_producer_retries),
		cmocka_unit_test(test_stalled_producer_skipped),
		cmocka_unit_test(test_check_detects_corruption),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
