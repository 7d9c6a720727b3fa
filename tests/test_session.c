/*
 * test_session.c — the session table and the recovery pass: submit,
 * claim, commit, finish, release; a dead worker's sessions returned to
 * QUEUED at their last published checkpoint; a dead submitter's half
 * allocation rolled back; a commit cut before its publish leaving the
 * previous checkpoint current; stale and duplicate hints skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/conv.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[256];
static fg_region_t R;

static int setup(void **state)
{
	(void)state;
	char err[512];
	fg_region_params_t p = { 256, 32, 128 };
	snprintf(path, sizeof(path), "/tmp/forge-test-session.%d", (int)getpid());
	unlink(path);
	assert_int_equal(fg_region_create(path, &p, &R, err, sizeof(err)), 0);
	atomic_store(&R.hdr->cfg_workers, 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fg_region_close(&R);
	unlink(path);
	return 0;
}

static void worker_actor(fg_actor_t *a, uint32_t slot)
{
	atomic_fetch_add(&fg_slot(&R, slot)->gen, 1);
	fg_actor_init(a, &R, slot);
}

static uint32_t state_of(uint32_t idx)
{
	return FG_CTL_STATE(atomic_load(&fg_sess(&R, idx)->ctl));
}

/* Takes one hint from any ring; UINT32_MAX if none. */
static uint32_t take(fg_actor_t *a)
{
	uint32_t idx;
	for (uint32_t r = 0; r < 2; r++)
		if (fg_ring_dequeue_mc(fg_ring_ref(&R, r), &idx, a->self) == 0) {
			fg_ring_intent_clear(a->self);
			return idx;
		}
	return UINT32_MAX;
}

/* A client c and worker w (slot wslot) attached; one synthetic session of
 * steps steps submitted by c: its handle. */
static fg_handle_t submit_one(fg_actor_t *c, fg_actor_t *w, uint32_t wslot, uint32_t steps)
{
	assert_int_equal(fg_client_attach(&R, c), 0);
	worker_actor(w, wslot);
	fg_submit_t p = { FG_WF_SYNTHETIC, steps, 0, NULL, NULL };
	fg_handle_t h;
	assert_int_equal(fg_session_submit(c, &p, &h), 0);
	return h;
}

static void test_lifecycle(void **state)
{
	(void)state;
	fg_actor_t c, w;
	fg_handle_t h = submit_one(&c, &w, 0, 3);
	uint32_t idx = FG_HANDLE_IDX(h);
	assert_int_equal(FG_HANDLE_GEN(h), 1);
	assert_int_equal(state_of(idx), FG_S_QUEUED);
	char buf[17];
	fg_handle_t back;
	fg_handle_format(h, buf);
	assert_int_equal(fg_handle_parse(buf, &back), 0);
	assert_int_equal(back, h);
	assert_int_equal(fg_handle_parse("xyz", &back), -EINVAL);
	/* the id users see: the region's epoch, then the handle */
	char idb[FG_ID_LEN + 1];
	fg_id_format(&R, h, idb);
	assert_int_equal(strlen(idb), 32);
	assert_int_equal(fg_id_parse(&R, idb, &back), 0);
	assert_int_equal(back, h);
	assert_int_equal(fg_id_parse(&R, buf, &back), -EINVAL);   /* a bare handle */
	idb[0] = idb[0] == '0' ? '1' : '0';                        /* another region's */
	assert_int_equal(fg_id_parse(&R, idb, &back), -ENOENT);
	assert_true(R.hdr->epoch != 0);
	char ref[FG_ID_LEN + 1];   /* (formatted by hand: the same as printf's) */
	snprintf(ref, sizeof(ref), "%016llx%016llx", (unsigned long long)R.hdr->epoch,
		 (unsigned long long)h);
	fg_id_format(&R, h, idb);
	assert_string_equal(idb, ref);

	assert_int_equal(take(&w), idx);
	uint32_t e;
	assert_int_equal(fg_session_claim(&w, idx, &e), 0);
	assert_int_equal(fg_session_claim(&w, idx, &e), -EBUSY);  /* duplicate hint */
	uint64_t ctl = atomic_load(&fg_sess(&R, idx)->ctl);
	assert_int_equal(FG_CTL_STATE(ctl), FG_S_RUNNING);
	assert_int_equal(FG_CTL_SLOT(ctl), 0);
	assert_int_equal(FG_CTL_LGEN(ctl), w.gen & 0xffffu);
	assert_int_equal(FG_CTL_SGEN(ctl), FG_HANDLE_GEN(h));

	fg_wstate_t st;
	fg_session_read(&R, idx, &st);
	for (uint32_t k = 1; k <= 3; k++) {
		st.step = k;
		st.checksum = fg_synthetic_fold(st.checksum, k);
		assert_int_equal(fg_session_commit(&w, idx, &st, "ab", 2), 0);
	}
	fg_wstate_t got;
	uint64_t ck = fg_session_read(&R, idx, &got);
	assert_int_equal(FG_CKPT_SEQ(ck), 3);
	assert_int_equal(FG_CKPT_LEN(ck), 6);
	assert_int_equal(got.checksum, fg_synthetic_expected(3));
	assert_memory_equal(fg_sess_log(&R, idx), "ababab", 6);
	assert_int_equal(fg_session_finish(&w, idx, e, FG_S_DONE), 0);
	assert_int_equal(state_of(idx), FG_S_DONE);
	assert_int_equal(fg_lease_table(&R, 0)[e], 0);
	fg_client_detach(&c);
}

