/*
 * check.c — every invariant of a region that can be verified from outside,
 * as a library call (forgectl check, unit tests, the supervisor):
 *   each record: a valid control word; a lease only on RUNNING/ALLOCATING,
 *     naming a live (slot, generation); a checkpoint within its log; a
 *     synthetic checksum that proves each step applied once; a
 *     conversation that parses, and whose turns match the state;
 *   parents and children: a done parent's children finished; a live
 *     parent's children not purged and naming it; a parked parent with no
 *     live child only briefly (else a wake-up was lost);
 *   slots: a dead one holds no lease and no ring intent; a free client
 *     slot is not marked held, nor a held one free;
 *   counters (done against purged) and every ring's cells.
 * It reads conversations through agent/'s log views (the one file of
 * region/ that does).  A live region moves while it is read: callers that
 * need certainty look again (forgectl: three snapshots 100 ms apart).
 */
#include "forge/check.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/views.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct check {
	const fg_region_t *r;
	fg_check_opts_t o;
	fg_check_report_fn fn;
	void *arg;
	unsigned n;
} check_t;

static void violation(check_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(check_t *v, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	v->n++;
	v->fn(v->arg, buf);
}

/* Whether (slot, lease gen) names a process that is alive now. */
static int slot_live(const fg_region_t *r, uint32_t sl, uint32_t lgen)
{
	fg_slot_t *s = fg_slot(r, sl);
	if (s->kind == FG_KIND_CLIENT) {
		uint64_t w;
		enum fg_probe p = fg_client_probe(s, &w);
		if (w & FG_OWNER_RECOVERING)
			return 1;   /* being recovered right now */
		return (p == FG_PROBE_ALIVE || p == FG_PROBE_CHANGED) &&
		       (FG_OWNER_GEN(w) & 0xffffu) == (lgen & 0xffffu);
	}
	if ((atomic_load(&s->gen) & 0xffffu) != (lgen & 0xffffu))
		return 0;
	uint32_t st = atomic_load(&s->state);
	return (st == FG_SLOT_READY || st == FG_SLOT_STARTING || st == FG_SLOT_DRAINING) &&
	       fg_pid_exists(atomic_load(&s->pid));
}

/* Checks one session against its own log and its parent-child links. */
static void check_session(check_t *v, uint32_t i, uint64_t c, uint64_t lost_wake_ns)
{
	const fg_region_t *r = v->r;
	fg_hdr_t *h = r->hdr;
	uint32_t st = FG_CTL_STATE(c);
	char id[FG_ID_LEN + 1];
	fg_snap_t sn;
	fg_id_format(r, FG_HANDLE(i, FG_CTL_SGEN(c)), id);
	if (fg_session_snapshot(r, FG_HANDLE(i, FG_CTL_SGEN(c)), &sn, 1) < 0)
		return;   /* purged meanwhile */
	st = FG_CTL_STATE(sn.ctl);
	fg_wstate_t ws = sn.st;
	fg_snap_t *s = &sn;
	if (FG_CKPT_LEN(sn.ckpt) > fg_log_max(r))
		violation(v, "session %s: checkpoint log length %u exceeds %llu", id,
			  FG_CKPT_LEN(sn.ckpt), (unsigned long long)fg_log_max(r));
	if (s->parent && s->parent - 1 >= h->capacity)
		violation(v, "session %s: parent index %u out of range", id, s->parent - 1);
	if (s->workflow == FG_WF_SYNTHETIC) {
		if (ws.step > s->steps)
			violation(v, "session %s: %u steps applied of %u", id, ws.step, s->steps);
		uint64_t want = FG_SYNTHETIC_SEED;
		for (uint32_t k = 1; k <= ws.step; k++)
			want = fg_synthetic_fold(want, k);
		if (ws.checksum != want)
			violation(v, "session %s: checksum %016llx after %u steps, expected "
				  "%016llx (a step applied twice or lost)", id,
				  (unsigned long long)ws.checksum, ws.step, (unsigned long long)want);
		if (st == FG_S_DONE && ws.step != s->steps)
			violation(v, "session %s: done after %u of %u steps", id, ws.step, s->steps);
		if (st == FG_S_WAITING)
			violation(v, "session %s: a synthetic session is waiting", id);
	} else if (s->workflow == FG_WF_REACT) {
		fg_react_view_t rv;
		char e2[200];
		if (fg_react_view(sn.log, sn.len, &rv, e2, sizeof(e2)) < 0)
			violation(v, "session %s: %s", id, e2);
		else if (st == FG_S_DONE && !rv.final &&
			 !(rv.pending && (fg_react_client_calls(&rv), rv.nclient == rv.pending)))
			violation(v, "session %s: done without a final answer (or calls of the "
				  "client's tools)", id);
		else if (st == FG_S_FAILED && !rv.failed && ws.status != FG_WS_FAILED)
			violation(v, "session %s: failed without an error", id);
		else if (ws.step != rv.turns_total)
			violation(v, "session %s: state says %u model turns, the conversation holds %u",
				  id, ws.step, rv.turns_total);
		if (st == FG_S_WAITING && (sn.len == 0 || rv.awaiting == 0))
			violation(v, "session %s: a react session is waiting, but none of its calls "
				  "waits for a person", id);
		/* past its approval timeout (or its deadline) for longer than a
		 * sweep's delay: the wake-up that applies it was lost */
		for (uint32_t k = 0; st == FG_S_WAITING && lost_wake_ns && k < rv.ncalls; k++) {
			if (!rv.asked[k] || rv.decided[k] || rv.answered[k])
				continue;
			uint64_t due = rv.ask[k].deadline_ms, wk = rv.ask[k].wake_ms, wall = fg_wall_ms();
			if (wk && (!due || wk < due))
				due = wk;
			if (due && wall > due + lost_wake_ns / 1000000u) {
				violation(v, "session %s: waiting %.1f s past the end of its wait (approval "
					  "timeout or deadline): a lost wake-up", id, (wall - due) / 1e3);
				break;
			}
		}
	} else if (s->workflow == FG_WF_MAP_REDUCE || s->workflow == FG_WF_PLAN_EXECUTE) {
		fg_mr_view_t mv;
		char e2[200];
		if (fg_mr_view(sn.log, sn.len, &mv, e2, sizeof(e2)) < 0) {
			violation(v, "session %s: %s", id, e2);
		} else if (st == FG_S_DONE && !mv.final) {
			violation(v, "session %s: done without a final answer", id);
		} else if (ws.step != mv.turns) {
			violation(v, "session %s: state says %u model turns, the conversation holds %u",
				  id, ws.step, mv.turns);
		} else {
			uint32_t live = 0;
			for (uint32_t k = 0; k < mv.nparts; k++) {
				fg_handle_t ch = mv.child[k];
				uint32_t ci = FG_HANDLE_IDX(ch);
				if (ci >= h->capacity)
					continue;
				uint64_t cc = atomic_load(&fg_sess(r, ci)->ctl);
				uint32_t cst = FG_CTL_STATE(cc);
				int same = FG_CTL_SGEN(cc) == FG_HANDLE_GEN(ch);
				if (same && FG_S_LIVE(cst))
					live++;
				/* (a finished child may be purged once its parent ended) */
				if (st == FG_S_DONE && !(same && (FG_S_FINISHED(cst) || cst == FG_S_FREE)))
					violation(v, "session %s: done, but its part %u has no finished "
						  "child", id, k + 1);
				/* A child FREE under its own generation was purged (a
				 * rolled-back child is FREE under the next one). */
				if (FG_S_LIVE(st) && same && cst == FG_S_FREE)
					violation(v, "session %s: %s, but its child for part %u (%016llx) "
						  "was purged", id, fg_state_name(st), k + 1,
						  (unsigned long long)ch);
				if (same && FG_S_LIVE(cst) && fg_sess(r, ci)->parent != i + 1)
					violation(v, "session %s: its child for part %u does not name it "
						  "as its parent", id, k + 1);
			}
			uint64_t now = fg_now_ns();
			if (st == FG_S_WAITING && live == 0 && lost_wake_ns &&
			    now > sn.queued_ns && now - sn.queued_ns > lost_wake_ns)
				violation(v, "session %s: waiting for %.1f s, but none of its %u children "
					  "is live (a lost wake-up)", id, (now - sn.queued_ns) / 1e9,
					  mv.nparts);
			if (st == FG_S_WAITING && mv.nparts == 0)
				violation(v, "session %s: waiting before it has any parts", id);
		}
	} else {
		violation(v, "session %s: unknown workflow %u", id, s->workflow);
	}
	fg_snap_free(&sn);
}

static void check_once(check_t *v)
{
	const fg_region_t *r = v->r;
	fg_hdr_t *h = r->hdr;
	uint64_t by[FG_S_NSTATES] = { 0 };
	char err[512];
	/* a parked parent with no live child is woken by the sweep within
	 * sweep_after_ms (default 2 s); past twice that, a wake-up was lost */
	uint64_t lost_wake_ns = (v->o.sweep_after_ms ? v->o.sweep_after_ms : 2000) * 2000000ull + 1000000000ull;

	for (uint32_t i = 0; i < h->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load(&s->ctl);
		uint32_t st = FG_CTL_STATE(c), sl = FG_CTL_SLOT(c), g = FG_CTL_LGEN(c);
		char id[FG_ID_LEN + 1];
		fg_id_format(r, FG_HANDLE(i, FG_CTL_SGEN(c)), id);
		uint32_t flags = FG_CTL_FLAGS(c);
		int flags_ok = !flags || (flags == FG_CTL_CANCEL && st == FG_S_RUNNING) ||
			       (st == FG_S_FREEING && !(flags & FG_CTL_CANCEL) &&
				FG_CTL_PREV_STATE(c) <= FG_S_CANCELLED);
		if (st >= FG_S_NSTATES || !flags_ok) {
			violation(v, "session %s: invalid control word 0x%016llx", id,
				  (unsigned long long)c);
			continue;
		}
		by[st]++;
		if (FG_S_LEASED(st)) {
			if (sl >= h->nslots)
				violation(v, "session %s: %s with lease slot %u out of range", id,
					  fg_state_name(st), sl);
			else if (!slot_live(r, sl, g) && atomic_load(&s->ctl) == c)
				violation(v, "session %s: %s under a lease held by dead generation "
					  "(slot %u, gen %u)", id, fg_state_name(st), sl, g);
		} else if (st != FG_S_FREE && (sl != FG_SLOT_NONE || g != 0)) {   /* (a new table is zeros) */
			violation(v, "session %s: %s but still carries a lease (slot %u, gen %u)",
				  id, fg_state_name(st), sl, g);
		}
		if (FG_S_NONE(st))
			continue;
		check_session(v, i, c, lost_wake_ns);
	}
	uint64_t total = 0, finished = by[FG_S_DONE] + by[FG_S_FAILED] + by[FG_S_CANCELLED];
	for (int k = 0; k < FG_S_NSTATES; k++)
		total += by[k];
	if (total != h->capacity)
		violation(v, "session states add up to %llu, capacity is %u",
			  (unsigned long long)total, h->capacity);
	uint64_t done_ctr = 0;
	for (uint32_t sl = 0; sl < h->nslots; sl++) {
		fg_slot_t *s = fg_slot(r, sl);
		done_ctr += atomic_load(&s->done);
		uint32_t *tab = fg_lease_table(r, sl);
		if (s->kind == FG_KIND_CLIENT) {
			uint64_t w = atomic_load(&s->owner);
			if (w == 0 && atomic_load(&s->state) != FG_SLOT_FREE)
				violation(v, "client slot %u: no holder, but marked %s (pid %d)", sl,
					  fg_slot_state_name(atomic_load(&s->state)),
					  (int)atomic_load(&s->pid));
			if (w != 0) {
				if (!(w & FG_OWNER_RECOVERING) &&
				    fg_client_probe(s, NULL) == FG_PROBE_ALIVE &&
				    atomic_load(&s->state) == FG_SLOT_FREE &&
				    atomic_load(&s->owner) == w && atomic_load(&s->starttime) != 0)
					violation(v, "client slot %u: marked free while its holder "
						  "(pid %d) is alive", sl, (int)FG_OWNER_PID(w));
				continue;   /* held: its leases are its own business */
			}
		}
		int live = s->kind != FG_KIND_CLIENT && slot_live(r, sl, atomic_load(&s->gen));
		if (live || (sl == fg_supervisor_slot(r) && v->o.supervisor_alive))
			continue;
		uint64_t ri = atomic_load(&s->ring_intent);
		if (FG_INTENT_OP(ri) != FG_INTENT_NONE &&
		    !(s->kind == FG_KIND_CLIENT && atomic_load(&s->owner) != 0))   /* attached meanwhile */
			violation(v, "slot %u: dead, but its ring intent 0x%016llx was never "
				  "recovered", sl, (unsigned long long)ri);
		for (uint32_t e = 0; e < fg_lease_n(r); e++) {
			uint32_t x = __atomic_load_n(&tab[e], __ATOMIC_RELAXED);
			if (x == 0)
				continue;
			if (x - 1 >= h->capacity)
				violation(v, "slot %u: lease entry %u holds %u, out of range", sl, e, x);
			else if (s->kind == FG_KIND_CLIENT && atomic_load(&s->owner) != 0)
				break;   /* attached meanwhile */
			else
				violation(v, "slot %u: %s, but lease entry %u still names session %u",
					  sl, s->kind == FG_KIND_CLIENT ? "free" : "dead", e, x - 1);
			break;
		}
	}
	/* (purged is read last: a session purged during the scan is then
	 * counted twice, never missed) */
	uint64_t purged = atomic_load(&h->purged), reopened = atomic_load(&h->reopened);
	if (done_ctr > finished + purged + reopened)
		violation(v, "workers counted %llu finished sessions, the table holds %llu, "
			  "%llu were purged and %llu taken up again", (unsigned long long)done_ctr,
			  (unsigned long long)finished, (unsigned long long)purged,
			  (unsigned long long)reopened);
	for (uint32_t i = 0; i < h->nrings; i++) {
		fg_ringref_t rr = fg_ring_ref(r, i);
		if (fg_ring_check(rr, err, sizeof(err)) < 0)
			violation(v, "%s", err);
	}
	for (uint32_t i = 0; i < atomic_load(&h->cfg_workers) && i < h->nworker_slots; i++) {
		fg_slot_t *s = fg_slot(r, i);
		uint32_t st = atomic_load(&s->state);
		if (v->o.supervisor_alive && st == FG_SLOT_READY && !slot_live(r, i, atomic_load(&s->gen)))
			violation(v, "worker %u: marked ready, but pid %d is not running", i,
				  (int)atomic_load(&s->pid));
	}
}

unsigned fg_region_check(const fg_region_t *r, const fg_check_opts_t *o,
			 fg_check_report_fn fn, void *arg)
{
	check_t v = { r, *o, fn, arg, 0 };
	check_once(&v);
	return v.n;
}
