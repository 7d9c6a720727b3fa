/*
 * read.c — forgectl's reading commands: status, workers, sessions, session,
 * stats, check, wait, watch, top.  The region is mapped read-only; every
 * session is read through a snapshot (fg_session_snapshot), so a record
 * reused while it is read is shown as gone, never as another session.
 */
#include "cli/cli.h"
#include "forge/check.h"
#include "forge/conv.h"
#include "forge/durable.h"
#include "forge/crash.h"
#include "forge/inspect.h"
#include "forge/approval.h"
#include "forge/log.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/util.h"
#include "forge/views.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sup_state_name(uint32_t s)
{
	static const char *const n[] = { "none", "starting", "running", "degraded",
					  "draining", "stopped" };
	return s < 6 ? n[s] : "invalid";
}

int sup_alive(void)
{
	fg_slot_t *s = fg_slot(&R, fg_supervisor_slot(&R));
	return fg_proc_alive(atomic_load(&s->pid), atomic_load(&s->starttime));
}

typedef struct counts {
	uint64_t by[FG_S_NSTATES];
	uint32_t alive, configured;
	uint64_t restarts;
} counts_t;

static int worker_alive(uint32_t i)
{
	fg_slot_t *s = fg_slot(&R, i);
	uint32_t st = atomic_load(&s->state);
	return (st == FG_SLOT_READY || st == FG_SLOT_STARTING || st == FG_SLOT_DRAINING) &&
	       fg_pid_exists(atomic_load(&s->pid));
}