/* Session bells: a waiter for states is not woken by a session's steps,
 * one for steps is; an end wakes both. */
static void test_bells(void **state)
{
	(void)state;
	fg_actor_t c, w;
	fg_handle_t h = submit_one(&c, &w, 0, 3);
	uint32_t idx = FG_HANDLE_IDX(h), e;
	assert_int_equal(take(&w), idx);
	assert_int_equal(fg_session_claim(&w, idx, &e), 0);
	fg_wstate_t st;
	fg_session_read(&R, idx, &st);
	fg_bell_enter(&R, idx, FG_BELL_STATES);
	uint32_t seq = fg_bell_seq(&R, idx);
	st.step = 1;
	assert_int_equal(fg_session_commit(&w, idx, &st, "a", 1), 0);
	assert_int_equal(fg_bell_seq(&R, idx), seq);        /* a step: not rung */
	fg_live_begin(&R, idx, 1);
	assert_int_equal(fg_bell_seq(&R, idx), seq);
	fg_bell_enter(&R, idx, FG_BELL_STEPS);
	st.step = 2;
	assert_int_equal(fg_session_commit(&w, idx, &st, "b", 1), 0);
	assert_int_equal(fg_bell_seq(&R, idx), seq + 1);    /* for the stream */
	fg_bell_leave(&R, idx, FG_BELL_STEPS);
	st.step = 3;
	assert_int_equal(fg_session_commit(&w, idx, &st, "c", 1), 0);
	assert_int_equal(fg_bell_seq(&R, idx), seq + 1);
	assert_int_equal(fg_session_finish(&w, idx, e, FG_S_DONE), 0);
	assert_int_equal(fg_bell_seq(&R, idx), seq + 2);    /* the end */
	fg_bell_leave(&R, idx, FG_BELL_STATES);
	assert_int_equal(atomic_load(&R.hdr->bell[idx % FG_BELLS].waiters), 0);
	fg_client_detach(&c);
}

/* A submitter with ring_every rings the doorbell (armed by a sleeping
 * worker) once every ring_every sessions, and at fg_session_ring. */
static void test_ring_every(void **state)
{
	(void)state;
	fg_actor_t c;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	c.ring_every = 4;
	fg_submit_t p = { FG_WF_SYNTHETIC, 1, 0, NULL, NULL };
	fg_handle_t h;
	atomic_store(&R.hdr->doorbell, 7);   /* armed: a worker sleeps */
	for (int i = 0; i < 3; i++)
		assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	assert_int_equal(atomic_load(&R.hdr->doorbell), 7);   /* not yet */
	assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	assert_int_equal(atomic_load(&R.hdr->doorbell), 8);   /* the 4th rang */
	atomic_store(&R.hdr->doorbell, 9);
	assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	assert_int_equal(atomic_load(&R.hdr->doorbell), 9);
	fg_session_ring(&c);                                  /* at its end */
	assert_int_equal(atomic_load(&R.hdr->doorbell), 10);
	atomic_store(&R.hdr->doorbell, 11);
	fg_session_ring(&c);                                  /* nothing unrung */
	assert_int_equal(atomic_load(&R.hdr->doorbell), 11);
	c.ring_every = 0;                                     /* every one rings */
	assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	assert_int_equal(atomic_load(&R.hdr->doorbell), 12);
	fg_client_detach(&c);
}

static void test_log_full(void **state)
{
	(void)state;
	fg_actor_t c, w;
	fg_handle_t h = submit_one(&c, &w, 1, 1);
	uint32_t e, idx = FG_HANDLE_IDX(h);
	assert_int_equal(fg_session_claim(&w, idx, &e), 0);
	char big[200] = { 0 };
	fg_wstate_t st = { 0 };
	assert_int_equal(fg_session_commit(&w, idx, &st, big, sizeof(big)), -E2BIG);
	assert_int_equal(FG_CKPT_SEQ(atomic_load(&fg_sess(&R, idx)->ckpt)), 0);
	fg_client_detach(&c);
}

