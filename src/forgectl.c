/*
 * forgectl — inspect and steer forge straight from its region.
 * Reading commands map the region read-only; submit maps it read-write and
 * takes a client slot (so a forgectl killed mid-submit is recovered like a
 * worker); kill-worker only signals, after checking the pid.
 */

#include "forge/config.h"
#include "forge/log.h"
#include "forge/region.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/crash.h"
#include "forge/util.h"
#include "forge/conv.h"
#include "forge/workflow.h"
#include "forge/inspect.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
"Usage: forgectl [-c FILE | --region PATH] COMMAND [ARGS] [--json]\n"
"\n"
"Inspects and steers a running (or stopped) forge through its shared region.\n"
"\n"
"Region selection:\n"
"  -c, --config FILE   read region.path from FILE\n"
"  -r, --region PATH   the region file (default /dev/shm/forge, or\n"
"                      region.path of /etc/forge/forge.yaml if it exists)\n"
"\n"
"Commands:\n"
"  status                      supervisor state and a summary\n"
"  workers                     one line per worker slot\n"
"  sessions [--state S] [--limit N]\n"
"                              sessions, optionally in state S\n"
"                              (queued, running, done, failed, cancelled)\n"
"  session ID                  one session (ID as printed by submit)\n"
"  stats                       counts by state, workers, recovery timings\n"
"  check                       verify every invariant of the region;\n"
"                              exit 1 naming each violation\n"
"  submit --workflow synthetic --steps K [--count N] [--delay-us U]\n"
"  submit --workflow react --prompt TEXT [--system TEXT] [--provider NAME]\n"
"         [--max-steps N] [--count N]\n"
"  submit --workflow map_reduce|plan_execute --prompt TEXT [--provider NAME]\n"
"         [--child-provider NAME] [--max-parts N] [--count N]\n"
"                              submit N sessions; prints one ID per line\n"
"                              (react: a tool-using agent; NAME from\n"
"                              llm.providers, default llm.default)\n"
"  wait [--timeout S]          exit 0 once nothing is queued or running,\n"
"                              1 on timeout (default: wait forever)\n"
"  kill-worker SLOT [--signal SIG]\n"
"                              signal worker SLOT (default KILL) after\n"
"                              checking that its pid is that worker\n"
"  watch ID [--timeout S]      follow a session's messages (or steps) live;\n"
"                              exit 0 when it is done, 1 if it failed\n"
"  top [--count N]             a live view of workers, sessions, rates and\n"
"                              ring depths, every second (N frames)\n"
"  cancel ID                   cancel a session: a queued one at once, a\n"
"                              running one within milliseconds (its LLM\n"
"                              request aborted, its tools killed)\n"
"  reload                      validate the configuration (-c FILE) and ask\n"
"                              forged to apply it (workers restart one at a\n"
"                              time; an invalid file is refused, exit 78)\n"
"  purge [--older-than S] [--state S]\n"
"                              free finished sessions (done, failed and\n"
"                              cancelled; or state S) that ended more than\n"
"                              S seconds ago (default 0) for reuse; their\n"
"                              IDs are then unknown.  Children of a running\n"
"                              parent are kept.  forged does this itself\n"
"                              for sessions older than region.retain_s\n"
"  drain | stop [--timeout S]  ask forged to stop taking work and exit;\n"
"                              with --timeout, wait until it has\n"
"\n"
"Every reading command takes --json for machine-readable output.\n"
"Exit status: 0 success, 1 failure (check violations, wait timeout),\n"
"2 usage error, 3 region cannot be opened.\n";

static struct {
	const char *config, *region;
	int json;
	int state;
	long limit, count, steps, delay_us, timeout_s;
	int count_set;
	const char *workflow, *signal, *prompt, *system, *provider, *child_provider;
	long max_steps, max_parts;
	long older_than_s;
} o = { .max_steps = -1, .max_parts = 8, .state = -1, .limit = -1, .count = 1, .steps = -1, .timeout_s = -1 };

static fg_region_t R;
static fg_config_t CFG;      /* loaded when -c (or /etc/forge/forge.yaml) is there */
static int have_cfg;

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "forgectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nRun 'forgectl --help' for usage.\n");
	exit(2);
}