static void count(counts_t *c)
{
	memset(c, 0, sizeof(*c));
	for (uint32_t i = 0; i < R.hdr->capacity; i++) {
		uint32_t st = FG_CTL_STATE(atomic_load_explicit(&fg_sess(&R, i)->ctl,
							       memory_order_relaxed));
		if (st < FG_S_NSTATES)
			c->by[st]++;
	}
	c->configured = atomic_load(&R.hdr->cfg_workers);
	for (uint32_t i = 0; i < c->configured && i < R.hdr->nworker_slots; i++) {
		c->alive += (uint32_t)worker_alive(i);
		c->restarts += atomic_load(&fg_slot(&R, i)->restarts);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* p50/p99 of the last recovery timings (µs) */
static void percentiles(const uint32_t *hist, uint64_t n, double *p50, double *p99)
{
	uint32_t v[FG_RECOVERY_HIST];
	uint32_t k = n < FG_RECOVERY_HIST ? (uint32_t)n : FG_RECOVERY_HIST;
	*p50 = *p99 = 0;
	if (k == 0)
		return;
	memcpy(v, hist, sizeof(uint32_t) * k);
	qsort(v, k, sizeof(uint32_t), cmp_u32);
	*p50 = v[(k - 1) / 2] / 1e3;
	*p99 = v[(uint32_t)((k - 1) * 0.99)] / 1e3;
}

int cmd_stats(const char *arg)
{
	(void)arg;
	counts_t c;
	count(&c);
	fg_hdr_t *h = R.hdr;
	double r50, r99, y50, y99;
	uint64_t rc = atomic_load(&h->rec_count), yc = atomic_load(&h->ready_count);
	percentiles(h->rec_ns, rc, &r50, &r99);
	percentiles(h->ready_ns, yc, &y50, &y99);
	uint64_t depth = 0, syncs = atomic_load(&h->syncs);
	for (uint32_t i = 0; i < h->nrings; i++)
		depth += fg_ring_depth(fg_ring_ref(&R, i));
	/* throughput over the finished sessions: first claim to last finish */
	uint64_t first = UINT64_MAX, lastf = 0;
	for (uint32_t i = 0; i < h->capacity; i++) {
		fg_session_t *x = fg_sess(&R, i);
		if (FG_CTL_STATE(atomic_load_explicit(&x->ctl, memory_order_relaxed)) != FG_S_DONE)
			continue;
		uint64_t a = atomic_load_explicit(&x->started_ns, memory_order_relaxed);
		uint64_t b = atomic_load_explicit(&x->finished_ns, memory_order_relaxed);
		if (a && a < first)
			first = a;
		if (b > lastf)
			lastf = b;
	}
	double window = lastf > first && first != UINT64_MAX ? (lastf - first) / 1e9 : 0;
	double per_s = window > 0 ? c.by[FG_S_DONE] / window : 0;
	uint64_t steps = 0, claims = 0, calls = 0, retries = 0, oom = 0, tp = 0, tc = 0;
	for (uint32_t i = 0; i < h->nslots; i++) {
		fg_slot_t *x = fg_slot(&R, i);
		steps += atomic_load(&x->steps);
		claims += atomic_load(&x->claims);
		calls += atomic_load(&x->llm_calls);
		retries += atomic_load(&x->llm_retries);
		oom += atomic_load(&x->llm_oom);
		tp += atomic_load(&x->tokens_prompt);
		tc += atomic_load(&x->tokens_completion);
	}
	if (o.json) {
		json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
				      "s:{s:i,s:i,s:I,s:I},"
				      "s:{s:I,s:f,s:f,s:I,s:f,s:f,s:I},"
				      "s:{s:I,s:I,s:I}}",
			"sessions", "queued", (json_int_t)c.by[FG_S_QUEUED],
			"running", (json_int_t)c.by[FG_S_RUNNING],
			"waiting", (json_int_t)c.by[FG_S_WAITING],
			"done", (json_int_t)c.by[FG_S_DONE],
			"failed", (json_int_t)c.by[FG_S_FAILED],
			"cancelled", (json_int_t)c.by[FG_S_CANCELLED],
			"allocating", (json_int_t)c.by[FG_S_ALLOCATING],
			"freeing", (json_int_t)c.by[FG_S_FREEING],
			"free", (json_int_t)c.by[FG_S_FREE],
			"purged", (json_int_t)atomic_load(&h->purged),
			"capacity", (json_int_t)h->capacity,
			"workers", "configured", (int)c.configured, "alive", (int)c.alive,
			"restarts", (json_int_t)c.restarts,
			"spawn_failures", (json_int_t)atomic_load(&h->spawn_failures),
			"recovery", "count", (json_int_t)rc, "p50_us", r50, "p99_us", r99,
			"ready_count", (json_int_t)yc, "ready_p50_us", y50, "ready_p99_us", y99,
			"sweeps_requeued", (json_int_t)atomic_load(&h->sweeps_requeued),
			"totals", "steps", (json_int_t)steps, "claims", (json_int_t)claims,
			"ring_depth", (json_int_t)depth);
		json_object_set_new(j, "throughput", json_pack("{s:f,s:f}", "done_window_s", window,
			"done_per_s", per_s));
		json_object_set_new(j, "llm", json_pack("{s:I,s:I,s:I,s:I,s:I}", "calls", (json_int_t)calls,
			"retries", (json_int_t)retries, "oom_retries", (json_int_t)oom,
			"prompt_tokens", (json_int_t)tp,
			"completion_tokens", (json_int_t)tc));
		json_object_set_new(j, "durability", json_pack("{s:s,s:I,s:I,s:f,s:i}",
			"mode", fg_durability_name(atomic_load(&h->durability)),
			"flushes", (json_int_t)syncs, "waits", (json_int_t)atomic_load(&h->sync_waits),
			"flush_avg_ms", syncs ? atomic_load(&h->sync_ns) / 1e6 / (double)syncs : 0.0,
			/* the slot leading a flush now, or -1 */
			"leader_slot", (int)atomic_load(&h->sync_leader) - 1));
		json_object_set_new(j, "agents", fg_inspect_agents(&R));
		print_json(j);
		return 0;
	}
	printf("sessions   queued %llu  running %llu  waiting %llu  done %llu  failed %llu  "
	       "cancelled %llu  (capacity %u, free %llu, purged %llu)\n",
	       (unsigned long long)c.by[FG_S_QUEUED], (unsigned long long)c.by[FG_S_RUNNING],
	       (unsigned long long)c.by[FG_S_WAITING],
	       (unsigned long long)c.by[FG_S_DONE], (unsigned long long)c.by[FG_S_FAILED],
	       (unsigned long long)c.by[FG_S_CANCELLED], h->capacity,
	       (unsigned long long)c.by[FG_S_FREE], (unsigned long long)atomic_load(&h->purged));
	printf("workers    configured %u  alive %u  restarts %llu  failed starts %u\n",
	       c.configured, c.alive, (unsigned long long)c.restarts,
	       atomic_load(&h->spawn_failures));
	printf("recovery   %llu passes  p50 %.1f us  p99 %.1f us;  replacement ready p50 %.1f us"
	       "  p99 %.1f us\n", (unsigned long long)rc, r50, r99, y50, y99);
	printf("throughput %.0f sessions/s over %.3f s (first claim to last finish)\n", per_s,
	       window);
	printf("llm        calls %llu  retries %llu (out of memory %llu)  tokens %llu prompt + %llu"
	       " completion\n", (unsigned long long)calls, (unsigned long long)retries,
	       (unsigned long long)oom, (unsigned long long)tp, (unsigned long long)tc);
	printf("durability %s  flushes %llu (avg %.2f ms)  durable waits %llu\n",
	       fg_durability_name(atomic_load(&h->durability)), (unsigned long long)syncs,
	       syncs ? atomic_load(&h->sync_ns) / 1e6 / (double)syncs : 0.0,
	       (unsigned long long)atomic_load(&h->sync_waits));
	printf("totals     steps %llu  claims %llu  ring depth %llu  swept %llu\n",
	       (unsigned long long)steps, (unsigned long long)claims, (unsigned long long)depth,
	       (unsigned long long)atomic_load(&h->sweeps_requeued));
	json_t *ag = fg_inspect_agents(&R), *av;
	const char *an;
	json_object_foreach(ag, an, av) {
		double cost = json_real_value(json_object_get(av, "cost_usd"));
		printf("agent      %s: %lld sessions (%lld running), tokens %lld prompt + %lld "
		       "completion", an,
		       (long long)json_integer_value(json_object_get(av, "sessions")),
		       (long long)json_integer_value(json_object_get(av, "running")),
		       (long long)json_integer_value(json_object_get(av, "prompt_tokens")),
		       (long long)json_integer_value(json_object_get(av, "completion_tokens")));
		if (cost > 0)   /* (only where its provider's prices are configured) */
			printf(", $%.6f", cost);
		printf("\n");
	}
	json_decref(ag);
	return 0;
}

int cmd_status(const char *arg)
{
	(void)arg;
	counts_t c;
	count(&c);
	fg_hdr_t *h = R.hdr;
	int alive = sup_alive();
	uint32_t st = atomic_load(&h->sup_state);
	const char *state = alive ? sup_state_name(st) :
			    st == FG_SUP_STOPPED ? "stopped" : "not running";
	if (o.json) {
		json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I}",
			"supervisor", state, "pid", alive ? (int)atomic_load(&h->sup_pid) : 0,
			"boots", (int)atomic_load(&h->sup_boots),
			"workers_configured", (int)c.configured, "workers_alive", (int)c.alive,
			"queued", (json_int_t)c.by[FG_S_QUEUED],
			"running", (json_int_t)c.by[FG_S_RUNNING],
			"waiting", (json_int_t)c.by[FG_S_WAITING],
			"done", (json_int_t)c.by[FG_S_DONE]);
		char ep[17];
		snprintf(ep, sizeof(ep), "%016llx", (unsigned long long)h->epoch);
		json_object_set_new(j, "region_epoch", json_string(ep));   /* leads every id */
		print_json(j);
		return 0;
	}
	printf("forge: %s", state);
	if (alive)
		printf(" (pid %d)", (int)atomic_load(&h->sup_pid));
	printf(", %u/%u workers alive, boots %u\n", c.alive, c.configured,
	       atomic_load(&h->sup_boots));
	printf("sessions: %llu queued, %llu running, %llu waiting, %llu done, %llu failed, "
	       "%llu cancelled\n",
	       (unsigned long long)c.by[FG_S_QUEUED], (unsigned long long)c.by[FG_S_RUNNING],
	       (unsigned long long)c.by[FG_S_WAITING],
	       (unsigned long long)c.by[FG_S_DONE], (unsigned long long)c.by[FG_S_FAILED],
	       (unsigned long long)c.by[FG_S_CANCELLED]);
	return 0;
}