static void test_recover_dead_worker(void **state)
{
	(void)state;
	fg_actor_t c, w, sup;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	fg_submit_t p = { FG_WF_SYNTHETIC, 4, 0 };
	uint32_t idx[3], e[3];
	for (int i = 0; i < 3; i++) {
		fg_handle_t h;
		assert_int_equal(fg_session_submit(&c, &p, &h), 0);
		idx[i] = FG_HANDLE_IDX(h);
	}
	for (int i = 0; i < 3; i++) {
		uint32_t got = take(&w);
		assert_true(got != UINT32_MAX);
		assert_int_equal(fg_session_claim(&w, got, &e[i]), 0);
		idx[i] = got;
	}
	/* session 0: two steps committed; session 1: one step committed and a
	 * second written aside but never published (killed mid-commit) */
	fg_wstate_t st;
	fg_session_read(&R, idx[0], &st);
	for (uint32_t k = 1; k <= 2; k++) {
		st.step = k;
		st.checksum = fg_synthetic_fold(st.checksum, k);
		fg_session_commit(&w, idx[0], &st, NULL, 0);
	}
	fg_session_read(&R, idx[1], &st);
	st.step = 1;
	st.checksum = fg_synthetic_fold(st.checksum, 1);
	fg_session_commit(&w, idx[1], &st, NULL, 0);
	fg_session_t *s1 = fg_sess(&R, idx[1]);
	uint32_t aside = FG_CKPT_AB(atomic_load(&s1->ckpt)) ^ 1;
	s1->st[aside].step = 999;   /* the unpublished half-write */
	s1->st[aside].checksum = 0xdead;

	/* the worker dies; its generation's leases come back */
	uint32_t n = fg_session_recover_slot(&sup, 0, w.gen);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(state_of(idx[i]), FG_S_QUEUED);
	fg_wstate_t got;
	fg_session_read(&R, idx[0], &got);
	assert_int_equal(got.step, 2);
	fg_session_read(&R, idx[1], &got);
	assert_int_equal(got.step, 1);
	assert_int_equal(got.checksum, fg_synthetic_fold(FG_SYNTHETIC_SEED, 1));
	for (uint32_t k = 0; k < fg_lease_n(&R); k++)
		assert_int_equal(fg_lease_table(&R, 0)[k], 0);

	/* a stale owner's finish fails: its generation is gone */
	fg_actor_t stale = w;
	worker_actor(&w, 0);
	uint32_t e2;
	assert_int_equal(fg_session_claim(&w, idx[0], &e2), 0);
	assert_int_equal(fg_session_finish(&stale, idx[0], e[0], FG_S_DONE), -EIO);
	assert_int_equal(fg_session_finish(&w, idx[0], e2, FG_S_DONE), 0);
	/* every requeued session has a hint in the rings again */
	uint64_t depth = fg_ring_depth(fg_ring_ref(&R, 0)) + fg_ring_depth(fg_ring_ref(&R, 1));
	assert_true(depth >= 2);
	fg_client_detach(&c);
}

static void test_recover_dead_submitter(void **state)
{
	(void)state;
	fg_actor_t c, sup;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	/* a submitter that died right after FREE -> ALLOCATING */
	uint32_t idx = 77;
	fg_session_t *s = fg_sess(&R, idx);
	fg_lease_table(&R, c.slot)[0] = idx + 1;
	atomic_store(&s->ctl, FG_CTL(FG_S_ALLOCATING, c.slot, c.gen, 5));
	assert_int_equal(fg_session_recover_slot(&sup, c.slot, c.gen), 0);
	assert_int_equal(state_of(idx), FG_S_FREE);
	/* rolled back: FREE under the next generation (not the purged mark) */
	assert_int_equal(FG_CTL_SGEN(atomic_load(&s->ctl)), 6);

	/* one that died after QUEUED, before its hint was enqueued */
	uint64_t before = fg_ring_depth(fg_ring_ref(&R, FG_HOME_RING(idx, 2)));
	fg_lease_table(&R, c.slot)[1] = idx + 1;
	atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_QUEUED, 6));
	fg_session_recover_slot(&sup, c.slot, c.gen);
	assert_int_equal(fg_ring_depth(fg_ring_ref(&R, FG_HOME_RING(idx, 2))), before + 1);
	fg_client_detach(&c);
}

static void test_release_on_drain(void **state)
{
	(void)state;
	fg_actor_t c, w;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 1);
	fg_submit_t p = { FG_WF_SYNTHETIC, 2, 0 };
	fg_handle_t h;
	assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	uint32_t e, idx = FG_HANDLE_IDX(h);
	assert_int_equal(fg_session_claim(&w, idx, &e), 0);
	assert_int_equal(fg_session_release(&w, idx, e), 0);
	assert_int_equal(state_of(idx), FG_S_QUEUED);
	assert_int_equal(atomic_load(&fg_sess(&R, idx)->claims), 1);
	fg_client_detach(&c);
}

static void test_table_full(void **state)
{
	(void)state;
	fg_actor_t c;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	fg_submit_t p = { FG_WF_SYNTHETIC, 1, 0 };
	fg_handle_t h;
	for (uint32_t i = 0; i < R.hdr->capacity; i++)
		assert_int_equal(fg_session_submit(&c, &p, &h), 0);
	assert_int_equal(fg_session_submit(&c, &p, &h), -ENOSPC);
	fg_client_detach(&c);
}

static void test_client_slots(void **state)
{
	(void)state;
	fg_actor_t a[FG_CLIENT_SLOTS + 1];
	for (uint32_t i = 0; i < FG_CLIENT_SLOTS; i++)
		assert_int_equal(fg_client_attach(&R, &a[i]), 0);
	assert_int_equal(fg_client_attach(&R, &a[FG_CLIENT_SLOTS]), -EBUSY);
	assert_int_equal(fg_client_dead(a[0].self), 0);
	atomic_store(&a[0].self->starttime, 12345);   /* as if our pid were reused */
	assert_int_equal(fg_client_dead(a[0].self), 1);
	for (uint32_t i = 0; i < FG_CLIENT_SLOTS; i++)
		fg_client_detach(&a[i]);
	assert_int_equal(fg_client_attach(&R, &a[0]), 0);
	fg_client_detach(&a[0]);
}