static long num_arg(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "forgectl: %s: '%s' is not a number in [%ld, %ld]\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void open_region(int writable)
{
	char path[4096], err[1024];
	const char *file = o.config;
	struct stat st;
	if (!file && !o.region && stat("/etc/forge/forge.yaml", &st) == 0)
		file = "/etc/forge/forge.yaml";
	if (file) {
		if (fg_config_load(&CFG, file, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			exit(FG_EX_CONFIG);
		}
		have_cfg = 1;
	} else {
		fg_config_defaults(&CFG);
	}
	snprintf(path, sizeof(path), "%s", o.region ? o.region : CFG.region_path);
	if (fg_region_open(path, writable, &R, err, sizeof(err)) < 0) {
		fprintf(stderr, "forgectl: cannot open region %s\n", err);
		exit(3);
	}
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	puts(s);
	free(s);
	json_decref(j);
}

static const char *sup_state_name(uint32_t s)
{
	static const char *const n[] = { "none", "starting", "running", "degraded",
					  "draining", "stopped" };
	return s < 6 ? n[s] : "invalid";
}

static int sup_alive(void)
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
	       atomic_load(&s->pid) != 0 && kill(atomic_load(&s->pid), 0) == 0;
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

static int cmd_stats(void)
{
	counts_t c;
	count(&c);
	fg_hdr_t *h = R.hdr;
	double r50, r99, y50, y99;
	uint64_t rc = atomic_load(&h->rec_count), yc = atomic_load(&h->ready_count);
	percentiles(h->rec_ns, rc, &r50, &r99);
	percentiles(h->ready_ns, yc, &y50, &y99);
	uint64_t depth = 0;
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
		json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
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
	printf("totals     steps %llu  claims %llu  ring depth %llu  swept %llu\n",
	       (unsigned long long)steps, (unsigned long long)claims, (unsigned long long)depth,
	       (unsigned long long)atomic_load(&h->sweeps_requeued));
	return 0;
}

static int cmd_status(void)
{
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

static int cmd_workers(void)
{
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
static json_t *session_json(fg_handle_t h, int full)
{
	return fg_inspect_session(&R, h, full, have_cfg ? &CFG : NULL);
}

static int cmd_sessions(void)
{
	json_t *arr = json_array();
	long shown = 0;
	if (!o.json)
		printf("%-16s %-10s %-10s %11s %16s\n", "ID", "STATE", "WORKFLOW", "STEPS",
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
			printf("%-16s %-10s %-10s %5d/%-5d %16s\n",
			       json_string_value(json_object_get(j, "id")),
			       json_string_value(json_object_get(j, "state")),
			       json_string_value(json_object_get(j, "workflow")),
			       (int)json_integer_value(json_object_get(j, "steps")),
			       (int)json_integer_value(json_object_get(j, "steps_total")),
			       cs ? json_string_value(cs) : "-");
			json_decref(j);
		}
	}
	if (o.json)
		print_json(arr);
	else
		json_decref(arr);
	return 0;
}

static int cmd_session(const char *id)
{
	fg_handle_t h;
	if (fg_handle_parse(id, &h) < 0)
		die_usage("'%s' is not a session id (16 hex digits, as printed by submit)", id);
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
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		printf("%-22s %s\n", k, s);
		free(s);
	}
	json_decref(j);
	return 0;
}

/* ---- check ----------------------------------------------------------- */

typedef struct viol {
	json_t *list;
} viol_t;

static void violation(viol_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(viol_t *v, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (json_array_size(v->list) < 1000)
		json_array_append_new(v->list, json_string(buf));
}

/* Whether (slot, lease gen) names a process that is alive now. */
static int slot_live(uint32_t sl, uint32_t lgen)
{
	fg_slot_t *s = fg_slot(&R, sl);
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
	       atomic_load(&s->pid) > 0 && kill(atomic_load(&s->pid), 0) == 0;
}

/* Checks one session against its own log and its parent-child links. */
static void check_session(viol_t *v, uint32_t i, uint64_t c, uint64_t lost_wake_ns)
{
	fg_hdr_t *h = R.hdr;
	uint32_t st = FG_CTL_STATE(c);
	char id[17];
	fg_snap_t sn;
	fg_handle_format(FG_HANDLE(i, FG_CTL_SGEN(c)), id);
	if (fg_session_snapshot(&R, FG_HANDLE(i, FG_CTL_SGEN(c)), &sn, 1) < 0)
		return;   /* purged meanwhile */
	st = FG_CTL_STATE(sn.ctl);
	fg_wstate_t ws = sn.st;
	fg_snap_t *s = &sn;
	if (FG_CKPT_LEN(sn.ckpt) > h->log_bytes)
		violation(v, "session %s: checkpoint log length %u exceeds %u", id,
			  FG_CKPT_LEN(sn.ckpt), h->log_bytes);
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
		else if (st == FG_S_DONE && !rv.final)
			violation(v, "session %s: done without a final answer", id);
		else if (st == FG_S_FAILED && !rv.failed && ws.status != FG_WS_FAILED)
			violation(v, "session %s: failed without an error", id);
		else if (ws.step != rv.turns)
			violation(v, "session %s: state says %u model turns, the conversation holds %u",
				  id, ws.step, rv.turns);
		if (st == FG_S_WAITING)
			violation(v, "session %s: a react session is waiting (it has no children)", id);
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
				uint64_t cc = atomic_load(&fg_sess(&R, ci)->ctl);
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
				if (same && FG_S_LIVE(cst) && fg_sess(&R, ci)->parent != i + 1)
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

static void check_once(viol_t *v)
{
	fg_hdr_t *h = R.hdr;
	uint64_t by[FG_S_NSTATES] = { 0 };
	char err[512];
	/* a parked parent with no live child is woken by the sweep within
	 * sweep_after_ms (default 2 s); past twice that, a wake-up was lost */
	uint64_t lost_wake_ns = (have_cfg ? CFG.sweep_after_ms : 2000) * 2000000ull + 1000000000ull;

	for (uint32_t i = 0; i < h->capacity; i++) {
		fg_session_t *s = fg_sess(&R, i);
		uint64_t c = atomic_load(&s->ctl);
		uint32_t st = FG_CTL_STATE(c), sl = FG_CTL_SLOT(c), g = FG_CTL_LGEN(c);
		char id[17];
		fg_handle_format(FG_HANDLE(i, FG_CTL_SGEN(c)), id);
		uint32_t flags = FG_CTL_FLAGS(c);
		if (st >= FG_S_NSTATES || (flags && !(flags == FG_CTL_CANCEL && st == FG_S_RUNNING))) {
			violation(v, "session %s: invalid control word 0x%016llx", id,
				  (unsigned long long)c);
			continue;
		}
		by[st]++;
		if (st == FG_S_RUNNING || st == FG_S_ALLOCATING) {
			if (sl >= h->nslots)
				violation(v, "session %s: %s with lease slot %u out of range", id,
					  fg_state_name(st), sl);
			else if (!slot_live(sl, g) && atomic_load(&s->ctl) == c)
				violation(v, "session %s: %s under a lease held by dead generation "
					  "(slot %u, gen %u)", id, fg_state_name(st), sl, g);
		} else if (st != FG_S_FREE && (sl != FG_SLOT_NONE || g != 0)) {   /* (a new table is zeros) */
			violation(v, "session %s: %s but still carries a lease (slot %u, gen %u)",
				  id, fg_state_name(st), sl, g);
		}
		if (st == FG_S_FREE || st == FG_S_ALLOCATING)
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
		fg_slot_t *s = fg_slot(&R, sl);
		done_ctr += atomic_load(&s->done);
		uint32_t *tab = fg_lease_table(&R, sl);
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
		int live = s->kind != FG_KIND_CLIENT && slot_live(sl, atomic_load(&s->gen));
		if (live || (sl == fg_supervisor_slot(&R) && sup_alive()))
			continue;
		uint64_t ri = atomic_load(&s->ring_intent);
		if (FG_INTENT_OP(ri) != FG_INTENT_NONE &&
		    !(s->kind == FG_KIND_CLIENT && atomic_load(&s->owner) != 0))   /* attached meanwhile */
			violation(v, "slot %u: dead, but its ring intent 0x%016llx was never "
				  "recovered", sl, (unsigned long long)ri);
		for (uint32_t e = 0; e < fg_lease_n(&R); e++) {
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
	uint64_t purged = atomic_load(&h->purged);
	if (done_ctr > finished + purged)
		violation(v, "workers counted %llu finished sessions, the table holds %llu "
			  "and %llu were purged", (unsigned long long)done_ctr,
			  (unsigned long long)finished, (unsigned long long)purged);
	for (uint32_t i = 0; i < h->nrings; i++) {
		fg_ringref_t rr = fg_ring_ref(&R, i);
		if (fg_ring_check(rr, err, sizeof(err)) < 0)
			violation(v, "%s", err);
	}
	for (uint32_t i = 0; i < atomic_load(&h->cfg_workers) && i < h->nworker_slots; i++) {
		fg_slot_t *s = fg_slot(&R, i);
		uint32_t st = atomic_load(&s->state);
		if (sup_alive() && st == FG_SLOT_READY && !slot_live(i, atomic_load(&s->gen)))
			violation(v, "worker %u: marked ready, but pid %d is not running", i,
				  (int)atomic_load(&s->pid));
	}
}

static int cmd_check(void)
{
	viol_t v = { NULL };
	/* A live region moves under us: a violation counts only if it is seen
	 * in three snapshots 100 ms apart. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (v.list)
			json_decref(v.list);
		v.list = json_array();
		check_once(&v);
		if (json_array_size(v.list) == 0)
			break;
		usleep(100000);
	}
	size_t n = json_array_size(v.list);
	if (o.json) {
		print_json(json_pack("{s:b,s:o}", "ok", n == 0, "violations", v.list));
	} else {
		size_t i;
		json_t *x;
		json_array_foreach(v.list, i, x) {
			if (i == 50) {
				printf("... and %zu more violations (--json lists up to 1000)\n", n - 50);
				break;
			}
			printf("violation: %s\n", json_string_value(x));
		}
		if (n == 0)
			printf("ok: every invariant holds (%u sessions, %u rings, %u slots)\n",
			       R.hdr->capacity, R.hdr->nrings, R.hdr->nslots);
		json_decref(v.list);
	}
	return n ? 1 : 0;
}

/* ---- steering -------------------------------------------------------- */

static uint32_t provider_index(const char *name)
{
	for (uint32_t i = 0; i < CFG.nproviders; i++)
		if (!strcmp(CFG.providers[i].name, name))
			return i;
	die_usage("submit: no provider '%s' in the configuration", name);
	return 0;
}

static int cmd_submit(void)
{
	if (!o.workflow)
		die_usage("submit: --workflow is required%s", "");
	fg_submit_t p = { 0 };
	if (!strcmp(o.workflow, "synthetic")) {
		if (o.steps < 0)
			die_usage("submit: --steps K is required for the synthetic workflow%s", "");
		p.workflow = FG_WF_SYNTHETIC;
		p.steps = (uint32_t)o.steps;
		p.arg = (uint32_t)o.delay_us;
	} else if (!strcmp(o.workflow, "react") || !strcmp(o.workflow, "map_reduce") ||
		   !strcmp(o.workflow, "plan_execute")) {
		int mr = o.workflow[0] == 'm' || o.workflow[0] == 'p';
		if (!o.prompt || !*o.prompt)
			die_usage("submit: --prompt TEXT is required for this workflow%s", "");
		if ((o.provider || o.child_provider) && !have_cfg)
			die_usage("submit: --provider and --child-provider need the configuration "
				  "(-c FILE)%s", "");
		uint32_t prov = provider_index(o.provider ? o.provider : CFG.llm_default);
		p.workflow = o.workflow[0] == 'm' ? FG_WF_MAP_REDUCE :
			     o.workflow[0] == 'p' ? FG_WF_PLAN_EXECUTE : FG_WF_REACT;
		p.arg = prov;
		if (mr && o.child_provider)
			p.arg |= (provider_index(o.child_provider) + 1) << 16;
		p.steps = mr ? (uint32_t)o.max_parts
			     : (uint32_t)(o.max_steps > 0 ? o.max_steps : (long)CFG.max_steps);
		p.prompt = o.prompt;
		p.system = o.system;
	} else {
		die_usage("submit: unknown workflow '%s' (synthetic, react, plan_execute or "
			  "map_reduce)", o.workflow);
	}
	fg_actor_t a;
	fg_crash_arm();
	if (fg_client_attach(&R, &a) < 0) {
		fprintf(stderr, "forgectl: all %u client slots are in use\n", FG_CLIENT_SLOTS);
		return 1;
	}
	/* One line per id as soon as it is queued, so that a caller killed (or
	 * a forgectl killed) part-way knows exactly which sessions exist. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = 0;
	for (long i = 0; i < o.count; i++) {
		fg_handle_t h;
		char id[17];
		int e = fg_session_submit(&a, &p, &h);
		if (e < 0) {
			fprintf(stderr, "forgectl: submit %ld of %ld: %s\n", i + 1, o.count,
				e == -ENOSPC ? "the session table is full" :
				e == -E2BIG ? "the prompt does not fit the checkpoint log "
					      "(region.checkpoint_bytes)" : strerror(-e));
			rc = 1;
			break;
		}
		fg_handle_format(h, id);
		printf("%s\n", id);
	}
	fg_client_detach(&a);
	return rc;
}

static int cmd_wait(void)
{
	uint64_t deadline = o.timeout_s >= 0 ? fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull
					     : UINT64_MAX;
	for (;;) {
		counts_t c;
		count(&c);
		if (c.by[FG_S_QUEUED] == 0 && c.by[FG_S_RUNNING] == 0 && c.by[FG_S_ALLOCATING] == 0 &&
		    c.by[FG_S_WAITING] == 0)
			return 0;
		if (fg_now_ns() >= deadline) {
			fprintf(stderr, "forgectl: wait: timed out with %llu queued, %llu running, "
				"%llu waiting\n", (unsigned long long)c.by[FG_S_QUEUED],
				(unsigned long long)c.by[FG_S_RUNNING],
				(unsigned long long)c.by[FG_S_WAITING]);
			return 1;
		}
		usleep(20000);
	}
}

static int cmd_kill_worker(const char *slot_s)
{
	long slot = num_arg("kill-worker", slot_s, 0, FG_MAX_WORKERS - 1);
	int sig = SIGKILL;
	if (o.signal && (sig = fg_signal_parse(o.signal)) < 0)
		die_usage("kill-worker: unknown signal '%s'", o.signal);
	fg_slot_t *s = fg_slot(&R, (uint32_t)slot);
	int32_t pid = atomic_load(&s->pid);
	uint64_t st = atomic_load(&s->starttime);
	if (pid <= 0 || st == 0) {
		fprintf(stderr, "forgectl: worker %ld has no live process (state %s)\n", slot,
			fg_slot_state_name(atomic_load(&s->state)));
		return 1;
	}
	/* pidfd first, then check the pid is still that worker: no reused pid
	 * can be signalled. */
	int fd = fg_pidfd_open(pid);
	if (fd < 0 || !fg_proc_alive(pid, st) || atomic_load(&s->pid) != pid) {
		fprintf(stderr, "forgectl: worker %ld: pid %d is no longer that worker\n", slot,
			(int)pid);
		return 1;
	}
	if (fg_pidfd_send_signal(fd, sig) < 0) {
		fprintf(stderr, "forgectl: kill-worker %ld (pid %d): %s\n", slot, (int)pid,
			strerror(errno));
		return 1;
	}
	close(fd);
	if (!o.json)
		printf("sent SIG%s to worker %ld (pid %d)\n", fg_signal_name(sig), slot, (int)pid);
	return 0;
}

/* Signals the supervisor that holds the region, after checking with a
 * pidfd and its start time that the pid is still that supervisor. */
static int signal_supervisor(int sig, const char *what)
{
	fg_slot_t *sl = fg_slot(&R, fg_supervisor_slot(&R));
	int32_t pid = atomic_load(&sl->pid);
	uint64_t st = atomic_load(&sl->starttime);
	int fd = pid > 0 ? fg_pidfd_open(pid) : -1;
	if (fd < 0 || !fg_proc_alive(pid, st) || atomic_load(&sl->pid) != pid) {
		fprintf(stderr, "forgectl: %s: no supervisor is running on this region\n", what);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (fg_pidfd_send_signal(fd, sig) < 0) {
		fprintf(stderr, "forgectl: %s: signalling pid %d: %s\n", what, (int)pid, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static int cmd_cancel(const char *id)
{
	fg_handle_t h;
	uint32_t st;
	if (fg_handle_parse(id, &h) < 0)
		die_usage("'%s' is not a session id (16 hex digits, as printed by submit)", id);
	fg_crash_arm();
	int rc = fg_session_cancel(&R, NULL, h, &st);
	if (rc == -ENOENT) {
		fprintf(stderr, "forgectl: no session %s\n", id);
		return 1;
	}
	if (rc == -EALREADY) {
		fprintf(stderr, "forgectl: session %s already ended (%s)\n", id, fg_state_name(st));
		return 1;
	}
	printf("%s %s\n", id, st == FG_S_RUNNING ? "cancelling (its worker ends it)" : "cancelled");
	return 0;
}

/* Prints a session's conversation as it grows, one line per message (or
 * per step for synthetic sessions), and exits when the session has ended:
 * 0 if done, 1 otherwise. */
static int cmd_watch(const char *id)
{
	fg_handle_t h;
	if (fg_handle_parse(id, &h) < 0)
		die_usage("'%s' is not a session id (16 hex digits, as printed by submit)", id);
	if (!fg_session_valid(&R, h, NULL)) {
		fprintf(stderr, "forgectl: no session %s\n", id);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	size_t shown = 0;
	uint32_t last_step = 0, last_state = FG_S_NSTATES;
	uint64_t deadline = o.timeout_s >= 0 ? fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull
					     : UINT64_MAX;
	for (;;) {
		fg_snap_t sn;
		if (fg_session_snapshot(&R, h, &sn, 1) < 0) {
			fprintf(stderr, "forgectl: watch: session %s is gone (purged)\n", id);
			return 1;
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
		if (FG_S_FINISHED(st))
			return st == FG_S_DONE ? 0 : 1;
		if (fg_now_ns() >= deadline) {
			fprintf(stderr, "forgectl: watch: %s still %s after %ld s\n", id,
				fg_state_name(st), o.timeout_s);
			return 1;
		}
		usleep(20000);
	}
}

/* A live view: workers, sessions by state, rates, ring depths; refreshed
 * every second (--count N frames, default until interrupted). */
static int cmd_top(void)
{
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

static int cmd_reload(void)
{
	/* An invalid file is refused here already, with its error; forged
	 * checks again and keeps the running configuration if it must. */
	if (have_cfg)
		printf("%s: configuration is valid\n", CFG.file);
	if (signal_supervisor(SIGHUP, "reload"))
		return 1;
	printf("reload requested from forged (pid %d): workers restart one at a time\n",
	       (int)atomic_load(&fg_slot(&R, fg_supervisor_slot(&R))->pid));
	return 0;
}

static int cmd_purge(void)
{
	uint32_t mask = FG_PURGE_FINISHED;
	if (o.state >= 0) {
		if (o.state < FG_S_DONE)
			die_usage("purge: --state must be done, failed or cancelled (not %s)",
				  fg_state_name((uint32_t)o.state));
		mask = 1u << o.state;
	}
	uint64_t now = fg_now_ns(), age = (uint64_t)o.older_than_s * 1000000000ull;
	fg_crash_arm();
	uint32_t n = fg_session_purge(&R, age < now ? now - age : 0, mask);
	if (o.json) {
		json_t *j = json_pack("{s:i,s:I}", "purged", (int)n, "purged_total",
				      (json_int_t)atomic_load(&R.hdr->purged));
		print_json(j);
	} else {
		printf("purged %u sessions (%llu in all)\n", n,
		       (unsigned long long)atomic_load(&R.hdr->purged));
	}
	return 0;
}

static int cmd_drain(void)
{
	fg_slot_t *sl = fg_slot(&R, fg_supervisor_slot(&R));
	int32_t pid = atomic_load(&sl->pid);
	uint64_t st = atomic_load(&sl->starttime);
	if (signal_supervisor(SIGTERM, "drain"))
		return 1;
	printf("drain requested from forged (pid %d): in-flight steps finish, sessions "
	       "resume at the next start\n", (int)pid);
	if (o.timeout_s < 0)
		return 0;
	uint64_t deadline = fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull;
	while (fg_proc_alive(pid, st)) {
		if (fg_now_ns() >= deadline) {
			fprintf(stderr, "forgectl: drain: forged (pid %d) still running after %ld s\n",
				(int)pid, o.timeout_s);
			return 1;
		}
		usleep(20000);
	}
	printf("forged stopped\n");
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_JSON = 256, O_STATE, O_LIMIT, O_WORKFLOW, O_STEPS, O_COUNT, O_DELAY,
	       O_TIMEOUT, O_SIGNAL, O_PROMPT, O_SYSTEM, O_PROVIDER, O_MAXSTEPS, O_CHILDPROV,
	       O_MAXPARTS, O_OLDER };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, O_JSON },
		{ "state", required_argument, NULL, O_STATE },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "workflow", required_argument, NULL, O_WORKFLOW },
		{ "steps", required_argument, NULL, O_STEPS },
		{ "count", required_argument, NULL, O_COUNT },
		{ "delay-us", required_argument, NULL, O_DELAY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "signal", required_argument, NULL, O_SIGNAL },
		{ "prompt", required_argument, NULL, O_PROMPT },
		{ "system", required_argument, NULL, O_SYSTEM },
		{ "provider", required_argument, NULL, O_PROVIDER },
		{ "max-steps", required_argument, NULL, O_MAXSTEPS },
		{ "child-provider", required_argument, NULL, O_CHILDPROV },
		{ "max-parts", required_argument, NULL, O_MAXPARTS },
		{ "older-than", required_argument, NULL, O_OLDER },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	const char *cmd = NULL, *arg = NULL;
	fg_log_init("forgectl", FG_LOG_WARN);
	/* GNU getopt permutes: options may come before or after the command. */
	while ((c = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'r': o.region = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case O_JSON: o.json = 1; break;
		case O_STATE:
			if ((o.state = fg_state_parse(optarg)) < 0)
				die_usage("--state: unknown state '%s'", optarg);
			break;
		case O_LIMIT: o.limit = num_arg("--limit", optarg, 0, 1L << 30); break;
		case O_WORKFLOW: o.workflow = optarg; break;
		case O_STEPS: o.steps = num_arg("--steps", optarg, 0, 1000000); break;
		case O_COUNT: o.count = num_arg("--count", optarg, 1, 1L << 24); o.count_set = 1; break;
		case O_DELAY: o.delay_us = num_arg("--delay-us", optarg, 0, 3600000000L); break;
		case O_TIMEOUT: o.timeout_s = num_arg("--timeout", optarg, 0, 1L << 30); break;
		case O_SIGNAL: o.signal = optarg; break;
		case O_PROMPT: o.prompt = optarg; break;
		case O_SYSTEM: o.system = optarg; break;
		case O_PROVIDER: o.provider = optarg; break;
		case O_MAXSTEPS: o.max_steps = num_arg("--max-steps", optarg, 1, 1000); break;
		case O_CHILDPROV: o.child_provider = optarg; break;
		case O_MAXPARTS: o.max_parts = num_arg("--max-parts", optarg, 1, FG_MAX_PARTS); break;
		case O_OLDER: o.older_than_s = num_arg("--older-than", optarg, 0, 1L << 30); break;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (optind < argc)
		arg = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	int needs_arg = !strcmp(cmd, "session") || !strcmp(cmd, "kill-worker") ||
			!strcmp(cmd, "cancel") || !strcmp(cmd, "watch");
	if (needs_arg && !arg)
		die_usage("%s: missing argument", cmd);
	if (!needs_arg && arg)
		die_usage("unexpected argument '%s'", arg);

	if (!strcmp(cmd, "status")) { open_region(0); return cmd_status(); }
	if (!strcmp(cmd, "workers")) { open_region(0); return cmd_workers(); }
	if (!strcmp(cmd, "sessions")) { open_region(0); return cmd_sessions(); }
	if (!strcmp(cmd, "session")) { open_region(0); return cmd_session(arg); }
	if (!strcmp(cmd, "stats")) { open_region(0); return cmd_stats(); }
	if (!strcmp(cmd, "check")) { open_region(0); return cmd_check(); }
	if (!strcmp(cmd, "submit")) { open_region(1); return cmd_submit(); }
	if (!strcmp(cmd, "wait")) { open_region(0); return cmd_wait(); }
	if (!strcmp(cmd, "kill-worker")) { open_region(0); return cmd_kill_worker(arg); }
	if (!strcmp(cmd, "reload")) { open_region(0); return cmd_reload(); }
	if (!strcmp(cmd, "cancel")) { open_region(1); return cmd_cancel(arg); }
	if (!strcmp(cmd, "watch")) { open_region(0); return cmd_watch(arg); }
	if (!strcmp(cmd, "top")) { open_region(0); return cmd_top(); }
	if (!strcmp(cmd, "drain") || !strcmp(cmd, "stop")) { open_region(0); return cmd_drain(); }
	if (!strcmp(cmd, "purge")) { open_region(1); return cmd_purge(); }
	die_usage("unknown command '%s'", cmd);
	return 2;
}