int cmd_workers(const char *arg)
{
	(void)arg;
	uint32_t nw = atomic_load(&R.hdr->cfg_workers);
	uint64_t now = fg_coarse_ns();
	json_t *arr = json_array();
	if (!o.json)
		printf("%-4s %-8s %-5s %-10s %8s %8s %10s %10s %8s  %s\n", "SLOT", "PID", "GEN",
		       "STATE", "HB_MS", "INFLT", "CLAIMS", "DONE", "RESTARTS", "LAST EXIT");
	for (uint32_t i = 0; i < R.hdr->nworker_slots; i++) {
		fg_slot_t *s = fg_slot(&R, i);
		uint32_t st = atomic_load(&s->state);
		if (i >= nw && st == FG_SLOT_FREE)
			continue;
		uint64_t hb = atomic_load(&s->heartbeat_ns);
		double age = hb && now > hb ? (now - hb) / 1e6 : 0;
		int sig = atomic_load(&s->last_signal), code = atomic_load(&s->last_status);
		char last[64] = "-";
		if (atomic_load(&s->last_pid)) {
			if (sig)
				snprintf(last, sizeof(last), "pid %d signal %s%s",
					 (int)atomic_load(&s->last_pid), fg_signal_name(sig),
					 atomic_load(&s->last_core) ? " (core)" : "");
			else
				snprintf(last, sizeof(last), "pid %d status %d",
					 (int)atomic_load(&s->last_pid), code);
		}
		if (o.json) {
			json_array_append_new(arr, json_pack(
				"{s:i,s:i,s:i,s:s,s:f,s:i,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:i}",
				"slot", (int)i, "pid", (int)atomic_load(&s->pid),
				"gen", (int)atomic_load(&s->gen), "state", fg_slot_state_name(st),
				"heartbeat_age_ms", age, "inflight", (int)atomic_load(&s->inflight),
				"claims", (json_int_t)atomic_load(&s->claims),
				"steps", (json_int_t)atomic_load(&s->steps),
				"done", (json_int_t)atomic_load(&s->done),
				"released", (json_int_t)atomic_load(&s->released),
				"restarts", (int)atomic_load(&s->restarts),
				"last_pid", (int)atomic_load(&s->last_pid),
				"last_status", code, "last_signal", sig));
		} else {
			printf("%-4u %-8d %-5u %-10s %8.0f %8u %10llu %10llu %8u  %s\n", i,
			       (int)atomic_load(&s->pid), atomic_load(&s->gen), fg_slot_state_name(st),
			       age, atomic_load(&s->inflight),
			       (unsigned long long)atomic_load(&s->claims),
			       (unsigned long long)atomic_load(&s->done), atomic_load(&s->restarts),
			       last);
		}
	}
	if (o.json)
		print_json(arr);
	else
		json_decref(arr);
	return 0;
}