static void test_sweep_restores_lost_hints(void **state)
{
	(void)state;
	fg_actor_t c, w, sup;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	fg_submit_t p = { FG_WF_SYNTHETIC, 1, 0 };
	fg_handle_t h[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(fg_session_submit(&c, &p, &h[i]), 0);
	/* lose every hint, as if they had been dropped */
	for (uint32_t got; (got = take(&w)) != UINT32_MAX;)
		;
	uint64_t missing, t = 0, sec = 1000000000ull;
	for (int i = 0; i < 3; i++)   /* the latest enqueue time of the three */
		if (atomic_load(&fg_sess(&R, FG_HANDLE_IDX(h[i]))->queued_ns) > t)
			t = atomic_load(&fg_sess(&R, FG_HANDLE_IDX(h[i]))->queued_ns);
	/* not yet past the threshold (1 s): nothing; nor for a time before some
	 * enqueue (a sweep racing a submit) */
	assert_int_equal(fg_session_sweep(&sup, t + 1000, sec, &missing), 0);
	assert_int_equal(missing, 3);
	assert_int_equal(fg_session_sweep(&sup, t - 1, sec, &missing), 0);
	/* past it: all three come back, exactly once each */
	assert_int_equal(fg_session_sweep(&sup, t + 2 * sec, sec, &missing), 3);
	int seen[3] = { 0 };
	for (uint32_t got; (got = take(&w)) != UINT32_MAX;)
		for (int i = 0; i < 3; i++)
			seen[i] += got == FG_HANDLE_IDX(h[i]);
	for (int i = 0; i < 3; i++)
		assert_int_equal(seen[i], 1);
	/* hints present for every QUEUED session: the sweep adds none */
	assert_int_equal(fg_session_sweep(&sup, t + 4 * sec, sec, &missing), 3);
	assert_int_equal(fg_session_sweep(&sup, t + 9 * sec, sec, &missing), 0);
	assert_int_equal(missing, 0);
	assert_int_equal(atomic_load(&R.hdr->sweeps_requeued), 6);
	fg_client_detach(&c);
}

static void test_cancel(void **state)
{
	(void)state;
	fg_actor_t c, w, sup;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	fg_submit_t p = { FG_WF_SYNTHETIC, 3, 0 };
	fg_handle_t q, r1, r2;
	assert_int_equal(fg_session_submit(&c, &p, &q), 0);
	assert_int_equal(fg_session_submit(&c, &p, &r1), 0);
	assert_int_equal(fg_session_submit(&c, &p, &r2), 0);
	uint32_t st, e1, e2;
	/* queued: cancelled at once, and no longer claimable */
	assert_int_equal(fg_session_cancel(&R, NULL, q, &st), 0);
	assert_int_equal(st, FG_S_CANCELLED);
	assert_int_equal(state_of(FG_HANDLE_IDX(q)), FG_S_CANCELLED);
	assert_int_equal(fg_session_claim(&w, FG_HANDLE_IDX(q), &e1), -EBUSY);
	assert_int_equal(fg_session_cancel(&R, NULL, q, &st), -EALREADY);
	/* running: flagged; the holder's finish ends it CANCELLED */
	assert_int_equal(fg_session_claim(&w, FG_HANDLE_IDX(r1), &e1), 0);
	assert_int_equal(fg_session_cancel(&R, NULL, r1, &st), 0);
	assert_int_equal(st, FG_S_RUNNING);
	assert_true(atomic_load(&fg_sess(&R, FG_HANDLE_IDX(r1))->ctl) & FG_CTL_CANCEL);
	assert_int_equal(fg_session_finish(&w, FG_HANDLE_IDX(r1), e1, FG_S_DONE), -ECANCELED);
	assert_int_equal(state_of(FG_HANDLE_IDX(r1)), FG_S_CANCELLED);
	/* running, then its worker dies: recovery ends it CANCELLED, not QUEUED */
	assert_int_equal(fg_session_claim(&w, FG_HANDLE_IDX(r2), &e2), 0);
	assert_int_equal(fg_session_cancel(&R, NULL, r2, &st), 0);
	fg_session_recover_slot(&sup, 0, w.gen);
	assert_int_equal(state_of(FG_HANDLE_IDX(r2)), FG_S_CANCELLED);
	/* a stale handle */
	assert_int_equal(fg_session_cancel(&R, NULL, FG_HANDLE(FG_HANDLE_IDX(r2), 99), &st), -ENOENT);
	fg_client_detach(&c);
}

/* Claims idx as w and ends it in state st; returns nothing. */
static void run_to(fg_actor_t *w, uint32_t idx, uint32_t st)
{
	uint32_t e;
	assert_int_equal(fg_session_claim(w, idx, &e), 0);
	assert_int_equal(fg_session_finish(w, idx, e, st), 0);
}

static void test_purge(void **state)
{
	(void)state;
	fg_actor_t c, w;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_submit_t syn = { FG_WF_SYNTHETIC, 1, 0, NULL, NULL };
	fg_submit_t mr = { FG_WF_MAP_REDUCE, 8, 0, NULL, "split me" };
	fg_handle_t parent, child, done, failed, queued;
	assert_int_equal(fg_session_submit(&c, &mr, &parent), 0);
	fg_submit_t kid = syn;
	kid.parent = FG_HANDLE_IDX(parent) + 1;
	assert_int_equal(fg_session_submit(&c, &kid, &child), 0);
	assert_int_equal(fg_session_submit(&c, &syn, &done), 0);
	assert_int_equal(fg_session_submit(&c, &syn, &failed), 0);
	assert_int_equal(fg_session_submit(&c, &syn, &queued), 0);
	uint32_t pi = FG_HANDLE_IDX(parent), e;
	/* the parent runs and records its child */
	assert_int_equal(fg_session_claim(&w, pi, &e), 0);
	fg_wstate_t st;
	uint64_t ck = fg_session_read(&R, pi, &st);
	uint8_t rec[64];
	fg_buf_t b = { rec, 0, sizeof(rec), 0 };
	fg_buf_child(&b, 0, child);
	(void)ck;
	st.step++;
	assert_int_equal(fg_session_commit(&w, pi, &st, rec, b.n), 0);
	run_to(&w, FG_HANDLE_IDX(child), FG_S_DONE);
	run_to(&w, FG_HANDLE_IDX(done), FG_S_DONE);
	run_to(&w, FG_HANDLE_IDX(failed), FG_S_FAILED);

	/* nothing finished before a cutoff in the past */
	assert_int_equal(fg_session_purge(&c, 1, FG_PURGE_FINISHED), 0);
	/* only failed ones */
	uint64_t now = fg_now_ns() + 1;
	assert_int_equal(fg_session_purge(&c, now, 1u << FG_S_FAILED), 1);
	assert_int_equal(state_of(FG_HANDLE_IDX(failed)), FG_S_FREE);
	/* the running parent's child stays; the other done one goes */
	assert_int_equal(fg_session_purge(&c, now, FG_PURGE_FINISHED), 1);
	assert_int_equal(state_of(FG_HANDLE_IDX(done)), FG_S_FREE);
	assert_int_equal(state_of(FG_HANDLE_IDX(child)), FG_S_DONE);
	assert_int_equal(state_of(FG_HANDLE_IDX(queued)), FG_S_QUEUED);
	/* once the parent ends, both go */
	assert_int_equal(fg_session_finish(&w, pi, e, FG_S_DONE), 0);
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 2);
	assert_int_equal(state_of(pi), FG_S_FREE);
	assert_int_equal(state_of(FG_HANDLE_IDX(child)), FG_S_FREE);
	assert_int_equal(atomic_load(&R.hdr->purged), 4);
	/* a purged record is reused under a new generation: the old id is stale */
	fg_handle_t again;
	for (uint32_t i = 0; i < R.hdr->capacity - 1; i++)
		assert_int_equal(fg_session_submit(&c, &syn, &again), 0);
	assert_int_equal(fg_session_submit(&c, &syn, &again), -ENOSPC);
	assert_int_equal(FG_HANDLE_GEN(again) >= 1, 1);
	assert_int_equal(FG_CTL_SGEN(atomic_load(&fg_sess(&R, FG_HANDLE_IDX(done))->ctl)),
			 FG_HANDLE_GEN(done) + 1);
	uint32_t cst;
	assert_int_equal(fg_session_cancel(&R, NULL, done, &cst), -ENOENT);
	fg_client_detach(&c);
}