/* NULL if h names no session (or stopped naming one while it was read). */
json_t *session_json(fg_handle_t h, int full)
{
	return fg_inspect_session(&R, h, full, have_cfg ? &CFG : NULL);
}

/* s on one line of a table: line breaks and tabs as spaces, cut (at a
 * character boundary) with "..." past n - 4 bytes. */
static void one_line(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; s && *s && k + 4 < n; s++)
		out[k++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	if (s && *s) {
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;   /* (a cut multi-byte character goes whole) */
		if (k > 0 && ((unsigned char)out[k - 1] & 0x80))
			k--;
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = 0;
}

int cmd_sessions(const char *arg)
{
	(void)arg;
	json_t *arr = json_array();
	long shown = 0;
	if (!o.json)
		printf("%-32s %-10s %-12s %11s  %s\n", "ID", "STATE", "WORKFLOW", "STEPS",
		       "CHECKSUM/RESULT");
	for (uint32_t i = 0; i < R.hdr->capacity && (o.limit < 0 || shown < o.limit); i++) {
		uint32_t st = FG_CTL_STATE(atomic_load(&fg_sess(&R, i)->ctl));
		if (st == FG_S_FREE || (o.state >= 0 && (int)st != o.state))
			continue;
		json_t *j = session_json(fg_session_handle(&R, i), 0);
		if (!j)
			continue;   /* purged while it was read */
		shown++;
		if (o.json) {
			json_array_append_new(arr, j);
		} else {
			json_t *cs = json_object_get(j, "checksum");
			if (!cs)
				cs = json_object_get(j, "result");
			if (!cs)
				cs = json_object_get(j, "error");
			char line[80];
			one_line(cs ? json_string_value(cs) : "-", line, sizeof(line));
			printf("%-32s %-10s %-12s %5d/%-5d  %s\n",
			       json_string_value(json_object_get(j, "id")),
			       json_string_value(json_object_get(j, "state")),
			       json_string_value(json_object_get(j, "workflow")),
			       (int)json_integer_value(json_object_get(j, "steps")),
			       (int)json_integer_value(json_object_get(j, "steps_total")), line);
			json_decref(j);
		}
	}
	if (o.json)
		print_json(arr);
	else
		json_decref(arr);
	return 0;
}

int cmd_session(const char *id)
{
	fg_handle_t h;
	if (parse_id(id, &h) < 0)
		return 1;
	fg_crash_arm();
	json_t *j = session_json(h, 1);
	if (!j) {
		fprintf(stderr, "forgectl: no session %s\n", id);
		return 1;
	}
	if (o.json) {
		print_json(j);
		return 0;
	}
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		if (!strcmp(k, "retrying")) {   /* a sentence, not JSON */
			double f = json_number_value(json_object_get(v, "failing_for_s"));
			json_t *g = json_object_get(v, "give_up_after_s");
			printf("%-22s provider %s failing for %.1f s, %d failed requests in a row; "
			       "next try in %.1f s", k,
			       json_string_value(json_object_get(v, "provider")) ?
			       json_string_value(json_object_get(v, "provider")) : "?", f,
			       (int)json_integer_value(json_object_get(v, "failures")),
			       json_number_value(json_object_get(v, "next_try_in_s")));
			if (g)
				printf("; gives up after %d failures and %d s (max_retries, "
				       "give_up_after_s)",
				       (int)json_integer_value(json_object_get(v, "max_retries")),
				       (int)json_integer_value(g));
			printf(": %s\n", json_string_value(json_object_get(v, "error")));
			continue;
		}
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		printf("%-22s %s\n", k, s);
		free(s);
	}
	json_decref(j);
	return 0;
}