/* A stalled purger or canceller that read a record before it was freed
 * and reused: its CAS names the old generation and fails. */
static void test_stale_word_after_reuse(void **state)
{
	(void)state;
	fg_actor_t c, w;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_submit_t syn = { FG_WF_SYNTHETIC, 1, 0 };
	fg_handle_t h[256];
	for (uint32_t i = 0; i < R.hdr->capacity; i++)
		assert_int_equal(fg_session_submit(&c, &syn, &h[i]), 0);
	uint32_t idx = FG_HANDLE_IDX(h[7]);
	run_to(&w, idx, FG_S_DONE);
	uint64_t seen = atomic_load(&fg_sess(&R, idx)->ctl);   /* what a purger read */
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 1);
	fg_handle_t again;
	assert_int_equal(fg_session_submit(&c, &syn, &again), 0);   /* the only FREE record */
	assert_int_equal(FG_HANDLE_IDX(again), idx);
	assert_int_equal(FG_HANDLE_GEN(again), FG_HANDLE_GEN(h[7]) + 1);
	run_to(&w, idx, FG_S_DONE);
	/* the stalled purger's CAS: fails, the new session stays */
	uint64_t x = seen;
	assert_false(atomic_compare_exchange_strong(&fg_sess(&R, idx)->ctl, &x,
						    FG_CTL_FREE_OF(FG_S_FREE, FG_CTL_SGEN(seen))));
	assert_int_equal(state_of(idx), FG_S_DONE);
	/* the old handle names nothing: no cancel, no snapshot */
	uint32_t st;
	fg_snap_t sn;
	assert_int_equal(fg_session_cancel(&R, NULL, h[7], &st), -ENOENT);
	assert_int_equal(fg_session_snapshot(&R, h[7], &sn, 1), -ENOENT);
	assert_int_equal(fg_session_snapshot(&R, again, &sn, 1), 0);
	assert_int_equal(sn.h, again);
	assert_int_equal(FG_CTL_STATE(sn.ctl), FG_S_DONE);
	fg_snap_free(&sn);
	/* a RUNNING session's cancel flag, from a word of the session before */
	fg_handle_t h2 = h[9];
	uint32_t e, i2 = FG_HANDLE_IDX(h2);
	assert_int_equal(fg_session_claim(&w, i2, &e), 0);
	uint64_t run1 = atomic_load(&fg_sess(&R, i2)->ctl);
	assert_int_equal(fg_session_finish(&w, i2, e, FG_S_DONE), 0);
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 2);
	assert_int_equal(fg_session_submit(&c, &syn, &again), 0);
	assert_int_equal(fg_session_submit(&c, &syn, &again), 0);
	assert_int_equal(fg_session_claim(&w, i2, &e), 0);
	uint64_t run2 = atomic_load(&fg_sess(&R, i2)->ctl);
	assert_true(run1 != run2);   /* same worker, same lease: another word */
	x = run1;
	assert_false(atomic_compare_exchange_strong(&fg_sess(&R, i2)->ctl, &x, run1 | FG_CTL_CANCEL));
	assert_int_equal(fg_session_finish(&w, i2, e, FG_S_DONE), 0);
	fg_client_detach(&c);
}

static int ended_no(void *arg) { (void)arg; return 0; }
static int ended_yes(void *arg) { (void)arg; return 1; }

/* A parent parks (WAITING, no lease, no slot) and its child's end wakes it. */
static void test_park_wake(void **state)
{
	(void)state;
	fg_actor_t c, w, sup;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	fg_submit_t mr = { FG_WF_MAP_REDUCE, 8, 0, NULL, "split me" };
	fg_handle_t parent, child;
	assert_int_equal(fg_session_submit(&c, &mr, &parent), 0);
	uint32_t pi = FG_HANDLE_IDX(parent), pe, ce;
	while (take(&w) != UINT32_MAX)
		;
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	fg_submit_t kid = { FG_WF_REACT, 4, 0, NULL, "part" };
	kid.parent = pi + 1;
	uint32_t ke;
	assert_int_equal(fg_session_alloc(&w, &kid, &child, &ke), 0);
	assert_int_equal(fg_session_publish(&w, FG_HANDLE_IDX(child), ke), 0);
	assert_int_equal(take(&w), FG_HANDLE_IDX(child));
	assert_int_equal(atomic_load(&w.self->inflight), 1);
	assert_int_equal(fg_session_park(&w, pi, pe, ended_no, NULL), 0);
	assert_int_equal(state_of(pi), FG_S_WAITING);
	assert_int_equal(fg_lease_table(&R, 0)[pe], 0);
	assert_int_equal(atomic_load(&w.self->inflight), 0);
	/* a waiting parent is not purged from under its child, nor its child */
	assert_int_equal(fg_session_claim(&w, FG_HANDLE_IDX(child), &ce), 0);
	assert_int_equal(fg_session_claim(&w, pi, &pe), -EBUSY);   /* not claimable */
	assert_int_equal(fg_session_finish(&w, FG_HANDLE_IDX(child), ce, FG_S_DONE), 0);
	assert_int_equal(state_of(pi), FG_S_QUEUED);              /* woken */
	assert_int_equal(take(&w), pi);
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 0);
	/* parked while a child ended unseen: woken by its own second look */
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	assert_int_equal(fg_session_park(&w, pi, pe, ended_yes, NULL), 0);
	assert_int_equal(state_of(pi), FG_S_QUEUED);
	assert_int_equal(take(&w), pi);
	/* a worker that died between the park and the second look: recovery
	 * wakes the parent from the lease entry */
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	uint64_t c0 = atomic_load(&fg_sess(&R, pi)->ctl);
	atomic_store(&fg_sess(&R, pi)->ctl, FG_CTL_FREE_OF(FG_S_WAITING, FG_CTL_SGEN(c0)));
	fg_session_recover_slot(&sup, 0, w.gen);
	assert_int_equal(state_of(pi), FG_S_QUEUED);
	assert_int_equal(take(&w), pi);
	/* a child's worker that died between the final CAS and the wake-up */
	worker_actor(&w, 0);
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	assert_int_equal(fg_session_park(&w, pi, pe, ended_no, NULL), 0);
	fg_lease_table(&R, 0)[3] = FG_HANDLE_IDX(child) + 1;   /* its entry, left */
	fg_session_recover_slot(&sup, 0, w.gen);
	assert_int_equal(state_of(pi), FG_S_QUEUED);
	/* a queued child cancelled (with an actor) wakes its waiting parent */
	worker_actor(&w, 0);
	assert_int_equal(take(&w), pi);
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	fg_handle_t kid2;
	assert_int_equal(fg_session_alloc(&w, &kid, &kid2, &ke), 0);
	assert_int_equal(fg_session_publish(&w, FG_HANDLE_IDX(kid2), ke), 0);
	assert_int_equal(take(&w), FG_HANDLE_IDX(kid2));
	assert_int_equal(fg_session_park(&w, pi, pe, ended_no, NULL), 0);
	uint32_t st2;
	assert_int_equal(fg_session_cancel(&R, &c, kid2, &st2), 0);
	assert_int_equal(state_of(pi), FG_S_QUEUED);
	/* cancelled while waiting: at once */
	worker_actor(&w, 0);
	assert_int_equal(take(&w), pi);
	assert_int_equal(fg_session_claim(&w, pi, &pe), 0);
	assert_int_equal(fg_session_park(&w, pi, pe, ended_no, NULL), 0);
	uint32_t st;
	assert_int_equal(fg_session_cancel(&R, NULL, parent, &st), 0);
	assert_int_equal(st, FG_S_CANCELLED);
	assert_int_equal(fg_session_wake(&w, pi, 0), 0);
	/* now the finished children may go */
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 3);
	fg_client_detach(&c);
}