static void add_violation(void *arg, const char *msg)
{
	if (json_array_size(arg) < 1000)
		json_array_append_new(arg, json_string(msg));
}

int cmd_check(const char *arg)
{
	(void)arg;
	json_t *list = NULL;
	fg_check_opts_t co = { have_cfg ? CFG.sweep_after_ms : 0, sup_alive() };
	/* A live region moves under us: a violation counts only if it is seen
	 * in three snapshots 100 ms apart. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (list)
			json_decref(list);
		list = json_array();
		if (fg_region_check(&R, &co, add_violation, list) == 0)
			break;
		usleep(100000);
	}
	size_t n = json_array_size(list);
	if (o.json) {
		print_json(json_pack("{s:b,s:o}", "ok", n == 0, "violations", list));
	} else {
		size_t i;
		json_t *x;
		json_array_foreach(list, i, x) {
			if (i == 50) {
				printf("... and %zu more violations (--json lists up to 1000)\n", n - 50);
				break;
			}
			printf("violation: %s\n", json_string_value(x));
		}
		if (n == 0)
			printf("ok: every invariant holds (%u sessions, %u rings, %u slots)\n",
			       R.hdr->capacity, R.hdr->nrings, R.hdr->nslots);
		json_decref(list);
	}
	return n ? 1 : 0;
}

int cmd_wait(const char *arg)
{
	(void)arg;
	uint64_t deadline = o.timeout_s >= 0 ? fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull
					     : UINT64_MAX;
	/* woken by the idle bell, which a worker rings when it has finished
	 * sessions and has nothing left to do (a writable mapping: this user
	 * may; else it looks every 20 ms) */
	fg_hdr_t *h = R.hdr;
	int bell = R.writable, rc;
	if (bell)
		atomic_fetch_add_explicit(&h->idle_waiters, 1, memory_order_seq_cst);
	for (;;) {
		counts_t c;
		uint32_t seq = atomic_load_explicit(&h->idle_seq, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);   /* (before count's relaxed loads) */
		uint64_t t0 = fg_now_ns();
		count(&c);
		uint64_t scan_us = (fg_now_ns() - t0) / 1000;
		if (c.by[FG_S_QUEUED] == 0 && c.by[FG_S_RUNNING] == 0 && c.by[FG_S_ALLOCATING] == 0 &&
		    c.by[FG_S_WAITING] == 0) {
			rc = 0;
			break;
		}
		uint64_t now = fg_now_ns();
		if (now >= deadline) {
			fprintf(stderr, "forgectl: wait: timed out with %llu queued, %llu running, "
				"%llu waiting\n", (unsigned long long)c.by[FG_S_QUEUED],
				(unsigned long long)c.by[FG_S_RUNNING],
				(unsigned long long)c.by[FG_S_WAITING]);
			rc = 1;
			break;
		}
		/* at most a fifth of a core taken from the workers it waits for:
		 * 4 scans' time at least between scans; with the bell, a scan a
		 * second besides (an end that rang nothing: a worker stopped
		 * between its finish and its ring) */
		uint64_t us = scan_us * 4 > (bell ? 1000000 : 20000) ? scan_us * 4
								 : (bell ? 1000000 : 20000);
		if (deadline - now < us * 1000)
			us = (deadline - now) / 1000 + 1;
		if (!bell) {
			usleep((useconds_t)us);
			continue;
		}
		fg_futex_wait(&h->idle_seq, seq, (int)(us / 1000 + 1));
		/* rung: the scan waits out its minimal spacing still */
		uint64_t gap = scan_us * 4 * 1000, since = fg_now_ns() - t0;
		if (since < gap)
			usleep((useconds_t)((gap - since) / 1000));
	}
	if (bell)
		atomic_fetch_sub_explicit(&h->idle_waiters, 1, memory_order_relaxed);
	return rc;
}