/* The supervisor's view of a client slot is one word: a holder that
 * changed after the probe is not recovered. */
static void test_client_probe(void **state)
{
	(void)state;
	fg_actor_t c, sup;
	fg_actor_init(&sup, &R, fg_supervisor_slot(&R));
	assert_int_equal(fg_client_attach(&R, &c), 0);
	uint64_t w;
	assert_int_equal(fg_client_probe(c.self, &w), FG_PROBE_ALIVE);
	assert_int_equal(FG_OWNER_PID(w), getpid());
	assert_int_equal(FG_OWNER_GEN(w), c.gen);
	/* a dead holder (a pid that does not exist), then a newcomer */
	atomic_store(&c.self->owner, FG_OWNER(c.gen, 0x7ffffff0));
	assert_int_equal(fg_client_probe(c.self, &w), FG_PROBE_DEAD);
	atomic_store(&c.self->owner, FG_OWNER(c.gen + 1, getpid()));
	assert_int_equal(fg_client_recover(&sup, c.slot, w), -EAGAIN);
	assert_int_equal(atomic_load(&c.self->owner), FG_OWNER(c.gen + 1, getpid()));
	/* the real dead one is recovered, and the slot is free again */
	atomic_store(&c.self->owner, w);
	assert_int_equal(fg_client_recover(&sup, c.slot, w), 0);
	assert_int_equal(atomic_load(&c.self->owner), 0);
	assert_int_equal(fg_client_probe(c.self, &w), FG_PROBE_FREE);
	fg_actor_t d;
	assert_int_equal(fg_client_attach(&R, &d), 0);
	assert_true(d.gen > c.gen);
	fg_client_detach(&d);
}

/* Readers in other threads snapshot a session while its holder commits
 * step after step and the record is purged and reused round after round:
 * every snapshot that succeeds is one whole session at one checkpoint
 * (its state's step count matches its log, every log entry names that
 * session's generation); the others say -ENOENT.  (The seqlock's fences
 * are what make this hold on weak memory models: `make unit-aarch64`.) */
static _Atomic int snap_stop;
static _Atomic uint64_t snap_h, snap_ok, snap_gone, snap_bad;

static void *snap_reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&snap_stop)) {
		fg_handle_t h = atomic_load(&snap_h);
		fg_snap_t sn;
		if (fg_session_snapshot(&R, h, &sn, 1) < 0) {
			atomic_fetch_add(&snap_gone, 1);
			continue;
		}
		int bad = sn.h != h || sn.len != sn.st.step * 8 ||
			  (sn.st.step && sn.st.checksum != sn.st.step);
		for (uint32_t i = 0; !bad && i < sn.st.step; i++) {
			uint32_t e[2];
			memcpy(e, sn.log + 8 * i, 8);
			bad = e[0] != FG_HANDLE_GEN(h) || e[1] != i + 1;
		}
		atomic_fetch_add(bad ? &snap_bad : &snap_ok, 1);
		fg_snap_free(&sn);
	}
	return NULL;
}

static void test_snapshot_threads(void **state)
{
	(void)state;
	fg_actor_t c, w;
	assert_int_equal(fg_client_attach(&R, &c), 0);
	worker_actor(&w, 0);
	fg_submit_t syn = { FG_WF_SYNTHETIC, 15, 0 };
	fg_handle_t h;
	for (uint32_t i = 0; i < R.hdr->capacity - 1; i++)   /* one record to reuse */
		assert_int_equal(fg_session_submit(&c, &syn, &h), 0);
	while (take(&w) != UINT32_MAX)
		;
	assert_int_equal(fg_session_submit(&c, &syn, &h), 0);
	atomic_store(&snap_h, h);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, snap_reader, NULL), 0);
	uint64_t t0 = fg_now_ns(), ns = 0;
	for (int round = 0; ns < 5000000000ull &&
	     (ns < 200000000ull || atomic_load(&snap_ok) < 2000); round++, ns = fg_now_ns() - t0) {
		uint32_t idx = FG_HANDLE_IDX(h), e;
		assert_int_equal(fg_session_claim(&w, idx, &e), 0);
		fg_wstate_t st = { 0 };
		for (uint32_t k = 1; k <= 15; k++) {
			uint32_t rec[2] = { FG_HANDLE_GEN(h), k };
			st.step = k;
			st.checksum = k;
			assert_int_equal(fg_session_commit(&w, idx, &st, rec, 8), 0);
		}
		assert_int_equal(fg_session_finish(&w, idx, e, FG_S_DONE), 0);
		assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 1);
		assert_int_equal(fg_session_submit(&c, &syn, &h), 0);
		assert_int_equal(FG_HANDLE_IDX(h), idx);   /* the same record, reused */
		while (take(&w) != UINT32_MAX)
			;
		if (round % 2 == 0)   /* readers also chase a handle already gone */
			atomic_store(&snap_h, h);
	}
	atomic_store(&snap_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&snap_bad), 0);
	assert_true(atomic_load(&snap_ok) >= 2000);
	assert_true(atomic_load(&snap_gone) > 0);
	fg_client_detach(&c);
}