/* Prints a session's conversation as it grows, one line per message (or
 * per step for synthetic sessions), and exits when the session has ended:
 * 0 if done, 1 otherwise. */
int cmd_watch(const char *id)
{
	fg_handle_t h;
	if (parse_id(id, &h) < 0)
		return 1;
	if (!fg_session_valid(&R, h, NULL)) {
		fprintf(stderr, "forgectl: no session %s\n", id);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	size_t shown = 0;
	uint32_t last_step = 0, last_state = FG_S_NSTATES;
	uint64_t deadline = o.timeout_s >= 0 ? fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull
					     : UINT64_MAX;
	/* woken by the session's bell at each commit (a writable mapping:
	 * this user may; else it looks every 20 ms) */
	uint32_t idx = FG_HANDLE_IDX(h);
	int bells = R.writable, rc;
	if (bells)
		fg_bell_enter(&R, idx, FG_BELL_STEPS);
	for (;;) {
		uint32_t seq = bells ? fg_bell_seq(&R, idx) : 0;
		fg_snap_t sn;
		if (fg_session_snapshot(&R, h, &sn, 1) < 0) {
			fprintf(stderr, "forgectl: watch: session %s is gone (purged)\n", id);
			rc = 1;
			break;
		}
		/* one snapshot, re-validated after the copy: the state is as of
		 * its end, so a session that ended has every message in it and
		 * "[done]" comes last */
		uint32_t st = FG_CTL_STATE(sn.ctl);
		fg_wstate_t ws = sn.st;
		fg_snap_t *s = &sn;
		if (s->workflow == FG_WF_SYNTHETIC) {
			for (; last_step < ws.step; last_step++)
				printf(o.json ? "{\"event\":\"step\",\"step\":%u}\n" : "step %u\n", last_step + 1);
		} else {
			json_t *m = fg_conv_json(sn.log, sn.len, NULL, NULL);
			for (; shown < json_array_size(m); shown++) {
				json_t *x = json_array_get(m, shown);
				if (o.json) {
					char *d = json_dumps(x, JSON_COMPACT);
					printf("{\"event\":\"message\",\"message\":%s}\n", d);
					free(d);
					continue;
				}
				const char *role = json_string_value(json_object_get(x, "role"));
				const char *content = json_string_value(json_object_get(x, "content"));
				json_t *tc = json_object_get(x, "tool_calls");
				if (tc) {
					size_t i;
					json_t *c;
					json_array_foreach(tc, i, c) {
						json_t *fn = json_object_get(c, "function");
						printf("%-10s -> %s(%s)\n", role,
						       json_string_value(json_object_get(fn, "name")),
						       json_string_value(json_object_get(fn, "arguments")));
					}
				} else if (content) {
					printf("%-10s %s\n", role, content);
				} else {
					char *d = json_dumps(x, JSON_COMPACT);
					printf("%-10s %s\n", role, d);
					free(d);
				}
			}
			json_decref(m);
		}
		fg_snap_free(&sn);
		if (st != last_state) {
			if (o.json)
				printf("{\"event\":\"state\",\"state\":\"%s\"}\n", fg_state_name(st));
			else
				printf("[%s]\n", fg_state_name(st));
			last_state = st;
		}
		if (FG_S_FINISHED(st)) {
			rc = st == FG_S_DONE ? 0 : 1;
			break;
		}
		uint64_t now = fg_now_ns();
		if (now >= deadline) {
			fprintf(stderr, "forgectl: watch: %s still %s after %ld s\n", id,
				fg_state_name(st), o.timeout_s);
			rc = 1;
			break;
		}
		if (bells)
			fg_bell_wait(&R, idx, seq, deadline - now < 1000000000ull ?
				     (int)((deadline - now) / 1000000u) + 1 : 1000);
		else
			usleep(20000);
	}
	if (bells)
		fg_bell_leave(&R, idx, FG_BELL_STEPS);
	return rc;
}

/* A live view: workers, sessions by state, rates, ring depths; refreshed
 * every second (--count N frames, default until interrupted). */
int cmd_top(const char *arg)
{
	(void)arg;
	int tty = isatty(STDOUT_FILENO);
	uint64_t prev_done = 0, prev_steps = 0, prev_t = 0;
	for (long frame = 0; o.count_set == 0 || frame < o.count; frame++) {
		counts_t c;
		count(&c);
		uint64_t steps = 0, done = c.by[FG_S_DONE] + c.by[FG_S_FAILED] + c.by[FG_S_CANCELLED];
		for (uint32_t i = 0; i < R.hdr->nslots; i++)
			steps += atomic_load(&fg_slot(&R, i)->steps);
		uint64_t now = fg_now_ns();
		double dt = prev_t ? (now - prev_t) / 1e9 : 0;
		if (tty)
			printf("\033[H\033[2J");
		printf("forge top — %s, %u/%u workers alive, %llu restarts\n",
		       sup_alive() ? sup_state_name(atomic_load(&R.hdr->sup_state)) : "not running",
		       c.alive, c.configured, (unsigned long long)c.restarts);
		printf("sessions  queued %llu  running %llu  waiting %llu  done %llu  failed %llu  "
		       "cancelled %llu\n",
		       (unsigned long long)c.by[FG_S_QUEUED], (unsigned long long)c.by[FG_S_RUNNING],
		       (unsigned long long)c.by[FG_S_WAITING],
		       (unsigned long long)c.by[FG_S_DONE], (unsigned long long)c.by[FG_S_FAILED],
		       (unsigned long long)c.by[FG_S_CANCELLED]);
		if (dt > 0)
			printf("rates     %.0f sessions/s finished  %.0f steps/s\n",
			       (done - prev_done) / dt, (steps - prev_steps) / dt);
		else
			printf("rates     (measuring)\n");
		printf("%-5s %-8s %-10s %8s %10s %10s %8s\n", "SLOT", "PID", "STATE", "INFLT", "DONE",
		       "RING", "RESTARTS");
		for (uint32_t i = 0; i < c.configured && i < R.hdr->nworker_slots; i++) {
			fg_slot_t *s = fg_slot(&R, i);
			printf("%-5u %-8d %-10s %8u %10llu %10llu %8u\n", i, (int)atomic_load(&s->pid),
			       fg_slot_state_name(atomic_load(&s->state)), atomic_load(&s->inflight),
			       (unsigned long long)atomic_load(&s->done),
			       (unsigned long long)fg_ring_depth(fg_ring_ref(&R, i)),
			       atomic_load(&s->restarts));
		}
		fflush(stdout);
		prev_done = done;
		prev_steps = steps;
		prev_t = now;
		if (o.count_set && frame + 1 >= o.count)
			break;
		sleep(1);
	}
	return 0;
}

/* pending: every call that waits for a person, one line each. */
int cmd_pending(const char *arg)
{
	(void)arg;
	json_t *arr = json_array();
	if (!o.json)
		printf("%-32s %-24s %-14s %-9s  %s\n", "SESSION", "CALL", "TOOL", "TIMEOUT",
		       "ARGUMENTS / QUESTION");
	uint64_t now = fg_wall_ms();
	for (uint32_t i = 0; i < R.hdr->capacity; i++) {
		uint64_t c = atomic_load(&fg_sess(&R, i)->ctl);
		if (FG_CTL_STATE(c) != FG_S_WAITING)
			continue;
		fg_snap_t sn;
		if (fg_session_snapshot(&R, FG_HANDLE(i, FG_CTL_SGEN(c)), &sn, 1) < 0)
			continue;   /* (purged, reused) */
		json_t *calls = fg_approval_pending(&sn);
		char id[FG_ID_LEN + 1];
		fg_id_format(&R, sn.h, id);
		fg_snap_free(&sn);
		size_t k;
		json_t *p;
		json_array_foreach(calls, k, p) {
			json_object_set_new(p, "session", json_string(id));
			if (o.json) {
				json_array_append(arr, p);
				continue;
			}
			char line[100], t[32] = "none";
			json_t *q = json_object_get(p, "question");
			one_line(json_string_value(q ? q : json_object_get(p, "arguments")), line,
				 sizeof(line));
			uint64_t dl = (uint64_t)json_integer_value(json_object_get(p, "deadline_ms"));
			if (dl)
				snprintf(t, sizeof(t), "%llus %s", dl > now ? (unsigned long long)((dl - now + 999) / 1000) : 0ull,
					 json_string_value(json_object_get(p, "default"))[0] == 'a' ? "ok" : "no");
			printf("%-32s %-24s %-14s %-9s  %s%s\n", id,
			       json_string_value(json_object_get(p, "call_id")),
			       json_string_value(json_object_get(p, "tool")), t, q ? "? " : "", line);
		}
		json_decref(calls);
	}
	if (o.json)
		print_json(arr);
	else
		json_decref(arr);
	return 0;
}