/* Logs past their inline part: written across into the sparse overflow
 * range (reserved first), read back whole by snapshots and by the holder,
 * and given back to the file system when purged. */
static void test_overflow_log(void **state)
{
	(void)state;
	char err[512], p2[256];
	fg_region_t R2;
	fg_region_params_t p = { 64, 8, 256, 1u << 20 };
	snprintf(p2, sizeof(p2), "/tmp/forge-test-ovf.%d", (int)getpid());
	unlink(p2);
	assert_int_equal(fg_region_create(p2, &p, &R2, err, sizeof(err)), 0);
	atomic_store(&R2.hdr->cfg_workers, 1);
	assert_true(fg_log_max(&R2) >= (1u << 20));
	struct stat st0, st1, st2;
	fstat(R2.fd, &st0);
	fg_actor_t c, w;
	assert_int_equal(fg_client_attach(&R2, &c), 0);
	atomic_fetch_add(&fg_slot(&R2, 0)->gen, 1);
	fg_actor_init(&w, &R2, 0);
	/* a 3 KB system prompt and a 2 KB question: past the 256 inline bytes */
	char sys[3000], q[2000];
	memset(sys, 's', sizeof(sys) - 1);
	sys[sizeof(sys) - 1] = '\0';
	memset(q, 'q', sizeof(q) - 1);
	q[sizeof(q) - 1] = '\0';
	fg_submit_t sub = { FG_WF_REACT, 4, 0, sys, q };
	fg_handle_t h;
	assert_int_equal(fg_session_submit(&c, &sub, &h), 0);
	uint32_t idx = FG_HANDLE_IDX(h), e;
	assert_int_equal(fg_session_claim(&w, idx, &e), 0);
	/* 200 KB of tool results, 20 KB each */
	static uint8_t big[20000];
	fg_wstate_t ws = { 0 };
	for (int k = 0; k < 10; k++) {
		uint8_t rec[20100];
		memset(big, 'a' + k, sizeof(big));
		fg_buf_t b = { rec, 0, sizeof(rec), 0 };
		fg_buf_rec(&b, FG_REC_ASSISTANT, big, sizeof(big));
		ws.step = (uint32_t)k + 1;
		assert_int_equal(fg_session_commit(&w, idx, &ws, b.p, b.n), 0);
	}
	fstat(R2.fd, &st1);
	assert_true(st1.st_blocks > st0.st_blocks + 300);   /* ~200 KB written */
	fg_snap_t sn;
	assert_int_equal(fg_session_snapshot(&R2, h, &sn, 1), 0);
	uint8_t *tmp;
	const uint8_t *own = fg_session_log(&R2, idx, sn.len, &tmp);
	assert_non_null(tmp);   /* past the inline part: a copy */
	assert_memory_equal(own, sn.log, sn.len);
	free(tmp);
	uint32_t off = 0, n = 0;
	fg_rec_t r;
	while (fg_rec_next(sn.log, sn.len, &off, &r) == 1) {
		if (r.type == FG_REC_SYSTEM)
			assert_int_equal(r.n, sizeof(sys) - 1);
		if (r.type == FG_REC_ASSISTANT) {
			assert_int_equal(r.n, sizeof(big));
			assert_int_equal(r.p[0], 'a' + n);
			assert_int_equal(r.p[sizeof(big) - 1], 'a' + n);
			n++;
		}
	}
	assert_int_equal(off, sn.len);
	assert_int_equal(n, 10);
	fg_snap_free(&sn);
	/* past the session's maximum: refused, nothing published */
	static uint8_t huge[(1u << 20) + 64];
	uint64_t ck = atomic_load(&fg_sess(&R2, idx)->ckpt);
	assert_int_equal(fg_session_commit(&w, idx, &ws, huge, sizeof(huge)), -E2BIG);
	assert_int_equal(atomic_load(&fg_sess(&R2, idx)->ckpt), ck);
	/* purged: its overflow pages go back to the file system */
	assert_int_equal(fg_session_finish(&w, idx, e, FG_S_DONE), 0);
	assert_int_equal(fg_session_purge(&c, fg_now_ns() + 1, FG_PURGE_FINISHED), 1);
	assert_int_equal(FG_CTL_STATE(atomic_load(&fg_sess(&R2, idx)->ctl)), FG_S_FREE);
	assert_int_equal(fg_lease_table(&R2, c.slot)[0] + fg_lease_table(&R2, c.slot)[1], 0);
	fstat(R2.fd, &st2);
	assert_true(st2.st_blocks + 300 < st1.st_blocks);
	fg_client_detach(&c);
	fg_region_close(&R2);
	unlink(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bells, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_every, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_dead_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_dead_submitter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_on_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_restores_lost_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_word_after_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_park_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_threads, setup, teardown),
		cmocka_unit_test(test_overflow_log),
	};
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
